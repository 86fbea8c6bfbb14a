//! Groups: the caller's list, creation, members, leaving, deletion and the group chat.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;

use crate::service::{
    AddMember, ChatRef, ChatServiceExt, CreateGroup, DeleteGroup, GetGroup, LeaveGroup,
    ListGroupMessages, MarkRead, SendGroupMessage,
};
use crate::storage::UserTag;

use super::super::WebState;
use super::super::error::{ApiJson, ApiQuery, AppError};
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::{GroupDetailView, GroupView, MessageView};
use super::users::SendBody;
use super::{PageQuery, ReadBody, deserialize_tag, no_content, read_marker, reply};

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/api/groups", get(list).post(create))
        .route("/api/groups/{id}", get(show).delete(remove))
        .route("/api/groups/{id}/members", post(add_member))
        .route("/api/groups/{id}/members/me", delete(leave))
        .route(
            "/api/groups/{id}/messages",
            get(list_messages).post(send_message),
        )
        .route("/api/groups/{id}/read", put(mark_read))
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
}

#[derive(Deserialize)]
struct MemberBody {
    username: String,
    #[serde(deserialize_with = "deserialize_tag")]
    tag: UserTag,
}

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

async fn create(
    State(state): State<WebState>,
    mut session: ChatSession,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, AppError> {
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
        GroupDetailView::from(&answer.value),
    ))
}

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
        GroupDetailView::from(&answer.value),
    ))
}

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
        GroupDetailView::from(&answer.value),
    ))
}

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
    let messages: Vec<MessageView> = answer.value.iter().map(MessageView::from).collect();
    Ok(reply(StatusCode::OK, answer.epoch, messages))
}

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
