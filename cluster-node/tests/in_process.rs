//! Nodes run as a library inside the test process: ports chosen by the kernel, a bootstrap started
//! in-process too, the control plane over real ZeroMQ sockets on loopback.

use std::time::Duration;

use cluster_node::config::{ClusterKey, Config, NodeId};
use cluster_node::{Node, status::NodeStatus};
use tokio_util::sync::CancellationToken;

/// One key for the bootstrap and both nodes: their registrations must prove it.
const CLUSTER_KEY: &str = "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f";

fn config(id: u64, bootstrap: std::net::SocketAddr, dir: &std::path::Path) -> Config {
    Config {
        id: NodeId(id),
        host: "127.0.0.1".parse().unwrap(),
        control_port: 0,
        data_port: 0,
        // A free port: leaves serve HTTP on it once they become input nodes.
        http_port: std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap(),
        admin_port: 0,
        bootstrap: bootstrap.to_string().parse().unwrap(),
        nameservers: vec!["127.0.0.1:1".parse().unwrap()],
        data_dir: dir.join(format!("node{id}/data")),
        log_dir: dir.join(format!("node{id}/logs")),
        allow_faults: false,
        nameserver_http: Vec::new(),
        cluster_key: ClusterKey::parse(CLUSTER_KEY).unwrap(),
        replication_factor: Default::default(),
        voter_grace: std::time::Duration::from_millis(cluster_node::config::DEFAULT_VOTER_GRACE_MS),
        tls: None,
        backups: None,
    }
}

