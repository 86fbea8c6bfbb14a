//! The conversation routes of the JSON API: chats, read markers, edits, replies, reactions, search, and
//! their live events.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{EventReader, TestApp, TestUser, spawn_app};

const WAIT: Duration = Duration::from_secs(5);

async fn two_members(app: &TestApp) -> (TestUser, TestUser, String) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;
    (alice, bob, group)
}

async fn chats(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let answer = app.send(user.call(Method::GET, "/api/chats")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["chats"].as_array().expect("chats").clone()
}

#[tokio::test]
async fn the_chat_list_and_read_markers_over_the_api() {
    let app = spawn_app().await;
    let (alice, bob, group) = two_members(&app).await;
    app.post(&alice, &group, "one").await;
    let two = app.post(&alice, &group, "two").await;
    let dm = app
        .send(
            alice
                .call(Method::POST, &format!("/api/users/{}/messages", bob.path()))
                .json(json!({ "content": "psst" })),
        )
        .await
        .json();

    let listed = chats(&app, &bob).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kind"], "direct");
    assert_eq!(listed[0]["chat"], dm["chat"]);
    assert_eq!(listed[0]["user"]["id"], json!(alice.id));
    assert_eq!(listed[0]["last_message"]["content"], "psst");
    assert_eq!(listed[0]["unread"], 1);
    assert_eq!(listed[1]["kind"], "group");
    assert_eq!(listed[1]["group"], json!({ "id": group, "name": "g" }));
    assert_eq!(listed[1]["unread"], 2);
    assert_eq!(listed[1]["read_epoch"], 0);
    assert!(listed[0]["activity_epoch"].as_u64() > listed[1]["activity_epoch"].as_u64());

    let marked = app
        .send(
            bob.call(Method::PUT, &format!("/api/groups/{group}/read"))
                .json(json!({ "epoch": two["epoch"] })),
        )
        .await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.text());
    assert_eq!(
        marked.json(),
        json!({ "chat": group, "read_epoch": two["epoch"] })
    );
    let backwards = app
        .send(
            bob.call(Method::PUT, &format!("/api/groups/{group}/read"))
                .json(json!({ "epoch": 1 })),
        )
        .await;
    assert_eq!(backwards.json()["read_epoch"], two["epoch"]);
    let direct = app
        .send(
            bob.call(Method::PUT, &format!("/api/users/{}/read", alice.path()))
                .json(json!({ "epoch": dm["epoch"] })),
        )
        .await;
    assert_eq!(direct.status, StatusCode::OK, "{}", direct.text());
    let listed = chats(&app, &bob).await;
    assert_eq!(
        (listed[0]["unread"].clone(), listed[1]["unread"].clone()),
        (json!(0), json!(0))
    );

    for (uri, body, status) in [
        (
            format!("/api/groups/{group}/read"),
            json!({ "epoch": "x" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/groups/{group}/read"),
            json!({}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/groups/nope/read".to_owned(),
            json!({ "epoch": 1 }),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/users/nobody/0001/read".to_owned(),
            json!({ "epoch": 1 }),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let answer = app.send(bob.call(Method::PUT, &uri).json(body)).await;
        assert_eq!(answer.status, status, "{uri}: {}", answer.text());
        assert!(!answer.error().is_empty());
    }
    let mallory = app.user("mallory").await;
    let outsider = app
        .send(
            mallory
                .call(Method::PUT, &format!("/api/groups/{group}/read"))
                .json(json!({ "epoch": 1 })),
        )
        .await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn edits_replies_and_reactions_over_the_api_and_live() {
    let app = spawn_app().await;
    let (alice, bob, group) = two_members(&app).await;
    let original = app.post(&alice, &group, "helo").await;
    let id = original["id"].as_str().expect("id").to_owned();
    let mut bobs = EventReader::open(&app, &bob, None).await;
    let mut alices = EventReader::open(&app, &alice, None).await;
    bobs.ready().await;
    alices.ready().await;

    // Edit: the sender only; live for the others.
    let by_bob = app
        .send(
            bob.call(Method::PATCH, &format!("/api/messages/{id}"))
                .json(json!({ "content": "x" })),
        )
        .await;
    assert_eq!(by_bob.status, StatusCode::FORBIDDEN);
    let edited = app
        .send(
            alice
                .call(Method::PATCH, &format!("/api/messages/{id}"))
                .json(json!({ "content": "hello" })),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    let edited = edited.json();
    assert_eq!(edited["content"], "hello");
    assert!(edited["edited_at"].is_string());
    let event = bobs.next_change(WAIT).await.expect("an edit event");
    assert_eq!(event.event, "message_edited");
    assert_eq!(
        event.json(),
        json!({
            "id": id, "chat": group, "content": "hello",
            "edited_at": edited["edited_at"], "epoch": event.json()["epoch"],
        })
    );
    // The editor's own streams hear of it too (their other tabs).
    let own = alices
        .next_change(WAIT)
        .await
        .expect("the editor's edit event");
    assert_eq!(own.event, "message_edited");
    let too_long = app
        .send(
            alice
                .call(Method::PATCH, &format!("/api/messages/{id}"))
                .json(json!({ "content": "é".repeat(4001) })),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);

    // Reply: quoted in the answer and in the live message.
    let reply = app
        .send(
            bob.call(Method::POST, &format!("/api/groups/{group}/messages"))
                .json(json!({ "content": "indeed", "reply_to": id })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let reply = reply.json();
    assert_eq!(
        reply["reply_to"],
        json!({
            "id": id,
            "sender": { "id": alice.id, "username": "alice", "tag": alice.tag },
            "excerpt": "hello",
        })
    );
    let event = alices.next_change(WAIT).await.expect("the reply");
    assert_eq!(event.event, "message");
    assert_eq!(event.json(), reply);
    for bad in [json!("not an id"), json!(uuid_like())] {
        let answer = app
            .send(
                bob.call(Method::POST, &format!("/api/groups/{group}/messages"))
                    .json(json!({ "content": "?", "reply_to": bad })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    }

    // Reactions: percent-encoded emoji, idempotent, live with the count.
    let thumbs = "%F0%9F%91%8D";
    let reacted = app
        .send(bob.call(
            Method::PUT,
            &format!("/api/messages/{id}/reactions/{thumbs}"),
        ))
        .await;
    assert_eq!(reacted.status, StatusCode::OK, "{}", reacted.text());
    assert_eq!(
        reacted.json()["reactions"],
        json!([{ "emoji": "👍", "count": 1, "me": true }])
    );
    let again = app
        .send(bob.call(
            Method::PUT,
            &format!("/api/messages/{id}/reactions/{thumbs}"),
        ))
        .await;
    assert_eq!(again.json()["reactions"], reacted.json()["reactions"]);
    let event = alices.next_change(WAIT).await.expect("the reaction");
    assert_eq!(event.event, "reaction");
    let data = event.json();
    assert_eq!(
        (
            &data["message"],
            &data["emoji"],
            &data["count"],
            &data["user"],
            &data["on"]
        ),
        (
            &json!(id),
            &json!("👍"),
            &json!(1),
            &json!(bob.id),
            &json!(true)
        )
    );
    let alices_view = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await
        .json();
    assert_eq!(
        alices_view[0]["reactions"],
        json!([{ "emoji": "👍", "count": 1, "me": false }])
    );
    let removed = app
        .send(bob.call(
            Method::DELETE,
            &format!("/api/messages/{id}/reactions/{thumbs}"),
        ))
        .await;
    assert_eq!(removed.json()["reactions"], json!([]));
    let not_emoji = app
        .send(bob.call(Method::PUT, &format!("/api/messages/{id}/reactions/ok")))
        .await;
    assert_eq!(not_emoji.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .send(bob.call(
            Method::PUT,
            &format!("/api/messages/{}/reactions/{thumbs}", uuid_like()),
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Read markers reach the user's own other streams, and nobody else's.
    let mut bobs_other_tab = EventReader::open(&app, &bob, None).await;
    bobs_other_tab.ready().await;
    app.send(
        bob.call(Method::PUT, &format!("/api/groups/{group}/read"))
            .json(json!({ "epoch": reply["epoch"] })),
    )
    .await;
    let event = bobs_other_tab.next_change(WAIT).await.expect("read");
    assert_eq!(event.event, "read");
    assert_eq!(event.json()["chat"], json!(group));
    assert_eq!(event.json()["read_epoch"], reply["epoch"]);
    while let Some(event) = alices.next_change(Duration::from_millis(300)).await {
        assert_ne!(event.event, "read", "{event:?}");
    }
}

fn uuid_like() -> String {
    "0b5c2a7e-3f7a-4f5e-9d7e-7b1c1d1e1f10".into()
}

#[tokio::test]
async fn search_over_the_api_marks_what_matched() {
    let app = spawn_app().await;
    let (alice, bob, group) = two_members(&app).await;
    app.post(&alice, &group, "Hello, world").await;
    app.post(&bob, &group, "nothing here").await;

    let answer = app
        .send(bob.call(Method::GET, "/api/search?q=hel%20WOR&limit=5"))
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let results = answer.json()["results"]
        .as_array()
        .expect("results")
        .clone();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["message"]["content"], "Hello, world");
    assert_eq!(
        results[0]["highlighted"],
        json!([
            { "text": "Hello", "mark": true },
            { "text": ", ", "mark": false },
            { "text": "world", "mark": true },
        ])
    );
    for bad in [
        "/api/search",
        "/api/search?q=%20,,",
        "/api/search?q=a&limit=x",
    ] {
        let answer = app.send(bob.call(Method::GET, bad)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let anonymous = app
        .send(super::call(Method::GET, "/api/search?q=hello"))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
