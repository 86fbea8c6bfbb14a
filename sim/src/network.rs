//! The simulated network and runtime: one event queue ordered by (time, sequence), nodes ticked every
//! `tick_every` ms, each message delayed by a seeded random amount (so messages reorder), dropped with
//! probability `loss`, dropped on cut links and at crashed nodes. Nodes can crash, restart with their
//! memory (the same state machine resumes after a gap, like SIGSTOP/SIGCONT) or without it (a fresh
//! state machine with a larger incarnation). Unknown peers are "looked up in the bootstrap": the
//! node gets `add_neighbour` a few ms later if the edge exists.
//!
//! Repair (`SimConfig::repair_k` > 0) models the bootstrap with the very rules it runs
//! (`topology::repair` on a registry graph, liveness from leases that run out `lease` ms after a
//! crash); with the bootstrap down (`Sim::bootstrap_up`), a node picks its neighbours' neighbours
//! from the registry's lists (`topology::fallback_candidates`), as the node's runtime does.

use std::collections::{BTreeMap, BTreeSet};

use overlay::{
    Body, ElectionBody, ElectionId, Envelope, Epoch, Event, Millis, NodeId, Output, Overlay, Role,
    Term, Timing, TopologyBody, TreeBody, TreeId, encode,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::graphs::{Graph, components};
use crate::invariants::{NodeView, World};

#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Per-message delay is uniform in `1..=max_delay` ms.
    pub max_delay: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// How often the runtime calls `on_tick`.
    pub tick_every: u64,
    pub timing: Timing,
    /// Send every message through `encode`/`decode` (slower; exercises the codec).
    pub codec: bool,
    /// The bootstrap's k for repairs; 0 leaves repair off (the graph never changes).
    pub repair_k: usize,
    /// How long the bootstrap still counts a crashed node as live (its lease).
    pub lease: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            max_delay: 5,
            loss: 0.0,
            tick_every: 50,
            timing: Timing::default(),
            codec: false,
            repair_k: 0,
            lease: 1500,
        }
    }
}

/// Message counts by kind, and a few event counts.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub by_kind: BTreeMap<&'static str, u64>,
    pub elections_started: u64,
    pub leaders_lost: u64,
    pub adoptions: u64,
    /// Repair requests answered, and the edges they added.
    pub repairs: u64,
    pub repaired_edges: u64,
    pub delivered: u64,
    pub dropped: u64,
}

