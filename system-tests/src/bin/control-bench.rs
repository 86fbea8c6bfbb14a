//! `control-bench`: measures the control plane on real processes over loopback.
//!
//! For each cluster size it starts the bootstrap, the nameserver and N nodes at once (as `make up`
//! does), then measures, over several runs:
//! - election: from the last node's start until every node is ready in one valid tree;
//! - the control messages (topology, election, tree; heartbeats excluded) sent until then;
//! - heal after SIGKILL of a leaf, of an interior node (one whose loss keeps the graph connected)
//!   and of the leader: until the survivors form one valid tree again.
//!
//! It prints medians (and min/max) per size. Use the release build:
//! `cargo build --release --bins && target/release/control-bench --sizes 4,8,16,32 --runs 5`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use system_tests::cluster::{Cluster, connected};
use system_tests::tree::{TreeView, check_tree};

#[derive(Debug, Parser)]
#[command(about = "Measures election and heal times of real cluster processes on loopback")]
struct Args {
    /// Cluster sizes to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    sizes: Vec<u64>,
    /// Runs per size (medians are reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Give up on one measurement after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Debug, Default)]
struct Samples {
    election: Vec<Duration>,
    messages: Vec<u64>,
    heal_leaf: Vec<Duration>,
    heal_interior: Vec<Duration>,
    heal_leader: Vec<Duration>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout);
    let mut results = BTreeMap::new();
    for &size in &args.sizes {
        let mut samples = Samples::default();
        for run in 1..=args.runs {
            eprint!("\rN={size:<3} run {run}/{}   ", args.runs);
            measure_once(size, timeout, &mut samples).await;
        }
        results.insert(size, samples);
    }
    eprintln!();
    print_table(&results);
}

async fn measure_once(size: u64, timeout: Duration, samples: &mut Samples) {
    let mut cluster = Cluster::start(size);
    let last_start = Instant::now();
    let all = cluster.live_ids();
    let Some(leader) = converge(&cluster, &all, timeout).await else {
        eprintln!("\nN={size}: no valid tree within {timeout:?}");
        return;
    };
    samples.election.push(last_start.elapsed());
    samples
        .messages
        .push(protocol_messages(&cluster, &all).await);
    if size < 3 {
        return;
    }

    let views = read_views(&cluster, &all).await;
    let leaf = views
        .iter()
        .find(|v| v.id != leader && v.children.is_empty())
        .map(|v| v.id);
    if let Some(leaf) = leaf {
        cluster.kill(leaf);
        let started = Instant::now();
        let rest: Vec<u64> = all.iter().copied().filter(|&id| id != leaf).collect();
        if converge(&cluster, &rest, timeout).await.is_some() {
            samples.heal_leaf.push(started.elapsed());
        }
        cluster.restart(leaf);
        if converge(&cluster, &all, timeout).await.is_none() {
            return;
        }
    }

    let graph = cluster.neighbour_graph(&all).await;
    let views = read_views(&cluster, &all).await;
    let interior = views.iter().map(|v| v.id).find(|&id| {
        let rest: Vec<u64> = all.iter().copied().filter(|&other| other != id).collect();
        id != leader
            && views.iter().any(|v| v.id == id && !v.children.is_empty())
            && connected(&graph, &rest)
    });
    if let Some(interior) = interior {
        cluster.kill(interior);
        let started = Instant::now();
        let rest: Vec<u64> = all.iter().copied().filter(|&id| id != interior).collect();
        if converge(&cluster, &rest, timeout).await.is_some() {
            samples.heal_interior.push(started.elapsed());
        }
        cluster.restart(interior);
        if converge(&cluster, &all, timeout).await.is_none() {
            return;
        }
    }

    let leader = converge(&cluster, &all, timeout).await.unwrap_or(leader);
    let rest: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    if connected(&graph, &rest) {
        cluster.kill(leader);
        let started = Instant::now();
        if converge(&cluster, &rest, timeout).await.is_some() {
            samples.heal_leader.push(started.elapsed());
        }
    }
}

/// Polls every node in `ids` until they form one valid tree; answers its leader.
async fn converge(cluster: &Cluster, ids: &[u64], timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let views = read_views(cluster, ids).await;
        if views.len() == ids.len()
            && let Ok(leader) = check_tree(&views)
        {
            return Some(leader);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn read_views(cluster: &Cluster, ids: &[u64]) -> Vec<TreeView> {
    let mut views = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(view) = cluster
            .status(id)
            .await
            .as_ref()
            .and_then(TreeView::from_status)
        {
            views.push(view);
        }
    }
    views
}

/// Control messages sent by all nodes, heartbeats excluded (they depend on elapsed time, not work).
async fn protocol_messages(cluster: &Cluster, ids: &[u64]) -> u64 {
    let mut total = 0;
    for &id in ids {
        let Ok(response) = reqwest::get(cluster.spec(id).admin_url("/metrics")).await else {
            continue;
        };
        let text = response.text().await.unwrap_or_default();
        total += text
            .lines()
            .filter(|line| line.starts_with("chat_node_control_messages_sent_total"))
            .filter(|line| !line.contains(r#"scope="heartbeat""#))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|value| value as u64)
            .sum::<u64>();
    }
    total
}

fn print_table(results: &BTreeMap<u64, Samples>) {
    println!(
        "{:>4} | {:>22} | {:>9} | {:>22} | {:>22} | {:>22}",
        "N",
        "election ms (min-max)",
        "messages",
        "heal leaf ms",
        "heal interior ms",
        "new leader ms"
    );
    println!("{}", "-".repeat(115));
    for (size, samples) in results {
        println!(
            "{:>4} | {:>22} | {:>9} | {:>22} | {:>22} | {:>22}",
            size,
            summary(&samples.election),
            median_u64(&samples.messages).map_or("-".into(), |m| m.to_string()),
            summary(&samples.heal_leaf),
            summary(&samples.heal_interior),
            summary(&samples.heal_leader),
        );
    }
}

fn summary(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "-".into();
    }
    let mut ms: Vec<u128> = samples.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    format!(
        "{} ({}-{}) n={}",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    )
}

fn median_u64(samples: &[u64]) -> Option<u64> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}
