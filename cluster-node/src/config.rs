//! The node's configuration file, `NODE_<id>/.cfg` (TOML), parsed into validated types.
//!
//! Parse, don't validate: once a [`Config`] exists every field has been checked, so the rest of the node
//! never re-checks ports or addresses. Every rejection names exactly one field, because the operator's
//! only question is "which line do I fix?". Relative `data_dir` and `log_dir` are resolved against the
//! folder that holds the config file, so a node starts the same way whatever the working directory.
//! The same holds for `tls_cert` and `tls_key`, which [`Config::load`] also reads and checks, so a
//! certificate that cannot serve stops the node at start rather than when it first becomes an input node.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Control and data ports live in this range so that they never collide with the services' defaults
/// (45998, 45999) or with the ephemeral ports of the HTTP side.
pub const CLUSTER_PORT_RANGE: std::ops::RangeInclusive<u16> = 46000..=65535;

/// A node's identity in the cluster, shared with the control-plane algorithms.
pub use overlay::NodeId;

/// Zero is reserved (it means "unknown" on the wire), so a configured or received id must be at least 1;
/// a writer's id is part of its data term, so it must fit there (`replication::MAX_NODE_ID`).
pub fn parse_node_id(raw: u64) -> Result<NodeId, String> {
    if raw == 0 {
        Err("must be at least 1".into())
    } else if raw > replication::MAX_NODE_ID {
        Err(format!("must be at most {}", replication::MAX_NODE_ID))
    } else {
        Ok(NodeId(raw))
    }
}

/// `host:port` of a central service (bootstrap or nameserver). A host name is kept as written and
/// resolved when connecting, so a config may say `localhost:45999`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddr {
    host: String,
    port: u16,
}

impl ServiceAddr {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `http://host:port` URI that tonic clients connect to.
    pub fn grpc_uri(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("http://[{v6}]:{}", self.port),
            _ => format!("http://{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for ServiceAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(socket) = text.parse::<SocketAddr>() {
            if socket.port() == 0 {
                return Err(format!("{text:?} has port 0"));
            }
            return Ok(Self {
                host: socket.ip().to_string(),
                port: socket.port(),
            });
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?} does not end in a port number"))?;
        let host_is_name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_is_name {
            return Err(format!(
                "{text:?} does not start with a host name or IP address"
            ));
        }
        if port == 0 {
            return Err(format!("{text:?} has port 0"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// The secret all nodes of one cluster share. Every node derives from it the keys that seal its
/// control- and data-plane frames (so only members can talk to members), and input nodes the key that
/// signs session cookies (so a user signed in through one input node stays signed in on every other).
/// `init.sh` writes the same random key into every config of a cluster. Its [`Debug`](fmt::Debug)
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(String);

impl ClusterKey {
    /// The fewest characters a key may have: short keys can be guessed offline from one signed cookie.
    pub const MIN_CHARS: usize = 32;

    pub fn parse(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        let chars = text.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!(
                "is {chars} characters long; it needs at least {} (init.sh writes 64 random hex digits)",
                Self::MIN_CHARS
            ));
        }
        Ok(ClusterKey(text))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

/// A validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// The address this node binds and advertises to its neighbours.
    pub host: IpAddr,
    pub control_port: u16,
    pub data_port: u16,
    pub http_port: u16,
    pub admin_port: u16,
    pub bootstrap: ServiceAddr,
    /// Every nameserver this node registers with as an input node (one lease each), in order.
    pub nameservers: Vec<ServiceAddr>,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Enables the admin fault switch (`POST /fault`), for partition tests. Off unless asked for.
    pub allow_faults: bool,
    /// The nameservers' HTTP addresses, where a page goes back to when its input node stops answering
    /// (the first that is up); empty for none.
    pub nameserver_http: Vec<String>,
    /// Seals the planes' frames and signs session cookies; the same on every node of the cluster.
    pub cluster_key: ClusterKey,
    /// How many voters the writer keeps (DESIGN §4): 1 to 7, default 3.
    pub replication_factor: replication::ReplicationFactor,
    /// How long a voter may stay out of the writer's tree before a learner replaces it.
    pub voter_grace: std::time::Duration,
    /// The certificate and key of the chat's HTTPS server; plain HTTP without them.
    pub tls: Option<TlsFiles>,
    /// Backups into a folder while this node is the writer or a voter; none without `backup_dir`.
    pub backups: Option<PeriodicBackups>,
}

/// `backup_dir`, `backup_interval_s` and `backup_keep`: a backup into `folder` every `every`, the
/// newest `keep` kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicBackups {
    pub folder: PathBuf,
    pub every: std::time::Duration,
    pub keep: usize,
}

/// Periodic backups by default: hourly, a day's worth kept.
pub const DEFAULT_BACKUP_INTERVAL_S: u64 = 3_600;
pub const DEFAULT_BACKUP_KEEP: u64 = 24;

/// Where an input node's TLS certificate chain and private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads both files into a server configuration; the error names the file at fault.
    pub fn load(
        &self,
    ) -> Result<std::sync::Arc<cluster_tls::ServerConfig>, cluster_tls::TlsFileError> {
        cluster_tls::server_config(&self.cert, &self.key)
    }
}

/// `"a"` or `["a", "b"]` in the file: one nameserver, or several for reliability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn of(mut values: Vec<String>) -> Self {
        if values.len() == 1 {
            OneOrMany::One(values.remove(0))
        } else {
            OneOrMany::Many(values)
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        }
    }
}

