//! Starting and stopping an in-process bootstrap with its own temporary state file.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use bootstrap::{Application, Config};
use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use chat_proto::bootstrap::{ListNodesRequest, NodeAddress, NodeEntry, RegisterRequest};
use cluster_auth::{ProofKey, Rpc, authorized};
use tempfile::TempDir;
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

/// The cluster key of every test bootstrap (as `init.sh` writes one: 64 hex digits).
pub const CLUSTER_KEY: &str = "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f";

/// The proof key of the test cluster.
pub fn cluster_key() -> ProofKey {
    ProofKey::derive(CLUSTER_KEY.as_bytes())
}

pub struct TestApp {
    pub client: BootstrapClient<Channel>,
    pub state_path: PathBuf,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), bootstrap::Error>>,
}

/// A bootstrap with a fresh, empty state file inside `directory`.
pub async fn spawn_app(directory: &TempDir) -> TestApp {
    spawn_app_with_state(&directory.path().join("state/bootstrap.json")).await
}

pub async fn spawn_app_with_state(state_path: &Path) -> TestApp {
    spawn_app_with(state_path, Config::DEFAULT_LEASE).await
}

/// A bootstrap whose leases run `lease` (short ones let a test make nodes look dead).
pub async fn spawn_app_with(state_path: &Path, lease: std::time::Duration) -> TestApp {
    LazyLock::force(&TRACING);
    let mut config = Config::new(
        "127.0.0.1:0".parse().expect("literal address"),
        state_path.to_path_buf(),
        cluster_key(),
    );
    config.lease = lease;
    let application = Application::build(config).await.expect("bootstrap builds");
    let address = application.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = BootstrapClient::connect(format!("http://{address}"))
        .await
        .expect("client connects");
    TestApp {
        client,
        state_path: state_path.to_path_buf(),
        stop,
        server,
    }
}

impl TestApp {
    /// Triggers the graceful shutdown and waits for the server to finish cleanly.
    pub async fn stop(self) {
        drop(self.client);
        let _ = self.stop.send(());
        self.server
            .await
            .expect("server task did not panic")
            .expect("server stopped cleanly");
    }

    /// Registers `node` as a cluster member does: with a proof of the cluster key.
    pub async fn register(&mut self, node: NodeAddress) -> Result<Vec<NodeAddress>, tonic::Status> {
        self.client
            .register(member_request(RegisterRequest { node: Some(node) }))
            .await
            .map(|response| response.into_inner().neighbors)
    }

    /// Registers `node` and answers whether the bootstrap knew its id before.
    pub async fn known(&mut self, node: NodeAddress) -> bool {
        self.client
            .register(member_request(RegisterRequest { node: Some(node) }))
            .await
            .expect("register")
            .into_inner()
            .known
    }

    pub async fn list(&mut self) -> Vec<NodeEntry> {
        self.client
            .list_nodes(ListNodesRequest {})
            .await
            .expect("list_nodes answers")
            .into_inner()
            .nodes
    }
}

/// `message` with a proof of the test cluster's key, as a member sends it.
pub fn member_request(message: RegisterRequest) -> tonic::Request<RegisterRequest> {
    authorized(&cluster_key(), Rpc::BootstrapRegister, message)
}

/// A valid address whose ports are derived from `id` so they are easy to tell apart.
pub fn node(id: u64) -> NodeAddress {
    let base = 46_000 + 10 * u32::try_from(id).expect("small test id");
    NodeAddress {
        id,
        host: "127.0.0.1".into(),
        control_port: base,
        data_port: base + 1,
        admin_port: base + 2,
        http_port: base + 3,
    }
}

pub fn ids(nodes: &[NodeAddress]) -> Vec<u64> {
    nodes.iter().map(|n| n.id).collect()
}
