//! When the root of a tree may accept writes ("one writer at a time", DESIGN §4).
//!
//! The root accepts writes only while
//! 1. it leads a ready tree,
//! 2. its tree holds a majority of the voters of the newest configuration in its log (before the first
//!    configuration: a strict majority of the registered nodes), counting only voters whose copy is
//!    *whole*,
//! 3. every node of its tree has reported its data position,
//! 4. none of them holds newer data than the root, and
//! 5. (to start) a majority of those voters has durably *promised* the data term the root is to write
//!    under: each remembers, on disk, the highest term it promised, and a root picks a term above
//!    every promise its tree reports (see `term`).
//!
//! Why this gives one writer holding every acknowledged write: an acknowledged write is on a majority
//! of the voters of some configuration `C` (see `quorum`). A tree that can accept holds a majority of
//! the voters of its own newest configuration `D`. If `D` is `C`, or one change away from it, the two
//! majorities share a node (`configuration`); that node is in the tree, so by (4) the root holds at
//! least what it holds, which includes the write (copies apply the log in order). If `D` is older than
//! `C` by more than one change, some intermediate configuration entry was acknowledged by a majority of
//! its predecessor (the writer starts a change only once the previous one is acknowledged), and by
//! induction a node of the tree holds a log newer than the root's: (4) fails and the root hands over to
//! it instead. Two trees that each hold a majority of one configuration share a node, and a node is in
//! one tree only, so two roots cannot accept at once with the same configuration; with configurations
//! one change apart the same overlap holds.
//!
//! **Promises.** Comparing data positions `(term, epoch)` finds the newest history only if a later
//! writer always writes under a higher term than any earlier writer wrote under, including an earlier
//! writer whose entries reached a minority only and were never acknowledged. Terms picked from what a
//! root can see (its tree's term, its own log) do not ensure it: tree terms start again after a full
//! restart, and the nodes that hold an unacknowledged tail may be away. So, as Raft's votes do, a
//! root claims its term first and writes nothing until a majority of the voters has promised it. Any
//! earlier writer that wrote anything had a majority promise its term; the new root's tree holds a
//! majority of the voters, one of which holds that promise, so the new term is higher. (The
//! configurations may differ by one change, whose majorities still overlap; further apart, the same
//! induction as above applies.) A node that lost its disk lost its promises too, and is not whole.
//!
//! **Whole copies.** The argument needs the common node to still hold what it acknowledged. A node
//! that lost its disk (or threw its copy away after a divergence) comes back holding less than it
//! acknowledged; counted as a voter, it could complete a majority that holds none of a write
//! acknowledged by it and another voter that is now away, and that write would be lost. Such a copy
//! is therefore not *whole* (it does not count for (2)) until it has caught up with a writer that
//! accepts writes, which holds every acknowledged write. A node that kept its database is whole. (Raft
//! has the same hole and closes it the same way: a server that lost its disk must rejoin as a new
//! member.) A root that already accepts writes keeps counting every voter of its tree, whole or not:
//! it holds every acknowledged write itself, a copy that is catching up counts for a write only once
//! it holds it, and a node is in one tree only, so no other root can count the same voter meanwhile.
//! Without this, a voter that discards a diverged copy while another voter is down would stop the
//! writer it needs to catch up from, for good.
//!
//! **Before the first configuration.** A root whose log holds no configuration counts a strict
//! majority of the registered nodes instead, and starts only if every node that ever claimed a term
//! its tree promised (other than its own current claim) is in the tree: `claimants` below. Why: the
//! first writer of a cluster names R voters, which may be fewer than a majority of the registered
//! nodes; once it wrote, only its voters need hold the configuration and the writes, and a tree of
//! other nodes (learners that missed everything, or lost it: a learner's copy is not fsynced) holds
//! a registered majority with empty logs. Such a tree cannot see that a configuration exists, but it
//! can see that someone claimed: that writer claimed from a registered majority (it had no
//! configuration either), which shares a node with this tree, and that node still holds its promise
//! or a higher one whose claimant, by the same rule, was in its tree when it started. If the claimant
//! is in the tree and holds no configuration, it never wrote; if it wrote, its log is newer and (4)
//! hands over to it; if it is away, the root waits for it. The cost: a cluster whose very first
//! claimant dies between claiming and writing, and never comes back, does not start.
//! (Promises only grow, so the claimant of an older promise may be hidden by a newer one; the newer
//! claimant checked the older one the same way before it claimed.)

