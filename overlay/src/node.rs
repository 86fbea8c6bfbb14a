//! [`Overlay`]: the control plane of one node, composing handshake, failure detector, election and tree
//! into one pure state machine. It owns the Lamport clock (every envelope it emits is stamped, every
//! stamp it receives is merged), decides which component a message goes to and what a change in one
//! component means for the others, and reports what changed as [`Event`]s.
//!
//! The rules that cross components live here:
//! - *Which election wins*: a message for a stronger election id resets the node into it (leaving its
//!   tree) unless the node already follows a tree of that term or newer — then the election is stale
//!   and the sender is offered our tree instead. A START or NUDGE of a weaker election pulls the sender
//!   into ours.
//! - *When to elect*: never while a neighbour said a leader exists (a rejoining node waits to be
//!   adopted), otherwise shortly after the first neighbour joins, or alone after `lone_grace`; again
//!   when the leader is lost, when a neighbour the running election needs goes OFF or restarts, and
//!   when an election outlives `election_timeout`.
//! - *Stalls*: a long gap between calls shifts the node's local time, so its own pause is not taken for
//!   the silence of every neighbour.

use std::collections::{BTreeMap, BTreeSet};

use crate::clock::{LamportClock, LamportTime};
use crate::election::{Election, ElectionBody, ElectionId, ElectionStep};
use crate::error::DecodeError;
use crate::failure_detector::FailureDetector;
use crate::handshake::{Handshake, PeerStatus, TopologyBody};
use crate::ids::{ElectionValue, Epoch, Millis, NodeId, Term};
use crate::message::{Body, Envelope, decode};
use crate::repair::RepairWatch;
use crate::roles::{Role, roles};
use crate::timing::Timing;
use crate::tree::{Tree, TreeBody, TreeId, TreeStep};

/// Something that happened, for the runtime to act on or log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A neighbour is joined and alive (first join, or back after being OFF).
    NeighbourUp {
        neighbour: NodeId,
    },
    /// A joined neighbour was silent for longer than the failure timeout.
    NeighbourDown {
        neighbour: NodeId,
    },
    /// A message came from a node that is not a configured neighbour (reported once per peer): the
    /// runtime may ask the bootstrap about it and call [`Overlay::add_neighbour`].
    UnknownPeer {
        peer: NodeId,
    },
    /// This node initiated an election.
    ElectionStarted {
        election: ElectionId,
    },
    /// The node now follows `leader` (itself included) in `term`.
    LeaderElected {
        leader: NodeId,
        term: Term,
    },
    /// The leader was declared lost.
    LeaderLost {
        leader: NodeId,
        term: Term,
    },
    ParentChanged {
        parent: Option<NodeId>,
    },
    ChildrenChanged {
        children: Vec<NodeId>,
    },
    RolesChanged {
        roles: Vec<Role>,
    },
    /// The next-hop table ([`Overlay::routes`]) changed.
    RoutesChanged,
    /// The parent went away; the node is asking its neighbours to adopt it.
    Orphaned {
        lost_parent: NodeId,
    },
    /// An orphan was adopted: the tree is healed around the lost parent.
    Adopted {
        parent: NodeId,
    },
    /// The node became ready: leader known, tree built locally, roles computed.
    TreeReady {
        leader: NodeId,
        term: Term,
    },
    /// The node has heard fewer live neighbours than its repair target for a while: the runtime
    /// should find it more (bootstrap `Repair`, or neighbours' neighbours) and add them.
    RepairNeeded {
        /// The neighbours it hears now.
        live: Vec<NodeId>,
    },
}

/// What one call produced: envelopes to send (to the given neighbour) and events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub messages: Vec<(NodeId, Envelope)>,
    pub events: Vec<Event>,
}

/// A neighbour as `/status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourInfo {
    pub id: NodeId,
    /// The handshake completed.
    pub joined: bool,
    /// Heard from within the failure timeout.
    pub alive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    tree: Option<TreeId>,
    parent: Option<NodeId>,
    roles: BTreeSet<Role>,
    tree_changes: u64,
    ready: bool,
}

