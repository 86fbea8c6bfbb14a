//! What every layer of one node shares: the status it reports, its metrics, and the neighbours'
//! addresses. Cloning is cheap (handles only).

use std::sync::{Arc, PoisonError, RwLock};

use crate::discovery::AddressBook;
use crate::metrics::Metrics;
use crate::status::StatusBoard;
use crate::storage::Database;

#[derive(Clone)]
pub struct NodeContext {
    pub status: StatusBoard,
    pub metrics: Arc<Metrics>,
    pub addresses: AddressBook,
    pub database: DatabaseSlot,
}

/// The database the data plane has open (as writer or replica) and in which role, so the admin
/// endpoint can report its position and content hash without going through the data plane.
#[derive(Clone, Default)]
pub struct DatabaseSlot(Arc<RwLock<Option<(Database, &'static str)>>>);

impl DatabaseSlot {
    pub fn set(&self, database: Option<Database>, role: &'static str) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = database.map(|db| (db, role));
    }

    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn get(&self) -> Option<(Database, &'static str)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
