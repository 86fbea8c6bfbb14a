//! The JSON API of DESIGN §6, one router per resource: `auth` (register, login, logout, me), `users`
//! (profiles and direct chats), `groups` (groups, members, group chats), `messages` (edits, deletes,
//! reactions), `chats` (the caller's conversations), `search`, and the live `events` stream. Every handler reports the epoch of the answer it got to the session and in
//! `X-Chat-Epoch`.

mod auth;
mod chats;
mod groups;
mod messages;
mod search;
mod users;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::service::Answer;
use crate::storage::{ChatId, Epoch, UserTag};

use super::WebState;
use super::error::AppError;
use super::middleware;
pub(super) use super::respond::{no_content, reply};

/// The API: public routes (register, login, logout) and the rest behind *auth*.
pub(super) fn router(state: WebState) -> Router {
    let protected = Router::new()
        .merge(auth::me_router())
        .merge(users::router())
        .merge(groups::router())
        .merge(messages::router())
        .merge(chats::router())
        .merge(search::router())
        .merge(super::events::router())
        .route_layer(axum::middleware::from_fn(middleware::require_api_user));
    Router::new()
        .merge(auth::router())
        .merge(protected)
        .with_state(state)
}

/// `{"epoch": N}`: how far the caller has read a chat.
#[derive(Debug, Deserialize)]
pub(super) struct ReadBody {
    epoch: Epoch,
}

/// `{"chat","read_epoch"}`: where a read marker is after a `PUT .../read`.
pub(super) fn read_marker(answer: Answer<(ChatId, Epoch)>) -> Response {
    #[derive(Serialize)]
    struct ReadMarkerView {
        chat: ChatId,
        read_epoch: Epoch,
    }
    let (chat, read_epoch) = answer.value;
    reply(
        StatusCode::OK,
        answer.epoch,
        ReadMarkerView { chat, read_epoch },
    )
}

/// `?before=&limit=` as the client wrote them: empty values mean "not given".
#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

impl PageQuery {
    /// `(before, limit)`, or 400 for values that are not numbers. The service applies the default and
    /// the cap of `limit`.
    pub(super) fn parse(&self) -> Result<(Option<Epoch>, Option<u32>), AppError> {
        let number = |value: &Option<String>, name: &str| -> Result<Option<u64>, AppError> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                    AppError::BadRequest(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let before = number(&self.before, "before")?.map(Epoch);
        let limit =
            number(&self.limit, "limit")?.map(|limit| u32::try_from(limit).unwrap_or(u32::MAX));
        Ok((before, limit))
    }
}

/// A tag in a JSON body: `"0042"` as users write it, or the number `42`.
pub(super) fn deserialize_tag<'de, D>(deserializer: D) -> Result<UserTag, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TagInput {
        Text(String),
        Number(u16),
    }
    match TagInput::deserialize(deserializer)? {
        TagInput::Text(text) => UserTag::parse(&text).map_err(serde::de::Error::custom),
        TagInput::Number(number) => {
            UserTag::new(number).ok_or_else(|| serde::de::Error::custom("a tag is at most 9999"))
        }
    }
}
