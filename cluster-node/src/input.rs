//! The input role: the chat's HTTP server and the nameserver lease, started when the tree makes this
//! node an input node and stopped (gracefully, in-flight requests finished) when it stops being one.
//!
//! ```text
//!   ControlView ──roles──▶ supervisor ──start──▶ web::serve(listener, state) + lease::hold(url)
//!                              │        ──stop───▶ graceful shutdown, deregister
//!                              └──ready && input──▶ serving flag (the pause middleware's 503)
//! ```
//!
//! One [`WebState`] lives as long as the node. Sessions are cookies signed with a key derived from the
//! config's `cluster_key`, so users stay signed in across a pause, a role flap, and a move to another
//! input node of the same cluster. The service behind the state is always the data plane's proxy: on a
//! node that also holds the database, the data plane answers locally without a network hop.
//!
//! With `tls_cert` and `tls_key` in the config the server speaks HTTPS only, the URL it registers with
//! the nameserver is `https://`, and session cookies are `Secure`. The certificate is read each time
//! serving starts, so one renewed on disk is picked up the next time the node becomes an input node;
//! one that no longer loads is retried like a busy port, never replaced by plain HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, TlsFiles};
use crate::control::ControlView;
use crate::data::DataHandle;
use crate::lease;
use crate::logging::HEADLINE;
use crate::status::StatusBoard;
use crate::web::{self, NameserverLink, SessionKey, WebOptions, WebState};

/// A running HTTP server and its lease.
struct Serving {
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    lease: JoinHandle<()>,
}

/// Runs the input role for the node's lifetime, following `view`.
#[tracing::instrument(name = "input", skip_all, fields(node = %config.id))]
pub async fn supervise(
    config: Config,
    mut view: watch::Receiver<ControlView>,
    data: DataHandle,
    status: StatusBoard,
    nameserver_http: Vec<String>,
    analytics: Arc<crate::analytics::Analytics>,
    shutdown: CancellationToken,
) {
    let (serving_tx, serving_rx) = watch::channel(false);
    // Lease `i` is held with nameserver `i`; its HTTP address is `nameserver_http[i]` (same order).
    let nameservers: Vec<NameserverLink> = nameserver_http
        .into_iter()
        .map(NameserverLink::new)
        .collect();
    let reachable: Vec<_> = (0..config.nameservers.len())
        .map(|i| {
            nameservers
                .get(i)
                .map(|link| link.reachable.clone())
                .unwrap_or_default()
        })
        .collect();
    let options = WebOptions {
        nameservers,
        session_key: session_key(&config),
        secure_cookies: config.tls.is_some(),
        ..WebOptions::default()
    };
    let state = WebState::new(data.service(), data.clone(), serving_rx, options)
        .with_metrics(data.metrics())
        .with_presence(data.presence())
        .with_analytics(analytics);
    let addr = SocketAddr::new(config.host, config.http_port);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    let proof_key = cluster_auth::ProofKey::derive(config.cluster_key.as_bytes());
    let mut running: Option<Serving> = None;
    loop {
        let (is_input, ready) = {
            let current = view.borrow_and_update();
            (current.roles.contains(&overlay::Role::Input), current.ready)
        };
        serving_tx.send_if_modified(|serving| {
            let next = is_input && ready;
            std::mem::replace(serving, next) != next
        });
        match (is_input, running.is_some()) {
            (true, false) => match listen(addr, config.tls.as_ref()).await {
                Ok((listener, tls)) => {
                    let stop = CancellationToken::new();
                    let server = tokio::spawn(web::serve(
                        listener,
                        tls,
                        state.clone(),
                        stop.clone().cancelled_owned(),
                    ));
                    let mut leases = tokio::task::JoinSet::new();
                    for (nameserver, reachable) in config.nameservers.iter().zip(&reachable) {
                        leases.spawn(lease::hold(
                            nameserver.clone(),
                            config.id,
                            url.clone(),
                            proof_key.clone(),
                            reachable.clone(),
                            stop.clone(),
                        ));
                    }
                    let lease =
                        tokio::spawn(async move { while leases.join_next().await.is_some() {} });
                    running = Some(Serving {
                        stop,
                        server,
                        lease,
                    });
                    status.update(|s| s.http = Some(url.clone()));
                    tracing::info!(target: HEADLINE, %url, "serving HTTP");
                }
                Err(error) => {
                    tracing::error!(%addr, %error, "cannot serve HTTP; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            (false, true) => {
                if let Some(serving) = running.take() {
                    stop_serving(serving).await;
                }
                status.update(|s| s.http = None);
                tracing::info!(target: HEADLINE, "stopped serving HTTP (no longer an input node)");
            }
            _ => {}
        }
        tokio::select! {
            changed = view.changed() => if changed.is_err() { break },
            () = shutdown.cancelled() => break,
        }
    }
    serving_tx.send_replace(false);
    if let Some(serving) = running.take() {
        stop_serving(serving).await;
    }
}

/// The key of the cluster's session cookies, the same on every node that holds the cluster key.
fn session_key(config: &Config) -> SessionKey {
    SessionKey::derive(config.cluster_key.as_bytes())
}

/// The bound port and, under TLS, the server's certificate freshly read from disk.
async fn listen(
    addr: SocketAddr,
    tls: Option<&TlsFiles>,
) -> Result<(TcpListener, Option<Arc<cluster_tls::ServerConfig>>), String> {
    let tls = tls
        .map(TlsFiles::load)
        .transpose()
        .map_err(|error| error.to_string())?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot bind the HTTP port: {error}"))?;
    Ok((listener, tls))
}

/// Graceful: open event streams end, in-flight requests finish, the lease is given back.
async fn stop_serving(serving: Serving) {
    serving.stop.cancel();
    match tokio::time::timeout(Duration::from_secs(5), serving.server).await {
        Ok(Ok(Err(error))) => tracing::warn!(%error, "HTTP server ended with an error"),
        Err(_) => tracing::warn!("HTTP server did not finish in-flight requests in time"),
        _ => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), serving.lease).await;
}
