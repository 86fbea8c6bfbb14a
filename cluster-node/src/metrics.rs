//! The node's Prometheus metrics, served as text on the admin port's `/metrics`.
//!
//! One `Metrics` value per node, shared by reference; each layer records into the series it owns.
//! Names follow Prometheus conventions: a `chat_node_` prefix, `_total` on counters, base units.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of the read counters: which kind of database answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnsweredBy {
    pub by: &'static str,
}

/// Label of the control-plane message counters: the scope a message belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: &'static str,
}

/// Label of the repaired-edge counter: `bootstrap` (its `Repair` answer) or `neighbours` (chosen
/// from neighbours' neighbour lists while the bootstrap could not be reached).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepairLabel {
    pub source: &'static str,
}

/// Labels of the refused-frame counter: the plane, and why the frame did not open (`malformed`,
/// `identity`, `replay` or `seal`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameRejectedLabel {
    pub plane: &'static str,
    pub reason: &'static str,
}

/// Labels of the data-operation latency histogram: the operation and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Label of the writer's per-replica lag.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabel {
    pub replica: u64,
}

/// Label of the write-path stage histogram: which step of a write the time was spent in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

/// Labels of the HTTP request counter: the route pattern (not the raw path, to bound cardinality),
/// the method and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabel {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of the HTTP latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub method: String,
    pub route: String,
}

/// Latency buckets from 0.5 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Finer buckets for the steps of the write path, from 0.1 ms to about 3 s, doubling.
fn stage_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The content type of what [`Metrics::render`] produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub ready: Gauge,
    pub neighbours: Gauge,
    pub bootstrap_attempts: Counter,
    pub bootstrap_failures: Counter,
    pub control_sent: Family<ScopeLabel, Counter>,
    pub control_received: Family<ScopeLabel, Counter>,
    pub control_undecodable: Counter,
    pub control_send_failures: Counter,
    pub control_transport_dropped: Counter,
    pub frames_rejected: Family<FrameRejectedLabel, Counter>,
    pub elections_started: Counter,
    pub elections_won: Counter,
    pub leaders_lost: Counter,
    pub heals: Counter,
    pub repair_requests: Counter,
    pub repaired_edges: Family<RepairLabel, Counter>,
    pub data_reads_answered: Family<AnsweredBy, Counter>,
    pub data_forwarded: Counter,
    pub data_writes_refused: Counter,
    pub data_stale_dropped: Counter,
    pub data_copies_discarded: Counter,
    pub writer_accepting: Gauge,
    pub data_operation_seconds: Histograms<OperationLabel>,
    pub write_stage_seconds: Histograms<StageLabel>,
    pub copy_apply_entries: Histogram,
    pub writer_group_commits: Counter,
    pub writer_requests: Counter,
    pub replication_lag: Family<ReplicaLabel, Gauge>,
    pub replica_lag: Gauge,
    pub voters: Gauge,
    pub configuration_changes: Counter,
    pub data_pending: Gauge,
    pub presence_online: Gauge,
    pub presence_bytes_sent: Counter,
    pub data_inbound_queue: Gauge,
    pub http_requests: Family<HttpLabel, Counter>,
    pub http_request_seconds: Histograms<RouteLabel>,
    pub term: Gauge,
    pub tick: Gauge,
    pub live_neighbours: Gauge,
}

