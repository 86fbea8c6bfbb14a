//! Server-rendered pages (askama templates from the workspace's `templates/`, auto-escaped) and the
//! forms they post.
//!
//! Every signed-in page is the same two panes: the conversation sidebar (groups and direct chats, newest
//! activity first, with unread counts) and either the start panel (home) or one conversation. On a
//! phone-sized screen the stylesheet shows one pane at a time. The pages work without JavaScript for
//! the basics (reading, sending, creating groups); the script adds live updates, history paging, read
//! markers, edits, replies, reactions, search and failover.
//!
//! Every form follows post-redirect-get: success and failure alike answer `303 See Other`, a failure
//! with a one-shot flash (see `flash`) that the page it lands on shows once. Pages embed live state (the
//! session's epoch, unread counts), so they are never cached.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::{
    AddMember, ChatServiceExt, CreateGroup, DeleteGroup, GetGroup, GetUser, LeaveGroup,
    ListDirectMessages, ListGroupMessages, SendDirectMessage, SendGroupMessage,
};
use crate::storage::{
    ChatId, ChatKind, ChatSummary, GroupWithMembers, Message, UnixMillis, User, UserTag,
};

use super::WebState;
use super::api::{ClientAddress, log_in, sign_up};
use super::error::{AppError, PageForm};
use super::flash::{Flash, IncomingFlash, redirect_with};
use super::layout::{ErrorPage, Layout, render};
use super::middleware;
use super::session::{ChatSession, SessionUser};
use super::views::{readable, rfc3339};

/// Messages a conversation page shows at first, and the page size of the script's history requests:
/// fewer than this means the page holds the start of the conversation.
const HISTORY_PAGE: u32 = 50;

/// Page routes: public (`/`, login, register, logout, assets) and the rest behind *auth*.
pub(super) fn router(state: WebState) -> Router {
    let protected = Router::new()
        .route("/groups", post(create_group))
        .route("/chats", post(start_chat))
        .route("/groups/{id}", get(group_page))
        .route("/groups/{id}/send", post(send_to_group))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/leave", post(leave_group))
        .route("/groups/{id}/delete", post(delete_group))
        .route("/users/{username}/{tag}/chat", get(chat_page))
        .route("/users/{username}/{tag}/send", post(send_to_user))
        .route_layer(axum::middleware::from_fn(middleware::require_page_user));
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/register", post(register))
        .route("/logout", post(logout))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/favicon.svg", get(favicon))
        .merge(protected)
        .with_state(state)
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
}

async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Percent-encodes one path segment (a username may hold spaces, `?` or non-ASCII letters).
pub(super) fn encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `alice/0042`: a user's part of the page and API paths.
fn user_path(username: &str, tag: UserTag) -> String {
    format!("{}/{tag}", encode_segment(username))
}

fn chat_url(username: &str, tag: UserTag) -> String {
    format!("/users/{}/chat", user_path(username, tag))
}

/// `name#1234` (or `name` and a separate tag) as typed in a form.
fn parse_handle(handle: &str, tag: Option<&str>) -> Result<(String, UserTag), AppError> {
    let invalid = || AppError::BadRequest("write the user as name#1234".into());
    let (name, tag) = match (handle.trim().rsplit_once('#'), tag.map(str::trim)) {
        (_, Some(tag)) if !tag.is_empty() => (handle.trim(), tag),
        (Some((name, tag)), _) => (name, tag),
        (None, _) => return Err(invalid()),
    };
    let tag = UserTag::parse(tag).map_err(|_| invalid())?;
    if name.trim().is_empty() {
        return Err(invalid());
    }
    Ok((name.trim().to_owned(), tag))
}

/// A moment as a page shows it: machine-readable for the script, readable before it runs.
pub(super) struct TimeItem {
    iso: String,
    readable: String,
}

impl TimeItem {
    fn new(at: UnixMillis) -> Self {
        TimeItem {
            iso: rfc3339(at),
            readable: readable(at),
        }
    }
}

/// The message a reply quotes.
pub(super) struct QuoteItem {
    id: String,
    sender: String,
    excerpt: String,
}

