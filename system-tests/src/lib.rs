//! Harness for tests that run the real binaries as separate processes on loopback.
//!
//! Every process a test starts is owned by a [`Process`] whose `Drop` sends SIGKILL, so a failing or
//! panicking test never leaves a cluster behind. Ports are picked at random from free ones and every
//! file lives in a temporary directory. The binaries are those of the current build profile
//! (`target/debug` under `cargo test`); they are built on first use if missing.

pub mod chat;
pub mod checker;
pub mod cluster;
pub mod scenario;
pub mod tree;
pub mod workload;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;

/// The loopback address every test process binds. Tests never use any other address.
pub const LOOPBACK: &str = "127.0.0.1";

/// Path of a workspace binary, building the binaries once per test process if needed.
pub fn binary(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // Tests live in target/<profile>/deps, tools in target/<profile>: either way, the profile dir.
        let exe = std::env::current_exe().expect("the running binary knows its path");
        let mut dir = exe.parent().expect("a binary lives in a folder").to_owned();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let missing = ["bootstrap", "nameserver", "cluster-node", "cluster-certs"]
            .iter()
            .any(|bin| !dir.join(bin).exists());
        if missing {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args([
                "build",
                "--bins",
                "-p",
                "bootstrap",
                "-p",
                "nameserver",
                "-p",
                "cluster-node",
                "-p",
                "cluster-tls",
            ]);
            if dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build
                .status()
                .expect("cargo can be run to build the binaries");
            assert!(status.success(), "building the binaries failed");
        }
        dir
    });
    dir.join(name)
}

/// A free TCP port on loopback inside `range` (control and data ports must lie in 46000–65535).
/// Never the same port twice in one test process, even before the first one is bound.
pub fn free_port_in(range: std::ops::RangeInclusive<u16>) -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(range.clone());
        if !handed_out.contains(&port) && TcpListener::bind((LOOPBACK, port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port found in {range:?}");
}

/// A free TCP port on loopback for a service, an admin or an HTTP port. Taken below Linux's ephemeral
/// range (32768–60999): a port the kernel picks for us is one it may also pick as the source port of
/// some node's outgoing connection before the process meant to listen on it has bound it.
pub fn free_port() -> u16 {
    free_port_in(20000..=32767)
}

/// A child process that is SIGKILLed when dropped.
pub struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Starts `program` with `args`, stdout discarded and stderr kept for [`Process::stderr`].
    pub fn spawn(name: impl Into<String>, program: &Path, args: &[&str]) -> Self {
        let name = name.into();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({}): {error}", program.display()));
        Self { name, child }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal)
            .unwrap_or_else(|error| panic!("cannot send {signal} to {}: {error}", self.name));
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on our own child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote on stderr; call after it exited.
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Ports and paths of one node of a test cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: u64,
    pub control_port: u16,
    pub data_port: u16,
    pub http_port: u16,
    pub admin_port: u16,
    pub config_path: PathBuf,
}

impl NodeSpec {
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{LOOPBACK}:{}{path}", self.admin_port)
    }
}

/// A temporary directory with the bootstrap's and nameserver's addresses chosen.
pub struct ClusterDir {
    pub dir: tempfile::TempDir,
    pub bootstrap: SocketAddr,
    pub nameserver_grpc: SocketAddr,
    pub nameserver_http: SocketAddr,
    /// HTTPS for the nameserver and the input nodes, with certificates laid out as `TLS=1 ./init.sh`
    /// lays them out (see [`ClusterDir::with_tls`]).
    tls: bool,
    /// More nameservers (gRPC, HTTP) every node registers with, after the first
    /// ([`ClusterDir::with_nameservers`]).
    pub more_nameservers: Vec<(SocketAddr, SocketAddr)>,
}

impl ClusterDir {
    pub fn new() -> Self {
        let addr = |port| SocketAddr::new(LOOPBACK.parse().expect("loopback parses"), port);
        Self {
            // CHAT_TEST_KEEP=1 keeps every cluster's directory (configs, data, logs) for a post-mortem.
            dir: tempfile::Builder::new()
                .prefix("chat-cluster-")
                .disable_cleanup(std::env::var_os("CHAT_TEST_KEEP").is_some())
                .tempdir()
                .expect("a temporary directory can be created"),
            bootstrap: addr(free_port()),
            nameserver_grpc: addr(free_port()),
            nameserver_http: addr(free_port()),
            tls: false,
            more_nameservers: Vec::new(),
        }
    }

