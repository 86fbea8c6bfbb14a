//! One open event stream: catch up from where the client was, then follow the hub live, turning each
//! relevant entry into its SSE event.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::response::sse::Event;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::presence::{Connected, TypingNotice};
use crate::service::{ChatServiceExt, GetGroup, ListGroupMessages, RequestContext, ServiceError};
use crate::storage::{
    ChatId, Epoch, GroupId, LogEntry, Message, MessageId, Mutation, UserId, UserTag,
};

use super::super::WebState;
use super::super::session::SessionUser;
use super::super::views::{MessageView, QuoteView, UserView, rfc3339};
use super::hub::Subscription;
use super::membership::{Change, Membership, Relevant};

/// Largest page the service returns (DESIGN §6 cap).
const CATCH_UP_PAGE: u32 = 500;
/// Pages read per group when catching up through the service.
const CATCH_UP_MAX_PAGES: usize = 20;

/// `message_edited` data.
#[derive(Debug, Serialize)]
struct EditedView<'a> {
    id: MessageId,
    chat: ChatId,
    content: &'a str,
    edited_at: String,
    epoch: Epoch,
}

/// `reaction` data: `count` users have `emoji` on the message after `user` put it on or took it off.
#[derive(Debug, Serialize)]
struct ReactionView<'a> {
    message: MessageId,
    chat: ChatId,
    emoji: &'a str,
    count: u32,
    user: UserId,
    on: bool,
    epoch: Epoch,
}

/// `read` data: the listener's marker on `chat` moved to `read_epoch`.
#[derive(Debug, Serialize)]
struct ReadView {
    chat: ChatId,
    read_epoch: Epoch,
    epoch: Epoch,
}

/// `presence` data: `user`, who shares a chat with the listener, came online or went offline.
#[derive(Debug, Serialize)]
struct PresenceView {
    user: UserId,
    online: bool,
}

/// `typing` data: `user` is typing in `chat`.
#[derive(Debug, Serialize)]
struct TypingView {
    chat: ChatId,
    user: UserView,
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
pub(crate) struct EventStream {
    state: WebState,
    user: SessionUser,
    /// The client's read floor: every service read asks for at least this epoch.
    floor: Epoch,
    /// The last epoch processed; `None` until the stream knows where "now" is.
    cursor: Option<Epoch>,
    membership: Membership,
    subscription: Subscription,
    /// Everyone who shares a chat with the listener: whose presence it is shown.
    contacts: BTreeSet<UserId>,
    /// A membership changed since `contacts` was read: read it again.
    contacts_stale: bool,
    /// The contacts the client was last told are online.
    shown_online: BTreeSet<UserId>,
    /// The listener counts as online while the stream lasts.
    _connected: Connected,
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
    /// The epoch the stream's membership was read at: what the client has seen once it is open.
    pub(crate) fn known_at(&self) -> Epoch {
        self.membership.known_at
    }

    /// Subscribes and loads the membership; an error here is the HTTP answer (401, 503...).
    pub(crate) async fn open(
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
        let contacts = state.service.list_contacts(context(&user, floor)).await?;
        let connected = state.presence.connect(user.id);
        Ok(EventStream {
            floor: floor.max(groups.epoch).max(contacts.epoch),
            contacts: contacts.value.into_iter().collect(),
            contacts_stale: false,
            shown_online: BTreeSet::new(),
            _connected: connected,
            state,
            user,
            cursor: after,
            membership,
            subscription,
        })
    }

    /// The contacts online now, as the node knows it.
    fn online_contacts(&self) -> BTreeSet<UserId> {
        let online = self.state.presence.online();
        let online = online.borrow();
        self.contacts
            .iter()
            .filter(|user| online.contains(user))
            .copied()
            .collect()
    }

    /// Tells the client whose presence changed among its contacts. Presence events carry no `id:`:
    /// they are not in the log, and resuming never replays them (`ready` says who is online).
    async fn presence_changed(&mut self, out: &mpsc::Sender<Event>) -> Result<(), ()> {
        if self.contacts_stale {
            self.contacts_stale = false;
            let context = context(&self.user, self.floor);
            if let Ok(contacts) = self.state.service.list_contacts(context).await {
                self.contacts = contacts.value.into_iter().collect();
            }
        }
        let now = self.online_contacts();
        let came = now.difference(&self.shown_online).map(|user| (*user, true));
        let went = self
            .shown_online
            .difference(&now)
            .map(|user| (*user, false));
        let changes: Vec<(UserId, bool)> = came.chain(went).collect();
        self.shown_online = now;
        for (user, online) in changes {
            let data = serde_json::to_string(&PresenceView { user, online }).unwrap_or_default();
            out.send(Event::default().event("presence").data(data))
                .await
                .map_err(|_| ())?;
        }
        Ok(())
    }

