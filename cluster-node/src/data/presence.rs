//! The runtime of presence on the data plane: the relay's updates sent up and down the tree, its
//! online set published to this node's streams, and typing notices passed up to the root and from
//! there down to every node. Nothing here touches the database or the log.

use super::*;

impl<T: Transport> DataPlane<T> {
    /// Sends what the relay has to send now and publishes the online set if it changed.
    pub(super) fn relay_presence(&mut self) {
        let now = self.now();
        let outputs = self.relay.poll(now);
        let term = self.view.borrow().term;
        if let Some((parent, users)) = outputs.up {
            let bytes = Bytes::from(message::encode(term, &DataMessage::Presence { users }));
            self.metrics.presence_bytes_sent.inc_by(bytes.len() as u64);
            self.send_bytes(parent, bytes);
        }
        if let Some(users) = outputs.down {
            let bytes = Bytes::from(message::encode(term, &DataMessage::Online { users }));
            let children = self.view.borrow().children.len() as u64;
            self.metrics
                .presence_bytes_sent
                .inc_by(bytes.len() as u64 * children);
            self.send_bytes_to_children(&bytes);
        }
        for neighbour in outputs.ask {
            self.send(neighbour, &DataMessage::PresenceResend);
        }
        if let Some(online) = outputs.online {
            self.metrics.presence_online.set(online.len() as i64);
            self.presence.publish_online(online);
        }
    }

    /// The tree moved: children that left take their users with them.
    pub(super) fn relay_tree_changed(&mut self) {
        let (parent, children) = {
            let view = self.view.borrow();
            (view.parent, view.children.iter().copied().collect())
        };
        self.relay.set_tree(parent, children);
        self.relay_presence();
    }

    /// A typing notice: from this node's users (`from` is `None`) or a child goes up, and the root
    /// turns it around; from the parent it is delivered here and passed on down.
    pub(super) fn on_typing(&mut self, from: Option<NodeId>, notice: TypingNotice) {
        let (parent, from_parent) = {
            let view = self.view.borrow();
            let from_parent = from.is_some() && from == view.parent;
            let from_child = from.is_some_and(|from| view.children.contains(&from));
            if from.is_some() && !from_parent && !from_child {
                return;
            }
            (view.parent, from_parent)
        };
        match parent {
            Some(parent) if !from_parent => {
                self.send(parent, &DataMessage::Typing { notice });
            }
            _ => {
                self.send_to_children(&DataMessage::Typing {
                    notice: notice.clone(),
                });
                self.presence.deliver_typing(notice);
            }
        }
    }
}
