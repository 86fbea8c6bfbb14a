//! Backups: a consistent copy of the database in one file, and starting a node's data from one.
//!
//! A backup is the database file itself, made with `VACUUM INTO`: SQLite writes it inside one read
//! transaction, so it is the database exactly as of one commit, rows, log, voter configuration and
//! position `(term, epoch)` together. In WAL mode a reader never blocks the writer, so commits go on
//! while the copy is written (only checkpoints wait for it). Because the file is an ordinary chat
//! database, restoring is a copy into a node's `data_dir`: the node then opens it like its own, the
//! migrations bring an older backup's schema up to date, and the cluster's next writer continues the
//! epochs after the backup's.
//!
//! What a restored database keeps on purpose: the voter configuration and the promised term. A cluster
//! restored onto nodes with the same ids starts as the old one would after a full restart. Restored
//! onto other ids, its configuration names voters that do not exist, which is the lost-majority case:
//! the operator forces a configuration ([`Database::force_configuration`], `--force-configuration`).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use super::ids::{Epoch, Term};
use super::{
    ContentHash, DATABASE_FILE, Database, DatabaseOptions, MIGRATOR, StorageError, content_hash,
    system, voters,
};
use crate::config::NodeId;

/// What a backup file holds: its data position and content hash (the hash `/data` reports for a
/// copy at that epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    pub term: Term,
    pub epoch: Epoch,
    pub hash: ContentHash,
    /// The file's size.
    pub bytes: u64,
}

/// Why a file cannot be restored, or a restore was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read the backup {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is not a chat database: {reason}")]
    NotADatabase { path: PathBuf, reason: String },
    #[error(
        "{path} was written by a newer version (schema {found}; this binary knows up to {known}): \
         restore it with that version"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "{data_dir} already holds data (epoch {epoch}, term {term}); restoring would replace it: \
         add --force to do so"
    )]
    HoldsData {
        data_dir: PathBuf,
        term: u64,
        epoch: u64,
    },
    #[error("cannot write the restored database into {data_dir}: {reason}")]
    Write { data_dir: PathBuf, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Database {
    /// Writes a consistent copy of the database to `destination` (which must not exist yet) and
    /// answers what it holds. The file is synced to disk before this returns.
    pub async fn back_up_into(&self, destination: &Path) -> Result<BackupInfo, StorageError> {
        let target = destination.to_str().ok_or_else(|| {
            StorageError::Corrupt(format!("{} is not a UTF-8 path", destination.display()))
        })?;
        let mut connection = self.pool().acquire().await?;
        sqlx::query("VACUUM INTO ?1")
            .bind(target)
            .execute(&mut *connection)
            .await?;
        drop(connection);
        // VACUUM INTO leaves the new file to the page cache: a backup that vanishes with a power cut
        // is worse than none, because the operator believes it exists.
        let path = destination.to_owned();
        tokio::task::spawn_blocking(move || File::open(&path).and_then(|file| file.sync_all()))
            .await
            .map_err(|error| StorageError::Corrupt(error.to_string()))?
            .map_err(|error| StorageError::Sqlx(sqlx::Error::Io(error)))?;
        inspect(destination).await.map_err(|error| match error {
            RestoreError::Storage(error) => error,
            other => StorageError::Corrupt(other.to_string()),
        })
    }

    /// Makes `voters` the configuration of this database from its current epoch on, whatever its log
    /// says, and answers the configuration it replaced. Only for recovering a cluster that lost a
    /// majority of its voters for good (docs/OPERATIONS.md says what that can lose): the node then
    /// counts only `voters` for its majorities, and as writer restates them in its first entry, so
    /// every copy follows.
    pub async fn force_configuration(
        &self,
        voters: &BTreeSet<NodeId>,
    ) -> Result<Option<replication::Configuration>, StorageError> {
        let mut transaction = self.begin_write().await?;
        let replaced = voters::get(&mut transaction).await?;
        let (_, epoch) = system::position(&mut transaction).await?;
        voters::set(&mut transaction, epoch, voters).await?;
        transaction.commit().await?;
        Ok(replaced)
    }
}

/// Reads a backup (or any chat database file) without changing it: its position, content hash and
/// size, after checking that it is a chat database this binary can open.
pub async fn inspect(path: &Path) -> Result<BackupInfo, RestoreError> {
    let unreadable = |reason: String| RestoreError::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let not_a_database = |reason: String| RestoreError::NotADatabase {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::metadata(path)
        .map_err(|error| unreadable(error.to_string()))?
        .len();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(|error| unreadable(error.to_string()))?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut connection)
        .await
        .map_err(|error| not_a_database(error.to_string()))?;
    if check != "ok" {
        return Err(not_a_database(format!("SQLite's check says: {check}")));
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut connection)
        .await
        .map_err(|_| not_a_database("it has no schema history".into()))?;
    let known = MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0);
    let found = found.unwrap_or(0);
    if found > known {
        return Err(RestoreError::NewerSchema {
            path: path.to_owned(),
            found,
            known,
        });
    }
    let (term, epoch) = system::position(&mut connection)
        .await
        .map_err(|error| not_a_database(error.to_string()))?;
    let hash = content_hash::compute(&mut connection).await?;
    connection.close().await.ok();
    Ok(BackupInfo {
        term,
        epoch,
        hash,
        bytes,
    })
}

