//! Shared by the tests: a started cluster with two input nodes, one `chat` user per config folder, the
//! binary run to completion or kept running with its output collected line by line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;

pub const CONVERGE: Duration = Duration::from_secs(20);
/// How long a message may take from a post to a screen or a tail.
pub const DELIVERY: Duration = Duration::from_secs(10);
pub const PASSWORD: &str = "correct horse battery";

/// An input node: its id and base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNode {
    pub id: u64,
    pub url: String,
}

/// A cluster of five nodes whose nameserver hands out at least two input nodes, and those nodes.
pub async fn spawn_cluster() -> (Cluster, Vec<InputNode>) {
    let cluster = Cluster::start_in_order(5).await;
    let ids = cluster.live_ids();
    cluster.wait_for_tree(&ids, CONVERGE).await;
    cluster.wait_for_writer(&ids, CONVERGE).await;
    let inputs = wait_for_inputs(&cluster, 2).await;
    (cluster, inputs)
}

async fn wait_for_inputs(cluster: &Cluster, count: usize) -> Vec<InputNode> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client builds");
    let endpoints = format!("{}/api/endpoints", cluster.nameserver_url());
    let deadline = Instant::now() + CONVERGE;
    loop {
        let listed: Vec<InputNode> = match http.get(&endpoints).send().await {
            Ok(response) => response
                .json::<Value>()
                .await
                .ok()
                .and_then(|body| body.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|endpoint| {
                    Some(InputNode {
                        id: endpoint["id"].as_u64()?,
                        url: endpoint["url"].as_str()?.trim_end_matches('/').to_owned(),
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if listed.len() >= count {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {count} input nodes listed within {CONVERGE:?}: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One user of the `chat` binary: a config folder of its own.
pub struct User {
    pub handle: String,
    nameserver: String,
    config: tempfile::TempDir,
}

impl User {
    /// Registers `name` with `chat register` and logs in with `chat login`.
    pub fn sign_up(cluster: &Cluster, name: &str) -> User {
        User::sign_up_through(&cluster.nameserver_url(), name)
    }

    /// [`User::sign_up`] entering through `nameservers` (the `--nameserver` list).
    pub fn sign_up_through(nameservers: &str, name: &str) -> User {
        let mut user = User::unregistered(nameservers);
        let registered = user.run_with_input(&["register", name, "--password-stdin"], PASSWORD);
        let handle = success(&registered).trim().to_owned();
        assert!(
            handle.starts_with(&format!("{name}#")) && handle.len() == name.len() + 5,
            "register prints name#tag: {handle:?}"
        );
        user.handle = handle.clone();
        let login = user.run_with_input(&["login", &handle, "--password-stdin"], PASSWORD);
        assert!(
            success(&login).starts_with(&format!("logged in as {handle}")),
            "{login:?}"
        );
        user
    }

    /// A user with an empty config folder, entering through `nameserver`.
    pub fn unregistered(nameserver: &str) -> User {
        User {
            handle: String::new(),
            nameserver: nameserver.to_owned(),
            config: tempfile::tempdir().expect("a config folder"),
        }
    }

    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// The arguments every run gets: this user's folder and the cluster's nameserver.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--nameserver".into(),
            self.nameserver.clone(),
            "--config-dir".into(),
            self.config_dir().to_str().expect("UTF-8 temp path").into(),
        ]
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
        command
            .args(self.base_args())
            .args(args)
            .env_remove("CHAT_NAMESERVER")
            .env_remove("CHAT_CONFIG_DIR");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chat starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        // A run that fails before reading its input (a usage error) closes the pipe first.
        let _ = writeln!(stdin, "{input}");
        drop(stdin);
        child.wait_with_output().expect("chat runs")
    }

    /// `chat <args>` kept running, its stdout and stderr read line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chat starts");
        let (sender, lines) = mpsc::channel();
        for (stream, pipe) in [
            (
                Stream::Out,
                Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            ),
            (Stream::Err, Box::new(child.stderr.take().expect("piped"))),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    if sender.send((stream, line, Instant::now())).is_err() {
                        return;
                    }
                }
            });
        }
        Running { child, lines }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// A `chat` process still running; killed when dropped.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<(Stream, String, Instant)>,
}

impl Running {
    /// The next line of either stream, with when it arrived, or `None` after `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<(Stream, String, Instant)> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for a stderr line containing `text`; stdout lines met on the way are returned with it.
    pub fn wait_for_stderr(
        &self,
        text: &str,
        timeout: Duration,
    ) -> (String, Vec<(String, Instant)>) {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some((Stream::Err, line, _)) if line.contains(text) => return (line, out),
                Some((Stream::Err, line, _)) => errors.push(line),
                Some((Stream::Out, line, at)) => out.push((line, at)),
                None => panic!(
                    "no stderr line with {text:?} within {timeout:?} (or chat ended); \
                     stderr: {errors:?}"
                ),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// stdout of a run that must have succeeded.
pub fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "chat failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A JSON-API client for posting from "another device", signed in as `handle` on `node`.
pub async fn api_client(node: &InputNode, handle: &str) -> ChatClient {
    let (username, tag) = handle.split_once('#').expect("name#tag");
    let client = ChatClient::new(&node.url);
    let login = client
        .post(
            "/api/login",
            json!({"username": username, "tag": tag, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "login {handle}: {login:?}");
    client
}

/// Posts `content` to group `group` through `client` until the cluster takes it, the same `client_id`
/// every time so it is stored once; answers the stored message.
pub async fn post_once(client: &ChatClient, group: &str, content: &str) -> Value {
    let body =
        json!({"content": content, "client_id": format!("test-{}", content.replace(' ', "-"))});
    let deadline = Instant::now() + DELIVERY;
    loop {
        let reply = client
            .post(&format!("/api/groups/{group}/messages"), body.clone())
            .await;
        if reply.status == 201 {
            return reply.body;
        }
        assert!(
            reply.status >= 500,
            "posting {content:?} was refused: {reply:?}"
        );
        assert!(
            Instant::now() < deadline,
            "posting {content:?} kept failing: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates group `name` as `owner` with `members`, through the binary; answers its id.
pub fn group_with(owner: &User, name: &str, members: &[&User]) -> String {
    let created = success(&owner.run(&["new-group", name]));
    let id = created
        .split_whitespace()
        .next()
        .expect("new-group prints the id")
        .to_owned();
    for member in members {
        success(&owner.run(&["invite", name, &member.handle]));
    }
    // A member's node is a copy that learns of the membership a moment later; until then the group is
    // unknown to them there.
    for member in members {
        let deadline = Instant::now() + DELIVERY;
        while !success(&member.run(&["groups"])).contains(&id) {
            assert!(
                Instant::now() < deadline,
                "{} never saw group {name}",
                member.handle
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    id
}

/// Polls `check` until it answers something, for at most [`DELIVERY`].
pub fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + DELIVERY;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {DELIVERY:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
