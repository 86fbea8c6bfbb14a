//! `POST /remove` on the admin port: takes a node out of the cluster for good.
//!
//! ```text
//!   chat-admin remove-node 3 ─► POST /remove {"node":3,"force":false} on any node (signed)
//!        └─ not the writer? forwarded once, as is, to the leader's admin port (address from the bootstrap)
//!   writer: replication::removal_refused? ─► 409 with the reason
//!           accepted ─► configuration changes through the log (a replacement first when one is at hand)
//!           status shows voters without 3 ─► bootstrap Deregister (signed) ─► 200 {"removed":3,…}
//! ```
//!
//! The request needs a proof of the cluster key over its body (`x-chat-auth`). The answer comes once
//! the node is out of the voter configuration and the bootstrap forgot it, or says which step did not
//! finish; asking again is safe (every step is idempotent).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use chat_proto::bootstrap::{DeregisterRequest, ListNodesRequest};
use cluster_auth::{AUTH_HEADER, Guard, ProofKey, Rpc, authorized};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Endpoint;

use crate::admin::admin_error;
use crate::config::{NodeId, ServiceAddr};
use crate::data::RemovalRequest;
use crate::status::{Role, StatusBoard};

/// Marks a request one node already forwarded: it is never forwarded again.
const FORWARDED_HEADER: &str = "x-chat-forwarded-by";

/// How long the writer waits for the configuration to drop the node before answering.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// What the endpoint needs of the node.
#[derive(Clone)]
pub struct RemovalEndpoint {
    pub me: NodeId,
    pub status: StatusBoard,
    pub guard: Arc<Guard>,
    /// Where the writer's data plane takes removal requests.
    pub requests: mpsc::Sender<RemovalRequest>,
    pub bootstrap: ServiceAddr,
    pub key: ProofKey,
    pub wait: Duration,
}

/// `{"node": 3, "force": false}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveBody {
    pub node: u64,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize)]
struct Removed {
    removed: u64,
    /// The voters once it was out.
    voters: Vec<NodeId>,
    /// Its neighbours in the registry before it was forgotten (they repair around it).
    former_neighbors: Vec<u64>,
}

pub fn router(endpoint: RemovalEndpoint) -> Router {
    Router::new()
        .route("/remove", post(remove))
        .with_state(endpoint)
}

async fn remove(
    State(endpoint): State<RemovalEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(proof) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return admin_error(
            StatusCode::UNAUTHORIZED,
            "no proof of the cluster key (the x-chat-auth header is missing)",
        );
    };
    if let Err(refused) = endpoint
        .guard
        .verify_now(Rpc::AdminRemoveNode, &body, proof)
    {
        tracing::warn!(reason = %refused, "removal request refused");
        return admin_error(StatusCode::UNAUTHORIZED, refused.to_string());
    }
    let request: RemoveBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(bad) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"node\": <id>, \"force\": false}}: {bad}"),
            );
        }
    };
    let node = match crate::config::parse_node_id(request.node) {
        Ok(node) => node,
        Err(reason) => return admin_error(StatusCode::BAD_REQUEST, format!("node id {reason}")),
    };
    let status = endpoint.status.snapshot();
    let writer = status.roles.contains(&Role::Writer) && status.accepting_writes;
    if !writer {
        if headers.contains_key(FORWARDED_HEADER) {
            return admin_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "node {} was asked as the writer but does not accept writes; ask again",
                    endpoint.me
                ),
            );
        }
        let Some(leader) = status.leader else {
            return admin_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "this node knows no writer yet (an election is on); ask again in a moment",
            );
        };
        return forward(&endpoint, leader, proof, body).await;
    }

    let (reply, answer) = oneshot::channel();
    let sent = endpoint
        .requests
        .send(RemovalRequest {
            node,
            force: request.force,
            reply,
        })
        .await;
    let accepted = match sent {
        Ok(()) => answer
            .await
            .unwrap_or_else(|_| Err("the data plane stopped".into())),
        Err(_) => Err("the data plane is not running".into()),
    };
    if let Err(why) = accepted {
        return admin_error(StatusCode::CONFLICT, why);
    }
    let voters = match wait_until_out(&endpoint, node).await {
        Ok(voters) => voters,
        Err(voters) => {
            return admin_error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "node {node} is still a voter after {} s (voters now: {voters:?}); the change goes on: ask again to finish",
                    endpoint.wait.as_secs()
                ),
            );
        }
    };
    match deregister(&endpoint, node).await {
        Ok(former) => {
            tracing::warn!(%node, ?voters, ?former, "node removed from the cluster");
            (
                StatusCode::OK,
                axum::Json(Removed {
                    removed: node.0,
                    voters,
                    former_neighbors: former,
                }),
            )
                .into_response()
        }
        Err(why) => admin_error(
            StatusCode::BAD_GATEWAY,
            format!(
                "node {node} is out of the voters, but the bootstrap did not forget it: {why}; ask again"
            ),
        ),
    }
}

