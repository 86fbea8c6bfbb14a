//! Sessions, authorisation, CSRF and escaping.

use std::time::{Duration, SystemTime};

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use tokio::sync::watch;

use super::{PASSWORD, TestApp, call, spawn_app, test_options};
use crate::service::{LocalService, ServiceOptions};
use crate::storage::Database;
use crate::web::{WebOptions, WebState, router, signed_cookie};

const XSS: &str = "<script>alert('x')</script><img src=x onerror=alert(1)>";
const XSS_NAME: &str = "<script>alert('g')</script>";

#[tokio::test]
async fn api_routes_without_a_session_are_401_in_our_format() {
    let app = spawn_app().await;
    let group = "00000000-0000-4000-8000-000000000000";

    for (method, uri) in [
        (Method::GET, "/api/me".to_owned()),
        (Method::GET, "/api/groups".to_owned()),
        (Method::POST, "/api/groups".to_owned()),
        (Method::GET, format!("/api/groups/{group}")),
        (Method::DELETE, format!("/api/groups/{group}")),
        (Method::POST, format!("/api/groups/{group}/members")),
        (Method::DELETE, format!("/api/groups/{group}/members/me")),
        (Method::GET, format!("/api/groups/{group}/messages")),
        (Method::POST, format!("/api/groups/{group}/messages")),
        (Method::GET, "/api/users/alice/0001".to_owned()),
        (Method::GET, "/api/users/alice/0001/messages".to_owned()),
        (Method::POST, "/api/users/alice/0001/messages".to_owned()),
        (Method::DELETE, format!("/api/messages/{group}")),
        (Method::GET, "/api/events".to_owned()),
    ] {
        let answer = app
            .send(call(method.clone(), &uri).json(json!({ "content": "x", "name": "x" })))
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(answer.error(), "not logged in");
        assert_eq!(answer.epoch(), 0);
    }
}

#[tokio::test]
async fn a_forged_session_cookie_is_rejected() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let forged_value = format!("chat_session={}", "A".repeat(22));
    let tampered = {
        let (name, value) = alice.cookie.split_once('=').expect("name=value");
        let mut bytes: Vec<char> = value.chars().collect();
        bytes[0] = if bytes[0] == 'A' { 'B' } else { 'A' };
        format!("{name}={}", bytes.into_iter().collect::<String>())
    };

    for cookie in [
        forged_value.as_str(),
        tampered.as_str(),
        "chat_session=garbage",
    ] {
        let answer = app.send(call(Method::GET, "/api/me").cookie(cookie)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{cookie}");
    }
    let page = app
        .send(call(Method::GET, "/groups/00000000-0000-4000-8000-000000000000").cookie(&tampered))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/");
}

#[tokio::test]
async fn logging_in_over_a_planted_cookie_never_hands_that_cookie_the_new_session() {
    let app = spawn_app().await;
    let mallory = app.user("mallory").await;
    let registered = app.register("alice").await;

    // Mallory plants her own cookie in Alice's browser, then Alice logs in (session fixation).
    let alice = app
        .send(
            call(Method::POST, "/api/login")
                .json(json!({
                    "username": "alice", "tag": registered["tag"], "password": PASSWORD,
                }))
                .cookie(&mallory.cookie),
        )
        .await
        .session_cookie()
        .expect("a new cookie");
    let planted = app
        .send(call(Method::GET, "/api/me").cookie(&mallory.cookie))
        .await;
    let fresh = app.send(call(Method::GET, "/api/me").cookie(&alice)).await;

    assert_ne!(alice, mallory.cookie);
    assert_eq!(planted.json()["username"], "mallory");
    assert_eq!(fresh.json()["username"], "alice");
}

/// Two input nodes over one cluster's data, each with its own web state and session options.
async fn two_input_nodes(first: WebOptions, second: WebOptions) -> (TestApp, TestApp) {
    let database = Database::open_in_memory().await.expect("database");
    let service = LocalService::writer(database, ServiceOptions::for_tests());
    let node = |options| {
        let (serving, serving_flag) = watch::channel(true);
        let state = WebState::new(service.clone(), service.clone(), serving_flag, options);
        TestApp {
            router: router(state.clone()),
            state,
            serving,
        }
    };
    (node(first), node(second))
}