async fn wait_until(
    receiver: &mut tokio::sync::watch::Receiver<NodeStatus>,
    accept: impl Fn(&NodeStatus) -> bool,
) -> NodeStatus {
    let waited = tokio::time::timeout(Duration::from_secs(15), receiver.wait_for(|s| accept(s)))
        .await
        .map(|status| status.expect("the status board outlives the node").clone());
    match waited {
        Ok(status) => status,
        Err(_) => panic!("not reached in time; last status: {:?}", *receiver.borrow()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_library_nodes_on_kernel_chosen_ports_elect_one_leader_and_stop_on_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = bootstrap::Application::build(bootstrap::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("bootstrap.json"),
        cluster_auth::ProofKey::derive(CLUSTER_KEY.as_bytes()),
    ))
    .await
    .unwrap();
    let bootstrap_addr = bootstrap.local_addr();
    let shutdown = CancellationToken::new();
    let services = tokio::spawn(bootstrap.run_until_stopped(shutdown.clone().cancelled_owned()));

    let mut boards = Vec::new();
    let mut nodes = Vec::new();
    for id in [1, 2] {
        let node = Node::build(config(id, bootstrap_addr, dir.path()))
            .await
            .unwrap();
        assert_ne!(node.admin_addr().port(), 0);
        assert_ne!(node.control_addr().port(), node.data_addr().port());
        boards.push(node.status().subscribe());
        nodes.push(tokio::spawn(node.run_until_stopped(shutdown.clone())));
    }

    // Which node leads depends on timing: node 1 registered alone, and a node that finds a leader
    // already in place joins it instead of starting an election. Both must end up in one tree.
    let first = wait_until(&mut boards[0], |s| s.ready && s.leader.is_some()).await;
    let leader = first.leader.unwrap();
    let other = if leader == NodeId(1) {
        NodeId(2)
    } else {
        NodeId(1)
    };
    for board in &mut boards {
        wait_until(board, |s| s.ready && s.leader == Some(leader)).await;
    }
    // The child may learn its parent a moment before the parent records the child.
    let root_board = &mut boards[(leader.0 - 1) as usize];
    let root = wait_until(root_board, |s| !s.children.is_empty()).await;
    assert_eq!(root.parent, None);
    assert_eq!(root.children, vec![other]);
    let child = wait_until(&mut boards[(other.0 - 1) as usize], |s| s.parent.is_some()).await;
    assert_eq!(child.parent, Some(leader));

    shutdown.cancel();
    for node in nodes {
        tokio::time::timeout(Duration::from_secs(6), node)
            .await
            .unwrap()
            .unwrap();
    }
    services.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_node_with_a_certificate_serves_https_registers_an_https_url_and_sets_secure_cookies()
 {
    let dir = tempfile::tempdir().unwrap();
    let (authority, _) =
        cluster_tls::LocalAuthority::open_or_create(&dir.path().join("ca")).unwrap();
    let issue = |out: &str| {
        let (cert, key) = authority
            .issue(&["127.0.0.1".into()])
            .unwrap()
            .write_to(&dir.path().join(out))
            .unwrap();
        cluster_node::config::TlsFiles { cert, key }
    };
    let node_tls = issue("node1-tls");
    let nameserver_tls = issue("nameserver-tls");
    let ca = std::fs::read(authority.certificate_path()).unwrap();

    let key = cluster_auth::ProofKey::derive(CLUSTER_KEY.as_bytes());
    let bootstrap = bootstrap::Application::build(bootstrap::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("bootstrap.json"),
        key.clone(),
    ))
    .await
    .unwrap();
    let nameserver = nameserver::Application::build(nameserver::Config {
        grpc: "127.0.0.1:0".parse().unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        lease: nameserver::Config::DEFAULT_LEASE,
        cluster_key: key,
    })
    .await
    .unwrap()
    .with_tls(nameserver_tls.load().unwrap());
    let nameserver_http = nameserver.http_addr();
    let mut config = config(1, bootstrap.local_addr(), dir.path());
    config.nameservers = vec![nameserver.grpc_addr().to_string().parse().unwrap()];
    config.tls = Some(node_tls);
    let shutdown = CancellationToken::new();
    let services = tokio::spawn(bootstrap.run_until_stopped(shutdown.clone().cancelled_owned()));
    let redirector = tokio::spawn(nameserver.run_until_stopped(shutdown.clone().cancelled_owned()));
    let node = Node::build(config).await.unwrap();
    let mut board = node.status().subscribe();
    let node = tokio::spawn(node.run_until_stopped(shutdown.clone()));

    let serving = wait_until(&mut board, |s| s.http.is_some() && s.accepting_writes).await;
    let url = serving.http.unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // A client that trusts the cluster's CA, and nothing else.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let registered = client
        .post(format!("{url}/api/register"))
        .header("origin", &url)
        .json(&serde_json::json!({"username": "ada", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), reqwest::StatusCode::CREATED);
    let user: serde_json::Value = registered.json().await.unwrap();
    let logged_in = client
        .post(format!("{url}/api/login"))
        .header("origin", &url)
        .json(&serde_json::json!({
            "username": "ada", "tag": user["tag"], "password": "correct horse"
        }))
        .send()
        .await
        .unwrap();
    assert!(logged_in.status().is_success(), "{}", logged_in.status());
    let cookie = logged_in
        .headers()
        .get("set-cookie")
        .expect("logging in sets the session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("chat_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The nameserver answers over HTTPS too and sends browsers to the node's https:// URL once the
    // node's lease is in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let location = loop {
        let answer = client
            .get(format!("https://{nameserver_http}/"))
            .send()
            .await
            .unwrap();
        if answer.status() == reqwest::StatusCode::TEMPORARY_REDIRECT {
            break answer.headers()["location"].to_str().unwrap().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no redirect: {}",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(location, format!("{url}/"));

    // Plain HTTP is not served on the HTTPS port.
    let plain = reqwest::Client::new()
        .get(url.replacen("https://", "http://", 1))
        .send()
        .await;
    assert!(
        plain.map_or(true, |answer| !answer.status().is_success()),
        "plain HTTP must not be answered"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(6), node)
        .await
        .unwrap()
        .unwrap();
    services.await.unwrap().unwrap();
    redirector.await.unwrap().unwrap();
}
