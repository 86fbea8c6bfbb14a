//! Exact outputs of the tree state machine: SHOUT answers, ticks, adoption and refusal, the leader
//! timeout, detaching, reconciliation and route reports.

use std::collections::BTreeSet;

use super::*;
use crate::election::ElectionId;

const TREE: TreeId = TreeId {
    term: Term(1),
    leader: NodeId(1),
};

fn id(n: u64) -> NodeId {
    NodeId(n)
}

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|&n| NodeId(n)).collect()
}

fn q(tree: TreeId) -> TreeBody {
    TreeBody::Question { tree }
}

fn yes(tree: TreeId) -> TreeBody {
    TreeBody::Answer { tree, accept: true }
}

fn no(tree: TreeId) -> TreeBody {
    TreeBody::Answer {
        tree,
        accept: false,
    }
}

fn stamp(n: u64) -> LamportTime {
    LamportTime(n)
}

fn tree_of(n: u64) -> Tree {
    Tree::new(id(n), Timing::default())
}

/// Node `n` joined TREE with `parent` as parent, asked `others`, and every one of them answered.
fn member(n: u64, parent: u64, others: &[u64], children: &[u64]) -> Tree {
    let mut tree = tree_of(n);
    let mut live = set(others);
    live.insert(id(parent));
    tree.on_message(Millis(0), id(parent), stamp(1), q(TREE), &live, None);
    for &other in others {
        let answer = if children.contains(&other) {
            yes(TREE)
        } else {
            no(TREE)
        };
        tree.on_message(Millis(0), id(other), stamp(2), answer, &live, None);
    }
    tree
}

#[test]
fn the_winner_asks_every_live_neighbour_and_is_done_when_all_answered() {
    let mut root = tree_of(1);
    let step = root.become_root(Millis(0), TREE, &set(&[2, 3]));
    assert_eq!(step.messages, vec![(id(2), q(TREE)), (id(3), q(TREE))]);
    assert!(root.is_root() && root.is_attached() && !root.shout_done());
    root.on_message(Millis(1), id(2), stamp(5), yes(TREE), &set(&[2, 3]), None);
    assert!(!root.shout_done());
    root.on_message(Millis(1), id(3), stamp(5), no(TREE), &set(&[2, 3]), None);
    assert!(root.shout_done());
    assert_eq!(root.children(), vec![id(2)]);
}

#[test]
fn an_idle_node_says_yes_to_the_first_q_and_asks_its_other_neighbours() {
    let mut node = tree_of(2);
    let live = set(&[1, 3, 4]);
    let step = node.on_message(Millis(0), id(1), stamp(1), q(TREE), &live, None);
    assert_eq!(
        step.messages,
        vec![(id(1), yes(TREE)), (id(3), q(TREE)), (id(4), q(TREE))]
    );
    assert_eq!(node.parent(), Some(id(1)));
    assert_eq!(node.tree_id(), Some(TREE));
    // A later Q of the same tree from someone else gets NO.
    let step = node.on_message(Millis(1), id(3), stamp(2), q(TREE), &live, None);
    assert_eq!(step.messages, vec![(id(3), no(TREE))]);
    // A repeated Q from the parent gets YES again (our answer was lost).
    let step = node.on_message(Millis(2), id(1), stamp(3), q(TREE), &live, None);
    assert_eq!(step.messages, vec![(id(1), yes(TREE))]);
}

#[test]
fn a_node_without_other_neighbours_is_done_at_once() {
    let mut leaf = tree_of(2);
    leaf.on_message(Millis(0), id(1), stamp(1), q(TREE), &set(&[1]), None);
    assert!(leaf.shout_done());
}

#[test]
fn a_q_from_a_stronger_tree_wins_and_a_weaker_one_is_refused_and_absorbed() {
    let stronger = TreeId {
        term: Term(2),
        leader: NodeId(9),
    };
    let weaker = TreeId {
        term: Term(1),
        leader: NodeId(5),
    };
    let mut node = member(2, 1, &[3], &[3]);
    let step = node.on_message(Millis(5), id(3), stamp(9), q(stronger), &set(&[1, 3]), None);
    assert_eq!(
        step.messages,
        vec![(id(3), yes(stronger)), (id(1), q(stronger))]
    );
    assert_eq!(node.parent(), Some(id(3)));
    assert!(node.children().is_empty());

    let mut node = member(2, 1, &[3], &[]);
    let step = node.on_message(Millis(5), id(3), stamp(9), q(weaker), &set(&[1, 3]), None);
    assert_eq!(step.messages, vec![(id(3), no(weaker)), (id(3), q(TREE))]);
    assert_eq!(node.tree_id(), Some(TREE));
}

