//! A whole cluster of real processes for one test: bootstrap, nameserver and N nodes, with the
//! operations scenario tests need (kill, restart, pause, partition) and a wait for a valid tree.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::tree::{TreeView, check_tree};
use crate::{ClusterDir, NodeSpec, Process, binary};

pub struct Cluster {
    pub dir: ClusterDir,
    bootstrap: Option<Process>,
    _nameserver: Process,
    nodes: BTreeMap<u64, (NodeSpec, Option<Process>)>,
    allow_faults: bool,
    http: reqwest::Client,
}

impl Cluster {
    /// Starts the services and nodes `1..=n` one after the other, each once the previous one has
    /// registered, so the neighbour graph is the bootstrap's documented pattern for ids in order.
    pub async fn start_in_order(n: u64) -> Self {
        Self::start_in_order_in(ClusterDir::new(), n).await
    }

    /// [`Cluster::start_in_order`] over HTTPS: the nameserver and the input nodes serve TLS with
    /// certificates made as `TLS=1 ./init.sh` makes them (see [`ClusterDir::with_tls`]).
    pub async fn start_in_order_over_https(n: u64) -> Self {
        Self::start_in_order_in(ClusterDir::with_tls(), n).await
    }

    /// [`Cluster::start_in_order`] with `extra` arguments for every node (e.g. `--restore FILE`).
    pub async fn start_in_order_with(n: u64, extra: &[&str]) -> Self {
        Self::start_in_order_in_with(ClusterDir::new(), n, extra).await
    }

    /// [`Cluster::start_in_order`] in a directory prepared by the caller (e.g. with several
    /// nameservers).
    pub async fn start_in_order_in(dir: ClusterDir, n: u64) -> Self {
        Self::start_in_order_in_with(dir, n, &[]).await
    }

    async fn start_in_order_in_with(dir: ClusterDir, n: u64, extra: &[&str]) -> Self {
        let mut cluster = Self::start_in(dir, 0);
        for id in 1..=n {
            let spec = cluster.dir.write_node_config(id);
            cluster.nodes.insert(id, (spec, None));
            cluster.restart_with(id, extra);
            let url = cluster.spec(id).admin_url("/status");
            crate::wait_for_json(&url, Duration::from_secs(20), |s| s["registered"] == true).await;
        }
        cluster
    }

    /// Starts the services and nodes `1..=n` all at once, each node allowed to use the fault switch.
    pub fn start(n: u64) -> Self {
        Self::start_in(ClusterDir::new(), n)
    }

    fn start_in(dir: ClusterDir, n: u64) -> Self {
        let bootstrap = dir.start_bootstrap();
        let nameserver = dir.start_nameserver();
        let mut cluster = Self {
            bootstrap: Some(bootstrap),
            _nameserver: nameserver,
            nodes: BTreeMap::new(),
            allow_faults: true,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .expect("a plain HTTP client builds"),
            dir,
        };
        for id in 1..=n {
            let spec = cluster.dir.write_node_config(id);
            cluster.nodes.insert(id, (spec, None));
            cluster.restart(id);
        }
        cluster
    }

    pub fn spec(&self, id: u64) -> &NodeSpec {
        &self.nodes[&id].0
    }

