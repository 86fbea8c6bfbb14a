//! Reachability questions about a graph: components, and whether removing any fewer than k nodes
//! keeps it connected (brute force, for tests and the simulator's small clusters).

use std::collections::BTreeSet;

use crate::graph::Graph;

/// The connected components of the subgraph induced by `among` (nodes not in the graph are
/// components of their own), each as a set, ordered by their smallest node.
pub fn components<Id: Ord + Copy>(graph: &Graph<Id>, among: &BTreeSet<Id>) -> Vec<BTreeSet<Id>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &start in among {
        if !seen.insert(start) {
            continue;
        }
        let mut component = BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &next in graph.neighbours(node) {
                if among.contains(&next) && seen.insert(next) {
                    component.insert(next);
                    stack.push(next);
                }
            }
        }
        out.push(component);
    }
    out
}

/// Whether every way of removing fewer than `k` nodes leaves the rest connected. Tries every such
/// set, so keep it to small graphs (n choose k-1 connectivity checks).
pub fn is_k_connected<Id: Ord + Copy>(graph: &Graph<Id>, k: usize) -> bool {
    let nodes: Vec<Id> = graph.order().to_vec();
    let mut removed = Vec::new();
    stays_connected(graph, &nodes, k.saturating_sub(1), 0, &mut removed)
}

fn stays_connected<Id: Ord + Copy>(
    graph: &Graph<Id>,
    nodes: &[Id],
    budget: usize,
    from: usize,
    removed: &mut Vec<Id>,
) -> bool {
    let rest: BTreeSet<Id> = nodes
        .iter()
        .copied()
        .filter(|n| !removed.contains(n))
        .collect();
    if components(graph, &rest).len() > 1 {
        return false;
    }
    if budget == 0 {
        return true;
    }
    for index in from..nodes.len() {
        removed.push(nodes[index]);
        let holds = stays_connected(graph, nodes, budget - 1, index + 1, removed);
        removed.pop();
        if !holds {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(u64, u64)], n: u64) -> Graph<u64> {
        let mut graph = Graph::new();
        for node in 1..=n {
            graph.add_node(node);
        }
        for &(a, b) in edges {
            graph.add_edge(a, b);
        }
        graph
    }

    #[test]
    fn a_ring_is_two_connected_but_not_three() {
        let ring = graph(&[(1, 2), (2, 3), (3, 4), (4, 5), (5, 1)], 5);
        assert!(is_k_connected(&ring, 1));
        assert!(is_k_connected(&ring, 2));
        assert!(!is_k_connected(&ring, 3));
    }

    #[test]
    fn components_follow_only_edges_among_the_given_nodes() {
        let path = graph(&[(1, 2), (2, 3), (3, 4)], 4);
        let without_two = BTreeSet::from([1, 3, 4]);
        assert_eq!(
            components(&path, &without_two),
            vec![BTreeSet::from([1]), BTreeSet::from([3, 4])]
        );
    }
}
