//! The records that reads return: users, groups and messages as the service hands them to callers.
//!
//! They are plain data with serde so that the data plane can marshal them unchanged; field names follow
//! the JSON API of DESIGN §6 where it defines them. Timestamps stay unix milliseconds here; the web layer
//! renders them.

use serde::{Deserialize, Serialize};

use super::ids::{ChatId, ClientId, Epoch, GroupId, MessageId, UnixMillis, UserId, UserTag};

/// A registered user, as anyone may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
    pub created_at: UnixMillis,
}

impl User {
    /// The short form used for message senders.
    pub fn to_ref(&self) -> UserRef {
        UserRef {
            id: self.id,
            username: self.username.clone(),
            tag: self.tag,
        }
    }
}

/// Who sent a message: enough to show `name#tag` and link to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
}

/// A group without its members (list views).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub creator: UserId,
    pub created_at: UnixMillis,
    /// The epoch of the write that created it.
    pub epoch: Epoch,
}

/// A group and its current members, oldest member first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupWithMembers {
    #[serde(flatten)]
    pub group: Group,
    pub members: Vec<User>,
}

/// A message that has not been deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub chat: ChatId,
    pub sender: UserRef,
    /// The other user of a direct message; `None` in a group.
    pub receiver: Option<UserId>,
    pub content: String,
    pub created_at: UnixMillis,
    /// The epoch of the write that created it: the order of a chat's history and the `before` cursor.
    pub epoch: Epoch,
    /// The sender's idempotency key, if the send carried one.
    pub client_id: Option<ClientId>,
    /// When its sender last edited it.
    #[serde(default)]
    pub edited_at: Option<UnixMillis>,
    /// The message it answers, while that one is not deleted.
    #[serde(default)]
    pub reply_to: Option<Quote>,
    /// Its reactions, in the order of each emoji's first use; `me` is for the user who asked.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

/// The message a reply answers, as the reply shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: MessageId,
    pub sender: UserRef,
    /// Its first [`Quote::EXCERPT_CHARS`] characters.
    pub excerpt: String,
}

impl Quote {
    /// Enough to recognise a message; the full text is one click away.
    pub const EXCERPT_CHARS: usize = 100;

    /// The excerpt of `content`: its first characters, counted as Unicode scalar values (as SQLite's
    /// `substr` counts them, so a quote built by the writer and one read back agree).
    pub fn excerpt(content: &str) -> String {
        content.chars().take(Self::EXCERPT_CHARS).collect()
    }
}

/// One emoji on a message: how many users chose it and whether the asking user is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    pub me: bool,
}

/// What a conversation in a user's list is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatKind {
    Group { id: GroupId, name: String },
    Direct { user: UserRef },
}

/// One conversation of a user's list: what it is, its last message and how much of it is unread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSummary {
    pub chat: ChatId,
    pub kind: ChatKind,
    /// Its newest live message.
    pub last_message: Option<Message>,
    /// Live messages from others after `read_epoch`.
    pub unread: u64,
    /// The user's read marker (0 when never set).
    pub read_epoch: Epoch,
    /// The epoch of the last message, or of joining when there is none: the list's order.
    pub activity_epoch: Epoch,
}
