//! Messages of groups and direct chats (`messages`), paged by epoch.

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ids::{ChatId, ClientId, Epoch, MessageId, UnixMillis, UserId};
use super::model::{Message, UserRef};
use super::{StorageError, counter_from_sql, counter_to_sql};

/// A message as the writer decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub id: MessageId,
    pub chat: ChatId,
    pub sender: UserId,
    /// The other user of a direct message; `None` in a group.
    pub receiver: Option<UserId>,
    pub content: String,
    pub created_at: UnixMillis,
    pub client_id: Option<ClientId>,
}

impl NewMessage {
    /// The message as reads return it, once written at `epoch` by `sender`.
    pub fn message(&self, sender: UserRef, epoch: Epoch) -> Message {
        Message {
            id: self.id,
            chat: self.chat,
            sender,
            receiver: self.receiver,
            content: self.content.clone(),
            created_at: self.created_at,
            epoch,
            client_id: self.client_id.clone(),
        }
    }
}

/// A message joined with its sender's name; `deleted` is only set by [`find_any`].
const MESSAGE_SELECT: &str =
    "SELECT m.id, m.chat_id, m.sender_id, u.username, u.tag, m.receiver_id,
        m.content, m.created_at, m.epoch, m.client_id, m.deleted_at IS NOT NULL AS deleted
    FROM messages m JOIN users u ON u.id = m.sender_id";

fn message_from_row(row: &SqliteRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: row.try_get("id")?,
        chat: row.try_get("chat_id")?,
        sender: UserRef {
            id: row.try_get("sender_id")?,
            username: row.try_get("username")?,
            tag: row.try_get("tag")?,
        },
        receiver: row.try_get("receiver_id")?,
        content: row.try_get("content")?,
        created_at: UnixMillis(row.try_get("created_at")?),
        epoch: Epoch(counter_from_sql(row.try_get("epoch")?)),
        client_id: row.try_get("client_id")?,
    })
}

/// Inserts a message; its `epoch` is the write's epoch.
pub async fn insert(
    connection: &mut SqliteConnection,
    message: &NewMessage,
    epoch: Epoch,
) -> Result<(), StorageError> {
    insert_many(connection, &[(message, epoch)]).await
}

/// Rows per INSERT of [`insert_many`]: 8 values each, well below SQLite's bound on variables.
const ROWS_PER_INSERT: usize = 128;

/// Inserts messages, each with its write's epoch, many rows per statement (a copy applying a batch
/// of the writer's log: every statement is a hand-off to the database's thread).
pub async fn insert_many(
    connection: &mut SqliteConnection,
    messages: &[(&NewMessage, Epoch)],
) -> Result<(), StorageError> {
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, chat_id, sender_id, receiver_id, content, created_at, epoch, client_id) ",
        );
        insert.push_values(chunk, |mut row, (message, epoch)| {
            row.push_bind(message.id)
                .push_bind(message.chat)
                .push_bind(message.sender)
                .push_bind(message.receiver)
                .push_bind(&message.content)
                .push_bind(message.created_at.0)
                .push_bind(counter_to_sql(epoch.0))
                .push_bind(&message.client_id);
        });
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// A message and whether it was deleted; `None` when the id was never used.
pub async fn find_any(
    connection: &mut SqliteConnection,
    id: MessageId,
) -> Result<Option<(Message, bool)>, StorageError> {
    let row = sqlx::query(&format!("{MESSAGE_SELECT} WHERE m.id = ?1"))
        .bind(id)
        .fetch_optional(connection)
        .await?;
    match row {
        Some(row) => Ok(Some((message_from_row(&row)?, row.try_get("deleted")?))),
        None => Ok(None),
    }
}

/// The message `sender` sent with `client_id`, deleted or not: a retried send finds its first attempt.
pub async fn find_by_client_id(
    connection: &mut SqliteConnection,
    sender: UserId,
    client_id: &ClientId,
) -> Result<Option<(Message, bool)>, StorageError> {
    let row = sqlx::query(&format!(
        "{MESSAGE_SELECT} WHERE m.sender_id = ?1 AND m.client_id = ?2"
    ))
    .bind(sender)
    .bind(client_id)
    .fetch_optional(connection)
    .await?;
    match row {
        Some(row) => Ok(Some((message_from_row(&row)?, row.try_get("deleted")?))),
        None => Ok(None),
    }
}

/// One page of a chat: the newest `limit` live messages with an epoch below `before` (all when `None`),
/// returned oldest first so a page reads top to bottom.
pub async fn page(
    connection: &mut SqliteConnection,
    chat: ChatId,
    before: Option<Epoch>,
    limit: u32,
) -> Result<Vec<Message>, StorageError> {
    let below = before.map_or(i64::MAX, |epoch| counter_to_sql(epoch.0));
    let rows = sqlx::query(&format!(
        "{MESSAGE_SELECT}
         WHERE m.chat_id = ?1 AND m.epoch < ?2 AND m.deleted_at IS NULL
         ORDER BY m.epoch DESC
         LIMIT ?3"
    ))
    .bind(chat)
    .bind(below)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await?;
    let mut messages = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// Marks a live message deleted; returns false when there was none.
pub async fn soft_delete(
    connection: &mut SqliteConnection,
    id: MessageId,
    deleted_at: UnixMillis,
    epoch: Epoch,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE messages SET deleted_at = ?2, deleted_epoch = ?3 WHERE id = ?1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(deleted_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}
