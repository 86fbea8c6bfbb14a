//! The data plane: client operations up the tree, answers and commits down, replication to the
//! root's children, and the local database opened or closed as the node's role changes.
//!
//! ```text
//!            ProxyService (web layer) ──Submit──┐
//!                                               ▼
//!   data transport ──Inbound──▶ ┌─────────── DataPlane task ───────────┐ ──▶ parent: Request, Ack, CatchUp
//!                               │ pending table (origin only)          │ ──▶ children: Response, Commit,
//!   ControlView (roles, tree) ─▶│ role: writer | replica | none        │            Entries, Position
//!                               │ replica acks (writer)                │ ──▶ events (live updates)
//!   writer's commits ──────────▶└──────────────────────────────────────┘ ──▶ (term, epoch) → election
//!                                     │ spawns one task per local answer
//!                                     ▼
//!                              LocalService (writer or replica database)
//! ```
//!
//! Who answers what: the writer answers everything; every other node keeps a copy and answers a read
//! when the current writer has confirmed that copy and the client's epoch is in `1..=its own`
//! (DESIGN §4), otherwise the request goes on to its parent. An input node thus answers most reads
//! of its users from its own copy, without a hop. Only the origin keeps
//! state about a request, so losses anywhere become the origin's `Timeout`, never a hang. A write is
//! answered only once a quorum of replicas has acknowledged it.
//!
//! One writer at a time, and no acknowledged write lost (DESIGN §4):
//! - The root *accepts writes* only while its tree spans a strict majority of the registered nodes,
//!   every node of the tree has reported its data position up the tree ([`DataMessage::Summary`]),
//!   and none holds newer data than the root. Then it takes the tree's term for the entries it writes.
//!   A node with newer data makes the root call an election, which that node wins (the election value
//!   is the data position). Otherwise writes get 503 and pending acknowledgements fail.
//! - Every message carries the sender's term; older terms are dropped.
//! - A replica applies commits only after the writer has checked that the replica's log is a prefix of
//!   its own (`CatchUp` carries the term of the replica's last entry). A replica holding entries the
//!   writer never had discards its copy and rebuilds it from the writer's log.

mod applier;
pub mod message;
mod proxy;
pub mod quorum;
#[cfg(test)]
mod tests;
mod voters;

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
use crate::service::{
    ChatService, LocalService, ServiceError, ServiceOptions, ServiceRequest, ServiceResponse,
    replica_can_answer,
};
use crate::status::StatusBoard;
use crate::storage::{Database, DatabaseOptions, Epoch, LogEntry, StorageError, Term};
use crate::transport::{Inbound, Transport};
use applier::{Applied, Applier, Batch};
use quorum::{CATCH_UP_BATCH, wait_for_quorum};
use replication::{Acceptance, Acks, Configuration, ReplicationFactor, TreeReport, may_accept};
use voters::{VoterTracking, first_voters, tree_members};

/// Most entries the writer sends down in one commit message.
const COMMIT_BATCH: usize = 512;

/// A gap this long between two housekeeping rounds (every 500 ms) means the process was stopped or
/// starved.
const STALL: Duration = Duration::from_millis(1500);

/// A root that found newer data in its tree asks for an election at most this often (the election
/// takes a few hundred milliseconds; asking again meanwhile would only restart it).
const ELECTION_CALL_SPACING: Duration = Duration::from_secs(3);

/// What the data plane tells the rest of the node.
pub struct DataOutputs {
    /// The `(term, epoch)` of the local data whenever it changes (the election compares it).
    pub position: watch::Sender<(Term, Epoch)>,
    /// Asks the control plane for a new election (a node of this root's tree has newer data).
    pub election_requests: mpsc::Sender<()>,
}

/// What a subtree reported: how many nodes it has and the most recent data among them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    nodes: usize,
    best: (Term, Epoch),
    /// The nodes of the subtree whose copy is whole (see `replication::acceptance`).
    whole: BTreeSet<NodeId>,
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
}

/// The database role this node currently plays.
enum Local {
    None,
    Writer {
        service: LocalService,
        /// Whether writes are accepted now (see the module documentation).
        active: bool,
        /// The term the database was last given for new entries.
        term: Option<Term>,
    },
    Replica {
        service: LocalService,
        applied: Epoch,
        /// The term of the entry at `applied` (zero at epoch 0).
        applied_term: Term,
        /// The last epoch handed to the applier (at least `applied` once it is done).
        queued: Epoch,
        asked_at: Option<Instant>,
        /// The writer that confirmed this copy is a prefix of its log; commits from anyone else wait.
        verified_by: Option<NodeId>,
    },
}

