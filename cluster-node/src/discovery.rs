//! Registration with the bootstrap service: how a starting node learns its neighbours.
//!
//! A registration carries a proof of the cluster key (`cluster-auth`): the bootstrap refuses any other.
//! The bootstrap may start after the nodes, or restart while they run, so registration retries with
//! exponential backoff until it succeeds or the node shuts down. Failures are logged once per
//! interval with a count, never once per attempt: a node waiting a minute for the bootstrap writes a
//! handful of lines, not hundreds.
//!
//! After registering, a node keeps a lease with the bootstrap (`keep_lease`: the bootstrap offers
//! only live nodes as repairs), follows its listing (`follow_registered`: the registered count, and
//! the [`Directory`] a node repairs from while the bootstrap is away), and asks for repairs
//! (`repair_once`) when it hears fewer than k neighbours.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use chat_proto::bootstrap::{
    ListNodesRequest, NodeAddress, RegisterRequest, RenewRequest, RepairRequest,
};
use cluster_auth::{ProofKey, Rpc, authorized};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::config::{Config, NodeId, parse_node_id};
use crate::metrics::Metrics;

/// A neighbour as the bootstrap described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub id: NodeId,
    pub host: String,
    pub control_port: u16,
    pub data_port: u16,
}

/// Every neighbour's addresses as last reported by the bootstrap, shared by both planes: the control
/// plane refreshes it when a new neighbour appears, the data plane reads data ports from it.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    entries: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<NodeId, Neighbour>>>,
}

impl AddressBook {
    pub fn new(neighbours: &[Neighbour]) -> Self {
        let book = Self::default();
        book.update(neighbours);
        book
    }

    /// Adds or replaces these neighbours' entries.
    pub fn update(&self, neighbours: &[Neighbour]) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for neighbour in neighbours {
            entries.insert(neighbour.id, neighbour.clone());
        }
    }

    pub fn get(&self, id: NodeId) -> Option<Neighbour> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

/// Why one registration attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot reach the bootstrap: {}", error_chain(.0))]
    Connect(#[from] tonic::transport::Error),
    #[error("the bootstrap refused the registration: {}", .0.message())]
    Refused(#[from] tonic::Status),
}

/// `error: cause: cause` on one line; tonic's transport errors say little without their sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrapping layers often repeat their inner error's text word for word.
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Retry delays: short at first (the bootstrap is usually just starting), doubling up to a cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self { next: first, cap }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }
}

/// Decides which failures are worth a log line: the first one, then one summary per interval.
#[derive(Debug)]
pub struct FailureLog {
    interval: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// Records a failure at `now`; answers `Some(failures since the last line)` when a line is due.
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        self.suppressed += 1;
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            None
        }
    }
}

async fn client(
    config: &Config,
) -> Result<BootstrapClient<tonic::transport::Channel>, RegisterError> {
    let channel = Endpoint::from_shared(config.bootstrap.grpc_uri())
        .map_err(RegisterError::Connect)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(BootstrapClient::new(channel))
}

/// The whole registry as last listed by the bootstrap: every node's addresses and neighbour ids.
/// While the bootstrap is away, a node short of neighbours picks its neighbours' neighbours from it,
/// and accepts a node that links to it that way (see `topology::fallback_candidates`).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    inner: Arc<RwLock<Listing>>,
}

#[derive(Debug, Default)]
struct Listing {
    addresses: HashMap<NodeId, Neighbour>,
    lists: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl Directory {
    fn replace(&self, listing: Listing) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = listing;
    }

    /// How a registered node is reached, if it was listed.
    pub fn neighbour(&self, id: NodeId) -> Option<Neighbour> {
        self.read().addresses.get(&id).cloned()
    }

    /// Whether a listing arrived yet (before one, no node is known to be gone).
    pub fn is_listed(&self) -> bool {
        !self.read().addresses.is_empty()
    }

