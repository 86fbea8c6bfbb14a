//! Write operations in two steps.
//!
//! 1. [`check`] runs on the caller's task: pure validation and the bcrypt hash, so that nothing slow or
//!    CPU-bound reaches the single writer.
//! 2. [`plan`] runs on the writer, inside the batch transaction: it reads what the rules need (membership,
//!    taken tags, an earlier send with the same client id) and decides every value of the write — ids,
//!    timestamp, tag — into a [`Mutation`]. Reading inside the writer's transaction means each write sees
//!    the ones committed before it in the same batch, so no two writes can race past a check.
//!
//! After the mutation is applied, [`outcome`] reads back what the caller gets to see. Posting a message,
//! the write the chat does most, is planned as [`Plan::Post`]: one INSERT whose answer is known without
//! reading it back, which keeps the writer's statements per message at four.

use rand::Rng;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::storage::groups::NewGroup;
use crate::storage::messages::NewMessage;
use crate::storage::users::NewUser;
use crate::storage::{
    ChatId, ClientId, Epoch, GroupId, GroupWithMembers, MessageId, Mutation, Quote, UnixMillis,
    UserId, UserTag, groups, messages, reactions, read_markers, users,
};

use super::error::{Resource, ServiceError};
use super::operation::{ChatRef, Operation, Outcome};
use super::password;
use super::rules;
use super::validate::{Content, Emoji, GroupName, Password, Username};

/// A write whose input is valid; what the writer task receives.
#[derive(Debug, Clone)]
pub(crate) enum WriteCommand {
    Register {
        username: Username,
        password_hash: String,
    },
    SendDirectMessage {
        username: String,
        tag: UserTag,
        content: Content,
        client_id: Option<ClientId>,
        reply_to: Option<MessageId>,
    },
    CreateGroup {
        name: GroupName,
    },
    AddMember {
        group: GroupId,
        username: String,
        tag: UserTag,
    },
    LeaveGroup {
        group: GroupId,
    },
    SendGroupMessage {
        group: GroupId,
        content: Content,
        client_id: Option<ClientId>,
        reply_to: Option<MessageId>,
    },
    DeleteMessage {
        message: MessageId,
    },
    DeleteGroup {
        group: GroupId,
    },
    EditMessage {
        message: MessageId,
        content: Content,
    },
    SetReaction {
        message: MessageId,
        emoji: Emoji,
        on: bool,
    },
    MarkRead {
        chat: ChatRef,
        epoch: Epoch,
    },
    /// A voter configuration, from the data plane (never from a client: no operation maps to it).
    Configure {
        voters: std::collections::BTreeSet<crate::config::NodeId>,
    },
}

/// What the writer will do for one command.
#[derive(Debug)]
pub(super) enum Plan {
    /// Commit this mutation at the next epoch.
    Write(Mutation),
    /// Post this message at the next epoch: a single INSERT (so it needs no savepoint of its own: a
    /// failed statement leaves nothing behind) whose answer is the message itself, from `sender`.
    Post {
        message: NewMessage,
        sender: crate::storage::UserRef,
    },
    /// Nothing to write (a retry, or already so): answer with this.
    Unchanged(Outcome),
}

fn client_id(text: Option<&str>) -> Result<Option<ClientId>, ServiceError> {
    text.map(|text| {
        ClientId::parse(text).ok_or_else(|| {
            ServiceError::invalid(format!(
                "client_id must be 1 to {} printable ASCII characters",
                ClientId::MAX_LEN
            ))
        })
    })
    .transpose()
}

