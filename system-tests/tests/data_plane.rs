//! The data plane over real processes: chat data written through one input node is read through
//! another, a session reads its own writes, writes go on while a replica is down, and after it
//! restarts every replica of the new tree holds everything the writer committed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use system_tests::chat::ChatClient;
use system_tests::cluster::{Cluster, connected};

const CONVERGE: Duration = Duration::from_secs(15);

async fn http_of(cluster: &Cluster, id: u64) -> Option<String> {
    let status = cluster.status(id).await?;
    status["http"].as_str().map(str::to_owned)
}

async fn data_epoch(cluster: &Cluster, id: u64) -> Option<u64> {
    cluster.status(id).await?["data_epoch"].as_u64()
}

/// A started cluster's tree, as the tests need to see it.
struct Shape {
    all: Vec<u64>,
    leader: u64,
    replicas: Vec<u64>,
    graph: std::collections::BTreeMap<u64, Vec<u64>>,
    /// Nodes serving HTTP, with their URL.
    inputs: Vec<(u64, String)>,
}

/// Starts `n` nodes at once (as `make up` does) until the tree they build `fits`: which neighbours end
/// up as the writer's children (its replicas) depends on timing, and each test needs a kind of shape.
async fn cluster_where(n: u64, fits: impl Fn(&Shape) -> bool) -> (Cluster, Shape) {
    let mut last = String::new();
    for _ in 0..8 {
        let cluster = Cluster::start(n);
        let all = cluster.live_ids();
        let leader = cluster.wait_for_tree(&all, CONVERGE).await;
        cluster.wait_for_writer(&all, CONVERGE).await;
        // Nodes started at once can still reshape the tree for a moment (a late link, a repair,
        // and the election they start): read the tree's term and the input nodes until they have
        // held for two seconds, so the test does not aim at a node about to stop serving.
        let mut inputs = input_nodes(&cluster, &all).await;
        let mut term = cluster.status(leader).await.unwrap_or_default()["term"].clone();
        let mut held = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again = input_nodes(&cluster, &all).await;
            let term_now = cluster.status(leader).await.unwrap_or_default()["term"].clone();
            if again == inputs && term_now == term {
                held += 1;
                if held == 4 {
                    break;
                }
            } else {
                held = 0;
                inputs = again;
                term = term_now;
            }
        }
        let shape = Shape {
            inputs,
            replicas: cluster.children(leader).await,
            graph: cluster.neighbour_graph(&all).await,
            all,
            leader,
        };
        if fits(&shape) {
            return (cluster, shape);
        }
        last = format!("replicas {:?}, graph {:?}", shape.replicas, shape.graph);
    }
    panic!("no cluster of {n} nodes had a fitting tree in 8 tries; last: {last}");
}

/// The nodes serving HTTP now, with their URLs.
async fn input_nodes(cluster: &Cluster, all: &[u64]) -> Vec<(u64, String)> {
    let mut inputs = Vec::new();
    for &id in all {
        if let Some(url) = http_of(cluster, id).await {
            inputs.push((id, url));
        }
    }
    inputs
}

fn removable(shape: &Shape, id: u64) -> bool {
    let rest: Vec<u64> = shape
        .all
        .iter()
        .copied()
        .filter(|&other| other != id)
        .collect();
    connected(&shape.graph, &rest)
}