/// Waits until the published configuration no longer names `node`: `Ok(voters)`, or `Err(voters)`
/// after the wait.
async fn wait_until_out(
    endpoint: &RemovalEndpoint,
    node: NodeId,
) -> Result<Vec<NodeId>, Vec<NodeId>> {
    let mut status = endpoint.status.subscribe();
    let out = tokio::time::timeout(
        endpoint.wait,
        status.wait_for(|now| !now.voters.is_empty() && !now.voters.contains(&node)),
    )
    .await;
    let voters = endpoint.status.snapshot().voters;
    match out {
        Ok(Ok(_)) => Ok(voters),
        _ => Err(voters),
    }
}

async fn bootstrap_client(
    endpoint: &RemovalEndpoint,
) -> Result<BootstrapClient<tonic::transport::Channel>, String> {
    let channel = Endpoint::from_shared(endpoint.bootstrap.grpc_uri())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot reach the bootstrap at {}: {e}", endpoint.bootstrap))?;
    Ok(BootstrapClient::new(channel))
}

async fn deregister(endpoint: &RemovalEndpoint, node: NodeId) -> Result<Vec<u64>, String> {
    let mut client = bootstrap_client(endpoint).await?;
    let answer = client
        .deregister(authorized(
            &endpoint.key,
            Rpc::BootstrapDeregister,
            DeregisterRequest { id: node.0 },
        ))
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    Ok(answer.former_neighbors)
}

/// Sends the request on, as it came, to the leader's admin port, and answers what it answered.
async fn forward(endpoint: &RemovalEndpoint, leader: NodeId, proof: &str, body: Bytes) -> Response {
    let address = async {
        let mut client = bootstrap_client(endpoint).await?;
        let listing = client
            .list_nodes(ListNodesRequest {})
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        listing
            .nodes
            .into_iter()
            .filter_map(|entry| entry.address)
            .find(|address| address.id == leader.0)
            .map(|address| {
                if address.host.contains(':') {
                    format!("http://[{}]:{}", address.host, address.admin_port)
                } else {
                    format!("http://{}:{}", address.host, address.admin_port)
                }
            })
            .ok_or_else(|| format!("the bootstrap does not list the writer, node {leader}"))
    }
    .await;
    let url = match address {
        Ok(url) => url,
        Err(why) => return admin_error(StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let client = match reqwest::Client::builder()
        .timeout(endpoint.wait + Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => return admin_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let answer = client
        .post(format!("{url}/remove"))
        .header(AUTH_HEADER, proof)
        .header(FORWARDED_HEADER, endpoint.me.0.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = answer.text().await.unwrap_or_default();
            (status, [("content-type", "application/json")], text).into_response()
        }
        Err(e) => admin_error(
            StatusCode::BAD_GATEWAY,
            format!("the writer, node {leader} ({url}), did not answer: {e}"),
        ),
    }
}
