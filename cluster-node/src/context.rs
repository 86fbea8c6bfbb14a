//! What every layer of one node shares: the status it reports, its metrics, and the neighbours'
//! addresses. Cloning is cheap (handles only).

use std::sync::Arc;

use crate::discovery::AddressBook;
use crate::metrics::Metrics;
use crate::status::StatusBoard;

#[derive(Clone)]
pub struct NodeContext {
    pub status: StatusBoard,
    pub metrics: Arc<Metrics>,
    pub addresses: AddressBook,
}