    /// A directory whose nodes register with `count` nameservers (the first one plus
    /// `count − 1` more, started with [`ClusterDir::start_more_nameserver`]).
    pub fn with_nameservers(count: usize) -> Self {
        let addr = |port| SocketAddr::new(LOOPBACK.parse().expect("loopback parses"), port);
        Self {
            more_nameservers: (1..count)
                .map(|_| (addr(free_port()), addr(free_port())))
                .collect(),
            ..Self::new()
        }
    }

    /// Every nameserver's HTTP base URL, the first one first.
    pub fn nameserver_urls(&self) -> Vec<String> {
        std::iter::once(self.nameserver_http)
            .chain(self.more_nameservers.iter().map(|(_, http)| *http))
            .map(|http| format!("{}://{http}", self.scheme()))
            .collect()
    }

    /// A directory whose nameserver and nodes serve HTTPS: a CA in `.tls` and certificates issued
    /// by `cluster-certs` for the nameserver (`.tls/nameserver`) and each node (`NODE_<id>/tls`, named
    /// in its config), exactly as `TLS=1 ./init.sh` does.
    pub fn with_tls() -> Self {
        let dir = Self {
            tls: true,
            ..Self::new()
        };
        dir.issue_certificate(&dir.path().join(".tls/nameserver"));
        dir
    }

