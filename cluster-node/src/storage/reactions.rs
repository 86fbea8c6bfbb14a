//! Reactions (`reactions`): one row per message, emoji and user.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ids::{Epoch, MessageId, UnixMillis, UserId};
use super::model::{Message, Reaction};
use super::{StorageError, counter_to_sql};

/// Adds `user`'s `emoji` to a message; the writer checked it was not there.
pub async fn add(
    connection: &mut SqliteConnection,
    message: MessageId,
    emoji: &str,
    user: UserId,
    at: UnixMillis,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO reactions (message_id, emoji, user_id, created_at, epoch)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(message)
    .bind(emoji)
    .bind(user)
    .bind(at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(())
}

/// Takes `user`'s `emoji` off a message; returns false when it was not there.
pub async fn remove(
    connection: &mut SqliteConnection,
    message: MessageId,
    emoji: &str,
    user: UserId,
) -> Result<bool, StorageError> {
    let done =
        sqlx::query("DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3")
            .bind(message)
            .bind(emoji)
            .bind(user)
            .execute(connection)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `user` has put `emoji` on the message, and how many users have.
pub async fn state(
    connection: &mut SqliteConnection,
    message: MessageId,
    emoji: &str,
    user: UserId,
) -> Result<(bool, u32), StorageError> {
    let row = sqlx::query(
        "SELECT coalesce(max(user_id = ?3), 0) AS me, count(*) AS count
         FROM reactions WHERE message_id = ?1 AND emoji = ?2",
    )
    .bind(message)
    .bind(emoji)
    .bind(user)
    .fetch_one(connection)
    .await?;
    let me: i64 = row.try_get("me")?;
    let count: i64 = row.try_get("count")?;
    Ok((me != 0, u32::try_from(count).unwrap_or(u32::MAX)))
}

/// Messages per statement of [`attach`], well below SQLite's bound on variables.
const MESSAGES_PER_QUERY: usize = 500;

/// Fills in the reactions of `messages` as `viewer` sees them (`me`), each message's emojis in the order
/// they were first used.
pub async fn attach(
    connection: &mut SqliteConnection,
    messages: &mut [Message],
    viewer: Option<UserId>,
) -> Result<(), StorageError> {
    let mut found: HashMap<MessageId, Vec<Reaction>> = HashMap::new();
    for chunk in messages.chunks(MESSAGES_PER_QUERY) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT message_id, emoji, count(*) AS count, coalesce(max(user_id = ",
        );
        query.push_bind(viewer);
        query.push("), 0) AS me FROM reactions WHERE message_id IN (");
        let mut ids = query.separated(", ");
        for message in chunk {
            ids.push_bind(message.id);
        }
        query.push(") GROUP BY message_id, emoji ORDER BY min(epoch)");
        for row in query.build().fetch_all(&mut *connection).await? {
            let count: i64 = row.try_get("count")?;
            let me: i64 = row.try_get("me")?;
            found
                .entry(row.try_get("message_id")?)
                .or_default()
                .push(Reaction {
                    emoji: row.try_get("emoji")?,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    me: me != 0,
                });
        }
    }
    for message in messages {
        message.reactions = found.remove(&message.id).unwrap_or_default();
    }
    Ok(())
}

/// Who reacted to each of `messages` with what, and at which epoch: what the recent window keeps so
/// that it can show any viewer's reactions (`recent.rs`). Messages without reactions are absent.
pub async fn reactors(
    connection: &mut SqliteConnection,
    messages: &[Message],
) -> Result<HashMap<MessageId, Vec<(String, super::recent::Reactors)>>, StorageError> {
    let mut found: HashMap<MessageId, Vec<(String, super::recent::Reactors)>> = HashMap::new();
    for chunk in messages.chunks(MESSAGES_PER_QUERY) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT message_id, emoji, user_id, epoch FROM reactions WHERE message_id IN (",
        );
        let mut ids = query.separated(", ");
        for message in chunk {
            ids.push_bind(message.id);
        }
        query.push(") ORDER BY epoch");
        for row in query.build().fetch_all(&mut *connection).await? {
            let emoji: String = row.try_get("emoji")?;
            let reactor = (
                row.try_get::<UserId, _>("user_id")?,
                Epoch(super::counter_from_sql(row.try_get("epoch")?)),
            );
            let emojis = found.entry(row.try_get("message_id")?).or_default();
            match emojis.iter_mut().find(|(held, _)| *held == emoji) {
                Some((_, users)) => users.push(reactor),
                None => emojis.push((emoji, vec![reactor])),
            }
        }
    }
    Ok(found)
}