pub(super) struct ReactionItem {
    emoji: String,
    count: u64,
    me: bool,
}

/// A message as the pages show it.
pub(super) struct MessageItem {
    id: String,
    content: String,
    sender_id: String,
    sender_username: String,
    sender_tag: String,
    mine: bool,
    created_iso: String,
    created_readable: String,
    edited_iso: Option<String>,
    reply: Option<QuoteItem>,
    reactions: Vec<ReactionItem>,
    epoch: u64,
}

impl MessageItem {
    fn new(message: &Message, me: &SessionUser) -> Self {
        MessageItem {
            id: message.id.to_string(),
            content: message.content.clone(),
            sender_id: message.sender.id.to_string(),
            sender_username: message.sender.username.clone(),
            sender_tag: message.sender.tag.to_string(),
            mine: message.sender.id == me.id,
            created_iso: rfc3339(message.created_at),
            created_readable: readable(message.created_at),
            edited_iso: message.edited_at.map(rfc3339),
            reply: message.reply_to.as_ref().map(|quote| QuoteItem {
                id: quote.id.to_string(),
                sender: quote.sender.username.clone(),
                excerpt: quote.excerpt.clone(),
            }),
            reactions: message
                .reactions
                .iter()
                .map(|reaction| ReactionItem {
                    emoji: reaction.emoji.clone(),
                    count: u64::from(reaction.count),
                    me: reaction.me,
                })
                .collect(),
            epoch: message.epoch.0,
        }
    }
}

/// One conversation in the sidebar.
pub(super) struct ChatItem {
    /// The chat's id as messages and events name it (a group id, or `dm:<id>:<id>`).
    chat: String,
    kind: &'static str,
    name: String,
    tag: Option<String>,
    url: String,
    /// The last message, with who wrote it (`You: …`, `bob: …`).
    preview: Option<String>,
    time: Option<TimeItem>,
    unread: u64,
    read_epoch: u64,
    activity_epoch: u64,
}

impl ChatItem {
    fn new(summary: &ChatSummary, me: &SessionUser) -> Self {
        let (kind, name, tag, url) = match &summary.kind {
            ChatKind::Group { id, name } => ("group", name.clone(), None, format!("/groups/{id}")),
            ChatKind::Direct { user } => (
                "direct",
                user.username.clone(),
                Some(user.tag.to_string()),
                chat_url(&user.username, user.tag),
            ),
        };
        ChatItem {
            chat: summary.chat.to_string(),
            kind,
            name,
            tag,
            url,
            preview: summary
                .last_message
                .as_ref()
                .map(|message| preview(message, me)),
            time: summary
                .last_message
                .as_ref()
                .map(|message| TimeItem::new(message.created_at)),
            unread: summary.unread,
            read_epoch: summary.read_epoch.0,
            activity_epoch: summary.activity_epoch.0,
        }
    }
}

/// `You: …` or `bob: …`: what the sidebar shows of a chat's last message.
fn preview(message: &Message, me: &SessionUser) -> String {
    if message.sender.id == me.id {
        format!("You: {}", message.content)
    } else {
        format!("{}: {}", message.sender.username, message.content)
    }
}

pub(super) struct MemberItem {
    id: String,
    username: String,
    tag: String,
    chat_url: String,
    is_me: bool,
    is_creator: bool,
}

fn member_items(group: &GroupWithMembers, me: &SessionUser) -> Vec<MemberItem> {
    group
        .members
        .iter()
        .map(|member: &User| MemberItem {
            id: member.id.to_string(),
            username: member.username.clone(),
            tag: member.tag.to_string(),
            chat_url: chat_url(&member.username, member.tag),
            is_me: member.id == me.id,
            is_creator: member.id == group.group.creator,
        })
        .collect()
}

/// The signed-out home page: log in or register.
#[derive(Template)]
#[template(path = "index.html", config = "../templates/askama.toml")]
struct IndexPage {
    layout: Layout,
    /// What the user typed in the failed form, so it is kept (never the password).
    login_name: String,
    register_name: String,
}

