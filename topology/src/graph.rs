//! The graph itself: nodes in registration order and symmetric edges, forgotten only when an
//! operator removes a node for good.

use std::collections::{BTreeMap, BTreeSet};

/// An undirected graph whose nodes keep the order they were added in (the registration order, which
/// breaks ties deterministically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph<Id: Ord + Copy> {
    order: Vec<Id>,
    adjacency: BTreeMap<Id, BTreeSet<Id>>,
    /// Lent out as the neighbours of an unknown node (an empty set owns no memory).
    empty: BTreeSet<Id>,
}

/// A graph that these rules could never have produced (e.g. a hand-edited state file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError<Id> {
    DuplicateNode(Id),
    UnknownNeighbour { node: Id, neighbour: Id },
    SelfLoop(Id),
    AsymmetricEdge { node: Id, neighbour: Id },
}

impl<Id: Ord + Copy> Default for Graph<Id> {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            adjacency: BTreeMap::new(),
            empty: BTreeSet::new(),
        }
    }
}

impl<Id: Ord + Copy> Graph<Id> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a graph from `(node, neighbours)` in registration order, checking it.
    pub fn from_adjacency(
        nodes: impl IntoIterator<Item = (Id, BTreeSet<Id>)>,
    ) -> Result<Self, GraphError<Id>> {
        let mut graph = Self::new();
        for (node, neighbours) in nodes {
            if graph.adjacency.insert(node, neighbours).is_some() {
                return Err(GraphError::DuplicateNode(node));
            }
            graph.order.push(node);
        }
        for (&node, neighbours) in &graph.adjacency {
            for &neighbour in neighbours {
                if neighbour == node {
                    return Err(GraphError::SelfLoop(node));
                }
                let other = graph
                    .adjacency
                    .get(&neighbour)
                    .ok_or(GraphError::UnknownNeighbour { node, neighbour })?;
                if !other.contains(&node) {
                    return Err(GraphError::AsymmetricEdge { node, neighbour });
                }
            }
        }
        Ok(graph)
    }

    /// Nodes in the order they were added.
    pub fn order(&self) -> &[Id] {
        &self.order
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, node: Id) -> bool {
        self.adjacency.contains_key(&node)
    }

    /// `node`'s neighbours (empty for an unknown node).
    pub fn neighbours(&self, node: Id) -> &BTreeSet<Id> {
        self.adjacency.get(&node).unwrap_or(&self.empty)
    }

    pub fn degree(&self, node: Id) -> usize {
        self.neighbours(node).len()
    }

    pub fn has_edge(&self, a: Id, b: Id) -> bool {
        self.neighbours(a).contains(&b)
    }

    /// Every edge once, as `(smaller, larger)`.
    pub fn edges(&self) -> Vec<(Id, Id)> {
        self.adjacency
            .iter()
            .flat_map(|(&a, neighbours)| {
                neighbours
                    .iter()
                    .filter(move |&&b| a < b)
                    .map(move |&b| (a, b))
            })
            .collect()
    }

    /// Adds a node with no edges; false if it was already there.
    pub fn add_node(&mut self, node: Id) -> bool {
        if self.adjacency.contains_key(&node) {
            return false;
        }
        self.adjacency.insert(node, BTreeSet::new());
        self.order.push(node);
        true
    }

    /// Adds the edge `a – b` between two known, distinct nodes; false if it existed or cannot be.
    pub fn add_edge(&mut self, a: Id, b: Id) -> bool {
        if a == b || !self.contains(a) || !self.contains(b) || self.has_edge(a, b) {
            return false;
        }
        self.adjacency.entry(a).or_default().insert(b);
        self.adjacency.entry(b).or_default().insert(a);
        true
    }

    /// Removes `node` and its edges; answers its former neighbours (`None` if it was unknown).
    pub fn remove_node(&mut self, node: Id) -> Option<BTreeSet<Id>> {
        let neighbours = self.adjacency.remove(&node)?;
        for neighbour in &neighbours {
            if let Some(theirs) = self.adjacency.get_mut(neighbour) {
                theirs.remove(&node);
            }
        }
        self.order.retain(|&n| n != node);
        Some(neighbours)
    }

    /// Where `node` sits in the registration order (unknown nodes last).
    pub fn position(&self, node: Id) -> usize {
        self.order
            .iter()
            .position(|&n| n == node)
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_node_leaves_no_edge_behind() {
        let mut graph = Graph::new();
        for node in 1..=4 {
            graph.add_node(node);
        }
        graph.add_edge(1, 2);
        graph.add_edge(2, 3);
        graph.add_edge(2, 4);
        graph.add_edge(3, 4);
        assert_eq!(graph.remove_node(2), Some([1, 3, 4].into()));
        assert_eq!(graph.order(), &[1, 3, 4]);
        assert_eq!(graph.edges(), vec![(3, 4)]);
        assert!(graph.neighbours(1).is_empty() && !graph.contains(2));
        assert_eq!(graph.remove_node(2), None);
        let rebuilt = Graph::from_adjacency(
            graph
                .order()
                .iter()
                .map(|&n| (n, graph.neighbours(n).clone())),
        );
        assert_eq!(rebuilt, Ok(graph));
    }
}
