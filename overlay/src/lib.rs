//! The control plane of a cluster node as pure, sans-IO state machines: handshake, failure detection,
//! Yo-Yo leader election with pruning, the SHOUT spanning tree with root ticks and healing, next-hop
//! route reports, and role computation. No sockets, no sleeps, no clock, no threads, no global RNG:
//! time and messages come in as values, and what to send plus what happened come out.
//!
//! ```text
//!            runtime (cluster-node: tokio, ZeroMQ, timers, /status)
//!   ─────────────────────────────────────────────────────────────────────────────
//!     bytes + sender id │        │ every 50–100 ms     ▲ Output { messages: Vec<(NodeId, Envelope)>,
//!     (decode / on_bytes)│        │ on_tick(now)        │          events:   Vec<Event> }
//!                        ▼        ▼                     │ accessors: leader, term, parent, children,
//!   ┌────────────────────────── Overlay (node.rs) ──────┴─┐ roles, neighbours, tick, ready, clock, routes
//!   │ Lamport clock · stall compensation · event diffing  │
//!   │   ┌───────────┐ ┌────────────────┐ ┌───────────┐ ┌──────┐   roles(is_root, has_parent,
//!   │   │ handshake │ │failure_detector│ │ election  │ │ tree │──►      children, parent_is_root)
//!   │   │ JOIN/ACK  │ │ last seen/sent │ │ Yo-Yo     │ │SHOUT │
//!   │   │ backoff   │ │ heartbeats     │ │ + pruning │ │ticks │
//!   │   │ REJOIN    │ │ OFF / ON       │ │ nudges    │ │heal  │
//!   │   └───────────┘ └────────────────┘ └───────────┘ └──────┘
//!   └─────────────────────────────────────────────────────┘
//!     pure: (now, from, message) | (now) ─► (messages, events)
//! ```
//!
//! The runtime owns sockets and timers. It calls [`Overlay::on_message`] (or [`Overlay::on_bytes`])
//! for every control-plane message, [`Overlay::on_tick`] periodically, [`Overlay::add_neighbour`] when
//! the bootstrap reports a new neighbour, and [`Overlay::set_election_value`] when its data advances;
//! it sends every returned envelope to the neighbour named beside it (fire and forget: the protocol
//! repairs losses itself) and acts on the events. Time is [`Millis`] since any origin, from a monotonic
//! clock.
//!
//! Robustness in one paragraph: JOIN retries with backoff, and so does a REJOIN on a link that came
//! back until it is answered (the statuses it carries are what reconciles two trees); SHOUT questions, route reports and adoption
//! requests repeat until answered; a stalled election nudges exactly the neighbours it waits for, who
//! re-send what they logged; a neighbour silent for the failure timeout is OFF, which restarts a
//! running election without it and orphans its children, who get adopted or, failing that, declare the
//! leader lost and elect again with a higher term; trees that meet merge into the stronger one; a node
//! that hears fewer live neighbours than its repair target asks for more ([`Event::RepairNeeded`];
//! the rules the bootstrap answers with are the `topology` crate's). The
//! deterministic simulator in `tests/sim` (on the simulated network of the `cluster-sim` crate) runs
//! all of this under delay, reordering, loss, crashes, restarts and partitions and checks the
//! invariants.

mod clock;
mod election;
mod error;
mod failure_detector;
mod handshake;
mod ids;
mod message;
mod node;
mod repair;
mod roles;
mod timing;
mod tree;

pub use clock::{LamportClock, LamportTime};
pub use election::{Election, ElectionBody, ElectionId, ElectionStep, Phase};
pub use error::DecodeError;
pub use failure_detector::FailureDetector;
pub use handshake::{Handshake, HandshakeStep, PeerStatus, TopologyBody};
pub use ids::{ElectionValue, Epoch, Millis, NodeId, Term};
pub use message::{Body, Envelope, Header, MAX_ENVELOPE_BYTES, Scope, decode, encode};
pub use node::{Event, NeighbourInfo, Output, Overlay};
pub use roles::{Role, roles};
pub use timing::{Backoff, Timing};
pub use tree::{Tree, TreeBody, TreeId, TreeStep};
