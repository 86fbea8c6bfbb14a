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
//! Who answers what: the writer answers everything; a replica answers a read when the client's epoch
//! is in `1..=its own` (DESIGN §4), otherwise the request goes on to its parent. Only the origin keeps
//! state about a request, so losses anywhere become the origin's `Timeout`, never a hang. A write is
//! answered only once a quorum of replicas has acknowledged it.

pub mod message;
mod proxy;
pub mod replication;
#[cfg(test)]
mod tests;

pub use message::{DataMessage, RequestId};
pub use proxy::ProxyService;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::NodeId;
use crate::context::NodeContext;
use crate::control::ControlView;
use crate::discovery::AddressBook;
use crate::metrics::{AnsweredBy, Metrics};
use crate::service::{
    ChatService, LocalService, ServiceError, ServiceOptions, ServiceRequest, ServiceResponse,
    replica_can_answer,
};
use crate::storage::{Database, DatabaseOptions, Epoch, LogEntry, StorageError, Term};
use crate::transport::{Inbound, Transport};
use replication::{Acks, CATCH_UP_BATCH, wait_for_quorum};

/// Most commits a replica applies in one transaction.
const COMMIT_BATCH: usize = 512;

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
}

impl DataOptions {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            quorum_timeout: Duration::from_secs(3),
            data_dir,
            database: DatabaseOptions::default(),
            service: ServiceOptions::default(),
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
}

/// The database role this node currently plays.
enum Local {
    None,
    Writer {
        service: LocalService,
    },
    Replica {
        service: LocalService,
        applied: Epoch,
        asked_at: Option<Instant>,
    },
}

/// Cloneable entry points into a running data plane.
#[derive(Clone)]
pub struct DataHandle {
    submit: mpsc::Sender<Submit>,
    events: broadcast::Sender<LogEntry>,
    timeout: Duration,
}

impl DataHandle {
    /// The service the web layer uses on this node: it answers through the tree.
    pub fn service(&self) -> ProxyService {
        ProxyService::new(self.clone())
    }

    /// Every committed write, as it reaches this node (for live updates).
    pub fn events(&self) -> broadcast::Receiver<LogEntry> {
        self.events.subscribe()
    }

    async fn execute(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
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
    /// Messages read ahead while gathering a batch of commits, handled right after it.
    backlog: VecDeque<(NodeId, DataMessage)>,
    next_seq: u64,
    database: Option<Database>,
    local: Local,
    acks: watch::Sender<Acks>,
    position: watch::Sender<(Term, Epoch)>,
    peers: BTreeSet<NodeId>,
    metrics: Arc<Metrics>,
}

impl<T: Transport> DataPlane<T> {
    /// A data plane over `transport`, following the tree in `view`. `position` receives the
    /// `(term, epoch)` of the local data whenever it changes (the election compares it).
    pub fn new(
        me: NodeId,
        options: DataOptions,
        (transport, inbound): (Arc<T>, mpsc::Receiver<Inbound>),
        view: watch::Receiver<ControlView>,
        position: watch::Sender<(Term, Epoch)>,
        context: &NodeContext,
    ) -> Self {
        let addresses = context.addresses.clone();
        let metrics = context.metrics.clone();
        let (submit, submits) = mpsc::channel(4096);
        let (events, _) = broadcast::channel(4096);
        let (outcomes_tx, outcomes) = mpsc::channel(4096);
        let handle = DataHandle {
            submit,
            events,
            timeout: options.request_timeout,
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
            backlog: VecDeque::new(),
            next_seq: 0,
            database: None,
            local: Local::None,
            acks: watch::channel(Acks::default()).0,
            position,
            peers: BTreeSet::new(),
            metrics,
        }
    }

