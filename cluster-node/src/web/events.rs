//! Live updates: `GET /api/events`, a Server-Sent Events stream of the caller's new messages, deletions
//! and membership changes, each with `id:` = its epoch so that `Last-Event-ID` resumes it.
//!
//! ```text
//!   EventSource (writer's log broadcast, or the data plane's events down the tree)
//!        │ LogEntry, epoch order
//!        ▼
//!   EventHub task ── ring of recent entries (replay) + message→chat and user directories
//!        │ Arc<LogEntry>
//!        ▼
//!   one task per stream: Membership filter (groups from the service, then updated from the log)
//!        │ message / message_deleted / membership events
//!        ▼
//!   SSE body (mpsc) ── keep-alive comments
//! ```
//!
//! Resuming from epoch `E` (the `Last-Event-ID` header, or `?after=E` for a page that rendered at `E`):
//! the stream subscribes to the hub *first*, then replays what it missed, then goes live, processing
//! entries strictly in epoch order and skipping every epoch it already processed, so nothing is sent
//! twice and nothing falls between the catch-up and the live part. When the hub's ring still holds every
//! entry after `E`, it replays from the ring (exact: messages, deletions, memberships). Otherwise (the node
//! started after `E`, or the hub lagged) it asks the service for the group messages after `E` up to the
//! first entry the ring does hold, then replays the ring. Direct messages cannot be fetched that way
//! (the service has no "my direct chats" read), so a gap older than the ring loses direct-message events
//! only; the page reloads its open chat on reconnect, which covers what a person sees.
//!
//! Membership: a stream asks the service for the caller's groups (answered at epoch `X`) and then applies
//! the membership changes of entries after `X`. Entries at or before `X` are judged by the membership at
//! `X`: a user may at worst get messages of a group they have joined since, which they can read anyway,
//! and never messages of a group they are not a member of now.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::service::{
    ChatServiceExt, GetGroup, ListGroupMessages, LocalService, RequestContext, ServiceError,
};
use crate::storage::{
    ChatId, Epoch, GroupId, LogEntry, Message, MessageId, Mutation, User, UserId, UserTag,
};

use super::WebState;
use super::api::with_epoch;
use super::error::{ApiQuery, AppError};
use super::session::{ChatSession, SessionUser};
use super::views::{MessageView, UserView, rfc3339};

/// Where committed writes come from: the writer's log broadcast on the writer, the data plane's event
/// broadcast on other input nodes. `None` while there is none yet; the hub asks again every second.
pub trait EventSource: Send + Sync + 'static {
    /// Every committed write from now on, in epoch order.
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>>;
}

impl EventSource for LocalService {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        LocalService::subscribe(self)
    }
}

impl EventSource for broadcast::Sender<LogEntry> {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        Some(broadcast::Sender::subscribe(self))
    }
}

/// How long the hub waits before asking an absent or closed source again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// Entries buffered per stream between the hub and the stream's task.
const LIVE_BUFFER: usize = 1024;
/// Events buffered between a stream's task and its HTTP body.
const OUT_BUFFER: usize = 64;
/// Largest page the service returns (DESIGN §6 cap).
const CATCH_UP_PAGE: u32 = 500;
/// Pages read per group when catching up through the service.
const CATCH_UP_MAX_PAGES: usize = 20;
/// Entries remembered in each directory of the hub.
const DIRECTORY_CAPACITY: usize = 100_000;

/// A map that forgets its oldest insertions beyond a capacity.
#[derive(Debug)]
struct BoundedMap<K, V> {
    capacity: usize,
    values: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: std::hash::Hash + Eq + Clone, V> BoundedMap<K, V> {
    fn new(capacity: usize) -> Self {
        BoundedMap {
            capacity: capacity.max(1),
            values: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: K, value: V) {
        if self.values.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.values.remove(&old);
                }
            }
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.values.get(key)
    }
}

struct HubState {
    ring: VecDeque<Arc<LogEntry>>,
    capacity: usize,
    live: broadcast::Sender<Arc<LogEntry>>,
    chats: BoundedMap<MessageId, ChatId>,
    users: BoundedMap<UserId, UserView>,
    groups: BoundedMap<GroupId, String>,
}

