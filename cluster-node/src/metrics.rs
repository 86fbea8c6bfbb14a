//! The node's Prometheus metrics, served as text on the admin port's `/metrics`.
//!
//! One `Metrics` value per node, shared by reference; each layer records into the series it owns.
//! Names follow Prometheus conventions: a `chat_node_` prefix, `_total` on counters, base units.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of what [`Metrics::render`] produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub ready: Gauge,
    pub neighbours: Gauge,
    pub bootstrap_attempts: Counter,
    pub bootstrap_failures: Counter,
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
        let text = metrics.render();
        assert!(
            text.contains(r#"chat_node_bootstrap_registration_attempts_total{node_id="4"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"chat_node_ready{node_id="4"} 1"#), "{text}");
        assert!(
            text.contains(r#"chat_node_start_time_seconds{node_id="4"} 1700000000"#),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
