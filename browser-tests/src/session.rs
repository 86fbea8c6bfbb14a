//! A user's own HTTP client for one input node: register, log in, call the API, open the event stream.

use std::time::Duration;

use serde_json::{Value, json};

use crate::pages::{EVENT, PASSWORD};
use crate::sse::EventStream;

/// A user's own cookie-keeping client for one input node, without an overall request timeout so an
/// event stream can stay open (connecting is bounded; every read is bounded by the caller).
pub struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            // Same-origin, as a browser would say: the CSRF check refuses anything else.
            .header("origin", &self.base)
            .json(&body)
            .send();
        let response = tokio::time::timeout(EVENT, request)
            .await
            .unwrap_or_else(|_| panic!("POST {path}: no answer within {EVENT:?}"))
            .unwrap_or_else(|error| panic!("POST {path}: {error}"));
        let status = response.status().as_u16();
        let body = tokio::time::timeout(EVENT, response.json::<Value>())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Registers and logs in; answers the tag.
    pub async fn sign_up(&self, username: &str) -> String {
        let (status, body) = self
            .post(
                "/api/register",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        let tag = body["tag"].as_str().expect("a tag").to_owned();
        let (status, body) = self
            .post(
                "/api/login",
                json!({"username": username, "tag": tag, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "login {username}: {body}");
        tag
    }

    /// Opens `GET /api/events`, resuming after `last_event_id` when given, and waits for its `ready`.
    pub async fn events(&self, last_event_id: Option<&str>) -> EventStream {
        let mut request = self
            .http
            .get(format!("{}/api/events", self.base))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = tokio::time::timeout(EVENT, request.send())
            .await
            .expect("GET /api/events answers in time")
            .expect("GET /api/events answers");
        let mut stream = EventStream::new(response);
        let ready = stream.next(EVENT).await.expect("a first event in time");
        assert_eq!(
            ready.kind(),
            "ready",
            "the stream starts with ready: {ready:?}"
        );
        stream
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let request = self.http.get(format!("{}{path}", self.base)).send();
        let response = tokio::time::timeout(EVENT, request)
            .await
            .unwrap_or_else(|_| panic!("GET {path}: no answer within {EVENT:?}"))
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Logs in an account registered elsewhere (through a page).
    pub async fn log_in(&self, handle: &str) {
        let (username, tag) = handle.rsplit_once('#').expect("name#tag");
        let (status, body) = self
            .post(
                "/api/login",
                json!({"username": username, "tag": tag, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "login {handle}: {body}");
    }
}
