//! The data plane: client operations up the tree, answers and commits down, replication to the
//! voters and learners, and the local database opened or closed as the node's role changes. The
//! rules it follows (routing, quorum counting, subtree summaries, write acceptance, the log check of a
//! catch-up, data terms, configuration changes) are the pure functions and state machines of the
//! `replication` crate; this module is their runtime.
//!
//! ```text
//!            ProxyService (web layer) ──Submit──┐
//!                                               ▼
//!   data transport ──Inbound──▶ ┌─────────── DataPlane task ───────────┐ ──▶ parent: Request, Ack, CatchUp,
//!                               │ pending table (origin only)          │            Summary
//!   ControlView (roles, tree) ─▶│ role: writer | copy | none           │ ──▶ children: Response, Commit,
//!                               │ acks, voters (writer)                │            Entries, Position
//!   writer's commits ──────────▶└──────────────────────────────────────┘ ──▶ events (live updates)
//!                                     │ spawns one task per local answer      (term, epoch) → election
//!                                     ▼
//!                              LocalService (writer or copy database)
//! ```
//!
//! | file | what it does |
//! | --- | --- |
//! | `mod.rs` | the plane's state, its task loop, decoding and dispatching messages, housekeeping |
//! | `routing.rs` | where a request goes (answered here or sent up) and how its answer gets back |
//! | `copy.rs` | the runtime of a copy's state machine (`replication::copy`): entries to the applier, its results back, its commands (acknowledge, report, catch up, whole, discard) carried out |
//! | `writer.rs` | the writer sending commits down, serving catch-ups, changing the voter configuration |
//! | `acceptance.rs` | subtree summaries, the root's state machine (`replication::root`) fed and its commands run, promises and the term written off the plane's task |
//! | `lifecycle.rs` | following the tree: links, roles, the database, the configuration and position this node holds |
//! | `links.rs` | sending to the parent, the children, one hop down |
//! | `ephemeral.rs` | ephemeral groups' events from the writer's memory down the whole tree, and the end of them all when the writer changes |
//! | `presence.rs` | who is online and who is typing, relayed up and down the tree (`crate::presence`), never logged |
//! | `applier.rs` | the copy's applier task (transactions off the plane's task) |
//! | `quorum.rs` | a write waiting for a majority of the voters |
//! | `voters.rs` | the writer's bookkeeping for configuration changes |
//! | `message.rs` | what travels on the data plane, and its codec |
//!
//! Who answers what: the writer answers everything; every other node keeps a copy and answers a read
//! when the current writer has confirmed that copy and the client's epoch is in `1..=its own`
//! (DESIGN §4), otherwise the request goes on to its parent. An input node thus answers most reads
//! of its users from its own copy, without a hop. Only the origin keeps state about a request, so
//! losses anywhere become the origin's `Timeout`, never a hang. A write is answered only once a
//! majority of the voters hold it durably.
//!
//! One writer at a time, and no acknowledged write lost (DESIGN §4, docs/FAILOVER.md):
//! - The root *accepts writes* only while its tree holds a majority of the whole voters of its newest
//!   configuration, every node of the tree has reported its data position up the tree
//!   ([`DataMessage::Summary`]), and none holds newer data than the root. Then it claims a data term
//!   of its own above every promise its tree reports ([`DataMessage::Claim`]), and once a majority of
//!   the whole voters promised it on disk it starts writing under it, with a first entry that
//!   restates the voters. A node with newer data makes the root call an election, which that node
//!   wins (the election value is the data position). Otherwise writes get 503 and pending
//!   acknowledgements fail.
//! - Every message carries the sender's term; older terms are dropped.
//! - A copy applies commits only after the writer has checked that the copy's log is a prefix of
//!   its own (`CatchUp` carries the term of the copy's last entry). A copy holding entries the
//!   writer never had discards its copy and rebuilds it from the writer's log.

mod acceptance;
mod applier;
mod copy;
mod ephemeral;
mod lifecycle;
mod links;
pub mod message;
mod presence;
mod proxy;
pub mod quorum;
mod routing;
#[cfg(test)]
mod tests;
mod voters;
mod writer;

