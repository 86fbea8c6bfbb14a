//! One writer at a time and no merged histories, on the in-memory network: the majority rule, the
//! hand-over to a node with newer data, term fencing, and a replica discarding a tail the writer
//! never had.

use super::*;
use crate::status::CopyKind;

fn with(registered: usize, leader: u64, term: u64, view: ControlView) -> ControlView {
    ControlView {
        registered,
        leader: Some(NodeId(leader)),
        term,
        ..view
    }
}

fn writer_and_replica(registered: usize) -> Vec<(u64, ControlView)> {
    vec![
        (
            1,
            with(
                registered,
                1,
                1,
                view(None, &[2], &[Role::Writer, Role::Input], &[(2, 2)]),
            ),
        ),
        (
            2,
            with(
                registered,
                1,
                1,
                view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
            ),
        ),
    ]
}

async fn accepting(node: &TestNode, expected: bool) {
    let mut status = node.status.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|status| status.accepting_writes == expected),
    )
    .await
    .unwrap_or_else(|_| panic!("accepting_writes never became {expected}"))
    .unwrap();
}

async fn hash(node: &TestNode) -> crate::storage::ContentHash {
    let (database, _) = node.database.get().expect("the node has a database open");
    database.content_hash().await.unwrap()
}

#[tokio::test]
async fn a_writer_whose_tree_is_no_majority_refuses_writes_without_writing_anything() {
    // Two nodes in the tree, five registered and no configuration yet: a minority.
    let tree = start_unsettled(writer_and_replica(5));
    let writer = &tree.nodes[&1];
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.status.snapshot().accepting_writes);
    let result = writer.handle.service().execute(register("ada")).await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(writer.position.borrow().1, Epoch(0), "nothing was written");
    assert_eq!(writer.metrics.data_writes_refused.get(), 1);

    // With three registered, two of them are a majority: the writer accepts and names the first
    // voters (itself and its child).
    writer.view.send_modify(|view| view.registered = 3);
    accepting(writer, true).await;
    writer
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    assert_eq!(writer.status.snapshot().voters, vec![NodeId(1), NodeId(2)]);

    // From the first configuration on, the registry plays no part: more registered nodes outside
    // this tree change nothing...
    writer.view.send_modify(|view| view.registered = 5);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(writer.status.snapshot().accepting_writes);
    writer
        .handle
        .service()
        .execute(register("bob"))
        .await
        .unwrap();

    // ... but a voter leaving the tree does: one of two voters is no majority.
    writer.view.send_modify(|view| {
        view.children.clear();
        view.routes.clear();
    });
    accepting(writer, false).await;
    let result = writer.handle.service().execute(register("cy")).await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
}

/// Node 2 as a one-node cluster accepting writes; node 1 waiting outside any tree, with no data.
async fn node_2_writing_alone() -> TestTree {
    let tree = start_unsettled(vec![
        (
            1,
            ControlView {
                ready: false,
                roles: Vec::new(),
                ..view(None, &[], &[], &[])
            },
        ),
        (
            2,
            with(1, 2, 1, view(None, &[], &[Role::Writer, Role::Input], &[])),
        ),
    ]);
    accepting(&tree.nodes[&2], true).await;
    tree
}

/// A tree forms with the empty node 1 at its root and node 2 below (as after a merge that chose
/// by shape).
fn forms_under_empty_node_1(tree: &TestTree) {
    tree.nodes[&2].view.send_replace(with(
        2,
        1,
        2,
        view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
    ));
    tree.nodes[&1].view.send_replace(with(
        2,
        1,
        2,
        view(None, &[2], &[Role::Writer, Role::Input], &[(2, 2)]),
    ));
}

