//! `GET /cluster` and `GET /cluster/state` against a fake bootstrap (a tonic server answering
//! `ListNodes`) and fake nodes (one tiny axum server per admin port answering `/status`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use chat_proto::bootstrap::bootstrap_server::{Bootstrap, BootstrapServer};
use chat_proto::bootstrap::{
    DeregisterRequest, DeregisterResponse, ListNodesRequest, ListNodesResponse, NodeAddress,
    NodeEntry, RegisterRequest, RegisterResponse, RenewRequest, RenewResponse, RepairRequest,
    RepairResponse,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::helpers::{TestApp, spawn_app_with_bootstrap};

/// A bootstrap that knows a fixed list of nodes.
struct FakeBootstrap {
    nodes: Vec<NodeEntry>,
}

#[tonic::async_trait]
impl Bootstrap for FakeBootstrap {
    async fn register(
        &self,
        _request: tonic::Request<RegisterRequest>,
    ) -> Result<tonic::Response<RegisterResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the fake only lists"))
    }

    async fn renew(
        &self,
        _request: tonic::Request<RenewRequest>,
    ) -> Result<tonic::Response<RenewResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the fake only lists"))
    }

    async fn repair(
        &self,
        _request: tonic::Request<RepairRequest>,
    ) -> Result<tonic::Response<RepairResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the fake only lists"))
    }

    async fn deregister(
        &self,
        _request: tonic::Request<DeregisterRequest>,
    ) -> Result<tonic::Response<DeregisterResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the fake only lists"))
    }

    async fn list_nodes(
        &self,
        _request: tonic::Request<ListNodesRequest>,
    ) -> Result<tonic::Response<ListNodesResponse>, tonic::Status> {
        Ok(tonic::Response::new(ListNodesResponse {
            nodes: self.nodes.clone(),
        }))
    }
}

/// Starts a fake bootstrap listing `(id, admin_port, neighbours)`, none of them linked by a repair;
/// answers its address.
async fn spawn_bootstrap(nodes: &[(u64, u16, &[u64])]) -> SocketAddr {
    let nodes: Vec<(u64, u16, &[u64], &[u64])> = nodes
        .iter()
        .map(|&(id, admin_port, neighbors)| (id, admin_port, neighbors, &[][..]))
        .collect();
    spawn_repaired_bootstrap(&nodes).await
}

/// Starts a fake bootstrap listing `(id, admin_port, neighbours, repaired)`; answers its address.
async fn spawn_repaired_bootstrap(nodes: &[(u64, u16, &[u64], &[u64])]) -> SocketAddr {
    let nodes = nodes
        .iter()
        .map(|&(id, admin_port, neighbors, repaired)| NodeEntry {
            address: Some(NodeAddress {
                id,
                host: "127.0.0.1".into(),
                control_port: 0,
                data_port: 0,
                admin_port: u32::from(admin_port),
                http_port: 0,
            }),
            neighbors: neighbors.to_vec(),
            repaired: repaired.to_vec(),
        })
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(
        Server::builder()
            .add_service(BootstrapServer::new(FakeBootstrap { nodes }))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    address
}

/// How a fake node answers `GET /status`.
#[derive(Clone)]
enum Answer {
    Json(Value),
    /// Answers correctly, but only after this long.
    After(Duration, Value),
    Garbage,
}

/// A fake node's admin port; answers its port and how often `/status` was asked.
async fn spawn_node(answer: Answer) -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let route = axum::routing::get(move || {
        let answer = answer.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match answer {
                Answer::Json(value) => axum::Json(value).into_response(),
                Answer::After(delay, value) => {
                    tokio::time::sleep(delay).await;
                    axum::Json(value).into_response()
                }
                Answer::Garbage => "<html>not a status</html>".into_response(),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().route("/status", route)).await
    });
    (port, hits)
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("local address").port()
}

fn status(id: u64, roles: &[&str], parent: Option<u64>, children: &[u64]) -> Value {
    json!({
        "id": id, "ready": true, "leader": 1, "term": 2, "roles": roles,
        "parent": parent, "children": children, "neighbors": [], "tick": 10,
        "data_epoch": 5, "clock": 99, "http": null, "registered": true,
        "accepting_writes": roles.contains(&"writer"),
    })
}

async fn state(app: &TestApp) -> (StatusCode, Value) {
    let response = app.get("/cluster/state").await;
    let code = response.status();
    (code, response.json().await.expect("JSON body"))
}

