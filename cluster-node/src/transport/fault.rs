//! The fault switch: drop all traffic to and from chosen peers, so tests can partition a cluster of
//! real processes without touching the network. Off unless the node was started with `--allow-faults`
//! (or `allow_faults = true` in its config); then driven by `POST /fault` and `DELETE /fault` on the
//! admin port. Each plane has its own switch, consulted on send and on receive, so a partition is
//! symmetric even when only one side was told about it.

use std::collections::BTreeSet;
use std::sync::{PoisonError, RwLock};

use crate::config::NodeId;

/// One switch per plane, so a test can cut only the data plane (the tree stays as it is while
/// replication stops) or only the control plane.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitches {
    pub control: std::sync::Arc<FaultSwitch>,
    pub data: std::sync::Arc<FaultSwitch>,
}

#[derive(Debug, Default)]
pub struct FaultSwitch {
    blocked: RwLock<BTreeSet<NodeId>>,
}

impl FaultSwitch {
    /// Drops traffic with exactly these peers from now on (replacing any earlier set).
    pub fn isolate_from(&self, peers: impl IntoIterator<Item = NodeId>) {
        *self.blocked.write().unwrap_or_else(PoisonError::into_inner) = peers.into_iter().collect();
    }

    /// Lets all traffic through again.
    pub fn heal(&self) {
        self.blocked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Whether traffic with `peer` is currently dropped.
    pub fn blocks(&self, peer: NodeId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&peer)
    }

    /// The peers currently cut off.
    pub fn blocked(&self) -> Vec<NodeId> {
        self.blocked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolating_replaces_the_set_and_healing_clears_it() {
        let id = |raw| NodeId(raw);
        let switch = FaultSwitch::default();
        assert!(!switch.blocks(id(2)));
        switch.isolate_from([id(2), id(3)]);
        assert!(switch.blocks(id(2)) && switch.blocks(id(3)));
        switch.isolate_from([id(4)]);
        assert_eq!(switch.blocked(), vec![id(4)]);
        switch.heal();
        assert!(switch.blocked().is_empty());
    }
}
