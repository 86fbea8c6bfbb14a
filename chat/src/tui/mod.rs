//! The interactive client: `app` holds the state and decides, `view` draws, and this runtime connects
//! them to the terminal and the cluster.
//!
//! ```text
//!   key thread (crossterm, blocking) ─┐
//!   feed task (LiveFeed across nodes) ─┼─► mpsc ─► App::on_* ─► Actions ─► tasks on the Connection
//!   action tasks (load, send, read)  ──┘              │                          │ results
//!                                                     └─► view::draw              └──► mpsc
//! ```
//!
//! Everything that waits on the network runs in its own task, so the screen keeps answering keys while
//! a send is retried on another node.

mod app;
mod view;

use std::io::IsTerminal;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};
use reqwest::Method;
use tokio::sync::mpsc;

use crate::api::{ChatList, Message};
use crate::commands::Context;
use crate::connection::{Connection, Retry};
use crate::error::ClientError;
use crate::feed::{FeedEvent, LiveFeed};

pub use app::{Action, App, Link};

/// What arrives at the runtime.
enum Update {
    Key(Event),
    Feed(FeedEvent),
    FeedFailed(String),
    History {
        chat: String,
        messages: Vec<Message>,
    },
    Sent(Message),
    NotSent {
        text: String,
        problem: String,
    },
    Chats(ChatList),
    Problem(String),
}

/// How often the key thread looks whether the runtime is gone.
const KEY_POLL: Duration = Duration::from_millis(100);

pub async fn run(context: &Context) -> Result<(), ClientError> {
    let connection = context.connection.clone();
    if !connection.signed_in() {
        return Err(ClientError::NotLoggedIn);
    }
    if !std::io::stdout().is_terminal() {
        return Err(ClientError::Usage(
            "the interactive client needs a terminal; without one, use the commands (`chat --help`)"
                .into(),
        ));
    }
    // Read before the screen switches, so a failure is an ordinary one-line error.
    let chats = fetch_chats(&connection).await?;
    let session = connection.session();
    let mut app = App::new(
        session.user.clone().unwrap_or_else(|| "?".into()),
        session.user_id.clone().unwrap_or_default(),
        &chats.chats,
    );
    // The live feed resumes right after the list was read, so nothing falls between the two.
    let after = Some(session.epoch);

    let (updates, mut inbox) = mpsc::unbounded_channel();
    spawn_keys(updates.clone());
    spawn_feed(connection.clone(), after, updates.clone());

    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(error) => {
            ratatui::restore();
            return Err(ClientError::Local(format!(
                "cannot use the terminal: {error}"
            )));
        }
    };
    let actions = app.start();
    perform(&connection, &app, actions, &updates);
    let outcome = loop {
        if let Err(error) = terminal.draw(|frame| view::draw(frame, &app)) {
            break Err(ClientError::Local(format!("drawing the screen: {error}")));
        }
        let Some(first) = inbox.recv().await else {
            break Ok(());
        };
        // Everything already waiting is applied before the next draw.
        let mut pending = vec![first];
        while let Ok(more) = inbox.try_recv() {
            pending.push(more);
        }
        for update in pending {
            let actions = apply(&mut app, update);
            perform(&connection, &app, actions, &updates);
        }
        if app.quit {
            break Ok(());
        }
    };
    ratatui::restore();
    context.save()?;
    outcome
}

fn apply(app: &mut App, update: Update) -> Vec<Action> {
    match update {
        Update::Key(Event::Key(key)) => app.on_key(key),
        Update::Key(_) => Vec::new(),
        Update::Feed(event) => app.on_feed(event),
        Update::FeedFailed(problem) => {
            app.on_feed_failed(problem);
            Vec::new()
        }
        Update::History { chat, messages } => app.on_history(&chat, messages),
        Update::Sent(message) => app.on_message(message),
        Update::NotSent { text, problem } => {
            app.on_not_sent(text, problem);
            Vec::new()
        }
        Update::Chats(list) => app.on_chats(&list.chats),
        Update::Problem(problem) => {
            app.on_problem(problem);
            Vec::new()
        }
    }
}

/// Starts a task for each action; each reports back through `updates`.
fn perform(
    connection: &Connection,
    app: &App,
    actions: Vec<Action>,
    updates: &mpsc::UnboundedSender<Update>,
) {
    for action in actions {
        let connection = connection.clone();
        let updates = updates.clone();
        let conversation = |chat: &str| {
            app.chats
                .iter()
                .find(|known| known.chat == chat)
                .map(|known| known.conversation.clone())
        };
        match action {
            Action::Load { chat } => {
                let Some(conversation) = conversation(&chat) else {
                    continue;
                };
                tokio::spawn(async move {
                    let update = match conversation.history(&connection, None, None).await {
                        Ok(messages) => Update::History { chat, messages },
                        Err(error) => Update::Problem(format!("loading {chat}: {error}")),
                    };
                    let _ = updates.send(update);
                });
            }
            Action::Send {
                chat,
                text,
                client_id,
            } => {
                let Some(conversation) = conversation(&chat) else {
                    continue;
                };
                tokio::spawn(async move {
                    let update = match conversation.send(&connection, &text, &client_id).await {
                        Ok(body) => match serde_json::from_value::<Message>(body) {
                            Ok(message) => Update::Sent(message),
                            Err(error) => Update::Problem(format!("sent, but: {error}")),
                        },
                        Err(error) => Update::NotSent {
                            text,
                            problem: format!("not sent: {error}"),
                        },
                    };
                    let _ = updates.send(update);
                });
            }
            Action::MarkRead { chat, epoch } => {
                let Some(conversation) = conversation(&chat) else {
                    continue;
                };
                // Best effort: a marker that did not move only leaves a count on another device.
                tokio::spawn(async move {
                    let _ = conversation.mark_read(&connection, epoch).await;
                });
            }
            Action::RefreshChats => {
                tokio::spawn(async move {
                    if let Ok(list) = fetch_chats(&connection).await {
                        let _ = updates.send(Update::Chats(list));
                    }
                });
            }
        }
    }
}

async fn fetch_chats(connection: &Connection) -> Result<ChatList, ClientError> {
    let body = connection
        .expect(Method::GET, "/api/chats", None, Retry::Always)
        .await?;
    serde_json::from_value(body)
        .map_err(|error| ClientError::Local(format!("unexpected chat list: {error}")))
}

/// Terminal input is read with blocking calls, so it gets a thread of its own.
fn spawn_keys(updates: mpsc::UnboundedSender<Update>) {
    std::thread::spawn(move || {
        while !updates.is_closed() {
            match event::poll(KEY_POLL) {
                Ok(true) => match event::read() {
                    Ok(event) => {
                        let _ = updates.send(Update::Key(event));
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
}

fn spawn_feed(connection: Connection, after: Option<u64>, updates: mpsc::UnboundedSender<Update>) {
    tokio::spawn(async move {
        let mut feed = LiveFeed::new(connection, after);
        loop {
            let update = match feed.next().await {
                Ok(event) => Update::Feed(event),
                Err(error) => {
                    let _ = updates.send(Update::FeedFailed(error.to_string()));
                    return;
                }
            };
            if updates.send(update).is_err() {
                return;
            }
        }
    });
}