/// The signed-in home page: the sidebar and the forms that start a conversation.
#[derive(Template)]
#[template(path = "home.html", config = "../templates/askama.toml")]
struct HomePage {
    layout: Layout,
    me: SessionUser,
    epoch: u64,
    sidebar: Vec<ChatItem>,
    current_chat: String,
    handle: String,
}

/// The open conversation's header, composer and script hooks.
pub(super) struct ConversationItem {
    kind: &'static str,
    chat: String,
    title: String,
    tag: Option<String>,
    /// The conversation's API path (`/api/groups/{id}`, `/api/users/{name}/{tag}`).
    api: String,
    /// Where the composer posts without the script.
    send: String,
    page_size: u32,
    at_start: bool,
    /// A fresh idempotency key for the form: posting it twice sends one message.
    client_id: String,
    /// The text of a send that failed, put back in the box.
    draft: String,
}

/// A group conversation's members panel.
pub(super) struct GroupPanel {
    members: Vec<MemberItem>,
    i_created_it: bool,
    /// Rendered open (after adding a member, or when adding failed).
    open: bool,
    handle: String,
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

/// An error inside a page handler: the page of the error, with `Retry-After` when it has one.
fn failed(state: &WebState, session: &ChatSession, error: AppError) -> Response {
    if matches!(error, AppError::Unauthenticated(_)) && session.user().is_some() {
        // The session names a user the cluster no longer knows: back to the login page.
        return Redirect::to("/").into_response();
    }
    let page = ErrorPage {
        layout: Layout::new(state, "Error", session.user()),
        status: error.status().as_u16(),
        message: error.public_message(),
    };
    let mut response = render(error.status(), &page);
    error.decorate(&mut response);
    response
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A failed form: back to `location`, where the error shows once and `kept` is back in its field.
fn back_with(state: &WebState, location: &str, flash: Flash) -> Response {
    redirect_with(location, &flash, state.options())
}

/// The sidebar of the signed-in user, and their unread messages over all conversations.
async fn load_sidebar(
    state: &WebState,
    session: &mut ChatSession,
) -> Result<(Vec<ChatItem>, u64), AppError> {
    let Some(me) = session.user().cloned() else {
        return Ok((Vec::new(), 0));
    };
    let answer = state.service.list_chats(session.context()).await?;
    session.observe(answer.epoch).await?;
    let items: Vec<ChatItem> = answer
        .value
        .iter()
        .map(|summary| ChatItem::new(summary, &me))
        .collect();
    let unread = items.iter().map(|item| item.unread).sum();
    Ok((items, unread))
}

async fn index(
    State(state): State<WebState>,
    mut session: ChatSession,
    flash: IncomingFlash,
) -> Response {
    let (flash, shown) = flash.take();
    let Some(me) = session.user().cloned() else {
        let page = IndexPage {
            login_name: flash.kept_for("login"),
            register_name: flash.kept_for("register"),
            layout: Layout {
                flash,
                ..Layout::new(&state, "Sign in", None)
            },
        };
        return shown.clear(render(StatusCode::OK, &page), state.options());
    };
    let (sidebar, unread) = match load_sidebar(&state, &mut session).await {
        Ok(loaded) => loaded,
        Err(error) => return failed(&state, &session, error),
    };
    let page = HomePage {
        handle: flash.kept_for("chat"),
        layout: Layout {
            unread,
            body_class: "view-home",
            flash,
            ..Layout::new(&state, "", Some(&me))
        },
        me,
        epoch: session.epoch().0,
        sidebar,
        current_chat: String::new(),
    };
    shown.clear(render(StatusCode::OK, &page), state.options())
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    #[serde(default)]
    tag: Option<String>,
    password: String,
}

async fn login(
    State(state): State<WebState>,
    address: ClientAddress,
    mut session: ChatSession,
    form: Result<PageForm<LoginForm>, AppError>,
) -> Response {
    let form = match form {
        Ok(PageForm(form)) => form,
        Err(error) => return back_with(&state, "/", Flash::failed(&error, "login", "")),
    };
    let result = async {
        let (username, tag) = parse_handle(&form.username, form.tag.as_deref())?;
        log_in(
            &state,
            &mut session,
            &address,
            &username,
            tag,
            form.password,
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other("/"),
        Err(error) => back_with(&state, "/", Flash::failed(&error, "login", form.username)),
    }
}

#[derive(Deserialize)]
struct RegisterForm {
    username: String,
    password: String,
}

async fn register(
    State(state): State<WebState>,
    mut session: ChatSession,
    form: Result<PageForm<RegisterForm>, AppError>,
) -> Response {
    let form = match form {
        Ok(PageForm(form)) => form,
        Err(error) => return back_with(&state, "/", Flash::failed(&error, "register", "")),
    };
    let typed = form.username.clone();
    let result = async {
        let (user, epoch) = sign_up(&state, &mut session, form.username, form.password).await?;
        let user = SessionUser::from(&user);
        session.sign_in(user.clone(), epoch).await?;
        Ok::<_, AppError>(user)
    }
    .await;
    match result {
        Ok(user) => back_with(
            &state,
            "/",
            Flash::notice(format!(
                "Welcome! You are {}: friends find you by that name and tag.",
                user.handle()
            )),
        ),
        Err(error) => back_with(&state, "/", Flash::failed(&error, "register", typed)),
    }
}

async fn logout(State(state): State<WebState>, mut session: ChatSession) -> Response {
    match session.sign_out().await {
        Ok(()) => see_other("/"),
        Err(error) => failed(&state, &session, error),
    }
}

#[derive(Deserialize)]
struct CreateGroupForm {
    name: String,
}

async fn create_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    form: Result<PageForm<CreateGroupForm>, AppError>,
) -> Response {
    let result = async {
        let PageForm(form) = form?;
        let answer = state
            .service
            .create_group(session.context(), CreateGroup { name: form.name })
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(answer.value.group.id)
    }
    .await;
    match result {
        Ok(group) => see_other(&format!("/groups/{group}")),
        Err(error) => back_with(&state, "/", Flash::failed(&error, "group", "")),
    }
}

#[derive(Deserialize)]
struct HandleForm {
    handle: String,
}

async fn start_chat(
    State(state): State<WebState>,
    mut session: ChatSession,
    form: Result<PageForm<HandleForm>, AppError>,
) -> Response {
    let mut typed = String::new();
    let result = async {
        let PageForm(form) = form?;
        typed = form.handle.clone();
        let (username, tag) = parse_handle(&form.handle, None)?;
        let answer = state
            .service
            .get_user(session.context(), GetUser { username, tag })
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(chat_url(&answer.value.username, answer.value.tag))
    }
    .await;
    match result {
        Ok(url) => see_other(&url),
        Err(error) => back_with(&state, "/", Flash::failed(&error, "chat", typed)),
    }
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
}

/// Renders an opened conversation with the sidebar around it.
async fn render_conversation(
    state: &WebState,
    session: &mut ChatSession,
    me: SessionUser,
    opened: Opened,
    flash: Flash,
) -> Response {
    let (sidebar, unread) = match load_sidebar(state, session).await {
        Ok(loaded) => loaded,
        Err(error) => return failed(state, session, error),
    };
    let Opened {
        title,
        chat,
        group,
        messages,
    } = opened;
    let page = ConversationPage {
        layout: Layout {
            unread,
            body_class: "view-chat",
            flash,
            ..Layout::new(state, title, Some(&me))
        },
        epoch: session.epoch().0,
        sidebar,
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
    let group = super::api::path_group(id)?;
    let found = state
        .service
        .get_group(session.context(), GetGroup { group })
        .await?;
    session.observe(found.epoch).await?;
    let history = state
        .service
        .list_group_messages(
            session.context(),
            ListGroupMessages {
                group,
                before: None,
                limit: Some(HISTORY_PAGE),
            },
        )
        .await?;
    session.observe(history.epoch).await?;
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
            members: member_items(&found, me),
            i_created_it: found.group.creator == me.id,
            open: panel_open || !handle.is_empty(),
            handle,
        }),
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
    let tag = super::api::path_tag(tag)?;
    let peer = state
        .service
        .get_user(
            session.context(),
            GetUser {
                username: username.to_owned(),
                tag,
            },
        )
        .await?;
    session.observe(peer.epoch).await?;
    let history = state
        .service
        .list_direct_messages(
            session.context(),
            ListDirectMessages {
                username: peer.value.username.clone(),
                tag,
                before: None,
                limit: Some(HISTORY_PAGE),
            },
        )
        .await?;
    session.observe(history.epoch).await?;
    state.hub.remember_messages(&history.value);
    let peer = peer.value;
    let path = user_path(&peer.username, peer.tag);
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
    let page = format!("/groups/{}", encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = super::api::path_group(&id)?;
        let PageForm(form) = form?;
        typed = form.content.clone();
        let answer = state
            .service
            .send_group_message(
                session.context(),
                SendGroupMessage {
                    group,
                    content: form.content,
                    client_id: form.client_id.filter(|id| !id.is_empty()),
                    reply_to: None,
                },
            )
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => see_other(&page),
        Err(error) => back_with(&state, &page, Flash::failed(&error, "message", typed)),
    }
}

async fn send_to_user(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
    form: Result<PageForm<SendForm>, AppError>,
) -> Response {
    let page = format!(
        "/users/{}/{}/chat",
        encode_segment(&username),
        encode_segment(&tag)
    );
    let mut typed = String::new();
    let result = async {
        let tag = super::api::path_tag(&tag)?;
        let PageForm(form) = form?;
        typed = form.content.clone();
        let answer = state
            .service
            .send_direct_message(
                session.context(),
                SendDirectMessage {
                    username,
                    tag,
                    content: form.content,
                    client_id: form.client_id.filter(|id| !id.is_empty()),
                    reply_to: None,
                },
            )
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => see_other(&page),
        Err(error) => back_with(&state, &page, Flash::failed(&error, "message", typed)),
    }
}

async fn add_member(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    form: Result<PageForm<HandleForm>, AppError>,
) -> Response {
    let page = format!("/groups/{}?panel=members", encode_segment(&id));
    let mut typed = String::new();
    let result = async {
        let group = super::api::path_group(&id)?;
        let PageForm(form) = form?;
        typed = form.handle.clone();
        let (username, tag) = parse_handle(&form.handle, None)?;
        let answer = state
            .service
            .add_member(
                session.context(),
                AddMember {
                    group,
                    username,
                    tag,
                },
            )
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => see_other(&page),
        Err(error) => back_with(&state, &page, Flash::failed(&error, "member", typed)),
    }
}

async fn leave_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let group = super::api::path_group(&id)?;
        let answer = state
            .service
            .leave_group(session.context(), LeaveGroup { group })
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => see_other("/"),
        Err(error) => {
            let page = format!("/groups/{}", encode_segment(&id));
            back_with(&state, &page, Flash::failed(&error, "leave", ""))
        }
    }
}

async fn delete_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let group = super::api::path_group(&id)?;
        let answer = state
            .service
            .delete_group(session.context(), DeleteGroup { group })
            .await?;
        session.observe(answer.epoch).await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => see_other("/"),
        Err(error) => {
            let page = format!("/groups/{}", encode_segment(&id));
            back_with(&state, &page, Flash::failed(&error, "delete", ""))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_name_hash_four_digits_or_a_name_and_a_tag() {
        assert_eq!(
            parse_handle(" alice#0042 ", None).map(|(name, tag)| (name, tag.number())),
            Ok(("alice".into(), 42))
        );
        assert_eq!(
            parse_handle("bob", Some("1234")).map(|(name, tag)| (name, tag.number())),
            Ok(("bob".into(), 1234))
        );
        assert!(parse_handle("alice", None).is_err());
        assert!(parse_handle("alice#42", None).is_err());
        assert!(parse_handle("#0042", None).is_err());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
        assert_eq!(encode_segment("plain-name_1.x~"), "plain-name_1.x~");
    }
}