    /// Shows a typing notice of someone else in one of the listener's chats.
    async fn typing(&self, notice: TypingNotice, out: &mpsc::Sender<Event>) -> Result<(), ()> {
        let mine = match notice.chat {
            ChatId::Group(group) => self.membership.groups.contains(&group),
            ChatId::Direct(one, other) => one == self.user.id || other == self.user.id,
        };
        if !mine || notice.user == self.user.id {
            return Ok(());
        }
        let view = TypingView {
            chat: notice.chat,
            user: UserView {
                id: notice.user,
                username: notice.username,
                tag: notice.tag,
            },
        };
        let data = serde_json::to_string(&view).unwrap_or_default();
        out.send(Event::default().event("typing").data(data))
            .await
            .map_err(|_| ())
    }

    /// Runs until the client leaves or the server stops, resuming after hub resets.
    pub(crate) async fn run(mut self, out: mpsc::Sender<Event>) {
        // Subscribed (in `open`): from here on nothing is missed.
        self.shown_online = self.online_contacts();
        let ready = serde_json::json!({
            "epoch": self.cursor.unwrap_or(self.membership.known_at),
            "online": self.shown_online,
        });
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
        self.contacts = fresh.contacts;
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
        let mut online = self.state.presence.online();
        let mut typing = self.state.presence.typing_notices();
        online.mark_changed();
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
                changed = online.changed() => {
                    if changed.is_err() || self.presence_changed(out).await.is_err() {
                        return Stop::Gone;
                    }
                    continue;
                }
                notice = typing.recv() => {
                    // A lagging stream misses notices: they repeat while anyone types.
                    if let Ok(notice) = notice
                        && self.typing(notice, out).await.is_err()
                    {
                        return Stop::Gone;
                    }
                    continue;
                }
                received = self.subscription.live.recv() => received,
            };
            match received {
                Ok(entry) => match self.process(&entry, out).await {
                    Ok(Ok(())) if self.contacts_stale => {
                        if self.presence_changed(out).await.is_err() {
                            return Stop::Gone;
                        }
                    }
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
                if let ChatId::Direct(one, other) = message.chat {
                    let peer = if one == self.user.id { other } else { one };
                    if peer != self.user.id && !self.contacts.contains(&peer) {
                        self.contacts_stale = true;
                    }
                }
                let sender = self.user_view(message.sender, entry.epoch).await?;
                message_event(&MessageView {
                    id: message.id,
                    chat: message.chat,
                    sender,
                    content: message.content.clone(),
                    created_at: rfc3339(message.created_at),
                    epoch: entry.epoch,
                    edited_at: None,
                    reply_to: message.reply_to.as_ref().map(QuoteView::from),
                    reactions: Vec::new(),
                })
            }
            (
                Relevant::Changed,
                Mutation::EditMessage {
                    message,
                    chat,
                    content,
                    edited_at,
                },
            ) => json_event(
                "message_edited",
                entry.epoch,
                &EditedView {
                    id: *message,
                    chat: *chat,
                    content,
                    edited_at: rfc3339(*edited_at),
                    epoch: entry.epoch,
                },
            ),
            (
                Relevant::Changed,
                Mutation::SetReaction {
                    message,
                    chat,
                    user,
                    emoji,
                    on,
                    count,
                    ..
                },
            ) => json_event(
                "reaction",
                entry.epoch,
                &ReactionView {
                    message: *message,
                    chat: *chat,
                    emoji,
                    count: *count,
                    user: *user,
                    on: *on,
                    epoch: entry.epoch,
                },
            ),
            (
                Relevant::Read,
                Mutation::MarkRead {
                    chat, read_epoch, ..
                },
            ) => json_event(
                "read",
                entry.epoch,
                &ReadView {
                    chat: *chat,
                    read_epoch: *read_epoch,
                    epoch: entry.epoch,
                },
            ),
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
                // Someone joined or left one of the listener's groups: whose presence it is
                // shown changes with it.
                self.contacts_stale = true;
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
            (Relevant::Message | Relevant::Changed | Relevant::Read, _) => return Ok(Ok(())),
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
