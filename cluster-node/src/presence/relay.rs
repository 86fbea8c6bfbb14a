//! Who is online, spread over the tree without touching the replicated log: a pure state machine.
//!
//! ```text
//!            root: online = its subtree (everyone)
//!           ▲ subtree sets        │ online set
//!           │ (deltas)            ▼ (deltas)
//!      node: subtree = own users ∪ children's subtrees;  online = parent's ∪ subtree
//! ```
//!
//! Every node sends its parent the union of the users connected in its subtree, and every node sends
//! its children the online set as it knows it (the root: its subtree, which is everyone). Both travel
//! as [`SetUpdate`]s: the whole set to a new receiver (a new parent, a changed set of children, a
//! restart), otherwise only what was added and removed, and when nothing changed a bodiless
//! *heartbeat* every [`HEARTBEAT`] that names the version the receiver should hold. A receiver applies
//! a delta only on top of the exact version it was computed from; one that finds itself behind (a
//! message was lost, the link was not up yet, it restarted) asks the sender for the whole set again
//! ([`Outputs::ask`], answered by [`Relay::resend_to`]). So a loss costs at most one heartbeat
//! interval and one whole set, and an idle edge costs one small message per interval whatever the
//! number of users.
//!
//! Why this and not the log: presence changes far more often than chat data and is worthless a
//! minute later; writing it would put every connect and disconnect through the voters' fsyncs.
//!
//! A node that dies takes its users with it: its parent stops counting the child once the tree no
//! longer has it (`set_tree`), and the change flows up and back down like any other.
//!
//! Cost: one change costs one small message per hop up to the root and one per tree edge down;
//! changes within [`MIN_GAP`] of the last send leave together. A whole set (the users' ids) crosses an
//! edge only when the edge is new or a receiver fell behind.

use std::collections::{BTreeMap, BTreeSet};

use overlay::{Millis, NodeId};
use serde::{Deserialize, Serialize};

/// An edge that carried nothing for this long carries a heartbeat (the version the receiver should
/// hold), so a receiver that missed something notices within about this long.
pub const HEARTBEAT: Millis = Millis(1_000);
/// Changes that come sooner than this after the last update wait for the next poll.
pub const MIN_GAP: Millis = Millis(200);

/// A change of a set from one sender to one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetUpdate<U> {
    /// The sender's stream of updates; versions count within it.
    pub stream: u64,
    pub version: u64,
    /// `None`: `added` is the whole set. Otherwise the version this delta goes on top of (equal to
    /// `version` for a heartbeat, which changes nothing).
    pub base: Option<u64>,
    pub added: Vec<U>,
    pub removed: Vec<U>,
}

/// The sending side of one set: what the receiver was last told.
#[derive(Debug, Clone)]
pub struct SetSender<K, U> {
    stream: u64,
    version: u64,
    sent: BTreeSet<U>,
    /// Whom the last update went to; another target gets the whole set.
    target: Option<K>,
    /// When the last update of any kind left (heartbeats count from it).
    last_sent: Millis,
    /// When the last change left ([`MIN_GAP`] counts from it; heartbeats do not hold changes back).
    last_change: Millis,
}

impl<K: PartialEq + Clone, U: Ord + Clone> SetSender<K, U> {
    pub fn new(stream: u64) -> Self {
        SetSender {
            stream,
            version: 0,
            sent: BTreeSet::new(),
            target: None,
            last_sent: Millis::ZERO,
            last_change: Millis::ZERO,
        }
    }

    /// The update that brings `target` to `current`, if one is due at `now`: the whole set to a new
    /// target, a delta when the set changed (at most every [`MIN_GAP`]), a heartbeat after
    /// [`HEARTBEAT`] of silence.
    pub fn next(&mut self, target: &K, current: &BTreeSet<U>, now: Millis) -> Option<SetUpdate<U>> {
        let quiet = now.since(self.last_sent);
        let update = if self.target.as_ref() != Some(target) {
            self.last_change = now;
            self.version += 1;
            SetUpdate {
                stream: self.stream,
                version: self.version,
                base: None,
                added: current.iter().cloned().collect(),
                removed: Vec::new(),
            }
        } else if self.sent != *current && now.since(self.last_change) >= MIN_GAP {
            self.last_change = now;
            self.version += 1;
            SetUpdate {
                stream: self.stream,
                version: self.version,
                base: Some(self.version - 1),
                added: current.difference(&self.sent).cloned().collect(),
                removed: self.sent.difference(current).cloned().collect(),
            }
        } else if quiet >= HEARTBEAT {
            SetUpdate {
                stream: self.stream,
                version: self.version,
                base: Some(self.version),
                added: Vec::new(),
                removed: Vec::new(),
            }
        } else {
            return None;
        };
        self.last_sent = now;
        self.target = Some(target.clone());
        self.sent = current.clone();
        Some(update)
    }

