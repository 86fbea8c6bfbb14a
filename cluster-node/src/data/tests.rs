//! The data plane over the in-memory transport, on a fixed tree given as control views:
//!
//! ```text
//!   1 writer ── 2 replica ── 3 input
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use overlay::Role;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::discovery::Neighbour;
use crate::metrics::AnsweredBy;
use crate::service::{GetUser, Operation, Outcome, Register};
use crate::status::{NodeStatus, StatusBoard};
use crate::transport::memory::MemoryNetwork;

mod fencing;

struct TestNode {
    handle: DataHandle,
    metrics: Arc<Metrics>,
    view: watch::Sender<ControlView>,
    position: watch::Receiver<(Term, Epoch)>,
    status: StatusBoard,
    /// Whether the node started as the writer.
    writer: bool,
    /// The node's requests for a new election.
    elections: mpsc::Receiver<()>,
    database: DatabaseSlot,
    _dir: tempfile::TempDir,
}

struct TestTree {
    network: MemoryNetwork,
    nodes: BTreeMap<u64, TestNode>,
    shutdown: CancellationToken,
}

impl Drop for TestTree {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn view(
    parent: Option<u64>,
    children: &[u64],
    roles: &[Role],
    routes: &[(u64, u64)],
) -> ControlView {
    ControlView {
        ready: true,
        leader: Some(NodeId(1)),
        term: 1,
        parent: parent.map(NodeId),
        children: children.iter().copied().map(NodeId).collect(),
        roles: roles.to_vec(),
        routes: routes
            .iter()
            .map(|&(to, via)| (NodeId(to), NodeId(via)))
            .collect(),
        // Filled in by `start` with the number of nodes of the test tree.
        registered: 0,
    }
}

fn path_views() -> Vec<(u64, ControlView)> {
    vec![
        (1, view(None, &[2], &[Role::Writer], &[(2, 2), (3, 2)])),
        (2, view(Some(1), &[3], &[Role::Persistence], &[(3, 3)])),
        (3, view(Some(2), &[], &[Role::Input], &[])),
    ]
}

/// Starts the tree and waits until its writer accepts writes (when the views make it able to).
async fn start(views: Vec<(u64, ControlView)>) -> TestTree {
    // The wait inside is generous: a set-up wait, not a timing claim (a loaded 2-core machine
    // running the simulator and process tests beside these once needed more than 5 s).
    start_with(views, ReplicationFactor::DEFAULT).await
}

fn start_unsettled(views: Vec<(u64, ControlView)>) -> TestTree {
    start_unsettled_with(views, ReplicationFactor::DEFAULT)
}

/// [`start`] with `factor` voters.
async fn start_with(views: Vec<(u64, ControlView)>, factor: ReplicationFactor) -> TestTree {
    let tree = start_unsettled_with(views, factor);
    let writer = tree.nodes.values().find(|node| node.writer);
    if let Some(writer) = writer {
        let mut status = writer.status.subscribe();
        tokio::time::timeout(
            Duration::from_secs(15),
            status.wait_for(|status| status.accepting_writes),
        )
        .await
        .expect("the writer accepts writes once its tree reported")
        .unwrap();
    }
    tree
}

fn start_unsettled_with(views: Vec<(u64, ControlView)>, factor: ReplicationFactor) -> TestTree {
    let network = MemoryNetwork::new();
    let shutdown = CancellationToken::new();
    let neighbours: Vec<Neighbour> = views
        .iter()
        .map(|(id, _)| Neighbour {
            id: NodeId(*id),
            host: "127.0.0.1".into(),
            control_port: 1,
            data_port: 1,
        })
        .collect();
    let mut nodes = BTreeMap::new();
    let registered = views.len();
    for (id, mut initial) in views {
        if initial.registered == 0 {
            initial.registered = registered;
        }
        let dir = tempfile::tempdir().unwrap();
        let writer = initial.roles.contains(&Role::Writer) && initial.ready;
        let (transport, inbound) = network.endpoint(NodeId(id));
        let (view_tx, view_rx) = watch::channel(initial);
        let (position_tx, position_rx) = watch::channel((Term(0), Epoch(0)));
        let (election_tx, elections) = mpsc::channel(4);
        let context = NodeContext {
            status: StatusBoard::new(NodeStatus::starting(NodeId(id))),
            metrics: Arc::new(Metrics::new(id, 0)),
            addresses: AddressBook::new(&neighbours),
            database: DatabaseSlot::default(),
        };
        let mut options = DataOptions::new(dir.path().to_owned());
        options.service = ServiceOptions::for_tests();
        // Short enough for the timeout tests, long enough for a loaded 2-core machine.
        options.request_timeout = Duration::from_secs(3);
        options.quorum_timeout = Duration::from_secs(1);
        options.replication_factor = factor;
        options.voter_grace = Duration::from_millis(500);
        let plane = DataPlane::new(
            NodeId(id),
            options,
            (Arc::new(transport), inbound),
            view_rx,
            DataOutputs {
                position: position_tx,
                election_requests: election_tx,
            },
            &context,
        );
        let handle = plane.handle();
        tokio::spawn(plane.run(shutdown.clone()));
        nodes.insert(
            id,
            TestNode {
                handle,
                metrics: context.metrics,
                view: view_tx,
                position: position_rx,
                status: context.status.clone(),
                writer,
                elections,
                database: context.database.clone(),
                _dir: dir,
            },
        );
    }
    TestTree {
        network,
        nodes,
        shutdown,
    }
}

fn register(name: &str) -> ServiceRequest {
    ServiceRequest {
        caller: None,
        client_epoch: Epoch(0),
        operation: Operation::Register(Register {
            username: name.into(),
            password: "correct horse".into(),
        }),
    }
}

fn get_user(name: &str, tag: crate::storage::UserTag, client_epoch: Epoch) -> ServiceRequest {
    ServiceRequest {
        caller: None,
        client_epoch,
        operation: Operation::GetUser(GetUser {
            username: name.into(),
            tag,
        }),
    }
}

fn reads_answered_by(node: &TestNode, by: &'static str) -> u64 {
    node.metrics
        .data_reads_answered
        .get_or_create(&AnsweredBy { by })
        .get()
}

/// Waits until the replica's applied position reaches `epoch`.
async fn replica_reaches(node: &mut TestNode, epoch: Epoch) {
    tokio::time::timeout(
        Duration::from_secs(5),
        node.position.wait_for(|(_, e)| *e >= epoch),
    )
    .await
    .expect("the replica caught up in time")
    .unwrap();
}

/// Waits until `node`'s `/status` shows `writer_accepting` as `expected` and its copy confirmed
/// or not as `confirmed`.
async fn hears_writer(node: &TestNode, expected: Option<bool>, confirmed: bool) {
    let mut status = node.status.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|status| {
            status.writer_accepting == expected && status.copy_confirmed == confirmed
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "writer_accepting never became {expected:?} with copy_confirmed {confirmed}: {:?}",
            node.status.snapshot()
        )
    })
    .unwrap();
}

