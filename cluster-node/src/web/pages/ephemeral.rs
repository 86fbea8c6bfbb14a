//! An ephemeral group's page and its forms: the group as the writer holds it (members, the messages
//! still held), sending, adding a member, leaving. Nothing of it is stored; when the group ends the
//! page says so (the script, on `ephemeral_ended`), and opening it again is "group not found".

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::ephemeral::{EphemeralAnswer, EphemeralCommand, EphemeralMessage};

use super::super::WebState;
use super::super::ephemeral::{find_user, run};
use super::super::error::{AppError, PageForm};
use super::super::flash::IncomingFlash;
use super::super::layout::{Layout, render};
use super::super::paths;
use super::super::session::{ChatSession, SessionUser};
use super::super::views::{readable, rfc3339};
use super::items::ChatItem;
use super::{HandleForm, after_form, failed, load_sidebar, parse_handle};

/// What a page of a group the writer no longer holds says.
const ENDED: &str = "This ephemeral group has ended: everyone left, or the cluster's writer changed \
    and the group went with it (nothing of it was stored).";

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/ephemeral/{id}", get(page))
        .route("/ephemeral/{id}/send", post(send))
        .route("/ephemeral/{id}/members", post(add_member))
        .route("/ephemeral/{id}/leave", post(leave))
}

/// One message as the page shows it.
struct EphemeralItem {
    id: String,
    seq: u64,
    content: String,
    sender_username: String,
    sender_tag: String,
    mine: bool,
    created_iso: String,
    created_readable: String,
}

impl EphemeralItem {
    fn new(message: &EphemeralMessage, me: &SessionUser) -> Self {
        EphemeralItem {
            id: message.id.to_string(),
            seq: message.seq,
            content: message.content.clone(),
            sender_username: message.sender.username.clone(),
            sender_tag: message.sender.tag.to_string(),
            mine: message.sender.id == me.id,
            created_iso: rfc3339(message.created_at),
            created_readable: readable(message.created_at),
        }
    }
}

struct MemberItem {
    id: String,
    username: String,
    tag: String,
    is_me: bool,
    online: bool,
}

#[derive(Template)]
#[template(path = "ephemeral.html", config = "../templates/askama.toml")]
struct EphemeralPage {
    layout: Layout,
    me: SessionUser,
    epoch: u64,
    sidebar: Vec<ChatItem>,
    current_chat: String,
    id: String,
    name: String,
    members: Vec<MemberItem>,
    messages: Vec<EphemeralItem>,
    handle: String,
}

async fn page(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    flash: IncomingFlash,
) -> Response {
    let (flash, shown) = flash.take();
    let opened = async {
        let me = session.require_user()?.clone();
        let group = paths::group(&id)?;
        let EphemeralAnswer::Group(group) =
            run(&state, &mut session, EphemeralCommand::Get { group }).await?
        else {
            return Err(AppError::Internal("the writer answered no group".into()));
        };
        let sidebar = load_sidebar(&state, &mut session).await?;
        Ok((me, group, sidebar))
    }
    .await;
    let (me, group, sidebar) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            // Typically a page that moved to another input node after the writer changed.
            let error = match error {
                AppError::NotFound(_) => AppError::NotFound(ENDED.into()),
                other => other,
            };
            return shown.clear(failed(&state, &session, error), state.options());
        }
    };
    let handle = flash.kept_for("member");
    let page = EphemeralPage {
        layout: Layout {
            unread: sidebar.unread,
            body_class: "view-chat",
            flash,
            ..Layout::new(&state, group.name.clone(), Some(&me))
        },
        epoch: sidebar.epoch.0,
        sidebar: sidebar.items,
        current_chat: group.id.to_string(),
        id: group.id.to_string(),
        name: group.name.clone(),
        members: group
            .members
            .iter()
            .map(|member| MemberItem {
                id: member.id.to_string(),
                username: member.username.clone(),
                tag: member.tag.to_string(),
                is_me: member.id == me.id,
                online: state.presence.is_online(&member.id),
            })
            .collect(),
        messages: group
            .messages
            .iter()
            .map(|message| EphemeralItem::new(message, &me))
            .collect(),
        handle,
        me,
    };
    shown.clear(render(StatusCode::OK, &page), state.options())
}

#[derive(Deserialize)]
struct SendForm {
    content: String,
}

/// Sending without the script.
async fn send(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    form: Result<PageForm<SendForm>, AppError>,
) -> Response {
    let page = format!("/ephemeral/{}", paths::encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = paths::group(&id)?;
        let PageForm(form) = form?;
        typed = form.content.clone();
        let post = EphemeralCommand::Post {
            group,
            content: form.content,
        };
        run(&state, &mut session, post).await?;
        Ok(page.clone())
    }
    .await;
    after_form(&state, result, &page, "message", typed)
}

async fn add_member(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    form: Result<PageForm<HandleForm>, AppError>,
) -> Response {
    let page = format!("/ephemeral/{}", paths::encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = paths::group(&id)?;
        let PageForm(form) = form?;
        typed = form.handle.clone();
        let (username, tag) = parse_handle(&form.handle, None)?;
        let user = find_user(&state, &mut session, username, tag).await?;
        run(&state, &mut session, EphemeralCommand::Add { group, user }).await?;
        Ok(page.clone())
    }
    .await;
    after_form(&state, result, &page, "member", typed)
}

async fn leave(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    let page = format!("/ephemeral/{}", paths::encode_segment(&id));
    let result = async {
        let group = paths::group(&id)?;
        run(&state, &mut session, EphemeralCommand::Leave { group }).await?;
        Ok("/".to_owned())
    }
    .await;
    after_form(&state, result, &page, "group", String::new())
}