/// A voter's default grace period: long enough to ride out a restart or a heal (about a second),
/// short enough that a node gone for good is replaced within seconds.
pub const DEFAULT_VOTER_GRACE_MS: u64 = 5_000;

/// Why a configuration was refused. Each variant renders as a single line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {reason}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
}

impl ConfigError {
    /// The field the error is about, when it is about one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The file as written, before validation. Unknown keys are refused so that a typo (`data_prot`) is an
/// error rather than a silently ignored line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub id: u64,
    pub host: String,
    pub control_port: u32,
    pub data_port: u32,
    pub http_port: u32,
    pub admin_port: u32,
    pub bootstrap: String,
    pub nameserver: OneOrMany,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_faults: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameserver_http: Option<OneOrMany>,
    /// Required; an `Option` here only so that its absence is reported like every other field's
    /// problem, with the field named, rather than as a generic parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voter_grace_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_interval_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_keep: Option<u64>,
}

impl Config {
    /// Reads and validates the file at `path`, and the TLS certificate and key it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let config = Self::parse(&text, path, base)?;
        if let Some(tls) = &config.tls {
            tls.load().map_err(|error| ConfigError::Invalid {
                path: path.to_owned(),
                field: match error.file() {
                    cluster_tls::TlsFile::Certificate => "tls_cert",
                    cluster_tls::TlsFile::Key => "tls_key",
                },
                reason: error.to_string(),
            })?;
        }
        Ok(config)
    }

    /// Parses `text`; `path` is only used in messages and `base` resolves relative directories.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Syntax {
            path: path.to_owned(),
            message: one_line_toml_error(text, &error),
        })?;
        raw.validate(path, base)
    }

    /// The TOML text that [`Config::parse`] reads back into an equal value (directories as stored).
    pub fn to_toml(&self) -> String {
        let raw = RawConfig {
            id: self.id.0,
            host: self.host.to_string(),
            control_port: self.control_port.into(),
            data_port: self.data_port.into(),
            http_port: self.http_port.into(),
            admin_port: self.admin_port.into(),
            bootstrap: self.bootstrap.to_string(),
            nameserver: OneOrMany::of(self.nameservers.iter().map(ToString::to_string).collect()),
            data_dir: self.data_dir.clone(),
            log_dir: self.log_dir.clone(),
            allow_faults: self.allow_faults,
            nameserver_http: (!self.nameserver_http.is_empty())
                .then(|| OneOrMany::of(self.nameserver_http.clone())),
            cluster_key: Some(self.cluster_key.0.clone()),
            replication_factor: Some(self.replication_factor.get() as u64),
            voter_grace_ms: Some(self.voter_grace.as_millis() as u64),
            tls_cert: self.tls.as_ref().map(|tls| tls.cert.clone()),
            tls_key: self.tls.as_ref().map(|tls| tls.key.clone()),
            backup_dir: self.backups.as_ref().map(|b| b.folder.clone()),
            backup_interval_s: self.backups.as_ref().map(|b| b.every.as_secs()),
            backup_keep: self.backups.as_ref().map(|b| b.keep as u64),
        };
        toml::to_string(&raw).expect("a config of plain scalars always serialises")
    }

    /// The admin endpoint (`/status`, `/metrics`).
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.admin_port)
    }
}

