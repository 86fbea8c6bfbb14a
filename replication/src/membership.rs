//! The writer's next configuration change: keep `R` live voters, one change at a time.
//!
//! Rules, in order (the first that applies wins; at most one change is ever in flight):
//! - No change while the newest configuration entry is not yet acknowledged, nor before an entry of
//!   the writer's own term is (Ongaro's 2015 correction to single-server changes: without it, a new
//!   leader's change can lose an entry the previous configuration had committed). A writer writes a
//!   configuration entry restating its voters as the first entry of its term, so this holds soon.
//! - A writer that is not a voter (it took over from one) adds itself: its copy is complete.
//! - A voter that stayed out of the writer's tree for `grace` is replaced, adding first: a caught-up
//!   learner joins (the writer's children first), and once that is acknowledged the absent voter is
//!   removed. Adding first keeps a majority of live voters at every step.
//! - Above `R` voters, one is removed: an absent one first (past the grace period, then any out of
//!   the tree), else one that is not the writer's child.
//!   Never a removal whose remaining majority is not in the tree (the last voter of a majority the
//!   writer still needs stays).
//! - Below `R` voters (a cluster that grew, or a first configuration written with fewer children), a
//!   caught-up learner is added.
//!
//! A cluster with fewer live nodes than `R` keeps the voters it has: an absent voter is removed only
//! once a replacement has joined.
//!
//! An operator's removal (`removing`: nodes gone for good, see [`removal_refused`]) goes through the
//! same rules: such a voter counts as gone at once (before the others, whatever the grace period), is
//! replaced by adding first when a learner is at hand, and is removed without a replacement when none
//! is (a cluster smaller than `R`), still never leaving a configuration without a majority in the
//! tree. A node being removed is never chosen as a new voter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::{Configuration, NodeId, ReplicationFactor};

/// A learner within this many entries of the writer counts as caught up: it becomes a voter without
/// making the writes after its configuration entry wait long for it. (Safety does not depend on it: a
/// voter's acknowledgement counts only for what it durably holds.)
pub const CAUGHT_UP_SLACK: u64 = 256;

/// One configuration change: the next configuration is the current one with this voter added or
/// removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add(NodeId),
    Remove(NodeId),
}

impl Change {
    /// The configuration this change leads to (written at a later epoch).
    pub fn apply(self, current: &Configuration) -> BTreeSet<NodeId> {
        let mut voters = current.voters.clone();
        match self {
            Change::Add(node) => voters.insert(node),
            Change::Remove(node) => voters.remove(&node),
        };
        voters
    }
}

/// What the writer knows when it considers a change.
#[derive(Debug, Clone)]
pub struct MembershipView<'a> {
    pub writer: NodeId,
    pub factor: ReplicationFactor,
    /// The newest configuration in the writer's log.
    pub configuration: &'a Configuration,
    /// The highest epoch a quorum holds.
    pub acknowledged: u64,
    /// The epoch of the writer's first entry of its own term (`None` before it wrote one).
    pub term_start: Option<u64>,
    /// The writer's own position.
    pub written: u64,
    /// Every node of the writer's tree, the writer included.
    pub tree: &'a BTreeSet<NodeId>,
    /// The writer's children in the tree (preferred as voters: the seed's picture of the root's
    /// children as the persistence replicas).
    pub children: &'a [NodeId],
    /// The last epoch each copy reported applying, durably or not.
    pub progress: &'a BTreeMap<NodeId, u64>,
    /// How long each voter has been out of the writer's tree (voters in the tree are absent here).
    pub absent_for: &'a BTreeMap<NodeId, Duration>,
    pub grace: Duration,
    /// Nodes an operator asked to remove (accepted by [`removal_refused`]).
    pub removing: &'a BTreeSet<NodeId>,
}

