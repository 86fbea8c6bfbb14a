//! Log entries for the tests of the hub and of the membership rules.

use crate::storage::messages::NewMessage;
use crate::storage::{ChatId, Epoch, LogEntry, MessageId, Mutation, Term, UnixMillis, UserId};

pub(super) fn entry(epoch: u64, mutation: Mutation) -> LogEntry {
    LogEntry {
        term: Term::default(),
        epoch: Epoch(epoch),
        mutation,
    }
}

/// A short group or direct message from `sender`.
pub(super) fn post(chat: ChatId, sender: UserId) -> Mutation {
    Mutation::PostMessage(NewMessage {
        id: MessageId::random(),
        chat,
        sender,
        receiver: None,
        content: "hi".into(),
        created_at: UnixMillis(0),
        client_id: None,
        reply_to: None,
    })
}
