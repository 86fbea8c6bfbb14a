//! The control plane at run time: drives the pure [`overlay::Overlay`] with a monotonic clock, a
//! ticker and the control transport, and reports what it decides.
//!
//! ```text
//!   transport inbound ──bytes──▶ ┌──────────────┐ ──envelopes──▶ transport.send (fire and forget)
//!   ticker (25 ms) ─────now────▶ │   Overlay    │ ──events─────▶ logs, metrics
//!   bootstrap refresh ─ids─────▶ │              │ ──RepairNeeded─▶ bootstrap Repair, or the Directory
//!   repairs ───────────ids─────▶ └──────────────┘ ──accessors──▶ StatusBoard (/status), ControlView
//! ```
//!
//! One task owns the overlay, so its state needs no lock. Everything the algorithms decide is in the
//! overlay crate; this module only moves bytes, keeps time and publishes. A message from a node the
//! bootstrap has not told us about (a neighbour that registered after us, or one a repair linked to
//! us) triggers a re-registration, which answers our current neighbour set with addresses; while the
//! bootstrap is away, a sender found in the last listing ([`Directory`]) is accepted from there. A
//! node short of live neighbours asks the bootstrap to repair it, or, while the bootstrap is away,
//! links to its neighbours' neighbours (`topology::fallback_candidates`).

mod view;

pub use view::ControlView;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use overlay::{Epoch, Event, Millis, Overlay, Term, Timing};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::NodeContext;
use crate::discovery::{self, AddressBook, Directory, Neighbour, RepairAnswer};
use crate::logging::HEADLINE;
use crate::metrics::{Metrics, RepairLabel, ScopeLabel};
use crate::status::{NeighbourStatus, StatusBoard};
use crate::transport::{Inbound, SendError, Transport, TransportStats};

/// How often the overlay's timers are driven. Its own intervals (heartbeat 100 ms, failure timeout
/// 700 ms, …) are multiples of this, so a finer step only makes them more punctual.
pub const TICK: Duration = Duration::from_millis(25);

/// Messages handled per wake-up before the status is republished: bounds publication cost under a
/// burst without delaying ticks.
const BATCH: usize = 256;

/// At most one bootstrap refresh in flight, and none more often than this.
const REFRESH_SPACING: Duration = Duration::from_millis(300);

/// The running control plane of one node.
pub struct ControlPlane<T: Transport> {
    overlay: Overlay,
    transport: Arc<T>,
    inbound: mpsc::Receiver<Inbound>,
    origin: Instant,
    config: Config,
    status: StatusBoard,
    view: watch::Sender<ControlView>,
    metrics: Arc<Metrics>,
    refresh: Refresh,
    /// Ticks since the neighbours were last compared with the bootstrap's listing.
    ticks_since_listing_check: u32,
    transport_seen: TransportSeen,
    addresses: AddressBook,
    /// The `(term, epoch)` of this node's data, from the data plane: what it runs for election with.
    data_position: watch::Receiver<(Term, Epoch)>,
    /// How many nodes the bootstrap has registered.
    registered: watch::Receiver<usize>,
    /// The data plane of a root asks for a new election here when a node of its tree has newer data.
    election_requests: mpsc::Receiver<()>,
    /// The bootstrap's last listing, for repairs and unknown peers while it is away.
    directory: Directory,
    /// The bootstrap's k: how many live neighbours to keep.
    degree: usize,
    merged: mpsc::Receiver<Vec<Neighbour>>,
    /// Neighbours the node hears, waiting to be sent with a repair request (at most one in flight).
    repair_wanted: Option<Vec<overlay::NodeId>>,
    repair_in_flight: bool,
}

/// What the control plane hears from the rest of the node.
pub struct ControlInputs {
    /// The `(term, epoch)` of this node's data: what it runs for election with.
    pub data_position: watch::Receiver<(Term, Epoch)>,
    /// How many nodes are registered with the bootstrap (0 until known).
    pub registered: watch::Receiver<usize>,
    /// Requests for a new election (see [`overlay::Overlay::call_election`]).
    pub election_requests: mpsc::Receiver<()>,
    /// The bootstrap's listing, kept current by `discovery::follow_registered`.
    pub directory: Directory,
    /// How many live neighbours to keep (the bootstrap's k; 0 turns repair off).
    pub degree: usize,
    /// Neighbours the bootstrap linked on a lease renewal to join a split.
    pub merged: mpsc::Receiver<Vec<Neighbour>>,
}

