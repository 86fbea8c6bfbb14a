//! `/metrics` of real nodes after real traffic: every node's exposition parses as OpenMetrics text
//! (with a parser, not by matching strings) and holds the series the README and docs/PERFORMANCE.md
//! document, with samples where the traffic produced them: the input node's HTTP routes and data
//! operations, the writer's stages and replication lag, the copies' applies.

use std::time::{Duration, Instant};

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricFamily, MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::json;
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;

const CONVERGE: Duration = Duration::from_secs(15);

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;
type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

/// On every node, whatever its role: (family, type). Counters are named without `_total`, as
/// OpenMetrics names their family. (A labelled family shows up once it has a sample: those are
/// checked on the nodes whose role produces them, below.)
const EVERY_NODE: &[(&str, OpenMetricsType)] = &[
    ("chat_node_ready", OpenMetricsType::Gauge),
    ("chat_node_term", OpenMetricsType::Gauge),
    ("chat_node_live_neighbours", OpenMetricsType::Gauge),
    ("chat_node_control_messages_sent", OpenMetricsType::Counter),
    (
        "chat_node_control_messages_received",
        OpenMetricsType::Counter,
    ),
    ("chat_node_elections_started", OpenMetricsType::Counter),
    ("chat_node_heals", OpenMetricsType::Counter),
    (
        "chat_node_copy_apply_batch_entries",
        OpenMetricsType::Histogram,
    ),
    ("chat_node_writer_group_commits", OpenMetricsType::Counter),
    ("chat_node_writer_requests", OpenMetricsType::Counter),
    ("chat_node_writer_accepting_writes", OpenMetricsType::Gauge),
    ("chat_node_replica_lag_entries", OpenMetricsType::Gauge),
    ("chat_node_data_pending_requests", OpenMetricsType::Gauge),
    ("chat_node_data_inbound_queue_depth", OpenMetricsType::Gauge),
    ("chat_node_presence_online_users", OpenMetricsType::Gauge),
    ("chat_node_presence_sent_bytes", OpenMetricsType::Counter),
    (
        "chat_node_data_stale_term_messages_dropped",
        OpenMetricsType::Counter,
    ),
];

async fn scrape(cluster: &Cluster, id: u64) -> Exposition {
    let url = cluster.spec(id).admin_url("/metrics");
    let text = reqwest::get(&url)
        .await
        .and_then(|response| response.error_for_status())
        .expect("the admin port answers /metrics")
        .text()
        .await
        .expect("a text body");
    parse_openmetrics(&text).unwrap_or_else(|error| {
        panic!("node {id}'s /metrics is not OpenMetrics: {error:?}\n{text}")
    })
}

fn family<'a>(exposition: &'a Exposition, id: u64, name: &str) -> &'a Family {
    exposition
        .families
        .get(name)
        .unwrap_or_else(|| panic!("node {id} has no {name}"))
}

/// Whether `name` has type `kind` and a sample of node `id` with `labels` (name, value) and no
/// other labels.
fn has_sample(
    exposition: &Exposition,
    id: u64,
    (name, kind): (&str, OpenMetricsType),
    labels: &[(&str, &str)],
) -> bool {
    let Some(found) = exposition.families.get(name) else {
        return false;
    };
    assert_eq!(found.family_type, kind, "node {id}: the type of {name}");
    let id = id.to_string();
    let wanted: Vec<(&str, &str)> = std::iter::once(("node_id", id.as_str()))
        .chain(labels.iter().copied())
        .collect();
    // The parser keeps label names in an order of its own: the values go in that order.
    let values: Option<Vec<String>> = found
        .get_label_names()
        .iter()
        .map(|label| {
            wanted
                .iter()
                .find(|(wanted, _)| wanted == label)
                .map(|(_, value)| (*value).to_owned())
        })
        .collect();
    values.is_some_and(|values| {
        values.len() == wanted.len() && found.get_sample_by_label_values(&values).is_some()
    })
}

