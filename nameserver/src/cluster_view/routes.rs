//! `GET /cluster` (the page) and `GET /cluster/state` (its data, JSON).
//!
//! The state answers 503 with `Retry-After` while the bootstrap cannot be asked; the body still
//! carries the JSON shape with the reason in `error`, so the page can show it.

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_SECURITY_POLICY, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;

use super::ClusterView;

/// The whole page: inline CSS and script, no external resources.
const PAGE: &str = include_str!("page.html");

/// The page loads nothing from elsewhere and talks only to this server.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'";

pub fn router(view: ClusterView) -> Router {
    Router::new()
        .route("/cluster", get(page))
        .route("/cluster/state", get(state))
        .with_state(view)
}

async fn page() -> Response {
    (
        [(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        )],
        Html(PAGE),
    )
        .into_response()
}

#[tracing::instrument(name = "http.cluster_state", skip_all)]
async fn state(State(view): State<ClusterView>) -> Response {
    let state = view.current().await;
    if state.error.is_some() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, HeaderValue::from_static("1"))],
            Json(state.as_ref()),
        )
            .into_response();
    }
    Json(state.as_ref()).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_page() -> (Response, String) {
        // The page never asks the bootstrap; an address nothing listens on will do.
        let view = ClusterView::new("127.0.0.1:9".parse().expect("literal address"));
        let request = Request::get("/cluster")
            .body(Body::empty())
            .expect("valid request");
        let response = router(view).oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, usize::MAX).await.expect("body");
        let page = String::from_utf8(body.to_vec()).expect("UTF-8 page");
        (Response::from_parts(parts, Body::empty()), page)
    }

    #[tokio::test]
    async fn the_page_is_html_that_polls_the_state_every_second() {
        let (response, page) = get_page().await;

        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap_or("");
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(page.contains("<script>"));
        assert!(page.contains(r#"fetch("/cluster/state""#));
        assert!(page.contains("POLL_MS = 1000"));
    }

    #[tokio::test]
    async fn the_page_loads_nothing_from_elsewhere_and_never_writes_html_from_data() {
        let (response, page) = get_page().await;

        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap_or("");
        assert!(policy.starts_with("default-src 'none'"), "{policy}");
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!page.contains(forbidden), "the page uses {forbidden}");
        }
        for external in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!page.contains(external), "the page loads {external}");
        }
    }
}
