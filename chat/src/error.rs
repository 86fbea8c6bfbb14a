//! The client's one error type. Each variant is a sentence a person can act on; `exit_code` separates
//! what the user typed wrong (2) from what went wrong while doing it (1).

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not logged in: run `chat login name#1234` first")]
    NotLoggedIn,
    #[error("the session has ended (logged out or expired): run `chat login` again")]
    SessionEnded,
    #[error("malformed name#tag {0:?}: expected a name, '#' and four digits, like ada#0218")]
    MalformedHandle(String),
    #[error("unknown group {0:?}: `chat groups` lists yours")]
    UnknownGroup(String),
    #[error("{name:?} names {count} of your groups: use the group's id (`chat groups`)")]
    AmbiguousGroup { name: String, count: usize },
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// The cluster answered with an error of its own (`{"error": ...}`).
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    /// 2 for what the command line itself got wrong, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) | ClientError::MalformedHandle(_) => 2,
            _ => 1,
        }
    }
}
