//! A client of the chat cluster's JSON API, one per simulated user: its own connection pool and its own
//! session cookie, bound to one input node (the cookie is signed with the cluster key, so it would be
//! valid on every input node; a client stays on one to spread the load evenly).
//!
//! Setup calls ([`ApiClient::register`], [`ApiClient::login`], …) decode their answers and turn anything
//! but success into a [`ClientError`]. The workload's calls ([`ApiClient::post_message`],
//! [`ApiClient::list_messages`]) only read the answer to its end (so the connection is reused) and give
//! back its status: the workload counts statuses, it does not need the bodies.

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Header of every API answer: the data epoch the answering database was at.
pub const EPOCH_HEADER: &str = "x-chat-epoch";

/// A failed setup call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {url}: {source}")]
    Transport {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{method} {url}: unexpected answer ({reason}): {body}")]
    Decode {
        method: Method,
        url: String,
        reason: String,
        body: String,
    },
    #[error("cannot build an HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("{0} is not a URL")]
    BadUrl(String),
}

impl ClientError {
    /// Whether trying again later may succeed: a transport failure, or a node that is not serving yet
    /// (502/503/504, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => matches!(
                *status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
                    | StatusCode::TOO_MANY_REQUESTS
            ),
            ClientError::Decode { .. } | ClientError::Build(_) | ClientError::BadUrl(_) => false,
        }
    }
}

/// The failure of a workload request that never got an HTTP status, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Timeout,
    Connect,
    Body,
    Other,
}

impl TransportFailure {
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            TransportFailure::Timeout
        } else if error.is_connect() {
            TransportFailure::Connect
        } else if error.is_body() || error.is_decode() {
            TransportFailure::Body
        } else {
            TransportFailure::Other
        }
    }

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportFailure::Timeout => "timeout",
            TransportFailure::Connect => "connect",
            TransportFailure::Body => "body",
            TransportFailure::Other => "other",
        }
    }
}

/// A user as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub tag: String,
}

/// The part of a group the benchmark needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
}

/// One live input node as the nameserver lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Endpoint {
    pub id: u64,
    pub url: String,
}

/// Builds the plain HTTP client every part of the tool uses: no proxy (loopback only), a time limit on
/// every request, optionally a cookie jar.
pub fn http_client(timeout: Duration, cookies: bool) -> Result<reqwest::Client, ClientError> {
    client_builder(timeout)
        .cookie_store(cookies)
        .build()
        .map_err(ClientError::Build)
}

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
}

/// The live input nodes from the nameserver's `GET /api/endpoints`.
pub async fn fetch_endpoints(
    http: &reqwest::Client,
    nameserver: &url::Url,
) -> Result<Vec<Endpoint>, ClientError> {
    let url = nameserver
        .join("/api/endpoints")
        .map(String::from)
        .unwrap_or_else(|_| format!("{nameserver}api/endpoints"));
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|source| ClientError::Transport {
            method: Method::GET,
            url: url.clone(),
            source,
        })?;
    decode(Method::GET, url, response, StatusCode::OK).await
}

/// The API of one input node, with one user's session.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    jar: Arc<Jar>,
}

