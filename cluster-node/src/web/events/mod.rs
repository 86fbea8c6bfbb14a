//! Live updates: `GET /api/events`, a Server-Sent Events stream of the caller's new messages, deletions
//! and membership changes, each with `id:` = its epoch so that `Last-Event-ID` resumes it.
//!
//! ```text
//!   EventSource (writer's log broadcast, or the data plane's events down the tree)
//!        │ LogEntry, epoch order
//!        ▼
//!   EventHub task ── ring of recent entries (replay) + message→chat and user directories
//!        │ Arc<LogEntry>
//!        ▼
//!   one task per stream: Membership filter (groups from the service, then updated from the log)
//!        │ message / message_deleted / membership events
//!        ▼
//!   SSE body (mpsc) ── keep-alive comments
//! ```
//!
//! Resuming from epoch `E` (the `Last-Event-ID` header, or `?after=E` for a page that rendered at `E`):
//! the stream subscribes to the hub *first*, then replays what it missed, then goes live, processing
//! entries strictly in epoch order and skipping every epoch it already processed, so nothing is sent
//! twice and nothing falls between the catch-up and the live part. When the hub's ring still holds every
//! entry after `E`, it replays from the ring (exact: messages, deletions, memberships). Otherwise (the node
//! started after `E`, or the hub lagged) it asks the service for the group messages after `E` up to the
//! first entry the ring does hold, then replays the ring. Direct messages cannot be fetched that way
//! (the service has no "my direct chats" read), so a gap older than the ring loses direct-message events
//! only; the page reloads its open chat on reconnect, which covers what a person sees.
//!
//! Membership: a stream asks the service for the caller's groups (answered at epoch `X`) and then applies
//! the membership changes of entries after `X`. Entries at or before `X` are judged by the membership at
//! `X`: a user may at worst get messages of a group they have joined since, which they can read anyway,
//! and never messages of a group they are not a member of now.

//!
//! The parts: `hub` (the node's one follower of the log), `membership` (what an entry means to one
//! listener, pure), `stream` (one client's stream: catch-up, then live), `ephemeral` (ephemeral
//! groups' events, which are not in the log, and their end when the writer changes).

#[cfg(test)]
mod entries;
mod ephemeral;
mod hub;
mod membership;
mod stream;

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::storage::Epoch;

use super::WebState;
use super::error::{ApiQuery, AppError};
use super::openapi::ApiErrors;
use super::respond::with_epoch;
use super::session::ChatSession;

pub(crate) use ephemeral::EphemeralFeed;
pub(crate) use hub::EventHub;
use stream::EventStream;

/// Events buffered between a stream's task and its HTTP body.
const OUT_BUFFER: usize = 64;

pub(super) fn router() -> utoipa_axum::router::OpenApiRouter<WebState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(events))
}

#[derive(Debug, Default, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: Option<String>,
}

fn parse_epoch(text: &str) -> Result<Epoch, AppError> {
    text.trim().parse::<u64>().map(Epoch).map_err(|_| {
        AppError::BadRequest("an event id is an epoch (a non-negative integer)".into())
    })
}

#[utoipa::path(
    get,
    operation_id = "events_events",
    path = "/api/events",
    tag = "events",
    summary = "The live event stream (text/event-stream; `id:` is the epoch, so Last-Event-ID resumes)",
    params(("after" = Option<u64>, Query, description = "Resume after this epoch (as Last-Event-ID does)")),
    responses((status = 200, description = "Server-sent events: message, message_edited, reaction, message_deleted, membership, read", content_type = "text/event-stream", body = String), ApiErrors),
    security(("session" = []))
)]
async fn events(
    State(state): State<WebState>,
    mut session: ChatSession,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, AppError> {
    let user = session.require_user()?.clone();
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| AppError::BadRequest("Last-Event-ID is not text".into()))
                .and_then(parse_epoch)
        })
        .transpose()?;
    let after = match last_event_id {
        Some(epoch) => Some(epoch),
        None => match query.after.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_epoch(text)?),
        },
    };
    let stream = EventStream::open(state.clone(), user, session.epoch(), after).await?;
    let epoch = stream.known_at();
    session.observe(epoch).await?;
    let (out, events) = mpsc::channel(OUT_BUFFER);
    tokio::spawn(stream.run(out));
    let body = futures::stream::unfold(events, |mut events| async move {
        events
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), events))
    });
    let sse = Sse::new(body).keep_alive(KeepAlive::new().interval(state.options.keep_alive));
    Ok(with_epoch(epoch, sse.into_response()))
}
