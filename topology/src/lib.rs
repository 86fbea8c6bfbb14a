//! The neighbour graph of the cluster and the rules that shape it (DESIGN §7), as plain values.
//!
//! ```text
//!   graph.rs     the graph the bootstrap keeps: registration order, symmetric edges, degrees
//!   assign.rs    a new node's neighbours: k existing nodes of the smallest degree (k-connected)
//!   repair.rs    a node left with fewer than k live neighbours: which live nodes it links to now;
//!                a split the bootstrap sees among live nodes: one edge per part joins it
//!   fallback.rs  the same without the bootstrap: a neighbour's neighbours
//!   connectivity.rs  components and a brute-force vertex-connectivity check (tests, simulator)
//! ```
//!
//! The bootstrap applies `assign` and `repair` to its registry and persists the result; the
//! simulator applies the very same functions to its model of the bootstrap; a node applies
//! `fallback` to the last neighbour lists it fetched while the bootstrap cannot be reached.

mod assign;
mod connectivity;
mod fallback;
mod graph;
mod repair;

pub use assign::link_new_node;
pub use connectivity::{components, is_k_connected};
pub use fallback::fallback_candidates;
pub use graph::{Graph, GraphError};
pub use repair::{RepairLimits, merge_split, repair};

/// How many neighbours a new node gets, and how many live ones a node keeps (DESIGN §7).
pub const DEFAULT_K: usize = 3;
/// The largest `k` accepted: every node heartbeats every neighbour, so degrees stay small.
pub const MAX_K: usize = 8;
