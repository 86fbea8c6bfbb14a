//! The admin HTTP endpoint every node serves, whatever its role: `GET /status`, `GET /readyz`
//! (200 or 503 with the reason, see [`crate::readiness`]), `GET /metrics`, `GET /data` (the local database's position and content hash, to compare copies), and the fault switch (`GET`/`POST`/`DELETE /fault`) when the node was started with `--allow-faults`.
//!
//! It is separate from the chat HTTP server (which only input nodes run) so that operators, tests and
//! the nameserver's cluster view can always see a node, even one that is electing or changing role.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::context::DatabaseSlot;
use crate::metrics::{self, Metrics};
use crate::status::StatusBoard;
use crate::transport::fault::{FaultSwitch, FaultSwitches};

#[derive(Clone)]
struct AdminState {
    status: StatusBoard,
    metrics: Arc<Metrics>,
    /// `None` unless fault injection was allowed at startup.
    faults: Option<FaultSwitches>,
    database: DatabaseSlot,
}

/// The admin router; served on the admin port by the node.
pub fn router(
    status: StatusBoard,
    metrics: Arc<Metrics>,
    faults: Option<FaultSwitches>,
    database: DatabaseSlot,
) -> Router {
    Router::new()
        .route("/status", get(status_handler))
        .route("/readyz", get(readyz_handler))
        .route("/metrics", get(metrics_handler))
        .route("/data", get(data_handler))
        .route(
            "/fault",
            get(fault_state).post(fault_isolate).delete(fault_heal),
        )
        .with_state(AdminState {
            status,
            metrics,
            faults,
            database,
        })
}

/// `GET /data`: what the local copy of the data holds.
#[derive(Debug, Serialize)]
struct DataReport {
    term: u64,
    epoch: u64,
    /// Hex content hash of every table; `None` when this node keeps no database open.
    hash: Option<String>,
    /// `writer`, `replica` or `none`.
    role: &'static str,
    accepting_writes: bool,
}

/// `POST /fault` body: the peers to drop all traffic with on the chosen planes (default both),
/// replacing any earlier set on those planes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    drop: Vec<NodeId>,
    #[serde(default)]
    plane: PlaneChoice,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PlaneChoice {
    #[default]
    Both,
    Control,
    Data,
}

#[derive(Debug, Serialize)]
struct FaultState {
    enabled: bool,
    /// Peers whose control-plane traffic is dropped.
    control: Vec<NodeId>,
    /// Peers whose data-plane traffic is dropped.
    data: Vec<NodeId>,
}

impl FaultState {
    fn of(faults: Option<&FaultSwitches>) -> Self {
        Self {
            enabled: faults.is_some(),
            control: faults.map(|f| f.control.blocked()).unwrap_or_default(),
            data: faults.map(|f| f.data.blocked()).unwrap_or_default(),
        }
    }
}

/// `{"error": message}` with `status`: how every admin endpoint says no.
pub(crate) fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn fault_disabled() -> Response {
    admin_error(
        StatusCode::FORBIDDEN,
        "fault injection is disabled; start the node with --allow-faults",
    )
}

async fn fault_state(State(state): State<AdminState>) -> Json<FaultState> {
    Json(FaultState::of(state.faults.as_ref()))
}

async fn fault_isolate(
    State(state): State<AdminState>,
    body: Result<Json<FaultRequest>, JsonRejection>,
) -> Response {
    let Some(faults) = state.faults else {
        return fault_disabled();
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return admin_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if request.drop.contains(&NodeId(0)) {
        return admin_error(StatusCode::BAD_REQUEST, "node ids start at 1");
    }
    let switches: Vec<&FaultSwitch> = match request.plane {
        PlaneChoice::Both => vec![&faults.control, &faults.data],
        PlaneChoice::Control => vec![&faults.control],
        PlaneChoice::Data => vec![&faults.data],
    };
    for switch in switches {
        switch.isolate_from(request.drop.iter().copied());
    }
    let state = FaultState::of(Some(&faults));
    tracing::warn!(control = ?state.control, data = ?state.data, "fault switch: dropping traffic");
    Json(state).into_response()
}

async fn fault_heal(State(state): State<AdminState>) -> Response {
    let Some(faults) = state.faults else {
        return fault_disabled();
    };
    faults.control.heal();
    faults.data.heal();
    tracing::warn!("fault switch: healed");
    Json(FaultState::of(Some(&faults))).into_response()
}

async fn status_handler(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(state.status.snapshot()),
    )
}

/// `GET /readyz` body.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

