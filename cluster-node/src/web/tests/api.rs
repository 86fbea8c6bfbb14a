//! Every route of the JSON API: the success path and each error status it can return.

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{PASSWORD, call, spawn_app};

#[tokio::test]
async fn registering_answers_201_with_the_user_and_a_four_digit_tag() {
    let app = spawn_app().await;

    let answer = app
        .send(
            call(Method::POST, "/api/register")
                .json(json!({ "username": "alice", "password": PASSWORD })),
        )
        .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    let user = answer.json();
    assert_eq!(user["username"], "alice");
    let tag = user["tag"].as_str().expect("tag");
    assert!(tag.len() == 4 && tag.bytes().all(|byte| byte.is_ascii_digit()));
    assert!(user["id"].is_string());
    assert!(answer.epoch() >= 1);
}

#[tokio::test]
async fn registering_an_invalid_name_or_a_short_password_is_400() {
    let app = spawn_app().await;

    for body in [
        json!({ "username": "", "password": PASSWORD }),
        json!({ "username": "x".repeat(33), "password": PASSWORD }),
        json!({ "username": "bob", "password": "short" }),
        json!({ "username": "bob" }),
    ] {
        let answer = app
            .send(call(Method::POST, "/api/register").json(body.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!answer.error().is_empty());
    }
}

#[tokio::test]
async fn logging_in_answers_the_user_with_a_session_cookie_that_me_accepts() {
    let app = spawn_app().await;
    let registered = app.register("alice").await;

    let login = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "alice",
            "tag": registered["tag"],
            "password": PASSWORD,
        })))
        .await;
    let cookie = login.session_cookie().expect("cookie");
    let me = app.send(call(Method::GET, "/api/me").cookie(&cookie)).await;

    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.json(), registered);
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json(), registered);
    let set_cookie = login.headers[header::SET_COOKIE].to_str().expect("text");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn a_numeric_tag_is_accepted_at_login() {
    let app = spawn_app().await;
    let registered = app.register("alice").await;
    let number: u16 = registered["tag"]
        .as_str()
        .expect("tag")
        .parse()
        .expect("digits");

    let login = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "alice", "tag": number, "password": PASSWORD,
        })))
        .await;

    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_both_get_401() {
    let app = spawn_app().await;
    let registered = app.register("alice").await;

    let wrong_password = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "alice", "tag": registered["tag"], "password": "not the password",
        })))
        .await;
    let unknown = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "nobody", "tag": "0001", "password": PASSWORD,
        })))
        .await;

    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.error(), unknown.error());
    assert!(wrong_password.session_cookie().is_none());
}

#[tokio::test]
async fn a_login_without_a_valid_tag_is_400() {
    let app = spawn_app().await;

    let answer = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "alice", "tag": "12", "password": PASSWORD,
        })))
        .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.error().contains("tag"), "{}", answer.error());
}

