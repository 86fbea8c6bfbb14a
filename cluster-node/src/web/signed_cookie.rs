//! Signed cookie values: a JSON payload and its expiry, signed with HMAC-SHA256 under a [`SessionKey`]
//! that every input node of a cluster derives from the same cluster key, so a value signed by one node
//! verifies on all of them.
//!
//! ```text
//!   value = base64url(JSON {"data": …, "expires": unix seconds}) "." base64url(HMAC-SHA256(key, first part))
//! ```
//!
//! The payload is signed, not encrypted: the client can read it (its own user id, name, tag and read
//! epoch), but cannot change it. The expiry sits inside the signed part, so a client cannot extend its
//! session by editing the cookie's `Max-Age`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Cookie values longer than this are refused unread: browsers cap a cookie at about 4 KiB anyway.
const MAX_VALUE_LEN: usize = 4096;

/// What the cluster key is hashed with to give the session key: a cluster key used for something else
/// one day cannot be made to sign session cookies.
const SESSION_KEY_CONTEXT: &[u8] = b"chat_session cookie signing v1";

/// The key that signs and verifies session cookies. Its [`Debug`] never shows the secret.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8; 32]>);

impl SessionKey {
    /// The session key of every node holding `cluster_key`.
    pub fn derive(cluster_key: &[u8]) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(cluster_key).expect("HMAC takes keys of any length");
        mac.update(SESSION_KEY_CONTEXT);
        SessionKey(Arc::new(mac.finalize().into_bytes().into()))
    }

    /// A fresh random key: cookies it signs are valid only where this value lives.
    pub fn random() -> Self {
        SessionKey(Arc::new(rand::random()))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.as_slice()).expect("HMAC takes keys of any length")
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

/// Why a cookie value was not accepted. Every case means "no session" to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a signed value")]
    Malformed,
    #[error("the signature does not match")]
    BadSignature,
    #[error("expired")]
    Expired,
}

/// A verified value and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    pub data: T,
    pub expires: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    data: T,
    /// Unix seconds.
    expires: u64,
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

/// Signs `data`, to be accepted until `expires` (rounded down to the second).
pub fn sign<T: Serialize>(key: &SessionKey, data: &T, expires: SystemTime) -> String {
    let envelope = Envelope {
        data,
        expires: unix_seconds(expires),
    };
    let json = serde_json::to_vec(&envelope).expect("session data always serialises");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// Checks `value`'s signature (in constant time) and expiry at `now`, and decodes its data.
pub fn verify<T: DeserializeOwned>(
    key: &SessionKey,
    value: &str,
    now: SystemTime,
) -> Result<Verified<T>, Refused> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Refused::Malformed);
    }
    let (payload, tag) = value.split_once('.').ok_or(Refused::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| Refused::Malformed)?;
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    mac.verify_slice(&tag).map_err(|_| Refused::BadSignature)?;
    // Only what this cluster signed is parsed from here on.
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refused::Malformed)?;
    let envelope: Envelope<T> = serde_json::from_slice(&json).map_err(|_| Refused::Malformed)?;
    // An expiry beyond what the clock can hold is no expiry this code ever signed.
    let expires = UNIX_EPOCH
        .checked_add(Duration::from_secs(envelope.expires))
        .ok_or(Refused::Malformed)?;
    if now >= expires {
        return Err(Refused::Expired);
    }
    Ok(Verified {
        data: envelope.data,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Data {
        user: String,
        epoch: u64,
    }

    fn data() -> Data {
        Data {
            user: "ada#0001".into(),
            epoch: 42,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn key() -> SessionKey {
        SessionKey::derive(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_signed_value_verifies_with_its_data_and_expiry() {
        let value = sign(&key(), &data(), at(2_000));

        let verified = verify::<Data>(&key(), &value, at(1_000));

        assert_eq!(
            verified,
            Ok(Verified {
                data: data(),
                expires: at(2_000),
            })
        );
    }

    #[test]
    fn the_same_cluster_key_derives_the_same_session_key_on_every_node() {
        let value = sign(&SessionKey::derive(b"the cluster key"), &data(), at(2_000));

        let verified = verify::<Data>(&SessionKey::derive(b"the cluster key"), &value, at(1_000));

        assert_eq!(verified.map(|v| v.data), Ok(data()));
    }

    #[test]
    fn a_value_is_refused_from_its_expiry_on() {
        let value = sign(&key(), &data(), at(2_000));

        assert!(verify::<Data>(&key(), &value, at(1_999)).is_ok());
        assert_eq!(
            verify::<Data>(&key(), &value, at(2_000)),
            Err(Refused::Expired)
        );
        assert_eq!(
            verify::<Data>(&key(), &value, at(9_999)),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn a_value_signed_with_another_key_is_refused() {
        let value = sign(&SessionKey::random(), &data(), at(2_000));

        assert_eq!(
            verify::<Data>(&key(), &value, at(1_000)),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify::<Data>(&SessionKey::derive(b"another cluster"), &value, at(1_000)),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let value = sign(&key(), &data(), at(2_000));
        let (_, tag) = value.split_once('.').unwrap();
        // A payload the client would like: another user and a later expiry, under the old signature.
        let forged = serde_json::json!({
            "data": { "user": "mallory#0002", "epoch": 42 },
            "expires": 9_999_999_999u64,
        });
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged.to_string()));
        let mut flipped = value.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();

        for value in [forged, flipped] {
            assert_eq!(
                verify::<Data>(&key(), &value, at(1_000)),
                Err(Refused::BadSignature),
                "{value}"
            );
        }
    }

    #[test]
    fn a_signed_expiry_beyond_the_clock_is_refused_not_a_panic() {
        let payload = serde_json::json!({ "data": data(), "expires": u64::MAX }).to_string();
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = key().mac();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let value = format!("{payload}.{tag}");

        assert_eq!(
            verify::<Data>(&key(), &value, at(1_000)),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let value = sign(&key(), &data(), at(2_000));
        let (payload, _) = value.split_once('.').unwrap();
        let zeros = URL_SAFE_NO_PAD.encode([0u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([0u8; 8]);

        for value in [
            format!("{payload}.{zeros}"),
            format!("{payload}.{short}"),
            format!("{payload}."),
        ] {
            assert_eq!(
                verify::<Data>(&key(), &value, at(1_000)),
                Err(Refused::BadSignature),
                "{value}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_as_malformed() {
        let huge = format!("{}.{}", "A".repeat(MAX_VALUE_LEN), "A".repeat(43));
        for value in [
            "",
            "garbage",
            "AAAAAAAAAAAAAAAAAAAAAA",
            "a.b.c",
            "!!!.???",
            huge.as_str(),
        ] {
            assert_eq!(
                verify::<Data>(&key(), value, at(1_000)),
                Err(Refused::Malformed),
                "{value}"
            );
        }
    }

    #[test]
    fn a_signed_value_of_another_shape_is_refused_as_malformed() {
        let value = sign(&key(), &"just a string", at(2_000));

        assert_eq!(
            verify::<Data>(&key(), &value, at(1_000)),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(format!("{:?}", key()), "SessionKey(…)");
    }
}
