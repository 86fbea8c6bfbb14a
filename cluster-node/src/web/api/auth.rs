//! Registration, login (rate-limited, bcrypt verified on a blocking thread), logout and `/api/me`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::ChatServiceExt;
use crate::storage::UserTag;

use super::super::WebState;
use super::super::accounts::{ClientAddress, log_in, sign_up};
use super::super::error::{ApiJson, AppError};
use super::super::session::ChatSession;
use super::super::views::UserView;
use super::{deserialize_tag, no_content, reply};

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
}

pub(super) fn me_router() -> Router<WebState> {
    Router::new().route("/api/me", get(me))
}

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    #[serde(deserialize_with = "deserialize_tag")]
    tag: UserTag,
    password: String,
}

async fn register(
    State(state): State<WebState>,
    mut session: ChatSession,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, AppError> {
    let (user, epoch) = sign_up(&state, &mut session, body.username, body.password).await?;
    Ok(reply(StatusCode::CREATED, epoch, UserView::from(&user)))
}

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

async fn logout(mut session: ChatSession) -> Result<Response, AppError> {
    let epoch = session.epoch();
    session.sign_out().await?;
    Ok(no_content(epoch))
}

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
