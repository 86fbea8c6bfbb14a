//! The production transport: ZeroMQ (the pure-Rust `zeromq` crate), DEALER → ROUTER over TCP.
//!
//! ```text
//!   node A                                          node B
//!   link task ── DEALER "node-A" ──── TCP ────▶ ROUTER (B's port) ── reader task ──▶ B's inbound
//!   ROUTER (A's port) ◀──── TCP ──── DEALER "node-B" ── link task
//! ```
//!
//! Each node binds one ROUTER per plane and owns one DEALER per neighbour, each driven by its own link
//! task fed through a bounded queue. That shape answers what was measured of zmq.rs here:
//! - DEALERs never reconnect by themselves, so the link task does: on a send error, a disconnect
//!   reported by the socket, or a send that does not complete in time, it drops the socket and dials a
//!   new one with backoff. A restarted neighbour is back within one backoff step.
//! - A paused (SIGSTOPped) peer makes sends block once its buffers are full, so every send has a
//!   timeout and the queue in front of it is bounded; callers never wait, they see `QueueFull`.
//! - While a link is down its queue is drained and dropped: stale heartbeats delivered in a burst
//!   after a reconnect would only mislead the failure detector.
//!
//! Every frame is sealed ([`super::seal`]): a link task seals what it sends, just before sending it,
//! and the reader opens what it receives before anything else looks at it. The planes above only
//! ever see payloads that came, unaltered and once, from the member the ZeroMQ identity names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeromq::{
    DealerSocket, RouterSocket, Socket, SocketEvent, SocketOptions, SocketRecv, SocketSend,
    ZmqMessage,
};

use super::fault::FaultSwitch;
use super::incarnation::Incarnation;
use super::protocol::ProtocolVersion;
use super::queue::DropOldestQueue;
use super::rejections::Rejections;
use super::seal::{Opener, Plane, PlaneKey, Rejection, Sealer};
use super::{Inbound, SendError, Transport, TransportStats, identity_of, node_of_identity};
use crate::config::NodeId;
use crate::discovery::Backoff;
use crate::metrics::FrameRejectedLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use zeromq::util::PeerIdentity;

/// Messages queued per neighbour before sends are refused.
const LINK_QUEUE: usize = 1024;
/// Inbound messages buffered between the socket reader and the plane that consumes them.
const INBOX: usize = 8192;
/// How long a DEALER may take to dial and handshake; zmq.rs waits 30 s by default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A send that takes longer means the peer stopped reading (paused or wedged).
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: zeromq::ZmqError,
    },
    #[error("the socket bound to {0} reports an endpoint that is not TCP")]
    UnexpectedEndpoint(SocketAddr),
}

/// How one plane's frames are sealed and where its refusals are counted.
#[derive(Debug, Clone)]
pub struct Sealing {
    pub plane: Plane,
    pub key: PlaneKey,
    /// This process's incarnation, the same on both planes.
    pub incarnation: Incarnation,
    /// The protocol version this node speaks on the plane: `plane.protocol()` (tests play others).
    pub protocol: ProtocolVersion,
    /// `chat_node_frames_rejected_total`, shared with `/metrics`.
    pub rejected: Family<FrameRejectedLabel, Counter>,
}

struct Link {
    addr: SocketAddr,
    queue: Arc<DropOldestQueue<Bytes>>,
    stop: CancellationToken,
}

impl Link {
    fn close(&self) {
        self.stop.cancel();
        self.queue.close();
    }
}

