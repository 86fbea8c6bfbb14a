//! The invariants a fault must leave intact, checked once the cluster has settled after healing.
//!
//! Settled means: every live node ready in one valid tree, exactly one node accepting writes (the
//! root), the writer's epoch at rest, and every node that holds a database (`/data` hash non-null) at
//! the writer's epoch. Then every group is read completely through every input node, and:
//!
//! - every acknowledged (`Ok`) message is present, with the id and epoch it was acknowledged with;
//! - no content appears twice (a retried `client_id` never makes a duplicate);
//! - every present message was sent by the workload, to that group, by that user (no phantoms);
//!   a `Failed`/`Unknown` message may be present or not: a 503 after a commit promises nothing;
//! - the order of every group (its list of message ids) is the same through every input node;
//! - every database has the writer's content hash, and there is exactly one writer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::LOOPBACK;
use crate::cluster::Cluster;
use crate::workload::{Outcome, PASSWORD, Record, User, Workload};

/// Most offending items listed per kind of violation.
const LISTED: usize = 20;

/// What a successful check found, for the scenario to print.
#[derive(Debug, Clone)]
pub struct CheckSummary {
    pub writer: u64,
    pub term: u64,
    pub epoch: u64,
    /// From the start of the check until one tree with one node accepting writes.
    pub settle: Duration,
    /// From then until every database reached the writer's epoch and hash.
    pub catch_up: Duration,
    /// Nodes whose database was compared with the writer's (`None`: `/data` is not served yet).
    pub databases: Option<Vec<u64>>,
    pub hash: Option<String>,
    /// Input nodes every group was read through.
    pub read_through: Vec<u64>,
    pub present: usize,
    pub acknowledged: usize,
    /// Messages not acknowledged (failed or unknown) that were nevertheless stored.
    pub unacknowledged_present: usize,
    pub unacknowledged: usize,
}

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let databases = match &self.databases {
            Some(ids) => format!(
                "databases {ids:?} share hash {}",
                self.hash.as_deref().unwrap_or("-")
            ),
            None => "databases NOT compared (no /data)".to_owned(),
        };
        write!(
            f,
            "checker: settled in {:.2?} (writer {}, term {}, epoch {}), caught up in {:.2?}, {databases}; \
             read through {:?}: {} messages, all {} acknowledged present, {} of {} unacknowledged present",
            self.settle,
            self.writer,
            self.term,
            self.epoch,
            self.catch_up,
            self.read_through,
            self.present,
            self.acknowledged,
            self.unacknowledged_present,
            self.unacknowledged,
        )
    }
}

/// A node's `/data` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DataReport {
    term: u64,
    epoch: u64,
    hash: Option<String>,
    role: String,
    accepting_writes: bool,
}

impl DataReport {
    fn from_json(json: &Value) -> Option<Self> {
        Some(Self {
            term: json["term"].as_u64()?,
            epoch: json["epoch"].as_u64()?,
            hash: json["hash"].as_str().map(str::to_owned),
            role: json["role"].as_str()?.to_owned(),
            accepting_writes: json["accepting_writes"].as_bool()?,
        })
    }
}

/// `/data` of each node that answers it; `Err` when a node answers 404 (the endpoint does not exist).
async fn data_reports(cluster: &Cluster, ids: &[u64]) -> Result<BTreeMap<u64, DataReport>, ()> {
    let answers = futures::future::join_all(
        ids.iter()
            .map(|&id| async move { (id, cluster.admin_get(id, "/data").await) }),
    )
    .await;
    let mut reports = BTreeMap::new();
    for (id, answer) in answers {
        match answer {
            Some((404, _)) => return Err(()),
            Some((200, json)) => {
                if let Some(report) = DataReport::from_json(&json) {
                    reports.insert(id, report);
                }
            }
            _ => {}
        }
    }
    Ok(reports)
}

fn missing_data_endpoint() {
    eprintln!(
        "\n!!!!! checker: GET /data answers 404: database hashes are NOT compared, replicas are \
         checked by /status data_epoch only. This is accepted only until /data lands. !!!!!\n"
    );
}

