//! Sealed frames: what a node sends on the control and data planes is encrypted and authenticated
//! under a key only cluster members hold, so a stranger who reaches a port can neither read frames,
//! forge them, alter them, replay them nor reflect them.
//!
//! ```text
//!   offset  bytes  field                       (integers big-endian)
//!        0      1  layout = 2
//!        1      2  the plane's protocol version (see [`super::protocol`])
//!        3      8  sender id
//!       11      8  receiver id
//!       19      8  sender's incarnation
//!       27      8  sender's counter
//!       35      n  the plane's payload, encrypted
//!     35+n     16  Poly1305 tag
//! ```
//!
//! The AEAD is XChaCha20-Poly1305 with one key per plane, derived from the cluster key with
//! HKDF-SHA256. The 35-byte header is the associated data, so every field of it is authenticated. The
//! 24-byte nonce is `sender ‖ incarnation ‖ counter`: every member seals under the same plane key, so
//! the nonce must differ between senders as well as between frames of one sender, and this triple does
//! by construction (ids are unique in a cluster, an incarnation never repeats for an id, see
//! [`Incarnation`], and the counter never repeats within one). Deriving it leaves nothing to chance,
//! unlike a random nonce, and costs no bytes on the wire; plain ChaCha20-Poly1305's 12-byte nonce is
//! too short to hold the triple.
//!
//! The receiver refuses, before decrypting anything: a frame too short or of another layout
//! (`malformed`); a sender other than the ZeroMQ identity the ROUTER saw, or a receiver other than
//! itself (`identity`: this also refuses a frame reflected back to its sender); a counter already seen
//! or an old incarnation ([`ReplayWindow`], `replay`). Then the tag must verify (`seal`). Only a frame
//! that opened updates the replay window. Last, a frame of a protocol version this node does not
//! speak is refused (`version`) unread: checked after the seal, so the versions it names are the
//! ones a member really sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::incarnation::Incarnation;
use super::protocol::{ProtocolVersion, compatible};
use super::replay::ReplayWindow;
use crate::config::{ClusterKey, NodeId};

/// The layout this module writes; any other first byte is refused. (1 was the same header without
/// the protocol version.)
pub const LAYOUT: u8 = 2;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 35;
/// Bytes after it.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// HKDF salt: binds the keys to this use, whatever else the cluster key is used for.
const KEY_SALT: &[u8] = b"chat-cluster frame seal";

/// The two planes, each with its own key, so a frame of one is never accepted on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plane {
    Control,
    Data,
}

impl Plane {
    /// The `plane` label of the rejection counter.
    pub fn label(self) -> &'static str {
        match self {
            Plane::Control => "control",
            Plane::Data => "data",
        }
    }

    /// Fixed whatever the protocol version: a node must open a peer's frame to name the version it
    /// speaks (see `protocol`).
    fn key_info(self) -> &'static [u8] {
        match self {
            Plane::Control => b"control plane frames v1",
            Plane::Data => b"data plane frames v1",
        }
    }
}

/// One plane's AEAD key, and the plane it is for. Its [`Debug`](std::fmt::Debug) never shows it.
#[derive(Clone)]
pub struct PlaneKey {
    aead: XChaCha20Poly1305,
    plane: Plane,
}

impl PlaneKey {
    /// The key every member holding `cluster_key` derives for `plane`.
    pub fn derive(cluster_key: &ClusterKey, plane: Plane) -> Self {
        let mut key = Key::default();
        Hkdf::<Sha256>::new(Some(KEY_SALT), cluster_key.as_bytes())
            .expand(plane.key_info(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        PlaneKey {
            aead: XChaCha20Poly1305::new(&key),
            plane,
        }
    }
}

impl std::fmt::Debug for PlaneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaneKey(…)")
    }
}

/// Why a received frame was dropped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("not a sealed frame of this layout")]
    Malformed,
    #[error("its sender or receiver is not who sent or received it")]
    Identity,
    #[error("already received, or from an old incarnation of its sender")]
    Replay,
    #[error("the seal does not open (wrong key or altered)")]
    Seal,
    /// A member that speaks another protocol on this plane: its payload is not read.
    #[error("it speaks protocol {theirs}, this node speaks {ours}")]
    Version {
        theirs: ProtocolVersion,
        ours: ProtocolVersion,
    },
}

