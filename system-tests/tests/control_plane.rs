//! The control plane over real processes and ZeroMQ on loopback: election, tree, healing, rejoin and
//! partitions, each checked from every live node's `/status`.
//!
//! Nodes start in id order (each after the previous registered), so the neighbour graph is the
//! bootstrap's (k = 3): 1–4 a clique, then 5–1 5–2 5–3, 6–4 6–5 6–1, 7–6 7–2 7–3, 8–7 8–4 8–5.
//! Time limits here are generous failure bounds, not performance targets (those are measured by the
//! benchmark, not asserted).

use std::time::Duration;

use system_tests::cluster::{Cluster, connected};

const CONVERGE: Duration = Duration::from_secs(15);

fn without(ids: &[u64], gone: &[u64]) -> Vec<u64> {
    ids.iter()
        .copied()
        .filter(|id| !gone.contains(id))
        .collect()
}

#[tokio::test]
async fn eight_nodes_elect_the_smallest_id_and_form_one_valid_tree() {
    let cluster = Cluster::start_in_order(8).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    // Every node reports data epoch 0 until storage exists, so the smallest id wins.
    assert_eq!(leader, 1);
    let root = cluster.status(1).await.unwrap();
    assert!(
        root["roles"].as_array().unwrap().contains(&"writer".into()),
        "{root}"
    );
    let metrics = reqwest::get(cluster.spec(1).admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("chat_node_control_messages_sent_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"scope="tree""#),
        "the root sent SHOUT and ticks: {metrics}"
    );
}

#[tokio::test]
async fn killing_a_leaf_ends_in_a_valid_tree_over_the_others() {
    let mut cluster = Cluster::start_in_order(8).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let mut leaf = None;
    for &id in &all {
        if id != leader && cluster.children(id).await.is_empty() {
            leaf = Some(id);
            break;
        }
    }
    let leaf = leaf.expect("a tree of eight nodes has a leaf");

    cluster.kill(leaf);
    let after = cluster
        .wait_for_tree(&without(&all, &[leaf]), CONVERGE)
        .await;
    assert_eq!(after, leader, "losing a leaf must not change the leader");
}

#[tokio::test]
async fn killing_an_interior_node_ends_in_a_valid_tree_over_the_others() {
    let mut cluster = Cluster::start_in_order(8).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let graph = cluster.neighbour_graph(&all).await;
    let mut victim = None;
    for &id in &all {
        let interior = id != leader && !cluster.children(id).await.is_empty();
        if interior && connected(&graph, &without(&all, &[id])) {
            victim = Some(id);
            break;
        }
    }
    let victim = victim.expect("some interior node can go without splitting the graph");

    cluster.kill(victim);
    let rest = without(&all, &[victim]);
    let after = cluster.wait_for_tree(&rest, CONVERGE).await;
    assert_eq!(
        after, leader,
        "healing around an interior node keeps the leader"
    );
}

#[tokio::test]
async fn killing_the_leader_ends_in_a_new_leader_over_the_others() {
    let mut cluster = Cluster::start_in_order(8).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let term = cluster.status(leader).await.unwrap()["term"]
        .as_u64()
        .unwrap();

    cluster.kill(leader);
    let rest = without(&all, &[leader]);
    let new_leader = cluster.wait_for_tree(&rest, CONVERGE).await;
    assert_ne!(new_leader, leader);
    let new_term = cluster.status(new_leader).await.unwrap()["term"]
        .as_u64()
        .unwrap();
    assert!(
        new_term > term,
        "a new election runs under a higher term: {new_term} vs {term}"
    );
}

#[tokio::test]
async fn a_restarted_node_rejoins_under_the_existing_leader_without_an_election() {
    let mut cluster = Cluster::start_in_order(6).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let term = cluster.status(leader).await.unwrap()["term"]
        .as_u64()
        .unwrap();
    let rejoining = *all.iter().rev().find(|&&id| id != leader).unwrap();

    cluster.kill(rejoining);
    cluster
        .wait_for_tree(&without(&all, &[rejoining]), CONVERGE)
        .await;
    cluster.restart(rejoining);
    let after = cluster.wait_for_tree(&all, CONVERGE).await;

    assert_eq!(after, leader);
    let status = cluster.status(rejoining).await.unwrap();
    assert_eq!(
        status["term"].as_u64(),
        Some(term),
        "no new election: {status}"
    );
}

#[tokio::test]
async fn the_fault_switch_splits_five_nodes_two_three_and_healing_reunites_them() {
    let cluster = Cluster::start_in_order(5).await;
    let all = cluster.live_ids();
    cluster.wait_for_tree(&all, CONVERGE).await;
    // Graph: 1–4 a clique, 5–1 5–2 5–3; {1, 2, 5} and {3, 4} are each connected.
    let (big, small) = (vec![1, 2, 5], vec![3, 4]);
    let graph = cluster.neighbour_graph(&all).await;
    assert!(
        connected(&graph, &big) && connected(&graph, &small),
        "{graph:?}"
    );

    for &id in &big {
        cluster.isolate(id, &small).await;
    }
    for &id in &small {
        cluster.isolate(id, &big).await;
    }
    let big_leader = cluster.wait_for_tree(&big, CONVERGE).await;
    let small_leader = cluster.wait_for_tree(&small, CONVERGE).await;
    assert!(big.contains(&big_leader) && small.contains(&small_leader));

    for &id in &all {
        cluster.heal(id).await;
    }
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    assert!(all.contains(&leader));
}
