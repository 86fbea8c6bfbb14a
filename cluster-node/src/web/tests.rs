//! The web layer end to end: the router over a [`LocalService`] on an in-memory database, driven with
//! `oneshot` like a browser that keeps its session cookie (and one real listener for `serve`).

mod api;
mod conversations;
mod ephemeral;
mod events;
mod openapi;
mod pages;
mod presence;
mod security;
mod stats;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::service::{LocalService, ServiceOptions};
use crate::storage::Database;

use super::{EPOCH_HEADER, RateLimit, WebOptions, WebState, router};

pub(super) const PASSWORD: &str = "correct horse";

pub(super) struct TestApp {
    pub router: Router,
    pub state: WebState,
    pub serving: watch::Sender<bool>,
}

pub(super) fn test_options() -> WebOptions {
    WebOptions {
        keep_alive: Duration::from_millis(500),
        login_failures_per_user: RateLimit {
            max: 3,
            window: Duration::from_secs(60),
        },
        login_attempts_per_address: RateLimit {
            max: 100,
            window: Duration::from_secs(60),
        },
        nameservers: vec![super::NameserverLink::new("http://127.0.0.1:9999/")],
        ..WebOptions::default()
    }
}

pub(super) async fn spawn_app_with(options: WebOptions) -> TestApp {
    let database = Database::open_in_memory().await.expect("database");
    let service = LocalService::writer(database.clone(), ServiceOptions::for_tests());
    let (serving, serving_flag) = watch::channel(true);
    let analytics =
        crate::analytics::Analytics::alone(crate::analytics::Mapper::standalone(database));
    let state = WebState::new(service.clone(), service, serving_flag, options)
        .with_analytics(std::sync::Arc::new(analytics));
    TestApp {
        router: router(state.clone()),
        state,
        serving,
    }
}

pub(super) async fn spawn_app() -> TestApp {
    spawn_app_with(test_options()).await
}

/// A response, read whole.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `{"error"}` message of an API error.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {}", self.text()))
            .to_owned()
    }

    /// `name=value` of the session cookie this answer sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("chat_session="))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned)
    }

    /// `name=value` of the epoch cookie this answer sets (the highest epoch the client has seen).
    pub fn epoch_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("chat_epoch=") && !value.starts_with("chat_epoch=;"))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned)
    }

    /// `name=value` of the one-shot flash cookie this answer sets (a failed form's redirect).
    pub fn flash_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("chat_flash=") && !value.starts_with("chat_flash=;"))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned)
    }

    /// Whether this answer clears the flash cookie (the page that showed it).
    pub fn clears_flash(&self) -> bool {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.starts_with("chat_flash=;"))
    }

    pub fn epoch(&self) -> u64 {
        self.headers
            .get(EPOCH_HEADER)
            .unwrap_or_else(|| panic!("no {EPOCH_HEADER} header"))
            .to_str()
            .expect("text")
            .parse()
            .expect("a number")
    }

    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A request under construction: like a browser or an API client, with or without a cookie.
pub(super) struct Call {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Body,
}

pub(super) fn call(method: Method, uri: &str) -> Call {
    Call {
        method,
        uri: uri.to_owned(),
        headers: vec![("host".into(), "chat.test".into())],
        body: Body::empty(),
    }
}

