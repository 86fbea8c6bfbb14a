//! Users by `name#tag` and their direct chats with the caller.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::service::{ChatServiceExt, GetUser, ListDirectMessages, SendDirectMessage};

use super::super::WebState;
use super::super::error::{ApiJson, ApiQuery, AppError};
use super::super::session::ChatSession;
use super::super::views::{MessageView, ProfileView};
use super::{PageQuery, path_tag, reply};

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/api/users/{username}/{tag}", get(profile))
        .route(
            "/api/users/{username}/{tag}/messages",
            get(list_messages).post(send_message),
        )
}

#[derive(Deserialize)]
pub(in crate::web) struct SendBody {
    pub content: String,
    #[serde(default)]
    pub client_id: Option<String>,
}

async fn profile(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let tag = path_tag(&tag)?;
    let answer = state
        .service
        .get_user(session.context(), GetUser { username, tag })
        .await?;
    session.observe(answer.epoch).await?;
    state.hub.remember_user(&answer.value);
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        ProfileView::from(&answer.value),
    ))
}

async fn list_messages(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, AppError> {
    let tag = path_tag(&tag)?;
    let (before, limit) = query.parse()?;
    let answer = state
        .service
        .list_direct_messages(
            session.context(),
            ListDirectMessages {
                username,
                tag,
                before,
                limit,
            },
        )
        .await?;
    session.observe(answer.epoch).await?;
    state.hub.remember_messages(&answer.value);
    let messages: Vec<MessageView> = answer.value.iter().map(MessageView::from).collect();
    Ok(reply(StatusCode::OK, answer.epoch, messages))
}

async fn send_message(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, AppError> {
    let tag = path_tag(&tag)?;
    let answer = state
        .service
        .send_direct_message(
            session.context(),
            SendDirectMessage {
                username,
                tag,
                content: body.content,
                client_id: body.client_id,
            },
        )
        .await?;
    session.observe(answer.epoch).await?;
    state
        .hub
        .remember_messages(std::slice::from_ref(&answer.value));
    Ok(reply(
        StatusCode::CREATED,
        answer.epoch,
        MessageView::from(&answer.value),
    ))
}
