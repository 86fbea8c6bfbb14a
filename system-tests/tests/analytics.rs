//! Group statistics on a cluster of real processes: 10,000 messages written through the JSON API,
//! and `GET /api/groups/{id}/stats` checked against a count the test makes from what it sent: shared
//! out to several nodes on a cold query, answered from the copies' caches on a warm one, and the
//! same after a node that computed a share is killed (SIGKILL) or stopped (SIGSTOP) right before a
//! query, its ranges computed by others. Prints each query's time with `--no-capture`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(20);
const MESSAGES: usize = 10_000;
/// Clients posting at once.
const POSTERS: usize = 16;

/// Words the messages are made of, the first the most used (weights fall off like 1/rank, so the
/// top 20 are mostly far apart). Some are not ASCII, and the test writes some capitalised: the
/// statistics count them lowercased.
const VOCABULARY: [&str; 32] = [
    "deploy",
    "release",
    "café",
    "build",
    "straße",
    "review",
    "merge",
    "ticket",
    "日本",
    "cluster",
    "node",
    "ошибка",
    "latency",
    "queue",
    "cache",
    "replica",
    "writer",
    "epoch",
    "ring",
    "shard",
    "backup",
    "restore",
    "metrics",
    "alert",
    "pager",
    "rollout",
    "canary",
    "schema",
    "index",
    "vacuum",
    "lease",
    "quorum",
];
/// Stop words the statistics leave out (README, `analytics::words`).
const STOP: [&str; 5] = ["the", "and", "of", "to", "is"];
const SEPARATORS: [&str; 5] = [" ", ", ", "! ", "? ", " - "];

/// A small deterministic generator, so every run writes the same messages.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The messages to send, and the words each one counts for (lowercase, stop words left out).
fn messages() -> Vec<(String, Vec<&'static str>)> {
    let mut random = XorShift(0x5eed_cafe_f00d_0001);
    let weights: Vec<u64> = (0..VOCABULARY.len() as u64)
        .map(|rank| 10_000 / (rank + 1))
        .collect();
    let total: u64 = weights.iter().sum();
    (0..MESSAGES)
        .map(|_| {
            let mut text = String::new();
            let mut counted = Vec::new();
            for position in 0..(2 + random.below(6)) {
                if position > 0 {
                    text.push_str(SEPARATORS[random.below(5) as usize]);
                }
                if random.below(4) == 0 {
                    text.push_str(STOP[random.below(5) as usize]);
                    continue;
                }
                let mut pick = random.below(total);
                let mut index = 0;
                while pick >= weights[index] {
                    pick -= weights[index];
                    index += 1;
                }
                let word = VOCABULARY[index];
                counted.push(word);
                if random.below(3) == 0 {
                    let mut chars = word.chars();
                    let first = chars.next().expect("a word");
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                } else {
                    text.push_str(word);
                }
            }
            (text, counted)
        })
        .collect()
}

/// A cluster of `n` nodes, ready: answers it, an input node's id and URL, and the writer's id.
async fn cluster(n: u64) -> (Cluster, u64, String, u64) {
    let cluster = Cluster::start(n);
    let all = cluster.live_ids();
    cluster.wait_for_tree(&all, CONVERGE).await;
    let writer = cluster.wait_for_writer(&all, CONVERGE).await;
    for &id in &all {
        let status = cluster.status(id).await.unwrap_or_default();
        if let Some(url) = status["http"].as_str() {
            return (cluster, id, url.to_owned(), writer);
        }
    }
    panic!("no input node among {all:?}");
}

/// What the test expects the statistics to say, from what it sent.
struct Expected {
    messages: u64,
    top_words: Vec<(String, u64)>,
    /// (user id, day) → messages.
    member_days: BTreeMap<(String, String), u64>,
}

