//! The lease table and the suspect set, shared by the gRPC side, the HTTP side and the prober, with the
//! clock attached: the one place that reads the time, so `leases` and `probe` stay pure.
//!
//! Both sit behind one lock, so the redirects and every list of live nodes see the same nodes: a node
//! is handed out and listed exactly when its lease is live and it is not suspect. The lock is a plain
//! mutex held for a few map operations and never across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::leases::{BaseUrl, Endpoint, LeaseNotFound, LeaseTable, NodeId};
use crate::probe::{Change, Outcome, Suspicion};

#[derive(Clone)]
pub struct Directory {
    state: Arc<Mutex<State>>,
}

struct State {
    leases: LeaseTable,
    suspicion: Suspicion,
}

impl Directory {
    pub fn new(ttl: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                leases: LeaseTable::new(ttl),
                suspicion: Suspicion::default(),
            })),
        }
    }

    /// A registration starts unsuspected: the node announces that it serves right now.
    pub fn register(&self, id: NodeId, url: BaseUrl) -> Duration {
        let mut state = self.lock();
        state.suspicion.forget(id);
        state.leases.register(id, url, now())
    }

    pub fn renew(&self, id: NodeId) -> Result<Duration, LeaseNotFound> {
        self.lock().leases.renew(id, now())
    }

    pub fn deregister(&self, id: NodeId) -> bool {
        let mut state = self.lock();
        state.suspicion.forget(id);
        state.leases.deregister(id)
    }

    /// The nodes browsers may be sent to, ordered by id.
    pub fn live(&self) -> Vec<Endpoint> {
        let state = self.lock();
        let mut live = state.leases.live(now());
        live.retain(|endpoint| !state.suspicion.is_suspect(endpoint.id, &endpoint.url));
        live
    }

    pub fn next_redirect(&self) -> Option<Endpoint> {
        let State { leases, suspicion } = &mut *self.lock();
        leases.next_redirect(now(), |id, url| !suspicion.is_suspect(id, url))
    }

    /// Every node with a live lease, suspect or not: the ones to probe. Forgets what was suspected of
    /// registrations that have ended, once per round rather than on every outcome.
    pub fn leased(&self) -> Vec<Endpoint> {
        let State { leases, suspicion } = &mut *self.lock();
        let leased = leases.live(now());
        suspicion.retain_leased(&leased);
        leased
    }

    /// Takes the outcome of probing `probed`, as it was registered when the probe started.
    pub fn record_probe(&self, probed: &Endpoint, outcome: Outcome) -> Change {
        let State { leases, suspicion } = &mut *self.lock();
        suspicion.record(leases.live_url(probed.id, now()), probed, outcome)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("directory lock poisoned: a lease operation panicked half-way")
    }
}

/// Tokio's clock rather than std's, so a runtime with paused time (tokio's `test-util`) would drive lease
/// expiry too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> Endpoint {
        Endpoint {
            id: NodeId::parse(id).expect("non-zero"),
            url: BaseUrl::parse(&format!("http://127.0.0.1:{}", 8080 + id)).expect("valid"),
        }
    }

    fn directory_with(ids: &[u64]) -> Directory {
        let directory = Directory::new(Duration::from_secs(60));
        for &id in ids {
            let node = node(id);
            directory.register(node.id, node.url);
        }
        directory
    }

    fn ids(endpoints: Vec<Endpoint>) -> Vec<u64> {
        endpoints.into_iter().map(|e| e.id.get()).collect()
    }

    fn redirects(directory: &Directory, count: usize) -> Vec<u64> {
        (0..count)
            .filter_map(|_| directory.next_redirect())
            .map(|e| e.id.get())
            .collect()
    }

    #[test]
    fn a_suspect_node_is_neither_listed_nor_handed_out_but_still_probed() {
        let directory = directory_with(&[1, 2, 3]);

        directory.record_probe(&node(2), Outcome::Failed);

        assert_eq!(ids(directory.live()), vec![1, 3]);
        assert_eq!(redirects(&directory, 4), vec![1, 3, 1, 3]);
        assert_eq!(ids(directory.leased()), vec![1, 2, 3]);
    }

    #[test]
    fn an_accepted_probe_brings_a_suspect_node_back() {
        let directory = directory_with(&[1, 2]);
        directory.record_probe(&node(2), Outcome::Failed);

        directory.record_probe(&node(2), Outcome::Accepted);

        assert_eq!(ids(directory.live()), vec![1, 2]);
        assert_eq!(redirects(&directory, 2), vec![1, 2]);
    }

    #[test]
    fn when_every_node_is_suspect_there_is_nowhere_to_go() {
        let directory = directory_with(&[1]);

        directory.record_probe(&node(1), Outcome::Failed);

        assert!(directory.live().is_empty());
        assert_eq!(directory.next_redirect(), None);
    }

    #[test]
    fn registering_again_clears_suspicion() {
        let directory = directory_with(&[1]);
        directory.record_probe(&node(1), Outcome::Failed);

        directory.register(node(1).id, node(1).url);

        assert_eq!(ids(directory.live()), vec![1]);
    }
}