#[test]
fn a_q_older_than_the_running_election_is_refused() {
    let mut node = tree_of(2);
    let step = node.on_message(
        Millis(0),
        id(1),
        stamp(1),
        q(TREE),
        &set(&[1]),
        Some(Term(2)),
    );
    assert_eq!(step.messages, vec![(id(1), no(TREE))]);
    assert!(!node.has_tree());
}

#[test]
fn a_q_for_a_tree_led_by_this_node_that_it_does_not_lead_is_refused() {
    let ghost = TreeId {
        term: Term(4),
        leader: NodeId(2),
    };
    let mut node = tree_of(2);
    let step = node.on_message(Millis(0), id(1), stamp(1), q(ghost), &set(&[1]), None);
    assert_eq!(step.messages, vec![(id(1), no(ghost))]);
}

#[test]
fn the_root_ticks_every_interval_and_ticks_flow_down_only_from_the_parent() {
    let mut root = tree_of(1);
    root.become_root(Millis(0), TREE, &set(&[2]));
    root.on_message(Millis(1), id(2), stamp(3), yes(TREE), &set(&[2]), None);
    let step = root.on_tick(Millis(1), &set(&[2]));
    assert_eq!(
        step.messages,
        vec![(
            id(2),
            TreeBody::Tick {
                tree: TREE,
                counter: 1
            }
        )]
    );
    assert!(root.on_tick(Millis(50), &set(&[2])).messages.is_empty());
    assert_eq!(root.on_tick(Millis(101), &set(&[2])).messages.len(), 1);
    assert_eq!(root.tick(), 2);

    let mut middle = member(2, 1, &[3], &[3]);
    let tick = |counter| TreeBody::Tick {
        tree: TREE,
        counter,
    };
    let step = middle.on_message(Millis(10), id(1), stamp(4), tick(7), &set(&[1, 3]), None);
    assert_eq!(step.messages, vec![(id(3), tick(7))]);
    assert_eq!(middle.tick(), 7);
    let step = middle.on_message(Millis(11), id(1), stamp(5), tick(6), &set(&[1, 3]), None);
    assert!(step.messages.is_empty(), "an older tick is not forwarded");
    let step = middle.on_message(Millis(12), id(3), stamp(6), tick(9), &set(&[1, 3]), None);
    assert_eq!(
        step.messages,
        vec![(id(3), TreeBody::Detach { tree: TREE })],
        "a tick from a non-parent means it wrongly thinks we are its child"
    );
}

#[test]
fn a_detach_removes_a_child_unless_it_is_older_than_the_childs_yes() {
    let mut root = tree_of(1);
    root.become_root(Millis(0), TREE, &set(&[2]));
    root.on_message(Millis(1), id(2), stamp(10), yes(TREE), &set(&[2]), None);
    root.on_message(
        Millis(2),
        id(2),
        stamp(9),
        TreeBody::Detach { tree: TREE },
        &set(&[2]),
        None,
    );
    assert_eq!(root.children(), vec![id(2)]);
    root.on_message(
        Millis(3),
        id(2),
        stamp(11),
        TreeBody::Detach { tree: TREE },
        &set(&[2]),
        None,
    );
    assert!(root.children().is_empty());
}

#[test]
fn an_orphan_asks_its_non_tree_neighbours_and_takes_the_first_adopter() {
    // Node 3: parent 2, child 5, other neighbours 4 and 6.
    let mut orphan = member(3, 2, &[4, 5, 6], &[5]);
    orphan.on_message(
        Millis(10),
        id(2),
        stamp(3),
        TreeBody::Tick {
            tree: TREE,
            counter: 40,
        },
        &set(&[2, 4, 5, 6]),
        None,
    );
    let step = orphan.on_neighbour_down(Millis(800), id(2), &set(&[4, 5, 6]));
    let request = TreeBody::NoParentRequest {
        tree: TREE,
        tick: 40,
    };
    assert_eq!(step.orphaned, Some(id(2)));
    assert_eq!(
        step.messages,
        vec![(id(4), request.clone()), (id(6), request)]
    );
    assert!(orphan.is_orphan() && !orphan.is_attached());

    let live = set(&[4, 5, 6]);
    let step = orphan.on_message(Millis(805), id(6), stamp(7), q(TREE), &live, None);
    assert_eq!(step.messages, vec![(id(6), yes(TREE))]);
    assert_eq!(step.adopted, Some(id(6)));
    assert_eq!(orphan.parent(), Some(id(6)));
    assert_eq!(orphan.children(), vec![id(5)], "the subtree comes along");
    let step = orphan.on_message(Millis(806), id(4), stamp(8), q(TREE), &live, None);
    assert_eq!(
        step.messages,
        vec![(id(4), no(TREE))],
        "later adopters are declined"
    );
}