/// How often (in control ticks, 50–100 ms each) the neighbours are compared with the bootstrap's
/// listing, besides whenever the registered count changes.
const LISTING_CHECK_TICKS: u32 = 20;

impl<T: Transport> ControlPlane<T> {
    /// A control plane for `config.id` with the neighbours the bootstrap answered.
    pub fn new(
        config: Config,
        neighbours: &[Neighbour],
        transport: Arc<T>,
        inbound: mpsc::Receiver<Inbound>,
        context: &NodeContext,
        inputs: ControlInputs,
    ) -> Self {
        let ControlInputs {
            data_position,
            registered,
            election_requests,
            directory,
            degree,
            merged,
        } = inputs;
        let NodeContext {
            status,
            metrics,
            addresses,
            ..
        } = context.clone();
        let origin = Instant::now();
        for neighbour in neighbours {
            if let Some(addr) = control_addr(neighbour) {
                transport.set_peer(neighbour.id, addr);
            }
        }
        // The start time tells neighbours that this is a new incarnation of the node, so one that
        // restarted without its memory is recognised at once instead of after a timeout.
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let overlay = Overlay::new(
            config.id,
            neighbours.iter().map(|n| n.id),
            Timing::default(),
            Millis(0),
        )
        .with_incarnation(incarnation);
        let mut overlay = overlay;
        let (term, epoch) = *data_position.borrow();
        overlay.set_election_value(term, epoch);
        overlay.set_repair_target(repair_target(degree, *registered.borrow()));
        let (view, _) = watch::channel(ControlView {
            registered: *registered.borrow(),
            ..ControlView::from_overlay(&overlay)
        });
        Self {
            overlay,
            transport,
            inbound,
            origin,
            config,
            status,
            view,
            metrics,
            refresh: Refresh::default(),
            ticks_since_listing_check: 0,
            transport_seen: TransportSeen::default(),
            addresses,
            data_position,
            registered,
            election_requests,
            directory,
            degree,
            merged,
            repair_wanted: None,
            repair_in_flight: false,
        }
    }

    /// A receiver of the tree view (leader, parent, children, roles, routes) for the data plane.
    pub fn subscribe(&self) -> watch::Receiver<ControlView> {
        self.view.subscribe()
    }

