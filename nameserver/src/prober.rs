//! Connects to every leased node's registered address once per interval and hands the outcomes to the
//! directory (what they mean is decided in `probe`). A probe is a bare TCP handshake, so it needs no
//! TLS and works the same for http and https nodes.
//!
//! Each round probes all nodes side by side and records each outcome as it arrives, so one node that
//! does not answer costs only its own timeout; the next round starts an interval after the last began
//! (later when a round outlasts it, never two rounds at once).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::Probing;
use crate::directory::Directory;
use crate::leases::Endpoint;
use crate::probe::{self, Change, Outcome};

/// Probes until `stop` is cancelled.
pub async fn run(directory: Directory, probing: Probing, stop: CancellationToken) {
    let mut rounds = tokio::time::interval(probing.interval());
    rounds.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = rounds.tick() => {}
        }
        let mut probes = JoinSet::new();
        for endpoint in directory.leased() {
            let Some(target) = probe::target(&endpoint.url) else {
                tracing::warn!(
                    node_id = endpoint.id.get(),
                    url = endpoint.url.as_str(),
                    "registered URL has no address to probe"
                );
                continue;
            };
            let timeout = probing.timeout();
            probes.spawn(async move {
                let result = connect(&target, timeout).await;
                (endpoint, target, result)
            });
        }
        loop {
            let joined = tokio::select! {
                () = stop.cancelled() => return,
                joined = probes.join_next() => joined,
            };
            match joined {
                None => break,
                Some(Ok((endpoint, target, result))) => {
                    record(&directory, &endpoint, &target, result);
                }
                Some(Err(error)) => tracing::error!(%error, "a connection probe panicked"),
            }
        }
    }
}

async fn connect(target: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            // Closing with a reset instead of a FIN leaves no TIME_WAIT socket behind: several probes a
            // second per node would otherwise pile up thousands of them and use up local ports.
            if let Err(error) = stream.set_zero_linger() {
                tracing::debug!(%error, "cannot close the probe connection with a reset");
            }
            Ok(())
        }
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

fn record(directory: &Directory, endpoint: &Endpoint, target: &str, result: Result<(), String>) {
    let outcome = match result {
        Ok(()) => Outcome::Accepted,
        Err(_) => Outcome::Failed,
    };
    let node_id = endpoint.id.get();
    match (directory.record_probe(endpoint, outcome), result) {
        (Change::Suspected, Err(error)) => tracing::warn!(
            node_id,
            target,
            %error,
            "input node does not accept connections; not handed out until it does again"
        ),
        (Change::Cleared, _) => {
            tracing::info!(node_id, target, "input node accepts connections again");
        }
        (Change::Stale, _) => {
            tracing::debug!(node_id, target, "probe of a registration that is gone");
        }
        _ => {}
    }
}
