//! The HTTP face of an input node, driven like a client would: the whole router (API and pages, every
//! middleware) over a writer's service, fed requests whose bodies, and some of whose paths and query
//! strings, are arbitrary bytes. The input is a list of requests separated by NUL bytes; the first byte
//! of each picks the route (its top bit: without the signed-in user's cookie), the rest is the body,
//! or for the last routes `<path> <body>`. In paths `{g}` stands for the group the input created last
//! (or, before it created one, a group made at start) and `{t}` for the tag of a second user. No request may panic or get a 500: bad input is the client's
//! error (4xx), never the server's.

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use cluster_node::service::{LocalService, ServiceOptions};
use cluster_node::storage::Database;
use cluster_node::web::{RateLimit, WebOptions, WebState, router};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Fixed routes: method, path, content type.
const ROUTES: &[(Method, &str, &str)] = &[
    (Method::POST, "/api/register", JSON),
    (Method::POST, "/api/login", JSON),
    (Method::POST, "/api/groups", JSON),
    (Method::POST, "/api/groups/{g}/members", JSON),
    (Method::POST, "/api/groups/{g}/messages", JSON),
    (Method::POST, "/api/users/bob/{t}/messages", JSON),
    (Method::POST, "/register", FORM),
    (Method::POST, "/login", FORM),
    (Method::POST, "/groups", FORM),
    (Method::POST, "/chats", FORM),
    (Method::POST, "/groups/{g}/members", FORM),
];

/// Routes whose path comes from the input too.
const FREE_METHODS: &[Method] = &[Method::GET, Method::POST, Method::DELETE];

struct App {
    runtime: Runtime,
    router: Router,
    /// The node's readiness, kept `true` for the whole run.
    _serving: tokio::sync::watch::Sender<bool>,
    cookie: String,
    group: String,
    tag: String,
}

/// Inputs one application serves before a fresh one replaces it: the groups and messages inputs
/// create would otherwise pile up and slow every later listing down.
const INPUTS_PER_APP: usize = 1000;

thread_local! {
    static APP: RefCell<Option<(Rc<App>, usize)>> = const { RefCell::new(None) };
}

/// The application for the next input.
fn app() -> Rc<App> {
    APP.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_mut() {
            Some((app, served)) if *served < INPUTS_PER_APP => {
                *served += 1;
                Rc::clone(app)
            }
            _ => {
                let app = Rc::new(new_app());
                *slot = Some((Rc::clone(&app), 1));
                app
            }
        }
    })
}

/// An application with a signed-in user `ada`, a second user `bob` and a group.
fn new_app() -> App {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (serving, serving_flag) = tokio::sync::watch::channel(true);
    let (router, cookie, group, tag) = runtime.block_on(async {
        let database = Database::open_in_memory().await.expect("a database");
        let service = LocalService::writer(database, ServiceOptions::for_tests());
        // No rate limit gets in the way of the inputs: the limiter is tested on its own.
        let unlimited = RateLimit {
            max: usize::MAX,
            window: Duration::from_secs(1),
        };
        let options = WebOptions {
            login_failures_per_user: unlimited,
            login_attempts_per_address: unlimited,
            ..WebOptions::default()
        };
        let router = router(WebState::new(
            service.clone(),
            service,
            serving_flag,
            options,
        ));
        let password = r#""password":"correct horse""#;
        let (_, bob) = send(
            &router,
            json_call(
                "/api/register",
                &format!(r#"{{"username":"bob",{password}}}"#),
                None,
            ),
        )
        .await;
        let (_, ada) = send(
            &router,
            json_call(
                "/api/register",
                &format!(r#"{{"username":"ada",{password}}}"#),
                None,
            ),
        )
        .await;
        let tag = field(&bob, "tag");
        let login = format!(
            r#"{{"username":"ada","tag":"{}",{password}}}"#,
            field(&ada, "tag")
        );
        let response = router
            .clone()
            .oneshot(json_call("/api/login", &login, None))
            .await
            .expect("infallible");
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("chat_session="))
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let (_, group) = send(
            &router,
            json_call("/api/groups", r#"{"name":"crew"}"#, Some(&cookie)),
        )
        .await;
        let group = field(&group, "id");
        (router, cookie, group, tag)
    });
    App {
        runtime,
        router,
        _serving: serving,
        cookie,
        group,
        tag,
    }
}

fn field(body: &[u8], name: &str) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON answer");
    match &value[name] {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn json_call(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "chat.test")
        .header(header::CONTENT_TYPE, JSON);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder
        .body(Body::from(body.to_owned()))
        .expect("a request")
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    (status, body.to_vec())
}

/// The request one chunk of the input describes, if it is one (`None` for a path no URI can hold).
fn request(app: &App, group: &str, chunk: &[u8]) -> Option<Request<Body>> {
    let (&selector, rest) = chunk.split_first()?;
    let signed_in = selector & 0x80 == 0;
    let pick = usize::from(selector & 0x7f) % (ROUTES.len() + FREE_METHODS.len());
    let (method, path, content_type, body) = match ROUTES.get(pick) {
        Some((method, path, content_type)) => {
            (method.clone(), path.to_string(), *content_type, rest)
        }
        None => {
            let method = FREE_METHODS[pick - ROUTES.len()].clone();
            let split = rest
                .iter()
                .position(|byte| *byte == b' ')
                .unwrap_or(rest.len());
            let path = String::from_utf8_lossy(&rest[..split]).into_owned();
            let body = rest.get(split + 1..).unwrap_or_default();
            (method, path, JSON, body)
        }
    };
    let path = path.replace("{g}", group).replace("{t}", &app.tag);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "chat.test")
        .header(header::CONTENT_TYPE, content_type);
    if signed_in {
        builder = builder.header(header::COOKIE, &app.cookie);
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let app = app();
    let mut group = app.group.clone();
    for chunk in data.split(|byte| *byte == 0) {
        let Some(request) = request(&app, &group, chunk) else {
            continue;
        };
        // The live-event stream never ends: only its status and headers are read.
        let streams = request.uri().path() == "/api/events";
        let creates_group =
            request.method() == Method::POST && request.uri().path() == "/api/groups";
        let described = format!("{} {}", request.method(), request.uri());
        app.runtime.block_on(async {
            let response = app
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            let status = response.status();
            assert!(
                status != StatusCode::INTERNAL_SERVER_ERROR,
                "{described} with {:?} got 500",
                String::from_utf8_lossy(chunk)
            );
            if streams {
                return;
            }
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            if creates_group && status == StatusCode::CREATED {
                group = field(&body, "id");
            }
        });
    }
});
