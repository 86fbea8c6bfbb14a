//! The TUI in a pseudo-terminal: the screen is the terminal's, as a vt100 emulator renders what the
//! binary wrote, and keys are bytes typed into it.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::helpers::{DELIVERY, User, api_client, group_with, post_once, spawn_cluster};

const ROWS: u16 = 30;
const COLUMNS: u16 = 110;

/// The `chat` TUI running in a pseudo-terminal.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Screen {
    fn open(user: &User) -> Screen {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLUMNS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_chat"));
        command.args(user.base_args());
        command.env("TERM", "xterm-256color");
        command.env_remove("CHAT_NAMESERVER");
        command.env_remove("CHAT_CONFIG_DIR");
        let child = pty
            .slave
            .spawn_command(command)
            .expect("chat starts in the pty");
        drop(pty.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLUMNS, 0)));
        let mut reader = pty.master.try_clone_reader().expect("a pty reader");
        {
            let parser = parser.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = reader.read(&mut buffer) {
                    if read == 0 {
                        return;
                    }
                    parser
                        .lock()
                        .expect("not poisoned")
                        .process(&buffer[..read]);
                }
            });
        }
        let writer = pty.master.take_writer().expect("a pty writer");
        // The master must outlive the child's use of the terminal; it is kept by the reader and writer.
        std::mem::forget(pty.master);
        Screen {
            parser,
            writer,
            child,
        }
    }

    fn text(&self) -> String {
        self.parser
            .lock()
            .expect("not poisoned")
            .screen()
            .contents()
    }

    /// Waits until the screen shows `text`; answers when it did.
    fn wait_for(&self, text: &str, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if self.text().contains(text) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {text:?} within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses Tab until the conversation titled `title` is open.
    fn open_conversation(&mut self, title: &str) {
        let open = format!("Message to {title} ");
        for _ in 0..5 {
            if self.text().contains(&open) {
                return;
            }
            self.type_text("\t");
            let deadline = Instant::now() + Duration::from_secs(2);
            while !self.text().contains(&open) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{title} never opened:\n{}", self.text());
    }

    fn type_text(&mut self, text: &str) {
        self.writer
            .write_all(text.as_bytes())
            .expect("keys reach the pty");
        self.writer.flush().expect("keys reach the pty");
    }

    /// The node the status line names (`… · node 4 (http://…) · connected`).
    fn node(&self) -> u64 {
        let text = self.text();
        let status = text
            .lines()
            .rev()
            .find(|line| line.contains(" · node "))
            .unwrap_or_else(|| panic!("no status line:\n{text}"));
        crate::tail::node_id(status)
    }

    fn wait_exit(&mut self, timeout: Duration) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat did not quit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_shows_conversations_and_live_messages_and_survives_the_kill_of_its_input_node() {
    let (mut cluster, inputs) = spawn_cluster().await;
    let ada = User::sign_up(&cluster, "ada");
    let bob = User::sign_up(&cluster, "bob");
    let group = group_with(&ada, "crew", &[&bob]);
    group_with(&ada, "quiet", &[&bob]);
    ada.run(&["send", "crew", "before", "the", "tui"]);

    let mut screen = Screen::open(&bob);
    screen.wait_for("#crew", DELIVERY);
    screen.wait_for("#quiet", DELIVERY);
    // Which conversation opens first depends on how far Bob's node had applied the post when the
    // list was read; Tab moves to the other one.
    screen.open_conversation("#crew");
    screen.wait_for("before the tui", DELIVERY);
    screen.wait_for("· connected", DELIVERY);
    let node = screen.node();
    let poster_node = inputs
        .iter()
        .find(|input| input.id != node)
        .expect("a second input node")
        .clone();
    let poster = api_client(&poster_node, &ada.handle).await;

    post_once(&poster, &group, "live before the kill").await;
    screen.wait_for("live before the kill", DELIVERY);
    cluster.kill(node);
    let killed = Instant::now();
    post_once(&poster, &group, "posted after the kill").await;
    let shown = screen.wait_for("posted after the kill", DELIVERY * 2);
    screen.wait_for("moved here after", DELIVERY);
    screen.type_text("typed in the tui\r");
    screen.wait_for(&format!("{}: typed in the tui", bob.handle), DELIVERY);
    let moved_to = screen.node();
    let stored = poll_history(&poster, &group, "typed in the tui").await;
    // Tab opens the other conversation; Escape quits.
    screen.open_conversation("#quiet");
    screen.type_text("\x1b");
    let status = screen.wait_exit(DELIVERY);

    eprintln!(
        "chat TUI: node {node} killed; a message posted after the kill shown {} ms after it",
        shown.duration_since(killed).as_millis()
    );
    assert_eq!(stored, 1, "the message typed in the TUI is stored once");
    assert!(status.success(), "chat quits cleanly: {status:?}");
    assert_ne!(moved_to, node, "the status line names the new node");
}

/// How many messages of `group` say `content`, once at least one does.
async fn poll_history(
    client: &system_tests::chat::ChatClient,
    group: &str,
    content: &str,
) -> usize {
    let deadline = Instant::now() + DELIVERY;
    loop {
        let reply = client
            .get(&format!("/api/groups/{group}/messages?limit=100"))
            .await;
        let count = reply
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter(|message| message["content"] == content)
            .count();
        if count > 0 {
            return count;
        }
        assert!(Instant::now() < deadline, "{content:?} never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
