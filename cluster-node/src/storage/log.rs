//! The replication log on disk: each committed [`LogEntry`] stored with its epoch, written in the same
//! transaction as the rows it produced. A replica that fell behind, or a brand-new one, is brought up
//! to date by streaming the entries after its epoch in bounded batches, from whichever node is the
//! writer now (every replica keeps the same log, so a new writer after a failover can serve it too).

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::messages::{self, NewMessage};
use super::{Epoch, LogEntry, StorageError, Term};

/// Rows per INSERT: one statement for a whole group commit, well below SQLite's bound on variables.
const ROWS_PER_INSERT: usize = 256;

/// Appends `entries` (already applied in this transaction), many rows per statement: every statement
/// is a hand-off to the database's thread.
pub async fn append(
    connection: &mut SqliteConnection,
    entries: &[LogEntry],
) -> Result<(), StorageError> {
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        let texts = chunk
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO log (epoch, term, entry) ");
        insert.push_values(chunk.iter().zip(texts), |mut row, (entry, text)| {
            row.push_bind(super::counter_to_sql(entry.epoch.0))
                .push_bind(super::counter_to_sql(entry.term.0))
                .push_bind(text);
        });
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// The end of a writer's batch in one round trip to the database's thread: the batch's messages not
/// inserted yet, its log entries, and the stored position moved from `from` to `to`, as one
/// multi-statement query. The position moves only if it still is `from` (the writer keeps it in
/// memory between batches; a term taken meanwhile changes it): `Ok(false)` then, and the caller rolls
/// the transaction back.
///
/// Why one query: every statement is a hand-off to the thread sqlx runs SQLite on, and on a busy
/// machine each hand-off waits to be scheduled; this and COMMIT are the batch's last two.
pub async fn finish_batch(
    connection: &mut SqliteConnection,
    posts: &[(&NewMessage, Epoch)],
    entries: &[LogEntry],
    from: (Term, Epoch),
    to: (Term, Epoch),
) -> Result<bool, StorageError> {
    let mut query = QueryBuilder::<Sqlite>::new("");
    for chunk in posts.chunks(messages::ROWS_PER_INSERT) {
        messages::push_insert(&mut query, chunk);
        query.push("; ");
    }
    let mut texts = Vec::with_capacity(entries.len());
    for entry in entries {
        texts.push(
            serde_json::to_string(entry)
                .map_err(|error| StorageError::Corrupt(error.to_string()))?,
        );
    }
    for (chunk, texts) in entries
        .chunks(ROWS_PER_INSERT)
        .zip(texts.chunks(ROWS_PER_INSERT))
    {
        query.push("INSERT INTO log (epoch, term, entry) ");
        query.push_values(chunk.iter().zip(texts), |mut row, (entry, text)| {
            row.push_bind(super::counter_to_sql(entry.epoch.0))
                .push_bind(super::counter_to_sql(entry.term.0))
                .push_bind(text.as_str());
        });
        query.push("; ");
    }
    query.push("UPDATE system_state SET term = ");
    query.push_bind(super::counter_to_sql(to.0.0));
    query.push(", epoch = ");
    query.push_bind(super::counter_to_sql(to.1.0));
    query.push(" WHERE id = 1 AND term = ");
    query.push_bind(super::counter_to_sql(from.0.0));
    query.push(" AND epoch = ");
    query.push_bind(super::counter_to_sql(from.1.0));
    let done = query.build().execute(&mut *connection).await?;
    // Triggers' rows do not count in SQLite's changes: each message and entry is one row.
    Ok(done.rows_affected() == (posts.len() + entries.len() + 1) as u64)
}

/// Up to `limit` entries from epoch `from` on, in order.
pub async fn since(
    connection: &mut SqliteConnection,
    from: Epoch,
    limit: usize,
) -> Result<Vec<LogEntry>, StorageError> {
    let rows = sqlx::query("SELECT entry FROM log WHERE epoch >= ? ORDER BY epoch LIMIT ?")
        .bind(super::counter_to_sql(from.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
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
        .bind(super::counter_to_sql(epoch.0))
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