    /// Runs until `shutdown` is cancelled.
    #[tracing::instrument(name = "control", skip_all, fields(node = %self.config.id))]
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (refreshed_tx, mut refreshed) = mpsc::channel::<Option<Vec<Neighbour>>>(4);
        let (repaired_tx, mut repaired) = mpsc::channel::<Result<RepairAnswer, String>>(1);
        self.publish();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(answer) = refreshed.recv() => {
                    self.refresh.in_flight = false;
                    match answer {
                        Some(neighbours) => {
                            for neighbour in &neighbours {
                                self.refresh.unknown.remove(&neighbour.id);
                            }
                            self.adopt_neighbours(neighbours);
                            // A peer the bootstrap does not list as ours linked to us from the
                            // listing while it was away: link back from the listing too.
                            self.accept_unknown_from_directory(false);
                        }
                        None => self.accept_unknown_from_directory(true),
                    }
                }
                Some(neighbours) = self.merged.recv() => {
                    tracing::info!(target: HEADLINE, added = %ids(&neighbours), "repaired: the bootstrap joined a split through this node");
                    self.count_repaired("bootstrap", neighbours.len());
                    self.adopt_neighbours(neighbours);
                }
                Some(answer) = repaired.recv() => {
                    self.repair_in_flight = false;
                    self.on_repair_answer(answer);
                }
                Ok(()) = self.data_position.changed() => {
                    let (term, epoch) = *self.data_position.borrow_and_update();
                    self.overlay.set_election_value(term, epoch);
                    self.status.update(|status| status.data_epoch = epoch.0);
                }
                Ok(()) = self.registered.changed() => {
                    let registered = *self.registered.borrow_and_update();
                    self.overlay.set_repair_target(repair_target(self.degree, registered));
                    self.forget_removed();
                }
                Some(()) = self.election_requests.recv() => {
                    tracing::warn!(target: HEADLINE, "a node of this tree holds newer data; calling an election so it can lead");
                    let output = self.overlay.call_election(self.now());
                    self.apply(output);
                }
                received = self.inbound.recv() => {
                    let Some(first) = received else { break };
                    self.receive(first);
                    for _ in 1..BATCH {
                        match self.inbound.try_recv() {
                            Ok(next) => self.receive(next),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    let output = self.overlay.on_tick(self.now());
                    self.apply(output);
                    // Also on a slow beat, not only when the count changes: a repair answered just
                    // before a removal can bring the removed node back, and a node still alive
                    // when its removal was listed goes once it is dead.
                    self.ticks_since_listing_check += 1;
                    if self.ticks_since_listing_check >= LISTING_CHECK_TICKS {
                        self.forget_removed();
                    }
                }
            }
            if self.refresh.wanted && self.refresh.may_start() {
                self.refresh.start();
                let config = self.config.clone();
                let sender = refreshed_tx.clone();
                tokio::spawn(async move {
                    let neighbours = match discovery::register_once(&config).await {
                        Ok(registration) => Some(registration.neighbours),
                        Err(error) => {
                            tracing::warn!(%error, "neighbour refresh failed; retrying");
                            None
                        }
                    };
                    let _ = sender.send(neighbours).await;
                });
            }
            if !self.repair_in_flight
                && let Some(live) = self.repair_wanted.take()
            {
                self.repair_in_flight = true;
                self.metrics.repair_requests.inc();
                let config = self.config.clone();
                let sender = repaired_tx.clone();
                tokio::spawn(async move {
                    let answer = discovery::repair_once(&config, &live)
                        .await
                        .map_err(|error| error.to_string());
                    let _ = sender.send(answer).await;
                });
            }
            self.publish();
        }
        tracing::debug!("control plane stopped");
    }

    fn now(&self) -> Millis {
        Millis(self.origin.elapsed().as_millis() as u64)
    }

    fn receive(&mut self, inbound: Inbound) {
        let envelope = match overlay::decode(&inbound.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                self.metrics.control_undecodable.inc();
                tracing::debug!(from = %inbound.from, %error, "dropping an undecodable control message");
                return;
            }
        };
        self.metrics
            .control_received
            .get_or_create(&ScopeLabel {
                scope: scope_name(envelope.header.scope),
            })
            .inc();
        let output = self.overlay.on_message(self.now(), inbound.from, envelope);
        self.apply(output);
    }

    fn apply(&mut self, output: overlay::Output) {
        for (to, envelope) in output.messages {
            let scope = scope_name(envelope.header.scope);
            match self
                .transport
                .send(to, Bytes::from(overlay::encode(&envelope)))
            {
                Ok(()) => {
                    self.metrics
                        .control_sent
                        .get_or_create(&ScopeLabel { scope })
                        .inc();
                }
                Err(error) => {
                    self.metrics.control_send_failures.inc();
                    if matches!(error, SendError::UnknownPeer(_)) {
                        self.refresh.wanted = true;
                    }
                    tracing::trace!(%to, %error, "control message not sent");
                }
            }
        }
        for event in output.events {
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: Event) {
        let me = self.config.id;
        match event {
            Event::UnknownPeer { peer } => {
                tracing::info!(%peer, "message from a node that is not a known neighbour; asking the bootstrap");
                self.refresh.wanted = true;
                self.refresh.unknown.insert(peer);
            }
            Event::RepairNeeded { live } => {
                tracing::info!(
                    live = live.len(),
                    target = self.overlay.repair_target(),
                    "fewer live neighbours than wanted; asking for more"
                );
                self.repair_wanted = Some(live);
            }
            Event::NeighbourUp { neighbour } => tracing::info!(%neighbour, "neighbour up"),
            Event::NeighbourDown { neighbour } => tracing::info!(%neighbour, "neighbour down"),
            Event::ElectionStarted { election } => {
                self.metrics.elections_started.inc();
                tracing::info!(?election, "started an election");
            }
            Event::LeaderElected { leader, term } => {
                if leader == me {
                    self.metrics.elections_won.inc();
                    tracing::info!(target: HEADLINE, %term, "elected leader");
                } else {
                    tracing::info!(target: HEADLINE, %leader, %term, "following leader");
                }
            }
            Event::LeaderLost { leader, term } => {
                self.metrics.leaders_lost.inc();
                tracing::warn!(target: HEADLINE, %leader, %term, "leader lost; electing again");
            }
            Event::Orphaned { lost_parent } => {
                tracing::info!(target: HEADLINE, %lost_parent, "parent lost; asking neighbours to adopt");
            }
            Event::Adopted { parent } => {
                self.metrics.heals.inc();
                tracing::info!(target: HEADLINE, %parent, "healed: adopted into the tree");
            }
            Event::RolesChanged { roles } => {
                let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
                tracing::info!(target: HEADLINE, roles = %names.join(","), "roles changed");
            }
            Event::TreeReady { leader, term } => tracing::info!(%leader, %term, "tree ready"),
            Event::ParentChanged { parent } => tracing::debug!(?parent, "parent changed"),
            Event::ChildrenChanged { children } => tracing::debug!(?children, "children changed"),
            Event::RoutesChanged => {
                tracing::debug!(routes = ?self.overlay.routes(), "routes changed")
            }
        }
    }

    /// Unknown peers the bootstrap did not place as ours: those in its last listing are cluster
    /// members (and could seal their frames), so link them now. With `retry` (the bootstrap could
    /// not be asked) ask again for the rest, since the overlay reports an unknown peer only once;
    /// after an answer that lacks them, drop them.
    fn accept_unknown_from_directory(&mut self, retry: bool) {
        let unknown = std::mem::take(&mut self.refresh.unknown);
        let mut found = Vec::new();
        for peer in unknown {
            match self.directory.neighbour(peer) {
                Some(neighbour) => found.push(neighbour),
                None => {
                    self.refresh.unknown.insert(peer);
                }
            }
        }
        if !found.is_empty() {
            tracing::info!(peers = %ids(&found), "linked peers from the bootstrap's last listing");
            self.adopt_neighbours(found);
        }
        if !retry {
            self.refresh.unknown.clear();
        }
        self.refresh.wanted = !self.refresh.unknown.is_empty();
    }

    /// Drops from the overlay the dead neighbours the bootstrap's listing no longer has (an operator
    /// removed them for good), so nothing more is sent to their addresses. One still alive here (its
    /// death not yet noticed, or removed by force while running) is dropped on a later check.
    fn forget_removed(&mut self) {
        self.ticks_since_listing_check = 0;
        if !self.directory.is_listed() {
            return; // no listing yet: nothing is known to be gone
        }
        let gone: Vec<crate::config::NodeId> = self
            .overlay
            .neighbours()
            .iter()
            .map(|neighbour| neighbour.id)
            .filter(|id| self.directory.neighbour(*id).is_none())
            .collect();
        let mut dropped = false;
        for id in gone {
            if self.overlay.remove_neighbour(id) {
                self.transport.remove_peer(id);
                dropped = true;
                tracing::info!(target: HEADLINE, neighbour = %id, "dropped a neighbour removed from the cluster");
            }
        }
        if dropped {
            self.publish();
        }
    }

    fn count_repaired(&self, source: &'static str, edges: usize) {
        self.metrics
            .repaired_edges
            .get_or_create(&RepairLabel { source })
            .inc_by(edges as u64);
    }

    /// Adds what a repair found: the bootstrap's choice, or, when it could not be asked, the
    /// neighbours' neighbours from its last listing.
    fn on_repair_answer(&mut self, answer: Result<RepairAnswer, String>) {
        match answer {
            Ok(answer) => {
                if answer.added.is_empty() {
                    tracing::info!("the bootstrap had no live node to add; asking again later");
                } else {
                    tracing::info!(target: HEADLINE, added = %ids(&answer.added), "repaired: new neighbours from the bootstrap");
                }
                self.count_repaired("bootstrap", answer.added.len());
                self.adopt_neighbours(answer.neighbours);
            }
            Err(error) => {
                let live = self.overlay.live_neighbours().clone();
                let need = self.overlay.repair_target().saturating_sub(live.len());
                let lists = self.directory.lists();
                let picks: Vec<Neighbour> =
                    topology::fallback_candidates(self.config.id, &live, &lists, need)
                        .into_iter()
                        .filter_map(|id| self.directory.neighbour(id))
                        .collect();
                tracing::warn!(%error, picked = %ids(&picks), "cannot ask the bootstrap for a repair; linking neighbours' neighbours");
                self.count_repaired("neighbours", picks.len());
                self.adopt_neighbours(picks);
            }
        }
    }

    fn adopt_neighbours(&mut self, neighbours: Vec<Neighbour>) {
        self.addresses.update(&neighbours);
        for neighbour in neighbours {
            let Some(addr) = control_addr(&neighbour) else {
                continue;
            };
            self.transport.set_peer(neighbour.id, addr);
            let output = self.overlay.add_neighbour(self.now(), neighbour.id);
            self.apply(output);
        }
    }

    /// Copies the overlay's state to `/status`, the data plane's view and the gauges.
    fn publish(&mut self) {
        let view = ControlView {
            registered: *self.registered.borrow(),
            ..ControlView::from_overlay(&self.overlay)
        };
        self.view.send_if_modified(|current| {
            if *current == view {
                false
            } else {
                *current = view.clone();
                true
            }
        });
        let neighbours = self.overlay.neighbours();
        self.status.update(|status| {
            status.ready = view.ready;
            status.leader = view.leader;
            status.term = view.term;
            status.tree_roles = view.roles.clone();
            status.refresh_roles();
            status.parent = view.parent;
            status.children = view.children.clone();
            status.neighbors = neighbours
                .iter()
                .map(|n| NeighbourStatus {
                    id: n.id,
                    alive: n.alive,
                })
                .collect();
            status.tick = self.overlay.tick();
            status.clock = self.overlay.clock().0;
        });
        self.metrics.ready.set(i64::from(view.ready));
        self.metrics.term.set(view.term as i64);
        self.metrics.tick.set(self.overlay.tick() as i64);
        self.metrics
            .live_neighbours
            .set(self.overlay.live_neighbours().len() as i64);
        self.metrics.neighbours.set(neighbours.len() as i64);
        self.transport_seen
            .export(self.transport.stats(), &self.metrics);
    }
}

