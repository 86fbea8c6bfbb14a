//! The command line (clap). Without a command `chat` opens the TUI.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chat",
    version,
    about = "Terminal client of the chat cluster: commands, or the interactive client when run without one"
)]
pub struct Cli {
    /// The nameservers' HTTP addresses, comma-separated (or the option repeated): the client enters the
    /// cluster through the first that answers, and asks again for another input node when its own stops
    /// answering.
    #[arg(
        long,
        global = true,
        env = "CHAT_NAMESERVER",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9999"
    )]
    pub nameserver: Vec<String>,
    /// Where the session is kept (default: $XDG_CONFIG_HOME/chat or ~/.config/chat).
    #[arg(long, global = true, env = "CHAT_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// A PEM CA certificate to trust, for a cluster that serves HTTPS with its own CA (.tls/ca.pem).
    #[arg(long, global = true, env = "CHAT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Machine-readable output: the API's JSON (one object per line for `tail`).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates an account; prints its name#tag.
    Register {
        name: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Signs in as name#tag and keeps the session for the other commands.
    Login {
        handle: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Signs out and forgets the session.
    Logout,
    /// Your groups: id and name.
    Groups,
    /// Your conversations, newest activity first, with unread counts.
    Chats,
    /// Creates a group; prints its id.
    NewGroup { name: String },
    /// Adds name#tag to a group (named by id or exact name).
    Invite { group: String, handle: String },
    /// Sends a message to a group (id or exact name) or to name#tag.
    Send {
        target: String,
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        text: Vec<String>,
    },
    /// Recent messages of a conversation, oldest first.
    History {
        target: String,
        /// How many (1–500, the server's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Only messages older than this epoch (the `epoch` of a message), to page back.
        #[arg(long)]
        before: Option<u64>,
    },
    /// Prints new messages as they arrive, of one conversation or all; follows the cluster across the
    /// loss of its input node without losing or repeating a message.
    Tail { target: Option<String> },
    /// The cluster as the nameserver sees it: nodes, roles, leader, input nodes.
    Status,
}
