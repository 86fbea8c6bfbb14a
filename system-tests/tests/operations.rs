//! Operating a cluster of real processes: a backup taken under write load restores into a fresh
//! cluster holding exactly the backup, and a cluster that lost a majority of its voters for good
//! writes again after the documented recovery (docs/OPERATIONS.md).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use system_tests::binary;
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;
use system_tests::workload::{Outcome, PASSWORD, Workload, WorkloadConfig};

/// `chat-admin --config NODE_1/.cfg backup --out DIR`: the backup's path, epoch and content hash.
fn take_backup(cluster: &Cluster, out: &Path) -> (String, u64, String) {
    let output = Command::new(binary("chat-admin"))
        .arg("--config")
        .arg(&cluster.spec(1).config_path)
        .arg("backup")
        .arg("--out")
        .arg(out)
        .output()
        .expect("chat-admin runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chat-admin backup: {stdout}{stderr}"
    );
    // `<path>: epoch E, term T, S MiB, content hash H (checked)`
    let (path, rest) = stdout.trim().split_once(": epoch ").expect("a backup line");
    let epoch: u64 = rest
        .split(',')
        .next()
        .and_then(|epoch| epoch.parse().ok())
        .expect("an epoch");
    let hash = rest
        .split("content hash ")
        .nth(1)
        .and_then(|tail| tail.split_whitespace().next())
        .expect("a hash")
        .to_owned();
    assert!(Path::new(path).exists(), "{path}");
    (path.to_owned(), epoch, hash)
}

/// Every message of `group` as `id → epoch`, read through `client` (newest page first, then older).
async fn group_messages(client: &ChatClient, group: &str) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(before) => format!("/api/groups/{group}/messages?limit=100&before={before}"),
            None => format!("/api/groups/{group}/messages?limit=100"),
        };
        let page = client.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        let messages = page.body.as_array().expect("a list").clone();
        for message in &messages {
            all.push((
                message["id"].as_str().expect("an id").to_owned(),
                message["epoch"].as_u64().expect("an epoch"),
            ));
        }
        match messages.first() {
            Some(oldest) if messages.len() == 100 => before = oldest["epoch"].as_u64(),
            _ => return all,
        }
    }
}

fn input_url(status: &Value) -> Option<String> {
    status["http"].as_str().map(str::to_owned)
}

