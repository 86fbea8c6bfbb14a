//! Data terms: which writer wrote an entry, as the log check compares them (term fencing).
//!
//! Every entry carries the data term of the writer that wrote it. A copy that holds, at some epoch, an
//! entry of another term than the writer's log has there took another history and must be discarded
//! from that point (see the node's catch-up). That check is only sound if two writers can never write
//! under the same data term, and if a writer's term is above every term its own log already holds
//! (so its entries win against anything older). A data term is therefore a *round* in the high bits
//! (above the tree's control term and above every round stored) with the writer's node id in the low
//! [`WRITER_BITS`] bits: two writers that pick the same round (elections in two parts of a split choose
//! their terms independently, and control terms start again at 1 after a full restart) still differ in
//! the low bits.
//!
//! Picking a term above what the root can see is not enough on its own (an earlier writer's
//! unacknowledged tail may sit on nodes that are away, under a higher term); the root also claims its
//! term from a majority of the voters before writing, see [`promised_by`] and `acceptance`.
//!
//! Both parts are bounded: node ids above [`MAX_NODE_ID`] are refused where ids enter the node (its
//! config and every message that names one), and the round stops below [`MAX_ROUND`] so a term fits
//! the signed 64-bit integers SQLite stores. A round past it is refused rather than wrapped: wrapping
//! would hand a new writer a term below the ones stored, and the log check would keep old entries.

use std::collections::BTreeSet;

use crate::NodeId;

/// Low bits of a data term that hold the writer's node id.
pub const WRITER_BITS: u32 = 20;

/// The largest node id a cluster may use: it must fit in [`WRITER_BITS`] bits.
pub const MAX_NODE_ID: u64 = (1 << WRITER_BITS) - 1;

/// The largest round: `round << WRITER_BITS | id` stays at or below `i64::MAX`.
pub const MAX_ROUND: u64 = (i64::MAX as u64) >> WRITER_BITS;

/// The data term a root claims before it starts accepting writes: a round above both the tree's
/// (control) term and the round of `seen` (the highest term its log holds or a node of its tree
/// promised), with its id in the low bits. `None` when the writer's id does not fit or the rounds are
/// used up.
pub fn data_term(tree_term: u64, seen: u64, writer: NodeId) -> Option<u64> {
    if writer.0 == 0 || writer.0 > MAX_NODE_ID {
        return None;
    }
    let round = tree_term.max((seen >> WRITER_BITS).checked_add(1)?);
    (round <= MAX_ROUND).then_some((round << WRITER_BITS) | writer.0)
}

/// The node that claimed `term` (its id is in the low bits).
pub fn claimant(term: u64) -> NodeId {
    NodeId(term & MAX_NODE_ID)
}

/// The members that promised the root's `claim`, or `None` when the root must claim (again): it has
/// no claim yet, or a member promised a higher term (to another root, or to an older claim of this
/// one), which the new claim must exceed. `promises` is every member's highest promise, kept on disk.
pub fn promised_by(
    claim: Option<u64>,
    promises: impl IntoIterator<Item = (NodeId, u64)>,
) -> Option<BTreeSet<NodeId>> {
    let claim = claim?;
    let mut promised = BTreeSet::new();
    for (node, promise) in promises {
        if promise > claim {
            return None;
        }
        if promise == claim {
            promised.insert(node);
        }
    }
    Some(promised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_term_is_round_one_with_the_writer_in_the_low_bits() {
        assert_eq!(data_term(1, 0, NodeId(3)), Some((1 << 20) | 3));
        assert_eq!(claimant((1 << 20) | 3), NodeId(3));
        assert_eq!(
            claimant(data_term(9, 0, NodeId(MAX_NODE_ID)).unwrap()),
            NodeId(MAX_NODE_ID)
        );
    }

    #[test]
    fn a_term_grows_past_everything_stored_even_when_the_tree_term_starts_again() {
        let first = data_term(7, 0, NodeId(3)).unwrap();
        assert_eq!(first, (7 << 20) | 3);
        // A full restart: control terms start again at 1, below the stored round 7.
        assert_eq!(data_term(1, first, NodeId(3)), Some((8 << 20) | 3));
        // A plain small term from a database older than data terms is below any data term.
        assert_eq!(data_term(1, 7, NodeId(1)), Some((1 << 20) | 1));
    }

    #[test]
    fn two_writers_in_the_same_round_write_under_different_terms() {
        let stored = (4 << 20) | 9;
        assert_eq!(data_term(5, stored, NodeId(2)), Some((5 << 20) | 2));
        assert_eq!(data_term(5, stored, NodeId(4)), Some((5 << 20) | 4));
    }

    #[test]
    fn ids_that_do_not_fit_and_exhausted_rounds_are_refused_never_wrapped() {
        assert_eq!(data_term(1, 0, NodeId(0)), None);
        assert_eq!(data_term(1, 0, NodeId(MAX_NODE_ID + 1)), None);
        assert_eq!(
            data_term(1, 0, NodeId(MAX_NODE_ID)),
            Some((1 << 20) | MAX_NODE_ID)
        );
        // A forged or corrupt huge tree term, or a stored term at the top: no wrap to a small term.
        assert_eq!(data_term(u64::MAX, 0, NodeId(1)), None);
        assert_eq!(data_term(MAX_ROUND + 1, 0, NodeId(1)), None);
        assert_eq!(data_term(1, u64::MAX, NodeId(1)), None);
        let last = data_term(MAX_ROUND, 0, NodeId(1)).unwrap();
        assert!(i64::try_from(last).is_ok());
        assert_eq!(data_term(1, last, NodeId(1)), None);
    }

    #[test]
    fn a_claim_counts_the_members_that_promised_exactly_it_and_is_renewed_above_a_higher_promise() {
        let promises = |list: &[(u64, u64)]| {
            list.iter()
                .map(|(node, promise)| (NodeId(*node), *promise))
                .collect::<Vec<_>>()
        };
        assert_eq!(promised_by(None, promises(&[(1, 5)])), None);
        assert_eq!(
            promised_by(Some(9), promises(&[(1, 9), (2, 5), (3, 9)])),
            Some([NodeId(1), NodeId(3)].into())
        );
        assert_eq!(promised_by(Some(9), promises(&[(1, 9), (2, 10)])), None);
    }
}