impl Stats {
    /// Election messages plus SHOUT questions and answers: what the m·log n bound is about.
    pub fn algorithm_messages(&self) -> u64 {
        [
            "start", "yo", "vote", "nudge", "decline", "question", "answer",
        ]
        .iter()
        .map(|kind| self.by_kind.get(kind).copied().unwrap_or(0))
        .sum()
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

fn kind_of(envelope: &Envelope) -> &'static str {
    match &envelope.body {
        Body::Topology(TopologyBody::Join { .. }) => "join",
        Body::Topology(TopologyBody::JoinAck { .. }) => "join_ack",
        Body::Topology(TopologyBody::Ack { .. }) => "ack",
        Body::Heartbeat => "heartbeat",
        Body::Election(ElectionBody::Start { .. }) => "start",
        Body::Election(ElectionBody::Yo { .. }) => "yo",
        Body::Election(ElectionBody::Vote { .. }) => "vote",
        Body::Election(ElectionBody::Nudge { .. }) => "nudge",
        Body::Election(ElectionBody::Decline { .. }) => "decline",
        Body::Tree(TreeBody::Question { .. }) => "question",
        Body::Tree(TreeBody::Answer { .. }) => "answer",
        Body::Tree(TreeBody::Tick { .. }) => "tick",
        Body::Tree(TreeBody::NoParentRequest { .. }) => "no_parent_request",
        Body::Tree(TreeBody::NoParentRefuse { .. }) => "no_parent_refuse",
        Body::Tree(TreeBody::Detach { .. }) => "detach",
        Body::Tree(TreeBody::RouteReport { .. }) => "route_report",
        Body::Tree(TreeBody::RouteAck { .. }) => "route_ack",
        Body::Data(_) => "data",
    }
}

enum SimEvent {
    Start {
        node: NodeId,
        neighbours: BTreeSet<NodeId>,
    },
    Tick {
        node: NodeId,
        generation: u64,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        envelope: Envelope,
    },
    AddNeighbour {
        node: NodeId,
        peer: NodeId,
    },
    /// Every live node renews its lease (every 500 ms); the bootstrap may join a split through it.
    Renewals,
    /// A repair request reaches the bootstrap (or, with it down, the node's own fallback).
    Repair {
        node: NodeId,
        live: BTreeSet<NodeId>,
    },
}

#[derive(Default)]
struct SimNode {
    overlay: Option<Overlay>,
    incarnation: u64,
    generation: u64,
    /// The data position the node runs for election with; a (re)started process reads it from its
    /// database, so it outlives the overlay's state.
    election_value: Option<(Term, Epoch)>,
}

/// A whole simulated cluster.
pub struct Sim {
    pub now: u64,
    pub rng: StdRng,
    pub config: SimConfig,
    pub graph: Graph,
    nodes: BTreeMap<NodeId, SimNode>,
    queue: BTreeMap<(u64, u64), Box<SimEvent>>,
    seq: u64,
    cut: BTreeSet<(NodeId, NodeId)>,
    pub stats: Stats,
    /// Protocol violations seen in flight (e.g. a message to a non-neighbour).
    pub violations: Vec<String>,
    /// The bootstrap's registry: registration edges plus what it repaired (fallback edges are not
    /// in it, as the real bootstrap never hears of them).
    pub registry: topology::Graph<NodeId>,
    /// Whether repair requests reach the bootstrap.
    pub bootstrap_up: bool,
    /// When each currently crashed node went down (its lease runs out `lease` ms later).
    crashed_at: BTreeMap<NodeId, u64>,
}

/// `SIM_TRACE=<node id>` prints everything that node sends, receives (except heartbeats) and reports.
fn trace_node() -> Option<NodeId> {
    std::env::var("SIM_TRACE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(NodeId)
}

/// How often every node renews its lease with the bootstrap.
const RENEW_EVERY: u64 = 500;

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Sim {
    pub fn new(graph: Graph, config: SimConfig, seed: u64) -> Sim {
        let registry = topology::Graph::from_adjacency(
            graph.order.iter().map(|id| (*id, graph.neighbours(*id))),
        )
        .expect("generated graphs are symmetric");
        let nodes = graph
            .adjacency
            .keys()
            .map(|id| (*id, SimNode::default()))
            .collect();
        let mut sim = Sim {
            now: 0,
            rng: StdRng::seed_from_u64(seed ^ 0x005e_ed0f_5147),
            config,
            graph,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            stats: Stats::default(),
            violations: Vec::new(),
            registry,
            bootstrap_up: true,
            crashed_at: BTreeMap::new(),
        };
        if sim.config.repair_k > 0 {
            sim.schedule(RENEW_EVERY, SimEvent::Renewals);
        }
        sim
    }

    fn schedule(&mut self, at: u64, event: SimEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), Box::new(event));
    }

    /// Starts `node` at time `at`, knowing `neighbours`.
    pub fn start_at(&mut self, node: NodeId, at: u64, neighbours: BTreeSet<NodeId>) {
        self.schedule(at, SimEvent::Start { node, neighbours });
    }

    /// Starts every node within `jitter` ms, each knowing all its graph neighbours.
    pub fn start_all(&mut self, jitter: u64) {
        let nodes: Vec<NodeId> = self.graph.order.clone();
        for node in nodes {
            let at = self.now + self.rng.random_range(0..=jitter);
            let neighbours = self.graph.neighbours(node);
            self.start_at(node, at, neighbours);
        }
    }

    /// Starts nodes in registration order, `stagger` ms apart, each knowing only the nodes it picked
    /// (the bootstrap's answer at registration time); earlier nodes learn of it when it contacts them.
    pub fn start_staggered(&mut self, stagger: u64) {
        let order = self.graph.order.clone();
        for (k, node) in order.into_iter().enumerate() {
            let neighbours = self.graph.picks.get(&node).cloned().unwrap_or_default();
            self.start_at(node, self.now + k as u64 * stagger, neighbours);
        }
    }

    pub fn live_nodes(&self) -> BTreeSet<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.overlay.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn overlay(&self, node: NodeId) -> Option<&Overlay> {
        self.nodes.get(&node).and_then(|n| n.overlay.as_ref())
    }

