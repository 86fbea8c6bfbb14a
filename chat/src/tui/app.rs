//! The TUI's state and what keys and cluster events do to it, without a terminal or a network: every
//! input answers the [`Action`]s the runtime must carry out, so the behaviour is tested by feeding it
//! inputs and reading the state.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::api::{ChatEntry, GroupSummary, Message};
use crate::connection::Node;
use crate::conversation::{Conversation, new_client_id};
use crate::feed::FeedEvent;
use crate::target::Handle;

/// What the runtime must do after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read the recent messages of `chat`.
    Load { chat: String },
    /// Send `text` to `chat` once (`client_id` makes a retry harmless).
    Send {
        chat: String,
        text: String,
        client_id: String,
    },
    /// Move the read marker of `chat` to `epoch`.
    MarkRead { chat: String, epoch: u64 },
    /// Read the conversation list again (a new conversation appeared, membership changed).
    RefreshChats,
}

/// The live stream as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected {
        node: Node,
        /// How long the last failover took, once there was one.
        outage: Option<Duration>,
    },
    Reconnecting {
        from: Node,
        reason: String,
    },
    Failed(String),
}

/// One conversation in the list.
#[derive(Debug, Clone)]
pub struct Chat {
    pub chat: String,
    pub title: String,
    pub unread: u64,
    pub activity: u64,
    /// Oldest first, each message once.
    pub messages: Vec<Message>,
    pub loaded: bool,
    pub conversation: Conversation,
}

impl Chat {
    fn from_entry(entry: &ChatEntry) -> Option<Chat> {
        let conversation = match (&entry.group, &entry.user) {
            (Some(group), _) => Conversation::group(&GroupSummary {
                id: group.id.clone(),
                name: group.name.clone(),
            }),
            (None, Some(user)) => Conversation::direct(
                &Handle {
                    username: user.username.clone(),
                    tag: user.tag.clone(),
                },
                user.id.clone(),
            ),
            (None, None) => return None,
        };
        Some(Chat {
            chat: entry.chat.clone(),
            title: entry.title(),
            unread: entry.unread,
            activity: entry.activity_epoch,
            messages: Vec::new(),
            loaded: false,
            conversation,
        })
    }

    /// Adds `message` unless it is already here, keeping epoch order.
    fn insert(&mut self, message: Message) -> bool {
        if self.messages.iter().any(|known| known.id == message.id) {
            return false;
        }
        let at = self
            .messages
            .partition_point(|known| known.epoch <= message.epoch);
        self.activity = self.activity.max(message.epoch);
        self.messages.insert(at, message);
        true
    }

    fn newest_epoch(&self) -> Option<u64> {
        self.messages.last().map(|message| message.epoch)
    }
}

/// Everything the screen shows.
#[derive(Debug, Clone)]
pub struct App {
    /// `name#1234` of the signed-in user.
    pub me: String,
    me_id: String,
    /// Newest activity first, as the server orders them.
    pub chats: Vec<Chat>,
    /// The open conversation, by chat id (indexes move as activity reorders the list).
    pub open: Option<String>,
    pub input: String,
    pub link: Link,
    /// The last problem worth a line (a failed send), until the next key.
    pub notice: Option<String>,
    pub quit: bool,
}

impl App {
    pub fn new(me: String, me_id: String, entries: &[ChatEntry]) -> App {
        let chats: Vec<Chat> = entries.iter().filter_map(Chat::from_entry).collect();
        App {
            me,
            me_id,
            open: chats.first().map(|chat| chat.chat.clone()),
            chats,
            input: String::new(),
            link: Link::Connecting,
            notice: None,
            quit: false,
        }
    }

    /// What to do first: load the open conversation.
    pub fn start(&mut self) -> Vec<Action> {
        self.opened()
    }

    pub fn open_chat(&self) -> Option<&Chat> {
        let open = self.open.as_deref()?;
        self.chats.iter().find(|chat| chat.chat == open)
    }

    fn chat_mut(&mut self, id: &str) -> Option<&mut Chat> {
        self.chats.iter_mut().find(|chat| chat.chat == id)
    }

