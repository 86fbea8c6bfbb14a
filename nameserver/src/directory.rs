//! The lease table shared by the gRPC and the HTTP side, with the clock attached: the one place that
//! reads the time, so `leases` stays pure.
//!
//! The lock is a plain mutex held for a few map operations and never across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::leases::{BaseUrl, Endpoint, LeaseNotFound, LeaseTable, NodeId};

#[derive(Clone)]
pub struct Directory {
    table: Arc<Mutex<LeaseTable>>,
}

impl Directory {
    pub fn new(ttl: Duration) -> Self {
        Self {
            table: Arc::new(Mutex::new(LeaseTable::new(ttl))),
        }
    }

    pub fn register(&self, id: NodeId, url: BaseUrl) -> Duration {
        self.lock().register(id, url, now())
    }

    pub fn renew(&self, id: NodeId) -> Result<Duration, LeaseNotFound> {
        self.lock().renew(id, now())
    }

    pub fn deregister(&self, id: NodeId) -> bool {
        self.lock().deregister(id)
    }

    pub fn live(&self) -> Vec<Endpoint> {
        self.lock().live(now())
    }

    pub fn next_redirect(&self) -> Option<Endpoint> {
        self.lock().next_redirect(now())
    }

    fn lock(&self) -> MutexGuard<'_, LeaseTable> {
        self.table
            .lock()
            .expect("lease table lock poisoned: a lease operation panicked half-way")
    }
}

/// Tokio's clock rather than std's, so a runtime with paused time (tokio's `test-util`) would drive lease
/// expiry too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
