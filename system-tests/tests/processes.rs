//! The binaries as an operator runs them: real processes, real ports, real signals.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use system_tests::{ClusterDir, Process, binary, wait_for_json};

const STARTUP: Duration = Duration::from_secs(20);
const EXIT: Duration = Duration::from_secs(5);

fn registered_as(id: u64) -> impl Fn(&serde_json::Value) -> bool {
    move |status| status["id"] == id && status["registered"] == true
}

fn assert_exits_cleanly(process: &mut Process) {
    let status = process
        .wait_exit(EXIT)
        .unwrap_or_else(|| panic!("{} did not exit within {EXIT:?} of SIGINT", process.name()));
    if !status.success() {
        let stderr = process.stderr();
        panic!("{} exited with {status}: {stderr}", process.name());
    }
}

#[tokio::test]
async fn three_nodes_register_answer_status_and_exit_zero_on_sigint() {
    let cluster = ClusterDir::new();
    let mut bootstrap = cluster.start_bootstrap();
    let mut nameserver = cluster.start_nameserver();
    let specs: Vec<_> = (1..=3).map(|id| cluster.write_node_config(id)).collect();
    let mut nodes: Vec<_> = specs.iter().map(|spec| cluster.start_node(spec)).collect();

    let mut edges_seen = 0;
    for spec in &specs {
        let status =
            wait_for_json(&spec.admin_url("/status"), STARTUP, registered_as(spec.id)).await;
        edges_seen += status["neighbors"].as_array().map_or(0, Vec::len);
    }
    // Whatever the registration order, each node after the first was given at least one neighbour.
    assert!(
        edges_seen >= 2,
        "only {edges_seen} neighbour entries across 3 nodes"
    );
    let metrics = reqwest::get(specs[0].admin_url("/metrics")).await.unwrap();
    assert!(metrics.status().is_success());
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("chat_node_bootstrap_registration_attempts_total"),
        "{text}"
    );

    for process in nodes.iter().chain([&bootstrap, &nameserver]) {
        process.signal(Signal::SIGINT);
    }
    for process in nodes.iter_mut() {
        assert_exits_cleanly(process);
    }
    assert_exits_cleanly(&mut bootstrap);
    assert_exits_cleanly(&mut nameserver);

    for spec in &specs {
        let logs = spec.config_path.parent().unwrap().join("logs");
        for file in [
            "control.log",
            "data.log",
            "storage.log",
            "web.log",
            "node.log",
        ] {
            assert!(
                logs.join(file).exists(),
                "missing {file} in {}",
                logs.display()
            );
        }
    }
}

#[tokio::test]
async fn a_node_started_before_the_bootstrap_registers_once_it_appears() {
    let cluster = ClusterDir::new();
    let spec = cluster.write_node_config(1);
    let mut node = cluster.start_node(&spec);
    let waiting = wait_for_json(&spec.admin_url("/status"), STARTUP, |s| s["id"] == 1).await;
    assert_eq!(waiting["registered"], false);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _bootstrap = cluster.start_bootstrap();
    // A lone node has no neighbours, so only the registration flag can be checked here.
    wait_for_json(&spec.admin_url("/status"), STARTUP, |s| {
        s["registered"] == true
    })
    .await;

    node.signal(Signal::SIGTERM);
    assert_exits_cleanly(&mut node);
    let stderr = node.stderr();
    let warnings = stderr
        .matches("registration with the bootstrap failed")
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "failures are logged once per interval, not per attempt; got {warnings}:\n{stderr}"
    );
}

#[test]
fn a_node_with_a_bad_config_exits_2_with_one_line_naming_the_field() {
    let cluster = ClusterDir::new();
    let spec = cluster.write_node_config(4);
    let text = std::fs::read_to_string(&spec.config_path).unwrap();
    let bad = text.replace(
        &format!("data_port = {}", spec.data_port),
        "data_port = 1234",
    );
    std::fs::write(&spec.config_path, bad).unwrap();

    let output = Command::new(binary("cluster-node"))
        .arg(&spec.config_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("data_port"), "{stderr}");
}

