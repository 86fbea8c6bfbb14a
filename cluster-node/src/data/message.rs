//! What travels on the data plane, and its codec.
//!
//! Requests go up the tree hop by hop; responses come back down, routed at every hop by the
//! destination's next hop ([`RequestId::origin`] names it). Commits flow down the whole tree: replicas
//! apply them, every node hands them to its live-update subscribers. Only the origin keeps state
//! about a request (its pending entry), so a forwarder that dies loses nothing but in-flight bytes,
//! which the origin's timeout turns into a clear error.
//!
//! Every message travels in an [`Envelope`] that carries the sender's term (the election that built
//! its tree). A receiver drops messages of an older term than its own: a writer that was paused or
//! cut off and comes back cannot push commits, acknowledgements or answers into the new tree.

use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::presence::TypingNotice;
use crate::presence::relay::SetUpdate;
use crate::service::{ServiceError, ServiceRequest, ServiceResponse};
use crate::storage::{Epoch, LogEntry, Term, UserId};

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
    /// Committed writes in log order (what one group commit wrote), sent by the writer to its
    /// children and forwarded down the whole tree as the same bytes.
    Commit { entries: Vec<LogEntry> },
    /// The writer's answer to a [`DataMessage::CatchUp`], routed down to the copy `to` that asked:
    /// the next entries (possibly none). It also confirms that the copy's log is a prefix of the
    /// writer's, after which the copy applies commits.
    Entries { to: NodeId, entries: Vec<LogEntry> },
    /// The writer's answer to a [`DataMessage::CatchUp`] whose log does not match its own, routed
    /// down to `to`: the copy holds entries the writer never had (an old writer's unacknowledged
    /// tail). It discards them and rebuilds its copy from the writer's log; histories never merge.
    Diverged { to: NodeId, writer_epoch: Epoch },
    /// Copy `node` has applied everything up to `epoch`; passed up the tree to the writer. `durable`
    /// from a voter that holds it on disk (it counts for the write's quorum); a learner reports its
    /// progress with `durable: false` (never counted; it tells the writer who is caught up).
    Ack {
        node: NodeId,
        epoch: Epoch,
        durable: bool,
    },
    /// Copy `origin` is missing entries from `from` on; passed up the tree to the writer.
    /// `last_term` is the term of its entry at `from - 1` (zero when it has none), so the writer
    /// can check that their logs agree, and `held` its data position: a writer never judges a copy
    /// newer than its own.
    CatchUp {
        origin: NodeId,
        from: Epoch,
        last_term: Term,
        held: (Term, Epoch),
    },
    /// The writer's log position and whether it accepts writes, sent down the whole tree every
    /// housekeeping round and at once when it starts or stops accepting: an idle copy notices what
    /// it missed, and every node learns whether its writer takes writes (`/status`
    /// `writer_accepting`, which an input node's readiness needs).
    Position {
        term: Term,
        epoch: Epoch,
        accepting: bool,
    },
    /// A root that is to start accepting writes claims the data term it will write under; passed
    /// down the whole tree. Every copy promises it on disk (unless it promised a higher one) and
    /// reports its promise in its [`DataMessage::Summary`]; the root writes nothing before a majority
    /// of the voters has promised (see `replication::acceptance`).
    Claim { term: Term },
    /// Sent up the tree by every node: how many nodes its subtree has and the most recent data
    /// position among them. The root accepts writes only once every node of its tree reported and
    /// none holds newer data than itself.
    Summary {
        nodes: usize,
        best_term: Term,
        best_epoch: Epoch,
        /// The nodes of the subtree whose copy holds everything they acknowledged (a node that lost
        /// its disk is missing until it caught up): only they count for a majority of the voters.
        whole: Vec<NodeId>,
        /// Every copy of the subtree with the highest data term it promised.
        #[serde(default)]
        promises: Vec<(NodeId, Term)>,
    },
    /// Sent up by every node: the users connected anywhere in its subtree (`presence::relay`).
    Presence { users: SetUpdate<UserId> },
    /// Sent down by every node to its children: who is online in the cluster.
    Online { users: SetUpdate<UserId> },
    /// "Send me your whole set": a [`DataMessage::Presence`] or [`DataMessage::Online`] did not go
    /// on top of what the receiver held (a lost update, a restart).
    PresenceResend,
    /// A user is typing: passed up from child to parent until the root, which sends it down the
    /// whole tree; every node hands it to its streams.
    Typing { notice: TypingNotice },
}

