//! The control plane as a member's opened frames reach it: each line of the input is one frame's
//! payload, decoded by `overlay::decode` and stepped through a live `Overlay` state machine (node 2,
//! neighbours 1, 3 and 4), with the timer ticking between frames. Whatever the bytes say, decoding and
//! every step must return, never panic (nor overflow: fuzz builds check arithmetic).

#![no_main]

use libfuzzer_sys::fuzz_target;
use overlay::{Millis, NodeId, Overlay, Timing};

/// Time between two frames: long enough that retries, heartbeats and timeouts fire along the way.
const STEP: Millis = Millis(60);

fuzz_target!(|data: &[u8]| {
    let mut now = Millis(0);
    let mut node = Overlay::new(
        NodeId(2),
        [NodeId(1), NodeId(3), NodeId(4)],
        Timing::default(),
        now,
    )
    .with_incarnation(1);
    node.on_tick(now);
    for frame in data.split(|byte| *byte == b'\n') {
        now = Millis(now.0 + STEP.0);
        // The transport names the sender the seal authenticated; a member sends under its own id, so
        // the header's source is the likeliest claim. A mismatch must be handled too.
        let from = match overlay::decode(frame) {
            Ok(envelope) => envelope.header.source,
            Err(_) => NodeId(frame.first().copied().unwrap_or(1) as u64 % 5),
        };
        let _ = node.on_bytes(now, from, frame);
        node.on_tick(now);
        // What the runtime reads after every step (status page, routing, roles).
        let _ = (
            node.leader(),
            node.term(),
            node.parent(),
            node.children(),
            node.routes(),
        );
        let _ = (
            node.roles(),
            node.neighbours(),
            node.tick(),
            node.is_ready(),
        );
    }
});
