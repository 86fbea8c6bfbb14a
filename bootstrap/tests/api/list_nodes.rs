//! `ListNodes`: everything registered, in registration order, with ports and neighbour ids.

use chat_proto::bootstrap::NodeEntry;
use tempfile::tempdir;

use crate::helpers::{node, spawn_app};

#[tokio::test]
async fn an_empty_bootstrap_lists_no_nodes() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;

    assert!(app.list().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn list_nodes_returns_every_node_in_registration_order_with_its_ports_and_neighbours() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    for id in [5, 3, 9, 1] {
        app.register(node(id)).await.expect("register");
    }

    let listed = app.list().await;

    let entry = |id, neighbors: &[u64]| NodeEntry {
        address: Some(node(id)),
        neighbors: neighbors.to_vec(),
        repaired: Vec::new(),
    };
    // k = 3 and four nodes: each new node links to every earlier one (a clique).
    assert_eq!(
        listed,
        vec![
            entry(5, &[1, 3, 9]),
            entry(3, &[1, 5, 9]),
            entry(9, &[1, 3, 5]),
            entry(1, &[3, 5, 9]),
        ]
    );
    app.stop().await;
}
