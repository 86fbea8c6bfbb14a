//! A chat workload for fault-injection scenarios: K users post uniquely identified messages to G
//! groups they all belong to while a scenario breaks the cluster, and the final outcome of every
//! message is recorded so that [`crate::checker`] can prove nothing acknowledged was lost.
//!
//! ```text
//!   client k ──POST {"content":"w{k}-{seq}","client_id":"cid-w{k}-{seq}"}──► an input node
//!      │  201 ............................ Ok { id, epoch }            (recorded, next message)
//!      │  502/503/504 (Retry-After, ≤ 1 s)  ┐
//!      │  timeout, connection refused       ├ retry the SAME message until its deadline,
//!      │  401 (node does not know the       │ moving to another live input node when its own
//!      │       session: log in again)       ┘ stops answering
//!      │  any other status ............... Failed(status)             (final)
//!      └─ deadline passed ................ the last answer: Failed(503) or Unknown
//! ```
//!
//! A message whose first attempt timed out and whose retry was acknowledged is `Ok`: the same
//! `client_id` makes the retry return the first copy. `Failed` and `Unknown` promise nothing either
//! way (a 503 may come after a commit), so the checker allows them to be present or absent.
//!
//! The users, groups and per-client sequence numbers live in [`Workload`], so one workload can run
//! several times against the same cluster (the soak) and its messages stay unique across runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;

/// Every workload user's password.
pub const PASSWORD: &str = "correct horse battery";

/// How the workload behaves; the defaults suit a 5-node debug cluster on a 2-core machine.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Concurrent clients, each its own user.
    pub clients: usize,
    /// Groups every user belongs to; each client posts to them round-robin.
    pub groups: usize,
    /// Pause after each message, so the load leaves the cluster's timers some CPU.
    pub pause: Duration,
    /// Longest wait for one HTTP answer.
    pub request_timeout: Duration,
    /// How long one message is retried before its last answer becomes its outcome.
    pub message_deadline: Duration,
    /// Cap on the `Retry-After` a client honours.
    pub max_retry_wait: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            clients: 4,
            groups: 3,
            pause: Duration::from_millis(10),
            request_timeout: Duration::from_secs(4),
            message_deadline: Duration::from_secs(15),
            max_retry_wait: Duration::from_secs(1),
        }
    }
}

/// A workload user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub tag: String,
}

/// A group every workload user belongs to.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// The final outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201: acknowledged, so it must never be lost.
    Ok { id: String, epoch: u64 },
    /// The last answer was this HTTP error status.
    Failed(u16),
    /// The last attempt timed out or could not connect.
    Unknown,
}

/// One message the workload tried to post, with its final outcome.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    pub seq: u64,
    /// The group's id.
    pub group: String,
    /// The sender's username.
    pub sender: String,
    pub content: String,
    pub client_id: String,
    pub outcome: Outcome,
    pub attempts: u32,
    pub started: Instant,
    pub finished: Instant,
    /// The input node that gave the last answer.
    pub node: String,
}

impl Record {
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }
}

/// Where clients look for live input nodes: the nameserver's list, then every node's `/status`.
#[derive(Debug, Clone)]
pub struct Directory {
    nameserver: String,
    status_urls: Vec<String>,
    http: reqwest::Client,
}

impl Directory {
    pub fn of(cluster: &Cluster) -> Self {
        Self {
            nameserver: cluster.nameserver_url(),
            status_urls: cluster
                .live_ids()
                .iter()
                .map(|&id| cluster.spec(id).admin_url("/status"))
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(800))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// Base URLs of the input nodes that look live now, without duplicates (nameserver's first).
    pub async fn input_urls(&self) -> Vec<String> {
        let listed = async {
            let Ok(response) = self
                .http
                .get(format!("{}/api/endpoints", self.nameserver))
                .send()
                .await
            else {
                return Vec::new();
            };
            let endpoints: Value = response.json().await.unwrap_or(Value::Null);
            endpoints
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|endpoint| endpoint["url"].as_str().map(base_url))
                .collect::<Vec<_>>()
        };
        let reported = futures::future::join_all(self.status_urls.iter().map(|url| async move {
            let status: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
            status["http"].as_str().map(base_url)
        }));
        let (listed, reported) = tokio::join!(listed, reported);
        let mut urls = Vec::new();
        for url in listed.into_iter().chain(reported.into_iter().flatten()) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }
}

