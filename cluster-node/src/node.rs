//! The orchestrator: builds a node from its configuration and runs its tasks until shutdown.
//!
//! ```text
//!                 ┌────────── CancellationToken (SIGINT / SIGTERM) ──────────┐
//!                 ▼                                                           ▼
//!   discovery (bootstrap) ──neighbours──▶ control plane ──▶ StatusBoard ◀── admin HTTP
//!                                          ▲   │ (overlay)                    (/status, /metrics, /fault)
//!                                          │   ▼
//!                                    control transport (ZeroMQ, control_port) ◀── FaultSwitch
//! ```
//!
//! Binding happens in [`Node::build`], so a port conflict stops the node at once and tests can ask for
//! port 0 and read the real port before the node runs. Every task is spawned on one `TaskTracker` and watches one `CancellationToken`: shutdown
//! is cancel, then wait (bounded) for the tracker to drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::Config;
use crate::context::{DatabaseSlot, NodeContext};
use crate::control::{ControlInputs, ControlPlane};
use crate::data::{DataOptions, DataOutputs, DataPlane};
use crate::discovery;
use crate::discovery::AddressBook;
use crate::input;
use crate::logging::HEADLINE;
use crate::metrics::Metrics;
use crate::status::{NeighbourStatus, NodeStatus, StatusBoard};
use crate::storage::{Epoch, Term};
use crate::transport::Inbound;
use crate::transport::fault::FaultSwitches;
use crate::transport::incarnation::{Incarnation, IncarnationError};
use crate::transport::seal::{Plane, PlaneKey};
use crate::transport::zmq::{Sealing, TransportError, ZmqTransport};

