//! `GET /`: a 307 to a live input node, round-robin, or a 503 page when there is none.

use reqwest::StatusCode;

use crate::helpers::spawn_app;

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
