//! The spanning tree: built by SHOUT from the election winner, kept alive by root ticks, healed by
//! adoption, and summarised upward as next-hop route reports.
//!
//! ```text
//!  SHOUT      root ── Q ──► every live neighbour; an idle node answers YES to its first Q, takes the
//!             sender as parent and asks all its other neighbours; any other Q gets NO. A node is done
//!             when every neighbour it asked has answered. Unanswered Qs are repeated.
//!  TICKS      root ── TICK(n) ──► children ──► … every tick interval; each node keeps the newest n.
//!  HEALING    parent OFF ⇒ orphan ── NOPARENTREQ(tick) ──► non-tree neighbours (repeated);
//!             a neighbour still attached to the root with a *newer* tick answers Q (adoption), the
//!             others refuse; the orphan says YES to the first adopter (its whole subtree follows) and
//!             NO to the rest. No adoption within the leader timeout (or no new tick for that long)
//!             ⇒ leader lost ⇒ the node starts a new election.
//!  ROUTES     once a node's SHOUT is done and every child has reported, it reports the set of ids in
//!             its subtree to its parent (acknowledged, repeated until acknowledged); a parent maps
//!             each reported id to the child that reported it: dest → next hop.
//! ```
//!
//! Why ticks make adoption safe: ticks only flow down, so a node's tick is never newer than its
//! ancestors'. Every node in the orphan's own subtree therefore has a tick no newer than the orphan's
//! and refuses; only nodes that heard from the root after the orphan did can adopt it, and no cycle
//! can form.
//!
//! Trees are named by [`TreeId`] (term, leader). A Q from a stronger tree (higher term, then smaller
//! leader id) always wins: the receiver leaves its old tree and joins, so two trees that meet — after a
//! partition heals, or two leaders of one election — merge into the stronger one without an election.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::LamportTime;
use crate::handshake::PeerStatus;
use crate::ids::{Millis, NodeId, Term};
use crate::timing::Timing;

/// Names a tree: the term of the election that built it and its root. `Ord` says "greater is
/// stronger": higher term, then smaller leader id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TreeId {
    pub term: Term,
    pub leader: NodeId,
}

impl Ord for TreeId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.term
            .cmp(&other.term)
            .then_with(|| other.leader.cmp(&self.leader))
    }
}

