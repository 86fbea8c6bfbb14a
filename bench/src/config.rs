//! Command-line arguments and the validated [`Config`] a run is built from.
//!
//! [`Args`] is what clap parses; [`Args::into_config`] checks every value once ("parse, don't validate") so
//! the rest of the tool can trust a [`Config`]. A config can also be built directly (the integration test
//! does) with [`Config::new`] and the public fields.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cpu::CpuGroup;

/// The share of writes in `--workload mixed` when `--write-ratio` is not given.
pub const DEFAULT_WRITE_RATIO: f64 = 0.2;
/// More clients than this is a typo, not a benchmark of one machine.
pub const MAX_CLIENTS: usize = 10_000;
/// Longest measured run accepted: every loop of the tool is bounded by it.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest message the server accepts, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Most messages preloaded into one group.
pub const MAX_PRELOAD: usize = 10_000;
/// Largest page the server answers.
pub const MAX_READ_LIMIT: u32 = 500;

/// What each client does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Post messages to groups.
    Write,
    /// List the recent messages of a group.
    Read,
    /// Reads and writes mixed at random, `--write-ratio` of them writes.
    Mixed,
}

impl Workload {
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Write => "write",
            Workload::Read => "read",
            Workload::Mixed => "mixed",
        }
    }
}

/// Load generator for the chat cluster: sets up users and groups through the public JSON API, then runs a
/// timed workload with concurrent clients spread round-robin over the live input nodes and reports
/// throughput, latency percentiles and errors.
///
/// Setup: one user per client (names carry a run id, so reruns never collide), each logged in on an input
/// node assigned round-robin; `--groups` groups, every user a member of every group, each preloaded with
/// `--preload` messages. Each client then cycles through the groups. Only requests started after the
/// warmup are recorded; latencies are of successful requests, failures are counted by HTTP status (and
/// transport errors by kind) instead. A client whose node is down or answers 502/503/504/429 backs off
/// (20 ms doubling to 1 s) rather than spinning.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-bench", version)]
pub struct Args {
    /// Base URL of the nameserver's HTTP side; the input nodes come from its `/api/endpoints`.
    #[arg(long, default_value = "http://127.0.0.1:9999")]
    pub nameserver: String,

    /// What the clients do: `write` posts messages, `read` lists recent messages, `mixed` does both.
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,

    /// Number of concurrent clients, each its own user with its own session on one input node.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,

    /// How long requests are measured, after the warmup (e.g. `10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// How long the workload runs before measuring starts; its requests are not recorded.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Number of groups created for the run; every user joins all of them.
    #[arg(long, default_value_t = 4)]
    pub groups: usize,

    /// Share of writes in `--workload mixed`, from 0 to 1 [default: 0.2].
    #[arg(long)]
    pub write_ratio: Option<f64>,

    /// How many messages a read asks for (`?limit=`), 1 to 500.
    #[arg(long, default_value_t = 50)]
    pub read_limit: u32,

    /// Messages posted to each group during setup, so reads get full pages from the start (0 to 10000).
    #[arg(long, default_value_t = 50)]
    pub preload: usize,

    /// Length of each posted message in characters, 16 to 4000.
    #[arg(long, default_value_t = 64)]
    pub message_size: usize,

    /// Stop after this many requests in total (warmup included), even before the time is up.
    #[arg(long)]
    pub max_requests: Option<u64>,

    /// Time limit of one request; a request over it counts as a transport timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// How long setup may wait for input nodes to appear and answer (it retries 502/503/504).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub setup_timeout: Duration,

    /// Write the results as JSON to this file (`-` for standard output; the table then goes to stderr).
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Keep the run's users, sessions and groups in this file and reuse them in later runs against the
    /// same nameserver: the first run creates the file, later runs skip registration, login and preload
    /// (input nodes admit 30 logins per minute per client address). Delete it to start over.
    #[arg(long)]
    pub users_file: Option<PathBuf>,

    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// Seed of the clients' read/write choices (the run id stays random).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Allow a nameserver or input nodes outside the loopback range 127.0.0.0/8 (and ::1).
    #[arg(long)]
    pub allow_remote: bool,

    /// Measure the CPU time (user + system, from /proc/<pid>/stat; Linux) that these local processes
    /// spend in the measured window, from the end of the warmup to the last answer:
    /// `NAME=PID,PID,…`, repeatable (e.g. `--cpu nodes=101,102 --cpu services=99`). The report gives
    /// the seconds per group and, in the table, per successful write.
    #[arg(long, value_name = "NAME=PIDS")]
    pub cpu: Vec<CpuGroup>,
}

