//! The HTTP face of an input node: the JSON API of DESIGN §6, the server-rendered pages, sessions and
//! live updates, all built on [`ChatService`] so that the same router runs over the local writer or over
//! the proxy that forwards through the cluster.
//!
//! ```text
//!   browser ──HTTP──► signed cookie ─► X-Chat-Epoch ─► pause (503) ─► same-origin (403) ─► 64 KiB (413)
//!                                                                                            │
//!        ┌───────────────────────────────────────────────────────────────────────────────────┤
//!        │ /api/*  (JSON, 401 without a user)        /, /groups/{id}, /users/{u}/{t}/chat (HTML)
//!        │ /api/events  ◄── EventHub ◄── EventSource (LogEntry broadcast: writer or data plane)
//!        ▼
//!   ChatService::execute(ServiceRequest { caller, client_epoch: session's highest epoch, operation })
//! ```
//!
//! Every answer, whatever its route or error, leaves with the security headers (a strict
//! Content-Security-Policy, `nosniff`, no framing, a same-origin referrer; see `middleware`).
//!
//! The node builds a [`WebState`] once (it owns the login limiter and the event hub), flips the *serving*
//! flag it passed in, and runs [`serve`] on a bound listener. Sessions live in signed cookies, not in the
//! state: every input node that holds the same [`SessionKey`] accepts them (see `session`).

mod accounts;
mod api;
mod ephemeral;
mod error;
mod events;
mod flash;
mod layout;
mod middleware;
mod openapi;
mod pages;
mod paths;
mod rate_limit;
mod rendered;
mod respond;
mod session;
mod signed_cookie;
mod views;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::presence::Presence;
use crate::service::{ChatService, ServiceError, ServiceRequest, ServiceResponse};
use crate::storage::{ChatId, UserId};

pub use crate::service::EventSource;
pub use error::AppError;
pub use rate_limit::{LoginLimiter, RateLimit, SlidingWindow};
pub use session::{ChatSession, SessionUser};
pub use signed_cookie::SessionKey;
pub use views::rfc3339;

/// The JSON API's OpenAPI document, as `/api/openapi.json` serves it (for clients generated
/// without a running cluster: `cargo run -p cluster-node --example openapi`).
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(&api::document()).unwrap_or_else(|_| "{}".into())
}

/// Largest request body accepted (DESIGN §6); bigger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The header that carries the epoch of the answering database on every API response.
pub const EPOCH_HEADER: &str = "x-chat-epoch";

/// A nameserver's HTTP address, and whether this node's lease there held at the last renewal.
#[derive(Debug, Clone)]
pub struct NameserverLink {
    pub url: String,
    pub reachable: Arc<std::sync::atomic::AtomicBool>,
}

impl NameserverLink {
    /// A nameserver taken to be up (no lease tells otherwise).
    pub fn new(url: impl Into<String>) -> Self {
        NameserverLink {
            url: url.into(),
            reachable: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

/// How the web layer behaves; [`WebOptions::default`] suits production.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `Retry-After` on 503 answers while the node pauses or the cluster cannot serve.
    pub retry_after: Duration,
    /// Interval of SSE keep-alive comments (proxies and browsers drop silent streams).
    pub keep_alive: Duration,
    /// Where a page goes when its input node stops answering: the nameservers' HTTP addresses, in
    /// order (pages try the reachable ones first).
    pub nameservers: Vec<NameserverLink>,
    /// Failed logins per `name#tag` before 429.
    pub login_failures_per_user: RateLimit,
    /// Login attempts (failed or not) per client address before 429: bounds the bcrypt work one
    /// client can cause.
    pub login_attempts_per_address: RateLimit,
    /// Recent log entries kept to resume event streams from `Last-Event-ID` without asking the service.
    pub event_replay_capacity: usize,
    /// A session expires after this long without a request.
    pub session_inactivity: Duration,
    /// The `Secure` cookie attribute: off for plain HTTP on loopback, on behind TLS.
    pub secure_cookies: bool,
    /// Signs and verifies session cookies. Input nodes derive it from the cluster key, so a session
    /// survives a change of input node; the default is a random key, valid only for this value's clones.
    pub session_key: SessionKey,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            retry_after: Duration::from_secs(1),
            keep_alive: Duration::from_secs(15),
            nameservers: Vec::new(),
            login_failures_per_user: RateLimit {
                max: 5,
                window: Duration::from_secs(60),
            },
            login_attempts_per_address: RateLimit {
                max: 30,
                window: Duration::from_secs(60),
            },
            event_replay_capacity: 10_000,
            session_inactivity: Duration::from_secs(7 * 24 * 3600),
            secure_cookies: false,
            session_key: SessionKey::random(),
        }
    }
}