#[tokio::test]
async fn a_root_below_which_a_node_holds_newer_data_hands_over_instead_of_writing() {
    // Node 2 starts as a one-node cluster and writes; node 1 waits outside any tree.
    let mut tree = node_2_writing_alone().await;
    let mut last = Epoch(0);
    for name in ["ada", "bob", "cy"] {
        last = tree.nodes[&2]
            .handle
            .service()
            .execute(register(name))
            .await
            .unwrap()
            .epoch;
    }
    let before = hash(&tree.nodes[&2]).await;

    forms_under_empty_node_1(&tree);

    let root = tree.nodes.get_mut(&1).unwrap();
    tokio::time::timeout(Duration::from_secs(5), root.elections.recv())
        .await
        .expect("the root asks for an election")
        .expect("the request channel is open");
    assert!(!root.status.snapshot().accepting_writes);
    let result = root.handle.service().execute(register("dee")).await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );

    // The newer copy is never told to discard anything by a writer that has less.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let holder = &tree.nodes[&2];
    assert_eq!(holder.position.borrow().1, last);
    assert_eq!(hash(holder).await, before);
    assert_eq!(holder.metrics.data_copies_discarded.get(), 0);
}

#[tokio::test]
async fn a_copy_the_writer_has_not_confirmed_answers_no_reads_and_neither_does_a_root_with_less() {
    // Node 2 writes alone, then a tree forms under the empty node 1: node 2's copy holds data the
    // root never confirmed (and never will: it has less, and hands over).
    let tree = node_2_writing_alone().await;
    let written = tree.nodes[&2]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    let Outcome::User(ada) = written.outcome else {
        panic!("register answers a user");
    };
    forms_under_empty_node_1(&tree);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tree.nodes[&2].position.borrow().1, written.epoch);

    // A client that saw the write asks node 2: its copy holds the write but is unconfirmed, so the
    // read goes up, where the root (epoch 0, not accepting) refuses rather than answer from less.
    let read = tree.nodes[&2]
        .handle
        .service()
        .execute(get_user("ada", ada.tag, written.epoch))
        .await;
    assert!(
        matches!(read, Err(ServiceError::Unavailable { .. })),
        "{read:?}"
    );
    assert_eq!(reads_answered_by(&tree.nodes[&2], "replica"), 0);
    assert_eq!(reads_answered_by(&tree.nodes[&1], "writer"), 0);
}

#[tokio::test]
async fn commits_of_an_older_term_are_dropped_and_never_acknowledged() {
    let tree = start(writer_and_replica(2)).await;
    // The replica has moved on to a newer tree (its view runs ahead of the writer's).
    tree.nodes[&2].view.send_modify(|view| view.term = 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = tree.nodes[&2].position.borrow().1;
    let result = tree.nodes[&1]
        .handle
        .service()
        .execute(register("ada"))
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(tree.nodes[&2].metrics.data_stale_dropped.get() > 0);
    assert_eq!(tree.nodes[&2].position.borrow().1, held);
}

/// A star: node 1 at the root, nodes 2 and 3 its children.
fn star_views() -> Vec<(u64, ControlView)> {
    vec![
        (1, view(None, &[2, 3], &[Role::Writer], &[(2, 2), (3, 3)])),
        (
            2,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
        (
            3,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
    ]
}

#[tokio::test]
async fn a_replica_with_entries_the_writer_never_had_discards_them_and_copies_the_writer() {
    let mut tree = start(star_views()).await;
    let first = tree.nodes[&1]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), first.epoch).await;
    replica_reaches(tree.nodes.get_mut(&3).unwrap(), first.epoch).await;

    // The writer is cut off from both copies before it notices: it commits a write that no copy
    // gets, so it is never acknowledged (an old writer's unacknowledged tail).
    tree.network.cut(NodeId(1), NodeId(2));
    tree.network.cut(NodeId(1), NodeId(3));
    let tail = tree.nodes[&1]
        .handle
        .service()
        .execute(register("tail"))
        .await;
    assert!(
        matches!(tail, Err(ServiceError::Unavailable { .. })),
        "{tail:?}"
    );

    // Nodes 2 and 3, a majority of the voters, form a tree under node 2 (term 3) and write.
    tree.nodes[&3].view.send_replace(with(
        3,
        2,
        3,
        view(Some(2), &[], &[Role::Persistence, Role::Input], &[]),
    ));
    tree.nodes[&2]
        .view
        .send_replace(with(3, 2, 3, view(None, &[3], &[Role::Writer], &[(3, 3)])));
    accepting(&tree.nodes[&2], true).await;
    let mut last = Epoch(0);
    for name in ["bob", "cy"] {
        last = tree.nodes[&2]
            .handle
            .service()
            .execute(register(name))
            .await
            .unwrap()
            .epoch;
    }

    // Node 1 comes back below node 2: its tail must go, not be merged.
    tree.network.restore(NodeId(1), NodeId(2));
    tree.network.restore(NodeId(1), NodeId(3));
    tree.nodes[&1].view.send_replace(with(
        3,
        2,
        3,
        view(Some(2), &[], &[Role::Persistence, Role::Input], &[]),
    ));
    tree.nodes[&2].view.send_replace(with(
        3,
        2,
        3,
        view(None, &[3, 1], &[Role::Writer], &[(3, 3), (1, 1)]),
    ));
    let writer_term = tree.nodes[&2].position.borrow().0;
    let replica = tree.nodes.get_mut(&1).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        replica
            .position
            .wait_for(|&(term, epoch)| term == writer_term && epoch >= last),
    )
    .await
    .expect("the replica rebuilt its copy from the writer")
    .unwrap();
    assert_eq!(tree.nodes[&1].metrics.data_copies_discarded.get(), 1);
    assert_eq!(hash(&tree.nodes[&1]).await, hash(&tree.nodes[&2]).await);
    // Its copy was thrown away (not whole: it counted for no majority) and is whole again.
    let mut status = tree.nodes[&1].status.subscribe();
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| s.whole))
        .await
        .expect("the rebuilt copy is whole again")
        .unwrap();

    // And it keeps following: a new write reaches it.
    let next = tree.nodes[&2]
        .handle
        .service()
        .execute(register("dee"))
        .await
        .unwrap();
    replica_reaches(tree.nodes.get_mut(&1).unwrap(), next.epoch).await;
}

