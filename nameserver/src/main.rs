//! `nameserver`: parse flags, start logging, serve gRPC and HTTP until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use cluster_auth::ProofKey;
use nameserver::{Application, Config, Probing};
use tracing_subscriber::EnvFilter;

/// Keeps the leases of live input nodes and redirects browsers to one of them.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the gRPC service input nodes register with.
    #[arg(long, default_value_t = Config::DEFAULT_GRPC)]
    grpc: SocketAddr,
    /// Address of the HTTP redirector browsers open.
    #[arg(long, default_value_t = Config::DEFAULT_HTTP)]
    http: SocketAddr,
    /// Lease duration in milliseconds; a node that does not renew within it is no longer handed out.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..))]
    lease_ms: u64,
    /// How often, in milliseconds, each leased input node's registered address is checked with a TCP
    /// connection; a node whose check fails is not handed out or listed until a later check succeeds.
    #[arg(long, default_value_t = duration_ms(Probing::DEFAULT_INTERVAL), value_parser = clap::value_parser!(u64).range(1..))]
    probe_interval_ms: u64,
    /// How long, in milliseconds, one such check may take before it counts as failed.
    #[arg(long, default_value_t = duration_ms(Probing::DEFAULT_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    probe_timeout_ms: u64,
    /// Do not check input nodes' addresses: a node is handed out until its lease runs out.
    #[arg(long, conflicts_with_all = ["probe_interval_ms", "probe_timeout_ms"])]
    no_probe: bool,
    /// Address of the bootstrap's gRPC service, asked for the registered nodes the cluster view draws.
    #[arg(long, default_value_t = Config::DEFAULT_BOOTSTRAP)]
    bootstrap: SocketAddr,
    /// File holding the cluster key (required; `init.sh` writes it to `.cluster_key`). Register, Renew
    /// and Deregister must prove they hold it; others are refused with UNAUTHENTICATED.
    #[arg(long, value_name = "PATH")]
    cluster_key_file: Option<PathBuf>,
    /// PEM certificate (chain) of the HTTP side; with --tls-key it serves HTTPS instead of HTTP.
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
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
    let tls = match (args.tls_cert, args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            Some(cluster_tls::server_config(&cert, &key).map_err(|error| {
                let flag = match error.file() {
                    cluster_tls::TlsFile::Certificate => "--tls-cert",
                    cluster_tls::TlsFile::Key => "--tls-key",
                };
                anyhow::anyhow!("{flag}: {error}")
            })?)
        }
        (Some(_), None) => anyhow::bail!("--tls-cert needs --tls-key (HTTPS needs both)"),
        (None, Some(_)) => anyhow::bail!("--tls-key needs --tls-cert (HTTPS needs both)"),
    };
    let probing = if args.no_probe {
        None
    } else {
        // The message names the setting, e.g. "the probe interval must be between 1 ms and 3600 s".
        Some(Probing::new(
            Duration::from_millis(args.probe_interval_ms),
            Duration::from_millis(args.probe_timeout_ms),
        )?)
    };
    let shutdown = shutdown_signal().context("cannot listen for SIGINT and SIGTERM")?;
    let config = Config {
        grpc: args.grpc,
        http: args.http,
        lease: Duration::from_millis(args.lease_ms),
        cluster_key,
    };
    let mut application = Application::build(config)
        .await
        .context("the nameserver could not start")?
        .with_bootstrap(args.bootstrap);
    if let Some(tls) = tls {
        application = application.with_tls(tls);
    }
    if let Some(probing) = probing {
        application = application.with_probing(probing);
    }
    application
        .run_until_stopped(shutdown)
        .await
        .context("the nameserver stopped with an error")
}

/// A default for a `*_ms` flag; the defaults are far below `u64::MAX` milliseconds.
const fn duration_ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
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
