//! `control-bench`: measures the control plane on real processes over loopback.
//!
//! For each cluster size it starts the bootstrap, the nameserver and N nodes at once (as `make up`
//! does), then measures, over several runs:
//! - election: from the last node's start until every node is ready in one valid tree;
//! - the control messages (topology, election, tree; heartbeats excluded) sent until then, and the
//!   number of links of the neighbour graph (DESIGN §10 compares the messages with `m·log n`);
//! - heal after SIGKILL of a leaf, of an interior node (one whose loss keeps the graph connected)
//!   and of the leader: until the survivors form one valid tree again;
//! - writer failover: after SIGKILL of the node whose `/status` says `"accepting_writes": true` (the
//!   leader), until another node says so (writes are accepted again). Measured on the same kill as the
//!   leader heal.
//!
//! It prints medians (the middle sample; the upper of the two middles for an even count) with min and
//! max per size, and with `--json PATH` writes every sample. Use the release build:
//! `cargo build --release --bins && target/release/control-bench --sizes 4,8,16,32 --runs 5`.
//! Ctrl-C or SIGTERM stops it and every process it started.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use system_tests::cluster::{Cluster, connected};
use system_tests::tree::{TreeView, check_tree};

#[derive(Debug, Parser)]
#[command(
    about = "Measures election, heal and writer failover times of real cluster processes on loopback"
)]
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
    /// Also write every sample and the medians as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Every sample of one cluster size.
#[derive(Debug, Default)]
struct Samples {
    election: Vec<Duration>,
    messages: Vec<u64>,
    /// Links of the neighbour graph (undirected), one per run.
    links: Vec<u64>,
    heal_leaf: Vec<Duration>,
    heal_interior: Vec<Duration>,
    heal_leader: Vec<Duration>,
    writer_failover: Vec<Duration>,
    /// Half the nodes killed at once (after the failover): until the rest are one tree again, and
    /// until one of them accepts writes (when a majority of the voters survived).
    heal_half: Vec<Duration>,
    writes_after_half: Vec<Duration>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut results = BTreeMap::new();
    // Dropping the measurement drops its cluster, whose processes are SIGKILLed on drop.
    let finished = tokio::select! {
        () = measure_all(&args, &mut results) => true,
        () = stop_requested() => false,
    };
    eprintln!();
    if !finished {
        eprintln!("control-bench: stopped; the clusters it started are gone");
        return ExitCode::from(130);
    }
    print_table(&results);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&to_json(&args, &results))
            .expect("a JSON value always serialises");
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("control-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("JSON written to {}", path.display());
    }
    ExitCode::SUCCESS
}

