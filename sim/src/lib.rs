//! A deterministic simulated cluster for tests: a seeded in-memory network that runs the real
//! [`overlay::Overlay`] state machines with delays, reordering, loss, crashes, restarts and link cuts
//! ([`network`]), the graphs they run on ([`graphs`]), and the overlay's invariants at quiescence
//! ([`invariants`]).
//!
//! It is a library of its own so several test suites drive the same network: the overlay's simulator
//! checks the control plane alone, and the replication crate's joint simulation runs its rules on the
//! trees this network builds.
//!
//! ```text
//!   network.rs     the event queue, the nodes, faults, and running until stable
//!   graphs.rs      graph generators (path, ring, star, grid, complete, random, the bootstrap's)
//!   invariants.rs  what must hold once the overlay is quiet, one function per invariant
//! ```

pub mod graphs;
pub mod invariants;
pub mod network;