fn node(state: &Value, id: u64) -> &Value {
    state["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|node| node["id"] == id))
        .unwrap_or_else(|| panic!("node {id} missing from {state}"))
}

#[tokio::test]
async fn the_cluster_page_is_html_with_the_script_that_polls_the_state() {
    let app = spawn_app_with_bootstrap(spawn_bootstrap(&[]).await).await;

    let response = app.get("/cluster").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII header");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.expect("body");
    assert!(page.contains("<svg"));
    assert!(page.contains(r#"<script src="/cluster/cluster.js"></script>"#));
    let script = app.get("/cluster/cluster.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    let script = script.text().await.expect("body");
    assert!(script.contains(r#"fetch("/cluster/state""#));
    app.stop().await;
}

#[tokio::test]
async fn the_state_shows_every_registered_node_with_what_its_status_says() {
    let (writer, _) = spawn_node(Answer::Json(status(1, &["writer"], None, &[2]))).await;
    let (input, _) = spawn_node(Answer::Json(status(2, &["input"], Some(1), &[]))).await;
    let bootstrap = spawn_bootstrap(&[(1, writer, &[2]), (2, input, &[1])]).await;
    let app = spawn_app_with_bootstrap(bootstrap).await;

    let (code, state) = state(&app).await;

    assert_eq!(code, StatusCode::OK);
    assert_eq!(state["leader"], 1);
    assert_eq!(state["term"], 2);
    assert!(state["fetched_at"].as_u64().is_some_and(|ms| ms > 0));
    let root = node(&state, 1);
    assert_eq!(root["alive"], true);
    assert_eq!(root["ready"], true);
    assert_eq!(root["roles"], json!(["writer"]));
    assert_eq!(root["children"], json!([2]));
    assert_eq!(root["parent"], Value::Null);
    assert_eq!(root["data_epoch"], 5);
    assert_eq!(root["accepting_writes"], true);
    assert_eq!(root["neighbors"], json!([2]));
    assert_eq!(root["depth"], 0);
    let leaf = node(&state, 2);
    assert_eq!(leaf["alive"], true);
    assert_eq!(leaf["parent"], 1);
    assert_eq!(leaf["depth"], 1);
    app.stop().await;
}

#[tokio::test]
async fn links_added_by_a_repair_are_listed_as_repaired_next_to_the_neighbours() {
    let (writer, _) = spawn_node(Answer::Json(status(1, &["writer"], None, &[2, 3]))).await;
    let (input, _) = spawn_node(Answer::Json(status(2, &["input"], Some(1), &[]))).await;
    let closed = closed_port().await;
    // 1–3 was added by a repair: 1 lists it (with an id that is no neighbour, left out), 3 does not.
    let bootstrap = spawn_repaired_bootstrap(&[
        (1, writer, &[2, 3], &[3, 42]),
        (2, input, &[1], &[]),
        (3, closed, &[1], &[]),
    ])
    .await;
    let app = spawn_app_with_bootstrap(bootstrap).await;

    let (code, state) = state(&app).await;

    assert_eq!(code, StatusCode::OK);
    let root = node(&state, 1);
    assert_eq!(root["neighbors"], json!([2, 3]));
    assert_eq!(root["repaired"], json!([3]));
    assert_eq!(node(&state, 2)["repaired"], json!([]));
    let dead = node(&state, 3);
    assert_eq!(dead["alive"], false, "{dead}");
    assert_eq!(dead["repaired"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn nodes_that_answer_late_wrongly_or_not_at_all_are_shown_dead() {
    let (writer, _) = spawn_node(Answer::Json(status(1, &["writer"], None, &[]))).await;
    let slow_status = status(2, &["input"], Some(1), &[]);
    let (slow, _) = spawn_node(Answer::After(Duration::from_secs(3), slow_status)).await;
    let (garbage, _) = spawn_node(Answer::Garbage).await;
    let (impostor, _) = spawn_node(Answer::Json(status(1, &["writer"], None, &[]))).await;
    let closed = closed_port().await;
    let bootstrap = spawn_bootstrap(&[
        (1, writer, &[2, 3, 4, 5]),
        (2, slow, &[1]),
        (3, garbage, &[1]),
        (4, closed, &[1]),
        (5, impostor, &[1]),
    ])
    .await;
    let app = spawn_app_with_bootstrap(bootstrap).await;

    let started = Instant::now();
    let (code, state) = state(&app).await;
    let took = started.elapsed();

    assert_eq!(code, StatusCode::OK);
    assert!(
        took < Duration::from_secs(2),
        "a slow node held the answer for {took:?}"
    );
    assert_eq!(node(&state, 1)["alive"], true);
    for id in 2..=5 {
        let dead = node(&state, id);
        assert_eq!(dead["alive"], false, "{dead}");
        assert_eq!(dead["depth"], Value::Null, "{dead}");
        assert_eq!(dead["neighbors"], json!([1]), "{dead}");
        assert!(dead["problem"].is_string(), "{dead}");
    }
    app.stop().await;
}

#[tokio::test]
async fn many_requests_within_half_a_second_ask_each_node_only_once() {
    let (writer, hits) = spawn_node(Answer::Json(status(1, &["writer"], None, &[]))).await;
    let bootstrap = spawn_bootstrap(&[(1, writer, &[])]).await;
    let app = spawn_app_with_bootstrap(bootstrap).await;

    let answers = ask_state_at_once(&app, 10).await;
    assert!(answers.iter().all(|code| *code == StatusCode::OK));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, _) = state(&app).await;

    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "a stale answer is refreshed"
    );
    app.stop().await;
}

/// Sends `count` `/cluster/state` requests at once; answers their status codes.
async fn ask_state_at_once(app: &TestApp, count: usize) -> Vec<StatusCode> {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = app.http.get(format!("{}/cluster/state", app.http_url));
        requests.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    let mut codes = Vec::new();
    while let Some(joined) = requests.join_next().await {
        codes.push(joined.expect("no panic").expect("answered"));
    }
    codes
}

#[tokio::test]
async fn without_a_bootstrap_the_state_is_unavailable_and_says_why() {
    let nowhere = SocketAddr::from(([127, 0, 0, 1], closed_port().await));
    let app = spawn_app_with_bootstrap(nowhere).await;

    let response = app.get("/cluster/state").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let state: Value = response.json().await.expect("JSON body");
    assert_eq!(state["nodes"], json!([]));
    assert_eq!(state["leader"], Value::Null);
    let error = state["error"].as_str().unwrap_or_default();
    assert!(error.contains(&nowhere.to_string()), "{error}");
    app.stop().await;
}
