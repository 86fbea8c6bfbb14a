//! A minimal chat client over the JSON API, one per simulated user, keeping its own session cookie.

use std::time::Duration;

use serde_json::{Value, json};

pub struct ChatClient {
    base: String,
    http: reqwest::Client,
}

/// Status and JSON body of one API call.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub epoch: Option<u64>,
    pub body: Value,
}

impl ChatClient {
    /// A client talking to the input node at `base` (e.g. `http://127.0.0.1:8004`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// Points the client (and its session cookie) at another input node.
    pub fn switch_to(&mut self, base: impl Into<String>) {
        self.base = base.into();
    }

    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the input node answers");
        Self::reply(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .expect("the input node answers");
        Self::reply(response).await
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let epoch = response
            .headers()
            .get("x-chat-epoch")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            epoch,
            body,
        }
    }

    /// Registers and logs in; answers `(id, tag)`.
    pub async fn sign_up(&self, username: &str) -> (String, String) {
        let password = "correct horse battery";
        let registered = self
            .post(
                "/api/register",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(
            registered.status, 201,
            "register {username}: {registered:?}"
        );
        let tag = registered.body["tag"].as_str().expect("a tag").to_owned();
        let id = registered.body["id"].as_str().expect("an id").to_owned();
        let login = self
            .post(
                "/api/login",
                json!({"username": username, "tag": tag, "password": password}),
            )
            .await;
        assert_eq!(login.status, 200, "login {username}: {login:?}");
        (id, tag)
    }
}
