//! A conversation page (a group or a direct chat, with the sidebar beside it) and the forms posted from
//! it: sending without the script, adding a member, leaving and deleting a group.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::{
    AddMember, ChatServiceExt, DeleteGroup, GetGroup, GetUser, LeaveGroup, ListDirectMessages,
    ListGroupMessages, SendDirectMessage, SendGroupMessage,
};
use crate::storage::{ChatId, Epoch, Message};

use super::super::WebState;
use super::super::error::{AppError, PageForm};
use super::super::flash::{Flash, IncomingFlash};
use super::super::layout::{Layout, render};
use super::super::paths;
use super::super::session::{ChatSession, SessionUser};
use super::items::{ChatItem, ConversationItem, GroupPanel, MessageItem, member_items};
use super::{HISTORY_PAGE, HandleForm, after_form, failed, load_sidebar, parse_handle, see_other};

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/groups/{id}", get(group_page))
        .route("/groups/{id}/send", post(send_to_group))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/leave", post(leave_group))
        .route("/groups/{id}/delete", post(delete_group))
        .route("/users/{username}/{tag}/chat", get(chat_page))
        .route("/users/{username}/{tag}/send", post(send_to_user))
}

#[derive(Template)]
#[template(path = "conversation.html", config = "../templates/askama.toml")]
struct ConversationPage {
    layout: Layout,
    me: SessionUser,
    epoch: u64,
    sidebar: Vec<ChatItem>,
    current_chat: String,
    chat: ConversationItem,
    group: Option<GroupPanel>,
    messages: Vec<MessageItem>,
}

/// `?panel=members`: the group page with its members panel open.
#[derive(Deserialize, Default)]
struct GroupQuery {
    #[serde(default)]
    panel: Option<String>,
}

/// A conversation page's parts that differ between a group and a direct chat.
struct Opened {
    title: String,
    chat: ConversationItem,
    group: Option<GroupPanel>,
    messages: Vec<Message>,
    /// The epoch the messages were read at: events after it complete them.
    epoch: Epoch,
}

/// Renders an opened conversation with the sidebar around it.
async fn render_conversation(
    state: &WebState,
    session: &mut ChatSession,
    me: SessionUser,
    opened: Opened,
    flash: Flash,
) -> Response {
    let sidebar = match load_sidebar(state, session).await {
        Ok(loaded) => loaded,
        Err(error) => return failed(state, session, error),
    };
    let Opened {
        title,
        chat,
        group,
        messages,
        epoch,
    } = opened;
    let page = ConversationPage {
        layout: Layout {
            unread: sidebar.unread,
            body_class: "view-chat",
            flash,
            ..Layout::new(state, title, Some(&me))
        },
        // The two reads may answer at different epochs (a copy applies writes between them): live
        // events resume after the older one, so nothing the newer one saw past the older is missed
        // (the script ignores what it already shows).
        epoch: epoch.min(sidebar.epoch).0,
        sidebar: sidebar.items,
        current_chat: chat.chat.clone(),
        chat,
        group,
        messages: messages
            .iter()
            .map(|message| MessageItem::new(message, &me))
            .collect(),
        me,
    };
    render(StatusCode::OK, &page)
}

async fn open_group(
    state: &WebState,
    session: &mut ChatSession,
    me: &SessionUser,
    id: &str,
    flash: &Flash,
    panel_open: bool,
) -> Result<Opened, AppError> {
    let group = paths::group(id)?;
    let found = session
        .observed(
            state
                .service
                .get_group(session.context(), GetGroup { group }),
        )
        .await?;
    let history = session
        .observed(state.service.list_group_messages(
            session.context(),
            ListGroupMessages {
                group,
                before: None,
                limit: Some(HISTORY_PAGE),
            },
        ))
        .await?;
    state.hub.remember_messages(&history.value);
    let found = found.value;
    let handle = flash.kept_for("member");
    Ok(Opened {
        title: found.group.name.clone(),
        chat: ConversationItem {
            kind: "group",
            chat: ChatId::Group(group).to_string(),
            title: found.group.name.clone(),
            tag: None,
            api: format!("/api/groups/{group}"),
            send: format!("/groups/{group}/send"),
            page_size: HISTORY_PAGE,
            at_start: history.value.len() < HISTORY_PAGE as usize,
            client_id: uuid::Uuid::new_v4().to_string(),
            draft: flash.kept_for("message"),
        },
        group: Some(GroupPanel {
            members: member_items(&found, me, &state.presence),
            i_created_it: found.group.creator == me.id,
            open: panel_open || !handle.is_empty(),
            handle,
        }),
        epoch: history.epoch,
        messages: history.value,
    })
}

