//! A stranger on the network against a running cluster: a raw ZeroMQ DEALER that claims the identity
//! of a real member sends the writer forged data- and control-plane frames (well-formed JSON with no
//! seal, garbage, a seal under the wrong key, and genuinely sealed frames replayed). None has any
//! effect: nothing is stored, the leader and term stay, and every refusal is counted.

use std::time::{Duration, Instant};

use cluster_node::config::{ClusterKey, NodeId};
use cluster_node::data::message::{self, DataMessage, RequestId};
use cluster_node::service::ServiceRequest;
use cluster_node::service::operation::{Operation, SendGroupMessage};
use cluster_node::storage::ids::{GroupId, UserId};
use cluster_node::transport::incarnation::Incarnation;
use cluster_node::transport::seal::{Plane, PlaneKey, Sealer};
use overlay::{Body, ElectionBody, ElectionId, ElectionValue, Envelope, Epoch, LamportTime, Term};
use serde_json::json;
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, Socket, SocketOptions, SocketSend, ZmqMessage};

const CONVERGE: Duration = Duration::from_secs(15);

/// `chat_node_frames_rejected_total{plane,reason}` on node `id`'s `/metrics` (0 before the first).
async fn rejected(cluster: &Cluster, id: u64, plane: &str, reason: &str) -> u64 {
    let text = reqwest::get(cluster.spec(id).admin_url("/metrics"))
        .await
        .and_then(|response| response.error_for_status())
        .expect("the admin port answers /metrics")
        .text()
        .await
        .expect("a text body");
    let labels = format!(r#"plane="{plane}",reason="{reason}""#);
    text.lines()
        .find(|line| line.starts_with("chat_node_frames_rejected_total{") && line.contains(&labels))
        .and_then(|line| line.rsplit(' ').next())
        .map(|value| value.parse().expect("a counter value"))
        .unwrap_or(0)
}

/// What the attacker sends on one plane, and what the target must count for it.
struct Attack {
    plane: &'static str,
    port: u16,
    frames: Vec<Vec<u8>>,
    /// (reason, at least this many more than before)
    expected: Vec<(&'static str, u64)>,
}

/// Dials `port` as `node-<claimed>` and sends the frames until the target has counted them. (The
/// ROUTER gives a claimed identity's stream to the newest connection, so the real member's own
/// reconnection can take ours away: then we dial again.)
async fn run(cluster: &Cluster, target: u64, claimed: u64, attack: &Attack) {
    let before = futures::future::join_all(
        attack
            .expected
            .iter()
            .map(|(reason, _)| rejected(cluster, target, attack.plane, reason)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut options = SocketOptions::default();
        options.peer_identity(
            PeerIdentity::try_from(format!("node-{claimed}").into_bytes()).expect("a short id"),
        );
        let mut dealer = DealerSocket::with_options(options);
        if dealer
            .connect(&format!("tcp://127.0.0.1:{}", attack.port))
            .await
            .is_ok()
        {
            for frame in &attack.frames {
                let _ = dealer.send(ZmqMessage::from(frame.clone())).await;
            }
        }
        let settle = Instant::now() + Duration::from_secs(2);
        loop {
            let mut counted = true;
            for ((reason, more), before) in attack.expected.iter().zip(&before) {
                counted &= rejected(cluster, target, attack.plane, reason).await >= before + more;
            }
            if counted {
                dealer.close().await;
                return;
            }
            if Instant::now() > settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dealer.close().await;
        assert!(
            Instant::now() < deadline,
            "node {target} never counted the {} plane's forged frames as {:?}",
            attack.plane,
            attack.expected
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unsealed_and_replayed_frames_from_a_claimed_member_change_nothing() {
    // Arrange: a settled cluster, a victim with a private group, and the writer's child whose
    // identity the attacker claims (the writer has heard from it on both planes).
    let cluster = Cluster::start(3);
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    let writer = cluster.wait_for_writer(&all, CONVERGE).await;
    assert_eq!(leader, writer);
    let member = *cluster
        .children(writer)
        .await
        .first()
        .expect("the writer of three nodes has a child");
    let mut input = None;
    for &id in &all {
        if let Some(url) = cluster
            .status(id)
            .await
            .and_then(|s| s["http"].as_str().map(str::to_owned))
        {
            input = Some(url);
        }
    }
    let victim = ChatClient::new(input.expect("a tree has an input node"));
    let (victim_id, _) = victim.sign_up("victim").await;
    let group = victim.post("/api/groups", json!({"name": "private"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let group_id = group.body["id"].as_str().expect("a group id").to_owned();
    let messages_path = format!("/api/groups/{group_id}/messages");

    let before = cluster.statuses(&all).await;
    let term = before[&writer]["term"].as_u64().expect("a term");
    let cluster_key = ClusterKey::parse(
        std::fs::read_to_string(cluster.dir.path().join(".cluster_key"))
            .expect("the cluster's key file")
            .trim(),
    )
    .expect("a valid cluster key");
    let wrong_key = ClusterKey::parse("not the cluster key, but long enough").unwrap();
    let incarnation_text = std::fs::read_to_string(cluster.data_dir(member).join("incarnation"))
        .expect("member's incarnation");
    let current = Incarnation(incarnation_text.trim().parse().expect("a number"));
    let previous = Incarnation(current.0 - 1);
    let (from, to) = (NodeId(member), NodeId(writer));

    // The forged payloads: the victim's message into the victim's group, and a stronger election.
    let forged_write = message::encode(
        term,
        &DataMessage::Request {
            id: RequestId {
                origin: from,
                seq: 1,
            },
            request: ServiceRequest {
                caller: Some(UserId::parse(&victim_id).unwrap()),
                client_epoch: Epoch(0),
                operation: Operation::SendGroupMessage(SendGroupMessage {
                    group: GroupId::parse(&group_id).unwrap(),
                    content: "forged".into(),
                    client_id: None,
                    reply_to: None,
                }),
            },
        },
    );
    let stronger = LamportTime(1 << 40);
    let forged_election = overlay::encode(&Envelope::new(
        from,
        to,
        stronger,
        Body::Election(ElectionBody::Start {
            election: ElectionId {
                term: Term(term + 1),
                clock: stronger,
                initiator: from,
            },
            value: ElectionValue {
                data_term: Term(1 << 30),
                epoch: Epoch(1 << 40),
                node: from,
            },
        }),
    ));

    let attack = |plane: Plane, port: u16, forged: &[u8]| {
        let sealed = |key: &ClusterKey, incarnation: Incarnation, payload: &[u8]| {
            Sealer::new(PlaneKey::derive(key, plane), from, incarnation)
                .seal(to, payload)
                .expect("a small frame seals")
                .to_vec()
        };
        // A genuine frame of the member's current incarnation, with a counter it used long ago:
        // whether or not the writer saw that one, its second copy is a replay.
        let genuine = sealed(&cluster_key, current, b"{}");
        Attack {
            plane: plane.label(),
            port,
            frames: vec![
                forged.to_vec(),
                b"\x00\xffgarbage, not a frame".to_vec(),
                // A newer incarnation, so that only the wrong key can refuse it.
                sealed(&wrong_key, Incarnation(current.0 + 1_000_000), forged),
                // Captured from the member's previous run: refused, the writer knows a newer one.
                sealed(&cluster_key, previous, forged),
                genuine.clone(),
                genuine,
            ],
            expected: vec![("malformed", 2), ("seal", 1), ("replay", 2)],
        }
    };

    // Act: on the writer's data port, then on its control port.
    let spec = cluster.spec(writer);
    run(
        &cluster,
        writer,
        member,
        &attack(Plane::Data, spec.data_port, &forged_write),
    )
    .await;
    run(
        &cluster,
        writer,
        member,
        &attack(Plane::Control, spec.control_port, &forged_election),
    )
    .await;

    // Assert: no election (same leader and term everywhere) and nothing stored: the victim's next
    // post is the only message of the group (read-your-writes: whoever answers holds that post, so
    // it holds anything the writer committed before it).
    let after = cluster.statuses(&all).await;
    for &id in &all {
        assert_eq!(
            (&after[&id]["leader"], &after[&id]["term"]),
            (&before[&id]["leader"], &before[&id]["term"]),
            "node {id}'s leader or term changed"
        );
    }
    let posted = victim
        .post(&messages_path, json!({"content": "mine"}))
        .await;
    assert_eq!(posted.status, 201, "{posted:?}");
    let listed = victim.get(&messages_path).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let contents: Vec<&str> = listed
        .body
        .as_array()
        .expect("a list of messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["mine"]);
}
