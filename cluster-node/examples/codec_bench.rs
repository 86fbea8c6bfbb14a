//! Data-plane wire format: serde_json (today's codec) against postcard, a compact binary serde format.
//!
//! Run it in release: `cargo run --release -p cluster-node --example codec_bench`.
//!
//! It first checks which of the real message types round-trip through postcard (they do not: postcard,
//! like every non-self-describing format, cannot deserialize internally tagged enums, adjacently tagged
//! ones whose tag is an identifier, or `#[serde(flatten)]`). It then measures, for the hot messages
//! (a commit of 1, 16 and 256 group-message posts with 60-character contents, the request and the
//! response of one group-message post, an acknowledgement):
//!
//! - `json`: the node's own `encode`/`decode` on the real types, as on the wire today;
//! - `json (mirror)`: serde_json on mirror types (the same fields, externally tagged enums, no flatten),
//!   to separate the cost of the format from the cost of the enum representation;
//! - `postcard (mirror)`: postcard on the same mirror types, which it can round-trip.
//!
//! Every figure is the median, over several repetitions, of the mean time per message of a repetition;
//! encoding includes allocating the output buffer, decoding includes building (and dropping) the owned
//! message, as in the node.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cluster_node::config::NodeId;
use cluster_node::data::message::{DataMessage, Envelope, RequestId, decode, encode};
use cluster_node::presence::TypingNotice;
use cluster_node::presence::relay::SetUpdate;
use cluster_node::service::{
    AddMember, CreateGroup, Credentials, DeleteGroup, DeleteMessage, EditMessage, GetGroup,
    GetUser, LeaveGroup, ListDirectMessages, ListGroupMessages, LookupCredentials, MarkRead,
    Operation, Outcome, Register, Resource, Search, SendDirectMessage, SendGroupMessage,
    ServiceError, ServiceRequest, ServiceResponse, SetReaction,
};
use cluster_node::storage::groups::NewGroup;
use cluster_node::storage::messages::NewMessage;
use cluster_node::storage::users::NewUser;
use cluster_node::storage::{
    ChatId, ChatKind, ClientId, Epoch, Group, GroupId, GroupWithMembers, LogEntry, Message,
    MessageId, Mutation, Term, UnixMillis, User, UserId, UserRef, UserTag,
};

/// Repetitions per measurement; the median is reported.
const REPETITIONS: usize = 9;
/// Wall time one repetition aims at.
const REPETITION_TARGET: Duration = Duration::from_millis(40);
const TERM: u64 = 7;

