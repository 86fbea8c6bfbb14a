//! The recent window: for the groups that were read lately, their members and their newest messages,
//! in memory, kept in step with the database by folding in every entry this database commits (the
//! writer) or applies (a copy), so the newest page of a chat and the caller's membership are answered
//! without a round trip to SQLite.
//!
//! ```text
//!   writer commit / copy apply ──COMMIT──► fold(entries) ─┐
//!                                                          ▼
//!   read (newest page) ──► page(group, caller) ──hit──► RecentWindow { epoch, groups, users }
//!          │ miss                                           ▲
//!          └──► SQLite read at epoch E ──► fill(E, group) ──┘ (kept only if the window is at E)
//! ```
//!
//! Why it is exact: the cache is a function of the database *at its `epoch`*. Every entry is folded
//! after its transaction committed, in epoch order, by the one task that commits or applies it; an
//! entry at or below `epoch` is already in it and skipped; an entry past `epoch + 1` means something
//! was missed, so everything is dropped (an empty cache reflects any epoch). A miss reads SQLite in one
//! read transaction at some epoch E and keeps what it read only if the cache is at E right then:
//! below E, entries committed before the read are still to be folded, and folding them onto rows that
//! already hold them would count them twice; above E, the rows are older than the cache. What the
//! fold cannot replay exactly (an edit, a deletion) drops that group's window, and the next read
//! fills it again.
//!
//! Why no read is older than the client: an answer carries the cache's own `epoch`, and the cache
//! answers only when that epoch passes the same rule as the database (`client_epoch <= epoch`, and on
//! a copy never a new client). On the writer, entries are folded before anyone is answered, so a
//! client never holds an epoch the writer's cache has not reached.
//!
//! Memory: at most [`WINDOW`] messages per group and about [`BUDGET_BYTES`] in all; past it, groups
//! are dropped (any group: a dropped one is read from SQLite next time and filled again).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::ids::{ChatId, Epoch, GroupId, UserId};
use super::model::{Message, Reaction, UserRef};
use super::mutation::{LogEntry, Mutation};

/// Messages kept per group: the default page (50) and anything smaller come from memory.
pub const WINDOW: usize = 50;

/// About how much memory the cache may hold (message text, members, bookkeeping).
pub const BUDGET_BYTES: usize = 48 << 20;

/// Users whose names the cache keeps (to name the senders of new messages).
const MAX_USERS: usize = 200_000;

/// Rough cost of a message beyond its text, and of one member or user.
const MESSAGE_OVERHEAD: usize = 256;
const MEMBER_COST: usize = 48;

/// Who reacted with one emoji, and at which epoch each did.
pub type Reactors = Vec<(UserId, Epoch)>;

/// A message as the cache keeps it: its reactions by emoji with who chose each, so that any caller's
/// view (`me`) and the order of first use can be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowMessage {
    pub message: Message,
    pub reactions: Vec<(String, Reactors)>,
}

impl WindowMessage {
    fn weight(&self) -> usize {
        self.message.content.len() + MESSAGE_OVERHEAD
    }

    /// The message with its reactions as `viewer` sees them: each emoji's count, whether `viewer` is
    /// among them, in the order each emoji was first used by those who still have it.
    pub fn view(&self, viewer: UserId) -> Message {
        let mut emojis: Vec<(Epoch, Reaction)> = self
            .reactions
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(emoji, users)| {
                let first = users
                    .iter()
                    .map(|(_, epoch)| *epoch)
                    .min()
                    .unwrap_or_default();
                let reaction = Reaction {
                    emoji: emoji.clone(),
                    count: u32::try_from(users.len()).unwrap_or(u32::MAX),
                    me: users.iter().any(|(user, _)| *user == viewer),
                };
                (first, reaction)
            })
            .collect();
        emojis.sort_by_key(|(first, _)| *first);
        let mut message = self.message.clone();
        message.reactions = emojis.into_iter().map(|(_, reaction)| reaction).collect();
        message
    }
}

