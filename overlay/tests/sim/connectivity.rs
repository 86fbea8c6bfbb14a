//! The connectivity claims of the bootstrap's graph and of repair, on the real overlay:
//!
//! 1. **No repair needed below k.** On the bootstrap's k-connected graph, any fewer than k
//!    simultaneous crashes leave the survivors in one tree with repair turned off: seeded sizes of
//!    4–30 nodes, and every single and double failure of a 16-node cluster (all 136).
//! 2. **Repair heals the rest.** After crashes of up to half the nodes, at once or spread over time,
//!    the survivors form one tree again within a bounded time once repair has run (the bootstrap
//!    modelled with its own rules and leases; `cluster_sim::network`).
//!
//! A failing case prints `SIM_SEED=<n>`; setting it replays that seed alone (`SIM_SEEDS=a..b` sweeps
//! another range).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use overlay::NodeId;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use cluster_sim::graphs::{Graph, GraphKind};
use cluster_sim::network::{Sim, SimConfig};

use crate::scenarios::settle_window;
use crate::{WORKERS, replay_seed, seed_range};

const K: usize = topology::DEFAULT_K;
/// Once the last crash happened, the survivors must be one quiet tree within this long (sim time).
const HEAL_BOUND_MS: u64 = 30_000;

fn sim_for(seed: u64, n: usize, repair: bool) -> Sim {
    let mut rng = StdRng::seed_from_u64(seed);
    let graph = Graph::generate(GraphKind::Bootstrap, n, &mut rng, true);
    let config = SimConfig {
        max_delay: rng.random_range(1..=10),
        tick_every: if seed % 2 == 0 { 50 } else { 100 },
        repair_k: if repair { K } else { 0 },
        ..SimConfig::default()
    };
    let mut sim = Sim::new(graph, config, seed);
    sim.start_all(30);
    sim
}

/// Runs until quiet with every invariant holding, then checks the live nodes form one part (so,
/// by the invariants, one tree).
fn one_tree(sim: &mut Sim, what: &str) -> Result<u64, String> {
    let settle = settle_window(&sim.config.timing);
    let deadline = sim.now + HEAL_BOUND_MS;
    let at = sim
        .run_until_stable(deadline, settle)
        .map_err(|error| format!("{what}: {error}"))?;
    let parts = sim.world().components;
    if parts.len() != 1 {
        return Err(format!("{what}: the live nodes are split into {parts:?}"));
    }
    Ok(at)
}

fn crash_all(sim: &mut Sim, victims: &[NodeId]) {
    for &victim in victims {
        sim.crash(victim);
    }
}

