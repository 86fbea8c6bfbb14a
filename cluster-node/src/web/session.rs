//! Sessions: a signed cookie (HttpOnly, SameSite=Lax) that carries the signed-in user, a plain one
//! beside it that carries the highest epoch the client has seen, and [`ChatSession`], the typed view
//! of both.
//!
//! The epoch is the client's read floor (DESIGN §4): it goes out as `client_epoch` with every service
//! call and is raised by every answer, so a replica never answers this client with data older than
//! what it has already seen (read-your-writes, monotonic reads).
//!
//! ```text
//!   Cookie: chat_session=…; chat_epoch=N ──verify (cluster key)──► SessionSlot in the request's extensions
//!                                                                   │  ChatSession::load / observe / sign_in / sign_out
//!   Set-Cookie: chat_session ◄──sign, expiry = now + inactivity──── user changed? refresh due? refused or signed out: clear
//!   Set-Cookie: chat_epoch   ◄──the number──────────────────────── epoch raised (no signature)
//! ```
//!
//! Why the epoch is apart and unsigned: it changes with almost every answer (a write, a read of newer
//! data), and signing it made every such answer re-sign the session. It is only a read floor: a client
//! that raises its own makes its reads wait for, or be refused by, copies that are not that fresh (503
//! from a writer that is not there yet); one that lowers it may read data older than it has seen. Either
//! way it only affects its own reads, which it could already send to the writer with no epoch at all.
//!
//! Why a cookie and not a server-side store: an input node can die at any moment and the nameserver
//! then sends its users to another input node. A session the client carries, signed with the key every
//! node of the cluster shares (`cluster_key` in the config), is valid on all of them without any shared
//! store or replication of session records.
//!
//! The trade-off: a signed cookie cannot be revoked before it expires. Signing out clears the cookie in
//! that browser, but a copy taken earlier (stolen, or kept by a script) stays valid until the expiry
//! inside it, at most `session_inactivity` after its last refresh. Changing the cluster key (and
//! restarting the nodes) is the only way to end every session at once. Concurrent requests of one
//! client each answer with their own cookie, so the last answer wins and the stored epoch can fall back
//! a little; the reads stay correct, they may only wait for an epoch the client has already passed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use crate::service::{Answer, RequestContext, ServiceError};
use crate::storage::{Epoch, User, UserId, UserTag};

use super::error::AppError;
use super::signed_cookie::{self, Refused, SessionKey};
use super::{WebOptions, WebState};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "chat_session";

/// The epoch cookie's name.
pub const EPOCH_COOKIE: &str = "chat_epoch";

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

/// What the two cookies carry: the user (signed, with its expiry beside it) and the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SessionData {
    user: Option<SessionUser>,
    epoch: Epoch,
}

/// What the handlers of one request did to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Untouched,
    /// Only the epoch rose: the epoch cookie changes, the signed one does not.
    EpochRaised,
    /// Signed in: both cookies are issued.
    Written,
    SignedOut,
}

#[derive(Debug)]
struct SlotState {
    data: SessionData,
    change: Change,
}

/// One request's session, shared by the middlewares and the handler that run for it: [`cookies`]
/// fills it from the request's cookie and turns what is left in it into `Set-Cookie`.
#[derive(Debug, Clone)]
pub struct SessionSlot(Arc<Mutex<SlotState>>);

