//! The gRPC face of the registry: parses requests into domain types, answers with wire types, and maps
//! failures to status codes (no proof of the cluster key → `UNAUTHENTICATED`, bad input →
//! `INVALID_ARGUMENT`, a failed save → `UNAVAILABLE`, so the node retries).

use std::sync::Arc;

use chat_proto::bootstrap::bootstrap_server::Bootstrap;
use chat_proto::bootstrap::{
    ListNodesRequest, ListNodesResponse, NodeEntry, RegisterRequest, RegisterResponse,
};
use cluster_auth::{Guard, Rpc};
use tonic::{Request, Response, Status};

use crate::address::NodeAddress;
use crate::store::Store;

pub struct BootstrapService {
    store: Arc<Store>,
    /// Registrations change who the nodes connect to: only cluster members may make them.
    guard: Guard,
}

impl BootstrapService {
    pub fn new(store: Arc<Store>, guard: Guard) -> Self {
        Self { store, guard }
    }
}

#[tonic::async_trait]
impl Bootstrap for BootstrapService {
    #[tracing::instrument(name = "bootstrap.register", skip_all, fields(node_id))]
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.guard
            .check(Rpc::BootstrapRegister, &request)
            .inspect_err(|status| {
                if let Some(refused) = self.guard.refusal_to_log() {
                    tracing::warn!(
                        reason = status.message(),
                        refused,
                        "registrations without a valid proof of the cluster key refused"
                    );
                }
            })?;
        let address = NodeAddress::from_proto(request.into_inner().node).map_err(|error| {
            tracing::warn!(%error, "registration refused");
            Status::invalid_argument(error.to_string())
        })?;
        tracing::Span::current().record("node_id", address.id.get());

        let (change, neighbors) = self.store.register(address).await.map_err(|error| {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "registration not saved"
            );
            Status::unavailable("the bootstrap could not save its state; retry shortly")
        })?;

        let neighbor_ids: Vec<u64> = neighbors.iter().map(|n| n.id.get()).collect();
        tracing::info!(?change, neighbors = ?neighbor_ids, "node registered");
        Ok(Response::new(RegisterResponse {
            neighbors: neighbors.iter().map(NodeAddress::to_proto).collect(),
            known: change != crate::registry::Change::Added,
        }))
    }

    #[tracing::instrument(name = "bootstrap.list_nodes", skip_all)]
    async fn list_nodes(
        &self,
        _request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let nodes = self
            .store
            .entries()
            .iter()
            .map(|entry| NodeEntry {
                address: Some(entry.address.to_proto()),
                neighbors: entry.neighbors.iter().map(|id| id.get()).collect(),
            })
            .collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }
}