/// Waits for the cluster to settle and checks every invariant against `records` (all the records
/// of every run of `workload` on this cluster). `timeout` bounds each wait.
pub async fn check(
    cluster: &Cluster,
    workload: &Workload,
    records: &[Record],
    timeout: Duration,
) -> Result<CheckSummary, String> {
    let started = Instant::now();
    let live = cluster.live_ids();
    let writer = cluster.try_wait_for_tree(&live, timeout).await?;
    let deadline = Instant::now() + timeout;
    loop {
        let accepting = cluster.accepting_writes(&live).await;
        if accepting == [writer] {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the tree's root is {writer} but the nodes accepting writes are {accepting:?} \
                 {timeout:?} after the tree formed"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settle = started.elapsed();

    // From here on every violation is collected, so one report shows all that went wrong.
    let mut violations = Vec::new();
    let caught_up_at = Instant::now();
    let (term, epoch, databases, hash) =
        match wait_for_copies(cluster, &live, writer, timeout).await {
            Ok(Copies::Compared {
                term,
                epoch,
                databases,
                hash,
            }) => (term, epoch, Some(databases), Some(hash)),
            Ok(Copies::EpochsOnly { term, epoch }) => (term, epoch, None, None),
            Err(problem) => {
                violations.push(format!("COPIES: {problem}"));
                (0, 0, None, None)
            }
        };
    let catch_up = caught_up_at.elapsed();

    let statuses = cluster.statuses(&live).await;
    let inputs: Vec<(u64, String)> = statuses
        .iter()
        .filter_map(|(&id, status)| Some((id, status["http"].as_str()?.to_owned())))
        .collect();
    if inputs.is_empty() {
        violations.push("no live node serves HTTP after settling".into());
        return Err(violations.join("\n"));
    }
    if inputs.len() < 2 {
        eprintln!("checker: only one input node ({inputs:?}): reading twice through it");
    }
    let reader = &workload.users()[0];
    let mut listings = Vec::new();
    for (id, url) in inputs.iter().cycle().take(inputs.len().max(2)) {
        match read_all_groups(url, reader, workload, timeout).await {
            Ok(groups) => listings.push((*id, groups)),
            Err(error) => violations.push(format!("READ: through node {id} ({url}): {error}")),
        }
    }
    if listings.is_empty() {
        let acknowledged = records.iter().filter(|record| record.is_ok()).count();
        violations.push(format!(
            "UNREADABLE: none of the {acknowledged} acknowledged messages could be read back \
             through any input node"
        ));
        return Err(violations.join("\n"));
    }

    let nodes_by_url = cluster
        .live_ids()
        .into_iter()
        .map(|id| {
            (
                format!("http://{LOOPBACK}:{}", cluster.spec(id).http_port),
                id,
            )
        })
        .collect();
    violations.extend(compare(records, &listings, &nodes_by_url));
    if !violations.is_empty() {
        return Err(format!(
            "the data after healing breaks the promise:\n{}",
            violations.join("\n")
        ));
    }
    let (_, reference) = &listings[0];
    let acknowledged = records.iter().filter(|record| record.is_ok()).count();
    let stored: BTreeSet<&str> = reference
        .values()
        .flatten()
        .map(|message| message.content.as_str())
        .collect();
    let unacknowledged_present = records
        .iter()
        .filter(|record| !record.is_ok() && stored.contains(record.content.as_str()))
        .count();
    Ok(CheckSummary {
        writer,
        term,
        epoch,
        settle,
        catch_up,
        databases,
        hash,
        read_through: listings.iter().map(|(id, _)| *id).collect(),
        present: stored.len(),
        acknowledged,
        unacknowledged_present,
        unacknowledged: records.len() - acknowledged,
    })
}

enum Copies {
    Compared {
        term: u64,
        epoch: u64,
        databases: Vec<u64>,
        hash: String,
    },
    EpochsOnly {
        term: u64,
        epoch: u64,
    },
}

/// Waits until the writer's epoch is at rest and every copy of the data matches it.
async fn wait_for_copies(
    cluster: &Cluster,
    live: &[u64],
    writer: u64,
    timeout: Duration,
) -> Result<Copies, String> {
    let began = Instant::now();
    let deadline = began + timeout;
    let mut previous: Option<BTreeMap<u64, DataReport>> = None;
    // Copies that differ while nothing moves for this long will not converge by waiting longer.
    const STILL: Duration = Duration::from_secs(5);
    let mut still_since = Instant::now();
    loop {
        let Ok(reports) = data_reports(cluster, live).await else {
            missing_data_endpoint();
            return epochs_only(cluster, writer, deadline).await;
        };
        let problem = copies_problem(&reports, writer);
        // At rest: two answers 300 ms apart agree (no write still on its way in).
        let at_rest = previous.as_ref() == Some(&reports);
        if !at_rest {
            still_since = Instant::now();
        }
        let given_up = Instant::now() >= deadline || still_since.elapsed() >= STILL;
        match problem {
            None if at_rest || Instant::now() >= deadline => {
                let report = &reports[&writer];
                let databases = reports
                    .iter()
                    .filter(|(_, report)| report.hash.is_some())
                    .map(|(&id, _)| id)
                    .collect();
                return Ok(Copies::Compared {
                    term: report.term,
                    epoch: report.epoch,
                    databases,
                    hash: report.hash.clone().unwrap_or_default(),
                });
            }
            Some(problem) if given_up => {
                let table: Vec<String> = reports
                    .iter()
                    .map(|(id, report)| format!("    node {id}: {report:?}"))
                    .collect();
                return Err(format!(
                    "the copies of the data differ ({:.1?} after settling, unchanged for {:.1?}): \
                     {problem}\n{}",
                    began.elapsed(),
                    still_since.elapsed(),
                    table.join("\n")
                ));
            }
            _ => {}
        }
        previous = Some(reports);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What keeps the copies in `reports` from matching the writer's, if anything.
fn copies_problem(reports: &BTreeMap<u64, DataReport>, writer: u64) -> Option<String> {
    let Some(reference) = reports.get(&writer) else {
        return Some(format!("the writer {writer} does not answer /data"));
    };
    let writers: Vec<u64> = reports
        .iter()
        .filter(|(_, report)| report.role == "writer")
        .map(|(&id, _)| id)
        .collect();
    if writers != [writer] {
        return Some(format!(
            "/data names writers {writers:?}, the tree's root is {writer}"
        ));
    }
    if !reference.accepting_writes || reference.hash.is_none() {
        return Some(format!("the writer {writer} reports {reference:?}"));
    }
    let behind: Vec<String> = reports
        .iter()
        .filter(|(_, report)| report.hash.is_some())
        .filter(|(_, report)| report.epoch != reference.epoch || report.hash != reference.hash)
        .map(|(id, report)| format!("node {id} at epoch {} hash {:?}", report.epoch, report.hash))
        .collect();
    if !behind.is_empty() {
        return Some(format!(
            "writer {writer} at epoch {} hash {:?}, but {}",
            reference.epoch,
            reference.hash,
            behind.join(", ")
        ));
    }
    None
}

/// The fallback while `/data` does not exist: the writer's children reach its `data_epoch`.
async fn epochs_only(cluster: &Cluster, writer: u64, deadline: Instant) -> Result<Copies, String> {
    let mut previous = None;
    loop {
        let status = cluster.status(writer).await.unwrap_or(Value::Null);
        let epoch = status["data_epoch"].as_u64();
        let term = status["term"].as_u64().unwrap_or_default();
        let replicas = cluster.children(writer).await;
        let epochs = cluster.statuses(&replicas).await;
        let behind: Vec<u64> = replicas
            .iter()
            .filter(|id| epochs.get(id).and_then(|s| s["data_epoch"].as_u64()) != epoch)
            .copied()
            .collect();
        match epoch {
            Some(epoch) if behind.is_empty() && previous == Some(epoch) => {
                return Ok(Copies::EpochsOnly { term, epoch });
            }
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "replicas {behind:?} did not reach the writer {writer}'s epoch {epoch:?}"
                ));
            }
            _ => {}
        }
        previous = epoch;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A stored message as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    id: String,
    content: String,
    epoch: u64,
    sender: String,
}

/// Every message of every workload group, read through the input node at `url` as `reader`.
async fn read_all_groups(
    url: &str,
    reader: &User,
    workload: &Workload,
    timeout: Duration,
) -> Result<BTreeMap<String, Vec<Listed>>, String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client with cookies builds");
    let deadline = Instant::now() + timeout;
    let login = json!({"username": reader.username, "tag": reader.tag, "password": PASSWORD});
    let login = || {
        http.post(format!("{url}/api/login"))
            .header("origin", url)
            .json(&login)
    };
    retrying(deadline, login).await?;
    let mut groups = BTreeMap::new();
    for group in workload.groups() {
        let mut messages: Vec<Listed> = Vec::new();
        let mut before: Option<u64> = None;
        loop {
            let query = match before {
                Some(epoch) => format!("?limit=500&before={epoch}"),
                None => "?limit=500".to_owned(),
            };
            let page = retrying(deadline, || {
                http.get(format!("{url}/api/groups/{}/messages{query}", group.id))
            })
            .await?;
            let page: Vec<Listed> = page
                .as_array()
                .ok_or_else(|| format!("a page is not a list: {page}"))?
                .iter()
                .map(|message| Listed {
                    id: message["id"].as_str().unwrap_or_default().to_owned(),
                    content: message["content"].as_str().unwrap_or_default().to_owned(),
                    epoch: message["epoch"].as_u64().unwrap_or_default(),
                    sender: message["sender"]["username"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect();
            let full = page.len() == 500;
            before = page.first().map(|message| message.epoch);
            messages.splice(0..0, page);
            if !full {
                break;
            }
        }
        groups.insert(group.id.clone(), messages);
    }
    Ok(groups)
}

/// Sends `request()` until a 2xx, retrying 429/502/503/504 and network errors until `deadline`.
async fn retrying(
    deadline: Instant,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Value, String> {
    loop {
        let last = match request().send().await {
            Ok(response) if response.status().is_success() => {
                return response.json().await.map_err(|error| error.to_string());
            }
            Ok(response) if [429, 502, 503, 504].contains(&response.status().as_u16()) => {
                format!("{}", response.status())
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                return Err(format!("{status}: {body}"));
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("no success before the deadline; last: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every violation of the invariants by `listings` (per input node: group id → messages);
/// `nodes_by_url` names the input node behind a URL in the messages.
fn compare(
    records: &[Record],
    listings: &[(u64, BTreeMap<String, Vec<Listed>>)],
    nodes_by_url: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let origin = records.iter().map(|record| record.started).min();
    let when = |record: &Record| {
        let node = match nodes_by_url.get(&record.node) {
            Some(id) => format!("node {id} ({})", record.node),
            None => record.node.clone(),
        };
        let at = origin
            .map(|origin| record.finished - origin)
            .unwrap_or_default();
        format!(
            "acknowledged by {node} at +{at:.2?} after {} attempts",
            record.attempts
        )
    };
    let (reference_node, reference) = &listings[0];

    for (node, groups) in &listings[1..] {
        for (group, messages) in reference {
            let ids = |messages: &[Listed]| -> Vec<String> {
                messages.iter().map(|message| message.id.clone()).collect()
            };
            let theirs = groups.get(group).map(|m| ids(m)).unwrap_or_default();
            let ours = ids(messages);
            if theirs != ours {
                let first = ours
                    .iter()
                    .zip(&theirs)
                    .position(|(a, b)| a != b)
                    .unwrap_or(ours.len().min(theirs.len()));
                violations.push(format!(
                    "ORDER: group {group} through node {node} differs from node {reference_node}: \
                     {} vs {} messages, first difference at position {first}: {} vs {}",
                    theirs.len(),
                    ours.len(),
                    describe(groups, group, theirs.get(first)),
                    describe(reference, group, ours.get(first)),
                ));
            }
        }
    }

    let sent: BTreeMap<&str, &Record> = records
        .iter()
        .map(|record| (record.content.as_str(), record))
        .collect();
    let mut seen: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    let mut phantoms = Vec::new();
    for (group, messages) in reference {
        for message in messages {
            seen.entry(message.content.as_str())
                .or_default()
                .push(message);
            match sent.get(message.content.as_str()) {
                Some(record) if record.group == *group && record.sender == message.sender => {}
                Some(record) => phantoms.push(format!(
                    "{:?} in group {group} from {} (it was sent to {} by {})",
                    message.content, message.sender, record.group, record.sender
                )),
                None => phantoms.push(format!(
                    "{:?} in group {group} from {} (never sent)",
                    message.content, message.sender
                )),
            }
        }
    }
    let duplicates: Vec<String> = seen
        .iter()
        .filter(|(_, copies)| copies.len() > 1)
        .map(|(content, copies)| {
            let at: Vec<String> = copies
                .iter()
                .map(|copy| format!("{} at epoch {}", copy.id, copy.epoch))
                .collect();
            format!("{content:?} {} times: {}", copies.len(), at.join(", "))
        })
        .collect();

    let mut lost = Vec::new();
    let mut changed = Vec::new();
    for record in records {
        let Outcome::Ok { id, epoch } = &record.outcome else {
            continue;
        };
        match seen
            .get(record.content.as_str())
            .and_then(|copies| copies.first())
        {
            None => lost.push(format!(
                "{:?} (id {id}, epoch {epoch}, {})",
                record.content,
                when(record)
            )),
            Some(copy) if copy.id != *id || copy.epoch != *epoch => changed.push(format!(
                "{:?} acknowledged as id {id} at epoch {epoch}, stored as id {} at epoch {} ({})",
                record.content,
                copy.id,
                copy.epoch,
                when(record)
            )),
            Some(_) => {}
        }
    }

    let mut report = |kind: &str, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        let mut text = format!("{kind} ({}):", items.len());
        for item in items.iter().take(LISTED) {
            text.push_str(&format!("\n    {item}"));
        }
        if items.len() > LISTED {
            text.push_str(&format!("\n    … and {} more", items.len() - LISTED));
        }
        violations.push(text);
    };
    report("LOST: acknowledged messages missing", lost);
    report("CHANGED: acknowledged messages stored differently", changed);
    report("DUPLICATES: contents stored more than once", duplicates);
    report(
        "PHANTOMS: stored messages the workload never sent there",
        phantoms,
    );
    violations
}

/// `"content" (id …, epoch …)` of message `id` in `group`, or `-` past the end of the list.
fn describe(groups: &BTreeMap<String, Vec<Listed>>, group: &str, id: Option<&String>) -> String {
    let message = id.and_then(|id| groups.get(group)?.iter().find(|message| message.id == *id));
    match message {
        Some(message) => format!(
            "{:?} (id {}, epoch {})",
            message.content, message.id, message.epoch
        ),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content: &str, group: &str, outcome: Outcome) -> Record {
        let now = Instant::now();
        Record {
            client: 0,
            seq: 0,
            group: group.into(),
            sender: "w0".into(),
            content: content.into(),
            client_id: format!("cid-{content}"),
            outcome,
            attempts: 1,
            started: now,
            finished: now,
            node: "http://node".into(),
        }
    }

    fn listed(id: &str, content: &str, epoch: u64) -> Listed {
        Listed {
            id: id.into(),
            content: content.into(),
            epoch,
            sender: "w0".into(),
        }
    }

    fn ok(id: &str, epoch: u64) -> Outcome {
        Outcome::Ok {
            id: id.into(),
            epoch,
        }
    }

    fn one_node(messages: Vec<Listed>) -> Vec<(u64, BTreeMap<String, Vec<Listed>>)> {
        vec![(1, BTreeMap::from([("g".to_owned(), messages)]))]
    }

    #[test]
    fn acknowledged_messages_present_and_unacknowledged_either_way_pass() {
        let records = vec![
            record("a", "g", ok("1", 5)),
            record("b", "g", Outcome::Failed(503)),
            record("c", "g", Outcome::Unknown),
        ];
        let listings = one_node(vec![listed("1", "a", 5), listed("2", "b", 6)]);
        assert_eq!(
            compare(&records, &listings, &BTreeMap::new()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_broken_promise_is_named_with_the_offending_content() {
        let records = vec![
            record("lost", "g", ok("1", 5)),
            record("moved", "g", ok("2", 6)),
            record("twice", "g", Outcome::Unknown),
        ];
        let listings = one_node(vec![
            listed("3", "moved", 9),
            listed("4", "twice", 10),
            listed("5", "twice", 11),
            listed("6", "ghost", 12),
        ]);
        let text = compare(&records, &listings, &BTreeMap::new()).join("\n");
        for expected in [
            "LOST",
            "\"lost\"",
            "CHANGED",
            "DUPLICATES",
            "PHANTOMS",
            "\"ghost\"",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn a_different_order_through_another_node_is_reported() {
        let records = vec![record("a", "g", ok("1", 5)), record("b", "g", ok("2", 6))];
        let mut listings = one_node(vec![listed("1", "a", 5), listed("2", "b", 6)]);
        let swapped = BTreeMap::from([(
            "g".to_owned(),
            vec![listed("2", "b", 6), listed("1", "a", 5)],
        )]);
        listings.push((2, swapped));
        let text = compare(&records, &listings, &BTreeMap::new()).join("\n");
        assert!(text.contains("ORDER") && text.contains("node 2"), "{text}");
    }

    #[test]
    fn copies_at_another_epoch_or_hash_are_a_problem_until_they_match() {
        let report = |epoch, hash: &str, role: &str| DataReport {
            term: 2,
            epoch,
            hash: Some(hash.into()),
            role: role.into(),
            accepting_writes: role == "writer",
        };
        let mut reports = BTreeMap::from([
            (1, report(9, "aa", "writer")),
            (2, report(8, "bb", "replica")),
        ]);
        assert!(copies_problem(&reports, 1).unwrap().contains("node 2"));
        reports.insert(2, report(9, "aa", "replica"));
        reports.insert(
            3,
            DataReport {
                hash: None,
                role: "none".into(),
                ..report(0, "", "none")
            },
        );
        assert_eq!(copies_problem(&reports, 1), None);
        reports.insert(4, report(9, "aa", "writer"));
        assert!(copies_problem(&reports, 1).unwrap().contains("writers"));
    }
}