impl RawConfig {
    fn validate(self, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };

        let id = parse_node_id(self.id).map_err(|reason| invalid("id", reason))?;
        let host = parse_host(&self.host).map_err(|reason| invalid("host", reason))?;

        let control_port =
            cluster_port(self.control_port).map_err(|r| invalid("control_port", r))?;
        let data_port = cluster_port(self.data_port).map_err(|r| invalid("data_port", r))?;
        let http_port = any_port(self.http_port).map_err(|r| invalid("http_port", r))?;
        let admin_port = any_port(self.admin_port).map_err(|r| invalid("admin_port", r))?;

        // Every port is bound by this one process, so two equal ones can never both work.
        let ports = [
            ("control_port", control_port),
            ("data_port", data_port),
            ("http_port", http_port),
            ("admin_port", admin_port),
        ];
        for (index, (field, port)) in ports.iter().enumerate() {
            if let Some((other, _)) = ports[..index].iter().find(|(_, p)| p == port) {
                return Err(invalid(
                    field,
                    format!("{port} is already used by `{other}`"),
                ));
            }
        }

        let bootstrap = self
            .bootstrap
            .parse()
            .map_err(|reason| invalid("bootstrap", reason))?;
        let nameservers = self
            .nameserver
            .into_vec()
            .iter()
            .map(|text| text.parse())
            .collect::<Result<Vec<ServiceAddr>, String>>()
            .map_err(|reason| invalid("nameserver", reason))?;
        if nameservers.is_empty() {
            return Err(invalid("nameserver", "names no nameserver".into()));
        }
        let mut nameserver_http = Vec::new();
        for url in self
            .nameserver_http
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "nameserver_http",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            nameserver_http.push(url.trim_end_matches('/').to_owned());
        }
        let cluster_key = self
            .cluster_key
            .ok_or_else(|| {
                "is missing: every node needs the cluster's shared key (init.sh writes it)"
                    .to_owned()
            })
            .and_then(ClusterKey::parse)
            .map_err(|reason| invalid("cluster_key", reason))?;
        let replication_factor = match self.replication_factor {
            None => replication::ReplicationFactor::DEFAULT,
            Some(voters) => usize::try_from(voters)
                .map_err(|_| format!("must be 1 to 7 (the number of voters), not {voters}"))
                .and_then(replication::ReplicationFactor::new)
                .map_err(|reason| invalid("replication_factor", reason))?,
        };
        let voter_grace_ms = self.voter_grace_ms.unwrap_or(DEFAULT_VOTER_GRACE_MS);
        if !(100..=3_600_000).contains(&voter_grace_ms) {
            return Err(invalid(
                "voter_grace_ms",
                format!("must be 100 to 3600000 milliseconds, not {voter_grace_ms}"),
            ));
        }
        let data_dir = directory(&self.data_dir, base).map_err(|r| invalid("data_dir", r))?;
        let log_dir = directory(&self.log_dir, base).map_err(|r| invalid("log_dir", r))?;
        let backups = periodic_backups(
            self.backup_dir.as_deref(),
            self.backup_interval_s,
            self.backup_keep,
            base,
            &invalid,
        )?;
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: directory(&cert, base).map_err(|r| invalid("tls_cert", r))?,
                key: directory(&key, base).map_err(|r| invalid("tls_key", r))?,
            }),
            (Some(_), None) => {
                return Err(invalid(
                    "tls_key",
                    "is missing: `tls_cert` is set, and HTTPS needs both (or neither, for plain HTTP)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_cert",
                    "is missing: `tls_key` is set, and HTTPS needs both (or neither, for plain HTTP)"
                        .into(),
                ));
            }
        };
        Ok(Config {
            id,
            host,
            control_port,
            data_port,
            http_port,
            admin_port,
            bootstrap,
            nameservers,
            data_dir,
            log_dir,
            allow_faults: self.allow_faults,
            nameserver_http,
            cluster_key,
            replication_factor,
            voter_grace: std::time::Duration::from_millis(voter_grace_ms),
            tls,
            backups,
        })
    }
}

