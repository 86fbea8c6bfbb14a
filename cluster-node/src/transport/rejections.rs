//! What a plane's reader does with a frame it refused: count every one, log few.
//!
//! Every refusal increments `chat_node_frames_rejected_total{plane,reason}`. A log line is written at
//! most once per claimed peer per [`LOG_INTERVAL`], saying how many more were refused since the last
//! line, so a stranger flooding a port cannot flood the logs.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

use super::seal::{Plane, Rejection};
use crate::config::NodeId;
use crate::metrics::FrameRejectedLabel;

/// The shortest time between two log lines about one peer.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Peers remembered for rate limiting; identities are chosen by the sender, so this is bounded and
/// forgotten wholesale when full (at worst one extra line per peer).
const TRACKED_PEERS: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct LastLine {
    at: Instant,
    suppressed: u64,
}

/// One plane's refusals, owned by that plane's reader.
#[derive(Debug)]
pub struct Rejections {
    plane: Plane,
    counter: Family<FrameRejectedLabel, Counter>,
    /// Keyed by the node the ZeroMQ identity named; `None` for identities that name none.
    last_lines: HashMap<Option<NodeId>, LastLine>,
}

impl Rejections {
    pub fn new(plane: Plane, counter: Family<FrameRejectedLabel, Counter>) -> Self {
        Self {
            plane,
            counter,
            last_lines: HashMap::new(),
        }
    }

    /// Counts a refused frame from `peer` and logs it unless that peer was logged recently.
    pub fn record(&mut self, peer: Option<NodeId>, reason: Rejection, now: Instant) {
        self.counter
            .get_or_create(&FrameRejectedLabel {
                plane: self.plane.label(),
                reason: reason.label(),
            })
            .inc();
        if let Some(suppressed) = self.should_log(peer, now) {
            let line = line(self.plane, peer, reason, suppressed);
            let peer = peer.map_or_else(|| "an unknown identity".to_owned(), |id| id.to_string());
            tracing::warn!(
                plane = self.plane.label(),
                %peer,
                reason = reason.label(),
                suppressed,
                "{line}"
            );
        }
    }

    /// `Some(frames refused without a line since the last one)` when this refusal gets a line.
    fn should_log(&mut self, peer: Option<NodeId>, now: Instant) -> Option<u64> {
        if self.last_lines.len() >= TRACKED_PEERS && !self.last_lines.contains_key(&peer) {
            self.last_lines.clear();
        }
        match self.last_lines.get_mut(&peer) {
            Some(last) if now.duration_since(last.at) < LOG_INTERVAL => {
                last.suppressed += 1;
                None
            }
            Some(last) => {
                let suppressed = last.suppressed;
                *last = LastLine {
                    at: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                self.last_lines.insert(
                    peer,
                    LastLine {
                        at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// The log line about refusals from `peer`. A version mismatch says what to do about it: both ends
/// write such a line, since each refuses the other's frames.
fn line(plane: Plane, peer: Option<NodeId>, reason: Rejection, suppressed: u64) -> String {
    let held_back = format!("{suppressed} more refused from it since the last line");
    match (reason, peer) {
        (Rejection::Version { theirs, ours }, Some(peer)) => format!(
            "refused node {peer}: it speaks {plane} protocol {theirs}, this node speaks {ours}; \
             upgrade one of them ({held_back})",
            plane = plane.label()
        ),
        _ => {
            let peer = peer.map_or_else(|| "an unknown identity".to_owned(), |id| id.to_string());
            format!("refused a frame from {peer}: {reason} ({held_back})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::protocol::ProtocolVersion;

    fn rejections() -> (Rejections, Family<FrameRejectedLabel, Counter>) {
        let counter = Family::default();
        (Rejections::new(Plane::Control, counter.clone()), counter)
    }

    fn count(counter: &Family<FrameRejectedLabel, Counter>, reason: &'static str) -> u64 {
        counter
            .get_or_create(&FrameRejectedLabel {
                plane: "control",
                reason,
            })
            .get()
    }

    #[test]
    fn every_refusal_is_counted_by_reason() {
        let (mut rejections, counter) = rejections();
        let now = Instant::now();
        for _ in 0..3 {
            rejections.record(Some(NodeId(2)), Rejection::Seal, now);
        }
        rejections.record(None, Rejection::Identity, now);
        assert_eq!(count(&counter, "seal"), 3);
        assert_eq!(count(&counter, "identity"), 1);
        assert_eq!(count(&counter, "replay"), 0);
    }

    #[test]
    fn a_peer_gets_one_line_per_interval_with_the_count_it_held_back() {
        let (mut rejections, _) = rejections();
        let start = Instant::now();
        let peer = Some(NodeId(2));
        assert_eq!(rejections.should_log(peer, start), Some(0));
        for _ in 0..5 {
            assert_eq!(rejections.should_log(peer, start + LOG_INTERVAL / 2), None);
        }
        // Another peer is not held back by the first one.
        assert_eq!(rejections.should_log(Some(NodeId(3)), start), Some(0));
        assert_eq!(rejections.should_log(None, start), Some(0));
        assert_eq!(rejections.should_log(peer, start + LOG_INTERVAL), Some(5));
        assert_eq!(rejections.should_log(peer, start + LOG_INTERVAL), None);
    }

    #[test]
    fn a_peer_of_another_protocol_version_gets_a_line_naming_both_versions() {
        let reason = Rejection::Version {
            theirs: ProtocolVersion(2),
            ours: ProtocolVersion(1),
        };
        assert_eq!(
            line(Plane::Control, Some(NodeId(3)), reason, 0),
            "refused node 3: it speaks control protocol 2, this node speaks 1; upgrade one of them \
             (0 more refused from it since the last line)"
        );
        assert_eq!(
            line(Plane::Data, None, Rejection::Seal, 4),
            "refused a frame from an unknown identity: the seal does not open (wrong key or \
             altered) (4 more refused from it since the last line)"
        );
    }

    #[test]
    fn a_version_refusal_is_counted_under_its_own_reason() {
        let (mut rejections, counter) = rejections();
        let reason = Rejection::Version {
            theirs: ProtocolVersion(2),
            ours: ProtocolVersion(1),
        };
        rejections.record(Some(NodeId(3)), reason, Instant::now());
        assert_eq!(count(&counter, "version"), 1);
    }

    #[test]
    fn claimed_identities_cannot_grow_the_memory_without_bound() {
        let (mut rejections, _) = rejections();
        let now = Instant::now();
        for id in 1..=(3 * TRACKED_PEERS as u64) {
            rejections.should_log(Some(NodeId(id)), now);
        }
        assert!(rejections.last_lines.len() <= TRACKED_PEERS);
    }
}
