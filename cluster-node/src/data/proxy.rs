//! The chat service as seen from a node without the answer at hand: every operation becomes a
//! data-plane request that travels up the tree, and the answer (or `Timeout`) comes back.

use std::future::Future;

use super::DataHandle;
use crate::service::{ChatService, ServiceError, ServiceRequest, ServiceResponse};

/// [`ChatService`] through the data plane. Cheap to clone.
#[derive(Clone)]
pub struct ProxyService {
    handle: DataHandle,
}

impl ProxyService {
    pub(super) fn new(handle: DataHandle) -> Self {
        Self { handle }
    }
}

impl ChatService for ProxyService {
    fn execute(
        &self,
        request: ServiceRequest,
    ) -> impl Future<Output = Result<ServiceResponse, ServiceError>> + Send {
        let handle = self.handle.clone();
        async move { handle.execute(request).await }
    }
}
