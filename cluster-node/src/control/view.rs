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
        }
    }
}
