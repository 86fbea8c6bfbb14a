//! Whether a node should get traffic now (`GET /readyz`), decided from its `/status` snapshot alone.
//!
//! A node is ready when it can do its part: it sits in a tree, it holds the data its role needs, and,
//! when it serves users (input), a writer that accepts writes answers through the tree. The answer is
//! the first condition that fails, in words an operator can act on. Pure, so every reason is tested
//! exactly; the admin route only turns the answer into 200 or 503.
//!
//! The writer counts as ready only while it accepts writes: that is its part, and a writer cut off
//! from a majority of the voters (a node partitioned from the rest becomes the lone root of its own
//! tree) is exactly the node a load balancer should stop sending users to.

use std::fmt;

use crate::config::NodeId;
use crate::data::WRITER_HEARD_WITHIN;
use crate::status::{CopyKind, NodeStatus, Role};

/// The first reason a node is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The bootstrap has not answered the node's registration, so it has no neighbours.
    Unregistered,
    /// No leader known.
    Electing,
    /// A leader is known but the node lost its parent (a neighbour may adopt it, or it elects).
    Orphaned { leader: NodeId },
    /// Attached, but the tree is still being built around the node (SHOUT, roles).
    Joining { leader: NodeId },
    /// In the tree, but the database its role needs is not open yet.
    NoCopy,
    /// The copy lacks what the node acknowledged before (lost disk, or a discarded diverged copy).
    NotWhole,
    /// The writer has not checked this copy's log yet, so the copy takes no commits.
    Unconfirmed { writer: NodeId },
    /// This node is the writer, and does not accept writes.
    NotAccepting,
    /// An input node whose writer said it does not accept writes.
    WriterNotAccepting { writer: NodeId },
    /// An input node that heard nothing from its writer recently.
    NoWriterReachable { writer: NodeId },
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::Unregistered => f.write_str("not registered with the bootstrap yet"),
            NotReady::Electing => f.write_str("not in a tree yet (electing)"),
            NotReady::Orphaned { leader } => write!(
                f,
                "not in a tree: cut off from the tree of leader {leader}, looking for a new parent"
            ),
            NotReady::Joining { leader } => {
                write!(f, "not in a tree yet (joining the tree of leader {leader})")
            }
            NotReady::NoCopy => f.write_str("no copy of the data open yet"),
            NotReady::NotWhole => f.write_str(
                "copy not whole: it lost its disk or discarded a diverged copy, and is catching up",
            ),
            NotReady::Unconfirmed { writer } => write!(
                f,
                "copy not confirmed: the writer (node {writer}) has not checked its log yet"
            ),
            NotReady::NotAccepting => f.write_str(
                "this node is the writer but does not accept writes (its tree lacks a majority of \
                 the voters, or has not reported yet)",
            ),
            NotReady::WriterNotAccepting { writer } => {
                write!(f, "the writer (node {writer}) does not accept writes")
            }
            NotReady::NoWriterReachable { writer } => write!(
                f,
                "no writer reachable: nothing heard from the writer (node {writer}) for {} ms",
                WRITER_HEARD_WITHIN.as_millis()
            ),
        }
    }
}

