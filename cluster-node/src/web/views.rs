//! The JSON shapes of DESIGN §6, built from the service's records, and timestamp rendering.
//!
//! Timestamps go out as RFC 3339 UTC text with milliseconds (`2025-03-01T14:05:09.123Z`): readable in a
//! log, and `new Date(...)` in a browser parses them.

use serde::Serialize;

use crate::service::ephemeral::{EphemeralGroupView, EphemeralMessage};
use crate::storage::{
    ChatId, ChatKind, ChatSummary, Epoch, Group, GroupId, GroupWithMembers, Message, MessageId,
    Quote, Reaction, UnixMillis, User, UserId, UserRef, UserTag,
};

/// `{"id","username","tag"}`: the answer of register, login and `/api/me`, and a message's sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id,
            username: user.username.clone(),
            tag: user.tag,
        }
    }
}

impl From<&UserRef> for UserView {
    fn from(user: &UserRef) -> Self {
        UserView {
            id: user.id,
            username: user.username.clone(),
            tag: user.tag,
        }
    }
}

/// `{"id","username","tag","created_at"}`: `GET /api/users/{username}/{tag}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
    pub created_at: String,
}

impl From<&User> for ProfileView {
    fn from(user: &User) -> Self {
        ProfileView {
            id: user.id,
            username: user.username.clone(),
            tag: user.tag,
            created_at: rfc3339(user.created_at),
        }
    }
}

/// `{"id","chat","sender":{"id","username","tag"},"content","created_at","epoch","edited_at",
/// "reply_to","reactions"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: MessageId,
    pub chat: ChatId,
    pub sender: UserView,
    pub content: String,
    pub created_at: String,
    #[schema(value_type = u64)]
    pub epoch: Epoch,
    pub edited_at: Option<String>,
    /// `null` for a message that answers none, and when the one it answers was deleted.
    pub reply_to: Option<QuoteView>,
    pub reactions: Vec<Reaction>,
}

/// `{"id","sender","excerpt"}`: the message a reply answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuoteView {
    pub id: MessageId,
    pub sender: UserView,
    pub excerpt: String,
}

impl From<&Quote> for QuoteView {
    fn from(quote: &Quote) -> Self {
        QuoteView {
            id: quote.id,
            sender: UserView::from(&quote.sender),
            excerpt: quote.excerpt.clone(),
        }
    }
}

impl From<&Message> for MessageView {
    fn from(message: &Message) -> Self {
        MessageView {
            id: message.id,
            chat: message.chat,
            sender: UserView::from(&message.sender),
            content: message.content.clone(),
            created_at: rfc3339(message.created_at),
            epoch: message.epoch,
            edited_at: message.edited_at.map(rfc3339),
            reply_to: message.reply_to.as_ref().map(QuoteView::from),
            reactions: message.reactions.clone(),
        }
    }
}

/// A group in the caller's list: `{"id","name","creator","created_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub creator: UserId,
    pub created_at: String,
}

impl From<&Group> for GroupView {
    fn from(group: &Group) -> Self {
        GroupView {
            id: group.id,
            name: group.name.clone(),
            creator: group.creator,
            created_at: rfc3339(group.created_at),
        }
    }
}

/// A group with its members and which of them are online:
/// `{"id","name","creator","created_at","members":[user...],"online":[user id...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupDetailView {
    #[serde(flatten)]
    pub group: GroupView,
    pub members: Vec<UserView>,
    /// The members with a live event stream on some input node, as this node knows it (a second
    /// or two behind the cluster); not stored anywhere.
    #[schema(value_type = Vec<String>)]
    pub online: Vec<UserId>,
    /// Present and true for an ephemeral group (nothing of it is stored; see `/api/ephemeral/{id}`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
}

impl GroupDetailView {
    pub fn new(group: &GroupWithMembers, presence: &crate::presence::Presence) -> Self {
        let members: Vec<UserView> = group.members.iter().map(UserView::from).collect();
        GroupDetailView {
            group: GroupView::from(&group.group),
            online: online_of(&members, presence),
            members,
            ephemeral: false,
        }
    }

    /// An ephemeral group as the writer holds it.
    pub fn ephemeral(group: &EphemeralGroupView, presence: &crate::presence::Presence) -> Self {
        let members: Vec<UserView> = group.members.iter().map(UserView::from).collect();
        GroupDetailView {
            group: GroupView {
                id: group.id,
                name: group.name.clone(),
                creator: group.creator,
                created_at: rfc3339(group.created_at),
            },
            online: online_of(&members, presence),
            members,
            ephemeral: true,
        }
    }
}

