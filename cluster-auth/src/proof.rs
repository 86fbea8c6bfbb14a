//! The proof itself, as pure functions of the key, the RPC, the request's bytes and the time.
//!
//! ```text
//!   tag    = HMAC-SHA256(proof key, rpc path ‖ 0x00 ‖ timestamp (u64, big-endian) ‖ request bytes)
//!   header = <timestamp: unix milliseconds, decimal> "." <tag: 64 hex digits>
//! ```
//!
//! The RPC path is in the tag, so a proof for `Renew` is no proof for `Deregister` or for the other
//! service; the request bytes are in it, so a proof cannot be moved onto another node id or URL; the
//! timestamp bounds how long a captured request can be replayed (the [`Guard`](crate::Guard) also
//! remembers the proofs it accepted within that window, so none is accepted twice).

use std::fmt;
use std::time::Duration;

use hmac::Mac;

use crate::key::ProofKey;

/// How far a proof's timestamp may be from the server's clock, either way. Wide enough for the clocks
/// of hosts kept roughly in time; anything older is refused whatever the replay cache remembers.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The requests that need a proof: the mutating RPCs of `proto/*.proto`, and the admin HTTP requests
/// that hand out or change data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    BootstrapRegister,
    BootstrapRenew,
    BootstrapRepair,
    BootstrapDeregister,
    NameserverRegister,
    NameserverRenew,
    NameserverDeregister,
    /// `GET /backup` on a node's admin port: the whole database, password hashes included.
    AdminBackup,
    /// `POST /remove` on a node's admin port: takes a node out of the cluster.
    AdminRemoveNode,
    /// `POST /stats/map` on a node's admin port: a share of a group's statistics, read from messages.
    AdminStatsMap,
}

impl Rpc {
    /// What the tag covers besides the body: the gRPC path (`/package.Service/Method`), or the method
    /// and path of an admin HTTP request.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::BootstrapRegister => "/bootstrap.Bootstrap/Register",
            Rpc::BootstrapRenew => "/bootstrap.Bootstrap/Renew",
            Rpc::BootstrapRepair => "/bootstrap.Bootstrap/Repair",
            Rpc::BootstrapDeregister => "/bootstrap.Bootstrap/Deregister",
            Rpc::NameserverRegister => "/nameserver.Nameserver/Register",
            Rpc::NameserverRenew => "/nameserver.Nameserver/Renew",
            Rpc::NameserverDeregister => "/nameserver.Nameserver/Deregister",
            Rpc::AdminBackup => "GET /backup",
            Rpc::AdminRemoveNode => "POST /remove",
            Rpc::AdminStatsMap => "POST /stats/map",
        }
    }
}

/// Why a request's proof was refused. Each renders as one line the caller may see: none of them helps
/// to forge a proof, and the clock one tells an operator what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("no proof of the cluster key (the `x-chat-auth` metadata is missing)")]
    Missing,
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    #[error(
        "the proof's time is {skew_ms} ms {direction} the server's clock, outside the {}-second window \
         (are the clocks in time?)",
        WINDOW.as_secs()
    )]
    OutsideWindow {
        skew_ms: u64,
        direction: &'static str,
    },
    #[error("the proof does not match this request under the cluster key")]
    Invalid,
    #[error("this proof was already used")]
    Replayed,
}

/// A parsed proof: when it was made and its tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Proof {
    timestamp_ms: u64,
    tag: [u8; 32],
}

/// Digits of the largest `u64`: a longer timestamp is refused before parsing.
const MAX_TIMESTAMP_DIGITS: usize = 20;

impl Proof {
    /// The proof for `rpc` with the request bytes `body`, made at `timestamp_ms` (Unix milliseconds).
    pub fn sign(key: &ProofKey, rpc: Rpc, body: &[u8], timestamp_ms: u64) -> Self {
        let tag = mac(key, rpc, body, timestamp_ms)
            .finalize()
            .into_bytes()
            .into();
        Self { timestamp_ms, tag }
    }

