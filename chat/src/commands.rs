//! One function per command: each talks to the cluster through a [`Connection`] and prints what a
//! person (or, with `--json`, a program) reads.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{ChatList, Message, is_direct_with};
use crate::cli::{Cli, Command};
use crate::connection::{Connection, Options, Retry};
use crate::conversation::{Conversation, my_groups, new_client_id};
use crate::error::ClientError;
use crate::feed::{FeedEvent, LiveFeed};
use crate::session::SessionStore;
use crate::target::{Handle, Target, resolve_group};

/// How long one command keeps looking for an input node that answers.
const PATIENCE: Duration = Duration::from_secs(20);

/// What every command works with.
pub struct Context {
    pub store: SessionStore,
    pub connection: Connection,
    pub json: bool,
}

impl Context {
    pub fn new(cli: &Cli) -> Result<Context, ClientError> {
        let store = SessionStore::locate(cli.config_dir.clone())?;
        let session = store.load()?;
        let options = Options {
            nameservers: cli.nameserver.clone(),
            ca_certificate: cli.ca_cert.clone(),
            patience: PATIENCE,
        };
        Ok(Context {
            connection: Connection::new(&options, session)?,
            store,
            json: cli.json,
        })
    }

    /// The connection, or "not logged in" before any network traffic.
    fn signed_in(&self) -> Result<&Connection, ClientError> {
        if self.connection.signed_in() {
            Ok(&self.connection)
        } else {
            Err(ClientError::NotLoggedIn)
        }
    }

    /// Keeps the cookie, node and epoch the last answers carried, for the next command.
    pub fn save(&self) -> Result<(), ClientError> {
        let session = self.connection.session();
        if session.cookie.is_none() {
            return self.store.clear();
        }
        self.store.save(&session)
    }
}

/// Runs a command; the session is saved afterwards, whatever the outcome, once a session exists.
pub async fn run(context: &Context, command: Command) -> Result<(), ClientError> {
    let had_session = context.connection.signed_in();
    let outcome = dispatch(context, command).await;
    if had_session || context.connection.signed_in() {
        context.save()?;
    }
    outcome
}

async fn dispatch(context: &Context, command: Command) -> Result<(), ClientError> {
    match command {
        Command::Register {
            name,
            password_stdin,
        } => register(context, &name, password_stdin).await,
        Command::Login {
            handle,
            password_stdin,
        } => login(context, &handle, password_stdin).await,
        Command::Logout => logout(context).await,
        Command::Groups => groups(context).await,
        Command::Chats => chats(context).await,
        Command::NewGroup { name } => new_group(context, &name).await,
        Command::Invite { group, handle } => invite(context, &group, &handle).await,
        Command::Send { target, text } => send(context, &target, &text.join(" ")).await,
        Command::History {
            target,
            limit,
            before,
        } => history(context, &target, limit, before).await,
        Command::Tail { target } => tail(context, target.as_deref()).await,
        Command::Status => status(context).await,
    }
}

async fn register(context: &Context, name: &str, from_stdin: bool) -> Result<(), ClientError> {
    let password = read_password(from_stdin, &format!("password for {name}: "), true)?;
    let body = json!({ "username": name, "password": password });
    let user = context
        .connection
        .expect(Method::POST, "/api/register", Some(&body), Retry::IfUnsent)
        .await?;
    if context.json {
        emit(&user.to_string());
    } else {
        emit(&format!(
            "{}#{}",
            user["username"].as_str().unwrap_or(name),
            user["tag"].as_str().unwrap_or("????")
        ));
    }
    Ok(())
}

async fn login(context: &Context, handle: &str, from_stdin: bool) -> Result<(), ClientError> {
    let handle = Handle::parse(handle)?;
    let password = read_password(from_stdin, &format!("password for {handle}: "), false)?;
    let body = json!({ "username": handle.username, "tag": handle.tag, "password": password });
    let reply = context
        .connection
        .call(Method::POST, "/api/login", Some(&body), Retry::Always)
        .await?;
    if reply.status == 401 {
        return Err(ClientError::Api {
            status: 401,
            message: format!("wrong password, or no user {handle}"),
        });
    }
    let user = context.connection.success(reply)?;
    if !context.connection.signed_in() {
        return Err(ClientError::Local(
            "the node signed in but sent no session cookie".into(),
        ));
    }
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    context.connection.set_user(handle.to_string(), id);
    if context.json {
        emit(&user.to_string());
    } else {
        let node = context
            .connection
            .current_node()
            .map(|node| format!(" on {node}"))
            .unwrap_or_default();
        emit(&format!("logged in as {handle}{node}"));
    }
    Ok(())
}