impl PartialOrd for TreeId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Tree messages (scope `tree`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TreeBody {
    /// SHOUT's Q: "join my tree" (also the adoption offer).
    Question {
        tree: TreeId,
    },
    /// SHOUT's answer: YES = "you are my parent".
    Answer {
        tree: TreeId,
        accept: bool,
    },
    /// The root's heartbeat, flowing down.
    Tick {
        tree: TreeId,
        counter: u64,
    },
    /// An orphan asks to be adopted; `tick` is the newest it saw.
    NoParentRequest {
        tree: TreeId,
        tick: u64,
    },
    /// "I cannot adopt you."
    NoParentRefuse {
        tree: TreeId,
    },
    /// "I am not your child" (answer to a tick from a node that is not our parent).
    Detach {
        tree: TreeId,
    },
    /// The ids reachable through the sender (its subtree, itself included).
    RouteReport {
        tree: TreeId,
        version: u64,
        reachable: Vec<NodeId>,
    },
    RouteAck {
        tree: TreeId,
        version: u64,
    },
}

impl TreeBody {
    pub fn tree(&self) -> TreeId {
        match self {
            TreeBody::Question { tree }
            | TreeBody::Answer { tree, .. }
            | TreeBody::Tick { tree, .. }
            | TreeBody::NoParentRequest { tree, .. }
            | TreeBody::NoParentRefuse { tree }
            | TreeBody::Detach { tree }
            | TreeBody::RouteReport { tree, .. }
            | TreeBody::RouteAck { tree, .. } => *tree,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Orphan {
    since: Millis,
    deadline: Millis,
    asked: BTreeSet<NodeId>,
    last_ask: Millis,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RouteReport {
    version: u64,
    sent: Option<BTreeSet<NodeId>>,
    acked: bool,
    last_sent: Millis,
}

/// What one call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeStep {
    pub messages: Vec<(NodeId, TreeBody)>,
    /// No tick (or no adoption) for too long, or the lost parent was the root: elect again.
    pub leader_lost: bool,
    /// The parent went away; adoption requests were sent.
    pub orphaned: Option<NodeId>,
    /// An orphan was adopted by this parent.
    pub adopted: Option<NodeId>,
}

/// The tree component of one node.
#[derive(Clone, Debug)]
pub struct Tree {
    me: NodeId,
    timing: Timing,
    id: Option<TreeId>,
    is_root: bool,
    parent: Option<NodeId>,
    /// Each child with the Lamport stamp of its YES, so an older DETACH cannot remove a newer YES.
    children: BTreeMap<NodeId, LamportTime>,
    /// Neighbours asked Q and not answered yet, with when we last asked.
    awaiting: BTreeMap<NodeId, Millis>,
    shout_done: bool,
    tick: u64,
    last_tick_at: Millis,
    next_root_tick: Millis,
    orphan: Option<Orphan>,
    /// Each child's newest report: its version and the ids it reaches.
    child_routes: BTreeMap<NodeId, (u64, BTreeSet<NodeId>)>,
    report: RouteReport,
    /// Counts changes to parent, children and their routes, so callers (and the route report) only
    /// recompute what depends on them when something changed: a node near the root has a big subtree.
    changes: u64,
    report_dirty: bool,
}

impl Tree {
    pub fn new(me: NodeId, timing: Timing) -> Self {
        Tree {
            me,
            timing,
            id: None,
            is_root: false,
            parent: None,
            children: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            shout_done: false,
            tick: 0,
            last_tick_at: Millis::ZERO,
            next_root_tick: Millis::ZERO,
            orphan: None,
            child_routes: BTreeMap::new(),
            report: RouteReport::default(),
            changes: 0,
            report_dirty: true,
        }
    }

    /// Increases whenever parent, children or routes may have changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn changed(&mut self) {
        self.changes = self.changes.wrapping_add(1);
        self.report_dirty = true;
    }

    pub fn tree_id(&self) -> Option<TreeId> {
        self.id
    }

    pub fn has_tree(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_root(&self) -> bool {
        self.is_root
    }

    pub fn parent(&self) -> Option<NodeId> {
        self.parent
    }

    pub fn children(&self) -> Vec<NodeId> {
        self.children.keys().copied().collect()
    }

    pub fn has_child(&self, peer: NodeId) -> bool {
        self.children.contains_key(&peer)
    }

    /// Connected to the root as far as this node knows: it is the root or has a parent.
    pub fn is_attached(&self) -> bool {
        self.id.is_some() && (self.is_root || self.parent.is_some())
    }

    pub fn is_orphan(&self) -> bool {
        self.orphan.is_some()
    }

    /// Every neighbour asked by the SHOUT that built this node's place in the tree has answered. Later
    /// questions (adoptions, merges) do not reset it: the node stays ready while it adopts.
    pub fn shout_done(&self) -> bool {
        self.shout_done
    }

    /// The newest tick counter (the root's own counter at the root).
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// dest → the child to forward to, for every node below this one.
    pub fn routes(&self) -> BTreeMap<NodeId, NodeId> {
        let mut routes = BTreeMap::new();
        for (child, (_, reachable)) in &self.child_routes {
            if self.children.contains_key(child) {
                for dest in reachable {
                    routes.insert(*dest, *child);
                }
            }
        }
        routes
    }

    /// Forgets the tree (the node joins an election or lost its leader).
    pub fn dissolve(&mut self) {
        // Report versions never go back, so a parent can always tell a newer report from an older one.
        let (version, changes) = (self.report.version, self.changes);
        *self = Tree::new(self.me, self.timing);
        self.report.version = version;
        self.changes = changes;
        self.changed();
    }

    /// The election was won: become root and SHOUT to every live neighbour.
    pub fn become_root(&mut self, now: Millis, id: TreeId, live: &BTreeSet<NodeId>) -> TreeStep {
        self.dissolve();
        self.id = Some(id);
        self.is_root = true;
        self.next_root_tick = now;
        let mut step = TreeStep::default();
        for peer in live {
            self.ask(now, *peer, &mut step);
        }
        self.shout_done = self.awaiting.is_empty();
        self.changed();
        step
    }

    /// A tree message from a live neighbour. `floor` is the term of the election this node is running,
    /// if any: a Q from an older term cannot end it.
    pub fn on_message(
        &mut self,
        now: Millis,
        from: NodeId,
        stamp: LamportTime,
        body: TreeBody,
        live: &BTreeSet<NodeId>,
        floor: Option<Term>,
    ) -> TreeStep {
        let mut step = TreeStep::default();
        match body {
            TreeBody::Question { tree } => {
                self.on_question(now, from, tree, live, floor, &mut step)
            }
            TreeBody::Answer { tree, accept } => {
                if Some(tree) == self.id && self.awaiting.remove(&from).is_some() {
                    if accept {
                        self.children.insert(from, stamp);
                    }
                    self.shout_done |= self.awaiting.is_empty();
                    self.changed();
                }
            }
            TreeBody::Tick { tree, counter } => {
                if Some(tree) == self.id && self.parent == Some(from) {
                    if counter > self.tick {
                        self.tick = counter;
                        self.last_tick_at = now;
                        for child in self.children.keys() {
                            step.messages
                                .push((*child, TreeBody::Tick { tree, counter }));
                        }
                    }
                } else {
                    step.messages.push((from, TreeBody::Detach { tree }));
                }
            }
            TreeBody::NoParentRequest { tree, tick } => {
                let can_adopt = self.is_attached()
                    && self.parent != Some(from)
                    && !self.children.contains_key(&from)
                    && self
                        .id
                        .is_some_and(|mine| mine > tree || (mine == tree && self.tick > tick));
                if can_adopt {
                    self.ask(now, from, &mut step);
                } else {
                    step.messages
                        .push((from, TreeBody::NoParentRefuse { tree }));
                }
            }
            TreeBody::NoParentRefuse { .. } => {}
            TreeBody::Detach { tree } => {
                if Some(tree) == self.id && self.children.get(&from).is_some_and(|yes| stamp > *yes)
                {
                    self.children.remove(&from);
                    self.child_routes.remove(&from);
                    self.changed();
                }
            }
            TreeBody::RouteReport {
                tree,
                version,
                reachable,
            } => {
                let newest = self
                    .child_routes
                    .get(&from)
                    .is_none_or(|(known, _)| version >= *known);
                if Some(tree) == self.id && self.children.contains_key(&from) && newest {
                    self.child_routes
                        .insert(from, (version, reachable.into_iter().collect()));
                    self.changed();
                    step.messages
                        .push((from, TreeBody::RouteAck { tree, version }));
                }
            }
            TreeBody::RouteAck { tree, version } => {
                if Some(tree) == self.id
                    && self.parent == Some(from)
                    && version == self.report.version
                {
                    self.report.acked = true;
                }
            }
        }
        self.maybe_report(now, &mut step);
        step
    }

    fn on_question(
        &mut self,
        now: Millis,
        from: NodeId,
        offered: TreeId,
        live: &BTreeSet<NodeId>,
        floor: Option<Term>,
        step: &mut TreeStep,
    ) {
        let refuse = TreeBody::Answer {
            tree: offered,
            accept: false,
        };
        // A tree "led" by this node that it does not lead is a leftover from before a restart.
        let ghost = offered.leader == self.me && !(self.is_root && self.id == Some(offered));
        if ghost || floor.is_some_and(|term| offered.term < term) {
            step.messages.push((from, refuse));
            return;
        }
        match self.id {
            Some(mine) if offered == mine => {
                if self.parent == Some(from) {
                    // The parent asks again: it lost our answer, or lost track of us (and our routes).
                    self.report.sent = None;
                    self.changed();
                    step.messages.push((
                        from,
                        TreeBody::Answer {
                            tree: offered,
                            accept: true,
                        },
                    ));
                } else if self
                    .orphan
                    .as_ref()
                    .is_some_and(|orphan| orphan.asked.contains(&from))
                {
                    self.orphan = None;
                    self.parent = Some(from);
                    self.last_tick_at = now;
                    self.report = RouteReport {
                        version: self.report.version,
                        ..RouteReport::default()
                    };
                    step.adopted = Some(from);
                    self.changed();
                    step.messages.push((
                        from,
                        TreeBody::Answer {
                            tree: offered,
                            accept: true,
                        },
                    ));
                } else {
                    step.messages.push((from, refuse));
                }
            }
            Some(mine) if offered < mine => {
                step.messages.push((from, refuse));
                if self.is_attached() {
                    self.ask(now, from, step);
                }
            }
            _ => {
                // No tree yet, or a stronger one: join it with `from` as parent and ask everyone else.
                self.dissolve();
                self.id = Some(offered);
                self.parent = Some(from);
                self.last_tick_at = now;
                step.messages.push((
                    from,
                    TreeBody::Answer {
                        tree: offered,
                        accept: true,
                    },
                ));
                for peer in live {
                    if *peer != from {
                        self.ask(now, *peer, step);
                    }
                }
                self.shout_done = self.awaiting.is_empty();
                self.changed();
            }
        }
    }

    /// Sends Q to `peer` and waits for its answer.
    fn ask(&mut self, now: Millis, peer: NodeId, step: &mut TreeStep) {
        if let Some(id) = self.id {
            self.awaiting.insert(peer, now);
            step.messages.push((peer, TreeBody::Question { tree: id }));
        }
    }

    /// Root ticks, repeated Qs, adoption requests, route-report repeats, and the leader timeout.
    pub fn on_tick(&mut self, now: Millis, live: &BTreeSet<NodeId>) -> TreeStep {
        let mut step = TreeStep::default();
        let Some(id) = self.id else {
            return step;
        };
        if self.is_root && now >= self.next_root_tick {
            self.tick = self.tick.saturating_add(1);
            self.next_root_tick = now + self.timing.tick_interval;
            for child in self.children.keys() {
                step.messages.push((
                    *child,
                    TreeBody::Tick {
                        tree: id,
                        counter: self.tick,
                    },
                ));
            }
        }
        let retransmit = self.timing.retransmit_interval;
        for (peer, asked_at) in &mut self.awaiting {
            if now.since(*asked_at) >= retransmit {
                *asked_at = now;
                step.messages.push((*peer, TreeBody::Question { tree: id }));
            }
        }
        if let Some(orphan) = &self.orphan {
            if now > orphan.deadline {
                step.leader_lost = true;
                return step;
            }
            if now.since(orphan.last_ask) >= retransmit {
                self.ask_for_adoption(now, live, &mut step);
            }
        } else if !self.is_root
            && self.parent.is_some()
            && now.since(self.last_tick_at) > self.timing.leader_timeout
        {
            step.leader_lost = true;
            return step;
        }
        if let (Some(parent), Some(sent)) = (self.parent, &self.report.sent)
            && !self.report.acked
            && now.since(self.report.last_sent) >= retransmit
        {
            self.report.last_sent = now;
            step.messages.push((
                parent,
                TreeBody::RouteReport {
                    tree: id,
                    version: self.report.version,
                    reachable: sent.iter().copied().collect(),
                },
            ));
        }
        step
    }

    /// A neighbour went OFF (or restarted and forgot us).
    pub fn on_neighbour_down(
        &mut self,
        now: Millis,
        peer: NodeId,
        live: &BTreeSet<NodeId>,
    ) -> TreeStep {
        let mut step = TreeStep::default();
        if self.awaiting.remove(&peer).is_some() {
            self.shout_done |= self.awaiting.is_empty();
            self.changed();
        }
        if self.children.remove(&peer).is_some() {
            self.child_routes.remove(&peer);
            self.changed();
        }
        if self.parent == Some(peer) {
            self.parent = None;
            self.changed();
            let Some(id) = self.id else {
                return step;
            };
            let grace = if id.leader == peer {
                self.timing.root_orphan_grace
            } else {
                self.timing.leader_timeout
            };
            self.orphan = Some(Orphan {
                since: now,
                deadline: now + grace,
                asked: BTreeSet::new(),
                last_ask: now,
            });
            step.orphaned = Some(peer);
            self.ask_for_adoption(now, live, &mut step);
        }
        self.maybe_report(now, &mut step);
        step
    }

    fn ask_for_adoption(&mut self, now: Millis, live: &BTreeSet<NodeId>, step: &mut TreeStep) {
        let (Some(id), Some(orphan)) = (self.id, self.orphan.as_mut()) else {
            return;
        };
        orphan.last_ask = now;
        for peer in live {
            if !self.children.contains_key(peer) {
                orphan.asked.insert(*peer);
                step.messages.push((
                    *peer,
                    TreeBody::NoParentRequest {
                        tree: id,
                        tick: self.tick,
                    },
                ));
            }
        }
    }

    /// What a neighbour told us in a handshake: adopt it if it has no tree, or a weaker one, or says
    /// we are its parent while we lost track of it. Returns the Qs to send.
    pub fn reconcile(&mut self, now: Millis, from: NodeId, status: &PeerStatus) -> TreeStep {
        let mut step = TreeStep::default();
        let Some(mine) = self.id else {
            return step;
        };
        if !self.is_attached() || self.parent == Some(from) {
            return step;
        }
        let adopt = match status.tree {
            None => status
                .election
                .is_none_or(|election| election.term <= mine.term),
            Some(theirs) if theirs < mine => true,
            Some(theirs) => {
                theirs == mine
                    && status.parent == Some(self.me)
                    && !self.children.contains_key(&from)
            }
        };
        if adopt && !self.awaiting.contains_key(&from) {
            self.ask(now, from, &mut step);
        }
        step
    }

    /// Asks `peer` to join our tree (it sent a stale election message, so it has no better tree).
    pub fn offer(&mut self, now: Millis, peer: NodeId) -> TreeStep {
        let mut step = TreeStep::default();
        if self.is_attached()
            && self.parent != Some(peer)
            && !self.children.contains_key(&peer)
            && !self.awaiting.contains_key(&peer)
        {
            self.ask(now, peer, &mut step);
        }
        step
    }

    /// Sends a route report when this node's subtree is known and differs from the last one sent.
    fn maybe_report(&mut self, now: Millis, step: &mut TreeStep) {
        if !self.report_dirty {
            return;
        }
        let (Some(id), Some(parent)) = (self.id, self.parent) else {
            return;
        };
        if !self.shout_done
            || !self
                .children
                .keys()
                .all(|child| self.child_routes.contains_key(child))
        {
            return;
        }
        let mut reachable: BTreeSet<NodeId> = self
            .child_routes
            .iter()
            .filter(|(child, _)| self.children.contains_key(child))
            .flat_map(|(_, (_, ids))| ids.iter().copied())
            .collect();
        reachable.insert(self.me);
        self.report_dirty = false;
        if self.report.sent.as_ref() == Some(&reachable) {
            return;
        }
        self.report.version = self.report.version.saturating_add(1);
        self.report.acked = false;
        self.report.last_sent = now;
        step.messages.push((
            parent,
            TreeBody::RouteReport {
                tree: id,
                version: self.report.version,
                reachable: reachable.iter().copied().collect(),
            },
        ));
        self.report.sent = Some(reachable);
    }

    /// Re-evaluates the route report (after children changed outside `on_message`).
    pub fn refresh_report(&mut self, now: Millis) -> TreeStep {
        let mut step = TreeStep::default();
        self.maybe_report(now, &mut step);
        step
    }
}

#[cfg(test)]
mod tests;