    /// Parses the header form, `<unix ms>.<64 hex digits>`.
    pub fn parse(header: &str) -> Result<Self, ProofError> {
        let (timestamp, tag_hex) = header
            .split_once('.')
            .ok_or(ProofError::Malformed("expected <unix ms>.<hex HMAC>"))?;
        if timestamp.is_empty()
            || timestamp.len() > MAX_TIMESTAMP_DIGITS
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ProofError::Malformed("the time is not a decimal number"));
        }
        let timestamp_ms = timestamp
            .parse()
            .map_err(|_| ProofError::Malformed("the time is out of range"))?;
        let mut tag = [0u8; 32];
        hex::decode_to_slice(tag_hex, &mut tag)
            .map_err(|_| ProofError::Malformed("the HMAC is not 64 hex digits"))?;
        Ok(Self { timestamp_ms, tag })
    }

    /// When the proof was made, in Unix milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// Checks the time against `now_ms`, then the tag (in constant time) against `rpc` and `body`.
    pub fn verify(
        &self,
        key: &ProofKey,
        rpc: Rpc,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), ProofError> {
        let skew_ms = now_ms.abs_diff(self.timestamp_ms);
        let window_ms = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        if skew_ms > window_ms {
            let direction = if self.timestamp_ms < now_ms {
                "behind"
            } else {
                "ahead of"
            };
            return Err(ProofError::OutsideWindow { skew_ms, direction });
        }
        mac(key, rpc, body, self.timestamp_ms)
            .verify_slice(&self.tag)
            .map_err(|_| ProofError::Invalid)
    }

    pub(crate) fn tag(&self) -> [u8; 32] {
        self.tag
    }
}

impl fmt::Display for Proof {
    /// The header form, as [`Proof::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.timestamp_ms, hex::encode(self.tag))
    }
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proof({self})")
    }
}

