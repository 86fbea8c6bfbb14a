//! The gRPC face of the registry: parses requests into domain types, answers with wire types, and maps
//! failures to status codes (no proof of the cluster key → `UNAUTHENTICATED`, bad input →
//! `INVALID_ARGUMENT`, a failed save → `UNAVAILABLE`, so the node retries).

use std::sync::Arc;

use chat_proto::bootstrap::bootstrap_server::Bootstrap;
use std::collections::BTreeSet;

use chat_proto::bootstrap::{
    DeregisterRequest, DeregisterResponse, ListNodesRequest, ListNodesResponse, NodeEntry,
    RegisterRequest, RegisterResponse, RenewRequest, RenewResponse, RepairRequest, RepairResponse,
};
use cluster_auth::{Guard, Rpc};
use tonic::{Request, Response, Status};

use crate::address::{NodeAddress, NodeId};
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

#[allow(clippy::result_large_err)]
fn node_id(raw: u64) -> Result<NodeId, Status> {
    NodeId::parse(raw).map_err(|error| Status::invalid_argument(error.to_string()))
}

#[tonic::async_trait]
impl Bootstrap for BootstrapService {
    #[tracing::instrument(name = "bootstrap.register", skip_all, fields(node_id))]
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.guard.authenticate(Rpc::BootstrapRegister, &request)?;
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
            degree: self.store.degree() as u32,
        }))
    }

    #[tracing::instrument(name = "bootstrap.renew", skip_all, fields(node_id))]
    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<RenewResponse>, Status> {
        self.guard.authenticate(Rpc::BootstrapRenew, &request)?;
        let id = node_id(request.into_inner().id)?;
        tracing::Span::current().record("node_id", id.get());
        let renewed = self.store.renew(id).await.map_err(|error| {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "split repair not saved"
            );
            Status::unavailable("the bootstrap could not save its state; retry shortly")
        })?;
        if let Some(Some(merged)) = &renewed {
            tracing::info!(
                linked = merged.id.get(),
                "the live nodes were split; linked this node's part to the main part"
            );
        }
        Ok(Response::new(RenewResponse {
            known: renewed.is_some(),
            lease_ms: u32::try_from(self.store.lease().as_millis()).unwrap_or(u32::MAX),
            added: renewed
                .flatten()
                .iter()
                .map(NodeAddress::to_proto)
                .collect(),
        }))
    }

    #[tracing::instrument(name = "bootstrap.repair", skip_all, fields(node_id))]
    async fn repair(
        &self,
        request: Request<RepairRequest>,
    ) -> Result<Response<RepairResponse>, Status> {
        self.guard.authenticate(Rpc::BootstrapRepair, &request)?;
        let request = request.into_inner();
        let id = node_id(request.id)?;
        tracing::Span::current().record("node_id", id.get());
        // Ids the registry does not know are simply not neighbours; zero is not an id at all.
        let live: BTreeSet<NodeId> = request
            .live_neighbors
            .into_iter()
            .filter_map(|raw| NodeId::parse(raw).ok())
            .collect();
        let repair = self.store.repair(id, &live).await.map_err(|error| {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "repair not saved"
            );
            Status::unavailable("the bootstrap could not save its state; retry shortly")
        })?;
        let Some(repair) = repair else {
            return Err(Status::not_found(format!(
                "node {id} is not registered; register first"
            )));
        };
        let added: Vec<u64> = repair.added.iter().map(|n| n.id.get()).collect();
        if added.is_empty() {
            tracing::info!(live = live.len(), "repair asked; no live node to add");
        } else {
            tracing::info!(?added, live = live.len(), "repaired: new neighbours linked");
        }
        Ok(Response::new(RepairResponse {
            added: repair.added.iter().map(NodeAddress::to_proto).collect(),
            neighbors: repair.neighbors.iter().map(NodeAddress::to_proto).collect(),
        }))
    }

    #[tracing::instrument(name = "bootstrap.deregister", skip_all, fields(node_id))]
    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        self.guard
            .authenticate(Rpc::BootstrapDeregister, &request)?;
        let id = node_id(request.into_inner().id)?;
        tracing::Span::current().record("node_id", id.get());
        let removed = self.store.deregister(id).await.map_err(|error| {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "removal not saved"
            );
            Status::unavailable("the bootstrap could not save its state; retry shortly")
        })?;
        let former: Vec<u64> = removed
            .iter()
            .flatten()
            .map(|neighbour| neighbour.get())
            .collect();
        match &removed {
            Some(_) => tracing::info!(former_neighbors = ?former, "node removed"),
            None => tracing::info!("removal of an unknown node: nothing to do"),
        }
        Ok(Response::new(DeregisterResponse {
            known: removed.is_some(),
            former_neighbors: former,
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
                repaired: entry.repaired.iter().map(|id| id.get()).collect(),
            })
            .collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }
}