#[tokio::test]
async fn nodes_below_the_writer_hear_whether_it_accepts_writes_and_forget_it_when_cut_off() {
    let tree = start(path_views()).await;
    let (writer, input) = (&tree.nodes[&1], &tree.nodes[&3]);
    hears_writer(writer, Some(true), true).await;
    hears_writer(input, Some(true), true).await;

    // Nothing comes through a cut link: after the staleness bound, no writer is reachable.
    tree.network.cut(NodeId(2), NodeId(3));
    let cut_at = tokio::time::Instant::now();
    hears_writer(input, None, true).await;
    assert!(
        cut_at.elapsed() >= WRITER_HEARD_WITHIN - Duration::from_millis(500),
        "forgotten after {:?}, before the bound",
        cut_at.elapsed()
    );
    tree.network.restore(NodeId(2), NodeId(3));
    hears_writer(input, Some(true), true).await;

    // A writer that stops says so at once, down the whole tree; its copies stay confirmed.
    writer.view.send_modify(|view| view.ready = false);
    hears_writer(input, Some(false), true).await;
    hears_writer(writer, Some(false), true).await;
}

#[tokio::test]
async fn a_write_from_a_leaf_two_levels_below_the_writer_is_answered_once_a_copy_has_it() {
    let tree = start(path_views()).await;
    let service = tree.nodes[&3].handle.service();

    let response = service.execute(register("ada")).await.unwrap();
    let Outcome::User(user) = response.outcome else {
        panic!("register answers a user: {response:?}");
    };
    assert!(response.epoch.0 > 0);
    // Acknowledged means a majority of the three nodes holds it: the writer and one of the copies
    // (they apply at the same time; either may be first).
    let held = |id: u64| tree.nodes[&id].position.borrow().1 >= response.epoch;
    assert!(held(2) || held(3), "no copy holds an acknowledged write");
    assert_eq!(user.username, "ada");
}

