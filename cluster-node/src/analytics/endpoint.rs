//! `POST /stats/map` on the admin port: another node asks this copy for its share of a query.
//!
//! The request hands out message text, so it needs a proof of the cluster key over its body
//! (`x-chat-auth`, `Rpc::AdminStatsMap`), like `GET /backup`. Answers: 200 with the
//! [`MapAnswer`](super::map::MapAnswer); 409 when this copy may not answer (not confirmed by the
//! writer, or behind the query's epoch) and 503 when it keeps no copy, both saying why, so the asking
//! node moves the ranges on; 401 and 400 for a request that is not one.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cluster_auth::{AUTH_HEADER, Guard, Rpc};

use crate::admin::admin_error;

use super::map::{Declined, MapRequest, Mapper};

/// What the endpoint needs of the node.
#[derive(Clone)]
pub struct MapEndpoint {
    pub mapper: Mapper,
    pub guard: Arc<Guard>,
}

/// `POST /stats/map`, merged into the admin router.
pub fn router(endpoint: MapEndpoint) -> Router {
    Router::new()
        .route("/stats/map", post(map))
        .with_state(endpoint)
}

async fn map(State(endpoint): State<MapEndpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(proof) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return admin_error(
            StatusCode::UNAUTHORIZED,
            "no proof of the cluster key (the x-chat-auth header is missing)",
        );
    };
    if let Err(refused) = endpoint.guard.verify_now(Rpc::AdminStatsMap, &body, proof) {
        if let Some(refused_count) = endpoint.guard.refusal_to_log() {
            tracing::warn!(reason = %refused, refused = refused_count, "statistics requests without a valid proof refused");
        }
        return admin_error(StatusCode::UNAUTHORIZED, refused.to_string());
    }
    let request: MapRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("not a map request: {error}"),
            );
        }
    };
    match endpoint.mapper.map(&request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(declined) => {
            let status = match declined {
                Declined::Unconfirmed { .. } | Declined::Behind { .. } => StatusCode::CONFLICT,
                Declined::NoCopy { .. } | Declined::Failed { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            admin_error(status, declined.to_string())
        }
    }
}
