//! The failure detector: when each neighbour was last heard from (any message counts) and last sent
//! to, which neighbours are alive, and which need a heartbeat because nothing else went to them within
//! the heartbeat interval. Heartbeats also go to neighbours that are OFF, so one that restarts notices
//! us (see the REJOIN rule in [`crate::handshake`]).

use std::collections::BTreeMap;

use crate::ids::{Millis, NodeId};
use crate::timing::Timing;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Liveness {
    last_seen: Option<Millis>,
    last_sent: Option<Millis>,
    alive: bool,
}

/// Liveness of every configured neighbour.
#[derive(Clone, Debug)]
pub struct FailureDetector {
    peers: BTreeMap<NodeId, Liveness>,
    timing: Timing,
}

impl FailureDetector {
    pub fn new(timing: Timing) -> Self {
        FailureDetector {
            peers: BTreeMap::new(),
            timing,
        }
    }

    pub fn add(&mut self, peer: NodeId) {
        self.peers.entry(peer).or_default();
    }

    /// Stops watching `peer` (no more heartbeats to it).
    pub fn remove(&mut self, peer: NodeId) {
        self.peers.remove(&peer);
    }

    /// Any message from `peer`. Returns true if it was not alive before.
    pub fn on_received(&mut self, now: Millis, peer: NodeId) -> bool {
        let Some(liveness) = self.peers.get_mut(&peer) else {
            return false;
        };
        liveness.last_seen = Some(liveness.last_seen.map_or(now, |seen| seen.max(now)));
        let came_up = !liveness.alive;
        liveness.alive = true;
        came_up
    }

    /// Any message to `peer`.
    pub fn on_sent(&mut self, now: Millis, peer: NodeId) {
        if let Some(liveness) = self.peers.get_mut(&peer) {
            liveness.last_sent = Some(now);
        }
    }

    /// Marks OFF every alive neighbour silent for longer than the failure timeout; returns them.
    pub fn expire(&mut self, now: Millis) -> Vec<NodeId> {
        let timeout = self.timing.failure_timeout;
        let mut down = Vec::new();
        for (peer, liveness) in &mut self.peers {
            let silent_too_long = liveness
                .last_seen
                .is_none_or(|seen| now.since(seen) > timeout);
            if liveness.alive && silent_too_long {
                liveness.alive = false;
                down.push(*peer);
            }
        }
        down
    }

    /// Which of `targets` were sent nothing for a heartbeat interval (alive or not).
    pub fn heartbeats_due(
        &self,
        now: Millis,
        targets: impl IntoIterator<Item = NodeId>,
    ) -> Vec<NodeId> {
        targets
            .into_iter()
            .filter(|peer| {
                self.peers.get(peer).is_some_and(|liveness| {
                    liveness
                        .last_sent
                        .is_none_or(|sent| now.since(sent) >= self.timing.heartbeat_interval)
                })
            })
            .collect()
    }

    pub fn is_alive(&self, peer: NodeId) -> bool {
        self.peers.get(&peer).is_some_and(|liveness| liveness.alive)
    }

    pub fn last_seen(&self, peer: NodeId) -> Option<Millis> {
        self.peers
            .get(&peer)
            .and_then(|liveness| liveness.last_seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);

    fn detector() -> FailureDetector {
        let mut detector = FailureDetector::new(Timing::default());
        detector.add(B);
        detector.add(C);
        detector
    }

    #[test]
    fn a_neighbour_is_alive_once_heard_and_off_after_the_failure_timeout() {
        let mut d = detector();
        assert!(!d.is_alive(B));
        assert!(d.on_received(Millis(100), B));
        assert!(!d.on_received(Millis(150), B), "already alive");
        assert_eq!(
            d.expire(Millis(850)),
            Vec::<NodeId>::new(),
            "exactly 700 ms is not yet too long"
        );
        assert_eq!(d.expire(Millis(851)), vec![B]);
        assert!(!d.is_alive(B));
        assert_eq!(
            d.expire(Millis(5000)),
            Vec::<NodeId>::new(),
            "reported once"
        );
        assert!(d.on_received(Millis(5001), B), "back ON");
    }

    #[test]
    fn heartbeats_go_only_where_nothing_was_sent_for_an_interval() {
        let mut d = detector();
        assert_eq!(d.heartbeats_due(Millis(0), [B, C]), vec![B, C]);
        d.on_sent(Millis(0), B);
        d.on_sent(Millis(50), C);
        assert_eq!(d.heartbeats_due(Millis(99), [B, C]), Vec::<NodeId>::new());
        assert_eq!(d.heartbeats_due(Millis(100), [B, C]), vec![B]);
        assert_eq!(d.heartbeats_due(Millis(150), [B, C]), vec![B, C]);
    }

    #[test]
    fn heartbeats_keep_going_to_neighbours_that_are_off() {
        let mut d = detector();
        d.on_received(Millis(0), B);
        d.expire(Millis(1000));
        assert!(!d.is_alive(B));
        assert_eq!(d.heartbeats_due(Millis(1000), [B]), vec![B]);
    }

    #[test]
    fn unknown_peers_are_ignored() {
        let mut d = detector();
        assert!(!d.on_received(Millis(0), NodeId(9)));
        assert!(!d.is_alive(NodeId(9)));
        assert_eq!(
            d.heartbeats_due(Millis(0), [NodeId(9)]),
            Vec::<NodeId>::new()
        );
    }
}
