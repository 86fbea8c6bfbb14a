//! The asking node's side of a query: split it, place each range on the ring, ask each node for its
//! share over the admin port, move the share of a node that declines or does not answer to the next
//! node of each range's preference list, and reduce what comes back.
//!
//! ```text
//!   input node (asking)                         bootstrap ListNodes (cached a few seconds)
//!     split [since, until) ─► ranges                        │ admin ports
//!     ring(group, range slot) ─► preference list per range ◄┘
//!     ┌──────────── per node, concurrently ─────────────┐
//!     │ itself: Mapper::map                              │  200 MapAnswer ─► partials
//!     │ others: POST /stats/map (signed, time-bounded)   │  409/503/timeout/refused ─► node excluded,
//!     └──────────────────────────────────────────────────┘      its ranges to each one's next node
//!     reduce(partials) ─► top words, per member per day, computed_by
//! ```
//!
//! Every node of the listing is on the ring, the asking node too, so every range has every node in
//! its preference list: a node without a copy declines at once, and a range is given up (503) only
//! once every node has declined or failed it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chat_proto::bootstrap::ListNodesRequest;
use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use cluster_auth::{AUTH_HEADER, ProofKey, Rpc, proof_header};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;
use tonic::transport::Endpoint;

use crate::config::{NodeId, ServiceAddr, parse_node_id};
use crate::storage::{Epoch, GroupId, UnixMillis};

use super::map::{MapAnswer, MapRequest, Mapper};
use super::plan::{self, PlanError, TimeRange};
use super::reduce::{self, Partial, Stats};
use super::ring::{DEFAULT_VIRTUAL_NODES, Ring};

/// Bounds and sizes of the asking side.
#[derive(Debug, Clone)]
pub struct AnalyticsOptions {
    /// How long one node gets to answer its share before its ranges move on.
    pub map_timeout: Duration,
    /// How long connecting to a node's admin port may take.
    pub connect_timeout: Duration,
    /// How long a whole query may take before it is answered 503.
    pub query_timeout: Duration,
    /// How long the bootstrap's listing of nodes is reused.
    pub listing_ttl: Duration,
    pub virtual_nodes: usize,
}

impl Default for AnalyticsOptions {
    fn default() -> Self {
        AnalyticsOptions {
            map_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_millis(500),
            query_timeout: Duration::from_secs(10),
            listing_ttl: Duration::from_secs(3),
            virtual_nodes: DEFAULT_VIRTUAL_NODES,
        }
    }
}

/// One query, as the web layer checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub group: GroupId,
    pub since: UnixMillis,
    /// Exclusive: the messages counted were created in `[since, until)`.
    pub until: UnixMillis,
    /// Range length in ms.
    pub length: i64,
    /// The epoch the answer is computed at: every share comes from a copy that holds at least it.
    pub epoch: Epoch,
}

/// What one node contributed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub ranges: usize,
    /// Ranges it answered from its cache.
    pub cached: usize,
    /// Messages its ranges held.
    pub messages: u64,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    pub stats: Stats,
    pub ranges: usize,
    pub computed_by: BTreeMap<NodeId, Share>,
    /// Nodes that were asked but did not answer their share, with why.
    pub declined: BTreeMap<NodeId, String>,
}

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The client's parameters cannot be split (400).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// No node could compute some range, or the query ran out of time (503).
    #[error("{0}")]
    Unavailable(String),
}

/// How this node finds the others' admin ports.
enum Directory {
    /// No other node (tests, and a node that runs alone).
    Alone,
    /// These nodes, at these admin base URLs.
    Fixed(BTreeMap<NodeId, String>),
    Bootstrap {
        address: ServiceAddr,
        listing: tokio::sync::Mutex<Option<Listing>>,
    },
}

struct Listing {
    fetched: Instant,
    /// Admin base URL of every listed node but this one.
    admin: BTreeMap<NodeId, String>,
}

/// The analytics of one node: its own copy's mapper, and the means to ask the others.
pub struct Analytics {
    mapper: Mapper,
    directory: Directory,
    /// Signs map requests (`None` alone: no request leaves the node).
    key: Option<ProofKey>,
    http: reqwest::Client,
    options: AnalyticsOptions,
}