// ---------------------------------------------------------------------------------------------------
// Mirror types: the fields of the real ones, with externally tagged enums and no flatten. Leaf types
// (ids, tags, chat ids, the request/record structs) are the real ones: they round-trip through postcard.
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MirrorMutation {
    RegisterUser(NewUser),
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
    Configure {
        voters: BTreeSet<NodeId>,
    },
    EditMessage {
        message: MessageId,
        chat: ChatId,
        content: String,
        edited_at: UnixMillis,
    },
    SetReaction {
        message: MessageId,
        chat: ChatId,
        user: UserId,
        emoji: String,
        on: bool,
        count: u32,
        at: UnixMillis,
    },
    MarkRead {
        user: UserId,
        chat: ChatId,
        read_epoch: Epoch,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorLogEntry {
    term: Term,
    epoch: Epoch,
    mutation: MirrorMutation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MirrorOperation {
    Register(Register),
    LookupCredentials(LookupCredentials),
    GetUser(GetUser),
    GetMe,
    SendDirectMessage(SendDirectMessage),
    ListDirectMessages(ListDirectMessages),
    CreateGroup(CreateGroup),
    GetGroup(GetGroup),
    AddMember(AddMember),
    LeaveGroup(LeaveGroup),
    ListGroups,
    SendGroupMessage(SendGroupMessage),
    ListGroupMessages(ListGroupMessages),
    DeleteMessage(DeleteMessage),
    DeleteGroup(DeleteGroup),
    EditMessage(EditMessage),
    SetReaction(SetReaction),
    MarkRead(MarkRead),
    ListChats,
    Search(Search),
    ListContacts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorServiceRequest {
    caller: Option<UserId>,
    client_epoch: Epoch,
    operation: MirrorOperation,
}

/// [`GroupWithMembers`] without `#[serde(flatten)]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorGroupWithMembers {
    group: Group,
    members: Vec<User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // as `Outcome`
enum MirrorOutcome {
    User(User),
    Credentials(Credentials),
    Message(Message),
    Messages(Vec<Message>),
    Group(MirrorGroupWithMembers),
    Groups(Vec<Group>),
    Chats(Vec<MirrorChatSummary>),
    Contacts(Vec<UserId>),
    ReadMarker { chat: ChatId, read_epoch: Epoch },
    Done,
}

/// [`ChatKind`] externally tagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MirrorChatKind {
    Group { id: GroupId, name: String },
    Direct { user: UserRef },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorChatSummary {
    chat: ChatId,
    kind: MirrorChatKind,
    last_message: Option<Message>,
    unread: u64,
    read_epoch: Epoch,
    activity_epoch: Epoch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorServiceResponse {
    epoch: Epoch,
    outcome: MirrorOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MirrorServiceError {
    Invalid(String),
    Unauthenticated,
    Forbidden(String),
    NotFound(Resource),
    Conflict(String),
    Unavailable { retry_after: Duration },
    Timeout,
    ReadOnly,
    Stale { wanted: u64, have: u64 },
    Internal(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MirrorDataMessage {
    Request {
        id: RequestId,
        request: MirrorServiceRequest,
    },
    Response {
        id: RequestId,
        result: Result<MirrorServiceResponse, MirrorServiceError>,
    },
    Commit {
        entries: Vec<MirrorLogEntry>,
    },
    Entries {
        to: NodeId,
        entries: Vec<MirrorLogEntry>,
    },
    Diverged {
        to: NodeId,
        writer_epoch: Epoch,
    },
    Ack {
        node: NodeId,
        epoch: Epoch,
        durable: bool,
    },
    CatchUp {
        origin: NodeId,
        from: Epoch,
        last_term: Term,
        held: (Term, Epoch),
    },
    Position {
        term: Term,
        epoch: Epoch,
        accepting: bool,
    },
    Claim {
        term: Term,
    },
    Summary {
        nodes: usize,
        best_term: Term,
        best_epoch: Epoch,
        whole: Vec<NodeId>,
        promises: Vec<(NodeId, Term)>,
    },
    Presence {
        users: SetUpdate<UserId>,
    },
    Online {
        users: SetUpdate<UserId>,
    },
    PresenceResend,
    Typing {
        notice: TypingNotice,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MirrorEnvelope {
    term: u64,
    body: MirrorDataMessage,
}

/// What `encode` serialises: the envelope borrowing its body.
#[derive(Serialize)]
struct MirrorEnvelopeRef<'a> {
    term: u64,
    body: &'a MirrorDataMessage,
}

fn mirror_mutation(mutation: &Mutation) -> MirrorMutation {
    match mutation.clone() {
        Mutation::RegisterUser(user) => MirrorMutation::RegisterUser(user),
        Mutation::CreateGroup(group) => MirrorMutation::CreateGroup(group),
        Mutation::AddMember {
            group,
            user,
            joined_at,
        } => MirrorMutation::AddMember {
            group,
            user,
            joined_at,
        },
        Mutation::RemoveMember { group, user } => MirrorMutation::RemoveMember { group, user },
        Mutation::PostMessage(message) => MirrorMutation::PostMessage(message),
        Mutation::DeleteMessage {
            message,
            deleted_at,
        } => MirrorMutation::DeleteMessage {
            message,
            deleted_at,
        },
        Mutation::DeleteGroup { group, deleted_at } => {
            MirrorMutation::DeleteGroup { group, deleted_at }
        }
        Mutation::Configure { voters } => MirrorMutation::Configure { voters },
        Mutation::EditMessage {
            message,
            chat,
            content,
            edited_at,
        } => MirrorMutation::EditMessage {
            message,
            chat,
            content,
            edited_at,
        },
        Mutation::SetReaction {
            message,
            chat,
            user,
            emoji,
            on,
            count,
            at,
        } => MirrorMutation::SetReaction {
            message,
            chat,
            user,
            emoji,
            on,
            count,
            at,
        },
        Mutation::MarkRead {
            user,
            chat,
            read_epoch,
        } => MirrorMutation::MarkRead {
            user,
            chat,
            read_epoch,
        },
    }
}

fn mirror_entries(entries: &[LogEntry]) -> Vec<MirrorLogEntry> {
    entries
        .iter()
        .map(|entry| MirrorLogEntry {
            term: entry.term,
            epoch: entry.epoch,
            mutation: mirror_mutation(&entry.mutation),
        })
        .collect()
}

fn mirror_operation(operation: &Operation) -> MirrorOperation {
    match operation.clone() {
        Operation::Register(o) => MirrorOperation::Register(o),
        Operation::LookupCredentials(o) => MirrorOperation::LookupCredentials(o),
        Operation::GetUser(o) => MirrorOperation::GetUser(o),
        Operation::GetMe => MirrorOperation::GetMe,
        Operation::SendDirectMessage(o) => MirrorOperation::SendDirectMessage(o),
        Operation::ListDirectMessages(o) => MirrorOperation::ListDirectMessages(o),
        Operation::CreateGroup(o) => MirrorOperation::CreateGroup(o),
        Operation::GetGroup(o) => MirrorOperation::GetGroup(o),
        Operation::AddMember(o) => MirrorOperation::AddMember(o),
        Operation::LeaveGroup(o) => MirrorOperation::LeaveGroup(o),
        Operation::ListGroups => MirrorOperation::ListGroups,
        Operation::SendGroupMessage(o) => MirrorOperation::SendGroupMessage(o),
        Operation::ListGroupMessages(o) => MirrorOperation::ListGroupMessages(o),
        Operation::DeleteMessage(o) => MirrorOperation::DeleteMessage(o),
        Operation::DeleteGroup(o) => MirrorOperation::DeleteGroup(o),
        Operation::EditMessage(o) => MirrorOperation::EditMessage(o),
        Operation::SetReaction(o) => MirrorOperation::SetReaction(o),
        Operation::MarkRead(o) => MirrorOperation::MarkRead(o),
        Operation::ListChats => MirrorOperation::ListChats,
        Operation::Search(o) => MirrorOperation::Search(o),
        Operation::ListContacts => MirrorOperation::ListContacts,
    }
}

fn mirror_outcome(outcome: &Outcome) -> MirrorOutcome {
    match outcome.clone() {
        Outcome::User(user) => MirrorOutcome::User(user),
        Outcome::Credentials(credentials) => MirrorOutcome::Credentials(credentials),
        Outcome::Message(message) => MirrorOutcome::Message(message),
        Outcome::Messages(messages) => MirrorOutcome::Messages(messages),
        Outcome::Group(GroupWithMembers { group, members }) => {
            MirrorOutcome::Group(MirrorGroupWithMembers { group, members })
        }
        Outcome::Groups(groups) => MirrorOutcome::Groups(groups),
        Outcome::Chats(chats) => MirrorOutcome::Chats(
            chats
                .into_iter()
                .map(|summary| MirrorChatSummary {
                    chat: summary.chat,
                    kind: match summary.kind {
                        ChatKind::Group { id, name } => MirrorChatKind::Group { id, name },
                        ChatKind::Direct { user } => MirrorChatKind::Direct { user },
                    },
                    last_message: summary.last_message,
                    unread: summary.unread,
                    read_epoch: summary.read_epoch,
                    activity_epoch: summary.activity_epoch,
                })
                .collect(),
        ),
        Outcome::ReadMarker { chat, read_epoch } => MirrorOutcome::ReadMarker { chat, read_epoch },
        Outcome::Contacts(users) => MirrorOutcome::Contacts(users),
        Outcome::Done => MirrorOutcome::Done,
    }
}

fn mirror_error(error: &ServiceError) -> MirrorServiceError {
    match error.clone() {
        ServiceError::Invalid(text) => MirrorServiceError::Invalid(text),
        ServiceError::Unauthenticated => MirrorServiceError::Unauthenticated,
        ServiceError::Forbidden(text) => MirrorServiceError::Forbidden(text),
        ServiceError::NotFound(resource) => MirrorServiceError::NotFound(resource),
        ServiceError::Conflict(text) => MirrorServiceError::Conflict(text),
        ServiceError::Unavailable { retry_after } => {
            MirrorServiceError::Unavailable { retry_after }
        }
        ServiceError::Timeout => MirrorServiceError::Timeout,
        ServiceError::ReadOnly => MirrorServiceError::ReadOnly,
        ServiceError::Stale { wanted, have } => MirrorServiceError::Stale { wanted, have },
        ServiceError::Internal(text) => MirrorServiceError::Internal(text),
    }
}

fn mirror(message: &DataMessage) -> MirrorDataMessage {
    match message {
        DataMessage::Request { id, request } => MirrorDataMessage::Request {
            id: *id,
            request: MirrorServiceRequest {
                caller: request.caller,
                client_epoch: request.client_epoch,
                operation: mirror_operation(&request.operation),
            },
        },
        DataMessage::Response { id, result } => MirrorDataMessage::Response {
            id: *id,
            result: match result {
                Ok(response) => Ok(MirrorServiceResponse {
                    epoch: response.epoch,
                    outcome: mirror_outcome(&response.outcome),
                }),
                Err(error) => Err(mirror_error(error)),
            },
        },
        DataMessage::Commit { entries } => MirrorDataMessage::Commit {
            entries: mirror_entries(entries),
        },
        DataMessage::Entries { to, entries } => MirrorDataMessage::Entries {
            to: *to,
            entries: mirror_entries(entries),
        },
        DataMessage::Diverged { to, writer_epoch } => MirrorDataMessage::Diverged {
            to: *to,
            writer_epoch: *writer_epoch,
        },
        DataMessage::Ack {
            node,
            epoch,
            durable,
        } => MirrorDataMessage::Ack {
            node: *node,
            epoch: *epoch,
            durable: *durable,
        },
        DataMessage::CatchUp {
            origin,
            from,
            last_term,
            held,
        } => MirrorDataMessage::CatchUp {
            origin: *origin,
            from: *from,
            last_term: *last_term,
            held: *held,
        },
        DataMessage::Position {
            term,
            epoch,
            accepting,
        } => MirrorDataMessage::Position {
            term: *term,
            epoch: *epoch,
            accepting: *accepting,
        },
        DataMessage::Claim { term } => MirrorDataMessage::Claim { term: *term },
        DataMessage::Summary {
            nodes,
            best_term,
            best_epoch,
            whole,
            promises,
        } => MirrorDataMessage::Summary {
            nodes: *nodes,
            best_term: *best_term,
            best_epoch: *best_epoch,
            whole: whole.clone(),
            promises: promises.clone(),
        },
        DataMessage::Presence { users } => MirrorDataMessage::Presence {
            users: users.clone(),
        },
        DataMessage::Online { users } => MirrorDataMessage::Online {
            users: users.clone(),
        },
        DataMessage::PresenceResend => MirrorDataMessage::PresenceResend,
        DataMessage::Typing { notice } => MirrorDataMessage::Typing {
            notice: notice.clone(),
        },
    }
}

// ---------------------------------------------------------------------------------------------------
// Realistic messages.
// ---------------------------------------------------------------------------------------------------

/// Deterministic ids, so runs are comparable.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5f0e_3c1a_9b7d_4e2f_8a6c_1d3b_0000_0000 | n)
}

/// A 60-character message text, like the benchmark's (`cb-<run>-<client>-<seq> ` and padding).
fn content(sequence: usize) -> String {
    let mut text = format!("cb-9f3a1c-3-{sequence} ");
    while text.len() < 60 {
        text.push('x');
    }
    text
}

fn client_id(sequence: usize) -> String {
    format!("cb-9f3a1c-3-{sequence}")
}

const BASE_MILLIS: i64 = 1_790_000_000_000;
const BASE_EPOCH: u64 = 1_234_567;

fn post(sequence: usize) -> NewMessage {
    NewMessage {
        id: MessageId(id(0x1000 + sequence as u128)),
        chat: ChatId::Group(GroupId(id(1))),
        sender: UserId(id(2 + (sequence % 8) as u128)),
        receiver: None,
        content: content(sequence),
        created_at: UnixMillis(BASE_MILLIS + sequence as i64),
        client_id: ClientId::parse(&client_id(sequence)),
        reply_to: None,
    }
}

fn commit(count: usize) -> DataMessage {
    DataMessage::Commit {
        entries: (0..count)
            .map(|sequence| LogEntry {
                term: Term(TERM),
                epoch: Epoch(BASE_EPOCH + sequence as u64),
                mutation: Mutation::PostMessage(post(sequence)),
            })
            .collect(),
    }
}

fn request_id() -> RequestId {
    RequestId {
        origin: NodeId(3),
        seq: 987_654,
    }
}

fn group_post_request() -> DataMessage {
    DataMessage::Request {
        id: request_id(),
        request: ServiceRequest {
            caller: Some(UserId(id(2))),
            client_epoch: Epoch(BASE_EPOCH - 5),
            operation: Operation::SendGroupMessage(SendGroupMessage {
                group: GroupId(id(1)),
                content: content(0),
                client_id: Some(client_id(0)),
                reply_to: None,
            }),
        },
    }
}

fn posted_message() -> Message {
    let new = post(0);
    new.message(
        UserRef {
            id: new.sender,
            username: "bench-user-3".into(),
            tag: UserTag::new(42).expect("a tag below 10,000"),
        },
        Epoch(BASE_EPOCH),
    )
}

fn group_post_response() -> DataMessage {
    DataMessage::Response {
        id: request_id(),
        result: Ok(ServiceResponse {
            epoch: Epoch(BASE_EPOCH),
            outcome: Outcome::Message(posted_message()),
        }),
    }
}

fn ack() -> DataMessage {
    DataMessage::Ack {
        node: NodeId(5),
        epoch: Epoch(BASE_EPOCH + 15),
        durable: true,
    }
}

// ---------------------------------------------------------------------------------------------------
// Does a real type survive postcard?
// ---------------------------------------------------------------------------------------------------

fn postcard_round_trip<T>(value: &T) -> String
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = match postcard::to_stdvec(value) {
        Ok(bytes) => bytes,
        Err(error) => return format!("serialize fails: {error}"),
    };
    match postcard::from_bytes::<T>(&bytes) {
        Ok(back) if back == *value => format!("ok ({} bytes)", bytes.len()),
        Ok(_) => "decodes to a different value".into(),
        Err(error) => format!(
            "serializes ({} bytes), deserialize fails: {error}",
            bytes.len()
        ),
    }
}

fn check_real_types() {
    let user = User {
        id: UserId(id(2)),
        username: "bench-user-3".into(),
        tag: UserTag::new(42).expect("a tag below 10,000"),
        created_at: UnixMillis(BASE_MILLIS),
    };
    let group = Group {
        id: GroupId(id(1)),
        name: "bench".into(),
        creator: user.id,
        created_at: UnixMillis(BASE_MILLIS),
        epoch: Epoch(BASE_EPOCH),
    };
    let with_members = GroupWithMembers {
        group,
        members: vec![user.clone()],
    };
    let entry = LogEntry {
        term: Term(TERM),
        epoch: Epoch(BASE_EPOCH),
        mutation: Mutation::PostMessage(post(0)),
    };
    let request = match group_post_request() {
        DataMessage::Request { request, .. } => request,
        _ => unreachable!("a request"),
    };
    let ok: Result<ServiceResponse, ServiceError> = Ok(ServiceResponse {
        epoch: Epoch(BASE_EPOCH),
        outcome: Outcome::Message(posted_message()),
    });

    println!("## Do the real types round-trip through postcard as they are?\n");
    println!("| type (serde attributes) | postcard |");
    println!("| --- | --- |");
    let rows: Vec<(&str, String)> = vec![
        (
            "Envelope { body: DataMessage::Commit } (DataMessage: tag = \"kind\")",
            postcard_round_trip(&Envelope {
                term: TERM,
                body: commit(1),
            }),
        ),
        (
            "Envelope { body: DataMessage::Ack } (tag = \"kind\")",
            postcard_round_trip(&Envelope {
                term: TERM,
                body: ack(),
            }),
        ),
        (
            "LogEntry / Mutation::PostMessage (Mutation: tag = \"kind\")",
            postcard_round_trip(&entry),
        ),
        (
            "ServiceRequest / Operation::SendGroupMessage (Operation: tag = \"op\")",
            postcard_round_trip(&request),
        ),
        ("Operation::GetMe (tag = \"op\")", {
            postcard_round_trip(&Operation::GetMe)
        }),
        (
            "Result<ServiceResponse, ServiceError> = Ok(Outcome::Message) (Outcome: tag = \"kind\", content = \"value\")",
            postcard_round_trip(&ok),
        ),
        (
            "ServiceError::Timeout (tag = \"error\", content = \"detail\")",
            postcard_round_trip(&ServiceError::Timeout),
        ),
        (
            "ServiceError::Stale (tag = \"error\", content = \"detail\")",
            postcard_round_trip(&ServiceError::Stale { wanted: 9, have: 7 }),
        ),
        (
            "GroupWithMembers (#[serde(flatten)] group)",
            postcard_round_trip(&with_members),
        ),
        (
            "Outcome::Group(GroupWithMembers) (adjacently tagged + flatten)",
            postcard_round_trip(&Outcome::Group(with_members.clone())),
        ),
        (
            "NewMessage (uuid ids, ChatId and ClientId as text)",
            postcard_round_trip(&post(0)),
        ),
        ("Message (UserRef, UserTag as text)", {
            postcard_round_trip(&posted_message())
        }),
        (
            "SendGroupMessage (#[serde(default)] Option)",
            postcard_round_trip(&SendGroupMessage {
                group: GroupId(id(1)),
                content: content(0),
                client_id: None,
                reply_to: None,
            }),
        ),
        ("RequestId", postcard_round_trip(&request_id())),
        (
            "mirror Envelope (externally tagged, no flatten): Commit",
            postcard_round_trip(&MirrorEnvelope {
                term: TERM,
                body: mirror(&commit(1)),
            }),
        ),
        (
            "mirror Envelope: Response Ok(Outcome::Group)",
            postcard_round_trip(&MirrorEnvelope {
                term: TERM,
                body: mirror(&DataMessage::Response {
                    id: request_id(),
                    result: Ok(ServiceResponse {
                        epoch: Epoch(BASE_EPOCH),
                        outcome: Outcome::Group(with_members),
                    }),
                }),
            }),
        ),
        (
            "mirror Envelope: Response Err(ServiceError::Unavailable)",
            postcard_round_trip(&MirrorEnvelope {
                term: TERM,
                body: mirror(&DataMessage::Response {
                    id: request_id(),
                    result: Err(ServiceError::Unavailable {
                        retry_after: Duration::from_secs(2),
                    }),
                }),
            }),
        ),
    ];
    for (name, verdict) in rows {
        println!("| {name} | {verdict} |");
    }
    println!();
}

// ---------------------------------------------------------------------------------------------------
// Timing.
// ---------------------------------------------------------------------------------------------------

/// Median over [`REPETITIONS`] of the mean nanoseconds per call of `operation`.
fn measure(mut operation: impl FnMut()) -> f64 {
    // Calibrate: how many calls fill a repetition (after a warm-up).
    let mut calls = 1u64;
    loop {
        let began = Instant::now();
        for _ in 0..calls {
            operation();
        }
        let elapsed = began.elapsed();
        if elapsed >= REPETITION_TARGET / 4 {
            let per_call = elapsed.as_secs_f64() / calls as f64;
            calls = ((REPETITION_TARGET.as_secs_f64() / per_call) as u64).max(1);
            break;
        }
        calls *= 2;
    }
    let mut samples: Vec<f64> = (0..REPETITIONS)
        .map(|_| {
            let began = Instant::now();
            for _ in 0..calls {
                operation();
            }
            began.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

struct Figures {
    bytes: usize,
    encode_ns: f64,
    decode_ns: f64,
}

fn bench_json_real(message: &DataMessage) -> Figures {
    let bytes = encode(TERM, message);
    let back = decode(&bytes).expect("json decodes");
    assert_eq!(back.body, *message);
    Figures {
        bytes: bytes.len(),
        encode_ns: measure(|| {
            black_box(encode(black_box(TERM), black_box(message)));
        }),
        decode_ns: measure(|| {
            black_box(decode(black_box(&bytes)).ok());
        }),
    }
}

fn bench_mirror(
    message: &MirrorDataMessage,
    to_vec: fn(&MirrorEnvelopeRef<'_>) -> Vec<u8>,
    from_slice: fn(&[u8]) -> Option<MirrorEnvelope>,
) -> Figures {
    let envelope = |body| MirrorEnvelopeRef { term: TERM, body };
    let bytes = to_vec(&envelope(message));
    let back = from_slice(&bytes).expect("mirror decodes");
    assert_eq!(back.body, *message);
    Figures {
        bytes: bytes.len(),
        encode_ns: measure(|| {
            black_box(to_vec(black_box(&envelope(black_box(message)))));
        }),
        decode_ns: measure(|| {
            black_box(from_slice(black_box(&bytes)));
        }),
    }
}

fn json_to_vec(envelope: &MirrorEnvelopeRef<'_>) -> Vec<u8> {
    serde_json::to_vec(envelope).unwrap_or_default()
}

fn json_from_slice(bytes: &[u8]) -> Option<MirrorEnvelope> {
    serde_json::from_slice(bytes).ok()
}

fn postcard_to_vec(envelope: &MirrorEnvelopeRef<'_>) -> Vec<u8> {
    postcard::to_stdvec(envelope).unwrap_or_default()
}

fn postcard_from_slice(bytes: &[u8]) -> Option<MirrorEnvelope> {
    postcard::from_bytes(bytes).ok()
}

fn main() {
    check_real_types();

    let cases: Vec<(String, DataMessage, usize)> = vec![
        ("Commit × 1 PostMessage".into(), commit(1), 1),
        ("Commit × 16 PostMessage".into(), commit(16), 16),
        ("Commit × 256 PostMessage".into(), commit(256), 256),
        ("Request: SendGroupMessage".into(), group_post_request(), 1),
        ("Response: Ok(Message)".into(), group_post_response(), 1),
        ("Ack".into(), ack(), 1),
    ];

    println!(
        "## Codec figures (release; median of {REPETITIONS} repetitions of ~{} ms each)\n",
        REPETITION_TARGET.as_millis()
    );
    println!(
        "| message | codec | bytes | encode ns/msg | decode ns/msg | encode+decode ns per entry |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (name, message, entries) in &cases {
        let mirrored = mirror(message);
        let results = [
            ("json (today)", bench_json_real(message)),
            (
                "json (mirror)",
                bench_mirror(&mirrored, json_to_vec, json_from_slice),
            ),
            (
                "postcard (mirror)",
                bench_mirror(&mirrored, postcard_to_vec, postcard_from_slice),
            ),
        ];
        let json = &results[0].1;
        for (codec, figures) in &results {
            let ratio = if std::ptr::eq(figures, json) {
                String::new()
            } else {
                format!(
                    " ({:.2}× / {:.2}×)",
                    json.encode_ns / figures.encode_ns,
                    json.decode_ns / figures.decode_ns
                )
            };
            println!(
                "| {name} | {codec}{ratio} | {} | {:.0} | {:.0} | {:.0} |",
                figures.bytes,
                figures.encode_ns,
                figures.decode_ns,
                (figures.encode_ns + figures.decode_ns) / *entries as f64,
            );
        }
    }
    println!("\n(k× / m×): speed-up over json (today) for encoding / decoding.\n");

    // Every node (writer and copies) also serialises each applied entry to JSON for `log.entry`.
    let entry = LogEntry {
        term: Term(TERM),
        epoch: Epoch(BASE_EPOCH),
        mutation: Mutation::PostMessage(post(0)),
    };
    let text = serde_json::to_string(&entry).expect("json");
    let to_text = measure(|| {
        black_box(serde_json::to_string(black_box(&entry)).ok());
    });
    let from_text = measure(|| {
        black_box(serde_json::from_str::<LogEntry>(black_box(&text)).ok());
    });
    println!("## On-disk log (`log.entry`, JSON of LogEntry, written on every node)\n");
    println!("| what | bytes | ns |");
    println!("| --- | ---: | ---: |");
    println!(
        "| one PostMessage LogEntry → text (log::append) | {} | {to_text:.0} |",
        text.len()
    );
    println!(
        "| text → LogEntry (log::since, catch-up) | {} | {from_text:.0} |",
        text.len()
    );
}