fn periodic_backups(
    folder: Option<&Path>,
    interval_s: Option<u64>,
    keep: Option<u64>,
    base: &Path,
    invalid: &dyn Fn(&'static str, String) -> ConfigError,
) -> Result<Option<PeriodicBackups>, ConfigError> {
    let every = interval_s.unwrap_or(DEFAULT_BACKUP_INTERVAL_S);
    if !(10..=604_800).contains(&every) {
        return Err(invalid(
            "backup_interval_s",
            format!("must be 10 to 604800 seconds (a week), not {every}"),
        ));
    }
    let kept = keep.unwrap_or(DEFAULT_BACKUP_KEEP);
    if !(1..=10_000).contains(&kept) {
        return Err(invalid(
            "backup_keep",
            format!("must be 1 to 10000 backups, not {kept}"),
        ));
    }
    let Some(folder) = folder else {
        if interval_s.is_some() || keep.is_some() {
            return Err(invalid(
                "backup_dir",
                "is missing: `backup_interval_s` or `backup_keep` is set, and periodic backups need a folder".into(),
            ));
        }
        return Ok(None);
    };
    Ok(Some(PeriodicBackups {
        folder: directory(folder, base).map_err(|reason| invalid("backup_dir", reason))?,
        every: std::time::Duration::from_secs(every),
        keep: usize::try_from(kept).unwrap_or(usize::MAX),
    }))
}

fn parse_host(text: &str) -> Result<IpAddr, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    // A name such as `localhost` is accepted when it resolves; the node binds the first address.
    (text, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|socket| socket.ip())
        .ok_or_else(|| format!("{text:?} is neither an IP address nor a resolvable host name"))
}

fn cluster_port(port: u32) -> Result<u16, String> {
    u16::try_from(port)
        .ok()
        .filter(|p| CLUSTER_PORT_RANGE.contains(p))
        .ok_or_else(|| {
            format!(
                "{port} is outside {}–{}",
                CLUSTER_PORT_RANGE.start(),
                CLUSTER_PORT_RANGE.end()
            )
        })
}

fn any_port(port: u32) -> Result<u16, String> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{port} is outside 1–65535"))
}

/// A path as written, relative ones resolved against the config's folder.
fn directory(dir: &Path, base: &Path) -> Result<PathBuf, String> {
    if dir.as_os_str().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(if dir.is_relative() {
        base.join(dir)
    } else {
        dir.to_owned()
    })
}

