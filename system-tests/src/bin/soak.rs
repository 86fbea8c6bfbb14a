//! `soak`: a randomised failover soak on one long-lived cluster.
//!
//! Starts a cluster of `--nodes` nodes and one workload, then, until `--minutes` have passed, picks a
//! random scenario (seeded: `--seed` replays the same sequence of choices; the timing of real
//! processes is not replayed), runs it while the workload writes, and runs the checker over *every*
//! record so far, so a message acknowledged in the first step must still be there after the last.
//! Stops at the first problem with the seed and step printed, exit code 1.
//!
//! `make soak MINUTES=10` (debug binaries, as the tests use), or
//! `cargo run -p system-tests --bin soak -- --minutes 10 --seed 42`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use system_tests::checker;
use system_tests::cluster::Cluster;
use system_tests::scenario::{self, Pacing, Scenario, Shape};
use system_tests::workload::{Workload, WorkloadConfig};

#[derive(Debug, Parser)]
#[command(about = "Random failover scenarios on one cluster, checked after every step")]
struct Args {
    /// How long to keep going (a step under way is finished).
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Seed of the scenario choices; random when not given (and printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// Scenarios never to pick (comma separated names, e.g. `split-writer-with-two`), to look past
    /// a known failure.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<Scenario>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let skip: Vec<&str> = args.skip.iter().map(|scenario| scenario.name()).collect();
    let replay = format!(
        "replay: make soak MINUTES={} SEED={seed} SKIP={}",
        args.minutes,
        skip.join(",")
    );
    println!(
        "soak: seed {seed}, {} minutes, {} nodes ({replay})",
        args.minutes, args.nodes
    );
    let choices: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|scenario| !args.skip.contains(scenario))
        .collect();
    if choices.is_empty() {
        println!("soak: every scenario is skipped");
        return ExitCode::FAILURE;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let pacing = Pacing::default();
    let deadline = Instant::now() + Duration::from_secs(args.minutes * 60);

    let mut cluster = Cluster::start(args.nodes);
    if let Err(problem) = Shape::observe(&cluster, pacing.converge).await {
        println!("soak: the new cluster formed no tree: {problem}");
        return ExitCode::FAILURE;
    }
    let workload = Workload::prepare(&cluster, WorkloadConfig::default()).await;
    let mut records = Vec::new();
    let (mut steps, mut skipped) = (0, 0);
    while Instant::now() < deadline {
        let scenario = choices[rng.random_range(0..choices.len())];
        steps += 1;
        let shape = match Shape::observe(&cluster, pacing.converge).await {
            Ok(shape) => shape,
            Err(problem) => {
                println!("soak: step {steps}: no tree before {scenario}: {problem}\n{replay}");
                return ExitCode::FAILURE;
            }
        };
        let plan = match scenario::plan(scenario, &shape) {
            Ok(plan) => plan,
            Err(reason) => {
                skipped += 1;
                println!("soak: step {steps}: {scenario} skipped: {reason}");
                continue;
            }
        };
        println!("soak: step {steps}: {scenario} on {shape}");
        let report = scenario::run(&mut cluster, &workload, scenario, &shape, plan, &pacing).await;
        print!("{report}");
        records.extend(report.workload.records.iter().cloned());
        let mut problems = report.problems.clone();
        match checker::check(&cluster, &workload, &records, pacing.check).await {
            Ok(summary) => println!("[{scenario}] {summary}"),
            Err(violation) => problems.push(violation),
        }
        if !problems.is_empty() {
            println!(
                "soak: FAILED at step {steps} ({scenario}):\n{}\n{replay}",
                problems.join("\n")
            );
            return ExitCode::FAILURE;
        }
    }
    let acknowledged = records.iter().filter(|record| record.is_ok()).count();
    println!(
        "soak: passed {} steps ({skipped} skipped) in {} minutes: {} messages, {acknowledged} \
         acknowledged, none lost (seed {seed})",
        steps - skipped,
        args.minutes,
        records.len(),
    );
    ExitCode::SUCCESS
}
