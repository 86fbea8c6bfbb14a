//! `GET /api/groups/{id}/stats` on one node (it computes every range itself), the stats panel of a
//! group's page and its script.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{TestApp, TestUser, call, spawn_app};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap()
}

fn today() -> String {
    cluster_day(now_ms())
}

fn cluster_day(at_ms: i64) -> String {
    crate::web::rfc3339(crate::storage::UnixMillis(at_ms))[..10].to_owned()
}

async fn stats(app: &TestApp, user: &TestUser, group: &str, query: &str) -> Value {
    let answer = app
        .send(user.call(Method::GET, &format!("/api/groups/{group}/stats{query}")))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.epoch() >= 1);
    let body = answer.json();
    assert_eq!(body["epoch"].as_u64(), Some(answer.epoch()));
    body
}

fn words(body: &Value) -> Vec<(String, u64)> {
    body["top_words"]
        .as_array()
        .expect("top_words")
        .iter()
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_owned(),
                w["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn member_days(body: &Value) -> Vec<(String, String, u64)> {
    body["per_member_per_day"]
        .as_array()
        .expect("per_member_per_day")
        .iter()
        .map(|m| {
            (
                m["day"].as_str().unwrap().to_owned(),
                format!(
                    "{}#{}",
                    m["username"].as_str().unwrap(),
                    m["tag"].as_str().unwrap()
                ),
                m["messages"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn word(word: &str, count: u64) -> (String, u64) {
    (word.to_owned(), count)
}

#[tokio::test]
async fn a_member_gets_the_groups_messages_top_words_and_messages_per_member_per_day() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "crew").await;
    app.add(&alice, &group, &bob).await;
    app.post(&alice, &group, "Deploy the release tonight").await;
    app.post(&bob, &group, "The release notes are ready; deploy!")
        .await;
    app.post(&alice, &group, "release RELEASE release").await;
    let deleted = app.post(&bob, &group, "secret secret secret").await;
    let answer = app
        .send(bob.call(
            Method::DELETE,
            &format!("/api/messages/{}", deleted["id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    // Elsewhere: another group and a direct chat do not count.
    let other = app.group(&alice, "other").await;
    app.post(&alice, &other, "elsewhere elsewhere").await;
    let answer = app
        .send(
            alice
                .call(Method::POST, &format!("/api/users/{}/messages", bob.path()))
                .json(json!({ "content": "elsewhere" })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);

    let body = stats(&app, &bob, &group, "").await;

    assert_eq!(body["group"], group.as_str());
    assert_eq!(body["messages"], 3);
    assert_eq!(
        words(&body),
        [
            word("release", 5),
            word("deploy", 2),
            word("notes", 1),
            word("ready", 1),
            word("tonight", 1)
        ]
    );
    let (alice_handle, bob_handle) = (format!("alice#{}", alice.tag), format!("bob#{}", bob.tag));
    assert_eq!(
        member_days(&body),
        [(today(), alice_handle, 2), (today(), bob_handle, 1)]
    );
    assert_eq!(body["range_seconds"], 86_400);
    // Thirty days back from now: 31 daily ranges (30 when now is exactly midnight), all here.
    let computed_by = body["computed_by"].as_array().unwrap();
    assert_eq!(computed_by.len(), 1, "{body}");
    assert_eq!(computed_by[0]["node"], 1);
    assert!(
        (30..=31).contains(&computed_by[0]["ranges"].as_u64().unwrap()),
        "{body}"
    );
    assert_eq!(body["declined"], json!([]));
    let since = body["since"].as_str().unwrap();
    let until = body["until"].as_str().unwrap();
    assert!(
        since < until && since.ends_with('Z') && until.ends_with('Z'),
        "{since} {until}"
    );
}

#[tokio::test]
async fn since_takes_rfc_3339_or_unix_seconds_and_cuts_older_messages_off() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "crew").await;
    app.post(&alice, &group, "early bird").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let cut = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    app.post(&alice, &group, "late owl").await;

    let rfc3339 = crate::web::rfc3339(crate::storage::UnixMillis(cut));
    let body = stats(
        &app,
        &alice,
        &group,
        &format!("?since={rfc3339}&range=3600"),
    )
    .await;
    assert_eq!(body["messages"], 1);
    assert_eq!(words(&body), [word("late", 1), word("owl", 1)]);
    assert_eq!(body["range_seconds"], 3_600);
    assert_eq!(body["since"], rfc3339.as_str());

    let seconds = (cut - 3_600_000) / 1_000;
    let body = stats(&app, &alice, &group, &format!("?since={seconds}")).await;
    assert_eq!(body["messages"], 2);
}

#[tokio::test]
async fn whole_past_ranges_come_from_the_cache_until_an_edit_or_a_deletion_touches_them() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "crew").await;
    let since = now_ms() / 1_000;
    let first = app.post(&alice, &group, "alpha beta").await;
    app.post(&alice, &group, "gamma").await;
    // Let the messages' seconds pass, so their one-second ranges are whole and in the past.
    let wait = (since + 2) * 1_000 + 50 - now_ms();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let query = format!("?since={since}&range=1");
    let cached = |body: &Value| body["computed_by"][0]["cached"].as_u64().unwrap();
    let ranges = |body: &Value| body["computed_by"][0]["ranges"].as_u64().unwrap();

    let cold = stats(&app, &alice, &group, &query).await;
    assert_eq!(cold["messages"], 2);
    assert_eq!(cached(&cold), 0);
    let warm = stats(&app, &alice, &group, &query).await;
    assert_eq!(warm["messages"], 2);
    assert_eq!(words(&warm), words(&cold));
    // Every range but the last (it ends now) is whole and was kept by the first query.
    assert_eq!(cached(&warm), ranges(&cold) - 1, "{warm}");

    let edited = app
        .send(
            alice
                .call(
                    Method::PATCH,
                    &format!("/api/messages/{}", first["id"].as_str().unwrap()),
                )
                .json(json!({ "content": "delta" })),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    let after_edit = stats(&app, &alice, &group, &query).await;
    assert_eq!(words(&after_edit), [word("delta", 1), word("gamma", 1)]);

    let deleted = app
        .send(alice.call(
            Method::DELETE,
            &format!("/api/messages/{}", first["id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let after_delete = stats(&app, &alice, &group, &query).await;
    assert_eq!(after_delete["messages"], 1);
    assert_eq!(words(&after_delete), [word("gamma", 1)]);
}

#[tokio::test]
async fn only_members_signed_in_get_a_groups_stats() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let group = app.group(&alice, "crew").await;
    app.post(&alice, &group, "private plans").await;
    let path = format!("/api/groups/{group}/stats");

    let anonymous = app.send(call(Method::GET, &path)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let stranger = app.send(mallory.call(Method::GET, &path)).await;
    let show = app
        .send(mallory.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    assert_eq!(
        stranger.status,
        StatusCode::FORBIDDEN,
        "{}",
        stranger.text()
    );
    assert_eq!(
        (stranger.status, stranger.error()),
        (show.status, show.error())
    );
    let unknown = app
        .send(alice.call(
            Method::GET,
            "/api/groups/00000000-0000-4000-8000-000000000000/stats",
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = app
        .send(alice.call(Method::GET, "/api/groups/nope/stats"))
        .await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);

    let answer = app
        .send(alice.call(Method::DELETE, &format!("/api/groups/{group}")))
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let gone = app.send(alice.call(Method::GET, &path)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_since_or_range_is_400() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "crew").await;
    let future = now_ms() / 1_000 + 3_600;
    for query in [
        "?since=yesterday".to_owned(),
        "?since=2026-01-01".to_owned(),
        "?since=1.5".to_owned(),
        format!("?since={future}"),
        "?range=0".to_owned(),
        "?range=86401".to_owned(),
        "?range=hour".to_owned(),
        // A month of one-second ranges is far more than a query may have.
        "?range=1".to_owned(),
    ] {
        let answer = app
            .send(alice.call(Method::GET, &format!("/api/groups/{group}/stats{query}")))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.text()
        );
        assert!(!answer.error().is_empty(), "{query}");
    }
}

#[tokio::test]
async fn a_group_page_has_a_stats_panel_with_its_script_and_a_link_to_the_json() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "crew").await;

    let page = app
        .send(alice.call(Method::GET, &format!("/groups/{group}")))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains(r#"<script src="/static/stats.js" defer></script>"#),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"href="/api/groups/{group}/stats""#)),
        "{html}"
    );

    let direct = app
        .send(alice.call(Method::GET, &format!("/users/{}/chat", bob.path())))
        .await;
    assert_eq!(direct.status, StatusCode::OK);
    assert!(!direct.text().contains("stats.js"));
}

#[tokio::test]
async fn the_stats_script_is_served_and_builds_its_chart_without_inline_code() {
    let app = spawn_app().await;
    let script = app.send(call(Method::GET, "/static/stats.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let text = script.text();
    assert_eq!(text, include_str!("../../../static/stats.js"));
    assert!(text.contains("createElementNS"));
    for forbidden in [
        "eval(",
        "new Function",
        "innerHTML",
        "setAttribute(\"style\"",
    ] {
        assert!(!text.contains(forbidden), "stats.js uses {forbidden}");
    }
}