/// Cloneable entry points into a running data plane.
#[derive(Clone)]
pub struct DataHandle {
    submit: mpsc::Sender<Submit>,
    events: broadcast::Sender<LogEntry>,
    timeout: Duration,
    metrics: Arc<Metrics>,
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

impl crate::web::EventSource for DataHandle {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        Some(self.events())
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
    /// A copy's newest configuration among the entries handed to its applier (decides whether the
    /// next batch is applied durably: a learner that is becoming a voter must be before it acks).
    queued_configuration: Option<Configuration>,
    /// The writer's view of the voter set.
    voters: VoterTracking,
    /// A learner's last progress report to the writer.
    progress_sent: Option<Epoch>,
    /// This node's copy holds everything it ever acknowledged: false after it lost its disk or
    /// discarded a diverged copy, until it caught up with a writer that accepts writes.
    whole: bool,
    position: watch::Sender<(Term, Epoch)>,
    election_requests: mpsc::Sender<()>,
    last_election_call: Option<Instant>,
    /// What each child last reported about its subtree.
    summaries: HashMap<NodeId, Summary>,
    /// The last summary sent, and to which parent.
    sent_summary: Option<(NodeId, Summary)>,
    last_housekeeping: Instant,
    /// The term and parent the requests in `pending` were sent through.
    pending_path: (u64, Option<NodeId>),
    /// Newer data a node of this tree showed in a catch-up (until the tree changes).
    newer_seen: Option<(Term, Epoch)>,
    commits: Option<broadcast::Receiver<LogEntry>>,
    peers: BTreeSet<NodeId>,
    /// Replicas with a lag series in the metrics.
    lag_reported: BTreeSet<NodeId>,
    /// The current writer's counters when last exported to the metrics.
    writer_exported: crate::service::WriterCounts,
    metrics: Arc<Metrics>,
    status: StatusBoard,
    slot: DatabaseSlot,
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
        let handle = DataHandle {
            submit,
            events,
            timeout: options.request_timeout,
            metrics: metrics.clone(),
        };
        Self {
            me,
            options,
            transport,
            inbound,
            view,
            addresses,
            submits,
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
            acks: watch::channel(Acks::default()).0,
            configuration: None,
            queued_configuration: None,
            voters: VoterTracking::default(),
            progress_sent: None,
            whole,
            position,
            election_requests,
            last_election_call: None,
            summaries: HashMap::new(),
            sent_summary: None,
            newer_seen: None,
            pending_path: (0, None),
            last_housekeeping: Instant::now(),
            commits: None,
            peers: BTreeSet::new(),
            lag_reported: BTreeSet::new(),
            writer_exported: Default::default(),
            metrics,
            status: context.status.clone(),
            slot: context.database.clone(),
        }
    }

