//! `GET /cluster` (the page), its stylesheet and script, and `GET /cluster/state` (its data, JSON).
//!
//! The state answers 503 with `Retry-After` while the bootstrap cannot be asked; the body still
//! carries the JSON shape with the reason in `error`, so the page can show it. The page holds no inline
//! style or script, so the nameserver's Content-Security-Policy (set for every answer in `http`) can
//! forbid both.

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;

use super::ClusterView;

/// The page: markup only, no external resources.
const PAGE: &str = include_str!("page.html");
const STYLESHEET: &str = include_str!("cluster.css");
/// Draws the cluster from `/cluster/state`, polled every second.
const SCRIPT: &str = include_str!("cluster.js");

pub fn router(view: ClusterView) -> Router {
    Router::new()
        .route("/cluster", get(page))
        .route("/cluster/cluster.css", get(stylesheet))
        .route("/cluster/cluster.js", get(script))
        .route("/cluster/state", get(state))
        .with_state(view)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn stylesheet() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET).into_response()
}

async fn script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
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

    /// `path` from the cluster view's routes: its answer (body taken out) and its body as text.
    async fn get(path: &str) -> (Response, String) {
        // These routes never ask the bootstrap; an address nothing listens on will do.
        let view = ClusterView::new("127.0.0.1:9".parse().expect("literal address"));
        let request = Request::get(path)
            .body(Body::empty())
            .expect("valid request");
        let response = router(view).oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, usize::MAX).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("UTF-8 text");
        (Response::from_parts(parts, Body::empty()), text)
    }

    fn content_type(response: &Response) -> &str {
        response.headers()["content-type"].to_str().unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_is_html_whose_script_polls_the_state_every_second() {
        let (response, page) = get("/cluster").await;
        let (script_response, script) = get("/cluster/cluster.js").await;

        assert_eq!(response.status(), StatusCode::OK);
        assert!(content_type(&response).starts_with("text/html"));
        assert!(page.contains(r#"<script src="/cluster/cluster.js"></script>"#));
        assert_eq!(script_response.status(), StatusCode::OK);
        assert!(content_type(&script_response).starts_with("text/javascript"));
        assert!(script.contains(r#"fetch("/cluster/state""#));
        assert!(script.contains("POLL_MS = 1000"));
    }

    #[tokio::test]
    async fn the_page_its_style_and_script_load_nothing_from_elsewhere_and_never_write_html_from_data()
     {
        let (_, page) = get("/cluster").await;
        let (stylesheet_response, stylesheet) = get("/cluster/cluster.css").await;
        let (_, script) = get("/cluster/cluster.js").await;

        assert!(content_type(&stylesheet_response).starts_with("text/css"));
        assert!(page.contains(r#"<link rel="stylesheet" href="/cluster/cluster.css">"#));
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!script.contains(forbidden), "the script uses {forbidden}");
        }
        for text in [&page, &stylesheet, &script] {
            for external in ["src=\"http", "href=\"http", "@import", "url("] {
                assert!(!text.contains(external), "the page loads {external}");
            }
        }
    }

    #[tokio::test]
    async fn the_page_has_no_inline_style_or_script_for_the_policy_to_block() {
        let (_, page) = get("/cluster").await;

        let (_, stylesheet) = get("/cluster/cluster.css").await;

        for inline in ["<style", "style=", "<script>"] {
            assert!(!page.contains(inline), "the page has inline {inline:?}");
        }
        let handlers: Vec<&str> = page
            .split_whitespace()
            .filter(|word| word.starts_with("on") && word.contains('='))
            .collect();
        assert!(handlers.is_empty(), "inline event handlers: {handlers:?}");
        // The legend's samples, once styled inline, are styled by classes the stylesheet defines.
        let samples: Vec<&str> = page
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|word| word.starts_with("legend-"))
            .collect();
        assert!(samples.len() >= 8, "{samples:?}");
        for class in samples {
            assert!(
                stylesheet.contains(&format!(".{class} ")),
                "{class} is not styled"
            );
        }
    }
}
