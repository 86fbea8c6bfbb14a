//! Logging: one file per subsystem in the node's `log_dir`, plus short lines on stderr.
//!
//! Files keep the detail (`control.log`, `data.log`, `storage.log`, `web.log`, and `node.log` for the
//! orchestrator and everything else), routed by the module an event comes from, so the folder layout of
//! `src/` is also the layout of the logs. Stderr is for a person watching a terminal: warnings, errors,
//! and the few "headline" events (elections, role changes) that say what the node is doing.
//! The level comes from `CHAT_LOG` (`error` … `trace`, default `info`).

use std::io::IsTerminal;
use std::path::Path;

use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines each file's writer buffers before dropping new ones (lossy: a burst of logging must never
/// block the node). The library's default of 128,000 preallocates a slot per line — about 5 MB of
/// resident memory per file, most of an idle node's footprint — for bursts this node never makes.
const LINES_BUFFERED: usize = 4096;

/// Target for events that deserve a line on stderr at `info`: `tracing::info!(target: HEADLINE, ...)`.
pub const HEADLINE: &str = "headline";

/// The log files a node writes, one per subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsystem {
    Control,
    Data,
    Storage,
    Web,
    Node,
}

impl Subsystem {
    pub const ALL: [Subsystem; 5] = [
        Subsystem::Control,
        Subsystem::Data,
        Subsystem::Storage,
        Subsystem::Web,
        Subsystem::Node,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Subsystem::Control => "control.log",
            Subsystem::Data => "data.log",
            Subsystem::Storage => "storage.log",
            Subsystem::Web => "web.log",
            Subsystem::Node => "node.log",
        }
    }

    /// The subsystem an event belongs to, from its target (the emitting module path by default).
    pub fn of_target(target: &str) -> Subsystem {
        let module = target.strip_prefix("cluster_node::").unwrap_or("");
        let layer = module.split("::").next().unwrap_or("");
        match layer {
            "control" | "transport" => Subsystem::Control,
            "data" => Subsystem::Data,
            "storage" => Subsystem::Storage,
            "web" => Subsystem::Web,
            _ if target.starts_with("overlay") => Subsystem::Control,
            _ if target.starts_with("sqlx") => Subsystem::Storage,
            _ => Subsystem::Node,
        }
    }
}

/// Keeps the background log writers alive; drop it last so buffered lines reach the files.
#[must_use = "dropping the guards stops the log writers"]
pub struct LogGuards(#[allow(dead_code)] Vec<WorkerGuard>);

/// Installs the global subscriber. Call once, from `main`.
pub fn init(log_dir: &Path) -> std::io::Result<LogGuards> {
    std::fs::create_dir_all(log_dir)?;
    let level = std::env::var("CHAT_LOG")
        .ok()
        .and_then(|text| text.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);

    let mut guards = Vec::new();
    let mut layers = Vec::new();
    for subsystem in Subsystem::ALL {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(subsystem.file_name()))?;
        let (writer, guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(LINES_BUFFERED)
            .lossy(true)
            .thread_name(subsystem.file_name())
            .finish(file);
        guards.push(guard);
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter_fn(move |meta| {
                    Subsystem::of_target(meta.target()) == subsystem && level >= *meta.level()
                }))
                .boxed(),
        );
    }
    layers.push(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .compact()
            .with_filter(filter_fn(|meta| {
                *meta.level() <= Level::WARN
                    || (meta.target() == HEADLINE && *meta.level() <= Level::INFO)
            }))
            .boxed(),
    );
    tracing_subscriber::registry().with(layers).init();
    Ok(LogGuards(guards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_routed_to_the_file_of_their_layer() {
        assert_eq!(
            Subsystem::of_target("cluster_node::control::election"),
            Subsystem::Control
        );
        assert_eq!(
            Subsystem::of_target("cluster_node::transport::zmq"),
            Subsystem::Control
        );
        assert_eq!(Subsystem::of_target("overlay::yoyo"), Subsystem::Control);
        assert_eq!(
            Subsystem::of_target("cluster_node::data::routing"),
            Subsystem::Data
        );
        assert_eq!(
            Subsystem::of_target("cluster_node::storage"),
            Subsystem::Storage
        );
        assert_eq!(Subsystem::of_target("sqlx::query"), Subsystem::Storage);
        assert_eq!(
            Subsystem::of_target("cluster_node::web::handlers"),
            Subsystem::Web
        );
        assert_eq!(
            Subsystem::of_target("cluster_node::discovery"),
            Subsystem::Node
        );
        assert_eq!(Subsystem::of_target(HEADLINE), Subsystem::Node);
        assert_eq!(Subsystem::of_target("hyper::proto"), Subsystem::Node);
    }
}