/// What a fill brings: a live group's members and, when read, its newest messages (oldest first;
/// all of them when the group has fewer than [`WINDOW`]).
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub group: GroupId,
    pub members: Vec<UserRef>,
    pub newest: Option<Vec<WindowMessage>>,
}

#[derive(Debug, Default)]
struct CachedGroup {
    members: HashSet<UserId>,
    /// The newest live messages, oldest first: exactly the [`WINDOW`] newest, or every one when the
    /// group has fewer. `None` when not known (dropped by an edit or a deletion).
    window: Option<VecDeque<WindowMessage>>,
}

impl CachedGroup {
    fn weight(&self) -> usize {
        self.members.len() * MEMBER_COST
            + self
                .window
                .iter()
                .flatten()
                .map(WindowMessage::weight)
                .sum::<usize>()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Every entry up to here is reflected; `None` before the first fill or fold.
    epoch: Option<Epoch>,
    groups: HashMap<GroupId, CachedGroup>,
    users: HashMap<UserId, UserRef>,
    bytes: usize,
}

/// The answer to a page read from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPage {
    pub epoch: Epoch,
    pub messages: Vec<Message>,
}

/// What the cache knows about a caller posting to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poster {
    /// The cache's epoch: what it says is true of the database at this epoch.
    pub epoch: Epoch,
    pub member: bool,
    /// The caller's name, when the cache has it.
    pub user: Option<UserRef>,
}

/// The cache of one database (see the module documentation).
#[derive(Debug, Default)]
pub struct RecentWindow {
    state: RwLock<State>,
}

impl RecentWindow {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The epoch the cache reflects, if any.
    pub fn epoch(&self) -> Option<Epoch> {
        self.read().epoch
    }

    /// The newest `limit` messages of `group` as `caller` sees them, when the cache holds the group's
    /// window and `caller` is a member, and its epoch may answer a client at `client_epoch`
    /// (`may_answer`, the database's own rule). `None`: ask the database.
    pub fn page(
        &self,
        group: GroupId,
        caller: UserId,
        limit: usize,
        may_answer: impl FnOnce(Epoch) -> bool,
    ) -> Option<CachedPage> {
        let state = self.read();
        let epoch = state.epoch?;
        let cached = state.groups.get(&group)?;
        let window = cached.window.as_ref()?;
        // A window of WINDOW messages may have more behind it; a shorter one is the whole chat.
        if !cached.members.contains(&caller)
            || (limit > window.len() && window.len() >= WINDOW)
            || !may_answer(epoch)
        {
            return None;
        }
        let skip = window.len().saturating_sub(limit);
        let messages = window
            .iter()
            .skip(skip)
            .map(|message| message.view(caller))
            .collect();
        Some(CachedPage { epoch, messages })
    }

    /// Whether the cache knows `group` (its members at least).
    pub fn holds(&self, group: GroupId) -> bool {
        self.read().groups.contains_key(&group)
    }

    /// Whether `user` may post to `group` and under which name, as of the cache's epoch; `None` when
    /// the group is not cached.
    pub fn poster(&self, group: GroupId, user: UserId) -> Option<Poster> {
        let state = self.read();
        let epoch = state.epoch?;
        let cached = state.groups.get(&group)?;
        Some(Poster {
            epoch,
            member: cached.members.contains(&user),
            user: state.users.get(&user).cloned(),
        })
    }

    /// Keeps `snapshot`, read from the database at `at`, if the cache is at `at` (or holds nothing
    /// yet); otherwise drops it (see the module documentation). Returns whether it was kept.
    pub fn fill(&self, at: Epoch, snapshot: GroupSnapshot) -> bool {
        let mut state = self.write();
        match state.epoch {
            Some(epoch) if epoch != at => return false,
            _ => state.epoch = Some(at),
        }
        if let Some(old) = state.groups.remove(&snapshot.group) {
            state.bytes = state.bytes.saturating_sub(old.weight());
        }
        for user in &snapshot.members {
            remember_user(&mut state, user.clone());
        }
        for message in snapshot.newest.iter().flatten() {
            remember_user(&mut state, message.message.sender.clone());
        }
        let window = snapshot.newest.map(|newest| {
            let skip = newest.len().saturating_sub(WINDOW);
            newest.into_iter().skip(skip).collect()
        });
        let cached = CachedGroup {
            members: snapshot.members.iter().map(|user| user.id).collect(),
            window,
        };
        state.bytes += cached.weight();
        state.groups.insert(snapshot.group, cached);
        trim(&mut state);
        true
    }

