//! Drawing the [`App`]: conversations on the left, the open one on the right, the input line below and
//! a status line at the bottom.
//!
//! ```text
//!   ┌Conversations─┐┌#crew──────────────────────────────┐
//!   │> #crew       ││14:05:09 ada#0218: hello           │
//!   │  @bob#0042 2 ││14:05:12 bob#0042: hi              │
//!   └──────────────┘└───────────────────────────────────┘
//!   ┌Message to #crew (Enter sends, Esc quits)───────────┐
//!   │typed text                                          │
//!   └────────────────────────────────────────────────────┘
//!   ada#0218 · node 4 (http://127.0.0.1:8004) · connected
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};

use super::app::{App, Link};

/// Width of the conversation list.
const LIST_WIDTH: u16 = 30;

pub fn draw(frame: &mut Frame, app: &App) {
    let [main, input, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [list, messages] =
        Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(10)]).areas(main);
    draw_list(frame, app, list);
    draw_messages(frame, app, messages);
    draw_input(frame, app, input);
    frame.render_widget(Paragraph::new(status_line(app)), status);
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect) {
    let items: Vec<ListItem> = app
        .chats
        .iter()
        .map(|chat| {
            let line = if chat.unread > 0 {
                format!("{} ({})", chat.title, chat.unread)
            } else {
                chat.title.clone()
            };
            let style = if chat.unread > 0 {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            ListItem::new(Line::styled(line, style))
        })
        .collect();
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title("Conversations"),
        )
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_messages(frame: &mut Frame, app: &App, area: Rect) {
    let (title, lines) = match app.open_chat() {
        None => (
            "No conversation".to_owned(),
            vec![
                "Create a group or start a direct chat (`chat new-group`, `chat send name#tag`)."
                    .to_owned(),
            ],
        ),
        Some(chat) if !chat.loaded => (chat.title.clone(), vec!["loading…".to_owned()]),
        Some(chat) => {
            let width = area.width.saturating_sub(2) as usize;
            let lines = chat
                .messages
                .iter()
                .flat_map(|message| {
                    let text = format!(
                        "{} {}: {}",
                        message.time(),
                        message.sender.handle(),
                        message.content
                    );
                    wrap(&text, width)
                })
                .collect();
            (chat.title.clone(), lines)
        }
    };
    // The newest messages are at the bottom; show the last ones that fit.
    let height = area.height.saturating_sub(2) as usize;
    let shown: Vec<Line> = lines
        .iter()
        .skip(lines.len().saturating_sub(height))
        .map(|line| Line::from(line.as_str()))
        .collect();
    let paragraph =
        Paragraph::new(shown).block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(paragraph, area);
}

fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let title = match (&app.notice, app.open_chat()) {
        (Some(notice), _) => notice.clone(),
        (None, Some(chat)) => format!("Message to {} (Enter sends, Esc quits)", chat.title),
        (None, None) => "Esc quits".to_owned(),
    };
    let width = area.width.saturating_sub(2) as usize;
    let typed = app.input.chars().count();
    // Long input scrolls so its end, where the cursor is, stays visible.
    let visible: String = app
        .input
        .chars()
        .skip(typed.saturating_sub(width.saturating_sub(1)))
        .collect();
    let cursor = visible.chars().count() as u16;
    frame.render_widget(
        Paragraph::new(visible).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
    frame.set_cursor_position(Position::new(area.x + 1 + cursor, area.y + 1));
}

/// `ada#0218 · node 4 (http://…) · connected`, or how the live stream is doing instead.
pub fn status_line(app: &App) -> String {
    let link = match &app.link {
        Link::Connecting => "connecting…".to_owned(),
        Link::Connected { node, outage: None } => format!("{node} · connected"),
        Link::Connected {
            node,
            outage: Some(outage),
        } => format!(
            "{node} · connected (moved here after {} ms)",
            outage.as_millis()
        ),
        Link::Reconnecting { from, reason } => {
            format!("lost {from} ({reason}) · reconnecting through the nameserver…")
        }
        Link::Failed(problem) => format!("live updates stopped: {problem}"),
    };
    format!("{} · {link}", app.me)
}

/// Splits `text` into lines of at most `width` characters (and at its own line breaks).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let chars: Vec<char> = paragraph.chars().collect();
        if chars.is_empty() {
            lines.push(String::new());
        }
        for chunk in chars.chunks(width) {
            lines.push(chunk.iter().collect());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::api::{ChatEntry, GroupSummary, Message, UserRef};
    use crate::connection::Node;

    fn group(chat: &str, name: &str, activity: u64, unread: u64) -> ChatEntry {
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

    fn message(chat: &str, epoch: u64, content: &str) -> Message {
        Message {
            id: format!("m{epoch}"),
            chat: chat.into(),
            sender: UserRef {
                id: "b".into(),
                username: "bob".into(),
                tag: "0042".into(),
            },
            content: content.into(),
            created_at: "2026-01-02T14:05:09.123Z".into(),
            epoch,
            edited_at: None,
        }
    }

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(80, 12)).expect("a test terminal");
        terminal.draw(|frame| draw(frame, app)).expect("drawn");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_screen_shows_conversations_with_unread_counts_the_open_chat_and_the_node() {
        let mut app = App::new(
            "ada#0218".into(),
            "a".into(),
            &[group("g1", "crew", 5, 0), group("g2", "ops", 3, 2)],
        );
        app.start();
        app.on_history("g1", vec![message("g1", 4, "hello crew")]);
        app.link = Link::Connected {
            node: Node {
                id: Some(4),
                url: "http://127.0.0.1:8004".into(),
            },
            outage: None,
        };
        app.input = "draft".into();

        let screen = screen(&app);

        assert!(screen.contains("> #crew"), "{screen}");
        assert!(screen.contains("#ops (2)"), "{screen}");
        assert!(screen.contains("14:05:09 bob#0042: hello crew"), "{screen}");
        assert!(screen.contains("Message to #crew"), "{screen}");
        assert!(screen.contains("draft"), "{screen}");
        assert!(
            screen.contains("ada#0218 · node 4 (http://127.0.0.1:8004) · connected"),
            "{screen}"
        );
    }

    #[test]
    fn the_newest_messages_stay_in_view_and_long_ones_wrap() {
        let mut app = App::new("ada#0218".into(), "a".into(), &[group("g1", "crew", 5, 0)]);
        app.start();
        let messages = (1..=20)
            .map(|n| message("g1", n, &format!("number {n}")))
            .collect();
        app.on_history("g1", messages);

        let screen = screen(&app);

        assert!(screen.contains("number 20"), "{screen}");
        assert!(!screen.contains("number 1 "), "{screen}");
        assert_eq!(wrap("abcdef", 4), ["abcd", "ef"]);
    }

    #[test]
    fn a_lost_node_shows_in_the_status_line() {
        let mut app = App::new("ada#0218".into(), "a".into(), &[]);
        app.link = Link::Reconnecting {
            from: Node {
                id: Some(4),
                url: "http://127.0.0.1:8004".into(),
            },
            reason: "the server closed the stream".into(),
        };
        assert!(status_line(&app).contains("lost node 4"));
    }
}