/// The control plane of one node. See the crate doc for the boundary.
#[derive(Clone, Debug)]
pub struct Overlay {
    id: NodeId,
    incarnation: u64,
    timing: Timing,
    clock: LamportClock,
    handshake: Handshake,
    detector: FailureDetector,
    election: Election,
    tree: Tree,
    value: ElectionValue,
    max_term: Term,
    roles: BTreeSet<Role>,
    /// Neighbours joined and alive as of the last refresh.
    live: BTreeSet<NodeId>,
    /// Neighbours that have been live at least once (so a recovery can be told from a first join).
    ever_live: BTreeSet<NodeId>,
    /// Newest Lamport stamp received per neighbour, to ignore reordered handshake statuses.
    newest_stamp: BTreeMap<NodeId, LamportTime>,
    unknown_reported: BTreeSet<NodeId>,
    leaderless_since: Option<Millis>,
    /// A neighbour told us a leader exists (or an election is under way): wait for it until then.
    hint_until: Option<Millis>,
    /// Accumulated length of this node's own stalls, subtracted from the runtime's time.
    stalled_for: Millis,
    last_call: Millis,
    /// The route table as last reported through `RoutesChanged`.
    reported_routes: BTreeMap<NodeId, NodeId>,
    /// The children as last reported through `ChildrenChanged`.
    reported_children: Vec<NodeId>,
    /// A liveness or handshake transition happened since the live set was last computed.
    links_dirty: bool,
    repair: RepairWatch,
}

impl Overlay {
    /// A node with the configured neighbours; JOINs go out on the first [`Overlay::on_tick`].
    pub fn new(
        id: NodeId,
        neighbours: impl IntoIterator<Item = NodeId>,
        timing: Timing,
        now: Millis,
    ) -> Self {
        let mut overlay = Overlay {
            id,
            incarnation: 0,
            timing,
            clock: LamportClock::new(),
            handshake: Handshake::new(timing),
            detector: FailureDetector::new(timing),
            election: Election::new(id, timing.retransmit_interval),
            tree: Tree::new(id, timing),
            value: ElectionValue::new(id),
            max_term: Term::ZERO,
            roles: BTreeSet::new(),
            live: BTreeSet::new(),
            ever_live: BTreeSet::new(),
            newest_stamp: BTreeMap::new(),
            unknown_reported: BTreeSet::new(),
            leaderless_since: None,
            hint_until: None,
            stalled_for: Millis::ZERO,
            last_call: now,
            reported_routes: BTreeMap::new(),
            reported_children: Vec::new(),
            links_dirty: false,
            repair: RepairWatch::new(&timing),
        };
        for neighbour in neighbours {
            if neighbour != id {
                overlay.handshake.add(now, neighbour);
                overlay.detector.add(neighbour);
            }
        }
        overlay
    }

