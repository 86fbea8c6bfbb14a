//! What a run measured: per-kind recorders filled by the clients ([`Recorder`]), their summary
//! ([`KindStats`], [`LatencySummary`]) and the whole [`Report`], printed as a table for people
//! ([`Report::table`]) and serialised as JSON for machines.
//!
//! Conventions: latencies are of successful (2xx) requests only, kept in microseconds in an HDR
//! histogram and shown in milliseconds; failures are counted by HTTP status, and requests that got no
//! status by transport failure kind. Throughput counts successful requests per second of the measured
//! window (from the end of the warmup to the last request's answer).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::{Endpoint, TransportFailure};
use crate::config::{Config, Workload};
use crate::cpu::CpuUse;

/// Highest latency a histogram tracks, in microseconds (longer ones are clamped to it).
const HIGHEST_MICROS: u64 = 600_000_000;
/// Significant decimal digits of the histogram: 0.1 % precision.
const SIGNIFICANT_DIGITS: u8 = 3;

/// The outcomes of one kind of request (reads or writes) as one client, or all merged, saw them.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: Histogram<u64>,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    transport: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            statuses: BTreeMap::new(),
            transport: BTreeMap::new(),
        }
    }

    /// A successful request and how long it took.
    pub fn success(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.max(1));
        self.ok += 1;
    }

    /// A request answered with a non-success status.
    pub fn status(&mut self, status: u16) {
        *self.statuses.entry(status).or_default() += 1;
    }

    /// A request that got no answer.
    pub fn transport(&mut self, failure: TransportFailure) {
        *self
            .transport
            .entry(failure.as_str().to_owned())
            .or_default() += 1;
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &Recorder) {
        self.latencies
            .add(&other.latencies)
            .expect("histograms with the same bounds add up");
        self.ok += other.ok;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (kind, count) in &other.transport {
            *self.transport.entry(kind.clone()).or_default() += count;
        }
    }

    /// The summary over a measured window of `measured`.
    pub fn summarise(&self, measured: Duration) -> KindStats {
        let failed = self.statuses.values().sum::<u64>() + self.transport.values().sum::<u64>();
        let seconds = measured.as_secs_f64();
        KindStats {
            requests: self.ok + failed,
            ok: self.ok,
            failed,
            throughput_per_sec: if seconds > 0.0 {
                rounded(self.ok as f64 / seconds, 2)
            } else {
                0.0
            },
            latency_ms: LatencySummary::of(&self.latencies),
            errors_by_status: self.statuses.clone(),
            transport_errors: self.transport.clone(),
        }
    }
}

/// Latency percentiles of successful requests, in milliseconds (all 0 when there were none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Self {
                count: 0,
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        Self {
            count: histogram.len(),
            min: ms(histogram.min()),
            mean: rounded(histogram.mean() / 1000.0, 3),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
        }
    }
}

/// The measured figures of one kind of request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindStats {
    /// Requests started in the measured window (successful and failed).
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// Successful requests per second of the measured window.
    pub throughput_per_sec: f64,
    pub latency_ms: LatencySummary,
    /// Failed requests by HTTP status.
    pub errors_by_status: BTreeMap<u16, u64>,
    /// Requests without an answer, by kind (`timeout`, `connect`, `body`, `other`).
    pub transport_errors: BTreeMap<String, u64>,
}

/// The parameters a run was made with, as they appear in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    pub nameserver: String,
    pub workload: Workload,
    pub clients: usize,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub groups: usize,
    pub write_ratio: f64,
    pub read_limit: u32,
    pub preload: usize,
    pub message_size: usize,
    pub max_requests: Option<u64>,
    pub request_timeout_secs: f64,
    pub seed: u64,
}

impl Parameters {
    pub fn of(config: &Config) -> Self {
        Self {
            nameserver: config.nameserver.as_str().trim_end_matches('/').to_owned(),
            workload: config.workload,
            clients: config.clients,
            duration_secs: rounded(config.duration.as_secs_f64(), 6),
            warmup_secs: rounded(config.warmup.as_secs_f64(), 6),
            groups: config.groups,
            write_ratio: config.write_ratio,
            read_limit: config.read_limit,
            preload: config.preload,
            message_size: config.message_size,
            max_requests: config.max_requests,
            request_timeout_secs: rounded(config.request_timeout.as_secs_f64(), 6),
            seed: config.seed,
        }
    }
}

/// Everything one run measured; its JSON form is the tool's machine-readable output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub run_id: String,
    /// Wall-clock start of the run, milliseconds since the unix epoch.
    pub started_at_unix_ms: u64,
    pub parameters: Parameters,
    /// Number of live input nodes the clients were spread over.
    pub input_nodes: usize,
    pub endpoints: Vec<Endpoint>,
    /// Clients per input node id, in the order of `endpoints`.
    pub clients_per_node: Vec<usize>,
    pub setup_secs: f64,
    /// Whether the users and groups came from `--users-file` instead of a setup of this run.
    #[serde(default)]
    pub reused_setup: bool,
    /// Length of the measured window: end of warmup to the last recorded answer.
    pub measured_secs: f64,
    pub reads: KindStats,
    pub writes: KindStats,
    pub total: KindStats,
    /// CPU time of the `--cpu` process groups over the measured window, by group name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu: BTreeMap<String, CpuUse>,
}

