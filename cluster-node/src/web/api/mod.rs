//! The JSON API of DESIGN §6, one router per resource: `auth` (register, login, logout, me), `users`
//! (profiles and direct chats), `groups` (groups, members, group chats), `messages` (edits, deletes,
//! reactions), `chats` (the caller's conversations), `search`, `stats` (a group's statistics), `typing`
//! (notices that are never stored), `ephemeral` (groups held only in the writer's memory), and the
//! live `events` stream. Every handler reports the epoch of the answer it got to the session and in
//! `X-Chat-Epoch`.

mod auth;
mod chats;
mod ephemeral;
mod groups;
mod messages;
mod search;
mod stats;
mod typing;
mod users;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Answer;
use crate::storage::{ChatId, Epoch, UserTag};

use super::WebState;
use super::error::AppError;
use super::middleware;
pub(super) use super::respond::{no_content, reply};

/// The API: public routes (register, login, logout, the OpenAPI document) and the rest behind
/// *auth*. Every route is registered with its description, so the document is the router's.
pub(super) fn router(state: WebState) -> Router {
    api().split_for_parts().0.with_state(state)
}

/// The routes with their descriptions.
fn api() -> OpenApiRouter<WebState> {
    let protected = OpenApiRouter::new()
        .merge(auth::me_router())
        .merge(users::router())
        .merge(groups::router())
        .merge(messages::router())
        .merge(chats::router())
        .merge(search::router())
        .merge(stats::router())
        .merge(typing::router())
        .merge(ephemeral::router())
        .merge(super::events::router())
        .route_layer(axum::middleware::from_fn(middleware::require_api_user));
    OpenApiRouter::with_openapi(super::openapi::ApiDoc::openapi())
        .merge(auth::router())
        .routes(routes!(openapi_document))
        .merge(protected)
}

/// The OpenAPI document of the JSON API (what `/api/openapi.json` serves).
pub(super) fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

#[utoipa::path(
    get,
    operation_id = "meta_openapi_document",
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This API as an OpenAPI 3.1 document",
    responses((status = 200, description = "The document", body = Object))
)]
async fn openapi_document() -> Response {
    // Built once: the routes cannot change while the process runs.
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT
        .get_or_init(|| serde_json::to_string_pretty(&document()).unwrap_or_else(|_| "{}".into()));
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

/// `{"epoch": N}`: how far the caller has read a chat.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct ReadBody {
    #[schema(value_type = u64)]
    epoch: Epoch,
}

/// `{"chat","read_epoch"}`: where a read marker is after a `PUT .../read`.
#[derive(Serialize, ToSchema)]
pub(super) struct ReadMarkerView {
    chat: ChatId,
    #[schema(value_type = u64)]
    read_epoch: Epoch,
}

/// `{"chat","read_epoch"}`: where a read marker is after a `PUT .../read`.
pub(super) fn read_marker(answer: Answer<(ChatId, Epoch)>) -> Response {
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