#[test]
fn only_a_neighbour_with_a_newer_tick_adopts() {
    let mut helper = member(4, 1, &[3], &[]);
    let live = set(&[1, 3]);
    helper.on_message(
        Millis(0),
        id(1),
        stamp(3),
        TreeBody::Tick {
            tree: TREE,
            counter: 41,
        },
        &live,
        None,
    );
    let request = |tick| TreeBody::NoParentRequest { tree: TREE, tick };
    let step = helper.on_message(Millis(1), id(3), stamp(4), request(41), &live, None);
    assert_eq!(
        step.messages,
        vec![(id(3), TreeBody::NoParentRefuse { tree: TREE })]
    );
    let step = helper.on_message(Millis(2), id(3), stamp(5), request(40), &live, None);
    assert_eq!(step.messages, vec![(id(3), q(TREE))]);
}

#[test]
fn an_orphan_cannot_adopt() {
    let mut orphan = member(4, 1, &[3], &[]);
    orphan.on_neighbour_down(Millis(0), id(1), &set(&[3]));
    let step = orphan.on_message(
        Millis(1),
        id(3),
        stamp(4),
        TreeBody::NoParentRequest {
            tree: TREE,
            tick: 0,
        },
        &set(&[3]),
        None,
    );
    assert_eq!(
        step.messages,
        vec![(id(3), TreeBody::NoParentRefuse { tree: TREE })]
    );
}

#[test]
fn an_orphan_repeats_its_request_and_declares_the_leader_lost_after_the_leader_timeout() {
    let mut orphan = member(3, 2, &[4], &[]);
    orphan.on_neighbour_down(Millis(1000), id(2), &set(&[4]));
    let step = orphan.on_tick(Millis(1100), &set(&[4]));
    assert!(step.messages.is_empty());
    let step = orphan.on_tick(Millis(1150), &set(&[4]));
    assert_eq!(
        step.messages,
        vec![(
            id(4),
            TreeBody::NoParentRequest {
                tree: TREE,
                tick: 0
            }
        )]
    );
    assert!(!orphan.on_tick(Millis(2500), &set(&[4])).leader_lost);
    assert!(orphan.on_tick(Millis(2501), &set(&[4])).leader_lost);
}

#[test]
fn losing_the_root_itself_as_parent_gives_up_after_the_short_grace() {
    let mut child = member(2, 1, &[3], &[]);
    child.on_neighbour_down(Millis(1000), id(1), &set(&[3]));
    assert!(!child.on_tick(Millis(1300), &set(&[3])).leader_lost);
    assert!(child.on_tick(Millis(1301), &set(&[3])).leader_lost);
}

#[test]
fn a_node_that_hears_no_tick_for_the_leader_timeout_declares_the_leader_lost() {
    let mut node = member(2, 1, &[], &[]);
    assert!(!node.on_tick(Millis(1500), &set(&[1])).leader_lost);
    assert!(node.on_tick(Millis(1501), &set(&[1])).leader_lost);
}

#[test]
fn unanswered_questions_are_repeated_every_retransmit_interval() {
    let mut root = tree_of(1);
    root.become_root(Millis(0), TREE, &set(&[2]));
    assert!(root.on_tick(Millis(149), &set(&[2])).messages.is_empty());
    let step = root.on_tick(Millis(150), &set(&[2]));
    assert_eq!(step.messages, vec![(id(2), q(TREE))]);
}

