//! Ephemeral groups over the API and the event stream: created through `POST /api/groups`, served
//! under `/api/ephemeral/{id}`, messages numbered in one order, members only, never stored.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{EventReader, TestApp, TestUser, spawn_app};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

async fn create(app: &TestApp, by: &TestUser, name: &str) -> Value {
    let answer = app
        .send(
            by.call(Method::POST, "/api/groups")
                .json(json!({ "name": name, "ephemeral": true })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

async fn post(app: &TestApp, by: &TestUser, group: &str, content: &str) -> (StatusCode, Value) {
    let answer = app
        .send(
            by.call(Method::POST, &format!("/api/ephemeral/{group}/messages"))
                .json(json!({ "content": content })),
        )
        .await;
    (answer.status, answer.json())
}

#[tokio::test]
async fn an_ephemeral_group_orders_its_messages_and_shows_them_to_members_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let mut bobs = EventReader::open(&app, &bob, None).await;
    let mut carols = EventReader::open(&app, &carol, None).await;

    let created = create(&app, &alice, "right now").await;
    assert_eq!(created["ephemeral"], true);
    assert_eq!(created["name"], "right now");
    assert_eq!(created["members"][0]["id"], json!(alice.id));
    let group = created["id"].as_str().expect("an id").to_owned();
    let stored = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    assert_eq!(stored.status, StatusCode::NOT_FOUND, "not a stored group");

    let added = app
        .send(
            alice
                .call(Method::POST, &format!("/api/ephemeral/{group}/members"))
                .json(json!({ "username": "bob", "tag": bob.tag })),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    let joined = bobs
        .next_of("ephemeral_members", WAIT)
        .await
        .expect("bob is told");
    assert_eq!(joined.json()["group"], json!(group));
    assert_eq!(joined.id, None, "not in the log: no event id");

    for (who, text) in [(&alice, "one"), (&bob, "two"), (&alice, "three")] {
        let (status, message) = post(&app, who, &group, text).await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = bobs
            .next_of("ephemeral_message", WAIT)
            .await
            .expect("a message");
        let message = event.json();
        seen.push((message["seq"].as_u64().unwrap(), message["content"].clone()));
    }
    assert_eq!(
        seen,
        vec![(1, json!("one")), (2, json!("two")), (3, json!("three"))]
    );
    assert_eq!(carols.next_of("ephemeral_message", QUIET).await, None);

    let shown = app
        .send(bob.call(Method::GET, &format!("/api/ephemeral/{group}")))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    let seqs: Vec<u64> = shown.json()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let peek = app
        .send(carol.call(Method::GET, &format!("/api/ephemeral/{group}")))
        .await;
    assert_eq!(peek.status, StatusCode::FORBIDDEN);
    let (status, _) = post(&app, &carol, &group, "let me in").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&app, &alice, &group, "   ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing of it in the stored data: no search hit, no conversation.
    let found = app
        .send(alice.call(Method::GET, "/api/search?q=three"))
        .await;
    assert_eq!(found.json()["results"], json!([]));
    let chats = app.send(alice.call(Method::GET, "/api/chats")).await;
    assert_eq!(chats.json()["chats"], json!([]));
}

#[tokio::test]
async fn the_last_member_to_leave_ends_the_group() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut alices = EventReader::open(&app, &alice, None).await;
    let group = create(&app, &alice, "brief").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let left = app
        .send(alice.call(
            Method::DELETE,
            &format!("/api/ephemeral/{group}/members/me"),
        ))
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text());
    let ended = alices
        .next_of("ephemeral_ended", WAIT)
        .await
        .expect("ended");
    assert_eq!(ended.json(), json!({ "group": group, "reason": "empty" }));
    let gone = app
        .send(alice.call(Method::GET, &format!("/api/ephemeral/{group}")))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_pages_create_show_and_send_to_an_ephemeral_group_without_the_script() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let created = app
        .send(
            alice
                .call(Method::POST, "/groups")
                .form(&[("name", "right now"), ("ephemeral", "1")]),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let page = created.location();
    assert!(page.starts_with("/ephemeral/"), "{page}");
    let group = page.trim_start_matches("/ephemeral/").to_owned();

    let added = app
        .send(
            alice
                .call(Method::POST, &format!("{page}/members"))
                .form(&[("handle", &format!("bob#{}", bob.tag))]),
        )
        .await;
    assert_eq!(added.location(), page);
    let sent = app
        .send(
            bob.call(Method::POST, &format!("{page}/send"))
                .form(&[("content", "hello <b>there</b>")]),
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(sent.location(), page);

    let shown = app.send(alice.call(Method::GET, &page)).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    let html = shown.text();
    assert!(html.contains("right now"), "{html}");
    assert!(html.contains("data-kind=\"ephemeral\""), "{html}");
    assert!(
        html.contains("hello &#60;b&#62;there&#60;/b&#62;") && !html.contains("<b>there"),
        "escaped: {html}"
    );
    assert!(html.contains("data-seq=\"1\""), "{html}");

    // A stranger gets the error page, and a group that ended is not found.
    let carol = app.user("carol").await;
    let refused = app.send(carol.call(Method::GET, &page)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    for user in [&alice, &bob] {
        let left = app
            .send(user.call(Method::POST, &format!("{page}/leave")))
            .await;
        assert_eq!(left.location(), "/");
    }
    let gone = app
        .send(alice.call(Method::GET, &format!("/ephemeral/{group}")))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}
