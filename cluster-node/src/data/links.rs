//! Sending on the data plane: to the parent, the children, or one hop towards a node below.

use super::*;

impl<T: Transport> DataPlane<T> {
    /// Encodes `message` once (commits are on the write path) and sends the bytes to every child.
    pub(super) fn send_to_children(&self, message: &DataMessage) {
        let bytes = Bytes::from(message::encode(self.view.borrow().term, message));
        self.send_bytes_to_children(&bytes);
    }

    /// Passes a message on to the parent as the bytes it arrived in.
    pub(super) fn send_up(&self, raw: Bytes) {
        let parent = self.view.borrow().parent;
        if let Some(parent) = parent {
            self.send_bytes(parent, raw);
        }
    }

    /// Passes a message on towards `to`, one hop down the tree.
    pub(super) fn send_toward(&self, to: NodeId, raw: Bytes) {
        let next_hop = self.view.borrow().routes.get(&to).copied();
        match next_hop {
            Some(next_hop) => self.send_bytes(next_hop, raw),
            None => tracing::debug!(%to, "no route down; a catch-up answer is dropped"),
        }
    }

    pub(super) fn send_bytes_to_children(&self, raw: &Bytes) {
        for &child in &self.view.borrow().children {
            if let Err(error) = self.transport.send(child, raw.clone()) {
                tracing::debug!(to = %child, %error, "data message not sent");
            }
        }
    }

    pub(super) fn send_bytes(&self, to: NodeId, bytes: Bytes) {
        if let Err(error) = self.transport.send(to, bytes) {
            tracing::debug!(%to, %error, "data message not sent");
        }
    }

    pub(super) fn send(&self, to: NodeId, message: &DataMessage) {
        let term = self.view.borrow().term;
        if let Err(error) = self
            .transport
            .send(to, Bytes::from(message::encode(term, message)))
        {
            tracing::debug!(%to, %error, "data message not sent");
        }
    }
}
