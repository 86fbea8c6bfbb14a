//! Ephemeral groups' commands as both faces send them (the JSON API and the pages): the session's
//! user as the writer needs it, a user found by name and tag, a command run at the writer.

use crate::service::ChatServiceExt;
use crate::service::GetUser;
use crate::service::ephemeral::{EphemeralAnswer, EphemeralCommand};
use crate::storage::{UserRef, UserTag};

use super::WebState;
use super::error::AppError;
use super::session::ChatSession;

/// Runs `command` at the writer for the session's user (the writer reads no database for it, so the
/// user's name and tag travel with it).
pub(super) async fn run(
    state: &WebState,
    session: &mut ChatSession,
    command: EphemeralCommand,
) -> Result<EphemeralAnswer, AppError> {
    let user = session.require_user()?;
    let caller = UserRef {
        id: user.id,
        username: user.username.clone(),
        tag: user.tag,
    };
    let answer = session
        .observed(state.service.ephemeral(session.context(), caller, command))
        .await?;
    Ok(answer.value)
}

/// The user `username#tag` (404 when there is none), to add to a group.
pub(super) async fn find_user(
    state: &WebState,
    session: &mut ChatSession,
    username: String,
    tag: UserTag,
) -> Result<UserRef, AppError> {
    let found = session
        .observed(
            state
                .service
                .get_user(session.context(), GetUser { username, tag }),
        )
        .await?;
    Ok(UserRef {
        id: found.value.id,
        username: found.value.username,
        tag: found.value.tag,
    })
}