async fn logout(context: &Context) -> Result<(), ClientError> {
    if !context.connection.signed_in() {
        emit("not logged in");
        return Ok(());
    }
    let outcome = context
        .connection
        .expect(Method::POST, "/api/logout", None, Retry::Always)
        .await;
    // The cookie cannot be revoked on the server anyway (see docs/SECURITY.md): forgetting it here is
    // what logging out means for this client, so it is forgotten even when the cluster is unreachable.
    context.connection.forget_session();
    context.store.clear()?;
    match outcome {
        Ok(_) | Err(ClientError::SessionEnded) => {
            emit("logged out");
            Ok(())
        }
        Err(error) => {
            eprintln!(
                "chat: the session is forgotten here, but the cluster did not confirm: {error}"
            );
            Ok(())
        }
    }
}

async fn groups(context: &Context) -> Result<(), ClientError> {
    let connection = context.signed_in()?;
    let body = connection
        .expect(Method::GET, "/api/groups", None, Retry::Always)
        .await?;
    if context.json {
        emit(&body.to_string());
        return Ok(());
    }
    for group in body.as_array().into_iter().flatten() {
        emit(&format!(
            "{}  {}",
            group["id"].as_str().unwrap_or_default(),
            group["name"].as_str().unwrap_or_default()
        ));
    }
    Ok(())
}

async fn chats(context: &Context) -> Result<(), ClientError> {
    let connection = context.signed_in()?;
    let body = connection
        .expect(Method::GET, "/api/chats", None, Retry::Always)
        .await?;
    if context.json {
        emit(&body.to_string());
        return Ok(());
    }
    let list: ChatList = serde_json::from_value(body)
        .map_err(|error| ClientError::Local(format!("unexpected chat list: {error}")))?;
    for chat in &list.chats {
        let last = chat
            .last_message
            .as_ref()
            .map(|message| {
                format!(
                    "{}: {}",
                    message.sender.handle(),
                    first_line(&message.content)
                )
            })
            .unwrap_or_default();
        emit(&format!("{:>4}  {:<24}  {last}", chat.unread, chat.title()));
    }
    Ok(())
}

async fn new_group(context: &Context, name: &str) -> Result<(), ClientError> {
    let connection = context.signed_in()?;
    let body = json!({ "name": name });
    let group = connection
        .expect(Method::POST, "/api/groups", Some(&body), Retry::IfUnsent)
        .await?;
    if context.json {
        emit(&group.to_string());
    } else {
        emit(&format!(
            "{}  {}",
            group["id"].as_str().unwrap_or_default(),
            group["name"].as_str().unwrap_or(name)
        ));
    }
    Ok(())
}

async fn invite(context: &Context, group: &str, handle: &str) -> Result<(), ClientError> {
    let connection = context.signed_in()?;
    let handle = Handle::parse(handle)?;
    let groups = my_groups(connection).await?;
    let conversation = Conversation::group(resolve_group(&groups, group)?);
    let body = json!({ "username": handle.username, "tag": handle.tag });
    let reply = connection
        .call(
            Method::POST,
            &format!("{}/members", conversation.path),
            Some(&body),
            Retry::Always,
        )
        .await?;
    if reply.status == 404 {
        return Err(ClientError::UnknownUser(handle.to_string()));
    }
    connection.success(reply)?;
    if !context.json {
        emit(&format!("added {handle} to {}", conversation.label));
    }
    Ok(())
}

async fn send(context: &Context, target: &str, text: &str) -> Result<(), ClientError> {
    let target = Target::parse(target)?;
    if text.trim().is_empty() {
        return Err(ClientError::Usage("the message must not be empty".into()));
    }
    let connection = context.signed_in()?;
    let conversation = Conversation::resolve(connection, &target).await?;
    let message = conversation
        .send(connection, text, &new_client_id())
        .await?;
    if context.json {
        emit(&message.to_string());
    } else if let Ok(message) = serde_json::from_value::<Message>(message) {
        emit(&message_line(&message, Some(&conversation.label)));
    }
    Ok(())
}

