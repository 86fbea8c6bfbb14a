//! An input node's lease at the nameserver: while the node serves HTTP it keeps its URL registered,
//! renewing well inside the lease, and deregisters when it stops serving, so browsers are only ever
//! sent to nodes that answer.
//!
//! Every call carries a proof of the cluster key (`cluster-auth`); the nameserver refuses any other.
//! The nameserver may restart or forget the node (an expired lease answers NOT_FOUND): the holder then
//! registers again. An unreachable nameserver is retried quietly; the node keeps serving meanwhile. A
//! refused proof (another cluster's key, a clock far off) is logged, at most once per interval.

use std::time::Duration;

use chat_proto::nameserver::nameserver_client::NameserverClient;
use chat_proto::nameserver::{DeregisterRequest, RegisterRequest, RenewRequest};
use cluster_auth::{ProofKey, Rpc, authorized};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::config::{NodeId, ServiceAddr};
use crate::discovery::FailureLog;

/// How often the lease is renewed: a third of the nameserver's default 3 s lease, so two renewals in
/// a row may be lost before browsers stop being sent here.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// Holds the lease for `url` until `stop` is cancelled, then deregisters (best effort, bounded). Calls
/// are proven with `key`. `reachable` says whether the last call got through (pages send browsers to a
/// nameserver that does first). A node with several nameservers holds one lease with each, apart.
#[tracing::instrument(name = "nameserver_lease", skip_all, fields(%url, %nameserver))]
pub async fn hold(
    nameserver: ServiceAddr,
    id: NodeId,
    url: String,
    key: ProofKey,
    reachable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    use std::sync::atomic::Ordering;
    let mut refusals = FailureLog::new(Duration::from_secs(10));
    let mut client: Option<NameserverClient<Channel>> = None;
    let mut registered = false;
    let mut ticker = tokio::time::interval(RENEW_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if client.is_none() {
            client = connect(&nameserver).await;
        }
        let Some(connected) = client.as_mut() else {
            reachable.store(false, Ordering::Relaxed);
            continue;
        };
        let result = if registered {
            let renew = authorized(&key, Rpc::NameserverRenew, RenewRequest { id: id.0 });
            connected.renew(renew).await.map(|_| ())
        } else {
            let register = RegisterRequest {
                id: id.0,
                url: url.clone(),
            };
            let register = authorized(&key, Rpc::NameserverRegister, register);
            connected.register(register).await.map(|_| ())
        };
        reachable.store(result.is_ok(), Ordering::Relaxed);
        match result {
            Ok(()) => {
                if !registered {
                    tracing::info!("registered with the nameserver");
                }
                registered = true;
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                tracing::info!("the nameserver forgot this node; registering again");
                registered = false;
            }
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                if let Some(count) = refusals.record(Instant::now()) {
                    tracing::warn!(
                        reason = status.message(),
                        refusals = count,
                        "the nameserver refused this node's proof of the cluster key; retrying"
                    );
                }
                registered = false;
            }
            Err(status) => {
                tracing::debug!(%status, "nameserver call failed; retrying");
                registered = false;
                client = None;
            }
        }
    }
    if let Some(mut connected) = client {
        let goodbye = connected.deregister(authorized(
            &key,
            Rpc::NameserverDeregister,
            DeregisterRequest { id: id.0 },
        ));
        match tokio::time::timeout(Duration::from_secs(1), goodbye).await {
            Ok(Ok(_)) => tracing::info!("deregistered from the nameserver"),
            _ => tracing::debug!("could not deregister; the lease will expire"),
        }
    }
}

async fn connect(nameserver: &ServiceAddr) -> Option<NameserverClient<Channel>> {
    let endpoint = Endpoint::from_shared(nameserver.grpc_uri())
        .ok()?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    match endpoint.connect().await {
        Ok(channel) => Some(NameserverClient::new(channel)),
        Err(error) => {
            tracing::debug!(%error, "cannot reach the nameserver");
            None
        }
    }
}
