//! Server-rendered pages (askama templates from the workspace's `templates/`, auto-escaped) and the
//! forms they post. Forms answer with a redirect (303) on success and re-render their page with the
//! error inline otherwise; messages are sent and deleted by the page's script through the JSON API.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::{
    AddMember, ChatServiceExt, CreateGroup, DeleteGroup, GetGroup, GetUser, LeaveGroup,
    ListDirectMessages, ListGroupMessages,
};
use crate::storage::{Epoch, Group, GroupWithMembers, Message, User, UserTag};

use super::WebState;
use super::api::{ClientAddress, log_in, sign_up};
use super::error::{AppError, PageForm};
use super::middleware;
use super::session::{ChatSession, SessionUser};
use super::views::{readable, rfc3339};

/// Page routes: public (`/`, login, register, logout, assets) and the rest behind *auth*.
pub(super) fn router(state: WebState) -> Router {
    let protected = Router::new()
        .route("/groups", post(create_group))
        .route("/chats", post(start_chat))
        .route("/groups/{id}", get(group_page))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/leave", post(leave_group))
        .route("/groups/{id}/delete", post(delete_group))
        .route("/users/{username}/{tag}/chat", get(chat_page))
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

fn chat_url(username: &str, tag: UserTag) -> String {
    format!("/users/{}/{tag}/chat", encode_segment(username))
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

/// A message as the pages show it.
pub(super) struct MessageItem {
    id: String,
    content: String,
    sender_username: String,
    sender_tag: String,
    mine: bool,
    created_iso: String,
    created_readable: String,
    epoch: u64,
}

impl MessageItem {
    fn new(message: &Message, me: &SessionUser) -> Self {
        MessageItem {
            id: message.id.to_string(),
            content: message.content.clone(),
            sender_username: message.sender.username.clone(),
            sender_tag: message.sender.tag.to_string(),
            mine: message.sender.id == me.id,
            created_iso: rfc3339(message.created_at),
            created_readable: readable(message.created_at),
            epoch: message.epoch.0,
        }
    }
}

pub(super) struct GroupItem {
    id: String,
    name: String,
}

impl From<&Group> for GroupItem {
    fn from(group: &Group) -> Self {
        GroupItem {
            id: group.id.to_string(),
            name: group.name.clone(),
        }
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

/// What the layout needs on every page.
pub(super) struct Layout {
    title: String,
    user: Option<SessionUser>,
    nameserver: String,
}

impl Layout {
    fn new(state: &WebState, title: impl Into<String>, user: Option<&SessionUser>) -> Self {
        Layout {
            title: title.into(),
            user: user.cloned(),
            nameserver: state.options.nameserver_url.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "index.html", config = "../templates/askama.toml")]
struct IndexPage {
    layout: Layout,
    groups: Vec<GroupItem>,
    error: Option<String>,
    notice: Option<String>,
    /// What the user typed, so a failed form keeps it (never the password).
    username: String,
    epoch: u64,
}

#[derive(Template)]
#[template(path = "group.html", config = "../templates/askama.toml")]
struct GroupPage {
    layout: Layout,
    me: SessionUser,
    group: GroupItem,
    i_created_it: bool,
    members: Vec<MemberItem>,
    messages: Vec<MessageItem>,
    error: Option<String>,
    epoch: u64,
}

#[derive(Template)]
#[template(path = "chat.html", config = "../templates/askama.toml")]
struct ChatPage {
    layout: Layout,
    me: SessionUser,
    peer_username: String,
    peer_tag: String,
    peer_path: String,
    chat_id: String,
    messages: Vec<MessageItem>,
    epoch: u64,
}

#[derive(Template)]
#[template(path = "error.html", config = "../templates/askama.toml")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()),
            )
                .into_response()
        }
    }
}

/// An error as a small page (used by the middlewares outside any handler, so no state or user).
pub(super) fn error_page(error: &AppError) -> Response {
    let page = ErrorPage {
        layout: Layout {
            title: "Error".into(),
            user: None,
            nameserver: String::new(),
        },
        status: error.status().as_u16(),
        message: error.public_message(),
    };
    render(error.status(), &page)
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

#[derive(Deserialize, Default)]
struct IndexQuery {
    #[serde(default)]
    registered: Option<String>,
}

async fn index(
    State(state): State<WebState>,
    mut session: ChatSession,
    Query(query): Query<IndexQuery>,
) -> Response {
    let notice = query.registered.is_some().then(|| {
        session
            .user()
            .map(|user| {
                format!(
                    "Welcome! You are {}: friends find you by that name and tag.",
                    user.handle()
                )
            })
            .unwrap_or_default()
    });
    index_with(
        &state,
        &mut session,
        StatusCode::OK,
        None,
        notice,
        String::new(),
    )
    .await
}

/// The home page: the forms when signed out, the user's groups when signed in.
async fn index_with(
    state: &WebState,
    session: &mut ChatSession,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
    username: String,
) -> Response {
    let mut groups = Vec::new();
    if session.user().is_some() {
        match state.service.list_groups(session.context()).await {
            Ok(answer) => {
                if let Err(error) = session.observe(answer.epoch).await {
                    return failed(state, session, error);
                }
                groups = answer.value.iter().map(GroupItem::from).collect();
            }
            Err(error) => return failed(state, session, error.into()),
        }
    }
    let page = IndexPage {
        // "Chat" is what every title ends with already.
        layout: Layout::new(
            state,
            if session.user().is_some() {
                "Your groups"
            } else {
                "Sign in"
            },
            session.user(),
        ),
        groups,
        error,
        notice: notice.filter(|notice| !notice.is_empty()),
        username,
        epoch: session.epoch().0,
    };
    render(status, &page)
}

/// A form error on the home page: the page again with the message, or the error page for cluster
/// conditions (they are not the user's to fix).
async fn index_error(
    state: &WebState,
    session: &mut ChatSession,
    error: AppError,
    username: String,
) -> Response {
    if error.status().is_server_error() {
        return failed(state, session, error);
    }
    let status = error.status();
    let retry_after = error.retry_after();
    let mut response = index_with(
        state,
        session,
        status,
        Some(error.public_message()),
        None,
        username,
    )
    .await;
    if retry_after.is_some() {
        error.decorate(&mut response);
    }
    response
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
        Err(error) => return index_error(&state, &mut session, error, String::new()).await,
    };
    let (username, tag) = match parse_handle(&form.username, form.tag.as_deref()) {
        Ok(handle) => handle,
        Err(error) => return index_error(&state, &mut session, error, form.username).await,
    };
    match log_in(
        &state,
        &mut session,
        &address,
        &username,
        tag,
        form.password,
    )
    .await
    {
        Ok(_) => see_other("/"),
        Err(error) => index_error(&state, &mut session, error, form.username).await,
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
        Err(error) => return index_error(&state, &mut session, error, String::new()).await,
    };
    let typed = form.username.clone();
    match sign_up(&state, &mut session, form.username, form.password).await {
        Ok((user, epoch)) => match session.sign_in(SessionUser::from(&user), epoch).await {
            Ok(()) => see_other("/?registered=1"),
            Err(error) => failed(&state, &session, error),
        },
        Err(error) => index_error(&state, &mut session, error, typed).await,
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
        Err(error) => index_error(&state, &mut session, error, String::new()).await,
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
    let result = async {
        let PageForm(form) = form?;
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
        Err(error) => index_error(&state, &mut session, error, String::new()).await,
    }
}

async fn load_group(
    state: &WebState,
    session: &mut ChatSession,
    id: &str,
) -> Result<(GroupWithMembers, Vec<Message>, Epoch), AppError> {
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
                limit: None,
            },
        )
        .await?;
    session.observe(history.epoch).await?;
    state.hub.remember_messages(&history.value);
    Ok((found.value, history.value, session.epoch()))
}