    /// Forgets the target: the next update is a whole set (the receiver asked for it).
    pub fn reset(&mut self) {
        self.target = None;
    }
}

/// The receiving side of one set.
#[derive(Debug, Clone)]
pub struct SetMirror<U> {
    /// `(stream, version)` of the update the set is at; `None` before a whole set arrived or after
    /// a delta could not be applied.
    at: Option<(u64, u64)>,
    set: BTreeSet<U>,
}

impl<U> Default for SetMirror<U> {
    fn default() -> Self {
        SetMirror {
            at: None,
            set: BTreeSet::new(),
        }
    }
}

impl<U: Ord + Clone> SetMirror<U> {
    pub fn set(&self) -> &BTreeSet<U> {
        &self.set
    }

    /// Applies `update`. A delta or heartbeat that does not go on top of the version held leaves
    /// the set as it is and answers [`Applied::Behind`]: the sender must send the whole set.
    pub fn apply(&mut self, update: SetUpdate<U>) -> Applied {
        match update.base {
            None => {
                let set: BTreeSet<U> = update.added.into_iter().collect();
                let changed = set != self.set;
                self.set = set;
                self.at = Some((update.stream, update.version));
                if changed {
                    Applied::Changed
                } else {
                    Applied::Unchanged
                }
            }
            Some(base) if self.at == Some((update.stream, base)) => {
                let mut changed = false;
                for user in update.removed {
                    changed |= self.set.remove(&user);
                }
                for user in update.added {
                    changed |= self.set.insert(user);
                }
                self.at = Some((update.stream, update.version));
                if changed {
                    Applied::Changed
                } else {
                    Applied::Unchanged
                }
            }
            Some(_) => {
                self.at = None;
                Applied::Behind
            }
        }
    }
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    Unchanged,
    /// The update was not for the version held: ask for the whole set.
    Behind,
}

/// What a node has to do after [`Relay::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs<U> {
    /// To the parent: the subtree's users.
    pub up: Option<(NodeId, SetUpdate<U>)>,
    /// To every child: the online set.
    pub down: Option<SetUpdate<U>>,
    /// The online set changed: publish it to this node's listeners.
    pub online: Option<BTreeSet<U>>,
    /// Neighbours whose updates this node could not apply: ask each to send its whole set.
    pub ask: BTreeSet<NodeId>,
}

/// One node's part in spreading presence.
#[derive(Debug, Clone)]
pub struct Relay<U> {
    local: BTreeSet<U>,
    parent: Option<NodeId>,
    children: BTreeSet<NodeId>,
    from_children: BTreeMap<NodeId, SetMirror<U>>,
    from_parent: SetMirror<U>,
    up: SetSender<NodeId, U>,
    down: SetSender<BTreeSet<NodeId>, U>,
    published: Option<BTreeSet<U>>,
    ask: BTreeSet<NodeId>,
}

impl<U: Ord + Clone> Relay<U> {
    /// `stream` tells this relay's updates from an earlier process's (a random number does).
    pub fn new(stream: u64) -> Self {
        Relay {
            local: BTreeSet::new(),
            parent: None,
            children: BTreeSet::new(),
            from_children: BTreeMap::new(),
            from_parent: SetMirror::default(),
            up: SetSender::new(stream),
            down: SetSender::new(stream.wrapping_add(1)),
            published: None,
            ask: BTreeSet::new(),
        }
    }

    /// The tree moved: a child no longer there stops counting (its users go offline with it), a
    /// new parent's view is waited for.
    pub fn set_tree(&mut self, parent: Option<NodeId>, children: BTreeSet<NodeId>) {
        if parent != self.parent {
            self.parent = parent;
            self.from_parent = SetMirror::default();
        }
        self.from_children
            .retain(|child, _| children.contains(child));
        self.children = children;
    }