impl Rejection {
    /// The `reason` label of the rejection counter.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Identity => "identity",
            Rejection::Replay => "replay",
            Rejection::Seal => "seal",
            Rejection::Version { .. } => "version",
        }
    }
}

/// Why a frame could not be sealed. Neither happens in practice; both refuse rather than risk a
/// repeated nonce or a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("this incarnation has used every counter; restart the node")]
    CountersExhausted,
    #[error("the payload is too large to seal")]
    TooLarge,
}

/// The authenticated header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    protocol: ProtocolVersion,
    sender: NodeId,
    receiver: NodeId,
    incarnation: Incarnation,
    counter: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[0] = LAYOUT;
        bytes[1..3].copy_from_slice(&self.protocol.0.to_be_bytes());
        bytes[3..11].copy_from_slice(&self.sender.0.to_be_bytes());
        bytes[11..19].copy_from_slice(&self.receiver.0.to_be_bytes());
        bytes[19..27].copy_from_slice(&self.incarnation.0.to_be_bytes());
        bytes[27..35].copy_from_slice(&self.counter.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8; HEADER_LEN]) -> Option<Self> {
        if bytes[0] != LAYOUT {
            return None;
        }
        let field = |at: usize| {
            let mut word = [0; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(word)
        };
        Some(Header {
            protocol: ProtocolVersion(u16::from_be_bytes([bytes[1], bytes[2]])),
            sender: NodeId(field(3)),
            receiver: NodeId(field(11)),
            incarnation: Incarnation(field(19)),
            counter: field(27),
        })
    }

    fn nonce(&self) -> XNonce {
        let mut nonce = XNonce::default();
        nonce[..8].copy_from_slice(&self.sender.0.to_be_bytes());
        nonce[8..16].copy_from_slice(&self.incarnation.0.to_be_bytes());
        nonce[16..].copy_from_slice(&self.counter.to_be_bytes());
        nonce
    }
}

/// Seals this node's frames on one plane. Shared by the plane's links; the counter is the only state.
#[derive(Debug)]
pub struct Sealer {
    key: PlaneKey,
    me: NodeId,
    incarnation: Incarnation,
    /// The version written into every frame: the key's plane's, unless a test says otherwise.
    protocol: ProtocolVersion,
    next_counter: AtomicU64,
}

impl Sealer {
    pub fn new(key: PlaneKey, me: NodeId, incarnation: Incarnation) -> Self {
        Self {
            protocol: key.plane.protocol(),
            key,
            me,
            incarnation,
            next_counter: AtomicU64::new(0),
        }
    }

    /// The same sealer writing `protocol` into its frames: lets tests play a node of another
    /// version. A node always speaks its plane's [`Plane::protocol`].
    #[doc(hidden)]
    pub fn speaking(mut self, protocol: ProtocolVersion) -> Self {
        self.protocol = protocol;
        self
    }

    /// The same sealer with `counter` as its next counter: lets the fuzz targets reach any point of a
    /// sender's counter range without sealing that many frames first. A node always starts at zero.
    #[doc(hidden)]
    pub fn starting_at(self, counter: u64) -> Self {
        self.next_counter.store(counter, Ordering::Relaxed);
        self
    }

    /// The frame that carries `payload` to `to`, under the next counter.
    pub fn seal(&self, to: NodeId, payload: &[u8]) -> Result<Bytes, SealError> {
        // Checked, not wrapping: a counter that wrapped would repeat nonces.
        let counter = self
            .next_counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| SealError::CountersExhausted)?;
        let header = Header {
            protocol: self.protocol,
            sender: self.me,
            receiver: to,
            incarnation: self.incarnation,
            counter,
        };
        let mut frame = BytesMut::with_capacity(OVERHEAD + payload.len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(payload);
        let (associated, body) = frame.split_at_mut(HEADER_LEN);
        let tag = self
            .key
            .aead
            .encrypt_in_place_detached(&header.nonce(), associated, body)
            .map_err(|_| SealError::TooLarge)?;
        frame.extend_from_slice(&tag);
        Ok(frame.freeze())
    }
}