    /// Crashes `node`; returns its state so a scenario can restart it with memory.
    pub fn crash(&mut self, node: NodeId) -> Option<Overlay> {
        let slot = self.nodes.get_mut(&node)?;
        slot.generation += 1;
        let state = slot.overlay.take();
        if state.is_some() {
            self.crashed_at.insert(node, self.now);
        }
        state
    }

    /// Resumes a crashed node with the state it had (its clock jumps; it must cope).
    pub fn restart_with_memory(&mut self, node: NodeId, state: Overlay) {
        let now = self.now;
        let tick_every = self.config.tick_every;
        self.crashed_at.remove(&node);
        if let Some(slot) = self.nodes.get_mut(&node) {
            slot.overlay = Some(state);
            slot.generation += 1;
            let generation = slot.generation;
            self.schedule(now + tick_every, SimEvent::Tick { node, generation });
        }
    }

    /// Restarts a crashed node from scratch with a new incarnation and all its graph neighbours.
    pub fn restart_fresh(&mut self, node: NodeId) {
        let neighbours = self.graph.neighbours(node);
        let now = self.now;
        self.start_at(node, now, neighbours);
    }

    /// Sets the data position `node` runs for election with, now and after every restart (as the
    /// node reads it from its database when it starts).
    pub fn set_election_value(&mut self, node: NodeId, term: Term, epoch: Epoch) {
        let Some(slot) = self.nodes.get_mut(&node) else {
            return;
        };
        slot.election_value = Some((term, epoch));
        if let Some(overlay) = slot.overlay.as_mut() {
            overlay.set_election_value(term, epoch);
        }
    }

