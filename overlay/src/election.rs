//! Yo-Yo leader election with pruning, one election instance at a time, robust to loss and reordering.
//!
//! # The algorithm
//!
//! Every node has an [`ElectionValue`]; greater is stronger. Setup: each member sends `START(value)` to
//! its election neighbours; an edge points from the stronger end to the weaker one, so *sources* are
//! locally strongest and *sinks* locally weakest. Then rounds:
//!
//! ```text
//!  YO-  sources send their value down; a node that heard from all in-neighbours forwards the
//!       strongest value it received to all out-neighbours.
//!  -YO  a sink votes YES to the in-neighbours that sent the strongest value it received, NO to the
//!       rest; a node that heard all votes from below votes the same way upward, except that any NO
//!       from below makes all its votes NO. Every edge that carried a NO flips.
//!  prune  a node that got the same value from several in-neighbours keeps one link (the smallest id)
//!       and asks the others to prune theirs; a node left with exactly one in-link and no out-link
//!       prunes itself (its last vote carries "prune"). Pruned links and nodes leave the election.
//! ```
//!
//! A source whose links are all pruned is alone: it has won. Pruned nodes wait for the winner's SHOUT.
//!
//! Two refinements, both safe and both tested:
//! - **A duplicate link is pruned with a YES**, never with the real vote. The real vote reaches the
//!   source through the link that was kept. Pruning with a NO would tell the upstream node "flip", and
//!   if that was its last out-link while it votes NO on all its in-links, it would end with no in-link:
//!   a brand-new source that can later find itself alone and claim victory (see the test
//!   `pruning_a_duplicate_link_with_a_no_would_create_a_new_source`).
//! - **Cascading self-pruning**: a node whose out-links were all pruned in this round and that has one
//!   in-link left prunes itself in the same round (it would do so next round anyway, with a YES). A
//!   chain of ever weaker nodes then collapses in one round instead of one node per round.
//!
//! # Instances, rounds and losses
//!
//! An election is named by an [`ElectionId`]: stronger = higher term, then bigger Lamport clock, then
//! smaller initiator. The node (not this module) decides whether a message for another id resets it
//! into that election. Within one election, messages for an older round are dropped, messages for a
//! newer round are stashed and replayed when the node gets there. No message is retransmitted blindly:
//! a node that waits too long sends `NUDGE(round)` to exactly the neighbours it waits for, and a node
//! receiving a nudge re-sends what it already sent that neighbour in that round (every sent message is
//! logged per round). Both ends of a stuck link wait on something, so whichever message was lost is
//! re-sent. A node that is not an election neighbour answers START or NUDGE(0) with `DECLINE` when it is
//! already past setup, so the asker drops that edge.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::LamportTime;
use crate::ids::{ElectionValue, Millis, NodeId, Term};

/// Names one election. `Ord` says "greater is stronger".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ElectionId {
    pub term: Term,
    pub clock: LamportTime,
    pub initiator: NodeId,
}

impl Ord for ElectionId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.term, self.clock)
            .cmp(&(other.term, other.clock))
            .then_with(|| other.initiator.cmp(&self.initiator))
    }
}