/// Opens the frames one node receives on one plane and remembers what it accepted from each sender.
/// Owned by the plane's single reader, so it needs no lock.
#[derive(Debug)]
pub struct Opener {
    key: PlaneKey,
    me: NodeId,
    /// The version this node speaks on the plane.
    protocol: ProtocolVersion,
    /// Only senders whose frames opened get an entry, so strangers cannot grow it.
    windows: HashMap<NodeId, ReplayWindow>,
}

impl Opener {
    pub fn new(key: PlaneKey, me: NodeId) -> Self {
        Self {
            protocol: key.plane.protocol(),
            key,
            me,
            windows: HashMap::new(),
        }
    }

    /// The same opener speaking `protocol`: lets tests play a node of another version. A node
    /// always speaks its plane's [`Plane::protocol`].
    #[doc(hidden)]
    pub fn speaking(mut self, protocol: ProtocolVersion) -> Self {
        self.protocol = protocol;
        self
    }

    /// The payload of `frame`, received from the peer whose ZeroMQ identity is `from`.
    pub fn open(&mut self, from: NodeId, frame: &[u8]) -> Result<Bytes, Rejection> {
        if frame.len() < OVERHEAD {
            return Err(Rejection::Malformed);
        }
        let (head, rest) = frame.split_at(HEADER_LEN);
        let head: &[u8; HEADER_LEN] = head.try_into().map_err(|_| Rejection::Malformed)?;
        let header = Header::decode(head).ok_or(Rejection::Malformed)?;
        if header.sender != from || header.receiver != self.me || header.sender == self.me {
            return Err(Rejection::Identity);
        }
        let window = self.windows.get(&header.sender);
        if window.is_some_and(|w| !w.is_fresh(header.incarnation, header.counter)) {
            return Err(Rejection::Replay);
        }
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut payload = BytesMut::from(ciphertext);
        self.key
            .aead
            .decrypt_in_place_detached(&header.nonce(), head, &mut payload, Tag::from_slice(tag))
            .map_err(|_| Rejection::Seal)?;
        match self.windows.get_mut(&header.sender) {
            Some(window) => window.accept(header.incarnation, header.counter),
            None => {
                self.windows.insert(
                    header.sender,
                    ReplayWindow::first(header.incarnation, header.counter),
                );
            }
        }
        if !compatible(self.protocol, header.protocol) {
            return Err(Rejection::Version {
                theirs: header.protocol,
                ours: self.protocol,
            });
        }
        Ok(payload.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);
    const FIRST: Incarnation = Incarnation(1_700_000_000_000);
    const PAYLOAD: &[u8] = br#"{"scope":"data","body":"a typical frame"}"#;

    fn key(text: &str) -> PlaneKey {
        PlaneKey::derive(&ClusterKey::parse(text.repeat(32)).unwrap(), Plane::Data)
    }

    fn sealer(me: NodeId, incarnation: Incarnation) -> Sealer {
        Sealer::new(key("k"), me, incarnation)
    }

    fn opener(me: NodeId) -> Opener {
        Opener::new(key("k"), me)
    }

    #[test]
    fn a_sealed_frame_opens_to_its_payload_and_hides_it() {
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        assert_eq!(frame.len(), PAYLOAD.len() + OVERHEAD);
        assert!(
            !frame.windows(7).any(|w| w == b"typical"),
            "the payload travels encrypted"
        );
        assert_eq!(opener(B).open(A, &frame).unwrap(), PAYLOAD);
        let empty = sealer(A, FIRST).seal(B, b"").unwrap();
        assert_eq!(opener(B).open(A, &empty).unwrap(), &b""[..]);
    }

    #[test]
    fn the_header_is_in_the_clear_and_laid_out_as_documented() {
        let sealer = sealer(A, FIRST);
        sealer.seal(B, PAYLOAD).unwrap();
        let frame = sealer.seal(B, PAYLOAD).unwrap();
        let mut expected = vec![LAYOUT];
        expected.extend_from_slice(&Plane::Data.protocol().0.to_be_bytes());
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&FIRST.0.to_be_bytes());
        expected.extend_from_slice(&1u64.to_be_bytes());
        assert_eq!(&frame[..HEADER_LEN], &expected[..]);
    }