async fn render_group(
    state: &WebState,
    session: &mut ChatSession,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let Some(me) = session.user().cloned() else {
        return see_other("/");
    };
    match load_group(state, session, id).await {
        Ok((group, messages, epoch)) => {
            let page = GroupPage {
                layout: Layout::new(state, group.group.name.clone(), Some(&me)),
                i_created_it: group.group.creator == me.id,
                members: member_items(&group, &me),
                group: GroupItem::from(&group.group),
                messages: messages
                    .iter()
                    .map(|message| MessageItem::new(message, &me))
                    .collect(),
                me,
                error,
                epoch: epoch.0,
            };
            render(status, &page)
        }
        Err(error) => failed(state, session, error),
    }
}

async fn group_page(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Response {
    render_group(&state, &mut session, &id, StatusCode::OK, None).await
}

async fn add_member(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    form: Result<PageForm<HandleForm>, AppError>,
) -> Response {
    let result = async {
        let group = super::api::path_group(&id)?;
        let PageForm(form) = form?;
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
        Ok(()) => see_other(&format!("/groups/{id}")),
        Err(error) if error.status().is_client_error() => {
            // Say what went wrong on the group page itself, when the caller may still see it.
            let status = error.status();
            render_group(
                &state,
                &mut session,
                &id,
                status,
                Some(error.public_message()),
            )
            .await
        }
        Err(error) => failed(&state, &session, error),
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
        Err(error) => failed(&state, &session, error),
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
        Err(error) => failed(&state, &session, error),
    }
}

async fn chat_page(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path((username, tag)): Path<(String, String)>,
) -> Response {
    let Some(me) = session.user().cloned() else {
        return see_other("/");
    };
    let result = async {
        let tag = super::api::path_tag(&tag)?;
        let peer = state
            .service
            .get_user(
                session.context(),
                GetUser {
                    username: username.clone(),
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
                    limit: None,
                },
            )
            .await?;
        session.observe(history.epoch).await?;
        state.hub.remember_messages(&history.value);
        Ok::<_, AppError>((peer.value, history.value))
    }
    .await;
    match result {
        Ok((peer, messages)) => {
            let page = ChatPage {
                layout: Layout::new(&state, peer.username.clone(), Some(&me)),
                chat_id: crate::storage::ChatId::direct(me.id, peer.id).to_string(),
                peer_path: format!("{}/{}", encode_segment(&peer.username), peer.tag),
                peer_username: peer.username,
                peer_tag: peer.tag.to_string(),
                messages: messages
                    .iter()
                    .map(|message| MessageItem::new(message, &me))
                    .collect(),
                me,
                epoch: session.epoch().0,
            };
            render(StatusCode::OK, &page)
        }
        Err(error) => failed(&state, &session, error),
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
