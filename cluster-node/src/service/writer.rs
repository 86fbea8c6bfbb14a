//! The single writer: one task owns every write to client data and commits them in groups.
//!
//! ```text
//!   callers (checked, hashed)            writer task                             after commit
//!   ─ WriteJob ─► mpsc ─► recv_many(≤ max_batch), gather ─► BEGIN
//!                                   retried sends of the batch: one query
//!                                   a plain group message: planned from the recent window, kept
//!                                   anything else: messages kept so far INSERTed, plan ─► SAVEPOINT
//!                                     apply(epoch+1) ─► outcome   (or ROLLBACK TO)
//!                                   kept messages + log entries + position (if unmoved): one query
//!                                   COMMIT ───► fold into the recent window ─► broadcast LogEntry
//!                                                                            reply to each caller
//! ```
//!
//! Why a group commit: with `synchronous = FULL` every commit waits for the disk, so the cost is per
//! transaction; all writes waiting when the writer wakes share one (and under load, those already on
//! their way join it). Each write still gets its own consecutive epoch, and one that fails (a rule, a
//! constraint) is rolled back alone (a savepoint around mutations of several statements; a message is
//! one INSERT row) and its neighbours commit. SQLite runs each statement on sqlx's worker thread, so
//! under load on a shared machine every statement costs a thread hand-off: a batch of plain messages
//! takes three (BEGIN, one multi-statement query, COMMIT), plus one when some carry a `client_id`.
//! Nobody is answered before the commit, so an answer always describes durable data; the log entries
//! are published before the answers, so the replication layer has them first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;
use sqlx::{Acquire, Connection, Sqlite, Transaction};
use tokio::sync::{broadcast, mpsc, oneshot};

use std::collections::HashSet;

use crate::storage::messages::{self, NewMessage};
use crate::storage::recent::{GroupSnapshot, RecentWindow};
use crate::storage::{
    ClientId, Epoch, KeptConnection, LogEntry, Mutation, StorageError, Term, UnixMillis, User,
    UserId, UserRef, groups, log, mutation, system,
};

use super::ServiceResponse;
use super::error::ServiceError;
use super::operation::Outcome;
use super::writes::{self, Plan, WriteCommand};

/// How long a loaded writer lets writes on their way join its batch (`Writer::gather`).
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);

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