/// `Ok` when the node described by `status` is ready, else the first condition that fails.
pub fn readiness(status: &NodeStatus) -> Result<(), NotReady> {
    let leader = match (status.ready, status.leader) {
        (true, Some(leader)) => leader,
        _ if !status.registered => return Err(NotReady::Unregistered),
        (_, None) => return Err(NotReady::Electing),
        (false, Some(leader)) if leader != status.id && status.parent.is_none() => {
            return Err(NotReady::Orphaned { leader });
        }
        (false, Some(leader)) => return Err(NotReady::Joining { leader }),
    };
    if status.copy == CopyKind::None {
        return Err(NotReady::NoCopy);
    }
    if !status.whole {
        return Err(NotReady::NotWhole);
    }
    if status.roles.contains(&Role::Writer) {
        // Input or not, a writer's users reach itself: its own flag is the whole answer.
        return if status.accepting_writes {
            Ok(())
        } else {
            Err(NotReady::NotAccepting)
        };
    }
    if !status.copy_confirmed {
        return Err(NotReady::Unconfirmed { writer: leader });
    }
    if status.roles.contains(&Role::Input) {
        return match status.writer_accepting {
            Some(true) => Ok(()),
            Some(false) => Err(NotReady::WriterNotAccepting { writer: leader }),
            None => Err(NotReady::NoWriterReachable { writer: leader }),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = NodeId(4);
    const LEADER: NodeId = NodeId(1);

    /// An input leaf under leader 1, with a confirmed learner copy and an accepting writer.
    fn ready_input() -> NodeStatus {
        let mut status = NodeStatus::starting(ME);
        status.registered = true;
        status.ready = true;
        status.leader = Some(LEADER);
        status.term = 3;
        status.parent = Some(NodeId(2));
        status.tree_roles = vec![Role::Input];
        status.copy = CopyKind::Learner;
        status.refresh_roles();
        status.whole = true;
        status.copy_confirmed = true;
        status.writer_accepting = Some(true);
        status
    }

    fn ready_writer() -> NodeStatus {
        let mut status = NodeStatus::starting(LEADER);
        status.registered = true;
        status.ready = true;
        status.leader = Some(LEADER);
        status.children = vec![NodeId(2), NodeId(3)];
        status.tree_roles = vec![Role::Writer];
        status.copy = CopyKind::Voter;
        status.refresh_roles();
        status.copy_confirmed = true;
        status.accepting_writes = true;
        status.writer_accepting = Some(true);
        status
    }

    fn reason(status: &NodeStatus) -> String {
        match readiness(status) {
            Ok(()) => "ready".to_owned(),
            Err(reason) => reason.to_string(),
        }
    }

    #[test]
    fn an_input_node_in_a_tree_with_a_confirmed_copy_and_an_accepting_writer_is_ready() {
        assert_eq!(readiness(&ready_input()), Ok(()));
    }

    #[test]
    fn a_writer_that_accepts_writes_is_ready() {
        assert_eq!(readiness(&ready_writer()), Ok(()));
    }

    #[test]
    fn a_voter_that_serves_nobody_needs_no_word_from_the_writer() {
        let mut status = ready_input();
        status.tree_roles = vec![Role::Persistence];
        status.copy = CopyKind::Voter;
        status.refresh_roles();
        status.writer_accepting = None;
        assert_eq!(readiness(&status), Ok(()));
    }

    #[test]
    fn a_node_the_bootstrap_has_not_answered_is_unregistered() {
        let status = NodeStatus::starting(ME);
        assert_eq!(readiness(&status), Err(NotReady::Unregistered));
        assert_eq!(reason(&status), "not registered with the bootstrap yet");
    }

    #[test]
    fn a_node_without_a_leader_is_electing() {
        let mut status = NodeStatus::starting(ME);
        status.registered = true;
        assert_eq!(reason(&status), "not in a tree yet (electing)");
    }

    #[test]
    fn a_node_that_lost_its_parent_is_cut_off_from_its_leaders_tree() {
        let mut status = ready_input();
        status.ready = false;
        status.parent = None;
        assert_eq!(
            reason(&status),
            "not in a tree: cut off from the tree of leader 1, looking for a new parent"
        );
    }

    #[test]
    fn an_attached_node_whose_tree_is_not_built_yet_is_joining() {
        let mut status = ready_input();
        status.ready = false;
        assert_eq!(
            reason(&status),
            "not in a tree yet (joining the tree of leader 1)"
        );
        // A leader building its own tree has no parent, and is not cut off from anything.
        let mut leader = ready_writer();
        leader.ready = false;
        assert_eq!(
            reason(&leader),
            "not in a tree yet (joining the tree of leader 1)"
        );
    }

    #[test]
    fn a_node_in_a_tree_without_an_open_copy_has_no_copy() {
        let mut status = ready_input();
        status.copy = CopyKind::None;
        assert_eq!(reason(&status), "no copy of the data open yet");
    }

    #[test]
    fn a_copy_that_is_not_whole_is_catching_up() {
        let mut status = ready_input();
        status.whole = false;
        status.writer_accepting = Some(false);
        assert_eq!(
            reason(&status),
            "copy not whole: it lost its disk or discarded a diverged copy, and is catching up"
        );
    }

    #[test]
    fn a_copy_the_writer_has_not_checked_is_unconfirmed() {
        let mut status = ready_input();
        status.copy_confirmed = false;
        assert_eq!(
            reason(&status),
            "copy not confirmed: the writer (node 1) has not checked its log yet"
        );
    }

    #[test]
    fn a_writer_that_does_not_accept_writes_is_not_ready_even_alone_as_input() {
        let mut status = ready_writer();
        status.accepting_writes = false;
        let expected = "this node is the writer but does not accept writes (its tree lacks a \
                        majority of the voters, or has not reported yet)";
        assert_eq!(reason(&status), expected);
        // A node partitioned from the rest ends up the lone root of its own tree: writer and input.
        status.children.clear();
        status.tree_roles = vec![Role::Input, Role::Writer];
        status.refresh_roles();
        assert_eq!(reason(&status), expected);
    }

    #[test]
    fn an_input_node_whose_writer_said_it_does_not_accept_writes_is_not_ready() {
        let mut status = ready_input();
        status.writer_accepting = Some(false);
        assert_eq!(
            reason(&status),
            "the writer (node 1) does not accept writes"
        );
    }

    #[test]
    fn an_input_node_that_heard_nothing_from_its_writer_has_no_writer_reachable() {
        let mut status = ready_input();
        status.writer_accepting = None;
        assert_eq!(
            reason(&status),
            "no writer reachable: nothing heard from the writer (node 1) for 1500 ms"
        );
    }

    #[test]
    fn the_first_failing_condition_is_the_one_named() {
        let mut status = ready_input();
        status.writer_accepting = None;
        status.copy_confirmed = false;
        status.whole = false;
        assert_eq!(readiness(&status), Err(NotReady::NotWhole));
        status.ready = false;
        assert_eq!(
            readiness(&status),
            Err(NotReady::Joining { leader: LEADER })
        );
    }
}