#[tokio::test]
async fn repeated_failed_logins_for_one_user_get_429_with_retry_after() {
    let app = spawn_app().await;
    let registered = app.register("alice").await;
    let attempt = |password: &str| {
        call(Method::POST, "/api/login").json(json!({
            "username": "alice", "tag": registered["tag"], "password": password,
        }))
    };
    for _ in 0..3 {
        assert_eq!(
            app.send(attempt("wrong password")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    let limited = app.send(attempt(PASSWORD)).await;

    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert!(!limited.error().is_empty());
}

#[tokio::test]
async fn repeated_login_attempts_from_one_address_get_429() {
    let mut options = super::test_options();
    options.login_attempts_per_address.max = 4;
    let app = super::spawn_app_with(options).await;
    for number in 0..4 {
        let answer = app
            .send(call(Method::POST, "/api/login").json(json!({
                "username": format!("user{number}"), "tag": "0001", "password": PASSWORD,
            })))
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }

    let limited = app
        .send(call(Method::POST, "/api/login").json(json!({
            "username": "someone-else", "tag": "0001", "password": PASSWORD,
        })))
        .await;

    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn logging_out_answers_204_and_clears_the_cookie() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let logout = app.send(alice.call(Method::POST, "/api/logout")).await;
    // The browser applies the removal: it sends the cleared cookie (or none) from then on. A copy of
    // the old value stays valid until it expires; see `web::session` on why signed cookies cannot be
    // revoked.
    let cleared = logout.session_cookie().expect("a cookie removal");
    let me = app
        .send(call(Method::GET, "/api/me").cookie(&cleared))
        .await;

    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(cleared, "chat_session=");
    let removal = logout.headers[header::SET_COOKIE].to_str().expect("text");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_profile_is_found_by_name_and_tag_and_an_unknown_one_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let found = app
        .send(alice.call(Method::GET, &format!("/api/users/{}", bob.path())))
        .await;
    let other_tag = if bob.tag == "0000" { "0001" } else { "0000" };
    let unknown = app
        .send(alice.call(Method::GET, &format!("/api/users/bob/{other_tag}")))
        .await;
    let malformed = app.send(alice.call(Method::GET, "/api/users/bob/12")).await;

    assert_eq!(found.status, StatusCode::OK);
    let profile = found.json();
    assert_eq!(profile["id"], bob.id);
    assert_eq!(profile["username"], "bob");
    assert_eq!(profile["tag"], bob.tag);
    assert!(profile["created_at"].as_str().expect("time").ends_with('Z'));
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn direct_messages_are_sent_and_listed_oldest_first_for_both_users() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let first = app
        .send(
            alice
                .call(Method::POST, &format!("/api/users/{}/messages", bob.path()))
                .json(json!({ "content": "hi bob" })),
        )
        .await;
    let second = app
        .send(
            bob.call(
                Method::POST,
                &format!("/api/users/{}/messages", alice.path()),
            )
            .json(json!({ "content": "hi alice" })),
        )
        .await;
    let alices_view = app
        .send(alice.call(Method::GET, &format!("/api/users/{}/messages", bob.path())))
        .await;
    let bobs_view = app
        .send(bob.call(
            Method::GET,
            &format!("/api/users/{}/messages", alice.path()),
        ))
        .await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    let message = first.json();
    let keys: Vec<&str> = message
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec![
            "chat",
            "content",
            "created_at",
            "edited_at",
            "epoch",
            "id",
            "reactions",
            "reply_to",
            "sender"
        ]
    );
    assert_eq!(
        message["sender"],
        json!({ "id": alice.id, "username": "alice", "tag": alice.tag })
    );
    assert_eq!(first.epoch(), message["epoch"].as_u64().expect("epoch"));
    assert_eq!(alices_view.json(), bobs_view.json());
    let contents: Vec<Value> = alices_view
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|message| message["content"].clone())
        .collect();
    assert_eq!(contents, vec![json!("hi bob"), json!("hi alice")]);
}

#[tokio::test]
async fn message_lists_page_back_by_epoch_with_a_limit() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "pages").await;
    let mut epochs = Vec::new();
    for number in 0..5 {
        let message = app.post(&alice, &group, &format!("m{number}")).await;
        epochs.push(message["epoch"].as_u64().expect("epoch"));
    }

    let newest_two = app
        .send(alice.call(
            Method::GET,
            &format!("/api/groups/{group}/messages?limit=2"),
        ))
        .await;
    let before = app
        .send(alice.call(
            Method::GET,
            &format!("/api/groups/{group}/messages?before={}&limit=2", epochs[3]),
        ))
        .await;
    let empty_params = app
        .send(alice.call(
            Method::GET,
            &format!("/api/groups/{group}/messages?before=&limit="),
        ))
        .await;
    let bad_limit = app
        .send(alice.call(
            Method::GET,
            &format!("/api/groups/{group}/messages?limit=lots"),
        ))
        .await;
    let zero_limit = app
        .send(alice.call(
            Method::GET,
            &format!("/api/groups/{group}/messages?limit=0"),
        ))
        .await;

    let contents = |answer: &super::Answer| -> Vec<String> {
        answer
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|message| message["content"].as_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(contents(&newest_two), vec!["m3", "m4"]);
    assert_eq!(contents(&before), vec!["m1", "m2"]);
    assert_eq!(contents(&empty_params).len(), 5);
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    assert_eq!(zero_limit.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_send_retried_with_the_same_client_id_is_stored_once() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "retries").await;
    let send = || {
        alice
            .call(Method::POST, &format!("/api/groups/{group}/messages"))
            .json(json!({ "content": "once", "client_id": "retry-1" }))
    };

    let first = app.send(send()).await;
    let retry = app.send(send()).await;
    let history = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(first.json()["id"], retry.json()["id"]);
    assert_eq!(history.json().as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn a_client_id_reused_for_another_chat_is_409() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let one = app.group(&alice, "one").await;
    let other = app.group(&alice, "other").await;
    app.send(
        alice
            .call(Method::POST, &format!("/api/groups/{one}/messages"))
            .json(json!({ "content": "x", "client_id": "k" })),
    )
    .await;

    let clash = app
        .send(
            alice
                .call(Method::POST, &format!("/api/groups/{other}/messages"))
                .json(json!({ "content": "y", "client_id": "k" })),
        )
        .await;

    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert!(!clash.error().is_empty());
}

#[tokio::test]
async fn message_content_must_be_one_to_four_thousand_characters() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let url = format!("/api/users/{}/messages", bob.path());

    let empty = app
        .send(
            alice
                .call(Method::POST, &url)
                .json(json!({ "content": "" })),
        )
        .await;
    let too_long = app
        .send(
            alice
                .call(Method::POST, &url)
                .json(json!({ "content": "x".repeat(4001) })),
        )
        .await;
    let longest = app
        .send(
            alice
                .call(Method::POST, &url)
                .json(json!({ "content": "é".repeat(4000) })),
        )
        .await;
    let to_nobody = app
        .send(
            alice
                .call(Method::POST, "/api/users/nobody/0001/messages")
                .json(json!({ "content": "hello?" })),
        )
        .await;

    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert_eq!(longest.status, StatusCode::CREATED);
    assert_eq!(to_nobody.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_group_is_created_with_its_creator_listed_and_shown_with_members() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let created = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .json(json!({ "name": "friends" })),
        )
        .await;
    let group = created.json();
    let id = group["id"].as_str().expect("id").to_owned();
    app.add(&alice, &id, &bob).await;
    let listed = app.send(bob.call(Method::GET, "/api/groups")).await;
    let shown = app
        .send(bob.call(Method::GET, &format!("/api/groups/{id}")))
        .await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(group["name"], "friends");
    assert_eq!(group["members"][0]["id"], alice.id);
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()[0]["id"], id.as_str());
    assert_eq!(shown.status, StatusCode::OK);
    let shown = shown.json();
    let members: Vec<&str> = shown["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| member["username"].as_str().expect("name"))
        .collect();
    assert_eq!(members, vec!["alice", "bob"]);
}

