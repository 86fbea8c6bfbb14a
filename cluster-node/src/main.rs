//! `cluster-node NODE_<id>/.cfg`: parse the config, start logging, run until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cluster_node::recovery::{self, StartOptions};
use cluster_node::{Config, Node, logging, shutdown_signal};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system allocator: a read of a chat page allocates and frees hundreds of
/// small strings, and glibc's malloc took about a fifth of a node's CPU under load (docs/PERFORMANCE.md).
/// Built without transparent huge pages (`no_thp`): with them, each thread's first allocations made
/// 2 MiB pages resident and an idle node grew to 45 MB (25–29 MB without).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One node of the chat cluster.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The node's configuration file, e.g. NODE_3/.cfg
    config: PathBuf,
    /// Enable the admin fault switch (POST/DELETE /fault) used by partition tests.
    #[arg(long)]
    allow_faults: bool,
    /// Start from this backup (made by `GET /backup` or `chat-admin backup`): it replaces the node's
    /// database; refused if that database holds data, unless --force.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// With --restore: replace a database that holds data.
    #[arg(long, requires = "restore")]
    force: bool,
    /// Disaster recovery, when a majority of the voters is lost for good: this node becomes the only
    /// voter, so it can write again and grow the voter set (docs/OPERATIONS.md: use the freshest
    /// survivor; what the lost voters alone held is lost).
    #[arg(long)]
    force_configuration: bool,
}

/// Exit code for a configuration the node refuses to run with.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("cluster-node: {error}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    config.allow_faults |= args.allow_faults;
    let _guards = match logging::init(&config.log_dir) {
        Ok(guards) => guards,
        Err(error) => {
            eprintln!(
                "cluster-node: cannot open logs in {}: {error}",
                config.log_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cluster-node: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let start = StartOptions {
        restore: args.restore,
        force: args.force,
        force_configuration: args.force_configuration,
    };
    runtime.block_on(async {
        if let Err(error) = recovery::prepare(&config, &start).await {
            tracing::error!(%error, "cannot start");
            eprintln!("cluster-node: {error}");
            return ExitCode::from(BAD_CONFIG);
        }
        let node = match Node::build(config).await {
            Ok(node) => node,
            Err(error) => {
                tracing::error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            trigger.cancel();
        });
        node.run_until_stopped(shutdown).await;
        ExitCode::SUCCESS
    })
}