#[tokio::test]
async fn chat_data_crosses_input_nodes_reads_see_own_writes_and_every_replica_holds_every_write() {
    // A replica that can go without splitting the graph, and two input nodes besides it.
    let victim_of = |shape: &Shape| {
        shape.replicas.iter().copied().find(|&r| {
            removable(shape, r) && shape.inputs.iter().filter(|(id, _)| *id != r).count() >= 2
        })
    };
    let (mut cluster, shape) = cluster_where(5, |shape| victim_of(shape).is_some()).await;
    let all = shape.all.clone();
    let victim = victim_of(&shape).unwrap();
    let inputs: Vec<String> = shape
        .inputs
        .iter()
        .filter(|(id, _)| *id != victim)
        .map(|(_, url)| url.clone())
        .collect();

    let ada = ChatClient::new(&inputs[0]);
    let bob = ChatClient::new(&inputs[1]);
    let (_, _ada_tag) = ada.sign_up("ada").await;
    let (_, bob_tag) = bob.sign_up("bob").await;

    let group = ada.post("/api/groups", json!({"name": "crew"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let added = ada
        .post(
            &format!("/api/groups/{group_id}/members"),
            json!({"username": "bob", "tag": bob_tag}),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");

    // Read-your-writes: every post is in the poster's very next read, whoever answers it.
    let messages_path = format!("/api/groups/{group_id}/messages");
    for n in 0..20 {
        let posted = ada
            .post(&messages_path, json!({"content": format!("hello {n}")}))
            .await;
        assert_eq!(posted.status, 201, "{posted:?}");
        let listed = ada.get(&messages_path).await;
        assert_eq!(listed.status, 200);
        let contents: Vec<&str> = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert!(
            contents.contains(&format!("hello {n}").as_str()),
            "post {n} missing from {contents:?}"
        );
    }

    // Written through one input node, read through another.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = bob.get(&messages_path).await;
        assert_eq!(listed.status, 200, "{listed:?}");
        if listed.body.as_array().is_some_and(|m| m.len() == 20) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob never saw the 20 messages: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A replica dies while writes go on, then comes back and catches up.
    cluster.kill(victim);
    let rest: Vec<u64> = all.iter().copied().filter(|&id| id != victim).collect();
    cluster.wait_for_tree(&rest, CONVERGE).await;
    // The writer may have paused while the victim's subtree moved (it counts the voters its tree
    // holds); once the tree is whole again it accepts writes, and from then on none may fail.
    cluster.wait_for_writer(&rest, CONVERGE).await;
    for n in 20..30 {
        let posted = ada
            .post(&messages_path, json!({"content": format!("hello {n}")}))
            .await;
        assert_eq!(
            posted.status, 201,
            "a write with a replica down: {posted:?}"
        );
    }
    // The restarted node rejoins wherever a neighbour adopts it (not necessarily under the writer).
    // Whatever the new tree, every replica must come to hold everything the writer committed.
    cluster.restart(victim);
    let writer = cluster.wait_for_tree(&all, CONVERGE).await;
    let target = data_epoch(&cluster, writer).await.unwrap();
    let replicas = cluster.children(writer).await;
    let deadline = Instant::now() + CONVERGE;
    for replica in replicas {
        while data_epoch(&cluster, replica).await != Some(target) {
            if Instant::now() >= deadline {
                let status = cluster.status(replica).await;
                panic!("replica {replica} did not reach epoch {target}: {status:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The replica under which `id` hangs (its ancestor that is a child of `root`).
async fn top_replica(cluster: &Cluster, root: u64, mut id: u64) -> Option<u64> {
    loop {
        let parent = cluster.status(id).await?["parent"].as_u64()?;
        if parent == root {
            return Some(id);
        }
        id = parent;
    }
}

/// The voters the writer's `/status` names, once the configuration has `size` of them.
async fn voters(cluster: &Cluster, writer: u64, size: usize) -> Vec<u64> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(status) = cluster.status(writer).await
            && let Some(list) = status["voters"].as_array()
            && list.len() == size
        {
            return list.iter().filter_map(|v| v.as_u64()).collect();
        }
        assert!(
            Instant::now() < deadline,
            "the writer never named {size} voters"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn writes_succeed_while_a_majority_of_the_voters_acknowledges_and_get_503_when_it_cannot() {
    // Three children of the writer or more, so one subtree holds no voter (R = 3: the writer and
    // two of its children) and the client can stay under it while the others are cut off.
    let (cluster, shape) = cluster_where(8, |shape| shape.replicas.len() >= 3).await;
    let (all, writer, children) = (shape.all.clone(), shape.leader, shape.replicas.clone());
    let voters = voters(&cluster, writer, 3).await;
    // A voter's acknowledgements reach the writer through the child at the top of its subtree.
    let mut holding: BTreeMap<u64, usize> = children.iter().map(|&c| (c, 0)).collect();
    for &voter in voters.iter().filter(|&&v| v != writer) {
        let top = top_replica(&cluster, writer, voter)
            .await
            .expect("every voter is in the writer's tree");
        *holding.entry(top).or_default() += 1;
    }
    let majority = voters.len() / 2 + 1;
    let own = usize::from(voters.contains(&writer));
    // The client stays under a subtree without voters.
    let kept = *children
        .iter()
        .find(|c| holding[c] == 0)
        .unwrap_or_else(|| panic!("a child without voters below it: {holding:?}"));
    let subtree = holding.clone();
    let quorum = majority - own;
    let mut client_url = None;
    for &id in &all {
        if id != writer
            && top_replica(&cluster, writer, id).await == Some(kept)
            && let Some(url) = http_of(&cluster, id).await
        {
            client_url = Some(url);
            break;
        }
    }
    let ada = ChatClient::new(client_url.expect("an input node under the kept replica"));
    ada.sign_up("ada").await;
    let group = ada.post("/api/groups", json!({"name": "quorum"})).await;
    let messages = format!(
        "/api/groups/{}/messages",
        group.body["id"].as_str().unwrap()
    );

    // Cut the writer's data plane (only: the tree stays as it is) from as many subtrees as the
    // voters can spare, those without voters first: writes still succeed.
    let mut others: Vec<u64> = children.iter().copied().filter(|&c| c != kept).collect();
    others.sort_by_key(|c| subtree[c]);
    let mut holding: usize = subtree.values().sum();
    let mut cut = Vec::new();
    for &child in &others {
        if holding - subtree[&child] >= quorum {
            holding -= subtree[&child];
            cut.push(child);
        }
    }
    cluster.isolate_plane(writer, &cut, "data").await;
    let posted = ada
        .post(&messages, json!({"content": "with a quorum"}))
        .await;
    assert_eq!(posted.status, 201, "cut {cut:?} of {subtree:?}: {posted:?}");

    // Every subtree but the client's (which holds no voter) cut off: the write commits on the
    // writer but is not acknowledged.
    cluster.isolate_plane(writer, &others, "data").await;
    let refused = ada
        .post(&messages, json!({"content": "without a quorum"}))
        .await;
    assert_eq!(
        refused.status, 503,
        "cut {others:?} of {subtree:?}: {refused:?}"
    );

    cluster.heal(writer).await;
    let posted = ada.post(&messages, json!({"content": "healed"})).await;
    assert_eq!(posted.status, 201, "{posted:?}");
}
