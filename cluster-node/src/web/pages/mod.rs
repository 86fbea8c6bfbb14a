//! Server-rendered pages (askama templates from the workspace's `templates/`, auto-escaped) and the
//! forms they post.
//!
//! Every signed-in page is the same two panes: the conversation sidebar (groups and direct chats, newest
//! activity first, with unread counts) and either the start panel (home) or one conversation. On a
//! phone-sized screen the stylesheet shows one pane at a time. The pages work without JavaScript for
//! the basics (reading, sending, creating groups); the script adds live updates, history paging, read
//! markers, edits, replies, reactions, search and failover.
//!
//! Every form follows post-redirect-get: success and failure alike answer `303 See Other`, a failure
//! with a one-shot flash (see `flash`) that the page it lands on shows once. Pages embed live state (the
//! session's epoch, unread counts), so they are never cached.
//!
//! One module per page: `home` (signed out: log in and register; signed in: start a conversation),
//! `conversation` (a group or direct chat and the forms posted from it), `ephemeral` (an ephemeral
//! group, held only by the writer). `items` holds what the templates show.

mod conversation;
mod ephemeral;
mod home;
mod items;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::service::ChatServiceExt;
use crate::storage::{Epoch, UserTag};

use super::WebState;
use super::error::AppError;
use super::flash::{Flash, redirect_with};
use super::layout::{ErrorPage, Layout, render};
use super::middleware;
use super::session::ChatSession;
use items::ChatItem;

/// Messages a conversation page shows at first, and the page size of the script's history requests:
/// fewer than this means the page holds the start of the conversation.
const HISTORY_PAGE: u32 = 50;

/// Page routes: public (`/`, login, register, logout, assets) and the rest behind *auth*.
pub(super) fn router(state: WebState) -> Router {
    let protected = Router::new()
        .merge(home::protected())
        .merge(conversation::router())
        .merge(ephemeral::router())
        .route_layer(axum::middleware::from_fn(middleware::require_page_user));
    Router::new()
        .merge(home::public())
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/stats.js", get(stats_script))
        .route("/static/favicon.svg", get(favicon))
        .merge(protected)
        .with_state(state)
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../static/app.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../static/app.js"),
    )
}

/// The group page's stats panel (kept apart from `app.js`: it only draws the charts).
async fn stats_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../static/stats.js"),
    )
}

async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../../../static/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `name#1234` (or `name` and a separate tag) as typed in a form.
fn parse_handle(handle: &str, tag: Option<&str>) -> Result<(String, UserTag), AppError> {
    let invalid = || AppError::BadRequest("write the user as name#1234".into());
    let (name, tag) = match (handle.trim().rsplit_once('#'), tag.map(str::trim)) {
        (_, Some(tag)) if !tag.is_empty() => (handle.trim(), tag),
        (Some((name, tag)), _) => (name, tag),
        (None, _) => return Err(invalid()),
    };
    let tag = UserTag::parse(tag).map_err(|_| invalid())?;
    if name.trim().is_empty() {
        return Err(invalid());
    }
    Ok((name.trim().to_owned(), tag))
}
#[derive(Deserialize)]
struct HandleForm {
    handle: String,
}

/// An error inside a page handler: the page of the error, with `Retry-After` when it has one.
fn failed(state: &WebState, session: &ChatSession, error: AppError) -> Response {
    if matches!(error, AppError::Unauthenticated(_)) && session.user().is_some() {
        // The session names a user the cluster no longer knows: back to the login page.
        return Redirect::to("/").into_response();
    }
    let page = ErrorPage {
        layout: Layout::new(state, "Error", session.user()),
        status: error.status().as_u16(),
        message: error.public_message(),
    };
    let mut response = render(error.status(), &page);
    error.decorate(&mut response);
    response
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A failed form: back to `location`, where the error shows once and `kept` is back in its field.
fn back_with(state: &WebState, location: &str, flash: Flash) -> Response {
    redirect_with(location, &flash, state.options())
}

/// The sidebar of the signed-in user: its entries, their unread messages over all conversations, and
/// the epoch it was read at.
struct Sidebar {
    items: Vec<ChatItem>,
    unread: u64,
    epoch: Epoch,
}

async fn load_sidebar(state: &WebState, session: &mut ChatSession) -> Result<Sidebar, AppError> {
    let Some(me) = session.user().cloned() else {
        return Ok(Sidebar {
            items: Vec::new(),
            unread: 0,
            epoch: session.epoch(),
        });
    };
    let answer = session
        .observed(state.service.list_chats(session.context()))
        .await?;
    let items: Vec<ChatItem> = answer
        .value
        .iter()
        .map(|summary| ChatItem::new(summary, &me))
        .collect();
    let unread = items.iter().map(|item| item.unread).sum();
    Ok(Sidebar {
        items,
        unread,
        epoch: answer.epoch,
    })
}

/// Post-redirect-get for a form: to `done` when it worked; back to `back` when it failed, where the
/// error shows once and `typed` is put back in the form's `field`.
fn after_form(
    state: &WebState,
    result: Result<String, AppError>,
    back: &str,
    field: &str,
    typed: String,
) -> Response {
    match result {
        Ok(done) => see_other(&done),
        Err(error) => back_with(state, back, Flash::failed(&error, field, typed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_name_hash_four_digits_or_a_name_and_a_tag() {
        assert_eq!(
            parse_handle(" alice#0042 ", None).map(|(name, tag)| (name, tag.number())),
            Ok(("alice".into(), 42))
        );
        assert_eq!(
            parse_handle("bob", Some("1234")).map(|(name, tag)| (name, tag.number())),
            Ok(("bob".into(), 1234))
        );
        assert!(parse_handle("alice", None).is_err());
        assert!(parse_handle("alice#42", None).is_err());
        assert!(parse_handle("#0042", None).is_err());
    }
}