    pub fn selected_index(&self) -> Option<usize> {
        let open = self.open.as_deref()?;
        self.chats.iter().position(|chat| chat.chat == open)
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.notice = None;
        let control = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if control => self.quit = true,
            KeyCode::Up | KeyCode::BackTab => return self.move_selection(-1),
            KeyCode::Down | KeyCode::Tab => return self.move_selection(1),
            KeyCode::Enter => return self.submit(),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) if !control => self.input.push(c),
            _ => {}
        }
        Vec::new()
    }

    fn move_selection(&mut self, step: isize) -> Vec<Action> {
        if self.chats.is_empty() {
            return Vec::new();
        }
        let count = self.chats.len() as isize;
        let from = self.selected_index().unwrap_or(0) as isize;
        let to = (from + step).rem_euclid(count) as usize;
        self.open = Some(self.chats[to].chat.clone());
        self.opened()
    }

    /// What opening the current conversation needs: its messages, or its read marker moved.
    fn opened(&mut self) -> Vec<Action> {
        let Some(chat) = self.open_chat() else {
            return Vec::new();
        };
        if !chat.loaded {
            return vec![Action::Load {
                chat: chat.chat.clone(),
            }];
        }
        self.read_open()
    }

    /// An open conversation counts as read: its marker goes to its newest message.
    fn read_open(&mut self) -> Vec<Action> {
        let Some(open) = self.open.clone() else {
            return Vec::new();
        };
        let Some(chat) = self.chat_mut(&open) else {
            return Vec::new();
        };
        let Some(epoch) = chat.newest_epoch() else {
            return Vec::new();
        };
        if chat.unread == 0 {
            return Vec::new();
        }
        chat.unread = 0;
        vec![Action::MarkRead { chat: open, epoch }]
    }

    fn submit(&mut self) -> Vec<Action> {
        let text = self.input.trim().to_owned();
        let Some(chat) = self.open.clone() else {
            self.notice = Some("no conversation open".into());
            return Vec::new();
        };
        if text.is_empty() {
            return Vec::new();
        }
        self.input.clear();
        vec![Action::Send {
            chat,
            text,
            client_id: new_client_id(),
        }]
    }

    pub fn on_feed(&mut self, event: FeedEvent) -> Vec<Action> {
        match event {
            FeedEvent::Connected { node, outage } => {
                self.link = Link::Connected { node, outage };
                Vec::new()
            }
            FeedEvent::Lost { node, reason } => {
                self.link = Link::Reconnecting { from: node, reason };
                Vec::new()
            }
            FeedEvent::Message { message, .. } => self.on_message(message),
            FeedEvent::Other { kind, .. } if kind == "membership" => vec![Action::RefreshChats],
            FeedEvent::Other { .. } => Vec::new(),
        }
    }

    pub fn on_feed_failed(&mut self, problem: String) {
        self.link = Link::Failed(problem);
    }

    /// A message from the stream (or the answer to our own send).
    pub fn on_message(&mut self, message: Message) -> Vec<Action> {
        let mine = message.sender.id == self.me_id;
        let is_open = self.open.as_deref() == Some(message.chat.as_str());
        let chat_id = message.chat.clone();
        let Some(chat) = self.chat_mut(&chat_id) else {
            return vec![Action::RefreshChats];
        };
        let epoch = message.epoch;
        chat.activity = chat.activity.max(epoch);
        let new = if chat.loaded {
            chat.insert(message)
        } else {
            // Not read yet: the history load will bring it.
            true
        };
        self.sort();
        if !new || mine {
            return Vec::new();
        }
        if is_open {
            return vec![Action::MarkRead {
                chat: chat_id,
                epoch,
            }];
        }
        if let Some(chat) = self.chat_mut(&chat_id) {
            chat.unread += 1;
        }
        Vec::new()
    }

    /// The recent messages of `chat` arrived.
    pub fn on_history(&mut self, chat_id: &str, messages: Vec<Message>) -> Vec<Action> {
        let Some(chat) = self.chat_mut(chat_id) else {
            return Vec::new();
        };
        chat.loaded = true;
        for message in messages {
            chat.insert(message);
        }
        if self.open.as_deref() == Some(chat_id) {
            return self.read_open();
        }
        Vec::new()
    }

    /// The conversation list was read again: new conversations join, counts follow the server's.
    pub fn on_chats(&mut self, entries: &[ChatEntry]) -> Vec<Action> {
        for entry in entries {
            match self.chat_mut(&entry.chat) {
                Some(chat) => chat.unread = chat.unread.max(entry.unread),
                None => {
                    if let Some(chat) = Chat::from_entry(entry) {
                        self.chats.push(chat);
                    }
                }
            }
        }
        self.sort();
        if self.open.is_none() {
            self.open = self.chats.first().map(|chat| chat.chat.clone());
            return self.opened();
        }
        Vec::new()
    }

    /// A send failed for good: the text goes back into an empty input line, so it is not lost.
    pub fn on_not_sent(&mut self, text: String, problem: String) {
        if self.input.is_empty() {
            self.input = text;
        }
        self.notice = Some(problem);
    }

    pub fn on_problem(&mut self, problem: String) {
        self.notice = Some(problem);
    }

    fn sort(&mut self) {
        self.chats
            .sort_by_key(|chat| std::cmp::Reverse(chat.activity));
    }
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyEvent;

    use super::*;
    use crate::api::UserRef;

    pub(crate) fn entry(chat: &str, name: &str, activity: u64, unread: u64) -> ChatEntry {
        ChatEntry {
            kind: "group".into(),
            chat: chat.into(),
            group: Some(GroupSummary {
                id: chat.into(),
                name: name.into(),
            }),
            user: None,
            last_message: None,
            unread,
            read_epoch: 0,
            activity_epoch: activity,
        }
    }

    pub(crate) fn message(chat: &str, epoch: u64, from: &str, content: &str) -> Message {
        Message {
            id: format!("m{epoch}"),
            chat: chat.into(),
            sender: UserRef {
                id: from.into(),
                username: from.into(),
                tag: "0001".into(),
            },
            content: content.into(),
            created_at: "2026-01-02T14:05:09.123Z".into(),
            epoch,
            edited_at: None,
        }
    }

    fn app() -> App {
        App::new(
            "ada#0001".into(),
            "ada".into(),
            &[entry("g1", "crew", 5, 0), entry("g2", "ops", 3, 2)],
        )
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_newest_conversation_opens_and_loads_first() {
        let mut app = app();
        assert_eq!(app.start(), vec![Action::Load { chat: "g1".into() }]);
        assert_eq!(app.open.as_deref(), Some("g1"));
    }

    #[test]
    fn down_opens_the_next_conversation_and_wraps_around() {
        let mut app = app();
        app.start();
        assert_eq!(
            app.on_key(key(KeyCode::Down)),
            vec![Action::Load { chat: "g2".into() }]
        );
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.open.as_deref(), Some("g1"));
    }

    #[test]
    fn a_loaded_conversation_with_unread_messages_is_marked_read_at_its_newest() {
        let mut app = app();
        app.on_key(key(KeyCode::Down));

        let actions = app.on_history(
            "g2",
            vec![message("g2", 2, "bob", "a"), message("g2", 3, "bob", "b")],
        );

        assert_eq!(
            actions,
            vec![Action::MarkRead {
                chat: "g2".into(),
                epoch: 3
            }]
        );
        assert_eq!(app.open_chat().map(|chat| chat.unread), Some(0));
    }

    #[test]
    fn a_live_message_elsewhere_counts_as_unread_and_moves_its_conversation_up() {
        let mut app = app();
        app.start();
        app.on_history("g1", vec![]);

        let actions = app.on_message(message("g2", 9, "bob", "psst"));

        assert!(actions.is_empty());
        assert_eq!(app.chats[0].chat, "g2");
        assert_eq!(app.chats[0].unread, 3);
        assert_eq!(
            app.open.as_deref(),
            Some("g1"),
            "the open conversation stays open"
        );
    }

    #[test]
    fn a_live_message_in_the_open_conversation_is_shown_once_and_read() {
        let mut app = app();
        app.start();
        app.on_history("g1", vec![message("g1", 4, "bob", "old")]);

        let first = app.on_message(message("g1", 6, "bob", "new"));
        let replayed = app.on_message(message("g1", 6, "bob", "new"));

        assert_eq!(
            first,
            vec![Action::MarkRead {
                chat: "g1".into(),
                epoch: 6
            }]
        );
        assert!(replayed.is_empty());
        let contents: Vec<&str> = app.chats[0]
            .messages
            .iter()
            .map(|message| message.content.as_str())
            .collect();
        assert_eq!(contents, ["old", "new"]);
    }

    #[test]
    fn enter_sends_the_typed_line_to_the_open_conversation_and_clears_it() {
        let mut app = app();
        app.start();
        for c in "hi there".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }

        let actions = app.on_key(key(KeyCode::Enter));

        assert!(matches!(
            actions.as_slice(),
            [Action::Send { chat, text, .. }] if chat == "g1" && text == "hi there"
        ));
        assert!(app.input.is_empty());
    }

    #[test]
    fn a_message_of_an_unknown_conversation_asks_for_the_list_again() {
        let mut app = app();
        assert_eq!(
            app.on_message(message("g9", 10, "bob", "hello")),
            vec![Action::RefreshChats]
        );
        app.on_chats(&[entry("g9", "new", 10, 1)]);
        assert_eq!(app.chats[0].title, "#new");
    }

    #[test]
    fn a_failed_send_puts_its_text_back_into_an_empty_input_line() {
        let mut app = app();
        app.on_not_sent("hello".into(), "not sent: cluster unreachable".into());
        assert_eq!(app.input, "hello");
        assert_eq!(app.notice.as_deref(), Some("not sent: cluster unreachable"));
    }

    #[test]
    fn escape_and_control_c_quit() {
        let mut app = app();
        app.on_key(key(KeyCode::Esc));
        assert!(app.quit);
        let mut app = self::app();
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit);
    }
}