impl Analytics {
    /// A node that asks the nodes the bootstrap at `bootstrap` lists, signing with `key`.
    pub fn new(
        mapper: Mapper,
        bootstrap: ServiceAddr,
        key: ProofKey,
        options: AnalyticsOptions,
    ) -> Self {
        Analytics {
            mapper,
            directory: Directory::Bootstrap {
                address: bootstrap,
                listing: tokio::sync::Mutex::new(None),
            },
            key: Some(key),
            http: client(&options),
            options,
        }
    }

    /// A node that asks exactly `peers` (node → admin base URL), signing with `key`.
    pub fn with_peers(
        mapper: Mapper,
        peers: BTreeMap<NodeId, String>,
        key: ProofKey,
        options: AnalyticsOptions,
    ) -> Self {
        Analytics {
            mapper,
            directory: Directory::Fixed(peers),
            key: Some(key),
            http: client(&options),
            options,
        }
    }

    /// A node that computes every range itself.
    pub fn alone(mapper: Mapper) -> Self {
        let options = AnalyticsOptions::default();
        Analytics {
            mapper,
            directory: Directory::Alone,
            key: None,
            http: client(&options),
            options,
        }
    }

    /// The epoch a query of a client that has seen `client_epoch` is answered at: what the client
    /// has seen, or what this node's own confirmed copy holds if that is more.
    pub async fn epoch_for(&self, client_epoch: Epoch) -> Epoch {
        let own = self.mapper.confirmed_epoch().await.unwrap_or(Epoch(0));
        client_epoch.max(own)
    }

    /// Runs `query` across the cluster.
    #[tracing::instrument(name = "stats_query", skip_all, fields(group = %query.group, epoch = query.epoch.0))]
    pub async fn run(&self, query: &Query) -> Result<QueryAnswer, QueryError> {
        let ranges = plan::split(query.since, query.until, query.length)?;
        let peers = self.peers().await;
        let me = self.mapper.me;
        let ring = Ring::new(
            peers.keys().copied().chain([me]),
            self.options.virtual_nodes,
        );
        let preferences = plan::preferences(&ring, query.group, &ranges, query.length);
        match tokio::time::timeout(
            self.options.query_timeout,
            self.gather(query, &ranges, &preferences, &peers),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => Err(QueryError::Unavailable(format!(
                "the statistics were not computed within {} s; retry later",
                self.options.query_timeout.as_secs()
            ))),
        }
    }

    /// Asks every node its share and reassigns the shares of those that fail, until every range is
    /// mapped or some range has no node left.
    async fn gather(
        &self,
        query: &Query,
        ranges: &[TimeRange],
        preferences: &[Vec<NodeId>],
        peers: &BTreeMap<NodeId, String>,
    ) -> Result<QueryAnswer, QueryError> {
        let mut excluded: BTreeSet<NodeId> = BTreeSet::new();
        let mut declined: BTreeMap<NodeId, String> = BTreeMap::new();
        let mut computed_by: BTreeMap<NodeId, Share> = BTreeMap::new();
        let mut partials: Vec<Partial> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let (assigned, orphans) = plan::assign(preferences, 0..ranges.len(), &excluded);
        debug_assert!(orphans.is_empty(), "the ring holds this node at least");
        for (node, indices) in assigned {
            in_flight.push(self.ask(node, peers.get(&node), query, ranges, indices));
        }
        while let Some((node, indices, result)) = in_flight.next().await {
            match result {
                Ok(answer) => {
                    let share = computed_by.entry(node).or_default();
                    share.ranges += answer.ranges;
                    share.cached += answer.cached;
                    share.messages += answer.partial.messages;
                    partials.push(answer.partial);
                }
                Err(why) => {
                    tracing::info!(%node, ranges = indices.len(), reason = %why, "a node did not compute its share; its ranges move on");
                    excluded.insert(node);
                    declined.insert(node, why);
                    let (assigned, orphans) = plan::assign(preferences, indices, &excluded);
                    if !orphans.is_empty() {
                        let reasons: Vec<String> = declined.values().cloned().collect();
                        return Err(QueryError::Unavailable(format!(
                            "no copy can compute the statistics now ({}); retry later",
                            reasons.join("; ")
                        )));
                    }
                    for (next, indices) in assigned {
                        in_flight.push(self.ask(next, peers.get(&next), query, ranges, indices));
                    }
                }
            }
        }
        Ok(QueryAnswer {
            stats: reduce::reduce(&partials, reduce::TOP_WORDS),
            ranges: ranges.len(),
            computed_by,
            declined,
        })
    }

