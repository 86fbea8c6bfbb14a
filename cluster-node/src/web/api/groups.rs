//! Groups: the caller's list, creation, members, leaving, deletion and the group chat.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::{
    AddMember, ChatRef, ChatServiceExt, CreateGroup, DeleteGroup, GetGroup, LeaveGroup,
    ListGroupMessages, MarkRead, SendGroupMessage,
};
use crate::storage::UserTag;

use super::super::WebState;
use super::super::error::{ApiJson, ApiQuery, AppError};
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::{GroupDetailView, GroupView, MessageView};
use super::users::SendBody;
use super::{PageQuery, ReadBody, ReadMarkerView, deserialize_tag, no_content, read_marker, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
        .routes(routes!(add_member))
        .routes(routes!(leave))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(mark_read))
}

#[derive(Deserialize, ToSchema)]
struct CreateBody {
    /// 1–32 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// An ephemeral group: held in the writer's memory only, its messages never stored; it ends when
    /// its members are gone or the writer changes. Served under `/api/ephemeral/{id}`.
    #[serde(default)]
    ephemeral: bool,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct MemberBody {
    pub(super) username: String,
    /// `"0042"`, or the number 42.
    #[serde(deserialize_with = "deserialize_tag")]
    #[schema(value_type = String)]
    pub(super) tag: UserTag,
}

#[utoipa::path(
    get,
    operation_id = "groups_list",
    path = "/api/groups",
    tag = "groups",
    summary = "The caller's groups",
    responses((status = 200, description = "The groups", body = Vec<GroupView>), ApiErrors),
    security(("session" = []))
)]
async fn list(
    State(state): State<WebState>,
    mut session: ChatSession,
) -> Result<Response, AppError> {
    let answer = session
        .observed(state.service.list_groups(session.context()))
        .await?;
    let groups: Vec<GroupView> = answer.value.iter().map(GroupView::from).collect();
    Ok(reply(StatusCode::OK, answer.epoch, groups))
}

#[utoipa::path(
    post,
    operation_id = "groups_create",
    path = "/api/groups",
    tag = "groups",
    summary = "Creates a group with the caller as creator and member",
    request_body = CreateBody,
    responses((status = 201, description = "The new group with its members", body = GroupDetailView), ApiErrors),
    security(("session" = []))
)]
async fn create(
    State(state): State<WebState>,
    mut session: ChatSession,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, AppError> {
    if body.ephemeral {
        let view = super::ephemeral::create(&state, &mut session, body.name).await?;
        return Ok(reply(
            StatusCode::CREATED,
            session.context().client_epoch,
            view,
        ));
    }
    let answer = session
        .observed(
            state
                .service
                .create_group(session.context(), CreateGroup { name: body.name }),
        )
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        answer.epoch,
        GroupDetailView::new(&answer.value, &state.presence),
    ))
}

#[utoipa::path(
    get,
    operation_id = "groups_show",
    path = "/api/groups/{id}",
    tag = "groups",
    summary = "A group with its members",
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 200, description = "The group", body = GroupDetailView), ApiErrors),
    security(("session" = []))
)]
async fn show(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let answer = session
        .observed(
            state
                .service
                .get_group(session.context(), GetGroup { group }),
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        GroupDetailView::new(&answer.value, &state.presence),
    ))
}

#[utoipa::path(
    delete,
    operation_id = "groups_remove",
    path = "/api/groups/{id}",
    tag = "groups",
    summary = "Deletes a group (its creator only)",
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 204, description = "Deleted"), ApiErrors),
    security(("session" = []))
)]
async fn remove(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let answer = session
        .observed(
            state
                .service
                .delete_group(session.context(), DeleteGroup { group }),
        )
        .await?;
    Ok(no_content(answer.epoch))
}

#[utoipa::path(
    post,
    operation_id = "groups_add_member",
    path = "/api/groups/{id}/members",
    tag = "groups",
    summary = "Adds a user to a group (members only)",
    request_body = MemberBody,
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 201, description = "The group with its members", body = GroupDetailView), ApiErrors),
    security(("session" = []))
)]
async fn add_member(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let answer = session
        .observed(state.service.add_member(
            session.context(),
            AddMember {
                group,
                username: body.username,
                tag: body.tag,
            },
        ))
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        answer.epoch,
        GroupDetailView::new(&answer.value, &state.presence),
    ))
}

#[utoipa::path(
    delete,
    operation_id = "groups_leave",
    path = "/api/groups/{id}/members/me",
    tag = "groups",
    summary = "Leaves a group",
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
    let answer = session
        .observed(
            state
                .service
                .leave_group(session.context(), LeaveGroup { group }),
        )
        .await?;
    Ok(no_content(answer.epoch))
}

#[utoipa::path(
    get,
    operation_id = "groups_list_messages",
    path = "/api/groups/{id}/messages",
    tag = "groups",
    summary = "A page of the group's messages, oldest first",
    params(("id" = String, Path, description = "The group's id"), ("before" = Option<u64>, Query, description = "Only messages older than this epoch"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "How many (default 50)")),
    responses((status = 200, description = "The messages", body = Vec<MessageView>), ApiErrors),
    security(("session" = []))
)]
async fn list_messages(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let (before, limit) = query.parse()?;
    let answer = session
        .observed(state.service.list_group_messages(
            session.context(),
            ListGroupMessages {
                group,
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
    operation_id = "groups_send_message",
    path = "/api/groups/{id}/messages",
    tag = "groups",
    summary = "Posts a message to a group",
    request_body = SendBody,
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 201, description = "The message (the first one again for a repeated client_id)", body = MessageView), ApiErrors),
    security(("session" = []))
)]
async fn send_message(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let reply_to = body.reply_to()?;
    let answer = session
        .observed(state.service.send_group_message(
            session.context(),
            SendGroupMessage {
                group,
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
    operation_id = "groups_mark_read",
    path = "/api/groups/{id}/read",
    tag = "groups",
    summary = "Moves the caller's read marker forward",
    request_body = ReadBody,
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 200, description = "Where the marker is", body = ReadMarkerView), ApiErrors),
    security(("session" = []))
)]
async fn mark_read(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let answer = session
        .observed(state.service.mark_read(
            session.context(),
            MarkRead {
                chat: ChatRef::Group(group),
                epoch: body.epoch,
            },
        ))
        .await?;
    Ok(read_marker(answer))
}
