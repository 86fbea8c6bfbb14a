//! The replication log on disk: each committed [`LogEntry`] stored with its epoch, written in the same
//! transaction as the rows it produced. A replica that fell behind, or a brand-new one, is brought up
//! to date by streaming the entries after its epoch in bounded batches, from whichever node is the
//! writer now (every replica keeps the same log, so a new writer after a failover can serve it too).

use sqlx::{Row, SqliteConnection};

use super::{Epoch, LogEntry, StorageError};

/// Appends `entries` (already applied in this transaction).
pub async fn append(
    connection: &mut SqliteConnection,
    entries: &[LogEntry],
) -> Result<(), StorageError> {
    for entry in entries {
        let text = serde_json::to_string(entry)
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        sqlx::query("INSERT INTO log (epoch, term, entry) VALUES (?, ?, ?)")
            .bind(entry.epoch.0 as i64)
            .bind(entry.term.0 as i64)
            .bind(text)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Up to `limit` entries from epoch `from` on, in order.
pub async fn since(
    connection: &mut SqliteConnection,
    from: Epoch,
    limit: usize,
) -> Result<Vec<LogEntry>, StorageError> {
    let rows = sqlx::query("SELECT entry FROM log WHERE epoch >= ? ORDER BY epoch LIMIT ?")
        .bind(from.0 as i64)
        .bind(limit as i64)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get("entry")?;
            serde_json::from_str(&text).map_err(|error| StorageError::Corrupt(error.to_string()))
        })
        .collect()
}

/// The term of the entry at `epoch`, or `None` when this log has no such entry.
pub async fn term_at(
    connection: &mut SqliteConnection,
    epoch: Epoch,
) -> Result<Option<super::Term>, StorageError> {
    let row = sqlx::query("SELECT term FROM log WHERE epoch = ?")
        .bind(epoch.0 as i64)
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        Some(row) => {
            let term: i64 = row.try_get("term")?;
            Ok(Some(super::Term(super::counter_from_sql(term))))
        }
        None => Ok(None),
    }
}