impl MembershipView<'_> {
    fn in_flight(&self) -> bool {
        self.configuration.epoch > self.acknowledged
            || self
                .term_start
                .is_none_or(|start| start > self.acknowledged)
    }

    /// Voters being removed by the operator (by id), then voters out of the tree for at least the
    /// grace period, longest away first.
    fn gone(&self) -> Vec<NodeId> {
        let removing = self.removing_voters();
        let mut gone: Vec<(Duration, NodeId)> = self
            .configuration
            .voters
            .iter()
            .filter(|v| !self.tree.contains(v) && !self.removing.contains(v))
            .filter_map(|v| self.absent_for.get(v).map(|d| (*d, *v)))
            .filter(|(d, _)| *d >= self.grace)
            .collect();
        gone.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        removing
            .into_iter()
            .chain(gone.into_iter().map(|(_, v)| v))
            .collect()
    }

    fn removing_voters(&self) -> Vec<NodeId> {
        self.configuration
            .voters
            .iter()
            .copied()
            .filter(|v| self.removing.contains(v))
            .collect()
    }

    /// A caught-up learner of the tree to add: the writer's children first, then by id.
    fn candidate(&self) -> Option<NodeId> {
        let caught_up = |node: &NodeId| {
            self.progress
                .get(node)
                .is_some_and(|e| e.saturating_add(CAUGHT_UP_SLACK) >= self.written)
        };
        let learner = |node: &NodeId| {
            *node != self.writer
                && self.tree.contains(node)
                && !self.configuration.contains(*node)
                && !self.removing.contains(node)
        };
        let mut children: Vec<NodeId> = self.children.to_vec();
        children.sort();
        children
            .into_iter()
            .find(|c| learner(c) && caught_up(c))
            .or_else(|| {
                self.tree
                    .iter()
                    .copied()
                    .find(|n| learner(n) && caught_up(n))
            })
    }

    /// Whether removing `voter` leaves a configuration whose majority is in the tree.
    fn may_remove(&self, voter: NodeId) -> bool {
        let rest = Configuration::new(0, Change::Remove(voter).apply(self.configuration));
        voter != self.writer && rest.is_majority(|v| self.tree.contains(&v))
    }
}

/// The next change, or `None` (see the module documentation for the rules).
pub fn next_change(view: &MembershipView<'_>) -> Option<Change> {
    if view.in_flight() {
        return None;
    }
    let voters = view.configuration.voters.len();
    let factor = view.factor.get();
    if !view.configuration.contains(view.writer) {
        return Some(Change::Add(view.writer));
    }
    let gone = view.gone();
    if !gone.is_empty()
        && voters <= factor
        && let Some(learner) = view.candidate()
    {
        return Some(Change::Add(learner));
    }
    if voters <= factor
        && let Some(voter) = view
            .removing_voters()
            .into_iter()
            .find(|v| view.may_remove(*v))
    {
        // No learner to replace it with: the operator's removal goes ahead anyway.
        return Some(Change::Remove(voter));
    }
    if voters > factor {
        let children: BTreeSet<NodeId> = view.children.iter().copied().collect();
        let mut others: Vec<NodeId> = view
            .configuration
            .voters
            .iter()
            .copied()
            .filter(|v| !gone.contains(v))
            .collect();
        // Out of the tree (within the grace period) first, then not the writer's children, highest
        // id first among equals.
        others.sort_by_key(|v| {
            (
                view.tree.contains(v),
                children.contains(v),
                std::cmp::Reverse(*v),
            )
        });
        return gone
            .into_iter()
            .chain(others)
            .find(|v| view.may_remove(*v))
            .map(Change::Remove);
    }
    if voters < factor {
        return view.candidate().map(Change::Add);
    }
    None
}

