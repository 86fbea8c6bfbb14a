//! Messages by id: edits and deletion by their sender, reactions by anyone who can read them.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, put};
use serde::Deserialize;

use crate::service::{ChatServiceExt, DeleteMessage, EditMessage, SetReaction};

use super::super::WebState;
use super::super::error::{ApiJson, AppError};
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::MessageView;
use super::{no_content, reply};

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/api/messages/{id}", delete(remove).patch(edit))
        .route(
            "/api/messages/{id}/reactions/{emoji}",
            put(react).delete(unreact),
        )
}

#[derive(Deserialize)]
struct EditBody {
    content: String,
}

async fn remove(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let message = paths::message(&id)?;
    let answer = session
        .observed(
            state
                .service
                .delete_message(session.context(), DeleteMessage { message }),
        )
        .await?;
    Ok(no_content(answer.epoch))
}

async fn edit(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditBody>,
) -> Result<Response, AppError> {
    let message = paths::message(&id)?;
    let answer = session
        .observed(state.service.edit_message(
            session.context(),
            EditMessage {
                message,
                content: body.content,
            },
        ))
        .await?;
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        MessageView::from(&answer.value),
    ))
}

async fn set_reaction(
    state: WebState,
    mut session: ChatSession,
    id: &str,
    emoji: String,
    on: bool,
) -> Result<Response, AppError> {
    let message = paths::message(id)?;
    let answer = session
        .observed(
            state
                .service
                .set_reaction(session.context(), SetReaction { message, emoji, on }),
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        MessageView::from(&answer.value),
    ))
}

async fn react(
    State(state): State<WebState>,
    session: ChatSession,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<Response, AppError> {
    set_reaction(state, session, &id, emoji, true).await
}

async fn unreact(
    State(state): State<WebState>,
    session: ChatSession,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<Response, AppError> {
    set_reaction(state, session, &id, emoji, false).await
}