/// toml's own rendering spans several lines with a source excerpt; the operator gets one line with the
/// line number instead.
fn one_line_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
id = 3
host = "127.0.0.1"
control_port = 46003
data_port = 47003
http_port = 8003
admin_port = 9003
bootstrap = "127.0.0.1:45999"
nameserver = "localhost:45998"
data_dir = "data"
log_dir = "/var/log/node3"
cluster_key = "0123456789abcdef0123456789abcdef"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("NODE_3/.cfg"), Path::new("NODE_3"))
    }

    fn with(key: &str, value: &str) -> String {
        VALID
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn without(key: &str) -> String {
        VALID
            .lines()
            .filter(|line| !line.starts_with(&format!("{key} =")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn field_of(text: &str) -> &'static str {
        parse(text)
            .expect_err("the config should be refused")
            .field()
            .expect("the error should name a field")
    }

    #[test]
    fn a_valid_file_is_accepted_with_relative_dirs_under_the_config_folder() {
        let config = parse(VALID).unwrap();
        assert_eq!(config.id, NodeId(3));
        assert_eq!(config.control_port, 46003);
        assert_eq!(config.nameservers.len(), 1);
        assert_eq!(config.nameservers[0].host(), "localhost");
        assert_eq!(config.data_dir, Path::new("NODE_3/data"));
        assert_eq!(config.log_dir, Path::new("/var/log/node3"));
        assert!(
            !config.allow_faults,
            "the fault switch is off unless asked for"
        );
    }

    #[test]
    fn a_valid_file_round_trips_through_toml() {
        let mut config = parse(VALID).unwrap();
        let again = Config::parse(&config.to_toml(), Path::new("x"), Path::new("")).unwrap();
        assert_eq!(config, again);
        config.allow_faults = true;
        config.nameserver_http = vec!["http://127.0.0.1:9999".into()];
        let again = Config::parse(&config.to_toml(), Path::new("x"), Path::new("")).unwrap();
        assert_eq!(config, again);
        config.nameservers.push("127.0.0.1:45997".parse().unwrap());
        config.nameserver_http.push("http://127.0.0.1:9998".into());
        config.cluster_key = ClusterKey::parse("k".repeat(64)).unwrap();
        let again = Config::parse(&config.to_toml(), Path::new("x"), Path::new("")).unwrap();
        assert_eq!(config, again);
    }

    #[test]
    fn ids_outside_one_to_the_largest_a_data_term_holds_are_refused() {
        assert_eq!(field_of(&with("id", "0")), "id");
        assert_eq!(field_of(&with("id", "1048576")), "id");
        assert!(parse(&with("id", "1048575")).is_ok());
    }

    #[test]
    fn an_empty_or_unresolvable_host_is_refused() {
        assert_eq!(field_of(&with("host", "\"\"")), "host");
        assert_eq!(field_of(&with("host", "\"not a host!\"")), "host");
    }

    #[test]
    fn control_and_data_ports_must_lie_in_the_cluster_range() {
        for key in ["control_port", "data_port"] {
            assert_eq!(field_of(&with(key, "45999")), key);
            assert_eq!(field_of(&with(key, "65536")), key);
            assert_eq!(field_of(&with(key, "0")), key);
        }
        assert!(parse(&with("control_port", "46000")).is_ok());
        assert!(parse(&with("data_port", "65535")).is_ok());
    }

    #[test]
    fn http_and_admin_ports_must_be_real_ports() {
        for key in ["http_port", "admin_port"] {
            assert_eq!(field_of(&with(key, "0")), key);
            assert_eq!(field_of(&with(key, "70000")), key);
        }
    }

    #[test]
    fn two_equal_ports_are_refused_naming_the_later_field() {
        let error = parse(&with("admin_port", "8003")).unwrap_err();
        assert_eq!(error.field(), Some("admin_port"));
        assert!(error.to_string().contains("http_port"), "{error}");
        assert_eq!(field_of(&with("data_port", "46003")), "data_port");
    }

    #[test]
    fn service_addresses_must_be_host_and_port() {
        for bad in [
            "\"nope\"",
            "\"127.0.0.1\"",
            "\"host:port\"",
            "\":45999\"",
            "\"x:0\"",
        ] {
            assert_eq!(field_of(&with("bootstrap", bad)), "bootstrap", "{bad}");
            assert_eq!(field_of(&with("nameserver", bad)), "nameserver", "{bad}");
        }
        let v6 = parse(&with("bootstrap", "\"[::1]:45999\"")).unwrap();
        assert_eq!(v6.bootstrap.grpc_uri(), "http://[::1]:45999");
    }

    #[test]
    fn a_nameserver_http_address_must_be_an_http_url() {
        let text = format!("{VALID}\nnameserver_http = \"ftp://x\"\n");
        assert_eq!(field_of(&text), "nameserver_http");
        let text = format!("{VALID}\nnameserver_http = \"http://127.0.0.1:9999/\"\n");
        assert_eq!(
            parse(&text).unwrap().nameserver_http,
            vec!["http://127.0.0.1:9999".to_owned()]
        );
    }

    #[test]
    fn several_nameservers_are_a_list_in_order_and_each_is_checked() {
        let text = VALID.replace(
            "nameserver = \"localhost:45998\"",
            "nameserver = [\"127.0.0.1:45998\", \"127.0.0.1:45997\"]\nnameserver_http = [\"http://127.0.0.1:9999\", \"https://127.0.0.1:9998/\"]",
        );
        let config = parse(&text).unwrap();
        let ports: Vec<u16> = config.nameservers.iter().map(|n| n.port()).collect();
        assert_eq!(ports, vec![45998, 45997]);
        assert_eq!(
            config.nameserver_http,
            vec![
                "http://127.0.0.1:9999".to_owned(),
                "https://127.0.0.1:9998".to_owned()
            ]
        );
        let bad = VALID.replace(
            "nameserver = \"localhost:45998\"",
            "nameserver = [\"127.0.0.1:45998\", \"nope\"]",
        );
        assert_eq!(field_of(&bad), "nameserver");
        let none = VALID.replace("nameserver = \"localhost:45998\"", "nameserver = []");
        assert_eq!(field_of(&none), "nameserver");
    }

    #[test]
    fn a_cluster_key_is_required_and_must_have_at_least_32_characters() {
        let error = parse(&without("cluster_key")).unwrap_err();
        assert_eq!(error.field(), Some("cluster_key"));
        let line = error.to_string();
        assert!(
            line.contains("cluster_key") && line.contains("missing") && !line.contains('\n'),
            "{line}"
        );
        let short = with("cluster_key", &format!("\"{}\"", "k".repeat(31)));
        let error = parse(&short).unwrap_err();
        assert_eq!(error.field(), Some("cluster_key"));
        assert!(error.to_string().contains("31"), "{error}");
        let fitting = with("cluster_key", &format!("\"{}\"", "k".repeat(32)));
        assert_eq!(
            parse(&fitting).unwrap().cluster_key,
            ClusterKey::parse("k".repeat(32)).unwrap()
        );
    }

    #[test]
    fn the_replication_factor_is_1_to_7_and_3_by_default_and_the_voter_grace_is_bounded() {
        let config = parse(VALID).unwrap();
        assert_eq!(config.replication_factor.get(), 3);
        assert_eq!(
            config.voter_grace,
            std::time::Duration::from_millis(DEFAULT_VOTER_GRACE_MS)
        );
        let five = parse(&format!(
            "{VALID}\nreplication_factor = 5\nvoter_grace_ms = 2000\n"
        ))
        .unwrap();
        assert_eq!(five.replication_factor.get(), 5);
        assert_eq!(five.voter_grace, std::time::Duration::from_secs(2));
        for bad in ["0", "8", "1000000000000"] {
            let error = parse(&format!("{VALID}\nreplication_factor = {bad}\n")).unwrap_err();
            assert_eq!(error.field(), Some("replication_factor"), "{bad}");
            let line = error.to_string();
            assert!(line.contains("1 to 7") && !line.contains('\n'), "{line}");
        }
        let error = parse(&format!("{VALID}\nvoter_grace_ms = 5\n")).unwrap_err();
        assert_eq!(error.field(), Some("voter_grace_ms"));
    }

    #[test]
    fn periodic_backups_need_a_folder_and_have_bounded_interval_and_retention() {
        assert_eq!(parse(VALID).unwrap().backups, None);
        let on = parse(&format!("{VALID}\nbackup_dir = \"backups\"\n")).unwrap();
        let backups = on.backups.clone().expect("on");
        assert_eq!(
            backups.every,
            std::time::Duration::from_secs(DEFAULT_BACKUP_INTERVAL_S)
        );
        assert_eq!(backups.keep, DEFAULT_BACKUP_KEEP as usize);
        assert_eq!(
            backups.folder,
            Path::new("NODE_3/backups"),
            "beside the config"
        );
        let error = parse(&format!("{VALID}\nbackup_keep = 3\n")).unwrap_err();
        assert_eq!(error.field(), Some("backup_dir"));
        for (field, line) in [
            ("backup_interval_s", "backup_interval_s = 1"),
            ("backup_keep", "backup_keep = 0"),
        ] {
            let error = parse(&format!("{VALID}\nbackup_dir = \"b\"\n{line}\n")).unwrap_err();
            assert_eq!(error.field(), Some(field), "{line}");
        }
    }

    #[test]
    fn a_cluster_key_never_shows_in_debug_output() {
        let text = with("cluster_key", &format!("\"{}\"", "s3cret".repeat(8)));
        let config = parse(&text).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn empty_directories_are_refused() {
        assert_eq!(field_of(&with("data_dir", "\"\"")), "data_dir");
        assert_eq!(field_of(&with("log_dir", "\"\"")), "log_dir");
    }

    #[test]
    fn a_missing_field_is_a_one_line_error_naming_it() {
        let error = parse(&without("log_dir")).unwrap_err();
        let line = error.to_string();
        assert!(line.contains("log_dir"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let line = parse(&format!("{VALID}\ndata_prot = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(line.contains("data_prot"), "{line}");
        assert!(line.contains("line 14"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn a_wrongly_typed_value_is_a_one_line_error() {
        let line = parse(&with("control_port", "\"46003\""))
            .unwrap_err()
            .to_string();
        assert!(line.contains("line 4"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn tls_files_come_in_pairs_resolved_against_the_config_folder() {
        assert_eq!(parse(VALID).unwrap().tls, None, "plain HTTP by default");
        let both = parse(&format!(
            "{VALID}\ntls_cert = \"tls/cert.pem\"\ntls_key = \"/etc/chat/key.pem\"\n"
        ))
        .unwrap();
        assert_eq!(
            both.tls,
            Some(TlsFiles {
                cert: "NODE_3/tls/cert.pem".into(),
                key: "/etc/chat/key.pem".into(),
            })
        );
        let again = Config::parse(&both.to_toml(), Path::new("x"), Path::new("")).unwrap();
        assert_eq!(again, both);
        let error = parse(&format!("{VALID}\ntls_cert = \"cert.pem\"\n")).unwrap_err();
        assert_eq!(error.field(), Some("tls_key"));
        assert!(!error.to_string().contains('\n'), "{error}");
        let error = parse(&format!("{VALID}\ntls_key = \"key.pem\"\n")).unwrap_err();
        assert_eq!(error.field(), Some("tls_cert"));
        let empty = format!("{VALID}\ntls_cert = \"\"\ntls_key = \"key.pem\"\n");
        assert_eq!(field_of(&empty), "tls_cert");
    }

    #[test]
    fn loading_a_config_checks_its_tls_files_and_names_the_one_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let (authority, _) = cluster_tls::LocalAuthority::open_or_create(dir.path()).unwrap();
        authority
            .issue(&["127.0.0.1".into()])
            .unwrap()
            .write_to(&dir.path().join("tls"))
            .unwrap();
        let write = |name: &str, tls: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{VALID}\n{tls}")).unwrap();
            path
        };
        let good = write(
            "good.cfg",
            "tls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n",
        );
        let config = Config::load(&good).unwrap();
        assert!(config.tls.unwrap().load().is_ok());

        let no_cert = write(
            "no-cert.cfg",
            "tls_cert = \"tls/nope.pem\"\ntls_key = \"tls/key.pem\"\n",
        );
        let error = Config::load(&no_cert).unwrap_err();
        assert_eq!(error.field(), Some("tls_cert"));
        let line = error.to_string();
        assert!(line.contains("nope.pem") && !line.contains('\n'), "{line}");

        let swapped = write(
            "swapped.cfg",
            "tls_cert = \"tls/cert.pem\"\ntls_key = \"tls/cert.pem\"\n",
        );
        assert_eq!(Config::load(&swapped).unwrap_err().field(), Some("tls_key"));
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_the_path() {
        let error = Config::load(Path::new("/nonexistent/NODE_9/.cfg")).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/NODE_9/.cfg"));
    }
}
