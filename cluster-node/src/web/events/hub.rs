//! The event hub: one task per node that follows the committed log (the writer's broadcast, or the data
//! plane's events down the tree), keeps a ring of recent entries for streams that resume, and remembers
//! what entries do not say themselves (a deleted message's chat, a sender's name, a group's name).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::service::EventSource;
use crate::storage::{
    ChatId, Epoch, GroupId, LogEntry, Message, MessageId, Mutation, User, UserId,
};

use super::super::views::UserView;

/// How long the hub waits before asking an absent or closed source again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// Entries buffered per stream between the hub and the stream's task.
const LIVE_BUFFER: usize = 1024;
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
pub(crate) struct Subscription {
    pub(crate) replay: Vec<Arc<LogEntry>>,
    /// The ring holds every entry after the requested epoch.
    pub(crate) covered: bool,
    /// The first entry the ring holds.
    pub(crate) first: Option<Epoch>,
    /// The last entry the hub has seen.
    pub(crate) latest: Option<Epoch>,
    pub(crate) live: broadcast::Receiver<Arc<LogEntry>>,
}

/// Fans the event source out to streams, keeping recent entries for resumption and what the entries
/// themselves do not say (a deleted message's chat, a sender's name).
pub(crate) struct EventHub {
    state: Mutex<HubState>,
}

impl EventHub {
    /// A hub fed from `source` by a task that stops with `stop`.
    pub(crate) fn start(
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
    pub(crate) fn push(&self, entry: LogEntry) {
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
    pub(crate) fn subscribe(&self, after: Option<Epoch>) -> Subscription {
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

    pub(crate) fn remember_user(&self, user: &User) {
        self.lock().users.insert(user.id, UserView::from(user));
    }

    pub(crate) fn remember_messages(&self, messages: &[Message]) {
        let mut state = self.lock();
        // Reads repeat the same messages and senders: look before inserting (an insert hashes and
        // clones the name again, a look only hashes).
        for message in messages {
            if state.chats.get(&message.id).is_none() {
                state.chats.insert(message.id, message.chat);
            }
            if state.users.get(&message.sender.id).is_none() {
                state
                    .users
                    .insert(message.sender.id, UserView::from(&message.sender));
            }
        }
    }

    pub(crate) fn chat_of(&self, message: MessageId) -> Option<ChatId> {
        self.lock().chats.get(&message).copied()
    }

    pub(crate) fn user(&self, id: UserId) -> Option<UserView> {
        self.lock().users.get(&id).cloned()
    }

    pub(crate) fn group_name(&self, id: GroupId) -> Option<String> {
        self.lock().groups.get(&id).cloned()
    }

    pub(crate) fn remember_group(&self, id: GroupId, name: &str) {
        self.lock().groups.insert(id, name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::super::entries::{entry, post};
    use super::*;

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
