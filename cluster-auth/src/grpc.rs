//! The proof on gRPC requests: [`authorized`] wraps a client's message with it, [`Guard::check`] is the
//! first thing a mutating handler calls.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tonic::metadata::MetadataValue;

use crate::key::ProofKey;
use crate::proof::{Proof, ProofError, Rpc, WINDOW};
use crate::replay::ReplayCache;

/// The gRPC metadata key that carries the proof.
pub const AUTH_HEADER: &str = "x-chat-auth";

/// Milliseconds since the Unix epoch by the system clock (0 for a clock set before 1970, which no
/// server accepts as fresh).
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `x-chat-auth` value proving the key for `rpc` and `body` now: what an HTTP client sends.
pub fn proof_header(key: &ProofKey, rpc: Rpc, body: &[u8]) -> String {
    Proof::sign(key, rpc, body, unix_now_ms()).to_string()
}

/// `message` as a request for `rpc`, with the proof of `key` in its metadata.
pub fn authorized<T: prost::Message>(key: &ProofKey, rpc: Rpc, message: T) -> tonic::Request<T> {
    let proof = Proof::sign(key, rpc, &message.encode_to_vec(), unix_now_ms());
    let mut request = tonic::Request::new(message);
    // Always valid (digits, a dot, hex digits); were it not, the request would go without the proof
    // and the server would refuse it, saying why.
    if let Ok(value) = MetadataValue::try_from(proof.to_string()) {
        request.metadata_mut().insert(AUTH_HEADER, value);
    }
    request
}

/// How often a server logs refused requests: anyone can send them, so one line per interval with a
/// count, not one per request.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Checks the proofs of one server's mutating requests and remembers those it accepted.
#[derive(Debug)]
pub struct Guard {
    key: ProofKey,
    seen: Mutex<ReplayCache>,
    refusals: Mutex<RefusalCount>,
}

/// Refusals since the last log line, and when that line was written.
#[derive(Debug, Default)]
struct RefusalCount {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Guard {
    pub fn new(key: ProofKey) -> Self {
        Self {
            key,
            seen: Mutex::new(ReplayCache::default()),
            refusals: Mutex::new(RefusalCount::default()),
        }
    }

    /// [`Guard::check`], and a warning for refusals (the first, then at most one per 10 s with a
    /// count): what every service's mutating RPC starts with.
    #[allow(clippy::result_large_err)]
    pub fn authenticate<T: prost::Message>(
        &self,
        rpc: Rpc,
        request: &tonic::Request<T>,
    ) -> Result<(), tonic::Status> {
        self.check(rpc, request).inspect_err(|status| {
            if let Some(refused) = self.refusal_to_log() {
                tracing::warn!(
                    reason = status.message(),
                    refused,
                    "requests without a valid proof of the cluster key refused"
                );
            }
        })
    }

    /// Counts one refused request; `Some(refusals since the last line)` when a log line is due (the
    /// first refusal, then at most one per 10 s), so a flood of forged requests cannot flood the log.
    pub fn refusal_to_log(&self) -> Option<u64> {
        self.refusal_to_log_at(Instant::now())
    }

    fn refusal_to_log_at(&self, now: Instant) -> Option<u64> {
        let mut refusals = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        refusals.unlogged = refusals.unlogged.saturating_add(1);
        let due = refusals
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        refusals.last_logged = Some(now);
        Some(std::mem::take(&mut refusals.unlogged))
    }

    /// `Ok` when `request` carries a fresh, unused proof of the cluster key for `rpc` and its message;
    /// otherwise `UNAUTHENTICATED` saying why, and the handler must change nothing.
    #[allow(clippy::result_large_err)] // tonic's own handlers return `Status` as their error.
    pub fn check<T: prost::Message>(
        &self,
        rpc: Rpc,
        request: &tonic::Request<T>,
    ) -> Result<(), tonic::Status> {
        let header = request.metadata().get(AUTH_HEADER).map(|value| {
            value
                .to_str()
                .map_err(|_| ProofError::Malformed("not ASCII"))
        });
        let body = request.get_ref().encode_to_vec();
        let result = match header {
            None => Err(ProofError::Missing),
            Some(Err(error)) => Err(error),
            Some(Ok(header)) => self.verify(rpc, &body, header, unix_now_ms()),
        };
        result.map_err(|error| tonic::Status::unauthenticated(error.to_string()))
    }

    /// [`Guard::verify`] against the system clock, for requests that are not gRPC (the admin port).
    pub fn verify_now(&self, rpc: Rpc, body: &[u8], header: &str) -> Result<(), ProofError> {
        self.verify(rpc, body, header, unix_now_ms())
    }

