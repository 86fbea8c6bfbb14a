//! Messages as the API shows them, rendered to JSON once and reused while they stay the same: the
//! newest page of a chat is read again and again by every member, and building and serializing its
//! views was about a third of a read's CPU (docs/PERFORMANCE.md).
//!
//! A rendering is reused only for a message equal in every field to the one it was made from, the
//! viewer's own reactions (`me`) included, so it is always what rendering it now would give; an edit, a
//! reaction, a quote that changed or another viewer's reactions simply render again. At most
//! [`CAPACITY`] renderings are kept, the oldest first out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::storage::{Message, MessageId};

use super::views::MessageView;

/// Renderings kept (about 0.5 KB each with their message).
pub const CAPACITY: usize = 8192;

#[derive(Default)]
struct Kept {
    renderings: HashMap<MessageId, (Message, Vec<u8>)>,
    order: VecDeque<MessageId>,
}

/// The renderings of one web layer.
#[derive(Default)]
pub struct RenderedMessages {
    kept: Mutex<Kept>,
}

impl RenderedMessages {
    /// `messages` as the JSON array of their [`MessageView`]s, byte for byte what serializing
    /// `Vec<MessageView>` gives.
    pub fn page(&self, messages: &[Message]) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + messages.len() * 400);
        out.push(b'[');
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (index, message) in messages.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            match kept.renderings.get(&message.id) {
                Some((held, json)) if held == message => out.extend_from_slice(json),
                _ => {
                    let json = render(message);
                    out.extend_from_slice(&json);
                    kept.keep(message, json);
                }
            }
        }
        out.push(b']');
        out
    }
}

impl Kept {
    fn keep(&mut self, message: &Message, json: Vec<u8>) {
        if self
            .renderings
            .insert(message.id, (message.clone(), json))
            .is_none()
        {
            self.order.push_back(message.id);
            while self.order.len() > CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.renderings.remove(&oldest);
                }
            }
        }
    }
}

fn render(message: &Message) -> Vec<u8> {
    // A view of plain strings, numbers and ids always serializes.
    serde_json::to_vec(&MessageView::from(message)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ChatId, Epoch, GroupId, Reaction, UnixMillis, UserId, UserRef, UserTag};

    fn message(content: &str) -> Message {
        Message {
            id: MessageId::random(),
            chat: ChatId::Group(GroupId::random()),
            sender: UserRef {
                id: UserId::random(),
                username: "ada".into(),
                tag: UserTag::new(7).unwrap(),
            },
            receiver: None,
            content: content.into(),
            created_at: UnixMillis(1_709_301_909_123),
            epoch: Epoch(4),
            client_id: None,
            edited_at: None,
            reply_to: None,
            reactions: Vec::new(),
        }
    }

    fn plain(messages: &[Message]) -> Vec<u8> {
        let views: Vec<MessageView> = messages.iter().map(MessageView::from).collect();
        serde_json::to_vec(&views).unwrap()
    }

    #[test]
    fn a_page_is_what_serializing_its_views_gives_and_changes_render_again() {
        let rendered = RenderedMessages::default();
        let mut page = vec![message("one \"quoted\" ✓"), message("two")];

        assert_eq!(rendered.page(&[]), b"[]");
        assert_eq!(rendered.page(&page), plain(&page));
        assert_eq!(rendered.page(&page), plain(&page));
        // Edited, and seen by someone who reacted: the same ids, other JSON.
        page[0].content = "edited".into();
        page[0].edited_at = Some(UnixMillis(1_709_301_999_000));
        page[1].reactions = vec![Reaction {
            emoji: "👍".into(),
            count: 1,
            me: true,
        }];
        assert_eq!(rendered.page(&page), plain(&page));
        page[1].reactions[0].me = false;
        assert_eq!(rendered.page(&page), plain(&page));
    }

    #[test]
    fn only_the_newest_renderings_are_kept() {
        let rendered = RenderedMessages::default();
        let first = message("first");
        rendered.page(std::slice::from_ref(&first));
        for _ in 0..CAPACITY {
            rendered.page(&[message("more")]);
        }

        let kept = rendered.kept.lock().unwrap();
        assert_eq!(kept.renderings.len(), CAPACITY);
        assert!(!kept.renderings.contains_key(&first.id));
    }
}
