//! Presence and typing: who holds a live connection on this node, who is online anywhere in the
//! cluster, and "… is typing" notices. None of it is written to the log or to any file: it is soft
//! state that the data plane spreads over the tree ([`relay`]) and that dies with the processes.
//!
//! ```text
//!   web: an event stream opens ──connect()──▶ Presence ──local set──▶ data plane (Relay, up/down)
//!   web: POST …/typing ────────typing()────▶ Presence ──notice─────▶ data plane (up to the root,
//!                                                                      then down to every node)
//!   web: streams ◀──online set, notices──── Presence ◀──────────────── data plane
//! ```
//!
//! Without a data plane (a node's web layer in tests, a single process) the handle is
//! *standalone*: this node's users are everyone online and typing notices loop back.

pub mod relay;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::storage::{ChatId, UserId, UserTag};

/// Typing notices buffered for this node's streams (a slow stream misses some, never blocks).
const TYPING_BUFFER: usize = 256;
/// Typing notices waiting for the data plane; more are dropped (they repeat every few seconds).
const OUTGOING_BUFFER: usize = 256;

/// "`user` is typing in `chat`", valid for a few seconds on the listener's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingNotice {
    pub chat: ChatId,
    pub user: UserId,
    pub username: String,
    pub tag: UserTag,
}

/// The data plane's end of a relayed [`Presence`].
pub struct PresenceLink {
    /// This node's connected users, whenever they change.
    pub local: watch::Receiver<BTreeSet<UserId>>,
    /// Notices of this node's users, to send up the tree.
    pub typing: mpsc::Receiver<TypingNotice>,
}

/// One node's presence handle; clones share it.
#[derive(Clone)]
pub struct Presence {
    shared: Arc<Shared>,
}

struct Shared {
    connections: Mutex<BTreeMap<UserId, usize>>,
    local: watch::Sender<BTreeSet<UserId>>,
    online: watch::Sender<Arc<BTreeSet<UserId>>>,
    typing: broadcast::Sender<TypingNotice>,
    /// Where this node's notices go: the data plane, or (`None`) straight back to this node.
    outgoing: Option<mpsc::Sender<TypingNotice>>,
}

impl Presence {
    fn with_outgoing(outgoing: Option<mpsc::Sender<TypingNotice>>) -> Presence {
        Presence {
            shared: Arc::new(Shared {
                connections: Mutex::new(BTreeMap::new()),
                local: watch::channel(BTreeSet::new()).0,
                online: watch::channel(Arc::new(BTreeSet::new())).0,
                typing: broadcast::channel(TYPING_BUFFER).0,
                outgoing,
            }),
        }
    }

    /// A handle with no cluster behind it: this node's users are everyone online.
    pub fn standalone() -> Presence {
        Presence::with_outgoing(None)
    }

    /// A handle whose cluster-wide view the data plane keeps, through the returned link.
    pub fn relayed() -> (Presence, PresenceLink) {
        let (outgoing, typing) = mpsc::channel(OUTGOING_BUFFER);
        let presence = Presence::with_outgoing(Some(outgoing));
        let local = presence.shared.local.subscribe();
        (presence, PresenceLink { local, typing })
    }

    fn standalone_mode(&self) -> bool {
        self.shared.outgoing.is_none()
    }

    /// `user` holds a live connection until the answer is dropped.
    pub fn connect(&self, user: UserId) -> Connected {
        let first = {
            let mut connections = self.connections();
            let count = connections.entry(user).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.local_changed();
        }
        Connected {
            presence: self.clone(),
            user,
        }
    }

    fn disconnect(&self, user: UserId) {
        let last = {
            let mut connections = self.connections();
            match connections.get_mut(&user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    connections.remove(&user);
                    true
                }
                None => false,
            }
        };
        if last {
            self.local_changed();
        }
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, BTreeMap<UserId, usize>> {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn local_changed(&self) {
        let users: BTreeSet<UserId> = self.connections().keys().copied().collect();
        if self.standalone_mode() {
            self.publish_online(users.clone());
        }
        self.shared.local.send_replace(users);
    }

    /// Who is online in the cluster as this node knows it, and its changes.
    pub fn online(&self) -> watch::Receiver<Arc<BTreeSet<UserId>>> {
        self.shared.online.subscribe()
    }

    pub fn is_online(&self, user: &UserId) -> bool {
        self.shared.online.borrow().contains(user)
    }

    /// The data plane's view of who is online (standalone: this node's users).
    pub fn publish_online(&self, users: BTreeSet<UserId>) {
        self.shared.online.send_if_modified(|online| {
            if **online == users {
                return false;
            }
            *online = Arc::new(users);
            true
        });
    }

    /// A notice from one of this node's users, for everyone in the chat wherever they are.
    pub fn typing(&self, notice: TypingNotice) {
        match &self.shared.outgoing {
            // A full queue drops the notice: the client repeats it while typing.
            Some(outgoing) => {
                let _ = outgoing.try_send(notice);
            }
            None => self.deliver_typing(notice),
        }
    }

    /// A notice that reached this node (from the data plane, or looped back standalone).
    pub fn deliver_typing(&self, notice: TypingNotice) {
        // No stream listening is not an error.
        let _ = self.shared.typing.send(notice);
    }

    /// Notices delivered on this node from now on.
    pub fn typing_notices(&self) -> broadcast::Receiver<TypingNotice> {
        self.shared.typing.subscribe()
    }
}

/// A live connection of one user; dropping it ends it.
pub struct Connected {
    presence: Presence,
    user: UserId,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.presence.disconnect(self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_online_while_any_connection_lasts() {
        let presence = Presence::standalone();
        let ada = UserId::random();
        let first = presence.connect(ada);
        let second = presence.connect(ada);
        assert!(presence.is_online(&ada));
        drop(first);
        assert!(presence.is_online(&ada), "one connection is left");
        drop(second);
        assert!(!presence.is_online(&ada));
    }

    #[test]
    fn a_relayed_handle_leaves_the_cluster_view_to_the_data_plane() {
        let (presence, mut link) = Presence::relayed();
        let ada = UserId::random();
        let _connected = presence.connect(ada);
        assert!(link.local.has_changed().unwrap());
        assert_eq!(*link.local.borrow_and_update(), BTreeSet::from([ada]));
        assert!(
            !presence.is_online(&ada),
            "not before the data plane says so"
        );
        presence.publish_online(BTreeSet::from([ada]));
        assert!(presence.is_online(&ada));
        let notice = TypingNotice {
            chat: ChatId::direct(ada, UserId::random()),
            user: ada,
            username: "ada".into(),
            tag: "0001".parse().unwrap(),
        };
        presence.typing(notice.clone());
        assert_eq!(link.typing.try_recv().unwrap(), notice);
    }
}
