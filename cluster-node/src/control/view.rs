//! What the rest of the node needs to know about the tree, as one comparable value.

use std::collections::BTreeMap;

use overlay::{Overlay, Role};

use crate::config::NodeId;

/// The node's place in the tree, published on every change. The data plane routes by it and the
/// orchestrator swaps services (HTTP, database) when `roles` change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlView {
    pub ready: bool,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    pub roles: Vec<Role>,
    /// Destination → the child to send it through.
    pub routes: BTreeMap<NodeId, NodeId>,
    /// How many nodes the bootstrap has registered (0 until known): a writer accepts writes only
    /// while its tree spans a majority of them.
    pub registered: usize,
}

impl ControlView {
    pub fn from_overlay(overlay: &Overlay) -> Self {
        Self {
            ready: overlay.is_ready(),
            leader: overlay.leader(),
            term: overlay.term().0,
            parent: overlay.parent(),
            children: overlay.children(),
            roles: overlay.roles().iter().copied().collect(),
            routes: overlay.routes(),
            registered: 0,
        }
    }

    /// Nodes in this node's tree, as a root sees it (itself and every destination it routes to).
    pub fn tree_size(&self) -> usize {
        self.routes.len() + 1
    }

    /// Whether a tree rooted here spans a strict majority of the registered nodes (DESIGN §4, "one
    /// writer at a time": two disjoint majorities cannot exist, so two such writers cannot either).
    pub fn spans_majority(&self) -> bool {
        self.registered > 0 && self.tree_size() * 2 > self.registered
    }
}
