//! Graph generators: path, ring, star, grid, complete, random sparse connected, and the bootstrap's own
//! k-connected assignment (`topology::link_new_node`). Node ids are 1..=n; a seeded permutation decides which id sits where, so the
//! strongest candidate (the smallest id) is not always at the same spot of a shape.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use overlay::NodeId;
use rand::Rng;
use rand::rngs::StdRng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphKind {
    Path,
    Ring,
    Star,
    Grid,
    Complete,
    RandomSparse,
    Bootstrap,
}

impl GraphKind {
    pub const ALL: [GraphKind; 7] = [
        GraphKind::Path,
        GraphKind::Ring,
        GraphKind::Star,
        GraphKind::Grid,
        GraphKind::Complete,
        GraphKind::RandomSparse,
        GraphKind::Bootstrap,
    ];
}

/// An undirected graph on nodes 1..=n.
#[derive(Clone, Debug)]
pub struct Graph {
    pub kind: GraphKind,
    pub adjacency: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// For the bootstrap's assignment: the nodes each node picked when it registered (in registration
    /// order); a node starts knowing only these and learns the later ones when they contact it.
    pub picks: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Registration (start) order.
    pub order: Vec<NodeId>,
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} n={} m={}", self.kind, self.n(), self.edge_count())
    }
}

impl Graph {
    pub fn n(&self) -> usize {
        self.adjacency.len()
    }

    pub fn edge_count(&self) -> usize {
        self.adjacency.values().map(BTreeSet::len).sum::<usize>() / 2
    }

    pub fn neighbours(&self, node: NodeId) -> BTreeSet<NodeId> {
        self.adjacency.get(&node).cloned().unwrap_or_default()
    }

    pub fn has_edge(&self, a: NodeId, b: NodeId) -> bool {
        self.adjacency.get(&a).is_some_and(|set| set.contains(&b))
    }

    /// Adds the edge `a – b` (a repair); false if it was there already.
    pub fn add_edge(&mut self, a: NodeId, b: NodeId) -> bool {
        if a == b || self.has_edge(a, b) {
            return false;
        }
        self.adjacency.entry(a).or_default().insert(b);
        self.adjacency.entry(b).or_default().insert(a);
        true
    }

    pub fn edges(&self) -> Vec<(NodeId, NodeId)> {
        self.adjacency
            .iter()
            .flat_map(|(a, set)| set.iter().filter(move |b| a < *b).map(move |b| (*a, *b)))
            .collect()
    }

    /// Builds a graph of `kind` on `n` nodes. With `shuffle`, ids are assigned to positions at random.
    pub fn generate(kind: GraphKind, n: usize, rng: &mut StdRng, shuffle: bool) -> Graph {
        let n = n.max(1);
        let mut ids: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        if shuffle {
            for i in (1..ids.len()).rev() {
                ids.swap(i, rng.random_range(0..=i));
            }
        }
        let mut positions: Vec<(usize, usize)> = Vec::new();
        let mut picks: Vec<Vec<usize>> = vec![Vec::new(); n];
        match kind {
            GraphKind::Path => positions.extend((1..n).map(|i| (i - 1, i))),
            GraphKind::Ring => {
                positions.extend((1..n).map(|i| (i - 1, i)));
                if n > 2 {
                    positions.push((n - 1, 0));
                }
            }
            GraphKind::Star => positions.extend((1..n).map(|i| (0, i))),
            GraphKind::Grid => {
                let width = (n as f64).sqrt().ceil() as usize;
                for i in 0..n {
                    if (i + 1) % width != 0 && i + 1 < n {
                        positions.push((i, i + 1));
                    }
                    if i + width < n {
                        positions.push((i, i + width));
                    }
                }
            }
            GraphKind::Complete => {
                for a in 0..n {
                    for b in a + 1..n {
                        positions.push((a, b));
                    }
                }
            }
            GraphKind::RandomSparse => {
                for k in 1..n {
                    positions.push((rng.random_range(0..k), k));
                }
                for _ in 0..n / 2 {
                    let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                    if a != b {
                        positions.push((a.min(b), a.max(b)));
                    }
                }
            }
            GraphKind::Bootstrap => {
                picks = bootstrap_picks(n, topology::DEFAULT_K);
                for (k, picked) in picks.iter().enumerate() {
                    positions.extend(picked.iter().map(|&p| (p, k)));
                }
            }
        }
        let mut adjacency: BTreeMap<NodeId, BTreeSet<NodeId>> =
            ids.iter().map(|id| (*id, BTreeSet::new())).collect();
        for (a, b) in positions {
            if a != b {
                adjacency.entry(ids[a]).or_default().insert(ids[b]);
                adjacency.entry(ids[b]).or_default().insert(ids[a]);
            }
        }
        let picks = picks
            .iter()
            .enumerate()
            .map(|(k, picked)| (ids[k], picked.iter().map(|&p| ids[p]).collect()))
            .collect();
        Graph {
            kind,
            adjacency,
            picks,
            order: ids,
        }
    }
}

/// For each registration index, the earlier indices it linked to (the bootstrap's rule with `k`).
pub fn bootstrap_picks(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut graph = topology::Graph::new();
    (0..n)
        .map(|index| topology::link_new_node(&mut graph, index, k))
        .collect()
}

/// Connected components of `nodes` using edges for which `usable(a, b)` holds.
pub fn components(
    graph: &Graph,
    nodes: &BTreeSet<NodeId>,
    usable: impl Fn(NodeId, NodeId) -> bool,
) -> Vec<BTreeSet<NodeId>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &start in nodes {
        if !seen.insert(start) {
            continue;
        }
        let mut component = BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for next in graph.neighbours(node) {
                if nodes.contains(&next) && usable(node, next) && seen.insert(next) {
                    component.insert(next);
                    stack.push(next);
                }
            }
        }
        out.push(component);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_bootstrap_graph_matches_the_registry() {
        let mut rng = StdRng::seed_from_u64(0);
        let graph = Graph::generate(GraphKind::Bootstrap, 8, &mut rng, false);
        let expected: [(u64, &[u64]); 8] = [
            (1, &[2, 3, 4, 5, 6]),
            (2, &[1, 3, 4, 5, 7]),
            (3, &[1, 2, 4, 5, 7]),
            (4, &[1, 2, 3, 6, 8]),
            (5, &[1, 2, 3, 6, 8]),
            (6, &[1, 4, 5, 7]),
            (7, &[2, 3, 6, 8]),
            (8, &[4, 5, 7]),
        ];
        for (node, neighbours) in expected {
            let want: BTreeSet<NodeId> = neighbours.iter().map(|&n| NodeId(n)).collect();
            assert_eq!(graph.neighbours(NodeId(node)), want, "node {node}");
        }
    }

    #[test]
    fn every_generator_gives_a_connected_graph() {
        let mut rng = StdRng::seed_from_u64(3);
        for kind in GraphKind::ALL {
            for n in [1, 2, 3, 7, 16, 50] {
                let graph = Graph::generate(kind, n, &mut rng, true);
                assert_eq!(graph.n(), n);
                let all: BTreeSet<NodeId> = graph.adjacency.keys().copied().collect();
                assert_eq!(components(&graph, &all, |_, _| true).len(), 1, "{graph}");
            }
        }
    }
}
