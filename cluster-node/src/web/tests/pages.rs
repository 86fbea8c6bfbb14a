//! The HTML pages and their forms.

use axum::http::{Method, StatusCode, header};

use super::{PASSWORD, call, spawn_app};

#[tokio::test]
async fn the_home_page_offers_login_and_registration_when_signed_out() {
    let app = spawn_app().await;

    let page = app.send(call(Method::GET, "/")).await;

    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("action=\"/login\""));
    assert!(html.contains("action=\"/register\""));
    assert!(html.contains("data-nameserver=\"http://127.0.0.1:9999/\""));
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn registering_by_form_signs_in_and_welcomes_once_with_the_new_tag() {
    let app = spawn_app().await;

    let registered = app
        .send(
            call(Method::POST, "/register").form(&[("username", "alice"), ("password", PASSWORD)]),
        )
        .await;
    let home = app.follow(&registered, None).await;
    let again = app
        .send(call(Method::GET, "/").cookie(&registered.session_cookie().expect("cookie")))
        .await;

    assert_eq!(registered.status, StatusCode::SEE_OTHER);
    assert_eq!(registered.location(), "/");
    assert_eq!(home.status, StatusCode::OK);
    let html = home.text();
    assert!(html.contains("Welcome!"), "{html}");
    assert!(html.contains("No conversations yet"), "{html}");
    assert!(html.contains("alice<span class=\"tag\">#"), "{html}");
    assert!(home.clears_flash());
    assert!(!again.text().contains("Welcome!"), "the welcome shows once");
}

#[tokio::test]
async fn logging_in_by_form_with_name_hash_tag_redirects_home() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let handle = format!("alice#{}", user["tag"].as_str().expect("tag"));

    let login = app
        .send(call(Method::POST, "/login").form(&[("username", &handle), ("password", PASSWORD)]))
        .await;

    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/");
    assert!(login.session_cookie().is_some());
}

#[tokio::test]
async fn a_failed_form_login_redirects_back_and_shows_the_error_once_keeping_the_name() {
    let app = spawn_app().await;
    app.register("alice").await;

    let wrong = app
        .send(
            call(Method::POST, "/login")
                .form(&[("username", "alice#0000"), ("password", "wrong password")]),
        )
        .await;
    let shown = app.follow(&wrong, None).await;
    let reloaded = app.send(call(Method::GET, "/")).await;
    let malformed = app
        .send(call(Method::POST, "/login").form(&[("username", "alice"), ("password", "x")]))
        .await;
    let malformed_shown = app.follow(&malformed, None).await;

    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(wrong.location(), "/");
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.text().contains("wrong username, tag or password"));
    assert!(shown.text().contains("value=\"alice#0000\""));
    assert!(
        !shown.text().contains("wrong password"),
        "never the password"
    );
    assert!(shown.clears_flash());
    assert!(!reloaded.text().contains("wrong username"));
    assert_eq!(malformed.status, StatusCode::SEE_OTHER);
    assert!(malformed_shown.text().contains("name#1234"));
}

#[tokio::test]
async fn pages_redirect_to_the_login_page_without_a_session() {
    let app = spawn_app().await;

    for uri in [
        "/groups/00000000-0000-4000-8000-000000000000",
        "/users/alice/0001/chat",
    ] {
        let answer = app.send(call(Method::GET, uri)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(answer.location(), "/");
    }
    let form = app
        .send(call(Method::POST, "/groups").form(&[("name", "g")]))
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_signed_in_home_page_lists_the_users_groups() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "book club").await;

    let home = app.send(alice.call(Method::GET, "/")).await;

    let html = home.text();
    assert!(html.contains("book club"));
    assert!(html.contains(&format!("href=\"/groups/{group}\"")));
    assert!(html.contains("action=\"/chats\""));
}