async fn readyz_handler(State(state): State<AdminState>) -> Response {
    let (code, body) = match crate::readiness::readiness(&state.status.snapshot()) {
        Ok(()) => (
            StatusCode::OK,
            Readiness {
                ready: true,
                reason: None,
            },
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Readiness {
                ready: false,
                reason: Some(reason.to_string()),
            },
        ),
    };
    (code, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn data_handler(State(state): State<AdminState>) -> Response {
    let accepting_writes = state.status.snapshot().accepting_writes;
    let Some((database, role)) = state.database.get() else {
        return Json(DataReport {
            term: 0,
            epoch: 0,
            hash: None,
            role: "none",
            accepting_writes,
        })
        .into_response();
    };
    // Two reads: while writes flow, the rows may move on between them; copies are compared at rest.
    let report = async {
        let position = database.position().await?;
        let hash = database.content_hash().await?;
        Ok::<_, crate::storage::StorageError>((position, hash))
    };
    match report.await {
        Ok(((term, epoch), hash)) => Json(DataReport {
            term: term.0,
            epoch: epoch.0,
            hash: Some(hash.to_string()),
            role,
            accepting_writes,
        })
        .into_response(),
        Err(error) => admin_error(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

async fn metrics_handler(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::NodeStatus;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> (Router, StatusBoard) {
        let board = StatusBoard::new(NodeStatus::starting(NodeId(5)));
        let metrics = Arc::new(Metrics::new(5, 0));
        (
            router(board.clone(), metrics, None, DatabaseSlot::default()),
            board,
        )
    }

    async fn get_body(router: Router, path: &str) -> (StatusCode, String, String) {
        call(router, Request::get(path).body(Body::empty()).unwrap()).await
    }

    async fn call(router: Router, request: Request<Body>) -> (StatusCode, String, String) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn status_answers_the_current_snapshot_as_json() {
        let (router, board) = app();
        board.update(|s| s.registered = true);
        let (code, content_type, body) = get_body(router, "/status").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["id"], 5);
        assert_eq!(json["registered"], true);
    }

    #[tokio::test]
    async fn readyz_answers_503_with_the_reason_until_the_node_is_ready_then_200() {
        let (router, board) = app();
        let (code, content_type, body) = get_body(router.clone(), "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, "application/json");
        assert_eq!(
            body,
            r#"{"ready":false,"reason":"not registered with the bootstrap yet"}"#
        );

        board.update(|s| {
            s.registered = true;
            s.ready = true;
            s.leader = Some(NodeId(5));
            s.tree_roles = vec![crate::status::Role::Writer];
            s.copy = crate::status::CopyKind::Voter;
            s.refresh_roles();
            s.accepting_writes = true;
        });
        let (code, _, body) = get_body(router, "/readyz").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, r#"{"ready":true}"#);
    }

    #[tokio::test]
    async fn metrics_answer_openmetrics_text() {
        let (router, _) = app();
        let (code, content_type, body) = get_body(router, "/metrics").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(content_type, metrics::CONTENT_TYPE);
        assert!(body.contains("chat_node_ready"), "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let (router, _) = app();
        let (code, _, _) = get_body(router, "/nope").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    }

    fn post_fault(body: &str) -> Request<Body> {
        Request::post("/fault")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn the_fault_switch_is_refused_unless_allowed() {
        let (router, _) = app();
        let (code, _, body) = call(router.clone(), post_fault(r#"{"drop":[2]}"#)).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(body.contains("--allow-faults"), "{body}");
        let (code, _, _) = call(
            router.clone(),
            Request::delete("/fault").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let (code, _, body) = get_body(router, "/fault").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains(r#""enabled":false"#), "{body}");
    }

    #[tokio::test]
    async fn an_allowed_fault_switch_isolates_and_heals() {
        let board = StatusBoard::new(NodeStatus::starting(NodeId(5)));
        let faults = FaultSwitches::default();
        let router = router(
            board,
            Arc::new(Metrics::new(5, 0)),
            Some(faults.clone()),
            DatabaseSlot::default(),
        );

        let (code, _, body) = call(router.clone(), post_fault(r#"{"drop":[2,3]}"#)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(faults.control.blocked(), vec![NodeId(2), NodeId(3)]);
        assert_eq!(faults.data.blocked(), vec![NodeId(2), NodeId(3)]);

        let data_only = post_fault(r#"{"drop":[4],"plane":"data"}"#);
        let (code, _, _) = call(router.clone(), data_only).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            faults.control.blocked(),
            vec![NodeId(2), NodeId(3)],
            "control untouched"
        );
        assert_eq!(faults.data.blocked(), vec![NodeId(4)]);

        for bad in [
            r#"{"drop":[0]}"#,
            r#"{"drop":"x"}"#,
            "not json",
            r#"{"dorp":[1]}"#,
        ] {
            let (code, _, body) = call(router.clone(), post_fault(bad)).await;
            assert!(code.is_client_error(), "{bad}: {code}");
            assert!(body.contains("error"), "{bad}: {body}");
        }
        assert_eq!(
            faults.control.blocked().len(),
            2,
            "a bad request changes nothing"
        );

        let (code, _, _) = call(
            router,
            Request::delete("/fault").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert!(faults.control.blocked().is_empty() && faults.data.blocked().is_empty());
    }
}