    /// Ids of the nodes whose process is running (paused ones included).
    pub fn live_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, (_, process))| process.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// SIGKILLs the (first) nameserver.
    pub fn kill_nameserver(&mut self) {
        self._nameserver.signal(Signal::SIGKILL);
        self._nameserver.wait_exit(Duration::from_secs(5));
    }

    /// SIGKILLs the bootstrap (the nodes keep running on what they know).
    pub fn kill_bootstrap(&mut self) {
        if let Some(mut process) = self.bootstrap.take() {
            process.signal(Signal::SIGKILL);
            process.wait_exit(Duration::from_secs(5));
        }
    }

    /// SIGKILLs node `id`, as a crash would.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut process) = self.nodes.get_mut(&id).and_then(|(_, p)| p.take()) {
            process.signal(Signal::SIGKILL);
            process.wait_exit(Duration::from_secs(5));
        }
    }

    /// Starts node `id` again with the same config (and data).
    pub fn restart(&mut self, id: u64) {
        self.restart_with(id, &[]);
    }

    /// [`Cluster::restart`] with `extra` arguments (`--force-configuration`, `--restore FILE`).
    pub fn restart_with(&mut self, id: u64, extra: &[&str]) {
        self.kill(id);
        let (spec, process) = self.nodes.get_mut(&id).expect("a configured node");
        let config = spec.config_path.to_str().expect("temp paths are UTF-8");
        let mut args = vec![config];
        if self.allow_faults {
            args.push("--allow-faults");
        }
        args.extend_from_slice(extra);
        *process = Some(Process::spawn(
            format!("NODE_{id}"),
            &binary("cluster-node"),
            &args,
        ));
    }

    pub fn signal(&self, id: u64, signal: Signal) {
        if let Some((_, Some(process))) = self.nodes.get(&id) {
            process.signal(signal);
        }
    }

    /// The neighbour ids each node in `ids` reports (from `/status`).
    pub async fn neighbour_graph(&self, ids: &[u64]) -> BTreeMap<u64, Vec<u64>> {
        let mut graph = BTreeMap::new();
        for &id in ids {
            let status = self.status(id).await.expect("a live node answers /status");
            let neighbours = status["neighbors"]
                .as_array()
                .map(|list| list.iter().filter_map(|n| n["id"].as_u64()).collect())
                .unwrap_or_default();
            graph.insert(id, neighbours);
        }
        graph
    }

    /// The `/status` of a node, or `None` when it does not answer.
    pub async fn status(&self, id: u64) -> Option<Value> {
        let response = self
            .http
            .get(self.spec(id).admin_url("/status"))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Waits until the nodes in `ids` form one valid tree; answers its leader.
    pub async fn wait_for_tree(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut views = Vec::new();
            let mut problem = None;
            for &id in ids {
                match self
                    .status(id)
                    .await
                    .as_ref()
                    .and_then(TreeView::from_status)
                {
                    Some(view) => views.push(view),
                    None => problem = Some(format!("node {id} does not answer /status")),
                }
            }
            let outcome = match problem {
                Some(problem) => Err(problem),
                None => check_tree(&views),
            };
            match outcome {
                Ok(leader) => return leader,
                Err(problem) if Instant::now() >= deadline => {
                    panic!("no valid tree over {ids:?} within {timeout:?}: {problem}\n{views:#?}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Makes node `id` drop all traffic with `peers` (both planes, both directions).
    pub async fn isolate(&self, id: u64, peers: &[u64]) {
        self.isolate_plane(id, peers, "both").await;
    }

    /// Makes node `id` drop traffic with `peers` on `plane`: `"control"`, `"data"` or `"both"`.
    pub async fn isolate_plane(&self, id: u64, peers: &[u64], plane: &str) {
        let response = self
            .http
            .post(self.spec(id).admin_url("/fault"))
            .json(&serde_json::json!({ "drop": peers, "plane": plane }))
            .send()
            .await
            .expect("the admin port answers");
        assert!(
            response.status().is_success(),
            "POST /fault on {id}: {}",
            response.status()
        );
    }

    /// The children of node `id` in the tree (for the root: its replicas).
    pub async fn children(&self, id: u64) -> Vec<u64> {
        let status = self.status(id).await.expect("a live node answers /status");
        status["children"]
            .as_array()
            .map(|children| children.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default()
    }

    /// Lifts every fault on node `id`.
    pub async fn heal(&self, id: u64) {
        let response = self
            .http
            .delete(self.spec(id).admin_url("/fault"))
            .send()
            .await
            .expect("the admin port answers");
        assert!(
            response.status().is_success(),
            "DELETE /fault on {id}: {}",
            response.status()
        );
    }

    /// The nameserver's HTTP base URL (`GET /api/endpoints` lists the live input nodes).
    pub fn nameserver_url(&self) -> String {
        self.dir.nameserver_url()
    }

    /// The `data_dir` of node `id`, as its config resolves it (relative to the config's folder).
    pub fn data_dir(&self, id: u64) -> std::path::PathBuf {
        let path = &self.spec(id).config_path;
        cluster_node::Config::load(path)
            .unwrap_or_else(|error| panic!("the config of node {id} loads: {error}"))
            .data_dir
    }

    /// Status code and JSON body (`Null` when not JSON) of `GET <path>` on node `id`'s admin port, or
    /// `None` when the node does not answer.
    pub async fn admin_get(&self, id: u64, path: &str) -> Option<(u16, Value)> {
        let response = self
            .http
            .get(self.spec(id).admin_url(path))
            .send()
            .await
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.json().await.unwrap_or(Value::Null)))
    }

    /// The `/status` of each node in `ids` that answers, asked all at once (a paused node costs one
    /// timeout, not one per node).
    pub async fn statuses(&self, ids: &[u64]) -> BTreeMap<u64, Value> {
        let answers = futures::future::join_all(
            ids.iter()
                .map(|&id| async move { (id, self.status(id).await) }),
        )
        .await;
        answers
            .into_iter()
            .filter_map(|(id, status)| status.map(|status| (id, status)))
            .collect()
    }

    /// Waits until one node among `ids` accepts writes (a writer does once every node of its tree
    /// has reported, shortly after the tree is valid); answers it.
    pub async fn wait_for_writer(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(&writer) = self.accepting_writes(ids).await.first() {
                return writer;
            }
            assert!(
                Instant::now() < deadline,
                "no node of {ids:?} accepts writes within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The nodes among `ids` whose `/status` says `accepting_writes: true`.
    pub async fn accepting_writes(&self, ids: &[u64]) -> Vec<u64> {
        self.statuses(ids)
            .await
            .into_iter()
            .filter(|(_, status)| status["accepting_writes"] == true)
            .map(|(id, _)| id)
            .collect()
    }

    /// Like [`Cluster::wait_for_tree`], but answers the last problem instead of panicking.
    pub async fn try_wait_for_tree(&self, ids: &[u64], timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.statuses(ids).await;
            let views: Vec<TreeView> = statuses
                .values()
                .filter_map(TreeView::from_status)
                .collect();
            let outcome = match ids.iter().find(|id| !statuses.contains_key(id)) {
                Some(id) => Err(format!("node {id} does not answer /status")),
                None if views.len() < ids.len() => Err("a /status lacks a tree field".to_owned()),
                None => check_tree(&views),
            };
            match outcome {
                Ok(leader) => return Ok(leader),
                Err(problem) if Instant::now() >= deadline => {
                    return Err(format!(
                        "no valid tree over {ids:?} within {timeout:?}: {problem}\n{views:?}"
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Whether `nodes` stay connected in `graph` (edges to nodes outside `nodes` are ignored).
pub fn connected(graph: &BTreeMap<u64, Vec<u64>>, nodes: &[u64]) -> bool {
    let Some(&first) = nodes.first() else {
        return true;
    };
    let mut reached = std::collections::BTreeSet::from([first]);
    let mut frontier = vec![first];
    while let Some(id) = frontier.pop() {
        for next in graph.get(&id).into_iter().flatten() {
            if nodes.contains(next) && reached.insert(*next) {
                frontier.push(*next);
            }
        }
    }
    reached.len() == nodes.len()
}
