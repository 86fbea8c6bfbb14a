//! Probing: a node whose address stops accepting connections leaves the redirects and every list of
//! live nodes within a second, long before its lease would end, and comes back when it accepts again.
//! The nodes are real listeners on loopback that accept and drop connections, as a node's HTTP port
//! would for a bare TCP handshake.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nameserver::Probing;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{TestApp, endpoint, spawn_app_probing};

/// What the nameserver promises: a dead node is no longer handed out within this.
const DETECTION_BOUND: Duration = Duration::from_secs(1);
/// Far longer than any test here, so only probes can take a node out.
const LONG_LEASE: Duration = Duration::from_secs(60);

/// A stand-in for an input node's HTTP port.
struct FakeNode {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl FakeNode {
    async fn start() -> Self {
        Self::listen_on("127.0.0.1:0".parse().expect("literal address")).await
    }

    async fn listen_on(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .expect("loopback port binds");
        let address = listener.local_addr().expect("bound address");
        let acceptor = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                drop(connection);
            }
        });
        Self { address, acceptor }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Closes the port: connections to it are refused from when this returns.
    async fn stop(self) -> SocketAddr {
        self.acceptor.abort();
        // The listener is dropped with the aborted task, before the handle reports it.
        let _ = self.acceptor.await;
        self.address
    }
}

/// Polls `condition` until it holds and answers how long that took; fails once `bound` has passed.
async fn time_until(
    bound: Duration,
    what: &str,
    mut condition: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if condition().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "{what}: not within {} ms",
            bound.as_millis()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `url` is neither listed (HTTP and gRPC) nor handed out by the next `redirects` redirects.
async fn gone(app: &mut TestApp, url: &str, redirects: usize) -> bool {
    if app.listed_urls().await.iter().any(|listed| listed == url) {
        return false;
    }
    if app.list().await.iter().any(|listed| listed.url == url) {
        return false;
    }
    for _ in 0..redirects {
        let target = app.redirect_target_of("/groups/7").await;
        if target.is_some_and(|target| target.starts_with(url)) {
            return false;
        }
    }
    true
}

/// Whether `url` is listed and handed out within the next `redirects` redirects.
async fn back(app: &mut TestApp, url: &str, redirects: usize) -> bool {
    if !app.listed_urls().await.iter().any(|listed| listed == url) {
        return false;
    }
    for _ in 0..redirects {
        if app.redirect_target().await.as_deref() == Some(&format!("{url}/")) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_node_that_stops_accepting_connections_is_no_longer_handed_out_or_listed_within_a_second()
{
    let mut app = spawn_app_probing(LONG_LEASE, Probing::default()).await;
    let survivor = FakeNode::start().await;
    let dying = FakeNode::start().await;
    let (survivor_url, dying_url) = (survivor.url(), dying.url());
    app.register(1, &survivor_url).await.expect("register 1");
    app.register(2, &dying_url).await.expect("register 2");
    assert_eq!(
        app.listed_urls().await,
        [survivor_url.clone(), dying_url.clone()]
    );

    dying.stop().await;
    // Two redirects in a row: round-robin over two nodes would hand each out once.
    let detection = time_until(DETECTION_BOUND, "the closed node is dropped", async || {
        gone(&mut app, &dying_url, 2).await
    })
    .await;
    println!(
        "a node whose port closed was dropped after {} ms",
        detection.as_millis()
    );

    assert_eq!(app.listed_urls().await, std::slice::from_ref(&survivor_url));
    assert_eq!(app.list().await, [endpoint(1, &survivor_url)]);
    for _ in 0..6 {
        assert_eq!(
            app.redirect_target_of("/groups/7?after=3").await,
            Some(format!("{survivor_url}/groups/7?after=3"))
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_suspect_node_comes_back_when_it_accepts_again_while_its_lease_lasts() {
    let mut app = spawn_app_probing(LONG_LEASE, Probing::default()).await;
    let node = FakeNode::start().await;
    let url = node.url();
    app.register(4, &url).await.expect("register");

    let address = node.stop().await;
    time_until(DETECTION_BOUND, "the closed node is dropped", async || {
        gone(&mut app, &url, 1).await
    })
    .await;
    assert_eq!(app.redirect_target().await, None, "nowhere else to go");
    assert_eq!(
        app.renew(4)
            .await
            .expect("the lease outlives the suspicion"),
        60_000
    );

    let _node = FakeNode::listen_on(address).await;
    let recovery = time_until(DETECTION_BOUND, "the reopened node is back", async || {
        back(&mut app, &url, 1).await
    })
    .await;
    println!(
        "a node whose port reopened was back after {} ms",
        recovery.as_millis()
    );

    assert_eq!(app.list().await, [endpoint(4, &url)]);
    app.stop().await;
}

#[tokio::test]
async fn a_node_that_registers_again_is_handed_out_at_once() {
    let mut app = spawn_app_probing(LONG_LEASE, Probing::default()).await;
    let node = FakeNode::start().await;
    let url = node.url();
    app.register(5, &url).await.expect("register");
    let address = node.stop().await;
    time_until(DETECTION_BOUND, "the closed node is dropped", async || {
        gone(&mut app, &url, 1).await
    })
    .await;

    // A restarted node registers once it serves; that alone makes it a target again, without waiting
    // for the next probe.
    let _restarted = FakeNode::listen_on(address).await;
    app.register(5, &url).await.expect("register again");

    assert_eq!(app.redirect_target().await, Some(format!("{url}/")));
    assert_eq!(app.listed_urls().await, [url]);
    app.stop().await;
}

/// A port that completes no more handshakes: its listen queue is full and nobody accepts, so the kernel
/// drops further connection requests and the clients wait, as for a host that is gone.
async fn unresponsive_port() -> (TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("literal address"))
        .expect("loopback port binds");
    let listener = socket.listen(0).expect("listens");
    let address = listener.local_addr().expect("bound address");
    let mut queued = Vec::new();
    loop {
        let attempt = tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(address));
        match attempt.await {
            Ok(Ok(connection)) => queued.push(connection),
            Ok(Err(error)) => panic!("the port refused instead of queueing: {error}"),
            Err(_) => return (listener, queued),
        }
        assert!(queued.len() < 64, "the listen queue never filled up");
    }
}

#[tokio::test]
async fn a_node_that_completes_no_handshake_within_the_timeout_is_dropped() {
    let (listener, _queued) = unresponsive_port().await;
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    let mut app = spawn_app_probing(LONG_LEASE, Probing::default()).await;
    app.register(6, &url).await.expect("register");

    let detection = time_until(
        DETECTION_BOUND,
        "the unresponsive node is dropped",
        async || gone(&mut app, &url, 1).await,
    )
    .await;
    println!(
        "a node that completes no handshake was dropped after {} ms",
        detection.as_millis()
    );
    app.stop().await;
}