#[tokio::test]
async fn a_write_is_acknowledged_by_a_majority_of_the_voters_and_learners_never_count() {
    // 1 ── 2 ── 3 with two voters: the writer and its child. Node 3 is a learner: it keeps a copy
    // for its users' reads, and losing it changes nothing for writes; losing node 2 stops them.
    let mut tree = start_with(path_views(), ReplicationFactor::new(2).unwrap()).await;
    let written = tree.nodes[&1]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    // Acknowledged means the voter holds it already.
    assert!(tree.nodes[&2].position.borrow().1 >= written.epoch);
    let voters = vec![NodeId(1), NodeId(2)];
    assert_eq!(tree.nodes[&1].status.snapshot().voters, voters);
    replica_reaches(tree.nodes.get_mut(&3).unwrap(), written.epoch).await;
    for (id, copy) in [
        (1, CopyKind::Voter),
        (2, CopyKind::Voter),
        (3, CopyKind::Learner),
    ] {
        let status = tree.nodes[&id].status.snapshot();
        assert_eq!((status.copy, &status.voters), (copy, &voters), "node {id}");
    }
    assert_eq!(hash(&tree.nodes[&3]).await, hash(&tree.nodes[&1]).await);
    // The input node answers its users' fresh-enough reads from its own copy.
    let Outcome::User(ada) = written.outcome else {
        panic!("register answers a user");
    };
    tree.nodes[&3]
        .handle
        .service()
        .execute(get_user("ada", ada.tag, written.epoch))
        .await
        .unwrap();
    assert_eq!(reads_answered_by(&tree.nodes[&3], "replica"), 1);

    tree.network.crash(NodeId(3));
    tree.nodes[&1]
        .handle
        .service()
        .execute(register("bob"))
        .await
        .expect("a learner's loss does not matter");

    tree.network.crash(NodeId(2));
    let result = tree.nodes[&1]
        .handle
        .service()
        .execute(register("cy"))
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "one voter of two is not enough: {result:?}"
    );
}