/// Makes the backup at `backup` the database of the node whose data folder is `data_dir`, and
/// answers what the node now holds (its schema brought up to date). A folder whose database holds
/// data (any entry) is left alone unless `force`.
pub async fn restore(
    backup: &Path,
    data_dir: &Path,
    force: bool,
) -> Result<BackupInfo, RestoreError> {
    inspect(backup).await?;
    let write_error = |reason: String| RestoreError::Write {
        data_dir: data_dir.to_owned(),
        reason,
    };
    let current = data_dir.join(DATABASE_FILE);
    if current.exists() && !force {
        let existing = Database::open(data_dir, DatabaseOptions::default()).await?;
        let (term, epoch) = existing.position().await?;
        existing.close().await;
        if epoch > Epoch(0) {
            return Err(RestoreError::HoldsData {
                data_dir: data_dir.to_owned(),
                term: term.0,
                epoch: epoch.0,
            });
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|error| write_error(error.to_string()))?;
    // Copy beside the database, sync, then swap it in: a crash half-way leaves either the old files
    // or the whole backup, never a torn database.
    let staged = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    let (from, to) = (backup.to_owned(), staged.clone());
    tokio::task::spawn_blocking(move || {
        std::fs::copy(&from, &to)?;
        File::open(&to)?.sync_all()
    })
    .await
    .map_err(|error| write_error(error.to_string()))?
    .map_err(|error| write_error(error.to_string()))?;
    Database::destroy(data_dir).map_err(|error| write_error(error.to_string()))?;
    std::fs::rename(&staged, &current).map_err(|error| write_error(error.to_string()))?;
    File::open(data_dir)
        .and_then(|folder| folder.sync_all())
        .map_err(|error| write_error(error.to_string()))?;
    let restored = Database::open(data_dir, DatabaseOptions::default()).await?;
    let (term, epoch) = restored.position().await?;
    let hash = restored.content_hash().await?;
    restored.close().await;
    let bytes = std::fs::metadata(&current)
        .map_err(|error| write_error(error.to_string()))?
        .len();
    Ok(BackupInfo {
        term,
        epoch,
        hash,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::groups::NewGroup;
    use crate::storage::messages::NewMessage;
    use crate::storage::users::NewUser;
    use crate::storage::{
        ChatId, GroupId, LogEntry, MessageId, Mutation, UnixMillis, UserId, UserTag,
    };

    fn entry(epoch: u64, mutation: Mutation) -> LogEntry {
        LogEntry {
            term: Term(3),
            epoch: Epoch(epoch),
            mutation,
        }
    }

    /// A file database at epoch 3 + `messages`: a voter configuration, a user, a group and its
    /// messages.
    async fn populated(folder: &Path, messages: u64) -> Database {
        let database = Database::open(folder, DatabaseOptions::default())
            .await
            .expect("open");
        let user = NewUser {
            id: UserId::random(),
            username: "ada".into(),
            tag: UserTag::new(7).expect("tag"),
            password_hash: "hash".into(),
            created_at: UnixMillis(1),
        };
        let group = NewGroup {
            id: GroupId::random(),
            name: "notes".into(),
            creator: user.id,
            created_at: UnixMillis(2),
        };
        let mut log = vec![
            entry(
                1,
                Mutation::Configure {
                    voters: [NodeId(1), NodeId(2), NodeId(3)].into(),
                },
            ),
            entry(2, Mutation::RegisterUser(user.clone())),
            entry(3, Mutation::CreateGroup(group.clone())),
        ];
        for n in 0..messages {
            log.push(entry(
                4 + n,
                Mutation::PostMessage(NewMessage {
                    id: MessageId::random(),
                    chat: ChatId::Group(group.id),
                    sender: user.id,
                    receiver: None,
                    content: format!("message {n}"),
                    created_at: UnixMillis(3),
                    client_id: None,
                    reply_to: None,
                }),
            ));
        }
        database.apply_entries(&log).await.expect("apply");
        database
    }

    #[tokio::test]
    async fn a_backup_holds_the_database_at_one_commit_and_restores_to_the_same_hash_and_position()
    {
        let folder = tempfile::tempdir().expect("tempdir");
        let source = populated(&folder.path().join("source"), 20).await;
        let file = folder.path().join("backup.sqlite");
        let taken = source.back_up_into(&file).await.expect("backup");
        assert_eq!(taken.epoch, Epoch(23));
        assert_eq!(taken.term, Term(3));
        assert_eq!(taken.hash, source.content_hash().await.expect("hash"));
        assert_eq!(inspect(&file).await.expect("inspect"), taken);

        let restored = restore(&file, &folder.path().join("fresh"), false)
            .await
            .expect("restore");
        assert_eq!(
            (restored.term, restored.epoch, restored.hash),
            (taken.term, taken.epoch, taken.hash)
        );
        let reopened = Database::open(&folder.path().join("fresh"), DatabaseOptions::default())
            .await
            .expect("open");
        assert_eq!(
            reopened.log_since(Epoch(1), 100).await.expect("log").len(),
            23
        );
        assert_eq!(
            reopened
                .configuration()
                .await
                .expect("voters")
                .map(|c| c.voters),
            Some([NodeId(1), NodeId(2), NodeId(3)].into())
        );
    }

    #[tokio::test]
    async fn writes_go_on_while_a_backup_is_written_and_the_backup_is_one_of_their_states() {
        let folder = tempfile::tempdir().expect("tempdir");
        let source = populated(&folder.path().join("source"), 2_000).await;
        let before = source.content_hash().await.expect("hash");
        let writer = {
            let source = source.clone();
            tokio::spawn(async move {
                let user = NewUser {
                    id: UserId::random(),
                    username: "late".into(),
                    tag: UserTag::new(8).expect("tag"),
                    password_hash: "hash".into(),
                    created_at: UnixMillis(9),
                };
                source
                    .apply_entries(&[entry(2_004, Mutation::RegisterUser(user))])
                    .await
            })
        };
        let file = folder.path().join("backup.sqlite");
        let taken = source.back_up_into(&file).await.expect("backup");
        writer
            .await
            .expect("join")
            .expect("the write was not blocked");
        let after = source.content_hash().await.expect("hash");
        // Whichever side of the write the copy fell on, it is exactly the database at its epoch.
        match taken.epoch {
            Epoch(2_003) => assert_eq!(taken.hash, before),
            Epoch(2_004) => assert_eq!(taken.hash, after),
            other => panic!("a backup between two commits: {other:?}"),
        }
    }

    #[tokio::test]
    async fn restoring_over_data_is_refused_unless_forced() {
        let folder = tempfile::tempdir().expect("tempdir");
        let source = populated(&folder.path().join("source"), 1).await;
        let file = folder.path().join("backup.sqlite");
        let taken = source.back_up_into(&file).await.expect("backup");
        let busy = folder.path().join("busy");
        populated(&busy, 5).await.close().await;

        let refused = restore(&file, &busy, false).await.expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains("already holds data (epoch 8, term 3)")
                && refused.to_string().contains("--force"),
            "{refused}"
        );
        let untouched = Database::open(&busy, DatabaseOptions::default())
            .await
            .expect("open");
        assert_eq!(untouched.epoch().await.expect("epoch"), Epoch(8));
        untouched.close().await;

        let forced = restore(&file, &busy, true).await.expect("forced");
        assert_eq!((forced.epoch, forced.hash), (taken.epoch, taken.hash));

        // An empty database (a node that started but never held data) is no data to protect.
        let empty = folder.path().join("empty");
        Database::open(&empty, DatabaseOptions::default())
            .await
            .expect("open")
            .close()
            .await;
        restore(&file, &empty, false)
            .await
            .expect("restore over an empty database");
    }

    #[tokio::test]
    async fn files_that_are_not_a_chat_database_of_a_known_schema_are_refused() {
        let folder = tempfile::tempdir().expect("tempdir");
        let text = folder.path().join("notes.txt");
        std::fs::write(&text, "not a database at all").expect("write");
        let error = inspect(&text).await.expect_err("text");
        assert!(
            matches!(error, RestoreError::NotADatabase { .. }),
            "{error}"
        );

        let missing = inspect(&folder.path().join("nope.sqlite")).await;
        assert!(matches!(missing, Err(RestoreError::Unreadable { .. })));

        let source = populated(&folder.path().join("source"), 1).await;
        let file = folder.path().join("backup.sqlite");
        source.back_up_into(&file).await.expect("backup");
        let mut connection =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&file))
                .await
                .expect("connect");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut connection)
        .await
        .expect("insert");
        connection.close().await.expect("close");
        let error = inspect(&file).await.expect_err("newer");
        assert!(error.to_string().contains("schema 9999"), "{error}");
        let target = folder.path().join("target");
        assert!(restore(&file, &target, false).await.is_err());
        assert!(!target.join(DATABASE_FILE).exists(), "nothing written");
    }

    #[tokio::test]
    async fn a_forced_configuration_replaces_the_voters_at_the_current_epoch() {
        let folder = tempfile::tempdir().expect("tempdir");
        let database = populated(folder.path(), 2).await;
        let replaced = database
            .force_configuration(&[NodeId(3)].into())
            .await
            .expect("force");
        assert_eq!(
            replaced.map(|c| c.voters),
            Some([NodeId(1), NodeId(2), NodeId(3)].into())
        );
        let now = database.configuration().await.expect("read").expect("one");
        assert_eq!(now.voters, [NodeId(3)].into());
        assert_eq!(now.epoch, 5);
        assert_eq!(
            database.epoch().await.expect("epoch"),
            Epoch(5),
            "no entry written"
        );
    }
}
