//! The crate's errors. The state machines themselves cannot fail — bad input is dropped and at most
//! reported as an event — so the only error is a message that does not decode.

use crate::message::Scope;

/// Why bytes received from the network are not a control-plane message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("header scope {header:?} does not match the body's scope {body:?}")]
    ScopeMismatch { header: Scope, body: Scope },
}