/// What a batch wrote: each job's answer, the log entries and the epoch reached.
type Written = (Vec<Result<Done, ServiceError>>, Vec<LogEntry>, Epoch);

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
    /// The stored `(term, epoch)` as of this writer's last commit, so a batch need not read it; the
    /// batch's last statement moves it only if it is still this (`log::finish_batch`). `None`: read it.
    pub position: Option<(Term, Epoch)>,
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
            self.gather(&mut batch).await;
            let jobs = std::mem::take(&mut batch);
            self.commit(jobs).await;
        }
        tracing::debug!("writer stopped: no more senders");
    }

    /// Under load (more than one write waiting), lets the writes already on their way join this
    /// batch: a few turns of the runtime, while each turn brings more, for at most [`GATHER`]. A
    /// transaction's cost is mostly per transaction (the fsync, the pages it writes to the WAL
    /// again), so a larger group commit is cheaper per write; alone, a write does not wait.
    async fn gather(&mut self, batch: &mut Vec<WriteJob>) {
        if batch.len() < 2 {
            return;
        }
        let started = std::time::Instant::now();
        while batch.len() < self.max_batch && started.elapsed() < GATHER {
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < self.max_batch
                && let Ok(job) = self.jobs.try_recv()
            {
                batch.push(job);
            }
            if batch.len() == before {
                break;
            }
        }
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
        // A batch whose position moved under it (`Ok(None)`) is written again from the stored one.
        let written = match self.write(&jobs, now).await {
            Ok(Some(written)) => Ok(written),
            // The retry reads the position inside its transaction, which holds the write lock.
            Ok(None) => match self.write(&jobs, now).await {
                Ok(Some(written)) => Ok(written),
                Ok(None) => Err(StorageError::Corrupt(
                    "the stored position moved inside a write transaction".into(),
                )),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if written.is_err() {
            self.position = None;
        }
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
                // Folded before anyone hears of these entries, so no client holds an epoch the
                // recent window has not reached (`storage::recent`).
                self.connection.database().recent().fold(&entries);
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
    ///
    /// Messages, most writes, cost as few statements as can be: while the recent window describes
    /// the database this batch started from, a plain group message is planned from it (membership
    /// and the sender's name) without a read, the batch's retried sends are found in one query, and
    /// consecutive messages go into one INSERT. Any other command flushes the messages before it and
    /// is planned from the database, and after it the window no longer describes the transaction,
    /// so the rest of the batch is planned from the database too.
    async fn write(
        &mut self,
        jobs: &[WriteJob],
        now: UnixMillis,
    ) -> Result<Option<Written>, StorageError> {
        let database = self.connection.database().clone();
        let window = database.recent();
        let mut transaction = self
            .connection
            .get()
            .await?
            .begin_with("BEGIN IMMEDIATE")
            .await?;
        let (term, start) = match self.position {
            Some(position) => position,
            None => system::position(&mut transaction).await?,
        };
        let mut from_window = window.epoch() == Some(start);
        if from_window {
            learn_groups(&mut transaction, jobs, window, start).await?;
        }
        let sent = if from_window {
            let sends: Vec<_> = jobs
                .iter()
                .filter_map(|job| writes::send_key(&job.command, job.caller))
                .collect();
            if sends.is_empty() {
                HashSet::new()
            } else {
                messages::sent_client_ids(&mut transaction, &sends).await?
            }
        } else {
            HashSet::new()
        };
        // Sends of this batch by client_id: a second one is a retry of the first.
        let mut sending: HashSet<(UserId, ClientId)> = HashSet::new();
        let mut posts: Vec<(NewMessage, Epoch)> = Vec::new();
        let mut epoch = start;
        let mut answers = Vec::with_capacity(jobs.len());
        let mut entries = Vec::new();
        for job in jobs {
            let next = Epoch(epoch.0 + 1);
            let key = writes::send_key(&job.command, job.caller);
            let fresh_send = key.is_none_or(|(sender, client_id)| {
                !sent.contains(&(sender, client_id.clone()))
                    && sending.insert((sender, client_id.clone()))
            });
            let planned = if from_window && fresh_send {
                writes::plan_post_from_window(&job.command, job.caller, window, now, &mut self.rng)
            } else {
                None
            };
            let stepped = match planned {
                Some((message, sender)) => Ok(post(message, sender, next, &mut posts)),
                None => {
                    // What follows reads the database: the messages before it go in first.
                    flush(&mut transaction, &mut posts).await?;
                    // Messages change no membership and no name; anything else may.
                    if !matches!(
                        job.command,
                        WriteCommand::SendGroupMessage { .. }
                            | WriteCommand::SendDirectMessage { .. }
                    ) {
                        from_window = false;
                    }
                    step(&mut transaction, job, next, now, &mut self.rng, &mut posts).await?
                }
            };
            match stepped {
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
            let rows: Vec<(&NewMessage, Epoch)> = posts
                .iter()
                .map(|(message, epoch)| (message, *epoch))
                .collect();
            let held = log::finish_batch(
                &mut transaction,
                &rows,
                &entries,
                (term, start),
                (term, epoch),
            )
            .await?;
            if !held {
                // The stored position moved (a term taken): nothing of this batch may stand.
                transaction.rollback().await?;
                self.position = None;
                return Ok(None);
            }
        }
        transaction.commit().await?;
        self.position = Some((term, epoch));
        Ok(Some((answers, entries, epoch)))
    }
}

/// Reads the members of the groups this batch posts to that the recent window does not know yet, and
/// gives them to it as of `start` (the transaction has written nothing yet, so it reads the database
/// at `start`): a writer that only takes messages for a group plans them from memory after the first
/// batch, reads or not.
async fn learn_groups(
    transaction: &mut Transaction<'_, Sqlite>,
    jobs: &[WriteJob],
    window: &RecentWindow,
    start: Epoch,
) -> Result<(), StorageError> {
    let mut learnt = HashSet::new();
    for job in jobs {
        let WriteCommand::SendGroupMessage { group, .. } = &job.command else {
            continue;
        };
        if window.holds(*group) || !learnt.insert(*group) {
            continue;
        }
        if groups::find(transaction, *group).await?.is_none() {
            continue;
        }
        let members = groups::members(transaction, *group).await?;
        window.fill(
            start,
            GroupSnapshot {
                group: *group,
                members: members.iter().map(User::to_ref).collect(),
                newest: None,
            },
        );
    }
    Ok(())
}

/// A message to post at `epoch`: kept for the batch's next INSERT, answered with itself.
fn post(
    message: NewMessage,
    sender: UserRef,
    epoch: Epoch,
    posts: &mut Vec<(NewMessage, Epoch)>,
) -> (Option<Mutation>, Outcome) {
    let outcome = Outcome::Message(message.message(sender, epoch));
    posts.push((message.clone(), epoch));
    (Some(Mutation::PostMessage(message)), outcome)
}

/// Inserts the messages kept so far, in one statement per chunk. Nothing the writer did not check can
/// make it fail; if it does, the database is in trouble and the whole batch fails.
async fn flush(
    transaction: &mut Transaction<'_, Sqlite>,
    posts: &mut Vec<(NewMessage, Epoch)>,
) -> Result<(), StorageError> {
    if posts.is_empty() {
        return Ok(());
    }
    let rows: Vec<(&NewMessage, Epoch)> = posts
        .iter()
        .map(|(message, epoch)| (message, *epoch))
        .collect();
    messages::insert_many(transaction, &rows).await?;
    posts.clear();
    Ok(())
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
    posts: &mut Vec<(NewMessage, Epoch)>,
) -> Result<Result<(Option<Mutation>, Outcome), ServiceError>, StorageError> {
    let plan = match writes::plan(transaction, job.caller, &job.command, now, rng).await {
        Ok(plan) => plan,
        Err(error) => return Ok(Err(error)),
    };
    match plan {
        Plan::Unchanged(outcome) => Ok(Ok((None, outcome))),
        Plan::Post { message, sender } => Ok(Ok(post(message, sender, epoch, posts))),
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