/// The ids of `members` online as `presence` knows it.
fn online_of(members: &[UserView], presence: &crate::presence::Presence) -> Vec<UserId> {
    members
        .iter()
        .map(|member| member.id)
        .filter(|id| presence.is_online(id))
        .collect()
}

/// An ephemeral group with the messages the writer still holds:
/// `{"id","name","creator","created_at","members","online","ephemeral":true,"messages":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EphemeralGroupDetailView {
    #[serde(flatten)]
    pub group: GroupDetailView,
    pub messages: Vec<EphemeralMessageView>,
}

/// A message of an ephemeral group: `{"id","group","seq","sender","content","created_at"}`; `seq` is
/// its place in the group's one order (1, 2, 3… as the writer numbered them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EphemeralMessageView {
    pub id: MessageId,
    pub group: GroupId,
    pub seq: u64,
    pub sender: UserView,
    pub content: String,
    pub created_at: String,
}

impl From<&EphemeralMessage> for EphemeralMessageView {
    fn from(message: &EphemeralMessage) -> Self {
        EphemeralMessageView {
            id: message.id,
            group: message.group,
            seq: message.seq,
            sender: UserView::from(&message.sender),
            content: message.content.clone(),
            created_at: rfc3339(message.created_at),
        }
    }
}

/// `{"id","name"}`: the group of a conversation in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupNameView {
    pub id: GroupId,
    pub name: String,
}

/// One conversation of `GET /api/chats`: `{"kind":"group","chat","group":{"id","name"},...}` or
/// `{"kind":"direct","chat","user":{"id","username","tag"},...}`, each with `last_message`, `unread`,
/// `read_epoch` and `activity_epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatView {
    #[serde(flatten)]
    pub kind: ChatKindView,
    pub chat: ChatId,
    pub last_message: Option<MessageView>,
    pub unread: u64,
    #[schema(value_type = u64)]
    pub read_epoch: Epoch,
    #[schema(value_type = u64)]
    pub activity_epoch: Epoch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatKindView {
    Group { group: GroupNameView },
    Direct { user: UserView },
}

impl From<&ChatSummary> for ChatView {
    fn from(summary: &ChatSummary) -> Self {
        ChatView {
            kind: match &summary.kind {
                ChatKind::Group { id, name } => ChatKindView::Group {
                    group: GroupNameView {
                        id: *id,
                        name: name.clone(),
                    },
                },
                ChatKind::Direct { user } => ChatKindView::Direct {
                    user: UserView::from(user),
                },
            },
            chat: summary.chat,
            last_message: summary.last_message.as_ref().map(MessageView::from),
            unread: summary.unread,
            read_epoch: summary.read_epoch,
            activity_epoch: summary.activity_epoch,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian `(year, month, day)` (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both fit: day is 1..=31 and month 1..=12 by construction.
    (year, month as u32, day as u32)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn parts(at: UnixMillis) -> Parts {
    let millis = at.0.rem_euclid(1000);
    let seconds = at.0.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    Parts {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: of_day % 3600 / 60,
        second: of_day % 60,
        millis,
    }
}

/// `2025-03-01T14:05:09.123Z`. Written digit by digit: every message of every page has one, and
/// `format!` made them 7 % of a read's CPU.
pub fn rfc3339(at: UnixMillis) -> String {
    let p = parts(at);
    if !(0..=9999).contains(&p.year) {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
        );
    }
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, value: i64| {
        let mut value = value;
        for index in (at..at + width).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, p.year);
    put(5, 2, i64::from(p.month));
    put(8, 2, i64::from(p.day));
    put(11, 2, p.hour);
    put(14, 2, p.minute);
    put(17, 2, p.second);
    put(20, 3, p.millis);
    text.iter().map(|&byte| char::from(byte)).collect()
}

/// `2025-03-01 14:05 UTC`: what a page shows before its script localises it.
pub fn readable(at: UnixMillis) -> String {
    let p = parts(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        p.year, p.month, p.day, p.hour, p.minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(UnixMillis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UnixMillis(1_709_301_909_123)),
            "2024-03-01T14:05:09.123Z"
        );
        assert_eq!(
            rfc3339(UnixMillis(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(rfc3339(UnixMillis(-1)), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            readable(UnixMillis(1_709_301_909_123)),
            "2024-03-01 14:05 UTC"
        );
    }
}
