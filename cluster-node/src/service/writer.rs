//! The single writer: one task owns every write to client data and commits them in groups.
//!
//! ```text
//!   callers (checked, hashed)            writer task                           after commit
//!   ─ WriteJob ─► mpsc ─► recv_many(≤ max_batch) ─► BEGIN
//!                                                    for each job: plan ─► SAVEPOINT
//!                                                      apply(epoch+1) ─► outcome   (or ROLLBACK TO)
//!                                                    system_state := (term, last epoch)
//!                                                    COMMIT ─────────────────────────► broadcast LogEntry
//!                                                                                      reply to each caller
//! ```
//!
//! Why a group commit: with `synchronous = FULL` every commit waits for the disk, so the cost is per
//! transaction; all writes waiting when the writer wakes share one. Each write still gets its own
//! consecutive epoch, and one that fails (a rule, a constraint) is rolled back alone (a savepoint around
//! mutations of several statements; a message is one INSERT) and its neighbours commit. SQLite runs
//! each statement on sqlx's worker thread, so under load on a shared machine every statement costs a
//! thread hand-off: posting a message takes four (caller, membership, an earlier send, the INSERT). Nobody is answered before the commit, so an answer always describes durable
//! data; the log entries are published before the answers, so the replication layer has them first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;
use sqlx::{Acquire, Connection, Sqlite, Transaction};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::storage::{
    Epoch, KeptConnection, LogEntry, Mutation, StorageError, UnixMillis, UserId, log, mutation,
    system,
};

use super::ServiceResponse;
use super::error::ServiceError;
use super::operation::Outcome;
use super::writes::{self, Plan, WriteCommand};

/// One write waiting for the writer.
pub(super) struct WriteJob {
    pub caller: Option<UserId>,
    pub command: WriteCommand,
    pub reply: oneshot::Sender<Result<ServiceResponse, ServiceError>>,
}

