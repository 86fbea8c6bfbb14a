//! [`LocalService`]: the chat service over this node's own database, as the writer or as a replica.
//!
//! As the writer it answers everything: reads straight from the database, writes through the single
//! writer task (see `writer.rs`). As a replica it answers only reads it is fresh enough for
//! ([`super::replica_can_answer`]) and refuses writes with [`ServiceError::ReadOnly`], so the data plane
//! forwards both kinds of refusal up the tree.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::storage::{Database, KeptConnection, LogEntry, UnixMillis, system};

use super::ephemeral::{EphemeralEvent, EphemeralGroups};
use super::error::ServiceError;
use super::operation::{Operation, Outcome};
use super::password;
use super::validate::Page;
use super::writer::{WriteJob, Writer, WriterCounts, WriterStats};
use super::{ChatService, ServiceRequest, ServiceResponse, reads, replica_can_answer, writes};

/// How the writer behaves.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// bcrypt cost for new passwords: at least 10 in production; tests use 4 (≈ 1 ms).
    pub bcrypt_cost: u32,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Writes that may wait for the writer before senders wait for room.
    pub queue_capacity: usize,
    /// Log entries kept for a slow subscriber before it starts missing some (it then resyncs).
    pub log_capacity: usize,
    /// Seed for ids and tags; `None` seeds from the operating system. A fixed seed makes one writer's
    /// choices repeatable, but two writers with the same seed over one database would generate the same
    /// ids: never use one across a restart or a failover.
    pub seed: Option<u64>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            bcrypt_cost: password::DEFAULT_COST,
            max_batch: 256,
            queue_capacity: 4096,
            log_capacity: 4096,
            seed: None,
        }
    }
}

impl ServiceOptions {
    /// Cheap hashing (bcrypt cost 4, ≈ 1 ms): for tests and benchmarks only.
    pub fn for_tests() -> Self {
        ServiceOptions {
            bcrypt_cost: 4,
            ..ServiceOptions::default()
        }
    }
}

struct WriterHandle {
    retirement: Arc<super::writer::Retirement>,
    jobs: mpsc::Sender<WriteJob>,
    log: broadcast::Sender<LogEntry>,
    stats: Arc<WriterStats>,
    /// This writer's ephemeral groups: they live and die with it (`ephemeral`).
    ephemeral: std::sync::Mutex<EphemeralGroups>,
    ephemeral_events: broadcast::Sender<EphemeralEvent>,
}

struct Inner {
    database: Database,
    /// `None` on a replica.
    writer: Option<WriterHandle>,
    bcrypt_cost: u32,
}

/// The chat service over the local database; cheap to clone. The writer task stops when the last
/// clone of a writer service is dropped (after finishing the writes it already took).
#[derive(Clone)]
pub struct LocalService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalService")
            .field("database", &self.inner.database.path())
            .field("writer", &self.inner.writer.is_some())
            .finish()
    }
}

