//! A user's conversations, groups and direct chats together: the list a chat app shows beside the open
//! conversation, with each one's last message and unread count.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ids::{ChatId, Epoch, UserId};
use super::messages::MESSAGE_SELECT;
use super::model::{ChatKind, ChatSummary, Message, UserRef};
use super::{StorageError, counter_from_sql};

/// Everyone who shares a live group or a direct chat with `user` (not `user`), in id order: whose
/// presence `user` is shown.
pub async fn contacts(
    connection: &mut SqliteConnection,
    user: UserId,
) -> Result<Vec<UserId>, StorageError> {
    let rows = sqlx::query(
        "SELECT other.user_id AS id
         FROM memberships mine
         JOIN groups g ON g.id = mine.group_id AND g.deleted_at IS NULL
         JOIN memberships other ON other.group_id = mine.group_id
         WHERE mine.user_id = ?1 AND other.user_id <> ?1
         UNION
         SELECT peer_id FROM direct_chats WHERE user_id = ?1 AND peer_id <> ?1
         ORDER BY id",
    )
    .bind(user)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// `user`'s live groups and direct chats, newest activity first (ties: the chat id, for a stable order).
///
/// Two statements whatever the number of chats: one for the chats with their counts (each count an
/// index range on `messages_by_chat`), one for their last messages.
pub async fn list(
    connection: &mut SqliteConnection,
    user: UserId,
) -> Result<Vec<ChatSummary>, StorageError> {
    let rows = sqlx::query(
        "WITH chats (chat_id, group_name, peer_id, peer_name, peer_tag, since) AS (
             SELECT g.id, g.name, NULL, NULL, NULL, m.epoch
             FROM memberships m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id = ?1 AND g.deleted_at IS NULL
             UNION ALL
             SELECT d.chat_id, NULL, u.id, u.username, u.tag, 0
             FROM direct_chats d JOIN users u ON u.id = d.peer_id
             WHERE d.user_id = ?1
         ),
         marked AS (
             SELECT c.*, coalesce(r.read_epoch, 0) AS read_epoch,
                 (SELECT max(epoch) FROM messages
                  WHERE chat_id = c.chat_id AND deleted_at IS NULL) AS last_epoch
             FROM chats c LEFT JOIN read_markers r ON r.user_id = ?1 AND r.chat_id = c.chat_id
         )
         SELECT marked.*,
             (SELECT count(*) FROM messages
              WHERE chat_id = marked.chat_id AND epoch > marked.read_epoch
                AND deleted_at IS NULL AND sender_id <> ?1) AS unread
         FROM marked",
    )
    .bind(user)
    .fetch_all(&mut *connection)
    .await?;
    let mut chats = Vec::with_capacity(rows.len());
    let mut last_epochs = Vec::new();
    for row in &rows {
        let chat: ChatId = row.try_get("chat_id")?;
        let kind = match chat {
            ChatId::Group(id) => ChatKind::Group {
                id,
                name: row.try_get("group_name")?,
            },
            ChatId::Direct(..) => ChatKind::Direct {
                user: UserRef {
                    id: row.try_get("peer_id")?,
                    username: row.try_get("peer_name")?,
                    tag: row.try_get("peer_tag")?,
                },
            },
        };
        let last_epoch: Option<i64> = row.try_get("last_epoch")?;
        let since: i64 = row.try_get("since")?;
        last_epochs.extend(last_epoch);
        chats.push(ChatSummary {
            chat,
            kind,
            last_message: None,
            unread: counter_from_sql(row.try_get("unread")?),
            read_epoch: Epoch(counter_from_sql(row.try_get("read_epoch")?)),
            activity_epoch: Epoch(counter_from_sql(last_epoch.unwrap_or(since))),
        });
    }
    let mut last = last_messages(connection, &last_epochs).await?;
    for summary in &mut chats {
        summary.last_message = last.remove(&summary.chat);
    }
    chats.sort_by(|a, b| {
        b.activity_epoch
            .cmp(&a.activity_epoch)
            .then_with(|| a.chat.to_string().cmp(&b.chat.to_string()))
    });
    Ok(chats)
}

/// The messages at `epochs`, by chat.
async fn last_messages(
    connection: &mut SqliteConnection,
    epochs: &[i64],
) -> Result<HashMap<ChatId, Message>, StorageError> {
    let mut found = HashMap::new();
    // Well below SQLite's bound on variables per statement.
    for chunk in epochs.chunks(500) {
        let mut query = QueryBuilder::<Sqlite>::new(MESSAGE_SELECT);
        query.push(" WHERE m.epoch IN (");
        let mut separated = query.separated(", ");
        for epoch in chunk {
            separated.push_bind(*epoch);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *connection).await? {
            let message = super::messages::message_from_row(&row)?;
            found.insert(message.chat, message);
        }
    }
    Ok(found)
}
