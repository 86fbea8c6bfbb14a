//! A group's stats panel in a real browser (headless Chromium through chromedriver) on a cluster of
//! real processes: opening the panel fetches `GET /api/groups/{id}/stats` and `stats.js` draws the
//! messages per day and the most used words as SVG bars, under the pages' strict
//! Content-Security-Policy. `SCREENSHOT_DIR`, when set, receives a screenshot of the open panel.
//!
//! Without chromium and chromedriver the test prints why and passes, unless `CI` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use browser_tests::browser::{ChromeDriver, Tools, poll, texts, wait_for};
use browser_tests::inputs::wait_for_inputs;
use fantoccini::Client;
use serde_json::{Value, json};
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(30);
const SHOWN: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse battery";

/// Runs `script` in the page and answers its value (a promise is waited for).
async fn js(browser: &Client, script: &str, args: Vec<Value>) -> Value {
    browser
        .execute(script, args)
        .await
        .unwrap_or_else(|error| panic!("script {script:?} failed: {error}"))
}

/// `fetch` from the page, as its own script would: `[status, body]`.
const FETCH: &str = "return fetch(arguments[0], {method: arguments[1], credentials: 'same-origin', \
     headers: {'content-type': 'application/json'}, body: arguments[2]}) \
     .then(r => r.json().then(body => [r.status, body]));";

async fn api(browser: &Client, method: &str, path: &str, body: Value) -> (u64, Value) {
    let answer = js(
        browser,
        FETCH,
        vec![json!(path), json!(method), json!(body.to_string())],
    )
    .await;
    (answer[0].as_u64().unwrap_or(0), answer[1].clone())
}

async fn register(browser: &Client, name: &str) {
    let username = wait_for(
        browser,
        "form[action='/register'] input[name='username']",
        SHOWN,
    )
    .await;
    username.send_keys(name).await.expect("keys");
    let password = wait_for(
        browser,
        "form[action='/register'] input[name='password']",
        SHOWN,
    )
    .await;
    password.send_keys(PASSWORD).await.expect("keys");
    wait_for(
        browser,
        "form[action='/register'] button[type='submit']",
        SHOWN,
    )
    .await
    .click()
    .await
    .expect("a click");
    wait_for(browser, ".whoami .handle", SHOWN).await;
}

/// Waits until the members and stats panels are `[open, open]` (a panel's `toggle` event, which
/// closes the other, comes a moment after the click).
async fn panels_become(browser: &Client, expected: [bool; 2]) {
    poll(&format!("the panels become {expected:?}"), SHOWN, || async {
        let open = js(
            browser,
            "return [document.getElementById('group-info').open, document.getElementById('group-stats').open];",
            vec![],
        )
        .await;
        (open == json!(expected)).then_some(())
    })
    .await;
}

fn screenshot(png: &[u8], name: &str) {
    if let Some(target) = std::env::var_os("SCREENSHOT_DIR") {
        let target = Path::new(&target);
        std::fs::create_dir_all(target).expect("SCREENSHOT_DIR can be created");
        std::fs::write(target.join(name), png).expect("the screenshot can be written");
        eprintln!("screenshot: {}", target.join(name).display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_panel_draws_a_groups_messages_per_day_and_top_words() {
    let test = "the_stats_panel_draws_a_groups_messages_per_day_and_top_words";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let started = Instant::now();
    let cluster = Cluster::start(3);
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let input = wait_for_inputs(&cluster, 1, CONVERGE).await.remove(0);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let driver = ChromeDriver::start(&tools, dir.path()).await;
    let profile = dir.path().join("profile");
    std::fs::create_dir_all(&profile).expect("a profile folder");
    let browser = driver.session(&profile).await;

    browser
        .goto(&format!("{}/", input.url))
        .await
        .expect("the input node opens");
    register(&browser, "ada").await;
    let (status, group) = api(&browser, "POST", "/api/groups", json!({"name": "crew"})).await;
    assert_eq!(status, 201, "{group}");
    let group = group["id"].as_str().expect("an id").to_owned();
    for content in [
        "ship the release",
        "Release notes, please",
        "release day",
        "ship it",
    ] {
        let (status, body) = api(
            &browser,
            "POST",
            &format!("/api/groups/{group}/messages"),
            json!({ "content": content }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    browser
        .goto(&format!("{}/groups/{group}", input.url))
        .await
        .expect("the group page opens");
    wait_for(&browser, "#group-stats summary", SHOWN)
        .await
        .click()
        .await
        .expect("the panel opens");
    let status = poll("the panel shows the count", SHOWN, || async {
        let text = texts(&browser, "#group-stats .stats-status")
            .await
            .join(" ");
        text.starts_with("4 messages").then_some(text)
    })
    .await;
    assert!(status.contains("computed by node"), "{status}");
    // The members panel drops down in the same place: opening one closes the other.
    wait_for(&browser, "#group-info summary", SHOWN)
        .await
        .click()
        .await
        .expect("the members panel opens");
    panels_become(&browser, [true, false]).await;
    wait_for(&browser, "#group-stats summary", SHOWN)
        .await
        .click()
        .await
        .expect("the panel opens again");
    panels_become(&browser, [false, true]).await;
    poll("the panel shows the count again", SHOWN, || async {
        let text = texts(&browser, "#group-stats .stats-status")
            .await
            .join(" ");
        text.starts_with("4 messages").then_some(())
    })
    .await;
    let captions = texts(&browser, "#group-stats figcaption").await;
    assert_eq!(captions, ["Messages per day", "Most used words"]);
    // One bar for today, and one per counted word: release 3, ship 2, day 1, notes 1, please 1.
    let bars = js(
        &browser,
        "return [...document.querySelectorAll('#group-stats svg')].map(s => s.querySelectorAll('rect.stats-bar').length);",
        vec![],
    )
    .await;
    assert_eq!(bars, json!([1, 5]));
    let labels = js(
        &browser,
        "return [...document.querySelectorAll('#group-stats .stats-chart:last-child .stats-label')].map(t => t.textContent);",
        vec![],
    )
    .await;
    assert_eq!(labels, json!(["release", "ship", "day", "notes", "please"]));
    screenshot(
        &browser.screenshot().await.expect("a screenshot"),
        "stats-panel.png",
    );

    let _ = browser.close().await;
    drop(driver);
    eprintln!("stats panel test took {:?}", started.elapsed());
}