    #[test]
    fn changing_any_byte_of_the_header_ciphertext_or_tag_is_refused() {
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        let tag_start = frame.len() - TAG_LEN;
        for index in 0..frame.len() {
            let mut altered = frame.to_vec();
            altered[index] ^= 0x01;
            let expected = match index {
                0 => Rejection::Malformed,
                // The version is authenticated: an altered one does not open, rather than being
                // believed.
                1..=2 => Rejection::Seal,
                // Any change to the sender or receiver names a node other than the two involved.
                3..=18 => Rejection::Identity,
                _ => Rejection::Seal,
            };
            assert_eq!(
                opener(B).open(A, &altered),
                Err(expected),
                "byte {index} (tag from {tag_start})"
            );
        }
    }

    #[test]
    fn sender_and_receiver_are_bound_by_the_seal_not_only_compared() {
        // A member's frame to C, re-addressed to B by editing the header and sent with A's identity:
        // the identity checks pass, the seal does not.
        let mut readdressed = sealer(A, FIRST).seal(C, PAYLOAD).unwrap().to_vec();
        readdressed[11..19].copy_from_slice(&B.0.to_be_bytes());
        assert_eq!(opener(B).open(A, &readdressed), Err(Rejection::Seal));
        // The same frame claiming C as its sender, sent with C's identity.
        let mut resent = sealer(A, FIRST).seal(B, PAYLOAD).unwrap().to_vec();
        resent[3..11].copy_from_slice(&C.0.to_be_bytes());
        assert_eq!(opener(B).open(C, &resent), Err(Rejection::Seal));
    }

    #[test]
    fn a_frame_sealed_under_another_key_or_for_the_other_plane_is_refused() {
        let stranger = Sealer::new(key("x"), A, FIRST).seal(B, PAYLOAD).unwrap();
        assert_eq!(opener(B).open(A, &stranger), Err(Rejection::Seal));
        let cluster_key = ClusterKey::parse("k".repeat(32)).unwrap();
        let control = Sealer::new(PlaneKey::derive(&cluster_key, Plane::Control), A, FIRST)
            .seal(B, PAYLOAD)
            .unwrap();
        assert_eq!(opener(B).open(A, &control), Err(Rejection::Seal));
    }

    #[test]
    fn a_frame_for_another_node_or_reflected_to_its_sender_is_refused() {
        let to_c = sealer(A, FIRST).seal(C, PAYLOAD).unwrap();
        assert_eq!(opener(B).open(A, &to_c), Err(Rejection::Identity));
        // B sends A's frame back to A: the ROUTER sees B's identity, the frame names A as sender.
        let to_b = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        assert_eq!(opener(A).open(B, &to_b), Err(Rejection::Identity));
        // Or a stranger sends it to A claiming A's identity: the receiver is not A.
        assert_eq!(opener(A).open(A, &to_b), Err(Rejection::Identity));
    }

    #[test]
    fn a_sender_other_than_the_zeromq_identity_is_refused() {
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        assert_eq!(opener(B).open(C, &frame), Err(Rejection::Identity));
    }

    #[test]
    fn a_member_speaking_another_protocol_is_refused_naming_both_versions() {
        let ours = Plane::Data.protocol();
        let newer = ProtocolVersion(ours.0 + 1);
        let frame = sealer(A, FIRST).speaking(newer).seal(B, PAYLOAD).unwrap();
        let mut b = opener(B);
        assert_eq!(
            b.open(A, &frame),
            Err(Rejection::Version {
                theirs: newer,
                ours
            })
        );
        // The other way round: a node of the newer version refuses this one's frames too.
        let mut newer_b = opener(B).speaking(newer);
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        assert_eq!(
            newer_b.open(A, &frame),
            Err(Rejection::Version {
                theirs: ours,
                ours: newer
            })
        );
        // Once both speak the same version again (a restart: a new incarnation), frames open.
        let upgraded = sealer(A, Incarnation(FIRST.0 + 1)).speaking(newer);
        assert_eq!(
            newer_b
                .open(A, &upgraded.seal(B, PAYLOAD).unwrap())
                .unwrap(),
            PAYLOAD
        );
    }

    #[test]
    fn a_frame_of_the_previous_layout_is_malformed() {
        let mut frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap().to_vec();
        frame[0] = 1;
        assert_eq!(opener(B).open(A, &frame), Err(Rejection::Malformed));
    }

