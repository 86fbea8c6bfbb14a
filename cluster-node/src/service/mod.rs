//! The chat's business operations behind one trait, [`ChatService`], whatever node answers them.
//!
//! ```text
//!   web layer / data plane ──ServiceRequest { caller, client_epoch, Operation }──► ChatService::execute
//!                                                                                     │
//!        ┌────────────────────────────────────────────────────────────────────────────┤
//!        │ LocalService (writer or replica: has a database)     proxy (data plane, elsewhere)
//!        │   reads ─► one read transaction                        marshals the request up the tree
//!        │   writes ─► check + bcrypt ─► writer task (group commit) ─► LogEntry broadcast
//!        ▼
//!   ServiceResponse { epoch of the answering database, Outcome }  |  ServiceError (→ HTTP status)
//! ```
//!
//! The service enforces every business rule and validation limit (DESIGN §6), so the web layer only maps
//! errors to statuses ([`ServiceError::status`]). [`ChatServiceExt`] adds one typed method per operation
//! on top of `execute`.

mod error;
mod feed;
mod local;
pub mod operation;
pub mod password;
mod reads;
mod rules;
pub mod search;
pub mod validate;
mod writer;
mod writes;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::storage::{ChatId, ChatSummary, Epoch, Group, GroupWithMembers, Message, User, UserId};

pub use error::{Resource, ServiceError};
pub use feed::EventSource;
pub use local::{LocalService, ServiceOptions};
pub use operation::{
    AddMember, ChatRef, CreateGroup, Credentials, DeleteGroup, DeleteMessage, EditMessage,
    GetGroup, GetUser, LeaveGroup, ListDirectMessages, ListGroupMessages, LookupCredentials,
    MarkRead, Operation, Outcome, Register, Search, SendDirectMessage, SendGroupMessage,
    SetReaction,
};
pub use writer::WriterCounts;

/// One operation on behalf of a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRequest {
    /// The signed-in user, or `None` (register and login need none).
    pub caller: Option<UserId>,
    /// The highest epoch the client has seen; 0 for a new client (DESIGN §4 epoch-checked reads).
    pub client_epoch: Epoch,
    pub operation: Operation,
}

/// The answer to a [`ServiceRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceResponse {
    /// For a write, the epoch it was committed at; for a read, the epoch of the database that answered.
    pub epoch: Epoch,
    pub outcome: Outcome,
}

/// The chat's operations, answered locally or by another node.
pub trait ChatService: Send + Sync {
    fn execute(
        &self,
        request: ServiceRequest,
    ) -> impl Future<Output = Result<ServiceResponse, ServiceError>> + Send;
}

/// Whether a replica at `replica_epoch` may answer a read from a client that has seen `client_epoch`:
/// only when `0 < client_epoch <= replica_epoch`. A new client (epoch 0) always goes to the writer, so its
/// first answer sets a floor that later reads never fall below (read-your-writes, monotonic reads). The
/// rule belongs to the replication core's routing; the local service applies it too, as a last check.
pub use replication::routing::copy_can_answer as replica_can_answer;

/// Who asks and what they have seen: the part of a [`ServiceRequest`] that is not the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestContext {
    pub caller: Option<UserId>,
    pub client_epoch: Epoch,
}

impl RequestContext {
    /// Nobody signed in, nothing seen.
    pub fn anonymous() -> Self {
        RequestContext::default()
    }

    /// `user`, having seen nothing yet.
    pub fn user(user: UserId) -> Self {
        RequestContext {
            caller: Some(user),
            client_epoch: Epoch(0),
        }
    }

    /// The same caller, having seen `epoch`.
    pub fn at(self, epoch: Epoch) -> Self {
        RequestContext {
            client_epoch: epoch,
            ..self
        }
    }
}

/// A typed answer and the epoch it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    pub epoch: Epoch,
    pub value: T,
}

async fn call<S, T>(
    service: &S,
    context: RequestContext,
    operation: Operation,
    expect: fn(Outcome) -> Option<T>,
) -> Result<Answer<T>, ServiceError>
where
    S: ChatService + ?Sized,
{
    let name = operation.name();
    let response = service
        .execute(ServiceRequest {
            caller: context.caller,
            client_epoch: context.client_epoch,
            operation,
        })
        .await?;
    let value = expect(response.outcome)
        .ok_or_else(|| ServiceError::Internal(format!("unexpected outcome for {name}")))?;
    Ok(Answer {
        epoch: response.epoch,
        value,
    })
}

fn user(outcome: Outcome) -> Option<User> {
    match outcome {
        Outcome::User(user) => Some(user),
        _ => None,
    }
}

fn group(outcome: Outcome) -> Option<GroupWithMembers> {
    match outcome {
        Outcome::Group(group) => Some(group),
        _ => None,
    }
}

fn message(outcome: Outcome) -> Option<Message> {
    match outcome {
        Outcome::Message(message) => Some(message),
        _ => None,
    }
}

fn messages(outcome: Outcome) -> Option<Vec<Message>> {
    match outcome {
        Outcome::Messages(messages) => Some(messages),
        _ => None,
    }
}

fn done(outcome: Outcome) -> Option<()> {
    matches!(outcome, Outcome::Done).then_some(())
}

/// One typed method per operation, for every [`ChatService`].
pub trait ChatServiceExt: ChatService {
    fn register(
        &self,
        context: RequestContext,
        request: Register,
    ) -> impl Future<Output = Result<Answer<User>, ServiceError>> + Send {
        call(self, context, Operation::Register(request), user)
    }