#[tokio::test]
async fn a_group_name_must_be_one_to_thirty_two_characters() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    for name in [String::new(), "n".repeat(33)] {
        let answer = app
            .send(
                alice
                    .call(Method::POST, "/api/groups")
                    .json(json!({ "name": name })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn an_unknown_or_malformed_group_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let unknown = app
        .send(alice.call(
            Method::GET,
            "/api/groups/00000000-0000-4000-8000-000000000000",
        ))
        .await;
    let malformed = app
        .send(alice.call(Method::GET, "/api/groups/not-a-uuid"))
        .await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    assert!(!unknown.error().is_empty());
}

#[tokio::test]
async fn adding_an_unknown_user_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;

    let answer = app
        .send(
            alice
                .call(Method::POST, &format!("/api/groups/{group}/members"))
                .json(json!({ "username": "ghost", "tag": "0001" })),
        )
        .await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn leaving_a_group_is_204_and_its_messages_are_then_forbidden() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;

    let leave = app
        .send(bob.call(Method::DELETE, &format!("/api/groups/{group}/members/me")))
        .await;
    let read = app
        .send(bob.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;
    let leave_again = app
        .send(bob.call(Method::DELETE, &format!("/api/groups/{group}/members/me")))
        .await;

    assert_eq!(leave.status, StatusCode::NO_CONTENT);
    assert_eq!(read.status, StatusCode::FORBIDDEN);
    assert_eq!(leave_again.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_its_creator_deletes_a_group_and_then_it_is_gone() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;

    let by_member = app
        .send(bob.call(Method::DELETE, &format!("/api/groups/{group}")))
        .await;
    let by_creator = app
        .send(alice.call(Method::DELETE, &format!("/api/groups/{group}")))
        .await;
    let afterwards = app
        .send(bob.call(Method::GET, &format!("/api/groups/{group}")))
        .await;
    let listed = app.send(bob.call(Method::GET, "/api/groups")).await;

    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(by_creator.status, StatusCode::NO_CONTENT);
    assert_eq!(afterwards.status, StatusCode::NOT_FOUND);
    assert_eq!(listed.json(), json!([]));
}

#[tokio::test]
async fn only_its_sender_deletes_a_message() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;
    let message = app.post(&alice, &group, "mine").await;
    let url = format!("/api/messages/{}", message["id"].as_str().expect("id"));

    let by_bob = app.send(bob.call(Method::DELETE, &url)).await;
    let by_alice = app.send(alice.call(Method::DELETE, &url)).await;
    let again = app.send(alice.call(Method::DELETE, &url)).await;
    let malformed = app
        .send(alice.call(Method::DELETE, "/api/messages/nope"))
        .await;
    let history = app
        .send(bob.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;

    assert_eq!(by_bob.status, StatusCode::FORBIDDEN);
    assert_eq!(by_alice.status, StatusCode::NO_CONTENT);
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    assert_eq!(history.json(), json!([]));
}

#[tokio::test]
async fn invalid_json_and_wrong_types_are_400_in_our_format() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let syntax = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .raw("application/json", "{\"name\": "),
        )
        .await;
    let wrong_type = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .json(json!({ "name": 42 })),
        )
        .await;
    let not_json = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .raw("text/plain", "name=x"),
        )
        .await;

    for answer in [syntax, wrong_type, not_json] {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(!answer.error().is_empty());
        assert!(answer.headers.contains_key(super::EPOCH_HEADER));
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_in_our_format_with_or_without_a_length() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let huge = json!({ "name": "x".repeat(70 * 1024) }).to_string();

    let declared = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .header("content-length", &huge.len().to_string())
                .raw("application/json", huge.clone()),
        )
        .await;
    let streamed = app
        .send(
            alice
                .call(Method::POST, "/api/groups")
                .raw("application/json", huge),
        )
        .await;

    for answer in [declared, streamed] {
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(answer.error().contains("64 KiB"));
    }
}

