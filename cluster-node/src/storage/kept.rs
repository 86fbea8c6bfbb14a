//! [`KeptConnection`]: one of the pool's connections, kept by a task that writes often (the writer,
//! a copy's applier) between its transactions.
//!
//! Why: every transaction taken from the pool is a trip through it and may land on a connection
//! whose page cache another connection's writes made stale; a connection kept by the only task that
//! writes stays warm. It goes back to the pool when the task has been idle for [`IDLE_RELEASE`]
//! (closing a database waits for every connection), after an error (the next transaction starts on
//! a fresh one), and at once on a database of a single connection (in memory), which every read
//! needs too.

use std::future::Future;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;

use super::{Database, StorageError};

/// How long a task keeps its connection without work.
const IDLE_RELEASE: Duration = Duration::from_millis(100);

pub struct KeptConnection {
    database: Database,
    held: Option<PoolConnection<Sqlite>>,
    /// The held connection commits without an fsync (see [`KeptConnection::set_durable`]).
    relaxed: bool,
}

impl KeptConnection {
    pub fn new(database: Database) -> Self {
        KeptConnection {
            database,
            held: None,
            relaxed: false,
        }
    }

    /// The database this connection belongs to.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// How the next transactions reach the disk: durable (`synchronous = FULL`, every commit is
    /// fsynced, as the pool opens every connection) or relaxed (`NORMAL`: in WAL mode the log is synced
    /// only at checkpoints, so a commit survives the process dying but not the machine losing power).
    /// A learner's copy applies relaxed; a voter's must be durable. A relaxed connection is closed
    /// rather than given back to the pool, so nobody else (the writer, after a role change) ever
    /// commits on it without knowing.
    pub async fn set_durable(&mut self, durable: bool) -> Result<(), StorageError> {
        let already = self.relaxed != durable;
        if already {
            // (A fresh connection is durable.)
            return Ok(());
        }
        let level = if durable { "FULL" } else { "NORMAL" };
        let connection = self.get().await?;
        sqlx::query(&format!("PRAGMA synchronous = {level}"))
            .execute(&mut **connection)
            .await?;
        self.relaxed = !durable;
        Ok(())
    }

    /// The kept connection, taken from the pool if there is none.
    pub async fn get(&mut self) -> Result<&mut PoolConnection<Sqlite>, StorageError> {
        let connection = match self.held.take() {
            Some(connection) => connection,
            None => self.database.pool().acquire().await?,
        };
        Ok(self.held.insert(connection))
    }

    /// After a transaction on the kept connection: gives it back when the transaction failed
    /// (`failed`) or when the pool has no other connection.
    pub fn done(&mut self, failed: bool) {
        if failed || self.database.pool().options().get_max_connections() < 2 {
            self.release();
        }
    }

    /// Gives the connection back to the pool.
    pub fn release(&mut self) {
        if let Some(connection) = self.held.take()
            && std::mem::take(&mut self.relaxed)
        {
            // Closed, not returned: the pool's connections stay durable.
            drop(connection.detach());
        }
    }

    /// Waits for `work` (a cancel-safe wait for the next job), giving the connection back if
    /// nothing comes for [`IDLE_RELEASE`].
    pub async fn idle<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        if self.held.is_none() {
            return work.await;
        }
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(IDLE_RELEASE) => self.release(),
        }
        work.await
    }
}

impl Drop for KeptConnection {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DatabaseOptions;

    async fn synchronous(connection: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(connection)
            .await
            .expect("the pragma answers")
    }

    #[tokio::test]
    async fn a_relaxed_connection_never_goes_back_to_the_pool() {
        let directory = tempfile::tempdir().expect("tempdir");
        // One connection: whatever the pool hands out next would be this one if it went back.
        let options = DatabaseOptions {
            max_connections: 1,
            ..DatabaseOptions::default()
        };
        let database = Database::open(directory.path(), options).await.unwrap();
        let mut kept = KeptConnection::new(database.clone());
        kept.set_durable(false).await.unwrap();
        assert_eq!(synchronous(kept.get().await.unwrap()).await, 1, "NORMAL");
        kept.set_durable(true).await.unwrap();
        assert_eq!(synchronous(kept.get().await.unwrap()).await, 2, "FULL");
        kept.set_durable(false).await.unwrap();
        kept.release();
        let mut next = database.pool().acquire().await.unwrap();
        assert_eq!(
            synchronous(&mut next).await,
            2,
            "the pool's connections stay FULL"
        );
        drop(next);
        // Dropped while relaxed (an applier that stopped): the same.
        let mut kept = KeptConnection::new(database.clone());
        kept.set_durable(false).await.unwrap();
        drop(kept);
        let mut next = database.pool().acquire().await.unwrap();
        assert_eq!(synchronous(&mut next).await, 2);
    }
}
