//! "… is typing": `POST /api/groups/{id}/typing` and `POST /api/users/{username}/{tag}/typing`. A notice
//! is checked here (the caller must be in the chat) and then travels as soft state (`crate::presence`):
//! up the tree to the root and down to every input node, whose streams show it to the chat's other
//! members. Nothing is written. A client repeats it every few seconds while its user types; listeners
//! drop it after a few seconds without a repeat (the pages: 6 s).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::presence::TypingNotice;
use crate::service::{ChatServiceExt, GetGroup, GetUser};
use crate::storage::ChatId;

use super::super::WebState;
use super::super::error::AppError;
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::no_content;

/// One notice per user and chat is passed on at most this often; more are answered but dropped.
pub(in crate::web) const TYPING_EVERY: std::time::Duration = std::time::Duration::from_millis(1500);
/// Remembered announcements beyond which the old ones are forgotten.
const REMEMBERED: usize = 10_000;

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(group_typing))
        .routes(routes!(user_typing))
}

#[utoipa::path(
    post,
    operation_id = "groups_typing",
    path = "/api/groups/{id}/typing",
    tag = "groups",
    summary = "Tells the group's other members that the caller is typing (members only; nothing is stored)",
    params(("id" = String, Path, description = "The group's id")),
    responses((status = 204, description = "Passed on (or dropped as a repeat)"), ApiErrors),
    security(("session" = []))
)]
async fn group_typing(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    // Members only: a stranger who knows a group's id must not make anyone appear to type there.
    let answer = session
        .observed(
            state
                .service
                .get_group(session.context(), GetGroup { group }),
        )
        .await?;
    announce(&state, &session, ChatId::Group(group))?;
    Ok(no_content(answer.epoch))
}

#[utoipa::path(
    post,
    operation_id = "users_typing",
    path = "/api/users/{username}/{tag}/typing",
    tag = "users",
    summary = "Tells a user that the caller is typing in their direct chat (nothing is stored)",
    params(("username" = String, Path, description = "The user's name"), ("tag" = String, Path, description = "The four digits of the user's tag")),
    responses((status = 204, description = "Passed on (or dropped as a repeat)"), ApiErrors),
    security(("session" = []))
)]
async fn user_typing(
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
    let me = session.require_user()?.id;
    announce(&state, &session, ChatId::direct(me, answer.value.id))?;
    Ok(no_content(answer.epoch))
}

/// Passes the caller's notice on, unless one for the same chat left less than [`TYPING_EVERY`] ago.
fn announce(state: &WebState, session: &ChatSession, chat: ChatId) -> Result<(), AppError> {
    let user = session.require_user()?;
    let now = Instant::now();
    {
        let mut sent = state
            .typing_sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sent
            .get(&(user.id, chat))
            .is_some_and(|last| now.duration_since(*last) < TYPING_EVERY)
        {
            return Ok(());
        }
        if sent.len() >= REMEMBERED {
            sent.retain(|_, last| now.duration_since(*last) < TYPING_EVERY);
        }
        sent.insert((user.id, chat), now);
    }
    state.presence.typing(TypingNotice {
        chat,
        user: user.id,
        username: user.username.clone(),
        tag: user.tag,
    });
    Ok(())
}