impl DataMessage {
    /// A subtree's report to the parent (`replication::Summary`) as it travels.
    pub fn summary(summary: &replication::Summary) -> Self {
        DataMessage::Summary {
            nodes: summary.nodes,
            best_term: summary.best.0,
            best_epoch: summary.best.1,
            whole: summary.whole.iter().copied().collect(),
            promises: summary.promises.iter().map(|(n, t)| (*n, *t)).collect(),
        }
    }

    /// The report a [`DataMessage::Summary`] carries (`None` for any other message).
    pub fn into_summary(self) -> Option<replication::Summary> {
        match self {
            DataMessage::Summary {
                nodes,
                best_term,
                best_epoch,
                whole,
                promises,
            } => Some(replication::Summary {
                nodes,
                best: (best_term, best_epoch),
                whole: whole.into_iter().collect(),
                promises: promises.into_iter().collect(),
            }),
            _ => None,
        }
    }
}

/// A data message and the term of the tree its sender belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub term: u64,
    pub body: DataMessage,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDecodeError {
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed data message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Wraps `message` in an envelope of `term` and encodes it.
pub fn encode(term: u64, message: &DataMessage) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a> {
        term: u64,
        body: &'a DataMessage,
    }
    // Plain data with string keys: serialisation cannot fail; an empty buffer would be refused by the
    // peer's decoder if that ever changed.
    serde_json::to_vec(&EnvelopeRef {
        term,
        body: message,
    })
    .unwrap_or_default()
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, DataDecodeError> {
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
            DataMessage::Ack {
                node: NodeId(3),
                epoch: Epoch(7),
                durable: true,
            },
            DataMessage::CatchUp {
                origin: NodeId(3),
                from: Epoch(8),
                last_term: Term(2),
                held: (Term(3), Epoch(7)),
            },
            DataMessage::Diverged {
                to: NodeId(3),
                writer_epoch: Epoch(5),
            },
            DataMessage::Summary {
                nodes: 3,
                best_term: Term(2),
                best_epoch: Epoch(9),
                whole: vec![NodeId(3)],
                promises: vec![(NodeId(3), Term(2 << 20 | 1))],
            },
            DataMessage::Claim {
                term: Term(2 << 20 | 1),
            },
            DataMessage::Position {
                term: Term(2),
                epoch: Epoch(8),
                accepting: true,
            },
            DataMessage::Entries {
                to: NodeId(3),
                entries: Vec::new(),
            },
            DataMessage::Presence {
                users: SetUpdate {
                    stream: 5,
                    version: 2,
                    base: Some(1),
                    added: vec![UserId::random()],
                    removed: vec![UserId::random()],
                },
            },
            DataMessage::Online {
                users: SetUpdate {
                    stream: 6,
                    version: 1,
                    base: None,
                    added: vec![UserId::random()],
                    removed: Vec::new(),
                },
            },
            DataMessage::PresenceResend,
            DataMessage::Typing {
                notice: TypingNotice {
                    chat: crate::storage::ChatId::Group(crate::storage::GroupId::random()),
                    user: UserId::random(),
                    username: "ada".into(),
                    tag: "0042".parse().unwrap(),
                },
            },
        ];
        for message in messages {
            let envelope = decode(&encode(4, &message)).unwrap();
            assert_eq!(envelope.term, 4);
            assert_eq!(envelope.body, message);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"{", b"[]", b"{\"kind\":\"nope\"}", b"\xff\xfe"] {
            assert!(decode(bytes).is_err());
        }
    }
}
