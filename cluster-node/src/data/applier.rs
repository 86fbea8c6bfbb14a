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

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::storage::{Database, Epoch, KeptConnection, LogEntry, StorageError};

/// Most entries applied in one transaction.
const MAX_ENTRIES: usize = 1024;

/// How long a learner lets the writer's commits gather before it applies them. A learner's apply
/// is off the write path (nobody waits for it), and what costs it CPU is the number of
/// transactions more than their size: every statement is a hand-off to the database's thread, and
/// every transaction writes each page it touched to the WAL again (a profile of a 16-node cluster
/// under writes put 40 % of all CPU in SQLite's threads). Applied as they come, the commits of a
/// loaded writer cost every learner a transaction each; gathered for this long, one transaction
/// carries tens of them (100 ms did better than 25 ms in alternating runs). Its reads stay correct
/// meanwhile (a read the copy is not fresh enough for goes up the tree); its own users' live
/// updates come up to this much later.
const LEARNER_GATHER: Duration = Duration::from_millis(100);

/// Entries to apply, in the order they came from the parent.
#[derive(Debug)]
pub struct Batch {
    pub entries: Vec<LogEntry>,
    /// Commits (shown to local subscribers once applied), not a catch-up answer.
    pub live: bool,
    /// A full catch-up answer: more is waiting at the writer.
    pub more: bool,
    /// Applied with an fsync per transaction (this copy is a voter, or becomes one in this batch);
    /// otherwise relaxed, as a learner's copy is (see `KeptConnection::set_durable`).
    pub durable: bool,
}

/// What one transaction did: the batches it held, and the epoch the copy reached or why not.
#[derive(Debug)]
pub struct Applied {
    pub batches: Vec<Batch>,
    pub result: Result<Epoch, StorageError>,
    pub took: Duration,
    /// The transaction was fsynced (so was everything this copy applied before it).
    pub durable: bool,
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
    let mut connection = KeptConnection::new(database);
    let mut waiting = Vec::new();
    while connection.idle(queue.recv_many(&mut waiting, 64)).await > 0 {
        if waiting.iter().all(|batch| batch.live && !batch.durable) {
            tokio::time::sleep(LEARNER_GATHER).await;
            while waiting.len() < 4096
                && let Ok(batch) = queue.try_recv()
            {
                waiting.push(batch);
            }
        }
        // Batches are applied whole (a transaction may exceed MAX_ENTRIES by one batch), and only
        // batches that continue each other share a transaction: a catch-up answer that overlaps
        // commits, or commits after a gap, are applied on their own, so whatever applies does.
        let mut batches = Vec::new();
        let mut entries: Vec<LogEntry> = Vec::new();
        for batch in waiting.drain(..) {
            let continues = match (entries.last(), batch.entries.first()) {
                (Some(last), Some(first)) => last.epoch.0.checked_add(1) == Some(first.epoch.0),
                _ => true,
            };
            if !entries.is_empty()
                && (!continues || entries.len() + batch.entries.len() > MAX_ENTRIES)
            {
                let held = std::mem::take(&mut batches);
                apply(&mut connection, &results, held, &entries).await;
                entries.clear();
            }
            entries.extend(batch.entries.iter().cloned());
            batches.push(batch);
        }
        apply(&mut connection, &results, batches, &entries).await;
    }
}

/// Applies `entries` (those of `batches`) in one transaction and reports.
async fn apply(
    connection: &mut KeptConnection,
    results: &mpsc::UnboundedSender<Applied>,
    batches: Vec<Batch>,
    entries: &[LogEntry],
) {
    if batches.is_empty() {
        return;
    }
    let started = Instant::now();
    let durable = batches.iter().any(|batch| batch.durable);
    let result = match connection.set_durable(durable).await {
        Ok(()) => match connection.get().await {
            Ok(held) => Database::apply_entries_on(held, entries).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    connection.done(matches!(result, Err(StorageError::Sqlx(_))));
    if result.is_ok() {
        connection.database().recent().fold(entries);
    }
    let _ = results.send(Applied {
        batches,
        result,
        took: started.elapsed(),
        durable,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::users::NewUser;
    use crate::storage::{Mutation, Term, UnixMillis, UserId, UserTag};

    fn entry(epoch: u64) -> LogEntry {
        LogEntry {
            term: Term(1),
            epoch: Epoch(epoch),
            mutation: Mutation::RegisterUser(NewUser {
                id: UserId::random(),
                username: format!("user{epoch}"),
                tag: UserTag::new(1).expect("a valid tag"),
                password_hash: "hash".into(),
                created_at: UnixMillis(epoch as i64),
            }),
        }
    }

    fn batch(epochs: std::ops::RangeInclusive<u64>) -> Batch {
        Batch {
            entries: epochs.map(entry).collect(),
            live: true,
            more: false,
            durable: true,
        }
    }

    #[tokio::test]
    async fn batches_that_continue_each_other_share_a_transaction_and_a_gap_fails_alone() {
        let database = Database::open_in_memory().await.unwrap();
        let (results, mut applied) = mpsc::unbounded_channel();
        let (queue, receiver) = mpsc::unbounded_channel();
        // Queued before the task starts, so it finds them all waiting at once.
        for epochs in [1..=2, 3..=4, 6..=6, 5..=5] {
            queue.send(batch(epochs)).unwrap();
        }
        drop(queue);
        run(database.clone(), receiver, results).await;

        let mut reports = Vec::new();
        while let Ok(done) = applied.try_recv() {
            let sizes: Vec<usize> = done.batches.iter().map(|b| b.entries.len()).collect();
            reports.push((sizes, done.result));
        }
        assert_eq!(reports.len(), 3, "{reports:?}");
        // 1–2 and 3–4 continue each other: one transaction.
        assert_eq!(reports[0].0, vec![2, 2]);
        assert_eq!(reports[0].1.as_ref().ok(), Some(&Epoch(4)));
        // 6 does not continue 4: alone, and refused with the gap named; nothing of it applied.
        assert_eq!(reports[1].0, vec![1]);
        assert!(
            matches!(
                reports[1].1,
                Err(StorageError::Gap {
                    have: 4,
                    missing: 5
                })
            ),
            "{:?}",
            reports[1].1
        );
        // 5 does not continue 6 either: alone again, and it applies.
        assert_eq!(reports[2].0, vec![1]);
        assert_eq!(reports[2].1.as_ref().ok(), Some(&Epoch(5)));
        assert_eq!(database.epoch().await.unwrap(), Epoch(5));
    }
}
