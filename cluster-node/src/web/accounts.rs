//! Signing up and logging in, shared by the JSON API and the page forms: the same rules, the same
//! rate limit and the same answers whichever face the user comes through. A leaf module.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::service::{ChatServiceExt, LookupCredentials, Register, ServiceError, password};
use crate::storage::{Epoch, User, UserTag};

use super::WebState;
use super::error::AppError;
use super::session::{ChatSession, SessionUser};

/// The client's address for rate limiting: the TCP peer (no proxy sits in front of input nodes, so
/// forwarded-for headers would only let a client choose its own key). "unknown" without `ConnectInfo`.
#[derive(Debug, Clone)]
pub(super) struct ClientAddress(pub String);

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

/// Registers a user (the service hashes the password on a blocking thread and picks the tag).
pub(super) async fn sign_up(
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
pub(super) async fn log_in(
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