impl PartialOrd for ElectionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Election messages (scope `election`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ElectionBody {
    /// Joins the election and tells the neighbour our value (setup).
    Start {
        election: ElectionId,
        value: ElectionValue,
    },
    /// YO-: the strongest value seen, sent down an out-link.
    Yo {
        election: ElectionId,
        round: u32,
        value: ElectionValue,
    },
    /// -YO: the vote on an in-link, possibly asking to prune it.
    Vote {
        election: ElectionId,
        round: u32,
        yes: bool,
        prune: bool,
    },
    /// "I am still waiting for your message of this round" (round 0 = your START).
    Nudge { election: ElectionId, round: u32 },
    /// "You are not my neighbour in this election": the receiver drops the edge during setup.
    Decline { election: ElectionId },
}

impl ElectionBody {
    pub fn election(&self) -> ElectionId {
        match self {
            ElectionBody::Start { election, .. }
            | ElectionBody::Yo { election, .. }
            | ElectionBody::Vote { election, .. }
            | ElectionBody::Nudge { election, .. }
            | ElectionBody::Decline { election } => *election,
        }
    }

    /// Messages that ask for a reply (used to pull a node in a weaker election into ours).
    pub fn is_start_or_nudge(&self) -> bool {
        matches!(
            self,
            ElectionBody::Start { .. } | ElectionBody::Nudge { .. }
        )
    }
}

/// Where a node stands in its current election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Exchanging START with the members.
    Setup,
    /// Waiting for values from in-neighbours.
    YoDown,
    /// Waiting for votes from out-neighbours.
    YoUp,
    /// Pruned out; waiting for the winner's SHOUT.
    Pruned,
    /// Alone and a source: this node is the leader.
    Won,
    /// Left the election because a tree of this term or newer was joined.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// The neighbour is the stronger end: values come from it, votes go to it.
    In,
    /// We are the stronger end: values go to it, votes come from it.
    Out,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Vote {
    yes: bool,
    prune: bool,
}

#[derive(Clone, Debug)]
struct Instance {
    id: ElectionId,
    value: ElectionValue,
    phase: Phase,
    round: u32,
    started_at: Millis,
    last_progress: Millis,
    last_nudge: Millis,
    members: BTreeSet<NodeId>,
    setup_values: BTreeMap<NodeId, ElectionValue>,
    links: BTreeMap<NodeId, Direction>,
    values: BTreeMap<NodeId, ElectionValue>,
    votes: BTreeMap<NodeId, Vote>,
    stash: BTreeMap<u32, Vec<(NodeId, ElectionBody)>>,
    sent: BTreeMap<(u32, NodeId), ElectionBody>,
}

impl Instance {
    fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Setup | Phase::YoDown | Phase::YoUp)
    }

    fn links_with(&self, direction: Direction) -> impl Iterator<Item = NodeId> + '_ {
        self.links
            .iter()
            .filter(move |(_, d)| **d == direction)
            .map(|(peer, _)| *peer)
    }
}

/// What one call did: messages to send, and whether this node has just won.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionStep {
    pub messages: Vec<(NodeId, ElectionBody)>,
    pub won: bool,
}

/// The election component of one node.
#[derive(Clone, Debug)]
pub struct Election {
    me: NodeId,
    retransmit_interval: Millis,
    instance: Option<Instance>,
}

impl Election {
    pub fn new(me: NodeId, retransmit_interval: Millis) -> Self {
        Election {
            me,
            retransmit_interval,
            instance: None,
        }
    }

    /// The current (or last) election's id.
    pub fn current(&self) -> Option<ElectionId> {
        self.instance.as_ref().map(|instance| instance.id)
    }

    pub fn phase(&self) -> Option<Phase> {
        self.instance.as_ref().map(|instance| instance.phase)
    }

    pub fn round(&self) -> Option<u32> {
        self.instance.as_ref().map(|instance| instance.round)
    }

    /// True from START until the node wins or joins a tree (a pruned node still waits for its result).
    pub fn is_running(&self) -> bool {
        self.instance
            .as_ref()
            .is_some_and(|instance| instance.is_running() || instance.phase == Phase::Pruned)
    }

    pub fn started_at(&self) -> Option<Millis> {
        self.instance.as_ref().map(|instance| instance.started_at)
    }