    /// Every listed node's neighbour ids.
    pub fn lists(&self) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
        self.read().lists.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Listing> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every registered node (`ListNodes`); malformed entries are left out.
async fn list_registered(config: &Config) -> Result<Listing, RegisterError> {
    let mut client = client(config).await?;
    let answer = client.list_nodes(ListNodesRequest {}).await?.into_inner();
    let mut listing = Listing::default();
    for entry in answer.nodes {
        let Some(neighbour) = entry
            .address
            .as_ref()
            .and_then(|address| neighbour_from_wire(address).ok())
        else {
            continue;
        };
        let ids = entry
            .neighbors
            .into_iter()
            .filter_map(|raw| parse_node_id(raw).ok())
            .collect();
        listing.lists.insert(neighbour.id, ids);
        listing.addresses.insert(neighbour.id, neighbour);
    }
    Ok(listing)
}

/// Keeps `count` at the number of registered nodes and `directory` at the bootstrap's listing,
/// asking every `interval` until `shutdown`. The count only grows in practice (the bootstrap forgets
/// nobody); while the bootstrap is unreachable the last known count and listing stand.
pub async fn follow_registered(
    config: Config,
    count: watch::Sender<usize>,
    directory: Directory,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut failures = FailureLog::new(Duration::from_secs(60));
    loop {
        match list_registered(&config).await {
            Ok(listing) => {
                let n = listing.addresses.len();
                // The listing first: a count that changed makes the control plane read it (a node
                // removed for good is dropped from the overlay once the listing no longer has it).
                directory.replace(listing);
                count.send_if_modified(|current| std::mem::replace(current, n) != n);
            }
            Err(error) => {
                if let Some(count) = failures.record(Instant::now()) {
                    tracing::warn!(%error, failed_attempts = count, "cannot count the registered nodes; keeping the last count");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// What the bootstrap answered a registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub neighbours: Vec<Neighbour>,
    /// This node id was registered before (the node has run in this cluster).
    pub known: bool,
    /// How many live neighbours the bootstrap keeps every node at (its k; 0 from an older
    /// bootstrap, which does not repair).
    pub degree: usize,
}

/// Renews this node's lease with the bootstrap until `shutdown`, every third of the lease it is
/// told (the bootstrap offers only live nodes as repairs). A renewal may answer new neighbours (the
/// bootstrap joined a split through this node): they go to `merged`. Failures are logged once a
/// minute: the node works without the bootstrap, it only cannot be offered to others meanwhile.
pub async fn keep_lease(
    config: Config,
    merged: tokio::sync::mpsc::Sender<Vec<Neighbour>>,
    shutdown: CancellationToken,
) {
    let key = ProofKey::derive(config.cluster_key.as_bytes());
    let mut failures = FailureLog::new(Duration::from_secs(60));
    let mut interval = Duration::from_millis(500);
    loop {
        let renewed = async {
            let mut client = client(&config).await?;
            let request = authorized(&key, Rpc::BootstrapRenew, RenewRequest { id: config.id.0 });
            Ok::<_, RegisterError>(client.renew(request).await?.into_inner())
        };
        match renewed.await {
            Ok(answer) => {
                if !answer.known {
                    tracing::warn!(
                        "the bootstrap does not know this node (its state was reset?); it is offered to no one until it registers again"
                    );
                }
                interval = (Duration::from_millis(answer.lease_ms.into()) / 3)
                    .clamp(Duration::from_millis(100), Duration::from_secs(10));
                let added: Vec<Neighbour> = answer
                    .added
                    .iter()
                    .filter_map(|address| neighbour_from_wire(address).ok())
                    .collect();
                if !added.is_empty() && merged.send(added).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                if let Some(count) = failures.record(Instant::now()) {
                    tracing::warn!(%error, failed_attempts = count, "cannot renew the lease with the bootstrap; retrying");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// What the bootstrap answered a repair request.
#[derive(Debug, Clone)]
pub struct RepairAnswer {
    /// The neighbours it linked now.
    pub added: Vec<Neighbour>,
    /// Every neighbour of this node now.
    pub neighbours: Vec<Neighbour>,
}

/// Asks the bootstrap for more neighbours; `live` are those this node hears now.
pub async fn repair_once(config: &Config, live: &[NodeId]) -> Result<RepairAnswer, RegisterError> {
    let mut client = client(config).await?;
    let message = RepairRequest {
        id: config.id.0,
        live_neighbors: live.iter().map(|id| id.0).collect(),
    };
    let request = authorized(
        &ProofKey::derive(config.cluster_key.as_bytes()),
        Rpc::BootstrapRepair,
        message,
    );
    let answer = client.repair(request).await?.into_inner();
    let parse = |addresses: Vec<NodeAddress>| {
        addresses
            .iter()
            .filter_map(|address| neighbour_from_wire(address).ok())
            .collect()
    };
    Ok(RepairAnswer {
        added: parse(answer.added),
        neighbours: parse(answer.neighbors),
    })
}

pub async fn register_once(config: &Config) -> Result<Registration, RegisterError> {
    let mut client = client(config).await?;
    let message = RegisterRequest {
        node: Some(NodeAddress {
            id: config.id.0,
            host: config.host.to_string(),
            control_port: config.control_port.into(),
            data_port: config.data_port.into(),
            admin_port: config.admin_port.into(),
            http_port: config.http_port.into(),
        }),
    };
    let request = authorized(
        &ProofKey::derive(config.cluster_key.as_bytes()),
        Rpc::BootstrapRegister,
        message,
    );
    let response = client.register(request).await?.into_inner();
    let known = response.known;
    let degree = response.degree as usize;
    let neighbours = response
        .neighbors
        .into_iter()
        .filter_map(|address| match neighbour_from_wire(&address) {
            Ok(neighbour) => Some(neighbour),
            Err(reason) => {
                tracing::warn!(
                    ?address,
                    reason,
                    "ignoring a malformed neighbour from the bootstrap"
                );
                None
            }
        })
        .collect();
    Ok(Registration {
        neighbours,
        known,
        degree,
    })
}

/// Registers until the bootstrap answers; `None` when `shutdown` fired first.
#[tracing::instrument(name = "bootstrap_registration", skip_all, fields(bootstrap = %config.bootstrap))]
pub async fn register_until_accepted(
    config: &Config,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Option<Registration> {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut failures = FailureLog::new(Duration::from_secs(10));
    let mut total_failures = 0u64;
    loop {
        metrics.bootstrap_attempts.inc();
        let attempt = tokio::select! {
            result = register_once(config) => result,
            () = shutdown.cancelled() => return None,
        };
        match attempt {
            Ok(registration) => {
                if total_failures > 0 {
                    tracing::info!(failures = total_failures, "bootstrap reachable again");
                }
                return Some(registration);
            }
            Err(error) => {
                total_failures += 1;
                metrics.bootstrap_failures.inc();
                if let Some(count) = failures.record(Instant::now()) {
                    tracing::warn!(%error, failed_attempts = count, "registration with the bootstrap failed; retrying");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.cancelled() => return None,
        }
    }
}

fn neighbour_from_wire(address: &NodeAddress) -> Result<Neighbour, &'static str> {
    let id = parse_node_id(address.id).map_err(|_| "an id out of range")?;
    // The 46000–65535 range is a rule for configuration files; on the wire any real port is
    // accepted, so nodes embedded with kernel-chosen ports can still be neighbours.
    let port = |port: u32| u16::try_from(port).ok().filter(|p| *p != 0);
    if address.host.is_empty() {
        return Err("empty host");
    }
    Ok(Neighbour {
        id,
        host: address.host.clone(),
        control_port: port(address.control_port).ok_or("control port out of range")?,
        data_port: port(address.data_port).ok_or("data port out of range")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_short_first_step_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let delays: Vec<u128> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700, 700]);
    }

    #[test]
    fn failures_are_logged_first_then_once_per_interval_with_a_count() {
        let start = Instant::now();
        let mut log = FailureLog::new(Duration::from_secs(10));
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(log.record(at(0)), Some(1));
        assert_eq!(log.record(at(100)), None);
        assert_eq!(log.record(at(5_000)), None);
        assert_eq!(log.record(at(9_999)), None);
        assert_eq!(log.record(at(10_000)), Some(4));
        assert_eq!(log.record(at(10_001)), None);
    }

    #[test]
    fn malformed_neighbours_from_the_wire_are_refused() {
        let good = NodeAddress {
            id: 2,
            host: "127.0.0.1".into(),
            control_port: 46002,
            data_port: 47002,
            admin_port: 9002,
            http_port: 8002,
        };
        assert_eq!(neighbour_from_wire(&good).unwrap().id.0, 2);
        assert!(
            neighbour_from_wire(&NodeAddress {
                id: 0,
                ..good.clone()
            })
            .is_err()
        );
        assert!(
            neighbour_from_wire(&NodeAddress {
                host: String::new(),
                ..good.clone()
            })
            .is_err()
        );
        assert!(
            neighbour_from_wire(&NodeAddress {
                control_port: 0,
                ..good.clone()
            })
            .is_err()
        );
        assert!(
            neighbour_from_wire(&NodeAddress {
                data_port: 70_000,
                ..good
            })
            .is_err()
        );
    }
}
