//! The seal opener, fed what a stranger or a member could put on a plane: genuine frames (any
//! sender, receiver, incarnation and counter, sealed with the cluster's key), arbitrary bytes, genuine
//! frames altered or truncated, and replays. Opening must never panic, nothing but an untouched genuine
//! frame may ever open, it opens to exactly what was sealed, and no sender, incarnation and counter opens twice.

#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use cluster_node::config::{ClusterKey, NodeId};
use cluster_node::transport::incarnation::Incarnation;
use cluster_node::transport::seal::{HEADER_LEN, Opener, Plane, PlaneKey, Sealer};
use libfuzzer_sys::fuzz_target;

/// The receiver; senders are drawn from 0..=4, so some frames claim to come from it.
const ME: NodeId = NodeId(2);

#[derive(Debug, Arbitrary)]
enum Step {
    /// A member seals a frame.
    Genuine {
        sender: u8,
        receiver: u8,
        incarnation: u64,
        counter: u64,
        payload: Vec<u8>,
        /// The ZeroMQ identity it arrives under.
        via: u8,
    },
    /// Bytes that were never sealed.
    Raw { via: u8, frame: Vec<u8> },
    /// An earlier genuine frame with one byte changed, or cut short.
    Altered {
        pick: usize,
        at: usize,
        byte: u8,
        cut: bool,
    },
    /// An earlier genuine frame, sent again.
    Replayed { pick: usize },
}

fn node(choice: u8) -> NodeId {
    NodeId(u64::from(choice % 5))
}

fn key(plane: Plane) -> PlaneKey {
    let cluster_key = ClusterKey::parse("a fixed cluster key for fuzzing, 32+ chars".to_owned())
        .expect("a valid key");
    PlaneKey::derive(&cluster_key, plane)
}

fuzz_target!(|steps: Vec<Step>| {
    let key = key(Plane::Data);
    let mut opener = Opener::new(key.clone(), ME);
    // Every genuine frame: its bytes, the identity it came under and its payload.
    let mut genuine: Vec<(Vec<u8>, NodeId, Vec<u8>)> = Vec::new();
    // The headers (sender, receiver, incarnation, counter) of the frames that opened.
    let mut opened: HashSet<Vec<u8>> = HashSet::new();
    for step in steps {
        let (via, frame) = match step {
            Step::Genuine {
                sender,
                receiver,
                incarnation,
                counter,
                payload,
                via,
            } => {
                let sealer = Sealer::new(key.clone(), node(sender), Incarnation(incarnation))
                    .starting_at(counter);
                let Ok(frame) = sealer.seal(node(receiver), &payload) else {
                    continue;
                };
                // Mostly under the sender's own identity, as a member's frames travel.
                let via = if via < 200 { node(sender) } else { node(via) };
                genuine.push((frame.to_vec(), via, payload));
                (via, frame.to_vec())
            }
            Step::Raw { via, frame } => (node(via), frame),
            Step::Altered {
                pick,
                at,
                byte,
                cut,
            } => {
                let Some((frame, via, _)) = genuine.get(pick % genuine.len().max(1)) else {
                    continue;
                };
                let mut frame = frame.clone();
                let at = at % frame.len().max(1);
                if cut {
                    frame.truncate(at);
                } else if let Some(target) = frame.get_mut(at) {
                    *target ^= byte.max(1);
                }
                (*via, frame)
            }
            Step::Replayed { pick } => {
                let Some((frame, via, _)) = genuine.get(pick % genuine.len().max(1)) else {
                    continue;
                };
                (*via, frame.clone())
            }
        };
        if let Ok(payload) = opener.open(via, &frame) {
            let original = genuine
                .iter()
                .find(|(bytes, _, _)| *bytes == frame)
                .unwrap_or_else(|| panic!("a frame that was never sealed opened: {frame:?}"));
            assert_eq!(
                &payload[..],
                &original.2[..],
                "opened to other bytes than sealed"
            );
            assert!(
                opened.insert(frame[..HEADER_LEN].to_vec()),
                "a frame opened twice"
            );
        }
    }
});
