//! The admin HTTP endpoint every node serves, whatever its role: `GET /status` and `GET /metrics`.
//!
//! It is separate from the chat HTTP server (which only input nodes run) so that operators, tests and
//! the nameserver's cluster view can always see a node, even one that is electing or changing role.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::metrics::{self, Metrics};
use crate::status::StatusBoard;

#[derive(Clone)]
struct AdminState {
    status: StatusBoard,
    metrics: Arc<Metrics>,
}

/// The admin router; served on the admin port by the node.
pub fn router(status: StatusBoard, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/status", get(status_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { status, metrics })
}

async fn status_handler(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(state.status.snapshot()),
    )
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
    use crate::config::NodeId;
    use crate::status::NodeStatus;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn app() -> (Router, StatusBoard) {
        let board = StatusBoard::new(NodeStatus::starting(NodeId::new(5).unwrap()));
        let metrics = Arc::new(Metrics::new(5, 0));
        (router(board.clone(), metrics), board)
    }

    async fn get_body(router: Router, path: &str) -> (StatusCode, String, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
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
}
