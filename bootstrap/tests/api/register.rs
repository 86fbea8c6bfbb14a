//! Registration over gRPC: neighbours, symmetry, and re-registration.

use tempfile::tempdir;

use crate::helpers::{ids, node, spawn_app};

#[tokio::test]
async fn the_first_node_gets_no_neighbours() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;

    let neighbors = app.register(node(1)).await.expect("register");

    assert!(neighbors.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn neighbours_come_back_with_all_their_ports_ordered_by_id() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    app.register(node(1)).await.expect("register 1");
    app.register(node(2)).await.expect("register 2");

    let neighbors = app.register(node(3)).await.expect("register 3");

    assert_eq!(neighbors, vec![node(1), node(2)]);
    app.stop().await;
}

#[tokio::test]
async fn a_later_node_shows_up_among_its_neighbours_neighbours() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    app.register(node(1)).await.expect("register 1");
    app.register(node(2)).await.expect("register 2");

    let first_again = app.register(node(1)).await.expect("register 1 again");

    assert_eq!(ids(&first_again), vec![2]);
    app.stop().await;
}

#[tokio::test]
async fn registering_again_with_a_new_address_keeps_the_neighbours_and_updates_the_address() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    for id in 1..=4 {
        app.register(node(id)).await.expect("register");
    }
    let before = app.register(node(2)).await.expect("register 2 again");
    let mut moved = node(2);
    moved.host = "10.0.0.2".into();
    moved.data_port = 50_000;

    let after = app
        .register(moved.clone())
        .await
        .expect("re-register with a new address");

    assert_eq!(after, before);
    let seen_by_one = app.register(node(1)).await.expect("register 1 again");
    assert!(
        seen_by_one.contains(&moved),
        "{seen_by_one:?} lacks the new address"
    );
    app.stop().await;
}
