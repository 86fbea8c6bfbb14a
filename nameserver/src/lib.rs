//! The nameserver: the address users open. Input nodes keep a lease here over gRPC; browsers that hit
//! the HTTP side are redirected to one of the live ones. It also draws the whole cluster (`/cluster`).
//!
//! ```text
//! input node ──gRPC Register/Renew/Deregister──► grpc ────┐   (each with a proof of the cluster key)
//! browser ─────HTTP GET /<path>, /api/endpoints──► http ──┼──► directory (clock + lock) ──► leases (pure)
//! prober ──TCP connect to each leased node, outcomes ─────┘                            └──► probe (pure)
//! browser ─────HTTP GET /cluster, /cluster/state ─► cluster_view ──► bootstrap ListNodes, nodes' /status
//! ```
//!
//! `Application::build` binds both listeners, so tests can pass port 0 for each and read the ports back.
//! With [`Application::with_tls`] the HTTP side speaks HTTPS only; the redirects go to whatever URLs
//! the input nodes registered, which are `https://` when they serve TLS themselves. With
//! [`Application::with_probing`] a node whose address stops accepting connections is no longer handed
//! out after one probe interval plus timeout at most, instead of when its lease runs out.

mod cluster_view;
mod directory;
mod grpc;
mod http;
mod leases;
mod location;
mod probe;
mod prober;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use chat_proto::nameserver::nameserver_server::NameserverServer;
use cluster_auth::{Guard, ProofKey};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::cluster_view::ClusterView;
use crate::directory::Directory;

/// Where the two sides listen, how long a lease lasts, and the key lease changes must prove.
#[derive(Debug, Clone)]
pub struct Config {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// How long a registration lives without a renewal; nodes renew about every second.
    pub lease: Duration,
    /// Derived from the cluster key: `Register`, `Renew` and `Deregister` are refused without a proof
    /// made with it, so no one else can have browsers sent to their server.
    pub cluster_key: ProofKey,
}

impl Config {
    pub const DEFAULT_GRPC: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 45998));
    pub const DEFAULT_HTTP: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9999));
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(3);
    /// The longest lease: a dead input node keeps being handed browsers until its lease ends, so a
    /// longer one only hides failures (and an expiry time must stay within the clock's range).
    pub const MAX_LEASE: Duration = Duration::from_secs(3600);
    /// Where the cluster view asks for the registered nodes unless [`Application::with_bootstrap`]
    /// says otherwise (the bootstrap's own default).
    pub const DEFAULT_BOOTSTRAP: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 45999));
}

/// How often the nameserver checks that each leased input node still accepts TCP connections on its
/// registered address, and how long one check may take. A node whose check fails is not handed out or
/// listed until a later check succeeds; its lease is not touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probing {
    interval: Duration,
    timeout: Duration,
}

impl Probing {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
    /// Loopback and a LAN answer a connection within a millisecond or two; a node that takes longer
    /// than this would keep a browser waiting as well.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
    /// The bound of both settings, as for leases: longer would only hide failures.
    pub const MAX: Duration = Config::MAX_LEASE;

