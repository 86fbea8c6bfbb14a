//! The way into the cluster: an input node found through the nameserver, the session cookie carried to
//! whichever node serves, and a move to another node when this one stops answering.
//!
//! ```text
//!   nameserver ── GET /api/endpoints ──► live input nodes [{id, url}]
//!       ▲                                     │ pick one not seen failing just now
//!       │ ask again                           ▼
//!   node refused, timed out,          Connection ── Cookie, Origin ──► input node
//!   busy (503) for too long                    ◄── Set-Cookie, X-Chat-Epoch (kept)
//! ```
//!
//! Why `/api/endpoints` and not the nameserver's redirect: after a node dies the nameserver keeps
//! handing it out until its prober notices (about a quarter of a second), and a single redirect cannot
//! say "not that one". The list can be filtered by the nodes this client just saw fail; a random pick
//! among the rest spreads clients as the nameserver's round-robin does.
//!
//! Why the cookie is kept by hand: a cookie jar scopes the session to the host that set it, and input
//! nodes may live on different hosts. The cookie is signed with the cluster key and valid on every
//! input node (see the node's `web/session.rs`), so the client sends it to whichever node it uses,
//! except a `Secure` one to a plain-HTTP node.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use reqwest::header::{COOKIE, HeaderMap, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ClientError;
use crate::session::{SavedSession, SessionCookie};

/// The live stream: read without an overall timeout, for as long as it is followed.
const EVENTS_PATH: &str = "/api/events";
/// The session cookie's name on every node.
const COOKIE_NAME: &str = "chat_session";

/// The cookie that carries the highest epoch the client has seen (the server reads it, unsigned).
const EPOCH_COOKIE: &str = "chat_epoch";
/// Loopback or a LAN answers a connect in well under this; longer means the node is gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One API call; a write waits for a quorum of voters, which takes milliseconds when there is one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node that failed is passed over; long enough to outlast the nameserver's notice of a
/// dead node, short enough that a restarted node gets clients again.
const AVOID_FOR: Duration = Duration::from_secs(5);
/// How long a node answering 503 (changing role, no writer) is retried before trying another.
const BUSY_PATIENCE: Duration = Duration::from_secs(3);
const BUSY_PAUSE: Duration = Duration::from_millis(250);
const NAMESERVER_PAUSE: Duration = Duration::from_millis(100);
/// How long a nameserver that refuses or ignores connections is asked again: long enough for a quick
/// restart, short enough that a wrong `--nameserver` is reported at once rather than after `patience`.
const NAMESERVER_PATIENCE: Duration = Duration::from_secs(3);

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// The nameservers' HTTP base URLs, in the order to try them.
    pub nameservers: Vec<String>,
    /// A PEM CA certificate to trust for HTTPS clusters (their own CA, as `TLS=1 ./init.sh` makes).
    pub ca_certificate: Option<std::path::PathBuf>,
    /// How long one operation keeps looking for a node that answers.
    pub patience: Duration,
}

/// An input node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: Option<u64>,
    /// Base URL without a trailing slash.
    pub url: String,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) => write!(f, "node {id} ({})", self.url),
            None => write!(f, "{}", self.url),
        }
    }
}

/// Status and JSON body (`Null` when there is none) of an API answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Whether a request may be sent again after it may have reached the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes the server recognises when repeated (sends with a `client_id`, login).
    Always,
    /// Only when it surely never arrived (the connection was refused): registering twice would make
    /// two accounts.
    IfUnsent,
}

/// A handle on the cluster shared by every task of one client (commands, the live feed, the TUI).
#[derive(Clone)]
pub struct Connection {
    calls: reqwest::Client,
    streams: reqwest::Client,
    nameservers: Arc<[String]>,
    patience: Duration,
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    session: SavedSession,
    current: Option<Node>,
    avoided: Vec<(String, Instant)>,
    /// The nameserver that answered last: asked first next time, so a dead one costs one failed
    /// connection once rather than on every call.
    nameserver: usize,
}

#[derive(Deserialize)]
struct Endpoint {
    id: u64,
    url: String,
}

