//! Ephemeral groups: `POST /api/groups` with `"ephemeral": true` creates one; it lives under
//! `/api/ephemeral/{id}`. The writer holds it in memory and numbers its messages in one order
//! (`service::ephemeral`); nothing of it reaches a database, the log or a file. Its events reach the
//! members' streams as `ephemeral_message`, `ephemeral_members` and `ephemeral_ended`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::ephemeral::{EphemeralAnswer, EphemeralCommand};

use super::super::WebState;
use super::super::ephemeral::{find_user, run};
use super::super::error::{ApiJson, AppError};
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::{EphemeralGroupDetailView, EphemeralMessageView, GroupDetailView};
use super::groups::MemberBody;
use super::{no_content, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(send_message))
        .routes(routes!(add_member))
        .routes(routes!(leave))
}

/// `{"content"}`: 1–4,000 characters.
#[derive(Deserialize, ToSchema)]
struct EphemeralSendBody {
    /// 1–4,000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    content: String,
}

fn group_view(
    state: &WebState,
    answer: EphemeralAnswer,
) -> Result<EphemeralGroupDetailView, AppError> {
    match answer {
        EphemeralAnswer::Group(group) => Ok(EphemeralGroupDetailView {
            group: GroupDetailView::ephemeral(&group, &state.presence),
            messages: group
                .messages
                .iter()
                .map(EphemeralMessageView::from)
                .collect(),
        }),
        other => Err(AppError::Internal(format!("unexpected answer {other:?}"))),
    }
}

/// Creates an ephemeral group (`POST /api/groups` with `"ephemeral": true`).
pub(super) async fn create(
    state: &WebState,
    session: &mut ChatSession,
    name: String,
) -> Result<GroupDetailView, AppError> {
    let answer = run(state, session, EphemeralCommand::Create { name }).await?;
    Ok(group_view(state, answer)?.group)
}

#[utoipa::path(
    get,
    operation_id = "ephemeral_show",
    path = "/api/ephemeral/{id}",
    tag = "ephemeral",
    summary = "An ephemeral group with its members and the messages the writer still holds (members only)",
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 200, description = "The group", body = EphemeralGroupDetailView), ApiErrors),
    security(("session" = []))
)]
async fn show(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let answer = run(&state, &mut session, EphemeralCommand::Get { group }).await?;
    let epoch = session.context().client_epoch;
    Ok(reply(StatusCode::OK, epoch, group_view(&state, answer)?))
}

#[utoipa::path(
    post,
    operation_id = "ephemeral_send_message",
    path = "/api/ephemeral/{id}/messages",
    tag = "ephemeral",
    summary = "Sends a message to an ephemeral group (members only); it is numbered in the group's one order and never stored",
    request_body = EphemeralSendBody,
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 201, description = "The message", body = EphemeralMessageView), ApiErrors),
    security(("session" = []))
)]
async fn send_message(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EphemeralSendBody>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let command = EphemeralCommand::Post {
        group,
        content: body.content,
    };
    match run(&state, &mut session, command).await? {
        EphemeralAnswer::Message(message) => Ok(reply(
            StatusCode::CREATED,
            session.context().client_epoch,
            EphemeralMessageView::from(&message),
        )),
        other => Err(AppError::Internal(format!("unexpected answer {other:?}"))),
    }
}

#[utoipa::path(
    post,
    operation_id = "ephemeral_add_member",
    path = "/api/ephemeral/{id}/members",
    tag = "ephemeral",
    summary = "Adds a user to an ephemeral group (members only); they get the messages still held",
    request_body = MemberBody,
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 201, description = "The group", body = EphemeralGroupDetailView), ApiErrors),
    security(("session" = []))
)]
async fn add_member(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let user = find_user(&state, &mut session, body.username, body.tag).await?;
    let answer = run(&state, &mut session, EphemeralCommand::Add { group, user }).await?;
    let epoch = session.context().client_epoch;
    Ok(reply(
        StatusCode::CREATED,
        epoch,
        group_view(&state, answer)?,
    ))
}

#[utoipa::path(
    delete,
    operation_id = "ephemeral_leave",
    path = "/api/ephemeral/{id}/members/me",
    tag = "ephemeral",
    summary = "Leaves an ephemeral group; the last member to leave ends it",
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 204, description = "Left"), ApiErrors),
    security(("session" = []))
)]
async fn leave(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    run(&state, &mut session, EphemeralCommand::Leave { group }).await?;
    Ok(no_content(session.context().client_epoch))
}
