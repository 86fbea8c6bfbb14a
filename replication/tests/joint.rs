//! The joint simulation: the replication model (`model`) runs on trees built by the real overlay
//! state machines on the simulated network of `cluster-sim`, instead of trees the test forms itself.
//!
//! Per seed: a generated graph (mostly 3–12 nodes, a few 1–2 or 13–30), a replication factor R of
//! 1–5, the overlay started on every node. Then, in steps of 200 ms of simulated time: a seeded fault
//! now and then (a crash; a restart with or without the node's replication disk, the overlay starting
//! afresh either way since its state is in memory; a whole-cluster restart; a link cut, a partition or
//! their recovery; message loss for the overlay and the replication messages alike), the network
//! runs, and the trees are read off the overlays: a root is a live node whose overlay leads a ready
//! tree; its members are the nodes its routes name that follow the same tree id and reach it through
//! parents that do too, over working links (views that disagree mid-healing leave a node out). Every
//! member has reported only when every node the root routes to is such a member. The writers of
//! those trees run the crate's rules (`model`) with the overlay's real tree term; each node's data
//! position goes back into its overlay as its election value, and a root that sees newer data in its
//! tree calls an election (at most every 3 s, as the node does).
//!
//! After every step the model's invariants hold (one writer accepts, every data term taken once, no
//! acknowledged write lost, logs agree, one configuration change at a time). At quiescence (faults
//! stop, links recover, loss 0, the overlay is stable, then some steps): every writer whose tree holds
//! a majority of its voters alive and whole accepts writes, acknowledges new ones, and has
//! `min(R, nodes it reaches)` voters, all reachable.
//!
//! What it does not model: the data plane's own messages (summaries, acknowledgements) travel at once
//! inside a step rather than over the tree with delays; a root sees its members' positions, promises
//! and whole flags exactly; processes pausing with their memory (SIGSTOP) are not simulated.
//!
//! `SIM_SEEDS=n` runs n seeds (default 1,000), `SIM_SEED=s` replays one with its trace; a failure
//! prints the seed, the scenario and the last events.

mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cluster_sim::graphs::{Graph, GraphKind};
use cluster_sim::network::{Sim, SimConfig};
use overlay::{Epoch, Term, TreeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replication::{NodeId, ReplicationFactor};

use model::Model;

const SEEDS: u64 = 1000;
const BASE: u64 = 0x101e_0000;
/// Worker threads for the seed sweep (CI machines have two cores).
const WORKERS: usize = 2;
/// Simulated time between two rounds of the replication model.
const STEP_MS: u64 = 200;
const FAULT_STEPS: u64 = 150;
/// The node asks for an election at most this often (`ELECTION_CALL_SPACING` in the node).
const ELECTION_CALL_SPACING_MS: u64 = 3000;
/// Losses the overlay and the replication messages run under (high loss keeps trees from forming
/// at all, which tests nothing).
const LOSSES: [f64; 3] = [0.0, 0.05, 0.15];

#[derive(Clone, Copy, Debug)]
struct Scenario {
    seed: u64,
    kind: GraphKind,
    n: usize,
    factor: usize,
    max_delay: u64,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIM_SEED={} {:?} n={} R={} max_delay={}ms",
            self.seed, self.kind, self.n, self.factor, self.max_delay
        )
    }
}

impl Scenario {
    fn from_seed(seed: u64) -> (Scenario, StdRng) {
        let mut rng = StdRng::seed_from_u64(seed);
        let kind = GraphKind::ALL[rng.random_range(0..GraphKind::ALL.len())];
        let n = match rng.random_range(0..100) {
            0..8 => rng.random_range(1..=2),
            8..92 => rng.random_range(3..=12),
            _ => rng.random_range(13..=30),
        };
        let factor = rng.random_range(1..=5);
        let max_delay = rng.random_range(1..=20);
        let scenario = Scenario {
            seed,
            kind,
            n,
            factor,
            max_delay,
        };
        (scenario, rng)
    }
}

struct Joint {
    net: Sim,
    model: Model,
    /// Draws the faults (the network and the model have their own).
    rng: StdRng,
    /// When each root last asked for an election.
    last_call: BTreeMap<NodeId, u64>,
    /// What happened, for the failure report (`SIM_SEED` prints it whole).
    trace: Vec<String>,
    /// Work around the overlay's lost-rejoin split at quiescence instead of failing on it.
    bounce_when_split: bool,
}