/// Why the writer refuses an operator's request to remove `node`, or `None` when it accepts it.
///
/// Refused: removing the writer itself (stop it first; the next writer removes it), removing a node
/// that is alive (in the writer's tree) unless `force`, and removing a voter whose removal would leave
/// the remaining voters without a majority in the tree (the writer could no longer write).
pub fn removal_refused(
    writer: NodeId,
    configuration: &Configuration,
    tree: &BTreeSet<NodeId>,
    node: NodeId,
    force: bool,
) -> Option<String> {
    if node == writer {
        return Some(format!(
            "node {node} is the writer: stop it, and once another node writes, remove it"
        ));
    }
    if tree.contains(&node) && !force {
        return Some(format!(
            "node {node} is alive (in the writer's tree): stop it first, or force the removal"
        ));
    }
    if configuration.contains(node) {
        let rest = Configuration::new(0, Change::Remove(node).apply(configuration));
        if !rest.is_majority(|v| tree.contains(&v)) {
            return Some(format!(
                "removing voter {node} would leave {rest} without a majority of live voters"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Situation {
        writer: u64,
        factor: usize,
        voters: Vec<u64>,
        tree: Vec<u64>,
        children: Vec<u64>,
        /// (node, applied epoch); the writer is at 1000.
        progress: Vec<(u64, u64)>,
        /// (voter, seconds away).
        absent: Vec<(u64, u64)>,
        removing: Vec<u64>,
    }

    impl Situation {
        fn new(writer: u64, voters: &[u64], tree: &[u64]) -> Self {
            Situation {
                writer,
                factor: 3,
                voters: voters.to_vec(),
                tree: tree.to_vec(),
                children: tree.iter().copied().filter(|n| *n != writer).collect(),
                progress: tree.iter().map(|n| (*n, 1000)).collect(),
                absent: voters
                    .iter()
                    .filter(|v| !tree.contains(v))
                    .map(|v| (*v, 10))
                    .collect(),
                removing: Vec::new(),
            }
        }

        fn next(&self) -> Option<Change> {
            let ids = |list: &[u64]| list.iter().copied().map(NodeId).collect::<Vec<_>>();
            let configuration = Configuration::new(50, ids(&self.voters));
            let tree: BTreeSet<NodeId> = ids(&self.tree).into_iter().collect();
            let children = ids(&self.children);
            let progress = self
                .progress
                .iter()
                .map(|(n, e)| (NodeId(*n), *e))
                .collect();
            let absent_for = self
                .absent
                .iter()
                .map(|(n, s)| (NodeId(*n), Duration::from_secs(*s)))
                .collect();
            let removing: BTreeSet<NodeId> = ids(&self.removing).into_iter().collect();
            next_change(&MembershipView {
                writer: NodeId(self.writer),
                factor: ReplicationFactor::new(self.factor).unwrap(),
                configuration: &configuration,
                acknowledged: 990,
                term_start: Some(600),
                written: 1000,
                tree: &tree,
                children: &children,
                progress: &progress,
                absent_for: &absent_for,
                grace: Duration::from_secs(5),
                removing: &removing,
            })
        }
    }

    #[test]
    fn a_settled_configuration_stays() {
        assert_eq!(Situation::new(1, &[1, 2, 3], &[1, 2, 3, 4, 5]).next(), None);
        // Fewer live nodes than R: nothing to add, nothing removed.
        assert_eq!(Situation::new(1, &[1, 2], &[1, 2]).next(), None);
    }

    #[test]
    fn an_absent_voter_is_replaced_by_adding_first_then_removing() {
        let mut s = Situation::new(1, &[1, 2, 3], &[1, 2, 4, 5]);
        s.children = vec![5, 2];
        assert_eq!(
            s.next(),
            Some(Change::Add(NodeId(5))),
            "the writer's child first"
        );
        s.voters = vec![1, 2, 3, 5];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(3))));
        // Not before the grace period is over.
        let mut early = Situation::new(1, &[1, 2, 3], &[1, 2, 4]);
        early.absent = vec![(3, 2)];
        assert_eq!(early.next(), None);
    }

    #[test]
    fn only_caught_up_learners_of_the_tree_become_voters() {
        let mut s = Situation::new(1, &[1, 2, 3], &[1, 2, 4, 5]);
        s.progress = vec![(2, 1000), (4, 10), (5, 990)];
        assert_eq!(s.next(), Some(Change::Add(NodeId(5))));
        s.progress = vec![(2, 1000), (4, 10), (5, 10)];
        assert_eq!(s.next(), None, "nobody caught up: keep what we have");
    }

    #[test]
    fn a_writer_that_is_no_voter_adds_itself_and_then_the_dead_writer_goes() {
        let mut s = Situation::new(4, &[1, 2, 3], &[2, 3, 4, 5]);
        assert_eq!(s.next(), Some(Change::Add(NodeId(4))));
        s.voters = vec![1, 2, 3, 4];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(1))));
    }

    #[test]
    fn above_the_factor_a_present_non_child_goes_never_a_needed_one() {
        let mut s = Situation::new(1, &[1, 2, 3, 4], &[1, 2, 3, 4]);
        s.children = vec![2, 3];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(4))));
        // Two of four voters away: removing either leaves {1, x, y} with one absent voter, still a
        // majority in the tree; removing a present one would not.
        let mut s = Situation::new(1, &[1, 2, 3, 4], &[1, 2]);
        s.absent = vec![(3, 20), (4, 10)];
        assert_eq!(
            s.next(),
            Some(Change::Remove(NodeId(3))),
            "the longest away first"
        );
        s.factor = 4;
        assert_eq!(s.next(), None, "at the factor, with no learner to add");
    }

    #[test]
    fn above_the_factor_a_voter_out_of_the_tree_goes_even_within_the_grace_period() {
        // A new writer added itself; the old writer (1) left the tree a moment ago.
        let mut s = Situation::new(4, &[1, 2, 3, 4], &[2, 3, 4]);
        s.absent = vec![(1, 1)];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(1))));
    }

    #[test]
    fn below_the_factor_a_learner_is_added() {
        let s = Situation::new(1, &[1], &[1, 2, 3]);
        assert_eq!(s.next(), Some(Change::Add(NodeId(2))));
        let mut s = Situation::new(1, &[1, 2, 3], &[1, 2, 3, 4]);
        s.factor = 5;
        assert_eq!(s.next(), Some(Change::Add(NodeId(4))));
    }

    #[test]
    fn one_change_at_a_time_and_only_after_an_entry_of_this_term() {
        let s = Situation::new(1, &[1], &[1, 2, 3]);
        let configuration = Configuration::new(95, [NodeId(1)]);
        let tree: BTreeSet<NodeId> = [1, 2, 3].map(NodeId).into();
        let progress = [(NodeId(2), 100), (NodeId(3), 100)].into();
        let absent = BTreeMap::new();
        let removing = BTreeSet::new();
        let children = [NodeId(2), NodeId(3)];
        let mut view = MembershipView {
            writer: NodeId(s.writer),
            factor: ReplicationFactor::DEFAULT,
            configuration: &configuration,
            acknowledged: 94,
            term_start: Some(60),
            written: 100,
            tree: &tree,
            children: &children,
            progress: &progress,
            absent_for: &absent,
            grace: Duration::from_secs(5),
            removing: &removing,
        };
        assert_eq!(
            next_change(&view),
            None,
            "the configuration at 95 is in flight"
        );
        view.acknowledged = 95;
        assert_eq!(next_change(&view), Some(Change::Add(NodeId(2))));
        view.term_start = None;
        assert_eq!(next_change(&view), None, "nothing of this term written yet");
        view.term_start = Some(96);
        assert_eq!(
            next_change(&view),
            None,
            "nothing of this term acknowledged yet"
        );
    }

    #[test]
    fn a_voter_the_operator_removes_is_replaced_at_once_and_never_chosen_again() {
        // Node 3 is away for a second only: no grace period for an operator's removal.
        let mut s = Situation::new(1, &[1, 2, 3], &[1, 2, 4, 5]);
        s.absent = vec![(3, 1)];
        assert_eq!(s.next(), None, "within the grace period, alone");
        s.removing = vec![3];
        s.children = vec![4, 5];
        assert_eq!(s.next(), Some(Change::Add(NodeId(4))), "adding first");
        s.voters = vec![1, 2, 3, 4];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(3))));
        // A learner being removed is never made a voter.
        let mut s = Situation::new(1, &[1, 2], &[1, 2, 4]);
        s.removing = vec![4];
        assert_eq!(s.next(), None);
    }

    #[test]
    fn without_a_learner_at_hand_the_removal_goes_ahead_if_a_majority_stays() {
        // Three nodes, three voters, one gone for good: {1, 2} keeps writing.
        let mut s = Situation::new(1, &[1, 2, 3], &[1, 2]);
        s.removing = vec![3];
        assert_eq!(s.next(), Some(Change::Remove(NodeId(3))));
        // Two of three gone: removing one would leave {1, 2} with one live voter.
        let mut s = Situation::new(1, &[1, 2, 3], &[1]);
        s.removing = vec![3];
        assert_eq!(s.next(), None);
    }

    #[test]
    fn the_writer_refuses_removals_that_would_stop_it_or_hit_a_live_node() {
        let configuration = Configuration::new(9, [NodeId(1), NodeId(2), NodeId(3)]);
        let tree: BTreeSet<NodeId> = [1, 2, 4].map(NodeId).into();
        let refused = |node: u64, force: bool| {
            removal_refused(NodeId(1), &configuration, &tree, NodeId(node), force)
        };
        assert_eq!(refused(3, false), None, "a dead voter");
        assert_eq!(refused(5, false), None, "a dead learner");
        assert!(refused(1, true).is_some_and(|why| why.contains("is the writer")));
        assert!(refused(4, false).is_some_and(|why| why.contains("alive")));
        assert_eq!(refused(4, true), None, "a live learner, forced");
        // {1, 3} with 3 dead has no live majority: the writer would stop.
        assert!(refused(2, true).is_some_and(|why| why.contains("without a majority")));
    }
}
