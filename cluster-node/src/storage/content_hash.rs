//! A fingerprint of the whole database, to check that a replica holds exactly the writer's data.
//!
//! Each table is read in primary-key order, every row rendered by SQLite's `json_array` over all of its
//! columns (found with `pragma_table_info`, so a column added by a later migration is covered without
//! touching this file) and fed to SHA-256 with the table's name, then the epoch. sqlx's own
//! `_sqlx_migrations` table is left out (it records when *this* node ran the migrations), and so is
//! the stored term: a writer takes a new term before it writes anything under it, so a writer and an
//! up-to-date copy legitimately differ there until the next entry.

use std::fmt;

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

use super::StorageError;

/// Every table holding chat data, with the ordering that makes its rendering canonical.
/// `direct_chats` and the search index are derived by triggers from `messages`, so they are covered.
const TABLES: [(&str, &str); 8] = [
    ("users", "id"),
    ("user_secrets", "user_id"),
    ("groups", "id"),
    ("memberships", "group_id, user_id"),
    ("messages", "id"),
    ("reactions", "message_id, emoji, user_id"),
    ("read_markers", "user_id, chat_id"),
    ("voters", "id"),
];

/// A SHA-256 over all rows of all tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

pub(super) async fn compute(
    connection: &mut SqliteConnection,
) -> Result<ContentHash, StorageError> {
    let mut hasher = Sha256::new();
    for (table, order) in TABLES {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *connection)
                .await?;
        hasher.update(table.as_bytes());
        hasher.update([0]);
        // Names come from the schema itself, never from input, so formatting them into SQL is safe.
        let select = format!(
            "SELECT json_array({}) AS row FROM {table} ORDER BY {order}",
            columns
                .iter()
                .map(|column| format!("\"{column}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut rows = sqlx::query(&select).fetch(&mut *connection);
        while let Some(row) = rows.try_next().await? {
            let rendered: String = row.try_get("row")?;
            hasher.update(rendered.as_bytes());
            hasher.update([b'\n']);
        }
    }
    let (_, epoch) = super::system::position(&mut *connection).await?;
    hasher.update(b"epoch\0");
    hasher.update(epoch.0.to_be_bytes());
    Ok(ContentHash(hasher.finalize().into()))
}
