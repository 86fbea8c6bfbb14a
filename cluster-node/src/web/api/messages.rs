//! Messages by id: deletion by their sender.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::delete;

use crate::service::{ChatServiceExt, DeleteMessage};
use crate::storage::MessageId;

use super::super::WebState;
use super::super::error::AppError;
use super::super::session::ChatSession;
use super::no_content;

pub(super) fn router() -> Router<WebState> {
    Router::new().route("/api/messages/{id}", delete(remove))
}

async fn remove(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let message =
        MessageId::parse(&id).map_err(|_| AppError::NotFound("message not found".into()))?;
    let answer = state
        .service
        .delete_message(session.context(), DeleteMessage { message })
        .await?;
    session.observe(answer.epoch).await?;
    Ok(no_content(answer.epoch))
}