#[test]
fn route_reports_flow_up_once_subtrees_are_complete_and_are_acknowledged() {
    // 3 is a leaf under 2, which is under the root 1.
    let mut leaf = tree_of(3);
    let step = leaf.on_message(Millis(0), id(2), stamp(1), q(TREE), &set(&[2]), None);
    assert_eq!(
        step.messages,
        vec![
            (id(2), yes(TREE)),
            (
                id(2),
                TreeBody::RouteReport {
                    tree: TREE,
                    version: 1,
                    reachable: vec![id(3)]
                }
            )
        ]
    );

    let mut middle = tree_of(2);
    let live = set(&[1, 3]);
    middle.on_message(Millis(0), id(1), stamp(1), q(TREE), &live, None);
    middle.on_message(Millis(1), id(3), stamp(2), yes(TREE), &live, None);
    // Done, but the child has not reported: nothing goes up yet.
    let step = middle.on_message(
        Millis(2),
        id(3),
        stamp(3),
        TreeBody::RouteReport {
            tree: TREE,
            version: 1,
            reachable: vec![id(3)],
        },
        &live,
        None,
    );
    assert_eq!(
        step.messages,
        vec![
            (
                id(3),
                TreeBody::RouteAck {
                    tree: TREE,
                    version: 1
                }
            ),
            (
                id(1),
                TreeBody::RouteReport {
                    tree: TREE,
                    version: 1,
                    reachable: vec![id(2), id(3)]
                }
            )
        ]
    );
    assert_eq!(middle.routes(), [(id(3), id(3))].into_iter().collect());

    // An older report overtaken by a newer one is ignored.
    middle.on_message(
        Millis(3),
        id(3),
        stamp(4),
        TreeBody::RouteReport {
            tree: TREE,
            version: 3,
            reachable: vec![id(3), id(7)],
        },
        &live,
        None,
    );
    let step = middle.on_message(
        Millis(4),
        id(3),
        stamp(5),
        TreeBody::RouteReport {
            tree: TREE,
            version: 2,
            reachable: vec![id(3)],
        },
        &live,
        None,
    );
    assert!(step.messages.is_empty());
    assert_eq!(
        middle.routes(),
        [(id(3), id(3)), (id(7), id(3))].into_iter().collect()
    );

    // Version 2 (2, 3, 7) went up and is unacknowledged: repeated after the interval.
    let repeated = middle.on_tick(Millis(200), &live);
    assert!(repeated.messages.contains(&(
        id(1),
        TreeBody::RouteReport {
            tree: TREE,
            version: 2,
            reachable: vec![id(2), id(3), id(7)]
        }
    )));
    middle.on_message(
        Millis(201),
        id(1),
        stamp(6),
        TreeBody::RouteAck {
            tree: TREE,
            version: 2,
        },
        &live,
        None,
    );
    let quiet = middle.on_tick(Millis(400), &live);
    assert!(
        !quiet
            .messages
            .iter()
            .any(|(_, body)| matches!(body, TreeBody::RouteReport { .. }))
    );
}

#[test]
fn reconciliation_adopts_neighbours_without_a_tree_or_with_a_weaker_one_or_that_we_lost_track_of() {
    let mut root = tree_of(1);
    root.become_root(Millis(0), TREE, &set(&[]));
    let status = |tree, parent: Option<u64>, election| PeerStatus {
        tree,
        parent: parent.map(NodeId),
        attached: tree.is_some(),
        election,
    };
    let step = root.reconcile(Millis(1), id(2), &status(None, None, None));
    assert_eq!(step.messages, vec![(id(2), q(TREE))]);

    let weaker = TreeId {
        term: Term(0),
        leader: NodeId(7),
    };
    let step = root.reconcile(Millis(1), id(3), &status(Some(weaker), Some(7), None));
    assert_eq!(step.messages, vec![(id(3), q(TREE))]);

    let step = root.reconcile(Millis(1), id(4), &status(Some(TREE), Some(1), None));
    assert_eq!(step.messages, vec![(id(4), q(TREE))]);

    let step = root.reconcile(Millis(1), id(5), &status(Some(TREE), Some(4), None));
    assert!(
        step.messages.is_empty(),
        "a node of our tree under someone else"
    );

    let newer_election = ElectionId {
        term: Term(5),
        clock: LamportTime(1),
        initiator: NodeId(6),
    };
    let step = root.reconcile(Millis(1), id(6), &status(None, None, Some(newer_election)));
    assert!(
        step.messages.is_empty(),
        "its newer election will reach us by START"
    );
}
