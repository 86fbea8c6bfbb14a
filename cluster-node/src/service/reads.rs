//! Read operations: answered from any database that holds the data (writer or fresh-enough replica),
//! inside one read transaction so that the epoch reported and the rows returned agree.

use sqlx::SqliteConnection;

use crate::storage::recent::{self, GroupSnapshot, WindowMessage};
use crate::storage::{
    ChatId, GroupWithMembers, UserRef, chats, groups, messages, reactions, users,
};

use super::error::{Resource, ServiceError};
use super::operation::{Credentials, Operation, Outcome};
use super::rules;
use super::search::SearchQuery;
use super::validate::{Page, Username};

/// Largest page of search results.
const MAX_SEARCH_LIMIT: u32 = 100;
use crate::storage::UserId;

/// The newest page of a group (`ListGroupMessages` without `before`), read so that the recent window
/// can keep it: the group's members and its [`recent::WINDOW`] newest messages with who reacted, of
/// which the page is the last `limit`. Answers exactly as [`run`] would.
pub(super) async fn newest_group_page(
    connection: &mut SqliteConnection,
    caller: Option<UserId>,
    request: &crate::service::ListGroupMessages,
) -> Result<(Outcome, GroupSnapshot), ServiceError> {
    let me = rules::caller(connection, caller).await?;
    let page = Page::parse(None, request.limit)?;
    let group = rules::group_of_member(connection, request.group, me.id).await?;
    let read = page.limit.max(recent::WINDOW as u32);
    let newest = messages::page(connection, ChatId::Group(group.id), None, read).await?;
    let mut reactors = reactions::reactors(connection, &newest).await?;
    let members = groups::members(connection, group.id).await?;
    let newest: Vec<WindowMessage> = newest
        .into_iter()
        .map(|message| WindowMessage {
            reactions: reactors.remove(&message.id).unwrap_or_default(),
            message,
        })
        .collect();
    let skip = newest.len().saturating_sub(page.limit as usize);
    let answer = newest[skip..]
        .iter()
        .map(|message| message.view(me.id))
        .collect();
    let snapshot = GroupSnapshot {
        group: group.id,
        members: members
            .into_iter()
            .map(|user| UserRef {
                id: user.id,
                username: user.username,
                tag: user.tag,
            })
            .collect(),
        newest: Some(newest),
    };
    Ok((Outcome::Messages(answer), snapshot))
}

/// Runs a read operation; a write reaching here is a bug in the caller's dispatch.
pub(super) async fn run(
    connection: &mut SqliteConnection,
    caller: Option<UserId>,
    operation: &Operation,
) -> Result<Outcome, ServiceError> {
    match operation {
        Operation::LookupCredentials(request) => {
            let username = Username::parse(&request.username)
                .map_err(|_| ServiceError::NotFound(Resource::User))?;
            let (user, password_hash) =
                users::find_credentials(connection, username.as_str(), request.tag)
                    .await?
                    .ok_or(ServiceError::NotFound(Resource::User))?;
            Ok(Outcome::Credentials(Credentials {
                user,
                password_hash,
            }))
        }
        Operation::GetUser(request) => {
            let user = rules::user_named(connection, &request.username, request.tag).await?;
            Ok(Outcome::User(user))
        }
        Operation::GetMe => Ok(Outcome::User(rules::caller(connection, caller).await?)),
        Operation::ListDirectMessages(request) => {
            let me = rules::caller(connection, caller).await?;
            let page = Page::parse(request.before, request.limit)?;
            let peer = rules::user_named(connection, &request.username, request.tag).await?;
            let chat = ChatId::direct(me.id, peer.id);
            let mut page = messages::page(connection, chat, page.before, page.limit).await?;
            reactions::attach(connection, &mut page, Some(me.id)).await?;
            Ok(Outcome::Messages(page))
        }
        Operation::GetGroup(request) => {
            let me = rules::caller(connection, caller).await?;
            let group = rules::group_of_member(connection, request.group, me.id).await?;
            let members = groups::members(connection, group.id).await?;
            Ok(Outcome::Group(GroupWithMembers { group, members }))
        }
        Operation::ListGroups => {
            let me = rules::caller(connection, caller).await?;
            Ok(Outcome::Groups(groups::groups_of(connection, me.id).await?))
        }
        Operation::ListGroupMessages(request) => {
            let me = rules::caller(connection, caller).await?;
            let page = Page::parse(request.before, request.limit)?;
            let group = rules::group_of_member(connection, request.group, me.id).await?;
            let mut page =
                messages::page(connection, ChatId::Group(group.id), page.before, page.limit)
                    .await?;
            reactions::attach(connection, &mut page, Some(me.id)).await?;
            Ok(Outcome::Messages(page))
        }
        Operation::ListChats => {
            let me = rules::caller(connection, caller).await?;
            Ok(Outcome::Chats(chats::list(connection, me.id).await?))
        }
        Operation::ListContacts => {
            let me = rules::caller(connection, caller).await?;
            Ok(Outcome::Contacts(chats::contacts(connection, me.id).await?))
        }
        Operation::Search(request) => {
            let me = rules::caller(connection, caller).await?;
            let query = SearchQuery::parse(&request.query)?;
            let page = Page::parse(request.before, request.limit)?;
            let limit = page.limit.min(MAX_SEARCH_LIMIT);
            let mut found =
                messages::search(connection, me.id, &query.expression(), page.before, limit)
                    .await?;
            reactions::attach(connection, &mut found, Some(me.id)).await?;
            Ok(Outcome::Messages(found))
        }
        Operation::Register(_)
        | Operation::SendDirectMessage(_)
        | Operation::CreateGroup(_)
        | Operation::AddMember(_)
        | Operation::LeaveGroup(_)
        | Operation::SendGroupMessage(_)
        | Operation::DeleteMessage(_)
        | Operation::DeleteGroup(_)
        | Operation::EditMessage(_)
        | Operation::SetReaction(_)
        | Operation::MarkRead(_)
        | Operation::Ephemeral(_) => Err(ServiceError::Internal(format!(
            "{} is a write and was sent to the read path",
            operation.name()
        ))),
    }
}
