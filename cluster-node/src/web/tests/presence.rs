//! Presence and typing over the API and the event stream (one node: its own users are everyone online).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{EventReader, TestApp, TestUser, spawn_app};

const WAIT: Duration = Duration::from_secs(5);
/// How long to listen for an event that must not come.
const QUIET: Duration = Duration::from_millis(300);

async fn two_members(app: &TestApp) -> (TestUser, TestUser, String) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;
    (alice, bob, group)
}

async fn online_members(app: &TestApp, user: &TestUser, group: &str) -> serde_json::Value {
    let answer = app
        .send(user.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["online"].clone()
}

#[tokio::test]
async fn a_contact_is_online_while_their_stream_is_open() {
    let app = spawn_app().await;
    let (alice, bob, group) = two_members(&app).await;
    let carol = app.user("carol").await;
    assert_eq!(online_members(&app, &alice, &group).await, json!([]));

    let mut alices = EventReader::open(&app, &alice, None).await;
    let ready = alices.next(WAIT).await.expect("ready");
    assert_eq!(ready.event, "ready");
    assert_eq!(
        ready.json()["online"],
        json!([]),
        "nobody else is connected"
    );
    assert_eq!(
        online_members(&app, &bob, &group).await,
        json!([alice.id]),
        "a live stream makes its user online"
    );

    let bobs = EventReader::open(&app, &bob, None).await;
    let came = alices.next_of("presence", WAIT).await.expect("bob comes");
    assert_eq!(came.json(), json!({ "user": bob.id, "online": true }));
    assert_eq!(came.id, None, "presence is not in the log: no event id");
    let mut online = online_members(&app, &alice, &group).await;
    online
        .as_array_mut()
        .expect("a list")
        .sort_by_key(|id| id.to_string());
    let mut both = json!([alice.id, bob.id]);
    both.as_array_mut()
        .unwrap()
        .sort_by_key(|id| id.to_string());
    assert_eq!(online, both);

    // Carol shares no chat with Alice: her coming is not Alice's business.
    let _carols = EventReader::open(&app, &carol, None).await;
    assert_eq!(alices.next_of("presence", QUIET).await, None);

    drop(bobs);
    let went = alices.next_of("presence", WAIT).await.expect("bob goes");
    assert_eq!(went.json(), json!({ "user": bob.id, "online": false }));

    // A second stream of Alice's sees Bob's presence in `ready` once he is back.
    let _bobs = EventReader::open(&app, &bob, None).await;
    let mut second = EventReader::open(&app, &alice, None).await;
    let ready = second.next(WAIT).await.expect("ready");
    assert_eq!(ready.json()["online"], json!([bob.id]));
}

#[tokio::test]
async fn someone_who_starts_sharing_a_chat_shows_up() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let _bobs = EventReader::open(&app, &bob, None).await;
    let mut alices = EventReader::open(&app, &alice, None).await;
    assert_eq!(
        alices.next(WAIT).await.expect("ready").json()["online"],
        json!([])
    );
    // Bob writes to Alice: now they share a chat, and he is online.
    let sent = app
        .send(
            bob.call(
                Method::POST,
                &format!("/api/users/{}/messages", alice.path()),
            )
            .json(json!({ "content": "hi" })),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text());
    let came = alices
        .next_of("presence", WAIT)
        .await
        .expect("bob shows up");
    assert_eq!(came.json(), json!({ "user": bob.id, "online": true }));
}

#[tokio::test]
async fn typing_reaches_the_chats_other_members_only() {
    let app = spawn_app().await;
    let (alice, bob, group) = two_members(&app).await;
    let carol = app.user("carol").await;
    let mut alices = EventReader::open(&app, &alice, None).await;
    let mut bobs = EventReader::open(&app, &bob, None).await;
    let mut carols = EventReader::open(&app, &carol, None).await;

    let typed = app
        .send(alice.call(Method::POST, &format!("/api/groups/{group}/typing")))
        .await;
    assert_eq!(typed.status, StatusCode::NO_CONTENT, "{}", typed.text());
    let notice = bobs.next_of("typing", WAIT).await.expect("bob sees it");
    assert_eq!(
        notice.json(),
        json!({
            "chat": group,
            "user": { "id": alice.id, "username": "alice", "tag": alice.tag },
        })
    );
    assert_eq!(notice.id, None);
    assert_eq!(carols.next_of("typing", QUIET).await, None, "not a member");
    assert_eq!(
        alices.next_of("typing", QUIET).await,
        None,
        "not to herself"
    );

    // A repeat right away is answered but not passed on.
    let again = app
        .send(alice.call(Method::POST, &format!("/api/groups/{group}/typing")))
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(bobs.next_of("typing", QUIET).await, None);

    // Strangers cannot make anyone appear to type.
    let stranger = app
        .send(carol.call(Method::POST, &format!("/api/groups/{group}/typing")))
        .await;
    assert_eq!(
        stranger.status,
        StatusCode::FORBIDDEN,
        "{}",
        stranger.text()
    );

    // A direct chat: only the other side hears of it.
    let direct = app
        .send(carol.call(Method::POST, &format!("/api/users/{}/typing", bob.path())))
        .await;
    assert_eq!(direct.status, StatusCode::NO_CONTENT, "{}", direct.text());
    let notice = bobs.next_of("typing", WAIT).await.expect("bob sees carol");
    assert_eq!(notice.json()["user"]["id"], json!(carol.id));
    assert!(
        notice.json()["chat"]
            .as_str()
            .is_some_and(|chat| chat.starts_with("dm:")),
        "{notice:?}"
    );
    assert_eq!(alices.next_of("typing", QUIET).await, None);
    let nobody = app
        .send(carol.call(Method::POST, "/api/users/nobody/0001/typing"))
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}
