//! The three-way handshake that makes a configured neighbour a *joined* one: `JOIN → JOIN-ACK → ACK`.
//!
//! ```text
//!  S (initiator)                R (responder)
//!    ── JOIN{inc, status} ───────►   answers every JOIN; waits for ACK
//!    ◄── JOIN-ACK{inc, status} ──
//!    joined
//!    ── ACK{inc, status} ────────►   joined (any other message from S counts as the ACK too)
//! ```
//!
//! - JOIN is retried with exponential backoff until a JOIN-ACK arrives (or the peer's own handshake
//!   completes ours); both sides run their own JOIN, so simultaneous starts converge.
//! - Every handshake message carries the sender's *incarnation* (a number the runtime picks per
//!   process start) and its [`PeerStatus`]: a smaller incarnation than known is a stale duplicate and
//!   dropped; a larger one means the peer restarted and forgot us. The status is how a rejoining node is
//!   told the current leader instead of starting an election.
//! - REJOIN: messages keep arriving from a neighbour we are not joined with (it still thinks we are
//!   joined, because we restarted and forgot): after `stranger_threshold` of them we send a JOIN
//!   flagged `rejoin` at once instead of waiting for the backoff.
//!
//! Pure: returns the messages to send; the node decides what joining means for the other components.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::election::ElectionId;
use crate::ids::{Millis, NodeId};
use crate::timing::{Backoff, Timing};
use crate::tree::TreeId;

/// What a node tells a neighbour about itself during a handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The tree it belongs to (term and leader), if any.
    pub tree: Option<TreeId>,
    /// Its parent in that tree.
    pub parent: Option<NodeId>,
    /// Whether it is connected to the root (it is the root, or has a parent) rather than orphaned.
    pub attached: bool,
    /// The election it is running, if any.
    pub election: Option<ElectionId>,
}

/// Handshake messages (scope `topology`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TopologyBody {
    Join {
        /// Sent because we heard a stranger (or a neighbour came back), not as a first contact.
        rejoin: bool,
        incarnation: u64,
        status: PeerStatus,
    },
    JoinAck {
        incarnation: u64,
        status: PeerStatus,
    },
    Ack {
        incarnation: u64,
        status: PeerStatus,
    },
}

impl TopologyBody {
    pub fn incarnation(&self) -> u64 {
        match self {
            TopologyBody::Join { incarnation, .. }
            | TopologyBody::JoinAck { incarnation, .. }
            | TopologyBody::Ack { incarnation, .. } => *incarnation,
        }
    }

    pub fn status(&self) -> &PeerStatus {
        match self {
            TopologyBody::Join { status, .. }
            | TopologyBody::JoinAck { status, .. }
            | TopologyBody::Ack { status, .. } => status,
        }
    }
}

#[derive(Clone, Debug)]
struct Link {
    joined: bool,
    /// We answered the peer's JOIN and wait for its ACK.
    answered_join: bool,
    next_join_at: Millis,
    backoff: Backoff,
    stranger_messages: u32,
    peer_incarnation: Option<u64>,
    /// We sent a JOIN flagged `rejoin` on a joined link and wait for its JOIN-ACK. It is repeated
    /// with the backoff until answered: a lost one would leave the statuses unexchanged, and two
    /// trees that met over this link would never reconcile.
    rejoin_pending: bool,
}

/// What one received handshake message did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeStep {
    pub replies: Vec<(NodeId, TopologyBody)>,
    /// The link just became joined.
    pub became_joined: bool,
    /// The peer's incarnation grew: it restarted and lost its state.
    pub peer_restarted: bool,
    /// A duplicate from an older incarnation: ignore the message entirely.
    pub stale: bool,
}

/// Handshake state for every configured neighbour.
#[derive(Clone, Debug)]
pub struct Handshake {
    links: BTreeMap<NodeId, Link>,
    timing: Timing,
}

impl Handshake {
    pub fn new(timing: Timing) -> Self {
        Handshake {
            links: BTreeMap::new(),
            timing,
        }
    }

    /// Adds a configured neighbour; the first JOIN is due at `now`. Returns false if already known.
    pub fn add(&mut self, now: Millis, peer: NodeId) -> bool {
        if self.links.contains_key(&peer) {
            return false;
        }
        self.links.insert(
            peer,
            Link {
                joined: false,
                answered_join: false,
                next_join_at: now,
                backoff: Backoff::new(self.timing.backoff_base, self.timing.backoff_cap),
                stranger_messages: 0,
                peer_incarnation: None,
                rejoin_pending: false,
            },
        );
        true
    }

    /// Forgets a neighbour for good; false if it was not configured.
    pub fn remove(&mut self, peer: NodeId) -> bool {
        self.links.remove(&peer).is_some()
    }

    pub fn knows(&self, peer: NodeId) -> bool {
        self.links.contains_key(&peer)
    }

    pub fn is_joined(&self, peer: NodeId) -> bool {
        self.links.get(&peer).is_some_and(|link| link.joined)
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Every configured neighbour.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.links.keys().copied()
    }