/// [`ChatService`] behind a pointer, so handlers are not generic over the node's service type.
trait DynService: Send + Sync {
    fn execute_boxed(
        &self,
        request: ServiceRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ServiceResponse, ServiceError>> + Send + '_>>;
}

impl<S: ChatService> DynService for S {
    fn execute_boxed(
        &self,
        request: ServiceRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ServiceResponse, ServiceError>> + Send + '_>> {
        Box::pin(self.execute(request))
    }
}

/// The service the web layer calls: whatever the node passed to [`WebState::new`].
#[derive(Clone)]
pub struct SharedService(Arc<dyn DynService>);

impl ChatService for SharedService {
    fn execute(
        &self,
        request: ServiceRequest,
    ) -> impl Future<Output = Result<ServiceResponse, ServiceError>> + Send {
        self.0.execute_boxed(request)
    }
}

/// Everything handlers share; cheap to clone: one reference count. (Every request clones the state
/// once per layer that takes it and once for its handler; as a struct of a dozen handles, those
/// clones and drops were 7 % of a read's CPU.)
#[derive(Clone)]
pub struct WebState(Arc<Shared>);

impl std::ops::Deref for WebState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`WebState`] holds.
#[derive(Clone)]
pub struct Shared {
    service: SharedService,
    hub: Arc<events::EventHub>,
    ephemeral: Arc<events::EphemeralFeed>,
    serving: watch::Receiver<bool>,
    options: Arc<WebOptions>,
    limiter: Arc<Mutex<LoginLimiter>>,
    /// Cancelled when the server that uses this state shuts down, so event streams end and graceful
    /// shutdown does not wait for them forever.
    closing: CancellationToken,
    /// Stops the hub's task when the last clone of the state is dropped.
    _hub_guard: Arc<tokio_util::sync::DropGuard>,
    /// Where request counts and latencies go (none in tests that do not look).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Computes group statistics across the copies (`None`: the stats route answers 503).
    analytics: Option<Arc<crate::analytics::Analytics>>,
    /// Who is online and typing (standalone unless the node's data plane relays it).
    presence: Presence,
    /// When each user last announced typing in each chat, to pass on at most one notice per
    /// 1.5 s (see `api::typing`).
    typing_sent: Arc<Mutex<HashMap<(UserId, ChatId), std::time::Instant>>>,
    /// Messages already rendered as JSON, for the pages of history (`rendered.rs`).
    rendered: Arc<rendered::RenderedMessages>,
}

impl WebState {
    /// The state over `service`, with live events from `events`. `serving` is the node's readiness: while
    /// it is `false` every request gets 503 with `Retry-After` and open event streams end. Must be called
    /// inside a Tokio runtime (it spawns the event hub).
    pub fn new<S, E>(
        service: S,
        events: E,
        serving: watch::Receiver<bool>,
        options: WebOptions,
    ) -> Self
    where
        S: ChatService + 'static,
        E: EventSource,
    {
        let stop = CancellationToken::new();
        let source: Arc<dyn crate::service::EventSource> = Arc::new(events);
        let hub =
            events::EventHub::start(Arc::clone(&source), options.event_replay_capacity, &stop);
        let ephemeral = events::EphemeralFeed::start(source, &stop);
        let limiter = LoginLimiter::new(
            options.login_failures_per_user,
            options.login_attempts_per_address,
        );
        WebState(Arc::new(Shared {
            service: SharedService(Arc::new(service)),
            hub,
            ephemeral,
            serving,
            options: Arc::new(options),
            limiter: Arc::new(Mutex::new(limiter)),
            closing: CancellationToken::new(),
            _hub_guard: Arc::new(stop.drop_guard()),
            metrics: None,
            analytics: None,
            presence: Presence::standalone(),
            typing_sent: Arc::new(Mutex::new(HashMap::new())),
            rendered: Default::default(),
        }))
    }

    /// The same state with `change` made to a copy of what it holds.
    fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        WebState(Arc::new(shared))
    }

    /// Answers `GET /api/groups/{id}/stats` with `analytics`.
    pub fn with_analytics(self, analytics: Arc<crate::analytics::Analytics>) -> Self {
        self.with(|shared| shared.analytics = Some(analytics))
    }

    /// Shows who is online and typing as `presence` tells (the node's data plane relays it).
    pub fn with_presence(self, presence: Presence) -> Self {
        self.with(|shared| shared.presence = presence)
    }

    /// Records request counts and latencies per route into `metrics` (the node's `/metrics`).
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.with(|shared| shared.metrics = Some(metrics))
    }

    pub fn options(&self) -> &WebOptions {
        &self.options
    }

    /// True while the node serves requests.
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }
}

/// The whole web application (API and pages), with sessions in cookies signed by the state's
/// [`WebOptions::session_key`].
pub fn router(state: WebState) -> Router {
    let metrics = state.metrics.clone();
    let policy = middleware::content_policy(&state.options.nameservers);
    Router::new()
        .merge(api::router(state.clone()))
        .merge(pages::router(state.clone()))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::limit_body))
        .layer(axum::middleware::from_fn(middleware::same_origin))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::pause,
        ))
        .layer(axum::middleware::from_fn(middleware::epoch_header))
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::cookies,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::record_metrics,
        ))
        .layer(axum::middleware::map_response_with_state(
            policy,
            middleware::security_headers,
        ))
}

/// Serves `state`'s application on `listener` (over TLS when `tls` is given) until `shutdown`
/// completes, then finishes in-flight requests (graceful shutdown) after ending every open event
/// stream. Client addresses reach the login rate limiter through `ConnectInfo`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<cluster_tls::ServerConfig>>,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = CancellationToken::new();
    let state = state.with(|shared| shared.closing = closing.clone());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async move {
        shutdown.await;
        closing.cancel();
    };
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            // A tapped listener is what gives axum's `ConnectInfo<SocketAddr>` for a listener of our
            // own; the tap itself turns off Nagle's delay, which would hold back small SSE writes.
            let listener = cluster_tls::TlsListener::new(listener, config)?.tap_io(|stream| {
                let _ = stream.get_ref().0.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
