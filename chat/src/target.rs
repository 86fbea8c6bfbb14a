//! What a command talks to: a user named `name#1234`, or a group named by its id or its exact name.
//! Parsing is pure; resolving a group name needs the caller's groups.

use std::fmt;

use crate::api::GroupSummary;
use crate::error::ClientError;

/// `name#1234`: a username and its four-digit tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub username: String,
    pub tag: String,
}

impl Handle {
    pub fn parse(text: &str) -> Result<Handle, ClientError> {
        let malformed = || ClientError::MalformedHandle(text.to_owned());
        let (username, tag) = text.rsplit_once('#').ok_or_else(malformed)?;
        let username = username.trim();
        let valid_tag = tag.len() == 4 && tag.bytes().all(|byte| byte.is_ascii_digit());
        if username.is_empty() || username.contains(['#', '/']) || !valid_tag {
            return Err(malformed());
        }
        Ok(Handle {
            username: username.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.username, self.tag)
    }
}

/// A conversation as the command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(Handle),
    /// A group id or a group's exact name; which one is decided against the caller's groups.
    Group(String),
}

impl Target {
    /// `name#1234` is a user. Text with a `#` that is not a valid handle is still a group name (group
    /// names may hold `#`), unless what follows the last `#` is all digits: then it was meant as a tag
    /// and saying so beats "unknown group".
    pub fn parse(text: &str) -> Result<Target, ClientError> {
        if text.trim().is_empty() {
            return Err(ClientError::Usage(
                "the conversation must not be empty".into(),
            ));
        }
        match Handle::parse(text) {
            Ok(handle) => Ok(Target::User(handle)),
            Err(error) => match text.rsplit_once('#') {
                Some((_, tag)) if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()) => {
                    Err(error)
                }
                _ => Ok(Target::Group(text.to_owned())),
            },
        }
    }
}

/// The group `text` names among `groups`: its id first, else its exact name if only one has it.
pub fn resolve_group<'g>(
    groups: &'g [GroupSummary],
    text: &str,
) -> Result<&'g GroupSummary, ClientError> {
    if let Some(group) = groups.iter().find(|group| group.id == text) {
        return Ok(group);
    }
    let named: Vec<&GroupSummary> = groups.iter().filter(|group| group.name == text).collect();
    match named.as_slice() {
        [group] => Ok(group),
        [] => Err(ClientError::UnknownGroup(text.to_owned())),
        _ => Err(ClientError::AmbiguousGroup {
            name: text.to_owned(),
            count: named.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_and_four_digits_is_a_user() {
        assert_eq!(
            Target::parse("ada#0218").expect("valid"),
            Target::User(Handle {
                username: "ada".into(),
                tag: "0218".into()
            })
        );
    }

    #[test]
    fn a_tag_that_is_not_four_digits_is_malformed() {
        for text in ["ada#12", "ada#12345", "#0218", "a/b#0218"] {
            assert!(
                matches!(Target::parse(text), Err(ClientError::MalformedHandle(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn other_text_is_a_group_even_with_a_hash() {
        assert_eq!(
            Target::parse("team#blue").expect("valid"),
            Target::Group("team#blue".into())
        );
        assert_eq!(
            Target::parse("crew").expect("valid"),
            Target::Group("crew".into())
        );
    }

    fn groups() -> Vec<GroupSummary> {
        [("g1", "crew"), ("g2", "twins"), ("g3", "twins")]
            .into_iter()
            .map(|(id, name)| GroupSummary {
                id: id.into(),
                name: name.into(),
            })
            .collect()
    }

    #[test]
    fn a_group_is_found_by_id_or_by_a_unique_name() {
        let groups = groups();
        assert_eq!(resolve_group(&groups, "g2").expect("by id").id, "g2");
        assert_eq!(resolve_group(&groups, "crew").expect("by name").id, "g1");
    }

    #[test]
    fn a_shared_or_missing_name_is_refused() {
        let groups = groups();
        assert!(matches!(
            resolve_group(&groups, "twins"),
            Err(ClientError::AmbiguousGroup { count: 2, .. })
        ));
        assert!(matches!(
            resolve_group(&groups, "nobody"),
            Err(ClientError::UnknownGroup(_))
        ));
    }
}