    /// The check on the header's text at `now_ms`: the time, the tag, then first use.
    pub fn verify(
        &self,
        rpc: Rpc,
        body: &[u8],
        header: &str,
        now_ms: u64,
    ) -> Result<(), ProofError> {
        let proof = Proof::parse(header)?;
        proof.verify(&self.key, rpc, body, now_ms)?;
        let window_ms = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        let first = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first_use(proof.tag(), proof.timestamp_ms(), now_ms, window_ms);
        if first {
            Ok(())
        } else {
            Err(ProofError::Replayed)
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER_KEY: &[u8] = b"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    /// A stand-in for a generated request message.
    #[derive(Clone, PartialEq, Message)]
    struct Register {
        #[prost(uint64, tag = "1")]
        id: u64,
        #[prost(string, tag = "2")]
        url: String,
    }

    fn register(id: u64, url: &str) -> Register {
        Register {
            id,
            url: url.to_owned(),
        }
    }

    fn guard() -> Guard {
        Guard::new(ProofKey::derive(KEY))
    }

    #[test]
    fn an_authorized_request_passes_the_guard() {
        let request = authorized(
            &ProofKey::derive(KEY),
            Rpc::NameserverRegister,
            register(3, "http://127.0.0.1:8003"),
        );
        assert_eq!(
            guard()
                .check(Rpc::NameserverRegister, &request)
                .map_err(|s| s.code()),
            Ok(())
        );
    }

    #[test]
    fn a_request_without_a_proof_is_unauthenticated() {
        let request = tonic::Request::new(register(3, "http://127.0.0.1:8003"));
        let status = guard()
            .check(Rpc::NameserverRegister, &request)
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(
            status.message().contains("x-chat-auth"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn a_proof_under_another_key_is_unauthenticated() {
        let request = authorized(
            &ProofKey::derive(OTHER_KEY),
            Rpc::NameserverRegister,
            register(3, "http://127.0.0.1:8003"),
        );
        let status = guard()
            .check(Rpc::NameserverRegister, &request)
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_genuine_proof_moved_onto_another_message_is_unauthenticated() {
        let genuine = authorized(
            &ProofKey::derive(KEY),
            Rpc::NameserverRegister,
            register(3, "http://127.0.0.1:8003"),
        );
        let mut phishing = tonic::Request::new(register(3, "http://evil.example"));
        *phishing.metadata_mut() = genuine.metadata().clone();

        let status = guard()
            .check(Rpc::NameserverRegister, &phishing)
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn the_same_request_is_accepted_once() {
        let guard = guard();
        let request = authorized(
            &ProofKey::derive(KEY),
            Rpc::NameserverDeregister,
            register(3, ""),
        );
        assert!(guard.check(Rpc::NameserverDeregister, &request).is_ok());

        let again = guard
            .check(Rpc::NameserverDeregister, &request)
            .unwrap_err();
        assert_eq!(again.code(), tonic::Code::Unauthenticated);
        assert!(
            again.message().contains("already used"),
            "{}",
            again.message()
        );
    }

    #[test]
    fn verify_refuses_stale_and_malformed_headers() {
        let key = ProofKey::derive(KEY);
        let now = 1_767_225_600_000;
        let stale = Proof::sign(&key, Rpc::BootstrapRegister, b"x", now - 61_000).to_string();
        assert!(matches!(
            guard().verify(Rpc::BootstrapRegister, b"x", &stale, now),
            Err(ProofError::OutsideWindow { .. })
        ));
        assert!(matches!(
            guard().verify(Rpc::BootstrapRegister, b"x", "garbage", now),
            Err(ProofError::Malformed(_))
        ));
    }

    #[test]
    fn refusals_are_logged_first_then_once_per_interval_with_a_count() {
        let guard = guard();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);

        assert_eq!(guard.refusal_to_log_at(at(0)), Some(1));
        assert_eq!(guard.refusal_to_log_at(at(10)), None);
        assert_eq!(guard.refusal_to_log_at(at(9_999)), None);
        assert_eq!(guard.refusal_to_log_at(at(10_000)), Some(3));
        assert_eq!(guard.refusal_to_log_at(at(10_001)), None);
    }

    #[test]
    fn a_non_ascii_header_is_malformed() {
        let mut request = tonic::Request::new(register(3, ""));
        request.metadata_mut().insert(
            AUTH_HEADER,
            MetadataValue::try_from(&b"\xff"[..]).expect("opaque bytes are a valid value"),
        );
        let status = guard().check(Rpc::NameserverRenew, &request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
