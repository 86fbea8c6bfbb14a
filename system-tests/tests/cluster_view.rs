//! The nameserver's live cluster view (`/cluster/state`) over real processes: it lists every node the
//! bootstrap registered with what the node's own `/status` says, and shows a killed node dead.
//! Time limits are generous failure bounds, not performance targets.

use std::time::Duration;

use serde_json::Value;
use system_tests::cluster::Cluster;
use system_tests::wait_for_json;

const CONVERGE: Duration = Duration::from_secs(15);

fn nodes(state: &Value) -> &[Value] {
    state["nodes"].as_array().map_or(&[], Vec::as_slice)
}

fn is_writer(node: &Value) -> bool {
    node["roles"]
        .as_array()
        .is_some_and(|roles| roles.iter().any(|role| role == "writer"))
}

fn alive(node: &Value) -> bool {
    node["alive"] == true
}

#[tokio::test]
async fn the_cluster_view_shows_three_live_nodes_one_writer_and_then_a_killed_node_dead() {
    let mut cluster = Cluster::start(3);
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let url = format!("http://{}/cluster/state", cluster.dir.nameserver_http);

    let state = wait_for_json(&url, CONVERGE, |state| {
        let nodes = nodes(state);
        nodes.len() == 3
            && nodes.iter().all(alive)
            && nodes.iter().filter(|node| is_writer(node)).count() == 1
    })
    .await;
    assert_eq!(state["leader"], leader, "{state}");
    let writer = nodes(&state)
        .iter()
        .find(|node| is_writer(node))
        .and_then(|node| node["id"].as_u64());
    assert_eq!(writer, Some(leader), "the writer is the root: {state}");
    let victim = all
        .iter()
        .copied()
        .find(|&id| id != leader)
        .expect("three nodes have a non-writer");

    cluster.kill(victim);
    let state = wait_for_json(&url, Duration::from_secs(5), |state| {
        nodes(state)
            .iter()
            .any(|node| node["id"] == victim && !alive(node))
    })
    .await;
    let dead = nodes(&state)
        .iter()
        .find(|node| node["id"] == victim)
        .expect("a killed node stays registered");
    assert_eq!(dead["depth"], Value::Null, "{state}");
    assert_eq!(nodes(&state).len(), 3, "{state}");
}
