//! Leases and repair over gRPC: a node short of live neighbours is linked to live nodes, the edges
//! are listed as repaired, and a split of live nodes is joined when a node renews its lease.

use std::time::Duration;

use chat_proto::bootstrap::{RenewRequest, RepairRequest};
use cluster_auth::{Rpc, authorized};
use tempfile::tempdir;
use tonic::Code;

use crate::helpers::{cluster_key, ids, node, spawn_app_with};

const LEASE: Duration = Duration::from_millis(300);

fn renew(id: u64) -> tonic::Request<RenewRequest> {
    authorized(&cluster_key(), Rpc::BootstrapRenew, RenewRequest { id })
}

fn repair(id: u64, live: &[u64]) -> tonic::Request<RepairRequest> {
    let message = RepairRequest {
        id,
        live_neighbors: live.to_vec(),
    };
    authorized(&cluster_key(), Rpc::BootstrapRepair, message)
}

#[tokio::test]
async fn a_node_short_of_live_neighbours_is_linked_to_live_nodes_and_the_edges_are_listed() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app_with(&directory.path().join("bootstrap.json"), LEASE).await;
    for id in 1..=8 {
        app.register(node(id)).await.expect("register");
    }
    // Nodes 4 and 5 stop renewing; the others renew after their registration leases ran out.
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    for id in [1, 2, 3, 6, 7] {
        let answer = app
            .client
            .renew(renew(id))
            .await
            .expect("renew")
            .into_inner();
        assert!(answer.known);
        assert_eq!(answer.lease_ms, 300);
    }

    // 8 links to 4, 5 and 7 (k = 3, least linked first); it hears only 7.
    let answer = app
        .client
        .repair(repair(8, &[7]))
        .await
        .expect("repair")
        .into_inner();

    let added = ids(&answer.added);
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(
        added.iter().all(|id| ![4, 5, 7, 8].contains(id)),
        "{added:?}"
    );
    assert_eq!(ids(&answer.neighbors).len(), 5);
    let listed = app.list().await;
    let eight = listed
        .iter()
        .find(|entry| entry.address.as_ref().is_some_and(|a| a.id == 8))
        .expect("8 is listed");
    assert_eq!(eight.repaired, added);
    // The other end lists the edge as repaired too.
    let other = listed
        .iter()
        .find(|entry| entry.address.as_ref().is_some_and(|a| a.id == added[0]))
        .expect("listed");
    assert!(other.repaired.contains(&8));

    // Asking again with enough live neighbours adds nothing.
    let mut live = added.clone();
    live.push(7);
    let again = app.client.repair(repair(8, &live)).await.expect("repair");
    assert!(again.into_inner().added.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_split_of_live_nodes_is_joined_when_its_representative_renews() {
    let directory = tempdir().expect("temporary directory");
    // A longer lease: sixteen registrations (each saved with an fsync) must not outlast it.
    let lease = Duration::from_secs(1);
    let mut app = spawn_app_with(&directory.path().join("bootstrap.json"), lease).await;
    for id in 1..=16 {
        app.register(node(id)).await.expect("register");
    }
    // With k = 3, killing 3–7, 11, 12 and 14 leaves {1, 2, 8, 9, 10} and {13, 15, 16} apart.
    let alive = [1, 2, 8, 9, 10, 13, 15, 16];
    // They renew every tenth of the lease while the dead leases run out.
    let mut linked = Vec::new();
    let until = tokio::time::Instant::now() + lease * 2;
    while tokio::time::Instant::now() < until {
        for id in alive {
            let answer = app
                .client
                .renew(renew(id))
                .await
                .expect("renew")
                .into_inner();
            linked.extend(answer.added.iter().map(|a| (id, a.id)));
        }
        tokio::time::sleep(lease / 10).await;
    }
    // 13, the earliest of its part, is linked into the main part; nobody else is.
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0].0, 13);
    assert!([1, 2, 8, 9, 10].contains(&linked[0].1), "{linked:?}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_zero_ids_and_missing_proofs_are_refused() {
    let directory = tempdir().expect("temporary directory");
    let mut app = spawn_app_with(&directory.path().join("bootstrap.json"), LEASE).await;
    app.register(node(1)).await.expect("register");

    let unknown = app.client.renew(renew(9)).await.expect("renew answers");
    assert!(!unknown.into_inner().known);
    let status = app
        .client
        .repair(repair(9, &[]))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = app.client.renew(renew(0)).await.expect_err("zero id");
    assert_eq!(status.code(), Code::InvalidArgument);
    let bare = tonic::Request::new(RepairRequest {
        id: 1,
        live_neighbors: Vec::new(),
    });
    let status = app.client.repair(bare).await.expect_err("no proof");
    assert_eq!(status.code(), Code::Unauthenticated);
    let stale = authorized(
        &cluster_key(),
        Rpc::BootstrapRegister,
        RenewRequest { id: 1 },
    );
    let status = app
        .client
        .renew(stale)
        .await
        .expect_err("proof for another RPC");
    assert_eq!(status.code(), Code::Unauthenticated);
    app.stop().await;
}