    /// The neighbours this node exchanges election messages with in the current election.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.instance
            .as_ref()
            .map(|instance| instance.members.clone())
            .unwrap_or_default()
    }

    /// Enters election `id` with `members` as election neighbours (replacing any earlier election) and
    /// sends them START. With no members the node wins at once.
    pub fn start(
        &mut self,
        now: Millis,
        id: ElectionId,
        value: ElectionValue,
        members: BTreeSet<NodeId>,
    ) -> ElectionStep {
        let mut step = ElectionStep::default();
        let mut instance = Instance {
            id,
            value,
            phase: Phase::Setup,
            round: 0,
            started_at: now,
            last_progress: now,
            last_nudge: now,
            members: members.clone(),
            setup_values: BTreeMap::new(),
            links: BTreeMap::new(),
            values: BTreeMap::new(),
            votes: BTreeMap::new(),
            stash: BTreeMap::new(),
            sent: BTreeMap::new(),
        };
        for member in members {
            send(
                &mut instance,
                &mut step,
                0,
                member,
                ElectionBody::Start {
                    election: id,
                    value,
                },
            );
        }
        self.instance = Some(instance);
        self.advance(now, &mut step);
        step
    }

    /// A message for the current election (the caller checked the id). Messages for another election
    /// are ignored here.
    pub fn on_message(
        &mut self,
        now: Millis,
        from: NodeId,
        body: ElectionBody,
        live: &BTreeSet<NodeId>,
    ) -> ElectionStep {
        let mut step = ElectionStep::default();
        let Some(instance) = self.instance.as_mut() else {
            return step;
        };
        if body.election() != instance.id {
            return step;
        }
        let id = instance.id;
        match body {
            ElectionBody::Start { value, .. } => {
                if instance.members.contains(&from) {
                    if instance.phase == Phase::Setup && !instance.setup_values.contains_key(&from)
                    {
                        instance.setup_values.insert(from, value);
                        instance.last_progress = now;
                    }
                } else if instance.phase == Phase::Setup && live.contains(&from) {
                    instance.members.insert(from);
                    instance.setup_values.insert(from, value);
                    instance.last_progress = now;
                    let mine = instance.value;
                    send(
                        instance,
                        &mut step,
                        0,
                        from,
                        ElectionBody::Start {
                            election: id,
                            value: mine,
                        },
                    );
                } else {
                    step.messages
                        .push((from, ElectionBody::Decline { election: id }));
                }
            }
            ElectionBody::Nudge { round: 0, .. } => {
                if let Some(start) = instance.sent.get(&(0, from)) {
                    step.messages.push((from, *start));
                } else if instance.phase == Phase::Setup && live.contains(&from) {
                    instance.members.insert(from);
                    let mine = instance.value;
                    send(
                        instance,
                        &mut step,
                        0,
                        from,
                        ElectionBody::Start {
                            election: id,
                            value: mine,
                        },
                    );
                } else {
                    step.messages
                        .push((from, ElectionBody::Decline { election: id }));
                }
            }
            ElectionBody::Nudge { round, .. } => {
                if let Some(message) = instance.sent.get(&(round, from)) {
                    step.messages.push((from, *message));
                }
            }
            ElectionBody::Yo { round, .. } | ElectionBody::Vote { round, .. } => {
                accept(instance, now, round, from, body);
            }
            ElectionBody::Decline { .. } => {
                if instance.phase == Phase::Setup
                    && instance.members.contains(&from)
                    && !instance.setup_values.contains_key(&from)
                {
                    instance.members.remove(&from);
                    instance.sent.remove(&(0, from));
                    instance.last_progress = now;
                }
            }
        }
        self.advance(now, &mut step);
        step
    }

    /// A node in a *weaker* election sent us START or NUDGE: pull it into ours by sending our START.
    /// During setup a non-member becomes a member; past setup only members are re-sent START.
    pub fn pull(&mut self, now: Millis, from: NodeId, live: &BTreeSet<NodeId>) -> ElectionStep {
        let mut step = ElectionStep::default();
        let Some(instance) = self.instance.as_mut() else {
            return step;
        };
        if let Some(start) = instance.sent.get(&(0, from)) {
            step.messages.push((from, *start));
        } else if instance.phase == Phase::Setup && live.contains(&from) {
            instance.members.insert(from);
            instance.last_progress = now;
            let (id, value) = (instance.id, instance.value);
            send(
                instance,
                &mut step,
                0,
                from,
                ElectionBody::Start {
                    election: id,
                    value,
                },
            );
        }
        step
    }

    /// A neighbour became live. During setup it joins the election; later it is left to SHOUT.
    pub fn on_neighbour_up(&mut self, now: Millis, peer: NodeId) -> ElectionStep {
        let mut step = ElectionStep::default();
        let Some(instance) = self.instance.as_mut() else {
            return step;
        };
        if instance.phase == Phase::Setup && !instance.members.contains(&peer) {
            instance.members.insert(peer);
            let (id, value) = (instance.id, instance.value);
            send(
                instance,
                &mut step,
                0,
                peer,
                ElectionBody::Start {
                    election: id,
                    value,
                },
            );
            instance.last_progress = now;
        }
        step
    }

    /// A neighbour went OFF (or restarted and forgot). Returns true if the running election needed it
    /// and must restart without it.
    pub fn on_neighbour_down(&self, peer: NodeId) -> bool {
        self.instance
            .as_ref()
            .is_some_and(|instance| match instance.phase {
                Phase::Setup => instance.members.contains(&peer),
                Phase::YoDown | Phase::YoUp => instance.links.contains_key(&peer),
                Phase::Pruned | Phase::Won | Phase::Done => false,
            })
    }

    /// Nudges the neighbours this node has waited on for a retransmit interval without progress.
    pub fn on_tick(&mut self, now: Millis) -> ElectionStep {
        let mut step = ElectionStep::default();
        let Some(instance) = self.instance.as_mut() else {
            return step;
        };
        if !instance.is_running() {
            return step;
        }
        let quiet_since = instance.last_progress.max(instance.last_nudge);
        if now.since(quiet_since) < self.retransmit_interval {
            return step;
        }
        instance.last_nudge = now;
        let round = instance.round;
        let waiting_on: Vec<NodeId> = match instance.phase {
            Phase::Setup => instance
                .members
                .iter()
                .filter(|member| !instance.setup_values.contains_key(member))
                .copied()
                .collect(),
            Phase::YoDown => instance
                .links_with(Direction::In)
                .filter(|peer| !instance.values.contains_key(peer))
                .collect(),
            Phase::YoUp => instance
                .links_with(Direction::Out)
                .filter(|peer| !instance.votes.contains_key(peer))
                .collect(),
            Phase::Pruned | Phase::Won | Phase::Done => Vec::new(),
        };
        for peer in waiting_on {
            step.messages.push((
                peer,
                ElectionBody::Nudge {
                    election: instance.id,
                    round,
                },
            ));
        }
        step
    }

    /// The node joined a tree of this election's term or newer: the election is over for it.
    pub fn finish(&mut self) {
        if let Some(instance) = self.instance.as_mut()
            && instance.phase != Phase::Won
        {
            instance.phase = Phase::Done;
        }
    }

    /// Runs the state machine as far as the messages received so far allow.
    fn advance(&mut self, now: Millis, step: &mut ElectionStep) {
        let me = self.me;
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        loop {
            match instance.phase {
                Phase::Setup => {
                    if !instance
                        .members
                        .iter()
                        .all(|member| instance.setup_values.contains_key(member))
                    {
                        return;
                    }
                    instance.links = instance
                        .members
                        .iter()
                        .map(|member| {
                            let theirs = instance.setup_values[member];
                            let direction = if theirs > instance.value {
                                Direction::In
                            } else {
                                Direction::Out
                            };
                            (*member, direction)
                        })
                        .collect();
                    instance.last_progress = now;
                    if instance.links.is_empty() {
                        instance.phase = Phase::Won;
                        step.won = true;
                        return;
                    }
                    enter_round(instance, 1);
                }
                Phase::YoDown => {
                    let ins: Vec<NodeId> = instance.links_with(Direction::In).collect();
                    if !ins.iter().all(|peer| instance.values.contains_key(peer)) {
                        return;
                    }
                    let best = ins
                        .iter()
                        .map(|peer| instance.values[peer])
                        .max()
                        .unwrap_or(instance.value);
                    let outs: Vec<NodeId> = instance.links_with(Direction::Out).collect();
                    let (id, round) = (instance.id, instance.round);
                    for out in outs {
                        send(
                            instance,
                            step,
                            round,
                            out,
                            ElectionBody::Yo {
                                election: id,
                                round,
                                value: best,
                            },
                        );
                    }
                    instance.phase = Phase::YoUp;
                    instance.last_progress = now;
                }
                Phase::YoUp => {
                    let outs: Vec<NodeId> = instance.links_with(Direction::Out).collect();
                    if !outs.iter().all(|peer| instance.votes.contains_key(peer)) {
                        return;
                    }
                    finish_round(instance, me, step);
                    instance.last_progress = now;
                    if instance.phase == Phase::Pruned {
                        return;
                    }
                    if instance.links.is_empty() {
                        instance.phase = Phase::Won;
                        step.won = true;
                        return;
                    }
                    let next = instance.round.saturating_add(1);
                    enter_round(instance, next);
                }
                Phase::Pruned | Phase::Won | Phase::Done => return,
            }
        }
    }
}

