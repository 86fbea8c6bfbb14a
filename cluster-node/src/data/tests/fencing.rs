//! One writer at a time and no merged histories, on the in-memory network: the majority rule, the
//! hand-over to a node with newer data, term fencing, and a replica discarding a tail the writer
//! never had.

use super::*;

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
    // Two nodes in the tree, five registered: a minority.
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

    // With three registered, two of them are a majority.
    writer.view.send_modify(|view| view.registered = 3);
    accepting(writer, true).await;
    writer
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();

    // Back to a minority (two more nodes registered, outside this tree): writes stop.
    writer.view.send_modify(|view| view.registered = 5);
    accepting(writer, false).await;
    let result = writer.handle.service().execute(register("bob")).await;
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
    assert_eq!(tree.nodes[&2].position.borrow().1, Epoch(0));
}

#[tokio::test]
async fn a_replica_with_entries_the_writer_never_had_discards_them_and_copies_the_writer() {
    let mut tree = start(writer_and_replica(2)).await;
    let first = tree.nodes[&1]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), first.epoch).await;

    // Split: each side runs alone (as one-node clusters) under its own term and writes.
    tree.network.cut(NodeId(1), NodeId(2));
    tree.nodes[&2].view.send_replace(with(
        1,
        2,
        2,
        view(None, &[], &[Role::Writer, Role::Input], &[]),
    ));
    tree.nodes[&1].view.send_replace(with(
        1,
        1,
        3,
        view(None, &[], &[Role::Writer, Role::Input], &[]),
    ));
    accepting(&tree.nodes[&2], true).await;
    accepting(&tree.nodes[&1], true).await;
    tree.nodes[&2]
        .handle
        .service()
        .execute(register("tail"))
        .await
        .unwrap();
    let mut last = Epoch(0);
    for name in ["bob", "cy"] {
        last = tree.nodes[&1]
            .handle
            .service()
            .execute(register(name))
            .await
            .unwrap()
            .epoch;
    }

    // Healed under node 1 (term 3): node 2's term-2 entry must go, not be merged.
    tree.network.restore(NodeId(1), NodeId(2));
    tree.nodes[&2].view.send_replace(with(
        2,
        1,
        3,
        view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
    ));
    tree.nodes[&1].view.send_replace(with(
        2,
        1,
        3,
        view(None, &[2], &[Role::Writer, Role::Input], &[(2, 2)]),
    ));
    let writer_term = tree.nodes[&1].position.borrow().0;
    let replica = tree.nodes.get_mut(&2).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        replica
            .position
            .wait_for(|&(term, epoch)| term == writer_term && epoch >= last),
    )
    .await
    .expect("the replica rebuilt its copy from the writer")
    .unwrap();
    assert_eq!(tree.nodes[&2].metrics.data_copies_discarded.get(), 1);
    assert_eq!(hash(&tree.nodes[&2]).await, hash(&tree.nodes[&1]).await);

    // And it keeps following: a new write reaches it.
    let next = tree.nodes[&1]
        .handle
        .service()
        .execute(register("dee"))
        .await
        .unwrap();
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), next.epoch).await;
}

#[tokio::test]
async fn a_write_is_acknowledged_once_a_majority_of_registered_nodes_hold_it_deep_copies_included()
{
    // 1 ── 2 ── 3, with four nodes registered: the writer needs two copies besides its own, so the
    // input node below the replica counts, and losing it blocks acknowledgements.
    let mut tree = start(
        path_views()
            .into_iter()
            .map(|(id, view)| {
                (
                    id,
                    ControlView {
                        registered: 4,
                        ..view
                    },
                )
            })
            .collect(),
    )
    .await;
    let written = tree.nodes[&1]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    // Acknowledged means both copies hold it already.
    assert!(tree.nodes[&2].position.borrow().1 >= written.epoch);
    assert!(tree.nodes[&3].position.borrow().1 >= written.epoch);
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
    assert_eq!(reads_answered_by(&tree.nodes[&2], "replica"), 0);

    tree.network.crash(NodeId(3));
    let result = tree.nodes[&1]
        .handle
        .service()
        .execute(register("bob"))
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "one copy is not enough: {result:?}"
    );
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), Epoch(written.epoch.0 + 1)).await;
}

#[test]
fn data_terms_grow_past_everything_stored_and_differ_between_writers() {
    let a = data_term(1, Term(0), NodeId(3));
    assert!(a > Term(0));
    // A full restart: the tree's term starts again at 1, below what is stored.
    let b = data_term(1, a, NodeId(3));
    assert!(b > a);
    // Two writers that reach the same round write under different terms.
    let c = data_term(5, a, NodeId(2));
    let d = data_term(5, a, NodeId(4));
    assert_ne!(c, d);
    assert!(c > b && d > b);
    // A plain small term from an older database is below any data term.
    assert!(data_term(1, Term(7), NodeId(1)) > Term(7));
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
