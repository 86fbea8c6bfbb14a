//! Leases over gRPC: granting, renewing, expiry, deregistration, and refused input.

use std::time::Duration;

use tonic::Code;

use crate::helpers::{endpoint, spawn_app, spawn_app_with_lease};

#[tokio::test]
async fn registering_grants_a_lease_of_the_configured_length() {
    let mut app = spawn_app().await;

    let ttl_ms = app
        .register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    assert_eq!(ttl_ms, 3000);
    assert_eq!(app.renew(1).await.expect("renew"), 3000);
    assert_eq!(app.list().await, vec![endpoint(1, "http://127.0.0.1:8081")]);
    app.stop().await;
}

#[tokio::test]
async fn list_shows_live_nodes_ordered_by_id_with_their_latest_url() {
    let mut app = spawn_app().await;
    app.register(7, "http://127.0.0.1:8087")
        .await
        .expect("register 7");
    app.register(2, "http://127.0.0.1:8082/")
        .await
        .expect("register 2");
    app.register(7, "https://chat.example.org")
        .await
        .expect("register 7 again");

    let listed = app.list().await;

    assert_eq!(
        listed,
        vec![
            endpoint(2, "http://127.0.0.1:8082"),
            endpoint(7, "https://chat.example.org"),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn deregistration_is_immediate_and_idempotent() {
    let mut app = spawn_app().await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");

    app.deregister(1).await.expect("deregister");

    assert!(app.list().await.is_empty());
    assert_eq!(app.redirect_target().await, None);
    app.deregister(1)
        .await
        .expect("deregistering again is fine");
    app.stop().await;
}

#[tokio::test]
async fn renewing_an_unknown_lease_is_not_found() {
    let mut app = spawn_app().await;

    let status = app.renew(42).await.expect_err("nothing to renew");

    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("register again"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_lease_that_is_not_renewed_expires_and_cannot_be_renewed() {
    // Lease expiry against the real clock; the exact boundaries are covered by the lease table's own
    // tests with a hand-driven clock. 400 ms leaves ample slack on a loaded machine for the first check.
    let lease = Duration::from_millis(400);
    let mut app = spawn_app_with_lease(lease).await;
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register");
    assert_eq!(app.list().await.len(), 1);

    tokio::time::sleep(lease * 2).await;

    assert!(app.list().await.is_empty());
    assert_eq!(app.redirect_target().await, None);
    assert_eq!(
        app.renew(1).await.expect_err("expired").code(),
        Code::NotFound
    );
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("registering again works");
    assert_eq!(app.list().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn id_zero_is_an_invalid_argument_on_every_call() {
    let mut app = spawn_app().await;

    let statuses = [
        app.register(0, "http://127.0.0.1:8081")
            .await
            .expect_err("register"),
        app.renew(0).await.expect_err("renew"),
        app.deregister(0).await.expect_err("deregister"),
    ];

    for status in statuses {
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with("id "), "{}", status.message());
    }
    app.stop().await;
}

#[tokio::test]
async fn a_url_that_is_not_an_absolute_http_url_is_an_invalid_argument() {
    let mut app = spawn_app().await;

    for bad in [
        "",
        "127.0.0.1:8081",
        "/chat",
        "ftp://127.0.0.1:21",
        "http://h/?x=1",
        "not a url",
    ] {
        let status = app.register(1, bad).await.expect_err(bad);

        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert!(
            status.message().starts_with("url "),
            "{bad:?}: {}",
            status.message()
        );
    }
    assert!(app.list().await.is_empty());
    app.stop().await;
}
