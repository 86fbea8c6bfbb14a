//! The home page: signed out, the login and registration forms; signed in, the sidebar and the forms
//! that start a conversation.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::ephemeral::{EphemeralAnswer, EphemeralCommand};
use crate::service::{ChatServiceExt, CreateGroup, GetUser};

use super::super::WebState;
use super::super::accounts::{ClientAddress, log_in, sign_up};
use super::super::ephemeral::run;
use super::super::error::{AppError, PageForm};
use super::super::flash::{Flash, IncomingFlash};
use super::super::layout::{Layout, render};
use super::super::paths;
use super::super::session::{ChatSession, SessionUser};
use super::items::ChatItem;
use super::{HandleForm, after_form, back_with, failed, load_sidebar, parse_handle, see_other};

/// The signed-out routes: the home page and the account forms.
pub(super) fn public() -> Router<WebState> {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/register", post(register))
        .route("/logout", post(logout))
}

/// The forms of the signed-in home page.
pub(super) fn protected() -> Router<WebState> {
    Router::new()
        .route("/groups", post(create_group))
        .route("/chats", post(start_chat))
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
    let sidebar = match load_sidebar(&state, &mut session).await {
        Ok(loaded) => loaded,
        Err(error) => return failed(&state, &session, error),
    };
    let page = HomePage {
        handle: flash.kept_for("chat"),
        layout: Layout {
            unread: sidebar.unread,
            body_class: "view-home",
            flash,
            ..Layout::new(&state, "", Some(&me))
        },
        me,
        // Live events resume after what the sidebar shows.
        epoch: sidebar.epoch.0,
        sidebar: sidebar.items,
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
        .await?;
        Ok("/".to_owned())
    }
    .await;
    after_form(&state, result, "/", "login", form.username)
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
    /// The "ephemeral" box: held in the writer's memory only.
    #[serde(default)]
    ephemeral: Option<String>,
}

async fn create_group(
    State(state): State<WebState>,
    mut session: ChatSession,
    form: Result<PageForm<CreateGroupForm>, AppError>,
) -> Response {
    let result = async {
        let PageForm(form) = form?;
        if form.ephemeral.is_some() {
            let create = EphemeralCommand::Create { name: form.name };
            return match run(&state, &mut session, create).await? {
                EphemeralAnswer::Group(group) => Ok(format!("/ephemeral/{}", group.id)),
                other => Err(AppError::Internal(format!("unexpected answer {other:?}"))),
            };
        }
        let create = CreateGroup { name: form.name };
        let answer = session
            .observed(state.service.create_group(session.context(), create))
            .await?;
        Ok(format!("/groups/{}", answer.value.group.id))
    }
    .await;
    after_form(&state, result, "/", "group", String::new())
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
        let answer = session
            .observed(
                state
                    .service
                    .get_user(session.context(), GetUser { username, tag }),
            )
            .await?;
        Ok(paths::chat_page(&answer.value.username, answer.value.tag))
    }
    .await;
    after_form(&state, result, "/", "chat", typed)
}
