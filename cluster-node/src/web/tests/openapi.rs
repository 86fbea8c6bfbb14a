//! The OpenAPI document: served, complete (every operation it names is routed to a handler), and in
//! step with the README's table of the JSON API.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::spawn_app;

/// `(METHOD, /path/{}/with/{}/params)` for every operation of the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            all.insert((method.to_uppercase(), normalized(path)));
        }
    }
    all
}

/// Parameter names differ between the README (`{name}`) and the router (`{username}`).
fn normalized(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_served_as_openapi_3_1_and_names_the_session_cookie() {
    let app = spawn_app().await;
    let answer = app
        .send(super::call(Method::GET, "/api/openapi.json"))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["session"]["name"],
        "chat_session"
    );
    assert_eq!(
        document,
        serde_json::to_value(super::super::api::document()).unwrap()
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let document = serde_json::to_value(super::super::api::document()).unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if path == "/api/events" {
                continue; // a stream that never ends; its route is checked by the event tests
            }
            let uri = path
                .replace("{id}", "00000000-0000-4000-8000-000000000000")
                .replace("{username}", "nobody")
                .replace("{tag}", "0001")
                .replace("{emoji}", "%F0%9F%91%8D");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let answer = app.send(alice.call(method.clone(), &uri)).await;
            assert_ne!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if answer.status == StatusCode::NOT_FOUND {
                assert_ne!(
                    answer.error(),
                    "no such page",
                    "{method} {path} is documented but not routed"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} operations");
    // The check above means something: an unknown route answers "no such page", whatever the method.
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let answer = app.send(alice.call(method, "/api/nowhere")).await;
        assert_eq!(
            (answer.status, answer.error()),
            (StatusCode::NOT_FOUND, "no such page".to_owned())
        );
    }
}

#[test]
fn the_readme_table_names_exactly_the_documented_operations() {
    let readme = include_str!("../../../../README.md");
    let table = readme
        .split("### JSON API")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a JSON API section");
    let mut listed = BTreeSet::new();
    for line in table.lines().filter(|line| line.starts_with("| `")) {
        let first_cell = line.split(" | ").next().unwrap_or_default();
        for code in first_cell.split('`').skip(1).step_by(2) {
            let Some((method, path)) = code.split_once(' ') else {
                continue;
            };
            let path = path.split('?').next().unwrap_or(path);
            listed.insert((method.to_owned(), normalized(path)));
        }
    }
    let documented = operations(&serde_json::to_value(super::super::api::document()).unwrap());
    let missing_in_readme: Vec<_> = documented.difference(&listed).collect();
    let missing_in_document: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing_in_readme.is_empty() && missing_in_document.is_empty(),
        "documented but not in the README: {missing_in_readme:?}; in the README but not documented: {missing_in_document:?}"
    );
}
