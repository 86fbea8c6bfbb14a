//! The data plane's replication rules as plain values and functions (DESIGN §4 "A pure core").
//!
//! ```text
//!   configuration.rs  which nodes vote: the newest configuration entry in a node's log
//!   quorum.rs         which epochs a majority of the voters holds durably (the write is acknowledged)
//!   acceptance.rs     whether the root of a tree may accept writes
//!   copy.rs           a copy's side as a state machine: what it applies, acknowledges, asks for
//!   root.rs           the root's claim and acceptance as a state machine (commands out, results in)
//!   membership.rs     the writer's next configuration change (one voter at a time)
//!   term.rs           the data term a writer writes under (term fencing)
//!   catch_up.rs       the log check: a copy catching up gets the next entries or starts again
//!   routing.rs        where a request goes: answered here, sent to the parent, or refused
//!   summary.rs        what a subtree reports to the root (counts, newest data, whole copies)
//! ```
//!
//! Nothing here does IO, reads a clock or spawns: the node's data plane feeds in what it observed
//! (acknowledgements, the tree, how long a voter has been away) and acts on the answers, and the tests
//! run the same functions over many generated situations.
//!
//! Two deterministic simulations check them under faults, with the same model of logs, writers and
//! invariants (`tests/model/`): `tests/simulation.rs` forms the trees itself, instantly, and
//! `tests/joint.rs` runs the real `overlay` state machines on the simulated network of the
//! `cluster-sim` crate and takes the trees they build, their terms and their elections.

pub mod acceptance;
pub mod catch_up;
pub mod configuration;
pub mod copy;
pub mod membership;
pub mod quorum;
pub mod root;
pub mod routing;
pub mod summary;
pub mod term;

pub use acceptance::{Acceptance, TreeReport, may_accept};
pub use configuration::{Configuration, MAX_REPLICATION_FACTOR, ReplicationFactor};
pub use membership::{Change, MembershipView, next_change, removal_refused};
pub use overlay::NodeId;
pub use quorum::Acks;
pub use root::Root;
pub use routing::{Route, route};
pub use summary::{Below, Summary};
pub use term::{MAX_NODE_ID, data_term, promised_by};