fn gauge(exposition: &Exposition, id: u64, name: &str) -> f64 {
    let sample = family(exposition, id, name)
        .get_sample_by_label_values(&[id.to_string()])
        .unwrap_or_else(|| panic!("node {id} has no sample of {name}"));
    match &sample.value {
        OpenMetricsValue::Gauge(number) | OpenMetricsValue::Unknown(number) => number.as_f64(),
        OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

#[tokio::test]
async fn every_node_exposes_parseable_openmetrics_with_the_documented_series() {
    let cluster = Cluster::start(3);
    let all = cluster.live_ids();
    let leader = cluster.wait_for_tree(&all, CONVERGE).await;
    cluster.wait_for_writer(&all, CONVERGE).await;
    let statuses = cluster.statuses(&all).await;
    let (input, url) = statuses
        .iter()
        .find_map(|(id, status)| Some((*id, status["http"].as_str()?.to_owned())))
        .expect("an input node");

    // Traffic through the input node: every stage of the write path runs.
    let ada = ChatClient::new(url);
    ada.sign_up("ada").await;
    let group = ada.post("/api/groups", json!({"name": "metrics"})).await;
    assert_eq!(group.status, 201, "{group:?}");
    let messages = format!(
        "/api/groups/{}/messages",
        group.body["id"].as_str().unwrap()
    );
    for n in 0..5 {
        let sent = ada
            .post(&messages, json!({"content": format!("m{n}")}))
            .await;
        assert_eq!(sent.status, 201, "{sent:?}");
    }
    assert_eq!(ada.get(&messages).await.status, 200);

    for &id in &all {
        let exposition = scrape(&cluster, id).await;
        for (name, kind) in EVERY_NODE {
            let found = family(&exposition, id, name);
            assert_eq!(found.family_type, *kind, "node {id}: the type of {name}");
            assert!(!found.help.is_empty(), "node {id}: {name} has no HELP");
        }
        assert_eq!(gauge(&exposition, id, "chat_node_ready"), 1.0, "node {id}");
    }

    let input_metrics = scrape(&cluster, input).await;
    let route = "/api/groups/{id}/messages";
    assert!(has_sample(
        &input_metrics,
        input,
        ("chat_node_http_requests", OpenMetricsType::Counter),
        &[("method", "POST"), ("route", route), ("status", "201")]
    ));
    assert!(has_sample(
        &input_metrics,
        input,
        ("chat_node_http_request_seconds", OpenMetricsType::Histogram),
        &[("method", "GET"), ("route", route)]
    ));
    assert!(has_sample(
        &input_metrics,
        input,
        (
            "chat_node_data_operation_seconds",
            OpenMetricsType::Histogram
        ),
        &[("operation", "send_group_message"), ("outcome", "ok")]
    ));

    // The writer exports its group-commit counters and the copies' lag every housekeeping round
    // (500 ms).
    let copies: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    let lag = ("chat_node_replication_lag_entries", OpenMetricsType::Gauge);
    let deadline = Instant::now() + Duration::from_secs(5);
    let writer = loop {
        let writer = scrape(&cluster, leader).await;
        let exported = gauge(&writer, leader, "chat_node_writer_requests") >= 7.0
            && copies
                .iter()
                .all(|copy| has_sample(&writer, leader, lag, &[("replica", &copy.to_string())]));
        if exported || Instant::now() > deadline {
            break writer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        gauge(&writer, leader, "chat_node_writer_accepting_writes"),
        1.0
    );
    assert!(gauge(&writer, leader, "chat_node_writer_requests") >= 7.0);
    assert!(gauge(&writer, leader, "chat_node_writer_group_commits") >= 1.0);
    let stages = ("chat_node_write_stage_seconds", OpenMetricsType::Histogram);
    for stage in ["commit", "quorum"] {
        assert!(
            has_sample(&writer, leader, stages, &[("stage", stage)]),
            "the writer has no {stage} stage"
        );
    }
    for &copy in &copies {
        assert!(
            has_sample(&writer, leader, lag, &[("replica", &copy.to_string())]),
            "the writer reports no lag for copy {copy}"
        );
        let metrics = scrape(&cluster, copy).await;
        assert!(
            has_sample(&metrics, copy, stages, &[("stage", "copy_apply")]),
            "copy {copy} reports no apply"
        );
    }
}