    /// `https` or `http`: what the nameserver and the input nodes speak.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The nameserver's HTTP base URL, without a trailing slash.
    pub fn nameserver_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.nameserver_http)
    }

    /// The CA certificate (PEM) clients must trust to reach an HTTPS cluster.
    pub fn ca_certificate_path(&self) -> PathBuf {
        self.path().join(".tls/ca.pem")
    }

    /// A client builder for the cluster's HTTP sides: trusting the cluster's CA under TLS.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        if !self.tls {
            return builder;
        }
        let pem = std::fs::read(self.ca_certificate_path()).expect("the cluster's CA exists");
        builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).expect("the cluster's CA is a PEM certificate"),
        )
    }

    /// Runs `cluster-certs` as init.sh does: reuses (or makes) the CA in `.tls`, writes a certificate
    /// for 127.0.0.1 and localhost to `out`.
    fn issue_certificate(&self, out: &Path) {
        let status = Command::new(binary("cluster-certs"))
            .arg("--ca-dir")
            .arg(self.path().join(".tls"))
            .args(["--host", LOOPBACK, "--host", "localhost", "--out"])
            .arg(out)
            .stdout(Stdio::null())
            .status()
            .expect("cluster-certs runs");
        assert!(
            status.success(),
            "cluster-certs failed for {}",
            out.display()
        );
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's key, generated on first use and kept in `.cluster_key` as init.sh does, so the
    /// bootstrap, the nameserver and every node of the cluster share it: the services accept only
    /// registrations that prove it, and every node accepts the session cookies of every other.
    pub fn cluster_key(&self) -> String {
        let key_path = self.cluster_key_path();
        match std::fs::read_to_string(&key_path) {
            Ok(key) => key.trim().to_owned(),
            Err(_) => {
                let mut rng = rand::rng();
                let key: String = (0..64)
                    .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("a hex digit"))
                    .collect();
                std::fs::write(&key_path, &key).expect("the cluster key can be written");
                key
            }
        }
    }

    /// Where [`ClusterDir::cluster_key`] keeps the key (the services' `--cluster-key-file`).
    pub fn cluster_key_path(&self) -> PathBuf {
        self.path().join(".cluster_key")
    }

    /// The services' `--cluster-key-file` argument, the key made first if it is not yet.
    fn cluster_key_file(&self) -> String {
        self.cluster_key();
        self.cluster_key_path()
            .to_str()
            .expect("temp paths are UTF-8")
            .to_owned()
    }

    pub fn start_bootstrap(&self) -> Process {
        let state = self.path().join("bootstrap.json");
        Process::spawn(
            "bootstrap",
            &binary("bootstrap"),
            &[
                "--listen",
                &self.bootstrap.to_string(),
                "--state",
                state.to_str().expect("temp paths are UTF-8"),
                "--cluster-key-file",
                &self.cluster_key_file(),
            ],
        )
    }

    pub fn start_nameserver(&self) -> Process {
        self.start_nameserver_at(self.nameserver_grpc, self.nameserver_http, "nameserver")
    }

    /// Starts the `index`-th of [`ClusterDir::with_nameservers`]'s additional nameservers.
    pub fn start_more_nameserver(&self, index: usize) -> Process {
        let (grpc, http) = self.more_nameservers[index];
        self.start_nameserver_at(grpc, http, &format!("nameserver{}", index + 2))
    }

    fn start_nameserver_at(&self, grpc: SocketAddr, http: SocketAddr, name: &str) -> Process {
        let mut args = vec![
            "--grpc".to_owned(),
            grpc.to_string(),
            "--http".to_owned(),
            http.to_string(),
            "--bootstrap".to_owned(),
            self.bootstrap.to_string(),
            "--cluster-key-file".to_owned(),
            self.cluster_key_file(),
        ];
        if self.tls {
            let tls = self.path().join(".tls/nameserver");
            for (flag, file) in [("--tls-cert", "cert.pem"), ("--tls-key", "key.pem")] {
                let path = tls.join(file);
                args.push(flag.to_owned());
                args.push(path.to_str().expect("temp paths are UTF-8").to_owned());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Process::spawn(name, &binary("nameserver"), &args)
    }

    /// Writes `NODE_<id>/.cfg` with fresh free ports.
    pub fn write_node_config(&self, id: u64) -> NodeSpec {
        // Above Linux's ephemeral range (32768–60999), where outgoing connections cannot take them.
        let control_port = free_port_in(61000..=65535);
        let data_port = free_port_in(61000..=65535);
        let spec = NodeSpec {
            id,
            control_port,
            data_port,
            http_port: free_port(),
            admin_port: free_port(),
            config_path: self.path().join(format!("NODE_{id}/.cfg")),
        };
        let cluster_key = self.cluster_key();
        let quoted = |values: Vec<String>| {
            let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let grpc: Vec<String> = std::iter::once(self.nameserver_grpc)
            .chain(self.more_nameservers.iter().map(|(grpc, _)| *grpc))
            .map(|addr| addr.to_string())
            .collect();
        let text = format!(
            "id = {id}\nhost = \"{LOOPBACK}\"\ncontrol_port = {}\ndata_port = {}\nhttp_port = {}\n\
             admin_port = {}\nbootstrap = \"{}\"\nnameserver = {}\nnameserver_http = {}\ndata_dir = \"data\"\nlog_dir = \"logs\"\n\
             cluster_key = \"{cluster_key}\"\n",
            spec.control_port,
            spec.data_port,
            spec.http_port,
            spec.admin_port,
            self.bootstrap,
            quoted(grpc),
            // Where a page goes when its input node dies.
            quoted(self.nameserver_urls()),
        );
        let folder = spec.config_path.parent().expect("config has a folder");
        std::fs::create_dir_all(folder).expect("node folder can be created");
        let text = if self.tls {
            self.issue_certificate(&folder.join("tls"));
            format!("{text}tls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n")
        } else {
            text
        };
        std::fs::write(&spec.config_path, text).expect("config can be written");
        spec
    }

    pub fn start_node(&self, spec: &NodeSpec) -> Process {
        Process::spawn(
            format!("NODE_{}", spec.id),
            &binary("cluster-node"),
            &[spec.config_path.to_str().expect("temp paths are UTF-8")],
        )
    }
}

impl Default for ClusterDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `url` until `accept` holds for its JSON body, or panics after `timeout` with the last answer.
pub async fn wait_for_json(
    url: &str,
    timeout: Duration,
    accept: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a plain HTTP client builds");
    let deadline = Instant::now() + timeout;
    loop {
        let last = match client.get(url).send().await {
            Ok(response) => match response.json::<serde_json::Value>().await {
                Ok(json) if accept(&json) => return json,
                Ok(json) => json.to_string(),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            panic!("{url} did not give the expected answer within {timeout:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