    /// Asks `node` (at `admin`, or this node itself) for the ranges at `indices`; answers them back
    /// with the outcome, the answer checked against the question.
    async fn ask(
        &self,
        node: NodeId,
        admin: Option<&String>,
        query: &Query,
        ranges: &[TimeRange],
        indices: Vec<usize>,
    ) -> (NodeId, Vec<usize>, Result<MapAnswer, String>) {
        let request = MapRequest {
            request: uuid::Uuid::new_v4(),
            group: query.group,
            epoch: query.epoch,
            length: query.length,
            ranges: indices
                .iter()
                .filter_map(|&i| ranges.get(i).copied())
                .collect(),
        };
        let answer = if node == self.mapper.me {
            self.mapper
                .map(&request)
                .await
                .map_err(|declined| declined.to_string())
        } else {
            match admin {
                Some(admin) => self.post(admin, &request).await,
                None => Err(format!("node {node} is not listed")),
            }
        };
        let checked = answer.and_then(|answer| {
            if answer.node != node || answer.ranges != request.ranges.len() {
                Err(format!(
                    "node {node} answered as node {} for {} ranges of {}",
                    answer.node,
                    answer.ranges,
                    request.ranges.len()
                ))
            } else if answer.epoch < query.epoch {
                Err(format!(
                    "node {node} answered at epoch {}, below {}",
                    answer.epoch.0, query.epoch.0
                ))
            } else {
                Ok(answer)
            }
        });
        (node, indices, checked)
    }

    /// `POST /stats/map` on the admin port at `admin`, signed, within the map timeout.
    async fn post(&self, admin: &str, request: &MapRequest) -> Result<MapAnswer, String> {
        let Some(key) = &self.key else {
            return Err("this node cannot sign requests".into());
        };
        let body = serde_json::to_vec(request).map_err(|error| error.to_string())?;
        let proof = proof_header(key, Rpc::AdminStatsMap, &body);
        let response = self
            .http
            .post(format!("{admin}/stats/map"))
            .header(AUTH_HEADER, proof)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.options.map_timeout)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    format!(
                        "{admin} did not answer within {:?}",
                        self.options.map_timeout
                    )
                } else {
                    format!("{admin} cannot be reached: {error}")
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<MapAnswer>()
                .await
                .map_err(|error| format!("{admin} answered something else: {error}"));
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Err(body["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{admin} answered {status}")))
    }

    /// Every other node's admin base URL, from the bootstrap's listing (reused for `listing_ttl`;
    /// the last one stands while the bootstrap does not answer).
    async fn peers(&self) -> BTreeMap<NodeId, String> {
        let (address, listing) = match &self.directory {
            Directory::Alone => return BTreeMap::new(),
            Directory::Fixed(peers) => return peers.clone(),
            Directory::Bootstrap { address, listing } => (address, listing),
        };
        let mut listing = listing.lock().await;
        if let Some(current) = listing.as_ref()
            && current.fetched.elapsed() < self.options.listing_ttl
        {
            return current.admin.clone();
        }
        match list_admin_ports(address, self.mapper.me).await {
            Ok(admin) => {
                *listing = Some(Listing {
                    fetched: Instant::now(),
                    admin: admin.clone(),
                });
                admin
            }
            Err(error) => {
                tracing::warn!(%error, "cannot list the nodes for the statistics; using the last listing");
                listing
                    .as_ref()
                    .map(|current| current.admin.clone())
                    .unwrap_or_default()
            }
        }
    }
}

fn client(options: &AnalyticsOptions) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .build()
        .unwrap_or_default()
}

/// `ListNodes`: every registered node but `me`, with its admin base URL.
async fn list_admin_ports(
    bootstrap: &ServiceAddr,
    me: NodeId,
) -> Result<BTreeMap<NodeId, String>, String> {
    let channel = Endpoint::from_shared(bootstrap.grpc_uri())
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|error| format!("cannot reach the bootstrap at {bootstrap}: {error}"))?;
    let listing = BootstrapClient::new(channel)
        .list_nodes(ListNodesRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    Ok(listing
        .nodes
        .into_iter()
        .filter_map(|entry| entry.address)
        .filter_map(|address| {
            let id = parse_node_id(address.id).ok()?;
            let port = u16::try_from(address.admin_port).ok().filter(|p| *p != 0)?;
            (id != me).then(|| (id, admin_url(&address.host, port)))
        })
        .collect())
}

/// `http://host:port`, brackets around an IPv6 address.
fn admin_url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}
