//! Messages of groups and direct chats (`messages`): paged by epoch, edited in place, searched through the
//! `messages_search` index that triggers keep in step with the table.

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ids::{ChatId, ClientId, Epoch, MessageId, UnixMillis, UserId};
use super::model::{Message, Quote, UserRef};
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
    /// The message it answers, as the writer read it when it checked the reply: the row keeps only its
    /// id, the log entry carries the quote so that live events show it without a read.
    #[serde(default)]
    pub reply_to: Option<Quote>,
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
            edited_at: None,
            reply_to: self.reply_to.clone(),
            reactions: Vec::new(),
        }
    }
}

/// A message joined with its sender's name and the message it quotes (while that one is live);
/// `deleted` is only looked at by [`find_any`]. Reactions come from [`super::reactions::attach`].
pub(super) const MESSAGE_SELECT: &str =
    "SELECT m.id, m.chat_id, m.sender_id, u.username, u.tag, m.receiver_id,
        m.content, m.created_at, m.epoch, m.client_id, m.deleted_at IS NOT NULL AS deleted,
        m.edited_at, q.id AS quote_id, q.sender_id AS quote_sender_id,
        qu.username AS quote_username, qu.tag AS quote_tag,
        substr(q.content, 1, 100) AS quote_excerpt
    FROM messages m JOIN users u ON u.id = m.sender_id
    LEFT JOIN messages q ON q.id = m.reply_to AND q.deleted_at IS NULL
    LEFT JOIN users qu ON qu.id = q.sender_id";

pub(super) fn message_from_row(row: &SqliteRow) -> Result<Message, sqlx::Error> {
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
        edited_at: row.try_get::<Option<i64>, _>("edited_at")?.map(UnixMillis),
        reply_to: quote_from_row(row)?,
        reactions: Vec::new(),
    })
}

fn quote_from_row(row: &SqliteRow) -> Result<Option<Quote>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<MessageId>, _>("quote_id")? else {
        return Ok(None);
    };
    Ok(Some(Quote {
        id,
        sender: UserRef {
            id: row.try_get("quote_sender_id")?,
            username: row.try_get("quote_username")?,
            tag: row.try_get("quote_tag")?,
        },
        excerpt: row.try_get("quote_excerpt")?,
    }))
}

/// Inserts a message; its `epoch` is the write's epoch.
pub async fn insert(
    connection: &mut SqliteConnection,
    message: &NewMessage,
    epoch: Epoch,
) -> Result<(), StorageError> {
    insert_many(connection, &[(message, epoch)]).await
}

/// Rows per INSERT of [`insert_many`]: 9 values each, well below SQLite's bound on variables.
pub(super) const ROWS_PER_INSERT: usize = 128;

/// Inserts messages, each with its write's epoch, many rows per statement (a copy applying a batch
/// of the writer's log: every statement is a hand-off to the database's thread).
pub async fn insert_many(
    connection: &mut SqliteConnection,
    messages: &[(&NewMessage, Epoch)],
) -> Result<(), StorageError> {
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new("");
        push_insert(&mut insert, chunk);
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// One INSERT of `messages` (at most [`ROWS_PER_INSERT`]) appended to `query`.
pub(super) fn push_insert<'a>(
    query: &mut QueryBuilder<'a, Sqlite>,
    messages: &'a [(&'a NewMessage, Epoch)],
) {
    query.push(
        "INSERT INTO messages (id, chat_id, sender_id, receiver_id, content, created_at, epoch, client_id, reply_to) ",
    );
    query.push_values(messages, |mut row, (message, epoch)| {
        row.push_bind(message.id)
            .push_bind(message.chat)
            .push_bind(message.sender)
            .push_bind(message.receiver)
            .push_bind(&message.content)
            .push_bind(message.created_at.0)
            .push_bind(counter_to_sql(epoch.0))
            .push_bind(&message.client_id)
            .push_bind(message.reply_to.as_ref().map(|quote| quote.id));
    });
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

/// Which of `sends` (sender, client_id) name a message already written, deleted or not: the
/// writer's check for retried sends, one statement for a whole batch.
pub async fn sent_client_ids(
    connection: &mut SqliteConnection,
    sends: &[(UserId, &ClientId)],
) -> Result<std::collections::HashSet<(UserId, ClientId)>, StorageError> {
    let mut found = std::collections::HashSet::new();
    // Two variables per send, well below SQLite's bound.
    for chunk in sends.chunks(ROWS_PER_INSERT * 2) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT sender_id, client_id FROM messages WHERE (sender_id, client_id) IN (VALUES ",
        );
        let mut rows = query.separated(", ");
        for (sender, client_id) in chunk {
            rows.push("(");
            rows.push_bind_unseparated(*sender);
            rows.push_unseparated(", ");
            rows.push_bind_unseparated(*client_id);
            rows.push_unseparated(")");
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            found.insert((row.try_get("sender_id")?, row.try_get("client_id")?));
        }
    }
    Ok(found)
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

/// Replaces a live message's text; returns false when there was none.
pub async fn edit(
    connection: &mut SqliteConnection,
    id: MessageId,
    content: &str,
    edited_at: UnixMillis,
    epoch: Epoch,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE messages SET content = ?2, edited_at = ?3, edited_epoch = ?4
         WHERE id = ?1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(content)
    .bind(edited_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The epoch of the newest live message of a chat.
pub async fn last_epoch(
    connection: &mut SqliteConnection,
    chat: ChatId,
) -> Result<Option<Epoch>, StorageError> {
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT max(epoch) FROM messages WHERE chat_id = ?1 AND deleted_at IS NULL",
    )
    .bind(chat)
    .fetch_one(connection)
    .await?;
    Ok(last.map(|epoch| Epoch(counter_from_sql(epoch))))
}

/// How many live messages of `chat` after `after` were sent by someone other than `reader`.
pub async fn unread(
    connection: &mut SqliteConnection,
    chat: ChatId,
    reader: UserId,
    after: Epoch,
) -> Result<u64, StorageError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages
         WHERE chat_id = ?1 AND epoch > ?2 AND deleted_at IS NULL AND sender_id <> ?3",
    )
    .bind(chat)
    .bind(counter_to_sql(after.0))
    .bind(reader)
    .fetch_one(connection)
    .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The newest `limit` live messages below `before` that match the FTS5 expression `matching`, in the
/// chats `reader` belongs to now (their groups that are not deleted, and their direct chats), newest
/// first.
pub async fn search(
    connection: &mut SqliteConnection,
    reader: UserId,
    matching: &str,
    before: Option<Epoch>,
    limit: u32,
) -> Result<Vec<Message>, StorageError> {
    let below = before.map_or(i64::MAX, |epoch| counter_to_sql(epoch.0));
    // The index answers newest first; the chat filter runs on what it returns, so a user who belongs to
    // few of the matching chats costs more rows read, never a wrong answer.
    let rows = sqlx::query(&format!(
        "{MESSAGE_SELECT}
         WHERE m.epoch IN (
             SELECT rowid FROM messages_search WHERE messages_search MATCH ?1 AND rowid < ?2
         )
         AND m.deleted_at IS NULL
         AND (m.chat_id IN (
                 SELECT ms.group_id FROM memberships ms JOIN groups g ON g.id = ms.group_id
                 WHERE ms.user_id = ?3 AND g.deleted_at IS NULL)
              OR m.chat_id IN (SELECT chat_id FROM direct_chats WHERE user_id = ?3))
         ORDER BY m.epoch DESC
         LIMIT ?4"
    ))
    .bind(matching)
    .bind(below)
    .bind(reader)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await?;
    Ok(rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}