pub use message::{DataMessage, Envelope, RequestId};
pub use proxy::ProxyService;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::NodeId;
use crate::context::{DatabaseSlot, NodeContext};
use crate::control::ControlView;
use crate::discovery::AddressBook;
use crate::logging::HEADLINE;
use crate::metrics::{AnsweredBy, Metrics};
use crate::presence::relay::Relay;
use crate::presence::{Presence, TypingNotice};
use crate::service::ephemeral::EphemeralEvent;
use crate::service::{
    ChatService, LocalService, ServiceError, ServiceOptions, ServiceRequest, ServiceResponse,
};
use crate::status::StatusBoard;
use crate::storage::{Database, DatabaseOptions, Epoch, LogEntry, StorageError, Term, UserId};
use crate::transport::{Inbound, Transport};
use applier::{Applied, Applier, Batch};
use overlay::Millis;
use quorum::{CATCH_UP_BATCH, wait_for_quorum};
use replication::copy::Replica;
use replication::{
    Acceptance, Acks, Below, Configuration, ReplicationFactor, Root, Summary, TreeReport,
};
use voters::{VoterTracking, first_voters, tree_members};

/// Most entries the writer sends down in one commit message.
const COMMIT_BATCH: usize = 512;

/// How recent the writer's last word (a [`DataMessage::Position`], sent every 500 ms) must be for
/// a node below it to vouch that the writer is reachable: three rounds, so one or two lost messages
/// or a slow round do not flip an input node's readiness.
pub const WRITER_HEARD_WITHIN: Duration = Duration::from_millis(1500);

/// A gap this long between two housekeeping rounds (every 500 ms) means the process was stopped or
/// starved.
const STALL: Duration = Duration::from_millis(1500);

/// What the data plane tells the rest of the node.
pub struct DataOutputs {
    /// The `(term, epoch)` of the local data whenever it changes (the election compares it).
    pub position: watch::Sender<(Term, Epoch)>,
    /// Asks the control plane for a new election (a node of this root's tree has newer data).
    pub election_requests: mpsc::Sender<()>,
}

/// An operator's request to take `node` out of the cluster (`POST /remove` on the admin port),
/// answered once the writer accepted it (the configuration change then follows) or refused it.
pub struct RemovalRequest {
    pub node: NodeId,
    /// Remove it even though it is alive.
    pub force: bool,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// How the data plane behaves.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// How long the origin of a request waits for its answer.
    pub request_timeout: Duration,
    /// How long a committed write waits for a quorum of replicas before it is reported unavailable.
    pub quorum_timeout: Duration,
    /// Where the database lives while this node is the writer or a replica.
    pub data_dir: PathBuf,
    pub database: DatabaseOptions,
    pub service: ServiceOptions,
    /// How many voters the writer keeps (DESIGN §4, the voter set).
    pub replication_factor: ReplicationFactor,
    /// How long a voter may stay out of the writer's tree before a learner replaces it.
    pub voter_grace: Duration,
    /// The copy found at start holds everything this node ever acknowledged (false when the node
    /// ran in the cluster before but its database is gone).
    pub whole_at_start: bool,
}

impl DataOptions {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            quorum_timeout: Duration::from_secs(3),
            data_dir,
            database: DatabaseOptions::default(),
            service: ServiceOptions::default(),
            replication_factor: ReplicationFactor::DEFAULT,
            voter_grace: Duration::from_secs(5),
            whole_at_start: true,
        }
    }
}

/// The writer's last word, as it reached this node through its parent.
#[derive(Debug, Clone, Copy)]
struct WriterHeard {
    at: Instant,
    /// The tree it came through: a word from another tree's writer says nothing about this one.
    term: u64,
    accepting: bool,
}

/// A request submitted by this node's own users.
struct Submit {
    request: ServiceRequest,
    reply: oneshot::Sender<Result<ServiceResponse, ServiceError>>,
}