impl Connection {
    pub fn new(options: &Options, session: SavedSession) -> Result<Connection, ClientError> {
        let builder = || -> Result<reqwest::ClientBuilder, ClientError> {
            // The API never redirects; following one would carry the session elsewhere.
            let mut builder = reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none());
            if let Some(path) = &options.ca_certificate {
                builder = builder.add_root_certificate(read_certificate(path)?);
            }
            Ok(builder)
        };
        let built = |result: reqwest::Result<reqwest::Client>| {
            result.map_err(|error| ClientError::Local(format!("HTTP client: {error}")))
        };
        Ok(Connection {
            calls: built(builder()?.timeout(REQUEST_TIMEOUT).build())?,
            // A stream lives as long as it is followed; its silence is judged by the reader.
            streams: built(builder()?.build())?,
            nameservers: options
                .nameservers
                .iter()
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty())
                .collect(),
            patience: options.patience,
            shared: Arc::new(Mutex::new(Shared {
                session,
                current: None,
                avoided: Vec::new(),
                nameserver: 0,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The session as it stands now, to be saved.
    pub fn session(&self) -> SavedSession {
        self.lock().session.clone()
    }

    /// Records who the session belongs to (after a login).
    pub fn set_user(&self, handle: String, id: String) {
        let mut shared = self.lock();
        shared.session.user = Some(handle);
        shared.session.user_id = Some(id);
    }

    /// Drops the cookie and who it was for, whatever the cluster said about it.
    pub fn forget_session(&self) {
        let mut shared = self.lock();
        shared.session.cookie = None;
        shared.session.user = None;
        shared.session.user_id = None;
    }

    pub fn signed_in(&self) -> bool {
        self.lock().session.cookie.is_some()
    }

    /// The node in use, if one was chosen.
    pub fn current_node(&self) -> Option<Node> {
        self.lock().current.clone()
    }

    /// The nameservers, in the order given.
    pub fn nameservers(&self) -> &[String] {
        &self.nameservers
    }

    /// Stops using `node` and passes it over for a while.
    pub fn fail(&self, node: &Node) {
        let mut shared = self.lock();
        if shared.current.as_ref() == Some(node) {
            shared.current = None;
        }
        shared.avoided.retain(|(url, _)| *url != node.url);
        shared.avoided.push((node.url.clone(), Instant::now()));
    }

    /// `GET` on a nameserver (`/cluster/state`, `/api/endpoints`): status and JSON body. The nameservers
    /// are asked in order, starting with the one that answered last; the first that answers at all
    /// (whatever its status) is the answer.
    pub async fn nameserver_get(&self, path: &str) -> Result<Reply, ClientError> {
        if self.nameservers.is_empty() {
            return Err(ClientError::Usage("no nameserver given".into()));
        }
        let first = self.lock().nameserver % self.nameservers.len();
        let mut problems = Vec::new();
        for index in (0..self.nameservers.len()).map(|k| (first + k) % self.nameservers.len()) {
            let nameserver = &self.nameservers[index];
            match self
                .calls
                .get(format!("{nameserver}{path}"))
                .timeout(CONNECT_TIMEOUT * 2)
                .send()
                .await
            {
                Ok(response) => {
                    self.lock().nameserver = index;
                    let status = response.status().as_u16();
                    let body = response.json().await.unwrap_or(Value::Null);
                    return Ok(Reply { status, body });
                }
                Err(error) => problems.push(format!("{nameserver}: {}", describe(&error))),
            }
        }
        let noun = if self.nameservers.len() == 1 {
            "the nameserver does not answer"
        } else {
            "no nameserver answers"
        };
        Err(ClientError::Unreachable(format!(
            "{noun} ({})",
            problems.join("; ")
        )))
    }

    /// One API call on some input node, moving to another when it fails (see [`Retry`]).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Reply, ClientError> {
        let (_, response) = self.send(&method, path, body, None, retry).await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// [`Connection::call`] that wants a success: 401 and other errors become [`ClientError`]s.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Value, ClientError> {
        let reply = self.call(method, path, body, retry).await?;
        self.success(reply)
    }

    /// The body of a 2xx answer, else the error it means.
    pub fn success(&self, reply: Reply) -> Result<Value, ClientError> {
        match reply.status {
            200..=299 => Ok(reply.body),
            401 if self.signed_in() => Err(ClientError::SessionEnded),
            401 => Err(ClientError::NotLoggedIn),
            status => Err(ClientError::Api {
                status,
                message: reply.body["error"]
                    .as_str()
                    .unwrap_or("unexpected answer")
                    .to_owned(),
            }),
        }
    }

    /// Opens `GET /api/events` resuming after `after` (nothing missed, nothing repeated).
    pub async fn open_events(
        &self,
        after: Option<u64>,
    ) -> Result<(Node, reqwest::Response), ClientError> {
        let (node, response) = self
            .send(&Method::GET, EVENTS_PATH, None, after, Retry::Always)
            .await?;
        if response.status() == StatusCode::OK {
            return Ok((node, response));
        }
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        self.success(Reply { status, body })?;
        Err(ClientError::Api {
            status,
            message: "the event stream did not open".into(),
        })
    }

    /// Sends on the current node, moving on when it does not answer or stays busy; answers the first
    /// response that is not a 503.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        last_event_id: Option<u64>,
        retry: Retry,
    ) -> Result<(Node, reqwest::Response), ClientError> {
        let deadline = Instant::now() + self.patience;
        let mut busy: Option<(Node, Instant)> = None;
        let mut problem = String::from("no input node answered");
        loop {
            if Instant::now() >= deadline {
                return Err(ClientError::Unreachable(problem));
            }
            let node = self.node(deadline).await?;
            let client = if path == EVENTS_PATH {
                &self.streams
            } else {
                &self.calls
            };
            let mut request = client
                .request(method.clone(), format!("{}{path}", node.url))
                .header(ORIGIN, &node.url);
            if let Some(cookie) = self.cookie_for(&node) {
                request = request.header(COOKIE, cookie);
            }
            if let Some(epoch) = last_event_id {
                request = request.header("last-event-id", epoch.to_string());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Err(error) => {
                    problem = format!("{node}: {}", describe(&error));
                    self.fail(&node);
                    if retry == Retry::IfUnsent && !error.is_connect() {
                        return Err(ClientError::Unreachable(format!(
                            "{problem}; it may or may not have been done"
                        )));
                    }
                }
                Ok(response) => {
                    self.absorb(response.headers());
                    if response.status() != StatusCode::SERVICE_UNAVAILABLE {
                        return Ok((node, response));
                    }
                    let message = response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|body| body["error"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "not serving right now".into());
                    problem = format!("{node}: {message} (503)");
                    if retry == Retry::IfUnsent {
                        return Err(ClientError::Api {
                            status: 503,
                            message: format!("{message}; try again"),
                        });
                    }
                    let since = match &busy {
                        Some((busy_node, since)) if *busy_node == node => *since,
                        _ => {
                            let now = Instant::now();
                            busy = Some((node.clone(), now));
                            now
                        }
                    };
                    if since.elapsed() >= BUSY_PATIENCE {
                        self.fail(&node);
                    } else {
                        tokio::time::sleep(BUSY_PAUSE).await;
                    }
                }
            }
        }
    }

    /// The node in use, or one the nameserver lists, preferring the one the session used last.
    async fn node(&self, deadline: Instant) -> Result<Node, ClientError> {
        if let Some(node) = self.current_node() {
            return Ok(node);
        }
        let asked = Instant::now();
        loop {
            let problem = match self.nameserver_get("/api/endpoints").await {
                Ok(reply) => {
                    let listed: Vec<Endpoint> =
                        serde_json::from_value(reply.body).unwrap_or_default();
                    if let Some(node) = self.pick(&listed) {
                        let mut shared = self.lock();
                        shared.session.node = Some(node.url.clone());
                        shared.current = Some(node.clone());
                        return Ok(node);
                    }
                    if listed.is_empty() {
                        "the nameserver lists no live input node".to_owned()
                    } else {
                        "every input node the nameserver lists failed just now".to_owned()
                    }
                }
                Err(ClientError::Unreachable(problem))
                    if asked.elapsed() >= NAMESERVER_PATIENCE =>
                {
                    return Err(ClientError::Unreachable(problem));
                }
                Err(ClientError::Unreachable(problem)) => problem,
                Err(other) => return Err(other),
            };
            if Instant::now() + NAMESERVER_PAUSE >= deadline {
                return Err(ClientError::Unreachable(problem));
            }
            tokio::time::sleep(NAMESERVER_PAUSE).await;
        }
    }

    fn pick(&self, listed: &[Endpoint]) -> Option<Node> {
        let mut shared = self.lock();
        shared
            .avoided
            .retain(|(_, since)| since.elapsed() < AVOID_FOR);
        let usable: Vec<&Endpoint> = listed
            .iter()
            .filter(|endpoint| {
                let url = endpoint.url.trim_end_matches('/');
                !shared.avoided.iter().any(|(avoided, _)| avoided == url)
            })
            .collect();
        let last = shared.session.node.as_deref();
        let chosen = usable
            .iter()
            .find(|endpoint| Some(endpoint.url.trim_end_matches('/')) == last)
            .or_else(|| usable.choose(&mut rand::rng()))?;
        Some(Node {
            id: Some(chosen.id),
            url: chosen.url.trim_end_matches('/').to_owned(),
        })
    }

    fn cookie_for(&self, node: &Node) -> Option<String> {
        let shared = self.lock();
        let cookie = shared.session.cookie.as_ref()?;
        // The epoch rides beside the session in a cookie of its own: the highest epoch this client
        // has seen, so copies answer it only with data at least that new.
        (!cookie.secure || node.url.starts_with("https://"))
            .then(|| format!("{}; {EPOCH_COOKIE}={}", cookie.pair, shared.session.epoch))
    }

    /// Keeps the cookie and the highest epoch an answer carries.
    fn absorb(&self, headers: &HeaderMap) {
        let mut shared = self.lock();
        if let Some(epoch) = headers
            .get("x-chat-epoch")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
        {
            shared.session.epoch = shared.session.epoch.max(epoch);
        }
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            if let Some(change) = parse_set_cookie(text) {
                shared.session.cookie = change;
            }
        }
    }
}

/// What a `Set-Cookie` line does to the session cookie: `None` when it is about another cookie,
/// `Some(None)` when it clears ours, `Some(Some(cookie))` when it sets it.
pub fn parse_set_cookie(line: &str) -> Option<Option<SessionCookie>> {
    let mut parts = line.split(';').map(str::trim);
    let pair = parts.next()?;
    let (name, value) = pair.split_once('=')?;
    if name.trim() != COOKIE_NAME {
        return None;
    }
    let mut secure = false;
    let mut cleared = value.trim().is_empty();
    for attribute in parts {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        match key.trim().to_ascii_lowercase().as_str() {
            "secure" => secure = true,
            "max-age" => cleared |= value.trim().parse::<i64>().is_ok_and(|age| age <= 0),
            _ => {}
        }
    }
    Some((!cleared).then(|| SessionCookie {
        pair: pair.to_owned(),
        secure,
    }))
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_connect() {
        "cannot connect".to_owned()
    } else if error.is_timeout() {
        "no answer in time".to_owned()
    } else {
        error.to_string()
    }
}

fn read_certificate(path: &Path) -> Result<reqwest::Certificate, ClientError> {
    let pem = std::fs::read(path)
        .map_err(|error| ClientError::Local(format!("{}: {error}", path.display())))?;
    reqwest::Certificate::from_pem(&pem).map_err(|error| {
        ClientError::Local(format!(
            "{}: not a PEM certificate ({error})",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_cookie_sets_or_clears_the_session_and_ignores_other_cookies() {
        let set = parse_set_cookie("chat_session=abc.def; Path=/; HttpOnly; SameSite=Lax; Secure");
        assert_eq!(
            set,
            Some(Some(SessionCookie {
                pair: "chat_session=abc.def".into(),
                secure: true
            }))
        );
        assert_eq!(
            parse_set_cookie("chat_session=; Path=/; Max-Age=0"),
            Some(None)
        );
        assert_eq!(parse_set_cookie("flash=x; Path=/"), None);
    }
}
