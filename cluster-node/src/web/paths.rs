//! Path segments in and out: what a `{id}` or `{tag}` segment names (text that names nothing is a 404,
//! never a 400, so a path cannot tell a malformed id from a missing one), and the page paths built from
//! a user. A leaf module, shared by the API and the pages.

use crate::storage::{GroupId, MessageId, UserTag};

use super::error::AppError;

/// A `{id}` segment of a group path; text that is not a uuid names no group.
pub(super) fn group(text: &str) -> Result<GroupId, AppError> {
    GroupId::parse(text).map_err(|_| AppError::NotFound("group not found".into()))
}

/// A `{id}` segment of a message path.
pub(super) fn message(text: &str) -> Result<MessageId, AppError> {
    MessageId::parse(text).map_err(|_| AppError::NotFound("message not found".into()))
}

/// A `{tag}` segment; a tag that is not four digits names no user.
pub(super) fn tag(text: &str) -> Result<UserTag, AppError> {
    UserTag::parse(text).map_err(|_| AppError::NotFound("user not found".into()))
}

/// Percent-encodes one path segment (a username may hold spaces, `?` or non-ASCII letters).
pub(super) fn encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `alice/0042`: a user's part of the page and API paths.
pub(super) fn user(username: &str, tag: UserTag) -> String {
    format!("{}/{tag}", encode_segment(username))
}

/// The page of the direct chat with a user.
pub(super) fn chat_page(username: &str, tag: UserTag) -> String {
    format!("/users/{}/chat", user(username, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
        assert_eq!(encode_segment("plain-name_1.x~"), "plain-name_1.x~");
        assert_eq!(
            chat_page("a b", UserTag::new(42).unwrap()),
            "/users/a%20b/0042/chat"
        );
    }

    #[test]
    fn a_segment_that_names_nothing_is_not_found() {
        assert!(matches!(group("not-a-uuid"), Err(AppError::NotFound(_))));
        assert!(matches!(message("x"), Err(AppError::NotFound(_))));
        assert!(matches!(tag("42"), Err(AppError::NotFound(_))));
        assert_eq!(tag("0042").map(|tag| tag.number()), Ok(42));
    }
}