    /// `node`'s data plane asks for an election (see [`Overlay::call_election`]); nothing if it is
    /// down.
    pub fn call_election(&mut self, node: NodeId) {
        let now = Millis(self.now);
        let Some(overlay) = self.nodes.get_mut(&node).and_then(|n| n.overlay.as_mut()) else {
            return;
        };
        let output = overlay.call_election(now);
        self.dispatch(node, output);
    }

    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert(link(a, b));
    }

    pub fn recover_all(&mut self) {
        self.cut.clear();
    }

    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        self.cut.contains(&link(a, b))
    }

    pub fn set_loss(&mut self, loss: f64) {
        self.config.loss = loss;
    }

    /// Runs events up to and including time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > until {
                break;
            }
            let event = entry.remove();
            self.now = at;
            self.handle(*event);
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, duration: u64) {
        let until = self.now + duration;
        self.run_until(until);
    }

    fn handle(&mut self, event: SimEvent) {
        let now = Millis(self.now);
        match event {
            SimEvent::Start { node, neighbours } => {
                let timing = self.config.timing;
                let Some(slot) = self.nodes.get_mut(&node) else {
                    return;
                };
                slot.incarnation += 1;
                slot.generation += 1;
                let mut overlay =
                    Overlay::new(node, neighbours, timing, now).with_incarnation(slot.incarnation);
                if let Some((term, epoch)) = slot.election_value {
                    overlay.set_election_value(term, epoch);
                }
                let target = self.config.repair_k.min(self.graph.n().saturating_sub(1));
                overlay.set_repair_target(target);
                slot.overlay = Some(overlay);
                self.crashed_at.remove(&node);
                let generation = slot.generation;
                // The runtime ticks right away, then periodically.
                self.schedule(self.now, SimEvent::Tick { node, generation });
            }
            SimEvent::Tick { node, generation } => {
                let tick_every = self.config.tick_every;
                let Some(slot) = self.nodes.get_mut(&node) else {
                    return;
                };
                if slot.generation != generation {
                    return;
                }
                let Some(overlay) = slot.overlay.as_mut() else {
                    return;
                };
                let output = overlay.on_tick(now);
                self.schedule(self.now + tick_every, SimEvent::Tick { node, generation });
                self.dispatch(node, output);
            }
            SimEvent::Deliver { from, to, envelope } => {
                if trace_node() == Some(to) && !matches!(envelope.body, Body::Heartbeat) {
                    println!("t={} node {to} <- {from}: {:?}", self.now, envelope.body);
                }
                let codec = self.config.codec;
                let Some(overlay) = self.nodes.get_mut(&to).and_then(|n| n.overlay.as_mut()) else {
                    self.stats.dropped += 1;
                    return;
                };
                self.stats.delivered += 1;
                let output = if codec {
                    let bytes = encode(&envelope);
                    match overlay.on_bytes(now, from, &bytes) {
                        Ok(output) => output,
                        Err(error) => {
                            self.violations.push(format!(
                                "t={} codec failed on {envelope:?}: {error}",
                                self.now
                            ));
                            return;
                        }
                    }
                } else {
                    overlay.on_message(now, from, envelope)
                };
                self.dispatch(to, output);
            }
            SimEvent::AddNeighbour { node, peer } => {
                if !self.graph.has_edge(node, peer) {
                    return;
                }
                let Some(overlay) = self.nodes.get_mut(&node).and_then(|n| n.overlay.as_mut())
                else {
                    return;
                };
                let output = overlay.add_neighbour(now, peer);
                self.dispatch(node, output);
            }
            SimEvent::Repair { node, live } => self.repair(node, &live),
            SimEvent::Renewals => {
                self.schedule(self.now + RENEW_EVERY, SimEvent::Renewals);
                if self.bootstrap_up {
                    for node in self.live_nodes() {
                        self.renew(node);
                    }
                }
            }
        }
    }

    /// `node` renews its lease: the bootstrap joins a split through it if it represents a part.
    fn renew(&mut self, node: NodeId) {
        let now = self.now;
        let lease = self.config.lease;
        let crashed_at = &self.crashed_at;
        let Some(peer) = topology::merge_split(
            &mut self.registry,
            node,
            |other| crashed_at.get(&other).is_none_or(|at| now < at + lease),
            topology::RepairLimits::new(self.config.repair_k),
        ) else {
            return;
        };
        self.stats.repaired_edges += 1;
        self.graph.add_edge(node, peer);
        let at = self.now + self.rng.random_range(1..=self.config.max_delay.max(1));
        self.schedule(at, SimEvent::AddNeighbour { node, peer });
    }

    /// Answers a repair request as the bootstrap would (or, with it down, as the node's fallback
    /// does); the requester learns its new neighbours after a round trip, the other ends when the
    /// requester's JOIN reaches them (an unknown peer, looked up as usual).
    fn repair(&mut self, node: NodeId, live: &BTreeSet<NodeId>) {
        if self.overlay(node).is_none() {
            return;
        }
        self.stats.repairs += 1;
        let k = self.config.repair_k;
        let picks = if self.bootstrap_up {
            let now = self.now;
            let lease = self.config.lease;
            let crashed_at = &self.crashed_at;
            topology::repair(
                &mut self.registry,
                node,
                live,
                |other| crashed_at.get(&other).is_none_or(|at| now < at + lease),
                topology::RepairLimits::new(k),
            )
        } else {
            let lists: BTreeMap<NodeId, BTreeSet<NodeId>> = self
                .registry
                .order()
                .iter()
                .map(|id| (*id, self.registry.neighbours(*id).clone()))
                .collect();
            let need = k.saturating_sub(live.len());
            topology::fallback_candidates(node, live, &lists, need)
        };
        for peer in picks {
            self.stats.repaired_edges += 1;
            self.graph.add_edge(node, peer);
            let at = self.now + self.rng.random_range(1..=self.config.max_delay.max(1));
            self.schedule(at, SimEvent::AddNeighbour { node, peer });
        }
    }

    fn dispatch(&mut self, from: NodeId, output: Output) {
        if trace_node() == Some(from) {
            for event in &output.events {
                println!("t={} node {from} event {event:?}", self.now);
            }
            for (to, envelope) in &output.messages {
                if !matches!(envelope.body, Body::Heartbeat) {
                    println!("t={} node {from} -> {to}: {:?}", self.now, envelope.body);
                }
            }
        }
        for event in &output.events {
            match event {
                Event::UnknownPeer { peer } => {
                    let at = self.now + 5;
                    self.schedule(
                        at,
                        SimEvent::AddNeighbour {
                            node: from,
                            peer: *peer,
                        },
                    );
                }
                Event::RepairNeeded { live } => {
                    let at = self.now + self.rng.random_range(1..=self.config.max_delay.max(1));
                    let live = live.iter().copied().collect();
                    self.schedule(at, SimEvent::Repair { node: from, live });
                }
                Event::ElectionStarted { .. } => self.stats.elections_started += 1,
                Event::LeaderLost { .. } => self.stats.leaders_lost += 1,
                Event::Adopted { .. } => self.stats.adoptions += 1,
                _ => {}
            }
        }
        for (to, envelope) in output.messages {
            *self.stats.by_kind.entry(kind_of(&envelope)).or_default() += 1;
            if !self.graph.has_edge(from, to) {
                self.violations.push(format!(
                    "t={} node {from} sent to non-neighbour {to}",
                    self.now
                ));
                continue;
            }
            if envelope.header.source != from || envelope.header.destination != to {
                self.violations.push(format!(
                    "t={} bad header from {from} to {to}: {:?}",
                    self.now, envelope.header
                ));
            }
            if self.is_cut(from, to) || self.rng.random_bool(self.config.loss.clamp(0.0, 1.0)) {
                self.stats.dropped += 1;
                continue;
            }
            let delay = self.rng.random_range(1..=self.config.max_delay.max(1));
            let at = self.now + delay;
            self.schedule(at, SimEvent::Deliver { from, to, envelope });
        }
    }

    /// What every live node reports, and the components of live nodes over uncut links.
    pub fn world(&self) -> World {
        self.world_with(true)
    }

    /// As [`Sim::world`]; without routes it is cheaper and the route invariant is skipped.
    pub fn world_with(&self, routes: bool) -> World {
        let live = self.live_nodes();
        let components = components(&self.graph, &live, |a, b| !self.is_cut(a, b));
        let views = self
            .nodes
            .iter()
            .filter_map(|(id, slot)| slot.overlay.as_ref().map(|o| (*id, view_of(o, routes))))
            .collect();
        World { views, components }
    }

    /// The leader and term of the component containing `node`.
    pub fn leader_of(&self, node: NodeId) -> Option<TreeId> {
        self.overlay(node).and_then(|o| o.tree_id())
    }

    /// Runs until every invariant holds and nothing changed for `settle` ms, or fails at `deadline`.
    pub fn run_until_stable(&mut self, deadline: u64, settle: u64) -> Result<u64, String> {
        let step = 100;
        let mut stable_since: Option<(u64, Vec<Fingerprint>)> = None;
        loop {
            self.run_for(step);
            if !self.violations.is_empty() {
                return Err(format!("violations: {:?}", self.violations));
            }
            // The route tables are only compared once everything else has held for the whole window.
            let mut problems = self.world_with(false).check_all();
            if problems.is_empty() {
                let fingerprint = self.fingerprint();
                match &stable_since {
                    Some((since, previous)) if *previous == fingerprint => {
                        if self.now - since >= settle {
                            problems = self.world().check_all();
                            if problems.is_empty() {
                                return Ok(*since);
                            }
                        }
                    }
                    _ => stable_since = Some((self.now, fingerprint)),
                }
            } else {
                stable_since = None;
            }
            if self.now >= deadline {
                return Err(format!(
                    "not stable at t={}ms: {}",
                    self.now,
                    problems.join("; ")
                ));
            }
        }
    }

    fn fingerprint(&self) -> Vec<Fingerprint> {
        self.nodes
            .iter()
            .filter_map(|(id, slot)| {
                slot.overlay.as_ref().map(|o| Fingerprint {
                    id: *id,
                    tree: o.tree_id(),
                    parent: o.parent(),
                    children: o.children(),
                    roles: o.roles().iter().copied().collect(),
                    election: o.running_election(),
                })
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    id: NodeId,
    tree: Option<TreeId>,
    parent: Option<NodeId>,
    children: Vec<NodeId>,
    roles: Vec<Role>,
    election: Option<ElectionId>,
}

fn view_of(overlay: &Overlay, routes: bool) -> NodeView {
    NodeView {
        tree: overlay.tree_id(),
        is_root: overlay.is_root(),
        parent: overlay.parent(),
        children: overlay.children().into_iter().collect(),
        roles: overlay.roles().clone(),
        ready: overlay.is_ready(),
        election: overlay.running_election(),
        routes: routes.then(|| overlay.routes()),
    }
}
