//! The middlewares of the web layer, outermost first: the security headers of every answer, the
//! `X-Chat-Epoch` header, *pause* (503 while the node is not serving), the same-origin check that stops
//! cross-site requests (CSRF), the body limit, and *auth* (401 for the API, a redirect to the login page
//! for pages).
//!
//! CSRF choice: a strict same-origin check on every non-GET request, API and forms alike, rather than
//! per-form tokens. Browsers send `Origin` (or at least `Sec-Fetch-Site`/`Referer`) on every cross-site
//! POST, so a request that shows a foreign origin through any of them is refused with 403; a request
//! with none of them does not come from a browser page and carries no ambient cookie to abuse. It
//! protects the JSON API too (a form can post `text/plain` that looks like JSON), needs no state, and
//! keeps pages cacheable. SameSite=Lax cookies are a second line.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::error::AppError;
use super::session::{ChatSession, SessionSlot};
use super::{EPOCH_HEADER, MAX_BODY_BYTES, WebState};

/// The pages use only their own stylesheet and script and talk only to this server, so the policy
/// allows nothing else: no inline script (an injected `<script>` does not run), no foreign resource, no
/// frame around a page. The one exception is `connect-src`, which [`content_policy`] widens to the
/// nameservers' origins: when this node dies a page asks them, in order, which one still answers before
/// it leaves (a browser that navigates to a dead nameserver cannot come back to try the next).
const CONTENT_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// The Content-Security-Policy of every answer: [`CONTENT_POLICY`] with `connect-src` naming the
/// nameservers' origins too (scheme, host and port only; an address that does not parse is left out).
pub(super) fn content_policy(nameservers: &[super::NameserverLink]) -> HeaderValue {
    let mut sources = String::from("connect-src 'self'");
    for link in nameservers {
        let Ok(uri) = link.url.parse::<axum::http::Uri>() else {
            continue;
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            continue;
        };
        let origin = format!(" {scheme}://{authority}");
        if !sources.contains(&origin) {
            sources.push_str(&origin);
        }
    }
    let policy = CONTENT_POLICY.replace("connect-src 'self'", &sources);
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_POLICY))
}

/// Headers that keep every answer — pages, assets, API, errors — from being framed, sniffed into another
/// type, fed foreign scripts or leaking its URL to other sites. On every answer rather than on pages
/// only: a JSON answer opened as a document gets the same protection.
pub(super) async fn security_headers(
    State(policy): State<HeaderValue>,
    mut response: Response,
) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn is_api(request: &Request) -> bool {
    let path = request.uri().path();
    path == "/api" || path.starts_with("/api/")
}

