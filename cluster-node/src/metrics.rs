//! The node's Prometheus metrics, served as text on the admin port's `/metrics`.
//!
//! One `Metrics` value per node, shared by reference; each layer records into the series it owns.
//! Names follow Prometheus conventions: a `chat_node_` prefix, `_total` on counters, base units.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    pub elections_started: Counter,
    pub elections_won: Counter,
    pub leaders_lost: Counter,
    pub heals: Counter,
    pub data_reads_answered: Family<AnsweredBy, Counter>,
    pub data_forwarded: Counter,
    pub data_writes_refused: Counter,
    pub data_stale_dropped: Counter,
    pub data_copies_discarded: Counter,
    pub writer_accepting: Gauge,
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
            elections_started,
            elections_won,
            leaders_lost,
            heals,
            data_reads_answered,
            data_forwarded,
            data_writes_refused,
            data_stale_dropped,
            data_copies_discarded,
            writer_accepting,
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
        let text = metrics.render();
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
}
