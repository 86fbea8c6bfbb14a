//! An input node's nameserver lease against a nameserver running in-process.

use std::time::Duration;

use chat_proto::nameserver::ListRequest;
use chat_proto::nameserver::nameserver_client::NameserverClient;
use cluster_node::config::NodeId;
use tokio_util::sync::CancellationToken;

/// The cluster key the nameserver and the lease holder share.
fn key() -> cluster_auth::ProofKey {
    cluster_auth::ProofKey::derive(
        b"5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f",
    )
}

async fn listed(client: &mut NameserverClient<tonic::transport::Channel>) -> Vec<(u64, String)> {
    let response = client.list(ListRequest {}).await.unwrap().into_inner();
    response
        .endpoints
        .into_iter()
        .map(|e| (e.id, e.url))
        .collect()
}

#[tokio::test]
async fn a_held_lease_lists_the_node_until_it_stops_and_deregisters() {
    let nameserver = nameserver::Application::build(nameserver::Config {
        grpc: "127.0.0.1:0".parse().unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        lease: Duration::from_millis(1500),
        cluster_key: key(),
    })
    .await
    .unwrap();
    let grpc = nameserver.grpc_addr();
    let services = CancellationToken::new();
    let server = tokio::spawn(nameserver.run_until_stopped(services.clone().cancelled_owned()));
    let mut client = NameserverClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let reachable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = tokio::spawn(cluster_node::lease::hold(
        grpc.to_string().parse().unwrap(),
        NodeId(7),
        "http://127.0.0.1:8007".into(),
        key(),
        reachable.clone(),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listed(&mut client).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reachable.load(std::sync::atomic::Ordering::Relaxed),
        "a lease that holds says the nameserver is reachable"
    );
    // Longer than the lease: renewals keep it alive.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        listed(&mut client).await,
        vec![(7, "http://127.0.0.1:8007".into())]
    );

    stop.cancel();
    holder.await.unwrap();
    assert!(
        listed(&mut client).await.is_empty(),
        "deregistration is immediate"
    );
    services.cancel();
    server.await.unwrap().unwrap();
}
