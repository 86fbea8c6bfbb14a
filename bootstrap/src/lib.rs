//! The bootstrap service: the one place a starting node learns who its neighbours are.
//!
//! ```text
//! cluster-node ──gRPC Register/Renew/Repair/ListNodes──► service ──► store ──► registry ──► topology
//!                                              │          │            (pure: k-connected assignment, repair)
//!                                              │          ├─────► state file (JSON, replaced atomically)
//!                                              │          └─────► leases (in memory: who is live)
//!                                              └─ Register, Renew and Repair need a proof of the cluster key
//! ```
//!
//! `Application::build` loads the state and binds the listener, so tests can pass port 0 and read the
//! port back before serving.

mod address;
mod registry;
mod service;
mod store;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chat_proto::bootstrap::bootstrap_server::BootstrapServer;
use cluster_auth::{Guard, ProofKey};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub use store::StoreError;

/// Where the service listens, where it keeps its state, and the key registrations must prove.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The JSON state file; its parent directories are created if missing.
    pub state_path: PathBuf,
    /// Derived from the cluster key: `Register` is refused without a proof made with it.
    pub cluster_key: ProofKey,
    /// How many neighbours a new node gets, and how many live ones repair keeps every node at (k).
    pub degree: usize,
    /// A node counts as live this long after it last registered, renewed or asked for repair.
    pub lease: Duration,
}

impl Config {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 45999));
    pub const DEFAULT_STATE_PATH: &str = ".state/bootstrap.json";
    pub const DEFAULT_DEGREE: usize = topology::DEFAULT_K;
    /// Three renewal intervals of a node (it renews every third of the lease it is told).
    pub const DEFAULT_LEASE: Duration = Duration::from_millis(1500);

    /// The defaults for everything but where to listen, the state and the key.
    pub fn new(listen: SocketAddr, state_path: PathBuf, cluster_key: ProofKey) -> Self {
        Self {
            listen,
            state_path,
            cluster_key,
            degree: Self::DEFAULT_DEGREE,
            lease: Self::DEFAULT_LEASE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StoreError),
    #[error("could not listen on {address}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the bootstrap gRPC server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// A bootstrap service with its state loaded and its port bound, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: service::BootstrapService,
}

impl Application {
    /// Loads the state file (a corrupt one is an error, a missing one an empty registry), then binds.
    pub async fn build(config: Config) -> Result<Self, Error> {
        let store = store::Store::open(config.state_path, config.degree, config.lease).await?;
        let bind_error = |source| Error::Bind {
            address: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            local_addr,
            service: service::BootstrapService::new(
                Arc::new(store),
                Guard::new(config.cluster_key),
            ),
        })
    }

    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (and their saves land).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        tracing::info!(address = %self.local_addr, "bootstrap listening");
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        Server::builder()
            .add_service(BootstrapServer::new(self.service))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(Error::Serve)?;
        tracing::info!("bootstrap stopped");
        Ok(())
    }
}