impl Joint {
    fn new(scenario: &Scenario, mut rng: StdRng) -> Joint {
        let graph = Graph::generate(scenario.kind, scenario.n, &mut rng, true);
        let config = SimConfig {
            max_delay: scenario.max_delay,
            ..SimConfig::default()
        };
        let mut net = Sim::new(graph, config, scenario.seed);
        net.start_all(30);
        let factor = ReplicationFactor::new(scenario.factor).expect("R is 1–5");
        let model_rng = StdRng::seed_from_u64(rng.random());
        let mut model = Model::new(model_rng, scenario.n as u64, factor, 0.0);
        // The grace period after which an absent voter is replaced: 2 s of simulated time.
        model.grace_steps = 10;
        model.step_ms = STEP_MS;
        Joint {
            net,
            model,
            rng,
            last_call: BTreeMap::new(),
            trace: Vec::new(),
            bounce_when_split: true,
        }
    }

    fn note(&mut self, event: String) {
        self.trace.push(format!("t={} {event}", self.net.now));
    }

    fn pick(&mut self, from: &BTreeSet<NodeId>) -> Option<NodeId> {
        if from.is_empty() {
            return None;
        }
        from.iter()
            .nth(self.rng.random_range(0..from.len()))
            .copied()
    }

    fn dead(&self) -> BTreeSet<NodeId> {
        let live = self.net.live_nodes();
        self.model
            .nodes
            .keys()
            .copied()
            .filter(|id| !live.contains(id))
            .collect()
    }

    fn crash(&mut self, node: NodeId) {
        self.net.crash(node);
        if let Some(state) = self.model.nodes.get_mut(&node) {
            state.alive = false;
        }
    }

    /// A new process on `node`, with its disk or without: it runs for election with what its disk
    /// holds.
    fn restart(&mut self, node: NodeId, with_disk: bool) {
        let Some(state) = self.model.nodes.get_mut(&node) else {
            return;
        };
        if with_disk {
            state.restart();
        } else {
            state.restart_without_disk();
        }
        let (term, epoch) = state.position();
        self.net.set_election_value(node, Term(term), Epoch(epoch));
        self.net.restart_fresh(node);
    }

    fn fault(&mut self) {
        let live = self.net.live_nodes();
        let dead = self.dead();
        match self.rng.random_range(0..100) {
            0..12 => {
                if let Some(node) = self.pick(&live) {
                    self.note(format!("crash {node}"));
                    self.crash(node);
                }
            }
            12..24 => {
                if let Some(node) = self.pick(&dead) {
                    self.note(format!("restart {node} with its disk"));
                    self.restart(node, true);
                }
            }
            24..29 => {
                if let Some(node) = self.pick(&dead) {
                    self.note(format!("restart {node} without its disk"));
                    self.restart(node, false);
                }
            }
            29..39 => {
                let edges = self.net.graph.edges();
                if !edges.is_empty() {
                    let (a, b) = edges[self.rng.random_range(0..edges.len())];
                    self.note(format!("cut {a}-{b}"));
                    self.net.cut(a, b);
                }
            }
            39..45 => {
                // A partition: every node on one of two sides, every link across cut.
                let sides: BTreeMap<NodeId, bool> = self
                    .model
                    .nodes
                    .keys()
                    .map(|id| (*id, self.rng.random_bool(0.5)))
                    .collect();
                for (a, b) in self.net.graph.edges() {
                    if sides[&a] != sides[&b] {
                        self.net.cut(a, b);
                    }
                }
                let one: Vec<u64> = sides
                    .iter()
                    .filter(|(_, s)| **s)
                    .map(|(i, _)| i.0)
                    .collect();
                self.note(format!("partition {one:?} from the rest"));
            }
            45..55 => {
                self.note("links recover".into());
                self.net.recover_all();
            }
            55..60 => {
                let loss = LOSSES[self.rng.random_range(0..LOSSES.len())];
                self.note(format!("loss {loss}"));
                self.net.set_loss(loss);
                self.model.loss = loss;
            }
            60..62 => {
                // Every process restarts, disks kept, some stay down: tree terms start again.
                self.note("whole cluster restarts".into());
                for node in live {
                    self.crash(node);
                }
                let all: Vec<NodeId> = self.model.nodes.keys().copied().collect();
                for node in all {
                    if self.rng.random_bool(0.7) {
                        self.restart(node, true);
                    }
                }
            }
            _ => {}
        }
    }

    /// `node` follows `tree` and reaches its root through parents that follow it too, over links
    /// that work.
    fn follows(&self, node: NodeId, tree: TreeId) -> bool {
        let mut at = node;
        for _ in 0..=self.model.nodes.len() {
            let Some(overlay) = self.net.overlay(at) else {
                return false;
            };
            if overlay.tree_id() != Some(tree) {
                return false;
            }
            if at == tree.leader {
                return true;
            }
            let Some(parent) = overlay.parent() else {
                return false;
            };
            if self.net.is_cut(at, parent) {
                return false;
            }
            at = parent;
        }
        false
    }

