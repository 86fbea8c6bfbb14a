//! `chat-bench`: a load generator that measures the chat cluster through its public JSON HTTP API.
//!
//! ```text
//!   config ──► setup (nameserver endpoints, users, groups) ──► workload (N client tasks) ──► report
//!                 │                                                 │
//!                 └──────── client: one cookie-carrying HTTP client per user, one input node each
//! ```
//!
//! [`run`] is the whole tool behind the binary; tests call it in-process.

pub mod client;
pub mod config;
pub mod cpu;
pub mod hot;
pub mod report;
pub mod saved_setup;
pub mod setup;
pub mod suite;
pub mod workload;

use std::time::{SystemTime, UNIX_EPOCH};

pub use config::{Args, Config, Progress, Workload};
pub use report::Report;

/// Why a run failed before it could measure anything.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("setup failed: {0}")]
    Setup(#[from] setup::SetupError),
    #[error("users file: {0}")]
    SavedSetup(#[from] saved_setup::SavedSetupError),
}

/// A fresh id for a run: 8 hex digits, part of every user and group name it creates.
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Prepares users and groups (or takes them from `--users-file`), runs the workload and answers what it
/// measured.
pub async fn run(config: Config) -> Result<Report, BenchError> {
    config.validate()?;
    let run_id = new_run_id();
    let started_at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0);
    let (prepared, reused_setup) = match &config.users_file {
        Some(path) if path.exists() => (saved_setup::load(&config, path, &run_id).await?, true),
        Some(path) => {
            let prepared = setup::prepare(&config, &run_id).await?;
            saved_setup::save(path, &config, &prepared)?;
            (prepared, false)
        }
        None => (setup::prepare(&config, &run_id).await?, false),
    };
    let outcome = workload::run(&config, &prepared).await;

    let mut total = outcome.reads.clone();
    total.merge(&outcome.writes);
    let clients_per_node = (0..prepared.endpoints.len())
        .map(|node| prepared.users.iter().filter(|u| u.node == node).count())
        .collect();
    Ok(Report {
        tool: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        run_id,
        started_at_unix_ms,
        parameters: report::Parameters::of(&config),
        input_nodes: prepared.endpoints.len(),
        endpoints: prepared.endpoints.clone(),
        clients_per_node,
        setup_secs: report::rounded(prepared.took.as_secs_f64(), 3),
        reused_setup,
        measured_secs: report::rounded(outcome.measured.as_secs_f64(), 3),
        reads: outcome.reads.summarise(outcome.measured),
        writes: outcome.writes.summarise(outcome.measured),
        total: total.summarise(outcome.measured),
        cpu: outcome.cpu,
    })
}
