//! Repair: a node reports that fewer than k of its neighbours are alive, and the bootstrap links it
//! to live nodes until it has k again.
//!
//! The bootstrap judges liveness from its leases (every node renews one every half second) and the
//! requester from its failure detector; a neighbour counts as live only if both agree, so a node cut
//! off from a neighbour the bootstrap still hears is repaired too. The choice, in order:
//!
//! 1. **Merge.** If the live nodes no longer form one component of the graph, the requester first
//!    links to one node of every other component (the least linked one). A split cluster has
//!    requesters on both sides, so one request from either side joins them again.
//! 2. **Fill.** Then live nodes that are not yet neighbours, least live neighbours first (ties:
//!    registration order), until the requester has k live neighbours.
//!
//! A split can also leave every node with k live neighbours (two halves that are each well linked
//! inside), and then nobody asks. The bootstrap sees it in its own graph of live nodes: when a node
//! renews its lease and is the representative of a part that does not hold the earliest registered
//! live node (the part's own earliest registered live node), [`merge_split`] links it to that main
//! part. One edge per part heals the split; nothing happens while the live graph is whole.
//!
//! Edges are only ever added, so a node that comes back finds its old edges (no repair needed), and
//! repeated requests by a flapping neighbour's peers add edges only while they are short of k. Every
//! node's degree is capped (`max_degree`): a full node is never picked and gets nothing more.

use std::collections::BTreeSet;

use crate::connectivity::components;
use crate::graph::Graph;

/// How far repair goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairLimits {
    /// The live neighbours every node should have.
    pub k: usize,
    /// No node gets more edges than this (dead neighbours included: they cost heartbeats too).
    pub max_degree: usize,
}

impl RepairLimits {
    /// Room for k live neighbours plus as many again that died or were added by merges.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            max_degree: 4 * k.max(1),
        }
    }
}

/// Links `requester` to live nodes as described in the module documentation; answers the nodes it
/// linked to (empty when nothing was needed or possible).
///
/// `is_live` is the bootstrap's view of the whole cluster; `reported_live` is the requester's own
/// list of the neighbours it hears.
pub fn repair<Id: Ord + Copy>(
    graph: &mut Graph<Id>,
    requester: Id,
    reported_live: &BTreeSet<Id>,
    is_live: impl Fn(Id) -> bool,
    limits: RepairLimits,
) -> Vec<Id> {
    if !graph.contains(requester) || graph.degree(requester) >= limits.max_degree {
        return Vec::new();
    }
    let live: BTreeSet<Id> = graph
        .order()
        .iter()
        .copied()
        .filter(|&node| node == requester || is_live(node))
        .collect();
    let live_degree = |graph: &Graph<Id>, node: Id| {
        graph
            .neighbours(node)
            .iter()
            .filter(|n| live.contains(n))
            .count()
    };
    let heard = graph
        .neighbours(requester)
        .iter()
        .filter(|n| live.contains(n) && reported_live.contains(n))
        .count();
    let need = limits.k.saturating_sub(heard);
    let room = limits.max_degree - graph.degree(requester);

    let candidate = |graph: &Graph<Id>, node: Id| {
        node != requester
            && !graph.has_edge(requester, node)
            && graph.degree(node) < limits.max_degree
    };
    let best_of = |graph: &Graph<Id>, nodes: &mut dyn Iterator<Item = Id>| {
        nodes
            .filter(|&node| candidate(graph, node))
            .min_by_key(|&node| (live_degree(graph, node), graph.position(node)))
    };

    let mut picks = Vec::new();
    let mut others: Vec<BTreeSet<Id>> = components(graph, &live)
        .into_iter()
        .filter(|component| !component.contains(&requester))
        .collect();
    others.sort_by_key(|component| {
        component
            .iter()
            .map(|&node| graph.position(node))
            .min()
            .unwrap_or(usize::MAX)
    });
    for component in others {
        if picks.len() >= room.min(limits.k) {
            break;
        }
        if let Some(pick) = best_of(graph, &mut component.iter().copied()) {
            graph.add_edge(requester, pick);
            picks.push(pick);
        }
    }
    while picks.len() < need.min(room) {
        let Some(pick) = best_of(graph, &mut live.iter().copied()) else {
            break;
        };
        graph.add_edge(requester, pick);
        picks.push(pick);
    }
    picks
}

