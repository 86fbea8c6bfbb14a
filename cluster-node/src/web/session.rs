//! Sessions: tower-sessions cookies (HttpOnly, SameSite=Lax) and [`ChatSession`], the typed view of
//! what this layer keeps in them: the signed-in user and the highest epoch the client has seen.
//!
//! The epoch is the client's read floor (DESIGN §4): it goes out as `client_epoch` with every service
//! call and is raised by every answer, so a replica never answers this client with data older than
//! what it has already seen (read-your-writes, monotonic reads).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use crate::service::RequestContext;
use crate::storage::{Epoch, User, UserId, UserTag};

use super::WebOptions;
use super::error::AppError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "chat_session";

/// The key of [`SessionData`] inside a session record.
const KEY: &str = "chat";

/// The session layer with this application's cookie settings.
pub(super) fn layer<Store: SessionStore + Clone>(
    store: Store,
    options: &WebOptions,
) -> SessionManagerLayer<Store> {
    let inactivity = tower_sessions::cookie::time::Duration::seconds(
        i64::try_from(options.session_inactivity.as_secs()).unwrap_or(i64::MAX / 2),
    );
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(options.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(inactivity))
}

/// The signed-in user, as the session remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
}

impl SessionUser {
    /// `name#1234`.
    pub fn handle(&self) -> String {
        format!("{}#{}", self.username, self.tag)
    }
}

impl From<&User> for SessionUser {
    fn from(user: &User) -> Self {
        SessionUser {
            id: user.id,
            username: user.username.clone(),
            tag: user.tag,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SessionData {
    user: Option<SessionUser>,
    epoch: Epoch,
}

/// The typed session of one request: extract it in a handler, read the user and epoch, and report every
/// epoch an answer carried with [`ChatSession::observe`].
#[derive(Debug, Clone)]
pub struct ChatSession {
    session: Session,
    data: SessionData,
}

impl ChatSession {
    /// Loads the typed data of `session` (empty for a new or unknown session id).
    pub async fn load(session: Session) -> Result<Self, AppError> {
        let data = session.get::<SessionData>(KEY).await?.unwrap_or_default();
        Ok(ChatSession { session, data })
    }

    pub fn user(&self) -> Option<&SessionUser> {
        self.data.user.as_ref()
    }

    /// The user, or 401.
    pub fn require_user(&self) -> Result<&SessionUser, AppError> {
        self.user().ok_or_else(AppError::unauthenticated)
    }

    /// The highest epoch this client has seen.
    pub fn epoch(&self) -> Epoch {
        self.data.epoch
    }

    /// Who calls and what they have seen, for a service request.
    pub fn context(&self) -> RequestContext {
        RequestContext {
            caller: self.user().map(|user| user.id),
            client_epoch: self.data.epoch,
        }
    }

    /// Raises the session's epoch to `epoch` if it is higher. Only a signed-in session is written: an
    /// anonymous client gets no session record from reading.
    pub async fn observe(&mut self, epoch: Epoch) -> Result<(), AppError> {
        if epoch > self.data.epoch && self.data.user.is_some() {
            self.data.epoch = epoch;
            self.session.insert(KEY, &self.data).await?;
        }
        Ok(())
    }

    /// Signs `user` in under a new session id (no fixation), keeping the highest epoch seen.
    pub async fn sign_in(&mut self, user: SessionUser, epoch: Epoch) -> Result<(), AppError> {
        self.session.cycle_id().await?;
        self.data = SessionData {
            user: Some(user),
            epoch: epoch.max(self.data.epoch),
        };
        self.session.insert(KEY, &self.data).await?;
        Ok(())
    }

    /// Ends the session: the record is deleted and the cookie cleared.
    pub async fn sign_out(&mut self) -> Result<(), AppError> {
        self.data = SessionData::default();
        self.session.flush().await?;
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ChatSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| AppError::Internal(format!("no session layer: {message}")))?;
        ChatSession::load(session).await
    }
}
