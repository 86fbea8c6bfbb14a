//! A stranger on the network who reaches the services of a running cluster cannot redirect its users:
//! registrations at the nameserver and at the bootstrap without a proof of the cluster key, or with a
//! proof under another key, are refused, and the nameserver keeps sending browsers to the real input
//! nodes. (The proof's details — stale times, moved proofs, replays — are tested on the services' APIs.)

use std::collections::BTreeSet;
use std::time::Duration;

use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use chat_proto::bootstrap::{ListNodesRequest, NodeAddress};
use chat_proto::nameserver::nameserver_client::NameserverClient;
use chat_proto::nameserver::{DeregisterRequest, RegisterRequest};
use cluster_auth::{ProofKey, Rpc, authorized};
use serde_json::Value;
use system_tests::cluster::Cluster;
use system_tests::wait_for_json;
use tonic::Code;

const CONVERGE: Duration = Duration::from_secs(20);
const PHISHING: &str = "http://203.0.113.66:8080";
/// A well-formed key that is not the cluster's.
const STRANGER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The URLs `/api/endpoints` lists.
fn urls(endpoints: &Value) -> BTreeSet<String> {
    endpoints
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|endpoint| endpoint["url"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    match result {
        Err(status) => assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}"),
        Ok(answer) => panic!("{what} was accepted: {answer:?}"),
    }
}

#[tokio::test]
async fn a_strangers_registrations_are_refused_and_browsers_still_go_to_real_input_nodes() {
    let cluster = Cluster::start(3);
    let all = cluster.live_ids();
    cluster.wait_for_tree(&all, CONVERGE).await;
    let endpoints_url = format!("{}/api/endpoints", cluster.nameserver_url());
    let listed = wait_for_json(&endpoints_url, CONVERGE, |endpoints| {
        !urls(endpoints).is_empty()
    })
    .await;
    let genuine = urls(&listed);
    let node_urls: BTreeSet<String> = all
        .iter()
        .map(|&id| format!("http://127.0.0.1:{}", cluster.spec(id).http_port))
        .collect();
    assert!(genuine.is_subset(&node_urls), "{genuine:?} ⊄ {node_urls:?}");
    let victim: u64 = listed[0]["id"].as_u64().expect("an endpoint has an id");
    let stranger = ProofKey::derive(STRANGER_KEY.as_bytes());

    // The stranger at the nameserver: a phishing URL under a new id and under a real node's id,
    // unproven and proven with another key, and the real node's deregistration.
    let mut nameserver =
        NameserverClient::connect(format!("http://{}", cluster.dir.nameserver_grpc))
            .await
            .expect("the nameserver's gRPC port answers");
    let phishing = |id| RegisterRequest {
        id,
        url: PHISHING.to_owned(),
    };
    for id in [99, victim] {
        assert_refused(
            nameserver.register(tonic::Request::new(phishing(id))).await,
            "an unproven registration",
        );
        assert_refused(
            nameserver
                .register(authorized(&stranger, Rpc::NameserverRegister, phishing(id)))
                .await,
            "a registration under another key",
        );
    }
    assert_refused(
        nameserver
            .deregister(authorized(
                &stranger,
                Rpc::NameserverDeregister,
                DeregisterRequest { id: victim },
            ))
            .await,
        "a deregistration under another key",
    );

    // The stranger at the bootstrap: a node of its own, and a real node's id moved to its host.
    let mut bootstrap = BootstrapClient::connect(format!("http://{}", cluster.dir.bootstrap))
        .await
        .expect("the bootstrap answers");
    let registered_before = bootstrap
        .list_nodes(ListNodesRequest {})
        .await
        .expect("ListNodes is open")
        .into_inner()
        .nodes;
    let address = |id| NodeAddress {
        id,
        host: "203.0.113.66".into(),
        control_port: 61_099,
        data_port: 63_099,
        admin_port: 9_099,
        http_port: 8_080,
    };
    for id in [99, victim] {
        let request = chat_proto::bootstrap::RegisterRequest {
            node: Some(address(id)),
        };
        assert_refused(
            bootstrap
                .register(tonic::Request::new(request.clone()))
                .await,
            "an unproven bootstrap registration",
        );
        assert_refused(
            bootstrap
                .register(authorized(&stranger, Rpc::BootstrapRegister, request))
                .await,
            "a bootstrap registration under another key",
        );
    }

    // Nothing changed: the same nodes are registered, only real input nodes are listed, and every
    // browser that opens the nameserver is sent to one of them.
    let registered_after = bootstrap
        .list_nodes(ListNodesRequest {})
        .await
        .expect("ListNodes is open")
        .into_inner()
        .nodes;
    assert_eq!(registered_after, registered_before);
    let victim_url = format!("http://127.0.0.1:{}", cluster.spec(victim).http_port);
    let listed_after = wait_for_json(&endpoints_url, CONVERGE, |endpoints| {
        urls(endpoints).contains(&victim_url)
    })
    .await;
    assert!(urls(&listed_after).is_subset(&node_urls), "{listed_after}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client builds");
    for _ in 0..2 * node_urls.len() {
        let response = browser
            .get(cluster.nameserver_url())
            .send()
            .await
            .expect("the nameserver answers");
        assert_eq!(response.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        let location = response.headers()["location"]
            .to_str()
            .expect("an ASCII location")
            .trim_end_matches('/')
            .to_owned();
        assert!(node_urls.contains(&location), "sent to {location}");
    }
}
