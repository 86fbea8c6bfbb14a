//! The gRPC side: input nodes register their base URL, renew their lease, and deregister when they stop
//! serving HTTP. Each of those proves the cluster key first (`UNAUTHENTICATED` otherwise, and nothing
//! changes); `List` stays open. Bad input is `INVALID_ARGUMENT`; renewing a lease that is gone is
//! `NOT_FOUND`, which tells the node to register again.

use chat_proto::nameserver::nameserver_server::Nameserver;
use chat_proto::nameserver::{
    DeregisterRequest, DeregisterResponse, Endpoint, Lease, ListRequest, ListResponse,
    RegisterRequest, RenewRequest,
};
use cluster_auth::{Guard, Rpc};
use tonic::{Request, Response, Status};

use crate::directory::Directory;
use crate::leases::{BaseUrl, InvalidInput, NodeId};

pub struct NameserverService {
    directory: Directory,
    guard: Guard,
}

impl NameserverService {
    pub fn new(directory: Directory, guard: Guard) -> Self {
        Self { directory, guard }
    }
}

fn invalid(error: InvalidInput) -> Status {
    tracing::warn!(%error, "request refused");
    Status::invalid_argument(error.to_string())
}

fn lease(ttl: std::time::Duration) -> Response<Lease> {
    Response::new(Lease {
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    })
}

#[tonic::async_trait]
impl Nameserver for NameserverService {
    #[tracing::instrument(name = "nameserver.register", skip_all, fields(node_id = request.get_ref().id))]
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Lease>, Status> {
        self.guard.authenticate(Rpc::NameserverRegister, &request)?;
        let request = request.into_inner();
        let id = NodeId::parse(request.id).map_err(invalid)?;
        let url = BaseUrl::parse(&request.url).map_err(invalid)?;
        tracing::info!(url = url.as_str(), "input node registered");
        Ok(lease(self.directory.register(id, url)))
    }

    #[tracing::instrument(name = "nameserver.renew", skip_all, fields(node_id = request.get_ref().id))]
    async fn renew(&self, request: Request<RenewRequest>) -> Result<Response<Lease>, Status> {
        self.guard.authenticate(Rpc::NameserverRenew, &request)?;
        let id = NodeId::parse(request.into_inner().id).map_err(invalid)?;
        match self.directory.renew(id) {
            Ok(ttl) => Ok(lease(ttl)),
            Err(gone) => {
                tracing::info!("renewal of a lease that is gone");
                Err(Status::not_found(gone.to_string()))
            }
        }
    }

    #[tracing::instrument(name = "nameserver.deregister", skip_all, fields(node_id = request.get_ref().id))]
    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        self.guard
            .authenticate(Rpc::NameserverDeregister, &request)?;
        let id = NodeId::parse(request.into_inner().id).map_err(invalid)?;
        // Idempotent: a node retrying its deregistration must not see an error.
        let held_lease = self.directory.deregister(id);
        tracing::info!(held_lease, "input node deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }

    #[tracing::instrument(name = "nameserver.list", skip_all)]
    async fn list(&self, _request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let endpoints = self
            .directory
            .live()
            .into_iter()
            .map(|endpoint| Endpoint {
                id: endpoint.id.get(),
                url: endpoint.url.as_str().to_owned(),
            })
            .collect();
        Ok(Response::new(ListResponse { endpoints }))
    }
}