#[tokio::test]
async fn a_voter_that_stays_away_is_replaced_by_a_caught_up_learner_one_change_at_a_time() {
    // A star of four with three voters; one voter leaves the tree for longer than the grace period.
    let views = vec![
        (
            1,
            view(None, &[2, 3, 4], &[Role::Writer], &[(2, 2), (3, 3), (4, 4)]),
        ),
        (
            2,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
        (
            3,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
        (
            4,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
    ];
    let tree = start(views).await;
    let writer = &tree.nodes[&1];
    writer
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    let mut status = writer.status.subscribe();
    let first = vec![NodeId(1), NodeId(2), NodeId(3)];
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.voters == first),
    )
    .await
    .expect("the first voters are the writer and its two lowest children")
    .unwrap();

    tree.network.crash(NodeId(3));
    writer.view.send_modify(|view| {
        view.children = vec![NodeId(2), NodeId(4)];
        view.routes = [(NodeId(2), NodeId(2)), (NodeId(4), NodeId(4))].into();
    });
    // Writes go on meanwhile (two of three voters)...
    writer
        .handle
        .service()
        .execute(register("bob"))
        .await
        .unwrap();
    // ... and after the grace period node 4 takes node 3's place: added first, then 3 removed.
    let replaced = vec![NodeId(1), NodeId(2), NodeId(4)];
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.voters == replaced),
    )
    .await
    .expect("the absent voter was replaced")
    .unwrap();
    assert!(
        writer.metrics.configuration_changes.get() >= 3,
        "first, add 4, remove 3"
    );
    writer
        .handle
        .service()
        .execute(register("cy"))
        .await
        .unwrap();
    let copy = tree.nodes[&4].status.snapshot().copy;
    assert_eq!(copy, CopyKind::Voter);
}

#[tokio::test]
async fn requests_sent_into_a_tree_that_changed_fail_at_once_and_can_be_retried() {
    let tree = start(path_views()).await;
    // The request leaves node 3 and is lost on its way up.
    tree.network.cut(NodeId(2), NodeId(3));
    let service = tree.nodes[&3].handle.service();
    let started = std::time::Instant::now();
    let pending = tokio::spawn(async move { service.execute(register("ada")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A new parent: the answer would come (if at all) the old way.
    tree.nodes[&3]
        .view
        .send_modify(|view| view.parent = Some(NodeId(1)));
    let result = pending.await.unwrap();
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    // Long before the 3 s request timeout the lost request would otherwise end with.
    assert!(started.elapsed() < Duration::from_secs(2));

    // The same for a new term.
    let service = tree.nodes[&3].handle.service();
    let pending = tokio::spawn(async move { service.execute(register("bob")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    tree.nodes[&3].view.send_modify(|view| view.term = 2);
    let result = pending.await.unwrap();
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_root_writes_under_a_term_a_majority_promised_and_claims_above_any_higher_promise() {
    let tree = start(writer_and_replica(2)).await;
    let (writer, replica) = (&tree.nodes[&1], &tree.nodes[&2]);
    let (writer_db, _) = writer.database.get().expect("the writer's database");
    let (replica_db, _) = replica.database.get().expect("the replica's database");
    let first = writer_db.term().await.unwrap();
    assert_eq!(writer_db.promised().await.unwrap(), first);
    assert_eq!(replica_db.promised().await.unwrap(), first);

    // Meanwhile the replica promised a higher term to another root (say, across a split that
    // healed): a term this root could not have seen in any log.
    let higher = Term(first.0 + (5 << replication::term::WRITER_BITS));
    assert_eq!(replica_db.promise(higher).await.unwrap(), higher);
    assert_eq!(
        replica_db.promise(first).await.unwrap(),
        higher,
        "promises never go down"
    );

    // The tree is rebuilt: the root stops, then claims anew, and must end above that promise.
    writer.view.send_modify(|view| view.ready = false);
    accepting(writer, false).await;
    for node in tree.nodes.values() {
        node.view.send_modify(|view| {
            view.ready = true;
            view.term = 2;
        });
    }
    accepting(writer, true).await;
    let second = writer_db.term().await.unwrap();
    assert!(second > higher, "{second:?} is not above {higher:?}");
    assert_eq!(replica_db.promised().await.unwrap(), second);
    let written = writer.handle.service().execute(register("ada")).await;
    assert!(written.is_ok(), "{written:?}");
}