    /// Both must be between 1 ms and [`Self::MAX`].
    pub fn new(interval: Duration, timeout: Duration) -> Result<Self, Error> {
        let in_range = |value: Duration| Duration::from_millis(1) <= value && value <= Self::MAX;
        if !in_range(interval) {
            return Err(Error::ProbeOutOfRange {
                setting: "interval",
                value: interval,
            });
        }
        if !in_range(timeout) {
            return Err(Error::ProbeOutOfRange {
                setting: "timeout",
                value: timeout,
            });
        }
        Ok(Self { interval, timeout })
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for Probing {
    fn default() -> Self {
        Self {
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the lease duration must be between 1 ms and {} s, not {} ms", Config::MAX_LEASE.as_secs(), .0.as_millis())]
    LeaseOutOfRange(Duration),
    #[error("the probe {setting} must be between 1 ms and {} s, not {} ms", Probing::MAX.as_secs(), .value.as_millis())]
    ProbeOutOfRange {
        setting: &'static str,
        value: Duration,
    },
    #[error("could not listen for {side} on {address}")]
    Bind {
        side: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the nameserver gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
    #[error("the nameserver HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// A nameserver with both ports bound, ready to serve.
pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    directory: Directory,
    guard: Guard,
    bootstrap: SocketAddr,
    tls: Option<Arc<cluster_tls::ServerConfig>>,
    probing: Option<Probing>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, Error> {
        if config.lease.is_zero() || config.lease > Config::MAX_LEASE {
            return Err(Error::LeaseOutOfRange(config.lease));
        }
        let (grpc_listener, grpc_addr) = bind("gRPC", config.grpc).await?;
        let (http_listener, http_addr) = bind("HTTP", config.http).await?;
        Ok(Self {
            grpc_listener,
            http_listener,
            grpc_addr,
            http_addr,
            directory: Directory::new(config.lease),
            guard: Guard::new(config.cluster_key),
            bootstrap: Config::DEFAULT_BOOTSTRAP,
            tls: None,
            probing: None,
        })
    }

    /// Points the cluster view (`/cluster`) at the bootstrap at `address`. The bootstrap is asked only
    /// when someone looks, so it may start later or be down: the view then says so.
    // A builder method rather than a `Config` field, so code that spells out `Config` keeps compiling.
    pub fn with_bootstrap(mut self, address: SocketAddr) -> Self {
        self.bootstrap = address;
        self
    }

    /// Serves the HTTP side over TLS with `config` (see `cluster_tls::server_config`).
    pub fn with_tls(mut self, config: Arc<cluster_tls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Probes every leased node's address as `probing` says. Without it only leases decide, so a dead
    /// node is handed out until its lease runs out (the binary probes unless told not to).
    pub fn with_probing(mut self, probing: Probing) -> Self {
        self.probing = Some(probing);
        self
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_addr.port()
    }

    pub fn http_port(&self) -> u16 {
        self.http_addr.port()
    }

    /// Serves both sides until `shutdown` completes (or one side fails, which stops the other too), then
    /// lets requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        tracing::info!(
            grpc = %self.grpc_addr,
            http = %self.http_addr,
            tls = self.tls.is_some(),
            bootstrap = %self.bootstrap,
            probe_interval_ms = self.probing.map(|p| p.interval().as_millis()),
            probe_timeout_ms = self.probing.map(|p| p.timeout().as_millis()),
            "nameserver listening"
        );
        let stop = CancellationToken::new();

        let grpc = Server::builder()
            .add_service(NameserverServer::new(grpc::NameserverService::new(
                self.directory.clone(),
                self.guard,
            )))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            );
        let prober = {
            let directory = self.directory.clone();
            let stop = stop.clone();
            async move {
                if let Some(probing) = self.probing {
                    prober::run(directory, probing, stop).await;
                }
            }
        };
        let app = http::router(self.directory, ClusterView::new(self.bootstrap));
        let http_stop = stop.clone().cancelled_owned();
        let http = async move {
            match self.tls {
                None => {
                    axum::serve(self.http_listener, app)
                        .with_graceful_shutdown(http_stop)
                        .await
                }
                Some(config) => {
                    let listener = cluster_tls::TlsListener::new(self.http_listener, config)?;
                    axum::serve(listener, app)
                        .with_graceful_shutdown(http_stop)
                        .await
                }
            }
        };

        let (grpc, http, (), ()) = tokio::join!(
            async {
                let result = grpc.await;
                stop.cancel();
                result
            },
            async {
                let result = http.await;
                stop.cancel();
                result
            },
            async {
                tokio::select! {
                    () = shutdown => stop.cancel(),
                    () = stop.cancelled() => {}
                }
            },
            prober,
        );
        grpc.map_err(Error::Grpc)?;
        http.map_err(Error::Http)?;
        tracing::info!("nameserver stopped");
        Ok(())
    }
}

async fn bind(side: &'static str, address: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let error = |source| Error::Bind {
        side,
        address,
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_settings_are_taken_from_1_ms_to_an_hour() {
        let ms = Duration::from_millis;
        assert!(Probing::new(ms(1), ms(1)).is_ok());
        assert!(Probing::new(Probing::MAX, Probing::MAX).is_ok());
        for (interval, timeout, setting) in [
            (Duration::ZERO, ms(200), "interval"),
            (Duration::from_micros(999), ms(200), "interval"),
            (ms(250), Duration::ZERO, "timeout"),
            (ms(250), Probing::MAX + ms(1), "timeout"),
        ] {
            let error = Probing::new(interval, timeout).expect_err("out of range");
            assert!(
                error.to_string().starts_with(&format!(
                    "the probe {setting} must be between 1 ms and 3600 s"
                )),
                "{error}"
            );
        }
    }
}