async fn group_page(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    Query(query): Query<GroupQuery>,
    flash: IncomingFlash,
) -> Response {
    let Some(me) = session.user().cloned() else {
        return see_other("/");
    };
    let (flash, shown) = flash.take();
    let panel_open = query.panel.as_deref() == Some("members");
    let response = match open_group(&state, &mut session, &me, &id, &flash, panel_open).await {
        Ok(opened) => render_conversation(&state, &mut session, me, opened, flash).await,
        Err(error) => failed(&state, &session, error),
    };
    shown.clear(response, state.options())
}

async fn open_direct(
    state: &WebState,
    session: &mut ChatSession,
    me: &SessionUser,
    username: &str,
    tag: &str,
    flash: &Flash,
) -> Result<Opened, AppError> {
    let tag = paths::tag(tag)?;
    let peer = session
        .observed(state.service.get_user(
            session.context(),
            GetUser {
                username: username.to_owned(),
                tag,
            },
        ))
        .await?;
    let history = session
        .observed(state.service.list_direct_messages(
            session.context(),
            ListDirectMessages {
                username: peer.value.username.clone(),
                tag,
                before: None,
                limit: Some(HISTORY_PAGE),
            },
        ))
        .await?;
    state.hub.remember_messages(&history.value);
    let peer = peer.value;
    let path = paths::user(&peer.username, peer.tag);
    Ok(Opened {
        title: peer.username.clone(),
        chat: ConversationItem {
            kind: "direct",
            chat: ChatId::direct(me.id, peer.id).to_string(),
            title: peer.username.clone(),
            tag: Some(peer.tag.to_string()),
            api: format!("/api/users/{path}"),
            send: format!("/users/{path}/send"),
            page_size: HISTORY_PAGE,
            at_start: history.value.len() < HISTORY_PAGE as usize,
            client_id: uuid::Uuid::new_v4().to_string(),
            draft: flash.kept_for("message"),
        },
        group: None,
        epoch: history.epoch,
        messages: history.value,
    })
}

async fn chat_page(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    flash: IncomingFlash,
) -> Response {
    let Some(me) = session.user().cloned() else {
        return see_other("/");
    };
    let (flash, shown) = flash.take();
    let response = match open_direct(&state, &mut session, &me, &username, &tag, &flash).await {
        Ok(opened) => render_conversation(&state, &mut session, me, opened, flash).await,
        Err(error) => failed(&state, &session, error),
    };
    shown.clear(response, state.options())
}

/// The composer's form, for a browser without the script.
#[derive(Deserialize)]
struct SendForm {
    content: String,
    #[serde(default)]
    client_id: Option<String>,
}

async fn send_to_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    form: Result<PageForm<SendForm>, AppError>,
) -> Response {
    let page = format!("/groups/{}", paths::encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = paths::group(&id)?;
        let PageForm(form) = form?;
        typed = form.content.clone();
        let send = SendGroupMessage {
            group,
            content: form.content,
            client_id: form.client_id.filter(|id| !id.is_empty()),
            reply_to: None,
        };
        session
            .observed(state.service.send_group_message(session.context(), send))
            .await?;
        Ok(page.clone())
    }
    .await;
    after_form(&state, result, &page, "message", typed)
}

async fn send_to_user(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    form: Result<PageForm<SendForm>, AppError>,
) -> Response {
    let page = format!(
        "/users/{}/{}/chat",
        paths::encode_segment(&username),
        paths::encode_segment(&tag)
    );
    let mut typed = String::new();
    let result = async {
        let tag = paths::tag(&tag)?;
        let PageForm(form) = form?;
        typed = form.content.clone();
        let send = SendDirectMessage {
            username,
            tag,
            content: form.content,
            client_id: form.client_id.filter(|id| !id.is_empty()),
            reply_to: None,
        };
        session
            .observed(state.service.send_direct_message(session.context(), send))
            .await?;
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
    let page = format!("/groups/{}?panel=members", paths::encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = paths::group(&id)?;
        let PageForm(form) = form?;
        typed = form.handle.clone();
        let (username, tag) = parse_handle(&form.handle, None)?;
        let add = AddMember {
            group,
            username,
            tag,
        };
        session
            .observed(state.service.add_member(session.context(), add))
            .await?;
        Ok(page.clone())
    }
    .await;
    after_form(&state, result, &page, "member", typed)
}

async fn leave_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let group = paths::group(&id)?;
        session
            .observed(
                state
                    .service
                    .leave_group(session.context(), LeaveGroup { group }),
            )
            .await?;
        Ok("/".to_owned())
    }
    .await;
    let page = format!("/groups/{}", paths::encode_segment(&id));
    after_form(&state, result, &page, "leave", String::new())
}

async fn delete_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let group = paths::group(&id)?;
        session
            .observed(
                state
                    .service
                    .delete_group(session.context(), DeleteGroup { group }),
            )
            .await?;
        Ok("/".to_owned())
    }
    .await;
    let page = format!("/groups/{}", paths::encode_segment(&id));
    after_form(&state, result, &page, "delete", String::new())
}