    pub fn handle(&self) -> DataHandle {
        self.handle.clone()
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
                entry = next_commit(&mut self.commits) => match entry {
                    Ok(entry) => self.on_commit(entry),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the plane fell behind the writer's log; replicas will catch up");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.commits = None,
                },
                _ = housekeeping.tick() => self.housekeeping().await,
            }
        }
        self.close_database().await;
        tracing::debug!("data plane stopped");
    }

    // ----- requests and responses -------------------------------------------------------------

    fn on_submit(&mut self, submit: Submit) {
        self.next_seq += 1;
        let id = RequestId {
            origin: self.me,
            seq: self.next_seq,
        };
        self.pending.insert(id, submit.reply);
        self.route_request(id, submit.request, None);
    }

    /// Answers locally when this node may, else sends the request on to the parent: as the bytes it
    /// arrived in (`raw`) when it came from a child, so a forwarder never re-encodes a request.
    fn route_request(&mut self, id: RequestId, request: ServiceRequest, raw: Option<Bytes>) {
        let view = self.view.borrow().clone();
        if !view.ready {
            self.deliver(id, Err(unavailable()));
            return;
        }
        if request.operation.is_write() && matches!(self.local, Local::Writer { active: false, .. })
        {
            // Not (or no longer) sure to be the only writer with all acknowledged data: refuse
            // before writing anything, so nothing needs to be taken back.
            self.metrics.data_writes_refused.inc();
            self.deliver(id, Err(unavailable()));
            return;
        }
        if matches!(self.local, Local::Writer { active: false, .. })
            && request.client_epoch > self.position.borrow().1
        {
            // A root that does not accept writes may hold less than a node below it (it is about
            // to hand over): it must not answer a client that has seen more than it holds.
            self.deliver(id, Err(unavailable()));
            return;
        }
        if let Some(service) = self.local_answerer(&request) {
            let by = if service.is_writer() {
                "writer"
            } else {
                "replica"
            };
            if !request.operation.is_write() {
                self.metrics
                    .data_reads_answered
                    .get_or_create(&AnsweredBy { by })
                    .inc();
            }
            self.spawn_local_answer(service, id, request);
            return;
        }
        match (view.parent, raw) {
            (Some(parent), Some(raw)) => {
                self.metrics.data_forwarded.inc();
                self.send_bytes(parent, raw);
            }
            (Some(parent), None) => {
                self.metrics.data_forwarded.inc();
                self.send(parent, &DataMessage::Request { id, request });
            }
            (None, _) => self.deliver(id, Err(unavailable())),
        }
    }

    fn local_answerer(&self, request: &ServiceRequest) -> Option<LocalService> {
        match &self.local {
            Local::Writer { service, .. } => Some(service.clone()),
            // Any copy answers the reads it is fresh enough for, once the current writer has
            // confirmed its log (before that it may hold entries that were never acknowledged).
            Local::Replica {
                service,
                applied,
                verified_by,
                ..
            } if !request.operation.is_write()
                && verified_by.is_some()
                && *verified_by == self.view.borrow().leader
                && replica_can_answer(request.client_epoch, *applied) =>
            {
                Some(service.clone())
            }
            _ => None,
        }
    }

    fn spawn_local_answer(&self, service: LocalService, id: RequestId, request: ServiceRequest) {
        let outcomes = self.outcomes_tx.clone();
        let acks = self.acks.subscribe();
        let quorum_timeout = self.options.quorum_timeout;
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let is_write = request.operation.is_write();
            let started = Instant::now();
            let executed = service.execute(request.clone()).await;
            let outcome = match executed {
                Err(error) if error.should_forward() => LocalOutcome::Forward { id, request },
                Ok(response) if is_write => {
                    let committed = Instant::now();
                    stage(&metrics, "commit", committed - started);
                    let durable = wait_for_quorum(acks, response.epoch, quorum_timeout).await;
                    stage(&metrics, "quorum", committed.elapsed());
                    LocalOutcome::Answer {
                        id,
                        result: durable.map(|()| response),
                    }
                }
                result => LocalOutcome::Answer { id, result },
            };
            let _ = outcomes.send(outcome).await;
        });
    }

    fn on_local_outcome(&mut self, outcome: LocalOutcome) {
        match outcome {
            LocalOutcome::Answer { id, result } => self.deliver(id, result),
            LocalOutcome::Forward { id, request } => {
                let parent = self.view.borrow().parent;
                match parent {
                    Some(parent) => {
                        self.metrics.data_forwarded.inc();
                        self.send(parent, &DataMessage::Request { id, request });
                    }
                    None => self.deliver(id, Err(unavailable())),
                }
            }
            LocalOutcome::Configured(Ok(_)) => {}
            LocalOutcome::Configured(Err(error)) => {
                // Not written (the writer retired or failed): the next housekeeping round decides again.
                tracing::warn!(%error, "a configuration entry was not written");
                self.voters.submitted = false;
            }
        }
    }

    /// Hands an answer to its origin: the local caller, or the child on the way to it.
    fn deliver(&mut self, id: RequestId, result: Result<ServiceResponse, ServiceError>) {
        if id.origin == self.me {
            if let Some(reply) = self.pending.remove(&id) {
                let _ = reply.send(result);
            }
            return;
        }
        let next_hop = self.view.borrow().routes.get(&id.origin).copied();
        match next_hop {
            Some(child) => self.send(child, &DataMessage::Response { id, result }),
            None => {
                tracing::debug!(origin = %id.origin, "no route down to the origin; the answer is dropped")
            }
        }
    }

    // ----- inbound messages ---------------------------------------------------------------------

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
                    if durable {
                        // The last report counts, not the highest: a copy that came back without
                        // its disk holds less than it once said.
                        self.acks.send_modify(|acks| {
                            acks.durable.insert(node, epoch.0);
                        });
                    }
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
                } else if held > *self.position.borrow() {
                    // A copy newer than ours joined before its summary arrived: not ours to judge.
                    self.newer_seen = self.newer_seen.max(Some(held));
                    self.evaluate_writer().await;
                } else {
                    self.serve_catch_up(origin, wanted, last_term);
                }
            }
            DataMessage::Position { epoch, .. } => {
                if self.view.borrow().parent != Some(from) {
                    return;
                }
                // Every copy down the tree hears where the writer's log is.
                self.send_bytes_to_children(&raw);
                let leader = self.view.borrow().leader;
                if let Local::Replica {
                    applied,
                    queued,
                    verified_by,
                    asked_at,
                    ..
                } = &mut self.local
                {
                    self.metrics
                        .replica_lag
                        .set(epoch.0.saturating_sub(applied.0) as i64);
                    if *verified_by != leader {
                        // Only an accepting writer sends positions, and it answers catch-ups now.
                        *asked_at = None;
                        self.ask_catch_up();
                    } else if epoch > (*applied).max(*queued) {
                        // The commits up to `epoch` came before this (one link keeps its order):
                        // some were missed.
                        self.ask_catch_up();
                    }
                }
            }
            DataMessage::Summary {
                nodes,
                best_term,
                best_epoch,
                whole,
            } => {
                if self.view.borrow().children.contains(&from) {
                    let summary = Summary {
                        nodes,
                        best: (best_term, best_epoch),
                        whole: whole.into_iter().collect(),
                    };
                    if self.summaries.get(&from) != Some(&summary) {
                        self.summaries.insert(from, summary);
                        self.send_summary(false);
                        self.evaluate_writer().await;
                    }
                }
            }
        }
    }

    /// A copy applies entries from its parent (coming from the writer) in order, on its applier.
    /// `confirmed` marks the answer to a catch-up: the writer checked that this copy is a prefix of
    /// its log. Before that, commits are ignored (they may extend a history the writer never had).
    /// Commits not applied here are still shown to local subscribers at once.
    fn apply_as_replica(&mut self, from: NodeId, batch: Batch, confirmed: bool) {
        let (parent, leader) = {
            let view = self.view.borrow();
            (view.parent, view.leader)
        };
        let accepted = parent == Some(from)
            && leader.is_some()
            && match &mut self.local {
                Local::Replica {
                    verified_by,
                    queued,
                    ..
                } => {
                    if confirmed {
                        *verified_by = leader;
                    }
                    let accepted = *verified_by == leader && !batch.entries.is_empty();
                    if accepted && let Some(last) = batch.entries.last() {
                        *queued = (*queued).max(last.epoch);
                    }
                    accepted
                }
                _ => false,
            };
        if accepted && self.applier.is_some() {
            let mut batch = batch;
            batch.durable = self.queue_configuration(&batch.entries);
            if let Some(applier) = &self.applier {
                applier.apply(batch);
            }
        } else {
            self.show(&batch);
        }
    }

    /// Notes the configurations among entries handed to the applier and says whether they must be
    /// applied durably: while this copy is a voter (or no configuration exists yet, when every copy
    /// counts), or from the entry that makes it one.
    fn queue_configuration(&mut self, entries: &[LogEntry]) -> bool {
        if let Some(newest) = newest_configuration(entries) {
            self.queued_configuration = Some(newest);
        }
        self.queued_configuration
            .as_ref()
            .is_none_or(|configuration| configuration.contains(self.me))
    }

    /// Whether this node's copy counts for acknowledgements (before the first configuration, every
    /// copy does).
    fn is_voter(&self) -> bool {
        self.configuration
            .as_ref()
            .is_none_or(|configuration| configuration.contains(self.me))
    }

    /// The local log holds a newer configuration: the writer counts with it, a copy knows whether it
    /// votes, and `/status` and the metrics show it.
    fn set_configuration(&mut self, configuration: Option<Configuration>) {
        if configuration == self.configuration {
            return;
        }
        if let Some(configuration) = &configuration {
            tracing::info!(target: HEADLINE, voters = %configuration, "voter configuration");
            self.metrics.voters.set(configuration.voters.len() as i64);
        }
        self.acks
            .send_modify(|acks| acks.configuration = configuration.clone());
        self.configuration = configuration;
        self.publish_copy_status();
    }

    /// `/status`: the voters this node's log names and what its copy is.
    fn publish_copy_status(&self) {
        let voters: Vec<NodeId> = self
            .configuration
            .as_ref()
            .map(|configuration| configuration.voters.iter().copied().collect())
            .unwrap_or_default();
        let copy = match (&self.local, self.is_voter()) {
            (Local::None, _) => crate::status::CopyKind::None,
            (_, true) => crate::status::CopyKind::Voter,
            (_, false) => crate::status::CopyKind::Learner,
        };
        self.status.update(|status| {
            status.voters = voters;
            status.copy = copy;
            status.refresh_roles();
        });
    }

    /// Tells local subscribers (live updates) about commits.
    fn show(&self, batch: &Batch) {
        if batch.live {
            for entry in &batch.entries {
                let _ = self.handle.events.send(entry.clone());
            }
        }
    }

    /// The applier finished a transaction: acknowledge what this copy now holds, or catch up, or
    /// discard a copy that took another history.
    async fn on_applied(&mut self, done: Applied) {
        stage(&self.metrics, "copy_apply", done.took);
        let count: usize = done.batches.iter().map(|batch| batch.entries.len()).sum();
        self.metrics.copy_apply_entries.observe(count as f64);
        for batch in &done.batches {
            self.show(batch);
        }
        if let Ok(epoch) = &done.result
            && matches!(self.local, Local::Replica { .. })
        {
            let applied = done
                .batches
                .iter()
                .flat_map(|batch| &batch.entries)
                .filter(|entry| entry.epoch <= *epoch)
                .cloned()
                .collect::<Vec<_>>();
            if let Some(newest) = newest_configuration(&applied) {
                self.set_configuration(Some(newest));
            }
        }
        let voter = self.is_voter() && done.durable;
        let mut caught_up = false;
        let (parent, leader) = {
            let view = self.view.borrow();
            (view.parent, view.leader)
        };
        let Local::Replica {
            applied,
            applied_term,
            queued,
            verified_by,
            asked_at,
            ..
        } = &mut self.local
        else {
            return;
        };
        match done.result {
            Ok(epoch) => {
                let entries = done.batches.iter().flat_map(|batch| &batch.entries);
                if let Some(last) = entries.clone().rfind(|entry| entry.epoch == epoch) {
                    *applied_term = last.term;
                }
                *applied = (*applied).max(epoch);
                // The stored position: its term is the highest of the entries it holds.
                let newest = entries
                    .filter(|entry| entry.epoch <= epoch)
                    .map(|entry| entry.term)
                    .max();
                // A voter acknowledges what it holds durably, at once (a write waits for it); a
                // learner reports its progress every housekeeping round, off the write path.
                let acknowledge = *verified_by == leader && voter;
                let more = done.batches.iter().any(|batch| batch.more);
                if more {
                    *asked_at = None;
                }
                // A catch-up answer that was not full brought this copy to where the (accepting)
                // writer was: it holds every acknowledged write again.
                caught_up = *verified_by == leader
                    && done.batches.iter().any(|batch| !batch.live && !batch.more);
                let term = self.position.borrow().0.max(newest.unwrap_or_default());
                self.set_position((term, epoch));
                // The position is published before the ack, so whoever sees the write acknowledged
                // sees it here too.
                if acknowledge && let Some(parent) = parent {
                    self.progress_sent = Some(epoch);
                    self.send(
                        parent,
                        &DataMessage::Ack {
                            node: self.me,
                            epoch,
                            durable: true,
                        },
                    );
                }
                if more {
                    // A full catch-up answer means more is waiting: ask again at once.
                    self.ask_catch_up();
                }
            }
            Err(StorageError::Gap { .. }) => {
                *queued = *applied;
                self.ask_catch_up();
            }
            Err(StorageError::Diverged { epoch, reason }) => {
                tracing::warn!(target: HEADLINE, epoch, %reason, "the writer's log does not apply to this copy; discarding it");
                self.discard_local_copy().await;
            }
            Err(error) => {
                *queued = *applied;
                tracing::error!(%error, "cannot apply the writer's log");
            }
        }
        if caught_up && !self.whole {
            self.set_whole(true);
        }
    }

    /// Whether this copy holds everything this node acknowledged; reported up in `Summary`, shown
    /// on `/status`.
    fn set_whole(&mut self, whole: bool) {
        if self.whole != whole {
            self.whole = whole;
            if whole {
                tracing::info!(target: HEADLINE, "this copy has caught up: it counts for a majority of the voters again");
            }
            self.status.update(|status| status.whole = whole);
            self.send_summary(false);
        }
    }

    fn ask_catch_up(&mut self) {
        let parent = self.view.borrow().parent;
        let Local::Replica {
            applied,
            applied_term,
            asked_at,
            ..
        } = &mut self.local
        else {
            return;
        };
        // One request per second at most: the answer is on its way.
        if asked_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *asked_at = Some(Instant::now());
        let message = DataMessage::CatchUp {
            origin: self.me,
            from: Epoch(applied.0 + 1),
            last_term: *applied_term,
            held: *self.position.borrow(),
        };
        if let Some(parent) = parent {
            self.send(parent, &message);
        }
    }

    /// Answers a replica's catch-up (off the plane's task): `Diverged` when its last entry is not in
    /// this log with the same term, else the next batch of the log after it (possibly empty, which
    /// still confirms the replica's copy).
    fn serve_catch_up(&mut self, origin: NodeId, from: Epoch, last_term: Term) {
        // Only a writer that knows it holds the newest data of its tree may judge another copy:
        // until then the replica may be the one with more (it asks again every second).
        let Local::Writer {
            service,
            active: true,
            ..
        } = &self.local
        else {
            return;
        };
        if from.0 == 0 {
            return;
        }
        let Some(next_hop) = self.view.borrow().routes.get(&origin).copied() else {
            tracing::debug!(%origin, "no route down to a copy asking for a catch-up");
            return;
        };
        let database = service.database().clone();
        let transport = self.transport.clone();
        let term = self.view.borrow().term;
        tokio::spawn(async move {
            let answer = async {
                let writer_epoch = database.epoch().await?;
                let last = Epoch(from.0 - 1);
                let matches = last.0 == 0
                    || (last <= writer_epoch && database.term_at(last).await? == Some(last_term));
                if !matches {
                    return Ok(DataMessage::Diverged {
                        to: origin,
                        writer_epoch,
                    });
                }
                let entries = database.log_since(from, CATCH_UP_BATCH).await?;
                Ok::<_, StorageError>(DataMessage::Entries {
                    to: origin,
                    entries,
                })
            };
            match answer.await {
                Ok(message) => {
                    let _ = transport.send(next_hop, Bytes::from(message::encode(term, &message)));
                }
                Err(error) => {
                    tracing::error!(%error, %origin, "cannot read the log for a catch-up")
                }
            }
        });
    }

    /// The writer committed `first`, and with it the rest of its group commit (the writer publishes
    /// a group's entries back to back, before it answers anyone): they go down as one message,
    /// encoded once, and to local subscribers.
    fn on_commit(&mut self, first: LogEntry) {
        let mut entries = vec![first];
        if let Some(commits) = &mut self.commits {
            while entries.len() < COMMIT_BATCH {
                match commits.try_recv() {
                    Ok(entry) => entries.push(entry),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "the plane fell behind the writer's log; replicas will catch up"
                        );
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let message = DataMessage::Commit { entries };
        let raw = Bytes::from(message::encode(self.view.borrow().term, &message));
        self.send_bytes_to_children(&raw);
        let DataMessage::Commit { entries } = message else {
            return;
        };
        if let Some(last) = entries.last() {
            self.set_position((last.term, last.epoch));
        }
        if let Some(first) = entries.first() {
            self.voters.committed(first.term, first.epoch);
        }
        if let Some(newest) = newest_configuration(&entries) {
            self.metrics.configuration_changes.inc();
            self.voters.submitted = false;
            self.set_configuration(Some(newest));
        }
        for entry in entries {
            let _ = self.handle.events.send(entry);
        }
    }

    async fn housekeeping(&mut self) {
        let stalled = self.last_housekeeping.elapsed() > STALL;
        self.last_housekeeping = Instant::now();
        if stalled && matches!(self.local, Local::Writer { active: true, .. }) {
            // This process was stopped (SIGSTOP, a paused VM) or starved: the tree it leads may
            // have moved on without it. Stop accepting until every node has reported again.
            tracing::warn!(target: HEADLINE, "this node stalled; not accepting writes until its tree reports again");
            self.summaries.clear();
            self.set_accepting(false);
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
        self.evaluate_writer().await;
        self.plan_configuration();
        self.report_progress();
    }

    /// A learner tells the writer how far it got (the writer picks caught-up learners as voters and
    /// shows their lag); a voter's acknowledgements already say it.
    fn report_progress(&mut self) {
        let parent = self.view.borrow().parent;
        let Local::Replica {
            applied,
            verified_by,
            ..
        } = &self.local
        else {
            return;
        };
        let applied = *applied;
        if self.progress_sent == Some(applied) || verified_by.is_none() {
            return;
        }
        if let Some(parent) = parent {
            self.progress_sent = Some(applied);
            self.send(
                parent,
                &DataMessage::Ack {
                    node: self.me,
                    epoch: applied,
                    durable: false,
                },
            );
        }
    }

    /// On an accepting writer: starts the next configuration change the rules call for (one at a
    /// time; see `replication::membership`).
    fn plan_configuration(&mut self) {
        let Local::Writer {
            service,
            active: true,
            ..
        } = &self.local
        else {
            return;
        };
        let service = service.clone();
        let view = self.view.borrow().clone();
        let Some(configuration) = self.configuration.clone() else {
            // The first configuration was not written (its job failed): try again.
            if !self.voters.submitted {
                let voters = first_voters(self.me, self.options.replication_factor, &view.children);
                self.submit_configuration(service, voters);
            }
            return;
        };
        let now = Instant::now();
        self.voters
            .observe(Some(&configuration), &tree_members(self.me, &view), now);
        let written = self.position.borrow().1;
        let acknowledged = Epoch(self.acks.borrow().acknowledged(written.0));
        let Some(change) = self.voters.next_change(
            self.me,
            self.options.replication_factor,
            self.options.voter_grace,
            &configuration,
            acknowledged,
            written,
            &view,
            now,
        ) else {
            return;
        };
        tracing::info!(target: HEADLINE, from = %configuration, ?change, "changing the voter configuration");
        let voters = change.apply(&configuration);
        self.submit_configuration(service, voters);
    }

    /// Hands a configuration entry to the writer; its commit updates the configuration.
    fn submit_configuration(&mut self, service: LocalService, voters: BTreeSet<NodeId>) {
        self.voters.submitted = true;
        let outcomes = self.outcomes_tx.clone();
        tokio::spawn(async move {
            let result = service.configure(voters).await;
            let _ = outcomes.send(LocalOutcome::Configured(result)).await;
        });
    }

    /// Adds what the writer did since the last export to its counters.
    fn export_writer_counts(&mut self) {
        let Local::Writer { service, .. } = &self.local else {
            return;
        };
        let Some(now) = service.writer_counts() else {
            return;
        };
        let last = self.writer_exported;
        self.metrics
            .writer_group_commits
            .inc_by(now.transactions - last.transactions);
        self.metrics
            .writer_requests
            .inc_by(now.requests - last.requests);
        self.writer_exported = now;
    }

    /// On the writer: how far behind each current replica is (stale replicas' series are removed).
    fn export_replication_lag(&mut self) {
        let lag = &self.metrics.replication_lag;
        let acks = self.acks.borrow().clone();
        let writer_epoch = self.position.borrow().1;
        let writing = matches!(self.local, Local::Writer { .. });
        for gone in self.lag_reported.difference(&acks.tree_copies) {
            lag.remove(&crate::metrics::ReplicaLabel { replica: gone.0 });
        }
        self.lag_reported.clear();
        if !writing {
            return;
        }
        for copy in &acks.tree_copies {
            let applied = self.voters.progress.get(copy).copied().unwrap_or_default();
            lag.get_or_create(&crate::metrics::ReplicaLabel { replica: copy.0 })
                .set(writer_epoch.0.saturating_sub(applied.0) as i64);
            self.lag_reported.insert(*copy);
        }
    }

    // ----- one writer at a time ------------------------------------------------------------------

    /// The nodes below this one that reported, and the most recent data among them.
    fn below(&self) -> (usize, Option<(Term, Epoch)>, BTreeSet<NodeId>) {
        let view = self.view.borrow();
        let mut nodes = 0usize;
        let mut best = None;
        let mut whole = BTreeSet::new();
        for child in &view.children {
            if let Some(summary) = self.summaries.get(child) {
                // Counts come from peers: saturate rather than overflow.
                nodes = nodes.saturating_add(summary.nodes);
                best = best.max(Some(summary.best));
                whole.extend(summary.whole.iter().copied());
            }
        }
        if self.whole {
            whole.insert(self.me);
        }
        (nodes, best, whole)
    }

    /// An accepting writer tells its children where its log is (idle replicas notice what they
    /// missed; new ones learn that their catch-up will be answered).
    fn send_position(&self) {
        if let Local::Writer { active: true, .. } = &self.local {
            let (term, epoch) = *self.position.borrow();
            self.send_to_children(&DataMessage::Position { term, epoch });
        }
    }

    /// Reports this subtree to the parent: on change, or always when `force`.
    fn send_summary(&mut self, force: bool) {
        let Some(parent) = self.view.borrow().parent else {
            self.sent_summary = None;
            return;
        };
        let (below, best, whole) = self.below();
        let own = *self.position.borrow();
        let summary = Summary {
            nodes: below.saturating_add(1),
            best: best.map_or(own, |best| best.max(own)),
            whole,
        };
        if !force && self.sent_summary.as_ref() == Some(&(parent, summary.clone())) {
            return;
        }
        let message = DataMessage::Summary {
            nodes: summary.nodes,
            best_term: summary.best.0,
            best_epoch: summary.best.1,
            whole: summary.whole.iter().copied().collect(),
        };
        self.sent_summary = Some((parent, summary));
        self.send(parent, &message);
    }

    /// Decides whether the writer accepts writes (see the module documentation) and acts on a change.
    async fn evaluate_writer(&mut self) {
        let Local::Writer {
            service,
            active,
            term,
        } = &self.local
        else {
            return;
        };
        let (active, taken) = (*active, *term);
        let database = service.database().clone();
        let service = service.clone();
        let view = self.view.borrow().clone();
        let own = *self.position.borrow();
        let (reported, best, whole) = self.below();
        let newer = best.max(self.newer_seen).filter(|best| *best > own);
        if let Some((term, epoch)) = newer {
            self.call_election(term, epoch);
        }
        let report = TreeReport {
            leads: view.ready && view.parent.is_none() && view.leader == Some(self.me),
            members: tree_members(self.me, &view),
            whole,
            all_reported: reported == view.routes.len(),
            newer_data: newer.is_some(),
            registered: view.registered,
        };
        let verdict = may_accept(self.configuration.as_ref(), &report, active);
        let want = verdict == Acceptance::Accept;
        let term = Term(view.term);
        if want == active && (!want || taken == Some(term)) {
            return;
        }
        if want && taken != Some(term) {
            // Entries written from now on carry a data term of this writer's own (see `data_term`).
            let data_term = data_term(view.term, own.0, self.me);
            if let Err(error) = database.set_term(data_term).await {
                tracing::error!(%error, term = data_term.0, "cannot take a new data term; not accepting writes");
                return;
            }
            self.publish_position().await;
            // The first entry of every term restates the voters (or names the first ones): a writer
            // changes the configuration only once an entry of its own term is acknowledged.
            self.voters.start_term(data_term);
            let voters = match &self.configuration {
                Some(configuration) => configuration.voters.clone(),
                None => first_voters(self.me, self.options.replication_factor, &view.children),
            };
            self.submit_configuration(service, voters);
        }
        if want && let Local::Writer { term: taken, .. } = &mut self.local {
            *taken = Some(term);
        }
        self.set_accepting(want);
        self.send_position();
        let voters = self
            .configuration
            .as_ref()
            .map_or_else(|| "none yet".to_string(), ToString::to_string);
        match verdict {
            Acceptance::Accept => {
                tracing::info!(target: HEADLINE, term = view.term, tree = view.tree_size(), %voters,
                "accepting writes")
            }
            Acceptance::NoMajority => {
                tracing::warn!(target: HEADLINE, tree = view.tree_size(), %voters, registered = view.registered,
                "not accepting writes: this tree does not hold a majority of the voters (of the registered nodes before the first configuration)")
            }
            Acceptance::NewerData => {
                tracing::warn!(target: HEADLINE, "not accepting writes: a node of this tree holds newer data")
            }
            Acceptance::NotReported | Acceptance::NotLeading => {
                tracing::warn!(target: HEADLINE, "not accepting writes: no longer leading a ready tree")
            }
        }
    }

    /// Asks the control plane for an election that the node with newer data will win.
    fn call_election(&mut self, term: Term, epoch: Epoch) {
        if self
            .last_election_call
            .is_some_and(|at| at.elapsed() < ELECTION_CALL_SPACING)
        {
            return;
        }
        self.last_election_call = Some(Instant::now());
        tracing::warn!(target: HEADLINE, newer_term = term.0, newer_epoch = epoch.0,
            "a node of this tree holds newer data than this writer; asking for an election");
        let _ = self.election_requests.try_send(());
    }

    // ----- roles and the database ---------------------------------------------------------------

    async fn on_view_change(&mut self) {
        let view = self.view.borrow_and_update().clone();
        if (view.term, view.parent) != self.pending_path {
            // A new tree or a new parent: answers to requests sent the old way may never come (their
            // route or their writer is gone). Failing them now, retryable, lets clients retry at once
            // instead of waiting for the timeout; a write that did commit is found by its client_id.
            self.pending_path = (view.term, view.parent);
            for (_, reply) in self.pending.drain() {
                let _ = reply.send(Err(unavailable()));
            }
        }
        self.follow_links(&view);
        self.summaries
            .retain(|child, _| view.children.contains(child));
        self.newer_seen = None;
        let wants_writer = view.roles.contains(&overlay::Role::Writer);
        // Every node below the root keeps a copy of the data (durability, see `replication`) and
        // answers the reads it is fresh enough for from it. While the tree is being rebuilt
        // (not ready) a node keeps what it has, so a heal does not close and reopen databases.
        let keeps_copy = !wants_writer && view.parent.is_some();
        if view.ready {
            match (&self.local, wants_writer, keeps_copy) {
                (Local::Writer { .. }, true, _) => {}
                (Local::Replica { verified_by, .. }, false, true) => {
                    // Same role under another writer: its log must be checked again.
                    if verified_by.is_some() && *verified_by != view.leader {
                        self.become_replica().await;
                    }
                }
                (_, true, _) => self.become_writer().await,
                (_, false, true) => self.become_replica().await,
                (Local::None, false, false) => {}
                (_, false, false) => self.close_database().await,
            }
        }
        if let Local::Writer { .. } = self.local {
            let me = self.me;
            self.acks.send_modify(|acks| {
                acks.writer = Some(me);
                acks.tree_copies = view.routes.keys().copied().collect();
                acks.registered = view.registered;
            });
        }
        self.publish_position().await;
        self.send_summary(false);
        self.evaluate_writer().await;
    }

    /// Keeps data-plane links to the parent and children only: links to nodes that left the
    /// neighbourhood are closed, new ones opened lazily by the transport.
    fn follow_links(&mut self, view: &ControlView) {
        let wanted: BTreeSet<NodeId> = view
            .parent
            .iter()
            .chain(view.children.iter())
            .copied()
            .collect();
        for gone in self.peers.difference(&wanted).copied().collect::<Vec<_>>() {
            self.transport.remove_peer(gone);
            self.peers.remove(&gone);
        }
        for peer in wanted {
            if self.peers.contains(&peer) {
                continue;
            }
            match self
                .addresses
                .get(peer)
                .and_then(|n| data_addr(&n.host, n.data_port))
            {
                Some(addr) => {
                    self.transport.set_peer(peer, addr);
                    self.peers.insert(peer);
                }
                None => tracing::warn!(%peer, "no data address known for a tree neighbour"),
            }
        }
    }

    async fn become_writer(&mut self) {
        self.stop_applier().await;
        self.fence_writer();
        let Some(database) = self.open_database().await else {
            return;
        };
        let configuration = database.configuration().await.ok().flatten();
        let service = LocalService::writer(database, self.options.service.clone());
        self.commits = service.subscribe();
        self.voters = VoterTracking::default();
        // The new writer service counts from zero.
        self.writer_exported = Default::default();
        self.local = Local::Writer {
            service,
            active: false,
            term: None,
        };
        self.set_configuration(configuration);
        self.publish_copy_status();
        self.slot.set(self.database.clone(), "writer");
        tracing::info!(target: HEADLINE, "serving as the writer (accepting writes once the tree has a majority and no newer data)");
    }

    async fn become_replica(&mut self) {
        self.stop_applier().await;
        self.retire_writer().await;
        self.commits = None;
        let Some(database) = self.open_database().await else {
            return;
        };
        let applied = database.epoch().await.unwrap_or_default();
        let applied_term = match applied {
            Epoch(0) => Term(0),
            epoch => database
                .term_at(epoch)
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let configuration = database.configuration().await.ok().flatten();
        self.queued_configuration = configuration.clone();
        self.progress_sent = None;
        self.applier = Some(Applier::start(database.clone(), self.applied_tx.clone()));
        self.local = Local::Replica {
            service: LocalService::replica(database),
            applied,
            applied_term,
            queued: applied,
            asked_at: None,
            verified_by: None,
        };
        self.set_configuration(configuration);
        self.publish_copy_status();
        self.slot.set(self.database.clone(), "replica");
        tracing::info!(target: HEADLINE, epoch = applied.0, "keeping a copy of the data");
        self.ask_catch_up();
    }

    /// Before the database changes hands: what the applier took is applied (or failed), and its
    /// results, which belong to the copy being replaced, are dropped.
    async fn stop_applier(&mut self) {
        if let Some(applier) = self.applier.take() {
            applier.stop().await;
        }
        while let Ok(done) = self.applied_rx.try_recv() {
            for batch in &done.batches {
                self.show(batch);
            }
        }
    }

    /// Leaving the writer role for good: no write of that role may land after this (a copy must
    /// hold only what the writer it follows sent), so the writer service is retired first.
    async fn retire_writer(&mut self) {
        self.fence_writer();
        if let Local::Writer { service, .. } = &self.local {
            service.retire().await;
        }
    }

    /// Leaving the writer role: pending acknowledgements fail, nothing more is accepted.
    fn fence_writer(&mut self) {
        if let Local::Writer { active, .. } = &self.local {
            if *active {
                tracing::warn!(target: HEADLINE, "no longer the writer; pending writes are not acknowledged");
            }
            self.set_accepting(false);
            self.acks.send_modify(|acks| acks.durable.clear());
        }
    }

    /// The one place a writer starts or stops accepting writes: its own flag, the fence its waiting
    /// writes watch, `/status` and the gauge move together.
    fn set_accepting(&mut self, accepting: bool) {
        if let Local::Writer { active, .. } = &mut self.local {
            *active = accepting;
        }
        self.acks.send_modify(|acks| acks.fenced = !accepting);
        self.status
            .update(|status| status.accepting_writes = accepting);
        self.metrics.writer_accepting.set(i64::from(accepting));
    }

    /// Drops this copy (entries the writer never had) and starts again from an empty database.
    async fn discard_local_copy(&mut self) {
        self.close_database().await;
        if let Err(error) = Database::destroy(&self.options.data_dir) {
            tracing::error!(%error, "cannot delete the diverged database");
            return;
        }
        self.metrics.data_copies_discarded.inc();
        self.set_whole(false);
        self.position.send_replace((Term(0), Epoch(0)));
        let view = self.view.borrow().clone();
        if view.parent.is_some() && !view.roles.contains(&overlay::Role::Writer) {
            self.become_replica().await;
        }
    }

    async fn open_database(&mut self) -> Option<Database> {
        if let Some(database) = &self.database {
            return Some(database.clone());
        }
        match Database::open(&self.options.data_dir, self.options.database.clone()).await {
            Ok(database) => {
                self.database = Some(database.clone());
                Some(database)
            }
            Err(error) => {
                tracing::error!(%error, "cannot open the database");
                None
            }
        }
    }

    async fn close_database(&mut self) {
        self.stop_applier().await;
        self.retire_writer().await;
        self.commits = None;
        self.local = Local::None;
        self.configuration = None;
        self.queued_configuration = None;
        self.publish_copy_status();
        self.slot.clear();
        if let Some(database) = self.database.take() {
            database.close().await;
        }
    }

    /// Before any role is known, a node that kept a database from an earlier run reports its
    /// position, so the election can prefer the node with the most recent data.
    async fn report_stored_position(&mut self) {
        if !self
            .options
            .data_dir
            .join(crate::storage::DATABASE_FILE)
            .exists()
        {
            return;
        }
        // Opened only to read the position: nodes that are neither writer nor replica keep no database open.
        match Database::open(&self.options.data_dir, self.options.database.clone()).await {
            Ok(database) => {
                if let Ok(position) = database.position().await {
                    self.position.send_replace(position);
                }
                database.close().await;
            }
            Err(error) => tracing::warn!(%error, "cannot read the stored data position"),
        }
    }

    async fn publish_position(&mut self) {
        let Some(database) = &self.database else {
            return;
        };
        if let Ok(position) = database.position().await {
            self.set_position(position);
        }
    }

    /// Tells the control plane (the election) the data position, when it changed.
    fn set_position(&self, position: (Term, Epoch)) {
        self.position.send_if_modified(|current| {
            let changed = *current != position;
            *current = position;
            changed
        });
    }

    /// Encodes `message` once (commits are on the write path) and sends the bytes to every child.
    fn send_to_children(&self, message: &DataMessage) {
        let bytes = Bytes::from(message::encode(self.view.borrow().term, message));
        self.send_bytes_to_children(&bytes);
    }

    /// Passes a message on to the parent as the bytes it arrived in.
    fn send_up(&self, raw: Bytes) {
        let parent = self.view.borrow().parent;
        if let Some(parent) = parent {
            self.send_bytes(parent, raw);
        }
    }

    /// Passes a message on towards `to`, one hop down the tree.
    fn send_toward(&self, to: NodeId, raw: Bytes) {
        let next_hop = self.view.borrow().routes.get(&to).copied();
        match next_hop {
            Some(next_hop) => self.send_bytes(next_hop, raw),
            None => tracing::debug!(%to, "no route down; a catch-up answer is dropped"),
        }
    }

    fn send_bytes_to_children(&self, raw: &Bytes) {
        for &child in &self.view.borrow().children {
            if let Err(error) = self.transport.send(child, raw.clone()) {
                tracing::debug!(to = %child, %error, "data message not sent");
            }
        }
    }

    fn send_bytes(&self, to: NodeId, bytes: Bytes) {
        if let Err(error) = self.transport.send(to, bytes) {
            tracing::debug!(%to, %error, "data message not sent");
        }
    }

    fn send(&self, to: NodeId, message: &DataMessage) {
        let term = self.view.borrow().term;
        if let Err(error) = self
            .transport
            .send(to, Bytes::from(message::encode(term, message)))
        {
            tracing::debug!(%to, %error, "data message not sent");
        }
    }
}

/// Bits of a data term that hold the writer's node id.
const WRITER_BITS: u32 = 20;

/// The term a writer's entries carry: a round that is above both the tree's (control) term and every
/// round this copy has seen, with the writer's id in the low bits. Two writers can never write entries
/// of the same data term: a round taken by two nodes (elections in two parts of a split pick their
/// terms independently, and control terms restart at 1 after a full restart) still differs in the low
/// bits, so the log check that compares terms at an epoch always tells two histories apart.
fn data_term(tree_term: u64, stored: Term, writer: NodeId) -> Term {
    let round = tree_term.max((stored.0 >> WRITER_BITS) + 1);
    Term((round << WRITER_BITS) | (writer.0 & ((1 << WRITER_BITS) - 1)))
}

/// The newest configuration among `entries` (in log order).
fn newest_configuration(entries: &[LogEntry]) -> Option<Configuration> {
    entries
        .iter()
        .rev()
        .find_map(|entry| match &entry.mutation {
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
