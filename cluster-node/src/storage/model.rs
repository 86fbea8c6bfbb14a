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
}