    /// Folds committed entries in, in epoch order (see the module documentation).
    pub fn fold(&self, entries: &[LogEntry]) {
        if entries.is_empty() {
            return;
        }
        let mut state = self.write();
        for entry in entries {
            match state.epoch {
                Some(epoch) if entry.epoch <= epoch => continue,
                Some(epoch) if epoch.0.checked_add(1) == Some(entry.epoch.0) => {
                    fold_one(&mut state, entry);
                    state.epoch = Some(entry.epoch);
                }
                // A gap, or nothing known yet: an empty cache reflects any epoch.
                _ => {
                    state.groups.clear();
                    state.bytes = 0;
                    state.epoch = Some(entry.epoch);
                    fold_one(&mut state, entry);
                }
            }
        }
        trim(&mut state);
    }

    /// Forgets everything (the database changed in a way the cache did not see).
    pub fn clear(&self) {
        *self.write() = State::default();
    }
}

fn remember_user(state: &mut State, user: UserRef) {
    if state.users.len() >= MAX_USERS && !state.users.contains_key(&user.id) {
        state.users.clear();
    }
    state.users.insert(user.id, user);
}

/// Drops groups until the cache is back under three quarters of its budget.
fn trim(state: &mut State) {
    if state.bytes <= BUDGET_BYTES {
        return;
    }
    let goal = BUDGET_BYTES / 4 * 3;
    let victims: Vec<GroupId> = state.groups.keys().copied().collect();
    for group in victims {
        if state.bytes <= goal {
            break;
        }
        if let Some(old) = state.groups.remove(&group) {
            state.bytes = state.bytes.saturating_sub(old.weight());
        }
    }
}

/// Drops the window of `group` (its membership stays known).
fn forget_window(state: &mut State, group: GroupId) {
    if let Some(cached) = state.groups.get_mut(&group) {
        let weight = cached.weight();
        cached.window = None;
        let left = cached.weight();
        state.bytes = state.bytes.saturating_sub(weight - left);
    }
}

