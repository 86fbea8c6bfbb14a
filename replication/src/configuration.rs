//! The voter configuration: which nodes hold durable copies whose acknowledgements count.
//!
//! A configuration is a log entry like any other write, so every copy learns it in log order and the
//! newest one in a node's log is the one that node uses, committed or not (Raft's single-server
//! membership change). The writer changes it one voter at a time.
//!
//! **Why two successive majorities always overlap.** Let `C` have `n` voters and `C'` be `C` with one
//! voter added (`n + 1` voters). A majority of `C` has at least `⌊n/2⌋ + 1` nodes of `C`, a majority of
//! `C'` at least `⌊(n+1)/2⌋ + 1` nodes of `C'`, of which at most one (the added node) is outside `C`, so
//! at least `⌊(n+1)/2⌋` lie in `C`. Together that is `⌊n/2⌋ + ⌊(n+1)/2⌋ + 1 = n + 1 > n` nodes of `C`, so
//! the two majorities share a node. Removing a voter is the same argument with `C` and `C'` swapped.
//! Hence a writer that decides with `C'` and any writer that still decides with `C` can never both
//! gather a majority without a common node, and the common node holds the newer data (elections and
//! write acceptance prefer the most recent data). Changing two voters at once would break this:
//! `{a,b,c}` → `{a,d,e}` has majorities `{b,c}` and `{d,e}` with nothing in common.
//! `tests::successive_majorities_overlap` checks the claim over every pair of small configurations.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Most voters a configuration may name: more would make every write wait for more fsyncs without
/// tolerating failures a cluster of this size sees.
pub const MAX_REPLICATION_FACTOR: usize = 7;

/// How many voters the writer keeps (1 to [`MAX_REPLICATION_FACTOR`]; default 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReplicationFactor(usize);

impl ReplicationFactor {
    pub const DEFAULT: ReplicationFactor = ReplicationFactor(3);

    /// `Err` names the bounds.
    pub fn new(voters: usize) -> Result<Self, String> {
        if (1..=MAX_REPLICATION_FACTOR).contains(&voters) {
            Ok(ReplicationFactor(voters))
        } else {
            Err(format!(
                "must be 1 to {MAX_REPLICATION_FACTOR} (the number of voters), not {voters}"
            ))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for ReplicationFactor {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The voters named by the configuration entry at `epoch` of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// Where in the log this configuration was written (0 for none written yet).
    pub epoch: u64,
    pub voters: BTreeSet<NodeId>,
}

impl Configuration {
    pub fn new(epoch: u64, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Configuration {
            epoch,
            voters: voters.into_iter().collect(),
        }
    }

    /// Voters that make a strict majority.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    /// Whether the voters for which `holds` is true make a strict majority.
    pub fn is_majority(&self, holds: impl Fn(NodeId) -> bool) -> bool {
        !self.voters.is_empty()
            && self.voters.iter().filter(|v| holds(**v)).count() >= self.majority()
    }

    /// Whether `other` is this configuration with at most one voter added or removed.
    pub fn differs_by_at_most_one(&self, other: &Configuration) -> bool {
        self.voters.symmetric_difference(&other.voters).count() <= 1
    }
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.voters.iter().map(|v| v.0.to_string()).collect();
        write!(f, "{{{}}}@{}", ids.join(","), self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ids: &[u64]) -> Configuration {
        Configuration::new(0, ids.iter().copied().map(NodeId))
    }

    /// Every subset of `voters`, as a bit mask over their order.
    fn subsets(voters: &BTreeSet<NodeId>) -> Vec<BTreeSet<NodeId>> {
        let list: Vec<NodeId> = voters.iter().copied().collect();
        (0u32..1 << list.len())
            .map(|mask| {
                list.iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, v)| *v)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn majorities_of_one_to_seven_voters() {
        let sizes: Vec<usize> = (1..=7u64)
            .map(|n| config(&(1..=n).collect::<Vec<_>>()).majority())
            .collect();
        assert_eq!(sizes, vec![1, 2, 2, 3, 3, 4, 4]);
        assert!(
            !Configuration::new(0, []).is_majority(|_| true),
            "nobody is no majority"
        );
    }

    #[test]
    fn successive_majorities_overlap() {
        // Every configuration over nodes 1..=6 and every configuration one voter away from it: every
        // majority of the one intersects every majority of the other.
        let all: BTreeSet<NodeId> = (1..=6).map(NodeId).collect();
        let configs: Vec<Configuration> = subsets(&all)
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| Configuration::new(0, s))
            .collect();
        let mut pairs = 0;
        for a in &configs {
            for b in configs.iter().filter(|b| a.differs_by_at_most_one(b)) {
                for qa in subsets(&a.voters)
                    .iter()
                    .filter(|q| a.is_majority(|v| q.contains(&v)))
                {
                    for qb in subsets(&b.voters)
                        .iter()
                        .filter(|q| b.is_majority(|v| q.contains(&v)))
                    {
                        assert!(
                            !qa.is_disjoint(qb),
                            "{a} {qa:?} and {b} {qb:?} are disjoint"
                        );
                        pairs += 1;
                    }
                }
            }
        }
        assert!(pairs > 10_000, "checked {pairs} pairs of majorities");
        // Two voters at once: disjoint majorities exist.
        let (a, b) = (config(&[1, 2, 3]), config(&[1, 4, 5]));
        assert!(!a.differs_by_at_most_one(&b));
        let (qa, qb): (BTreeSet<_>, BTreeSet<_>) =
            ([NodeId(2), NodeId(3)].into(), [NodeId(4), NodeId(5)].into());
        assert!(a.is_majority(|v| qa.contains(&v)) && b.is_majority(|v| qb.contains(&v)));
        assert!(qa.is_disjoint(&qb));
    }

    #[test]
    fn the_factor_is_one_to_seven() {
        assert_eq!(ReplicationFactor::default().get(), 3);
        assert!(ReplicationFactor::new(0).is_err());
        assert_eq!(ReplicationFactor::new(7).map(ReplicationFactor::get), Ok(7));
        assert_eq!(
            ReplicationFactor::new(8),
            Err("must be 1 to 7 (the number of voters), not 8".to_string())
        );
    }
}
