//! The state file: registrations survive a restart, and a corrupt file stops the start.

use bootstrap::{Application, Config, Error, StoreError};
use tempfile::tempdir;

use crate::helpers::{cluster_key, ids, node, spawn_app, spawn_app_with_state};

#[tokio::test]
async fn registrations_survive_a_restart() {
    let directory = tempdir().expect("temporary directory");
    let mut first = spawn_app(&directory).await;
    for id in 1..=6 {
        first.register(node(id)).await.expect("register");
    }
    let listed_before = first.list().await;
    let state_path = first.state_path.clone();
    first.stop().await;

    let mut second = spawn_app_with_state(&state_path).await;

    assert_eq!(second.list().await, listed_before);
    // The graph was saved: the next node links to the least linked nodes, as without the restart.
    let seventh = second.register(node(7)).await.expect("register 7");
    assert_eq!(ids(&seventh), vec![2, 3, 6]);
    // A node that registers again is told it was known (a node that then finds no database of its
    // own lost its disk); a new one is not.
    assert!(second.known(node(3)).await);
    assert!(!second.known(node(8)).await);
    second.stop().await;
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start_with_an_error_naming_the_file() {
    let directory = tempdir().expect("temporary directory");
    let state_path = directory.path().join("bootstrap.json");
    std::fs::write(&state_path, b"{\"version\": 1, \"nodes\": [").expect("write corrupt file");
    let config = Config::new(
        "127.0.0.1:0".parse().expect("literal address"),
        state_path.clone(),
        cluster_key(),
    );

    let error = Application::build(config)
        .await
        .err()
        .expect("build must fail");

    assert!(
        matches!(error, Error::State(StoreError::Corrupt { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&*state_path.to_string_lossy()),
        "{error}"
    );
}