#[tokio::test]
async fn a_session_from_one_input_node_is_accepted_by_another_with_the_same_key() {
    let options = test_options();
    let (first, second) = two_input_nodes(options.clone(), options).await;
    let alice = first.user("alice").await;

    let me = second.send(alice.call(Method::GET, "/api/me")).await;
    let page = second.send(alice.call(Method::GET, "/")).await;

    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["id"], alice.id);
    assert!(page.text().contains("alice"), "{}", page.text());
}

#[tokio::test]
async fn a_session_signed_with_another_key_is_refused_and_cleared() {
    let (first, second) = two_input_nodes(test_options(), test_options()).await;
    let alice = first.user("alice").await;

    let me = second.send(alice.call(Method::GET, "/api/me")).await;
    let page = second
        .send(alice.call(Method::GET, "/groups/00000000-0000-4000-8000-000000000000"))
        .await;

    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.session_cookie().as_deref(), Some("chat_session="));
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/");
}

#[tokio::test]
async fn an_expired_session_is_refused_and_cleared() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (_, value) = alice.cookie.split_once('=').expect("name=value");
    let key = &app.state.options().session_key;
    let now = SystemTime::now();
    let data = signed_cookie::verify::<serde_json::Value>(key, value, now)
        .expect("a valid cookie")
        .data;
    let expired = signed_cookie::sign(key, &data, now - Duration::from_secs(1));

    let me = app
        .send(call(Method::GET, "/api/me").cookie(&format!("chat_session={expired}")))
        .await;

    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.session_cookie().as_deref(), Some("chat_session="));
}

#[tokio::test]
async fn a_forged_cookie_is_cleared_in_the_answer() {
    let app = spawn_app().await;

    let me = app
        .send(call(Method::GET, "/api/me").cookie("chat_session=garbage"))
        .await;
    let anonymous = app.send(call(Method::GET, "/api/me")).await;

    assert_eq!(me.session_cookie().as_deref(), Some("chat_session="));
    assert_eq!(
        anonymous.session_cookie(),
        None,
        "no cookie for a client without one"
    );
}

#[tokio::test]
async fn a_non_member_cannot_read_post_or_add_members() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let group = app.group(&alice, "private").await;
    app.post(&alice, &group, "secret").await;

    let show = app
        .send(mallory.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    let read = app
        .send(mallory.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;
    let post = app
        .send(
            mallory
                .call(Method::POST, &format!("/api/groups/{group}/messages"))
                .json(json!({ "content": "let me in" })),
        )
        .await;
    let add = app
        .send(
            mallory
                .call(Method::POST, &format!("/api/groups/{group}/members"))
                .json(json!({ "username": "mallory", "tag": mallory.tag })),
        )
        .await;
    let page = app
        .send(mallory.call(Method::GET, &format!("/groups/{group}")))
        .await;

    for answer in [&show, &read, &post, &add] {
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(!answer.text().contains("secret"));
    }
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.text().contains("secret"));
}

#[tokio::test]
async fn a_cross_site_post_is_refused_for_forms_and_the_api() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let form = app
        .send(
            alice
                .call(Method::POST, "/groups")
                .header("origin", "http://evil.example")
                .form(&[("name", "pwned")]),
        )
        .await;
    let api = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .header("origin", "http://evil.example")
                .json(json!({ "name": "pwned" })),
        )
        .await;
    let by_fetch_metadata = app
        .send(
            alice
                .call(Method::POST, "/groups")
                .header("sec-fetch-site", "cross-site")
                .form(&[("name", "pwned")]),
        )
        .await;
    let same_site = app
        .send(
            alice
                .call(Method::POST, "/groups")
                .header("origin", "http://chat.test")
                .header("sec-fetch-site", "same-origin")
                .form(&[("name", "fine")]),
        )
        .await;
    let groups = app.send(alice.call(Method::GET, "/api/groups")).await;

    assert_eq!(form.status, StatusCode::FORBIDDEN);
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert_eq!(api.error(), "cross-site request refused");
    assert_eq!(by_fetch_metadata.status, StatusCode::FORBIDDEN);
    assert_eq!(same_site.status, StatusCode::SEE_OTHER);
    let groups = groups.json();
    let names: Vec<&str> = groups
        .as_array()
        .expect("list")
        .iter()
        .map(|group| group["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["fine"]);
}

#[tokio::test]
async fn an_xss_payload_is_stored_as_sent_and_rendered_escaped() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, XSS_NAME).await;
    app.post(&alice, &group, XSS).await;

    let api_group = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    let api_messages = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;
    let group_page = app
        .send(alice.call(Method::GET, &format!("/groups/{group}")))
        .await;
    let home = app.send(alice.call(Method::GET, "/")).await;

    assert_eq!(api_group.json()["name"], XSS_NAME);
    assert_eq!(api_messages.json()[0]["content"], XSS);
    for page in [&group_page, &home] {
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(
            !html.contains("<script>alert"),
            "unescaped payload in {html}"
        );
        assert!(!html.contains("<img src=x"), "unescaped payload in {html}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{html}"
        );
        assert!(
            page.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("text")
                .contains("script-src 'self'")
        );
    }
}

