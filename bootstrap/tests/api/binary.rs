//! The real executable: it serves, and SIGINT or SIGTERM make it stop gracefully with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::tempdir;

use crate::helpers::CLUSTER_KEY;

fn exits_zero_after(signal: Signal) {
    let directory = tempdir().expect("temporary directory");
    let key_file = directory.path().join(".cluster_key");
    std::fs::write(&key_file, format!("{CLUSTER_KEY}\n")).expect("key file written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args(["--listen", "127.0.0.1:0", "--state"])
        .arg(directory.path().join("nested/state.json"))
        .arg("--cluster-key-file")
        .arg(&key_file)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bootstrap binary starts");

    // Wait until it is serving, so the signal exercises the graceful path and not start-up.
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("bootstrap listening"));
    assert!(listening, "the bootstrap never said it was listening");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
    kill(pid, signal).expect("signal delivered");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the bootstrap did not stop within 10 s of {signal}");
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

/// Runs the binary with `args` until it exits (it must refuse to start); answers its exit code and
/// standard error.
fn refused_start(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("bootstrap binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_binary_refuses_to_start_without_a_cluster_key_file_in_one_line() {
    let directory = tempdir().expect("temporary directory");
    let state = directory.path().join("state.json");

    let (code, stderr) = refused_start(&["--state".as_ref(), state.as_os_str()]);

    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--cluster-key-file is required"),
        "{stderr}"
    );
    assert!(!state.exists(), "nothing was started");
}

#[test]
fn the_binary_refuses_a_short_or_missing_key_file_naming_it() {
    let directory = tempdir().expect("temporary directory");
    let short = directory.path().join("short_key");
    std::fs::write(&short, "not32characters\n").expect("key file written");
    let missing = directory.path().join("missing_key");

    for (file, says) in [(&short, "characters long"), (&missing, "cannot read")] {
        let (code, stderr) = refused_start(&["--cluster-key-file".as_ref(), file.as_os_str()]);

        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
    }
}

#[test]
fn the_help_documents_the_cluster_key_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .arg("--help")
        .output()
        .expect("bootstrap binary runs");

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--cluster-key-file <PATH>"), "{help}");
    assert!(help.contains(".cluster_key"), "{help}");
}
