//! Messages by id: edits and deletion by their sender, reactions by anyone who can read them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::{ChatServiceExt, DeleteMessage, EditMessage, SetReaction};

use super::super::WebState;
use super::super::error::{ApiJson, AppError};
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::MessageView;
use super::{no_content, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(remove, edit))
        .routes(routes!(react, unreact))
}

#[derive(Deserialize, ToSchema)]
struct EditBody {
    /// 1–4,000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    content: String,
}

#[utoipa::path(
    delete,
    operation_id = "messages_remove",
    path = "/api/messages/{id}",
    tag = "messages",
    summary = "Deletes a message (its sender only)",
    params(("id" = String, Path, description = "The message's id")),
    responses((status = 204, description = "Deleted"), ApiErrors),
    security(("session" = []))
)]
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

#[utoipa::path(
    patch,
    operation_id = "messages_edit",
    path = "/api/messages/{id}",
    tag = "messages",
    summary = "Edits a message (its sender only)",
    request_body = EditBody,
    params(("id" = String, Path, description = "The message's id")),
    responses((status = 200, description = "The edited message", body = MessageView), ApiErrors),
    security(("session" = []))
)]
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

#[utoipa::path(
    put,
    operation_id = "messages_react",
    path = "/api/messages/{id}/reactions/{emoji}",
    tag = "messages",
    summary = "Adds the caller's reaction (idempotent)",
    params(("id" = String, Path, description = "The message's id"), ("emoji" = String, Path, description = "Exactly one emoji, percent-encoded")),
    responses((status = 200, description = "The message with its reactions", body = MessageView), ApiErrors),
    security(("session" = []))
)]
async fn react(
    State(state): State<WebState>,
    session: ChatSession,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<Response, AppError> {
    set_reaction(state, session, &id, emoji, true).await
}

#[utoipa::path(
    delete,
    operation_id = "messages_unreact",
    path = "/api/messages/{id}/reactions/{emoji}",
    tag = "messages",
    summary = "Takes the caller's reaction back (idempotent)",
    params(("id" = String, Path, description = "The message's id"), ("emoji" = String, Path, description = "Exactly one emoji, percent-encoded")),
    responses((status = 200, description = "The message with its reactions", body = MessageView), ApiErrors),
    security(("session" = []))
)]
async fn unreact(
    State(state): State<WebState>,
    session: ChatSession,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<Response, AppError> {
    set_reaction(state, session, &id, emoji, false).await
}
