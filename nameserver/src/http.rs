//! The HTTP side browsers see first: `GET /` sends them to a live input node (307, round-robin) or
//! shows a self-refreshing "no server" page (503); `GET /api/endpoints` lists the live input nodes, the
//! same ones redirects go to.
//!
//! Every other `GET` path is redirected too, path and query kept (`location`), so a page whose node
//! died can send its browser to `<nameserver>/groups/7` and land on the same conversation on another
//! node; the browser keeps the fragment itself. A path that could name another host is a 400.
//!
//! Every answer carries `Cache-Control: no-store`: a cached redirect would pin a browser to a node that
//! may be gone. Every answer also carries a strict Content-Security-Policy (no inline style or script,
//! nothing from elsewhere, never framed), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`. The cluster view's routes (`/cluster`, its assets, `/cluster/state`)
//! are merged in from `cluster_view`.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::cluster_view::{self, ClusterView};
use crate::directory::Directory;
use crate::location::location;

/// Shown when no input node is live; it refreshes itself, so the browser lands on the chat once one is.
const NO_SERVER_PAGE: &str = include_str!("unavailable.html");
const NO_SERVER_STYLESHEET: &str = include_str!("unavailable.css");

/// The pages here load their own stylesheets and scripts and talk only to this server; anything else
/// (inline script injected into a page, a foreign script, a frame around a page) is refused.
const CONTENT_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// Seconds a browser or client should wait before asking again; matches the page's refresh.
const RETRY_AFTER_SECONDS: &str = "2";

pub fn router(directory: Directory, cluster: ClusterView) -> Router {
    Router::new()
        .route("/", get(redirect_to_input_node))
        .route("/api/endpoints", get(list_endpoints))
        .route("/static/unavailable.css", get(no_server_stylesheet))
        .fallback(get(redirect_to_input_node))
        .with_state(directory)
        .merge(cluster_view::router(cluster))
        .layer(axum::middleware::map_response(never_cache))
        .layer(axum::middleware::map_response(harden))
}

async fn never_cache(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The security headers of every answer (see the module's documentation).
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_POLICY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn no_server_stylesheet() -> Response {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        NO_SERVER_STYLESHEET,
    )
        .into_response()
}

#[tracing::instrument(name = "http.redirect", skip_all, fields(path = uri.path()))]
async fn redirect_to_input_node(State(directory): State<Directory>, uri: Uri) -> Response {
    let requested = uri
        .path_and_query()
        .map_or("/", |requested| requested.as_str());
    let Some(endpoint) = directory.next_redirect() else {
        tracing::debug!("no input node is live");
        return no_server_available();
    };
    let target = match location(&endpoint.url, requested) {
        Ok(target) => target,
        Err(refused) => {
            tracing::debug!(%refused, "path not carried to an input node");
            return (StatusCode::BAD_REQUEST, refused.to_string()).into_response();
        }
    };
    match HeaderValue::try_from(target.as_str()) {
        Ok(location) => {
            tracing::debug!(node_id = endpoint.id.get(), location = %target, "redirecting");
            (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response()
        }
        // Unreachable for URLs that passed `BaseUrl::parse` and `location`; answered instead of
        // panicking all the same.
        Err(error) => {
            tracing::error!(%error, location = %target, "redirect target is not a valid header value");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn no_server_available() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS))],
        Html(NO_SERVER_PAGE),
    )
        .into_response()
}

/// One live input node as `/api/endpoints` shows it.
#[derive(Debug, Serialize)]
struct EndpointBody {
    id: u64,
    url: String,
}