/// Runs `case` for every seed on two threads; panics listing the failures.
fn sweep(seeds: Vec<u64>, case: impl Fn(u64) -> Result<String, String> + Sync) {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(seeds.len()) {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match case(seed) {
                        Ok(report) if replay_seed().is_some() => println!("{report}"),
                        Ok(_) => {}
                        Err(error) => {
                            println!("FAILED SIM_SEED={seed}: {error}");
                            failures
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(seed);
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

fn seeds() -> Vec<u64> {
    match replay_seed() {
        Some(seed) => vec![seed],
        None => seed_range().collect(),
    }
}

#[test]
fn fewer_than_k_simultaneous_crashes_leave_one_tree_without_repair() {
    sweep(seeds(), |seed| {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xc0_22ec);
        let n = rng.random_range(K + 1..=30);
        let f = rng.random_range(1..K);
        let mut sim = sim_for(seed, n, false);
        one_tree(&mut sim, "startup")?;
        let nodes: Vec<NodeId> = sim.live_nodes().into_iter().collect();
        let victims: Vec<NodeId> = nodes.choose_multiple(&mut rng, f).copied().collect();
        crash_all(&mut sim, &victims);
        one_tree(&mut sim, &format!("n={n}, after crashing {victims:?}"))?;
        Ok(format!("n={n} crashed {victims:?}: one tree"))
    });
}

#[test]
fn every_single_and_double_failure_of_sixteen_nodes_leaves_one_tree() {
    let n = 16u64;
    let mut cases: Vec<Vec<NodeId>> = (1..=n).map(|a| vec![NodeId(a)]).collect();
    for a in 1..=n {
        for b in a + 1..=n {
            cases.push(vec![NodeId(a), NodeId(b)]);
        }
    }
    assert_eq!(cases.len(), 136);
    let indices: Vec<u64> = match replay_seed() {
        Some(seed) => vec![seed],
        None => (0..cases.len() as u64).collect(),
    };
    sweep(indices, |index| {
        let victims = cases.get(index as usize).ok_or("no such case")?;
        // Ids are assigned in registration order (no shuffle): the case names exact nodes.
        let graph = Graph::generate(
            GraphKind::Bootstrap,
            n as usize,
            &mut StdRng::seed_from_u64(0),
            false,
        );
        let config = SimConfig {
            max_delay: 1 + index % 10,
            ..SimConfig::default()
        };
        let mut sim = Sim::new(graph, config, index);
        sim.start_all(30);
        one_tree(&mut sim, "startup")?;
        crash_all(&mut sim, victims);
        one_tree(&mut sim, &format!("after crashing {victims:?}"))?;
        Ok(format!("crashed {victims:?}: one tree"))
    });
}

/// How a scenario of claim 2 repairs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repair {
    Off,
    Bootstrap,
    /// The bootstrap is down throughout: nodes link to their neighbours' neighbours.
    Neighbours,
}

/// Crashes up to half the nodes of a seeded cluster (at once or spread out) and runs it until quiet
/// with every invariant holding. `Ok(true)` when the survivors are one tree; with the bootstrap
/// repairing, a split is an error.
fn half_crash(seed: u64, repair: Repair, worst: &Mutex<u64>) -> Result<(bool, String), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4e_9a12);
    let n = rng.random_range(K + 1..=30);
    let count = rng.random_range(1..=n / 2);
    let spread = rng.random_bool(0.5);
    let mut sim = sim_for(seed, n, repair != Repair::Off);
    sim.bootstrap_up = repair != Repair::Neighbours;
    one_tree(&mut sim, "startup")?;
    let nodes: Vec<NodeId> = sim.live_nodes().into_iter().collect();
    let victims: Vec<NodeId> = nodes.choose_multiple(&mut rng, count).copied().collect();
    for victim in &victims {
        sim.crash(*victim);
        if spread {
            let pause = rng.random_range(0..1500);
            sim.run_for(pause);
        }
    }
    let crashed_at = sim.now;
    let what = format!(
        "n={n}, crashing {victims:?} {}",
        if spread { "spread out" } else { "at once" }
    );
    let settle = settle_window(&sim.config.timing);
    let healed_at = sim
        .run_until_stable(crashed_at + HEAL_BOUND_MS, settle)
        .map_err(|error| format!("{what}: {error}"))?;
    let parts = sim.world().components;
    if parts.len() != 1 {
        if repair == Repair::Bootstrap {
            return Err(format!("{what}: the live nodes are split into {parts:?}"));
        }
        return Ok((false, format!("{what}: split into {parts:?}")));
    }
    let took = healed_at.saturating_sub(crashed_at);
    let mut worst = worst.lock().unwrap_or_else(|e| e.into_inner());
    *worst = (*worst).max(took);
    Ok((
        true,
        format!(
            "{what}: one tree after {took} ms, {} repairs adding {} edges",
            sim.stats.repairs, sim.stats.repaired_edges
        ),
    ))
}

#[test]
fn crashes_of_up_to_half_the_nodes_heal_into_one_tree_with_repair() {
    let worst = Mutex::new(0u64);
    sweep(seeds(), |seed| {
        half_crash(seed, Repair::Bootstrap, &worst).map(|(_, report)| report)
    });
    println!(
        "slowest heal after the last crash: {} ms (bound {HEAL_BOUND_MS} ms)",
        worst.into_inner().unwrap_or_else(|e| e.into_inner())
    );
}

/// Without the bootstrap a part whose every path to the rest ran through dead nodes cannot be
/// found (its nodes know no live node beyond two hops), so this claim is weaker: every invariant
/// holds, and repairing from neighbours' neighbours never splits what stays whole without repair
/// and joins some of what does not. Both counts are printed.
#[test]
fn with_the_bootstrap_down_neighbours_neighbours_heal_some_splits_and_break_nothing() {
    let worst = Mutex::new(0u64);
    let outcomes = Mutex::new(Vec::new());
    sweep(seeds(), |seed| {
        let (without, _) = half_crash(seed, Repair::Off, &worst)?;
        let (with, report) = half_crash(seed, Repair::Neighbours, &worst)?;
        outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((seed, without, with));
        if without && !with {
            return Err(format!("repair from neighbours split a cluster: {report}"));
        }
        Ok(report)
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    let split_without = outcomes.iter().filter(|(_, without, _)| !without).count();
    let split_with = outcomes.iter().filter(|(_, _, with)| !with).count();
    println!(
        "split after the crashes: {split_without} of {} without repair, {split_with} repairing from neighbours",
        outcomes.len()
    );
    if outcomes.len() > 100 {
        assert!(
            split_with < split_without,
            "{split_with} vs {split_without}"
        );
    }
}
