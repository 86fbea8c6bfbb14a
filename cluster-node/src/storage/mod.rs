//! The node's SQLite database: schema, repositories, deterministic mutations and the replica's apply path.
//!
//! ```text
//!   service (writer task)                         data plane (replica)
//!     prepare ─► Mutation ─┐                       LogEntry { term, epoch, mutation }
//!                          ▼                                  │
//!              mutation::apply(conn, epoch, &m) ◄─────────────┘  Database::apply_entries
//!                          │
//!        users · user_secrets · groups · memberships · messages · system_state
//! ```
//!
//! Only the writer and the replicas open a database (DESIGN §5). The writer decides every value of a write
//! (ids, timestamps, tag, password hash) when it *prepares* it; [`mutation::apply`] then only copies those
//! values into rows, so a replica applying the same [`LogEntry`] sequence ends with byte-identical tables
//! ([`Database::content_hash`] checks it). Repository functions take a `&mut SqliteConnection` so that
//! several run inside one transaction (a group commit, or a replica's batch of entries).

pub mod backup;
pub mod chats;
pub mod groups;
pub mod ids;
mod kept;
pub mod log;
pub mod messages;
pub mod model;
pub mod mutation;
pub mod reactions;
pub mod read_markers;
pub mod recent;
pub mod stats;
pub mod system;
pub mod users;
pub mod voters;

mod content_hash;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

pub use content_hash::ContentHash;
pub use ids::{
    ChatId, ClientId, Epoch, GroupId, MessageId, ParseIdError, Term, UnixMillis, UserId, UserTag,
};
pub use kept::KeptConnection;
pub use model::{
    ChatKind, ChatSummary, Group, GroupWithMembers, Message, Quote, Reaction, User, UserRef,
};
pub use mutation::{LogEntry, Mutation};

/// The schema, embedded in the binary (`migrations/`); run on every open, a no-op when up to date.
static MIGRATOR: Migrator = sqlx::migrate!();

/// The file inside the node's `data_dir`.
pub const DATABASE_FILE: &str = "chat.db";

/// What can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the database at {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The replica is at `have` and was given entries starting after `missing`: it needs `missing` first.
    #[error("log gap: the database is at epoch {have}, the entries skip epoch {missing}")]
    Gap { have: u64, missing: u64 },
    /// A log entry does not fit the data (a row it deletes is missing): this copy diverged from the writer.
    #[error("log entry at epoch {epoch} does not apply: {reason}")]
    Diverged { epoch: u64, reason: String },
    /// A term may only grow.
    #[error("term {requested} is older than the stored term {stored}")]
    StaleTerm { stored: u64, requested: u64 },
    /// A stored log entry does not parse: the file was damaged or written by an incompatible version.
    #[error("corrupt log entry: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// True when SQLite refused a row because of a UNIQUE or PRIMARY KEY constraint.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StorageError::Sqlx(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Connections in the pool; readers share them and the writer takes one per batch.
    pub max_connections: u32,
    /// How long a connection waits for SQLite's lock before failing with "database is locked".
    pub busy_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A handle on the node's database; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    path: Option<PathBuf>,
    /// The recent window of this database: whoever commits or applies entries to it folds them in
    /// (`recent.rs`).
    recent: std::sync::Arc<recent::RecentWindow>,
}

impl Database {
    /// Opens (creating if needed) `data_dir/chat.db` and brings its schema up to date.
    ///
    /// WAL lets readers run while the writer commits. `synchronous = FULL` makes every commit reach the disk
    /// before it returns: the writer acknowledges a write only once it is committed (DESIGN §4,
    /// "acknowledged means durable"), and with `NORMAL` a commit in WAL mode can still be lost to a power
    /// cut or kernel crash. Its cost falls on the number of transactions, not rows, and group commit keeps
    /// that number small (STACK: 1,000-row transactions run as fast under FULL as under NORMAL).
    pub async fn open(data_dir: &Path, options: DatabaseOptions) -> Result<Database, StorageError> {
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StorageError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(|error| open_error(sqlx::Error::Io(error)))?;
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            // A file database needs no liveness check: skipping it saves a round trip to the
            // connection's thread on every transaction and read.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await?;
        tracing::info!(path = %path.display(), "database open");
        Ok(Database {
            pool,
            path: Some(path),
            recent: Default::default(),
        })
    }