fn base_url(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// What one HTTP attempt came to.
#[derive(Debug)]
enum Answer {
    Reply {
        status: u16,
        retry_after: Option<Duration>,
        epoch: Option<u64>,
        body: Value,
    },
    TimedOut,
    Unreachable,
}

/// What clients went through, counted over the workload's life.
#[derive(Debug, Default)]
struct Counters {
    switches: AtomicU64,
    relogins: AtomicU64,
    /// Message attempts answered 429/502/503/504.
    unavailable: AtomicU64,
    /// Message attempts that got no answer within the request timeout.
    timeouts: AtomicU64,
    /// Message attempts that could not connect (or lost the connection).
    unreachable: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> [u64; 5] {
        [
            &self.switches,
            &self.relogins,
            &self.unavailable,
            &self.timeouts,
            &self.unreachable,
        ]
        .map(|counter| counter.load(Ordering::Relaxed))
    }
}

/// One simulated user: a cookie jar, the input node it talks to and its next sequence number.
struct Client {
    index: usize,
    user: User,
    http: reqwest::Client,
    base: Mutex<String>,
    next_seq: AtomicU64,
    config: WorkloadConfig,
    directory: Directory,
    counters: Arc<Counters>,
}

impl Client {
    fn base(&self) -> String {
        self.base
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let base = self.base();
        let mut request = self
            .http
            .request(method.clone(), format!("{base}{path}"))
            .timeout(self.config.request_timeout);
        if method != Method::GET {
            request = request.header("origin", &base);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Answer::TimedOut,
            Err(_) => return Answer::Unreachable,
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        let retry_after = header("retry-after").map(Duration::from_secs);
        let epoch = header("x-chat-epoch");
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(bytes) => Answer::Reply {
                status,
                retry_after,
                epoch,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            },
            Err(error) if error.is_timeout() => Answer::TimedOut,
            Err(_) => Answer::Unreachable,
        }
    }

    /// Moves to another live input node, if there is one; answers whether it moved.
    async fn switch_node(&self) -> bool {
        let current = self.base();
        let others: Vec<String> = self
            .directory
            .input_urls()
            .await
            .into_iter()
            .filter(|url| *url != current)
            .collect();
        if others.is_empty() {
            return false;
        }
        let turn = self.counters.switches.fetch_add(1, Ordering::Relaxed) as usize;
        let next = others[(self.index + turn) % others.len()].clone();
        *self.base.lock().unwrap_or_else(PoisonError::into_inner) = next;
        true
    }

    fn retry_wait(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(Duration::from_millis(200))
            .min(self.config.max_retry_wait)
    }

    /// Sends until a 2xx, riding out what a failover explains (502/503/504, 429, timeouts, lost
    /// connections, a node that does not know the session) until `deadline`. For setup steps.
    async fn until_done(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
        relogin: bool,
    ) -> Result<Value, String> {
        let mut last = String::new();
        while Instant::now() < deadline {
            let wait = match self.call(method.clone(), path, body).await {
                Answer::Reply {
                    status: 200..=299,
                    body,
                    ..
                } => return Ok(body),
                Answer::Reply { status: 401, .. } if relogin => {
                    self.log_in(deadline).await?;
                    Duration::ZERO
                }
                Answer::Reply {
                    status: status @ (429 | 502..=504),
                    retry_after,
                    body,
                    ..
                } => {
                    last = format!("{status} {body}");
                    self.retry_wait(retry_after)
                }
                Answer::Reply { status, body, .. } => {
                    return Err(format!(
                        "{method} {path} on {}: {status} {body}",
                        self.base()
                    ));
                }
                Answer::TimedOut | Answer::Unreachable => {
                    last = format!("{} does not answer", self.base());
                    self.switch_node().await;
                    Duration::from_millis(200)
                }
            };
            tokio::time::sleep(wait).await;
        }
        Err(format!(
            "{method} {path} did not succeed in time; last: {last}"
        ))
    }

    async fn log_in(&self, deadline: Instant) -> Result<(), String> {
        let body = json!({
            "username": self.user.username,
            "tag": self.user.tag,
            "password": PASSWORD,
        });
        self.counters.relogins.fetch_add(1, Ordering::Relaxed);
        Box::pin(self.until_done(Method::POST, "/api/login", Some(&body), deadline, false))
            .await
            .map(|_| ())
    }

    /// Posts one message until it is acknowledged, refused, or its deadline passes.
    async fn send(&self, group: &Group, seq: u64) -> Record {
        let content = format!("w{}-{seq}", self.index);
        let client_id = format!("cid-w{}-{seq}", self.index);
        let path = format!("/api/groups/{}/messages", group.id);
        let body = json!({ "content": content, "client_id": client_id });
        let started = Instant::now();
        let deadline = started + self.config.message_deadline;
        let mut attempts = 0;
        let mut unavailable_in_a_row = 0;
        let outcome = loop {
            attempts += 1;
            let (last, wait) = match self.call(Method::POST, &path, Some(&body)).await {
                Answer::Reply {
                    status: 201,
                    epoch,
                    body,
                    ..
                } => {
                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                    let epoch = body["epoch"].as_u64().or(epoch).unwrap_or_default();
                    break Outcome::Ok { id, epoch };
                }
                Answer::Reply { status: 401, .. } => {
                    // Cookies are cluster-signed, so this node should know the session; if it
                    // does not (counted in the report), log in here as a user would.
                    let _ = self.log_in(deadline).await;
                    (Outcome::Failed(401), Duration::from_millis(100))
                }
                Answer::Reply {
                    status: status @ (429 | 502..=504),
                    retry_after,
                    ..
                } => {
                    // A node in a minority answers 503 for as long as the split lasts: after a few in
                    // a row, try another input node, as a user reloading the page would.
                    unavailable_in_a_row += 1;
                    self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                    if unavailable_in_a_row % 3 == 0 {
                        self.switch_node().await;
                    }
                    (Outcome::Failed(status), self.retry_wait(retry_after))
                }
                Answer::Reply { status, .. } => break Outcome::Failed(status),
                answer @ (Answer::TimedOut | Answer::Unreachable) => {
                    let counter = match answer {
                        Answer::TimedOut => &self.counters.timeouts,
                        _ => &self.counters.unreachable,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.switch_node().await;
                    (Outcome::Unknown, Duration::from_millis(100))
                }
            };
            if Instant::now() + wait >= deadline {
                break last;
            }
            tokio::time::sleep(wait).await;
        };
        Record {
            client: self.index,
            seq,
            group: group.id.clone(),
            sender: self.user.username.clone(),
            content,
            client_id,
            outcome,
            attempts,
            started,
            finished: Instant::now(),
            node: self.base(),
        }
    }
}

/// Users signed up and groups created once; [`Workload::start`] runs the clients.
pub struct Workload {
    clients: Vec<Arc<Client>>,
    groups: Vec<Group>,
    counters: Arc<Counters>,
    pause: Duration,
}

impl Workload {
    /// Signs up `config.clients` users (`w0`, `w1`, …) spread over the input nodes, has `w0` create
    /// `config.groups` groups and add everyone. Panics if the cluster cannot do this within a minute.
    pub async fn prepare(cluster: &Cluster, config: WorkloadConfig) -> Self {
        assert!(config.clients >= 1 && config.groups >= 1);
        let directory = Directory::of(cluster);
        let deadline = Instant::now() + Duration::from_secs(60);
        let inputs = loop {
            let inputs = directory.input_urls().await;
            if !inputs.is_empty() {
                break inputs;
            }
            assert!(
                Instant::now() < deadline,
                "no input node to prepare the workload on"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let counters = Arc::new(Counters::default());
        let mut clients = Vec::new();
        for index in 0..config.clients {
            let username = format!("w{index}");
            let mut client = Client {
                index,
                user: User {
                    id: String::new(),
                    username: username.clone(),
                    tag: String::new(),
                },
                http: reqwest::Client::builder()
                    .cookie_store(true)
                    .build()
                    .expect("an HTTP client with cookies builds"),
                base: Mutex::new(inputs[index % inputs.len()].clone()),
                next_seq: AtomicU64::new(0),
                config: config.clone(),
                directory: directory.clone(),
                counters: counters.clone(),
            };
            let registered = client
                .until_done(
                    Method::POST,
                    "/api/register",
                    Some(&json!({"username": username, "password": PASSWORD})),
                    deadline,
                    false,
                )
                .await
                .unwrap_or_else(|error| panic!("signing up {username}: {error}"));
            client.user.id = registered["id"].as_str().unwrap_or_default().to_owned();
            client.user.tag = registered["tag"].as_str().unwrap_or_default().to_owned();
            client
                .log_in(deadline)
                .await
                .unwrap_or_else(|error| panic!("logging in {username}: {error}"));
            clients.push(Arc::new(client));
        }
        let owner = &clients[0];
        let mut groups = Vec::new();
        for number in 0..config.groups {
            let name = format!("g{number}");
            let created = owner
                .until_done(
                    Method::POST,
                    "/api/groups",
                    Some(&json!({ "name": name })),
                    deadline,
                    true,
                )
                .await
                .unwrap_or_else(|error| panic!("creating group {name}: {error}"));
            let id = created["id"].as_str().unwrap_or_default().to_owned();
            for member in &clients[1..] {
                let body = json!({"username": member.user.username, "tag": member.user.tag});
                owner
                    .until_done(
                        Method::POST,
                        &format!("/api/groups/{id}/members"),
                        Some(&body),
                        deadline,
                        true,
                    )
                    .await
                    .unwrap_or_else(|error| panic!("adding a member to {name}: {error}"));
            }
            groups.push(Group { id, name });
        }
        Self {
            clients,
            groups,
            counters,
            pause: config.pause,
        }
    }

    pub fn users(&self) -> Vec<User> {
        self.clients
            .iter()
            .map(|client| client.user.clone())
            .collect()
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Starts every client in a background task; [`RunningWorkload::stop`] collects the records.
    pub fn start(&self) -> RunningWorkload {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = self
            .clients
            .iter()
            .map(|client| {
                let (client, stop, groups) = (client.clone(), stop.clone(), self.groups.clone());
                let pause = self.pause;
                tokio::spawn(async move {
                    let mut records = Vec::new();
                    let mut turn = client.index;
                    while !stop.load(Ordering::Relaxed) {
                        let seq = client.next_seq.fetch_add(1, Ordering::Relaxed);
                        records.push(client.send(&groups[turn % groups.len()], seq).await);
                        turn += 1;
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    records
                })
            })
            .collect();
        RunningWorkload {
            stop,
            tasks,
            started: Instant::now(),
            counters: self.counters.clone(),
            before: self.counters.snapshot(),
        }
    }
}

/// Clients posting in the background.
pub struct RunningWorkload {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Record>>>,
    started: Instant,
    counters: Arc<Counters>,
    before: [u64; 5],
}

impl RunningWorkload {
    /// Lets every client finish the message it is on (bounded by its deadline) and returns all records.
    pub async fn stop(self) -> WorkloadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut records = Vec::new();
        for task in self.tasks {
            records.extend(task.await.expect("a workload client does not panic"));
        }
        records.sort_by_key(|record| record.started);
        let now = self.counters.snapshot();
        let [switches, relogins, unavailable, timeouts, unreachable] =
            [0, 1, 2, 3, 4].map(|at| now[at] - self.before[at]);
        WorkloadReport {
            records,
            started: self.started,
            stopped: Instant::now(),
            switches,
            relogins,
            unavailable,
            timeouts,
            unreachable,
        }
    }
}

/// Everything one run of the workload did.
#[derive(Debug, Clone)]
pub struct WorkloadReport {
    pub records: Vec<Record>,
    pub started: Instant,
    pub stopped: Instant,
    /// Times a client moved to another input node.
    pub switches: u64,
    /// Times a client had to log in again (its node did not know its session).
    pub relogins: u64,
    /// Retried message attempts, by cause: 429/502/503/504, no answer in time, no connection.
    pub unavailable: u64,
    pub timeouts: u64,
    pub unreachable: u64,
}

impl WorkloadReport {
    pub fn ok(&self) -> usize {
        self.records.iter().filter(|record| record.is_ok()).count()
    }

    pub fn failed_by_status(&self) -> BTreeMap<u16, usize> {
        let mut failed = BTreeMap::new();
        for record in &self.records {
            if let Outcome::Failed(status) = record.outcome {
                *failed.entry(status).or_default() += 1;
            }
        }
        failed
    }

    pub fn unknown(&self) -> usize {
        let unknown = |record: &&Record| record.outcome == Outcome::Unknown;
        self.records.iter().filter(unknown).count()
    }

    /// The longest stretch without any acknowledged write (what clients saw as unavailability), and
    /// when it began, counted from the start of the run.
    pub fn longest_unavailability(&self) -> (Duration, Duration) {
        let mut acknowledged: Vec<Instant> = self
            .records
            .iter()
            .filter(|record| record.is_ok())
            .map(|record| record.finished)
            .collect();
        acknowledged.sort();
        let mut previous = self.started;
        let mut longest = (Duration::ZERO, Duration::ZERO);
        for at in acknowledged.into_iter().chain([self.stopped]) {
            let gap = at.saturating_duration_since(previous);
            if gap > longest.0 {
                longest = (gap, previous.saturating_duration_since(self.started));
            }
            previous = at;
        }
        longest
    }
}

impl fmt::Display for WorkloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (gap, from) = self.longest_unavailability();
        write!(
            f,
            "workload: {} messages in {:.1?}: {} ok, failed {:?}, {} unknown; longest stretch \
             without a successful write {:.2?} (from +{:.1?}); retried after {} unavailable, {} timed \
             out, {} unreachable; {} node switches, {} logins again",
            self.records.len(),
            self.stopped - self.started,
            self.ok(),
            self.failed_by_status(),
            self.unknown(),
            gap,
            from,
            self.unavailable,
            self.timeouts,
            self.unreachable,
            self.switches,
            self.relogins,
        )
    }
}