use std::collections::BTreeSet;

use crate::{Configuration, NodeId};

/// What the root knows about its tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeReport {
    /// This node leads a ready tree (it is its root and the tree has been built).
    pub leads: bool,
    /// Every node of the tree, the root included.
    pub members: BTreeSet<NodeId>,
    /// The members whose copy is whole (see the module documentation), the root included.
    pub whole: BTreeSet<NodeId>,
    /// Every node of the tree has reported its data position.
    pub all_reported: bool,
    /// A node of the tree holds newer data than the root.
    pub newer_data: bool,
    /// Nodes registered with the bootstrap (used only before the first configuration).
    pub registered: usize,
    /// The members that durably promised the data term the root claims, the root included.
    pub promised: BTreeSet<NodeId>,
    /// The nodes that claimed the terms the members promised, other than the root's current claim
    /// (used only before the first configuration).
    pub claimants: BTreeSet<NodeId>,
}

/// The verdict, with the reason when it is no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accept,
    NotLeading,
    /// The tree lacks a majority of the voters (or of the registered nodes, without a configuration).
    NoMajority,
    NotReported,
    NewerData,
    /// Everything holds but the promises: claim a data term (and ask again once they came).
    Claim,
}

/// Whether a root with `configuration` (the newest in its log) may accept writes; `accepting` is
/// whether it already does (a root that accepts keeps doing so while its tree reports, without waiting
/// for every node of a grown tree to report again).
pub fn may_accept(
    configuration: Option<&Configuration>,
    tree: &TreeReport,
    accepting: bool,
) -> Acceptance {
    // Starting needs whole voters; going on needs voters (see the module documentation).
    let counted = if accepting {
        &tree.members
    } else {
        &tree.whole
    };
    let majority = match configuration {
        Some(configuration) => configuration.is_majority(|v| counted.contains(&v)),
        // Before any configuration, every copy counts: all must be whole.
        None => {
            tree.registered > 0
                && 2 * tree.members.len() > tree.registered
                && (accepting
                    || (tree.whole == tree.members && tree.claimants.is_subset(&tree.members)))
        }
    };
    let promised = match configuration {
        Some(configuration) => {
            configuration.is_majority(|v| tree.whole.contains(&v) && tree.promised.contains(&v))
        }
        None => 2 * tree.members.intersection(&tree.promised).count() > tree.registered,
    };
    if !tree.leads {
        Acceptance::NotLeading
    } else if !majority {
        Acceptance::NoMajority
    } else if tree.newer_data {
        Acceptance::NewerData
    } else if !accepting && !tree.all_reported {
        Acceptance::NotReported
    } else if !accepting && !promised {
        Acceptance::Claim
    } else {
        Acceptance::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(members: &[u64]) -> TreeReport {
        TreeReport {
            leads: true,
            members: members.iter().copied().map(NodeId).collect(),
            whole: members.iter().copied().map(NodeId).collect(),
            all_reported: true,
            newer_data: false,
            registered: 16,
            promised: members.iter().copied().map(NodeId).collect(),
            claimants: BTreeSet::new(),
        }
    }

    #[test]
    fn a_tree_with_a_majority_of_the_voters_accepts_whatever_its_size() {
        let voters = Configuration::new(4, [NodeId(1), NodeId(2), NodeId(3)]);
        let cases: [(&[u64], Acceptance); 5] = [
            (&[1, 2], Acceptance::Accept),
            (&[1, 3, 9, 10], Acceptance::Accept),
            // The root need not be a voter.
            (&[5, 2, 3], Acceptance::Accept),
            // Fifteen learners are no majority of the voters.
            (
                &[1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                Acceptance::NoMajority,
            ),
            (&[3], Acceptance::NoMajority),
        ];
        for (members, expected) in cases {
            assert_eq!(
                may_accept(Some(&voters), &tree(members), false),
                expected,
                "{members:?}"
            );
        }
    }

    #[test]
    fn a_voter_that_lost_its_copy_does_not_count_until_it_caught_up() {
        let voters = Configuration::new(4, [NodeId(1), NodeId(2), NodeId(3)]);
        // Node 1 (writer, holding a write with node 2) is away; node 2 came back without its disk.
        let mut report = tree(&[2, 3]);
        report.whole.remove(&NodeId(2));
        assert_eq!(
            may_accept(Some(&voters), &report, false),
            Acceptance::NoMajority
        );
        // A root that already accepts goes on counting it: the copy catches up from that root.
        assert_eq!(may_accept(Some(&voters), &report, true), Acceptance::Accept);
        report.whole.insert(NodeId(2));
        assert_eq!(
            may_accept(Some(&voters), &report, false),
            Acceptance::Accept
        );
    }

    #[test]
    fn without_a_configuration_a_majority_of_the_registered_nodes() {
        let mut report = tree(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            may_accept(None, &report, false),
            Acceptance::NoMajority,
            "8 of 16"
        );
        report.members.insert(NodeId(9));
        report.whole.insert(NodeId(9));
        report.promised.insert(NodeId(9));
        assert_eq!(
            may_accept(None, &report, false),
            Acceptance::Accept,
            "9 of 16"
        );
        report.whole.remove(&NodeId(9));
        assert_eq!(
            may_accept(None, &report, false),
            Acceptance::NoMajority,
            "before the first configuration every copy counts: none may have lost its disk"
        );
        report.whole.insert(NodeId(9));
        // Someone claimed a term that members promised: only with the claimant in the tree (it
        // would hold newer data if it ever wrote) may this root start without a configuration.
        report.claimants.insert(NodeId(12));
        assert_eq!(
            may_accept(None, &report, false),
            Acceptance::NoMajority,
            "the claimant of a promise is away: it may have written a configuration"
        );
        assert_eq!(
            may_accept(None, &report, true),
            Acceptance::Accept,
            "a root that accepts already goes on"
        );
        report.members.insert(NodeId(12));
        report.whole.insert(NodeId(12));
        assert_eq!(may_accept(None, &report, false), Acceptance::Accept);
        let voters = Configuration::new(4, [NodeId(1), NodeId(2), NodeId(3)]);
        report.claimants.insert(NodeId(13));
        assert_eq!(
            may_accept(Some(&voters), &report, false),
            Acceptance::Accept,
            "with a configuration, its majority decides"
        );
        report.registered = 0;
        assert_eq!(
            may_accept(None, &report, false),
            Acceptance::NoMajority,
            "unknown count"
        );
    }

    #[test]
    fn a_root_starts_only_once_a_majority_of_whole_voters_promised_its_term() {
        let voters = Configuration::new(4, [NodeId(1), NodeId(2), NodeId(3)]);
        let mut report = tree(&[1, 2, 3, 7]);
        report.promised = [NodeId(1), NodeId(7)].into();
        assert_eq!(may_accept(Some(&voters), &report, false), Acceptance::Claim);
        // A learner's promise is no voter's; a voter without a whole copy keeps no promise.
        report.promised.insert(NodeId(2));
        report.whole.remove(&NodeId(2));
        assert_eq!(may_accept(Some(&voters), &report, false), Acceptance::Claim);
        report.whole.insert(NodeId(2));
        assert_eq!(
            may_accept(Some(&voters), &report, false),
            Acceptance::Accept
        );
        // A root that accepts already wrote under a promised term: no new claim.
        report.promised.clear();
        assert_eq!(may_accept(Some(&voters), &report, true), Acceptance::Accept);
        // Before the first configuration, a majority of the registered nodes promises.
        let mut first = tree(&[1, 2, 3]);
        first.registered = 5;
        first.promised = [NodeId(1), NodeId(2)].into();
        assert_eq!(may_accept(None, &first, false), Acceptance::Claim);
        first.promised.insert(NodeId(3));
        assert_eq!(may_accept(None, &first, false), Acceptance::Accept);
    }

    #[test]
    fn leading_newer_data_and_reports_are_checked_in_that_order() {
        let voters = Configuration::new(1, [NodeId(1)]);
        let mut report = tree(&[1, 2]);
        report.all_reported = false;
        assert_eq!(
            may_accept(Some(&voters), &report, false),
            Acceptance::NotReported
        );
        assert_eq!(
            may_accept(Some(&voters), &report, true),
            Acceptance::Accept,
            "already accepting"
        );
        report.newer_data = true;
        assert_eq!(
            may_accept(Some(&voters), &report, true),
            Acceptance::NewerData
        );
        report.leads = false;
        assert_eq!(
            may_accept(Some(&voters), &report, true),
            Acceptance::NotLeading
        );
    }
}
