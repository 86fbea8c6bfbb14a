//! Read markers (`read_markers`): how far each user has read each chat.

use sqlx::SqliteConnection;

use super::ids::{ChatId, Epoch, UserId};
use super::{StorageError, counter_from_sql, counter_to_sql};

/// Moves `user`'s marker on `chat` to `read_epoch`, never backwards.
pub async fn advance(
    connection: &mut SqliteConnection,
    user: UserId,
    chat: ChatId,
    read_epoch: Epoch,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO read_markers (user_id, chat_id, read_epoch, epoch) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, chat_id) DO UPDATE
         SET read_epoch = excluded.read_epoch, epoch = excluded.epoch
         WHERE excluded.read_epoch > read_markers.read_epoch",
    )
    .bind(user)
    .bind(chat)
    .bind(counter_to_sql(read_epoch.0))
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(())
}

/// `user`'s marker on `chat`; 0 when never set.
pub async fn get(
    connection: &mut SqliteConnection,
    user: UserId,
    chat: ChatId,
) -> Result<Epoch, StorageError> {
    let read: Option<i64> = sqlx::query_scalar(
        "SELECT read_epoch FROM read_markers WHERE user_id = ?1 AND chat_id = ?2",
    )
    .bind(user)
    .bind(chat)
    .fetch_optional(connection)
    .await?;
    Ok(Epoch(read.map_or(0, counter_from_sql)))
}
