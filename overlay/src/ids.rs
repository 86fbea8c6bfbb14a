//! Newtypes for the identities, counters and instants that the control plane passes around, so that a
//! term can never be mistaken for an epoch or a node id for a tick counter.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Add;

use serde::{Deserialize, Serialize};

/// A node's identity, unique in the cluster (the bootstrap hands them out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A leadership term: every election runs under a term higher than any the initiator has seen, and the
/// tree it builds carries that term.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Term(pub u64);

impl Term {
    pub const ZERO: Term = Term(0);

    /// The next term; saturates rather than wrapping, because a term read from the network may be huge.
    pub fn next(self) -> Term {
        Term(self.0.saturating_add(1))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A data epoch: how far a node's applied data has progressed (supplied by storage).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

/// Milliseconds on the runtime's monotonic clock, counted from an arbitrary origin. The library never
/// reads a clock: the runtime passes `Millis` in. The same type measures spans (timeouts, intervals).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub const ZERO: Millis = Millis(0);

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add for Millis {
    type Output = Millis;

    fn add(self, other: Millis) -> Millis {
        Millis(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// What an election compares: the candidate with the most recent applied data wins — higher
/// `(data_term, epoch)` — and among equals the smaller node id. Until storage exists every node reports
/// term 0 / epoch 0, so the smallest id wins.
///
/// `Ord` says "greater is stronger": `max()` of a set of values is the winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ElectionValue {
    pub data_term: Term,
    pub epoch: Epoch,
    pub node: NodeId,
}

impl ElectionValue {
    /// The value of a node that has no data yet.
    pub fn new(node: NodeId) -> Self {
        ElectionValue {
            data_term: Term::ZERO,
            epoch: Epoch(0),
            node,
        }
    }
}

impl Ord for ElectionValue {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.data_term, self.epoch)
            .cmp(&(other.data_term, other.epoch))
            // Reversed on purpose: the smaller id is the stronger candidate.
            .then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for ElectionValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(term: u64, epoch: u64, node: u64) -> ElectionValue {
        ElectionValue {
            data_term: Term(term),
            epoch: Epoch(epoch),
            node: NodeId(node),
        }
    }

    #[test]
    fn without_data_the_smaller_id_is_the_stronger_candidate() {
        assert!(value(0, 0, 1) > value(0, 0, 2));
        assert_eq!(
            [value(0, 0, 7), value(0, 0, 3), value(0, 0, 9)]
                .into_iter()
                .max(),
            Some(value(0, 0, 3))
        );
    }

    #[test]
    fn more_recent_data_beats_a_smaller_id() {
        assert!(value(0, 5, 9) > value(0, 4, 1));
        assert!(value(2, 0, 9) > value(1, 99, 1));
    }

    #[test]
    fn millis_arithmetic_saturates() {
        assert_eq!(Millis(5).since(Millis(9)), Millis(0));
        assert_eq!(Millis(9).since(Millis(5)), Millis(4));
        assert_eq!(Millis(u64::MAX) + Millis(1), Millis(u64::MAX));
        assert_eq!(Term(u64::MAX).next(), Term(u64::MAX));
    }
}