    /// The users connected to this node.
    pub fn set_local(&mut self, local: BTreeSet<U>) {
        self.local = local;
    }

    /// A child's subtree report; ignored from a node that is not a child.
    pub fn from_child(&mut self, child: NodeId, update: SetUpdate<U>) {
        if self.children.contains(&child)
            && self.from_children.entry(child).or_default().apply(update) == Applied::Behind
        {
            self.ask.insert(child);
        }
    }

    /// The parent's online set; ignored from a node that is not the parent.
    pub fn from_parent(&mut self, from: NodeId, update: SetUpdate<U>) {
        if self.parent == Some(from) && self.from_parent.apply(update) == Applied::Behind {
            self.ask.insert(from);
        }
    }

    /// `from` asked for the whole set: the parent gets the subtree again, or the children the
    /// online set (all of them: they share one stream of updates).
    pub fn resend_to(&mut self, from: NodeId) {
        if self.parent == Some(from) {
            self.up.reset();
        } else if self.children.contains(&from) {
            self.down.reset();
        }
    }

    /// The users connected anywhere in this node's subtree.
    pub fn subtree(&self) -> BTreeSet<U> {
        let mut users = self.local.clone();
        for mirror in self.from_children.values() {
            users.extend(mirror.set().iter().cloned());
        }
        users
    }

    /// Who is online as this node knows it: the root's subtree is everyone; below it the parent's
    /// view, with this subtree's own users counted at once.
    pub fn online(&self) -> BTreeSet<U> {
        let mut users = self.subtree();
        if self.parent.is_some() {
            users.extend(self.from_parent.set().iter().cloned());
        }
        users
    }

