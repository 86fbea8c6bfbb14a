//! The validation limits of DESIGN §6 as types: once a value is a [`Username`], [`GroupName`],
//! [`Content`], [`Password`] or [`Page`], it is known to be acceptable ("parse, don't validate").
//!
//! Choices: names are trimmed of surrounding whitespace and then must be 1 to 32 characters (Unicode scalar
//! values) without control characters; a username also excludes `#` and `/`, which would be ambiguous in
//! `name#1234` and in the `/users/{username}/{tag}` paths. Usernames are case-sensitive: the tag already
//! tells two users apart. Content is stored exactly as sent (never trimmed), 1 to 4000 characters, not only
//! whitespace, and without control characters other than newline, carriage return and tab. Passwords are
//! 8 characters to 72 bytes: bcrypt ignores everything after byte 72, so a longer password would be
//! silently weakened; it is refused instead.

use crate::storage::Epoch;

use super::error::ServiceError;

/// Longest username or group name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest message, in characters.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes (bcrypt's limit).
pub const MAX_PASSWORD_BYTES: usize = 72;
/// Page size when the client gives none.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// Largest page; a bigger `limit` is cut to this.
pub const MAX_PAGE_LIMIT: u32 = 500;

fn name(text: &str, what: &str) -> Result<String, ServiceError> {
    let trimmed = text.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(ServiceError::invalid(format!("{what} must not be empty")));
    }
    if length > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(format!(
            "{what} must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ServiceError::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A valid username (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        let name = name(text, "username")?;
        if name.contains(['#', '/']) {
            return Err(ServiceError::invalid(
                "username must not contain '#' or '/'",
            ));
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid group name (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        name(text, "group name").map(GroupName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A valid message body, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Content(String);

impl Content {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        let length = text.chars().count();
        if length == 0 || text.trim().is_empty() {
            return Err(ServiceError::invalid("message must not be empty"));
        }
        if length > MAX_CONTENT_CHARS {
            return Err(ServiceError::invalid(format!(
                "message must be at most {MAX_CONTENT_CHARS} characters"
            )));
        }
        if text
            .chars()
            .any(|character| character.is_control() && !matches!(character, '\n' | '\r' | '\t'))
        {
            return Err(ServiceError::invalid(
                "message must not contain control characters",
            ));
        }
        Ok(Content(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A password that may be hashed: 8 characters to 72 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ServiceError::invalid(format!(
                "password must be at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(ServiceError::invalid(format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(Password(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Which slice of a chat's history to return: the newest `limit` messages below `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before: Option<Epoch>,
    pub limit: u32,
}

impl Page {
    /// `limit` defaults to 50 and is cut to 500; a limit of 0 is refused (it could only return nothing).
    pub fn parse(before: Option<Epoch>, limit: Option<u32>) -> Result<Self, ServiceError> {
        let limit = match limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(0) => return Err(ServiceError::invalid("limit must be at least 1")),
            Some(limit) => limit.min(MAX_PAGE_LIMIT),
        };
        Ok(Page { before, limit })
    }
}

/// One emoji, as a reaction: exactly one emoji of the Unicode emoji list, with or without its variation
/// selector, stored in its fully qualified form so that "❤" and "❤️" are the same reaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(&'static str);

impl Emoji {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        emojis::get(text)
            .map(|emoji| Emoji(emoji.as_str()))
            .ok_or_else(|| ServiceError::invalid("a reaction must be exactly one emoji"))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_is_one_emoji_in_its_fully_qualified_form() {
        assert_eq!(Emoji::parse("👍").map(|emoji| emoji.as_str()), Ok("👍"));
        assert_eq!(
            Emoji::parse("\u{2764}").map(|emoji| emoji.as_str()),
            Ok("\u{2764}\u{fe0f}")
        );
        assert_eq!(Emoji::parse("👍🏽").map(|emoji| emoji.as_str()), Ok("👍🏽"));
        for bad in ["", "a", "👍👍", " 👍", "👍 ", ":+1:", "\u{fe0f}"] {
            assert!(is_invalid(Emoji::parse(bad)), "{bad:?} was accepted");
        }
    }

    fn is_invalid<T>(result: Result<T, ServiceError>) -> bool {
        matches!(result, Err(ServiceError::Invalid(_)))
    }

    #[test]
    fn names_are_trimmed_and_hold_one_to_thirty_two_characters() {
        assert_eq!(
            Username::parse("  alice ").map(|name| name.0),
            Ok("alice".into())
        );
        assert!(Username::parse(&"é".repeat(32)).is_ok());
        assert!(is_invalid(Username::parse(&"é".repeat(33))));
        assert!(is_invalid(Username::parse("   ")));
        assert!(is_invalid(GroupName::parse("")));
        assert!(GroupName::parse("Rust #general / news").is_ok());
    }

    #[test]
    fn names_refuse_control_characters_and_usernames_refuse_hash_and_slash() {
        assert!(is_invalid(Username::parse("al\u{0}ice")));
        assert!(is_invalid(GroupName::parse("tab\there")));
        assert!(is_invalid(Username::parse("alice#1234")));
        assert!(is_invalid(Username::parse("a/b")));
    }

    #[test]
    fn content_is_one_to_four_thousand_characters_kept_as_sent() {
        assert_eq!(
            Content::parse("  hi\n").map(Content::into_string),
            Ok("  hi\n".into())
        );
        assert!(Content::parse(&"ü".repeat(4000)).is_ok());
        assert!(is_invalid(Content::parse(&"ü".repeat(4001))));
        assert!(is_invalid(Content::parse("")));
        assert!(is_invalid(Content::parse(" \n\t")));
        assert!(is_invalid(Content::parse("bell\u{7}")));
        assert!(Content::parse("<script>alert(1)</script>").is_ok());
    }

    #[test]
    fn passwords_hold_eight_characters_to_seventy_two_bytes() {
        assert!(is_invalid(Password::parse("short")));
        assert!(Password::parse("eight ch").is_ok());
        assert!(Password::parse(&"x".repeat(72)).is_ok());
        assert!(is_invalid(Password::parse(&"x".repeat(73))));
        assert!(is_invalid(Password::parse(&"é".repeat(40))));
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw")),
            "Ok(Password(<redacted>))"
        );
    }

    #[test]
    fn a_page_defaults_to_fifty_is_capped_at_five_hundred_and_refuses_zero() {
        assert_eq!(Page::parse(None, None).map(|page| page.limit), Ok(50));
        assert_eq!(
            Page::parse(None, Some(10_000)).map(|page| page.limit),
            Ok(500)
        );
        assert_eq!(Page::parse(None, Some(7)).map(|page| page.limit), Ok(7));
        assert!(is_invalid(Page::parse(None, Some(0))));
    }
}