/// The headers `middleware::security_headers` sets on every answer.
fn assert_hardened(answer: &super::Answer, what: &str) {
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(
            policy.contains(directive),
            "{what}: {policy} lacks {directive}"
        );
    }
    assert!(!policy.contains("unsafe"), "{what}: {policy}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
}

#[tokio::test]
async fn every_page_asset_api_answer_and_error_carries_the_security_headers() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let answers = [
        (
            "the signed-out home page",
            app.send(call(Method::GET, "/")).await,
        ),
        (
            "the signed-in home page",
            app.send(alice.call(Method::GET, "/")).await,
        ),
        (
            "the script",
            app.send(call(Method::GET, "/static/app.js")).await,
        ),
        (
            "the stylesheet",
            app.send(call(Method::GET, "/static/app.css")).await,
        ),
        (
            "an API answer",
            app.send(alice.call(Method::GET, "/api/me")).await,
        ),
        ("an API 401", app.send(call(Method::GET, "/api/me")).await),
        (
            "an unknown page",
            app.send(call(Method::GET, "/nope")).await,
        ),
        (
            "an unknown API path",
            app.send(call(Method::GET, "/api/nope")).await,
        ),
        (
            "a cross-site POST",
            app.send(
                alice
                    .call(Method::POST, "/api/groups")
                    .header("origin", "http://evil.example")
                    .json(json!({ "name": "x" })),
            )
            .await,
        ),
    ];
    app.serving.send_replace(false);
    let paused = app.send(call(Method::GET, "/api/me")).await;

    assert_eq!(answers[4].0, "an API answer");
    assert_eq!(answers[4].1.status, StatusCode::OK);
    for (what, answer) in &answers {
        assert_hardened(answer, what);
    }
    assert_eq!(paused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_hardened(&paused, "a 503 while paused");
}

#[test]
fn the_templates_and_script_hold_nothing_the_policy_would_block() {
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let mut checked = 0;
    for entry in std::fs::read_dir(&templates).expect("the templates folder") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|ext| ext != "html") {
            continue;
        }
        let page = std::fs::read_to_string(&path).expect("a template");
        for inline in ["<style", "style=", "<script>", "javascript:"] {
            assert!(!page.contains(inline), "{path:?} has inline {inline:?}");
        }
        let handlers: Vec<&str> = page
            .split_whitespace()
            .filter(|word| word.starts_with("on") && word.contains('='))
            .collect();
        assert!(handlers.is_empty(), "{path:?}: {handlers:?}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} templates found");
    let script = include_str!("../../../static/app.js");
    for forbidden in [
        "eval(",
        "new Function",
        "setAttribute(\"style\"",
        "innerHTML",
    ] {
        assert!(!script.contains(forbidden), "app.js uses {forbidden}");
    }
}

#[test]
fn pages_may_ask_the_nameservers_and_nothing_else() {
    let links = [
        "http://127.0.0.1:9999/",
        "https://ns.example:9443/some/path",
        "http://127.0.0.1:9999",
        "not a url",
    ]
    .map(crate::web::NameserverLink::new);
    let policy = crate::web::middleware::content_policy(&links);
    let policy = policy.to_str().expect("ASCII");
    assert!(
        policy.contains("; connect-src 'self' http://127.0.0.1:9999 https://ns.example:9443; "),
        "each nameserver's origin once, in order: {policy}"
    );
    for directive in ["default-src 'self'", "script-src 'self'", "base-uri 'none'"] {
        assert!(policy.contains(directive), "{policy} lacks {directive}");
    }
    assert_eq!(
        crate::web::middleware::content_policy(&[])
            .to_str()
            .expect("ASCII"),
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
}
