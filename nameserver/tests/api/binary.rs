//! The real executable: it serves, and SIGINT or SIGTERM make it stop gracefully with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::CLUSTER_KEY;

fn exits_zero_after(signal: Signal) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let key_file = directory.path().join(".cluster_key");
    std::fs::write(&key_file, format!("{CLUSTER_KEY}\n")).expect("key file written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args([
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--lease-ms",
            "500",
        ])
        .arg("--cluster-key-file")
        .arg(&key_file)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("nameserver binary starts");

    // Wait until it is serving, so the signal exercises the graceful path and not start-up.
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("nameserver listening"));
    assert!(listening, "the nameserver never said it was listening");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
    kill(pid, signal).expect("signal delivered");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the nameserver did not stop within 10 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit status after {signal}");
}

#[test]
fn the_binary_exits_zero_on_sigterm() {
    exits_zero_after(Signal::SIGTERM);
}

#[test]
fn the_binary_exits_zero_on_sigint() {
    exits_zero_after(Signal::SIGINT);
}

#[test]
fn a_lease_too_long_for_the_clock_stops_the_binary_with_one_line() {
    // u64::MAX ms used to be accepted, and the first registration then overflowed the expiry time.
    let directory = tempfile::tempdir().expect("temporary directory");
    let key_file = directory.path().join(".cluster_key");
    std::fs::write(&key_file, format!("{CLUSTER_KEY}\n")).expect("key file written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--lease-ms", &u64::MAX.to_string()])
        .arg("--cluster-key-file")
        .arg(&key_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nameserver binary starts");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the nameserver accepted a lease of u64::MAX ms and kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr read");
    assert!(!status.success());
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("the lease duration must be between 1 ms and 3600 s"),
        "{stderr}"
    );
}

#[test]
fn the_binary_takes_the_bootstrap_address_for_the_cluster_view() {
    let output = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .arg("--help")
        .output()
        .expect("nameserver binary runs");

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--bootstrap"), "{help}");
    assert!(help.contains("127.0.0.1:45999"), "{help}");
}

#[test]
fn the_binary_refuses_to_start_without_a_cluster_key_file_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .output()
        .expect("nameserver binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--cluster-key-file is required"),
        "{stderr}"
    );
}

#[test]
fn the_binary_refuses_a_key_file_it_cannot_read_naming_it() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let missing = directory.path().join("no_such_key");
    let output = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--cluster-key-file")
        .arg(&missing)
        .env("NO_COLOR", "1")
        .output()
        .expect("nameserver binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no_such_key"), "{stderr}");
}

#[test]
fn the_help_documents_the_cluster_key_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .arg("--help")
        .output()
        .expect("nameserver binary runs");

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--cluster-key-file <PATH>"), "{help}");
    assert!(help.contains(".cluster_key"), "{help}");
}

/// The line the binary logs once it serves, started with `flags`; the binary is stopped afterwards.
fn listening_line(flags: &[&str]) -> String {
    let directory = tempfile::tempdir().expect("temporary directory");
    let key_file = directory.path().join(".cluster_key");
    std::fs::write(&key_file, format!("{CLUSTER_KEY}\n")).expect("key file written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(flags)
        .arg("--cluster-key-file")
        .arg(&key_file)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("nameserver binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("nameserver listening"));
    let _ = child.kill();
    let _ = child.wait();
    line.expect("the nameserver never said it was listening")
}

#[test]
fn the_binary_probes_every_250_ms_with_a_200_ms_timeout_unless_told_otherwise() {
    let default = listening_line(&[]);
    let tuned = listening_line(&["--probe-interval-ms", "100", "--probe-timeout-ms", "50"]);
    let disabled = listening_line(&["--no-probe"]);

    assert!(default.contains("probe_interval_ms=250"), "{default}");
    assert!(default.contains("probe_timeout_ms=200"), "{default}");
    assert!(tuned.contains("probe_interval_ms=100"), "{tuned}");
    assert!(tuned.contains("probe_timeout_ms=50"), "{tuned}");
    assert!(!disabled.contains("probe_"), "{disabled}");
}

#[test]
fn a_probe_setting_out_of_range_stops_the_binary_with_one_line() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let key_file = directory.path().join(".cluster_key");
    std::fs::write(&key_file, format!("{CLUSTER_KEY}\n")).expect("key file written");
    let output = Command::new(env!("CARGO_BIN_EXE_nameserver"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--probe-timeout-ms", &u64::MAX.to_string()])
        .arg("--cluster-key-file")
        .arg(&key_file)
        .env("NO_COLOR", "1")
        .output()
        .expect("nameserver binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the probe timeout must be between 1 ms and 3600 s"),
        "{stderr}"
    );
}
