//! The writer's side of the voter set: what it tracks to keep `R` live voters (which copies are how
//! far, which voters are away since when, where its own term started, whether a change is on its way)
//! and the one place where it asks the pure rules ([`replication::next_change`]) what to do next.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use replication::{Change, Configuration, MembershipView, ReplicationFactor};
use tokio::time::Instant;

use crate::config::NodeId;
use crate::control::ControlView;
use crate::storage::{Epoch, Term};

/// What the writer knows about the voter set while it writes.
#[derive(Debug, Default)]
pub struct VoterTracking {
    /// The data term this writer writes under, once taken.
    pub data_term: Option<Term>,
    /// The epoch of its first entry under that term.
    pub term_start: Option<Epoch>,
    /// The last epoch each copy reported applying (learners included).
    pub progress: BTreeMap<NodeId, Epoch>,
    /// Since when each voter has been out of the tree.
    absent_since: BTreeMap<NodeId, Instant>,
    /// A configuration entry was handed to the writer and has not come back committed (or failed).
    pub submitted: bool,
    /// Nodes an operator asked this writer to remove (`POST /remove`); kept for the writer's life,
    /// so a removed node is never made a voter again.
    pub removing: BTreeSet<NodeId>,
}

impl VoterTracking {
    /// A writer that takes `term`: nothing of it is written yet.
    pub fn start_term(&mut self, term: Term) {
        self.data_term = Some(term);
        self.term_start = None;
        self.submitted = false;
    }

    /// Notes which voters are out of the tree (and since when) at `now`.
    pub fn observe(
        &mut self,
        configuration: &Configuration,
        tree: &BTreeSet<NodeId>,
        now: Instant,
    ) {
        self.absent_since
            .retain(|voter, _| configuration.contains(*voter) && !tree.contains(voter));
        for voter in &configuration.voters {
            if !tree.contains(voter) {
                self.absent_since.entry(*voter).or_insert(now);
            }
        }
    }

    /// The writer committed entries up to `last` of `term`.
    pub fn committed(&mut self, term: Term, first: Epoch) {
        if self.data_term == Some(term) && self.term_start.is_none() {
            self.term_start = Some(first);
        }
    }

    /// The next configuration change, if one is due and none is on its way.
    #[allow(clippy::too_many_arguments)]
    pub fn next_change(
        &self,
        me: NodeId,
        factor: ReplicationFactor,
        grace: Duration,
        configuration: &Configuration,
        acknowledged: Epoch,
        written: Epoch,
        view: &ControlView,
        now: Instant,
    ) -> Option<Change> {
        if self.submitted {
            return None;
        }
        let tree = tree_members(me, view);
        let progress: BTreeMap<NodeId, u64> = self
            .progress
            .iter()
            .map(|(node, epoch)| (*node, epoch.0))
            .collect();
        let absent_for: BTreeMap<NodeId, Duration> = self
            .absent_since
            .iter()
            .map(|(voter, since)| (*voter, now.saturating_duration_since(*since)))
            .collect();
        replication::next_change(&MembershipView {
            writer: me,
            factor,
            configuration,
            acknowledged: acknowledged.0,
            term_start: self.term_start.map(|epoch| epoch.0),
            written: written.0,
            tree: &tree,
            children: &view.children,
            progress: &progress,
            absent_for: &absent_for,
            grace,
            removing: &self.removing,
        })
    }
}

/// Every node of the tree this root leads: itself and every node it routes to.
pub fn tree_members(me: NodeId, view: &ControlView) -> BTreeSet<NodeId> {
    view.routes.keys().copied().chain([me]).collect()
}

/// The first configuration of a database that has none: the writer and up to `R − 1` of its
/// children (lowest ids first).
pub fn first_voters(
    me: NodeId,
    factor: ReplicationFactor,
    children: &[NodeId],
) -> BTreeSet<NodeId> {
    let mut children = children.to_vec();
    children.sort();
    children
        .into_iter()
        .filter(|child| *child != me)
        .take(factor.get() - 1)
        .chain([me])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_configuration_is_the_writer_and_its_lowest_children() {
        let factor = ReplicationFactor::DEFAULT;
        let ids = |list: &[u64]| list.iter().copied().map(NodeId).collect::<Vec<_>>();
        let set = |list: &[u64]| ids(list).into_iter().collect::<BTreeSet<_>>();
        assert_eq!(
            first_voters(NodeId(4), factor, &ids(&[9, 2, 7])),
            set(&[2, 4, 7])
        );
        assert_eq!(first_voters(NodeId(1), factor, &[]), set(&[1]));
        let one = ReplicationFactor::new(1).unwrap();
        assert_eq!(first_voters(NodeId(1), one, &ids(&[2, 3])), set(&[1]));
    }

    #[test]
    fn absence_is_counted_from_when_a_voter_left_the_tree() {
        let mut tracking = VoterTracking::default();
        let configuration = Configuration::new(1, [NodeId(1), NodeId(2), NodeId(3)]);
        let tree: BTreeSet<NodeId> = [NodeId(1), NodeId(2)].into();
        let start = Instant::now();
        tracking.observe(&configuration, &tree, start);
        let later = start + Duration::from_secs(4);
        tracking.observe(&configuration, &tree, later);
        assert_eq!(tracking.absent_since.get(&NodeId(3)), Some(&start));
        // Back in the tree: forgotten.
        let all: BTreeSet<NodeId> = [NodeId(1), NodeId(2), NodeId(3)].into();
        tracking.observe(&configuration, &all, later);
        assert!(tracking.absent_since.is_empty());
    }
}