async fn history(
    context: &Context,
    target: &str,
    limit: Option<u32>,
    before: Option<u64>,
) -> Result<(), ClientError> {
    let target = Target::parse(target)?;
    let connection = context.signed_in()?;
    let conversation = Conversation::resolve(connection, &target).await?;
    let messages = conversation.history(connection, limit, before).await?;
    for message in &messages {
        if context.json {
            emit(&message_json(message));
        } else {
            emit(&message_line(message, None));
        }
    }
    Ok(())
}

/// Follows the live feed, printing messages on stdout and the connection's changes on stderr (so a
/// pipe reads messages only).
async fn tail(context: &Context, target: Option<&str>) -> Result<(), ClientError> {
    let target = target.map(Target::parse).transpose()?;
    let connection = context.signed_in()?;
    let only = match &target {
        Some(target) => Some(Conversation::resolve(connection, target).await?),
        None => None,
    };
    let mut labels = Labels::default();
    labels.refresh(connection).await;
    let mut feed = LiveFeed::new(connection.clone(), None);
    loop {
        match feed.next().await? {
            FeedEvent::Connected { node, outage: None } => {
                eprintln!("chat: following {} on {node}", scope(&only));
            }
            FeedEvent::Connected {
                node,
                outage: Some(outage),
            } => {
                eprintln!(
                    "chat: resumed on {node} after {} ms, from epoch {}",
                    outage.as_millis(),
                    feed.last_epoch().unwrap_or_default()
                );
                // The node and epoch move with failovers: keep them for the next command.
                context.save()?;
            }
            FeedEvent::Lost { node, reason } => {
                eprintln!("chat: lost {node} ({reason}); asking the nameserver for another");
            }
            FeedEvent::Message { message, raw } => {
                if only
                    .as_ref()
                    .is_some_and(|conversation| !conversation.holds(&message.chat))
                {
                    continue;
                }
                if !labels.knows(&message.chat) {
                    labels.refresh(connection).await;
                }
                let line = if context.json {
                    raw
                } else {
                    message_line(&message, Some(&labels.label(&message)))
                };
                if !emit(&line) {
                    return Ok(());
                }
            }
            FeedEvent::Other { .. } => {}
        }
    }
}

fn scope(only: &Option<Conversation>) -> String {
    match only {
        Some(conversation) => conversation.label.clone(),
        None => "every conversation".into(),
    }
}

async fn status(context: &Context) -> Result<(), ClientError> {
    let connection = &context.connection;
    let state = connection.nameserver_get("/cluster/state").await?;
    let endpoints = connection.nameserver_get("/api/endpoints").await?;
    if context.json {
        let both = json!({ "cluster": state.body, "endpoints": endpoints.body });
        emit(&both.to_string());
        return Ok(());
    }
    for line in status_lines(&state.body, &endpoints.body) {
        emit(&line);
    }
    if state.status != 200 {
        return Err(ClientError::Unreachable(format!(
            "the nameserver cannot see the cluster: {}",
            state.body["error"].as_str().unwrap_or("no state")
        )));
    }
    Ok(())
}

/// The table `chat status` prints, from `/cluster/state` and `/api/endpoints`.
pub fn status_lines(state: &Value, endpoints: &Value) -> Vec<String> {
    let handed_out: Vec<u64> = endpoints
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|endpoint| endpoint["id"].as_u64())
        .collect();
    let number = |value: &Value| value.as_u64().map_or("-".to_owned(), |n| n.to_string());
    let mut lines = vec![format!(
        "leader: {}, term {}",
        state["leader"]
            .as_u64()
            .map_or("none".to_owned(), |id| format!("node {id}")),
        number(&state["term"])
    )];
    lines.push(format!(
        "{:<5} {:<6} {:<24} {:<7} {:<8} {}",
        "node", "alive", "roles", "parent", "epoch", "input node"
    ));
    for node in state["nodes"].as_array().into_iter().flatten() {
        let id = node["id"].as_u64().unwrap_or_default();
        let roles: Vec<&str> = node["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let input = match node["http"].as_str() {
            Some(url) if handed_out.contains(&id) => format!("{url} (handed out)"),
            Some(url) => format!("{url} (not handed out)"),
            None => "-".to_owned(),
        };
        lines.push(format!(
            "{:<5} {:<6} {:<24} {:<7} {:<8} {input}",
            id,
            if node["alive"] == true { "yes" } else { "no" },
            if roles.is_empty() {
                "-".to_owned()
            } else {
                roles.join(",")
            },
            number(&node["parent"]),
            number(&node["data_epoch"]),
        ));
    }
    lines
}