    fn lookup_credentials(
        &self,
        context: RequestContext,
        request: LookupCredentials,
    ) -> impl Future<Output = Result<Answer<Credentials>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::LookupCredentials(request),
            |outcome| match outcome {
                Outcome::Credentials(credentials) => Some(credentials),
                _ => None,
            },
        )
    }

    fn get_user(
        &self,
        context: RequestContext,
        request: GetUser,
    ) -> impl Future<Output = Result<Answer<User>, ServiceError>> + Send {
        call(self, context, Operation::GetUser(request), user)
    }

    fn get_me(
        &self,
        context: RequestContext,
    ) -> impl Future<Output = Result<Answer<User>, ServiceError>> + Send {
        call(self, context, Operation::GetMe, user)
    }

    fn send_direct_message(
        &self,
        context: RequestContext,
        request: SendDirectMessage,
    ) -> impl Future<Output = Result<Answer<Message>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::SendDirectMessage(request),
            message,
        )
    }

    fn list_direct_messages(
        &self,
        context: RequestContext,
        request: ListDirectMessages,
    ) -> impl Future<Output = Result<Answer<Vec<Message>>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::ListDirectMessages(request),
            messages,
        )
    }

    fn create_group(
        &self,
        context: RequestContext,
        request: CreateGroup,
    ) -> impl Future<Output = Result<Answer<GroupWithMembers>, ServiceError>> + Send {
        call(self, context, Operation::CreateGroup(request), group)
    }

    fn get_group(
        &self,
        context: RequestContext,
        request: GetGroup,
    ) -> impl Future<Output = Result<Answer<GroupWithMembers>, ServiceError>> + Send {
        call(self, context, Operation::GetGroup(request), group)
    }

    fn add_member(
        &self,
        context: RequestContext,
        request: AddMember,
    ) -> impl Future<Output = Result<Answer<GroupWithMembers>, ServiceError>> + Send {
        call(self, context, Operation::AddMember(request), group)
    }

    fn leave_group(
        &self,
        context: RequestContext,
        request: LeaveGroup,
    ) -> impl Future<Output = Result<Answer<()>, ServiceError>> + Send {
        call(self, context, Operation::LeaveGroup(request), done)
    }

    fn list_groups(
        &self,
        context: RequestContext,
    ) -> impl Future<Output = Result<Answer<Vec<Group>>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::ListGroups,
            |outcome| match outcome {
                Outcome::Groups(groups) => Some(groups),
                _ => None,
            },
        )
    }

    fn send_group_message(
        &self,
        context: RequestContext,
        request: SendGroupMessage,
    ) -> impl Future<Output = Result<Answer<Message>, ServiceError>> + Send {
        call(self, context, Operation::SendGroupMessage(request), message)
    }

    fn list_group_messages(
        &self,
        context: RequestContext,
        request: ListGroupMessages,
    ) -> impl Future<Output = Result<Answer<Vec<Message>>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::ListGroupMessages(request),
            messages,
        )
    }

    fn delete_message(
        &self,
        context: RequestContext,
        request: DeleteMessage,
    ) -> impl Future<Output = Result<Answer<()>, ServiceError>> + Send {
        call(self, context, Operation::DeleteMessage(request), done)
    }

    fn delete_group(
        &self,
        context: RequestContext,
        request: DeleteGroup,
    ) -> impl Future<Output = Result<Answer<()>, ServiceError>> + Send {
        call(self, context, Operation::DeleteGroup(request), done)
    }

    fn edit_message(
        &self,
        context: RequestContext,
        request: EditMessage,
    ) -> impl Future<Output = Result<Answer<Message>, ServiceError>> + Send {
        call(self, context, Operation::EditMessage(request), message)
    }

    fn set_reaction(
        &self,
        context: RequestContext,
        request: SetReaction,
    ) -> impl Future<Output = Result<Answer<Message>, ServiceError>> + Send {
        call(self, context, Operation::SetReaction(request), message)
    }

    /// The chat and where its marker is now.
    fn mark_read(
        &self,
        context: RequestContext,
        request: MarkRead,
    ) -> impl Future<Output = Result<Answer<(ChatId, Epoch)>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::MarkRead(request),
            |outcome| match outcome {
                Outcome::ReadMarker { chat, read_epoch } => Some((chat, read_epoch)),
                _ => None,
            },
        )
    }

    fn list_chats(
        &self,
        context: RequestContext,
    ) -> impl Future<Output = Result<Answer<Vec<ChatSummary>>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::ListChats,
            |outcome| match outcome {
                Outcome::Chats(chats) => Some(chats),
                _ => None,
            },
        )
    }

    fn search(
        &self,
        context: RequestContext,
        request: Search,
    ) -> impl Future<Output = Result<Answer<Vec<Message>>, ServiceError>> + Send {
        call(self, context, Operation::Search(request), messages)
    }

    /// Everyone who shares a chat with the caller.
    fn list_contacts(
        &self,
        context: RequestContext,
    ) -> impl Future<Output = Result<Answer<Vec<UserId>>, ServiceError>> + Send {
        call(
            self,
            context,
            Operation::ListContacts,
            |outcome| match outcome {
                Outcome::Contacts(users) => Some(users),
                _ => None,
            },
        )
    }
}

impl<S: ChatService + ?Sized> ChatServiceExt for S {}

#[cfg(test)]
mod tests;