/// How long tasks get to finish after shutdown is requested before the node gives up waiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often the number of registered nodes is read from the bootstrap (the writer's majority rule).
const REGISTERED_REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot bind the admin port {addr}: {source}")]
    BindAdmin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot bind the control port: {0}")]
    BindControl(#[source] TransportError),
    #[error("cannot bind the data port: {0}")]
    BindData(#[source] TransportError),
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Incarnation(#[from] IncarnationError),
}

/// A node whose sockets are bound, ready to run.
pub struct Node {
    config: Config,
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    control_transport: Arc<ZmqTransport>,
    control_inbound: mpsc::Receiver<Inbound>,
    /// The data plane's own sockets, on their own port, so bulk transfers never delay a heartbeat.
    /// Bound now so a port conflict is reported at start; the data plane takes them over.
    data_transport: Arc<ZmqTransport>,
    data_inbound: mpsc::Receiver<Inbound>,
    faults: FaultSwitches,
    status: StatusBoard,
    metrics: Arc<Metrics>,
    /// Stops every task of this node; cancelled when the caller's shutdown token is.
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Node {
    /// Prepares directories and binds the admin and control ports (port 0 picks a free one).
    pub async fn build(config: Config) -> Result<Self, NodeError> {
        for dir in [&config.data_dir, &config.log_dir] {
            std::fs::create_dir_all(dir).map_err(|source| NodeError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let addr = config.admin_addr();
        let admin_listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::BindAdmin { addr, source })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| NodeError::BindAdmin { addr, source })?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let faults = FaultSwitches::default();
        let started = SystemTime::now();
        let metrics = Arc::new(Metrics::new(
            config.id.0,
            started
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        ));
        let incarnation = Incarnation::next(&config.data_dir, started)?;
        tracing::debug!(
            incarnation = incarnation.0,
            "sealing frames under a new incarnation"
        );
        let sealing = |plane| Sealing {
            plane,
            key: PlaneKey::derive(&config.cluster_key, plane),
            incarnation,
            protocol: Plane::protocol(plane),
            rejected: metrics.frames_rejected.clone(),
        };
        let (control_transport, control_inbound) = ZmqTransport::bind(
            config.id,
            SocketAddr::new(config.host, config.control_port),
            sealing(Plane::Control),
            faults.control.clone(),
            stop.clone(),
            tasks.clone(),
        )
        .await
        .map_err(NodeError::BindControl)?;
        let (data_transport, data_inbound) = ZmqTransport::bind(
            config.id,
            SocketAddr::new(config.host, config.data_port),
            sealing(Plane::Data),
            faults.data.clone(),
            stop.clone(),
            tasks.clone(),
        )
        .await
        .map_err(NodeError::BindData)?;
        // From here on the config names the ports actually bound (they differ when it asked for 0),
        // because that is what the bootstrap must hand to neighbours.
        let mut config = config;
        config.admin_port = admin_addr.port();
        config.control_port = control_transport.local_addr().port();
        config.data_port = data_transport.local_addr().port();
        Ok(Self {
            metrics,
            status: StatusBoard::new(NodeStatus::starting(config.id)),
            config,
            admin_listener,
            admin_addr,
            control_transport: Arc::new(control_transport),
            control_inbound,
            data_transport: Arc::new(data_transport),
            data_inbound,
            faults,
            stop,
            tasks,
        })
    }

    /// Where the control plane's ROUTER listens.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_transport.local_addr()
    }

    /// Where the data plane's ROUTER listens.
    pub fn data_addr(&self) -> SocketAddr {
        self.data_transport.local_addr()
    }

    /// Where `/status` and `/metrics` are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// A handle on the node's status, for tests and embedding.
    pub fn status(&self) -> StatusBoard {
        self.status.clone()
    }

    /// Runs every task until `shutdown` is cancelled, then waits for them to stop.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let Node {
            config,
            admin_listener,
            admin_addr,
            control_transport,
            control_inbound,
            data_transport,
            data_inbound,
            faults,
            status,
            metrics,
            stop,
            tasks,
        } = self;
        tracing::info!(target: HEADLINE, id = %config.id, admin = %admin_addr, "node started");

        let admin_faults = config.allow_faults.then_some(faults);
        if admin_faults.is_some() {
            tracing::warn!(target: HEADLINE, "fault injection is enabled (POST /fault on the admin port)");
        }
        let database_slot = DatabaseSlot::default();
        let backup_source = crate::backups::BackupSource {
            status: status.clone(),
            database: database_slot.clone(),
            scratch: config.data_dir.clone(),
            guard: Arc::new(cluster_auth::Guard::new(cluster_auth::ProofKey::derive(
                config.cluster_key.as_bytes(),
            ))),
            running: Default::default(),
        };
        if let Some(periodic) = config.backups.clone() {
            tracing::info!(folder = %periodic.folder.display(), every_s = periodic.every.as_secs(), keep = periodic.keep, "periodic backups while this node is the writer or a voter");
            tasks.spawn(crate::backups::run_periodic(
                periodic,
                backup_source.clone(),
                stop.clone(),
            ));
        }
        let (removals_tx, removals_rx) = mpsc::channel(8);
        let removal = crate::removal::RemovalEndpoint {
            me: config.id,
            status: status.clone(),
            guard: backup_source.guard.clone(),
            requests: removals_tx,
            bootstrap: config.bootstrap.clone(),
            key: cluster_auth::ProofKey::derive(config.cluster_key.as_bytes()),
            wait: crate::removal::DEFAULT_WAIT,
        };
        let mapper = crate::analytics::Mapper::new(
            config.id,
            database_slot.clone(),
            status.clone(),
            crate::analytics::cache::DEFAULT_CAPACITY,
            crate::analytics::map::DEFAULT_CATCH_UP,
        );
        let analytics = Arc::new(crate::analytics::Analytics::new(
            mapper.clone(),
            config.bootstrap.clone(),
            cluster_auth::ProofKey::derive(config.cluster_key.as_bytes()),
            crate::analytics::AnalyticsOptions::default(),
        ));
        let stats_endpoint = crate::analytics::endpoint::MapEndpoint {
            mapper,
            guard: backup_source.guard.clone(),
        };
        let router = admin::router(
            status.clone(),
            metrics.clone(),
            admin_faults,
            database_slot.clone(),
        )
        .merge(crate::backups::router(backup_source))
        .merge(crate::removal::router(removal))
        .merge(crate::analytics::endpoint::router(stats_endpoint));
        let admin_stop = stop.clone();
        tasks.spawn(async move {
            let served = axum::serve(admin_listener, router)
                .with_graceful_shutdown(admin_stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "admin HTTP server failed");
            }
        });

        let plane_stop = stop.clone();
        let plane_tasks = tasks.clone();
        tasks.spawn(async move {
            // Whether this node's copy holds everything it ever acknowledged: yes if it kept its
            // database, or if it never ran in this cluster (it acknowledged nothing). A known node
            // without its database lost its disk (see `replication::acceptance`).
            let had_database = config.data_dir.join(crate::storage::DATABASE_FILE).exists();
            let Some(registration) =
                discovery::register_until_accepted(&config, &metrics, &plane_stop).await
            else {
                return;
            };
            let whole_at_start = had_database || !registration.known;
            if !whole_at_start {
                tracing::warn!(target: HEADLINE, "this node ran in the cluster before but has no database: its copy counts for no majority until it has caught up");
            }
            let neighbours = registration.neighbours;
            let ids: Vec<String> = neighbours.iter().map(|n| n.id.to_string()).collect();
            tracing::info!(target: HEADLINE, neighbours = %ids.join(","), "registered with the bootstrap");
            status.update(|s| {
                s.registered = true;
                s.neighbors = neighbours
                    .iter()
                    .map(|n| NeighbourStatus { id: n.id, alive: false })
                    .collect();
            });
            let context = NodeContext {
                status,
                metrics,
                addresses: AddressBook::new(&neighbours),
                database: database_slot,
            };
            let (position_tx, position_rx) = watch::channel((Term(0), Epoch(0)));
            let (registered_tx, registered_rx) = watch::channel(0usize);
            let (election_tx, election_rx) = mpsc::channel(4);
            let directory = discovery::Directory::default();
            plane_tasks.spawn(discovery::follow_registered(
                config.clone(),
                registered_tx,
                directory.clone(),
                REGISTERED_REFRESH,
                plane_stop.clone(),
            ));
            let (merged_tx, merged_rx) = mpsc::channel(4);
            plane_tasks.spawn(discovery::keep_lease(
                config.clone(),
                merged_tx,
                plane_stop.clone(),
            ));
            let data_options = DataOptions {
                whole_at_start,
                replication_factor: config.replication_factor,
                voter_grace: config.voter_grace,
                ..DataOptions::new(config.data_dir.clone())
            };
            let me = config.id;
            let input_config = config.clone();
            let control = ControlPlane::new(
                config,
                &neighbours,
                control_transport,
                control_inbound,
                &context,
                ControlInputs {
                    data_position: position_rx,
                    registered: registered_rx,
                    election_requests: election_rx,
                    directory,
                    degree: registration.degree,
                    merged: merged_rx,
                },
            );
            let data = DataPlane::new(
                me,
                data_options,
                (data_transport, data_inbound),
                control.subscribe(),
                DataOutputs {
                    position: position_tx,
                    election_requests: election_tx,
                },
                &context,
            )
            .with_removals(removals_rx);
            let nameserver_http = input_config.nameserver_http.clone();
            plane_tasks.spawn(input::supervise(
                input_config,
                control.subscribe(),
                data.handle(),
                context.status.clone(),
                nameserver_http,
                analytics,
                plane_stop.clone(),
            ));
            plane_tasks.spawn(data.run(plane_stop.clone()));
            control.run(plane_stop).await;
        });

        tokio::select! {
            () = shutdown.cancelled() => stop.cancel(),
            () = stop.cancelled() => {}
        }
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "some tasks did not stop in time");
        }
        tracing::info!(target: HEADLINE, "node stopped");
    }
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