fn top_words(counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = counts.iter().map(|(w, c)| (w.clone(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(20);
    all
}

fn check(body: &Value, expected: &Expected, what: &str) {
    assert_eq!(
        body["messages"].as_u64(),
        Some(expected.messages),
        "{what}: {body}"
    );
    let words: Vec<(String, u64)> = body["top_words"]
        .as_array()
        .expect("top_words")
        .iter()
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_owned(),
                w["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(words, expected.top_words, "{what}: top words");
    let member_days: BTreeMap<(String, String), u64> = body["per_member_per_day"]
        .as_array()
        .expect("per_member_per_day")
        .iter()
        .map(|m| {
            (
                (
                    m["user_id"].as_str().unwrap().to_owned(),
                    m["day"].as_str().unwrap().to_owned(),
                ),
                m["messages"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        member_days, expected.member_days,
        "{what}: per member per day"
    );
}

/// `(node → (ranges, cached, messages))` of an answer's `computed_by`.
fn shares(body: &Value) -> BTreeMap<u64, (u64, u64, u64)> {
    body["computed_by"]
        .as_array()
        .expect("computed_by")
        .iter()
        .map(|share| {
            (
                share["node"].as_u64().unwrap(),
                (
                    share["ranges"].as_u64().unwrap(),
                    share["cached"].as_u64().unwrap(),
                    share["messages"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn declined(body: &Value) -> BTreeSet<u64> {
    body["declined"]
        .as_array()
        .expect("declined")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

async fn query(client: &ChatClient, path: &str, what: &str) -> (Value, Duration) {
    let started = Instant::now();
    let reply = client.get(path).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{what}: {reply:?}");
    println!(
        "{what}: {} ms, computed by {}{}",
        took.as_millis(),
        reply.body["computed_by"],
        if declined(&reply.body).is_empty() {
            String::new()
        } else {
            format!(", declined by {}", reply.body["declined"])
        }
    );
    (reply.body, took)
}

/// The node that computed the share with the most messages among those other than the asking node,
/// the writer, the asking node's parent, `not` and (unless `voters_too`) the voters: one whose loss
/// moves ranges and leaves the writer its majority and the asking node its place in the tree.
async fn bystander(
    cluster: &Cluster,
    body: &Value,
    asker: u64,
    writer: u64,
    not: &[u64],
    voters_too: bool,
) -> Option<u64> {
    let status = cluster
        .status(asker)
        .await
        .expect("the asking node answers");
    let parent = status["parent"].as_u64();
    let voters: Vec<u64> = status["voters"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let mut candidates: Vec<(u64, u64)> = shares(body)
        .into_iter()
        .filter(|(node, _)| {
            *node != asker
                && *node != writer
                && Some(*node) != parent
                && (voters_too || !voters.contains(node))
                && !not.contains(node)
        })
        .map(|(node, (_, _, messages))| (messages, node))
        .collect();
    candidates.sort();
    candidates.last().map(|(_, node)| *node)
}

#[tokio::test]
async fn stats_of_ten_thousand_messages_are_shared_out_cached_and_survive_a_lost_node() {
    let (mut cluster, asker, url, writer) = cluster(6).await;
    let names = ["ada", "bob", "cyd"];
    let mut users = Vec::new();
    for name in names {
        let client = ChatClient::new(&url);
        let (id, _tag) = client.sign_up(name).await;
        users.push((Arc::new(client), id));
    }
    let ada = users[0].0.clone();
    let group = ada.post("/api/groups", json!({"name": "crew"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let group = group.body["id"].as_str().expect("an id").to_owned();
    for name in ["bob", "cyd"] {
        let tag = {
            let index = names.iter().position(|n| *n == name).unwrap();
            let me = users[index].0.get("/api/me").await;
            me.body["tag"].as_str().unwrap().to_owned()
        };
        let added = ada
            .post(
                &format!("/api/groups/{group}/members"),
                json!({"username": name, "tag": tag}),
            )
            .await;
        assert_eq!(added.status, 201, "{added:?}");
    }

    // Write: POSTERS clients at once, each message from one of the three users in turn.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let messages = Arc::new(messages());
    let started = Instant::now();
    let mut posters = Vec::new();
    for poster in 0..POSTERS {
        let messages = messages.clone();
        let users: Vec<(Arc<ChatClient>, String)> = users.clone();
        let group = group.clone();
        posters.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for index in (poster..MESSAGES).step_by(POSTERS) {
                let (client, id) = &users[index % users.len()];
                let reply = client
                    .post(
                        &format!("/api/groups/{group}/messages"),
                        json!({"content": messages[index].0, "client_id": format!("m{index}")}),
                    )
                    .await;
                assert_eq!(reply.status, 201, "message {index}: {reply:?}");
                let day = reply.body["created_at"].as_str().expect("created_at")[..10].to_owned();
                sent.push((index, id.clone(), day));
            }
            sent
        }));
    }
    let mut expected = Expected {
        messages: MESSAGES as u64,
        top_words: Vec::new(),
        member_days: BTreeMap::new(),
    };
    let mut word_counts: BTreeMap<String, u64> = BTreeMap::new();
    for poster in posters {
        for (index, user, day) in poster.await.expect("a poster") {
            *expected.member_days.entry((user, day)).or_default() += 1;
            for word in &messages[index].1 {
                *word_counts.entry((*word).to_owned()).or_default() += 1;
            }
        }
    }
    expected.top_words = top_words(&word_counts);
    let wrote = started.elapsed();
    println!(
        "wrote {MESSAGES} messages in {:.1} s ({:.0}/s)",
        wrote.as_secs_f64(),
        MESSAGES as f64 / wrote.as_secs_f64()
    );

    // One-second ranges: the writing took many seconds, so the messages spread over many ranges,
    // placed on the ring over every node.
    let path = format!("/api/groups/{group}/stats?since={since}&range=1");
    let (cold, cold_time) = query(&ada, &path, "cold query").await;
    check(&cold, &expected, "cold query");
    let cold_shares = shares(&cold);
    let ranges: u64 = cold_shares.values().map(|(ranges, _, _)| ranges).sum();
    assert!(ranges >= 3, "{cold}");
    let with_messages = cold_shares.values().filter(|(_, _, m)| *m > 0).count();
    assert!(
        with_messages >= 2,
        "the messages were counted by more than one node: {cold}"
    );

    let (warm, warm_time) = query(&ada, &path, "warm query").await;
    check(&warm, &expected, "warm query");
    let cached: u64 = shares(&warm).values().map(|(_, cached, _)| cached).sum();
    assert!(
        cached + 2 >= ranges,
        "every whole range of the first query came from a cache: {warm}"
    );

    // A node that computed a share is killed right before the next query: its ranges go to the
    // next nodes of the ring, and the numbers do not change.
    let victim = bystander(&cluster, &warm, asker, writer, &[], false)
        .await
        .unwrap_or_else(|| panic!("no node besides the asking node, its parent, the writer and the voters computed a share: {warm}"));
    cluster.kill(victim);
    let (after_kill, kill_time) =
        query(&ada, &path, &format!("after node {victim} was killed")).await;
    check(&after_kill, &expected, "after the kill");
    let after = shares(&after_kill);
    assert!(!after.contains_key(&victim), "{after_kill}");
    assert!(declined(&after_kill).contains(&victim), "{after_kill}");
    let reassigned: u64 = after.values().map(|(ranges, _, _)| ranges).sum();
    assert!(
        reassigned >= ranges,
        "every range was computed: {after_kill}"
    );

    // A node that stops answering (SIGSTOP) is waited for up to the map timeout, then passed over.
    // It may be a voter: the killed node was not one, so the writer keeps its majority.
    let stopped = bystander(&cluster, &after_kill, asker, writer, &[victim], true).await;
    let stop_time = match stopped {
        Some(stopped) => {
            cluster.signal(stopped, Signal::SIGSTOP);
            let (after_stop, took) =
                query(&ada, &path, &format!("with node {stopped} stopped")).await;
            cluster.signal(stopped, Signal::SIGCONT);
            check(&after_stop, &expected, "with a node stopped");
            assert!(!shares(&after_stop).contains_key(&stopped), "{after_stop}");
            assert!(declined(&after_stop).contains(&stopped), "{after_stop}");
            Some(took)
        }
        None => {
            println!(
                "no other bystander computed a share this time; the stopped-node case is skipped"
            );
            None
        }
    };
    println!(
        "{MESSAGES} messages, {ranges} ranges: cold {} ms, warm {} ms, after a kill {} ms{}",
        cold_time.as_millis(),
        warm_time.as_millis(),
        kill_time.as_millis(),
        stop_time
            .map(|t| format!(", with a node stopped {} ms", t.as_millis()))
            .unwrap_or_default()
    );
}
