//! Deterministic simulation of whole clusters running the real `Overlay` state machines over an
//! in-memory network with seeded delays, reordering, loss, crashes, restarts and link cuts. Every
//! invariant is checked at quiescence (see `cluster_sim::invariants`; the network and the graphs live
//! in the `cluster-sim` crate, shared with the replication crate's joint simulation). A failing run
//! prints its scenario, starting with `SIM_SEED=<n>`; setting that variable makes `many_seeds_…`
//! replay just that seed.
//!
//! Run the summary with `cargo test -p overlay --test sim -- --nocapture`.

mod connectivity;
mod scenarios;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use overlay::{NodeId, Role};
use rand::SeedableRng;
use rand::rngs::StdRng;

use cluster_sim::graphs::{Graph, GraphKind};
use cluster_sim::network::{Sim, SimConfig};
use scenarios::{Fault, RunReport, Scenario, run, settle_window};

const SEEDS: u64 = 1000;
/// Worker threads for the seed sweep (CI machines have two cores).
const WORKERS: usize = 2;

fn replay_seed() -> Option<u64> {
    std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok())
}

/// `SIM_SEEDS=a..b` sweeps another range (for longer hunts, e.g. with `--release`).
fn seed_range() -> std::ops::Range<u64> {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|range| {
            let (a, b) = range.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(0..SEEDS)
}

#[test]
fn many_seeds_across_graphs_sizes_and_faults_hold_every_invariant() {
    let started = Instant::now();
    let seeds: Vec<u64> = match replay_seed() {
        Some(seed) => vec![seed],
        None => seed_range().collect(),
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(Scenario, Result<RunReport, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(seeds.len()) {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let scenario = Scenario::from_seed(seed);
                    let result = run(&scenario);
                    if let Err(error) = &result {
                        println!("FAILED {scenario}: {error}");
                    } else if replay_seed().is_some() {
                        println!("{scenario}: {result:?}");
                    }
                    if let Ok(mut results) = results.lock() {
                        results.push((scenario, result));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut failures = Vec::new();
    let mut worst_small: Option<(f64, Scenario, RunReport)> = None;
    let mut worst_large: Option<(f64, Scenario, RunReport)> = None;
    let mut fault_free = 0;
    for (scenario, result) in results {
        match result {
            Ok(report) => {
                if scenario.fault == Fault::None
                    && let Some(ratio) = report.ratio()
                {
                    fault_free += 1;
                    let worst = if report.n >= 16 {
                        &mut worst_large
                    } else {
                        &mut worst_small
                    };
                    if worst.as_ref().is_none_or(|(max, _, _)| ratio > *max) {
                        *worst = Some((ratio, scenario, report));
                    }
                }
            }
            Err(error) => failures.push(format!("{scenario}: {error}")),
        }
    }
    let elapsed = started.elapsed();
    let describe = |worst: &Option<(f64, Scenario, RunReport)>| {
        worst
            .as_ref()
            .map_or("n/a".to_string(), |(ratio, scenario, report)| {
                format!(
                    "{ratio:.2} ({:?} n={} m={} messages={})",
                    scenario.kind, report.n, report.m, report.algorithm_messages
                )
            })
    };
    println!(
        "simulation summary: {} seeds in {:.1}s on {WORKERS} threads, {} failed; max election+SHOUT messages/(m·log2 n) over {} fault-free runs: n<16 {}, n>=16 {}",
        seeds.len(),
        elapsed.as_secs_f64(),
        failures.len(),
        fault_free,
        describe(&worst_small),
        describe(&worst_large),
    );
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Tiny graphs pay a fixed cost for racing startup elections; bigger ones show the asymptote.
    for (worst, bound) in [(worst_small, 10.0), (worst_large, 6.0)] {
        if let Some((ratio, scenario, _)) = worst {
            assert!(
                ratio < bound,
                "fault-free message count too high: {ratio:.2} for {scenario}"
            );
        }
    }
}

fn sim_on(kind: GraphKind, n: usize, seed: u64, shuffle: bool) -> Sim {
    let mut rng = StdRng::seed_from_u64(seed);
    let graph = Graph::generate(kind, n, &mut rng, shuffle);
    Sim::new(graph, SimConfig::default(), seed)
}

fn settle(sim: &Sim) -> u64 {
    settle_window(&sim.config.timing)
}

fn stable_or_panic(sim: &mut Sim, what: &str) -> u64 {
    let deadline = sim.now + 60_000;
    let settle = settle(sim);
    match sim.run_until_stable(deadline, settle) {
        Ok(at) => at,
        Err(error) => panic!("{what}: {error}"),
    }
}

fn the_leader(sim: &Sim) -> overlay::TreeId {
    let any = *sim.live_nodes().first().expect("a live node");
    sim.leader_of(any).expect("a leader")
}

/// Edges 2–3, 2–4, 3–5, 4–5, 1–5: node 5 hears value 2 twice and keeps only one link. Pruning the
/// duplicate with a NO would turn node 4 into a new source; the election must still end with 1 alone.
#[test]
fn the_graph_where_pruning_could_create_a_new_source_elects_exactly_one_leader() {
    for seed in 0..100 {
        let mut adjacency = std::collections::BTreeMap::new();
        for (a, b) in [(2, 3), (2, 4), (3, 5), (4, 5), (1, 5)] {
            adjacency
                .entry(NodeId(a))
                .or_insert_with(BTreeSet::new)
                .insert(NodeId(b));
            adjacency
                .entry(NodeId(b))
                .or_insert_with(BTreeSet::new)
                .insert(NodeId(a));
        }
        let graph = Graph {
            kind: GraphKind::RandomSparse,
            adjacency,
            picks: Default::default(),
            order: (1..=5).map(NodeId).collect(),
        };
        let mut sim = Sim::new(graph, SimConfig::default(), seed);
        sim.start_all(0);
        stable_or_panic(&mut sim, &format!("SIM_SEED={seed} pruning graph"));
        assert_eq!(the_leader(&sim).leader, NodeId(1), "seed {seed}");
    }
}

#[test]
fn a_crash_of_the_leader_mid_election_ends_with_one_leader() {
    for seed in 0..40 {
        let mut sim = sim_on(GraphKind::RandomSparse, 20, seed, true);
        sim.start_all(10);
        // Node 1 is the strongest candidate: it is winning when it dies.
        sim.run_for(20 + seed);
        sim.crash(NodeId(1));
        stable_or_panic(
            &mut sim,
            &format!("SIM_SEED={seed} leader crash mid-election"),
        );
        assert_ne!(the_leader(&sim).leader, NodeId(1));
    }
}

#[test]
fn a_crash_of_an_interior_tree_node_heals_without_a_new_election() {
    for seed in 0..20 {
        let mut sim = sim_on(GraphKind::Complete, 10, seed, true);
        sim.start_all(10);
        stable_or_panic(&mut sim, "startup");
        let before = the_leader(&sim);
        let elections = sim.stats.elections_started;
        let interior = sim.live_nodes().into_iter().find(|id| {
            let o = sim.overlay(*id).unwrap();
            !o.is_root() && !o.children().is_empty()
        });
        let Some(interior) = interior else { continue };
        sim.crash(interior);
        stable_or_panic(
            &mut sim,
            &format!("SIM_SEED={seed} after crashing {interior}"),
        );
        assert_eq!(
            the_leader(&sim),
            before,
            "seed {seed}: the leader must not change"
        );
        assert_eq!(
            sim.stats.elections_started, elections,
            "seed {seed}: healed by adoption"
        );
        assert!(sim.stats.adoptions > 0, "seed {seed}");
    }
}

fn restart_rejoins_without_election(with_memory: bool) {
    for seed in 0..20 {
        let mut sim = sim_on(GraphKind::Grid, 9, seed, true);
        sim.start_all(10);
        stable_or_panic(&mut sim, "startup");
        let before = the_leader(&sim);
        // A node that is neither the leader nor needed to keep the others connected to it: a leaf.
        let victim = sim
            .live_nodes()
            .into_iter()
            .find(|id| {
                let o = sim.overlay(*id).unwrap();
                !o.is_root() && o.children().is_empty()
            })
            .expect("a leaf");
        let state = sim.crash(victim).unwrap();
        sim.run_for(2000);
        stable_or_panic(&mut sim, "while the victim is down");
        let elections = sim.stats.elections_started;
        if with_memory {
            sim.restart_with_memory(victim, state);
        } else {
            sim.restart_fresh(victim);
        }
        stable_or_panic(
            &mut sim,
            &format!("SIM_SEED={seed} after {victim} restarted"),
        );
        assert_eq!(the_leader(&sim), before, "seed {seed}");
        assert_eq!(
            sim.stats.elections_started, elections,
            "seed {seed}: no new election"
        );
        assert!(sim.overlay(victim).unwrap().is_ready());
    }
}

#[test]
fn a_node_restarted_with_its_memory_rejoins_without_a_new_election() {
    restart_rejoins_without_election(true);
}

#[test]
fn a_node_restarted_without_memory_rejoins_without_a_new_election() {
    restart_rejoins_without_election(false);
}

#[test]
fn a_partition_of_two_and_three_nodes_elects_one_leader_per_side_and_reunites() {
    for seed in 0..20 {
        let mut sim = sim_on(GraphKind::Complete, 5, seed, false);
        sim.start_all(10);
        stable_or_panic(&mut sim, "startup");
        let small = [NodeId(1), NodeId(2)];
        for a in small {
            for b in [NodeId(3), NodeId(4), NodeId(5)] {
                sim.cut(a, b);
            }
        }
        sim.run_for(2000);
        stable_or_panic(&mut sim, "partitioned");
        assert_eq!(sim.world().components.len(), 2);
        sim.recover_all();
        stable_or_panic(&mut sim, &format!("SIM_SEED={seed} reunited"));
        let leaders: BTreeSet<_> = sim
            .live_nodes()
            .into_iter()
            .map(|id| sim.leader_of(id))
            .collect();
        assert_eq!(leaders.len(), 1, "seed {seed}: {leaders:?}");
    }
}

#[test]
fn sixteen_nodes_started_one_by_one_like_make_up_are_ready_within_a_second_of_the_last_start() {
    for seed in 0..10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let graph = Graph::generate(GraphKind::Bootstrap, 16, &mut rng, false);
        let mut sim = Sim::new(graph, SimConfig::default(), seed);
        let stagger = 20 + seed * 10;
        sim.start_staggered(stagger);
        let last_start = 15 * stagger;
        let ready_at = stable_or_panic(&mut sim, &format!("SIM_SEED={seed} make-up start"));
        assert!(
            ready_at <= last_start + 1000,
            "seed {seed}: ready at {ready_at}ms, last start at {last_start}ms"
        );
        // Node 1 started first and is the leader; everyone else joined its tree.
        assert_eq!(the_leader(&sim).leader, NodeId(1));
        let writers = sim
            .live_nodes()
            .into_iter()
            .filter(|id| sim.overlay(*id).unwrap().roles().contains(&Role::Writer))
            .count();
        assert_eq!(writers, 1);
    }
}

#[test]
fn sixteen_nodes_started_together_elect_the_smallest_id_within_a_second() {
    for seed in 0..20 {
        let mut sim = sim_on(GraphKind::Bootstrap, 16, seed, true);
        sim.start_all(30);
        let ready_at = stable_or_panic(&mut sim, &format!("SIM_SEED={seed}"));
        assert!(ready_at <= 1000, "seed {seed}: ready at {ready_at}ms");
        assert_eq!(the_leader(&sim).leader, NodeId(1));
    }
}

fn thousand_nodes(kind: GraphKind, seed: u64) -> (RunReport, f64) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let graph = Graph::generate(kind, 1000, &mut rng, true);
    let config = SimConfig {
        tick_every: 100,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(graph, config, seed);
    sim.start_all(30);
    let converged_at = stable_or_panic(&mut sim, &format!("1000 nodes {kind:?} seed {seed}"));
    let report = RunReport {
        n: sim.graph.n(),
        m: sim.graph.edge_count(),
        algorithm_messages: sim.stats.algorithm_messages(),
        total_messages: sim.stats.total(),
        converged_at,
        elections_started: sim.stats.elections_started,
    };
    (report, started.elapsed().as_secs_f64())
}

#[test]
fn a_thousand_nodes_elect_one_leader_within_a_small_factor_of_m_log_n() {
    for (kind, seed) in [(GraphKind::RandomSparse, 1), (GraphKind::Bootstrap, 2)] {
        let (report, seconds) = thousand_nodes(kind, seed);
        let ratio = report.ratio().unwrap();
        println!(
            "1000 nodes {kind:?}: m={} converged at {}ms sim time, {} election+SHOUT messages (ratio {ratio:.2}), {} messages in all, {} elections started, {seconds:.1}s wall",
            report.m,
            report.converged_at,
            report.algorithm_messages,
            report.total_messages,
            report.elections_started
        );
        assert!(ratio < 8.0, "{kind:?}: ratio {ratio:.2}");
    }
}