impl LocalService {
    /// The writer's service: spawns the writer task on the current Tokio runtime.
    pub fn writer(database: Database, options: ServiceOptions) -> Self {
        let (jobs, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let (log, _) = broadcast::channel(options.log_capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let rng = match options.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let retirement = Arc::new(super::writer::Retirement::default());
        let writer = Writer {
            retirement: Arc::clone(&retirement),
            connection: KeptConnection::new(database.clone()),
            jobs: receiver,
            log: log.clone(),
            stats: Arc::clone(&stats),
            rng,
            max_batch: options.max_batch.max(1),
            last_time: UnixMillis::default(),
            position: None,
        };
        tokio::spawn(writer.run());
        LocalService {
            inner: Arc::new(Inner {
                database,
                writer: Some(WriterHandle {
                    retirement,
                    jobs,
                    log,
                    stats,
                    ephemeral: std::sync::Mutex::new(EphemeralGroups::default()),
                    ephemeral_events: broadcast::channel(options.log_capacity.max(1)).0,
                }),
                bcrypt_cost: options.bcrypt_cost,
            }),
        }
    }

    /// A read-only replica's service: reads when fresh enough, never writes.
    pub fn replica(database: Database) -> Self {
        LocalService {
            inner: Arc::new(Inner {
                database,
                writer: None,
                bcrypt_cost: password::DEFAULT_COST,
            }),
        }
    }

    /// Stops a writer for good: writes not yet committed fail with `Unavailable`, and this returns
    /// once a batch being written has finished, so nothing of this role lands in the database
    /// afterwards (clones held by in-flight requests included). No-op on a replica.
    pub async fn retire(&self) {
        if let Some(writer) = &self.inner.writer {
            writer.retirement.retire().await;
        }
    }

    /// Whether `other` is a clone of this same service (same database, same role).
    pub fn same(&self, other: &LocalService) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub fn is_writer(&self) -> bool {
        self.inner.writer.is_some()
    }

    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// Every committed write from now on, in epoch order (writer only). A subscriber that falls more than
    /// `log_capacity` entries behind gets `RecvError::Lagged` and must catch up from the database.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        self.inner
            .writer
            .as_ref()
            .map(|writer| writer.log.subscribe())
    }

    /// Events of this writer's ephemeral groups from now on (writer only).
    pub fn subscribe_ephemeral(&self) -> Option<broadcast::Receiver<EphemeralEvent>> {
        self.inner
            .writer
            .as_ref()
            .map(|writer| writer.ephemeral_events.subscribe())
    }

    /// Drops ephemeral members offline for the grace period, as `online` tells (writer only).
    pub fn sweep_ephemeral(&self, online: &std::collections::BTreeSet<crate::storage::UserId>) {
        if let Some(writer) = &self.inner.writer {
            let events = writer
                .ephemeral
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .sweep(online, UnixMillis::now());
            for event in events {
                // Nobody listening is not an error.
                let _ = writer.ephemeral_events.send(event);
            }
        }
    }

    /// Runs an ephemeral group's command in memory; the answer's epoch is the caller's own (nothing
    /// in the data changed).
    fn ephemeral(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
        let writer = self.inner.writer.as_ref().ok_or(ServiceError::ReadOnly)?;
        let Operation::Ephemeral(ephemeral) = request.operation else {
            return Err(ServiceError::Internal("not an ephemeral command".into()));
        };
        if request.caller != Some(ephemeral.caller.id) {
            return Err(ServiceError::Unauthenticated);
        }
        let (answer, events) = writer
            .ephemeral
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .apply(ephemeral, UnixMillis::now(), &mut uuid::Uuid::new_v4)?;
        for event in events {
            let _ = writer.ephemeral_events.send(event);
        }
        Ok(ServiceResponse {
            epoch: request.client_epoch,
            outcome: Outcome::Ephemeral(answer),
        })
    }

    /// The writer's counters (writer only).
    pub fn writer_counts(&self) -> Option<WriterCounts> {
        self.inner
            .writer
            .as_ref()
            .map(|writer| writer.stats.snapshot())
    }

    async fn read(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
        if let Some(response) = self.read_recent(&request)? {
            return Ok(response);
        }
        let mut transaction = self.inner.database.pool().begin().await?;
        let (_, epoch) = system::position(&mut transaction).await?;
        if !self.is_writer() && !replica_can_answer(request.client_epoch, epoch) {
            return Err(ServiceError::Stale {
                wanted: request.client_epoch.0,
                have: epoch.0,
            });
        }
        let newest_page = match &request.operation {
            Operation::ListGroupMessages(list) if list.before.is_none() => Some(list),
            _ => None,
        };
        let (outcome, snapshot) = match newest_page {
            Some(list) => {
                let (outcome, snapshot) =
                    reads::newest_group_page(&mut transaction, request.caller, list).await?;
                (outcome, Some(snapshot))
            }
            None => (
                reads::run(&mut transaction, request.caller, &request.operation).await?,
                None,
            ),
        };
        transaction.commit().await?;
        if let Some(snapshot) = snapshot {
            self.inner.database.recent().fill(epoch, snapshot);
        }
        Ok(ServiceResponse { epoch, outcome })
    }

    /// The newest page of a group from the recent window, when it holds the group and may answer
    /// this client by the same epoch rule as the database (`storage::recent`).
    fn read_recent(
        &self,
        request: &ServiceRequest,
    ) -> Result<Option<ServiceResponse>, ServiceError> {
        let (Operation::ListGroupMessages(list), Some(caller)) =
            (&request.operation, request.caller)
        else {
            return Ok(None);
        };
        if list.before.is_some() {
            return Ok(None);
        }
        let limit = Page::parse(None, list.limit)?.limit as usize;
        let writer = self.is_writer();
        let client_epoch = request.client_epoch;
        let page = self
            .inner
            .database
            .recent()
            .page(list.group, caller, limit, |epoch| {
                if writer {
                    client_epoch <= epoch
                } else {
                    replica_can_answer(client_epoch, epoch)
                }
            });
        Ok(page.map(|page| ServiceResponse {
            epoch: page.epoch,
            outcome: Outcome::Messages(page.messages),
        }))
    }

    async fn write(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
        if self.inner.writer.is_none() {
            return Err(ServiceError::ReadOnly);
        }
        let command =
            writes::check(request.operation, request.caller, self.inner.bcrypt_cost).await?;
        self.submit(request.caller, command).await
    }

    /// Hands a checked command to the writer task and waits for its answer.
    async fn submit(
        &self,
        caller: Option<crate::storage::UserId>,
        command: writes::WriteCommand,
    ) -> Result<ServiceResponse, ServiceError> {
        let writer = self.inner.writer.as_ref().ok_or(ServiceError::ReadOnly)?;
        let (reply, answer) = oneshot::channel();
        let stopped = || ServiceError::Unavailable {
            retry_after: std::time::Duration::from_secs(1),
        };
        writer
            .jobs
            .send(WriteJob {
                caller,
                command,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Writes a voter configuration entry through the writer's group commit (so it takes its place
    /// in the log like any write) and returns its epoch. Writer only.
    pub async fn configure(
        &self,
        voters: std::collections::BTreeSet<crate::config::NodeId>,
    ) -> Result<crate::storage::Epoch, ServiceError> {
        let command = writes::WriteCommand::Configure { voters };
        Ok(self.submit(None, command).await?.epoch)
    }
}

impl ChatService for LocalService {
    async fn execute(&self, request: ServiceRequest) -> Result<ServiceResponse, ServiceError> {
        if matches!(request.operation, Operation::Ephemeral(_)) {
            self.ephemeral(request)
        } else if request.operation.is_write() {
            self.write(request).await
        } else {
            self.read(request).await
        }
    }
}
