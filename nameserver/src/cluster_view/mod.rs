//! The live cluster view (DESIGN §9): `GET /cluster` is a page that polls `GET /cluster/state` every
//! second and draws the nodes, the neighbour graph and the spanning tree.
//!
//! ```text
//!  page ──GET /cluster/state──► routes ──► ClusterView (cache ~500 ms, one refresh at a time)
//!                                              │ ListNodes (gRPC)        ──► bootstrap
//!                                              │ GET /status, all at once ──► every node's admin port
//!                                              ▼
//!                                  state::ClusterState::build (pure) ──► layout::place (pure)
//! ```
//!
//! A refresh costs one `ListNodes` and one `/status` per registered node however many pages are open:
//! requests arriving while a refresh runs wait for it and share its answer.

mod layout;
mod routes;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_proto::bootstrap::ListNodesRequest;
use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

pub use routes::router;
pub use state::ClusterState;
use state::{NodeReport, RegisteredNode, StatusAnswer};

/// A node whose `/status` takes longer than this is shown dead.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);
/// How long one answer is reused; below the page's 1 s poll, so every poll sees fresh data.
const CACHE_FOR: Duration = Duration::from_millis(500);
/// How long `ListNodes` may take before the view says the bootstrap is unavailable.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(1);
/// A `/status` body is a few hundred bytes; anything far larger is not one.
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// Cloneable handle that answers the current [`ClusterState`].
#[derive(Clone)]
pub struct ClusterView {
    inner: Arc<Inner>,
}

struct Inner {
    bootstrap_address: SocketAddr,
    bootstrap: BootstrapClient<Channel>,
    http: reqwest::Client,
    /// Held across a refresh, so concurrent requests wait for that one instead of starting their own.
    latest: Mutex<Option<(Instant, Arc<ClusterState>)>>,
}

impl ClusterView {
    /// A view of the cluster registered at the bootstrap at `bootstrap`. Connects lazily: a bootstrap
    /// that is down shows as an error on the page, never as a failure to start.
    pub fn new(bootstrap: SocketAddr) -> Self {
        let channel = Endpoint::from_shared(format!("http://{bootstrap}"))
            .expect("a socket address makes a valid URI")
            .connect_timeout(BOOTSTRAP_TIMEOUT)
            .timeout(BOOTSTRAP_TIMEOUT)
            .connect_lazy();
        let http = reqwest::Client::builder()
            .timeout(STATUS_TIMEOUT)
            .no_proxy()
            .build()
            .expect("a plain HTTP client without TLS builds");
        Self {
            inner: Arc::new(Inner {
                bootstrap_address: bootstrap,
                bootstrap: BootstrapClient::new(channel),
                http,
                latest: Mutex::new(None),
            }),
        }
    }

    /// The state fetched within the last ~500 ms, or a fresh one.
    pub async fn current(&self) -> Arc<ClusterState> {
        let mut latest = self.inner.latest.lock().await;
        if let Some((at, state)) = latest.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Arc::clone(state);
            }
        }
        let state = Arc::new(self.refresh().await);
        *latest = Some((Instant::now(), Arc::clone(&state)));
        state
    }

    #[tracing::instrument(name = "cluster_view.refresh", skip_all)]
    async fn refresh(&self) -> ClusterState {
        let registered = match self.list_nodes().await {
            Ok(registered) => registered,
            Err(error) => {
                tracing::debug!(%error, "bootstrap unavailable");
                return ClusterState::unavailable(error, unix_millis());
            }
        };
        let answers = self.ask_every_node(&registered).await;
        ClusterState::build(&registered, &answers, unix_millis())
    }

    async fn list_nodes(&self) -> Result<Vec<RegisteredNode>, String> {
        let mut bootstrap = self.inner.bootstrap.clone();
        let response = bootstrap
            .list_nodes(ListNodesRequest {})
            .await
            .map_err(|status| {
                format!(
                    "the bootstrap at {} does not answer: {}",
                    self.inner.bootstrap_address,
                    status.message()
                )
            })?;
        Ok(response
            .into_inner()
            .nodes
            .iter()
            .filter_map(RegisteredNode::from_proto)
            .collect())
    }

    /// Asks every node with an admin address for its `/status`, all at once.
    async fn ask_every_node(&self, registered: &[RegisteredNode]) -> BTreeMap<u64, StatusAnswer> {
        let mut requests = JoinSet::new();
        for node in registered {
            let Some(admin) = node.admin.clone() else {
                continue;
            };
            let (id, http) = (node.id, self.inner.http.clone());
            requests.spawn(async move { (id, ask_status(&http, &admin).await) });
        }
        let mut answers = BTreeMap::new();
        while let Some(joined) = requests.join_next().await {
            match joined {
                Ok((id, answer)) => {
                    answers.insert(id, answer);
                }
                // Only a panic in reqwest could get here; the node then shows as dead.
                Err(error) => tracing::warn!(%error, "a status request failed"),
            }
        }
        answers
    }
}

async fn ask_status(http: &reqwest::Client, admin: &str) -> StatusAnswer {
    match read_status(http, admin).await {
        Ok(report) => StatusAnswer::Answered(report),
        Err(why) => StatusAnswer::Failed(why),
    }
}

async fn read_status(http: &reqwest::Client, admin: &str) -> Result<NodeReport, String> {
    let url = format!("http://{admin}/status");
    let describe = |error: reqwest::Error| {
        if error.is_timeout() {
            format!(
                "no answer from {admin} within {} ms",
                STATUS_TIMEOUT.as_millis()
            )
        } else if error.is_connect() {
            format!("nothing listens on {admin}")
        } else {
            format!("{url}: {error}")
        }
    };
    let mut response = http.get(&url).send().await.map_err(describe)?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_STATUS_BYTES {
            return Err(format!("{url} answered more than {MAX_STATUS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    NodeReport::parse(&body)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
