//! The graph itself: nodes in registration order and symmetric edges, never forgotten.

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

    /// Where `node` sits in the registration order (unknown nodes last).
    pub fn position(&self, node: Id) -> usize {
        self.order
            .iter()
            .position(|&n| n == node)
            .unwrap_or(usize::MAX)
    }
}