/// Logs and queues one message of `round` to `peer`.
fn send(
    instance: &mut Instance,
    step: &mut ElectionStep,
    round: u32,
    peer: NodeId,
    body: ElectionBody,
) {
    instance.sent.insert((round, peer), body);
    step.messages.push((peer, body));
}

/// Records a YO- value or a vote, stashing it if it belongs to a later round.
fn accept(instance: &mut Instance, now: Millis, round: u32, from: NodeId, body: ElectionBody) {
    if !instance.is_running() || round < instance.round {
        return;
    }
    if round > instance.round || instance.phase == Phase::Setup {
        // A neighbour is never more than one round ahead; anything further is garbage, not a future.
        if round <= instance.round.saturating_add(2) {
            let bound = 2 * (instance.members.len() + 1);
            let stashed = instance.stash.entry(round).or_default();
            if stashed.len() < bound {
                stashed.push((from, body));
            }
        }
        return;
    }
    match (body, instance.links.get(&from)) {
        (ElectionBody::Yo { value, .. }, Some(Direction::In)) => {
            if let std::collections::btree_map::Entry::Vacant(slot) = instance.values.entry(from) {
                slot.insert(value);
                instance.last_progress = now;
            }
        }
        (ElectionBody::Vote { yes, prune, .. }, Some(Direction::Out)) => {
            if let std::collections::btree_map::Entry::Vacant(slot) = instance.votes.entry(from) {
                slot.insert(Vote { yes, prune });
                instance.last_progress = now;
            }
        }
        _ => {}
    }
}