/// What a task spawned to answer locally reports back to the plane.
enum LocalOutcome {
    Answer {
        id: RequestId,
        result: Result<ServiceResponse, ServiceError>,
    },
    /// The local copy could not answer after all (it fell behind meanwhile): send it up.
    Forward {
        id: RequestId,
        request: ServiceRequest,
    },
    /// A configuration entry this writer submitted was written (it also arrives as a commit) or not.
    Configured(Result<Epoch, ServiceError>),
    /// A storage command of the replication rules finished (with the position it leaves, for
    /// taking a term; the promise now held, for a promise).
    Stored {
        command: Stored,
        result: Result<(Term, Epoch), StorageError>,
    },
}

/// The storage commands the replication rules give (run off the plane's task).
#[derive(Debug, Clone, Copy)]
enum Stored {
    /// Promise a claimed data term on disk: the root's own (`root`), or a copy's.
    Promise { term: Term, root: bool },
    /// The writer writes under this term from now on.
    TakeTerm(Term),
}

/// The database role this node currently plays.
enum Local {
    None,
    Writer {
        service: LocalService,
        /// Whether writes are accepted now, and the data term claimed (see the module documentation).
        root: Root,
    },
    Replica {
        service: LocalService,
        /// What the copy holds and whom it follows (`replication::copy`).
        copy: Replica,
    },
}

/// What the web layer may answer itself, without a trip through the plane's task
/// (`DataPlane::publish_shortcut`): the local service while routing would answer here anyway.
#[derive(Clone, Default)]
struct Shortcut {
    service: Option<LocalService>,
    /// The writer, accepting writes: reads and writes. Otherwise a confirmed copy: reads only (one
    /// it is not fresh enough for still goes through the plane, up the tree).
    writes: bool,
}

/// Cloneable entry points into a running data plane.
#[derive(Clone)]
pub struct DataHandle {
    submit: mpsc::Sender<Submit>,
    shortcut: Arc<std::sync::RwLock<Shortcut>>,
    acks: watch::Receiver<Acks>,
    quorum_timeout: Duration,
    events: broadcast::Sender<LogEntry>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    presence: Presence,
    /// Ephemeral groups' events as they reach this node.
    ephemeral: broadcast::Sender<EphemeralEvent>,
}

impl DataHandle {
    /// The service the web layer uses on this node: it answers through the tree.
    pub fn service(&self) -> ProxyService {
        ProxyService::new(self.clone())
    }

    /// The node's metrics (the web layer records its requests there too).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Who is online and typing, as this node's plane relays it.
    pub fn presence(&self) -> Presence {
        self.presence.clone()
    }

    /// Every committed write, as it reaches this node (for live updates).
    pub fn events(&self) -> broadcast::Receiver<LogEntry> {
        self.events.subscribe()
    }

    async fn execute(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
        let started = Instant::now();
        let operation = request.operation.name();
        let result = self.submit_and_wait(request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ServiceError::Timeout) => "timeout",
            Err(ServiceError::Unavailable { .. }) => "unavailable",
            Err(_) => "error",
        };
        self.metrics
            .data_operation_seconds
            .get_or_create(&crate::metrics::OperationLabel { operation, outcome })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn submit_and_wait(
        &self,
        request: ServiceRequest,
    ) -> Result<ServiceResponse, ServiceError> {
        let shortcut = self
            .shortcut
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let request = match shortcut.service {
            Some(service) if shortcut.writes || !request.operation.is_write() => {
                // Answered here, as the plane would have, minus two trips through its task.
                let by = if service.is_writer() {
                    "writer"
                } else {
                    "replica"
                };
                let read = !request.operation.is_write();
                let answered = tokio::time::timeout(
                    self.timeout,
                    routing::answer_locally(
                        &service,
                        request,
                        self.acks.clone(),
                        self.quorum_timeout,
                        &self.metrics,
                    ),
                )
                .await
                .map_err(|_| ServiceError::Timeout)?;
                match answered {
                    Ok(result) => {
                        if read && result.is_ok() {
                            self.metrics
                                .data_reads_answered
                                .get_or_create(&AnsweredBy { by })
                                .inc();
                        }
                        return result;
                    }
                    // Not fresh enough after all: the plane sends it up the tree.
                    Err(request) => request,
                }
            }
            _ => request,
        };
        let (reply, answer) = oneshot::channel();
        self.submit
            .send(Submit { request, reply })
            .await
            .map_err(|_| unavailable())?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable()),
            Err(_) => Err(ServiceError::Timeout),
        }
    }
}

