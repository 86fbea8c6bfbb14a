//! The runtime of ephemeral groups on the data plane: the writer's service holds them in memory
//! (`service::ephemeral`); its events go down the whole tree like commits, but are never applied or
//! written; every node hands them to its streams. When the tree's leader changes, the groups are gone
//! with the old writer, and every node tells its streams so.

use super::*;

impl<T: Transport> DataPlane<T> {
    /// An event of this writer's ephemeral groups: down the tree, and to this node's streams.
    pub(super) fn on_writers_ephemeral(&mut self, event: EphemeralEvent) {
        self.send_to_children(&DataMessage::Ephemeral {
            event: event.clone(),
        });
        self.deliver_ephemeral(event);
    }

    pub(super) fn deliver_ephemeral(&self, event: EphemeralEvent) {
        // No stream listening is not an error.
        let _ = self.handle.ephemeral.send(event);
    }

    /// Notes the tree's leader; a different one than before ends every ephemeral group here.
    pub(super) fn ephemeral_leader(&mut self, leader: Option<NodeId>) {
        let Some(leader) = leader else {
            return;
        };
        if self.leader_seen.is_some_and(|seen| seen != leader) {
            self.deliver_ephemeral(EphemeralEvent::WriterChanged);
        }
        self.leader_seen = Some(leader);
    }

    /// On the writer: members offline for the grace period leave their ephemeral groups.
    pub(super) fn sweep_ephemeral(&self) {
        if let Local::Writer { service, .. } = &self.local {
            service.sweep_ephemeral(&self.relay.online());
        }
    }
}