#[tokio::test]
async fn a_copy_answers_fresh_enough_reads_itself_and_forwards_the_others() {
    let mut tree = start(path_views()).await;
    let service = tree.nodes[&3].handle.service();
    let written = service.execute(register("ada")).await.unwrap();
    let Outcome::User(user) = written.outcome else {
        panic!("register answers a user");
    };
    replica_reaches(tree.nodes.get_mut(&3).unwrap(), written.epoch).await;

    // The client has seen the write's epoch and the input node's own copy holds it: no hop.
    let read = service
        .execute(get_user("ada", user.tag, written.epoch))
        .await
        .unwrap();
    assert_eq!(read.epoch, written.epoch);
    assert_eq!(reads_answered_by(&tree.nodes[&3], "replica"), 1);
    assert_eq!(reads_answered_by(&tree.nodes[&2], "replica"), 0);
    assert_eq!(reads_answered_by(&tree.nodes[&1], "writer"), 0);

    // A new client (epoch 0) and a client ahead of every copy both go up to the writer.
    service
        .execute(get_user("ada", user.tag, Epoch(0)))
        .await
        .unwrap();
    service
        .execute(get_user("ada", user.tag, Epoch(written.epoch.0 + 5)))
        .await
        .unwrap();
    assert_eq!(reads_answered_by(&tree.nodes[&3], "replica"), 1);
    assert_eq!(reads_answered_by(&tree.nodes[&2], "replica"), 0);
    assert_eq!(reads_answered_by(&tree.nodes[&1], "writer"), 2);
}

