//! `GET /` and any other path that is not the nameserver's own: a 307 to the same path and query on a
//! live input node, round-robin, or a 503 page when there is none; never to another host.

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

/// Sends `request_target` exactly as given (no client library normalising it) and answers the head of
/// the response.
async fn raw_get(app: &TestApp, request_target: &str) -> String {
    let address = app
        .http_url
        .strip_prefix("http://")
        .expect("the test nameserver speaks HTTP");
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let request =
        format!("GET {request_target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let response = String::from_utf8_lossy(&response);
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.to_ascii_lowercase()
}

#[tokio::test]
async fn the_root_alternates_between_two_live_nodes() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register 1");
    app.register(2, "http://127.0.0.1:8082")
        .await
        .expect("register 2");

    let mut targets = Vec::new();
    for _ in 0..4 {
        targets.push(app.redirect_target().await.expect("a redirect"));
    }

    assert_eq!(
        targets,
        [
            "http://127.0.0.1:8081/",
            "http://127.0.0.1:8082/",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1:8082/",
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_redirect_is_a_307_that_is_never_cached() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.headers()["location"], "http://127.0.0.1:8081/");
    assert_eq!(response.headers()["cache-control"], "no-store");
    app.stop().await;
}

#[tokio::test]
async fn the_root_answers_503_with_a_readable_page_when_no_node_is_live() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers();
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["cache-control"], "no-store");
    let content_type = headers["content-type"].to_str().expect("ASCII header");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.expect("body");
    assert!(page.contains("No chat server is available right now"));
    assert!(page.contains("every 2 seconds"));
    assert!(page.contains(r#"http-equiv="refresh" content="2""#));
    assert!(page.contains(r#"href="/cluster""#));
    app.stop().await;
}

#[tokio::test]
async fn a_deregistered_node_is_never_redirected_to() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register 1");
    app.register(2, "http://127.0.0.1:8082")
        .await
        .expect("register 2");

    app.deregister(1).await.expect("deregister 1");

    for _ in 0..3 {
        assert_eq!(
            app.redirect_target().await.as_deref(),
            Some("http://127.0.0.1:8082/")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn any_other_path_and_its_query_are_carried_to_the_node_exactly_as_sent() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    for requested in [
        "/groups/7",
        "/groups/7?after=12&limit=50",
        "/direct/ada%230218?q=%2F%3F%26",
        "/search?q=caf%C3%A9+au+lait",
        "/?welcome=1",
    ] {
        let response = app.get(requested).await;
        assert_eq!(
            response.status(),
            StatusCode::TEMPORARY_REDIRECT,
            "{requested}"
        );
        assert_eq!(
            response.headers()["location"],
            format!("http://127.0.0.1:8081{requested}").as_str()
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    app.stop().await;
}

#[tokio::test]
async fn deep_links_alternate_between_live_nodes_like_the_root() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register 1");
    app.register(2, "https://chat.example.org/chat")
        .await
        .expect("register 2");

    let first = app.redirect_target_of("/groups/7?after=3").await;
    let second = app.redirect_target_of("/groups/7?after=3").await;

    assert_eq!(
        first.as_deref(),
        Some("http://127.0.0.1:8081/groups/7?after=3")
    );
    assert_eq!(
        second.as_deref(),
        Some("https://chat.example.org/chat/groups/7?after=3")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_path_that_could_name_another_host_is_refused() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    for requested in [
        "//evil.example/",
        "//evil.example/groups/7?x=1",
        "///evil.example",
    ] {
        let response = app.get(requested).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{requested}");
        assert!(response.headers().get("location").is_none(), "{requested}");
    }
    for requested in ["/\\evil.example/", "/groups\\7"] {
        let head = raw_get(&app, requested).await;
        assert!(head.starts_with("http/1.1 400"), "{requested}: {head}");
        assert!(!head.contains("location:"), "{requested}: {head}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_request_naming_another_host_is_sent_to_the_node_and_nowhere_else() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    let head = raw_get(&app, "http://evil.example/groups/7").await;

    assert!(head.starts_with("http/1.1 307"), "{head}");
    assert!(
        head.contains("\r\nlocation: http://127.0.0.1:8081/groups/7\r\n"),
        "{head}"
    );
    app.stop().await;
}