/// Counters the writer keeps, for metrics and for tests of the batching.
#[derive(Debug, Default)]
pub(super) struct WriterStats {
    transactions: AtomicU64,
    requests: AtomicU64,
    writes: AtomicU64,
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterCounts {
    /// Transactions committed (one per batch).
    pub transactions: u64,
    /// Write requests answered, failed ones included.
    pub requests: u64,
    /// Writes committed (each took one epoch).
    pub writes: u64,
}

impl WriterStats {
    pub(super) fn snapshot(&self) -> WriterCounts {
        WriterCounts {
            transactions: self.transactions.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// How one job ended inside the batch.
enum Done {
    Written { epoch: Epoch, outcome: Outcome },
    Unchanged(Outcome),
}

/// Lets the data plane retire a writer: once retired it commits nothing more, and retiring waits
/// for a batch already being written, so the database can be handed to the replica role with no
/// write of the old role still landing in it.
#[derive(Debug, Default)]
pub(super) struct Retirement {
    retired: AtomicBool,
    /// Held by the writer while it writes a batch.
    writing: tokio::sync::Mutex<()>,
}

impl Retirement {
    /// Once this returns, the writer commits nothing more; it gives its connection back when it
    /// next wakes (a job, or being idle for a moment).
    pub(super) async fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        drop(self.writing.lock().await);
    }
}

/// The writer task's state.
pub(super) struct Writer {
    pub retirement: Arc<Retirement>,
    /// The connection the writer writes on, kept between batches.
    pub connection: KeptConnection,
    pub jobs: mpsc::Receiver<WriteJob>,
    pub log: broadcast::Sender<LogEntry>,
    pub stats: Arc<WriterStats>,
    pub rng: StdRng,
    pub max_batch: usize,
    /// The last timestamp handed out: timestamps never go backwards within one writer.
    pub last_time: UnixMillis,
}

impl Writer {
    /// Runs until every sender of jobs is gone.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while self
            .connection
            .idle(self.jobs.recv_many(&mut batch, self.max_batch))
            .await
            > 0
        {
            let jobs = std::mem::take(&mut batch);
            self.commit(jobs).await;
        }
        tracing::debug!("writer stopped: no more senders");
    }

    fn now(&mut self) -> UnixMillis {
        self.last_time = self.last_time.max(UnixMillis::now());
        self.last_time
    }

    async fn commit(&mut self, jobs: Vec<WriteJob>) {
        let retirement = Arc::clone(&self.retirement);
        let _writing = retirement.writing.lock().await;
        if retirement.retired.load(Ordering::SeqCst) {
            self.connection.release();
            for job in jobs {
                let _ = job.reply.send(Err(ServiceError::Unavailable {
                    retry_after: std::time::Duration::from_secs(1),
                }));
            }
            return;
        }
        let now = self.now();
        let size = jobs.len();
        let written = self.write(&jobs, now).await;
        self.connection.done(written.is_err());
        match written {
            Ok((answers, entries, epoch)) => {
                self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .writes
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                tracing::debug!(
                    size,
                    written = entries.len(),
                    epoch = epoch.0,
                    "group commit"
                );
                for entry in entries {
                    // No subscriber (no replication layer yet) is fine: the data is committed.
                    let _ = self.log.send(entry);
                }
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let response = answer.map(|done| match done {
                        Done::Written { epoch, outcome } => ServiceResponse { epoch, outcome },
                        Done::Unchanged(outcome) => ServiceResponse { epoch, outcome },
                    });
                    // A caller that gave up is not an error: its write stands.
                    let _ = job.reply.send(response);
                }
            }
            Err(error) => {
                tracing::error!(%error, size, "group commit failed; the whole batch is rolled back");
                let error = ServiceError::from(error);
                for job in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
        self.stats
            .requests
            .fetch_add(size as u64, Ordering::Relaxed);
    }

    /// One transaction for the whole batch; returns each job's answer, the log entries and the epoch
    /// reached.
    async fn write(
        &mut self,
        jobs: &[WriteJob],
        now: UnixMillis,
    ) -> Result<(Vec<Result<Done, ServiceError>>, Vec<LogEntry>, Epoch), StorageError> {
        let mut transaction = self
            .connection
            .get()
            .await?
            .begin_with("BEGIN IMMEDIATE")
            .await?;
        let (term, start) = system::position(&mut transaction).await?;
        let mut epoch = start;
        let mut answers = Vec::with_capacity(jobs.len());
        let mut entries = Vec::new();
        for job in jobs {
            let next = Epoch(epoch.0 + 1);
            match step(&mut transaction, job, next, now, &mut self.rng).await? {
                Ok((Some(mutation), outcome)) => {
                    epoch = next;
                    entries.push(LogEntry {
                        term,
                        epoch,
                        mutation,
                    });
                    answers.push(Ok(Done::Written { epoch, outcome }));
                }
                Ok((None, outcome)) => answers.push(Ok(Done::Unchanged(outcome))),
                Err(error) => answers.push(Err(error)),
            }
        }
        if epoch > start {
            log::append(&mut transaction, &entries).await?;
            system::set_position(&mut transaction, term, epoch).await?;
        }
        transaction.commit().await?;
        Ok((answers, entries, epoch))
    }
}

/// Plans, applies and describes one job; `None` when there was nothing to write. The plan only
/// reads; a mutation of several statements is applied inside a savepoint, so one that fails half-way
/// is rolled back alone. The outer error is the batch's: the transaction itself is in trouble.
async fn step(
    transaction: &mut Transaction<'_, Sqlite>,
    job: &WriteJob,
    epoch: Epoch,
    now: UnixMillis,
    rng: &mut StdRng,
) -> Result<Result<(Option<Mutation>, Outcome), ServiceError>, StorageError> {
    let plan = match writes::plan(transaction, job.caller, &job.command, now, rng).await {
        Ok(plan) => plan,
        Err(error) => return Ok(Err(error)),
    };
    match plan {
        Plan::Unchanged(outcome) => Ok(Ok((None, outcome))),
        Plan::Post { message, sender } => {
            let outcome = Outcome::Message(message.message(sender, epoch));
            let mutation = Mutation::PostMessage(message);
            // Nothing the writer did not check can make this INSERT fail; if it does, the database
            // is in trouble and the whole batch fails (no savepoint to fall back to).
            mutation::apply(transaction, epoch, &mutation).await?;
            Ok(Ok((Some(mutation), outcome)))
        }
        Plan::Write(mutation) => {
            let mut savepoint = Acquire::begin(&mut **transaction).await?;
            let applied = async {
                mutation::apply(&mut savepoint, epoch, &mutation).await?;
                writes::outcome(&mut savepoint, &mutation).await
            }
            .await;
            match applied {
                Ok(outcome) => {
                    savepoint.commit().await?;
                    Ok(Ok((Some(mutation), outcome)))
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    Ok(Err(error))
                }
            }
        }
    }
}
