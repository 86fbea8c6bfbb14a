//! Several nameservers: every input node holds a lease with each, any of them hands out input nodes
//! and shows the cluster, and killing one leaves the others serving — and the pages' way back (the
//! nameserver a page goes to when its node dies) moves to one that is up.

use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::ClusterDir;
use system_tests::cluster::Cluster;

/// The input nodes a nameserver hands out (`/api/endpoints`), or `None` when it does not answer.
async fn endpoints(client: &reqwest::Client, nameserver: &str) -> Option<Vec<Value>> {
    let answer = client
        .get(format!("{nameserver}/api/endpoints"))
        .send()
        .await
        .ok()?;
    answer.json().await.ok()
}

/// Where a nameserver redirects `/` (its `Location`).
async fn redirect_of(client: &reqwest::Client, nameserver: &str) -> Option<String> {
    let answer = client.get(format!("{nameserver}/")).send().await.ok()?;
    answer
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The nameservers an input node's pages go back to, in the order a page uses them.
async fn pages_way_back(client: &reqwest::Client, input: &str) -> Vec<String> {
    let Ok(answer) = client.get(format!("{input}/")).send().await else {
        return Vec::new();
    };
    let page = answer.text().await.unwrap_or_default();
    page.split("data-nameserver=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|list| list.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_nameservers_killing_one_leaves_the_other_handing_out_every_input_node() {
    let dir = ClusterDir::with_nameservers(2);
    let urls = dir.nameserver_urls();
    let second = dir.start_more_nameserver(0);
    let mut cluster = Cluster::start_in_order_in(dir, 3).await;
    let ids = [1, 2, 3];
    cluster.wait_for_writer(&ids, Duration::from_secs(30)).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a client");

    // Both hand out the same input nodes: each one holds a lease with both.
    let deadline = Instant::now() + Duration::from_secs(20);
    let inputs = loop {
        let first = endpoints(&client, &urls[0]).await.unwrap_or_default();
        let other = endpoints(&client, &urls[1]).await.unwrap_or_default();
        let ids = |list: &[Value]| {
            let mut ids: Vec<u64> = list.iter().filter_map(|e| e["id"].as_u64()).collect();
            ids.sort();
            ids
        };
        if !first.is_empty() && ids(&first) == ids(&other) {
            break first;
        }
        assert!(
            Instant::now() < deadline,
            "the nameservers disagree: {first:?} / {other:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let input = inputs[0]["url"].as_str().expect("a url").to_owned();
    assert_eq!(
        pages_way_back(&client, &input).await,
        urls,
        "both, in order"
    );
    for url in &urls {
        let to = redirect_of(&client, url).await.expect("a redirect");
        assert!(to.starts_with("http://127.0.0.1:"), "{url} → {to}");
    }

    // The first nameserver dies: the second still hands out every input node and shows the
    // cluster, and pages soon go back to the second first.
    let killed = Instant::now();
    cluster.kill_nameserver();
    let to = redirect_of(&client, &urls[1])
        .await
        .expect("the second nameserver still redirects");
    let page = reqwest::get(&to).await.expect("the input node answers");
    assert_eq!(page.status(), 200);
    let state: Value = reqwest::get(format!("{}/cluster/state", urls[1]))
        .await
        .expect("the cluster view answers")
        .json()
        .await
        .expect("json");
    assert_eq!(state["nodes"].as_array().map(Vec::len), Some(3), "{state}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let order = pages_way_back(&client, &input).await;
        if order.first() == Some(&urls[1]) {
            eprintln!(
                "pages go back to the live nameserver first {:?} after the other died",
                killed.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pages still go back to the dead nameserver first: {order:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
}
