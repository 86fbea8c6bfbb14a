//! Deterministic writes: the [`Mutation`] a writer prepared, the [`LogEntry`] that carries it to replicas,
//! and [`apply`], the one function that turns either into rows.
//!
//! A mutation holds every value a row needs (generated ids, timestamps, the assigned tag, the password
//! hash); `apply` adds only the epoch. It checks nothing that the writer already decided, so it never
//! depends on a clock, an RNG or the order of concurrent requests: applying the same entries in the same
//! order gives the same rows on every node. It does fail loudly when a row it should change is missing,
//! which on a replica means its copy has diverged.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::config::NodeId;

use super::StorageError;
use super::groups::{self, NewGroup};
use super::ids::{ChatId, Epoch, GroupId, MessageId, Term, UnixMillis, UserId};
use super::messages::{self, NewMessage};
use super::users::{self, NewUser};
use super::{reactions, read_markers};

/// One committed change to client data, with all its values decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mutation {
    RegisterUser(NewUser),
    /// Inserts the group and makes its creator the first member.
    CreateGroup(NewGroup),
    AddMember {
        group: GroupId,
        user: UserId,
        joined_at: UnixMillis,
    },
    RemoveMember {
        group: GroupId,
        user: UserId,
    },
    PostMessage(NewMessage),
    DeleteMessage {
        message: MessageId,
        deleted_at: UnixMillis,
    },
    DeleteGroup {
        group: GroupId,
        deleted_at: UnixMillis,
    },
    /// New text for a live message. `chat` lets live views route the change without a read.
    EditMessage {
        message: MessageId,
        chat: ChatId,
        content: String,
        edited_at: UnixMillis,
    },
    /// `user` puts `emoji` on a message (`on`) or takes it off. `count` is how many users have that
    /// emoji on the message after the change, as the writer counted it: apply does not need it, live
    /// views show it as is, so a view that missed earlier changes still shows the right number.
    SetReaction {
        message: MessageId,
        chat: ChatId,
        user: UserId,
        emoji: String,
        on: bool,
        count: u32,
        at: UnixMillis,
    },
    /// `user` has read `chat` up to `read_epoch` (the writer only writes a marker that moves forward).
    MarkRead {
        user: UserId,
        chat: ChatId,
        read_epoch: Epoch,
    },
    /// A new voter configuration (DESIGN §4): from this entry on, these nodes' durable copies are the
    /// ones a write's acknowledgement counts. Not client data: it changes no table a client reads.
    Configure {
        voters: BTreeSet<NodeId>,
    },
}

/// A committed write at its log position: what the writer sends to replicas (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The term of the writer that committed it.
    pub term: Term,
    pub epoch: Epoch,
    pub mutation: Mutation,
}

/// Writes `mutation` into the database, stamping every row it creates or deletes with `epoch`. The caller
/// owns the transaction and the `system_state` update.
pub async fn apply(
    connection: &mut SqliteConnection,
    epoch: Epoch,
    mutation: &Mutation,
) -> Result<(), StorageError> {
    let diverged = |reason: String| StorageError::Diverged {
        epoch: epoch.0,
        reason,
    };
    match mutation {
        Mutation::RegisterUser(user) => users::insert(connection, user, epoch).await,
        Mutation::CreateGroup(group) => {
            groups::insert(connection, group, epoch).await?;
            groups::add_member(connection, group.id, group.creator, group.created_at, epoch).await
        }
        Mutation::AddMember {
            group,
            user,
            joined_at,
        } => groups::add_member(connection, *group, *user, *joined_at, epoch).await,
        Mutation::RemoveMember { group, user } => {
            if groups::remove_member(connection, *group, *user).await? {
                Ok(())
            } else {
                Err(diverged(format!("{user} is not a member of {group}")))
            }
        }
        Mutation::PostMessage(message) => messages::insert(connection, message, epoch).await,
        Mutation::DeleteMessage {
            message,
            deleted_at,
        } => {
            if messages::soft_delete(connection, *message, *deleted_at, epoch).await? {
                Ok(())
            } else {
                Err(diverged(format!("no live message {message}")))
            }
        }
        Mutation::DeleteGroup { group, deleted_at } => {
            if groups::soft_delete(connection, *group, *deleted_at, epoch).await? {
                Ok(())
            } else {
                Err(diverged(format!("no live group {group}")))
            }
        }
        Mutation::EditMessage {
            message,
            content,
            edited_at,
            ..
        } => {
            if messages::edit(connection, *message, content, *edited_at, epoch).await? {
                Ok(())
            } else {
                Err(diverged(format!("no live message {message} to edit")))
            }
        }
        Mutation::SetReaction {
            message,
            user,
            emoji,
            on: true,
            at,
            ..
        } => reactions::add(connection, *message, emoji, *user, *at, epoch).await,
        Mutation::SetReaction {
            message,
            user,
            emoji,
            on: false,
            ..
        } => {
            if reactions::remove(connection, *message, emoji, *user).await? {
                Ok(())
            } else {
                Err(diverged(format!("{user} has no {emoji} on {message}")))
            }
        }
        Mutation::MarkRead {
            user,
            chat,
            read_epoch,
        } => read_markers::advance(connection, *user, *chat, *read_epoch, epoch).await,
        Mutation::Configure { voters } => super::voters::set(connection, epoch, voters).await,
    }
}
