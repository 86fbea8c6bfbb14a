//! What the chat statistics read (see `analytics`): the live messages of a group in a time range,
//! and a cheap version of that range's rows, to tell whether a result computed earlier still holds.
//!
//! Both go through `messages_by_chat_time` (`chat_id, created_at`), so a range costs its own rows,
//! not the whole history of the group.

use sqlx::{Row, SqliteConnection};

use super::ids::{ChatId, Epoch, GroupId, Term, UnixMillis};
use super::model::UserRef;
use super::{StorageError, counter_from_sql, log};

/// A live message of a range, as the statistics need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMessage {
    pub sender: UserRef,
    pub created_at: UnixMillis,
    pub content: String,
}

/// The live messages of `group` created in `[start, end)`, oldest first.
pub async fn messages_in_range(
    connection: &mut SqliteConnection,
    group: GroupId,
    start: UnixMillis,
    end: UnixMillis,
) -> Result<Vec<RangeMessage>, StorageError> {
    let rows = sqlx::query(
        "SELECT m.sender_id, u.username, u.tag, m.created_at, m.content
         FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.chat_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3
           AND m.deleted_at IS NULL
         ORDER BY m.created_at, m.epoch",
    )
    .bind(ChatId::Group(group))
    .bind(start.0)
    .bind(end.0)
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RangeMessage {
                sender: UserRef {
                    id: row.try_get("sender_id")?,
                    username: row.try_get("username")?,
                    tag: row.try_get("tag")?,
                },
                created_at: UnixMillis(row.try_get("created_at")?),
                content: row.try_get("content")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from)
}

/// Which version of a range's rows a database holds.
///
/// Every write that changes what a range counts for touches a row of that range and stamps it with
/// its own epoch: a post (`epoch`), an edit (`edited_epoch`), a deletion (`deleted_epoch`); rows are
/// never removed. Epochs only grow, so the newest of those stamps grows with every such write, and
/// the log entry at that epoch (its term) names one history up to it: two databases, or one database
/// at two moments, with the same version hold the same rows in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RangeVersion {
    /// Rows in the range, deleted ones included.
    pub rows: u64,
    /// The newest epoch that wrote a row of the range (0 when it has none).
    pub last_change: Epoch,
    /// The term of the log entry at `last_change`; `None` when this log does not hold it (then the
    /// version names no history, and the caller must not trust it to).
    pub term: Option<Term>,
}

/// The version of `group`'s rows in `[start, end)`.
pub async fn range_version(
    connection: &mut SqliteConnection,
    group: GroupId,
    start: UnixMillis,
    end: UnixMillis,
) -> Result<RangeVersion, StorageError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS rows,
                MAX(MAX(epoch, COALESCE(edited_epoch, 0), COALESCE(deleted_epoch, 0))) AS last_change
         FROM messages
         WHERE chat_id = ?1 AND created_at >= ?2 AND created_at < ?3",
    )
    .bind(ChatId::Group(group))
    .bind(start.0)
    .bind(end.0)
    .fetch_one(&mut *connection)
    .await?;
    let rows: i64 = row.try_get("rows")?;
    let last_change = Epoch(counter_from_sql(
        row.try_get::<Option<i64>, _>("last_change")?.unwrap_or(0),
    ));
    let term = if last_change.0 == 0 {
        Some(Term(0))
    } else {
        log::term_at(connection, last_change).await?
    };
    Ok(RangeVersion {
        rows: counter_from_sql(rows),
        last_change,
        term,
    })
}