    /// A private database in memory, for tests: one connection that lives as long as the pool, because an
    /// in-memory database disappears with its last connection.
    pub async fn open_in_memory() -> Result<Database, StorageError> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Database {
            pool,
            path: None,
            recent: Default::default(),
        })
    }

    /// The connection pool, for code that needs its own transactions (the service's writer, a snapshot
    /// stream for a new replica). Writes to client data must go through [`mutation::apply`].
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that holds SQLite's write lock from its first statement (`BEGIN IMMEDIATE`). A
    /// deferred transaction that reads first and writes later fails with `SQLITE_BUSY` if another
    /// connection wrote in between; taking the lock up front makes it wait (busy timeout) instead.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StorageError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The newest messages and members of recently read groups, in step with this database's
    /// committed entries (`recent.rs`).
    pub fn recent(&self) -> &recent::RecentWindow {
        &self.recent
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The last epoch this database committed or applied.
    pub async fn epoch(&self) -> Result<Epoch, StorageError> {
        Ok(self.position().await?.1)
    }

    /// The term of the newest entry this database holds (or the term set by [`Database::set_term`]).
    pub async fn term(&self) -> Result<Term, StorageError> {
        Ok(self.position().await?.0)
    }

    /// `(term, epoch)`: the log position, read in one statement so the two agree.
    pub async fn position(&self) -> Result<(Term, Epoch), StorageError> {
        let mut connection = self.pool.acquire().await?;
        system::position(&mut connection).await
    }

    /// The highest data term this database promised to a claiming root.
    pub async fn promised(&self) -> Result<Term, StorageError> {
        let mut connection = self.pool.acquire().await?;
        system::promised(&mut connection).await
    }

    /// Promises `term` to the root that claims it, durably (a promise outlives a crash, or it would
    /// be worthless), and answers the promise now held: `term`, or a higher one made before.
    pub async fn promise(&self, term: Term) -> Result<Term, StorageError> {
        let mut transaction = self.begin_write().await?;
        let held = system::promise(&mut transaction, term).await?;
        transaction.commit().await?;
        Ok(held)
    }

    /// Records that this node now writes under `term` (called by the data plane when it becomes writer).
    /// A lower term than the stored one is refused: terms only grow.
    pub async fn set_term(&self, term: Term) -> Result<(), StorageError> {
        let mut transaction = self.begin_write().await?;
        let (stored, epoch) = system::position(&mut transaction).await?;
        if term < stored {
            return Err(StorageError::StaleTerm {
                stored: stored.0,
                requested: term.0,
            });
        }
        system::set_position(&mut transaction, term, epoch).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Applies a replica's batch of log entries in one transaction and returns the new epoch.
    ///
    /// Entries at or below the current epoch are skipped (a re-delivery is harmless). The rest must follow
    /// on without a hole; otherwise nothing is applied and [`StorageError::Gap`] names the first missing
    /// epoch, which the caller asks the writer for. All or nothing keeps the stored epoch an exact
    /// statement of what the rows contain.
    pub async fn apply_entries(&self, entries: &[LogEntry]) -> Result<Epoch, StorageError> {
        let mut connection = self.pool.acquire().await?;
        let epoch = Self::apply_entries_on(&mut connection, entries).await?;
        self.recent.fold(entries);
        Ok(epoch)
    }

    /// [`Database::apply_entries`] on a connection of this database's pool that the caller keeps
    /// (a copy's applier holds one, so each batch skips the pool and finds its page cache warm). The
    /// caller folds the entries into [`Database::recent`] once this returns `Ok`.
    pub async fn apply_entries_on(
        connection: &mut SqliteConnection,
        entries: &[LogEntry],
    ) -> Result<Epoch, StorageError> {
        let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
        let (mut term, mut epoch) = system::position(&mut transaction).await?;
        let have = epoch;
        // A re-delivered entry must be the one this copy holds: a different term at the same epoch
        // means this copy took another history (never merged; the caller discards the copy).
        for entry in entries.iter().filter(|entry| entry.epoch <= have) {
            let held = log::term_at(&mut transaction, entry.epoch).await?;
            if held.is_some_and(|held| held != entry.term) {
                return Err(StorageError::Diverged {
                    epoch: entry.epoch.0,
                    reason: format!(
                        "this copy holds an entry of term {} there, the writer one of term {}",
                        held.map_or(0, |t| t.0),
                        entry.term.0
                    ),
                });
            }
        }
        let fresh: Vec<&LogEntry> = entries.iter().filter(|entry| entry.epoch > have).collect();
        // Epochs come from the writer: count with saturating steps so a forged huge one is a gap, never a wrap.
        let mut expected = have.0;
        for entry in &fresh {
            expected = expected.saturating_add(1);
            if entry.epoch.0 != expected {
                return Err(StorageError::Gap {
                    have: have.0,
                    missing: expected,
                });
            }
        }
        // Messages, most of the log, are inserted many per statement; any other mutation first
        // flushes the messages before it, so rows still go in in log order.
        let mut messages = Vec::new();
        for entry in &fresh {
            if let Mutation::PostMessage(message) = &entry.mutation {
                messages.push((message, entry.epoch));
            } else {
                messages::insert_many(&mut transaction, &messages).await?;
                messages.clear();
                mutation::apply(&mut transaction, entry.epoch, &entry.mutation).await?;
            }
            epoch = entry.epoch;
            term = term.max(entry.term);
        }
        messages::insert_many(&mut transaction, &messages).await?;
        let fresh: Vec<LogEntry> = fresh.into_iter().cloned().collect();
        log::append(&mut transaction, &fresh).await?;
        if epoch > have {
            system::set_position(&mut transaction, term, epoch).await?;
            transaction.commit().await?;
        }
        Ok(epoch)
    }

    /// Up to `limit` log entries from epoch `from` on, in order (for a replica catching up).
    pub async fn log_since(
        &self,
        from: Epoch,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let mut connection = self.pool.acquire().await?;
        log::since(&mut connection, from, limit).await
    }

    /// The term of the log entry at `epoch` (`None` if this database has no entry there). Two logs
    /// that hold an entry of the same term at the same epoch hold the same entries up to it: one
    /// writer per term writes each epoch once, and every copy applies the log in order.
    pub async fn term_at(&self, epoch: Epoch) -> Result<Option<Term>, StorageError> {
        let mut connection = self.pool.acquire().await?;
        log::term_at(&mut connection, epoch).await
    }

    /// The newest voter configuration in this database's log (`None` before the first one).
    pub async fn configuration(&self) -> Result<Option<replication::Configuration>, StorageError> {
        let mut connection = self.pool.acquire().await?;
        voters::get(&mut connection).await
    }

    /// Deletes the database files in `data_dir` (the database must be closed): used when this copy
    /// holds entries the writer never had, so it can be rebuilt from the writer's log.
    pub fn destroy(data_dir: &Path) -> std::io::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let path = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// A hash over every row of every table, in primary-key order: two databases with the same hash hold
    /// the same data (used to check that replicas match the writer).
    pub async fn content_hash(&self) -> Result<ContentHash, StorageError> {
        let mut connection = self.pool.acquire().await?;
        content_hash::compute(&mut connection).await
    }

    /// Waits for every connection to close (the WAL is checkpointed by the last one).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An epoch or term as SQLite stores it (INTEGER is signed; counters never come near 2^63).
pub(crate) fn counter_to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A counter read back from SQLite; a negative value cannot have been written by us and reads as 0.
pub(crate) fn counter_from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests;
