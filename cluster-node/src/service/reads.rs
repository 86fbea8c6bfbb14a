//! Read operations: answered from any database that holds the data (writer or fresh-enough replica),
//! inside one read transaction so that the epoch reported and the rows returned agree.

use sqlx::SqliteConnection;

use crate::storage::{ChatId, GroupWithMembers, chats, groups, messages, reactions, users};

use super::error::{Resource, ServiceError};
use super::operation::{Credentials, Operation, Outcome};
use super::rules;
use super::search::SearchQuery;
use super::validate::{Page, Username};

/// Largest page of search results.
const MAX_SEARCH_LIMIT: u32 = 100;
use crate::storage::UserId;

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
        | Operation::MarkRead(_) => Err(ServiceError::Internal(format!(
            "{} is a write and was sent to the read path",
            operation.name()
        ))),
    }
}
