//! Moving bytes between neighbours, hidden behind one trait so the planes never see the wire.
//!
//! ```text
//!   control / data plane ──send(to, bytes)──▶ Transport ──▶ neighbour's inbound channel
//!                       ◀──Inbound{from, bytes}── (one reader per bound socket)
//! ```
//!
//! Two implementations: [`zmq::ZmqTransport`] (production, ZeroMQ DEALER → ROUTER over TCP) and
//! [`memory::MemoryNetwork`] (in-process, with link cuts, for tests). Both share the contract:
//! `send` never blocks and never waits for the peer; a message to an unreachable peer is dropped and
//! counted. The protocols above retry what matters, so a lost message costs a retry, never a stall.
//!
//! Over ZeroMQ every frame is sealed ([`seal`]): the identity a DEALER announces is only a claim, so
//! the receiver believes the sender id that the cluster key authenticates, and drops ([`rejections`])
//! anything that does not open, unread, as well as the frames of a member that speaks another
//! [`protocol`] version. The in-memory network carries payloads as they are.

pub mod fault;
pub mod incarnation;
pub mod memory;
pub mod protocol;
pub mod queue;
pub mod rejections;
pub mod replay;
pub mod seal;
pub mod zmq;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::config::NodeId;

/// One message received from a neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub from: NodeId,
    pub payload: Bytes,
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("node {0} is not a known peer")]
    UnknownPeer(NodeId),
    #[error("the queue to node {0} is full")]
    QueueFull(NodeId),
    #[error("traffic with node {0} is dropped by the fault switch")]
    FaultInjected(NodeId),
    #[error("the link to node {0} is down")]
    LinkDown(NodeId),
    #[error("the transport is shut down")]
    Closed,
}

/// The connection to every neighbour of one plane.
pub trait Transport: Send + Sync + 'static {
    /// Queues `payload` for `to` without waiting. Delivery is best effort.
    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError>;

    /// Adds a peer, or moves it to a new address (a restarted node may come back elsewhere).
    fn set_peer(&self, peer: NodeId, addr: SocketAddr);

    /// Forgets a peer and closes its link.
    fn remove_peer(&self, peer: NodeId);

    /// Counters of what this transport did, for `/metrics`.
    fn stats(&self) -> &TransportStats;
}

/// Monotonic counters shared by a transport and its link tasks.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub reconnects: AtomicU64,
}

impl TransportStats {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The ZeroMQ identity a node's DEALER sockets carry; the receiving ROUTER learns the sender from it.
pub fn identity_of(id: NodeId) -> String {
    format!("node-{id}")
}

/// The node an identity frame names, if it is one of ours.
pub fn node_of_identity(frame: &[u8]) -> Option<NodeId> {
    let text = std::str::from_utf8(frame).ok()?;
    let digits = text.strip_prefix("node-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    crate::config::parse_node_id(digits.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_foreign_frames_are_refused() {
        let id = NodeId(42);
        assert_eq!(node_of_identity(identity_of(id).as_bytes()), Some(id));
        for bad in [
            &b"node-"[..],
            b"node-0",
            b"node--1",
            b"node-1x",
            b"peer-1",
            b"\xff\xfe",
            b"node-99999999999999999999999",
        ] {
            assert_eq!(node_of_identity(bad), None, "{bad:?}");
        }
    }
}
