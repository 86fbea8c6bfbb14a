//! The caller's conversations: groups and direct chats together, newest activity first.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use crate::service::ChatServiceExt;

use super::super::WebState;
use super::super::error::AppError;
use super::super::session::ChatSession;
use super::super::views::ChatView;
use super::reply;

pub(super) fn router() -> Router<WebState> {
    Router::new().route("/api/chats", get(list))
}

#[derive(Serialize)]
struct ChatsView {
    chats: Vec<ChatView>,
}

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
