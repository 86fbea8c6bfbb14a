//! Scenarios derived from a seed: a graph kind and size, a fault mix, network delays. `run` plays one
//! to quiescence and checks every invariant; a failure names the seed so `SIM_SEED=<n>` replays it.

use std::fmt;

use overlay::{NodeId, Timing};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use cluster_sim::graphs::{Graph, GraphKind};
use cluster_sim::network::{Sim, SimConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 5–25 % loss during the first three seconds.
    Lossy,
    /// Up to a fifth of the nodes crash after the first convergence.
    CrashAfterConvergence,
    /// The leader crashes after convergence.
    CrashLeader,
    /// A random node crashes while the first election runs.
    CrashMidElection,
    /// A node crashes and resumes with its old state.
    RestartWithMemory,
    /// A node crashes and starts again from scratch.
    RestartWithoutMemory,
    /// Links (or a whole partition) are cut, then recovered.
    CutAndRecover,
    /// Loss, long delays, a crash, a cut and a restart at once, then everything heals.
    Mixed,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::None,
        Fault::Lossy,
        Fault::CrashAfterConvergence,
        Fault::CrashLeader,
        Fault::CrashMidElection,
        Fault::RestartWithMemory,
        Fault::RestartWithoutMemory,
        Fault::CutAndRecover,
        Fault::Mixed,
    ];
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub kind: GraphKind,
    pub n: usize,
    pub fault: Fault,
    pub max_delay: u64,
    pub codec: bool,
    /// How often the runtime ticks the nodes (the brief allows 50–100 ms).
    pub tick_every: u64,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIM_SEED={} {:?} n={} fault={:?} max_delay={}ms tick={}ms codec={}",
            self.seed, self.kind, self.n, self.fault, self.max_delay, self.tick_every, self.codec
        )
    }
}