/// Applies one entry to the cached state.
fn fold_one(state: &mut State, entry: &LogEntry) {
    match &entry.mutation {
        Mutation::RegisterUser(user) => remember_user(
            state,
            UserRef {
                id: user.id,
                username: user.username.clone(),
                tag: user.tag,
            },
        ),
        Mutation::CreateGroup(group) => {
            let cached = CachedGroup {
                members: HashSet::from([group.creator]),
                window: Some(VecDeque::new()),
            };
            state.bytes += cached.weight();
            state.groups.insert(group.id, cached);
        }
        Mutation::AddMember { group, user, .. } => {
            if let Some(cached) = state.groups.get_mut(group)
                && cached.members.insert(*user)
            {
                state.bytes += MEMBER_COST;
            }
        }
        Mutation::RemoveMember { group, user } => {
            if let Some(cached) = state.groups.get_mut(group)
                && cached.members.remove(user)
            {
                state.bytes = state.bytes.saturating_sub(MEMBER_COST);
            }
        }
        Mutation::DeleteGroup { group, .. } => {
            if let Some(old) = state.groups.remove(group) {
                state.bytes = state.bytes.saturating_sub(old.weight());
            }
        }
        Mutation::PostMessage(new) => {
            let ChatId::Group(group) = new.chat else {
                return;
            };
            let sender = state.users.get(&new.sender).cloned();
            let Some(cached) = state.groups.get_mut(&group) else {
                return;
            };
            let Some(window) = cached.window.as_mut() else {
                return;
            };
            let Some(sender) = sender else {
                // Without the sender's name the message cannot be shown as the database would.
                forget_window(state, group);
                return;
            };
            let message = WindowMessage {
                message: new.message(sender, entry.epoch),
                reactions: Vec::new(),
            };
            let mut weight = message.weight() as isize;
            window.push_back(message);
            if window.len() > WINDOW
                && let Some(oldest) = window.pop_front()
            {
                weight -= oldest.weight() as isize;
            }
            state.bytes = state.bytes.saturating_add_signed(weight);
        }
        Mutation::EditMessage { chat, .. } => {
            // The text changes, and so does the excerpt of every reply quoting it (same chat only).
            if let ChatId::Group(group) = chat {
                forget_window(state, *group);
            }
        }
        Mutation::DeleteMessage { message, .. } => {
            // The entry does not name the chat: drop every window that shows the message or a quote
            // of it (a deleted message disappears, and so does its quote in replies).
            let touched: Vec<GroupId> = state
                .groups
                .iter()
                .filter(|(_, cached)| {
                    cached.window.iter().flatten().any(|shown| {
                        shown.message.id == *message
                            || shown
                                .message
                                .reply_to
                                .as_ref()
                                .is_some_and(|quote| quote.id == *message)
                    })
                })
                .map(|(group, _)| *group)
                .collect();
            for group in touched {
                forget_window(state, group);
            }
        }
        Mutation::SetReaction {
            message,
            chat: ChatId::Group(group),
            user,
            emoji,
            on,
            ..
        } => {
            let Some(shown) = state
                .groups
                .get_mut(group)
                .and_then(|cached| cached.window.as_mut())
                .and_then(|window| window.iter_mut().find(|shown| shown.message.id == *message))
            else {
                return;
            };
            set_reaction(shown, *user, emoji, *on, entry.epoch);
        }
        Mutation::SetReaction { .. } | Mutation::MarkRead { .. } | Mutation::Configure { .. } => {}
    }
}

