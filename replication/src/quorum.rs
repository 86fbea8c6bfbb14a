//! Which writes are acknowledged: held durably by a majority of the voters ("acknowledged means
//! durable", DESIGN §4).
//!
//! The writer counts for every epoch it committed (its own commit is durable before anyone waits);
//! another voter counts for the epochs up to the last one it reported *durably applied*. Copies outside
//! the configuration (learners) report their progress too, but it never counts.
//!
//! Before any configuration is in the writer's log (an empty cluster, or a database from before
//! voters existed), a strict majority of the nodes registered with the bootstrap counts, every copy
//! acknowledging durably. That lasts only until the writer commits its first entry, which is the first
//! configuration: from then on its voters decide, and the registry plays no part. What keeps a later
//! root that never saw that configuration from starting over other nodes is in `acceptance` ("Before
//! the first configuration").

use std::collections::{BTreeMap, BTreeSet};

use crate::{Configuration, NodeId};

/// What the writer knows about who holds what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    /// The node that writes (it holds everything it committed).
    pub writer: Option<NodeId>,
    /// The newest configuration in the writer's log; `None` before the first one.
    pub configuration: Option<Configuration>,
    /// Without a configuration: the copies in the writer's tree, and the registered nodes.
    pub tree_copies: BTreeSet<NodeId>,
    pub registered: usize,
    /// The last epoch each copy reported as durably applied (the last report wins: a copy that lost
    /// its disk reports less than before and must not keep counting for what it lost).
    pub durable: BTreeMap<NodeId, u64>,
    /// The writer does not accept writes now: every write still waiting fails instead.
    pub fenced: bool,
}

impl Acks {
    /// Whether `epoch` (committed by the writer) is held by a quorum.
    pub fn holds(&self, epoch: u64) -> bool {
        let has = |node: NodeId| {
            Some(node) == self.writer || self.durable.get(&node).is_some_and(|e| *e >= epoch)
        };
        match &self.configuration {
            Some(configuration) => configuration.is_majority(has),
            None => {
                // With the writer, a strict majority of the registered nodes (or of the tree, if more
                // nodes are in it than the last count of registrations says).
                let nodes = self.registered.max(self.tree_copies.len() + 1);
                let holders = self.tree_copies.iter().filter(|c| has(**c)).count() + 1;
                2 * holders > nodes
            }
        }
    }

    /// The highest epoch a quorum holds, at most `written` (the writer's own position).
    pub fn acknowledged(&self, written: u64) -> u64 {
        // Candidates: every reported epoch and the writer's own; the answer is one of them.
        let mut candidates: Vec<u64> = self
            .durable
            .values()
            .copied()
            .filter(|e| *e <= written)
            .chain([written])
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        candidates.into_iter().find(|e| self.holds(*e)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(voters: &[u64], durable: &[(u64, u64)]) -> Acks {
        Acks {
            writer: Some(NodeId(1)),
            configuration: Some(Configuration::new(1, voters.iter().copied().map(NodeId))),
            durable: durable.iter().map(|(n, e)| (NodeId(*n), *e)).collect(),
            ..Acks::default()
        }
    }

    #[test]
    fn a_majority_of_the_voters_with_the_writer_among_them() {
        // (voters, durable reports) → the highest acknowledged epoch of a writer at 10.
        type Case = (&'static [u64], &'static [(u64, u64)], u64);
        let cases: [Case; 8] = [
            (&[1], &[], 10),
            (&[1, 2], &[(2, 7)], 7),
            (&[1, 2, 3], &[], 0),
            (&[1, 2, 3], &[(3, 9)], 9),
            (&[1, 2, 3], &[(2, 4), (3, 6)], 6),
            (&[1, 2, 3, 4, 5], &[(2, 8), (3, 5), (4, 9)], 8),
            // Learners (4 and 5 are not voters) never count.
            (&[1, 2, 3], &[(4, 10), (5, 10)], 0),
            // The writer is not a voter (it took over from a voter that died): two of three others.
            (&[2, 3, 4], &[(2, 6), (3, 8)], 6),
        ];
        for (voters, durable, expected) in cases {
            assert_eq!(
                acks(voters, durable).acknowledged(10),
                expected,
                "voters {voters:?}, durable {durable:?}"
            );
        }
    }

    #[test]
    fn without_a_configuration_a_majority_of_the_registered_nodes() {
        let legacy = |copies: &[u64], registered: usize, durable: &[(u64, u64)]| Acks {
            writer: Some(NodeId(1)),
            tree_copies: copies.iter().copied().map(NodeId).collect(),
            registered,
            durable: durable.iter().map(|(n, e)| (NodeId(*n), *e)).collect(),
            ..Acks::default()
        };
        assert!(legacy(&[], 1, &[]).holds(5), "a lone node needs nobody");
        assert!(!legacy(&[2], 5, &[(2, 5)]).holds(5), "two of five");
        assert!(
            legacy(&[2, 3], 5, &[(2, 5), (3, 5)]).holds(5),
            "three of five"
        );
        assert!(
            !legacy(&[2, 3], 5, &[(2, 5), (9, 5)]).holds(5),
            "a stranger does not count"
        );
        assert!(
            legacy(&[2, 3, 4, 5], 1, &[(2, 5), (3, 5)]).holds(5),
            "the tree outnumbers the count"
        );
    }

    #[test]
    fn the_last_report_of_a_copy_is_what_counts() {
        let mut acks = acks(&[1, 2, 3], &[(2, 9)]);
        assert!(acks.holds(9));
        // Node 2 came back without its disk: it holds nothing now.
        acks.durable.insert(NodeId(2), 0);
        assert!(!acks.holds(9));
    }
}
