//! A [`Target`] resolved against the cluster: the API path of its messages, the chat ids it covers and
//! how to show it.

use reqwest::Method;
use serde_json::Value;

use crate::api::{GroupSummary, Message, is_direct_with};
use crate::connection::{Connection, Retry};
use crate::error::ClientError;
use crate::target::{Handle, Target, resolve_group};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// `/api/groups/{id}` or `/api/users/{name}/{tag}`; `/messages` and `/read` hang below it.
    pub path: String,
    /// `#crew` or `@bob#0042`.
    pub label: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Group { id: String },
    Direct { user_id: String },
}

impl Conversation {
    pub fn group(group: &GroupSummary) -> Conversation {
        Conversation {
            path: format!("/api/groups/{}", encode_segment(&group.id)),
            label: format!("#{}", group.name),
            kind: Kind::Group {
                id: group.id.clone(),
            },
        }
    }

    pub fn direct(handle: &Handle, user_id: String) -> Conversation {
        Conversation {
            path: format!(
                "/api/users/{}/{}",
                encode_segment(&handle.username),
                handle.tag
            ),
            label: format!("@{handle}"),
            kind: Kind::Direct { user_id },
        }
    }

    /// Looks the target up: the caller's groups for a group, the user's profile for a direct chat.
    pub async fn resolve(
        connection: &Connection,
        target: &Target,
    ) -> Result<Conversation, ClientError> {
        match target {
            Target::Group(text) => {
                let groups = my_groups(connection).await?;
                Ok(Conversation::group(resolve_group(&groups, text)?))
            }
            Target::User(handle) => {
                let path = format!(
                    "/api/users/{}/{}",
                    encode_segment(&handle.username),
                    handle.tag
                );
                let reply = connection
                    .call(Method::GET, &path, None, Retry::Always)
                    .await?;
                if reply.status == 404 {
                    return Err(ClientError::UnknownUser(handle.to_string()));
                }
                let profile = connection.success(reply)?;
                let id = profile["id"].as_str().unwrap_or_default().to_owned();
                Ok(Conversation::direct(handle, id))
            }
        }
    }

    /// Whether a message of chat `chat` belongs here.
    pub fn holds(&self, chat: &str) -> bool {
        match &self.kind {
            Kind::Group { id } => chat == id,
            Kind::Direct { user_id } => is_direct_with(chat, user_id),
        }
    }

    /// The messages before `before` (all recent ones when `None`), oldest first.
    pub async fn history(
        &self,
        connection: &Connection,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> Result<Vec<Message>, ClientError> {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(before) = before {
            query.push(format!("before={before}"));
        }
        let mut path = format!("{}/messages", self.path);
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body = connection
            .expect(Method::GET, &path, None, Retry::Always)
            .await?;
        serde_json::from_value(body)
            .map_err(|error| ClientError::Local(format!("unexpected history answer: {error}")))
    }

    /// Sends `content` once: the `client_id` makes a retry after a failover return the first copy.
    pub async fn send(
        &self,
        connection: &Connection,
        content: &str,
        client_id: &str,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "content": content, "client_id": client_id });
        connection
            .expect(
                Method::POST,
                &format!("{}/messages", self.path),
                Some(&body),
                Retry::Always,
            )
            .await
    }

    /// Moves the caller's read marker to `epoch`.
    pub async fn mark_read(&self, connection: &Connection, epoch: u64) -> Result<(), ClientError> {
        let body = serde_json::json!({ "epoch": epoch });
        connection
            .expect(
                Method::PUT,
                &format!("{}/read", self.path),
                Some(&body),
                Retry::Always,
            )
            .await
            .map(drop)
    }
}

/// `GET /api/groups`.
pub async fn my_groups(connection: &Connection) -> Result<Vec<GroupSummary>, ClientError> {
    let body = connection
        .expect(Method::GET, "/api/groups", None, Retry::Always)
        .await?;
    serde_json::from_value(body)
        .map_err(|error| ClientError::Local(format!("unexpected group list: {error}")))
}

/// A fresh `client_id` for one message.
pub fn new_client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Percent-encodes one path segment: names may hold spaces, `?` or any Unicode.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_in_paths() {
        assert_eq!(encode_segment("ada lovelace?"), "ada%20lovelace%3F");
        assert_eq!(encode_segment("zoë"), "zo%C3%AB");
    }

    #[test]
    fn a_direct_conversation_holds_the_chats_with_that_user() {
        let handle = Handle::parse("bob#0042").expect("valid");
        let direct = Conversation::direct(&handle, "u2".into());
        assert!(direct.holds("dm:u1:u2"));
        assert!(!direct.holds("dm:u1:u3"));
        assert!(!direct.holds("u2"));
        assert_eq!(direct.path, "/api/users/bob/0042");
    }
}