    #[test]
    fn truncated_frames_and_other_versions_are_malformed() {
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        for len in [0, 1, HEADER_LEN, OVERHEAD - 1] {
            assert_eq!(
                opener(B).open(A, &frame[..len]),
                Err(Rejection::Malformed),
                "{len}"
            );
        }
        assert_eq!(
            opener(B).open(A, br#"{"caller":"victim"}"#),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn a_frame_is_accepted_once() {
        let frame = sealer(A, FIRST).seal(B, PAYLOAD).unwrap();
        let mut b = opener(B);
        assert!(b.open(A, &frame).is_ok());
        assert_eq!(b.open(A, &frame), Err(Rejection::Replay));
    }

    #[test]
    fn frames_reordered_within_the_window_are_accepted_once_each() {
        let a = sealer(A, FIRST);
        let frames: Vec<Bytes> = (0..5).map(|_| a.seal(B, PAYLOAD).unwrap()).collect();
        let mut b = opener(B);
        for index in [0, 3, 1, 4, 2] {
            assert!(b.open(A, &frames[index]).is_ok(), "frame {index}");
        }
        for frame in &frames {
            assert_eq!(b.open(A, frame), Err(Rejection::Replay));
        }
    }

    #[test]
    fn a_restarted_sender_is_accepted_and_its_old_incarnation_refused() {
        let before = sealer(A, FIRST);
        let old_frames: Vec<Bytes> = (0..3).map(|_| before.seal(B, PAYLOAD).unwrap()).collect();
        let mut b = opener(B);
        b.open(A, &old_frames[0]).unwrap();

        let after = sealer(A, Incarnation(FIRST.0 + 1));
        b.open(A, &after.seal(B, PAYLOAD).unwrap()).unwrap();
        // Counters restart at 0 under the new incarnation, and the old frames, never seen, are refused.
        for frame in &old_frames[1..] {
            assert_eq!(b.open(A, frame), Err(Rejection::Replay));
        }
        b.open(A, &after.seal(B, PAYLOAD).unwrap()).unwrap();
    }

    #[test]
    fn a_frame_that_fails_changes_nothing() {
        // A forged frame with a far newer incarnation and counter must not lock the real sender out.
        let mut b = opener(B);
        let forged = Sealer::new(key("x"), A, Incarnation(u64::MAX))
            .seal(B, PAYLOAD)
            .unwrap();
        assert_eq!(b.open(A, &forged), Err(Rejection::Seal));
        b.open(A, &sealer(A, FIRST).seal(B, PAYLOAD).unwrap())
            .unwrap();
    }

    #[test]
    fn each_sender_has_its_own_window() {
        let mut b = opener(B);
        b.open(A, &sealer(A, FIRST).seal(B, PAYLOAD).unwrap())
            .unwrap();
        // C's first frame has the same incarnation and counter as A's: a different nonce, accepted.
        b.open(C, &sealer(C, FIRST).seal(B, PAYLOAD).unwrap())
            .unwrap();
    }

    #[test]
    fn an_exhausted_counter_refuses_to_seal_rather_than_repeat_a_nonce() {
        let a = sealer(A, FIRST);
        a.next_counter.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(a.seal(B, PAYLOAD), Err(SealError::CountersExhausted));
        assert_eq!(a.seal(B, PAYLOAD), Err(SealError::CountersExhausted));
    }

    /// The cost docs/PERFORMANCE.md quotes; run it in release:
    /// `cargo test --release -p cluster-node --lib seal_and_open_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn seal_and_open_cost_of_a_typical_frame() {
        let payload = vec![b'x'; 300];
        let a = sealer(A, FIRST);
        let mut b = opener(B);
        let rounds = 200_000u32;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let frame = a.seal(B, &payload).unwrap();
            std::hint::black_box(b.open(A, &frame).unwrap());
        }
        let each = started.elapsed() / rounds;
        println!("seal + open of a {}-byte payload: {each:?}", payload.len());
    }

    #[test]
    fn a_plane_key_never_shows_in_debug_output() {
        assert_eq!(format!("{:?}", key("k")), "PlaneKey(…)");
    }
}
