//! A new node's neighbours.
//!
//! # The construction, and why the graph is k-connected
//!
//! The n-th new node (n nodes already there) links to `min(k, n)` of them: those of the smallest
//! degree, ties broken by registration order (earliest first).
//!
//! - While `n <= k` a new node links to every node there, so the first `k + 1` nodes form a complete
//!   graph, which is k-connected (removing any `k - 1` of `k + 1` nodes leaves two or more, all
//!   adjacent), and every smaller prefix is complete too.
//! - Afterwards each new node links to k distinct nodes of a k-connected graph. By the expansion
//!   lemma the result is k-connected: removing any set S of fewer than k nodes leaves the old graph
//!   minus S connected (it was k-connected), and the new node, if it is not in S, keeps at least one
//!   of its k neighbours outside S.
//! - Edges the bootstrap adds later (repairs) never lower connectivity.
//!
//! So as long as fewer than k nodes are down at once, the live nodes can reach each other, and the
//! tree spans them all without any repair. Picking the smallest degrees keeps the graph balanced:
//! every node gets k edges when it joins and its degree then only grows while it is among the least
//! linked, so degrees stay between k and about 2k (the average tends to 2k) instead of piling up on
//! the first nodes.
//!
//! A graph built before this rule (the older, sparser pattern) is kept as it was, and new nodes link
//! to it the same way; its weak spots are what repair is for.

use crate::graph::Graph;

/// Adds `node` to `graph` linked to `min(k, nodes there)` nodes of the smallest degree; answers the
/// nodes it linked to, in the order they were picked. A node already in the graph is left alone
/// (it keeps its neighbours) and nothing is picked.
pub fn link_new_node<Id: Ord + Copy>(graph: &mut Graph<Id>, node: Id, k: usize) -> Vec<Id> {
    if graph.contains(node) {
        return Vec::new();
    }
    let mut existing: Vec<(usize, usize, Id)> = graph
        .order()
        .iter()
        .enumerate()
        .map(|(position, &other)| (graph.degree(other), position, other))
        .collect();
    existing.sort_unstable();
    let picks: Vec<Id> = existing.iter().take(k).map(|&(_, _, id)| id).collect();
    graph.add_node(node);
    for &pick in &picks {
        graph.add_edge(node, pick);
    }
    picks
}

/// The graph of nodes `1..=n` registered in order.
#[cfg(test)]
pub(crate) fn built(n: u64, k: usize) -> Graph<u64> {
    let mut graph = Graph::new();
    for node in 1..=n {
        link_new_node(&mut graph, node, k);
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectivity::is_k_connected;

    #[test]
    fn the_first_nodes_form_a_clique_and_later_ones_link_to_the_least_linked() {
        let mut graph = Graph::new();
        let picks: Vec<Vec<u64>> = (1..=8).map(|n| link_new_node(&mut graph, n, 3)).collect();
        assert_eq!(
            picks,
            [
                vec![],
                vec![1],
                vec![1, 2],
                vec![1, 2, 3],
                // 1..4 all have degree 3: the earliest three.
                vec![1, 2, 3],
                // 4 and 5 have degree 3, then 1, 2, 3 have 4: 4, 5, then the earliest of those.
                vec![4, 5, 1],
                // 6 alone has degree 3, then 2 and 3 (degree 4, before 4 and 5).
                vec![6, 2, 3],
                vec![7, 4, 5],
            ]
        );
        let degrees: Vec<usize> = (1..=8).map(|n| graph.degree(n)).collect();
        assert_eq!(degrees, [5, 5, 5, 5, 5, 4, 4, 3]);
    }

    #[test]
    fn a_known_node_keeps_its_neighbours() {
        let mut graph = built(5, 3);
        let before = graph.clone();
        assert!(link_new_node(&mut graph, 2, 3).is_empty());
        assert_eq!(graph, before);
    }

    #[test]
    fn every_size_up_to_thirty_is_k_connected_with_balanced_degrees() {
        for k in 1..=4 {
            for n in 1..=30u64 {
                let graph = built(n, k);
                let want = k.min(n as usize - 1);
                assert!(
                    is_k_connected(&graph, want),
                    "n={n} k={k} is not {want}-connected"
                );
                let max = (1..=n).map(|node| graph.degree(node)).max().unwrap_or(0);
                assert!(max <= 2 * k + 1, "n={n} k={k}: a degree of {max}");
                let min = (1..=n).map(|node| graph.degree(node)).min().unwrap_or(0);
                assert!(min >= want, "n={n} k={k}: a degree of {min}");
            }
        }
    }
}