impl Report {
    /// JSON for machines, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The readable table: one line per kind, then the errors.
    pub fn table(&self) -> String {
        let p = &self.parameters;
        let mut out = String::new();
        let mix = match p.workload {
            Workload::Mixed => format!("mixed ({:.0} % writes)", p.write_ratio * 100.0),
            other => other.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "chat-bench run {}: {mix}, {} clients on {} input node{}, {} group{}",
            self.run_id,
            p.clients,
            self.input_nodes,
            plural(self.input_nodes),
            p.groups,
            plural(p.groups),
        );
        let setup = if self.reused_setup {
            "users reused from the users file"
        } else {
            "setup"
        };
        let _ = writeln!(
            out,
            "measured {:.1} s after {:.1} s warmup ({setup} took {:.1} s)",
            self.measured_secs, p.warmup_secs, self.setup_secs
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<6} {:>9} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "kind", "requests", "ok", "failed", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let rows = [
            ("read", &self.reads),
            ("write", &self.writes),
            ("total", &self.total),
        ];
        for (name, stats) in rows {
            if name != "total" && stats.requests == 0 {
                continue;
            }
            let l = &stats.latency_ms;
            let _ = writeln!(
                out,
                "{name:<6} {:>9} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                stats.requests,
                stats.ok,
                stats.failed,
                stats.throughput_per_sec,
                l.p50,
                l.p90,
                l.p99,
                l.max
            );
        }
        let _ = writeln!(out);
        let errors = error_lines(&[("read", &self.reads), ("write", &self.writes)]);
        if errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors: {}", errors.join(", "));
        }
        for (name, used) in &self.cpu {
            let per_write = used.ms_per(self.writes.ok).map_or(String::new(), |ms| {
                format!(", {ms:.3} ms per successful write")
            });
            let missing = if used.missing.is_empty() {
                String::new()
            } else {
                format!(" (not counted, not running: {:?})", used.missing)
            };
            let _ = writeln!(
                out,
                "cpu {name}: {:.2} s user+system of {} process{} in {:.1} s{per_write}{missing}",
                used.seconds,
                used.pids.len(),
                if used.pids.len() == 1 { "" } else { "es" },
                used.window_secs,
            );
        }
        out
    }
}

