//! A deterministic simulation of the replication rules under failures, with the overlay abstracted.
//!
//! The replication model (`model`: logs, writers, the rules, the invariants) runs on trees this
//! driver forms itself: partitions, crashes and restarts (keeping their disk or losing it) chosen by
//! a seeded RNG; inside every connected part of live nodes a tree forms at once under a root (usually
//! the node with the most recent data, as the election picks it; sometimes any node, as when a
//! stronger tree absorbs a weaker one). The overlay and the node's runtime are abstracted
//! (instantaneous trees, one step at a time); what is checked is the rules themselves. The joint
//! simulation (`joint.rs`) runs the same model on trees built by the real overlay.
//!
//! Among the faults, an operator removes a dead node for good when a writer accepts the request: every
//! later writer's configuration changes then drop it (`MembershipView::removing`).
//!
//! The invariants are checked after every step (see `model`). At the end, with faults stopped and a
//! majority of the voters alive and whole: writes are acknowledged and the configuration has
//! `min(R, live nodes)` voters, all live.
//!
//! `SIM_SEEDS=n` runs more seeds; `SIM_SEED=s` replays one (the failing seed is printed).

mod model;

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replication::{NodeId, ReplicationFactor};

use model::Model;

struct Sim {
    model: Model,
    /// Which partition each node is in (nodes talk only within one).
    sides: BTreeMap<NodeId, u8>,
    /// The newest tree (control) term each process has seen; a restart starts again from 0, so two
    /// parts, or a cluster restarted whole, pick the same tree terms again.
    control_terms: BTreeMap<NodeId, u64>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let size = rng.random_range(1..=30u64);
        let factor = ReplicationFactor::new(rng.random_range(1..=5)).unwrap();
        let loss = [0.0, 0.1, 0.3][rng.random_range(0..3)];
        let model = Model::new(rng, size, factor, loss);
        let sides = model.nodes.keys().map(|id| (*id, 0)).collect();
        let control_terms = model.nodes.keys().map(|id| (*id, 0)).collect();
        Sim {
            model,
            sides,
            control_terms,
        }
    }

    /// The live parts of the cluster (live nodes that share a side).
    fn parts(&self) -> Vec<BTreeSet<NodeId>> {
        let mut parts: BTreeMap<u8, BTreeSet<NodeId>> = BTreeMap::new();
        for (id, node) in &self.model.nodes {
            if node.alive {
                parts.entry(self.sides[id]).or_default().insert(*id);
            }
        }
        parts.into_values().collect()
    }

    fn fault(&mut self) {
        let rng = &mut self.model.rng;
        let ids: Vec<NodeId> = self.model.nodes.keys().copied().collect();
        let pick = ids[rng.random_range(0..ids.len())];
        let removed = self.model.removed.contains(&pick);
        match rng.random_range(0..100) {
            0..8 => self.model.nodes.get_mut(&pick).unwrap().alive = false,
            8..16 => {
                let node = self.model.nodes.get_mut(&pick).unwrap();
                if !node.alive && !removed {
                    node.restart();
                    self.control_terms.insert(pick, 0);
                }
            }
            16..19 => {
                // A crashed node comes back without its disk.
                let node = self.model.nodes.get_mut(&pick).unwrap();
                if !node.alive && !removed {
                    node.restart_without_disk();
                    self.control_terms.insert(pick, 0);
                }
            }
            19..25 => {
                // A partition: every node on one of two sides.
                for side in self.sides.values_mut() {
                    *side = rng.random_range(0..2);
                }
            }
            25..31 => {
                for side in self.sides.values_mut() {
                    *side = 0;
                }
            }
            31..34 => {
                // The whole cluster restarts (every process, disks kept; some stay down): tree terms
                // start again from 1, below the rounds the logs hold.
                for (id, node) in self.model.nodes.iter_mut() {
                    node.alive = rng.random_bool(0.7) && !self.model.removed.contains(id);
                    node.incarnation += 1;
                    self.control_terms.insert(*id, 0);
                }
            }
            34..37 => {
                // The operator removes a dead node for good, if a writer accepts the request (see
                // `replication::removal_refused`); it never comes back.
                let dead = !self.model.nodes[&pick].alive;
                let accepted = self.model.writers.iter().any(|writer| {
                    self.model.nodes[&writer.id]
                        .configuration()
                        .is_some_and(|configuration| {
                            replication::removal_refused(
                                writer.id,
                                &configuration,
                                &writer.members,
                                pick,
                                false,
                            )
                            .is_none()
                        })
                });
                if dead && accepted {
                    self.model.removed.insert(pick);
                }
            }
            _ => {}
        }
    }

    /// Trees form: one writer per part, re-chosen when the part changed.
    fn form_trees(&mut self) {
        let parts = self.parts();
        let mut kept = Vec::new();
        for part in parts {
            let model = &self.model;
            if let Some(writer) = model.writers.iter().find(|w| {
                w.members == part
                    && part.contains(&w.id)
                    && w.incarnation == model.nodes[&w.id].incarnation
            }) {
                kept.push(writer.clone());
                continue;
            }
            // Usually the most recent data wins the election; sometimes the tree's shape picks
            // another root, which must then hand over (newer data in its tree).
            let best = *part
                .iter()
                .max_by_key(|id| (model.nodes[id].position(), std::cmp::Reverse(id.0)))
                .unwrap();
            let root = if self.model.rng.random_bool(0.8) {
                best
            } else {
                *part
                    .iter()
                    .nth(self.model.rng.random_range(0..part.len()))
                    .unwrap()
            };
            // Each part's election picks its term from what its own members saw: parts pick terms
            // independently, so two of them (or a cluster restarted whole) may pick the same one.
            let tree_term = part
                .iter()
                .map(|id| self.control_terms[id])
                .max()
                .unwrap_or(0)
                + 1;
            for id in &part {
                self.control_terms.insert(*id, tree_term);
            }
            kept.push(self.model.writer_for(root, tree_term, part, true));
        }
        self.model.writers = kept;
    }

    fn run(&mut self, steps: u64) -> Result<(), String> {
        for _ in 0..steps {
            self.model.step += 1;
            if self.model.rng.random_bool(0.3) {
                self.fault();
            }
            self.form_trees();
            self.model.run_writers();
            self.model.note_majorities();
            self.model
                .check()
                .map_err(|problem| format!("step {}: {problem}", self.model.step))?;
        }
        // Quiescence: faults stop, every side heals, and the dead stay dead.
        for side in self.sides.values_mut() {
            *side = 0;
        }
        self.model.loss = 0.0;
        let live = self.model.alive(false);
        let sound = self.model.alive(true);
        for _ in 0..40 {
            self.model.step += 1;
            self.form_trees();
            self.model.run_writers();
            self.model
                .check()
                .map_err(|problem| format!("step {} (quiet): {problem}", self.model.step))?;
        }
        if self.model.writers.is_empty() {
            return Ok(()); // nobody alive
        }
        if !self.model.check_quiet(0, &live, &sound)? {
            // Writes may rightly stay refused (a majority of the voters is dead): nothing to check.
            return Ok(());
        }
        let before = self.model.acknowledged.len();
        self.model.steady = true;
        for _ in 0..3 {
            self.model.step += 1;
            self.model.run_writers();
        }
        if self.model.acknowledged.len() == before {
            return Err("quiet: no write was acknowledged".into());
        }
        for writer in &self.model.writers {
            if let Some(configuration) = self.model.nodes[&writer.id].configuration()
                && let Some(removed) = self
                    .model
                    .removed
                    .iter()
                    .find(|r| configuration.contains(**r))
            {
                return Err(format!(
                    "quiet: node {removed}, removed by the operator, is still a voter of {configuration}"
                ));
            }
        }
        Ok(())
    }
}

#[test]
fn the_replication_rules_keep_their_promises_under_seeded_faults() {
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let only: Option<u64> = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok());
    let base = 0x5eed_0001_u64;
    let list: Vec<u64> = match only {
        Some(seed) => vec![seed],
        None => (0..seeds).map(|i| base + i).collect(),
    };
    let mut writes = 0;
    let mut removals = 0;
    for seed in list {
        let mut sim = Sim::new(seed);
        if let Err(problem) = sim.run(200) {
            panic!(
                "seed {seed} ({} nodes, R = {}): {problem}\nreplay: SIM_SEED={seed} cargo test -p replication --test simulation",
                sim.model.nodes.len(),
                sim.model.factor.get()
            );
        }
        writes += sim.model.acknowledged.len();
        removals += sim.model.removed.len();
    }
    println!("total acknowledged writes {writes}, nodes removed by the operator {removals}");
    assert!(writes > 0, "the simulation acknowledged no write at all");
}