fn mac(key: &ProofKey, rpc: Rpc, body: &[u8], timestamp_ms: u64) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = key.mac();
    // No path holds a NUL byte, so the separator keeps path and timestamp apart; the timestamp has a
    // fixed width, so everything after it is the body.
    mac.update(rpc.path().as_bytes());
    mac.update(&[0]);
    mac.update(&timestamp_ms.to_be_bytes());
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER_KEY: &[u8] = b"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    const NOW: u64 = 1_767_225_600_000;
    const BODY: &[u8] = b"\x08\x03\x12\x15http://127.0.0.1:8003";

    fn key() -> ProofKey {
        ProofKey::derive(KEY)
    }

    /// The proof as it travels: made, written as a header, read back.
    fn sent(rpc: Rpc, body: &[u8], at: u64) -> Proof {
        let header = Proof::sign(&key(), rpc, body, at).to_string();
        Proof::parse(&header).expect("a made proof parses")
    }

    #[test]
    fn a_genuine_proof_verifies() {
        let proof = sent(Rpc::NameserverRegister, BODY, NOW);
        assert_eq!(
            proof.verify(&key(), Rpc::NameserverRegister, BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_header_is_the_time_a_dot_and_64_hex_digits() {
        let header = Proof::sign(&key(), Rpc::NameserverRenew, BODY, NOW).to_string();
        let (time, tag) = header.split_once('.').unwrap();
        assert_eq!(time, "1767225600000");
        assert_eq!(tag.len(), 64);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn a_proof_made_with_another_key_is_invalid() {
        let forged = Proof::sign(
            &ProofKey::derive(OTHER_KEY),
            Rpc::NameserverRegister,
            BODY,
            NOW,
        );
        assert_eq!(
            forged.verify(&key(), Rpc::NameserverRegister, BODY, NOW),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn a_proof_does_not_cover_an_altered_body() {
        let proof = sent(Rpc::NameserverRegister, BODY, NOW);
        let mut altered = BODY.to_vec();
        *altered.last_mut().unwrap() = b'4';
        assert_eq!(
            proof.verify(&key(), Rpc::NameserverRegister, &altered, NOW),
            Err(ProofError::Invalid)
        );
        assert_eq!(
            proof.verify(&key(), Rpc::NameserverRegister, b"", NOW),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn a_proof_for_one_rpc_is_refused_for_every_other() {
        let all = [
            Rpc::BootstrapRegister,
            Rpc::NameserverRegister,
            Rpc::NameserverRenew,
            Rpc::NameserverDeregister,
            Rpc::AdminBackup,
            Rpc::AdminRemoveNode,
            Rpc::AdminStatsMap,
            Rpc::BootstrapDeregister,
        ];
        for signed in all {
            let proof = sent(signed, BODY, NOW);
            for used in all.into_iter().filter(|rpc| *rpc != signed) {
                assert_eq!(
                    proof.verify(&key(), used, BODY, NOW),
                    Err(ProofError::Invalid),
                    "a {signed:?} proof used for {used:?}"
                );
            }
        }
    }

    #[test]
    fn a_changed_timestamp_breaks_the_tag() {
        let proof = sent(Rpc::NameserverRenew, BODY, NOW);
        let header = proof
            .to_string()
            .replacen("1767225600000", "1767225600001", 1);
        let moved = Proof::parse(&header).unwrap();
        assert_eq!(
            moved.verify(&key(), Rpc::NameserverRenew, BODY, NOW),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn proofs_up_to_the_window_either_way_are_accepted() {
        let window = u64::try_from(WINDOW.as_millis()).unwrap();
        for at in [NOW - window, NOW + window] {
            let proof = sent(Rpc::BootstrapRegister, BODY, at);
            assert_eq!(
                proof.verify(&key(), Rpc::BootstrapRegister, BODY, NOW),
                Ok(())
            );
        }
    }

    #[test]
    fn a_stale_proof_is_refused_even_with_a_valid_tag() {
        let proof = sent(Rpc::BootstrapRegister, BODY, NOW - 60_001);
        assert_eq!(
            proof.verify(&key(), Rpc::BootstrapRegister, BODY, NOW),
            Err(ProofError::OutsideWindow {
                skew_ms: 60_001,
                direction: "behind"
            })
        );
    }

    #[test]
    fn a_proof_from_the_future_is_refused() {
        let proof = sent(Rpc::BootstrapRegister, BODY, NOW + 60_001);
        assert_eq!(
            proof.verify(&key(), Rpc::BootstrapRegister, BODY, NOW),
            Err(ProofError::OutsideWindow {
                skew_ms: 60_001,
                direction: "ahead of"
            })
        );
        let far = sent(Rpc::BootstrapRegister, BODY, u64::MAX);
        assert!(matches!(
            far.verify(&key(), Rpc::BootstrapRegister, BODY, NOW),
            Err(ProofError::OutsideWindow { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused_before_any_check() {
        let tag = "ab".repeat(32);
        for header in [
            String::new(),
            "no dot at all".to_owned(),
            format!(".{tag}"),
            format!("12a4.{tag}"),
            format!("-5.{tag}"),
            format!("+5.{tag}"),
            format!("99999999999999999999.{tag}"),
            format!("{}.{tag}", "1".repeat(21)),
            "1767225600000.".to_owned(),
            format!("1767225600000.{}", &tag[..62]),
            format!("1767225600000.{tag}00"),
            format!("1767225600000.{}zz", &tag[..62]),
            format!("1767225600000.{tag}.1"),
        ] {
            assert!(
                matches!(Proof::parse(&header), Err(ProofError::Malformed(_))),
                "{header:?} was not refused as malformed"
            );
        }
    }

    #[test]
    fn errors_are_single_lines() {
        for error in [
            ProofError::Missing,
            ProofError::Malformed("x"),
            ProofError::OutsideWindow {
                skew_ms: 1,
                direction: "behind",
            },
            ProofError::Invalid,
            ProofError::Replayed,
        ] {
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }
}