    /// Sets this process's incarnation: a number that grows with every start of the node (e.g. the
    /// start time in milliseconds since the Unix epoch). Neighbours use it to notice a restart that
    /// lost state. Without it restarts are still healed, only more slowly.
    pub fn with_incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = incarnation;
        self
    }

    /// Sets the value this node runs for election with: the `(term, epoch)` of its applied data. Used
    /// from the next election on.
    pub fn set_election_value(&mut self, data_term: Term, epoch: Epoch) {
        self.value = ElectionValue {
            data_term,
            epoch,
            node: self.id,
        };
    }

    /// Asks for a new election at a higher term, which the node with the most recent data wins. The
    /// data plane of a root calls it when a node of its tree reports more recent data than its own
    /// (two trees merged after a partition, or a node with newer data joined after the election):
    /// the tree's shape decides who leads, but only the election compares data. Ignored unless this
    /// node is the root of a tree and no election is running.
    pub fn call_election(&mut self, now: Millis) -> Output {
        let now = self.local_time(now);
        let before = self.snapshot();
        let mut out = Output::default();
        if self.tree.is_root() && !self.election.is_running() {
            self.start_election(now, &mut out);
            self.settle(now, &mut out);
        }
        self.report_changes(before, &mut out);
        out
    }

    /// A neighbour the bootstrap reported after start. Its first JOIN goes out at once.
    pub fn add_neighbour(&mut self, now: Millis, neighbour: NodeId) -> Output {
        let now = self.local_time(now);
        let mut out = Output::default();
        if neighbour == self.id || !self.handshake.add(now, neighbour) {
            return out;
        }
        self.detector.add(neighbour);
        self.unknown_reported.remove(&neighbour);
        let status = self.status();
        let joins = self.handshake.due_joins(now, self.incarnation, &status);
        for (to, body) in joins {
            self.send(now, to, Body::Topology(body), &mut out);
        }
        out
    }

    /// Forgets a neighbour the bootstrap no longer lists (an operator removed it for good): no more
    /// JOINs or heartbeats go to it. Only a neighbour that is not alive is dropped: its death has
    /// already gone through the tree (a live one still carries tree traffic, and goes once it stops
    /// and is asked about again). True when it was dropped.
    pub fn remove_neighbour(&mut self, neighbour: NodeId) -> bool {
        if self.detector.is_alive(neighbour) || self.live.contains(&neighbour) {
            return false;
        }
        if !self.handshake.remove(neighbour) {
            return false;
        }
        self.detector.remove(neighbour);
        self.unknown_reported.remove(&neighbour);
        self.newest_stamp.remove(&neighbour);
        true
    }

    /// Decodes bytes from the network and handles them; undecodable bytes change nothing.
    pub fn on_bytes(
        &mut self,
        now: Millis,
        from: NodeId,
        bytes: &[u8],
    ) -> Result<Output, DecodeError> {
        let envelope = decode(bytes)?;
        Ok(self.on_message(now, from, envelope))
    }

    /// A message from `from` (the transport's idea of the sender; it must match the header).
    pub fn on_message(&mut self, now: Millis, from: NodeId, envelope: Envelope) -> Output {
        let now = self.local_time(now);
        let before = self.snapshot();
        let mut out = Output::default();
        self.receive(now, from, envelope, &mut out);
        self.settle(now, &mut out);
        self.report_changes(before, &mut out);
        out
    }

    /// The periodic timer (every 50–100 ms): retries, heartbeats, timeouts, root ticks.
    pub fn on_tick(&mut self, now: Millis) -> Output {
        let now = self.local_time(now);
        let before = self.snapshot();
        let mut out = Output::default();

        let status = self.status();
        let joins = self.handshake.due_joins(now, self.incarnation, &status);
        for (to, body) in joins {
            self.send(now, to, Body::Topology(body), &mut out);
        }

        if !self.detector.expire(now).is_empty() {
            self.links_dirty = true;
        }
        self.refresh_links(now, &mut out);

        let step = self.election.on_tick(now);
        self.apply_election(now, step, &mut out);
        if self.election.is_running()
            && self
                .election
                .started_at()
                .is_some_and(|started| now.since(started) > self.timing.election_timeout)
        {
            self.start_election(now, &mut out);
        }

        let step = self.tree.on_tick(now, &self.live);
        self.apply_tree(now, step, &mut out);

        self.settle(now, &mut out);

        let joined: Vec<NodeId> = self.handshake.joined_peers().collect();
        for peer in self.detector.heartbeats_due(now, joined) {
            self.send(now, peer, Body::Heartbeat, &mut out);
        }
        if self.repair.on_tick(now, self.live.len()) {
            out.events.push(Event::RepairNeeded {
                live: self.live.iter().copied().collect(),
            });
        }
        self.report_changes(before, &mut out);
        out
    }

    /// How many live neighbours this node keeps: the bootstrap's k, capped by the other nodes there
    /// are. Below it for `repair_delay`, [`Event::RepairNeeded`] goes out. 0 (the default) turns
    /// repair off.
    pub fn set_repair_target(&mut self, target: usize) {
        self.repair.set_target(target);
    }

    pub fn repair_target(&self) -> usize {
        self.repair.target()
    }

    // ----- read-only accessors (what /status shows) -----

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The leader this node follows, if any (also while orphaned).
    pub fn leader(&self) -> Option<NodeId> {
        self.tree.tree_id().map(|tree| tree.leader)
    }

    /// The term of the tree this node follows, or the highest term it has seen.
    pub fn term(&self) -> Term {
        self.tree.tree_id().map_or(self.max_term, |tree| tree.term)
    }

    pub fn tree_id(&self) -> Option<TreeId> {
        self.tree.tree_id()
    }

    pub fn is_root(&self) -> bool {
        self.tree.is_root()
    }

    pub fn parent(&self) -> Option<NodeId> {
        self.tree.parent()
    }

    pub fn children(&self) -> Vec<NodeId> {
        self.tree.children()
    }

    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }

    /// Every configured neighbour with its handshake and liveness state.
    pub fn neighbours(&self) -> Vec<NeighbourInfo> {
        self.handshake
            .peers()
            .map(|peer| NeighbourInfo {
                id: peer,
                joined: self.handshake.is_joined(peer),
                alive: self.detector.is_alive(peer),
            })
            .collect()
    }

    /// Neighbours joined and alive.
    pub fn live_neighbours(&self) -> &BTreeSet<NodeId> {
        &self.live
    }

    /// The newest root tick this node has seen (the counter itself at the root).
    pub fn tick(&self) -> u64 {
        self.tree.tick()
    }

    /// Leader known, tree built locally (SHOUT done), attached to the root, and roles computed.
    pub fn is_ready(&self) -> bool {
        self.tree.is_attached() && self.tree.shout_done() && !self.roles.is_empty()
    }

    pub fn clock(&self) -> LamportTime {
        self.clock.now()
    }

    /// dest → child to forward to, for every node below this one.
    pub fn routes(&self) -> BTreeMap<NodeId, NodeId> {
        self.tree.routes()
    }

    /// The election in progress (a pruned node waiting for the result counts).
    pub fn running_election(&self) -> Option<ElectionId> {
        self.election
            .is_running()
            .then(|| self.election.current())
            .flatten()
    }

    pub fn election_value(&self) -> ElectionValue {
        self.value
    }

    pub fn is_orphan(&self) -> bool {
        self.tree.is_orphan()
    }

    // ----- internals -----

    fn local_time(&mut self, now: Millis) -> Millis {
        let gap = now.since(self.last_call);
        if gap > self.timing.stall_threshold {
            // Count the stall as one heartbeat interval of local time.
            self.stalled_for = self.stalled_for + gap.since(self.timing.heartbeat_interval);
        }
        self.last_call = self.last_call.max(now);
        self.last_call.since(self.stalled_for)
    }

    fn status(&self) -> PeerStatus {
        PeerStatus {
            tree: self.tree.tree_id(),
            parent: self.tree.parent(),
            attached: self.tree.is_attached(),
            election: self.running_election(),
        }
    }

    fn send(&mut self, now: Millis, to: NodeId, body: Body, out: &mut Output) {
        let stamp = self.clock.on_send();
        self.detector.on_sent(now, to);
        out.messages
            .push((to, Envelope::new(self.id, to, stamp, body)));
    }

    fn observe_term(&mut self, term: Term) {
        self.max_term = self.max_term.max(term);
    }

    fn receive(&mut self, now: Millis, from: NodeId, envelope: Envelope, out: &mut Output) {
        let Envelope { header, body } = envelope;
        if header.source != from || header.destination != self.id || from == self.id {
            return;
        }
        if !self.handshake.knows(from) {
            if self.unknown_reported.insert(from) {
                out.events.push(Event::UnknownPeer { peer: from });
            }
            return;
        }
        self.clock.on_receive(header.timestamp);
        // A restarted peer's clock starts over: its stamps only compare within one incarnation.
        if let Body::Topology(topology) = &body
            && self
                .handshake
                .is_newer_incarnation(from, topology.incarnation())
        {
            self.newest_stamp.remove(&from);
        }
        let newest = self
            .newest_stamp
            .get(&from)
            .is_none_or(|seen| header.timestamp > *seen);
        if newest {
            self.newest_stamp.insert(from, header.timestamp);
        }
        if self.detector.on_received(now, from) {
            self.links_dirty = true;
        }
        match body {
            Body::Topology(topology) => self.on_topology(now, from, topology, newest, out),
            Body::Heartbeat => self.on_other_traffic(now, from, out),
            Body::Election(election) => {
                self.on_other_traffic(now, from, out);
                if self.live.contains(&from) {
                    self.on_election(now, from, election, out);
                }
            }
            Body::Tree(tree) => {
                self.on_other_traffic(now, from, out);
                if self.live.contains(&from) {
                    self.on_tree(now, from, header.timestamp, tree, out);
                }
            }
            // The data plane has its own socket; a data message here is not ours to handle.
            Body::Data(_) => {}
        }
    }

    fn on_topology(
        &mut self,
        now: Millis,
        from: NodeId,
        body: TopologyBody,
        newest: bool,
        out: &mut Output,
    ) {
        let status = self.status();
        let step = self
            .handshake
            .on_message(from, &body, self.incarnation, &status);
        if step.stale {
            return;
        }
        for (to, reply) in step.replies {
            self.send(now, to, Body::Topology(reply), out);
        }
        if step.peer_restarted {
            self.on_peer_forgot_us(now, from, out);
        }
        self.links_dirty |= step.became_joined;
        self.refresh_links(now, out);
        let theirs = body.status();
        if let Some(tree) = theirs.tree {
            self.observe_term(tree.term);
        }
        if let Some(election) = theirs.election {
            self.observe_term(election.term);
        }
        if newest {
            self.reconcile(now, from, theirs, out);
        }
    }

    fn on_other_traffic(&mut self, now: Millis, from: NodeId, out: &mut Output) {
        let status = self.status();
        let step = self
            .handshake
            .on_other_traffic(now, from, self.incarnation, &status);
        for (to, reply) in step.replies {
            self.send(now, to, Body::Topology(reply), out);
        }
        self.links_dirty |= step.became_joined;
        self.refresh_links(now, out);
    }

    /// A neighbour restarted without memory: whatever it was to us (parent, child, election edge) is
    /// gone. It stays joined; the handshake it started brings it back.
    fn on_peer_forgot_us(&mut self, now: Millis, peer: NodeId, out: &mut Output) {
        if self.election.on_neighbour_down(peer) {
            self.start_election(now, out);
        }
        let step = self.tree.on_neighbour_down(now, peer, &self.live);
        self.apply_tree(now, step, out);
    }

    /// Acts on a neighbour's handshake status: remember that a leader exists (so we wait to be adopted
    /// instead of electing), and adopt the neighbour if our tree should include it.
    fn reconcile(&mut self, now: Millis, from: NodeId, theirs: &PeerStatus, out: &mut Output) {
        let leaderless = !self.tree.has_tree() && !self.election.is_running();
        let their_leader_is_real = theirs
            .tree
            .is_some_and(|tree| tree.leader != self.id && theirs.attached);
        if leaderless && (their_leader_is_real || theirs.election.is_some()) {
            let until = now + self.timing.leader_timeout;
            self.hint_until = Some(self.hint_until.map_or(until, |hint| hint.max(until)));
        }
        let step = self.tree.reconcile(now, from, theirs);
        self.apply_tree(now, step, out);
    }

    fn on_election(&mut self, now: Millis, from: NodeId, body: ElectionBody, out: &mut Output) {
        let incoming = body.election();
        self.observe_term(incoming.term);
        if let Some(current) = self.election.current() {
            if incoming == current {
                let step = self.election.on_message(now, from, body, &self.live);
                self.apply_election(now, step, out);
                return;
            }
            if incoming < current {
                if body.is_start_or_nudge() {
                    if self.tree.is_attached() {
                        let step = self.tree.offer(now, from);
                        self.apply_tree(now, step, out);
                    } else {
                        let step = self.election.pull(now, from, &self.live);
                        self.apply_election(now, step, out);
                    }
                }
                return;
            }
        }
        if let Some(tree) = self.tree.tree_id()
            && tree.term >= incoming.term
        {
            // Stale: that election (or a newer one) already produced our tree.
            if body.is_start_or_nudge() {
                let step = self.tree.offer(now, from);
                self.apply_tree(now, step, out);
            }
            return;
        }
        self.join_election(now, incoming, out);
        let step = self.election.on_message(now, from, body, &self.live);
        self.apply_election(now, step, out);
    }

    fn on_tree(
        &mut self,
        now: Millis,
        from: NodeId,
        stamp: LamportTime,
        body: TreeBody,
        out: &mut Output,
    ) {
        self.observe_term(body.tree().term);
        let floor = self.running_election().map(|election| election.term);
        let had = self.tree.tree_id();
        let step = self
            .tree
            .on_message(now, from, stamp, body, &self.live, floor);
        if self.tree.tree_id() != had && self.tree.has_tree() {
            // Joined a tree: whatever election was running is over for this node.
            self.election.finish();
            self.hint_until = None;
            self.leaderless_since = None;
        }
        self.apply_tree(now, step, out);
    }

    fn apply_election(&mut self, now: Millis, step: ElectionStep, out: &mut Output) {
        for (to, body) in step.messages {
            self.send(now, to, Body::Election(body), out);
        }
        if step.won
            && let Some(election) = self.election.current()
        {
            let tree = TreeId {
                term: election.term,
                leader: self.id,
            };
            let step = self.tree.become_root(now, tree, &self.live);
            self.apply_tree(now, step, out);
        }
    }

    fn apply_tree(&mut self, now: Millis, step: TreeStep, out: &mut Output) {
        for (to, body) in step.messages {
            self.send(now, to, Body::Tree(body), out);
        }
        if let Some(lost_parent) = step.orphaned {
            out.events.push(Event::Orphaned { lost_parent });
        }
        if let Some(parent) = step.adopted {
            out.events.push(Event::Adopted { parent });
        }
        if step.leader_lost {
            self.lose_leader(now, out);
        }
    }

    fn lose_leader(&mut self, now: Millis, out: &mut Output) {
        if let Some(tree) = self.tree.tree_id() {
            out.events.push(Event::LeaderLost {
                leader: tree.leader,
                term: tree.term,
            });
        }
        self.tree.dissolve();
        if self.live.is_empty() {
            // Alone: nobody to elect with; `settle` elects this node alone after the lone grace.
            self.leaderless_since = Some(now);
        } else {
            self.start_election(now, out);
        }
    }

    /// Initiates a new election, stronger than any this node has seen.
    fn start_election(&mut self, now: Millis, out: &mut Output) {
        self.max_term = self.max_term.next();
        let election = ElectionId {
            term: self.max_term,
            clock: self.clock.now(),
            initiator: self.id,
        };
        out.events.push(Event::ElectionStarted { election });
        self.join_election(now, election, out);
    }

    /// Enters `election` (leaving any tree) and sends START to every live neighbour.
    fn join_election(&mut self, now: Millis, election: ElectionId, out: &mut Output) {
        self.observe_term(election.term);
        self.tree.dissolve();
        self.hint_until = None;
        self.leaderless_since = None;
        let step = self
            .election
            .start(now, election, self.value, self.live.clone());
        self.apply_election(now, step, out);
    }

    /// Recomputes the set of live joined neighbours and reacts to each change.
    fn refresh_links(&mut self, now: Millis, out: &mut Output) {
        if !self.links_dirty {
            return;
        }
        self.links_dirty = false;
        let current: BTreeSet<NodeId> = self
            .handshake
            .joined_peers()
            .filter(|peer| self.detector.is_alive(*peer))
            .collect();
        let up: Vec<NodeId> = current.difference(&self.live).copied().collect();
        let down: Vec<NodeId> = self.live.difference(&current).copied().collect();
        self.live = current;
        for peer in up {
            out.events.push(Event::NeighbourUp { neighbour: peer });
            if !self.ever_live.insert(peer) {
                // Back after being OFF: exchange statuses again so trees can be reconciled.
                let status = self.status();
                if let Some((to, body)) =
                    self.handshake.rejoin(now, peer, self.incarnation, &status)
                {
                    self.send(now, to, Body::Topology(body), out);
                }
            }
            let step = self.election.on_neighbour_up(now, peer);
            self.apply_election(now, step, out);
        }
        for peer in down {
            out.events.push(Event::NeighbourDown { neighbour: peer });
            if self.election.on_neighbour_down(peer) {
                self.start_election(now, out);
            }
            let step = self.tree.on_neighbour_down(now, peer, &self.live);
            self.apply_tree(now, step, out);
        }
    }

    /// Starts an election when one is due, and recomputes roles.
    fn settle(&mut self, now: Millis, out: &mut Output) {
        if !self.election.is_running() && !self.tree.has_tree() {
            let since = *self.leaderless_since.get_or_insert(now);
            let hinted = self.hint_until.is_some_and(|until| now < until);
            let alone = self.live.is_empty();
            let due = if alone {
                self.handshake.is_empty() || now.since(since) >= self.timing.lone_grace
            } else {
                now.since(since) >= self.timing.election_delay
            };
            if due && !hinted {
                self.start_election(now, out);
            }
        }
        let step = self.tree.refresh_report(now);
        self.apply_tree(now, step, out);
        if self.tree.is_attached() && self.tree.shout_done() {
            let parent_is_root = self.tree.parent().is_some()
                && self.tree.parent() == self.tree.tree_id().map(|tree| tree.leader);
            self.roles = roles(
                self.tree.is_root(),
                self.tree.parent().is_some(),
                self.tree.children().len(),
                parent_is_root,
            );
        } else if !self.tree.has_tree() {
            self.roles.clear();
        }
        // An orphan keeps its roles while it heals, so input nodes do not flap their HTTP servers.
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            tree: self.tree.tree_id(),
            parent: self.tree.parent(),
            roles: self.roles.clone(),
            tree_changes: self.tree.changes(),
            ready: self.is_ready(),
        }
    }

    fn report_changes(&mut self, before: Snapshot, out: &mut Output) {
        let after = self.snapshot();
        if after.tree != before.tree
            && let Some(tree) = after.tree
        {
            out.events.push(Event::LeaderElected {
                leader: tree.leader,
                term: tree.term,
            });
        }
        if after.parent != before.parent {
            out.events.push(Event::ParentChanged {
                parent: after.parent,
            });
        }
        if after.tree_changes != before.tree_changes {
            let children = self.tree.children();
            if children != self.reported_children {
                self.reported_children = children.clone();
                out.events.push(Event::ChildrenChanged { children });
            }
        }
        if after.roles != before.roles {
            out.events.push(Event::RolesChanged {
                roles: after.roles.iter().copied().collect(),
            });
        }
        if after.tree_changes != before.tree_changes {
            let routes = self.tree.routes();
            if routes != self.reported_routes {
                self.reported_routes = routes;
                out.events.push(Event::RoutesChanged);
            }
        }
        if after.ready
            && !before.ready
            && let Some(tree) = after.tree
        {
            out.events.push(Event::TreeReady {
                leader: tree.leader,
                term: tree.term,
            });
        }
    }
}

#[cfg(test)]
mod tests;
