//! `chat tail` across the kill of its input node: another client keeps posting through another node,
//! and the tail must print every acknowledged message exactly once, in order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    DELIVERY, Running, Stream, User, api_client, group_with, post_once, spawn_cluster,
};

/// Messages posted before the kill, and at least this many after it.
const BEFORE_KILL: usize = 10;
const AFTER_KILL: usize = 20;
const POST_EVERY: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_keeps_going_across_the_kill_of_its_input_node_with_nothing_lost_or_repeated() {
    let (mut cluster, inputs) = spawn_cluster().await;
    let ada = User::sign_up(&cluster, "ada");
    let bob = User::sign_up(&cluster, "bob");
    let group = group_with(&ada, "crew", &[&bob]);
    let tail = bob.spawn(&["tail", "crew", "--json"]);
    let (following, _) = tail.wait_for_stderr("following #crew on node", DELIVERY);
    let tail_node = node_id(&following);
    let poster_node = inputs
        .iter()
        .find(|node| node.id != tail_node)
        .expect("a second input node")
        .clone();
    let poster = api_client(&poster_node, &ada.handle).await;

    // Ada posts steadily through the other node; the posts are numbered in the order acknowledged.
    let acknowledged: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posting = {
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let content = format!("message {n}");
                post_once(&poster, &group, &content).await;
                acknowledged
                    .lock()
                    .expect("not poisoned")
                    .push((content, Instant::now()));
                n += 1;
                tokio::time::sleep(POST_EVERY).await;
            }
        })
    };
    let mut printed: Vec<(String, Instant)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    read_until(&tail, BEFORE_KILL, &mut printed, &mut notes);

    cluster.kill(tail_node);
    let killed = Instant::now();
    let posted_before_kill = acknowledged.lock().expect("not poisoned").len();
    read_until(
        &tail,
        posted_before_kill + AFTER_KILL,
        &mut printed,
        &mut notes,
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    posting.await.expect("the poster ends");
    let total = acknowledged.lock().expect("not poisoned").len();
    read_until(&tail, total, &mut printed, &mut notes);
    // Anything printed beyond what was acknowledged would be a duplicate: give it a moment to show.
    if let Some((_, line, _)) = tail
        .next_line(Duration::from_millis(500))
        .filter(|(s, ..)| *s == Stream::Out)
    {
        panic!("tail printed more than was posted: {line}");
    }

    let acknowledged = acknowledged.lock().expect("not poisoned").clone();
    let expected: Vec<&str> = acknowledged
        .iter()
        .map(|(content, _)| content.as_str())
        .collect();
    let shown: Vec<&str> = printed
        .iter()
        .map(|(content, _)| content.as_str())
        .collect();
    assert_eq!(
        shown, expected,
        "every message once, in order; notes: {notes:?}"
    );
    // The interruption: from the kill to the first message that was posted after it on screen.
    let first_after = acknowledged
        .iter()
        .position(|(_, at)| *at > killed)
        .expect("messages were posted after the kill");
    let interruption = printed[first_after].1.duration_since(killed);
    let resumed = notes
        .iter()
        .find(|note| note.contains("resumed on node"))
        .unwrap_or_else(|| panic!("tail says where it resumed: {notes:?}"));
    eprintln!(
        "chat tail: node {tail_node} killed; first message posted after the kill printed {} ms \
         after it; {resumed}",
        interruption.as_millis()
    );
    assert!(
        !resumed.contains(&format!("node {tail_node} ")),
        "resumed on another node: {resumed}"
    );
}

/// Reads the tail until it has printed `count` messages, keeping its stderr notes.
fn read_until(
    tail: &Running,
    count: usize,
    printed: &mut Vec<(String, Instant)>,
    notes: &mut Vec<String>,
) {
    let deadline = Instant::now() + DELIVERY * 2;
    while printed.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match tail.next_line(left) {
            Some((Stream::Out, line, at)) => {
                let event: Value = serde_json::from_str(&line).expect("JSON lines");
                let content = event["content"].as_str().expect("content").to_owned();
                printed.push((content, at));
            }
            Some((Stream::Err, line, _)) => notes.push(line),
            None => panic!(
                "tail printed {} of {count} messages within {:?}; notes: {notes:?}",
                printed.len(),
                DELIVERY * 2
            ),
        }
    }
}

/// The node id in `chat: following … on node 4 (http://…)`.
pub fn node_id(line: &str) -> u64 {
    line.split("node ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no node id in {line:?}"))
}
