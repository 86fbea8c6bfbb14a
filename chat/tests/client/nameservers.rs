//! Two nameservers, the first one killed: the client, given both, still gets in through the second.

use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::ClusterDir;
use system_tests::cluster::Cluster;

use crate::helpers::{CONVERGE, User, eventually, group_with, success};

/// Waits until `nameserver` hands out at least one input node.
async fn wait_for_endpoints(nameserver: &str) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client builds");
    let deadline = Instant::now() + CONVERGE;
    loop {
        let listed = match client
            .get(format!("{nameserver}/api/endpoints"))
            .send()
            .await
        {
            Ok(answer) => answer.json::<Value>().await.ok(),
            Err(_) => None,
        };
        if listed.is_some_and(|list| list.as_array().is_some_and(|list| !list.is_empty())) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nameserver} hands out no input node within {CONVERGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_first_nameserver_dead_the_client_gets_in_through_the_second() {
    let dir = ClusterDir::with_nameservers(2);
    let urls = dir.nameserver_urls();
    let _second = dir.start_more_nameserver(0);
    let mut cluster = Cluster::start_in_order_in(dir, 3).await;
    cluster.wait_for_writer(&[1, 2, 3], CONVERGE).await;
    for url in &urls {
        wait_for_endpoints(url).await;
    }
    let both = urls.join(",");
    let ada = User::sign_up_through(&both, "ada");
    group_with(&ada, "crew", &[]);
    success(&ada.run(&["send", "crew", "before"]));

    cluster.kill_nameserver();
    let killed = Instant::now();
    let sent = success(&ada.run(&["send", "crew", "after the first nameserver died"]));
    let took = killed.elapsed();
    assert!(sent.contains("after the first nameserver died"), "{sent}");
    let history = success(&ada.run(&["history", "crew"]));
    assert!(
        history.contains("before") && history.contains("after the first nameserver died"),
        "{history}"
    );
    let status = success(&ada.run(&["status"]));
    assert!(status.starts_with("leader: node "), "{status}");
    // Someone new gets in too, naming the dead nameserver first.
    let bob = User::sign_up_through(&both, "bob");
    // Ada's node may be a copy that learns of Bob's account a moment after he registered.
    eventually(|| {
        ada.run(&["send", &bob.handle, "welcome"])
            .status
            .success()
            .then_some(())
    });
    // Bob's node may be a copy that applies the message a moment after Ada was answered.
    eventually(|| {
        success(&bob.run(&["history", &ada.handle]))
            .contains("welcome")
            .then_some(())
    });
    println!(
        "first nameserver dead: a send through the list took {} ms",
        took.as_millis()
    );

    // Only the dead one: a one-line error naming it, exit code 1 (cluster unreachable).
    let alone = User::unregistered(&urls[0]);
    let refused = alone.run(&["status"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains(&urls[0]), "{said}");
}
