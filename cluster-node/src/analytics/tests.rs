//! The runtime parts together, in one process: a copy's refusals, the signed map endpoint, and a
//! fan-out over peers that answer, decline, refuse connections or hang, whose ranges move on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cluster_auth::{AUTH_HEADER, Guard, ProofKey, Rpc, proof_header};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::NodeId;
use crate::context::DatabaseSlot;
use crate::service::{
    ChatServiceExt, CreateGroup, LocalService, Register, RequestContext, SendGroupMessage,
    ServiceOptions,
};
use crate::status::{NodeStatus, StatusBoard};
use crate::storage::{Database, Epoch, GroupId, UnixMillis};

use super::endpoint::{MapEndpoint, router};
use super::map::{Declined, MapRequest, Mapper};
use super::plan::TimeRange;
use super::{Analytics, AnalyticsOptions, Query, QueryError};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef";
const HOUR: i64 = 3_600_000;

/// A database with one group of two members and a few messages; answers it, the group and the
/// epoch it is at.
async fn chat() -> (Database, GroupId, Epoch) {
    let database = Database::open_in_memory().await.expect("database");
    let service = LocalService::writer(database.clone(), ServiceOptions::for_tests());
    let ada = service
        .register(
            RequestContext::anonymous(),
            Register {
                username: "ada".into(),
                password: "correct horse".into(),
            },
        )
        .await
        .expect("register")
        .value;
    let context = RequestContext::user(ada.id);
    let group = service
        .create_group(
            context,
            CreateGroup {
                name: "crew".into(),
            },
        )
        .await
        .expect("group")
        .value
        .group
        .id;
    let mut epoch = Epoch(0);
    for content in ["ship the release", "release notes", "ship it"] {
        epoch = service
            .send_group_message(
                context,
                SendGroupMessage {
                    group,
                    content: content.into(),
                    client_id: None,
                    reply_to: None,
                },
            )
            .await
            .expect("send")
            .epoch;
    }
    (database, group, epoch)
}

fn mapper(me: u64, database: &Database, confirmed: bool) -> Mapper {
    let slot = DatabaseSlot::default();
    slot.set(Some(database.clone()), "replica");
    let status = StatusBoard::new(NodeStatus::starting(NodeId(me)));
    status.update(|status| status.copy_confirmed = confirmed);
    Mapper::new(NodeId(me), slot, status, 64, Duration::from_millis(50))
}

fn key() -> ProofKey {
    ProofKey::derive(KEY)
}

/// Serves `mapper`'s endpoint on a loopback port; answers its base URL.
async fn serve(mapper: Mapper) -> String {
    let endpoint = MapEndpoint {
        mapper,
        guard: Arc::new(Guard::new(key())),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router(endpoint)).await });
    format!("http://{address}")
}

/// A port nothing listens on any more.
async fn dead() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// A port that accepts connections and never answers.
async fn hung() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

fn request(group: GroupId, epoch: Epoch) -> MapRequest {
    let now = UnixMillis::now().0;
    MapRequest {
        request: uuid::Uuid::new_v4(),
        group,
        epoch,
        length: HOUR,
        ranges: vec![TimeRange {
            start: UnixMillis(now - HOUR),
            end: UnixMillis(now + HOUR),
        }],
    }
}

fn query(group: GroupId, epoch: Epoch) -> Query {
    // Past now: a message of this very millisecond counts.
    let until = UnixMillis(UnixMillis::now().0 + 1);
    Query {
        group,
        since: UnixMillis(until.0 - 48 * HOUR),
        until,
        length: HOUR,
        epoch,
    }
}

#[tokio::test]
async fn a_confirmed_copy_at_the_epoch_maps_its_ranges() {
    let (database, group, epoch) = chat().await;
    let answer = mapper(2, &database, true)
        .map(&request(group, epoch))
        .await
        .expect("an answer");
    assert_eq!(answer.node, NodeId(2));
    assert_eq!(answer.epoch, epoch);
    assert_eq!((answer.ranges, answer.cached), (1, 0));
    assert_eq!(answer.partial.messages, 3);
    assert_eq!(answer.partial.words["release"], 2);
    assert_eq!(answer.partial.words["ship"], 2);
}

#[tokio::test]
async fn a_copy_declines_when_unconfirmed_without_data_or_behind_the_epoch() {
    let (database, group, epoch) = chat().await;
    assert_eq!(
        mapper(2, &database, false)
            .map(&request(group, epoch))
            .await,
        Err(Declined::Unconfirmed { node: NodeId(2) })
    );
    let empty = Mapper::new(
        NodeId(3),
        DatabaseSlot::default(),
        StatusBoard::new({
            let mut status = NodeStatus::starting(NodeId(3));
            status.copy_confirmed = true;
            status
        }),
        8,
        Duration::from_millis(10),
    );
    assert_eq!(
        empty.map(&request(group, epoch)).await,
        Err(Declined::NoCopy { node: NodeId(3) })
    );
    let ahead = Epoch(epoch.0 + 5);
    let started = std::time::Instant::now();
    assert_eq!(
        mapper(2, &database, true).map(&request(group, ahead)).await,
        Err(Declined::Behind {
            node: NodeId(2),
            have: epoch,
            wanted: ahead
        })
    );
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "it waited for the log to catch up first"
    );
}