/// A bad value on the command line, named so the user can fix it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--nameserver: {0}")]
    Nameserver(String),
    #[error("--clients must be between 1 and {MAX_CLIENTS}, not {0}")]
    Clients(usize),
    #[error("--duration must be more than 0 and at most {MAX_DURATION:?}")]
    Duration,
    #[error("--warmup must be at most {MAX_DURATION:?}")]
    Warmup,
    #[error("--groups must be at least 1")]
    Groups,
    #[error("--write-ratio must be between 0 and 1, not {0}")]
    WriteRatio(f64),
    #[error("--write-ratio only applies to --workload mixed")]
    WriteRatioWithoutMixed,
    #[error("--read-limit must be between 1 and {MAX_READ_LIMIT}, not {0}")]
    ReadLimit(u32),
    #[error("--preload must be at most {MAX_PRELOAD}, not {0}")]
    Preload(usize),
    #[error("--message-size must be between 16 and {MAX_MESSAGE_CHARS}, not {0}")]
    MessageSize(usize),
    #[error("--max-requests must be at least 1")]
    MaxRequests,
    #[error("--request-timeout and --setup-timeout must be between 1 ms and 10 minutes")]
    Timeout,
}

/// Whether clients print a progress line while they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A line rewritten twice a second on a terminal; an occasional plain line otherwise.
    Auto,
    /// Nothing on stderr while running.
    Off,
}

/// A validated benchmark configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub nameserver: Url,
    pub workload: Workload,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub groups: usize,
    /// Probability that a request is a write: 1 for `write`, 0 for `read`.
    pub write_ratio: f64,
    pub read_limit: u32,
    pub preload: usize,
    pub message_size: usize,
    pub max_requests: Option<u64>,
    pub request_timeout: Duration,
    pub setup_timeout: Duration,
    pub json: Option<PathBuf>,
    /// Where the users of the run are kept for later runs (see `--users-file`).
    pub users_file: Option<PathBuf>,
    pub progress: Progress,
    pub seed: u64,
    pub allow_remote: bool,
    /// Processes whose CPU time over the measured window is reported (see `--cpu`).
    pub cpu: Vec<CpuGroup>,
}

impl Config {
    /// The defaults of the command line for `nameserver` and `workload`, progress off (for tests and
    /// callers that embed the tool).
    pub fn new(nameserver: &str, workload: Workload) -> Result<Self, ConfigError> {
        let mut args = Args::parse_from(["chat-bench", "--quiet"]);
        args.nameserver = nameserver.to_owned();
        args.workload = workload;
        args.into_config()
    }

    /// Checks the values a caller changed on a config (the same rules as the command line).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_nameserver(self.nameserver.as_str(), self.allow_remote)?;
        check_counts(self)?;
        if !(0.0..=1.0).contains(&self.write_ratio) {
            return Err(ConfigError::WriteRatio(self.write_ratio));
        }
        Ok(())
    }
}

impl Args {
    /// Validates every value and resolves the workload's write ratio.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let nameserver = check_nameserver(&self.nameserver, self.allow_remote)?;
        let write_ratio = match (self.workload, self.write_ratio) {
            (Workload::Mixed, None) => DEFAULT_WRITE_RATIO,
            (Workload::Mixed, Some(ratio)) if (0.0..=1.0).contains(&ratio) => ratio,
            (Workload::Mixed, Some(ratio)) => return Err(ConfigError::WriteRatio(ratio)),
            (_, Some(_)) => return Err(ConfigError::WriteRatioWithoutMixed),
            (Workload::Write, None) => 1.0,
            (Workload::Read, None) => 0.0,
        };
        let config = Config {
            nameserver,
            workload: self.workload,
            clients: self.clients,
            duration: self.duration,
            warmup: self.warmup,
            groups: self.groups,
            write_ratio,
            read_limit: self.read_limit,
            preload: self.preload,
            message_size: self.message_size,
            max_requests: self.max_requests,
            request_timeout: self.request_timeout,
            setup_timeout: self.setup_timeout,
            json: self.json,
            users_file: self.users_file,
            progress: if self.quiet {
                Progress::Off
            } else {
                Progress::Auto
            },
            seed: self.seed,
            allow_remote: self.allow_remote,
            cpu: self.cpu,
        };
        check_counts(&config)?;
        Ok(config)
    }
}

fn check_counts(config: &Config) -> Result<(), ConfigError> {
    if config.clients == 0 || config.clients > MAX_CLIENTS {
        return Err(ConfigError::Clients(config.clients));
    }
    if config.duration.is_zero() || config.duration > MAX_DURATION {
        return Err(ConfigError::Duration);
    }
    if config.warmup > MAX_DURATION {
        return Err(ConfigError::Warmup);
    }
    if config.groups == 0 {
        return Err(ConfigError::Groups);
    }
    if config.read_limit == 0 || config.read_limit > MAX_READ_LIMIT {
        return Err(ConfigError::ReadLimit(config.read_limit));
    }
    if config.preload > MAX_PRELOAD {
        return Err(ConfigError::Preload(config.preload));
    }
    if !(16..=MAX_MESSAGE_CHARS).contains(&config.message_size) {
        return Err(ConfigError::MessageSize(config.message_size));
    }
    if config.max_requests == Some(0) {
        return Err(ConfigError::MaxRequests);
    }
    let sane = Duration::from_millis(1)..=Duration::from_secs(600);
    if !sane.contains(&config.request_timeout) || !sane.contains(&config.setup_timeout) {
        return Err(ConfigError::Timeout);
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host, on loopback unless `allow_remote`.
fn check_nameserver(text: &str, allow_remote: bool) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|error| ConfigError::Nameserver(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Nameserver(format!(
            "{text} is not an http:// or https:// URL"
        )));
    }
    if !allow_remote && !is_loopback(&url) {
        return Err(ConfigError::Nameserver(format!(
            "{text} is not on loopback (127.0.0.0/8, ::1, localhost); pass --allow-remote to measure another host"
        )));
    }
    Ok(url)
}

