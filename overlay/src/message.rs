//! The wire model: a header every message carries (source, destination, scope, Lamport stamp) and a
//! typed body per scope, plus the JSON codec. The decoder is the one place untrusted bytes enter the
//! control plane; it returns an error for anything that is not a well-formed envelope and never panics.
//!
//! ```json
//! {"header":{"source":1,"destination":2,"scope":"election","timestamp":17},
//!  "body":{"election":{"type":"vote","election":{…},"round":3,"yes":true,"prune":false}}}
//! ```

use serde::{Deserialize, Serialize};

use crate::clock::LamportTime;
use crate::election::ElectionBody;
use crate::error::DecodeError;
use crate::handshake::TopologyBody;
use crate::ids::NodeId;
use crate::tree::TreeBody;

/// Envelopes larger than this are refused before parsing. A route report of a 10,000-node subtree
/// is ~100 KB, so 1 MiB leaves room while bounding what one message can make a node allocate.
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;

/// Which component a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Topology,
    Heartbeat,
    Election,
    Tree,
    Data,
}

/// What every message carries, whatever its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub source: NodeId,
    pub destination: NodeId,
    pub scope: Scope,
    pub timestamp: LamportTime,
}

/// The typed body, one variant per scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Handshake: JOIN / JOIN-ACK / ACK.
    Topology(TopologyBody),
    /// Liveness only; carries nothing.
    Heartbeat,
    /// Yo-Yo election.
    Election(ElectionBody),
    /// SHOUT, ticks, healing and route reports.
    Tree(TreeBody),
    /// Opaque to the control plane: the data plane reuses the header and puts its own JSON here.
    Data(serde_json::Value),
}

impl Body {
    pub fn scope(&self) -> Scope {
        match self {
            Body::Topology(_) => Scope::Topology,
            Body::Heartbeat => Scope::Heartbeat,
            Body::Election(_) => Scope::Election,
            Body::Tree(_) => Scope::Tree,
            Body::Data(_) => Scope::Data,
        }
    }
}

/// One message: header and body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub header: Header,
    pub body: Body,
}

impl Envelope {
    /// Builds an envelope whose header scope matches the body.
    pub fn new(
        source: NodeId,
        destination: NodeId,
        timestamp: LamportTime,
        body: Body,
    ) -> Envelope {
        Envelope {
            header: Header {
                source,
                destination,
                scope: body.scope(),
                timestamp,
            },
            body,
        }
    }
}

/// Serializes an envelope to JSON bytes.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    // Every type in an envelope is plain data with string map keys, so serialization cannot fail; an
    // empty buffer (which the peer's decoder rejects) is the harmless fallback if that ever changes.
    serde_json::to_vec(envelope).unwrap_or_default()
}

/// Parses bytes from the network. Never panics: size is checked first, serde_json bounds nesting depth,
/// and the header scope must agree with the body.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_ENVELOPE_BYTES,
        });
    }
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| DecodeError::Malformed(error.to_string()))?;
    let body = envelope.body.scope();
    if envelope.header.scope != body {
        return Err(DecodeError::ScopeMismatch {
            header: envelope.header.scope,
            body,
        });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::ElectionId;
    use crate::handshake::PeerStatus;
    use crate::ids::{ElectionValue, Term};
    use crate::tree::TreeId;
    use proptest::prelude::*;

    fn envelope(body: Body) -> Envelope {
        Envelope::new(NodeId(1), NodeId(2), LamportTime(17), body)
    }

    fn samples() -> Vec<Body> {
        let election = ElectionId {
            term: Term(3),
            clock: LamportTime(99),
            initiator: NodeId(4),
        };
        let tree = TreeId {
            term: Term(3),
            leader: NodeId(1),
        };
        vec![
            Body::Heartbeat,
            Body::Topology(TopologyBody::Join {
                rejoin: true,
                incarnation: 7,
                status: PeerStatus {
                    tree: Some(tree),
                    parent: Some(NodeId(1)),
                    attached: true,
                    election: None,
                },
            }),
            Body::Topology(TopologyBody::JoinAck {
                incarnation: 1,
                status: PeerStatus::default(),
            }),
            Body::Topology(TopologyBody::Ack {
                incarnation: 1,
                status: PeerStatus::default(),
            }),
            Body::Election(ElectionBody::Start {
                election,
                value: ElectionValue::new(NodeId(4)),
            }),
            Body::Election(ElectionBody::Yo {
                election,
                round: 2,
                value: ElectionValue::new(NodeId(1)),
            }),
            Body::Election(ElectionBody::Vote {
                election,
                round: 2,
                yes: false,
                prune: true,
            }),
            Body::Election(ElectionBody::Nudge { election, round: 0 }),
            Body::Election(ElectionBody::Decline { election }),
            Body::Tree(TreeBody::Question { tree }),
            Body::Tree(TreeBody::Answer { tree, accept: true }),
            Body::Tree(TreeBody::Tick { tree, counter: 12 }),
            Body::Tree(TreeBody::NoParentRequest { tree, tick: 11 }),
            Body::Tree(TreeBody::NoParentRefuse { tree }),
            Body::Tree(TreeBody::Detach { tree }),
            Body::Tree(TreeBody::RouteReport {
                tree,
                version: 2,
                reachable: vec![NodeId(5), NodeId(6)],
            }),
            Body::Tree(TreeBody::RouteAck { tree, version: 2 }),
            Body::Data(serde_json::json!({"op": "post", "text": "hi"})),
        ]
    }

    #[test]
    fn every_body_kind_round_trips() {
        for body in samples() {
            let original = envelope(body);
            assert_eq!(decode(&encode(&original)), Ok(original));
        }
    }

    #[test]
    fn a_heartbeat_has_the_documented_shape() {
        let bytes = encode(&envelope(Body::Heartbeat));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"header":{"source":1,"destination":2,"scope":"heartbeat","timestamp":17},"body":"heartbeat"}"#
        );
    }

    #[test]
    fn a_header_scope_that_contradicts_the_body_is_rejected() {
        let bytes = br#"{"header":{"source":1,"destination":2,"scope":"tree","timestamp":1},"body":"heartbeat"}"#;
        assert_eq!(
            decode(bytes),
            Err(DecodeError::ScopeMismatch {
                header: Scope::Tree,
                body: Scope::Heartbeat
            })
        );
    }

    #[test]
    fn garbage_and_oversized_input_are_errors() {
        assert!(matches!(decode(b""), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(b"\xff\xfe"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(br#"{"header":{"source":-1}}"#),
            Err(DecodeError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(decode(&huge), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn deeply_nested_data_is_an_error_not_a_stack_overflow() {
        let mut text = String::from(
            r#"{"header":{"source":1,"destination":2,"scope":"data","timestamp":1},"body":{"data":"#,
        );
        text.push_str(&"[".repeat(100_000));
        text.push_str(&"]".repeat(100_000));
        text.push_str("}}");
        assert!(matches!(
            decode(text.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_mutated_valid_messages_never_panics(
            pick in 0usize..18,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = encode(&envelope(samples()[pick % samples().len()].clone()));
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let _ = decode(&bytes);
        }

        #[test]
        fn headers_with_any_numbers_round_trip(
            source in any::<u64>(),
            destination in any::<u64>(),
            timestamp in any::<u64>(),
            pick in 0usize..18,
        ) {
            let body = samples()[pick % samples().len()].clone();
            let original = Envelope::new(NodeId(source), NodeId(destination), LamportTime(timestamp), body);
            prop_assert_eq!(decode(&encode(&original)), Ok(original));
        }
    }
}
