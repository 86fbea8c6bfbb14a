//! Only holders of the cluster key can change the leases: a stranger's `Register`, `Renew` or
//! `Deregister` is UNAUTHENTICATED and changes nothing, so browsers keep going to the genuine input
//! node. `List` and the HTTP side stay open to anyone.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::nameserver::{DeregisterRequest, ListRequest, RegisterRequest, RenewRequest};
use cluster_auth::{AUTH_HEADER, Proof, ProofKey, Rpc, authorized};
use prost::Message;
use tonic::Code;

use crate::helpers::{TestApp, cluster_key, endpoint, spawn_app};

const GENUINE: &str = "http://127.0.0.1:8081";
const PHISHING: &str = "http://203.0.113.66:8081";
/// A key of the right shape that is not the cluster's.
const STRANGER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn stranger() -> ProofKey {
    ProofKey::derive(STRANGER_KEY.as_bytes())
}

fn register(id: u64, url: &str) -> RegisterRequest {
    RegisterRequest {
        id,
        url: url.to_owned(),
    }
}

/// A nameserver where input node 1 holds a genuine lease.
async fn with_genuine_node() -> TestApp {
    let mut app = spawn_app().await;
    app.register(1, GENUINE)
        .await
        .expect("genuine registration");
    app
}

/// Nothing changed: node 1 alone is listed, and browsers are sent to it (asked twice, as the redirect
/// goes round the live nodes).
async fn assert_only_the_genuine_node_is_served(app: &mut TestApp) {
    assert_eq!(app.list().await, vec![endpoint(1, GENUINE)]);
    for _ in 0..2 {
        assert_eq!(
            app.redirect_target().await.as_deref(),
            Some("http://127.0.0.1:8081/")
        );
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[tokio::test]
async fn a_registration_without_a_proof_is_unauthenticated_and_redirects_nowhere_new() {
    let mut app = with_genuine_node().await;

    let takeover = app
        .grpc
        .register(tonic::Request::new(register(1, PHISHING)))
        .await
        .expect_err("must be refused");
    let newcomer = app
        .grpc
        .register(tonic::Request::new(register(2, PHISHING)))
        .await
        .expect_err("must be refused");

    assert_eq!(takeover.code(), Code::Unauthenticated);
    assert!(
        takeover.message().contains("x-chat-auth"),
        "{}",
        takeover.message()
    );
    assert_eq!(newcomer.code(), Code::Unauthenticated);
    assert_only_the_genuine_node_is_served(&mut app).await;
    app.stop().await;
}

#[tokio::test]
async fn every_lease_change_under_another_key_is_unauthenticated_and_changes_nothing() {
    let mut app = with_genuine_node().await;
    let key = stranger();

    let registered = app
        .grpc
        .register(authorized(
            &key,
            Rpc::NameserverRegister,
            register(2, PHISHING),
        ))
        .await
        .expect_err("register must be refused");
    let renewed = app
        .grpc
        .renew(authorized(
            &key,
            Rpc::NameserverRenew,
            RenewRequest { id: 1 },
        ))
        .await
        .expect_err("renew must be refused");
    let deregistered = app
        .grpc
        .deregister(authorized(
            &key,
            Rpc::NameserverDeregister,
            DeregisterRequest { id: 1 },
        ))
        .await
        .expect_err("deregister must be refused");

    for status in [registered, renewed, deregistered] {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert_only_the_genuine_node_is_served(&mut app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_stale_proof_is_unauthenticated_even_under_the_right_key() {
    let mut app = with_genuine_node().await;
    let message = register(2, PHISHING);
    let proof = Proof::sign(
        &cluster_key(),
        Rpc::NameserverRegister,
        &message.encode_to_vec(),
        now_ms() - 120_000,
    );
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        AUTH_HEADER,
        proof.to_string().parse().expect("ASCII metadata"),
    );

    let status = app
        .grpc
        .register(request)
        .await
        .expect_err("must be refused");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("clock"), "{}", status.message());
    assert_only_the_genuine_node_is_served(&mut app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_genuine_proof_moved_onto_a_phishing_url_is_unauthenticated() {
    let mut app = with_genuine_node().await;
    // Captured from node 1's genuine registration, put on the stranger's request for the same id.
    let genuine = authorized(
        &cluster_key(),
        Rpc::NameserverRegister,
        register(1, GENUINE),
    );
    let mut forged = tonic::Request::new(register(1, PHISHING));
    *forged.metadata_mut() = genuine.metadata().clone();

    let status = app
        .grpc
        .register(forged)
        .await
        .expect_err("must be refused");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_only_the_genuine_node_is_served(&mut app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_captured_deregistration_cannot_be_replayed() {
    let mut app = with_genuine_node().await;
    let original = authorized(
        &cluster_key(),
        Rpc::NameserverDeregister,
        DeregisterRequest { id: 1 },
    );
    let mut replay = tonic::Request::new(DeregisterRequest { id: 1 });
    *replay.metadata_mut() = original.metadata().clone();
    app.grpc
        .deregister(original)
        .await
        .expect("the node leaves");
    app.register(1, GENUINE).await.expect("and comes back");

    let status = app
        .grpc
        .deregister(replay)
        .await
        .expect_err("must be refused");

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("already used"),
        "{}",
        status.message()
    );
    assert_only_the_genuine_node_is_served(&mut app).await;
    app.stop().await;
}

#[tokio::test]
async fn listing_needs_no_proof() {
    let mut app = with_genuine_node().await;

    let listed = app
        .grpc
        .list(tonic::Request::new(ListRequest {}))
        .await
        .expect("List is open")
        .into_inner()
        .endpoints;
    let http = app.get("/api/endpoints").await;

    assert_eq!(listed, vec![endpoint(1, GENUINE)]);
    assert_eq!(http.status(), reqwest::StatusCode::OK);
    app.stop().await;
}