/// Validates a write operation and hashes a new password; no database access.
pub(super) async fn check(
    operation: Operation,
    caller: Option<UserId>,
    bcrypt_cost: u32,
) -> Result<WriteCommand, ServiceError> {
    let signed_in = || caller.map(|_| ()).ok_or(ServiceError::Unauthenticated);
    match operation {
        Operation::Register(request) => {
            let username = Username::parse(&request.username)?;
            let password = Password::parse(&request.password)?;
            let password_hash = password::hash(password, bcrypt_cost).await?;
            Ok(WriteCommand::Register {
                username,
                password_hash,
            })
        }
        Operation::SendDirectMessage(request) => {
            signed_in()?;
            Ok(WriteCommand::SendDirectMessage {
                content: Content::parse(&request.content)?,
                client_id: client_id(request.client_id.as_deref())?,
                username: request.username,
                tag: request.tag,
                reply_to: request.reply_to,
            })
        }
        Operation::CreateGroup(request) => {
            signed_in()?;
            Ok(WriteCommand::CreateGroup {
                name: GroupName::parse(&request.name)?,
            })
        }
        Operation::AddMember(request) => {
            signed_in()?;
            Ok(WriteCommand::AddMember {
                group: request.group,
                username: request.username,
                tag: request.tag,
            })
        }
        Operation::LeaveGroup(request) => {
            signed_in()?;
            Ok(WriteCommand::LeaveGroup {
                group: request.group,
            })
        }
        Operation::SendGroupMessage(request) => {
            signed_in()?;
            Ok(WriteCommand::SendGroupMessage {
                group: request.group,
                content: Content::parse(&request.content)?,
                client_id: client_id(request.client_id.as_deref())?,
                reply_to: request.reply_to,
            })
        }
        Operation::DeleteMessage(request) => {
            signed_in()?;
            Ok(WriteCommand::DeleteMessage {
                message: request.message,
            })
        }
        Operation::DeleteGroup(request) => {
            signed_in()?;
            Ok(WriteCommand::DeleteGroup {
                group: request.group,
            })
        }
        Operation::EditMessage(request) => {
            signed_in()?;
            Ok(WriteCommand::EditMessage {
                message: request.message,
                content: Content::parse(&request.content)?,
            })
        }
        Operation::SetReaction(request) => {
            signed_in()?;
            Ok(WriteCommand::SetReaction {
                message: request.message,
                emoji: Emoji::parse(&request.emoji)?,
                on: request.on,
            })
        }
        Operation::MarkRead(request) => {
            signed_in()?;
            Ok(WriteCommand::MarkRead {
                chat: request.chat,
                epoch: request.epoch,
            })
        }
        Operation::LookupCredentials(_)
        | Operation::GetUser(_)
        | Operation::GetMe
        | Operation::ListDirectMessages(_)
        | Operation::GetGroup(_)
        | Operation::ListGroups
        | Operation::ListGroupMessages(_)
        | Operation::ListChats
        | Operation::Search(_)
        | Operation::ListContacts => Err(ServiceError::Internal(format!(
            "{} is a read and was sent to the write path",
            operation.name()
        ))),
        Operation::Ephemeral(_) => Err(ServiceError::Internal(
            "an ephemeral group's command reached the log's write path".into(),
        )),
    }
}

