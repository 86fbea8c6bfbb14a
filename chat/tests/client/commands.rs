//! Every command end to end through the nameserver, and the errors a person meets.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

use crate::helpers::{DELIVERY, Stream, User, eventually, group_with, spawn_cluster, success};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_send_history_and_tail_work_through_the_nameserver() {
    let (cluster, _inputs) = spawn_cluster().await;
    let ada = User::sign_up(&cluster, "ada");
    let bob = User::sign_up(&cluster, "bob");
    let session = ada.config_dir().join("session.json");
    let mode = std::fs::metadata(&session)
        .expect("login keeps a session")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the session file is private");
    let group = group_with(&ada, "crew", &[&bob]);

    // Bob follows the group live while Ada posts to it.
    let tail = bob.spawn(&["tail", "crew", "--json"]);
    tail.wait_for_stderr("following #crew on node", DELIVERY);
    let sent = success(&ada.run(&["send", "crew", "hello", "bob"]));
    let received = loop {
        match tail.next_line(DELIVERY) {
            Some((Stream::Out, line, _)) => break line,
            Some(_) => {}
            None => panic!("bob's tail printed nothing within {DELIVERY:?}"),
        }
    };
    let direct = success(&ada.run(&["send", &bob.handle, "psst"]));
    let history = success(&bob.run(&["history", "crew", "--json"]));
    let by_id = success(&bob.run(&["history", &group]));
    // Bob's node is a copy that may apply Ada's direct message a moment after she was answered.
    let direct_history = eventually(|| {
        let history = success(&bob.run(&["history", &ada.handle]));
        history.contains("psst").then_some(history)
    });
    let chats = success(&bob.run(&["chats"]));
    let groups = success(&bob.run(&["groups"]));
    let status = success(&bob.run(&["status"]));

    assert!(
        sent.contains(&format!("#crew {}: hello bob", ada.handle)),
        "{sent}"
    );
    let event: Value = serde_json::from_str(&received).expect("tail --json prints JSON");
    assert_eq!(event["content"], "hello bob");
    assert_eq!(event["chat"], group.as_str());
    assert!(
        direct.contains(&format!("@{} {}: psst", bob.handle, ada.handle)),
        "{direct}"
    );
    let listed: Value = serde_json::from_str(history.trim()).expect("one JSON line");
    assert_eq!(listed["content"], "hello bob", "{history}");
    assert!(
        by_id.contains("hello bob"),
        "a group is named by its id too: {by_id}"
    );
    assert!(direct_history.contains("psst"), "{direct_history}");
    assert!(
        chats.contains("#crew") && chats.contains(&format!("@{}", ada.handle)),
        "{chats}"
    );
    assert!(groups.contains(&format!("{group}  crew")), "{groups}");
    assert!(status.starts_with("leader: node "), "{status}");
    assert!(status.contains("(handed out)"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_one_line_errors_and_the_documented_exit_codes() {
    let (cluster, _inputs) = spawn_cluster().await;
    let ada = User::sign_up(&cluster, "ada");

    let unknown_group = ada.run(&["send", "nowhere", "hi"]);
    let malformed = ada.run(&["send", "bob#12", "hi"]);
    let unknown_user = ada.run(&["history", "nobody#0001"]);
    let wrong_password = ada.run_with_input(&["login", &ada.handle, "--password-stdin"], "nope");
    let logout = ada.run(&["logout"]);
    let after_logout = ada.run(&["groups"]);
    let usage = ada.run(&["send"]);
    // Port 1 on loopback: nothing listens there.
    let unreachable =
        nobody_listening().run_with_input(&["register", "zed", "--password-stdin"], "a password");

    let line = |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    for (output, code, text) in [
        (&unknown_group, 1, "unknown group \"nowhere\""),
        (&malformed, 2, "malformed name#tag \"bob#12\""),
        (&unknown_user, 1, "unknown user nobody#0001"),
        (&wrong_password, 1, "wrong password"),
        (&after_logout, 1, "not logged in"),
        (&usage, 2, "Usage"),
        (&unreachable, 1, "cluster unreachable"),
    ] {
        assert_eq!(output.status.code(), Some(code), "{text}: {}", line(output));
        assert!(
            line(output).contains(text),
            "expected {text:?} in {:?}",
            line(output)
        );
        assert!(!line(output).contains("panicked"), "{}", line(output));
    }
    assert_eq!(
        line(&malformed).lines().count(),
        1,
        "one line: {}",
        line(&malformed)
    );
    assert!(success(&logout).contains("logged out"));
    assert!(!ada.config_dir().join("session.json").exists());
}

/// A user whose nameserver is port 1 on loopback, where nothing listens.
fn nobody_listening() -> User {
    User::unregistered("http://127.0.0.1:1")
}