impl crate::service::EventSource for DataHandle {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        Some(self.events())
    }

    fn subscribe_ephemeral(&self) -> Option<broadcast::Receiver<EphemeralEvent>> {
        Some(self.ephemeral.subscribe())
    }
}

fn unavailable() -> ServiceError {
    ServiceError::Unavailable {
        retry_after: Duration::from_secs(1),
    }
}

/// The running data plane of one node.
pub struct DataPlane<T: Transport> {
    me: NodeId,
    options: DataOptions,
    transport: Arc<T>,
    inbound: mpsc::Receiver<Inbound>,
    view: watch::Receiver<ControlView>,
    addresses: AddressBook,
    submits: mpsc::Receiver<Submit>,
    /// Operators' removal requests (`with_removals`); a closed channel when there are none.
    removals: mpsc::Receiver<RemovalRequest>,
    handle: DataHandle,
    outcomes_tx: mpsc::Sender<LocalOutcome>,
    outcomes: mpsc::Receiver<LocalOutcome>,
    pending: HashMap<RequestId, oneshot::Sender<Result<ServiceResponse, ServiceError>>>,
    next_seq: u64,
    database: Option<Database>,
    local: Local,
    /// Applies the writer's entries while this node keeps a copy.
    applier: Option<Applier>,
    applied_tx: mpsc::UnboundedSender<Applied>,
    applied_rx: mpsc::UnboundedReceiver<Applied>,
    acks: watch::Sender<Acks>,
    /// The newest voter configuration in the local log (`None` before the first one).
    configuration: Option<Configuration>,
    /// The writer's view of the voter set.
    voters: VoterTracking,
    /// This node's copy holds everything it ever acknowledged: false after it lost its disk or
    /// discarded a diverged copy, until it caught up with a writer that accepts writes.
    whole: bool,
    /// The highest data term this node's database promised (`None` while it keeps no database).
    promised: Option<Term>,
    /// A copy's promise being written.
    promising: Option<Term>,
    position: watch::Sender<(Term, Epoch)>,
    election_requests: mpsc::Sender<()>,
    /// Where the plane's clock (`now`, for the state machines) counts from.
    origin: Instant,
    /// What each child last reported about its subtree.
    summaries: HashMap<NodeId, Summary>,
    /// The last summary sent, and to which parent.
    sent_summary: Option<(NodeId, Summary)>,
    last_housekeeping: Instant,
    /// The term and parent the requests in `pending` were sent through.
    pending_path: (u64, Option<NodeId>),
    /// Newer data a node of this tree showed in a catch-up (until the tree changes).
    newer_seen: Option<(Term, Epoch)>,
    /// The writer's last position message (below the root only).
    writer_heard: Option<WriterHeard>,
    /// `copy_confirmed` and `writer_accepting` as last published on `/status`.
    published_service: Option<(bool, Option<bool>)>,
    commits: Option<broadcast::Receiver<LogEntry>>,
    peers: BTreeSet<NodeId>,
    /// Replicas with a lag series in the metrics.
    lag_reported: BTreeSet<NodeId>,
    /// The current writer's counters when last exported to the metrics.
    writer_exported: crate::service::WriterCounts,
    metrics: Arc<Metrics>,
    status: StatusBoard,
    slot: DatabaseSlot,
    /// Who is online in this node's subtree and in the cluster (`presence::relay`).
    relay: Relay<UserId>,
    presence: Presence,
    /// This node's connected users, as the web layer changes them.
    presence_local: watch::Receiver<BTreeSet<UserId>>,
    /// Typing notices of this node's users.
    typing_out: mpsc::Receiver<TypingNotice>,
    /// The writer's ephemeral groups' events (on the writer).
    ephemeral_feed: Option<broadcast::Receiver<EphemeralEvent>>,
    /// The last leader this node's tree had: another one means the ephemeral groups are gone.
    leader_seen: Option<NodeId>,
}