/// `value` rounded to `places` decimals: tidy JSON whose numbers parse back to exactly the same floats.
pub fn rounded(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// `read 503 ×2`, `write timeout ×1`, … for every kind that had failures.
fn error_lines(kinds: &[(&str, &KindStats)]) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, stats) in kinds {
        for (status, count) in &stats.errors_by_status {
            lines.push(format!("{name} HTTP {status} ×{count}"));
        }
        for (kind, count) in &stats.transport_errors {
            lines.push(format!("{name} {kind} ×{count}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(latencies_ms: &[u64]) -> Recorder {
        let mut recorder = Recorder::new();
        for &ms in latencies_ms {
            recorder.success(Duration::from_millis(ms));
        }
        recorder
    }

    #[test]
    fn the_summary_gives_percentiles_of_a_hundred_latencies_in_milliseconds() {
        let latencies: Vec<u64> = (1..=100).collect();

        let stats = recorder(&latencies).summarise(Duration::from_secs(10));

        let l = stats.latency_ms;
        assert_eq!(l.count, 100);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p90 - 90.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
        assert!((l.min - 1.0).abs() < 0.01, "{l:?}");
        assert!((l.mean - 50.5).abs() < 0.1, "{l:?}");
        assert_eq!(stats.throughput_per_sec, 10.0);
    }

    #[test]
    fn failures_count_as_requests_but_not_as_throughput_or_latency() {
        let mut recorder = recorder(&[5, 5]);
        recorder.status(503);
        recorder.status(503);
        recorder.status(403);
        recorder.transport(TransportFailure::Timeout);

        let stats = recorder.summarise(Duration::from_secs(2));

        assert_eq!(stats.requests, 6);
        assert_eq!(stats.ok, 2);
        assert_eq!(stats.failed, 4);
        assert_eq!(stats.throughput_per_sec, 1.0);
        assert_eq!(stats.latency_ms.count, 2);
        assert_eq!(stats.errors_by_status, BTreeMap::from([(403, 1), (503, 2)]));
        assert_eq!(
            stats.transport_errors,
            BTreeMap::from([("timeout".to_owned(), 1)])
        );
    }

    #[test]
    fn merged_recorders_add_up_counts_and_latencies() {
        let mut first = recorder(&[1, 2]);
        first.status(500);
        let mut second = recorder(&[3]);
        second.status(500);
        second.transport(TransportFailure::Connect);

        first.merge(&second);
        let stats = first.summarise(Duration::from_secs(1));

        assert_eq!(stats.ok, 3);
        assert_eq!(stats.errors_by_status, BTreeMap::from([(500, 2)]));
        assert_eq!(stats.transport_errors["connect"], 1);
        assert!((stats.latency_ms.max - 3.0).abs() < 0.01);
    }

    #[test]
    fn rounding_keeps_the_asked_decimals() {
        assert_eq!(rounded(97.372_489_870_670_17, 2), 97.37);
        assert_eq!(rounded(2.043_698_382, 3), 2.044);
        assert_eq!(rounded(0.0, 3), 0.0);
    }

    #[test]
    fn an_empty_recorder_summarises_to_zeros_even_over_no_time() {
        let stats = Recorder::new().summarise(Duration::ZERO);

        assert_eq!(stats.requests, 0);
        assert_eq!(stats.throughput_per_sec, 0.0);
        assert_eq!(stats.latency_ms.p99, 0.0);
    }

    #[test]
    fn a_latency_beyond_the_histogram_is_clamped_not_lost() {
        let mut recorder = Recorder::new();
        recorder.success(Duration::from_secs(100_000));

        let stats = recorder.summarise(Duration::from_secs(1));

        assert_eq!(stats.ok, 1);
        assert!(stats.latency_ms.max >= 599_000.0, "{:?}", stats.latency_ms);
    }

    fn sample_report() -> Report {
        let config = Config::new("http://127.0.0.1:9999", Workload::Mixed).unwrap();
        let mut reads = recorder(&[1, 2, 3]);
        reads.status(503);
        let writes = recorder(&[10]);
        let mut total = reads.clone();
        total.merge(&writes);
        let measured = Duration::from_secs(1);
        Report {
            tool: "chat-bench".into(),
            version: "0.1.0".into(),
            run_id: "abc123".into(),
            started_at_unix_ms: 1,
            parameters: Parameters::of(&config),
            input_nodes: 2,
            endpoints: vec![
                Endpoint {
                    id: 1,
                    url: "http://127.0.0.1:8001".into(),
                },
                Endpoint {
                    id: 2,
                    url: "http://127.0.0.1:8002".into(),
                },
            ],
            clients_per_node: vec![8, 8],
            setup_secs: 0.5,
            reused_setup: false,
            measured_secs: 1.0,
            reads: reads.summarise(measured),
            writes: writes.summarise(measured),
            total: total.summarise(measured),
            cpu: BTreeMap::new(),
        }
    }

    #[test]
    fn the_table_has_a_row_per_kind_and_names_each_error() {
        let table = sample_report().table();

        assert!(
            table.contains("mixed (20 % writes), 16 clients on 2 input nodes, 4 groups"),
            "{table}"
        );
        let header = table.lines().find(|l| l.starts_with("kind")).unwrap();
        for column in ["requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"] {
            assert!(header.contains(column), "{header}");
        }
        let read = table.lines().find(|l| l.starts_with("read ")).unwrap();
        let fields: Vec<&str> = read.split_whitespace().collect();
        assert_eq!(fields[..5], ["read", "4", "3", "1", "3.0"]);
        assert!(table.lines().any(|l| l.starts_with("write ")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("total ")), "{table}");
        assert!(table.contains("errors: read HTTP 503 ×1"), "{table}");
    }

    #[test]
    fn a_table_without_failures_says_so_and_skips_kinds_that_never_ran() {
        let mut report = sample_report();
        report.reads = Recorder::new().summarise(Duration::from_secs(1));

        let table = report.table();

        assert!(table.contains("errors: none"), "{table}");
        assert!(!table.lines().any(|l| l.starts_with("read ")), "{table}");
    }

    #[test]
    fn the_cpu_of_each_group_is_shown_per_successful_write_and_kept_in_the_json() {
        let mut report = sample_report();
        report.cpu.insert(
            "nodes".into(),
            CpuUse {
                pids: vec![11, 12],
                seconds: 0.25,
                clock_ticks_per_sec: 100,
                window_secs: 1.0,
                missing: vec![12],
            },
        );

        let table = report.table();
        let json = report.to_json();
        let parsed: Report = serde_json::from_str(&json).unwrap();
        let without: Report = serde_json::from_str(&sample_report().to_json()).unwrap();

        assert!(
            table.contains(
                "cpu nodes: 0.25 s user+system of 2 processes in 1.0 s, 250.000 ms per successful write (not counted, not running: [12])"
            ),
            "{table}"
        );
        assert_eq!(parsed, report);
        assert!(!sample_report().to_json().contains("\"cpu\""));
        assert!(without.cpu.is_empty());
    }

    #[test]
    fn the_json_parses_back_into_the_same_report() {
        let report = sample_report();

        let json = report.to_json();
        let parsed: Report = serde_json::from_str(&json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();

        assert_eq!(parsed, report);
        assert_eq!(value["parameters"]["workload"], "mixed");
        assert_eq!(value["reads"]["errors_by_status"]["503"], 1);
        assert_eq!(value["writes"]["ok"], 1);
    }
}
