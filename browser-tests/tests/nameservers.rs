//! Two nameservers, the first killed, in a real browser: a page loaded while both were up (so its way
//! back names the dead one first) still moves through the live one when its input node dies, keeping
//! its conversation and draft, and a new visitor gets in through the live one.
//!
//! Skips without chromium and chromedriver unless `CI` is set, as `web.rs` does.

use std::time::{Duration, Instant};

use browser_tests::browser::{ChromeDriver, Tools, poll, wait_for};
use browser_tests::inputs::wait_for_inputs;
use browser_tests::pages::{
    CONVERGE, EVENT, click, enter_through_nameserver, js, register, shown_handle, type_into,
};
use serde_json::json;
use system_tests::ClusterDir;
use system_tests::cluster::Cluster;

/// Waits until the nameserver at `url` hands out at least one input node.
async fn wait_for_endpoints(url: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client builds");
    poll(
        &format!("{url} hands out input nodes"),
        CONVERGE,
        || async {
            let listed: serde_json::Value = http
                .get(format!("{url}/api/endpoints"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            listed
                .as_array()
                .is_some_and(|list| !list.is_empty())
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_first_nameserver_dead_a_page_fails_over_through_the_second() {
    let test = "with_the_first_nameserver_dead_a_page_fails_over_through_the_second";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let dir = ClusterDir::with_nameservers(2);
    let urls = dir.nameserver_urls();
    let _second = dir.start_more_nameserver(0);
    let mut cluster = Cluster::start_in_order_in(dir, 5).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_for_inputs(&cluster, 2, CONVERGE).await;
    wait_for_endpoints(&urls[1]).await;

    let profiles = tempfile::tempdir().expect("a temporary directory");
    let driver = ChromeDriver::start(&tools, profiles.path()).await;
    let (ada_profile, bob_profile) = (profiles.path().join("ada"), profiles.path().join("bob"));
    for profile in [&ada_profile, &bob_profile] {
        std::fs::create_dir_all(profile).expect("a profile folder");
    }
    let ada = driver.session(&ada_profile).await;
    let bob = driver.session(&bob_profile).await;

    let scenario = async {
        // Ada enters through the first nameserver while both are up, opens a group and starts typing.
        let origin = enter_through_nameserver(&ada, &format!("{}/", urls[0])).await;
        let handle = register(&ada, "ada").await;
        type_into(&ada, "form[action='/groups'] input[name='name']", "crew").await;
        click(&ada, "form[action='/groups'] button[type='submit']").await;
        let group_path = poll("the group opens", EVENT, || async {
            let url = ada.current_url().await.ok()?;
            url.path()
                .starts_with("/groups/")
                .then(|| url.path().to_owned())
        })
        .await;
        let way_back = js(&ada, "return document.body.dataset.nameserver;", vec![]).await;
        assert_eq!(
            way_back,
            json!(urls.join(" ")),
            "the page's way back names both nameservers, the first first"
        );
        let textarea = wait_for(&ada, "#composer textarea", EVENT).await;
        textarea
            .send_keys("a draft to keep")
            .await
            .expect("keys go into the message box");

        // The first nameserver dies, then Ada's input node.
        cluster.kill_nameserver();
        let node = inputs
            .iter()
            .find(|node| node.url == origin)
            .unwrap_or_else(|| panic!("{origin} is an input node: {inputs:?}"))
            .id;
        cluster.kill(node);
        let killed = Instant::now();
        let moved_to = poll(
            "ada is back in her group on another node",
            Duration::from_secs(20),
            || async {
                let url = ada.current_url().await.ok()?;
                let there = url.origin().ascii_serialization();
                let draft = js(
                    &ada,
                    "const box = document.querySelector('#composer textarea'); return box ? box.value : null;",
                    vec![],
                )
                .await;
                (there != origin && url.path() == group_path && draft == json!("a draft to keep"))
                    .then_some(there)
            },
        )
        .await;
        let took = killed.elapsed();
        assert_eq!(shown_handle(&ada).await, handle, "still signed in");
        println!(
            "first nameserver dead: the page was back in its conversation on {moved_to} {} ms after its node was killed",
            took.as_millis()
        );

        // A new visitor gets in through the second.
        let entered = Instant::now();
        enter_through_nameserver(&bob, &format!("{}/", urls[1])).await;
        register(&bob, "bob").await;
        println!(
            "a new visitor through the second nameserver was signed up in {} ms",
            entered.elapsed().as_millis()
        );
    };
    if tokio::time::timeout(Duration::from_secs(120), scenario)
        .await
        .is_err()
    {
        panic!(
            "the scenario did not finish within 120 s; chromedriver log:\n{}",
            driver.log()
        );
    }
}
