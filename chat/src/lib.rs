//! `chat`, the cluster's terminal client: one-shot commands (`register`, `login`, `send`, `tail`, …)
//! and, without a command, an interactive TUI. It enters the cluster through the nameserver like a
//! browser, keeps its signed session cookie in the user's config folder, and moves to another input
//! node when its own stops answering, resuming the live stream where it left off.
//!
//! ```text
//!   cli ──► commands ──► conversation (a target resolved) ──► connection ──► nameserver, input nodes
//!      └──► tui (app: state and keys, pure; view: drawing) ──► feed (SSE across nodes) ──┘
//! ```

pub mod api;
pub mod cli;
pub mod commands;
pub mod connection;
pub mod conversation;
pub mod error;
pub mod feed;
pub mod session;
pub mod sse;
pub mod target;
pub mod tui;

use cli::Cli;
use error::ClientError;

/// Runs what the command line asks.
pub async fn run(cli: Cli) -> Result<(), ClientError> {
    let context = commands::Context::new(&cli)?;
    match cli.command {
        Some(command) => commands::run(&context, command).await,
        None => tui::run(&context).await,
    }
}
