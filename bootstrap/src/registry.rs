//! The neighbour registry: which nodes exist, where they are, and who links to whom. Pure: no IO, no
//! clock, no randomness, so the same registrations and repairs in the same order always give the
//! same graph. The rules themselves are the `topology` crate's, shared with the simulator:
//!
//! - **Registration** (`topology::link_new_node`): a new node links to `min(k, registered)` nodes of
//!   the smallest degree (ties: the earliest registered). The first `k + 1` nodes form a clique and
//!   every later node links to k distinct nodes, so the graph stays k-vertex-connected as it grows:
//!   any `k - 1` nodes may be down at once and the others still reach each other.
//! - **Repair** (`topology::repair`): a node that hears fewer than k neighbours is linked to live
//!   nodes, joining split parts first, with every node's degree capped.
//!
//! Edges are symmetric and never forgotten. A node registering again with a known id gets its address
//! updated and keeps its neighbours (which include nodes that linked to it later). A state file from
//! before this rule (the older, sparser pattern with its `cursor`) loads as it is: its edges stay and
//! new nodes link to it as above.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use topology::{Graph, GraphError, RepairLimits};

use crate::address::{NodeAddress, NodeId};

/// One registered node and its neighbour ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub address: NodeAddress,
    pub neighbors: BTreeSet<NodeId>,
    /// Those neighbours that a repair linked (rather than the registration).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub repaired: BTreeSet<NodeId>,
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

/// The answer to one repair request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The neighbours this repair linked, ordered by id.
    pub added: Vec<NodeAddress>,
    /// Every neighbour now, ordered by id.
    pub neighbors: Vec<NodeAddress>,
}

/// The registry's whole state as it is saved: nodes in registration order with their edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
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
    #[error("node {node} lists {neighbor} as repaired but not as a neighbour")]
    RepairedNotNeighbor { node: NodeId, neighbor: NodeId },
}

impl From<GraphError<NodeId>> for SnapshotError {
    fn from(error: GraphError<NodeId>) -> Self {
        match error {
            GraphError::DuplicateNode(node) => Self::DuplicateId(node),
            GraphError::UnknownNeighbour { node, neighbour } => Self::UnknownNeighbor {
                node,
                neighbor: neighbour,
            },
            GraphError::SelfLoop(node) => Self::SelfLoop(node),
            GraphError::AsymmetricEdge { node, neighbour } => Self::AsymmetricEdge {
                node,
                neighbor: neighbour,
            },
        }
    }
}

/// Registered nodes in registration order, with their symmetric neighbour sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    graph: Graph<NodeId>,
    addresses: HashMap<NodeId, NodeAddress>,
    /// Edges a repair added, as `(smaller, larger)`.
    repaired: BTreeSet<(NodeId, NodeId)>,
    /// How many neighbours a new node gets and a live node keeps.
    k: usize,
}

impl Registry {
    /// An empty registry whose nodes get `k` neighbours each.
    pub fn new(k: usize) -> Self {
        Self {
            graph: Graph::new(),
            addresses: HashMap::new(),
            repaired: BTreeSet::new(),
            k,
        }
    }

    /// The `k` of this registry.
    pub fn degree(&self) -> usize {
        self.k
    }

    /// Registers a new node or updates a known one; see the module doc for the rule.
    pub fn register(&mut self, address: NodeAddress) -> Registration {
        let id = address.id;
        let change = match self.addresses.get_mut(&id) {
            Some(known) if *known == address => Change::Unchanged,
            Some(known) => {
                *known = address;
                Change::AddressUpdated
            }
            None => {
                topology::link_new_node(&mut self.graph, id, self.k);
                self.addresses.insert(id, address);
                Change::Added
            }
        };
        Registration {
            change,
            neighbors: self.neighbors_of(id),
        }
    }

    /// Links `id`, which hears only `reported_live` of its neighbours, to live nodes (`is_live`, the
    /// bootstrap's leases) until it has k; `None` for an unknown id.
    pub fn repair(
        &mut self,
        id: NodeId,
        reported_live: &BTreeSet<NodeId>,
        is_live: impl Fn(NodeId) -> bool,
    ) -> Option<Repair> {
        if !self.graph.contains(id) {
            return None;
        }
        let picks = topology::repair(
            &mut self.graph,
            id,
            reported_live,
            is_live,
            RepairLimits::new(self.k),
        );
        let mut added: Vec<NodeAddress> = picks
            .iter()
            .map(|&pick| {
                self.repaired.insert((id.min(pick), id.max(pick)));
                self.addresses[&pick].clone()
            })
            .collect();
        added.sort_by_key(|address| address.id);
        Some(Repair {
            added,
            neighbors: self.neighbors_of(id),
        })
    }

    /// On `id`'s lease renewal: joins a split among live nodes if `id` represents a part of it (see
    /// `topology::merge_split`); answers the neighbour linked, if any.
    pub fn merge_split(
        &mut self,
        id: NodeId,
        is_live: impl Fn(NodeId) -> bool,
    ) -> Option<NodeAddress> {
        let pick = topology::merge_split(&mut self.graph, id, is_live, RepairLimits::new(self.k))?;
        self.repaired.insert((id.min(pick), id.max(pick)));
        Some(self.addresses[&pick].clone())
    }

    /// Forgets `id` (an operator removed it for good): its address, its edges and the repairs that
    /// linked it. Answers its former neighbours, or `None` if it was not registered.
    pub fn deregister(&mut self, id: NodeId) -> Option<BTreeSet<NodeId>> {
        let neighbours = self.graph.remove_node(id)?;
        self.addresses.remove(&id);
        self.repaired.retain(|&(a, b)| a != id && b != id);
        Some(neighbours)
    }

    pub fn is_registered(&self, id: NodeId) -> bool {
        self.addresses.contains_key(&id)
    }

    /// Every node in registration order.
    pub fn entries(&self) -> Vec<Entry> {
        self.graph
            .order()
            .iter()
            .map(|&id| {
                let neighbors = self.graph.neighbours(id).clone();
                let repaired = neighbors
                    .iter()
                    .copied()
                    .filter(|&other| self.repaired.contains(&(id.min(other), id.max(other))))
                    .collect();
                Entry {
                    address: self.addresses[&id].clone(),
                    neighbors,
                    repaired,
                }
            })
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            nodes: self.entries(),
        }
    }

    /// Rebuilds a registry from a saved snapshot, refusing one that breaks the registry's invariants.
    pub fn from_snapshot(snapshot: Snapshot, k: usize) -> Result<Self, SnapshotError> {
        let mut addresses = HashMap::with_capacity(snapshot.nodes.len());
        let mut repaired = BTreeSet::new();
        for entry in &snapshot.nodes {
            let id = entry.address.id;
            if addresses.insert(id, entry.address.clone()).is_some() {
                return Err(SnapshotError::DuplicateId(id));
            }
            for &neighbor in &entry.repaired {
                if !entry.neighbors.contains(&neighbor) {
                    return Err(SnapshotError::RepairedNotNeighbor { node: id, neighbor });
                }
                repaired.insert((id.min(neighbor), id.max(neighbor)));
            }
        }
        let graph = Graph::from_adjacency(
            snapshot
                .nodes
                .into_iter()
                .map(|entry| (entry.address.id, entry.neighbors)),
        )?;
        Ok(Self {
            graph,
            addresses,
            repaired,
            k,
        })
    }

    fn neighbors_of(&self, id: NodeId) -> Vec<NodeAddress> {
        self.graph
            .neighbours(id)
            .iter()
            .map(|neighbor| self.addresses[neighbor].clone())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