#[tokio::test]
async fn the_endpoint_wants_a_fresh_proof_over_the_body() {
    let (database, group, epoch) = chat().await;
    let endpoint = MapEndpoint {
        mapper: mapper(2, &database, true),
        guard: Arc::new(Guard::new(key())),
    };
    let app = router(endpoint);
    let body = serde_json::to_vec(&request(group, epoch)).unwrap();
    let post = |proof: Option<String>, body: Vec<u8>| {
        let mut builder = Request::post("/stats/map").header("content-type", "application/json");
        if let Some(proof) = proof {
            builder = builder.header(AUTH_HEADER, proof);
        }
        builder.body(Body::from(body)).unwrap()
    };
    let status = |response: axum::response::Response| response.status();

    let unsigned = app.clone().oneshot(post(None, body.clone())).await.unwrap();
    assert_eq!(status(unsigned), StatusCode::UNAUTHORIZED);
    let wrong_rpc = proof_header(&key(), Rpc::AdminBackup, &body);
    let answer = app
        .clone()
        .oneshot(post(Some(wrong_rpc), body.clone()))
        .await
        .unwrap();
    assert_eq!(status(answer), StatusCode::UNAUTHORIZED);

    let proof = proof_header(&key(), Rpc::AdminStatsMap, &body);
    let answer = app
        .clone()
        .oneshot(post(Some(proof.clone()), body.clone()))
        .await
        .unwrap();
    assert_eq!(status(answer), StatusCode::OK);
    let replayed = app
        .clone()
        .oneshot(post(Some(proof), body.clone()))
        .await
        .unwrap();
    assert_eq!(status(replayed), StatusCode::UNAUTHORIZED);

    let not_json = b"{\"nope\":1}".to_vec();
    let proof = proof_header(&key(), Rpc::AdminStatsMap, &not_json);
    let answer = app
        .clone()
        .oneshot(post(Some(proof), not_json))
        .await
        .unwrap();
    assert_eq!(status(answer), StatusCode::BAD_REQUEST);

    let ahead = serde_json::to_vec(&request(group, Epoch(epoch.0 + 1))).unwrap();
    let proof = proof_header(&key(), Rpc::AdminStatsMap, &ahead);
    let answer = app.oneshot(post(Some(proof), ahead)).await.unwrap();
    assert_eq!(status(answer), StatusCode::CONFLICT);
}

#[tokio::test]
async fn ranges_of_nodes_that_decline_refuse_or_hang_move_on_and_the_counts_stay_the_same() {
    let (database, group, epoch) = chat().await;
    let alone = Analytics::alone(mapper(1, &database, true))
        .run(&query(group, epoch))
        .await
        .expect("alone");
    let peers = BTreeMap::from([
        (NodeId(2), serve(mapper(2, &database, true)).await),
        (NodeId(3), dead().await),
        (NodeId(4), serve(mapper(4, &database, false)).await),
        (NodeId(5), hung().await),
    ]);
    // Long enough for the answering peer on a loaded machine (it shares one in-memory connection
    // with this node), short enough for the hung one to cost little.
    let options = AnalyticsOptions {
        map_timeout: Duration::from_millis(1_500),
        ..AnalyticsOptions::default()
    };
    let analytics = Analytics::with_peers(mapper(1, &database, true), peers, key(), options);

    let answer = analytics
        .run(&query(group, epoch))
        .await
        .expect("an answer");

    assert_eq!(answer.stats, alone.stats);
    assert_eq!(answer.stats.messages, 3);
    assert_eq!(answer.ranges, 49);
    let computed: BTreeSet<NodeId> = answer.computed_by.keys().copied().collect();
    assert_eq!(computed, BTreeSet::from([NodeId(1), NodeId(2)]));
    assert_eq!(
        answer
            .computed_by
            .values()
            .map(|share| share.ranges)
            .sum::<usize>(),
        49
    );
    let declined: BTreeSet<NodeId> = answer.declined.keys().copied().collect();
    assert_eq!(
        declined,
        BTreeSet::from([NodeId(3), NodeId(4), NodeId(5)]),
        "{:?}",
        answer.declined
    );
    assert!(answer.declined[&NodeId(4)].contains("not confirmed"));
    assert!(
        answer.declined[&NodeId(5)].contains("did not answer"),
        "{:?}",
        answer.declined
    );
}

#[tokio::test]
async fn a_query_nobody_can_compute_is_unavailable() {
    let (database, group, epoch) = chat().await;
    let peers = BTreeMap::from([(NodeId(2), serve(mapper(2, &database, false)).await)]);
    let analytics = Analytics::with_peers(
        mapper(1, &database, false),
        peers,
        key(),
        AnalyticsOptions::default(),
    );
    let error = analytics
        .run(&query(group, epoch))
        .await
        .expect_err("nobody");
    let QueryError::Unavailable(message) = error else {
        panic!("{error:?}");
    };
    assert!(message.contains("not confirmed"), "{message}");
}

#[tokio::test]
async fn a_query_is_answered_at_the_client_epoch_or_the_own_copy_if_newer() {
    let (database, _, epoch) = chat().await;
    let analytics = Analytics::alone(mapper(1, &database, true));
    assert_eq!(analytics.epoch_for(Epoch(1)).await, epoch);
    assert_eq!(
        analytics.epoch_for(Epoch(epoch.0 + 7)).await,
        Epoch(epoch.0 + 7)
    );
    let unconfirmed = Analytics::alone(mapper(1, &database, false));
    assert_eq!(unconfirmed.epoch_for(Epoch(2)).await, Epoch(2));
}