/// `1,4,7`, for log lines.
fn ids(neighbours: &[Neighbour]) -> String {
    let ids: Vec<String> = neighbours.iter().map(|n| n.id.to_string()).collect();
    ids.join(",")
}

/// Live neighbours to keep: the bootstrap's k, but never more than the other nodes registered.
fn repair_target(degree: usize, registered: usize) -> usize {
    degree.min(registered.saturating_sub(1))
}

/// Rate limit for re-registering with the bootstrap to learn new neighbours.
#[derive(Debug, Default)]
struct Refresh {
    wanted: bool,
    in_flight: bool,
    last: Option<Instant>,
    /// Peers reported unknown since the last successful refresh.
    unknown: std::collections::BTreeSet<overlay::NodeId>,
}

impl Refresh {
    fn may_start(&self) -> bool {
        !self.in_flight
            && self
                .last
                .is_none_or(|last| last.elapsed() >= REFRESH_SPACING)
    }

    fn start(&mut self) {
        self.wanted = false;
        self.in_flight = true;
        self.last = Some(Instant::now());
    }
}

/// Transport counters already exported, so `/metrics` counters advance by the difference.
#[derive(Debug, Default)]
struct TransportSeen {
    dropped: u64,
}

impl TransportSeen {
    fn export(&mut self, stats: &TransportStats, metrics: &Metrics) {
        let dropped = TransportStats::get(&stats.dropped);
        metrics
            .control_transport_dropped
            .inc_by(dropped.saturating_sub(self.dropped));
        self.dropped = dropped;
    }
}

fn control_addr(neighbour: &Neighbour) -> Option<SocketAddr> {
    match neighbour.host.parse() {
        Ok(ip) => Some(SocketAddr::new(ip, neighbour.control_port)),
        Err(_) => {
            tracing::warn!(id = %neighbour.id, host = %neighbour.host, "neighbour host is not an IP address; skipping it");
            None
        }
    }
}

fn scope_name(scope: overlay::Scope) -> &'static str {
    match scope {
        overlay::Scope::Topology => "topology",
        overlay::Scope::Heartbeat => "heartbeat",
        overlay::Scope::Election => "election",
        overlay::Scope::Tree => "tree",
        overlay::Scope::Data => "data",
    }
}