#[tokio::test]
async fn creating_a_group_by_form_leads_to_its_page_with_members_history_and_controls() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let created = app
        .send(
            alice
                .call(Method::POST, "/groups")
                .form(&[("name", "trip")]),
        )
        .await;
    let url = created.location();
    let group = url.trim_start_matches("/groups/").to_owned();
    let added = app
        .send(
            alice
                .call(Method::POST, &format!("/groups/{group}/members"))
                .form(&[("handle", &format!("bob#{}", bob.tag))]),
        )
        .await;
    app.post(&bob, &group, "hello from bob").await;
    app.post(&alice, &group, "hello from alice").await;
    let page = app.send(alice.call(Method::GET, &url)).await;

    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert!(url.starts_with("/groups/"));
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(">trip</h1>"));
    assert!(html.contains(&format!("bob<span class=\"tag\">#{}</span>", bob.tag)));
    assert!(html.contains("hello from bob"));
    assert_eq!(html.matches("class=\"message mine\"").count(), 1);
    assert_eq!(html.matches("data-sender=\"").count(), 2);
    assert!(html.contains("Delete group"));
    assert!(html.contains("Leave group"));
    let bob_page = app.send(bob.call(Method::GET, &url)).await.text();
    assert!(!bob_page.contains("Delete group"));
}

#[tokio::test]
async fn adding_an_unknown_member_by_form_shows_the_error_on_the_group_page() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;

    let answer = app
        .send(
            alice
                .call(Method::POST, &format!("/groups/{group}/members"))
                .form(&[("handle", "ghost#0001")]),
        )
        .await;

    let page = app.follow(&answer, Some(&alice)).await;

    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), format!("/groups/{group}?panel=members"));
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("user not found"), "{html}");
    assert!(html.contains(">g</h1>"));
    assert!(
        html.contains("id=\"group-info\" open"),
        "the members panel is open"
    );
    assert!(
        html.contains("value=\"ghost#0001\""),
        "what was typed is kept"
    );
}

#[tokio::test]
async fn leaving_and_deleting_by_form_go_back_home() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    app.add(&alice, &group, &bob).await;

    let left = app
        .send(bob.call(Method::POST, &format!("/groups/{group}/leave")))
        .await;
    let deleted = app
        .send(alice.call(Method::POST, &format!("/groups/{group}/delete")))
        .await;
    let gone = app
        .send(alice.call(Method::GET, &format!("/groups/{group}")))
        .await;

    assert_eq!(left.status, StatusCode::SEE_OTHER);
    assert_eq!(left.location(), "/");
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.text().contains("Not found"));
}

#[tokio::test]
async fn starting_a_direct_chat_by_form_opens_its_page_with_the_history() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.send(
        bob.call(
            Method::POST,
            &format!("/api/users/{}/messages", alice.path()),
        )
        .json(serde_json::json!({ "content": "psst, alice" })),
    )
    .await;

    let opened = app
        .send(
            alice
                .call(Method::POST, "/chats")
                .form(&[("handle", &format!("bob#{}", bob.tag))]),
        )
        .await;
    let page = app.send(alice.call(Method::GET, &opened.location())).await;
    let unknown = app
        .send(
            alice
                .call(Method::POST, "/chats")
                .form(&[("handle", "ghost#0001")]),
        )
        .await;

    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    assert_eq!(opened.location(), format!("/users/bob/{}/chat", bob.tag));
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("psst, alice"));
    assert!(page.text().contains(&format!(
        "data-post=\"/api/users/bob/{}/messages\"",
        bob.tag
    )));
    assert_eq!(unknown.status, StatusCode::SEE_OTHER);
    assert_eq!(unknown.location(), "/");
    let home = app.follow(&unknown, Some(&alice)).await;
    assert!(home.text().contains("user not found"));
    assert!(home.text().contains("value=\"ghost#0001\""));
}

#[tokio::test]
async fn the_stylesheet_and_script_are_served() {
    let app = spawn_app().await;

    let css = app.send(call(Method::GET, "/static/app.css")).await;
    let js = app.send(call(Method::GET, "/static/app.js")).await;

    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/css")
    );
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.text().contains("EventSource"));
}