impl<T: Transport> DataPlane<T> {
    /// A data plane over `transport`, following the tree in `view`.
    pub fn new(
        me: NodeId,
        options: DataOptions,
        (transport, inbound): (Arc<T>, mpsc::Receiver<Inbound>),
        view: watch::Receiver<ControlView>,
        outputs: DataOutputs,
        context: &NodeContext,
    ) -> Self {
        let DataOutputs {
            position,
            election_requests,
        } = outputs;
        let addresses = context.addresses.clone();
        let metrics = context.metrics.clone();
        let whole = options.whole_at_start;
        let (submit, submits) = mpsc::channel(4096);
        let (events, _) = broadcast::channel(4096);
        let (outcomes_tx, outcomes) = mpsc::channel(4096);
        let (applied_tx, applied_rx) = mpsc::unbounded_channel();
        let (presence, presence_link) = Presence::relayed();
        let acks = watch::channel(Acks::default()).0;
        let handle = DataHandle {
            submit,
            shortcut: Default::default(),
            acks: acks.subscribe(),
            quorum_timeout: options.quorum_timeout,
            events,
            timeout: options.request_timeout,
            metrics: metrics.clone(),
            presence: presence.clone(),
            ephemeral: broadcast::channel(4096).0,
        };
        Self {
            me,
            options,
            transport,
            inbound,
            view,
            addresses,
            submits,
            removals: mpsc::channel(1).1,
            handle,
            outcomes_tx,
            outcomes,
            pending: HashMap::new(),
            next_seq: 0,
            database: None,
            local: Local::None,
            applier: None,
            applied_tx,
            applied_rx,
            acks,
            configuration: None,
            voters: VoterTracking::default(),
            whole,
            position,
            election_requests,
            origin: Instant::now(),
            summaries: HashMap::new(),
            sent_summary: None,
            newer_seen: None,
            writer_heard: None,
            published_service: None,
            promised: None,
            promising: None,
            pending_path: (0, None),
            last_housekeeping: Instant::now(),
            commits: None,
            peers: BTreeSet::new(),
            lag_reported: BTreeSet::new(),
            writer_exported: Default::default(),
            metrics,
            status: context.status.clone(),
            slot: context.database.clone(),
            relay: Relay::new(rand::random()),
            presence,
            presence_local: presence_link.local,
            typing_out: presence_link.typing,
            ephemeral_feed: None,
            leader_seen: None,
        }
    }

    pub fn handle(&self) -> DataHandle {
        self.handle.clone()
    }

    /// Takes operators' removal requests from `removals` (the admin port's sender).
    pub fn with_removals(mut self, removals: mpsc::Receiver<RemovalRequest>) -> Self {
        self.removals = removals;
        self
    }

    /// The time the state machines of `replication` are given.
    fn now(&self) -> Millis {
        Millis(self.origin.elapsed().as_millis() as u64)
    }

