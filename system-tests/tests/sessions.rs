//! Sessions across input nodes, over real processes: a user signed in through one input node stays
//! signed in when the client moves to another, because every node signs session cookies with the
//! cluster key its config holds.

use std::time::Duration;

use serde_json::json;
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(15);

/// A started cluster with at least two input nodes, and their URLs.
async fn cluster_with_two_input_nodes() -> (Cluster, Vec<String>) {
    let mut last = Vec::new();
    for _ in 0..8 {
        let cluster = Cluster::start(4);
        let all = cluster.live_ids();
        cluster.wait_for_tree(&all, CONVERGE).await;
        cluster.wait_for_writer(&all, CONVERGE).await;
        let mut inputs = Vec::new();
        for &id in &all {
            let status = cluster.status(id).await.unwrap_or_default();
            if let Some(url) = status["http"].as_str() {
                inputs.push(url.to_owned());
            }
        }
        if inputs.len() >= 2 {
            return (cluster, inputs);
        }
        last = inputs;
    }
    panic!("no cluster of 4 nodes had two input nodes in 8 tries; last: {last:?}");
}

#[tokio::test]
async fn a_session_from_one_input_node_is_valid_on_another() {
    let (_cluster, inputs) = cluster_with_two_input_nodes().await;
    let mut ada = ChatClient::new(&inputs[0]);
    let (id, _tag) = ada.sign_up("ada").await;

    ada.switch_to(&inputs[1]);
    let me = ada.get("/api/me").await;
    let group = ada.post("/api/groups", json!({"name": "crew"})).await;

    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], id.as_str());
    assert_eq!(group.status, 201, "{group:?}");
}