fn set_reaction(shown: &mut WindowMessage, user: UserId, emoji: &str, on: bool, epoch: Epoch) {
    let position = shown.reactions.iter().position(|(held, _)| held == emoji);
    match (position, on) {
        (Some(index), true) => {
            let users = &mut shown.reactions[index].1;
            if !users.iter().any(|(held, _)| *held == user) {
                users.push((user, epoch));
            }
        }
        (None, true) => shown
            .reactions
            .push((emoji.to_owned(), vec![(user, epoch)])),
        (Some(index), false) => {
            shown.reactions[index].1.retain(|(held, _)| *held != user);
            if shown.reactions[index].1.is_empty() {
                shown.reactions.remove(index);
            }
        }
        (None, false) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ids::{MessageId, Term, UnixMillis, UserTag};
    use crate::storage::messages::NewMessage;
    use crate::storage::model::Quote;

    fn user(name: &str) -> UserRef {
        UserRef {
            id: UserId::random(),
            username: name.into(),
            tag: UserTag::new(1).unwrap(),
        }
    }

    fn entry(epoch: u64, mutation: Mutation) -> LogEntry {
        LogEntry {
            term: Term(1),
            epoch: Epoch(epoch),
            mutation,
        }
    }

    fn post(group: GroupId, sender: &UserRef, text: &str, reply_to: Option<Quote>) -> Mutation {
        Mutation::PostMessage(NewMessage {
            id: MessageId::random(),
            chat: ChatId::Group(group),
            sender: sender.id,
            receiver: None,
            content: text.into(),
            created_at: UnixMillis(1),
            client_id: None,
            reply_to,
        })
    }

    fn texts(page: &CachedPage) -> Vec<&str> {
        page.messages.iter().map(|m| m.content.as_str()).collect()
    }

    /// A window at epoch 10 holding group `g` with members ada and bob and no messages.
    fn filled() -> (RecentWindow, GroupId, UserRef, UserRef) {
        let window = RecentWindow::default();
        let (ada, bob, g) = (user("ada"), user("bob"), GroupId::random());
        let kept = window.fill(
            Epoch(10),
            GroupSnapshot {
                group: g,
                members: vec![ada.clone(), bob.clone()],
                newest: Some(Vec::new()),
            },
        );
        assert!(kept);
        (window, g, ada, bob)
    }

    #[test]
    fn folded_messages_are_the_page_and_the_window_keeps_only_the_newest() {
        let (window, g, ada, bob) = filled();
        let entries: Vec<LogEntry> = (0..WINDOW as u64 + 5)
            .map(|n| entry(11 + n, post(g, &ada, &format!("m{n}"), None)))
            .collect();

        window.fold(&entries);

        let page = window.page(g, bob.id, 3, |_| true).unwrap();
        assert_eq!(page.epoch, Epoch(10 + WINDOW as u64 + 5));
        assert_eq!(texts(&page), vec!["m52", "m53", "m54"]);
        assert_eq!(page.messages[0].sender, ada);
        assert_eq!(page.messages[0].epoch, Epoch(63));
        // WINDOW messages may have older ones behind them: a bigger page goes to the database.
        assert!(window.page(g, bob.id, WINDOW, |_| true).is_some());
        assert!(window.page(g, bob.id, WINDOW + 1, |_| true).is_none());
    }

    #[test]
    fn a_short_window_is_the_whole_chat_and_answers_any_limit() {
        let (window, g, ada, _) = filled();
        window.fold(&[entry(11, post(g, &ada, "only", None))]);

        let page = window.page(g, ada.id, 500, |_| true).unwrap();

        assert_eq!(texts(&page), vec!["only"]);
    }

    #[test]
    fn outsiders_clients_ahead_and_unknown_groups_are_left_to_the_database() {
        let (window, g, ada, _) = filled();
        let eve = user("eve");

        assert!(window.page(g, eve.id, 3, |_| true).is_none());
        assert!(
            window
                .page(g, ada.id, 3, |epoch| epoch >= Epoch(11))
                .is_none()
        );
        assert!(
            window
                .page(GroupId::random(), ada.id, 3, |_| true)
                .is_none()
        );
        assert!(
            window
                .page(g, ada.id, 3, |epoch| epoch >= Epoch(10))
                .is_some()
        );
    }

    #[test]
    fn a_fill_from_another_epoch_is_dropped_and_entries_already_held_are_skipped() {
        let (window, g, ada, bob) = filled();
        window.fold(&[entry(11, post(g, &ada, "a", None))]);

        // Read at 10, before entry 11: folding 11 again later would count it twice.
        let stale = GroupSnapshot {
            group: g,
            members: vec![ada.clone()],
            newest: Some(Vec::new()),
        };
        assert!(!window.fill(Epoch(10), stale));
        // Redelivered entries change nothing.
        window.fold(&[
            entry(10, post(g, &ada, "old", None)),
            entry(11, post(g, &ada, "a", None)),
        ]);

        let page = window.page(g, bob.id, 10, |_| true).unwrap();
        assert_eq!(texts(&page), vec!["a"]);
        assert_eq!(page.epoch, Epoch(11));
    }

    #[test]
    fn a_gap_in_the_entries_empties_the_window() {
        let (window, g, ada, _) = filled();

        window.fold(&[entry(12, post(g, &ada, "after a gap", None))]);

        assert_eq!(window.epoch(), Some(Epoch(12)));
        assert!(window.page(g, ada.id, 3, |_| true).is_none());
        assert!(window.poster(g, ada.id).is_none());
    }

    #[test]
    fn membership_changes_are_followed_and_a_deleted_group_is_forgotten() {
        let (window, g, ada, bob) = filled();
        let cyd = user("cyd");

        window.fold(&[
            entry(
                11,
                Mutation::RegisterUser(crate::storage::users::NewUser {
                    id: cyd.id,
                    username: cyd.username.clone(),
                    tag: cyd.tag,
                    password_hash: "x".into(),
                    created_at: UnixMillis(1),
                }),
            ),
            entry(
                12,
                Mutation::AddMember {
                    group: g,
                    user: cyd.id,
                    joined_at: UnixMillis(1),
                },
            ),
            entry(
                13,
                Mutation::RemoveMember {
                    group: g,
                    user: bob.id,
                },
            ),
        ]);

        assert_eq!(
            window.poster(g, cyd.id),
            Some(Poster {
                epoch: Epoch(13),
                member: true,
                user: Some(cyd.clone())
            })
        );
        assert!(!window.poster(g, bob.id).unwrap().member);
        assert!(window.page(g, bob.id, 3, |_| true).is_none());
        window.fold(&[entry(
            14,
            Mutation::DeleteGroup {
                group: g,
                deleted_at: UnixMillis(2),
            },
        )]);
        assert!(window.poster(g, ada.id).is_none());
    }

    #[test]
    fn reactions_show_each_viewers_own_and_keep_the_order_of_first_use() {
        let (window, g, ada, bob) = filled();
        let message = post(g, &ada, "hi", None);
        let Mutation::PostMessage(new) = &message else {
            unreachable!()
        };
        let id = new.id;
        let react = |user: &UserRef, emoji: &str, on: bool| Mutation::SetReaction {
            message: id,
            chat: ChatId::Group(g),
            user: user.id,
            emoji: emoji.into(),
            on,
            count: 0,
            at: UnixMillis(1),
        };

        window.fold(&[
            entry(11, message.clone()),
            entry(12, react(&ada, "👍", true)),
            entry(13, react(&bob, "🎉", true)),
            entry(14, react(&bob, "👍", true)),
            // ada's 👍 came first; without it, 👍 counts from bob's at 14, after 🎉 at 13.
            entry(15, react(&ada, "👍", false)),
        ]);

        let reactions = |viewer: &UserRef| {
            window.page(g, viewer.id, 1, |_| true).unwrap().messages[0]
                .reactions
                .iter()
                .map(|r| (r.emoji.clone(), r.count, r.me))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reactions(&bob),
            vec![("🎉".to_string(), 1, true), ("👍".to_string(), 1, true)]
        );
        assert_eq!(
            reactions(&ada),
            vec![("🎉".to_string(), 1, false), ("👍".to_string(), 1, false)]
        );
    }

    #[test]
    fn edits_and_deletions_drop_the_windows_they_touch_even_through_a_quote() {
        let (window, g, ada, bob) = filled();
        let (h, other) = (GroupId::random(), GroupId::random());
        for group in [h, other] {
            assert!(window.fill(
                Epoch(10),
                GroupSnapshot {
                    group,
                    members: vec![ada.clone()],
                    newest: Some(Vec::new()),
                },
            ));
        }
        // A message of `h` that only a reply in `h` still shows (the message itself left the window
        // long ago, or was never in it).
        let quoted = MessageId::random();
        let quote = Quote {
            id: quoted,
            sender: ada.clone(),
            excerpt: "old".into(),
        };
        window.fold(&[
            entry(11, post(h, &ada, "reply", Some(quote))),
            entry(12, post(other, &ada, "unrelated", None)),
            entry(13, post(g, &ada, "to be edited", None)),
        ]);
        let edited = window.page(g, bob.id, 1, |_| true).unwrap().messages[0].id;

        window.fold(&[
            entry(
                14,
                Mutation::DeleteMessage {
                    message: quoted,
                    deleted_at: UnixMillis(2),
                },
            ),
            entry(
                15,
                Mutation::EditMessage {
                    message: edited,
                    chat: ChatId::Group(g),
                    content: "new".into(),
                    edited_at: UnixMillis(3),
                },
            ),
        ]);

        assert!(window.page(h, ada.id, 1, |_| true).is_none());
        assert!(window.page(g, ada.id, 1, |_| true).is_none());
        assert_eq!(
            texts(&window.page(other, ada.id, 1, |_| true).unwrap()),
            vec!["unrelated"]
        );
        // Membership outlives the window: posting is still planned from memory.
        assert!(window.poster(g, bob.id).unwrap().member);
    }
}