impl SessionSlot {
    fn new(data: SessionData) -> Self {
        SessionSlot(Arc::new(Mutex::new(SlotState {
            data,
            change: Change::Untouched,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self, data: &SessionData, change: Change) {
        let mut state = self.lock();
        state.data = data.clone();
        // An epoch raised after a sign-in is part of that sign-in's cookies.
        if !(change == Change::EpochRaised && state.change != Change::Untouched) {
            state.change = change;
        }
    }
}

/// The typed session of one request: extract it in a handler, read the user and epoch, and report every
/// epoch an answer carried with [`ChatSession::observe`].
///
/// The methods keep the async, fallible shape of a store-backed session; the cookie itself never fails.
#[derive(Debug, Clone)]
pub struct ChatSession {
    slot: SessionSlot,
    data: SessionData,
}

impl ChatSession {
    /// The session as the request's cookie (and the handlers so far) left it; empty without a valid
    /// cookie.
    pub async fn load(slot: SessionSlot) -> Result<Self, AppError> {
        let data = slot.lock().data.clone();
        Ok(ChatSession { slot, data })
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
    /// anonymous client gets no cookie from reading.
    pub async fn observe(&mut self, epoch: Epoch) -> Result<(), AppError> {
        if epoch > self.data.epoch && self.data.user.is_some() {
            self.data.epoch = epoch;
            self.slot.write(&self.data, Change::EpochRaised);
        }
        Ok(())
    }

    /// Waits for a service call made with this session's `context()` and raises the session's epoch to
    /// the answer's: every handler does both, so a client never reads older than what it was shown.
    pub async fn observed<T>(
        &mut self,
        call: impl Future<Output = Result<Answer<T>, ServiceError>>,
    ) -> Result<Answer<T>, AppError> {
        let answer = call.await?;
        self.observe(answer.epoch).await?;
        Ok(answer)
    }

    /// Signs `user` in with a freshly signed cookie, keeping the highest epoch seen. Nothing of a cookie
    /// the client held before is kept but its epoch, so a planted cookie cannot become this user's
    /// session (no fixation).
    pub async fn sign_in(&mut self, user: SessionUser, epoch: Epoch) -> Result<(), AppError> {
        self.data = SessionData {
            user: Some(user),
            epoch: epoch.max(self.data.epoch),
        };
        self.slot.write(&self.data, Change::Written);
        Ok(())
    }

    /// Ends the session: the cookie is cleared in the client (see the module documentation for what
    /// this cannot do).
    pub async fn sign_out(&mut self) -> Result<(), AppError> {
        self.data = SessionData::default();
        self.slot.write(&self.data, Change::SignedOut);
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ChatSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let slot = parts
            .extensions
            .get::<SessionSlot>()
            .cloned()
            .ok_or_else(|| AppError::Internal("no session layer".into()))?;
        ChatSession::load(slot).await
    }
}

/// The session cookie the request brought.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Incoming {
    Absent,
    Valid { expires: SystemTime },
    Refused(Refused),
}

/// What the response does with the cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outgoing {
    Keep,
    /// Both cookies: the user signed again, and the epoch.
    Issue(SessionData),
    /// The epoch cookie only.
    Epoch(Epoch),
    Clear,
}

/// Reads the first `chat_session` cookie of `headers` that verifies under `key`, and the highest
/// `chat_epoch` (only beside a valid session: an anonymous client has no read floor).
fn read_cookie(headers: &HeaderMap, key: &SessionKey, now: SystemTime) -> (SessionData, Incoming) {
    let mut incoming = Incoming::Absent;
    let mut data = SessionData::default();
    let mut epoch = Epoch(0);
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok);
    for cookie in cookies {
        match cookie.name() {
            COOKIE_NAME if data.user.is_none() => {
                match signed_cookie::verify::<SessionUser>(key, cookie.value(), now) {
                    Ok(verified) => {
                        incoming = Incoming::Valid {
                            expires: verified.expires,
                        };
                        data.user = Some(verified.data);
                    }
                    Err(refused) => incoming = Incoming::Refused(refused),
                }
            }
            EPOCH_COOKIE => {
                if let Ok(value) = cookie.value().parse::<u64>() {
                    epoch = epoch.max(Epoch(value));
                }
            }
            _ => {}
        }
    }
    if data.user.is_some() {
        data.epoch = epoch;
    }
    (data, incoming)
}

/// Decides the response's cookie: a changed session is re-signed, a signed-out or refused one cleared,
/// and an unchanged one re-signed once a tenth of its lifetime has passed, which moves its expiry
/// forward (expiry on inactivity) without a `Set-Cookie` on every answer.
fn outgoing(
    incoming: &Incoming,
    data: &SessionData,
    change: Change,
    now: SystemTime,
    options: &WebOptions,
) -> Outgoing {
    let signed_in = data.user.is_some();
    match change {
        Change::SignedOut => Outgoing::Clear,
        Change::Written if signed_in => Outgoing::Issue(data.clone()),
        Change::Written => Outgoing::Clear,
        Change::EpochRaised => match incoming {
            Incoming::Valid { expires } if signed_in => {
                if refresh_due(*expires, now, options) {
                    Outgoing::Issue(data.clone())
                } else {
                    Outgoing::Epoch(data.epoch)
                }
            }
            _ => Outgoing::Keep,
        },
        Change::Untouched => match incoming {
            Incoming::Absent => Outgoing::Keep,
            Incoming::Refused(_) => Outgoing::Clear,
            Incoming::Valid { expires } => {
                if signed_in && refresh_due(*expires, now, options) {
                    Outgoing::Issue(data.clone())
                } else {
                    Outgoing::Keep
                }
            }
        },
    }
}

/// Whether a tenth of the session's lifetime has passed since its cookie was signed: signing it again
/// then moves its expiry forward (expiry on inactivity) without a signature on every answer.
fn refresh_due(expires: SystemTime, now: SystemTime, options: &WebOptions) -> bool {
    let lifetime = options.session_inactivity;
    let left = expires.duration_since(now).unwrap_or_default();
    left < lifetime - lifetime / 10
}

/// A cookie of ours with its attributes (HttpOnly, SameSite=Lax, Secure under TLS, the whole site).
fn cookie(
    name: &'static str,
    value: String,
    options: &WebOptions,
) -> cookie::CookieBuilder<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(options.secure_cookies)
        .path("/")
}

fn max_age(options: &WebOptions) -> cookie::time::Duration {
    cookie::time::Duration::seconds(
        i64::try_from(options.session_inactivity.as_secs()).unwrap_or(i64::MAX / 2),
    )
}

/// The `Set-Cookie` value that carries `data`'s user, signed, or clears the cookie when `data` is
/// `None`.
fn set_cookie(data: Option<&SessionData>, now: SystemTime, options: &WebOptions) -> String {
    let built = match data.and_then(|data| data.user.as_ref()) {
        Some(user) => {
            let expires = now.checked_add(options.session_inactivity).unwrap_or(now);
            cookie(
                COOKIE_NAME,
                signed_cookie::sign(&options.session_key, user, expires),
                options,
            )
            .max_age(max_age(options))
        }
        None => cookie(COOKIE_NAME, String::new(), options).removal(),
    };
    built.build().to_string()
}

/// The `Set-Cookie` value that carries `epoch`, or clears the epoch cookie when `None`.
fn set_epoch_cookie(epoch: Option<Epoch>, options: &WebOptions) -> String {
    let built = match epoch {
        Some(epoch) => cookie(EPOCH_COOKIE, epoch.0.to_string(), options).max_age(max_age(options)),
        None => cookie(EPOCH_COOKIE, String::new(), options).removal(),
    };
    built.build().to_string()
}

/// The session layer: puts the request's [`SessionSlot`] in its extensions and, after the handler,
/// answers with `Set-Cookie` when the session changed, is due for a refresh, or must be cleared.
pub(super) async fn cookies(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Response {
    let options = state.options();
    let now = SystemTime::now();
    let (data, incoming) = read_cookie(request.headers(), &options.session_key, now);
    if let Incoming::Refused(reason) = &incoming {
        tracing::debug!(%reason, "session cookie refused");
    }
    let slot = SessionSlot::new(data);
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let decision = {
        let state = slot.lock();
        outgoing(&incoming, &state.data, state.change, now, options)
    };
    let values = match decision {
        Outgoing::Keep => return response,
        Outgoing::Issue(data) => vec![
            set_cookie(Some(&data), now, options),
            set_epoch_cookie(Some(data.epoch), options),
        ],
        Outgoing::Epoch(epoch) => vec![set_epoch_cookie(Some(epoch), options)],
        Outgoing::Clear => vec![
            set_cookie(None, now, options),
            set_epoch_cookie(None, options),
        ],
    };
    for value in values {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(error) => tracing::error!(%error, "a session cookie is not a header value"),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn options() -> WebOptions {
        WebOptions {
            session_inactivity: 10 * DAY,
            ..WebOptions::default()
        }
    }

    fn ada() -> SessionData {
        SessionData {
            user: Some(SessionUser {
                id: UserId::parse("00000000-0000-4000-8000-00000000000a").unwrap(),
                username: "ada".into(),
                tag: UserTag::new(1).unwrap(),
            }),
            epoch: Epoch(7),
        }
    }

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn a_valid_cookie_among_others_is_read_back() {
        let options = options();
        let now = SystemTime::now();
        let value = signed_cookie::sign(&options.session_key, &ada().user.unwrap(), now + DAY);

        let (data, incoming) = read_cookie(
            &headers(&format!(
                "theme=dark; {COOKIE_NAME}=garbage; {EPOCH_COOKIE}=3; {COOKIE_NAME}={value}; {EPOCH_COOKIE}=7"
            )),
            &options.session_key,
            now,
        );

        assert_eq!(data, ada());
        assert_eq!(
            incoming,
            Incoming::Valid {
                expires: signed_cookie::verify::<SessionUser>(&options.session_key, &value, now)
                    .unwrap()
                    .expires
            }
        );
    }

    #[test]
    fn a_refused_cookie_reads_as_no_session() {
        let options = options();

        let (data, incoming) = read_cookie(
            &headers(&format!("{COOKIE_NAME}=garbage")),
            &options.session_key,
            SystemTime::now(),
        );

        assert_eq!(data, SessionData::default());
        assert_eq!(incoming, Incoming::Refused(Refused::Malformed));
    }

    #[test]
    fn a_fresh_cookie_is_kept_or_only_its_epoch_set_and_an_aging_one_signed_again() {
        let options = options();
        let now = SystemTime::now();
        let fresh = Incoming::Valid {
            expires: now + 10 * DAY,
        };
        let aging = Incoming::Valid {
            expires: now + 8 * DAY,
        };

        assert_eq!(
            outgoing(&fresh, &ada(), Change::Untouched, now, &options),
            Outgoing::Keep
        );
        assert_eq!(
            outgoing(&fresh, &ada(), Change::EpochRaised, now, &options),
            Outgoing::Epoch(Epoch(7))
        );
        for change in [Change::Untouched, Change::EpochRaised] {
            assert_eq!(
                outgoing(&aging, &ada(), change, now, &options),
                Outgoing::Issue(ada())
            );
        }
        let epoch = set_epoch_cookie(Some(Epoch(7)), &options);
        let epoch = Cookie::parse(epoch.as_str()).unwrap();
        assert_eq!((epoch.name(), epoch.value()), (EPOCH_COOKIE, "7"));
        assert_eq!(epoch.http_only(), Some(true));
    }

    #[test]
    fn an_epoch_without_a_valid_session_is_ignored() {
        let options = options();

        let (data, incoming) = read_cookie(
            &headers(&format!("{EPOCH_COOKIE}=9; {COOKIE_NAME}=garbage")),
            &options.session_key,
            SystemTime::now(),
        );

        assert_eq!(data, SessionData::default());
        assert_eq!(incoming, Incoming::Refused(Refused::Malformed));
    }

    #[test]
    fn a_written_session_is_issued_and_a_signed_out_or_refused_one_cleared() {
        let options = options();
        let now = SystemTime::now();
        let valid = Incoming::Valid {
            expires: now + 10 * DAY,
        };
        let refused = Incoming::Refused(Refused::BadSignature);
        let anonymous = SessionData::default();

        assert_eq!(
            outgoing(&valid, &ada(), Change::Written, now, &options),
            Outgoing::Issue(ada())
        );
        assert_eq!(
            outgoing(&refused, &ada(), Change::Written, now, &options),
            Outgoing::Issue(ada())
        );
        assert_eq!(
            outgoing(&valid, &anonymous, Change::SignedOut, now, &options),
            Outgoing::Clear
        );
        assert_eq!(
            outgoing(&refused, &anonymous, Change::Untouched, now, &options),
            Outgoing::Clear
        );
        assert_eq!(
            outgoing(
                &Incoming::Absent,
                &anonymous,
                Change::Untouched,
                now,
                &options
            ),
            Outgoing::Keep
        );
    }

    #[test]
    fn the_cookie_has_the_documented_attributes_and_an_expiry_inside() {
        let options = options();
        let now = SystemTime::now();

        let issued = set_cookie(Some(&ada()), now, &options);
        let secure = set_cookie(
            Some(&ada()),
            now,
            &WebOptions {
                secure_cookies: true,
                ..options.clone()
            },
        );
        let cleared = set_cookie(None, now, &options);

        let cookie = Cookie::parse(issued.as_str()).unwrap();
        assert_eq!(cookie.name(), COOKIE_NAME);
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.secure(), None);
        assert_eq!(
            cookie.max_age(),
            Some(cookie::time::Duration::seconds(10 * 24 * 3600))
        );
        let verified =
            signed_cookie::verify::<SessionUser>(&options.session_key, cookie.value(), now)
                .unwrap();
        assert_eq!(Some(verified.data), ada().user);
        assert!(verified.expires > now + 10 * DAY - Duration::from_secs(2));
        assert_eq!(Cookie::parse(secure.as_str()).unwrap().secure(), Some(true));
        let cleared = Cookie::parse(cleared.as_str()).unwrap();
        assert_eq!(cleared.value(), "");
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    }
}
