//! What a person does on the pages, as the browser tests do it: enter through a nameserver, fill and
//! submit forms, read what a page shows.

use fantoccini::Client;
use serde_json::{Value, json};
use std::time::Duration;

use crate::browser::{poll, wait_for};

/// Bound for a cluster to form its tree and its input nodes to register at the nameserver.
pub const CONVERGE: Duration = Duration::from_secs(30);
/// Bound for one event to arrive on a stream, or one element to appear on a page.
pub const EVENT: Duration = Duration::from_secs(10);
pub const PASSWORD: &str = "correct horse battery";

/// Opens the nameserver in `browser` and follows its redirect; answers the input node's origin
/// (`http://127.0.0.1:PORT`) once the login page is there.
pub async fn enter_through_nameserver(browser: &Client, nameserver: &str) -> String {
    browser
        .goto(nameserver)
        .await
        .expect("the nameserver opens");
    // When no input node is live the nameserver shows a page that refreshes itself; wait it out.
    let origin = poll(
        "the nameserver redirects to an input node",
        CONVERGE,
        || async {
            let url = browser.current_url().await.ok()?;
            let origin = url.origin().ascii_serialization();
            (format!("{origin}/") != nameserver && url.path() == "/").then_some(origin)
        },
    )
    .await;
    wait_for(browser, "form[action='/register']", EVENT).await;
    origin
}

/// Types `text` into the element matching `selector`.
pub async fn type_into(browser: &Client, selector: &str, text: &str) {
    let field = wait_for(browser, selector, EVENT).await;
    field.clear().await.expect("the field can be cleared");
    field.send_keys(text).await.expect("the field takes keys");
}

pub async fn click(browser: &Client, selector: &str) {
    wait_for(browser, selector, EVENT)
        .await
        .click()
        .await
        .unwrap_or_else(|error| panic!("clicking {selector:?}: {error}"));
}

/// The `name#tag` the page's header shows for the signed-in user, once it shows one.
pub async fn shown_handle(browser: &Client) -> String {
    wait_for(browser, ".whoami .handle", EVENT)
        .await
        .text()
        .await
        .expect("the handle has text")
        .trim()
        .to_owned()
}

/// Registers `name` through the page's register form; answers the `name#tag` the page then shows.
pub async fn register(browser: &Client, name: &str) -> String {
    type_into(
        browser,
        "form[action='/register'] input[name='username']",
        name,
    )
    .await;
    type_into(
        browser,
        "form[action='/register'] input[name='password']",
        PASSWORD,
    )
    .await;
    click(browser, "form[action='/register'] button[type='submit']").await;
    let handle = shown_handle(browser).await;
    let (shown_name, tag) = handle
        .rsplit_once('#')
        .unwrap_or_else(|| panic!("the page shows no name#tag: {handle:?}"));
    assert_eq!(shown_name, name, "{handle:?}");
    assert!(
        tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_digit()),
        "a four-digit tag: {handle:?}"
    );
    // The welcome notice names the handle too.
    let notice = wait_for(browser, ".alert.notice", EVENT).await;
    let notice = notice.text().await.expect("the notice has text");
    assert!(notice.contains(&handle), "welcome notice: {notice:?}");
    handle
}

/// Runs `script` (a function body; `arguments` are `args`) in `browser` and answers its value.
pub async fn js(browser: &Client, script: &str, args: Vec<Value>) -> Value {
    browser
        .execute(script, args)
        .await
        .unwrap_or_else(|error| panic!("script {script:?} failed: {error}"))
}

/// Whether the message `content` is shown (delivered, not pending) in `browser`'s open conversation.
pub async fn shows_message(browser: &Client, content: &str) -> bool {
    js(
        browser,
        "return Array.from(document.querySelectorAll('#messages li.message:not(.pending) .content')) \
           .some((node) => node.textContent === arguments[0]);",
        vec![json!(content)],
    )
    .await
        == json!(true)
}