/// What a new stream starts from: entries to replay and the live feed after them.
pub(super) struct Subscription {
    replay: Vec<Arc<LogEntry>>,
    /// The ring holds every entry after the requested epoch.
    covered: bool,
    /// The first entry the ring holds.
    first: Option<Epoch>,
    /// The last entry the hub has seen.
    latest: Option<Epoch>,
    live: broadcast::Receiver<Arc<LogEntry>>,
}

/// Fans the event source out to streams, keeping recent entries for resumption and what the entries
/// themselves do not say (a deleted message's chat, a sender's name).
pub(super) struct EventHub {
    state: Mutex<HubState>,
}

impl EventHub {
    /// A hub fed from `source` by a task that stops with `stop`.
    pub(super) fn start(
        source: Arc<dyn EventSource>,
        capacity: usize,
        stop: &CancellationToken,
    ) -> Arc<Self> {
        let hub = Arc::new(EventHub {
            state: Mutex::new(HubState {
                ring: VecDeque::new(),
                capacity: capacity.max(1),
                live: broadcast::channel(LIVE_BUFFER).0,
                chats: BoundedMap::new(DIRECTORY_CAPACITY),
                users: BoundedMap::new(DIRECTORY_CAPACITY),
                groups: BoundedMap::new(DIRECTORY_CAPACITY),
            }),
        });
        tokio::spawn(Arc::clone(&hub).run(source, stop.clone()));
        hub
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    async fn run(self: Arc<Self>, source: Arc<dyn EventSource>, stop: CancellationToken) {
        loop {
            if let Some(mut receiver) = source.subscribe() {
                loop {
                    let received = tokio::select! {
                        () = stop.cancelled() => return,
                        received = receiver.recv() => received,
                    };
                    match received {
                        Ok(entry) => self.push(entry),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(
                                missed,
                                "event hub lagged; streams resume through the service"
                            );
                            self.reset();
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            self.reset();
                            break;
                        }
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            }
        }
    }

    /// Adds a committed entry: remembered, kept for replay, and sent to the open streams (under one lock,
    /// so a subscriber gets each entry exactly once, from the ring or live).
    pub(super) fn push(&self, entry: LogEntry) {
        let mut state = self.lock();
        match &entry.mutation {
            Mutation::PostMessage(message) => state.chats.insert(message.id, message.chat),
            Mutation::RegisterUser(user) => state.users.insert(
                user.id,
                UserView {
                    id: user.id,
                    username: user.username.clone(),
                    tag: user.tag,
                },
            ),
            Mutation::CreateGroup(group) => state.groups.insert(group.id, group.name.clone()),
            _ => {}
        }
        if state
            .ring
            .back()
            .is_some_and(|last| last.epoch.0.checked_add(1) != Some(entry.epoch.0))
        {
            // Not contiguous (a new writer's history, or a source that skipped): older entries cannot
            // prove coverage any more.
            state.ring.clear();
        }
        let entry = Arc::new(entry);
        state.ring.push_back(Arc::clone(&entry));
        while state.ring.len() > state.capacity {
            state.ring.pop_front();
        }
        // No receiver is fine: nobody is listening.
        let _ = state.live.send(entry);
    }

    /// Forgets the ring and closes every live feed, so streams resume from their own position.
    fn reset(&self) {
        let mut state = self.lock();
        state.ring.clear();
        state.live = broadcast::channel(LIVE_BUFFER).0;
    }

    /// Subscribes to the live feed and takes the ring's entries after `after` (all of them for `None`
    /// would be wrong: a new stream without a position starts from now).
    pub(super) fn subscribe(&self, after: Option<Epoch>) -> Subscription {
        let state = self.lock();
        let first = state.ring.front().map(|entry| entry.epoch);
        let latest = state.ring.back().map(|entry| entry.epoch);
        let (replay, covered) = match after {
            None => (Vec::new(), true),
            Some(after) => {
                let replay = state
                    .ring
                    .iter()
                    .filter(|entry| entry.epoch > after)
                    .cloned()
                    .collect();
                let covered = first.is_some_and(|first| first.0 <= after.0.saturating_add(1))
                    || latest.is_some_and(|latest| latest <= after);
                (replay, covered)
            }
        };
        Subscription {
            replay,
            covered,
            first,
            latest,
            live: state.live.subscribe(),
        }
    }

    pub(super) fn remember_user(&self, user: &User) {
        self.lock().users.insert(user.id, UserView::from(user));
    }

    pub(super) fn remember_messages(&self, messages: &[Message]) {
        let mut state = self.lock();
        for message in messages {
            state.chats.insert(message.id, message.chat);
            state
                .users
                .insert(message.sender.id, UserView::from(&message.sender));
        }
    }

    fn chat_of(&self, message: MessageId) -> Option<ChatId> {
        self.lock().chats.get(&message).copied()
    }

    fn user(&self, id: UserId) -> Option<UserView> {
        self.lock().users.get(&id).cloned()
    }

    fn group_name(&self, id: GroupId) -> Option<String> {
        self.lock().groups.get(&id).cloned()
    }

    fn remember_group(&self, id: GroupId, name: &str) {
        self.lock().groups.insert(id, name.to_owned());
    }
}

/// The groups one user belongs to, as a stream sees them: the service's answer at `known_at`, then the
/// changes of later entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    me: UserId,
    groups: HashSet<GroupId>,
    known_at: Epoch,
}

/// What an entry means to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Relevant {
    Message,
    Deleted {
        message: MessageId,
        chat: ChatId,
    },
    Membership {
        group: GroupId,
        user: UserId,
        change: Change,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Change {
    Created,
    Joined,
    Left,
    Deleted,
}

impl Membership {
    pub(super) fn new(
        me: UserId,
        groups: impl IntoIterator<Item = GroupId>,
        known_at: Epoch,
    ) -> Self {
        Membership {
            me,
            groups: groups.into_iter().collect(),
            known_at,
        }
    }

    pub(super) fn sees(&self, chat: ChatId) -> bool {
        match chat {
            ChatId::Group(group) => self.groups.contains(&group),
            ChatId::Direct(one, other) => one == self.me || other == self.me,
        }
    }

    fn change(&mut self, epoch: Epoch, group: GroupId, member: bool) {
        if epoch > self.known_at {
            if member {
                self.groups.insert(group);
            } else {
                self.groups.remove(&group);
            }
        }
    }

    /// Updates the membership from `entry` and says whether and how the user should hear of it.
    /// `chat_of` tells the chat of a deleted message, when known.
    pub(super) fn classify(
        &mut self,
        entry: &LogEntry,
        chat_of: impl Fn(MessageId) -> Option<ChatId>,
    ) -> Option<Relevant> {
        let epoch = entry.epoch;
        match &entry.mutation {
            Mutation::PostMessage(message) => self.sees(message.chat).then_some(Relevant::Message),
            Mutation::DeleteMessage { message, .. } => {
                let chat = chat_of(*message)?;
                self.sees(chat).then_some(Relevant::Deleted {
                    message: *message,
                    chat,
                })
            }
            Mutation::CreateGroup(group) => {
                if group.creator != self.me {
                    return None;
                }
                self.change(epoch, group.id, true);
                Some(Relevant::Membership {
                    group: group.id,
                    user: self.me,
                    change: Change::Created,
                })
            }
            Mutation::AddMember { group, user, .. } => {
                if *user == self.me {
                    self.change(epoch, *group, true);
                }
                self.groups.contains(group).then_some(Relevant::Membership {
                    group: *group,
                    user: *user,
                    change: Change::Joined,
                })
            }
            Mutation::RemoveMember { group, user } => {
                let relevant = self.groups.contains(group) || *user == self.me;
                if *user == self.me {
                    self.change(epoch, *group, false);
                }
                relevant.then_some(Relevant::Membership {
                    group: *group,
                    user: *user,
                    change: Change::Left,
                })
            }
            Mutation::DeleteGroup { group, .. } => {
                let relevant = self.groups.contains(group);
                self.change(epoch, *group, false);
                relevant.then_some(Relevant::Membership {
                    group: *group,
                    user: self.me,
                    change: Change::Deleted,
                })
            }
            Mutation::RegisterUser(_) | Mutation::Configure { .. } => None,
        }
    }
}

/// `message_deleted` data.
#[derive(Debug, Serialize)]
struct DeletedView {
    id: MessageId,
    chat: ChatId,
    epoch: Epoch,
}

#[derive(Debug, Serialize)]
struct GroupRef {
    id: GroupId,
    name: Option<String>,
}

/// `membership` data. For `deleted`, `user` is the listener.
#[derive(Debug, Serialize)]
struct MembershipView {
    change: Change,
    group: GroupRef,
    user: UserView,
    epoch: Epoch,
}

/// One open stream: its user, position and membership view.
struct EventStream {
    state: WebState,
    user: SessionUser,
    /// The client's read floor: every service read asks for at least this epoch.
    floor: Epoch,
    /// The last epoch processed; `None` until the stream knows where "now" is.
    cursor: Option<Epoch>,
    membership: Membership,
    subscription: Subscription,
}

/// Why a stream stopped.
enum Stop {
    /// The client went away or the server is closing: nothing more to do.
    Gone,
    /// The hub's feed ended or lagged: resubscribe from the cursor.
    Resume,
}

fn context(user: &SessionUser, floor: Epoch) -> RequestContext {
    RequestContext::user(user.id).at(floor)
}

impl EventStream {
    /// Subscribes and loads the membership; an error here is the HTTP answer (401, 503...).
    async fn open(
        state: WebState,
        user: SessionUser,
        floor: Epoch,
        after: Option<Epoch>,
    ) -> Result<Self, ServiceError> {
        let subscription = state.hub.subscribe(after);
        let floor = floor.max(subscription.latest.unwrap_or_default());
        let groups = state.service.list_groups(context(&user, floor)).await?;
        for group in &groups.value {
            state.hub.remember_group(group.id, &group.name);
        }
        let membership = Membership::new(
            user.id,
            groups.value.iter().map(|group| group.id),
            groups.epoch,
        );
        Ok(EventStream {
            floor: floor.max(groups.epoch),
            state,
            user,
            cursor: after,
            membership,
            subscription,
        })
    }

    /// Runs until the client leaves or the server stops, resuming after hub resets.
    async fn run(mut self, out: mpsc::Sender<Event>) {
        // Subscribed (in `open`): from here on nothing is missed.
        let ready = serde_json::json!({ "epoch": self.cursor.unwrap_or(self.membership.known_at) });
        let event = Event::default().event("ready").data(ready.to_string());
        if out.send(event).await.is_err() {
            return;
        }
        loop {
            let result = self.catch_up(&out).await;
            let stop = match result {
                Ok(()) => self.follow(&out).await,
                Err(error) => {
                    tracing::info!(%error, user = %self.user.id, "event stream ends: cannot catch up");
                    Stop::Gone
                }
            };
            match stop {
                Stop::Gone => return,
                Stop::Resume => {
                    if let Err(error) = self.resubscribe().await {
                        tracing::info!(%error, user = %self.user.id, "event stream ends: cannot resume");
                        return;
                    }
                }
            }
        }
    }

    async fn resubscribe(&mut self) -> Result<(), ServiceError> {
        let fresh = EventStream::open(
            self.state.clone(),
            self.user.clone(),
            self.floor,
            self.cursor,
        )
        .await?;
        self.membership = fresh.membership;
        self.subscription = fresh.subscription;
        self.floor = fresh.floor;
        Ok(())
    }

    /// Sends what happened after the cursor and before the live feed: through the service when the
    /// ring does not reach back far enough, then from the ring.
    async fn catch_up(&mut self, out: &mpsc::Sender<Event>) -> Result<(), ServiceError> {
        if let Some(after) = self.cursor
            && !self.subscription.covered
        {
            let (messages, answered_at) = self.missed_group_messages(after).await?;
            let bound = match self.subscription.first {
                Some(first) => Epoch(first.0.saturating_sub(1)),
                None => answered_at,
            };
            self.state.hub.remember_messages(&messages);
            for message in messages.iter().filter(|message| message.epoch <= bound) {
                let event = message_event(&MessageView::from(message));
                if out.send(event).await.is_err() {
                    return Ok(());
                }
            }
            self.cursor = Some(bound.max(after));
        }
        let replay = std::mem::take(&mut self.subscription.replay);
        for entry in replay {
            if self.process(&entry, out).await?.is_err() {
                return Ok(());
            }
        }
        if self.cursor.is_none() {
            self.cursor = Some(self.subscription.latest.unwrap_or_default());
        }
        Ok(())
    }

    /// The messages after `after` in the user's groups, oldest first, and the lowest epoch the service
    /// answered at (everything up to it is in the answers).
    async fn missed_group_messages(
        &self,
        after: Epoch,
    ) -> Result<(Vec<Message>, Epoch), ServiceError> {
        let service = &self.state.service;
        let context = context(&self.user, self.floor);
        let mut answered_at = self.membership.known_at;
        let mut missed = Vec::new();
        for group in self.membership.groups.iter().copied() {
            let mut before = None;
            for _ in 0..CATCH_UP_MAX_PAGES {
                let page = service
                    .list_group_messages(
                        context,
                        ListGroupMessages {
                            group,
                            before,
                            limit: Some(CATCH_UP_PAGE),
                        },
                    )
                    .await;
                let page = match page {
                    Ok(page) => page,
                    // Deleted or left since the membership was read: nothing to catch up there.
                    Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => break,
                    Err(error) => return Err(error),
                };
                answered_at = answered_at.min(page.epoch);
                let full = page.value.len() >= CATCH_UP_PAGE as usize;
                let oldest = page.value.first().map(|message| message.epoch);
                missed.extend(
                    page.value
                        .into_iter()
                        .filter(|message| message.epoch > after),
                );
                match oldest {
                    Some(oldest) if full && oldest.0 > after.0.saturating_add(1) => {
                        before = Some(oldest)
                    }
                    _ => break,
                }
            }
        }
        missed.sort_by_key(|message| message.epoch);
        missed.dedup_by_key(|message| message.epoch);
        Ok((missed, answered_at))
    }

    /// Follows the live feed until the client leaves, the server stops or the feed must be resumed.
    async fn follow(&mut self, out: &mpsc::Sender<Event>) -> Stop {
        let mut serving = self.state.serving.clone();
        let closing = self.state.closing.clone();
        loop {
            if !*serving.borrow_and_update() {
                return Stop::Gone;
            }
            let received = tokio::select! {
                () = closing.cancelled() => return Stop::Gone,
                () = out.closed() => return Stop::Gone,
                changed = serving.changed() => {
                    if changed.is_err() {
                        return Stop::Gone;
                    }
                    continue;
                }
                received = self.subscription.live.recv() => received,
            };
            match received {
                Ok(entry) => match self.process(&entry, out).await {
                    Ok(Ok(())) => {}
                    Ok(Err(())) => return Stop::Gone,
                    Err(error) => {
                        tracing::info!(%error, "event stream ends: a lookup failed");
                        return Stop::Gone;
                    }
                },
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => {
                    return Stop::Resume;
                }
            }
        }
    }

    /// Filters one entry and sends its event; `Ok(Err(()))` when the client has gone.
    async fn process(
        &mut self,
        entry: &LogEntry,
        out: &mpsc::Sender<Event>,
    ) -> Result<Result<(), ()>, ServiceError> {
        if self.cursor.is_some_and(|cursor| entry.epoch <= cursor) {
            return Ok(Ok(()));
        }
        self.cursor = Some(entry.epoch);
        let hub = Arc::clone(&self.state.hub);
        let Some(relevant) = self
            .membership
            .classify(entry, |message| hub.chat_of(message))
        else {
            return Ok(Ok(()));
        };
        let event = match (relevant, &entry.mutation) {
            (Relevant::Message, Mutation::PostMessage(message)) => {
                let sender = self.user_view(message.sender, entry.epoch).await?;
                message_event(&MessageView {
                    id: message.id,
                    chat: message.chat,
                    sender,
                    content: message.content.clone(),
                    created_at: rfc3339(message.created_at),
                    epoch: entry.epoch,
                })
            }
            (Relevant::Deleted { message, chat }, _) => json_event(
                "message_deleted",
                entry.epoch,
                &DeletedView {
                    id: message,
                    chat,
                    epoch: entry.epoch,
                },
            ),
            (
                Relevant::Membership {
                    group,
                    user,
                    change,
                },
                mutation,
            ) => {
                if let Mutation::CreateGroup(created) = mutation {
                    self.state.hub.remember_group(created.id, &created.name);
                }
                let name = self.group_name(group, change, entry.epoch).await;
                let user = self.user_view(user, entry.epoch).await?;
                json_event(
                    "membership",
                    entry.epoch,
                    &MembershipView {
                        change,
                        group: GroupRef { id: group, name },
                        user,
                        epoch: entry.epoch,
                    },
                )
            }
            (Relevant::Message, _) => return Ok(Ok(())),
        };
        Ok(out.send(event).await.map_err(|_| ()))
    }

    /// A user's public name: from the hub's directory, else from the service. The service has no read
    /// of another user by id, so this asks for "me" on behalf of that user: the web layer is where
    /// callers are authenticated, and the answer is only the public `name#tag`.
    async fn user_view(&self, id: UserId, at: Epoch) -> Result<UserView, ServiceError> {
        if id == self.user.id {
            return Ok(UserView {
                id,
                username: self.user.username.clone(),
                tag: self.user.tag,
            });
        }
        if let Some(user) = self.state.hub.user(id) {
            return Ok(user);
        }
        let context = RequestContext::user(id).at(at.max(self.floor));
        match self.state.service.get_me(context).await {
            Ok(answer) => {
                self.state.hub.remember_user(&answer.value);
                Ok(UserView::from(&answer.value))
            }
            Err(ServiceError::Unauthenticated | ServiceError::NotFound(_)) => Ok(UserView {
                id,
                username: "unknown".into(),
                tag: UserTag::new(0).unwrap_or_else(|| unreachable!("0 is a tag")),
            }),
            Err(error) => Err(error),
        }
    }

    /// A group's name, when the hub knows it or the listener can read the group.
    async fn group_name(&self, group: GroupId, change: Change, at: Epoch) -> Option<String> {
        if let Some(name) = self.state.hub.group_name(group) {
            return Some(name);
        }
        if change == Change::Deleted {
            return None;
        }
        let context = context(&self.user, at.max(self.floor));
        let answer = self
            .state
            .service
            .get_group(context, GetGroup { group })
            .await
            .ok()?;
        self.state
            .hub
            .remember_group(group, &answer.value.group.name);
        Some(answer.value.group.name)
    }
}

fn json_event(kind: &str, epoch: Epoch, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Event::default()
        .event(kind)
        .id(epoch.0.to_string())
        .data(data)
}

fn message_event(message: &MessageView) -> Event {
    json_event("message", message.epoch, message)
}

pub(super) fn router() -> Router<WebState> {
    Router::new().route("/api/events", get(events))
}

#[derive(Debug, Default, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: Option<String>,
}

fn parse_epoch(text: &str) -> Result<Epoch, AppError> {
    text.trim().parse::<u64>().map(Epoch).map_err(|_| {
        AppError::BadRequest("an event id is an epoch (a non-negative integer)".into())
    })
}

async fn events(
    State(state): State<WebState>,
    mut session: ChatSession,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, AppError> {
    let user = session.require_user()?.clone();
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| AppError::BadRequest("Last-Event-ID is not text".into()))
                .and_then(parse_epoch)
        })
        .transpose()?;
    let after = match last_event_id {
        Some(epoch) => Some(epoch),
        None => match query.after.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_epoch(text)?),
        },
    };
    let stream = EventStream::open(state.clone(), user, session.epoch(), after).await?;
    let epoch = stream.membership.known_at;
    session.observe(epoch).await?;
    let (out, events) = mpsc::channel(OUT_BUFFER);
    tokio::spawn(stream.run(out));
    let body = futures::stream::unfold(events, |mut events| async move {
        events
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), events))
    });
    let sse = Sse::new(body).keep_alive(KeepAlive::new().interval(state.options.keep_alive));
    Ok(with_epoch(epoch, sse.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::groups::NewGroup;
    use crate::storage::messages::NewMessage;
    use crate::storage::{Term, UnixMillis};

    fn entry(epoch: u64, mutation: Mutation) -> LogEntry {
        LogEntry {
            term: Term::default(),
            epoch: Epoch(epoch),
            mutation,
        }
    }

    fn post(chat: ChatId, sender: UserId) -> Mutation {
        Mutation::PostMessage(NewMessage {
            id: MessageId::random(),
            chat,
            sender,
            receiver: None,
            content: "hi".into(),
            created_at: UnixMillis(0),
            client_id: None,
        })
    }

    fn no_chats(_: MessageId) -> Option<ChatId> {
        None
    }

    #[test]
    fn a_user_hears_of_messages_in_their_groups_and_direct_chats_only() {
        let (me, peer, stranger) = (UserId::random(), UserId::random(), UserId::random());
        let (mine, other) = (GroupId::random(), GroupId::random());
        let mut membership = Membership::new(me, [mine], Epoch(10));

        let heard = |membership: &mut Membership, mutation| {
            membership
                .classify(&entry(11, mutation), no_chats)
                .is_some()
        };

        assert!(heard(&mut membership, post(ChatId::Group(mine), peer)));
        assert!(!heard(&mut membership, post(ChatId::Group(other), peer)));
        assert!(heard(&mut membership, post(ChatId::direct(peer, me), peer)));
        assert!(!heard(
            &mut membership,
            post(ChatId::direct(peer, stranger), peer)
        ));
    }

    #[test]
    fn joining_and_leaving_after_the_known_epoch_change_what_a_user_hears() {
        let (me, peer) = (UserId::random(), UserId::random());
        let group = GroupId::random();
        let mut membership = Membership::new(me, [], Epoch(10));

        let joined = membership.classify(
            &entry(
                11,
                Mutation::AddMember {
                    group,
                    user: me,
                    joined_at: UnixMillis(0),
                },
            ),
            no_chats,
        );
        let message = membership.classify(&entry(12, post(ChatId::Group(group), peer)), no_chats);
        let left = membership.classify(
            &entry(13, Mutation::RemoveMember { group, user: me }),
            no_chats,
        );
        let after = membership.classify(&entry(14, post(ChatId::Group(group), peer)), no_chats);

        assert!(matches!(
            joined,
            Some(Relevant::Membership {
                change: Change::Joined,
                ..
            })
        ));
        assert_eq!(message, Some(Relevant::Message));
        assert!(matches!(
            left,
            Some(Relevant::Membership {
                change: Change::Left,
                ..
            })
        ));
        assert_eq!(after, None);
    }

    #[test]
    fn membership_changes_at_or_before_the_known_epoch_are_already_counted() {
        let me = UserId::random();
        let group = GroupId::random();
        let mut membership = Membership::new(me, [group], Epoch(10));

        // An old "left" replayed from the ring must not undo the current membership.
        membership.classify(
            &entry(9, Mutation::RemoveMember { group, user: me }),
            no_chats,
        );

        assert!(membership.sees(ChatId::Group(group)));
    }

    #[test]
    fn a_deletion_is_heard_only_when_its_chat_is_known_and_visible() {
        let me = UserId::random();
        let group = GroupId::random();
        let message = MessageId::random();
        let mut membership = Membership::new(me, [group], Epoch(0));
        let deletion = entry(
            5,
            Mutation::DeleteMessage {
                message,
                deleted_at: UnixMillis(0),
            },
        );

        assert_eq!(membership.classify(&deletion, no_chats), None);
        assert_eq!(
            membership.classify(&deletion, |_| Some(ChatId::Group(group))),
            Some(Relevant::Deleted {
                message,
                chat: ChatId::Group(group)
            })
        );
        assert_eq!(
            membership.classify(&deletion, |_| Some(ChatId::Group(GroupId::random()))),
            None
        );
    }

    #[test]
    fn a_created_group_is_joined_by_its_creator() {
        let me = UserId::random();
        let group = NewGroup {
            id: GroupId::random(),
            name: "g".into(),
            creator: me,
            created_at: UnixMillis(0),
        };
        let id = group.id;
        let mut membership = Membership::new(me, [], Epoch(0));

        let created = membership.classify(&entry(1, Mutation::CreateGroup(group)), no_chats);

        assert!(created.is_some());
        assert!(membership.sees(ChatId::Group(id)));
    }

    #[tokio::test]
    async fn the_hub_replays_what_it_holds_and_says_whether_that_covers_the_gap() {
        let (sender, _) = broadcast::channel::<LogEntry>(16);
        let stop = CancellationToken::new();
        let hub = EventHub::start(Arc::new(sender), 3, &stop);
        let me = UserId::random();
        for epoch in 1..=5 {
            hub.push(entry(epoch, post(ChatId::direct(me, me), me)));
        }

        let recent = hub.subscribe(Some(Epoch(3)));
        let old = hub.subscribe(Some(Epoch(1)));
        let fresh = hub.subscribe(None);

        let epochs = |subscription: &Subscription| -> Vec<u64> {
            subscription
                .replay
                .iter()
                .map(|entry| entry.epoch.0)
                .collect()
        };
        assert_eq!(epochs(&recent), vec![4, 5]);
        assert!(recent.covered);
        assert_eq!(epochs(&old), vec![3, 4, 5]);
        assert!(!old.covered);
        assert_eq!(old.first, Some(Epoch(3)));
        assert!(epochs(&fresh).is_empty());

        // A client may send any epoch: the largest is past everything held, not an overflow.
        let beyond = hub.subscribe(Some(Epoch(u64::MAX)));
        assert!(epochs(&beyond).is_empty());
        assert!(beyond.covered);
        stop.cancel();
    }
}
