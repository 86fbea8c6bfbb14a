//! A node of the chat cluster.
//!
//! Layers, one module each (more arrive with the control and data planes):
//! - [`config`]: the validated `NODE_<id>/.cfg`;
//! - [`discovery`]: registration with the bootstrap service; [`lease`]: an input node's nameserver lease;
//! - [`control`]: the control plane at run time (the algorithms live in the `overlay` crate);
//! - [`data`]: requests up the tree, answers and commits down, replication and write quorums;
//! - [`status`] and [`metrics`]: what the node reports, served by [`admin`]; [`readiness`]: whether
//!   the node should get traffic now (`/readyz`), from its status;
//! - [`transport`]: bytes between neighbours (ZeroMQ, or in memory for tests);
//! - [`logging`]: one log file per subsystem;
//! - [`storage`]: the SQLite database (schema, repositories, deterministic mutations, replica apply);
//! - [`service`]: the chat's business operations over storage, with the single group-committing writer;
//! - [`presence`]: who is online and who is typing, spread over the tree outside the log;
//! - [`web`]: the HTTP face of input nodes (JSON API, pages, sessions, live events) over the service;
//!   [`input`] starts and stops it (with the nameserver lease) as the node's role comes and goes;
//! - [`analytics`]: a group's statistics, computed MapReduce-style across the copies (a ring of
//!   nodes, map requests on the admin port, a cache per copy);
//! - [`node`]: the orchestrator that wires them and owns shutdown.

pub mod admin;
pub mod analytics;
pub mod backups;
pub mod config;
pub mod context;
pub mod control;
pub mod data;
pub mod discovery;
pub mod input;
pub mod lease;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod readiness;
pub mod recovery;
pub mod removal;
pub mod service;
pub mod status;
pub mod storage;
pub mod transport;
pub mod web;

pub use config::Config;
pub use node::{Node, NodeError, shutdown_signal};
