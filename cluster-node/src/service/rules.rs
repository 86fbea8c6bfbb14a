//! Checks shared by reads and writes, each returning the error the business rules prescribe: who is
//! calling (401), whether a user or group exists (404), whether the caller belongs to the group (403).

use sqlx::SqliteConnection;

use crate::storage::{
    ChatId, Group, GroupId, Message, MessageId, User, UserId, UserTag, groups, messages, users,
};

use super::error::{Resource, ServiceError};
use super::operation::ChatRef;
use super::validate::Username;

/// The calling user; a missing caller or one whose user no longer exists is unauthenticated.
pub(super) async fn caller(
    connection: &mut SqliteConnection,
    caller: Option<UserId>,
) -> Result<User, ServiceError> {
    let id = caller.ok_or(ServiceError::Unauthenticated)?;
    users::find_by_id(connection, id)
        .await?
        .ok_or(ServiceError::Unauthenticated)
}

/// A user by `name#tag`; a name that could not be registered cannot exist either.
pub(super) async fn user_named(
    connection: &mut SqliteConnection,
    username: &str,
    tag: UserTag,
) -> Result<User, ServiceError> {
    let username = Username::parse(username).map_err(|_| ServiceError::NotFound(Resource::User))?;
    users::find_by_name(connection, username.as_str(), tag)
        .await?
        .ok_or(ServiceError::NotFound(Resource::User))
}

/// A live group.
pub(super) async fn group(
    connection: &mut SqliteConnection,
    id: GroupId,
) -> Result<Group, ServiceError> {
    groups::find(connection, id)
        .await?
        .ok_or(ServiceError::NotFound(Resource::Group))
}

/// A live group that `user` belongs to.
pub(super) async fn group_of_member(
    connection: &mut SqliteConnection,
    id: GroupId,
    user: UserId,
) -> Result<Group, ServiceError> {
    let group = group(connection, id).await?;
    Membership(groups::is_member(connection, id, user).await?).require()?;
    Ok(group)
}

/// Whether the caller belongs to a live group, found in one query (the write path of a message).
pub(super) struct Membership(bool);

impl Membership {
    /// 403 unless the caller is a member.
    pub(super) fn require(self) -> Result<(), ServiceError> {
        if self.0 {
            Ok(())
        } else {
            Err(ServiceError::forbidden(
                "you are not a member of this group",
            ))
        }
    }
}

/// 404 when the group is not live; otherwise whether `user` is a member, checked by the caller
/// with [`Membership::require`] (a retried send is recognised between the two checks).
pub(super) async fn membership(
    connection: &mut SqliteConnection,
    id: GroupId,
    user: UserId,
) -> Result<Membership, ServiceError> {
    groups::membership(connection, id, user)
        .await?
        .map(Membership)
        .ok_or(ServiceError::NotFound(Resource::Group))
}

/// A live message in a chat `user` can read now (a member of its live group, or one of the two users of
/// a direct chat); 404 otherwise, so that a message's existence is not revealed to outsiders.
pub(super) async fn readable_message(
    connection: &mut SqliteConnection,
    id: MessageId,
    user: UserId,
) -> Result<Message, ServiceError> {
    let not_found = || ServiceError::NotFound(Resource::Message);
    let (message, deleted) = messages::find_any(connection, id)
        .await?
        .ok_or_else(not_found)?;
    if deleted {
        return Err(not_found());
    }
    let readable = match message.chat {
        ChatId::Group(group) => groups::membership(connection, group, user).await? == Some(true),
        ChatId::Direct(first, second) => user == first || user == second,
    };
    if readable {
        Ok(message)
    } else {
        Err(not_found())
    }
}

/// The chat a [`ChatRef`] names, checked readable by `user`: 404 for an unknown group or user, 403 for a
/// group `user` does not belong to.
pub(super) async fn chat(
    connection: &mut SqliteConnection,
    chat: &ChatRef,
    user: UserId,
) -> Result<ChatId, ServiceError> {
    match chat {
        ChatRef::Group(group) => {
            let group = group_of_member(connection, *group, user).await?;
            Ok(ChatId::Group(group.id))
        }
        ChatRef::User { username, tag } => {
            let peer = user_named(connection, username, *tag).await?;
            Ok(ChatId::direct(user, peer.id))
        }
    }
}