/// One plane's ZeroMQ sockets: a bound ROUTER and a DEALER per neighbour.
pub struct ZmqTransport {
    me: NodeId,
    local_addr: SocketAddr,
    links: Mutex<HashMap<NodeId, Link>>,
    sealer: Arc<Sealer>,
    stats: Arc<TransportStats>,
    faults: Arc<FaultSwitch>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl ZmqTransport {
    /// Binds the ROUTER on `addr` (port 0 picks one) and starts its reader. Frames are sealed and
    /// opened as `sealing` says. Traffic with peers the `faults` switch blocks is dropped both ways.
    /// Every task stops when `shutdown` is cancelled; `tasks` lets the owner wait for them.
    pub async fn bind(
        me: NodeId,
        addr: SocketAddr,
        sealing: Sealing,
        faults: Arc<FaultSwitch>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Result<(Self, mpsc::Receiver<Inbound>), TransportError> {
        let mut router = RouterSocket::new();
        let endpoint = router
            .bind(&format!("tcp://{addr}"))
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let local_addr = match endpoint {
            zeromq::Endpoint::Tcp(_, port) => SocketAddr::new(addr.ip(), port),
            _ => return Err(TransportError::UnexpectedEndpoint(addr)),
        };
        let stats = Arc::new(TransportStats::default());
        let (inbox, inbound) = mpsc::channel(INBOX);
        tasks.spawn(read_router(
            router,
            Opener::new(sealing.key.clone(), me).speaking(sealing.protocol),
            Rejections::new(sealing.plane, sealing.rejected),
            inbox,
            stats.clone(),
            faults.clone(),
            shutdown.clone(),
        ));
        let transport = Self {
            me,
            local_addr,
            links: Mutex::new(HashMap::new()),
            sealer: Arc::new(
                Sealer::new(sealing.key, me, sealing.incarnation).speaking(sealing.protocol),
            ),
            stats,
            faults,
            shutdown,
            tasks,
        };
        Ok((transport, inbound))
    }

    /// The address the ROUTER is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Link>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for ZmqTransport {
    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        if self.shutdown.is_cancelled() {
            return Err(SendError::Closed);
        }
        let queue = self
            .links()
            .get(&to)
            .map(|link| link.queue.clone())
            .ok_or(SendError::UnknownPeer(to))?;
        if self.faults.blocks(to) {
            TransportStats::count(&self.stats.dropped);
            return Err(SendError::FaultInjected(to));
        }
        if queue.push(payload).is_some() {
            TransportStats::count(&self.stats.dropped);
        }
        Ok(())
    }

    fn set_peer(&self, peer: NodeId, addr: SocketAddr) {
        let mut links = self.links();
        if links.get(&peer).is_some_and(|link| link.addr == addr) {
            return;
        }
        if let Some(old) = links.remove(&peer) {
            old.close();
        }
        let queue = Arc::new(DropOldestQueue::new(LINK_QUEUE));
        let stop = self.shutdown.child_token();
        self.tasks.spawn(drive_link(
            self.me,
            peer,
            addr,
            self.sealer.clone(),
            queue.clone(),
            self.stats.clone(),
            stop.clone(),
        ));
        links.insert(peer, Link { addr, queue, stop });
    }

    fn remove_peer(&self, peer: NodeId) {
        if let Some(link) = self.links().remove(&peer) {
            link.close();
        }
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

impl Drop for ZmqTransport {
    fn drop(&mut self) {
        for link in self.links().values() {
            link.close();
        }
    }
}

#[tracing::instrument(name = "router_reader", skip_all)]
async fn read_router(
    mut router: RouterSocket,
    mut opener: Opener,
    mut rejections: Rejections,
    inbox: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    faults: Arc<FaultSwitch>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            received = router.recv() => received,
            () = shutdown.cancelled() => break,
        };
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                // A peer's broken frame surfaces here; keep serving the others, without spinning.
                tracing::debug!(%error, "router receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let mut frames = message.into_vec().into_iter();
        let identity = frames.next();
        let claimed = identity.as_deref().and_then(node_of_identity);
        let (Some(from), Some(frame), None) = (claimed, frames.next(), frames.next()) else {
            let reason = if claimed.is_none() {
                Rejection::Identity
            } else {
                Rejection::Malformed
            };
            rejections.record(claimed, reason, tokio::time::Instant::now());
            continue;
        };
        if faults.blocks(from) {
            TransportStats::count(&stats.dropped);
            continue;
        }
        let payload = match opener.open(from, &frame) {
            Ok(payload) => payload,
            Err(reason) => {
                rejections.record(Some(from), reason, tokio::time::Instant::now());
                continue;
            }
        };
        TransportStats::count(&stats.received);
        // Waiting here (rather than dropping) pushes back on the peers while our plane catches up.
        if inbox.send(Inbound { from, payload }).await.is_err() {
            break;
        }
    }
    router.close().await;
}

/// Owns the DEALER to one neighbour for the lifetime of the link: dial, send, redial.
#[tracing::instrument(name = "link", skip(sealer, outbox, stats, stop), fields(me = %me, peer = %peer, %addr))]
async fn drive_link(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    sealer: Arc<Sealer>,
    outbox: Arc<DropOldestQueue<Bytes>>,
    stats: Arc<TransportStats>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let mut ever_connected = false;
    loop {
        let dialled = tokio::select! {
            dialled = dial(me, addr) => dialled,
            () = stop.cancelled() => return,
        };
        let (dealer, mut events) = match dialled {
            Ok(connected) => connected,
            Err(error) => {
                tracing::trace!(%error, "dial failed");
                let stale = outbox.clear() as u64;
                stats
                    .dropped
                    .fetch_add(stale, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        if ever_connected {
            TransportStats::count(&stats.reconnects);
        }
        ever_connected = true;
        backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        tracing::debug!("link up");

        let (mut sender, mut receiver) = dealer.split();
        loop {
            tokio::select! {
                next = outbox.pop() => {
                    let Some(payload) = next else { return };
                    let frame = match sealer.seal(peer, &payload) {
                        Ok(frame) => frame,
                        Err(error) => {
                            TransportStats::count(&stats.dropped);
                            tracing::error!(%error, "cannot seal a frame; dropping it");
                            continue;
                        }
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, sender.send(ZmqMessage::from(frame))).await {
                        Ok(Ok(())) => TransportStats::count(&stats.sent),
                        Ok(Err(error)) => {
                            TransportStats::count(&stats.dropped);
                            tracing::debug!(%error, "send failed; redialling");
                            break;
                        }
                        Err(_) => {
                            TransportStats::count(&stats.dropped);
                            tracing::debug!("send timed out (peer not reading); redialling");
                            break;
                        }
                    }
                }
                // Nothing is ever sent back on this socket: a receive completing means it broke.
                _ = receiver.recv() => {
                    tracing::debug!("link closed by the peer; redialling");
                    break;
                }
                event = events.next() => {
                    if matches!(event, Some(SocketEvent::Disconnected(_)) | None) {
                        tracing::debug!("link disconnected; redialling");
                        break;
                    }
                }
                () = stop.cancelled() => return,
            }
        }
    }
}

async fn dial(
    me: NodeId,
    addr: SocketAddr,
) -> Result<(DealerSocket, futures::channel::mpsc::Receiver<SocketEvent>), zeromq::ZmqError> {
    let mut options = SocketOptions::default();
    options
        .peer_identity(PeerIdentity::try_from(Bytes::from(identity_of(me)))?)
        .connect_timeout(CONNECT_TIMEOUT);
    let mut dealer = DealerSocket::with_options(options);
    let events = dealer.monitor();
    dealer.connect(&format!("tcp://{addr}")).await?;
    Ok((dealer, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: u64) -> NodeId {
        NodeId(raw)
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    const CLUSTER_KEY: &str = "a cluster key of at least 32 characters";

    struct TestNode {
        transport: ZmqTransport,
        inbound: mpsc::Receiver<Inbound>,
        faults: Arc<FaultSwitch>,
        rejected: Family<FrameRejectedLabel, Counter>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    }

    impl TestNode {
        async fn bind(raw: u64, addr: SocketAddr) -> Self {
            Self::bind_with_key(raw, addr, CLUSTER_KEY).await
        }

        async fn bind_with_key(raw: u64, addr: SocketAddr, key: &str) -> Self {
            Self::bind_speaking(raw, addr, key, Plane::Control.protocol()).await
        }

        async fn bind_speaking(
            raw: u64,
            addr: SocketAddr,
            key: &str,
            protocol: ProtocolVersion,
        ) -> Self {
            let faults = Arc::new(FaultSwitch::default());
            let shutdown = CancellationToken::new();
            let tasks = TaskTracker::new();
            let rejected = Family::default();
            let sealing = Sealing {
                plane: Plane::Control,
                key: PlaneKey::derive(
                    &crate::config::ClusterKey::parse(key).unwrap(),
                    Plane::Control,
                ),
                incarnation: Incarnation(1),
                protocol,
                rejected: rejected.clone(),
            };
            let (transport, inbound) = ZmqTransport::bind(
                id(raw),
                addr,
                sealing,
                faults.clone(),
                shutdown.clone(),
                tasks.clone(),
            )
            .await
            .unwrap();
            Self {
                transport,
                inbound,
                faults,
                rejected,
                shutdown,
                tasks,
            }
        }

        fn rejected(&self, reason: &'static str) -> u64 {
            self.rejected
                .get_or_create(&FrameRejectedLabel {
                    plane: "control",
                    reason,
                })
                .get()
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.tasks.close();
            self.tasks.wait().await;
        }
    }

    /// Sends `payload` every 20 ms until it arrives (the first messages race the dial), up to 10 s.
    async fn send_until_received(
        from: &ZmqTransport,
        to: NodeId,
        inbound: &mut mpsc::Receiver<Inbound>,
        payload: &'static [u8],
    ) -> Inbound {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let _ = from.send(to, Bytes::from_static(payload));
            if let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(20), inbound.recv()).await
            {
                if message.payload == payload {
                    return message;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{payload:?} never arrived"
            );
        }
    }

    #[tokio::test]
    async fn two_nodes_exchange_messages_in_both_directions_with_sender_ids() {
        let mut a = TestNode::bind(1, loopback()).await;
        let mut b = TestNode::bind(2, loopback()).await;
        a.transport.set_peer(id(2), b.transport.local_addr());
        b.transport.set_peer(id(1), a.transport.local_addr());

        let got = send_until_received(&a.transport, id(2), &mut b.inbound, b"ping").await;
        assert_eq!(got.from, id(1));
        let got = send_until_received(&b.transport, id(1), &mut a.inbound, b"pong").await;
        assert_eq!(got.from, id(2));

        // Once connected, a burst arrives complete and in order.
        for n in 0..100u32 {
            a.transport
                .send(id(2), Bytes::from(n.to_be_bytes().to_vec()))
                .unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let message = tokio::time::timeout(Duration::from_secs(5), b.inbound.recv())
                .await
                .unwrap()
                .unwrap();
            if message.payload.len() == 4 {
                seen.push(u32::from_be_bytes(message.payload[..].try_into().unwrap()));
            }
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn sending_to_an_unknown_or_dead_peer_never_blocks_and_sheds_the_oldest() {
        let a = TestNode::bind(1, loopback()).await;
        assert_eq!(
            a.transport.send(id(9), Bytes::new()),
            Err(SendError::UnknownPeer(id(9)))
        );
        // Nothing listens on this port: the bounded queue sheds old entries, the caller never waits.
        let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        a.transport.set_peer(id(9), dead);
        let started = std::time::Instant::now();
        for _ in 0..(LINK_QUEUE * 3) {
            a.transport.send(id(9), Bytes::from_static(b"x")).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let dropped = TransportStats::get(&a.transport.stats().dropped);
        assert!(dropped >= (LINK_QUEUE * 2) as u64, "dropped {dropped}");
        a.stop().await;
    }

    #[tokio::test]
    async fn the_fault_switch_drops_traffic_both_ways_until_healed() {
        let mut a = TestNode::bind(1, loopback()).await;
        let mut b = TestNode::bind(2, loopback()).await;
        a.transport.set_peer(id(2), b.transport.local_addr());
        b.transport.set_peer(id(1), a.transport.local_addr());
        send_until_received(&b.transport, id(1), &mut a.inbound, b"up").await;
        send_until_received(&a.transport, id(2), &mut b.inbound, b"up").await;

        a.faults.isolate_from([id(2)]);
        assert_eq!(
            a.transport.send(id(2), Bytes::from_static(b"out")),
            Err(SendError::FaultInjected(id(2)))
        );
        for _ in 0..20 {
            b.transport.send(id(1), Bytes::from_static(b"in")).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            a.inbound.try_recv().is_err(),
            "a blocked peer's message got through"
        );
        assert!(
            b.inbound.try_recv().is_err(),
            "a message to a blocked peer got through"
        );

        a.faults.heal();
        send_until_received(&b.transport, id(1), &mut a.inbound, b"healed").await;
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn a_link_redials_a_neighbour_that_restarted_on_the_same_port() {
        let a = TestNode::bind(1, loopback()).await;
        let mut b = TestNode::bind(2, loopback()).await;
        let b_addr = b.transport.local_addr();
        a.transport.set_peer(id(2), b_addr);
        send_until_received(&a.transport, id(2), &mut b.inbound, b"before").await;
        b.stop().await;

        let mut b = TestNode::bind(2, b_addr).await;
        let got = send_until_received(&a.transport, id(2), &mut b.inbound, b"after").await;
        assert_eq!(got.from, id(1));
        assert!(TransportStats::get(&a.transport.stats().reconnects) >= 1);
        a.stop().await;
        b.stop().await;
    }

    /// Waits until `accept` holds, polling every 20 ms, up to 10 s.
    async fn eventually(what: &str, accept: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !accept() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_node_with_another_cluster_key_is_refused_and_counted() {
        let mut a = TestNode::bind(1, loopback()).await;
        let stranger = TestNode::bind_with_key(2, loopback(), &"x".repeat(32)).await;
        stranger.transport.set_peer(id(1), a.transport.local_addr());
        eventually("the stranger's frames are refused", || {
            let _ = stranger
                .transport
                .send(id(1), Bytes::from_static(b"forged"));
            a.rejected("seal") >= 3
        })
        .await;
        assert!(a.inbound.try_recv().is_err(), "a forged frame got through");
        assert_eq!(TransportStats::get(&a.transport.stats().received), 0);
        a.stop().await;
        stranger.stop().await;
    }

    #[tokio::test]
    async fn a_member_of_another_protocol_version_is_refused_both_ways_and_counted() {
        let mut a = TestNode::bind(1, loopback()).await;
        let newer = ProtocolVersion(Plane::Control.protocol().0 + 1);
        let mut b = TestNode::bind_speaking(2, loopback(), CLUSTER_KEY, newer).await;
        a.transport.set_peer(id(2), b.transport.local_addr());
        b.transport.set_peer(id(1), a.transport.local_addr());
        eventually("each refuses the other's frames", || {
            let _ = a.transport.send(id(2), Bytes::from_static(b"from a"));
            let _ = b.transport.send(id(1), Bytes::from_static(b"from b"));
            a.rejected("version") >= 3 && b.rejected("version") >= 3
        })
        .await;
        assert!(
            a.inbound.try_recv().is_err(),
            "b's traffic reached a's plane"
        );
        assert!(
            b.inbound.try_recv().is_err(),
            "a's traffic reached b's plane"
        );
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn unsealed_frames_and_foreign_identities_never_reach_the_plane() {
        let mut a = TestNode::bind(1, loopback()).await;
        // A raw DEALER claiming to be member 2, and one whose identity names no node.
        let (mut claims_member, _) = dial(id(2), a.transport.local_addr()).await.unwrap();
        let mut options = SocketOptions::default();
        options.peer_identity(PeerIdentity::try_from(Bytes::from_static(b"intruder")).unwrap());
        let mut intruder = DealerSocket::with_options(options);
        intruder
            .connect(&format!("tcp://{}", a.transport.local_addr()))
            .await
            .unwrap();

        let unsealed = br#"{"from":2,"to":1,"scope":"election","body":{}}"#;
        claims_member
            .send(ZmqMessage::from(Bytes::from_static(unsealed)))
            .await
            .unwrap();
        let sealed_by_a_member = Sealer::new(
            PlaneKey::derive(
                &crate::config::ClusterKey::parse(CLUSTER_KEY).unwrap(),
                Plane::Control,
            ),
            id(2),
            Incarnation(1),
        )
        .seal(id(1), b"genuine")
        .unwrap();
        intruder
            .send(ZmqMessage::from(sealed_by_a_member.clone()))
            .await
            .unwrap();
        eventually("both frames are refused", || {
            a.rejected("malformed") == 1 && a.rejected("identity") == 1
        })
        .await;

        // The genuine frame from the identity it names opens once; sent again, it is a replay.
        for _ in 0..2 {
            claims_member
                .send(ZmqMessage::from(sealed_by_a_member.clone()))
                .await
                .unwrap();
        }
        let got = tokio::time::timeout(Duration::from_secs(5), a.inbound.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.from, &got.payload[..]), (id(2), &b"genuine"[..]));
        eventually("the replay is refused", || a.rejected("replay") == 1).await;
        assert!(a.inbound.try_recv().is_err(), "a refused frame got through");
        claims_member.close().await;
        intruder.close().await;
        a.stop().await;
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}
