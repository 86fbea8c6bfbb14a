//! Helpers for the end-to-end web tests in `tests/`: a small Server-Sent Events reader over a streamed
//! reqwest response ([`sse`]), the input nodes of a test cluster ([`inputs`]), a chromedriver process
//! with headless-Chromium sessions ([`browser`]) what a person does on the pages ([`pages`]) and one user's API client ([`session`]).
//!
//! This crate is dev-only: nothing depends on it, and it has no binaries.

pub mod browser;
pub mod inputs;
pub mod pages;
pub mod session;
pub mod sse;
