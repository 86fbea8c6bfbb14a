//! One-shot messages for post-redirect-get: a form that fails answers `303 See Other` back to the page it
//! came from with a short-lived signed cookie (`chat_flash`) that says what went wrong and keeps what the
//! user typed; the next page that renders shows it once and clears the cookie. A reload, or the back
//! button, never re-posts a form, and the address bar never shows a POST URL.
//!
//! ```text
//!   POST /groups ──fails──► 303 Location: /          Set-Cookie: chat_flash=<signed {error, kept}>; Max-Age=60
//!   GET  /      ──────────► page with the error       Set-Cookie: chat_flash=; Max-Age=0
//! ```
//!
//! The cookie is signed with the session key, like the session itself, so it works on every input node
//! and nobody can plant a message of their own choosing in another person's page.

use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::signed_cookie;
use super::{WebOptions, WebState};

/// The flash cookie's name.
pub const FLASH_COOKIE: &str = "chat_flash";

/// How long a flash waits for the page that shows it.
const FLASH_LIFETIME: Duration = Duration::from_secs(60);

/// Longest text kept for the user (what they typed in the failed form); longer input is not kept,
/// as a cookie holds about 4 KiB.
const MAX_KEPT: usize = 1500;

/// What the next page shows once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went right (a welcome after registering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Which form failed (`login`, `register`, `chat`, `member`, `message`), so its page puts `kept`
    /// back in the right field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// What the user typed in that form (never a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// The signed payload: a field name no session cookie has, so neither verifies as the other.
#[derive(Serialize, Deserialize)]
struct Payload {
    flash: Flash,
}

impl Flash {
    /// A flash for a failed form: the error's message, and what the user typed in `form`.
    pub fn failed(error: &AppError, form: &str, kept: impl Into<String>) -> Self {
        let kept = kept.into();
        Flash {
            error: Some(error.public_message()),
            notice: None,
            form: Some(form.to_owned()),
            kept: (!kept.is_empty() && kept.len() <= MAX_KEPT).then_some(kept),
        }
    }

    pub fn notice(text: impl Into<String>) -> Self {
        Flash {
            notice: Some(text.into()),
            ..Flash::default()
        }
    }

    /// What the user typed in `form`, when that is the form that failed.
    pub fn kept_for(&self, form: &str) -> String {
        match (&self.form, &self.kept) {
            (Some(failed), Some(kept)) if failed == form => kept.clone(),
            _ => String::new(),
        }
    }
}

/// The flash the request brought (`None` without one, or with one that does not verify or expired).
#[derive(Debug, Clone, Default)]
pub struct IncomingFlash(pub Option<Flash>);

impl IncomingFlash {
    fn read(headers: &HeaderMap, options: &WebOptions, now: SystemTime) -> Self {
        let flash = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == FLASH_COOKIE && !cookie.value().is_empty())
            .find_map(|cookie| {
                signed_cookie::verify::<Payload>(&options.session_key, cookie.value(), now).ok()
            })
            .map(|verified| verified.data.flash);
        IncomingFlash(flash)
    }

    /// The flash, consumed: `response` (the page that shows it) clears the cookie.
    pub fn take(self) -> (Flash, FlashShown) {
        let shown = FlashShown(self.0.is_some());
        (self.0.unwrap_or_default(), shown)
    }
}

impl FromRequestParts<WebState> for IncomingFlash {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        Ok(IncomingFlash::read(
            &parts.headers,
            state.options(),
            SystemTime::now(),
        ))
    }
}

/// Whether the page showed a flash, and so must clear its cookie.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct FlashShown(bool);

impl FlashShown {
    /// Adds the clearing `Set-Cookie` to `response` when a flash was shown.
    pub fn clear(self, mut response: Response, options: &WebOptions) -> Response {
        if self.0 {
            append_cookie(&mut response, flash_cookie(None, options));
        }
        response
    }
}

fn flash_cookie(flash: Option<&Flash>, options: &WebOptions) -> String {
    let build = |value: String| {
        Cookie::build((FLASH_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(options.secure_cookies)
            .path("/")
    };
    match flash {
        Some(flash) => {
            let payload = Payload {
                flash: flash.clone(),
            };
            let expires = SystemTime::now() + FLASH_LIFETIME;
            build(signed_cookie::sign(&options.session_key, &payload, expires))
                .max_age(cookie::time::Duration::seconds(
                    FLASH_LIFETIME.as_secs() as i64
                ))
                .build()
                .to_string()
        }
        None => build(String::new()).removal().build().to_string(),
    }
}

fn append_cookie(response: &mut Response, cookie: String) {
    match HeaderValue::try_from(cookie) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Err(error) => tracing::error!(%error, "a flash cookie is not a header value"),
    }
}

/// `303 See Other` to `location`, carrying `flash` for the page there.
pub fn redirect_with(location: &str, flash: &Flash, options: &WebOptions) -> Response {
    let mut response = Redirect::to(location).into_response();
    append_cookie(&mut response, flash_cookie(Some(flash), options));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_headers(set_cookie: &str) -> HeaderMap {
        let cookie = Cookie::parse(set_cookie.to_owned()).expect("a cookie");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{}={}", cookie.name(), cookie.value())).unwrap(),
        );
        headers
    }

    #[test]
    fn a_flash_comes_back_once_signed_and_a_forged_or_expired_one_is_ignored() {
        let options = WebOptions::default();
        let flash = Flash::failed(
            &AppError::BadRequest("no such user".into()),
            "chat",
            "bob#12",
        );
        let set = flash_cookie(Some(&flash), &options);
        let now = SystemTime::now();

        let read = IncomingFlash::read(&request_headers(&set), &options, now);
        let forged = IncomingFlash::read(
            &request_headers(&format!("{FLASH_COOKIE}=eyJmbGFzaCI6e319.AAAA")),
            &options,
            now,
        );
        let other_key = IncomingFlash::read(
            &request_headers(&set),
            &WebOptions {
                session_key: signed_cookie::SessionKey::random(),
                ..WebOptions::default()
            },
            now,
        );
        let late = IncomingFlash::read(
            &request_headers(&set),
            &options,
            now + FLASH_LIFETIME + Duration::from_secs(5),
        );

        assert_eq!(read.0.as_ref(), Some(&flash));
        assert_eq!(flash.kept_for("chat"), "bob#12");
        assert_eq!(flash.kept_for("login"), "");
        assert!(forged.0.is_none());
        assert!(other_key.0.is_none());
        assert!(late.0.is_none());
        let cleared = Cookie::parse(flash_cookie(None, &options)).unwrap();
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    }
}