/// A v4 uuid from the writer's RNG, so a seeded writer is reproducible.
fn random_uuid(rng: &mut impl Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// A group message planned from the recent window instead of the database: the writer's path for
/// the common send (no reply), taken only while the window describes the batch's database (the
/// caller checks that, and whether the `client_id` was used before). `None` when the window cannot
/// decide (another command, a reply, a group it does not hold, a caller who is not a member or whose
/// name it lacks): [`plan`] then reads the database and answers with the exact error.
pub(super) fn plan_post_from_window(
    command: &WriteCommand,
    caller: Option<UserId>,
    window: &crate::storage::recent::RecentWindow,
    now: UnixMillis,
    rng: &mut impl Rng,
) -> Option<(NewMessage, crate::storage::UserRef)> {
    let WriteCommand::SendGroupMessage {
        group,
        content,
        client_id,
        reply_to: None,
    } = command
    else {
        return None;
    };
    let poster = window.poster(*group, caller?)?;
    let sender = poster.user.filter(|_| poster.member)?;
    Some((
        NewMessage {
            id: MessageId(random_uuid(rng)),
            chat: ChatId::Group(*group),
            sender: sender.id,
            receiver: None,
            content: content.as_str().to_owned(),
            created_at: now,
            client_id: client_id.clone(),
            reply_to: None,
        },
        sender,
    ))
}

/// The `client_id` of a send, with its sender, for the writer's batch check of retried sends.
pub(super) fn send_key(
    command: &WriteCommand,
    caller: Option<UserId>,
) -> Option<(UserId, &ClientId)> {
    match command {
        WriteCommand::SendGroupMessage { client_id, .. }
        | WriteCommand::SendDirectMessage { client_id, .. } => Some((caller?, client_id.as_ref()?)),
        _ => None,
    }
}

/// A free tag for `username`, uniformly among the free ones; 409 when all 10,000 are taken.
async fn free_tag(
    connection: &mut SqliteConnection,
    username: &str,
    rng: &mut impl Rng,
) -> Result<UserTag, ServiceError> {
    let mut taken = vec![false; usize::from(UserTag::COUNT)];
    for tag in users::taken_tags(connection, username).await? {
        taken[usize::from(tag.number())] = true;
    }
    let free = taken.iter().filter(|taken| !**taken).count();
    if free == 0 {
        return Err(ServiceError::Conflict(format!(
            "every tag of the username {username:?} is taken; choose another username"
        )));
    }
    let chosen = rng.random_range(0..free);
    let number = taken
        .iter()
        .enumerate()
        .filter(|(_, taken)| !**taken)
        .nth(chosen)
        .map(|(number, _)| number)
        .and_then(|number| u16::try_from(number).ok())
        .and_then(UserTag::new);
    number.ok_or_else(|| ServiceError::Internal("tag choice out of range".into()))
}

/// The earlier message `sender` sent with `client_id`, if it was to the same chat; a reused key for
/// another chat is a client bug worth reporting.
async fn earlier_send(
    connection: &mut SqliteConnection,
    sender: UserId,
    client_id: Option<&ClientId>,
    chat: ChatId,
) -> Result<Option<Plan>, ServiceError> {
    let Some(client_id) = client_id else {
        return Ok(None);
    };
    match messages::find_by_client_id(connection, sender, client_id).await? {
        Some((message, _deleted)) if message.chat == chat => {
            Ok(Some(Plan::Unchanged(Outcome::Message(message))))
        }
        Some(_) => Err(ServiceError::Conflict(format!(
            "client_id {client_id} was already used for a message to another chat"
        ))),
        None => Ok(None),
    }
}

/// The quote of the message a reply answers: it must be live and in the reply's chat (400 otherwise:
/// the request itself is wrong, whatever else exists).
async fn quote(
    connection: &mut SqliteConnection,
    reply_to: Option<MessageId>,
    me: UserId,
    chat: ChatId,
) -> Result<Option<Quote>, ServiceError> {
    let Some(id) = reply_to else {
        return Ok(None);
    };
    let refused = || ServiceError::invalid("reply_to must name a live message of the same chat");
    let quoted = match rules::readable_message(connection, id, me).await {
        Ok(quoted) => quoted,
        Err(ServiceError::NotFound(_)) => return Err(refused()),
        Err(error) => return Err(error),
    };
    if quoted.chat != chat {
        return Err(refused());
    }
    Ok(Some(Quote {
        id: quoted.id,
        sender: quoted.sender,
        excerpt: Quote::excerpt(&quoted.content),
    }))
}

/// `message`, read in this transaction, with its reactions as `viewer` sees them.
async fn with_reactions(
    connection: &mut SqliteConnection,
    message: crate::storage::Message,
    viewer: UserId,
) -> Result<Outcome, ServiceError> {
    let mut found = [message];
    reactions::attach(connection, &mut found, Some(viewer)).await?;
    let [message] = found;
    Ok(Outcome::Message(message))
}

/// Decides one write inside the writer's transaction; see the module documentation.
pub(super) async fn plan(
    connection: &mut SqliteConnection,
    caller: Option<UserId>,
    command: &WriteCommand,
    now: UnixMillis,
    rng: &mut impl Rng,
) -> Result<Plan, ServiceError> {
    match command {
        WriteCommand::Register {
            username,
            password_hash,
        } => {
            let tag = free_tag(connection, username.as_str(), rng).await?;
            Ok(Plan::Write(Mutation::RegisterUser(NewUser {
                id: UserId(random_uuid(rng)),
                username: username.as_str().to_owned(),
                tag,
                password_hash: password_hash.clone(),
                created_at: now,
            })))
        }
        WriteCommand::SendDirectMessage {
            username,
            tag,
            content,
            client_id,
            reply_to,
        } => {
            let me = rules::caller(connection, caller).await?;
            let peer = rules::user_named(connection, username, *tag).await?;
            let chat = ChatId::direct(me.id, peer.id);
            if let Some(plan) = earlier_send(connection, me.id, client_id.as_ref(), chat).await? {
                return Ok(plan);
            }
            let reply_to = quote(connection, *reply_to, me.id, chat).await?;
            Ok(Plan::Post {
                message: NewMessage {
                    id: MessageId(random_uuid(rng)),
                    chat,
                    sender: me.id,
                    receiver: Some(peer.id),
                    content: content.as_str().to_owned(),
                    created_at: now,
                    client_id: client_id.clone(),
                    reply_to,
                },
                sender: me.to_ref(),
            })
        }
        WriteCommand::CreateGroup { name } => {
            let me = rules::caller(connection, caller).await?;
            Ok(Plan::Write(Mutation::CreateGroup(NewGroup {
                id: GroupId(random_uuid(rng)),
                name: name.as_str().to_owned(),
                creator: me.id,
                created_at: now,
            })))
        }
        WriteCommand::AddMember {
            group,
            username,
            tag,
        } => {
            let me = rules::caller(connection, caller).await?;
            let group = rules::group_of_member(connection, *group, me.id).await?;
            let user = rules::user_named(connection, username, *tag).await?;
            if groups::is_member(connection, group.id, user.id).await? {
                // Adding a member twice leaves the group as asked: a retried add succeeds.
                let members = groups::members(connection, group.id).await?;
                return Ok(Plan::Unchanged(Outcome::Group(GroupWithMembers {
                    group,
                    members,
                })));
            }
            Ok(Plan::Write(Mutation::AddMember {
                group: group.id,
                user: user.id,
                joined_at: now,
            }))
        }
        WriteCommand::LeaveGroup { group } => {
            let me = rules::caller(connection, caller).await?;
            let group = rules::group_of_member(connection, *group, me.id).await?;
            Ok(Plan::Write(Mutation::RemoveMember {
                group: group.id,
                user: me.id,
            }))
        }
        WriteCommand::SendGroupMessage {
            group,
            content,
            client_id,
            reply_to,
        } => {
            let me = rules::caller(connection, caller).await?;
            let membership = rules::membership(connection, *group, me.id).await?;
            let chat = ChatId::Group(*group);
            // A retry is recognised before the membership check, so it gets the first attempt's answer.
            if let Some(plan) = earlier_send(connection, me.id, client_id.as_ref(), chat).await? {
                return Ok(plan);
            }
            membership.require()?;
            let reply_to = quote(connection, *reply_to, me.id, chat).await?;
            Ok(Plan::Post {
                message: NewMessage {
                    id: MessageId(random_uuid(rng)),
                    chat,
                    sender: me.id,
                    receiver: None,
                    content: content.as_str().to_owned(),
                    created_at: now,
                    client_id: client_id.clone(),
                    reply_to,
                },
                sender: me.to_ref(),
            })
        }
        WriteCommand::DeleteMessage { message } => {
            let me = rules::caller(connection, caller).await?;
            let (message, deleted) = messages::find_any(connection, *message)
                .await?
                .ok_or(ServiceError::NotFound(Resource::Message))?;
            if deleted {
                return Err(ServiceError::NotFound(Resource::Message));
            }
            // A deleted group's messages are gone for everyone, its senders included.
            if let ChatId::Group(group) = message.chat {
                if groups::find(connection, group).await?.is_none() {
                    return Err(ServiceError::NotFound(Resource::Message));
                }
            }
            if message.sender.id != me.id {
                return Err(ServiceError::forbidden(
                    "only its sender can delete a message",
                ));
            }
            Ok(Plan::Write(Mutation::DeleteMessage {
                message: message.id,
                deleted_at: now,
            }))
        }
        WriteCommand::DeleteGroup { group } => {
            let me = rules::caller(connection, caller).await?;
            let group = rules::group(connection, *group).await?;
            if group.creator != me.id {
                return Err(ServiceError::forbidden(
                    "only its creator can delete a group",
                ));
            }
            Ok(Plan::Write(Mutation::DeleteGroup {
                group: group.id,
                deleted_at: now,
            }))
        }
        WriteCommand::EditMessage { message, content } => {
            let me = rules::caller(connection, caller).await?;
            let message = rules::readable_message(connection, *message, me.id).await?;
            if message.sender.id != me.id {
                return Err(ServiceError::forbidden(
                    "only its sender can edit a message",
                ));
            }
            if message.content == content.as_str() {
                return Ok(Plan::Unchanged(
                    with_reactions(connection, message, me.id).await?,
                ));
            }
            Ok(Plan::Write(Mutation::EditMessage {
                message: message.id,
                chat: message.chat,
                content: content.as_str().to_owned(),
                edited_at: now,
            }))
        }
        WriteCommand::SetReaction { message, emoji, on } => {
            let me = rules::caller(connection, caller).await?;
            let message = rules::readable_message(connection, *message, me.id).await?;
            let (mine, count) =
                reactions::state(connection, message.id, emoji.as_str(), me.id).await?;
            if mine == *on {
                // Already so: a repeated PUT or DELETE changes nothing.
                return Ok(Plan::Unchanged(
                    with_reactions(connection, message, me.id).await?,
                ));
            }
            Ok(Plan::Write(Mutation::SetReaction {
                message: message.id,
                chat: message.chat,
                user: me.id,
                emoji: emoji.as_str().to_owned(),
                on: *on,
                count: if *on {
                    count.saturating_add(1)
                } else {
                    count.saturating_sub(1)
                },
                at: now,
            }))
        }
        WriteCommand::MarkRead { chat, epoch } => {
            let me = rules::caller(connection, caller).await?;
            let chat = rules::chat(connection, chat, me.id).await?;
            let marked = read_markers::get(connection, me.id, chat).await?;
            // A marker past the chat's last message would count messages not yet written as read.
            let last = messages::last_epoch(connection, chat)
                .await?
                .unwrap_or(Epoch(0));
            let wanted = (*epoch).min(last);
            if wanted <= marked {
                return Ok(Plan::Unchanged(Outcome::ReadMarker {
                    chat,
                    read_epoch: marked,
                }));
            }
            Ok(Plan::Write(Mutation::MarkRead {
                user: me.id,
                chat,
                read_epoch: wanted,
            }))
        }
        WriteCommand::Configure { voters } => Ok(Plan::Write(Mutation::Configure {
            voters: voters.clone(),
        })),
    }
}

/// What the caller of an applied mutation gets back, read from the state the mutation produced.
pub(super) async fn outcome(
    connection: &mut SqliteConnection,
    mutation: &Mutation,
) -> Result<Outcome, ServiceError> {
    match mutation {
        Mutation::RegisterUser(user) => Ok(Outcome::User(user.user())),
        Mutation::CreateGroup(NewGroup { id: group, .. }) | Mutation::AddMember { group, .. } => {
            let group = rules::group(connection, *group).await?;
            let members = groups::members(connection, group.id).await?;
            Ok(Outcome::Group(GroupWithMembers { group, members }))
        }
        Mutation::PostMessage(message) => messages::find_any(connection, message.id)
            .await?
            .map(|(message, _)| Outcome::Message(message))
            .ok_or_else(|| ServiceError::Internal("a message just written is missing".into())),
        Mutation::EditMessage { message, .. } | Mutation::SetReaction { message, .. } => {
            let (found, _) = messages::find_any(connection, *message)
                .await?
                .ok_or(ServiceError::NotFound(Resource::Message))?;
            // An edit is seen by its sender, a reaction by the user who made it.
            let viewer = match mutation {
                Mutation::SetReaction { user, .. } => *user,
                _ => found.sender.id,
            };
            with_reactions(connection, found, viewer).await
        }
        Mutation::MarkRead {
            chat, read_epoch, ..
        } => Ok(Outcome::ReadMarker {
            chat: *chat,
            read_epoch: *read_epoch,
        }),
        Mutation::RemoveMember { .. }
        | Mutation::DeleteMessage { .. }
        | Mutation::DeleteGroup { .. }
        | Mutation::Configure { .. } => Ok(Outcome::Done),
    }
}
