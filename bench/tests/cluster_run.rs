//! The benchmark tool against real processes: bootstrap, nameserver and three cluster nodes on
//! loopback. No timing is asserted — only that a short run counts successful requests and that its
//! JSON output parses back.

use std::time::{Duration, Instant};

use chat_bench::setup::SetupError;
use chat_bench::{BenchError, Config, Report, Workload};
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(20);

fn short_run(cluster: &Cluster, workload: Workload) -> Config {
    let nameserver = format!("http://{}", cluster.dir.nameserver_http);
    let mut config = Config::new(&nameserver, workload).expect("a loopback config is valid");
    config.clients = 6;
    config.groups = 2;
    config.warmup = Duration::from_millis(500);
    config.duration = Duration::from_secs(2);
    // Bounded by count as well as time, whatever the machine's speed.
    config.max_requests = Some(20_000);
    config
}

/// Waits until the nameserver lists every node whose `/status` shows an HTTP address; answers how many.
async fn wait_until_every_input_node_is_listed(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + CONVERGE;
    let endpoints = format!("http://{}/api/endpoints", cluster.dir.nameserver_http);
    let http = reqwest::Client::new();
    loop {
        let mut serving = Vec::new();
        for id in cluster.live_ids() {
            if let Some(url) = cluster
                .status(id)
                .await
                .and_then(|s| s["http"].as_str().map(str::to_owned))
            {
                serving.push(url.trim_end_matches('/').to_owned());
            }
        }
        let listed: Vec<String> = match http.get(&endpoints).send().await {
            Ok(response) => response
                .json::<Vec<serde_json::Value>>()
                .await
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["url"].as_str())
                .map(|url| url.trim_end_matches('/').to_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        serving.sort();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort();
        if !serving.is_empty() && serving == listed_sorted {
            return serving.len();
        }
        assert!(
            Instant::now() < deadline,
            "the nameserver lists {listed:?}, the nodes serve {serving:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_short_mixed_run_against_three_nodes_counts_successful_reads_and_writes_and_its_json_parses()
 {
    let cluster = Cluster::start_in_order(3).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_until_every_input_node_is_listed(&cluster).await;
    let mut config = short_run(&cluster, Workload::Mixed);
    config.write_ratio = 0.5;

    let report = chat_bench::run(config).await.expect("the run completes");
    eprintln!("{}", report.table());

    assert_eq!(report.input_nodes, inputs, "{report:#?}");
    assert_eq!(report.clients_per_node.iter().sum::<usize>(), 6);
    assert!(report.writes.ok > 0, "no write succeeded: {report:#?}");
    assert!(report.reads.ok > 0, "no read succeeded: {report:#?}");
    assert_eq!(report.total.ok, report.reads.ok + report.writes.ok);
    assert_eq!(report.writes.latency_ms.count, report.writes.ok);
    let json = report.to_json();
    let parsed: Report = serde_json::from_str(&json).expect("the JSON parses back into a report");
    assert_eq!(parsed, report);
    let value: serde_json::Value = serde_json::from_str(&json).expect("the JSON is JSON");
    assert_eq!(value["parameters"]["workload"], "mixed");
    assert!(value["writes"]["ok"].as_u64().is_some_and(|ok| ok > 0));
    assert!(value["total"]["throughput_per_sec"].as_f64().is_some());
}

#[tokio::test]
async fn a_run_without_any_input_node_fails_with_a_clear_error_within_the_setup_timeout() {
    let cluster = Cluster::start(0);
    let mut config = short_run(&cluster, Workload::Write);
    config.setup_timeout = Duration::from_secs(1);

    let outcome = tokio::time::timeout(Duration::from_secs(30), chat_bench::run(config))
        .await
        .expect("setup gives up on its own");

    match outcome {
        Err(BenchError::Setup(SetupError::NoInputNodes { .. })) => {}
        // The nameserver may still be starting: refusing the connection is as clear.
        Err(BenchError::Setup(SetupError::Call { step, .. })) => {
            assert_eq!(step, "list the input nodes")
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_run_with_the_same_users_file_reuses_the_users_and_their_sessions() {
    let cluster = Cluster::start_in_order(3).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    wait_until_every_input_node_is_listed(&cluster).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let users_file = dir.path().join("users.json");
    let mut config = short_run(&cluster, Workload::Write);
    config.users_file = Some(users_file.clone());
    let mut fewer_clients = config.clone();
    fewer_clients.clients = 2;
    fewer_clients.workload = Workload::Read;
    fewer_clients.write_ratio = 0.0;

    let first = chat_bench::run(config)
        .await
        .expect("the first run completes");
    let saved = chat_bench::saved_setup::read(&users_file).expect("the first run saved its users");
    let second = chat_bench::run(fewer_clients)
        .await
        .expect("the second run completes");

    assert!(!first.reused_setup);
    assert_eq!(saved.users.len(), 6);
    assert!(second.reused_setup, "{second:#?}");
    assert_eq!(second.clients_per_node.iter().sum::<usize>(), 2);
    assert!(second.reads.ok > 0, "no read succeeded: {second:#?}");
    assert_eq!(second.reads.failed, 0, "{second:#?}");
}
