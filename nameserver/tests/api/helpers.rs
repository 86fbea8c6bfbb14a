//! Starting and stopping an in-process nameserver, and small clients for both sides.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use chat_proto::nameserver::nameserver_client::NameserverClient;
use chat_proto::nameserver::{
    DeregisterRequest, Endpoint, ListRequest, RegisterRequest, RenewRequest,
};
use cluster_auth::{ProofKey, Rpc, authorized};
use nameserver::{Application, Config, Probing};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Logs are off unless `TEST_LOG` is set (then `RUST_LOG` picks the level, default `debug`).
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .init();
    }
});

/// The cluster key of every test nameserver (as `init.sh` writes one: 64 hex digits).
pub const CLUSTER_KEY: &str = "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f";

/// The proof key of the test cluster.
pub fn cluster_key() -> ProofKey {
    ProofKey::derive(CLUSTER_KEY.as_bytes())
}

pub struct TestApp {
    /// Base URL of the HTTP side, e.g. `http://127.0.0.1:41234`.
    pub http_url: String,
    pub grpc: NameserverClient<Channel>,
    /// Follows no redirects, so tests see the 307 itself.
    pub http: reqwest::Client,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), nameserver::Error>>,
}

/// A nameserver with the default lease of 3 s: long enough that nothing expires during a test.
///
/// It does not probe: the URLs most tests register are made up, and nothing listens there. The tests
/// of probing (`probe.rs`) use [`spawn_app_probing`] with nodes that really listen.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_lease(Config::DEFAULT_LEASE).await
}

pub async fn spawn_app_with_lease(lease: Duration) -> TestApp {
    spawn(lease, Config::DEFAULT_BOOTSTRAP, None).await
}

/// A nameserver whose cluster view asks the bootstrap at `bootstrap`.
pub async fn spawn_app_with_bootstrap(bootstrap: SocketAddr) -> TestApp {
    spawn(Config::DEFAULT_LEASE, bootstrap, None).await
}

/// A nameserver that probes the registered nodes as `probing` says, with leases of `lease`.
pub async fn spawn_app_probing(lease: Duration, probing: Probing) -> TestApp {
    spawn(lease, Config::DEFAULT_BOOTSTRAP, Some(probing)).await
}

async fn spawn(lease: Duration, bootstrap: SocketAddr, probing: Option<Probing>) -> TestApp {
    LazyLock::force(&TRACING);
    let config = Config {
        grpc: "127.0.0.1:0".parse().expect("literal address"),
        http: "127.0.0.1:0".parse().expect("literal address"),
        lease,
        cluster_key: cluster_key(),
    };
    let mut application = Application::build(config)
        .await
        .expect("nameserver builds")
        .with_bootstrap(bootstrap);
    if let Some(probing) = probing {
        application = application.with_probing(probing);
    }
    let grpc_addr = application.grpc_addr();
    let http_url = format!("http://{}", application.http_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let grpc = NameserverClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("gRPC client connects");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client builds");
    TestApp {
        http_url,
        grpc,
        http,
        stop,
        server,
    }
}

impl TestApp {
    /// Triggers the graceful shutdown and waits for both servers to finish cleanly.
    pub async fn stop(self) {
        drop(self.grpc);
        drop(self.http);
        let _ = self.stop.send(());
        self.server
            .await
            .expect("server task did not panic")
            .expect("server stopped cleanly");
    }

    /// Registers as an input node does: with a proof of the cluster key (so do `renew` and
    /// `deregister`).
    pub async fn register(&mut self, id: u64, url: &str) -> Result<u64, tonic::Status> {
        let request = RegisterRequest {
            id,
            url: url.to_owned(),
        };
        self.grpc
            .register(authorized(&cluster_key(), Rpc::NameserverRegister, request))
            .await
            .map(|lease| lease.into_inner().ttl_ms)
    }

    pub async fn renew(&mut self, id: u64) -> Result<u64, tonic::Status> {
        self.grpc
            .renew(authorized(
                &cluster_key(),
                Rpc::NameserverRenew,
                RenewRequest { id },
            ))
            .await
            .map(|lease| lease.into_inner().ttl_ms)
    }

    pub async fn deregister(&mut self, id: u64) -> Result<(), tonic::Status> {
        self.grpc
            .deregister(authorized(
                &cluster_key(),
                Rpc::NameserverDeregister,
                DeregisterRequest { id },
            ))
            .await
            .map(|_| ())
    }

    pub async fn list(&mut self) -> Vec<Endpoint> {
        self.grpc
            .list(ListRequest {})
            .await
            .expect("list answers")
            .into_inner()
            .endpoints
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.http_url))
            .send()
            .await
            .expect("HTTP request answered")
    }

    /// Where `GET /` sends a browser right now, or `None` when it answers anything but a redirect.
    pub async fn redirect_target(&self) -> Option<String> {
        self.redirect_target_of("/").await
    }

    /// Where `GET path` sends a browser right now, or `None` when it answers anything but a redirect.
    pub async fn redirect_target_of(&self, path: &str) -> Option<String> {
        let response = self.get(path).await;
        if response.status() != reqwest::StatusCode::TEMPORARY_REDIRECT {
            return None;
        }
        let location = response.headers().get("location")?;
        location.to_str().ok().map(str::to_owned)
    }

    /// The URLs `/api/endpoints` lists right now, in its order.
    pub async fn listed_urls(&self) -> Vec<String> {
        let body: serde_json::Value = self
            .get("/api/endpoints")
            .await
            .json()
            .await
            .expect("JSON body");
        body.as_array()
            .expect("a JSON list")
            .iter()
            .map(|endpoint| endpoint["url"].as_str().expect("a URL").to_owned())
            .collect()
    }
}

pub fn endpoint(id: u64, url: &str) -> Endpoint {
    Endpoint {
        id,
        url: url.to_owned(),
    }
}
