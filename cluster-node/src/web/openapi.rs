//! The JSON API as an OpenAPI 3.1 document, built from the handlers' own annotations and types
//! (`utoipa`): every API route is registered through `utoipa_axum`'s router, so a route cannot exist
//! without its description. Served at `GET /api/openapi.json`.
//!
//! Here: the document's frame (title, tags, the session cookie), the error body every failure shares,
//! the error statuses every operation may answer, and the schemas of the storage ids the views carry.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::storage::{ChatId, GroupId, MessageId, Reaction, UserId, UserTag};

use super::session::COOKIE_NAME;

/// `{"error": "..."}`: the body of every failed API call.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used: errors are built by `AppError`
pub(super) struct ErrorBody {
    /// One line saying what went wrong; never internal detail.
    error: String,
}

/// The statuses any API operation may answer besides its own: bad input, not signed in, not
/// allowed, unknown, conflict, too large, too many attempts, and the cluster not able to answer now
/// (with `Retry-After`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum ApiErrors {
    #[response(status = 400, description = "Bad input: the error says which")]
    BadRequest(#[to_schema] ErrorBody),
    #[response(status = 401, description = "Not signed in, or wrong credentials")]
    Unauthenticated(ErrorBody),
    #[response(
        status = 403,
        description = "Not allowed (not a member, not the sender or creator), or a cross-origin request"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "Unknown, or not visible to the caller")]
    NotFound(ErrorBody),
    #[response(status = 409, description = "Conflict (every tag of a name taken)")]
    Conflict(ErrorBody),
    #[response(status = 413, description = "Body over 64 KiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "A body that is not JSON")]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 429,
        description = "Too many login attempts (with Retry-After)"
    )]
    TooManyRequests(ErrorBody),
    #[response(
        status = 503,
        description = "No writer or no fresh enough copy right now (with Retry-After)"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The cluster did not answer in time")]
    Timeout(ErrorBody),
}

/// The document's frame; the operations come from the router (`api::router`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat-cluster",
        description = "The chat's JSON API, served by every input node. Every answer carries the epoch \
                       of the data that answered in `X-Chat-Epoch`; sessions are the `chat_session` \
                       cookie set by login, valid on every input node.",
    ),
    modifiers(&SessionCookie),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Registration, login, logout, the signed-in user"),
        (name = "users", description = "Profiles and direct chats"),
        (name = "groups", description = "Groups, members and group chats"),
        (name = "messages", description = "Edits, deletion and reactions"),
        (name = "chats", description = "The caller's conversations"),
        (name = "search", description = "Search over the caller's chats"),
        (name = "events", description = "The live event stream"),
        (name = "meta", description = "This document"),
    )
)]
pub(super) struct ApiDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(COOKIE_NAME))),
        );
    }
}

fn uuid_string(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(description))
        .into()
}

impl PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        uuid_string("A user's id")
    }
}
impl ToSchema for UserId {}

impl PartialSchema for GroupId {
    fn schema() -> RefOr<Schema> {
        uuid_string("A group's id")
    }
}
impl ToSchema for GroupId {}

impl PartialSchema for MessageId {
    fn schema() -> RefOr<Schema> {
        uuid_string("A message's id")
    }
}
impl ToSchema for MessageId {}

impl PartialSchema for ChatId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A chat: a group's id, or `dm:<user id>:<user id>` for a direct chat",
            ))
            .into()
    }
}
impl ToSchema for ChatId {}

impl PartialSchema for UserTag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{4}$"))
            .description(Some("The four digits after a name: `0042`"))
            .into()
    }
}
impl ToSchema for UserTag {}

impl PartialSchema for Reaction {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property("emoji", ObjectBuilder::new().schema_type(Type::String))
            .property(
                "count",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(1)),
            )
            .property("me", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("emoji")
            .required("count")
            .required("me")
            .description(Some(
                "One emoji on a message: how many chose it, and whether the caller did",
            ))
            .into()
    }
}
impl ToSchema for Reaction {}
