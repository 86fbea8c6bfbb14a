//! The JSON shapes of the cluster's API that the client reads (README "JSON API"); fields it does not
//! use are ignored, so the server may add more.

use serde::Deserialize;

/// `{"id","username","tag"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRef {
    pub id: String,
    pub username: String,
    pub tag: String,
}

impl UserRef {
    /// `name#1234`.
    pub fn handle(&self) -> String {
        format!("{}#{}", self.username, self.tag)
    }
}

/// A message, as posted, listed and streamed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    pub id: String,
    /// The group's id, or `dm:<user id>:<user id>`.
    pub chat: String,
    pub sender: UserRef,
    pub content: String,
    pub created_at: String,
    pub epoch: u64,
    #[serde(default)]
    pub edited_at: Option<String>,
}

impl Message {
    /// `HH:MM:SS` of `created_at` (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        self.created_at.get(11..19).unwrap_or(&self.created_at)
    }
}

/// A group as `GET /api/groups` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupSummary {
    pub id: String,
    pub name: String,
}

/// One conversation of `GET /api/chats`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatEntry {
    pub kind: String,
    pub chat: String,
    #[serde(default)]
    pub group: Option<GroupSummary>,
    #[serde(default)]
    pub user: Option<UserRef>,
    #[serde(default)]
    pub last_message: Option<Message>,
    #[serde(default)]
    pub unread: u64,
    #[serde(default)]
    pub read_epoch: u64,
    #[serde(default)]
    pub activity_epoch: u64,
}

impl ChatEntry {
    /// `#crew` for a group, `@bob#0042` for a direct chat.
    pub fn title(&self) -> String {
        match (&self.group, &self.user) {
            (Some(group), _) => format!("#{}", group.name),
            (None, Some(user)) => format!("@{}", user.handle()),
            (None, None) => self.chat.clone(),
        }
    }
}

/// `{"chats": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatList {
    pub chats: Vec<ChatEntry>,
}

/// Whether a chat id is the direct chat with the user `user_id`.
pub fn is_direct_with(chat: &str, user_id: &str) -> bool {
    chat.strip_prefix("dm:")
        .is_some_and(|pair| pair.split(':').any(|id| id == user_id))
}
