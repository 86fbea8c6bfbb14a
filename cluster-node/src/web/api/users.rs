//! Users by `name#tag` and their direct chats with the caller.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::{
    ChatRef, ChatServiceExt, GetUser, ListDirectMessages, MarkRead, SendDirectMessage,
};
use crate::storage::MessageId;

use super::super::WebState;
use super::super::error::{ApiJson, ApiQuery, AppError};
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::{MessageView, ProfileView};
use super::{PageQuery, ReadBody, ReadMarkerView, read_marker, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(profile))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(mark_read))
}

/// A message to post: `content`, optionally a `client_id` (a retry with it returns the first
/// message) and the id of the message it answers.
#[derive(Deserialize, ToSchema)]
pub(in crate::web) struct SendBody {
    /// 1–4,000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub content: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The id of the message of the same chat it answers.
    #[serde(default)]
    pub reply_to: Option<String>,
}

impl SendBody {
    /// `reply_to` as an id; text that is not one is a bad request (it names no message of any chat).
    pub(in crate::web) fn reply_to(&self) -> Result<Option<MessageId>, AppError> {
        self.reply_to
            .as_deref()
            .map(|text| {
                MessageId::parse(text)
                    .map_err(|_| AppError::BadRequest("reply_to must be a message id".into()))
            })
            .transpose()
    }
}

#[utoipa::path(
    get,
    operation_id = "users_profile",
    path = "/api/users/{username}/{tag}",
    tag = "users",
    summary = "A user's profile",
    params(("username" = String, Path, description = "The user's name"), ("tag" = String, Path, description = "The four digits of the user's tag")),
    responses((status = 200, description = "The profile", body = ProfileView), ApiErrors),
    security(("session" = []))
)]
async fn profile(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let tag = paths::tag(&tag)?;
    let answer = session
        .observed(
            state
                .service
                .get_user(session.context(), GetUser { username, tag }),
        )
        .await?;
    state.hub.remember_user(&answer.value);
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        ProfileView::from(&answer.value),
    ))
}

#[utoipa::path(
    get,
    operation_id = "users_list_messages",
    path = "/api/users/{username}/{tag}/messages",
    tag = "users",
    summary = "A page of the direct chat with a user, oldest first",
    params(("username" = String, Path, description = "The user's name"), ("tag" = String, Path, description = "The four digits of the user's tag"), ("before" = Option<u64>, Query, description = "Only messages older than this epoch"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "How many (default 50)")),
    responses((status = 200, description = "The messages", body = Vec<MessageView>), ApiErrors),
    security(("session" = []))
)]
async fn list_messages(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, AppError> {
    let tag = paths::tag(&tag)?;
    let (before, limit) = query.parse()?;
    let answer = session
        .observed(state.service.list_direct_messages(
            session.context(),
            ListDirectMessages {
                username,
                tag,
                before,
                limit,
            },
        ))
        .await?;
    state.hub.remember_messages(&answer.value);
    let json = state.rendered.page(&answer.value);
    Ok(super::super::respond::reply_json(
        StatusCode::OK,
        answer.epoch,
        json,
    ))
}

#[utoipa::path(
    post,
    operation_id = "users_send_message",
    path = "/api/users/{username}/{tag}/messages",
    tag = "users",
    summary = "Sends a direct message",
    request_body = SendBody,
    params(("username" = String, Path, description = "The user's name"), ("tag" = String, Path, description = "The four digits of the user's tag")),
    responses((status = 201, description = "The message (the first one again for a repeated client_id)", body = MessageView), ApiErrors),
    security(("session" = []))
)]
async fn send_message(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, AppError> {
    let tag = paths::tag(&tag)?;
    let reply_to = body.reply_to()?;
    let answer = session
        .observed(state.service.send_direct_message(
            session.context(),
            SendDirectMessage {
                username,
                tag,
                content: body.content,
                client_id: body.client_id,
                reply_to,
            },
        ))
        .await?;
    state
        .hub
        .remember_messages(std::slice::from_ref(&answer.value));
    Ok(reply(
        StatusCode::CREATED,
        answer.epoch,
        MessageView::from(&answer.value),
    ))
}

#[utoipa::path(
    put,
    operation_id = "users_mark_read",
    path = "/api/users/{username}/{tag}/read",
    tag = "users",
    summary = "Moves the caller's read marker of a direct chat forward",
    request_body = ReadBody,
    params(("username" = String, Path, description = "The user's name"), ("tag" = String, Path, description = "The four digits of the user's tag")),
    responses((status = 200, description = "Where the marker is", body = ReadMarkerView), ApiErrors),
    security(("session" = []))
)]
async fn mark_read(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<Response, AppError> {
    let tag = paths::tag(&tag)?;
    let answer = session
        .observed(state.service.mark_read(
            session.context(),
            MarkRead {
                chat: ChatRef::User { username, tag },
                epoch: body.epoch,
            },
        ))
        .await?;
    Ok(read_marker(answer))
}