    /// Neighbours whose handshake has completed.
    pub fn joined_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.links
            .iter()
            .filter(|(_, link)| link.joined)
            .map(|(peer, _)| *peer)
    }

    /// Whether `incarnation` is newer than what we know of `peer` (it restarted).
    pub fn is_newer_incarnation(&self, peer: NodeId, incarnation: u64) -> bool {
        self.links
            .get(&peer)
            .and_then(|link| link.peer_incarnation)
            .is_some_and(|known| incarnation > known)
    }

    /// JOINs whose backoff has expired: for links not joined yet, and unanswered rejoins.
    pub fn due_joins(
        &mut self,
        now: Millis,
        incarnation: u64,
        status: &PeerStatus,
    ) -> Vec<(NodeId, TopologyBody)> {
        let mut out = Vec::new();
        for (peer, link) in &mut self.links {
            if (!link.joined || link.rejoin_pending) && link.next_join_at <= now {
                link.next_join_at = now + link.backoff.next_delay();
                out.push((
                    *peer,
                    TopologyBody::Join {
                        rejoin: link.joined && link.rejoin_pending,
                        incarnation,
                        status: status.clone(),
                    },
                ));
            }
        }
        out
    }

    /// A JOIN flagged `rejoin`, sent at once (a neighbour came back, or a stranger keeps talking).
    pub fn rejoin(
        &mut self,
        now: Millis,
        peer: NodeId,
        incarnation: u64,
        status: &PeerStatus,
    ) -> Option<(NodeId, TopologyBody)> {
        let link = self.links.get_mut(&peer)?;
        link.backoff.reset();
        link.next_join_at = now + link.backoff.next_delay();
        link.rejoin_pending = link.joined;
        Some((
            peer,
            TopologyBody::Join {
                rejoin: true,
                incarnation,
                status: status.clone(),
            },
        ))
    }

    /// A handshake message from `from`.
    pub fn on_message(
        &mut self,
        from: NodeId,
        body: &TopologyBody,
        incarnation: u64,
        status: &PeerStatus,
    ) -> HandshakeStep {
        let mut step = HandshakeStep::default();
        let Some(link) = self.links.get_mut(&from) else {
            return step;
        };
        let theirs = body.incarnation();
        match link.peer_incarnation {
            Some(known) if theirs < known => {
                step.stale = true;
                return step;
            }
            Some(known) if theirs > known => step.peer_restarted = true,
            _ => {}
        }
        link.peer_incarnation = Some(theirs);
        let was_joined = link.joined;
        match body {
            TopologyBody::Join { .. } => {
                // Always answered, even when joined: the peer may have restarted or be re-checking.
                if !link.joined {
                    link.answered_join = true;
                }
                step.replies.push((
                    from,
                    TopologyBody::JoinAck {
                        incarnation,
                        status: status.clone(),
                    },
                ));
            }
            TopologyBody::JoinAck { .. } => {
                link.joined = true;
                link.rejoin_pending = false;
                step.replies.push((
                    from,
                    TopologyBody::Ack {
                        incarnation,
                        status: status.clone(),
                    },
                ));
            }
            TopologyBody::Ack { .. } => link.joined = true,
        }
        if link.joined {
            link.stranger_messages = 0;
        }
        step.became_joined = link.joined && !was_joined;
        step
    }

    /// Any non-handshake message from `from`: an implicit ACK if we answered its JOIN (it only sends
    /// other traffic once joined), otherwise evidence of a stranger that may need a REJOIN.
    pub fn on_other_traffic(
        &mut self,
        now: Millis,
        from: NodeId,
        incarnation: u64,
        status: &PeerStatus,
    ) -> HandshakeStep {
        let mut step = HandshakeStep::default();
        let threshold = self.timing.stranger_threshold.max(1);
        let Some(link) = self.links.get_mut(&from) else {
            return step;
        };
        if link.joined {
            return step;
        }
        if link.answered_join {
            link.joined = true;
            step.became_joined = true;
            return step;
        }
        link.stranger_messages += 1;
        if link.stranger_messages >= threshold {
            link.stranger_messages = 0;
            step.replies
                .extend(self.rejoin(now, from, incarnation, status));
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn handshake_with(peer: NodeId) -> Handshake {
        let mut handshake = Handshake::new(Timing::default());
        handshake.add(Millis(0), peer);
        handshake
    }

    fn join(rejoin: bool, incarnation: u64) -> TopologyBody {
        TopologyBody::Join {
            rejoin,
            incarnation,
            status: PeerStatus::default(),
        }
    }

    fn join_ack(incarnation: u64) -> TopologyBody {
        TopologyBody::JoinAck {
            incarnation,
            status: PeerStatus::default(),
        }
    }

    fn ack(incarnation: u64) -> TopologyBody {
        TopologyBody::Ack {
            incarnation,
            status: PeerStatus::default(),
        }
    }

    #[test]
    fn the_initiator_joins_on_join_ack_and_answers_with_ack() {
        let mut a = handshake_with(B);
        assert_eq!(
            a.due_joins(Millis(0), 10, &PeerStatus::default()),
            vec![(B, join(false, 10))]
        );
        let step = a.on_message(B, &join_ack(20), 10, &PeerStatus::default());
        assert_eq!(
            step,
            HandshakeStep {
                replies: vec![(B, ack(10))],
                became_joined: true,
                peer_restarted: false,
                stale: false,
            }
        );
        assert!(a.is_joined(B));
    }

    #[test]
    fn the_responder_answers_join_and_joins_on_ack() {
        let mut b = handshake_with(A);
        let step = b.on_message(A, &join(false, 10), 20, &PeerStatus::default());
        assert_eq!(step.replies, vec![(A, join_ack(20))]);
        assert!(!step.became_joined);
        assert!(!b.is_joined(A));
        let step = b.on_message(A, &ack(10), 20, &PeerStatus::default());
        assert!(step.became_joined);
        assert!(step.replies.is_empty());
        assert!(b.is_joined(A));
    }

    #[test]
    fn other_traffic_after_our_join_ack_counts_as_the_ack() {
        let mut b = handshake_with(A);
        b.on_message(A, &join(false, 10), 20, &PeerStatus::default());
        let step = b.on_other_traffic(Millis(5), A, 20, &PeerStatus::default());
        assert!(step.became_joined);
        assert!(b.is_joined(A));
    }

    #[test]
    fn join_is_retried_with_the_backoff_sequence_until_answered() {
        let mut a = handshake_with(B);
        let mut sent_at = Vec::new();
        for now in 0..2000 {
            if !a
                .due_joins(Millis(now), 1, &PeerStatus::default())
                .is_empty()
            {
                sent_at.push(now);
            }
        }
        assert_eq!(sent_at, vec![0, 50, 150, 350, 750, 1550]);
        a.on_message(B, &join_ack(2), 1, &PeerStatus::default());
        assert!(
            a.due_joins(Millis(100_000), 1, &PeerStatus::default())
                .is_empty()
        );
    }

    #[test]
    fn a_rejoin_on_a_joined_link_is_repeated_with_the_backoff_until_its_join_ack() {
        let mut a = handshake_with(B);
        a.due_joins(Millis(0), 1, &PeerStatus::default());
        a.on_message(B, &join_ack(2), 1, &PeerStatus::default());
        assert!(a.is_joined(B));
        // The link came back after B was OFF: a rejoin goes out, and is lost.
        let rejoin = a.rejoin(Millis(1000), B, 1, &PeerStatus::default());
        assert_eq!(rejoin, Some((B, join(true, 1))));
        let mut sent_at = Vec::new();
        for now in 1000..2000 {
            for (to, body) in a.due_joins(Millis(now), 1, &PeerStatus::default()) {
                assert_eq!((to, body), (B, join(true, 1)));
                sent_at.push(now);
            }
        }
        assert_eq!(sent_at, vec![1050, 1150, 1350, 1750]);
        // Its JOIN-ACK ends the repeats.
        a.on_message(B, &join_ack(2), 1, &PeerStatus::default());
        assert!(
            a.due_joins(Millis(100_000), 1, &PeerStatus::default())
                .is_empty()
        );
    }

    #[test]
    fn repeated_messages_from_a_stranger_trigger_an_immediate_rejoin() {
        let mut a = handshake_with(B);
        a.due_joins(Millis(0), 1, &PeerStatus::default());
        let first = a.on_other_traffic(Millis(10), B, 1, &PeerStatus::default());
        assert!(first.replies.is_empty());
        let second = a.on_other_traffic(Millis(20), B, 1, &PeerStatus::default());
        assert_eq!(second.replies, vec![(B, join(true, 1))]);
        // The rejoin restarts the backoff from its first step.
        assert!(
            a.due_joins(Millis(69), 1, &PeerStatus::default())
                .is_empty()
        );
        assert_eq!(a.due_joins(Millis(70), 1, &PeerStatus::default()).len(), 1);
    }

    #[test]
    fn a_larger_incarnation_reports_a_restart_and_a_smaller_one_is_stale() {
        let mut a = handshake_with(B);
        a.on_message(B, &join_ack(5), 1, &PeerStatus::default());
        let restarted = a.on_message(B, &join(true, 6), 1, &PeerStatus::default());
        assert!(restarted.peer_restarted);
        assert_eq!(restarted.replies, vec![(B, join_ack(1))]);
        assert!(
            a.is_joined(B),
            "a restarted peer stays joined while it re-handshakes"
        );
        let stale = a.on_message(B, &join(false, 5), 1, &PeerStatus::default());
        assert!(stale.stale);
        assert!(stale.replies.is_empty());
    }

    #[test]
    fn messages_from_unknown_peers_do_nothing() {
        let mut a = handshake_with(B);
        let step = a.on_message(NodeId(9), &join(false, 1), 1, &PeerStatus::default());
        assert_eq!(step, HandshakeStep::default());
        assert!(!a.knows(NodeId(9)));
    }
}
