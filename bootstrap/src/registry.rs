//! The neighbour registry: which nodes exist and who links to whom. Pure: no IO, no clock, no randomness,
//! so the same registrations in the same order always give the same graph.
//!
//! # The neighbour pattern
//!
//! The k-th *new* node (k = 0, 1, 2, … counts distinct ids in registration order) links to
//! `d = min(PATTERN[k % 5], k)` of the k nodes already registered, with `PATTERN = [1, 2, 3, 1, 2]`.
//! They are chosen by one cursor that walks the registration list *backwards* with wrap-around and is
//! kept between registrations (and in the state file): each pick first steps the cursor down by one
//! (from 0 it wraps to k - 1, the newest node) and takes the node it lands on. Since `d <= k`, one
//! registration never picks a node twice.
//!
//! Why this shape:
//! - every node after the first links to at least one earlier node, so by induction the graph is
//!   connected whatever the registration order, and it never contains a self loop;
//! - the varying `d` and the wandering cursor give nodes different degrees, which the election and tree
//!   algorithms should be exercised with, instead of a ring or a star;
//! - it is deterministic, so tests can state the exact graph.
//!
//! The first eight nodes (ids 1..=8 registered in order) come out as:
//!
//! ```text
//! node  picks        cursor after     adjacency at the end
//!   1   -            0                1: 2 3 5 8
//!   2   1            0                2: 1 3 5 8
//!   3   2 1          0                3: 1 2 4 7
//!   4   3            2                4: 3 7
//!   5   2 1          0                5: 1 2 6
//!   6   5            4                6: 5
//!   7   4 3          2                7: 3 4 8
//!   8   2 1 7        6                8: 1 2 7
//! ```
//!
//! Edges are symmetric and never forgotten. A node registering again with a known id gets its address
//! updated and keeps its neighbours (which include nodes that registered after it and linked to it); the
//! cursor does not move, so re-registrations never change anyone else's neighbours.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::address::{NodeAddress, NodeId};

/// How many earlier nodes the k-th new node links to, cycling (capped by how many exist).
pub const PATTERN: [usize; 5] = [1, 2, 3, 1, 2];

/// One registered node and its neighbour ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub address: NodeAddress,
    pub neighbors: BTreeSet<NodeId>,
}

/// What a registration did, so the caller knows whether there is anything to persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    AddressUpdated,
    Unchanged,
}

/// The answer to one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub change: Change,
    /// The registering node's neighbours, ordered by id.
    pub neighbors: Vec<NodeAddress>,
}

/// The registry's whole state as it is saved: registration order, edges and cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub cursor: usize,
    pub nodes: Vec<Entry>,
}

/// A snapshot that the registry itself could never have produced (e.g. a hand-edited state file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("node {0} appears more than once")]
    DuplicateId(NodeId),
    #[error("node {node} lists neighbour {neighbor}, which is not registered")]
    UnknownNeighbor { node: NodeId, neighbor: NodeId },
    #[error("node {0} lists itself as a neighbour")]
    SelfLoop(NodeId),
    #[error("node {node} lists {neighbor} as a neighbour but not the other way round")]
    AsymmetricEdge { node: NodeId, neighbor: NodeId },
    #[error("cursor {cursor} is out of range for {len} nodes")]
    CursorOutOfRange { cursor: usize, len: usize },
}

/// Registered nodes in registration order, with their symmetric neighbour sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    nodes: Vec<Entry>,
    /// Derived from `nodes`: where each id sits in the registration order.
    positions: HashMap<NodeId, usize>,
    /// Position the next pick steps down from; always `< nodes.len()`, or 0 when empty.
    cursor: usize,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new node or updates a known one; see the module doc for the pattern.
    pub fn register(&mut self, address: NodeAddress) -> Registration {
        let id = address.id;
        let change = match self.positions.get(&id) {
            Some(&position) => {
                let entry = &mut self.nodes[position];
                if entry.address == address {
                    Change::Unchanged
                } else {
                    entry.address = address;
                    Change::AddressUpdated
                }
            }
            None => {
                self.add(address);
                Change::Added
            }
        };
        Registration {
            change,
            neighbors: self.neighbors_of(id),
        }
    }

    /// Every node in registration order.
    pub fn entries(&self) -> &[Entry] {
        &self.nodes
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            cursor: self.cursor,
            nodes: self.nodes.clone(),
        }
    }

    /// Rebuilds a registry from a saved snapshot, refusing one that breaks the registry's invariants.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, SnapshotError> {
        let Snapshot { cursor, nodes } = snapshot;
        let mut positions = HashMap::with_capacity(nodes.len());
        for (position, entry) in nodes.iter().enumerate() {
            if positions.insert(entry.address.id, position).is_some() {
                return Err(SnapshotError::DuplicateId(entry.address.id));
            }
        }
        let registry = Self {
            nodes,
            positions,
            cursor,
        };
        registry.check_edges()?;
        if cursor != 0 && cursor >= registry.nodes.len() {
            return Err(SnapshotError::CursorOutOfRange {
                cursor,
                len: registry.nodes.len(),
            });
        }
        Ok(registry)
    }

    /// Every neighbour is registered, no node links to itself, and every edge is known at both ends.
    pub fn check_edges(&self) -> Result<(), SnapshotError> {
        for entry in &self.nodes {
            let node = entry.address.id;
            for &neighbor in &entry.neighbors {
                if neighbor == node {
                    return Err(SnapshotError::SelfLoop(node));
                }
                let other = self
                    .positions
                    .get(&neighbor)
                    .map(|&position| &self.nodes[position])
                    .ok_or(SnapshotError::UnknownNeighbor { node, neighbor })?;
                if !other.neighbors.contains(&node) {
                    return Err(SnapshotError::AsymmetricEdge { node, neighbor });
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, address: NodeAddress) {
        let id = address.id;
        let k = self.nodes.len();
        let degree = PATTERN[k % PATTERN.len()].min(k);
        let mut picked = BTreeSet::new();
        for _ in 0..degree {
            self.cursor = if self.cursor == 0 {
                k - 1
            } else {
                self.cursor - 1
            };
            let neighbor = &mut self.nodes[self.cursor];
            neighbor.neighbors.insert(id);
            picked.insert(neighbor.address.id);
        }
        self.positions.insert(id, k);
        self.nodes.push(Entry {
            address,
            neighbors: picked,
        });
    }

    fn neighbors_of(&self, id: NodeId) -> Vec<NodeAddress> {
        let Some(&position) = self.positions.get(&id) else {
            return Vec::new();
        };
        self.nodes[position]
            .neighbors
            .iter()
            .map(|neighbor| {
                let at = self
                    .positions
                    .get(neighbor)
                    .expect("edges only ever join registered nodes");
                self.nodes[*at].address.clone()
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
