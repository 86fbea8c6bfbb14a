//! An in-process network for tests: every endpoint is a channel, links can be cut and restored.
//!
//! It keeps the production contract (non-blocking sends, loss when a peer is unreachable) so tests of
//! the planes exercise the same code paths without sockets or timing noise.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Inbound, SendError, Transport, TransportStats};
use crate::config::NodeId;

/// Capacity of each endpoint's inbound queue.
const INBOX: usize = 4096;

#[derive(Default)]
struct Hub {
    inboxes: HashMap<NodeId, mpsc::Sender<Inbound>>,
    /// Unordered pairs whose link is down, stored as (smaller, larger).
    cut: HashSet<(NodeId, NodeId)>,
}

/// The shared medium; clone it to hand to every endpoint.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    hub: Arc<Mutex<Hub>>,
}

impl MemoryNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches node `id`, replacing an earlier attachment (as a restart would).
    pub fn endpoint(&self, id: NodeId) -> (MemoryTransport, mpsc::Receiver<Inbound>) {
        let (sender, receiver) = mpsc::channel(INBOX);
        self.lock().inboxes.insert(id, sender);
        let transport = MemoryTransport {
            id,
            network: self.clone(),
            peers: Mutex::new(HashSet::new()),
            stats: TransportStats::default(),
        };
        (transport, receiver)
    }

    /// Detaches node `id`: messages to it are dropped, as to a crashed process.
    pub fn crash(&self, id: NodeId) {
        self.lock().inboxes.remove(&id);
    }

    /// Cuts the link between `a` and `b` in both directions.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        self.lock().cut.insert(pair(a, b));
    }

    /// Restores the link between `a` and `b`.
    pub fn restore(&self, a: NodeId, b: NodeId) {
        self.lock().cut.remove(&pair(a, b));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hub> {
        // A panicking test thread must not poison the network for the others.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

/// One node's attachment to a [`MemoryNetwork`].
pub struct MemoryTransport {
    id: NodeId,
    network: MemoryNetwork,
    peers: Mutex<HashSet<NodeId>>,
    stats: TransportStats,
}

impl Transport for MemoryTransport {
    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        let known = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&to);
        if !known {
            return Err(SendError::UnknownPeer(to));
        }
        let inbox = {
            let hub = self.network.lock();
            if hub.cut.contains(&pair(self.id, to)) {
                None
            } else {
                hub.inboxes.get(&to).cloned()
            }
        };
        let Some(inbox) = inbox else {
            TransportStats::count(&self.stats.dropped);
            return Err(SendError::LinkDown(to));
        };
        match inbox.try_send(Inbound {
            from: self.id,
            payload,
        }) {
            Ok(()) => {
                TransportStats::count(&self.stats.sent);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                TransportStats::count(&self.stats.dropped);
                Err(SendError::QueueFull(to))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                TransportStats::count(&self.stats.dropped);
                Err(SendError::LinkDown(to))
            }
        }
    }

    fn set_peer(&self, peer: NodeId, _addr: SocketAddr) {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer);
    }

    fn remove_peer(&self, peer: NodeId) {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&peer);
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: u64) -> NodeId {
        NodeId(raw)
    }

    fn any_addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[tokio::test]
    async fn a_message_reaches_a_known_peer_with_the_sender_id() {
        let network = MemoryNetwork::new();
        let (a, _) = network.endpoint(id(1));
        let (_b, mut inbox) = network.endpoint(id(2));
        a.set_peer(id(2), any_addr());
        a.send(id(2), Bytes::from_static(b"hello")).unwrap();
        let message = inbox.recv().await.unwrap();
        assert_eq!(message.from, id(1));
        assert_eq!(message.payload, Bytes::from_static(b"hello"));
    }

    #[tokio::test]
    async fn sends_to_strangers_cut_links_and_crashed_nodes_fail_without_blocking() {
        let network = MemoryNetwork::new();
        let (a, _) = network.endpoint(id(1));
        let (_b, mut inbox) = network.endpoint(id(2));
        assert_eq!(
            a.send(id(2), Bytes::new()),
            Err(SendError::UnknownPeer(id(2)))
        );

        a.set_peer(id(2), any_addr());
        network.cut(id(2), id(1));
        assert_eq!(a.send(id(2), Bytes::new()), Err(SendError::LinkDown(id(2))));
        network.restore(id(1), id(2));
        a.send(id(2), Bytes::from_static(b"back")).unwrap();
        assert_eq!(
            inbox.recv().await.unwrap().payload,
            Bytes::from_static(b"back")
        );

        network.crash(id(2));
        assert_eq!(a.send(id(2), Bytes::new()), Err(SendError::LinkDown(id(2))));
        assert_eq!(TransportStats::get(&a.stats().dropped), 2);
    }
}