#[test]
fn a_node_without_a_cluster_key_refuses_to_start_with_one_line_naming_it() {
    let cluster = ClusterDir::new();
    let spec = cluster.write_node_config(4);
    let text = std::fs::read_to_string(&spec.config_path).unwrap();
    let keyless: String = text
        .lines()
        .filter(|line| !line.starts_with("cluster_key"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(
        keyless, text,
        "the written config has a cluster key to remove"
    );
    std::fs::write(&spec.config_path, keyless).unwrap();

    let output = Command::new(binary("cluster-node"))
        .arg(&spec.config_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`cluster_key`"), "{stderr}");
}

#[test]
fn a_node_without_a_config_argument_exits_2_with_usage() {
    let output = Command::new(binary("cluster-node")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage"));
}

fn init_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../init.sh")
}

#[test]
fn init_writes_64_valid_configs_whose_ports_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(init_script())
        .args(["64", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut ports = std::collections::HashSet::new();
    for id in 1..=64u64 {
        let config = cluster_node::Config::load(&dir.path().join(format!("NODE_{id}/.cfg")))
            .unwrap_or_else(|error| panic!("NODE_{id}: {error}"));
        assert_eq!(config.id.0, id);
        assert_eq!(config.log_dir, dir.path().join(format!("NODE_{id}/logs")));
        for port in [
            config.control_port,
            config.data_port,
            config.http_port,
            config.admin_port,
        ] {
            assert!(ports.insert(port), "port {port} used twice");
            assert!(
                ![45998, 45999, 9999].contains(&port),
                "port {port} collides with a service"
            );
        }
    }
}

#[test]
fn init_with_fewer_nodes_removes_the_configs_above_n_but_keeps_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = |n: &str| {
        let status = Command::new("bash")
            .arg(init_script())
            .args([n, dir.path().to_str().unwrap()])
            .output()
            .unwrap()
            .status;
        assert!(status.success());
    };
    run("3");
    std::fs::create_dir_all(dir.path().join("NODE_3/data")).unwrap();
    run("2");
    assert!(dir.path().join("NODE_2/.cfg").exists());
    assert!(!dir.path().join("NODE_3/.cfg").exists());
    assert!(dir.path().join("NODE_3/data").exists());
}

#[test]
fn init_gives_every_node_one_cluster_key_and_keeps_it_when_run_again() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let run = |n: &str| {
        let output = Command::new("bash")
            .arg(init_script())
            .args([n, dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let keys = |ids: std::ops::RangeInclusive<u64>| {
        ids.map(|id| {
            cluster_node::Config::load(&dir.path().join(format!("NODE_{id}/.cfg")))
                .unwrap_or_else(|error| panic!("NODE_{id}: {error}"))
                .cluster_key
        })
        .collect::<Vec<_>>()
    };

    run("3");
    let first = keys(1..=3);
    run("5");
    let again = keys(1..=5);

    assert!(first.iter().all(|key| *key == first[0]));
    assert!(again.iter().all(|key| *key == first[0]));
    let key_file = std::fs::metadata(dir.path().join(".cluster_key")).unwrap();
    assert_eq!(key_file.permissions().mode() & 0o777, 0o600);
    let config = std::fs::metadata(dir.path().join("NODE_1/.cfg")).unwrap();
    assert_eq!(
        config.permissions().mode() & 0o077,
        0,
        "a config holds the key"
    );
}

#[test]
fn init_refuses_zero_or_garbage_with_a_usage_line() {
    for bad in [vec!["0"], vec!["-1"], vec!["four"], vec!["501"], vec![]] {
        let output = Command::new("bash")
            .arg(init_script())
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("usage"),
            "{bad:?}"
        );
    }
}
