//! What travels on the data plane, and its codec.
//!
//! Requests go up the tree hop by hop; responses come back down, routed at every hop by the
//! destination's next hop ([`RequestId::origin`] names it). Commits flow down the whole tree: replicas
//! apply them, every node hands them to its live-update subscribers. Only the origin keeps state
//! about a request (its pending entry), so a forwarder that dies loses nothing but in-flight bytes,
//! which the origin's timeout turns into a clear error.

use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::service::{ServiceError, ServiceRequest, ServiceResponse};
use crate::storage::{Epoch, LogEntry, Term};

/// Messages larger than this are refused before parsing (a catch-up batch stays well below it).
pub const MAX_DATA_MESSAGE_BYTES: usize = 16 << 20;

/// Unique in the cluster: the node that asked, and its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    pub origin: NodeId,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataMessage {
    /// A client operation travelling up towards a node that can answer it.
    Request {
        id: RequestId,
        request: ServiceRequest,
    },
    /// The answer travelling down towards `id.origin`.
    Response {
        id: RequestId,
        result: Result<ServiceResponse, ServiceError>,
    },
    /// A committed write, sent by the writer to its children and forwarded down the whole tree.
    Commit { entry: LogEntry },
    /// Entries a replica asked for to fill a gap; applied by that replica only, never forwarded.
    Entries { entries: Vec<LogEntry> },
    /// A replica has applied everything up to `epoch` (sent to the writer).
    Ack { epoch: Epoch },
    /// A replica is missing entries from `from` on.
    CatchUp { from: Epoch },
    /// The writer's log position, sent periodically so an idle replica notices what it missed.
    Position { term: Term, epoch: Epoch },
}

#[derive(Debug, thiserror::Error)]
pub enum DataDecodeError {
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed data message: {0}")]
    Malformed(#[from] serde_json::Error),
}

pub fn encode(message: &DataMessage) -> Vec<u8> {
    // Plain data with string keys: serialisation cannot fail; an empty buffer would be refused by the
    // peer's decoder if that ever changed.
    serde_json::to_vec(message).unwrap_or_default()
}

pub fn decode(bytes: &[u8]) -> Result<DataMessage, DataDecodeError> {
    if bytes.len() > MAX_DATA_MESSAGE_BYTES {
        return Err(DataDecodeError::TooLarge(bytes.len()));
    }
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{GetUser, Operation};

    #[test]
    fn every_kind_round_trips_through_the_codec() {
        let id = RequestId {
            origin: NodeId(4),
            seq: 9,
        };
        let request = ServiceRequest {
            caller: None,
            client_epoch: Epoch(3),
            operation: Operation::GetUser(GetUser {
                username: "ada".into(),
                tag: "0042".parse().unwrap(),
            }),
        };
        let messages = [
            DataMessage::Request { id, request },
            DataMessage::Response {
                id,
                result: Err(ServiceError::Timeout),
            },
            DataMessage::Ack { epoch: Epoch(7) },
            DataMessage::CatchUp { from: Epoch(8) },
            DataMessage::Position {
                term: Term(2),
                epoch: Epoch(8),
            },
            DataMessage::Entries {
                entries: Vec::new(),
            },
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message)).unwrap(), message);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"{", b"[]", b"{\"kind\":\"nope\"}", b"\xff\xfe"] {
            assert!(decode(bytes).is_err());
        }
    }
}