/// Called when `renewing` renews its lease: if the live nodes form several parts and `renewing`
/// represents one without the earliest registered live node, links it to the least linked node of
/// the part with it (if both have room). Answers the node it linked, if any.
pub fn merge_split<Id: Ord + Copy>(
    graph: &mut Graph<Id>,
    renewing: Id,
    is_live: impl Fn(Id) -> bool,
    limits: RepairLimits,
) -> Option<Id> {
    if !graph.contains(renewing) || graph.degree(renewing) >= limits.max_degree {
        return None;
    }
    let live: BTreeSet<Id> = graph
        .order()
        .iter()
        .copied()
        .filter(|&node| node == renewing || is_live(node))
        .collect();
    let parts = components(graph, &live);
    if parts.len() < 2 {
        return None;
    }
    let earliest = |part: &BTreeSet<Id>| part.iter().copied().min_by_key(|&n| graph.position(n));
    let main = parts
        .iter()
        .min_by_key(|part| earliest(part).map(|n| graph.position(n)))?;
    let mine = parts.iter().find(|part| part.contains(&renewing))?;
    if main.contains(&renewing) || earliest(mine) != Some(renewing) {
        return None;
    }
    let pick = main
        .iter()
        .copied()
        .filter(|&node| graph.degree(node) < limits.max_degree)
        .min_by_key(|&node| (graph.degree(node), graph.position(node)))?;
    graph.add_edge(renewing, pick);
    Some(pick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::built;

    fn live_except(dead: &[u64]) -> impl Fn(u64) -> bool + '_ {
        move |node| !dead.contains(&node)
    }

    #[test]
    fn a_node_that_lost_neighbours_gets_the_least_linked_live_nodes() {
        let mut graph = built(8, 3);
        // 8 links to 7, 4, 5. Kill 4 and 5: 8 hears only 7.
        let reported = BTreeSet::from([7]);
        let picks = repair(
            &mut graph,
            8,
            &reported,
            live_except(&[4, 5]),
            RepairLimits::new(3),
        );
        // Live degrees: 6 has {1,7}→... the least linked live nodes not already neighbours.
        assert_eq!(picks.len(), 2);
        for pick in &picks {
            assert!(![4, 5, 7, 8].contains(pick), "picked {pick}");
            assert!(graph.has_edge(8, *pick));
        }
        // Asking again with everything fine adds nothing.
        let reported: BTreeSet<u64> = graph.neighbours(8).clone();
        assert!(
            repair(
                &mut graph,
                8,
                &reported,
                live_except(&[4, 5]),
                RepairLimits::new(3)
            )
            .is_empty()
        );
    }

    #[test]
    fn a_split_cluster_is_joined_by_a_request_from_either_side() {
        // A path 1-2-3-4-5: killing 3 splits {1,2} from {4,5}.
        let mut graph = Graph::new();
        for node in 1..=5 {
            graph.add_node(node);
        }
        for (a, b) in [(1, 2), (2, 3), (3, 4), (4, 5)] {
            graph.add_edge(a, b);
        }
        let picks = repair(
            &mut graph,
            2,
            &BTreeSet::from([1]),
            live_except(&[3]),
            RepairLimits::new(2),
        );
        assert!(picks.iter().any(|p| [4, 5].contains(p)), "{picks:?}");
        let live = BTreeSet::from([1, 2, 4, 5]);
        assert_eq!(components(&graph, &live).len(), 1);
    }

    #[test]
    fn a_split_where_everyone_keeps_k_neighbours_is_merged_by_one_representative() {
        // Two cliques {1,2,3,4} and {6,7,8,9} joined only through 5.
        let mut graph = Graph::new();
        for node in 1..=9 {
            graph.add_node(node);
        }
        for side in [[1, 2, 3, 4], [6, 7, 8, 9]] {
            for a in side {
                for b in side {
                    graph.add_edge(a, b);
                }
            }
        }
        for other in [1, 2, 6, 7] {
            graph.add_edge(5, other);
        }
        let limits = RepairLimits::new(3);
        let live = |n: u64| n != 5;
        // 7 is not its part's earliest node; 1 is in the main part: neither links.
        assert_eq!(merge_split(&mut graph, 7, live, limits), None);
        assert_eq!(merge_split(&mut graph, 1, live, limits), None);
        let pick = merge_split(&mut graph, 6, live, limits).expect("6 represents its part");
        assert!([1, 2, 3, 4].contains(&pick));
        let all: BTreeSet<u64> = (1..=9).filter(|&n| n != 5).collect();
        assert_eq!(components(&graph, &all).len(), 1);
        // Whole again: nothing more.
        assert_eq!(merge_split(&mut graph, 6, live, limits), None);
    }

    #[test]
    fn degrees_never_pass_the_cap() {
        let mut graph = built(12, 2);
        let limits = RepairLimits {
            k: 2,
            max_degree: 4,
        };
        // Everyone but 1 and 2 dead, repeatedly: 1 and 2 can only link to each other.
        let dead: Vec<u64> = (3..=12).collect();
        for _ in 0..5 {
            repair(&mut graph, 1, &BTreeSet::new(), live_except(&dead), limits);
        }
        assert!(graph.degree(1) <= 5, "degree {}", graph.degree(1));
        for node in 1..=12 {
            // A node over the cap before repair keeps its edges but gets no more.
            let before = built(12, 2).degree(node);
            assert!(graph.degree(node) <= before.max(limits.max_degree));
        }
    }

    #[test]
    fn an_unknown_requester_gets_nothing() {
        let mut graph = built(4, 3);
        assert!(
            repair(
                &mut graph,
                99,
                &BTreeSet::new(),
                |_| true,
                RepairLimits::new(3)
            )
            .is_empty()
        );
    }
}