impl Metrics {
    pub fn new(node_id: u64, start_unix_seconds: i64) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "chat_node",
            [("node_id".into(), node_id.to_string().into())].into_iter(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when the node knows its leader, tree and roles",
            ready.clone(),
        );
        let neighbours = Gauge::default();
        registry.register(
            "neighbours",
            "Neighbours assigned by the bootstrap",
            neighbours.clone(),
        );
        let bootstrap_attempts = Counter::default();
        registry.register(
            "bootstrap_registration_attempts",
            "Registration calls made to the bootstrap",
            bootstrap_attempts.clone(),
        );
        let bootstrap_failures = Counter::default();
        registry.register(
            "bootstrap_registration_failures",
            "Registration calls to the bootstrap that failed",
            bootstrap_failures.clone(),
        );
        let control_sent = Family::<ScopeLabel, Counter>::default();
        registry.register(
            "control_messages_sent",
            "Control-plane messages handed to the transport, by scope",
            control_sent.clone(),
        );
        let control_received = Family::<ScopeLabel, Counter>::default();
        registry.register(
            "control_messages_received",
            "Control-plane messages received and decoded, by scope",
            control_received.clone(),
        );
        let control_undecodable = Counter::default();
        registry.register(
            "control_messages_undecodable",
            "Control-plane messages dropped because they did not decode",
            control_undecodable.clone(),
        );
        let control_send_failures = Counter::default();
        registry.register(
            "control_send_failures",
            "Control-plane messages the transport refused (unknown peer, fault switch)",
            control_send_failures.clone(),
        );
        let control_transport_dropped = Counter::default();
        registry.register(
            "control_transport_dropped",
            "Control-plane messages the transport dropped (full queue, link down, fault switch)",
            control_transport_dropped.clone(),
        );
        let frames_rejected = Family::<FrameRejectedLabel, Counter>::default();
        registry.register(
            "frames_rejected",
            "Control- and data-plane frames dropped unread because their seal did not open or they \
             were replayed, malformed, sent under another node's identity or in another protocol \
             version, by plane and reason",
            frames_rejected.clone(),
        );
        let elections_started = Counter::default();
        registry.register(
            "elections_started",
            "Elections this node initiated",
            elections_started.clone(),
        );
        let elections_won = Counter::default();
        registry.register(
            "elections_won",
            "Elections that made this node the leader",
            elections_won.clone(),
        );
        let leaders_lost = Counter::default();
        registry.register(
            "leaders_lost",
            "Times this node declared its leader lost",
            leaders_lost.clone(),
        );
        let heals = Counter::default();
        registry.register(
            "heals",
            "Times this node, orphaned, was adopted back into the tree",
            heals.clone(),
        );
        let repair_requests = Counter::default();
        registry.register(
            "repair_requests",
            "Times this node, short of live neighbours, asked for more",
            repair_requests.clone(),
        );
        let repaired_edges = Family::<RepairLabel, Counter>::default();
        registry.register(
            "repaired_edges",
            "Neighbours a repair added to this node, by who chose them (bootstrap or neighbours)",
            repaired_edges.clone(),
        );
        let data_reads_answered = Family::<AnsweredBy, Counter>::default();
        registry.register(
            "data_reads_answered",
            "Reads answered by this node's database, by kind of database (writer or replica)",
            data_reads_answered.clone(),
        );
        let data_forwarded = Counter::default();
        registry.register(
            "data_requests_forwarded",
            "Data-plane requests this node sent on to its parent",
            data_forwarded.clone(),
        );
        let data_writes_refused = Counter::default();
        registry.register(
            "data_writes_refused",
            "Writes this node, as writer, refused while not accepting writes (no majority or newer data elsewhere)",
            data_writes_refused.clone(),
        );
        let data_stale_dropped = Counter::default();
        registry.register(
            "data_stale_term_messages_dropped",
            "Data-plane messages dropped because they came from an older term",
            data_stale_dropped.clone(),
        );
        let data_copies_discarded = Counter::default();
        registry.register(
            "data_copies_discarded",
            "Times this node discarded its database because it held entries the writer never had",
            data_copies_discarded.clone(),
        );
        let writer_accepting = Gauge::default();
        registry.register(
            "writer_accepting_writes",
            "1 while this node is the writer and accepts writes",
            writer_accepting.clone(),
        );
        let data_operation_seconds: Histograms<OperationLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "data_operation_seconds",
            "Time from submitting a data operation on this node to its answer, by operation and outcome (ok, error, timeout, unavailable)",
            data_operation_seconds.clone(),
        );
        let write_stage_seconds: Histograms<StageLabel> =
            Family::new_with_constructor(stage_histogram);
        registry.register(
            "write_stage_seconds",
            "Time a write spends in each step of its path: `commit` (the writer executes and commits it, \
             group commit included), `quorum` (then waits for enough copies), `copy_apply` (a copy applies \
             one batch of the writer's entries)",
            write_stage_seconds.clone(),
        );
        let copy_apply_entries = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "copy_apply_batch_entries",
            "Entries a copy applied in one transaction",
            copy_apply_entries.clone(),
        );
        let writer_group_commits = Counter::default();
        registry.register(
            "writer_group_commits",
            "Transactions the writer committed, each holding every write that was waiting (group commit)",
            writer_group_commits.clone(),
        );
        let writer_requests = Counter::default();
        registry.register(
            "writer_requests",
            "Write requests the writer handled (÷ group commits = the average group size)",
            writer_requests.clone(),
        );
        let replication_lag = Family::<ReplicaLabel, Gauge>::default();
        registry.register(
            "replication_lag_entries",
            "On the writer: its epoch minus the epoch each current replica acknowledged",
            replication_lag.clone(),
        );
        let replica_lag = Gauge::default();
        registry.register(
            "replica_lag_entries",
            "On a replica: the writer's last announced epoch minus the epoch applied here",
            replica_lag.clone(),
        );
        let voters = Gauge::default();
        registry.register(
            "voters",
            "Voters named by the newest configuration in this node's log (0 before the first one)",
            voters.clone(),
        );
        let configuration_changes = Counter::default();
        registry.register(
            "configuration_changes",
            "Voter configuration entries this node committed as the writer (the first entry of each term restates the voters)",
            configuration_changes.clone(),
        );
        let data_pending = Gauge::default();
        registry.register(
            "data_pending_requests",
            "Requests submitted on this node still waiting for their answer",
            data_pending.clone(),
        );
        let presence_online = Gauge::default();
        registry.register(
            "presence_online_users",
            "Users online in the cluster as this node knows it (a live event stream on any input node)",
            presence_online.clone(),
        );
        let presence_bytes_sent = Counter::default();
        registry.register(
            "presence_sent_bytes",
            "Bytes of presence updates this node sent to its parent and children (typing notices not counted)",
            presence_bytes_sent.clone(),
        );
        let data_inbound_queue = Gauge::default();
        registry.register(
            "data_inbound_queue_depth",
            "Data-plane messages received and not yet handled",
            data_inbound_queue.clone(),
        );
        let http_requests = Family::<HttpLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered by this node's chat server, by route, method and status",
            http_requests.clone(),
        );
        let http_request_seconds: Histograms<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_seconds",
            "Time to answer an HTTP request of the chat server (until the response head), by route and method",
            http_request_seconds.clone(),
        );
        let term = Gauge::default();
        registry.register(
            "term",
            "The term of the leader this node follows",
            term.clone(),
        );
        let tick = Gauge::default();
        registry.register("tick", "Latest root tick seen", tick.clone());
        let live_neighbours = Gauge::default();
        registry.register(
            "live_neighbours",
            "Neighbours joined and heard from recently",
            live_neighbours.clone(),
        );
        let start_time: Gauge = Gauge::default();
        start_time.set(start_unix_seconds);
        registry.register(
            "start_time_seconds",
            "Unix time at which the node process started",
            start_time,
        );
        Self {
            registry,
            ready,
            neighbours,
            bootstrap_attempts,
            bootstrap_failures,
            control_sent,
            control_received,
            control_undecodable,
            control_send_failures,
            control_transport_dropped,
            frames_rejected,
            elections_started,
            elections_won,
            leaders_lost,
            heals,
            repair_requests,
            repaired_edges,
            data_reads_answered,
            data_forwarded,
            data_writes_refused,
            data_stale_dropped,
            data_copies_discarded,
            writer_accepting,
            data_operation_seconds,
            write_stage_seconds,
            copy_apply_entries,
            writer_group_commits,
            writer_requests,
            replication_lag,
            replica_lag,
            voters,
            configuration_changes,
            data_pending,
            presence_online,
            presence_bytes_sent,
            data_inbound_queue,
            http_requests,
            http_request_seconds,
            term,
            tick,
            live_neighbours,
        }
    }

    /// The metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_the_node_label_and_recorded_values() {
        let metrics = Metrics::new(4, 1_700_000_000);
        metrics.bootstrap_attempts.inc();
        metrics.bootstrap_attempts.inc();
        metrics.ready.set(1);
        metrics
            .control_sent
            .get_or_create(&ScopeLabel { scope: "election" })
            .inc();
        metrics
            .frames_rejected
            .get_or_create(&FrameRejectedLabel {
                plane: "data",
                reason: "seal",
            })
            .inc();
        let text = metrics.render();
        assert!(
            text.contains(
                r#"chat_node_frames_rejected_total{node_id="4",plane="data",reason="seal"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"chat_node_bootstrap_registration_attempts_total{node_id="4"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"chat_node_ready{node_id="4"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"chat_node_control_messages_sent_total{node_id="4",scope="election"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"chat_node_start_time_seconds{node_id="4"} 1700000000"#),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[test]
    fn latency_histograms_and_lag_gauges_render_with_their_labels() {
        let metrics = Metrics::new(2, 0);
        metrics
            .data_operation_seconds
            .get_or_create(&OperationLabel {
                operation: "send_group_message",
                outcome: "ok",
            })
            .observe(0.003);
        metrics
            .replication_lag
            .get_or_create(&ReplicaLabel { replica: 3 })
            .set(7);
        metrics
            .http_request_seconds
            .get_or_create(&RouteLabel {
                method: "POST".into(),
                route: "/api/groups/{id}/messages".into(),
            })
            .observe(0.012);
        let text = metrics.render();
        assert!(
            text.contains(r#"chat_node_data_operation_seconds_count{node_id="2",operation="send_group_message",outcome="ok"} 1"#),
            "{text}"
        );
        // 3 ms is above the 2 ms bucket and inside the 4 ms one (0.5 ms doubling).
        let bucket = |le: &str| {
            text.lines()
                .find(|line| {
                    line.starts_with("chat_node_data_operation_seconds_bucket")
                        && line.contains(&format!("le=\"{le}\""))
                })
                .unwrap_or_else(|| panic!("no {le} bucket in {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!((bucket("0.002"), bucket("0.004")), ("0".into(), "1".into()));
        assert!(
            text.contains(r#"chat_node_replication_lag_entries{node_id="2",replica="3"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"chat_node_http_request_seconds_count{node_id="2",method="POST",route="/api/groups/{id}/messages"} 1"#),
            "{text}"
        );
    }
}