impl Call {
    pub fn cookie(self, cookie: &str) -> Self {
        self.header("cookie", cookie)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, value: Value) -> Self {
        self.body = Body::from(value.to_string());
        self.header("content-type", "application/json")
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self.header("content-type", content_type)
    }

    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let encoded = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.raw("application/x-www-form-urlencoded", encoded)
    }

    pub fn build(self) -> Request<Body> {
        let mut builder = Request::builder().method(self.method).uri(self.uri);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(self.body).expect("request")
    }
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                char::from(byte).to_string()
            }
            b' ' => "+".into(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl TestApp {
    pub async fn send(&self, call: Call) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(call.build())
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Follows a redirect as a browser would: a GET of its `Location` with the session cookie of `user`
    /// (if any) and the flash cookie the redirect set (if any).
    pub async fn follow(&self, redirect: &Answer, user: Option<&TestUser>) -> Answer {
        assert_eq!(
            redirect.status,
            StatusCode::SEE_OTHER,
            "{}",
            redirect.text()
        );
        let mut next = match user {
            Some(user) => user.call(Method::GET, &redirect.location()),
            None => call(Method::GET, &redirect.location()),
        };
        if let Some(cookie) = redirect.session_cookie() {
            next = next.cookie(&cookie);
        }
        if let Some(flash) = redirect.flash_cookie() {
            next = next.cookie(&flash);
        }
        self.send(next).await
    }

    /// Registers `name` through the API and returns the user's JSON.
    pub async fn register(&self, name: &str) -> Value {
        let answer = self
            .send(
                call(Method::POST, "/api/register")
                    .json(json!({ "username": name, "password": PASSWORD })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        answer.json()
    }

    /// Registers and logs in `name`.
    pub async fn user(&self, name: &str) -> TestUser {
        let user = self.register(name).await;
        let answer = self
            .send(call(Method::POST, "/api/login").json(json!({
                "username": name,
                "tag": user["tag"],
                "password": PASSWORD,
            })))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        TestUser {
            cookie: answer.session_cookie().expect("a session cookie"),
            id: user["id"].as_str().expect("id").to_owned(),
            username: name.to_owned(),
            tag: user["tag"].as_str().expect("tag").to_owned(),
        }
    }

    /// `user` creates a group and gets its id.
    pub async fn group(&self, user: &TestUser, name: &str) -> String {
        let answer = self
            .send(
                user.call(Method::POST, "/api/groups")
                    .json(json!({ "name": name })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        answer.json()["id"].as_str().expect("id").to_owned()
    }

    pub async fn add(&self, by: &TestUser, group: &str, user: &TestUser) {
        let answer = self
            .send(
                by.call(Method::POST, &format!("/api/groups/{group}/members"))
                    .json(json!({ "username": user.username, "tag": user.tag })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }

    pub async fn post(&self, by: &TestUser, group: &str, content: &str) -> Value {
        let answer = self
            .send(
                by.call(Method::POST, &format!("/api/groups/{group}/messages"))
                    .json(json!({ "content": content })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        answer.json()
    }
}

pub(super) struct TestUser {
    pub cookie: String,
    pub id: String,
    pub username: String,
    pub tag: String,
}

impl TestUser {
    pub fn call(&self, method: Method, uri: &str) -> Call {
        call(method, uri).cookie(&self.cookie)
    }

    pub fn path(&self) -> String {
        format!("{}/{}", self.username, self.tag)
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// Reads events from an open `/api/events` response.
pub(super) struct EventReader {
    stream: futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    buffer: String,
}

impl EventReader {
    /// Opens a stream for `user`, optionally resuming, and waits until it is ready.
    pub async fn open(app: &TestApp, user: &TestUser, last_event_id: Option<u64>) -> Self {
        Self::open_uri(app, user, "/api/events", last_event_id).await
    }

    /// Like [`EventReader::open`] on another URI (query parameters).
    pub async fn open_uri(
        app: &TestApp,
        user: &TestUser,
        uri: &str,
        last_event_id: Option<u64>,
    ) -> Self {
        let mut request = user.call(Method::GET, uri);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", &id.to_string());
        }
        let response = app
            .router
            .clone()
            .oneshot(request.build())
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("text")
                .starts_with("text/event-stream")
        );
        assert!(response.headers().contains_key(EPOCH_HEADER));
        EventReader {
            stream: response.into_body().into_data_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when nothing comes within `wait` or the stream ends.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event.event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event
                            .data
                            .push_str(value.strip_prefix(' ').unwrap_or(value));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
    }

    /// The next event of a change to the data: not `ready`, and not `presence`, which comes and goes
    /// with other streams (the presence tests read those with [`EventReader::next_of`]).
    pub async fn next_change(&mut self, wait: Duration) -> Option<SseEvent> {
        loop {
            let event = self.next(wait).await?;
            if event.event != "ready" && event.event != "presence" {
                return Some(event);
            }
        }
    }

    /// The next event of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.event == kind {
                return Some(event);
            }
        }
    }

    /// Waits for the `ready` event a stream sends once it is subscribed.
    pub async fn ready(&mut self) {
        let event = self.next(Duration::from_secs(5)).await.expect("ready");
        assert_eq!(event.event, "ready", "{event:?}");
    }
}
