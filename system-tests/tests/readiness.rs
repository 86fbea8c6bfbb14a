//! `GET /readyz` over real processes: a node cut off from the rest is not ready, and is again once
//! healed; an input node is ready only while a writer that accepts writes answers through its tree
//! (not while the writer lacks a majority of the voters, nor while the data plane to it is cut).

use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(15);
/// A healed node may first have to merge trees and have its copy checked again.
const RECOVER: Duration = Duration::from_secs(30);

fn without(ids: &[u64], gone: &[u64]) -> Vec<u64> {
    ids.iter()
        .copied()
        .filter(|id| !gone.contains(id))
        .collect()
}

/// Polls `GET /readyz` on `id` until `accept(code, body)` holds; panics with the last answer after
/// `timeout`. Answers the accepted body.
async fn wait_for_readyz(
    cluster: &Cluster,
    id: u64,
    timeout: Duration,
    what: &str,
    accept: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = cluster.admin_get(id, "/readyz").await;
        if let Some((code, body)) = &answer
            && accept(*code, body)
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "node {id}: {what} not within {timeout:?}; last /readyz: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_ready(cluster: &Cluster, id: u64, timeout: Duration) {
    let body = wait_for_readyz(cluster, id, timeout, "ready", |code, _| code == 200).await;
    assert_eq!(body, serde_json::json!({"ready": true}));
}

/// Waits for a 503 whose reason `fits`; answers the reason.
async fn wait_until_not_ready(
    cluster: &Cluster,
    id: u64,
    timeout: Duration,
    fits: impl Fn(&str) -> bool,
) -> String {
    let body = wait_for_readyz(cluster, id, timeout, "not ready", |code, body| {
        code == 503 && body["ready"] == false && body["reason"].as_str().is_some_and(&fits)
    })
    .await;
    body["reason"].as_str().unwrap_or_default().to_owned()
}

fn ids(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_node_cut_off_from_the_rest_is_not_ready_until_the_partition_heals() {
    // Four nodes started in order are a clique: any one can leave and the rest stay connected.
    let cluster = Cluster::start_in_order(4).await;
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    cluster.wait_for_writer(&all, CONVERGE).await;
    for &id in &all {
        wait_until_ready(&cluster, id, CONVERGE).await;
    }

    let victim = all
        .iter()
        .copied()
        .rfind(|&id| id != leader)
        .expect("four nodes have a non-leader");
    let rest = without(&all, &[victim]);
    cluster.isolate(victim, &rest).await;
    let reason = wait_until_not_ready(&cluster, victim, CONVERGE, |_| true).await;
    eprintln!("node {victim}, cut off: {reason}");
    // The others keep their writer (it still holds a majority of the voters) and stay ready.
    cluster.wait_for_tree(&rest, CONVERGE).await;
    cluster.wait_for_writer(&rest, CONVERGE).await;
    for &id in &rest {
        wait_until_ready(&cluster, id, CONVERGE).await;
    }
    // Whatever it does alone (a tree of one holds no majority of the voters), it stays out.
    let answer = cluster.admin_get(victim, "/readyz").await;
    assert!(
        answer.as_ref().is_some_and(|(code, _)| *code == 503),
        "node {victim} is cut off from the rest yet answers {answer:?}"
    );
    eprintln!("node {victim}, still cut off: {answer:?}");

    cluster.heal(victim).await;
    cluster.wait_for_tree(&all, RECOVER).await;
    wait_until_ready(&cluster, victim, RECOVER).await;
}

#[tokio::test]
async fn an_input_node_is_ready_only_while_a_writer_accepts_writes() {
    let mut cluster = Cluster::start_in_order(5).await;
    let all = cluster.live_ids();
    cluster.wait_for_tree(&all, CONVERGE).await;
    let writer = cluster.wait_for_writer(&all, CONVERGE).await;
    let voters = wait_for_voters(&cluster, writer).await;
    let other_voters = without(&voters, &[writer]);
    for &id in &all {
        wait_until_ready(&cluster, id, CONVERGE).await;
    }

    // Two of the three voters die: the writer keeps its tree but no majority, and stops accepting.
    // (Any two of these five nodes can go without splitting the rest: 1–4 are a clique, 5 is linked
    // to 1, 2 and 3.)
    for &id in &other_voters {
        cluster.kill(id);
    }
    let rest = without(&all, &other_voters);
    assert_eq!(cluster.wait_for_tree(&rest, CONVERGE).await, writer);
    let inputs = input_nodes(&cluster, &rest, writer).await;
    assert!(
        !inputs.is_empty(),
        "a tree of three has a leaf below the root"
    );
    let expected = format!("the writer (node {writer}) does not accept writes");
    for &id in &inputs {
        wait_until_not_ready(&cluster, id, CONVERGE, |reason| reason == expected).await;
    }
    wait_until_not_ready(&cluster, writer, CONVERGE, |reason| {
        reason.starts_with("this node is the writer but does not accept writes")
    })
    .await;
    assert!(
        cluster.accepting_writes(&rest).await.is_empty(),
        "no writer accepts writes with one voter of three"
    );

    // One voter comes back: a majority again, writes resume, and so does the input nodes' readiness.
    cluster.restart(other_voters[0]);
    let back = without(&all, &other_voters[1..]);
    cluster.wait_for_tree(&back, RECOVER).await;
    cluster.wait_for_writer(&back, RECOVER).await;
    for &id in &input_nodes(&cluster, &back, writer).await {
        wait_until_ready(&cluster, id, RECOVER).await;
    }
}

#[tokio::test]
async fn an_input_node_cut_off_on_the_data_plane_only_has_no_writer_reachable() {
    let cluster = Cluster::start_in_order(4).await;
    let all = cluster.live_ids();
    cluster.wait_for_tree(&all, CONVERGE).await;
    let writer = cluster.wait_for_writer(&all, CONVERGE).await;
    let input = *input_nodes(&cluster, &all, writer)
        .await
        .first()
        .expect("a tree of four has a leaf below the root");
    wait_until_ready(&cluster, input, CONVERGE).await;

    // The tree stays as it is (the control plane still works), but nothing from the writer arrives.
    let rest = without(&all, &[input]);
    cluster.isolate_plane(input, &rest, "data").await;
    let expected =
        format!("no writer reachable: nothing heard from the writer (node {writer}) for 1500 ms");
    wait_until_not_ready(&cluster, input, CONVERGE, |reason| reason == expected).await;
    let status = cluster.status(input).await.unwrap_or_default();
    assert_eq!(status["ready"], true, "the tree did not change: {status}");

    cluster.heal(input).await;
    wait_until_ready(&cluster, input, CONVERGE).await;
}

/// The writer's voter set once it names three voters (its first configuration comes with its
/// first term).
async fn wait_for_voters(cluster: &Cluster, writer: u64) -> Vec<u64> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let voters = ids(&cluster.status(writer).await.unwrap_or_default()["voters"]);
        if voters.len() == 3 && voters.contains(&writer) {
            return voters;
        }
        assert!(
            Instant::now() < deadline,
            "writer {writer} never named three voters: {voters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The nodes among `ids` other than `writer` that serve users (their roles include `input`).
async fn input_nodes(cluster: &Cluster, ids: &[u64], writer: u64) -> Vec<u64> {
    cluster
        .statuses(ids)
        .await
        .into_iter()
        .filter(|(id, status)| {
            *id != writer
                && status["roles"]
                    .as_array()
                    .is_some_and(|roles| roles.iter().any(|role| role == "input"))
        })
        .map(|(id, _)| id)
        .collect()
}
