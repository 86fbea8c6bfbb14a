//! The `chat` binary against real clusters on loopback: every command end to end through the
//! nameserver, `chat tail` and the TUI across the kill of their input node.

mod commands;
mod helpers;
mod nameservers;
mod tail;
mod tui;
