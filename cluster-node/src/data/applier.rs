//! A copy's applier: the task that writes the writer's entries into this node's database, so the
//! data plane keeps routing (requests up, commits down, acknowledgements up) while a copy's
//! transaction commits.
//!
//! ```text
//!   DataPlane ──Batch──▶ mpsc ──▶ applier task: every batch waiting ─▶ one transaction ─▶ Applied
//!       ▲                                                                                    │
//!       └──────────────────────────────── mpsc ◀─────────────────────────────────────────────┘
//! ```
//!
//! Why a task of its own: applying takes a transaction and an fsync, and on a loaded machine each
//! statement waits for the database thread to be scheduled. Done inline, the plane of an interior
//! node stopped for that long: the acknowledgements of the copies below it, and the requests of its
//! subtree, waited behind its own apply, once per level of the tree. Batches that queue while one
//! applies are applied together (a group commit on the copy).
//!
//! The plane stays the only one to decide *what* to apply (the parent's commits, once the writer
//! confirmed this copy) and what a result means (acknowledge, catch up, discard). Before the
//! database changes hands (another role, a discarded copy) the plane stops the applier and waits for
//! it: nothing of the old role lands afterwards.

use std::time::Duration;

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::storage::{Database, Epoch, LogEntry, StorageError};

/// Most entries applied in one transaction.
const MAX_ENTRIES: usize = 1024;

/// How long the applier keeps its connection without work.
const IDLE_RELEASE: Duration = Duration::from_millis(100);

/// Entries to apply, in the order they came from the parent.
#[derive(Debug)]
pub struct Batch {
    pub entries: Vec<LogEntry>,
    /// Commits (shown to local subscribers once applied), not a catch-up answer.
    pub live: bool,
    /// A full catch-up answer: more is waiting at the writer.
    pub more: bool,
}

/// What one transaction did: the batches it held, and the epoch the copy reached or why not.
#[derive(Debug)]
pub struct Applied {
    pub batches: Vec<Batch>,
    pub result: Result<Epoch, StorageError>,
    pub took: Duration,
}

/// The running applier of one copy.
pub struct Applier {
    batches: mpsc::UnboundedSender<Batch>,
    task: JoinHandle<()>,
}

impl Applier {
    /// Starts applying into `database`; results go to `results`.
    pub fn start(database: Database, results: mpsc::UnboundedSender<Applied>) -> Self {
        let (batches, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(database, queue, results));
        Applier { batches, task }
    }

    /// Queues a batch. The queue is unbounded, but only the parent's commits and catch-up answers
    /// (1,000 entries each, asked for one at a time) reach it, and the plane drops those of a copy
    /// that is not being verified; a copy that cannot keep up falls behind in the writer's quorum.
    pub fn apply(&self, batch: Batch) {
        let _ = self.batches.send(batch);
    }

    /// Stops after what was queued is applied, and waits for that.
    pub async fn stop(self) {
        drop(self.batches);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the copy's applier failed");
        }
    }
}

async fn run(
    database: Database,
    mut queue: mpsc::UnboundedReceiver<Batch>,
    results: mpsc::UnboundedSender<Applied>,
) {
    let mut applier = Connection {
        database,
        held: None,
    };
    let mut waiting = Vec::new();
    loop {
        let received = if applier.held.is_some() {
            tokio::select! {
                received = queue.recv_many(&mut waiting, 64) => received,
                () = tokio::time::sleep(IDLE_RELEASE) => {
                    // Idle: the pool gets the connection back.
                    applier.held = None;
                    continue;
                }
            }
        } else {
            queue.recv_many(&mut waiting, 64).await
        };
        if received == 0 {
            break;
        }
        // Batches are applied whole (a transaction may exceed MAX_ENTRIES by one batch), and only
        // batches that continue each other share a transaction: a catch-up answer that overlaps
        // commits, or commits after a gap, are applied on their own, so whatever applies does.
        let mut batches = Vec::new();
        let mut entries: Vec<LogEntry> = Vec::new();
        for batch in waiting.drain(..) {
            let continues = match (entries.last(), batch.entries.first()) {
                (Some(last), Some(first)) => first.epoch.0 == last.epoch.0 + 1,
                _ => true,
            };
            if !entries.is_empty()
                && (!continues || entries.len() + batch.entries.len() > MAX_ENTRIES)
            {
                flush(
                    &mut applier,
                    &results,
                    std::mem::take(&mut batches),
                    &entries,
                )
                .await;
                entries.clear();
            }
            entries.extend(batch.entries.iter().cloned());
            batches.push(batch);
        }
        flush(&mut applier, &results, batches, &entries).await;
    }
}

/// The connection the applier keeps between transactions (taken again after an error).
struct Connection {
    database: Database,
    held: Option<PoolConnection<Sqlite>>,
}

impl Connection {
    async fn apply(&mut self, entries: &[LogEntry]) -> Result<Epoch, StorageError> {
        let connection = match &mut self.held {
            Some(connection) => connection,
            None => self.held.insert(self.database.pool().acquire().await?),
        };
        let result = Database::apply_entries_on(connection, entries).await;
        if matches!(result, Err(StorageError::Sqlx(_))) || !self.database.lends_connections() {
            self.held = None;
        }
        result
    }
}

async fn flush(
    applier: &mut Connection,
    results: &mpsc::UnboundedSender<Applied>,
    batches: Vec<Batch>,
    entries: &[LogEntry],
) {
    if batches.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = if entries.is_empty() {
        applier.database.epoch().await
    } else {
        applier.apply(entries).await
    };
    let _ = results.send(Applied {
        batches,
        result,
        took: started.elapsed(),
    });
}