impl ApiClient {
    /// A client of the input node at `base` (`http://127.0.0.1:8001`, a trailing `/` is dropped) with
    /// its own cookie jar.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, ClientError> {
        let jar = Arc::new(Jar::default());
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: client_builder(timeout)
                .cookie_provider(jar.clone())
                .build()
                .map_err(ClientError::Build)?,
            jar,
        })
    }

    /// A client of the input node at `base` whose jar starts with `cookies`, a `Cookie` header value
    /// as [`ApiClient::session_cookies`] gave it (on this node or another node of the same cluster).
    pub fn with_session(base: &str, timeout: Duration, cookies: &str) -> Result<Self, ClientError> {
        let client = Self::new(base, timeout)?;
        let url = client.base_url()?;
        for pair in cookies
            .split(';')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            client.jar.add_cookie_str(&format!("{pair}; Path=/"), &url);
        }
        Ok(client)
    }

    /// The cookies this client would send to its node (`name=value; …`), `None` before any was set.
    pub fn session_cookies(&self) -> Option<String> {
        let url = self.base_url().ok()?;
        let header = self.jar.cookies(&url)?;
        header.to_str().ok().map(str::to_owned)
    }

    fn base_url(&self) -> Result<url::Url, ClientError> {
        url::Url::parse(&self.base).map_err(|_| ClientError::BadUrl(self.base.clone()))
    }

    /// The node's base URL, which is also the `Origin` of every non-GET request.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> (String, reqwest::RequestBuilder) {
        let url = format!("{}{path}", self.base);
        let mut builder = self.http.request(method.clone(), &url);
        if method != Method::GET {
            // The node refuses cross-site writes (CSRF); a same-origin request names the node itself.
            builder = builder.header(reqwest::header::ORIGIN, &self.base);
        }
        (url, builder)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
        expected: StatusCode,
    ) -> Result<T, ClientError> {
        let (url, builder) = self.request(method.clone(), path);
        let response =
            builder
                .json(&body)
                .send()
                .await
                .map_err(|source| ClientError::Transport {
                    method: method.clone(),
                    url: url.clone(),
                    source,
                })?;
        decode(method, url, response, expected).await
    }

    /// `POST /api/register`: a new user with a fresh tag.
    pub async fn register(&self, username: &str, password: &str) -> Result<User, ClientError> {
        self.call(
            Method::POST,
            "/api/register",
            json!({ "username": username, "password": password }),
            StatusCode::CREATED,
        )
        .await
    }

    /// `POST /api/login`: the session cookie lands in this client's jar.
    pub async fn login(&self, user: &User, password: &str) -> Result<(), ClientError> {
        let _: Value = self
            .call(
                Method::POST,
                "/api/login",
                json!({ "username": user.username, "tag": user.tag, "password": password }),
                StatusCode::OK,
            )
            .await?;
        Ok(())
    }

    /// `GET /api/me`: the user this client's session belongs to (401 without a valid session).
    pub async fn me(&self) -> Result<User, ClientError> {
        let (url, builder) = self.request(Method::GET, "/api/me");
        let response = builder
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                url: url.clone(),
                source,
            })?;
        decode(Method::GET, url, response, StatusCode::OK).await
    }

    /// `POST /api/groups`: a group with the caller as its first member.
    pub async fn create_group(&self, name: &str) -> Result<Group, ClientError> {
        self.call(
            Method::POST,
            "/api/groups",
            json!({ "name": name }),
            StatusCode::CREATED,
        )
        .await
    }

    /// `POST /api/groups/{id}/members`; a 409 (already a member, e.g. after a retried call) is success.
    pub async fn add_member(&self, group: &str, user: &User) -> Result<(), ClientError> {
        let path = format!("/api/groups/{group}/members");
        match self
            .call::<Value>(
                Method::POST,
                &path,
                json!({ "username": user.username, "tag": user.tag }),
                StatusCode::CREATED,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(ClientError::Status { status, .. }) if status == StatusCode::CONFLICT => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `POST /api/groups/{id}/messages` for setup: anything but 201 is an error (the `client_id`
    /// makes a retry safe).
    pub async fn post(
        &self,
        group: &str,
        content: &str,
        client_id: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/api/groups/{group}/messages");
        let _: Value = self
            .call(
                Method::POST,
                &path,
                json!({ "content": content, "client_id": client_id }),
                StatusCode::CREATED,
            )
            .await?;
        Ok(())
    }

    /// `POST /api/groups/{id}/messages` with an idempotency key; answers the status.
    pub async fn post_message(
        &self,
        group: &str,
        content: &str,
        client_id: &str,
    ) -> Result<StatusCode, reqwest::Error> {
        let (_, builder) = self.request(Method::POST, &format!("/api/groups/{group}/messages"));
        let body = json!({ "content": content, "client_id": client_id });
        drain(builder.json(&body).send().await?).await
    }

    /// `GET /api/groups/{id}/messages?limit=`; answers the status.
    pub async fn list_messages(
        &self,
        group: &str,
        limit: u32,
    ) -> Result<StatusCode, reqwest::Error> {
        let (_, builder) = self.request(
            Method::GET,
            &format!("/api/groups/{group}/messages?limit={limit}"),
        );
        drain(builder.send().await?).await
    }
}

/// Reads an answer to its end (keeping the connection reusable) and gives its status.
async fn drain(response: reqwest::Response) -> Result<StatusCode, reqwest::Error> {
    let status = response.status();
    response.bytes().await?;
    Ok(status)
}

/// `expected` and a JSON body of type `T`, or the error that explains what came instead.
async fn decode<T: serde::de::DeserializeOwned>(
    method: Method,
    url: String,
    response: reqwest::Response,
    expected: StatusCode,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            source,
        })?;
    let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
    if status != expected {
        return Err(ClientError::Status {
            method,
            url,
            status,
            body: text(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|error| ClientError::Decode {
        method,
        url,
        reason: error.to_string(),
        body: text(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_loses_its_trailing_slash_so_it_can_be_the_origin() {
        let client = ApiClient::new("http://127.0.0.1:8001/", Duration::from_secs(1)).unwrap();

        assert_eq!(client.base(), "http://127.0.0.1:8001");
    }

    #[test]
    fn a_saved_session_goes_back_into_a_new_clients_jar() {
        let cookies = "chat_session=abc.def; theme=dark";

        let client =
            ApiClient::with_session("http://127.0.0.1:8002/", Duration::from_secs(1), cookies)
                .unwrap();
        let fresh = ApiClient::new("http://127.0.0.1:8002", Duration::from_secs(1)).unwrap();

        let kept = client.session_cookies().expect("the jar holds the cookies");
        let mut pairs: Vec<&str> = kept.split("; ").collect();
        pairs.sort_unstable();
        assert_eq!(pairs, ["chat_session=abc.def", "theme=dark"]);
        assert_eq!(fresh.session_cookies(), None);
    }

    #[test]
    fn only_unavailable_nodes_and_transport_failures_are_worth_a_retry() {
        let status = |status| ClientError::Status {
            method: Method::POST,
            url: "http://127.0.0.1:1/api/register".into(),
            status,
            body: String::new(),
        };

        assert!(status(StatusCode::SERVICE_UNAVAILABLE).is_retryable());
        assert!(status(StatusCode::GATEWAY_TIMEOUT).is_retryable());
        assert!(!status(StatusCode::BAD_REQUEST).is_retryable());
        assert!(!status(StatusCode::UNAUTHORIZED).is_retryable());
    }
}