/// Starts `round` and replays what was stashed for it.
fn enter_round(instance: &mut Instance, round: u32) {
    instance.round = round;
    instance.phase = Phase::YoDown;
    instance.values.clear();
    instance.votes.clear();
    instance
        .stash
        .retain(|stashed_round, _| *stashed_round >= round);
    let replay = instance.stash.remove(&round).unwrap_or_default();
    let now = instance.last_progress;
    for (from, body) in replay {
        if let ElectionBody::Yo { round, .. } | ElectionBody::Vote { round, .. } = body {
            accept(instance, now, round, from, body);
        }
    }
}

/// The -YO step once every vote from below is in: vote upward, prune, flip.
fn finish_round(instance: &mut Instance, _me: NodeId, step: &mut ElectionStep) {
    let ins: Vec<NodeId> = instance.links_with(Direction::In).collect();
    let outs: Vec<NodeId> = instance.links_with(Direction::Out).collect();
    // A vote on a link that is being pruned never counts as NO (see the module doc).
    let any_no = outs.iter().any(|peer| {
        let vote = instance.votes[peer];
        !vote.yes && !vote.prune
    });
    let remaining_outs = outs
        .iter()
        .filter(|peer| !instance.votes[*peer].prune)
        .count();
    // Duplicate values: keep the link from the smallest id per value.
    let mut kept: BTreeMap<ElectionValue, NodeId> = BTreeMap::new();
    for peer in &ins {
        let value = instance.values[peer];
        kept.entry(value)
            .and_modify(|keeper| *keeper = (*keeper).min(*peer))
            .or_insert(*peer);
    }
    let best = ins.iter().map(|peer| instance.values[peer]).max();
    let prune_self = !ins.is_empty() && remaining_outs == 0 && kept.len() == 1;
    let (id, round) = (instance.id, instance.round);
    for peer in ins {
        let value = instance.values[&peer];
        let duplicate = kept.get(&value) != Some(&peer);
        let vote = if duplicate || prune_self {
            Vote {
                yes: true,
                prune: true,
            }
        } else {
            Vote {
                yes: !any_no && Some(value) == best,
                prune: false,
            }
        };
        send(
            instance,
            step,
            round,
            peer,
            ElectionBody::Vote {
                election: id,
                round,
                yes: vote.yes,
                prune: vote.prune,
            },
        );
        if vote.prune {
            instance.links.remove(&peer);
        } else if !vote.yes {
            instance.links.insert(peer, Direction::Out);
        }
    }
    for peer in outs {
        let vote = instance.votes[&peer];
        if vote.prune {
            instance.links.remove(&peer);
        } else if !vote.yes {
            instance.links.insert(peer, Direction::In);
        }
    }
    if prune_self {
        instance.links.clear();
        instance.phase = Phase::Pruned;
    }
}

#[cfg(test)]
mod tests;
