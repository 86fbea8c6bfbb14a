//! Only holders of the cluster key can register: anything else is UNAUTHENTICATED and changes nothing,
//! while `ListNodes` stays open to anyone.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use chat_proto::bootstrap::{ListNodesRequest, NodeAddress, RegisterRequest};
use cluster_auth::{AUTH_HEADER, Proof, ProofKey, Rpc, authorized};
use prost::Message;
use tempfile::tempdir;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{TestApp, cluster_key, member_request, node, spawn_app};

/// A key of the right shape that is not the cluster's.
const STRANGER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn register(node: NodeAddress) -> RegisterRequest {
    RegisterRequest { node: Some(node) }
}

/// Node 1's real address taken over by a stranger's host.
fn hijacked() -> NodeAddress {
    NodeAddress {
        host: "203.0.113.66".into(),
        ..node(1)
    }
}

async fn send(
    client: &mut BootstrapClient<Channel>,
    request: tonic::Request<RegisterRequest>,
) -> tonic::Status {
    client
        .register(request)
        .await
        .expect_err("the registration must be refused")
}

/// A bootstrap where node 1 and node 2 registered genuinely.
async fn cluster_of_two(directory: &tempfile::TempDir) -> TestApp {
    let mut app = spawn_app(directory).await;
    app.register(node(1)).await.expect("register 1");
    app.register(node(2)).await.expect("register 2");
    app
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[tokio::test]
async fn a_registration_without_a_proof_is_unauthenticated_and_changes_nothing() {
    let directory = tempdir().expect("temporary directory");
    let mut app = cluster_of_two(&directory).await;
    let before = app.list().await;

    let status = send(&mut app.client, tonic::Request::new(register(hijacked()))).await;
    let newcomer = send(&mut app.client, tonic::Request::new(register(node(9)))).await;

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("x-chat-auth"),
        "{}",
        status.message()
    );
    assert_eq!(newcomer.code(), Code::Unauthenticated);
    assert_eq!(app.list().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_registration_proven_with_another_key_is_unauthenticated_and_changes_nothing() {
    let directory = tempdir().expect("temporary directory");
    let mut app = cluster_of_two(&directory).await;
    let before = app.list().await;
    let stranger = ProofKey::derive(STRANGER_KEY.as_bytes());

    let status = send(
        &mut app.client,
        authorized(&stranger, Rpc::BootstrapRegister, register(hijacked())),
    )
    .await;

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(app.list().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_stale_proof_is_unauthenticated_even_under_the_right_key() {
    let directory = tempdir().expect("temporary directory");
    let mut app = cluster_of_two(&directory).await;
    let before = app.list().await;
    let message = register(hijacked());
    let two_minutes_ago = now_ms() - 120_000;
    let proof = Proof::sign(
        &cluster_key(),
        Rpc::BootstrapRegister,
        &message.encode_to_vec(),
        two_minutes_ago,
    );
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        AUTH_HEADER,
        proof.to_string().parse().expect("ASCII metadata"),
    );

    let status = send(&mut app.client, request).await;

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("clock"), "{}", status.message());
    assert_eq!(app.list().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_genuine_proof_moved_onto_another_registration_is_unauthenticated() {
    let directory = tempdir().expect("temporary directory");
    let mut app = cluster_of_two(&directory).await;
    let before = app.list().await;
    // A proof for node 1's genuine address, captured and put on the stranger's request.
    let genuine = member_request(register(node(1)));
    let mut forged = tonic::Request::new(register(hijacked()));
    *forged.metadata_mut() = genuine.metadata().clone();

    let status = send(&mut app.client, forged).await;

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(app.list().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_registration_is_unauthenticated() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;
    let original = member_request(register(node(1)));
    let mut replay = tonic::Request::new(register(node(1)));
    *replay.metadata_mut() = original.metadata().clone();
    app.client
        .register(original)
        .await
        .expect("the original registers");

    let status = send(&mut app.client, replay).await;

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("already used"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_member_registers_and_anyone_may_list_the_nodes() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app(&directory).await;

    app.register(node(1)).await.expect("a proven registration");
    let listed = app
        .client
        .list_nodes(tonic::Request::new(ListNodesRequest {}))
        .await
        .expect("ListNodes needs no proof")
        .into_inner()
        .nodes;

    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, Some(node(1)));
    app.stop().await;
}