/// How `tail` names a message's conversation, from `GET /api/chats`.
#[derive(Default)]
struct Labels {
    by_chat: HashMap<String, String>,
}

impl Labels {
    /// Best effort: without names, lines still show the sender.
    async fn refresh(&mut self, connection: &Connection) {
        let Ok(body) = connection
            .expect(Method::GET, "/api/chats", None, Retry::Always)
            .await
        else {
            return;
        };
        if let Ok(list) = serde_json::from_value::<ChatList>(body) {
            for chat in list.chats {
                self.by_chat.insert(chat.chat.clone(), chat.title());
            }
        }
    }

    fn knows(&self, chat: &str) -> bool {
        self.by_chat.contains_key(chat)
    }

    fn label(&self, message: &Message) -> String {
        match self.by_chat.get(&message.chat) {
            Some(label) => label.clone(),
            None if is_direct_with(&message.chat, &message.sender.id) => {
                format!("@{}", message.sender.handle())
            }
            None => message.chat.clone(),
        }
    }
}

/// `14:05:09 #crew ada#0218: hello` (time in UTC); continuation lines indented under the text.
pub fn message_line(message: &Message, label: Option<&str>) -> String {
    let label = label.map(|label| format!("{label} ")).unwrap_or_default();
    let head = format!("{} {label}{}: ", message.time(), message.sender.handle());
    let indent = " ".repeat(head.chars().count());
    let mut line = head;
    for (index, text) in message.content.split('\n').enumerate() {
        if index > 0 {
            line.push('\n');
            line.push_str(&indent);
        }
        line.push_str(text);
    }
    if message.edited_at.is_some() {
        line.push_str(" (edited)");
    }
    line
}

fn message_json(message: &Message) -> String {
    json!({
        "id": message.id,
        "chat": message.chat,
        "sender": {
            "id": message.sender.id,
            "username": message.sender.username,
            "tag": message.sender.tag,
        },
        "content": message.content,
        "created_at": message.created_at,
        "epoch": message.epoch,
        "edited_at": message.edited_at,
    })
    .to_string()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Prints a line on stdout; false once nobody reads it any more (a closed pipe), which ends `tail`.
fn emit(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// The password from the first line of stdin, or asked on the terminal without echo (twice when it
/// is a new one, so a typo does not lock the account away).
fn read_password(from_stdin: bool, prompt: &str, new: bool) -> Result<String, ClientError> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|error| ClientError::Local(format!("reading the password: {error}")))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
            return Err(ClientError::Usage(
                "no terminal to ask the password on: use --password-stdin".into(),
            ));
        }
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt).map_err(|error| {
                ClientError::Usage(format!(
                    "cannot ask the password ({error}): use --password-stdin"
                ))
            })
        };
        let password = ask(prompt)?;
        if new && ask("again: ")? != password {
            return Err(ClientError::Usage("the passwords differ".into()));
        }
        password
    };
    if password.is_empty() {
        return Err(ClientError::Usage("the password must not be empty".into()));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserRef;

    #[test]
    fn a_message_line_shows_time_conversation_sender_and_indented_lines() {
        let message = Message {
            id: "m".into(),
            chat: "g".into(),
            sender: UserRef {
                id: "u".into(),
                username: "ada".into(),
                tag: "0218".into(),
            },
            content: "one\ntwo".into(),
            created_at: "2026-01-02T14:05:09.123Z".into(),
            epoch: 3,
            edited_at: None,
        };
        assert_eq!(
            message_line(&message, Some("#crew")),
            "14:05:09 #crew ada#0218: one\n                         two"
        );
    }

    #[test]
    fn the_status_table_marks_the_input_nodes_the_nameserver_hands_out() {
        let state = json!({"leader": 1, "term": 2, "nodes": [
            {"id": 1, "alive": true, "roles": ["writer"], "parent": null, "data_epoch": 9, "http": null},
            {"id": 4, "alive": true, "roles": ["input"], "parent": 1, "data_epoch": 9,
             "http": "http://127.0.0.1:8004"},
        ]});
        let endpoints = json!([{"id": 4, "url": "http://127.0.0.1:8004"}]);

        let lines = status_lines(&state, &endpoints);

        assert_eq!(lines[0], "leader: node 1, term 2");
        assert!(lines[2].starts_with("1     yes    writer"), "{}", lines[2]);
        assert!(
            lines[3].ends_with("http://127.0.0.1:8004 (handed out)"),
            "{}",
            lines[3]
        );
    }
}
