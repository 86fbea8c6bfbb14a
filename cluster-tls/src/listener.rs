//! [`TlsListener`]: an [`axum::serve::Listener`] that hands out connections whose TLS handshake is
//! done, so `axum::serve` (and its graceful shutdown) runs unchanged over HTTPS.
//!
//! ```text
//!   TcpListener ─accept─► handshake tasks (≤ MAX_HANDSHAKES, each ≤ HANDSHAKE_TIMEOUT) ─► channel ─► accept()
//! ```
//!
//! Handshakes run side by side in a task of their own: done inside `accept()`, one client that opens a
//! connection and sends nothing would stall every other client behind it. Failed handshakes (a browser
//! that does not trust the certificate, a port scan, plain HTTP sent to the HTTPS port) are logged at
//! debug level and dropped. Dropping the listener stops that task and closes the port at once, so a
//! node that stops and starts serving can bind it again.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// Accepts TCP connections and completes their TLS handshakes under one [`ServerConfig`].
pub struct TlsListener {
    ready: mpsc::Receiver<Accepted>,
    local_addr: SocketAddr,
    handshaker: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS on `listener`. Must be called inside a Tokio runtime.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        let handshaker = tokio::spawn(handshake_loop(listener, TlsAcceptor::from(config), sender));
        Ok(TlsListener {
            ready,
            local_addr,
            handshaker,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.handshaker.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // Only if the handshake task died; a listener must not fail, so it accepts nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn handshake_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<Accepted>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if handshakes.len() < MAX_HANDSHAKES => match accepted {
                Ok((stream, peer)) => {
                    let acceptor = acceptor.clone();
                    handshakes.spawn(async move {
                        let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        (outcome, peer)
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: retrying at once would spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(finished) = handshakes.join_next() => match finished {
                Ok((Ok(Ok(stream)), peer)) => {
                    if ready.send((stream, peer)).await.is_err() {
                        return;
                    }
                }
                Ok((Ok(Err(error)), peer)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Ok((Err(_), peer)) => tracing::debug!(%peer, "TLS handshake timed out"),
                Err(error) => tracing::warn!(%error, "TLS handshake task failed"),
            },
            () = ready.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalAuthority, server_config};
    use axum::Router;
    use axum::routing::get;
    use tokio::io::AsyncWriteExt;

    /// A server on port 0 with a certificate for 127.0.0.1 from a fresh CA, and a client trusting it.
    async fn https_server(dir: &std::path::Path) -> (SocketAddr, reqwest::Client) {
        let (authority, _) = LocalAuthority::open_or_create(dir).unwrap();
        // Issued by the reopened CA: what init.sh does on a second run.
        let (authority, created) = {
            drop(authority);
            LocalAuthority::open_or_create(dir).unwrap()
        };
        assert!(!created);
        let (cert, key) = authority
            .issue(&["127.0.0.1".into()])
            .unwrap()
            .write_to(&dir.join("server"))
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = TlsListener::new(listener, server_config(&cert, &key).unwrap()).unwrap();
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let app = Router::new().route("/", get(|| async { "over TLS" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let ca = std::fs::read(authority.certificate_path()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        (addr, client)
    }

    #[tokio::test]
    async fn a_client_that_trusts_the_authority_gets_answers_over_https() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, client) = https_server(dir.path()).await;
        let answer = client.get(format!("https://{addr}/")).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "over TLS");
    }

    #[tokio::test]
    async fn a_silent_connection_does_not_hold_up_other_clients() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, client) = https_server(dir.path()).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            client.get(format!("https://{addr}/")).send(),
        )
        .await
        .expect("answered while another handshake is pending")
        .unwrap();
        assert!(answer.status().is_success());
        silent.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_does_not_trust_the_authority_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _) = https_server(dir.path()).await;
        let stranger = reqwest::Client::builder().build().unwrap();
        let error = stranger
            .get(format!("https://{addr}/"))
            .send()
            .await
            .expect_err("an unknown CA is not trusted");
        assert!(error.is_connect(), "{error}");
    }
}