    /// Runs until `shutdown` is cancelled.
    #[tracing::instrument(name = "data", skip_all, fields(node = %self.me))]
    pub async fn run(mut self, shutdown: CancellationToken) {
        let whole = self.whole;
        self.status.update(|status| status.whole = whole);
        self.report_stored_position().await;
        let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
        self.on_view_change().await;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                changed = self.view.changed() => {
                    if changed.is_err() { break }
                    self.on_view_change().await;
                }
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound).await,
                Some(outcome) = self.outcomes.recv() => self.on_local_outcome(outcome),
                Some(applied) = self.applied_rx.recv() => self.on_applied(applied).await,
                Some(submit) = self.submits.recv() => self.on_submit(submit),
                Some(removal) = self.removals.recv() => self.on_removal(removal),
                Ok(()) = self.presence_local.changed() => {
                    let local = self.presence_local.borrow_and_update().clone();
                    self.relay.set_local(local);
                    self.relay_presence();
                }
                Some(notice) = self.typing_out.recv() => self.on_typing(None, notice),
                event = next_ephemeral(&mut self.ephemeral_feed) => match event {
                    Ok(event) => self.on_writers_ephemeral(event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the plane fell behind the ephemeral groups' events; some were not passed on");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.ephemeral_feed = None,
                },
                entry = next_commit(&mut self.commits) => match entry {
                    Ok(entry) => self.on_commit(entry),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the plane fell behind the writer's log; replicas will catch up");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.commits = None,
                },
                _ = housekeeping.tick() => self.housekeeping().await,
            }
            // After every event: what `/readyz` reads must not lag behind what just happened.
            self.publish_service_state();
            self.publish_shortcut();
        }
        self.close_database().await;
        tracing::debug!("data plane stopped");
    }

    async fn on_inbound(&mut self, inbound: Inbound) {
        if let Some(message) = self.open(&inbound) {
            self.on_message(inbound.from, message, inbound.payload)
                .await;
        }
    }

    /// Decodes a message and drops it if it is undecodable or comes from an older term.
    fn open(&self, inbound: &Inbound) -> Option<DataMessage> {
        match message::decode(&inbound.payload) {
            Ok(envelope) => {
                let term = self.view.borrow().term;
                if envelope.term < term {
                    self.metrics.data_stale_dropped.inc();
                    tracing::debug!(from = %inbound.from, theirs = envelope.term, mine = term, "dropping a data message of an older term");
                    return None;
                }
                Some(envelope.body)
            }
            Err(error) => {
                tracing::debug!(from = %inbound.from, %error, "dropping an undecodable data message");
                None
            }
        }
    }

    /// Handles one message; `raw` is the envelope it arrived in, forwarded as is where possible.
    async fn on_message(&mut self, from: NodeId, message: DataMessage, raw: Bytes) {
        match message {
            DataMessage::Request { id, request } => self.route_request(id, request, Some(raw)),
            DataMessage::Response { id, result } => self.deliver(id, result),
            DataMessage::Commit { entries } => {
                // Down the tree before applying here: the copies of every level apply at the same
                // time, so a write's quorum waits for one apply rather than one per level. (Commits
                // that queue while the applier works share its next transaction.)
                self.send_bytes_to_children(&raw);
                let batch = Batch {
                    entries,
                    live: true,
                    more: false,
                    durable: true,
                };
                self.apply_as_replica(from, batch, false);
            }
            DataMessage::Entries { to, entries } => {
                if to != self.me {
                    self.send_toward(to, raw);
                    return;
                }
                let batch = Batch {
                    more: entries.len() == CATCH_UP_BATCH,
                    entries,
                    live: false,
                    durable: true,
                };
                self.apply_as_replica(from, batch, true);
            }
            DataMessage::Diverged { to, writer_epoch } => {
                if to != self.me {
                    self.send_toward(to, raw);
                    return;
                }
                let from_parent = self.view.borrow().parent == Some(from);
                if from_parent && matches!(self.local, Local::Replica { .. }) {
                    tracing::warn!(target: HEADLINE, writer_epoch = writer_epoch.0,
                        "this copy holds entries the writer never had; discarding it and copying the writer's log");
                    self.discard_local_copy().await;
                }
            }
            DataMessage::Ack {
                node,
                epoch,
                durable,
            } => match &self.local {
                Local::Writer { .. } => {
                    self.voters.progress.insert(node, epoch);
                    // The last report counts, not the highest: a copy that came back without its
                    // disk holds less than it once said, and one that reports as a learner no
                    // longer counts for what it said as a voter. (A learner's report changes
                    // nothing the waiting writes look at: they are not woken for it.)
                    self.acks.send_if_modified(|acks| {
                        if durable {
                            acks.durable.insert(node, epoch.0) != Some(epoch.0)
                        } else {
                            acks.durable.remove(&node).is_some()
                        }
                    });
                }
                _ => self.send_up(raw),
            },
            DataMessage::CatchUp {
                origin,
                from: wanted,
                last_term,
                held,
            } => {
                if !matches!(self.local, Local::Writer { .. }) {
                    self.send_up(raw);
                    return;
                }
                // A copy asking from `held` on holds no more than that, whatever it said before.
                self.acks
                    .send_if_modified(|acks| match acks.durable.get_mut(&origin) {
                        Some(epoch) if *epoch > held.1.0 => {
                            *epoch = held.1.0;
                            true
                        }
                        _ => false,
                    });
                if held > *self.position.borrow() {
                    // A copy newer than ours joined before its summary arrived: not ours to judge.
                    self.newer_seen = self.newer_seen.max(Some(held));
                    self.evaluate_writer();
                } else {
                    self.serve_catch_up(origin, wanted, last_term);
                }
            }
            DataMessage::Position {
                epoch, accepting, ..
            } => {
                let term = {
                    let view = self.view.borrow();
                    if view.parent != Some(from) {
                        return;
                    }
                    view.term
                };
                // Every copy down the tree hears where the writer's log is.
                self.send_bytes_to_children(&raw);
                self.writer_heard = Some(WriterHeard {
                    at: Instant::now(),
                    term,
                    accepting,
                });
                // Only an accepting writer answers catch-ups: asking one that is not is wasted.
                if accepting {
                    self.writer_at(epoch);
                }
            }
            DataMessage::Claim { term } => {
                if self.view.borrow().parent != Some(from) {
                    return;
                }
                self.send_bytes_to_children(&raw);
                self.promise(term);
            }
            DataMessage::Presence { users } => {
                self.relay.from_child(from, users);
                self.relay_presence();
            }
            DataMessage::Online { users } => {
                self.relay.from_parent(from, users);
                self.relay_presence();
            }
            DataMessage::PresenceResend => {
                self.relay.resend_to(from);
                self.relay_presence();
            }
            DataMessage::Typing { notice } => self.on_typing(Some(from), notice),
            DataMessage::Ephemeral { event } => {
                if self.view.borrow().parent == Some(from) {
                    self.send_bytes_to_children(&raw);
                    self.deliver_ephemeral(event);
                }
            }
            message @ DataMessage::Summary { .. } => {
                if self.view.borrow().children.contains(&from)
                    && let Some(summary) = message.into_summary()
                    && self.summaries.get(&from) != Some(&summary)
                {
                    self.summaries.insert(from, summary);
                    self.send_summary(false);
                    self.evaluate_writer();
                }
            }
        }
    }

    async fn housekeeping(&mut self) {
        let stalled = self.last_housekeeping.elapsed() > STALL;
        self.last_housekeeping = Instant::now();
        if stalled
            && let Local::Writer { root, .. } = &mut self.local
            && root.accepting()
        {
            // This process was stopped (SIGSTOP, a paused VM) or starved: the tree it leads may
            // have moved on without it. Stop accepting until every node has reported again.
            root.halt();
            tracing::warn!(target: HEADLINE, "this node stalled; not accepting writes until its tree reports again");
            self.summaries.clear();
            self.publish_accepting(false);
        }
        // Callers that gave up (timed out) leave closed senders behind.
        self.pending.retain(|_, reply| !reply.is_closed());
        self.metrics.data_pending.set(self.pending.len() as i64);
        self.metrics
            .data_inbound_queue
            .set(self.inbound.len() as i64);
        self.export_replication_lag();
        self.export_writer_counts();
        self.send_position();
        // Summaries are sent on change; repeating them covers a lost one.
        self.send_summary(true);
        self.evaluate_writer();
        self.plan_configuration();
        self.report_progress();
        // Changes held back by the relay's minimum gap, and the periodic whole sets.
        self.relay_presence();
        self.sweep_ephemeral();
    }
}

/// The newest configuration among `entries` (in log order).
fn newest_configuration<'a>(
    entries: impl DoubleEndedIterator<Item = &'a LogEntry>,
) -> Option<Configuration> {
    entries.rev().find_map(|entry| match &entry.mutation {
        crate::storage::Mutation::Configure { voters } => {
            Some(Configuration::new(entry.epoch.0, voters.iter().copied()))
        }
        _ => None,
    })
}

fn stage(metrics: &Metrics, stage: &'static str, took: Duration) {
    metrics
        .write_stage_seconds
        .get_or_create(&crate::metrics::StageLabel { stage })
        .observe(took.as_secs_f64());
}

async fn next_ephemeral(
    feed: &mut Option<broadcast::Receiver<EphemeralEvent>>,
) -> Result<EphemeralEvent, broadcast::error::RecvError> {
    match feed {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_commit(
    commits: &mut Option<broadcast::Receiver<LogEntry>>,
) -> Result<LogEntry, broadcast::error::RecvError> {
    match commits {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

fn data_addr(host: &str, port: u16) -> Option<SocketAddr> {
    Some(SocketAddr::new(host.parse().ok()?, port))
}