/// Counts every request and times it (to the response head) by route pattern, method and status. The
/// route is the matched pattern (`/api/groups/{id}/messages`), never the raw path, so the number of
/// series stays bounded; requests that matched no route are counted as `unmatched`.
pub(super) async fn record_metrics(
    State(metrics): State<Option<Arc<crate::metrics::Metrics>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(metrics) = metrics else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_request_seconds
        .get_or_create(&crate::metrics::RouteLabel {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&crate::metrics::HttpLabel {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// An error as JSON for the API and as a small HTML page elsewhere.
pub(super) fn error_response(api: bool, error: AppError) -> Response {
    if api {
        return error.into_response();
    }
    let mut response = super::layout::error_page(&error);
    error.decorate(&mut response);
    response
}

/// Adds `X-Chat-Epoch` to every API response that does not carry one yet (handlers set it from the
/// answering database): the session's epoch, 0 for a client without a session.
pub(super) async fn epoch_header(request: Request, next: Next) -> Response {
    let api = is_api(&request);
    let session = session_of(&request);
    let mut response = next.run(request).await;
    if api && !response.headers().contains_key(EPOCH_HEADER) {
        let epoch = match session {
            Some(session) => ChatSession::load(session)
                .await
                .map(|session| session.epoch().0)
                .unwrap_or(0),
            None => 0,
        };
        response
            .headers_mut()
            .insert(EPOCH_HEADER, HeaderValue::from(epoch));
    }
    response
}

/// 503 with `Retry-After` while the node's serving flag is down (starting, changing role, stopping).
pub(super) async fn pause(State(state): State<WebState>, request: Request, next: Next) -> Response {
    if state.is_serving() {
        return next.run(request).await;
    }
    let error = AppError::Unavailable {
        message: "this node is not serving right now, retry in a moment".into(),
        retry_after: state.options.retry_after,
    };
    error_response(is_api(&request), error)
}

/// The origin (`scheme://host[:port]`) part of a URL, or `None` for anything that is not one.
fn origin_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then_some(authority)
}

/// Whether `headers` show that a request came from a page of another origin than `host`.
pub(super) fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(host) = text(header::HOST.as_str()) else {
        // Without Host (HTTP/1.0, tests) only a request that names an origin can be judged: refuse it.
        return text("origin").is_some() || text("referer").is_some();
    };
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        return origin_of(origin) != Some(host);
    }
    if let Some(referer) = text(header::REFERER.as_str()) {
        return origin_of(referer) != Some(host);
    }
    false
}

/// 403 for a non-GET request from another site (see the module documentation).
pub(super) async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && is_cross_site(request.headers()) {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            "refused a cross-site request"
        );
        let error = AppError::Forbidden("cross-site request refused".into());
        return error_response(is_api(&request), error);
    }
    next.run(request).await
}

/// 413 in our format for a body declared larger than the limit (a body that only turns out larger
/// while being read is refused by the extractors, also with 413).
pub(super) async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return error_response(is_api(&request), AppError::PayloadTooLarge);
    }
    next.run(request).await
}

async fn signed_in(session: Option<SessionSlot>) -> Result<bool, AppError> {
    let Some(session) = session else {
        return Err(AppError::Internal("no session layer".into()));
    };
    Ok(ChatSession::load(session).await?.user().is_some())
}

fn session_of(request: &Request) -> Option<SessionSlot> {
    request.extensions().get::<SessionSlot>().cloned()
}

/// *auth* for the API: 401 `{"error"}` without a signed-in user.
pub(super) async fn require_api_user(request: Request, next: Next) -> Response {
    match signed_in(session_of(&request)).await {
        Ok(true) => next.run(request).await,
        Ok(false) => AppError::unauthenticated().into_response(),
        Err(error) => error.into_response(),
    }
}

/// *auth* for pages: a redirect to the login page without a signed-in user.
pub(super) async fn require_page_user(request: Request, next: Next) -> Response {
    match signed_in(session_of(&request)).await {
        Ok(true) => next.run(request).await,
        Ok(false) => Redirect::to("/").into_response(),
        Err(error) => error_response(false, error),
    }
}

/// A plain 404 page or JSON for unknown paths.
pub(super) async fn not_found(request: Request<Body>) -> Response {
    error_response(is_api(&request), AppError::NotFound("no such page".into()))
}

/// 405 in our format.
pub(super) async fn method_not_allowed(request: Request<Body>) -> Response {
    let api = is_api(&request);
    let mut response = if api {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(serde_json::json!({ "error": "method not allowed" })),
        )
            .into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Html("<!doctype html><title>Method not allowed</title><p>Method not allowed.</p>"),
        )
            .into_response()
    };
    response.headers_mut().remove(header::ALLOW);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_request_from_the_same_origin_or_from_no_page_is_not_cross_site() {
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ])));
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("referer", "http://127.0.0.1:8080/groups/x?y#z"),
        ])));
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
    }

    #[test]
    fn a_foreign_origin_referer_or_fetch_site_is_cross_site() {
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8081"),
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null"),
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("referer", "http://evil.example/page"),
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://127.0.0.1:8080"),
        ])));
    }
}