async fn measure_all(args: &Args, results: &mut BTreeMap<u64, Samples>) {
    let timeout = Duration::from_secs(args.timeout);
    for &size in &args.sizes {
        let samples = results.entry(size).or_default();
        for run in 1..=args.runs {
            eprint!("\rN={size:<3} run {run}/{}   ", args.runs);
            measure_once(size, timeout, samples).await;
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_requested() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
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
    let graph = cluster.neighbour_graph(&all).await;
    samples
        .links
        .push(graph.values().map(|links| links.len() as u64).sum::<u64>() / 2);
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
        let rest = without(&all, leaf);
        if converge(&cluster, &rest, timeout).await.is_some() {
            samples.heal_leaf.push(started.elapsed());
        }
        cluster.restart(leaf);
        if converge(&cluster, &all, timeout).await.is_none() {
            return;
        }
    }

    let views = read_views(&cluster, &all).await;
    let interior = views.iter().map(|v| v.id).find(|&id| {
        id != leader
            && views.iter().any(|v| v.id == id && !v.children.is_empty())
            && connected(&graph, &without(&all, id))
    });
    if let Some(interior) = interior {
        cluster.kill(interior);
        let started = Instant::now();
        let rest = without(&all, interior);
        if converge(&cluster, &rest, timeout).await.is_some() {
            samples.heal_interior.push(started.elapsed());
        }
        cluster.restart(interior);
        if converge(&cluster, &all, timeout).await.is_none() {
            return;
        }
    }

    let leader = converge(&cluster, &all, timeout).await.unwrap_or(leader);
    let writer = wait_for_writer(&cluster, &all, timeout).await;
    if writer.is_none() {
        eprintln!("\nN={size}: no node accepted writes within {timeout:?}");
    }
    let victim = writer.unwrap_or(leader);
    let rest = without(&all, victim);
    if connected(&graph, &rest) {
        cluster.kill(victim);
        let started = Instant::now();
        let (tree, writes) = watch_failover(&cluster, &rest, started, timeout).await;
        if let Some(tree) = tree.filter(|_| victim == leader) {
            samples.heal_leader.push(tree);
        }
        if let Some(writes) = writes.filter(|_| writer.is_some()) {
            samples.writer_failover.push(writes);
        }
        if size >= 8 {
            kill_half(&mut cluster, &rest, size, timeout, samples).await;
        }
    }
}

/// Kills nodes of `alive` until half the cluster is down (a different half every run), then times
/// the survivors into one tree (repair joins what the failures split) and to a writer.
async fn kill_half(
    cluster: &mut Cluster,
    alive: &[u64],
    size: u64,
    timeout: Duration,
    samples: &mut Samples,
) {
    let run = samples.heal_half.len() as u64 + samples.election.len() as u64;
    let mut survivors = alive.to_vec();
    let mut victims = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (size << 8) ^ run;
    while survivors.len() as u64 > size - size / 2 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let index = (state >> 33) as usize % survivors.len();
        victims.push(survivors.remove(index));
    }
    let statuses = read_statuses(cluster, &survivors).await;
    let voters: Vec<u64> = statuses
        .values()
        .find_map(|status| status["voters"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    for &victim in &victims {
        cluster.kill(victim);
    }
    let started = Instant::now();
    if converge(cluster, &survivors, timeout).await.is_none() {
        eprintln!("\nN={size}: the survivors of {victims:?} formed no tree within {timeout:?}");
        return;
    }
    samples.heal_half.push(started.elapsed());
    let voters_alive = voters.iter().filter(|v| survivors.contains(v)).count();
    if voters_alive * 2 > voters.len()
        && wait_for_writer(cluster, &survivors, timeout)
            .await
            .is_some()
    {
        samples.writes_after_half.push(started.elapsed());
    }
}

fn without(ids: &[u64], gone: u64) -> Vec<u64> {
    ids.iter().copied().filter(|&id| id != gone).collect()
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

/// The one node among `ids` that accepts writes, once exactly one does.
async fn wait_for_writer(cluster: &Cluster, ids: &[u64], timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let accepting: Vec<u64> = read_statuses(cluster, ids)
            .await
            .into_iter()
            .filter(|(_, status)| accepts_writes(status))
            .map(|(id, _)| id)
            .collect();
        if let [writer] = accepting[..] {
            return Some(writer);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// After the writer was killed at `since`: how long until the survivors `rest` form one valid tree, and
/// until one of them accepts writes (each `None` if not within `timeout`).
async fn watch_failover(
    cluster: &Cluster,
    rest: &[u64],
    since: Instant,
    timeout: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let mut tree = None;
    let mut writes = None;
    while since.elapsed() < timeout && (tree.is_none() || writes.is_none()) {
        let statuses = read_statuses(cluster, rest).await;
        let elapsed = since.elapsed();
        if writes.is_none() && statuses.values().any(accepts_writes) {
            writes = Some(elapsed);
        }
        let views: Vec<TreeView> = statuses
            .values()
            .filter_map(TreeView::from_status)
            .collect();
        if tree.is_none() && views.len() == rest.len() && check_tree(&views).is_ok() {
            tree = Some(elapsed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (tree, writes)
}

fn accepts_writes(status: &Value) -> bool {
    status["accepting_writes"] == true
}

/// The `/status` of each node in `ids` that answers, asked all at once (so one poll of 32 nodes costs
/// about one round trip, not 32).
async fn read_statuses(cluster: &Cluster, ids: &[u64]) -> BTreeMap<u64, Value> {
    let answers = futures::future::join_all(
        ids.iter()
            .map(|&id| async move { (id, cluster.status(id).await) }),
    )
    .await;
    answers
        .into_iter()
        .filter_map(|(id, status)| Some((id, status?)))
        .collect()
}

async fn read_views(cluster: &Cluster, ids: &[u64]) -> Vec<TreeView> {
    read_statuses(cluster, ids)
        .await
        .values()
        .filter_map(TreeView::from_status)
        .collect()
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
        "{:>4} | {:>22} | {:>9} | {:>5} | {:>22} | {:>22} | {:>22} | {:>22}",
        "N",
        "election ms (min-max)",
        "messages",
        "links",
        "heal leaf ms",
        "heal interior ms",
        "new leader ms",
        "writer failover ms"
    );
    println!("{}", "-".repeat(150));
    let half_rows: Vec<String> = results
        .iter()
        .filter(|(_, samples)| !samples.heal_half.is_empty())
        .map(|(size, samples)| {
            format!(
                "{:>4} | {:>22} | {:>22}",
                size,
                summary(&samples.heal_half),
                summary(&samples.writes_after_half)
            )
        })
        .collect();
    for (size, samples) in results {
        println!(
            "{:>4} | {:>22} | {:>9} | {:>5} | {:>22} | {:>22} | {:>22} | {:>22}",
            size,
            summary(&samples.election),
            middle(&samples.messages).map_or("-".into(), |m| m.to_string()),
            middle(&samples.links).map_or("-".into(), |m| m.to_string()),
            summary(&samples.heal_leaf),
            summary(&samples.heal_interior),
            summary(&samples.heal_leader),
            summary(&samples.writer_failover),
        );
    }
    if !half_rows.is_empty() {
        println!();
        println!(
            "{:>4} | {:>22} | {:>22}",
            "N", "half killed: tree ms", "half killed: writes ms"
        );
        println!("{}", "-".repeat(54));
        for row in half_rows {
            println!("{row}");
        }
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

/// The middle sample: the upper of the two middles for an even count (always a measured value).
fn middle<T: Ord + Copy>(samples: &[T]) -> Option<T> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// `{"runs","timeout_secs","sizes":{"<N>":{"election_ms":{"samples":[…],"median","min","max"},…}}}`.
fn to_json(args: &Args, results: &BTreeMap<u64, Samples>) -> Value {
    let times = |samples: &[Duration]| {
        let ms: Vec<f64> = samples
            .iter()
            .map(|sample| (sample.as_secs_f64() * 10_000.0).round() / 10.0)
            .collect();
        spread(ms)
    };
    let counts = |samples: &[u64]| spread(samples.iter().map(|&count| count as f64).collect());
    let sizes: serde_json::Map<String, Value> = results
        .iter()
        .map(|(size, samples)| {
            let value = json!({
                "election_ms": times(&samples.election),
                "messages": counts(&samples.messages),
                "links": counts(&samples.links),
                "heal_leaf_ms": times(&samples.heal_leaf),
                "heal_interior_ms": times(&samples.heal_interior),
                "heal_leader_ms": times(&samples.heal_leader),
                "writer_failover_ms": times(&samples.writer_failover),
                "heal_half_ms": times(&samples.heal_half),
                "writes_after_half_ms": times(&samples.writes_after_half),
            });
            (size.to_string(), value)
        })
        .collect();
    json!({
        "tool": "control-bench",
        "runs": args.runs,
        "timeout_secs": args.timeout,
        "sizes": sizes,
    })
}

/// Samples with their middle, min and max (`null` when there are none).
fn spread(mut samples: Vec<f64>) -> Value {
    let raw = samples.clone();
    samples.sort_by(f64::total_cmp);
    json!({
        "samples": raw,
        "median": samples.get(samples.len() / 2),
        "min": samples.first(),
        "max": samples.last(),
    })
}