    /// What to send and publish at `now`.
    pub fn poll(&mut self, now: Millis) -> Outputs<U> {
        let subtree = self.subtree();
        let up = self
            .parent
            .and_then(|parent| Some((parent, self.up.next(&parent, &subtree, now)?)));
        let online = self.online();
        let down = if self.children.is_empty() {
            self.down.reset();
            None
        } else {
            self.down.next(&self.children, &online, now)
        };
        let changed = self.published.as_ref() != Some(&online);
        let online = changed.then(|| {
            self.published = Some(online.clone());
            online
        });
        let ask = std::mem::take(&mut self.ask);
        Outputs {
            up,
            down,
            online,
            ask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(users: &[u32]) -> BTreeSet<u32> {
        users.iter().copied().collect()
    }

    #[test]
    fn a_sender_sends_the_whole_set_first_then_deltas_then_heartbeats() {
        let mut sender: SetSender<NodeId, u32> = SetSender::new(7);
        let to = NodeId(2);
        let first = sender.next(&to, &set(&[1, 2]), Millis(1_000)).expect("due");
        assert_eq!(
            first,
            SetUpdate {
                stream: 7,
                version: 1,
                base: None,
                added: vec![1, 2],
                removed: vec![]
            }
        );
        assert_eq!(
            sender.next(&to, &set(&[2, 3]), Millis(1_100)),
            None,
            "too soon after the last update"
        );
        let delta = sender.next(&to, &set(&[2, 3]), Millis(1_300)).expect("due");
        assert_eq!(
            delta,
            SetUpdate {
                stream: 7,
                version: 2,
                base: Some(1),
                added: vec![3],
                removed: vec![1]
            }
        );
        assert_eq!(
            sender.next(&to, &set(&[2, 3]), Millis(2_000)),
            None,
            "quiet"
        );
        let heartbeat = sender.next(&to, &set(&[2, 3]), Millis(2_300)).expect("due");
        assert_eq!(
            heartbeat,
            SetUpdate {
                stream: 7,
                version: 2,
                base: Some(2),
                added: vec![],
                removed: vec![]
            },
            "after HEARTBEAT of silence, the version the receiver should hold"
        );
        let moved = sender
            .next(&NodeId(5), &set(&[2, 3]), Millis(2_301))
            .expect("due");
        assert_eq!(moved.base, None, "a new target gets the whole set at once");
        sender.reset();
        let asked = sender
            .next(&NodeId(5), &set(&[2, 3]), Millis(2_302))
            .expect("due");
        assert_eq!(asked.base, None, "a receiver that asked gets the whole set");
    }

    #[test]
    fn a_mirror_that_missed_an_update_says_so_until_it_gets_the_whole_set() {
        let mut sender: SetSender<NodeId, u32> = SetSender::new(1);
        let mut mirror = SetMirror::default();
        let to = NodeId(2);
        let whole = sender.next(&to, &set(&[1, 2]), Millis(1_000)).unwrap();
        let lost = sender.next(&to, &set(&[1, 2, 3]), Millis(2_000)).unwrap();
        let after_loss = sender.next(&to, &set(&[1, 3, 4]), Millis(3_000)).unwrap();
        assert_eq!(mirror.apply(whole), Applied::Changed);
        drop(lost);
        assert_eq!(mirror.apply(after_loss), Applied::Behind);
        assert_eq!(*mirror.set(), set(&[1, 2]), "kept as it was");
        let heartbeat = sender.next(&to, &set(&[1, 3, 4]), Millis(4_000)).unwrap();
        assert_eq!(mirror.apply(heartbeat), Applied::Behind, "still behind");
        sender.reset();
        let whole = sender.next(&to, &set(&[1, 3, 4]), Millis(4_001)).unwrap();
        assert_eq!(mirror.apply(whole), Applied::Changed);
        assert_eq!(*mirror.set(), set(&[1, 3, 4]));
        let heartbeat = sender.next(&to, &set(&[1, 3, 4]), Millis(5_001)).unwrap();
        assert_eq!(mirror.apply(heartbeat), Applied::Unchanged);
        let delta = sender.next(&to, &set(&[3, 4]), Millis(6_000)).unwrap();
        assert_eq!(mirror.apply(delta), Applied::Changed);
        assert_eq!(*mirror.set(), set(&[3, 4]));
    }

    #[test]
    fn a_lost_first_update_is_asked_for_again() {
        let mut parent: Relay<u32> = Relay::new(100);
        let mut child: Relay<u32> = Relay::new(200);
        parent.set_tree(None, set_of_nodes(&[2]));
        child.set_tree(Some(NodeId(1)), BTreeSet::new());
        // The child's first (whole) update is lost: the link was not up yet.
        let lost = child.poll(Millis(1_000)).up;
        assert!(lost.is_some_and(|(_, update)| update.base.is_none()));
        child.set_local(set(&[7]));
        let (_, delta) = child.poll(Millis(1_500)).up.expect("a delta");
        parent.from_child(NodeId(2), delta);
        let asked = parent.poll(Millis(1_500)).ask;
        assert_eq!(asked, set_of_nodes(&[2]));
        child.resend_to(NodeId(1));
        let (_, whole) = child.poll(Millis(1_501)).up.expect("the whole set");
        assert_eq!(whole.base, None);
        parent.from_child(NodeId(2), whole);
        let outputs = parent.poll(Millis(1_502));
        assert_eq!(outputs.online, Some(set(&[7])));
        assert!(outputs.ask.is_empty());
    }

    /// A chain root(1) ← 2 ← 3 run to quiescence by hand: messages are delivered as polled.
    struct Chain {
        relays: BTreeMap<u64, Relay<u32>>,
        now: Millis,
        published: BTreeMap<u64, BTreeSet<u32>>,
    }

    impl Chain {
        fn new() -> Self {
            let mut relays = BTreeMap::new();
            for (id, parent, children) in [
                (1, None, vec![2]),
                (2, Some(1), vec![3]),
                (3, Some(2), vec![]),
            ] {
                let mut relay = Relay::new(id * 100);
                relay.set_tree(
                    parent.map(NodeId),
                    children.into_iter().map(NodeId).collect(),
                );
                relays.insert(id, relay);
            }
            Chain {
                relays,
                now: Millis(1_000),
                published: BTreeMap::new(),
            }
        }

        fn children(&self, id: u64) -> Vec<u64> {
            match id {
                1 => vec![2],
                2 => vec![3],
                _ => vec![],
            }
        }

        /// Polls every node until nothing but heartbeats moves, the clock stepping past MIN_GAP each
        /// round; whole-set requests are delivered like the rest.
        fn settle(&mut self) {
            let carries = |update: &SetUpdate<u32>| {
                update.base.is_none() || !update.added.is_empty() || !update.removed.is_empty()
            };
            for _ in 0..20 {
                self.now = Millis(self.now.0 + MIN_GAP.0);
                let mut moved = false;
                for id in [1, 2, 3] {
                    let outputs = self.relays.get_mut(&id).unwrap().poll(self.now);
                    if let Some((parent, update)) = outputs.up {
                        moved |= carries(&update);
                        self.relays
                            .get_mut(&parent.0)
                            .unwrap()
                            .from_child(NodeId(id), update);
                    }
                    if let Some(update) = outputs.down {
                        moved |= carries(&update);
                        for child in self.children(id) {
                            self.relays
                                .get_mut(&child)
                                .unwrap()
                                .from_parent(NodeId(id), update.clone());
                        }
                    }
                    if let Some(online) = outputs.online {
                        moved = true;
                        self.published.insert(id, online);
                    }
                    for asked in outputs.ask {
                        moved = true;
                        self.relays.get_mut(&asked.0).unwrap().resend_to(NodeId(id));
                    }
                }
                if !moved {
                    return;
                }
            }
            panic!("the chain never settled");
        }
    }

    #[test]
    fn a_user_on_a_leaf_shows_on_every_node_and_leaves_with_its_node() {
        let mut chain = Chain::new();
        chain.relays.get_mut(&3).unwrap().set_local(set(&[30]));
        chain.relays.get_mut(&1).unwrap().set_local(set(&[10]));
        chain.settle();
        for id in [1, 2, 3] {
            assert_eq!(chain.published[&id], set(&[10, 30]), "node {id}");
        }
        // Node 3 dies: node 2's tree no longer has it.
        chain.relays.remove(&3);
        chain
            .relays
            .get_mut(&2)
            .unwrap()
            .set_tree(Some(NodeId(1)), BTreeSet::new());
        // `settle` would address node 3; deliver by hand instead.
        let now = Millis(chain.now.0 + HEARTBEAT.0);
        let up = chain.relays.get_mut(&2).unwrap().poll(now).up.unwrap();
        chain
            .relays
            .get_mut(&1)
            .unwrap()
            .from_child(NodeId(2), up.1);
        let root = chain.relays.get_mut(&1).unwrap().poll(now);
        assert_eq!(root.online, Some(set(&[10])));
        let down = root.down.unwrap();
        chain
            .relays
            .get_mut(&2)
            .unwrap()
            .from_parent(NodeId(1), down);
        assert_eq!(
            chain.relays.get_mut(&2).unwrap().poll(now).online,
            Some(set(&[10]))
        );
    }

    #[test]
    fn a_disconnect_travels_as_a_delta() {
        let mut chain = Chain::new();
        chain.relays.get_mut(&3).unwrap().set_local(set(&[30, 31]));
        chain.settle();
        chain.relays.get_mut(&3).unwrap().set_local(set(&[31]));
        chain.now = Millis(chain.now.0 + MIN_GAP.0);
        let up = chain
            .relays
            .get_mut(&3)
            .unwrap()
            .poll(chain.now)
            .up
            .unwrap();
        assert_eq!(up.1.base, Some(up.1.version - 1));
        assert_eq!(
            (up.1.added.clone(), up.1.removed.clone()),
            (vec![], vec![30])
        );
        chain
            .relays
            .get_mut(&2)
            .unwrap()
            .from_child(NodeId(3), up.1);
        chain.settle();
        for id in [1, 2, 3] {
            assert_eq!(chain.published[&id], set(&[31]), "node {id}");
        }
    }

    #[test]
    fn reports_from_strangers_are_ignored() {
        let mut relay: Relay<u32> = Relay::new(1);
        relay.set_tree(Some(NodeId(1)), set_of_nodes(&[3]));
        let whole = SetUpdate {
            stream: 9,
            version: 1,
            base: None,
            added: vec![99],
            removed: vec![],
        };
        relay.from_child(NodeId(4), whole.clone());
        relay.from_parent(NodeId(2), whole);
        assert_eq!(relay.online(), BTreeSet::new());
    }

    fn set_of_nodes(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }
}