#[tokio::test]
async fn every_api_answer_carries_the_epoch_header_successes_and_errors_alike() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;
    let posted = app.post(&alice, &group, "hi").await;

    let list = app
        .send(alice.call(Method::GET, &format!("/api/groups/{group}/messages")))
        .await;
    let anonymous = app.send(call(Method::GET, "/api/me")).await;
    // Like a browser, the client keeps the cookies the last answer set: the epoch seen rides in
    // its own cookie beside the session, which reading did not re-sign.
    assert_eq!(list.session_cookie(), None);
    let cookie = format!(
        "{}; {}",
        alice.cookie,
        list.epoch_cookie()
            .expect("reading newer data raises the epoch")
    );
    let missing = app
        .send(call(Method::GET, "/api/nothing-here").cookie(&cookie))
        .await;

    assert_eq!(list.epoch(), posted["epoch"].as_u64().expect("epoch"));
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.epoch(), 0);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.epoch(), list.epoch());
    assert!(!missing.error().is_empty());
}

#[tokio::test]
async fn a_paused_node_answers_503_with_retry_after_and_recovers() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    app.serving.send_replace(false);
    let paused = app.send(alice.call(Method::GET, "/api/me")).await;
    let page = app.send(call(Method::GET, "/")).await;
    app.serving.send_replace(true);
    let resumed = app.send(alice.call(Method::GET, "/api/me")).await;

    assert_eq!(paused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(paused.headers[header::RETRY_AFTER], "1");
    assert!(!paused.error().is_empty());
    assert!(paused.headers.contains_key(super::EPOCH_HEADER));
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().contains("<html"));
    assert_eq!(resumed.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_method_is_405_and_an_unknown_route_404_in_our_format() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let wrong_method = app.send(alice.call(Method::PUT, "/api/me")).await;
    let unknown = app.send(alice.call(Method::GET, "/api/unknown")).await;

    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!wrong_method.error().is_empty());
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!unknown.error().is_empty());
}

#[tokio::test]
async fn requests_are_counted_and_timed_by_route_pattern_not_raw_path() {
    let app = spawn_app().await;
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(7, 0));
    let router = super::super::router(app.state.clone().with_metrics(metrics.clone()));
    let app = super::TestApp { router, ..app };

    let alice = app.user("alice").await;
    let group = app.group(&alice, "metrics").await;
    app.post(&alice, &group, "hello").await;
    app.send(call(Method::GET, "/api/no-such-route")).await;

    let text = metrics.render();
    assert!(
        text.contains(r#"chat_node_http_requests_total{node_id="7",method="POST",route="/api/groups/{id}/messages",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"chat_node_http_request_seconds_count{node_id="7",method="POST",route="/api/groups/{id}/messages"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains(&group), "raw paths never become labels");
}
