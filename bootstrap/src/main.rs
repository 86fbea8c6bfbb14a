//! `bootstrap`: parse flags, start logging, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bootstrap::{Application, Config};
use clap::Parser;
use cluster_auth::ProofKey;
use tracing_subscriber::EnvFilter;

/// Registers cluster nodes and hands each its neighbours.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address the gRPC service listens on.
    #[arg(long, default_value_t = Config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// JSON file holding the registry; parent directories are created.
    #[arg(long, default_value = Config::DEFAULT_STATE_PATH)]
    state: PathBuf,
    /// File holding the cluster key (required; `init.sh` writes it to `.cluster_key`). Registrations
    /// must prove they hold it; others are refused with UNAUTHENTICATED.
    #[arg(long, value_name = "PATH")]
    cluster_key_file: Option<PathBuf>,
    /// Neighbours per new node, and live neighbours repair keeps every node at (k): the graph stays
    /// k-connected, so any k - 1 nodes may fail at once without splitting the others.
    #[arg(long, default_value_t = Config::DEFAULT_DEGREE, value_parser = parse_degree)]
    degree: usize,
}

fn parse_degree(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(k) if (1..=topology::MAX_K).contains(&k) => Ok(k),
        _ => Err(format!(
            "expected a whole number from 1 to {}",
            topology::MAX_K
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain, e.g. which file is corrupt and why.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // Checked here rather than by clap, whose error spans several lines.
    let key_file = args.cluster_key_file.context(
        "--cluster-key-file is required: the file holding the cluster key (init.sh writes .cluster_key)",
    )?;
    let cluster_key = ProofKey::from_file(&key_file)?;
    let shutdown = shutdown_signal().context("cannot listen for SIGINT and SIGTERM")?;
    let config = Config {
        degree: args.degree,
        ..Config::new(args.listen, args.state, cluster_key)
    };
    let application = Application::build(config)
        .await
        .context("the bootstrap could not start")?;
    application
        .run_until_stopped(shutdown)
        .await
        .context("the bootstrap stopped with an error")
}

/// Installs the SIGINT and SIGTERM handlers at once (before the service starts, so an early signal is
/// never the default "terminate"), and returns a future that completes on the first of them.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("interrupt received, shutting down");
        }
    })
}