    /// The trees the overlays lead now, and their writers (kept while nothing changed).
    fn read_trees(&mut self) {
        let mut writers = Vec::new();
        for root in self.net.live_nodes() {
            let Some(overlay) = self.net.overlay(root) else {
                continue;
            };
            let Some(tree) = overlay.tree_id() else {
                continue;
            };
            if !overlay.is_root() || !overlay.is_ready() || tree.leader != root {
                continue;
            }
            let routed = overlay.routes();
            let mut members: BTreeSet<NodeId> = routed
                .keys()
                .copied()
                .filter(|node| self.follows(*node, tree))
                .collect();
            let all_reported = members.len() == routed.len();
            members.insert(root);
            let incarnation = self.model.nodes[&root].incarnation;
            let kept = self.model.writers.iter().find(|w| {
                w.id == root
                    && w.incarnation == incarnation
                    && w.tree_term == tree.term.0
                    && w.members == members
            });
            let writer = match kept {
                Some(writer) => {
                    let mut writer = writer.clone();
                    writer.all_reported = all_reported;
                    writer
                }
                None => {
                    let writer =
                        self.model
                            .writer_for(root, tree.term.0, members.clone(), all_reported);
                    let ids: Vec<u64> = members.iter().map(|m| m.0).collect();
                    self.note(format!(
                        "root {root} leads term {} over {ids:?} (reported {all_reported}, accepting {})",
                        tree.term.0, writer.accepting()
                    ));
                    writer
                }
            };
            writers.push(writer);
        }
        self.model.writers = writers;
    }

    /// One step: a fault perhaps, the network runs, the writers act, the invariants are checked.
    fn step(&mut self, faults: bool) -> Result<(), String> {
        self.model.step += 1;
        if faults && self.rng.random_bool(0.3) {
            self.fault();
        }
        self.net.run_for(STEP_MS);
        self.read_trees();
        let accepting: BTreeSet<NodeId> = self
            .model
            .writers
            .iter()
            .filter(|w| w.accepting())
            .map(|w| w.id)
            .collect();
        let calls = self.model.run_writers();
        for writer in &self.model.writers {
            if writer.accepting() != accepting.contains(&writer.id) {
                let what = if writer.accepting() {
                    format!("accepts under data term {:#x}", writer.term)
                } else {
                    "stops accepting".into()
                };
                self.trace
                    .push(format!("t={} writer {} {what}", self.net.now, writer.id));
            }
        }
        let now = self.net.now;
        for root in calls {
            let last = self.last_call.get(&root).copied();
            if last.is_none_or(|at| now >= at + ELECTION_CALL_SPACING_MS) {
                self.last_call.insert(root, now);
                self.note(format!("root {root} sees newer data and calls an election"));
                self.net.call_election(root);
            }
        }
        for node in self.net.live_nodes() {
            let (term, epoch) = self.model.nodes[&node].position();
            self.net.set_election_value(node, Term(term), Epoch(epoch));
        }
        self.model.note_majorities();
        self.model.check()
    }

    fn run(&mut self) -> Result<Outcome, String> {
        for _ in 0..FAULT_STEPS {
            self.step(true)?;
        }
        // Quiescence: faults stop, links recover, no loss; the dead stay dead.
        self.note("faults stop".into());
        self.net.recover_all();
        self.net.set_loss(0.0);
        self.model.loss = 0.0;
        let sound = self.model.alive(true);
        // Elections called for newer data, catch-up and configuration changes all take steps.
        for _ in 0..60 {
            self.step(false)?;
        }
        let settle = self.net.config.timing.leader_timeout.0 + 500;
        let deadline = self.net.now + 60_000;
        let mut bounced = false;
        if let Err(problem) = self.net.run_until_stable(deadline, settle) {
            if !self.bounce_when_split {
                return Err(format!("quiet: the overlay does not settle: {problem}"));
            }
            // Known overlay issue: a JOIN flagged `rejoin` goes out once when a neighbour comes
            // back, and is not repeated while heartbeats keep the link up; when both are lost, two
            // adjacent trees never reconcile and stay apart. Every link goes down for longer than
            // the failure timeout and back without loss, so the rejoins happen again.
            self.note(format!(
                "overlay split at quiescence ({problem}); links bounce"
            ));
            bounced = true;
            for (a, b) in self.net.graph.edges() {
                self.net.cut(a, b);
            }
            let down = self.net.config.timing.failure_timeout.0 * 2;
            for _ in 0..down.div_ceil(STEP_MS) {
                self.step(false)?;
            }
            self.net.recover_all();
            let deadline = self.net.now + 60_000;
            self.net
                .run_until_stable(deadline, settle)
                .map_err(|problem| format!("quiet: the overlay does not settle: {problem}"))?;
        }
        for _ in 0..20 {
            self.step(false)?;
        }
        let components = self.net.world_with(false).components;
        let mut checked = 0;
        for index in 0..self.model.writers.len() {
            let root = self.model.writers[index].id;
            let reachable = components
                .iter()
                .find(|c| c.contains(&root))
                .cloned()
                .unwrap_or_default();
            if self.model.check_quiet(index, &reachable, &sound)? {
                checked += 1;
            }
        }
        let leaderless = components
            .iter()
            .filter(|c| !self.model.writers.iter().any(|w| c.contains(&w.id)))
            .count();
        if leaderless > 0 {
            return Err(format!(
                "quiet: {leaderless} parts of the cluster have no root leading a ready tree"
            ));
        }
        if checked == 0 {
            return Ok(Outcome {
                writes: false,
                bounced,
            });
        }
        let before = self.model.acknowledged.len();
        self.model.steady = true;
        for _ in 0..3 {
            self.step(false)?;
        }
        if self.model.acknowledged.len() == before {
            return Err("quiet: no write was acknowledged".into());
        }
        Ok(Outcome {
            writes: true,
            bounced,
        })
    }
}

