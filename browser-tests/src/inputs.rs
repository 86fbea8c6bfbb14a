//! The input nodes of a test cluster: which nodes serve HTTP, and the nameserver's view of them.

use std::time::{Duration, Instant};

use system_tests::cluster::Cluster;

/// An input node: its id and base URL (`http://127.0.0.1:PORT`, no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNode {
    pub id: u64,
    pub url: String,
}

/// The nodes of `cluster` whose `/status` reports an HTTP URL, in id order.
pub async fn input_nodes(cluster: &Cluster) -> Vec<InputNode> {
    let mut nodes = Vec::new();
    for id in cluster.live_ids() {
        if let Some(url) = cluster
            .status(id)
            .await
            .and_then(|status| status["http"].as_str().map(str::to_owned))
        {
            nodes.push(InputNode {
                id,
                url: url.trim_end_matches('/').to_owned(),
            });
        }
    }
    nodes
}

/// Waits until at least `count` nodes serve HTTP *and* the nameserver lists at least `count` input
/// nodes (so a browser sent through it lands on a node that answers); panics after `timeout`.
pub async fn wait_for_inputs(cluster: &Cluster, count: usize, timeout: Duration) -> Vec<InputNode> {
    let endpoints = format!("{}/api/endpoints", cluster.nameserver_url());
    let http = cluster
        .dir
        .http_client()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client builds");
    let deadline = Instant::now() + timeout;
    loop {
        let nodes = input_nodes(cluster).await;
        let listed = match http.get(&endpoints).send().await {
            Ok(response) => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|body| body.as_array().map(Vec::len))
                .unwrap_or(0),
            Err(_) => 0,
        };
        if nodes.len() >= count && listed >= count {
            return nodes;
        }
        if Instant::now() >= deadline {
            panic!(
                "fewer than {count} input nodes within {timeout:?}: serving {nodes:?}, \
                 {listed} listed by the nameserver"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
