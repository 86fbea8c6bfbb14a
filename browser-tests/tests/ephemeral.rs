//! Ephemeral groups over real processes: members on two input nodes see every message in one order
//! (the writer numbers them), no message text reaches any file under any node's folder (databases,
//! logs, everything), and the groups end when the writer is killed: both members are told, and the
//! group is gone from the new writer. Then the same in two real browsers: created from the home page,
//! a member added, a message seen live, and both pages saying the group ended with the writer.

use std::path::Path;
use std::time::{Duration, Instant};

use browser_tests::browser::{ChromeDriver, Tools, poll, texts, wait_for};
use browser_tests::inputs::wait_for_inputs;
use browser_tests::pages::{
    CONVERGE, EVENT, click, enter_through_nameserver, js, register, type_into,
};
use browser_tests::session::Session;
use browser_tests::sse::EventStream;
use serde_json::json;
use system_tests::cluster::Cluster;

const MESSAGES_EACH: usize = 20;

/// A writer killed before its voter set is full (3) would leave no majority: wait for it.
async fn wait_for_three_voters(cluster: &Cluster, writer: u64) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = cluster.status(writer).await.unwrap_or_default();
        if status["voters"]
            .as_array()
            .is_some_and(|voters| voters.len() >= 3)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the voter set never filled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|window| window == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// The `ephemeral_message` events of `stream` until `count` arrived: `(seq, content)`.
