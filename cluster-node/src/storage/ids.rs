//! Identities and small values that the storage layer persists: uuids of users, groups and messages, the
//! four-digit user tag, the id of a chat, a client's idempotency key and wall-clock instants.
//!
//! Each is a newtype with `parse` so that a group id can never be passed where a user id is expected, and
//! each knows how it is stored in SQLite (uuids as lowercase hyphenated text, tags as integers). Data
//! epochs and terms are the overlay's [`Epoch`] and [`Term`]: the election compares exactly what storage
//! reports, so there is one type for each in the whole node.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Sqlite, Type};
use uuid::Uuid;

pub use overlay::{Epoch, Term};

/// Why a textual id or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    #[error("not a valid id: {0:?}")]
    Uuid(String),
    #[error("a tag is exactly four digits, got {0:?}")]
    Tag(String),
    #[error("not a valid chat id: {0:?}")]
    Chat(String),
}

/// Declares a uuid-backed id: serde as its text, SQLite as lowercase hyphenated text.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id; only the writer generates ids, replicas copy them.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }

            pub fn parse(text: &str) -> Result<Self, ParseIdError> {
                Uuid::parse_str(text.trim())
                    .map($name)
                    .map_err(|_| ParseIdError::Uuid(text.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl Type<Sqlite> for $name {
            fn type_info() -> SqliteTypeInfo {
                <String as Type<Sqlite>>::type_info()
            }
        }

        impl<'q> Encode<'q, Sqlite> for $name {
            fn encode_by_ref(
                &self,
                args: &mut Vec<SqliteArgumentValue<'q>>,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<'q, Sqlite>>::encode(self.to_string(), args)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
                Ok($name(Uuid::parse_str(text)?))
            }
        }
    };
}

uuid_id!(
    /// A registered user.
    UserId
);
uuid_id!(
    /// A group chat.
    GroupId
);
uuid_id!(
    /// One message, direct or in a group.
    MessageId
);

/// The four digits after a username (`alice#0042`); `(username, tag)` identifies a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserTag(u16);

impl UserTag {
    /// How many tags exist for one username.
    pub const COUNT: u16 = 10_000;

    /// The tag with this number, if it is below 10,000.
    pub fn new(number: u16) -> Option<Self> {
        (number < Self::COUNT).then_some(UserTag(number))
    }

    /// Exactly four ASCII digits: `"0042"` is a tag, `"42"` and `"00042"` are not.
    pub fn parse(text: &str) -> Result<Self, ParseIdError> {
        let text = text.trim();
        if text.len() == 4 && text.bytes().all(|byte| byte.is_ascii_digit()) {
            text.parse()
                .map(UserTag)
                .map_err(|_| ParseIdError::Tag(text.to_owned()))
        } else {
            Err(ParseIdError::Tag(text.to_owned()))
        }
    }

    pub fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for UserTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl FromStr for UserTag {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// On the wire a tag is its four-digit text, as users see it.
impl Serialize for UserTag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserTag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UserTag::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Type<Sqlite> for UserTag {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for UserTag {
    fn encode_by_ref(
        &self,
        args: &mut Vec<SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(i64::from(self.0), args)
    }
}

impl<'r> Decode<'r, Sqlite> for UserTag {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let number = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        u16::try_from(number)
            .ok()
            .and_then(UserTag::new)
            .ok_or_else(|| format!("tag out of range: {number}").into())
    }
}

/// The conversation a message belongs to: a group, or the direct chat of two users.
///
/// Stored (and shown) as text: the group's id, or `dm:<smaller user id>:<larger user id>`. Ordering the
/// pair makes the key canonical, so both users' histories are one index range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChatId {
    Group(GroupId),
    /// Always `(smaller, larger)`; build it with [`ChatId::direct`].
    Direct(UserId, UserId),
}

impl ChatId {
    /// The direct chat of two users, whichever of them asks.
    pub fn direct(one: UserId, other: UserId) -> Self {
        if one <= other {
            ChatId::Direct(one, other)
        } else {
            ChatId::Direct(other, one)
        }
    }

    pub fn parse(text: &str) -> Result<Self, ParseIdError> {
        let invalid = || ParseIdError::Chat(text.to_owned());
        match text.strip_prefix("dm:") {
            Some(pair) => {
                let (first, second) = pair.split_once(':').ok_or_else(invalid)?;
                let first = UserId::parse(first).map_err(|_| invalid())?;
                let second = UserId::parse(second).map_err(|_| invalid())?;
                Ok(ChatId::direct(first, second))
            }
            None => GroupId::parse(text)
                .map(ChatId::Group)
                .map_err(|_| invalid()),
        }
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatId::Group(group) => group.fmt(f),
            ChatId::Direct(first, second) => write!(f, "dm:{first}:{second}"),
        }
    }
}

impl Serialize for ChatId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChatId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ChatId::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Type<Sqlite> for ChatId {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for ChatId {
    fn encode_by_ref(
        &self,
        args: &mut Vec<SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.to_string(), args)
    }
}

impl<'r> Decode<'r, Sqlite> for ChatId {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(ChatId::parse(text)?)
    }
}

/// A key the client chooses for one message so that a retried send is recognised (unique per sender).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Longest accepted key, in bytes: enough for a uuid or a ULID with a prefix.
    pub const MAX_LEN: usize = 64;

    /// 1 to 64 bytes of printable ASCII.
    pub fn parse(text: &str) -> Option<Self> {
        let acceptable = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|byte| byte.is_ascii_graphic());
        acceptable.then(|| ClientId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A wall-clock instant in milliseconds since the unix epoch (UTC), as stored. Chosen by the writer and
/// copied by replicas; ordering of data follows epochs, not these.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The system clock now; a clock before 1970 reads as 0.
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_millis())
            .unwrap_or(0);
        UnixMillis(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_exactly_four_digits() {
        assert_eq!(UserTag::parse("0042").map(UserTag::number), Ok(42));
        assert_eq!(UserTag::parse("9999").map(UserTag::number), Ok(9999));
        for bad in ["42", "00042", "12a4", "", "-001", "+123"] {
            assert!(UserTag::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            UserTag::new(7).map(|tag| tag.to_string()),
            Some("0007".into())
        );
        assert_eq!(UserTag::new(10_000), None);
    }

    #[test]
    fn a_direct_chat_id_is_the_same_from_both_sides() {
        let (alice, bob) = (UserId::random(), UserId::random());

        let from_alice = ChatId::direct(alice, bob);
        let from_bob = ChatId::direct(bob, alice);

        assert_eq!(from_alice, from_bob);
        assert_eq!(from_alice.to_string(), from_bob.to_string());
        assert_eq!(ChatId::parse(&from_alice.to_string()), Ok(from_alice));
    }

    #[test]
    fn a_group_chat_id_is_the_group_id() {
        let group = GroupId::random();

        let chat = ChatId::Group(group);

        assert_eq!(chat.to_string(), group.to_string());
        assert_eq!(ChatId::parse(&group.to_string()), Ok(chat));
    }

    #[test]
    fn client_ids_are_short_printable_ascii() {
        assert!(ClientId::parse("3f2a-retry-1").is_some());
        assert!(ClientId::parse("").is_none());
        assert!(ClientId::parse("has space").is_none());
        assert!(ClientId::parse(&"x".repeat(65)).is_none());
    }
}