#[tokio::test]
async fn pages_with_live_state_are_never_cached() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let group = app.group(&alice, "g").await;

    for uri in ["/".to_owned(), format!("/groups/{group}")] {
        let page = app.send(alice.call(Method::GET, &uri)).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store", "{uri}");
    }
    let signed_out = app.send(call(Method::GET, "/")).await;
    assert_eq!(signed_out.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn without_the_script_the_composer_form_sends_once_per_key_and_comes_back_to_the_chat() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "g").await;
    let form = [("content", "sent by a form"), ("client_id", "form-key-1")];

    let sent = app
        .send(
            alice
                .call(Method::POST, &format!("/groups/{group}/send"))
                .form(&form),
        )
        .await;
    let twice = app
        .send(
            alice
                .call(Method::POST, &format!("/groups/{group}/send"))
                .form(&form),
        )
        .await;
    let direct = app
        .send(
            alice
                .call(Method::POST, &format!("/users/{}/send", bob.path()))
                .form(&[("content", "psst"), ("client_id", "form-key-2")]),
        )
        .await;
    let empty = app
        .send(
            alice
                .call(Method::POST, &format!("/groups/{group}/send"))
                .form(&[("content", ""), ("client_id", "form-key-3")]),
        )
        .await;
    let page = app.follow(&sent, Some(&alice)).await;
    let refused = app.follow(&empty, Some(&alice)).await;
    let chat = app.follow(&direct, Some(&alice)).await;

    assert_eq!(sent.location(), format!("/groups/{group}"));
    assert_eq!(twice.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.text()
            .matches("<p class=\"content\">sent by a form</p>")
            .count(),
        1
    );
    assert_eq!(direct.location(), format!("/users/bob/{}/chat", bob.tag));
    assert!(chat.text().contains("psst"));
    assert_eq!(empty.status, StatusCode::SEE_OTHER);
    assert!(refused.text().contains("class=\"alert error flash\""));
}

#[tokio::test]
async fn the_sidebar_lists_groups_and_direct_chats_newest_first_with_unread_counts_in_the_title() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = app.group(&alice, "book club").await;
    app.send(
        bob.call(
            Method::POST,
            &format!("/api/users/{}/messages", alice.path()),
        )
        .json(serde_json::json!({ "content": "psst, alice" })),
    )
    .await;

    let home = app.send(alice.call(Method::GET, "/")).await.text();

    let direct = home.find("psst, alice").expect("the direct chat is listed");
    let club = home.find("book club").expect("the group is listed");
    assert!(direct < club, "newest activity first: {home}");
    assert!(home.contains("<title>(1) Chat</title>"), "{home}");
    assert!(
        home.contains("bob: psst, alice"),
        "the preview names the sender"
    );
    assert!(home.contains(&format!("href=\"/users/bob/{}/chat\"", bob.tag)));
    assert!(home.contains(&format!("href=\"/groups/{group}\"")));
    assert!(home.contains("aria-label=\"1 unread\""));
}

/// A service whose chat list answers as a copy that moved on since the page's other read: its epoch
/// is `ahead` past the database's.
#[derive(Clone)]
struct ListsAhead {
    inner: crate::service::LocalService,
    ahead: u64,
}

impl crate::service::ChatService for ListsAhead {
    async fn execute(
        &self,
        request: crate::service::ServiceRequest,
    ) -> Result<crate::service::ServiceResponse, crate::service::ServiceError> {
        let lists = matches!(request.operation, crate::service::Operation::ListChats);
        let mut response = self.inner.execute(request).await?;
        if lists {
            response.epoch = crate::storage::Epoch(response.epoch.0 + self.ahead);
        }
        Ok(response)
    }
}

#[tokio::test]
async fn a_page_resumes_live_events_after_the_older_of_its_reads() {
    let database = crate::storage::Database::open_in_memory()
        .await
        .expect("database");
    let local =
        crate::service::LocalService::writer(database, crate::service::ServiceOptions::for_tests());
    let (serving, serving_flag) = tokio::sync::watch::channel(true);
    let service = ListsAhead {
        inner: local.clone(),
        ahead: 3,
    };
    let state = crate::web::WebState::new(service, local, serving_flag, super::test_options());
    let app = super::TestApp {
        router: crate::web::router(state.clone()),
        state,
        serving,
    };
    let alice = app.user("alice").await;
    let group = app.group(&alice, "lagging").await;
    let posted = app.post(&alice, &group, "the newest message").await;
    let newest = posted["epoch"].as_u64().expect("an epoch");

    let page = app
        .send(alice.call(Method::GET, &format!("/groups/{group}")))
        .await
        .text();
    // The messages were read at `newest`, the sidebar 3 epochs later: events must resume after the
    // messages' epoch, or what a copy applied between the two reads would never be shown.
    assert!(
        page.contains(&format!("data-after=\"{newest}\"")),
        "{}",
        page.lines()
            .filter(|line| line.contains("data-after"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let home = app.send(alice.call(Method::GET, "/")).await.text();
    assert!(
        home.contains(&format!("data-after=\"{}\"", newest + 3)),
        "the home page resumes after its one read"
    );
}