    pub fn handle(&self) -> DataHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown` is cancelled.
    #[tracing::instrument(name = "data", skip_all, fields(node = %self.me))]
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.report_stored_position().await;
        let mut commits: Option<broadcast::Receiver<LogEntry>> = None;
        let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
        self.on_view_change(&mut commits).await;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                changed = self.view.changed() => {
                    if changed.is_err() { break }
                    self.on_view_change(&mut commits).await;
                }
                Some(inbound) = self.inbound.recv() => {
                    self.on_inbound(inbound).await;
                    while let Some((from, message)) = self.backlog.pop_front() {
                        self.on_message(from, message).await;
                    }
                }
                Some(outcome) = self.outcomes.recv() => self.on_local_outcome(outcome),
                Some(submit) = self.submits.recv() => self.on_submit(submit),
                entry = next_commit(&mut commits) => match entry {
                    Ok(entry) => self.on_commit(entry),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the plane fell behind the writer's log; replicas will catch up");
                    }
                    Err(broadcast::error::RecvError::Closed) => commits = None,
                },
                _ = housekeeping.tick() => self.housekeeping(),
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
        self.route_request(id, submit.request);
    }

    /// Answers locally when this node may, else sends the request on to the parent.
    fn route_request(&mut self, id: RequestId, request: ServiceRequest) {
        let view = self.view.borrow().clone();
        if !view.ready {
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
        match view.parent {
            Some(parent) => {
                self.metrics.data_forwarded.inc();
                self.send(parent, &DataMessage::Request { id, request });
            }
            None => self.deliver(id, Err(unavailable())),
        }
    }

    fn local_answerer(&self, request: &ServiceRequest) -> Option<LocalService> {
        match &self.local {
            Local::Writer { service, .. } => Some(service.clone()),
            Local::Replica {
                service, applied, ..
            } if !request.operation.is_write()
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
        tokio::spawn(async move {
            let is_write = request.operation.is_write();
            let outcome = match service.execute(request.clone()).await {
                Err(error) if error.should_forward() => LocalOutcome::Forward { id, request },
                Ok(response) if is_write => {
                    let durable = wait_for_quorum(acks, response.epoch, quorum_timeout).await;
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
        match message::decode(&inbound.payload) {
            Ok(message) => self.on_message(inbound.from, message).await,
            Err(error) => {
                tracing::debug!(from = %inbound.from, %error, "dropping an undecodable data message");
            }
        }
    }

    async fn on_message(&mut self, from: NodeId, message: DataMessage) {
        match message {
            DataMessage::Request { id, request } => self.route_request(id, request),
            DataMessage::Response { id, result } => self.deliver(id, result),
            DataMessage::Commit { entry } => {
                let entries = self.gather_commits(from, entry);
                self.apply_as_replica(from, &entries).await;
                for entry in &entries {
                    self.forward_commit(entry);
                }
            }
            DataMessage::Entries { entries } => {
                self.apply_as_replica(from, &entries).await;
                // A full batch means more is waiting: ask again at once rather than at the next tick.
                if entries.len() == CATCH_UP_BATCH
                    && let Local::Replica { asked_at, .. } = &mut self.local
                {
                    *asked_at = None;
                    self.ask_catch_up();
                }
            }
            DataMessage::Ack { epoch } => {
                if matches!(self.local, Local::Writer { .. }) {
                    self.acks.send_modify(|acks| {
                        let applied = acks.applied.entry(from).or_default();
                        *applied = (*applied).max(epoch);
                    });
                }
            }
            DataMessage::CatchUp { from: wanted } => self.serve_catch_up(from, wanted),
            DataMessage::Position { epoch, .. } => {
                if let Local::Replica { applied, .. } = &self.local
                    && epoch > *applied
                {
                    self.ask_catch_up();
                }
            }
        }
    }

    /// Takes the commits from `from` that are already queued behind `first`, so a replica applies
    /// (and syncs, and acknowledges) them in one transaction: under load the fsync per commit would
    /// otherwise bound the cluster's write rate. Other messages found on the way are kept, in order,
    /// for right after.
    fn gather_commits(&mut self, from: NodeId, first: LogEntry) -> Vec<LogEntry> {
        let mut entries = vec![first];
        while entries.len() < COMMIT_BATCH {
            let Ok(next) = self.inbound.try_recv() else {
                break;
            };
            match message::decode(&next.payload) {
                Ok(DataMessage::Commit { entry }) if next.from == from => entries.push(entry),
                Ok(other) => self.backlog.push_back((next.from, other)),
                Err(error) => {
                    tracing::debug!(from = %next.from, %error, "dropping an undecodable data message");
                }
            }
        }
        entries
    }

    /// A replica applies entries from its parent (the writer) in order and acknowledges them.
    async fn apply_as_replica(&mut self, from: NodeId, entries: &[LogEntry]) {
        let Local::Replica {
            service, applied, ..
        } = &mut self.local
        else {
            return;
        };
        if self.view.borrow().parent != Some(from) {
            return;
        }
        match service.database().apply_entries(entries).await {
            Ok(epoch) => {
                *applied = epoch;
                // Published before the ack, so whoever sees the write acknowledged sees it here too.
                self.publish_position().await;
                self.send(from, &DataMessage::Ack { epoch });
            }
            Err(StorageError::Gap { .. }) => self.ask_catch_up(),
            Err(error) => tracing::error!(%error, "cannot apply the writer's log"),
        }
    }

    fn ask_catch_up(&mut self) {
        let parent = self.view.borrow().parent;
        let Local::Replica {
            applied, asked_at, ..
        } = &mut self.local
        else {
            return;
        };
        // One request per second at most: the answer is on its way.
        if asked_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *asked_at = Some(Instant::now());
        let from = Epoch(applied.0 + 1);
        if let Some(parent) = parent {
            self.send(parent, &DataMessage::CatchUp { from });
        }
    }

    /// Sends a replica the next batch of the stored log after its epoch (read off the plane's task).
    fn serve_catch_up(&mut self, replica: NodeId, from: Epoch) {
        let Local::Writer { service } = &self.local else {
            return;
        };
        let database = service.database().clone();
        let transport = self.transport.clone();
        tokio::spawn(async move {
            match database.log_since(from, CATCH_UP_BATCH).await {
                Ok(entries) if !entries.is_empty() => {
                    let message = message::encode(&DataMessage::Entries { entries });
                    let _ = transport.send(replica, Bytes::from(message));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, %replica, "cannot read the log for a catch-up")
                }
            }
        });
    }

    /// The writer committed `entry`: send it down and tell local subscribers.
    fn on_commit(&mut self, entry: LogEntry) {
        let epoch = entry.epoch;
        let term = entry.term;
        self.forward_commit(&entry);
        self.position.send_if_modified(|position| {
            let changed = *position != (term, epoch);
            *position = (term, epoch);
            changed
        });
    }

    fn forward_commit(&mut self, entry: &LogEntry) {
        self.send_to_children(&DataMessage::Commit {
            entry: entry.clone(),
        });
        let _ = self.handle.events.send(entry.clone());
    }

    fn housekeeping(&mut self) {
        // Callers that gave up (timed out) leave closed senders behind.
        self.pending.retain(|_, reply| !reply.is_closed());
        if let Local::Writer { .. } = &self.local {
            let (term, epoch) = *self.position.borrow();
            self.send_to_children(&DataMessage::Position { term, epoch });
        }
    }

    // ----- roles and the database ---------------------------------------------------------------

    async fn on_view_change(&mut self, commits: &mut Option<broadcast::Receiver<LogEntry>>) {
        let view = self.view.borrow_and_update().clone();
        for peer in view.parent.iter().chain(view.children.iter()) {
            if self.peers.insert(*peer) {
                match self
                    .addresses
                    .get(*peer)
                    .and_then(|n| data_addr(&n.host, n.data_port))
                {
                    Some(addr) => self.transport.set_peer(*peer, addr),
                    None => {
                        self.peers.remove(peer);
                        tracing::warn!(%peer, "no data address known for a tree neighbour");
                    }
                }
            }
        }
        let wants_writer = view.roles.contains(&overlay::Role::Writer);
        let wants_replica = !wants_writer && view.roles.contains(&overlay::Role::Persistence);
        match (&self.local, wants_writer, wants_replica) {
            (Local::Writer { .. }, true, _) | (Local::Replica { .. }, false, true) => {}
            (_, true, _) => {
                if let Some(database) = self.open_database().await {
                    if let Err(error) = database.set_term(Term(view.term)).await {
                        tracing::error!(%error, "cannot record the new term");
                    }
                    let service = LocalService::writer(database, self.options.service.clone());
                    *commits = service.subscribe();
                    self.local = Local::Writer { service };
                    tracing::info!(target: crate::logging::HEADLINE, "serving as the writer");
                }
            }
            (_, false, true) => {
                *commits = None;
                if let Some(database) = self.open_database().await {
                    let applied = database.epoch().await.unwrap_or_default();
                    self.local = Local::Replica {
                        service: LocalService::replica(database),
                        applied,
                        asked_at: None,
                    };
                    tracing::info!(target: crate::logging::HEADLINE, epoch = applied.0, "serving as a replica");
                    self.ask_catch_up();
                }
            }
            (Local::None, false, false) => {}
            (_, false, false) => {
                *commits = None;
                self.local = Local::None;
                self.close_database().await;
            }
        }
        if let Local::Writer { .. } = self.local {
            self.acks.send_modify(|acks| {
                acks.replicas = view.children.iter().copied().collect();
            });
        }
        self.publish_position().await;
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
        self.local = Local::None;
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
            self.position.send_if_modified(|current| {
                let changed = *current != position;
                *current = position;
                changed
            });
        }
    }

    /// Encodes `message` once (commits are on the write path) and sends the bytes to every child.
    fn send_to_children(&self, message: &DataMessage) {
        let bytes = Bytes::from(message::encode(message));
        for &child in &self.view.borrow().children {
            if let Err(error) = self.transport.send(child, bytes.clone()) {
                tracing::debug!(to = %child, %error, "data message not sent");
            }
        }
    }

    fn send(&self, to: NodeId, message: &DataMessage) {
        if let Err(error) = self
            .transport
            .send(to, Bytes::from(message::encode(message)))
        {
            tracing::debug!(%to, %error, "data message not sent");
        }
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