/// How a run ended once quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    /// A writer accepted and acknowledged writes with the voters it should have (else a majority of
    /// the voters was dead or had lost its disk, and writes rightly stay refused).
    writes: bool,
    /// The overlay stayed split at quiescence and the links had to bounce (see `Joint::run`).
    bounced: bool,
}

fn replay_seed() -> Option<u64> {
    std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok())
}

fn run_seed(seed: u64, bounce_when_split: bool) -> Result<(Outcome, usize), String> {
    let (scenario, rng) = Scenario::from_seed(seed);
    let mut joint = Joint::new(&scenario, rng);
    joint.bounce_when_split = bounce_when_split;
    let result = joint.run();
    let replaying = replay_seed().is_some();
    match result {
        Ok(outcome) => {
            if replaying {
                println!("{}", joint.trace.join("\n"));
                println!("{scenario}: {outcome:?}");
            }
            Ok((outcome, joint.model.acknowledged.len()))
        }
        Err(problem) => {
            let shown = if replaying { joint.trace.len() } else { 40 };
            let tail = joint.trace.len().saturating_sub(shown);
            Err(format!(
                "{scenario}, step {}: {problem}\nlast events:\n{}\nreplay: SIM_SEED={seed} cargo test -p replication --test joint -- --nocapture",
                joint.model.step,
                joint.trace[tail..].join("\n")
            ))
        }
    }
}

#[test]
fn the_replication_rules_keep_their_promises_on_trees_the_real_overlay_builds() {
    let started = Instant::now();
    let seeds: Vec<u64> = match replay_seed() {
        Some(seed) => vec![seed],
        None => {
            let count = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(SEEDS);
            (BASE..BASE + count).collect()
        }
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<(Outcome, usize), String>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(seeds.len()) {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = run_seed(seed, true);
                    if let Err(problem) = &result {
                        println!("FAILED {problem}");
                    }
                    if let Ok(mut results) = results.lock() {
                        results.push(result);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let writes: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.1)
        .sum();
    let outcomes: Vec<Outcome> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.0)
        .collect();
    let written = outcomes.iter().filter(|o| o.writes).count();
    let bounced = outcomes.iter().filter(|o| o.bounced).count();
    println!(
        "joint simulation: {} seeds in {:.1}s on {WORKERS} threads, {} failed; {written} ended writing, {writes} writes acknowledged; {bounced} stayed split after a lost rejoin",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(writes > 0, "the simulation acknowledged no write at all");
}

/// Two roots on adjacent nodes whose JOINs flagged `rejoin` were both lost when their link came back
/// (loss 0.15): heartbeats keep the link up, so only the rejoin exchanges the statuses the trees
/// reconcile by. The overlay repeats a rejoin with the backoff until its JOIN-ACK comes (before it
/// did not, and the two trees never met).
#[test]
fn two_adjacent_trees_reconcile_after_their_rejoins_were_lost() {
    if let Err(problem) = run_seed(270_402_449, false) {
        panic!("{problem}");
    }
}

/// A path of 8 nodes: node 8, an orphan of tree (term 3, leader 3), sits next to node 6, the root of
/// tree (term 3, leader 6), and stays so: 6 refuses 8's adoption requests (another tree), 8's tree
/// is the stronger so 6 does not ask it to join, and the two never merge, not even after every link
/// went down and came back without loss. Fails until the overlay resolves it.
#[test]
#[ignore = "known overlay issue: an orphan next to a weaker root with the same term is never merged"]
fn an_orphan_next_to_the_root_of_a_weaker_tree_ends_in_one_tree() {
    if let Err(problem) = run_seed(270_406_160, true) {
        panic!("{problem}");
    }
}
