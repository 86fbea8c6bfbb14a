//! `GET /api/endpoints`: the live input nodes as JSON.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn endpoints_are_a_json_list_of_id_and_url_ordered_by_id() {
    let mut app = spawn_app().await;
    app.register(3, "http://127.0.0.1:8083")
        .await
        .expect("register 3");
    app.register(1, "http://127.0.0.1:8081")
        .await
        .expect("register 1");

    let response = app.get("/api/endpoints").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(
        body,
        json!([
            {"id": 1, "url": "http://127.0.0.1:8081"},
            {"id": 3, "url": "http://127.0.0.1:8083"},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn endpoints_are_an_empty_list_when_no_node_is_live() {
    let app = spawn_app().await;

    let response = app.get("/api/endpoints").await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(body, json!([]));
    app.stop().await;
}