#[tokio::test]
async fn a_lost_request_becomes_a_timeout_not_a_hang() {
    let tree = start(path_views()).await;
    tree.network.cut(NodeId(2), NodeId(3));
    let service = tree.nodes[&3].handle.service();
    let started = std::time::Instant::now();
    let result = service.execute(register("ada")).await;
    assert_eq!(result, Err(ServiceError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_node_that_is_not_ready_fails_fast_with_unavailable() {
    let tree = start(path_views()).await;
    tree.nodes[&3].view.send_modify(|view| view.ready = false);
    let started = std::time::Instant::now();
    let result = tree.nodes[&3]
        .handle
        .service()
        .execute(register("ada"))
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn a_write_without_a_quorum_of_replicas_is_not_reported_done() {
    let tree = start(vec![
        (1, view(None, &[2], &[Role::Writer, Role::Input], &[(2, 2)])),
        (
            2,
            view(Some(1), &[], &[Role::Persistence, Role::Input], &[]),
        ),
    ])
    .await;
    let writer = tree.nodes[&1].handle.service();
    writer.execute(register("ada")).await.unwrap();

    tree.network.crash(NodeId(2));
    let result = writer.execute(register("bob")).await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_replica_that_missed_commits_catches_up_from_the_writer() {
    let mut tree = start(path_views()).await;
    let service = tree.nodes[&3].handle.service();
    let first = service.execute(register("ada")).await.unwrap();
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), first.epoch).await;

    replica_reaches(tree.nodes.get_mut(&3).unwrap(), first.epoch).await;

    // Node 3 is cut off while the writer commits; the writer and node 2 are a majority of any
    // configuration of these three nodes, so writes go on.
    tree.network.cut(NodeId(2), NodeId(3));
    let writer = tree.nodes[&1].handle.service();
    let mut last = first.epoch;
    for name in ["bob", "cy", "dee"] {
        last = writer.execute(register(name)).await.unwrap().epoch;
    }

    // Back: the periodic position tells it what it missed.
    tree.network.restore(NodeId(2), NodeId(3));
    replica_reaches(tree.nodes.get_mut(&3).unwrap(), last).await;
}

#[tokio::test]
async fn every_node_in_the_tree_sees_each_commit_as_an_event() {
    let tree = start(path_views()).await;
    let mut events: Vec<_> = tree
        .nodes
        .values()
        .map(|node| node.handle.events())
        .collect();
    let written = tree.nodes[&3]
        .handle
        .service()
        .execute(register("ada"))
        .await
        .unwrap();
    for receiver in &mut events {
        // Configuration entries are events too (they keep the epochs of the stream contiguous).
        loop {
            let entry = tokio::time::timeout(Duration::from_secs(2), receiver.recv())
                .await
                .expect("the event arrives")
                .unwrap();
            if matches!(entry.mutation, crate::storage::Mutation::Configure { .. }) {
                continue;
            }
            assert_eq!(entry.epoch, written.epoch);
            break;
        }
    }
}

#[tokio::test]
async fn a_new_replica_is_brought_up_from_nothing_in_bounded_batches() {
    let mut tree = start(vec![
        // Registered alone at first: a one-node cluster, whose writer needs nobody else.
        (
            1,
            ControlView {
                registered: 1,
                ..view(None, &[], &[Role::Writer, Role::Input], &[])
            },
        ),
        (2, view(Some(1), &[], &[Role::Input], &[])),
    ])
    .await;
    let writer = tree.nodes[&1].handle.service();
    let response = writer.execute(register("ada")).await.unwrap();
    let Outcome::User(ada) = response.outcome else {
        panic!("register answers a user");
    };
    let as_ada = |operation| ServiceRequest {
        caller: Some(ada.id),
        client_epoch: Epoch(0),
        operation,
    };
    let group = writer
        .execute(as_ada(Operation::CreateGroup(
            crate::service::CreateGroup {
                name: "crowd".into(),
            },
        )))
        .await
        .unwrap();
    let Outcome::Group(group) = group.outcome else {
        panic!("create group answers the group");
    };
    // More than two catch-up batches' worth of history, written concurrently (group commit).
    let total = CATCH_UP_BATCH * 2 + 500;
    let mut last = Epoch(0);
    for chunk in (0..total).collect::<Vec<_>>().chunks(250) {
        let sends = chunk.iter().map(|n| {
            writer.execute(as_ada(Operation::SendGroupMessage(
                crate::service::SendGroupMessage {
                    group: group.group.id,
                    content: format!("message {n}"),
                    client_id: None,
                    reply_to: None,
                },
            )))
        });
        for result in futures::future::join_all(sends).await {
            last = last.max(result.unwrap().epoch);
        }
    }

    // Node 2 becomes the writer's replica with an empty database.
    tree.nodes[&2]
        .view
        .send_modify(|view| view.roles = vec![Role::Persistence, Role::Input]);
    tree.nodes[&1].view.send_modify(|view| {
        view.children = vec![NodeId(2)];
        view.routes = [(NodeId(2), NodeId(2))].into();
    });
    replica_reaches(tree.nodes.get_mut(&2).unwrap(), last).await;
}

#[tokio::test]
async fn a_lost_response_becomes_a_timeout_at_the_origin() {
    // Node 2 forwards the request up but has lost its route back down to node 3.
    let tree = start(vec![
        (1, view(None, &[2], &[Role::Writer], &[(2, 2), (3, 2)])),
        (2, view(Some(1), &[3], &[Role::Persistence], &[])),
        (3, view(Some(2), &[], &[Role::Input], &[])),
    ])
    .await;
    let result = tree.nodes[&3]
        .handle
        .service()
        .execute(register("ada"))
        .await;
    assert_eq!(result, Err(ServiceError::Timeout));
}

/// Resident memory of this process, from the kernel.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A measurement, not a CI test (minutes in a debug build):
/// `cargo test --release -p cluster-node --lib hundred_thousand -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run in release"]
async fn a_new_replica_of_a_hundred_thousand_messages_catches_up_in_bounded_memory() {
    let mut tree = start(vec![
        // Registered alone at first: a one-node cluster, whose writer needs nobody else.
        (
            1,
            ControlView {
                registered: 1,
                ..view(None, &[], &[Role::Writer, Role::Input], &[])
            },
        ),
        (2, view(Some(1), &[], &[Role::Input], &[])),
    ])
    .await;
    let writer = tree.nodes[&1].handle.service();
    let Outcome::User(ada) = writer.execute(register("ada")).await.unwrap().outcome else {
        panic!("register answers a user");
    };
    let as_ada = |operation| ServiceRequest {
        caller: Some(ada.id),
        client_epoch: Epoch(0),
        operation,
    };
    let create = Operation::CreateGroup(crate::service::CreateGroup { name: "big".into() });
    let Outcome::Group(group) = writer.execute(as_ada(create)).await.unwrap().outcome else {
        panic!("create group answers the group");
    };
    let total = 100_000;
    let started = std::time::Instant::now();
    let mut last = Epoch(0);
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let sends = chunk.iter().map(|n| {
            writer.execute(as_ada(Operation::SendGroupMessage(
                crate::service::SendGroupMessage {
                    group: group.group.id,
                    content: format!("message number {n} with a little text to make it realistic"),
                    client_id: None,
                    reply_to: None,
                },
            )))
        });
        for result in futures::future::join_all(sends).await {
            last = last.max(result.unwrap().epoch);
        }
    }
    let written = started.elapsed();
    let before = resident_kib();

    let started = std::time::Instant::now();
    tree.nodes[&2]
        .view
        .send_modify(|view| view.roles = vec![Role::Persistence, Role::Input]);
    tree.nodes[&1].view.send_modify(|view| {
        view.children = vec![NodeId(2)];
        view.routes = [(NodeId(2), NodeId(2))].into();
    });
    tokio::time::timeout(
        Duration::from_secs(600),
        tree.nodes
            .get_mut(&2)
            .unwrap()
            .position
            .wait_for(|(_, e)| *e >= last),
    )
    .await
    .expect("the replica caught up")
    .unwrap();
    let caught_up = started.elapsed();
    let after = resident_kib();
    println!(
        "{total} messages written in {written:?}; a new replica caught up in {caught_up:?}; \
         resident memory {before} KiB before, {after} KiB after"
    );
}
