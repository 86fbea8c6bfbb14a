//! What the templates show: messages, sidebar entries, members and the open conversation, built from
//! the service's values for one signed-in user.

use crate::storage::{ChatKind, ChatSummary, GroupWithMembers, Message, UnixMillis, User};

use super::super::paths;
use super::super::session::SessionUser;
use super::super::views::{readable, rfc3339};

/// A moment as a page shows it: machine-readable for the script, readable before it runs.
pub(super) struct TimeItem {
    pub(super) iso: String,
    pub(super) readable: String,
}

impl TimeItem {
    pub(super) fn new(at: UnixMillis) -> Self {
        TimeItem {
            iso: rfc3339(at),
            readable: readable(at),
        }
    }
}

/// The message a reply quotes.
pub(super) struct QuoteItem {
    pub(super) id: String,
    pub(super) sender: String,
    pub(super) excerpt: String,
}

pub(super) struct ReactionItem {
    pub(super) emoji: String,
    pub(super) count: u64,
    pub(super) me: bool,
}

/// A message as the pages show it.
pub(super) struct MessageItem {
    pub(super) id: String,
    pub(super) content: String,
    pub(super) sender_id: String,
    pub(super) sender_username: String,
    pub(super) sender_tag: String,
    pub(super) mine: bool,
    pub(super) created_iso: String,
    pub(super) created_readable: String,
    pub(super) edited_iso: Option<String>,
    pub(super) reply: Option<QuoteItem>,
    pub(super) reactions: Vec<ReactionItem>,
    pub(super) epoch: u64,
}

impl MessageItem {
    pub(super) fn new(message: &Message, me: &SessionUser) -> Self {
        MessageItem {
            id: message.id.to_string(),
            content: message.content.clone(),
            sender_id: message.sender.id.to_string(),
            sender_username: message.sender.username.clone(),
            sender_tag: message.sender.tag.to_string(),
            mine: message.sender.id == me.id,
            created_iso: rfc3339(message.created_at),
            created_readable: readable(message.created_at),
            edited_iso: message.edited_at.map(rfc3339),
            reply: message.reply_to.as_ref().map(|quote| QuoteItem {
                id: quote.id.to_string(),
                sender: quote.sender.username.clone(),
                excerpt: quote.excerpt.clone(),
            }),
            reactions: message
                .reactions
                .iter()
                .map(|reaction| ReactionItem {
                    emoji: reaction.emoji.clone(),
                    count: u64::from(reaction.count),
                    me: reaction.me,
                })
                .collect(),
            epoch: message.epoch.0,
        }
    }
}

/// One conversation in the sidebar.
pub(super) struct ChatItem {
    /// The chat's id as messages and events name it (a group id, or `dm:<id>:<id>`).
    pub(super) chat: String,
    pub(super) kind: &'static str,
    pub(super) name: String,
    pub(super) tag: Option<String>,
    pub(super) url: String,
    /// The last message, with who wrote it (`You: …`, `bob: …`).
    pub(super) preview: Option<String>,
    pub(super) time: Option<TimeItem>,
    pub(super) unread: u64,
    pub(super) read_epoch: u64,
    pub(super) activity_epoch: u64,
}

impl ChatItem {
    pub(super) fn new(summary: &ChatSummary, me: &SessionUser) -> Self {
        let (kind, name, tag, url) = match &summary.kind {
            ChatKind::Group { id, name } => ("group", name.clone(), None, format!("/groups/{id}")),
            ChatKind::Direct { user } => (
                "direct",
                user.username.clone(),
                Some(user.tag.to_string()),
                paths::chat_page(&user.username, user.tag),
            ),
        };
        ChatItem {
            chat: summary.chat.to_string(),
            kind,
            name,
            tag,
            url,
            preview: summary
                .last_message
                .as_ref()
                .map(|message| preview(message, me)),
            time: summary
                .last_message
                .as_ref()
                .map(|message| TimeItem::new(message.created_at)),
            unread: summary.unread,
            read_epoch: summary.read_epoch.0,
            activity_epoch: summary.activity_epoch.0,
        }
    }
}

/// `You: …` or `bob: …`: what the sidebar shows of a chat's last message.
fn preview(message: &Message, me: &SessionUser) -> String {
    if message.sender.id == me.id {
        format!("You: {}", message.content)
    } else {
        format!("{}: {}", message.sender.username, message.content)
    }
}

pub(super) struct MemberItem {
    pub(super) id: String,
    pub(super) username: String,
    pub(super) tag: String,
    pub(super) chat_url: String,
    pub(super) is_me: bool,
    pub(super) is_creator: bool,
    /// Holds a live connection somewhere (the page's script keeps it current).
    pub(super) online: bool,
}

pub(super) fn member_items(
    group: &GroupWithMembers,
    me: &SessionUser,
    presence: &crate::presence::Presence,
) -> Vec<MemberItem> {
    group
        .members
        .iter()
        .map(|member: &User| MemberItem {
            id: member.id.to_string(),
            username: member.username.clone(),
            tag: member.tag.to_string(),
            chat_url: paths::chat_page(&member.username, member.tag),
            is_me: member.id == me.id,
            is_creator: member.id == group.group.creator,
            online: presence.is_online(&member.id),
        })
        .collect()
}

/// The open conversation's header, composer and script hooks.
pub(super) struct ConversationItem {
    pub(super) kind: &'static str,
    pub(super) chat: String,
    pub(super) title: String,
    pub(super) tag: Option<String>,
    /// The conversation's API path (`/api/groups/{id}`, `/api/users/{name}/{tag}`).
    pub(super) api: String,
    /// Where the composer posts without the script.
    pub(super) send: String,
    pub(super) page_size: u32,
    pub(super) at_start: bool,
    /// A fresh idempotency key for the form: posting it twice sends one message.
    pub(super) client_id: String,
    /// The text of a send that failed, put back in the box.
    pub(super) draft: String,
}

/// A group conversation's members panel.
pub(super) struct GroupPanel {
    pub(super) members: Vec<MemberItem>,
    pub(super) i_created_it: bool,
    /// Rendered open (after adding a member, or when adding failed).
    pub(super) open: bool,
    pub(super) handle: String,
}
