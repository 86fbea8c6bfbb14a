//! The caller's conversations: groups and direct chats together, newest activity first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::ChatServiceExt;

use super::super::WebState;
use super::super::error::AppError;
use super::super::openapi::ApiErrors;
use super::super::session::ChatSession;
use super::super::views::ChatView;
use super::reply;

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// `{"chats": [...]}`.
#[derive(Serialize, ToSchema)]
struct ChatsView {
    chats: Vec<ChatView>,
}

#[utoipa::path(
    get,
    operation_id = "chats_list",
    path = "/api/chats",
    tag = "chats",
    summary = "The caller's conversations, newest activity first",
    responses((status = 200, description = "The conversations", body = ChatsView), ApiErrors),
    security(("session" = []))
)]
async fn list(
    State(state): State<WebState>,
    mut session: ChatSession,
) -> Result<Response, AppError> {
    let answer = session
        .observed(state.service.list_chats(session.context()))
        .await?;
    let chats = answer.value.iter().map(ChatView::from).collect();
    Ok(reply(StatusCode::OK, answer.epoch, ChatsView { chats }))
}