#[tracing::instrument(name = "http.endpoints", skip_all)]
async fn list_endpoints(State(directory): State<Directory>) -> Json<Vec<EndpointBody>> {
    let endpoints = directory
        .live()
        .into_iter()
        .map(|endpoint| EndpointBody {
            id: endpoint.id.get(),
            url: endpoint.url.as_str().to_owned(),
        })
        .collect();
    Json(endpoints)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::leases::{BaseUrl, NodeId};

    /// The routes under test never ask the bootstrap; an address nothing listens on will do.
    fn router(directory: Directory) -> Router {
        super::router(
            directory,
            ClusterView::new("127.0.0.1:9".parse().expect("literal address")),
        )
    }

    fn directory_with(nodes: &[(u64, &str)]) -> Directory {
        let directory = Directory::new(Duration::from_secs(60));
        for &(id, url) in nodes {
            let id = NodeId::parse(id).expect("non-zero");
            directory.register(id, BaseUrl::parse(url).expect("valid URL"));
        }
        directory
    }

    async fn get(router: &Router, path: &str) -> Response {
        let request = Request::get(path)
            .body(Body::empty())
            .expect("valid request");
        router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router")
    }

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn the_root_redirects_to_the_front_page_of_a_live_node() {
        let router = router(directory_with(&[(4, "http://127.0.0.1:8084")]));

        let response = get(&router, "/").await;

        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            header(&response, "location"),
            Some("http://127.0.0.1:8084/")
        );
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
    }

    #[tokio::test]
    async fn the_no_server_page_explains_refreshes_and_links_to_the_cluster_view() {
        let router = router(directory_with(&[]));

        let response = get(&router, "/").await;

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&response, "retry-after"), Some("2"));
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        let content_type = header(&response, "content-type")
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let page = String::from_utf8(body.to_vec()).expect("UTF-8 page");
        assert!(page.contains("No chat server is available right now"));
        assert!(page.contains(r#"<meta http-equiv="refresh" content="2">"#));
        assert!(page.contains(r#"href="/cluster""#));
    }

    /// Every header `harden` sets, with its value.
    fn assert_hardened(response: &Response) {
        let policy = header(response, "content-security-policy").unwrap_or_default();
        assert!(policy.starts_with("default-src 'none'"), "{policy}");
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(directive), "{policy} lacks {directive}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(header(response, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(response, "x-frame-options"), Some("DENY"));
        assert_eq!(header(response, "referrer-policy"), Some("no-referrer"));
    }

    #[tokio::test]
    async fn every_page_asset_and_api_answer_carries_the_security_headers() {
        let live = router(directory_with(&[(4, "http://127.0.0.1:8084")]));
        let empty = router(directory_with(&[]));

        for (router, path) in [
            (&live, "/"),
            (&empty, "/"),
            (&live, "/static/unavailable.css"),
            (&live, "/api/endpoints"),
            (&live, "/cluster"),
            (&live, "/cluster/cluster.css"),
            (&live, "/cluster/cluster.js"),
            (&live, "/nope"),
        ] {
            let response = get(router, path).await;
            assert_hardened(&response);
        }
    }

    #[tokio::test]
    async fn the_no_server_page_has_its_style_in_a_stylesheet_the_policy_allows() {
        let router = router(directory_with(&[]));

        let page = get(&router, "/").await;
        let page = to_bytes(page.into_body(), usize::MAX).await.expect("body");
        let stylesheet = get(&router, "/static/unavailable.css").await;

        let page = String::from_utf8(page.to_vec()).expect("UTF-8 page");
        assert!(page.contains(r#"<link rel="stylesheet" href="/static/unavailable.css">"#));
        for inline in ["<style", "style=", "<script"] {
            assert!(!page.contains(inline), "the page has inline {inline:?}");
        }
        assert_eq!(stylesheet.status(), StatusCode::OK);
        let content_type = header(&stylesheet, "content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/css"), "{content_type}");
    }

    #[tokio::test]
    async fn any_other_path_is_redirected_with_its_path_and_query() {
        let router = router(directory_with(&[(1, "http://127.0.0.1:8081")]));

        for requested in [
            "/nope",
            "/groups/7",
            "/groups/7?after=12",
            "/direct/ada%230218?q=%2F%3F",
            "/api/groups",
            "/cluster/",
            "/?welcome=1",
        ] {
            let response = get(&router, requested).await;
            assert_eq!(
                response.status(),
                StatusCode::TEMPORARY_REDIRECT,
                "{requested}"
            );
            let expected = format!("http://127.0.0.1:8081{requested}");
            assert_eq!(header(&response, "location"), Some(expected.as_str()));
            assert_eq!(header(&response, "cache-control"), Some("no-store"));
        }
    }

    #[tokio::test]
    async fn the_nameservers_own_routes_are_not_redirected() {
        let router = router(directory_with(&[(1, "http://127.0.0.1:8081")]));

        for path in [
            "/api/endpoints",
            "/static/unavailable.css",
            "/cluster",
            "/cluster/cluster.css",
            "/cluster/cluster.js",
        ] {
            let response = get(&router, path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "location"), None, "{path}");
        }
    }

    #[tokio::test]
    async fn a_path_that_could_name_another_host_is_a_bad_request() {
        let router = router(directory_with(&[(1, "http://127.0.0.1:8081")]));

        for requested in [
            "//evil.example/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "/a\\b",
            "/caf\u{e9}",
        ] {
            let response = get(&router, requested).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{requested}");
            assert_eq!(header(&response, "location"), None, "{requested}");
            assert_hardened(&response);
        }
    }

    #[tokio::test]
    async fn a_deep_path_without_a_live_node_gets_the_no_server_page() {
        let router = router(directory_with(&[]));

        let response = get(&router, "/groups/7").await;

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&response, "retry-after"), Some("2"));
    }

    #[tokio::test]
    async fn only_reads_are_redirected() {
        let router = router(directory_with(&[(1, "http://127.0.0.1:8081")]));
        let request = Request::post("/api/groups")
            .body(Body::empty())
            .expect("valid request");

        let response = router.oneshot(request).await.expect("infallible router");

        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "location"), None);
    }
}
