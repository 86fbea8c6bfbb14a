//! Registration, login (rate-limited, bcrypt verified on a blocking thread), logout and `/api/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::ChatServiceExt;
use crate::storage::UserTag;

use super::super::WebState;
use super::super::accounts::{ClientAddress, log_in, sign_up};
use super::super::error::{ApiJson, AppError};
use super::super::openapi::ApiErrors;
use super::super::session::ChatSession;
use super::super::views::UserView;
use super::{deserialize_tag, no_content, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
}

pub(super) fn me_router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new().routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    /// 1–32 characters once trimmed, no control characters, no `#` or `/`.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[^#/\x00-\x1f\x7f-\x9f]*[^#/\s\x00-\x1f\x7f-\x9f][^#/\x00-\x1f\x7f-\x9f]*$"
    )]
    username: String,
    /// 8 characters to 72 bytes of UTF-8 (bcrypt reads no further).
    #[schema(min_length = 8, max_length = 72)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    username: String,
    /// `"0042"`, or the number 42.
    #[serde(deserialize_with = "deserialize_tag")]
    #[schema(value_type = String)]
    tag: UserTag,
    password: String,
}

#[utoipa::path(
    post,
    operation_id = "auth_register",
    path = "/api/register",
    tag = "auth",
    summary = "Registers a user; the cluster picks the tag",
    request_body = RegisterBody,
    responses((status = 201, description = "The new user", body = UserView), ApiErrors)
)]
async fn register(
    State(state): State<WebState>,
    mut session: ChatSession,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, AppError> {
    let (user, epoch) = sign_up(&state, &mut session, body.username, body.password).await?;
    Ok(reply(StatusCode::CREATED, epoch, UserView::from(&user)))
}

#[utoipa::path(
    post,
    operation_id = "auth_login",
    path = "/api/login",
    tag = "auth",
    summary = "Signs in: sets the session cookie",
    request_body = LoginBody,
    responses((status = 200, description = "The signed-in user", body = UserView), ApiErrors)
)]
async fn login(
    State(state): State<WebState>,
    address: ClientAddress,
    mut session: ChatSession,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, AppError> {
    let (user, epoch) = log_in(
        &state,
        &mut session,
        &address,
        &body.username,
        body.tag,
        body.password,
    )
    .await?;
    Ok(reply(StatusCode::OK, epoch, UserView::from(&user)))
}

#[utoipa::path(
    post,
    operation_id = "auth_logout",
    path = "/api/logout",
    tag = "auth",
    summary = "Signs out: clears the session cookie",
    responses((status = 204, description = "Signed out"), ApiErrors)
)]
async fn logout(mut session: ChatSession) -> Result<Response, AppError> {
    let epoch = session.epoch();
    session.sign_out().await?;
    Ok(no_content(epoch))
}

#[utoipa::path(
    get,
    operation_id = "auth_me",
    path = "/api/me",
    tag = "auth",
    summary = "The signed-in user",
    responses((status = 200, description = "The signed-in user", body = UserView), ApiErrors),
    security(("session" = []))
)]
async fn me(State(state): State<WebState>, mut session: ChatSession) -> Result<Response, AppError> {
    let answer = session
        .observed(state.service.get_me(session.context()))
        .await?;
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        UserView::from(&answer.value),
    ))
}
