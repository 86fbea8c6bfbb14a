//! What a subtree tells the root (DESIGN §4 "One writer"): every node reports to its parent how many
//! nodes its subtree has reported for, the newest data position among them and which of them hold a
//! whole copy. The root compares the count with its routing table (has every node reported?), the
//! position with its own (does a node hold newer data?) and passes the whole copies to
//! [`crate::may_accept`].
//!
//! The numbers come from peers, so they are combined without trusting them: counts saturate rather
//! than overflow, and a child's report counts only while the child is a child (the caller keeps the
//! reports of its current children only).

use std::collections::{BTreeMap, BTreeSet};

use crate::NodeId;
use overlay::{Epoch, Term};

/// A subtree's report to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Nodes of the subtree that reported, its root included.
    pub nodes: usize,
    /// The newest `(term, epoch)` held in the subtree.
    pub best: (Term, Epoch),
    /// The nodes of the subtree whose copy is whole.
    pub whole: BTreeSet<NodeId>,
    /// The highest data term each copy of the subtree promised (see `term::promised_by`).
    pub promises: BTreeMap<NodeId, Term>,
}

/// What a node knows of the subtrees below it, and of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Below {
    /// Nodes below this one that reported (this node not included).
    pub reported: usize,
    /// The newest position reported from below, if any.
    pub best: Option<(Term, Epoch)>,
    /// Whole copies below, and this node when its own copy is whole.
    pub whole: BTreeSet<NodeId>,
    /// Promises below, and this node's own when it keeps a copy.
    pub promises: BTreeMap<NodeId, Term>,
}

impl Below {
    /// Combines the reports of this node's children (`None` for a child that has not reported yet).
    pub fn gather<'a>(
        me: NodeId,
        my_copy_whole: bool,
        my_promise: Option<Term>,
        children: impl IntoIterator<Item = Option<&'a Summary>>,
    ) -> Self {
        let mut below = Below::default();
        for summary in children.into_iter().flatten() {
            below.reported = below.reported.saturating_add(summary.nodes);
            below.best = below.best.max(Some(summary.best));
            below.whole.extend(summary.whole.iter().copied());
            below
                .promises
                .extend(summary.promises.iter().map(|(node, term)| (*node, *term)));
        }
        if my_copy_whole {
            below.whole.insert(me);
        }
        if let Some(promise) = my_promise {
            below.promises.insert(me, promise);
        }
        below
    }

    /// The highest promise in the subtree (zero when none).
    pub fn highest_promise(&self) -> Term {
        self.promises.values().copied().max().unwrap_or(Term(0))
    }

    /// This node's report to its parent, holding `own` itself.
    pub fn summary(&self, own: (Term, Epoch)) -> Summary {
        Summary {
            nodes: self.reported.saturating_add(1),
            best: self.best.map_or(own, |best| best.max(own)),
            whole: self.whole.clone(),
            promises: self.promises.clone(),
        }
    }

    /// Whether every node below has reported: `descendants` is how many the routing table counts.
    pub fn all_reported(&self, descendants: usize) -> bool {
        self.reported == descendants
    }

    /// The newest position below, when it is newer than `own`: the root must not accept writes, and
    /// should hand over to the node that holds it.
    pub fn newer_than(&self, own: (Term, Epoch)) -> Option<(Term, Epoch)> {
        self.best.filter(|best| *best > own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(nodes: usize, term: u64, epoch: u64, whole: &[u64]) -> Summary {
        Summary {
            nodes,
            best: (Term(term), Epoch(epoch)),
            whole: whole.iter().copied().map(NodeId).collect(),
            promises: BTreeMap::new(),
        }
    }

    fn ids(list: &[u64]) -> BTreeSet<NodeId> {
        list.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_leaf_reports_itself() {
        let below = Below::gather(NodeId(4), true, None, []);
        assert_eq!(
            below,
            Below {
                reported: 0,
                best: None,
                whole: ids(&[4]),
                promises: BTreeMap::new(),
            }
        );
        assert_eq!(below.summary((Term(2), Epoch(9))), summary(1, 2, 9, &[4]));
        assert!(below.all_reported(0));
    }

    #[test]
    fn children_add_up_and_the_newest_position_wins_by_term_then_epoch() {
        let a = summary(3, 2, 40, &[5, 6]);
        let b = summary(2, 3, 10, &[7]);
        let below = Below::gather(NodeId(4), false, None, [Some(&a), None, Some(&b)]);
        assert_eq!(below.reported, 5);
        assert_eq!(below.best, Some((Term(3), Epoch(10))));
        assert_eq!(below.whole, ids(&[5, 6, 7]));
        assert!(!below.all_reported(6), "one child has not reported");
        assert!(below.all_reported(5));
        assert_eq!(
            below.summary((Term(2), Epoch(50))),
            summary(6, 3, 10, &[5, 6, 7])
        );
        assert_eq!(
            below.newer_than((Term(2), Epoch(50))),
            Some((Term(3), Epoch(10)))
        );
        assert_eq!(below.newer_than((Term(3), Epoch(10))), None);
        assert_eq!(below.summary((Term(4), Epoch(1))).best, (Term(4), Epoch(1)));
    }

    #[test]
    fn counts_from_peers_saturate_instead_of_overflowing() {
        let huge = summary(usize::MAX, 1, 1, &[]);
        let below = Below::gather(NodeId(1), true, None, [Some(&huge), Some(&huge)]);
        assert_eq!(below.reported, usize::MAX);
        assert_eq!(below.summary((Term(1), Epoch(1))).nodes, usize::MAX);
        assert!(!below.all_reported(3));
    }

    #[test]
    fn promises_are_gathered_with_this_nodes_own() {
        let mut a = summary(2, 1, 1, &[5]);
        a.promises = [(NodeId(5), Term(9)), (NodeId(6), Term(3))].into();
        let below = Below::gather(NodeId(4), true, Some(Term(7)), [Some(&a)]);
        assert_eq!(
            below.promises,
            [
                (NodeId(4), Term(7)),
                (NodeId(5), Term(9)),
                (NodeId(6), Term(3))
            ]
            .into()
        );
        assert_eq!(below.highest_promise(), Term(9));
        assert_eq!(below.summary((Term(1), Epoch(1))).promises, below.promises);
        let forwarder = Below::gather(NodeId(4), false, None, []);
        assert_eq!(forwarder.highest_promise(), Term(0));
    }
}