async fn messages(stream: &mut EventStream, count: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let frame = stream.next_of("ephemeral_message", EVENT).await;
        let message = frame.json();
        seen.push((
            message["seq"].as_u64().expect("a seq"),
            message["content"].as_str().expect("content").to_owned(),
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_group_keeps_one_order_leaves_no_trace_and_ends_with_the_writer() {
    let mut cluster = Cluster::start_in_order(5).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    let writer = cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_for_inputs(&cluster, 2, CONVERGE).await;
    let (x, y) = (&inputs[0], &inputs[1]);
    assert!(x.id != writer && y.id != writer, "input nodes are leaves");
    let ada = Session::new(&x.url);
    ada.sign_up("ada").await;
    let bob = Session::new(&y.url);
    let bob_tag = bob.sign_up("bob").await;
    // Bob's node is a copy: his account must be there before Ada's node can find him by name.
    let (_, bob_me) = bob.get("/api/me").await;
    let deadline = Instant::now() + EVENT;
    while ada.get(&format!("/api/users/bob/{bob_tag}")).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "ada's node never saw bob: {bob_me}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, group) = ada
        .post("/api/groups", json!({ "name": "now", "ephemeral": true }))
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["ephemeral"], true);
    let group = group["id"].as_str().expect("an id").to_owned();
    let mut adas = ada.events(None).await;
    let mut bobs = bob.events(None).await;
    let (status, body) = ada
        .post(
            &format!("/api/ephemeral/{group}/members"),
            json!({ "username": "bob", "tag": bob_tag }),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Both post at once through their own input nodes.
    let secret = format!("ephemeral-{}", uuid_like());
    let post_all = |session: Session, who: &'static str| {
        let group = group.clone();
        let secret = secret.clone();
        tokio::spawn(async move {
            for n in 0..MESSAGES_EACH {
                let (status, body) = session
                    .post(
                        &format!("/api/ephemeral/{group}/messages"),
                        json!({ "content": format!("{secret} {who} {n}") }),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        })
    };
    let sending = [post_all(ada.clone(), "ada"), post_all(bob.clone(), "bob")];
    for task in sending {
        task.await.expect("the posts went through");
    }
    let total = 2 * MESSAGES_EACH;
    let seen_by_ada = messages(&mut adas, total).await;
    let seen_by_bob = messages(&mut bobs, total).await;
    let seqs: Vec<u64> = seen_by_ada.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "one order, no gaps"
    );
    assert_eq!(
        seen_by_ada, seen_by_bob,
        "the same order on both input nodes"
    );

    // No file of any node holds a word of it (the databases and their WAL, the logs, everything).
    let traces = files_containing(cluster.dir.path(), secret.as_bytes());
    assert!(traces.is_empty(), "ephemeral text found in {traces:?}");

    // A writer killed before the voter set is full (3) would leave no majority: wait for it.
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = cluster.status(writer).await.unwrap_or_default();
        if status["voters"]
            .as_array()
            .is_some_and(|voters| voters.len() >= 3)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the voter set never filled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The writer dies: both members are told (on their open stream, or when it reconnects after
    // the tree is rebuilt), and the new writer has no such group.
    cluster.kill(writer);
    let killed = Instant::now();
    for (session, stream) in [(&ada, adas), (&bob, bobs)] {
        let told = told_of_end(session, stream, &group).await;
        println!(
            "a member was told the ephemeral group ended {} ms after the writer was killed{}",
            killed.elapsed().as_millis(),
            if told {
                " (on a reconnected stream)"
            } else {
                ""
            }
        );
    }
    let deadline = Instant::now() + CONVERGE;
    loop {
        let (status, body) = ada.get(&format!("/api/ephemeral/{group}")).await;
        if status == 404 {
            break;
        }
        assert!(
            status == 503 && Instant::now() < deadline,
            "the group outlived its writer: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The cluster itself goes on: a new ephemeral group under the new writer works.
    let (status, body) = ada
        .post("/api/groups", json!({ "name": "again", "ephemeral": true }))
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Waits for `ephemeral_ended` of `group` with reason `writer_changed`, reconnecting the stream when
/// it ends as a client would; answers whether it took a reconnection.
async fn told_of_end(session: &Session, mut stream: EventStream, group: &str) -> bool {
    let deadline = Instant::now() + CONVERGE;
    let mut reconnected = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no ephemeral_ended within {CONVERGE:?}");
        match stream.next(left).await {
            Some(frame) if frame.kind() == "ephemeral_ended" => {
                assert_eq!(
                    frame.json(),
                    json!({ "group": group, "reason": "writer_changed" })
                );
                return reconnected;
            }
            Some(_) => {}
            None => loop {
                assert!(Instant::now() < deadline, "the stream never reopened");
                if let Some(reopened) = session.try_events().await {
                    stream = reopened;
                    reconnected = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            },
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_share_an_ephemeral_group_and_both_pages_say_when_it_ended_with_the_writer() {
    let test =
        "two_browsers_share_an_ephemeral_group_and_both_pages_say_when_it_ended_with_the_writer";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let mut cluster = Cluster::start_in_order(5).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    let writer = cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    wait_for_inputs(&cluster, 2, CONVERGE).await;
    wait_for_three_voters(&cluster, writer).await;
    let profiles = tempfile::tempdir().expect("a temporary directory");
    let driver = ChromeDriver::start(&tools, profiles.path()).await;
    let (ada_profile, bob_profile) = (profiles.path().join("ada"), profiles.path().join("bob"));
    for profile in [&ada_profile, &bob_profile] {
        std::fs::create_dir_all(profile).expect("a profile folder");
    }
    let ada = driver.session(&ada_profile).await;
    let bob = driver.session(&bob_profile).await;
    let nameserver = format!("{}/", cluster.nameserver_url());

    let scenario = async {
        enter_through_nameserver(&ada, &nameserver).await;
        register(&ada, "ada").await;
        let bob_base = enter_through_nameserver(&bob, &nameserver).await;
        let bob_handle = register(&bob, "bob").await;

        // Ada creates an ephemeral group from her home page and adds Bob.
        type_into(
            &ada,
            "form[action='/groups'] input[name='name']",
            "right now",
        )
        .await;
        click(&ada, "form[action='/groups'] input[name='ephemeral']").await;
        click(&ada, "form[action='/groups'] button[type='submit']").await;
        let path = poll("the ephemeral group opens", EVENT, || async {
            let url = ada.current_url().await.ok()?;
            url.path()
                .starts_with("/ephemeral/")
                .then(|| url.path().to_owned())
        })
        .await;
        wait_for(&ada, "#chat[data-kind='ephemeral']", EVENT).await;
        // Ada's node may be a copy that learns of Bob's account a moment after he registered:
        // until then the form comes back with "user not found", and she tries again.
        let deadline = Instant::now() + EVENT;
        loop {
            // Read from the document: the members panel may be closed after the form's redirect.
            let members = js(
                &ada,
                "return Array.from(document.querySelectorAll('#members li'), (li) => li.textContent);",
                vec![],
            )
            .await;
            let listed = members.as_array().is_some_and(|members| {
                members.iter().any(|member| {
                    member
                        .as_str()
                        .is_some_and(|text| text.contains(&bob_handle))
                })
            });
            if listed {
                break;
            }
            if Instant::now() >= deadline {
                let page = js(
                    &ada,
                    "return location.href + ' ' + document.body.innerText.slice(0, 600);",
                    vec![],
                )
                .await;
                panic!("bob was never added; ada's page: {page}");
            }
            let open = js(
                &ada,
                "return document.getElementById('group-info').open;",
                vec![],
            )
            .await;
            if open != json!(true) {
                click(&ada, "#group-info summary").await;
            }
            type_into(
                &ada,
                "form[action$='/members'] input[name='handle']",
                &bob_handle,
            )
            .await;
            click(&ada, "form[action$='/members'] button[type='submit']").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // Bob opens it on his own input node; Ada's message appears there live.
        bob.goto(&format!("{bob_base}{path}"))
            .await
            .expect("the group page opens");
        wait_for(&bob, "#ephemeral-composer textarea", EVENT).await;
        let text = "gone by tonight";
        type_into(
            &ada,
            "#ephemeral-composer textarea",
            &format!("{text}\u{E007}"),
        )
        .await;
        poll("bob's page shows ada's message", EVENT, || async {
            texts(&bob, "#messages li .content")
                .await
                .iter()
                .any(|shown| shown == text)
                .then_some(())
        })
        .await;

        // The writer dies: both pages say the group ended with it, and sending stops.
        cluster.kill(writer);
        let killed = Instant::now();
        for page in [&ada, &bob] {
            poll(
                "the page says the group ended",
                Duration::from_secs(20),
                || async {
                    // The page says so where it is, or, if it moved to another input node while
                    // the tree was rebuilt, the page of the ended group there does.
                    let said = js(
                        page,
                        "const gone = document.getElementById('gone'); \
                         return gone && !gone.hidden ? gone.textContent : document.body.innerText;",
                        vec![],
                    )
                    .await;
                    said.as_str()
                        .is_some_and(|text| text.contains("writer changed"))
                        .then_some(())
                },
            )
            .await;
        }
        println!(
            "both pages said the ephemeral group ended {} ms after the writer was killed",
            killed.elapsed().as_millis()
        );
        let disabled = js(
            &bob,
            "return document.querySelector('#ephemeral-composer textarea').disabled;",
            vec![],
        )
        .await;
        assert_eq!(disabled, json!(true));
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