/// An input node that answers HTTP now: a cluster started from a backup can still reshape its tree
/// right after it first formed, and a node its `/status` just called an input node may have closed
/// its server since (a login there was once refused).
async fn any_input(cluster: &Cluster, ids: &[u64], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    loop {
        let urls: Vec<String> = cluster
            .statuses(ids)
            .await
            .values()
            .filter_map(input_url)
            .collect();
        for url in urls {
            if probe.get(format!("{url}/api/me")).send().await.is_ok() {
                return url;
            }
        }
        assert!(Instant::now() < deadline, "no input node among {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn grep_logs(cluster: &Cluster, id: u64, needle: &str) -> bool {
    let logs = cluster
        .spec(id)
        .config_path
        .parent()
        .expect("a node folder")
        .join("logs");
    std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|entry| std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(needle)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_load_restores_into_a_fresh_cluster_with_its_exact_data() {
    let old = Cluster::start_in_order(4).await;
    let ids = [1, 2, 3, 4];
    old.wait_for_writer(&ids, Duration::from_secs(30)).await;
    let workload = Workload::prepare(&old, WorkloadConfig::default()).await;
    let groups: Vec<String> = workload.groups().iter().map(|g| g.id.clone()).collect();
    let running = workload.start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Outside the old cluster's folder, which goes with it.
    let folder = tempfile::tempdir().expect("a folder for backups");
    let backups = folder.path().join("backups");
    let started = Instant::now();
    let (file, epoch, hash) = take_backup(&old, &backups);
    eprintln!(
        "backup at epoch {epoch} taken under load in {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = running.stop().await;
    let acknowledged: Vec<(String, u64)> = report
        .records
        .iter()
        .filter_map(|record| match &record.outcome {
            Outcome::Ok { id, epoch } => Some((id.clone(), *epoch)),
            _ => None,
        })
        .collect();
    let before: BTreeSet<&str> = acknowledged
        .iter()
        .filter(|(_, at)| *at <= epoch)
        .map(|(id, _)| id.as_str())
        .collect();
    let after = acknowledged.len() - before.len();
    assert!(
        !before.is_empty() && after > 0,
        "the backup fell inside the load: {} acknowledged before it, {after} after",
        before.len()
    );
    drop(old);

    let new = Cluster::start_in_order_with(4, &["--restore", &file]).await;
    for id in ids {
        assert!(
            grep_logs(&new, id, &hash),
            "node {id} restored a database with the backup's content hash {hash}"
        );
    }
    let writer = new.wait_for_writer(&ids, Duration::from_secs(60)).await;
    let data = new
        .admin_get(writer, "/data")
        .await
        .expect("the writer answers")
        .1;
    let continued = data["epoch"].as_u64().expect("an epoch");
    assert!(
        continued > epoch,
        "the epochs continue after the backup's: {data}"
    );

    let url = any_input(&new, &ids, Duration::from_secs(30)).await;
    let client = ChatClient::new(url);
    let login = client
        .post(
            "/api/login",
            json!({"username": "w0", "tag": workload.users()[0].tag, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    let mut restored = BTreeSet::new();
    for group in &groups {
        for (id, at) in group_messages(&client, group).await {
            assert!(
                at <= epoch,
                "message {id} at epoch {at} is newer than the backup"
            );
            restored.insert(id);
        }
    }
    let missing: Vec<&&str> = before
        .iter()
        .filter(|id| !restored.contains(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged by epoch {epoch} but not restored: {missing:?}"
    );
    let sent = client
        .post(
            &format!("/api/groups/{}/messages", groups[0]),
            json!({"content": "after the restore"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert!(sent.body["epoch"].as_u64().expect("an epoch") > epoch);
    eprintln!(
        "restored {} messages of epoch {epoch}; {after} acknowledged after the backup are not in it",
        before.len()
    );

    // A node that holds data refuses a restore without --force, and says so.
    let refused = Command::new(binary("cluster-node"))
        .arg(&new.spec(2).config_path)
        .arg("--restore")
        .arg(&file)
        .output()
        .expect("cluster-node runs");
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("already holds data") && said.contains("--force"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_lost_two_of_three_voters_writes_again_after_forcing_the_configuration() {
    let mut cluster = Cluster::start_in_order(4).await;
    let ids = [1, 2, 3, 4];
    let writer = cluster.wait_for_writer(&ids, Duration::from_secs(30)).await;
    let url = any_input(&cluster, &ids, Duration::from_secs(30)).await;
    let client = ChatClient::new(url);
    client.sign_up("ada").await;
    let group = client.post("/api/groups", json!({"name": "before"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let group = group.body["id"].as_str().expect("an id").to_owned();
    let mut sent = Vec::new();
    for n in 0..10 {
        let reply = client
            .post(
                &format!("/api/groups/{group}/messages"),
                json!({"content": format!("before {n}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        sent.push(reply.body["id"].as_str().expect("an id").to_owned());
    }
    // Wait until the voter set is complete, then lose two voters for good (the writer among them
    // when it votes: the harder case).
    let deadline = Instant::now() + Duration::from_secs(30);
    let voters: Vec<u64> = loop {
        let status = cluster.status(writer).await.expect("the writer answers");
        let voters: Vec<u64> = status["voters"]
            .as_array()
            .map(|all| all.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if voters.len() == 3 {
            break voters;
        }
        assert!(Instant::now() < deadline, "three voters: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut lost: Vec<u64> = voters.iter().copied().filter(|&v| v == writer).collect();
    lost.extend(voters.iter().copied().filter(|&v| v != writer));
    lost.truncate(2);
    for &id in &lost {
        cluster.kill(id);
    }
    let survivors: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !lost.contains(id))
        .collect();
    eprintln!("voters {voters:?}; lost {lost:?} for good; survivors {survivors:?}");
    // Without them no write can be acknowledged: no survivor accepts writes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        cluster.accepting_writes(&survivors).await.is_empty(),
        "a minority of the voters must not accept writes"
    );

    // The documented recovery: stop the survivors, start the freshest with --force-configuration,
    // wait until it writes, then start the others.
    let mut freshest = (0, 0, 0);
    for &id in &survivors {
        let data = cluster
            .admin_get(id, "/data")
            .await
            .expect("a survivor answers")
            .1;
        let position = (
            data["term"].as_u64().unwrap_or(0),
            data["epoch"].as_u64().unwrap_or(0),
        );
        if (position.0, position.1) > (freshest.1, freshest.2) {
            freshest = (id, position.0, position.1);
        }
    }
    let (chosen, _, held) = freshest;
    for &id in &survivors {
        cluster.kill(id);
    }
    let started = Instant::now();
    cluster.restart_with(chosen, &["--force-configuration"]);
    cluster
        .wait_for_writer(&[chosen], Duration::from_secs(60))
        .await;
    eprintln!(
        "node {chosen} (epoch {held}) accepts writes {:?} after its forced start",
        started.elapsed()
    );
    for &id in survivors.iter().filter(|&&id| id != chosen) {
        cluster.restart(id);
    }
    // The session cookie is signed with the cluster key, so it holds on whichever node serves now.
    let mut client = client;
    let deadline = Instant::now() + Duration::from_secs(60);
    let reply = loop {
        client.switch_to(any_input(&cluster, &survivors, Duration::from_secs(60)).await);
        let reply = client
            .post(
                &format!("/api/groups/{group}/messages"),
                json!({"content": "after the recovery"}),
            )
            .await;
        if reply.status == 201 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reply.status, 201, "a write after the recovery: {reply:?}");
    let messages = group_messages(&client, &group).await;
    let kept: BTreeSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    for id in &sent {
        assert!(kept.contains(id.as_str()), "message {id} survived");
    }
    // The writer grows the voter set again from the survivors.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let writer = cluster
            .wait_for_writer(&survivors, Duration::from_secs(30))
            .await;
        let status = cluster.status(writer).await.expect("the writer answers");
        let voters = status["voters"].as_array().map_or(0, Vec::len);
        if voters == survivors.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the voter set grows back to the survivors: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `chat-admin remove-node ID [--force]`: success, and what it printed (stdout or the error).
fn remove_node(cluster: &Cluster, asking: u64, id: u64, force: bool) -> (bool, String) {
    let mut command = Command::new(binary("chat-admin"));
    command
        .arg("--config")
        .arg(&cluster.spec(asking).config_path)
        .arg("remove-node")
        .arg(id.to_string());
    if force {
        command.arg("--force");
    }
    let output = command.output().expect("chat-admin runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn voters_of(cluster: &Cluster, writer: u64) -> Vec<u64> {
    let status = cluster.status(writer).await.expect("the writer answers");
    status["voters"]
        .as_array()
        .map(|all| all.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_voter_is_removed_at_once_and_writes_keep_a_full_voter_set() {
    let mut cluster = Cluster::start_in_order(5).await;
    let ids = [1, 2, 3, 4, 5];
    let writer = cluster.wait_for_writer(&ids, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let voters = loop {
        let voters = voters_of(&cluster, writer).await;
        if voters.len() == 3 {
            break voters;
        }
        assert!(Instant::now() < deadline, "three voters: {voters:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let victim = *voters
        .iter()
        .find(|&&v| v != writer)
        .expect("a voter besides the writer");
    let asking = *ids
        .iter()
        .find(|&&id| id != victim && id != writer)
        .expect("a third node");

    // Refused: the writer, and a live node without --force.
    let (ok, said) = remove_node(&cluster, asking, writer, false);
    assert!(!ok && said.contains("is the writer"), "{said}");
    let (ok, said) = remove_node(&cluster, asking, victim, false);
    assert!(!ok && said.contains("alive"), "{said}");

    cluster.kill(victim);
    let started = Instant::now();
    // Asked of a node that is not the writer: it forwards to the writer. Until the writer's tree
    // has noticed the death, the node still counts as alive.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (ok, said) = loop {
        let (ok, said) = remove_node(&cluster, asking, victim, false);
        if ok || !said.contains("alive") || Instant::now() > deadline {
            break (ok, said);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ok, "{said}");
    eprintln!("removed voter {victim} in {:?}: {said}", started.elapsed());
    // A replacement joins: first when a caught-up learner is at hand, else as soon as one is (a dead
    // voter's removal alone costs no fault tolerance: the other two were needed either way).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = voters_of(&cluster, writer).await;
        assert!(!after.contains(&victim), "{after:?}");
        if after.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the voter set is full again: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The bootstrap forgot it: the cluster view no longer lists it, and nobody keeps it as a neighbour.
    let url = format!("http://{}/cluster/state", cluster.dir.nameserver_http);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: Value = reqwest::get(&url)
            .await
            .expect("the nameserver answers")
            .json()
            .await
            .expect("json");
        let nodes = state["nodes"].as_array().cloned().unwrap_or_default();
        let listed = nodes.iter().any(|node| node["id"].as_u64() == Some(victim));
        let linked = nodes.iter().any(|node| {
            node["neighbors"]
                .as_array()
                .is_some_and(|n| n.iter().any(|id| id.as_u64() == Some(victim)))
        });
        if !listed && !linked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} still in the cluster view: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The former neighbours drop it from their overlay (no more heartbeats to its address).
    let rest: Vec<u64> = ids.iter().copied().filter(|&id| id != victim).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let graph = cluster.neighbour_graph(&rest).await;
        if graph
            .values()
            .all(|neighbours| !neighbours.contains(&victim))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} still a neighbour: {graph:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Writes go on with the new voters, and asking again is harmless.
    let url = any_input(
        &cluster,
        &ids.iter()
            .copied()
            .filter(|&id| id != victim)
            .collect::<Vec<_>>(),
        Duration::from_secs(30),
    )
    .await;
    let client = ChatClient::new(url);
    client.sign_up("after").await;
    let group = client.post("/api/groups", json!({"name": "still"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let (ok, said) = remove_node(&cluster, asking, victim, false);
    assert!(ok, "a repeated removal: {said}");
}
