//! The chat's business operations as data: one [`Operation`] enum with a typed request per variant, and
//! one [`Outcome`] enum of typed answers (DESIGN §4). The data plane marshals both with serde; the
//! service executes them with one `match`.
//!
//! Requests carry text exactly as the client sent it (the service validates it, so every entry point gets
//! the same rules) and ids already parsed by whoever read them from a path.

use serde::{Deserialize, Serialize};

use crate::storage::{
    ChatId, ChatSummary, Epoch, Group, GroupId, GroupWithMembers, Message, MessageId, User, UserId,
    UserTag,
};

/// `POST /api/register`: a new user; the service picks the tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A user's password hash, for the web layer to verify a login against (on a blocking thread).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupCredentials {
    pub username: String,
    pub tag: UserTag,
}

/// `GET /api/users/{username}/{tag}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetUser {
    pub username: String,
    pub tag: UserTag,
}

/// `POST /api/users/{username}/{tag}/messages`. Writing to oneself is allowed (a chat of notes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendDirectMessage {
    pub username: String,
    pub tag: UserTag,
    pub content: String,
    /// Optional idempotency key: a retry with the same key returns the first message.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The message of the same chat it answers.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
}

/// `GET /api/users/{username}/{tag}/messages?before=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDirectMessages {
    pub username: String,
    pub tag: UserTag,
    #[serde(default)]
    pub before: Option<Epoch>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `POST /api/groups`: the caller creates a group and becomes its first member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroup {
    pub name: String,
}

/// `GET /api/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetGroup {
    pub group: GroupId,
}

/// `POST /api/groups/{id}/members`: a member adds another user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMember {
    pub group: GroupId,
    pub username: String,
    pub tag: UserTag,
}

/// `DELETE /api/groups/{id}/members/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroup {
    pub group: GroupId,
}

/// `POST /api/groups/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendGroupMessage {
    pub group: GroupId,
    pub content: String,
    /// Optional idempotency key: a retry with the same key returns the first message.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The message of the same chat it answers.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
}

/// `GET /api/groups/{id}/messages?before=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListGroupMessages {
    pub group: GroupId,
    #[serde(default)]
    pub before: Option<Epoch>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `DELETE /api/messages/{id}`: only its sender may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMessage {
    pub message: MessageId,
}

/// `DELETE /api/groups/{id}`: only its creator may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteGroup {
    pub group: GroupId,
}

/// `PATCH /api/messages/{id}`: only its sender may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditMessage {
    pub message: MessageId,
    pub content: String,
}

/// `PUT` (`on`) and `DELETE /api/messages/{id}/reactions/{emoji}`: by anyone who can read the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetReaction {
    pub message: MessageId,
    pub emoji: String,
    pub on: bool,
}

/// A conversation named the way its URL names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRef {
    Group(GroupId),
    /// The direct chat with this user.
    User {
        username: String,
        tag: UserTag,
    },
}

/// `PUT /api/groups/{id}/read` and `PUT /api/users/{username}/{tag}/read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    pub chat: ChatRef,
    pub epoch: Epoch,
}

/// `GET /api/search?q=&before=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    pub query: String,
    #[serde(default)]
    pub before: Option<Epoch>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Every business operation of the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    Register(Register),
    LookupCredentials(LookupCredentials),
    GetUser(GetUser),
    /// The caller's own user (`GET /api/me`).
    GetMe,
    SendDirectMessage(SendDirectMessage),
    ListDirectMessages(ListDirectMessages),
    CreateGroup(CreateGroup),
    GetGroup(GetGroup),
    AddMember(AddMember),
    LeaveGroup(LeaveGroup),
    /// The caller's groups (`GET /api/groups`).
    ListGroups,
    SendGroupMessage(SendGroupMessage),
    ListGroupMessages(ListGroupMessages),
    DeleteMessage(DeleteMessage),
    DeleteGroup(DeleteGroup),
    EditMessage(EditMessage),
    SetReaction(SetReaction),
    MarkRead(MarkRead),
    /// The caller's conversations (`GET /api/chats`).
    ListChats,
    Search(Search),
    /// Everyone who shares a chat with the caller (whose presence the caller's streams show).
    ListContacts,
}

impl Operation {
    /// True for operations that change data: they go to the writer, and replicas refuse them.
    pub fn is_write(&self) -> bool {
        match self {
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
            | Operation::MarkRead(_) => true,
            Operation::LookupCredentials(_)
            | Operation::GetUser(_)
            | Operation::GetMe
            | Operation::ListDirectMessages(_)
            | Operation::GetGroup(_)
            | Operation::ListGroups
            | Operation::ListGroupMessages(_)
            | Operation::ListChats
            | Operation::Search(_)
            | Operation::ListContacts => false,
        }
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Register(_) => "register",
            Operation::LookupCredentials(_) => "lookup_credentials",
            Operation::GetUser(_) => "get_user",
            Operation::GetMe => "get_me",
            Operation::SendDirectMessage(_) => "send_direct_message",
            Operation::ListDirectMessages(_) => "list_direct_messages",
            Operation::CreateGroup(_) => "create_group",
            Operation::GetGroup(_) => "get_group",
            Operation::AddMember(_) => "add_member",
            Operation::LeaveGroup(_) => "leave_group",
            Operation::ListGroups => "list_groups",
            Operation::SendGroupMessage(_) => "send_group_message",
            Operation::ListGroupMessages(_) => "list_group_messages",
            Operation::DeleteMessage(_) => "delete_message",
            Operation::DeleteGroup(_) => "delete_group",
            Operation::EditMessage(_) => "edit_message",
            Operation::SetReaction(_) => "set_reaction",
            Operation::MarkRead(_) => "mark_read",
            Operation::ListChats => "list_chats",
            Operation::Search(_) => "search",
            Operation::ListContacts => "list_contacts",
        }
    }
}

/// A user with their bcrypt hash: the answer to [`LookupCredentials`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// What a successful operation returns.
///
/// | operation | outcome |
/// | --- | --- |
/// | register, get user, get me | `User` |
/// | lookup credentials | `Credentials` |
/// | send direct / group message | `Message` (the first one again on a retry with the same client id) |
/// | edit message, set reaction | `Message` as it is now |
/// | list direct / group messages | `Messages`, oldest first |
/// | search | `Messages`, newest first |
/// | list chats | `Chats`, newest activity first |
/// | mark read | `ReadMarker` where it is now |
/// | create group, get group, add member | `Group` with its members |
/// | list groups | `Groups` |
/// | leave group, delete message, delete group | `Done` |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
// One outcome is built per request and moved to its caller once: boxing the message would cost an
// allocation on the most common answer to save stack space nobody keeps.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    User(User),
    Credentials(Credentials),
    Message(Message),
    Messages(Vec<Message>),
    Group(GroupWithMembers),
    Groups(Vec<Group>),
    Chats(Vec<ChatSummary>),
    Contacts(Vec<UserId>),
    ReadMarker { chat: ChatId, read_epoch: Epoch },
    Done,
}
