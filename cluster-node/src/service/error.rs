//! The service layer's one error type. The web layer maps it to statuses ([`ServiceError::status`]) and
//! the data plane carries it between nodes (serde), so both sides agree on what went wrong.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::StorageError;

/// What a lookup did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    User,
    Group,
    Message,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::User => "user",
            Resource::Group => "group",
            Resource::Message => "message",
        })
    }
}

/// Why an operation did not succeed. User errors (4xx) say what to fix; `Unavailable`, `Timeout`,
/// `ReadOnly` and `Stale` are about the cluster, not the request, and a retry elsewhere or later may work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum ServiceError {
    /// The request breaks a validation rule (400).
    #[error("{0}")]
    Invalid(String),
    /// No caller, or the caller's user no longer exists (401).
    #[error("not logged in")]
    Unauthenticated,
    /// The caller may not do this: not a member, not the sender, not the creator (403).
    #[error("{0}")]
    Forbidden(String),
    /// (404)
    #[error("{0} not found")]
    NotFound(Resource),
    /// The request clashes with existing data, e.g. every tag of a username is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// The cluster cannot serve this now (503 with `Retry-After`).
    #[error("service unavailable, retry in {} s", retry_after.as_secs().max(1))]
    Unavailable { retry_after: Duration },
    /// No answer in time (503).
    #[error("the request timed out")]
    Timeout,
    /// A write reached a read-only replica; the data plane forwards it to the writer.
    #[error("this node holds a read-only replica")]
    ReadOnly,
    /// A replica is behind the epoch the client has already seen; the data plane forwards the read.
    #[error("replica at epoch {have} has not reached the client's epoch {wanted}")]
    Stale { wanted: u64, have: u64 },
    /// A bug or a storage failure; details go to the log, not to the client (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The HTTP status this error maps to (DESIGN §6); cluster conditions are 503, never 500.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::Invalid(_) => 400,
            ServiceError::Unauthenticated => 401,
            ServiceError::Forbidden(_) => 403,
            ServiceError::NotFound(_) => 404,
            ServiceError::Conflict(_) => 409,
            ServiceError::Unavailable { .. }
            | ServiceError::Timeout
            | ServiceError::ReadOnly
            | ServiceError::Stale { .. } => 503,
            ServiceError::Internal(_) => 500,
        }
    }

    /// True when another node (the writer, or a fresher copy) should get the request instead.
    pub fn should_forward(&self) -> bool {
        matches!(self, ServiceError::ReadOnly | ServiceError::Stale { .. })
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ServiceError::Forbidden(message.into())
    }
}

impl From<StorageError> for ServiceError {
    fn from(error: StorageError) -> Self {
        tracing::error!(%error, "storage failure");
        ServiceError::Internal(error.to_string())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        StorageError::from(error).into()
    }
}