/// Whether `url` names a loopback host.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A duration such as `10s`, `500ms`, `1.5s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut all = vec!["chat-bench"];
        all.extend_from_slice(extra);
        Args::try_parse_from(all).expect("arguments parse")
    }

    #[test]
    fn the_defaults_make_a_mixed_run_of_sixteen_clients_against_the_local_nameserver() {
        let config = args(&[]).into_config().unwrap();

        assert_eq!(config.nameserver.as_str(), "http://127.0.0.1:9999/");
        assert_eq!(config.workload, Workload::Mixed);
        assert_eq!(config.clients, 16);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert_eq!(config.groups, 4);
        assert_eq!(config.write_ratio, DEFAULT_WRITE_RATIO);
        assert_eq!(config.progress, Progress::Auto);
    }

    #[test]
    fn the_write_ratio_follows_the_workload() {
        assert_eq!(
            args(&["--workload", "write"])
                .into_config()
                .unwrap()
                .write_ratio,
            1.0
        );
        assert_eq!(
            args(&["--workload", "read"])
                .into_config()
                .unwrap()
                .write_ratio,
            0.0
        );
        assert_eq!(
            args(&["--write-ratio", "0.5"])
                .into_config()
                .unwrap()
                .write_ratio,
            0.5
        );
    }

    #[test]
    fn a_write_ratio_outside_zero_to_one_or_without_mixed_is_refused() {
        assert_eq!(
            args(&["--write-ratio", "1.5"]).into_config().unwrap_err(),
            ConfigError::WriteRatio(1.5)
        );
        assert_eq!(
            args(&["--workload", "read", "--write-ratio", "0.1"])
                .into_config()
                .unwrap_err(),
            ConfigError::WriteRatioWithoutMixed
        );
    }

    #[test]
    fn counts_out_of_range_are_refused_with_the_flag_named() {
        let cases: [(&[&str], ConfigError); 7] = [
            (&["--clients", "0"], ConfigError::Clients(0)),
            (&["--duration", "0s"], ConfigError::Duration),
            (&["--groups", "0"], ConfigError::Groups),
            (&["--read-limit", "501"], ConfigError::ReadLimit(501)),
            (&["--preload", "10001"], ConfigError::Preload(10001)),
            (&["--message-size", "4001"], ConfigError::MessageSize(4001)),
            (&["--max-requests", "0"], ConfigError::MaxRequests),
        ];
        for (flags, expected) in cases {
            let error = args(flags).into_config().unwrap_err();
            assert_eq!(error, expected, "{flags:?}");
            let flag = flags[0];
            assert!(error.to_string().contains(flag), "{error} names {flag}");
        }
    }

    #[test]
    fn a_nameserver_off_loopback_needs_allow_remote() {
        let refused = args(&["--nameserver", "http://10.1.2.3:9999"]).into_config();
        let allowed =
            args(&["--nameserver", "http://10.1.2.3:9999", "--allow-remote"]).into_config();
        let local = args(&["--nameserver", "http://localhost:9999"]).into_config();
        let other_loopback = args(&["--nameserver", "http://127.0.0.2:9999"]).into_config();

        assert!(matches!(refused, Err(ConfigError::Nameserver(_))));
        assert!(allowed.is_ok());
        assert!(local.is_ok());
        assert!(other_loopback.is_ok());
    }

    #[test]
    fn a_nameserver_that_is_not_an_http_url_is_refused() {
        assert!(matches!(
            args(&["--nameserver", "127.0.0.1:9999"]).into_config(),
            Err(ConfigError::Nameserver(_))
        ));
        assert!(matches!(
            args(&["--nameserver", "ftp://127.0.0.1"]).into_config(),
            Err(ConfigError::Nameserver(_))
        ));
    }

    #[test]
    fn durations_take_milliseconds_seconds_minutes_and_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cpu_groups_are_repeatable_and_checked() {
        let config = args(&["--cpu", "nodes=11,12", "--cpu", "services=10"])
            .into_config()
            .unwrap();

        assert_eq!(config.cpu.len(), 2);
        assert_eq!(config.cpu[0].name, "nodes");
        assert_eq!(config.cpu[0].pids, [11, 12]);
        assert_eq!(config.cpu[1].pids, [10]);
        assert!(Args::try_parse_from(["chat-bench", "--cpu", "nodes=x"]).is_err());
        assert!(args(&[]).into_config().unwrap().cpu.is_empty());
    }

    #[test]
    fn a_config_built_in_code_starts_quiet_and_valid() {
        let config = Config::new("http://127.0.0.1:1234", Workload::Write).unwrap();

        assert_eq!(config.progress, Progress::Off);
        assert_eq!(config.write_ratio, 1.0);
        assert_eq!(config.validate(), Ok(()));
    }
}
