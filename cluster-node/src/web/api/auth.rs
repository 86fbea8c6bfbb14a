//! Registration, login (rate-limited, bcrypt verified on a blocking thread), logout and `/api/me`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::{ChatServiceExt, LookupCredentials, Register, ServiceError, password};
use crate::storage::{Epoch, User, UserTag};

use super::super::WebState;
use super::super::error::{ApiJson, AppError};
use super::super::session::{ChatSession, SessionUser};
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

/// The client's address for rate limiting: the TCP peer (no proxy sits in front of input nodes, so
/// forwarded-for headers would only let a client choose its own key). "unknown" without `ConnectInfo`.
#[derive(Debug, Clone)]
pub(in crate::web) struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(client_address(parts))
    }
}

fn client_address(parts: &Parts) -> ClientAddress {
    ClientAddress(
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_string())
            .unwrap_or_else(|| "unknown".into()),
    )
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

/// Registers a user (the service hashes the password on a blocking thread and picks the tag).
pub(in crate::web) async fn sign_up(
    state: &WebState,
    session: &mut ChatSession,
    username: String,
    password: String,
) -> Result<(User, Epoch), AppError> {
    let answer = state
        .service
        .register(session.context(), Register { username, password })
        .await?;
    state.hub.remember_user(&answer.value);
    Ok((answer.value, answer.epoch))
}

/// Checks `name#tag` and `password` and signs the session in (a freshly signed cookie); 429 when the
/// limiter refuses, 401 for a wrong password or an unknown user (the same answer, so names cannot be
/// probed).
pub(in crate::web) async fn log_in(
    state: &WebState,
    session: &mut ChatSession,
    address: &ClientAddress,
    username: &str,
    tag: UserTag,
    password: String,
) -> Result<(User, Epoch), AppError> {
    let key = format!("{}#{tag}", username.trim());
    let limiter = || {
        state
            .limiter
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    };
    limiter()
        .admit(&key, &address.0, Instant::now())
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let lookup = state
        .service
        .lookup_credentials(
            session.context(),
            LookupCredentials {
                username: username.to_owned(),
                tag,
            },
        )
        .await;
    let credentials = match lookup {
        Ok(answer) => answer,
        Err(ServiceError::NotFound(_) | ServiceError::Invalid(_)) => {
            limiter().failed(&key, Instant::now());
            return Err(AppError::wrong_credentials());
        }
        Err(error) => return Err(error.into()),
    };
    let matches = password::verify(password, credentials.value.password_hash.clone()).await?;
    if !matches {
        limiter().failed(&key, Instant::now());
        return Err(AppError::wrong_credentials());
    }
    limiter().succeeded(&key);
    let user = credentials.value.user;
    state.hub.remember_user(&user);
    session
        .sign_in(SessionUser::from(&user), credentials.epoch)
        .await?;
    Ok((user, credentials.epoch))
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
    let answer = state.service.get_me(session.context()).await?;
    session.observe(answer.epoch).await?;
    Ok(reply(
        StatusCode::OK,
        answer.epoch,
        UserView::from(&answer.value),
    ))
}