impl Scenario {
    /// The scenario a seed stands for: kinds and faults cycle with the seed, the size and delays are
    /// drawn from it (mostly small graphs, a few up to 150 nodes).
    pub fn from_seed(seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let kind = GraphKind::ALL[(seed % 7) as usize];
        let fault = Fault::ALL[((seed / 7) % 9) as usize];
        let bucket = rng.random_range(0..100);
        let mut n = match bucket {
            0..40 => rng.random_range(1..=8),
            40..80 => rng.random_range(9..=24),
            80..97 => rng.random_range(25..=60),
            _ => rng.random_range(61..=150),
        };
        if kind == GraphKind::Complete {
            n = n.min(24);
        }
        Scenario {
            seed,
            kind,
            n,
            fault,
            max_delay: rng.random_range(1..=15),
            codec: seed % 10 == 3,
            tick_every: if seed % 2 == 0 { 50 } else { 100 },
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub n: usize,
    pub m: usize,
    /// Election + SHOUT messages over the whole run.
    pub algorithm_messages: u64,
    pub total_messages: u64,
    /// Sim time (ms) at which the final stable state began.
    pub converged_at: u64,
    pub elections_started: u64,
}

impl RunReport {
    /// algorithm messages / (m · log2 n); None for graphs too small for the bound to mean anything.
    pub fn ratio(&self) -> Option<f64> {
        (self.n >= 4 && self.m > 0)
            .then(|| self.algorithm_messages as f64 / (self.m as f64 * (self.n as f64).log2()))
    }
}

/// How long a quiescent state must last: longer than any timeout a hidden inconsistency would trip.
pub fn settle_window(timing: &Timing) -> u64 {
    timing.leader_timeout.0 + 500
}

fn deadline(sim: &Sim) -> u64 {
    sim.now + 40_000 + sim.graph.n() as u64 * 40
}

pub fn config_for(scenario: &Scenario) -> SimConfig {
    SimConfig {
        max_delay: scenario.max_delay,
        codec: scenario.codec,
        tick_every: scenario.tick_every,
        ..SimConfig::default()
    }
}

pub fn new_sim(scenario: &Scenario) -> Sim {
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let graph = Graph::generate(scenario.kind, scenario.n, &mut rng, true);
    let mut sim = Sim::new(graph, config_for(scenario), scenario.seed);
    if scenario.kind == GraphKind::Bootstrap {
        let stagger = sim.rng.random_range(0..=30);
        sim.start_staggered(stagger);
    } else {
        sim.start_all(30);
    }
    sim
}

fn stable(sim: &mut Sim, what: &str) -> Result<u64, String> {
    let settle = settle_window(&sim.config.timing);
    let deadline = deadline(sim);
    sim.run_until_stable(deadline, settle)
        .map_err(|error| format!("{what}: {error}"))
}

fn random_node(sim: &mut Sim) -> Option<NodeId> {
    let live: Vec<NodeId> = sim.live_nodes().into_iter().collect();
    live.choose(&mut sim.rng).copied()
}

/// Plays `scenario` to quiescence and checks every invariant at each quiescent point.
pub fn run(scenario: &Scenario) -> Result<RunReport, String> {
    let mut sim = new_sim(scenario);
    let converged_at = match scenario.fault {
        Fault::None => stable(&mut sim, "startup")?,
        Fault::Lossy => {
            let loss = sim.rng.random_range(0.05..0.25);
            sim.set_loss(loss);
            sim.run_for(3000);
            sim.set_loss(0.0);
            stable(&mut sim, &format!("after {:.0}% loss", loss * 100.0))?
        }
        Fault::CrashAfterConvergence => {
            stable(&mut sim, "startup")?;
            let count = sim.rng.random_range(1..=(scenario.n / 5).max(1));
            for _ in 0..count {
                if let Some(victim) = random_node(&mut sim) {
                    sim.crash(victim);
                }
            }
            stable(&mut sim, &format!("after {count} crashes"))?
        }
        Fault::CrashLeader => {
            stable(&mut sim, "startup")?;
            let any = random_node(&mut sim).ok_or("no live node")?;
            let before = sim.leader_of(any).ok_or("no leader after startup")?;
            sim.crash(before.leader);
            let at = stable(&mut sim, "after the leader crashed")?;
            if let Some(survivor) = random_node(&mut sim) {
                let after = sim.leader_of(survivor).ok_or("no leader after the crash")?;
                if after.term <= before.term || after.leader == before.leader {
                    return Err(format!(
                        "leader {before:?} crashed but nodes follow {after:?}"
                    ));
                }
            }
            at
        }
        Fault::CrashMidElection => {
            let at = sim.rng.random_range(5..150);
            sim.run_for(at);
            if let Some(victim) = random_node(&mut sim) {
                sim.crash(victim);
            }
            stable(&mut sim, "after a crash during the election")?
        }
        Fault::RestartWithMemory | Fault::RestartWithoutMemory => {
            stable(&mut sim, "startup")?;
            let victim = random_node(&mut sim).ok_or("no live node")?;
            let state = sim.crash(victim).ok_or("victim was not running")?;
            let down_for = sim.rng.random_range(300..3000);
            sim.run_for(down_for);
            if scenario.fault == Fault::RestartWithMemory {
                sim.restart_with_memory(victim, state);
            } else {
                sim.restart_fresh(victim);
            }
            stable(
                &mut sim,
                &format!("after node {victim} restarted ({down_for}ms down)"),
            )?
        }
        Fault::CutAndRecover => {
            stable(&mut sim, "startup")?;
            cut_something(&mut sim);
            sim.run_for(3000);
            stable(&mut sim, "while links are cut")?;
            sim.recover_all();
            stable(&mut sim, "after the links recovered")?
        }
        Fault::Mixed => {
            sim.set_loss(0.1);
            sim.config.max_delay = 30;
            let first = sim.rng.random_range(0..600);
            sim.run_for(first);
            let victim = random_node(&mut sim);
            if let Some(victim) = victim {
                sim.crash(victim);
            }
            cut_something(&mut sim);
            sim.run_for(2000);
            if let Some(victim) = victim {
                sim.restart_fresh(victim);
            }
            sim.run_for(1000);
            sim.set_loss(0.0);
            sim.config.max_delay = scenario.max_delay;
            sim.recover_all();
            stable(&mut sim, "after the mixed faults healed")?
        }
    };
    Ok(RunReport {
        n: sim.graph.n(),
        m: sim.graph.edge_count(),
        algorithm_messages: sim.stats.algorithm_messages(),
        total_messages: sim.stats.total(),
        converged_at,
        elections_started: sim.stats.elections_started,
    })
}

/// Cuts either a few random links or every link between a random set of nodes and the rest.
fn cut_something(sim: &mut Sim) {
    let edges = sim.graph.edges();
    if edges.is_empty() {
        return;
    }
    if sim.rng.random_bool(0.5) {
        for _ in 0..sim.rng.random_range(1..=3) {
            if let Some(&(a, b)) = edges.choose(&mut sim.rng) {
                sim.cut(a, b);
            }
        }
    } else {
        let side: Vec<NodeId> = sim
            .graph
            .adjacency
            .keys()
            .filter(|_| sim.rng.random_bool(0.4))
            .copied()
            .collect();
        for (a, b) in edges {
            if side.contains(&a) != side.contains(&b) {
                sim.cut(a, b);
            }
        }
    }
}
