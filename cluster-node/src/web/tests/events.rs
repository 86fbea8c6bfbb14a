//! `GET /api/events`: live delivery, filtering, resumption, and the end of streams.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{EventReader, call, spawn_app, spawn_app_with, test_options};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_posted_message_arrives_on_the_streams_of_members_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mallory = app.user("mallory").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;
    let mut bobs = EventReader::open(&app, &bob, None).await;
    let mut mallorys = EventReader::open(&app, &mallory, None).await;
    bobs.ready().await;
    mallorys.ready().await;

    let posted = app.post(&alice, &group, "live!").await;

    let event = bobs.next_change(WAIT).await.expect("an event");
    assert_eq!(event.event, "message");
    assert_eq!(
        event.id.as_deref(),
        Some(posted["epoch"].to_string().as_str())
    );
    assert_eq!(event.json(), posted);
    assert_eq!(mallorys.next_change(QUIET).await, None);
}

#[tokio::test]
async fn a_direct_message_arrives_on_the_receivers_stream() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut bobs = EventReader::open(&app, &bob, None).await;
    bobs.ready().await;

    let sent = app
        .send(
            alice
                .call(Method::POST, &format!("/api/users/{}/messages", bob.path()))
                .json(json!({ "content": "just us" })),
        )
        .await
        .json();

    let event = bobs.next_change(WAIT).await.expect("an event");
    assert_eq!(event.event, "message");
    assert_eq!(event.json(), sent);
}

#[tokio::test]
async fn membership_changes_and_deletions_are_announced() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "club").await;
    let mut bobs = EventReader::open(&app, &bob, None).await;
    bobs.ready().await;

    app.add(&alice, &group, &bob).await;
    let message = app.post(&alice, &group, "soon gone").await;
    let id = message["id"].as_str().expect("id");
    app.send(alice.call(Method::DELETE, &format!("/api/messages/{id}")))
        .await;
    app.send(alice.call(Method::DELETE, &format!("/api/groups/{group}")))
        .await;

    let joined = bobs.next_change(WAIT).await.expect("joined");
    assert_eq!(joined.event, "membership");
    assert_eq!(joined.json()["change"], "joined");
    assert_eq!(
        joined.json()["group"],
        json!({ "id": group, "name": "club" })
    );
    assert_eq!(joined.json()["user"]["id"], bob.id);
    assert_eq!(
        bobs.next_change(WAIT).await.expect("message").event,
        "message"
    );
    let deleted = bobs.next_change(WAIT).await.expect("deleted");
    assert_eq!(deleted.event, "message_deleted");
    assert_eq!(deleted.json()["id"], id);
    assert_eq!(deleted.json()["chat"], group.as_str());
    let gone = bobs.next_change(WAIT).await.expect("group deleted");
    assert_eq!(gone.json()["change"], "deleted");
}

/// Opens a stream, reads one message, and returns its epoch: where a client would resume from.
async fn last_seen(app: &super::TestApp, user: &super::TestUser, group: &str) -> u64 {
    let mut stream = EventReader::open(app, user, None).await;
    stream.ready().await;
    app.post(user, group, "seen").await;
    let event = stream.next_change(WAIT).await.expect("an event");
    event.id.expect("id").parse().expect("epoch")
}

async fn collect_messages(stream: &mut EventReader) -> Vec<(u64, String)> {
    let mut messages = Vec::new();
    while let Some(event) = stream.next_change(QUIET).await {
        assert_eq!(event.event, "message", "{event:?}");
        let data = event.json();
        messages.push((
            event.id.expect("id").parse().expect("epoch"),
            data["content"].as_str().expect("content").to_owned(),
        ));
    }
    messages
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_gets_exactly_the_missed_messages() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    let elsewhere = app.group(&bob, "not alice's").await;
    let resume_from = last_seen(&app, &alice, &group).await;

    // While alice's page is disconnected:
    app.post(&alice, &group, "missed 1").await;
    app.post(&bob, &elsewhere, "not for alice").await;
    app.post(&alice, &group, "missed 2").await;
    let mut resumed = EventReader::open(&app, &alice, Some(resume_from)).await;
    resumed.ready().await;
    let caught_up = collect_messages(&mut resumed).await;
    app.post(&alice, &group, "live again").await;
    let live = collect_messages(&mut resumed).await;

    let contents: Vec<&str> = caught_up.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(contents, vec!["missed 1", "missed 2"]);
    assert!(caught_up.iter().all(|(epoch, _)| *epoch > resume_from));
    assert!(caught_up.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].1, "live again");
}

#[tokio::test]
async fn a_resume_from_before_the_replay_buffer_catches_up_through_the_service() {
    let mut options = test_options();
    options.event_replay_capacity = 2;
    let app = spawn_app_with(options).await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;
    let resume_from = last_seen(&app, &alice, &group).await;
    for number in 1..=5 {
        app.post(&alice, &group, &format!("missed {number}")).await;
    }

    let mut resumed = EventReader::open(&app, &alice, Some(resume_from)).await;
    resumed.ready().await;
    let caught_up = collect_messages(&mut resumed).await;

    let contents: Vec<&str> = caught_up.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        contents,
        vec!["missed 1", "missed 2", "missed 3", "missed 4", "missed 5"]
    );
    assert!(caught_up.windows(2).all(|pair| pair[0].0 < pair[1].0));
}

#[tokio::test]
async fn a_page_resumes_from_the_epoch_it_rendered_at_with_after() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;
    let rendered = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await
        .epoch();
    app.post(&alice, &group, "after render").await;

    let mut stream =
        EventReader::open_uri(&app, &alice, &format!("/api/events?after={rendered}"), None).await;
    stream.ready().await;
    let caught_up = collect_messages(&mut stream).await;

    assert_eq!(caught_up.len(), 1);
    assert_eq!(caught_up[0].1, "after render");
}

#[tokio::test]
async fn a_malformed_last_event_id_is_400() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let answer = app
        .send(
            alice
                .call(Method::GET, "/api/events")
                .header("last-event-id", "yesterday"),
        )
        .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!answer.error().is_empty());
}

#[tokio::test]
async fn open_streams_end_when_the_node_stops_serving() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut stream = EventReader::open(&app, &alice, None).await;
    stream.ready().await;

    app.serving.send_replace(false);

    let ended =
        tokio::time::timeout(WAIT, async { while stream.next(WAIT).await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream kept going while paused");
    let refused = app
        .send(call(Method::GET, "/api/events").cookie(&alice.cookie))
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn serve_answers_on_a_real_socket_and_shuts_down_with_a_stream_open() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::super::serve(
        listener,
        None,
        app.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let registered = client
        .post(format!("{base}/api/register"))
        .json(&json!({ "username": "alice", "password": super::PASSWORD }))
        .send()
        .await
        .expect("register");
    let login = client
        .post(format!("{base}/api/login"))
        .json(&json!({
            "username": "alice",
            "tag": registered.json::<serde_json::Value>().await.expect("json")["tag"],
            "password": super::PASSWORD,
        }))
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("cookie")
        .to_owned();
    let stream = client
        .get(format!("{base}/api/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), reqwest::StatusCode::OK);

    stop.send(()).expect("server running");

    let finished = tokio::time::timeout(WAIT, server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "graceful shutdown waited on the open stream"
    );
}
