//! The live feed: `GET /api/events` followed across input nodes. When the stream breaks, the feed
//! reopens it through the nameserver on another node with `Last-Event-ID` set to the last epoch it
//! passed on; the server replays what came after it, and the feed drops anything at or below it, so a
//! failover neither loses nor repeats a message.

use std::time::{Duration, Instant};

use crate::api::Message;
use crate::connection::{Connection, Node};
use crate::error::ClientError;
use crate::sse::{EventReader, Frame, StreamEnd};

/// Twice the server's keep-alive interval (15 s) and a little: a stream silent that long is dead even if
/// its connection was never closed (a hung node, a cut network).
const SILENCE_LIMIT: Duration = Duration::from_secs(35);
/// Between attempts to reopen while no node takes the stream.
const REOPEN_PAUSE: Duration = Duration::from_millis(250);

/// What the feed tells its reader.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// Following the stream on `node`; `outage` is how long it was broken, after a reconnect.
    Connected {
        node: Node,
        outage: Option<Duration>,
    },
    /// The stream on `node` broke; the feed is looking for another node.
    Lost { node: Node, reason: String },
    /// A new message; `raw` is its JSON as the server sent it.
    Message { message: Message, raw: String },
    /// Any other event (edits, reactions, read markers, membership), by its SSE type.
    Other { kind: String, raw: String },
}

pub struct LiveFeed {
    connection: Connection,
    /// The last epoch passed on: where a reopened stream resumes.
    last_epoch: Option<u64>,
    reader: Option<(Node, EventReader)>,
    lost_at: Option<Instant>,
    ever_connected: bool,
}

impl LiveFeed {
    /// A feed of what happens after `after`, or from now on when `None`.
    pub fn new(connection: Connection, after: Option<u64>) -> LiveFeed {
        LiveFeed {
            connection,
            last_epoch: after,
            reader: None,
            lost_at: None,
            ever_connected: false,
        }
    }

    /// The last epoch passed on.
    pub fn last_epoch(&self) -> Option<u64> {
        self.last_epoch
    }

    /// The next event. Once the stream has opened, a broken stream is reopened for as long as it takes;
    /// only an ended session or a failure to open it at all is an error.
    pub async fn next(&mut self) -> Result<FeedEvent, ClientError> {
        loop {
            let Some((node, reader)) = &mut self.reader else {
                match self.connection.open_events(self.last_epoch).await {
                    Ok((node, response)) => {
                        self.reader = Some((node.clone(), EventReader::new(response)));
                        self.ever_connected = true;
                        let outage = self.lost_at.take().map(|lost| lost.elapsed());
                        return Ok(FeedEvent::Connected { node, outage });
                    }
                    Err(error @ (ClientError::NotLoggedIn | ClientError::SessionEnded)) => {
                        return Err(error);
                    }
                    Err(error) if !self.ever_connected => return Err(error),
                    Err(_) => {
                        tokio::time::sleep(REOPEN_PAUSE).await;
                        continue;
                    }
                }
            };
            let frame = match reader.next(SILENCE_LIMIT).await {
                Ok(frame) => frame,
                Err(end) => {
                    let node = node.clone();
                    self.connection.fail(&node);
                    self.reader = None;
                    self.lost_at.get_or_insert_with(Instant::now);
                    let reason = match end {
                        StreamEnd::Closed(reason) => reason,
                        StreamEnd::Silent => format!("silent for {}s", SILENCE_LIMIT.as_secs()),
                    };
                    return Ok(FeedEvent::Lost { node, reason });
                }
            };
            if let Some(event) = self.accept(frame) {
                return Ok(event);
            }
        }
    }

    /// Moves the resume point past `frame` and answers what it means, or `None` for a frame already
    /// passed on or only of interest to the feed itself.
    fn accept(&mut self, frame: Frame) -> Option<FeedEvent> {
        if let Some(epoch) = frame.epoch() {
            if self.last_epoch.is_some_and(|last| epoch <= last) {
                return None;
            }
            self.last_epoch = Some(epoch);
        }
        match frame.kind() {
            // The stream's "now": a feed that started without a resume point resumes from here.
            "ready" => {
                if self.last_epoch.is_none() {
                    self.last_epoch = serde_json::from_str::<serde_json::Value>(&frame.data)
                        .ok()
                        .and_then(|data| data["epoch"].as_u64());
                }
                None
            }
            "message" => match serde_json::from_str::<Message>(&frame.data) {
                Ok(message) => Some(FeedEvent::Message {
                    message,
                    raw: frame.data,
                }),
                Err(_) => Some(FeedEvent::Other {
                    kind: "message".into(),
                    raw: frame.data,
                }),
            },
            kind => Some(FeedEvent::Other {
                kind: kind.to_owned(),
                raw: frame.data,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Options;

    fn feed(after: Option<u64>) -> LiveFeed {
        let options = Options {
            nameservers: vec!["http://127.0.0.1:9".into()],
            ca_certificate: None,
            patience: Duration::from_secs(1),
        };
        let connection = Connection::new(&options, Default::default()).expect("a client");
        LiveFeed::new(connection, after)
    }

    fn message_frame(epoch: u64) -> Frame {
        Frame {
            id: Some(epoch.to_string()),
            event: Some("message".into()),
            data: format!(
                r#"{{"id":"m{epoch}","chat":"g","sender":{{"id":"u","username":"ada","tag":"0218"}},"content":"hi","created_at":"2026-01-01T10:00:00.000Z","epoch":{epoch}}}"#
            ),
        }
    }

    #[test]
    fn a_replayed_epoch_is_passed_on_once() {
        let mut feed = feed(Some(4));

        let old = feed.accept(message_frame(4));
        let new = feed.accept(message_frame(5));
        let again = feed.accept(message_frame(5));

        assert!(old.is_none());
        assert!(matches!(new, Some(FeedEvent::Message { message, .. }) if message.epoch == 5));
        assert!(again.is_none());
        assert_eq!(feed.last_epoch(), Some(5));
    }

    #[test]
    fn a_fresh_feed_resumes_from_the_streams_ready_epoch() {
        let mut feed = feed(None);
        let ready = Frame {
            id: None,
            event: Some("ready".into()),
            data: r#"{"epoch":12}"#.into(),
        };

        assert!(feed.accept(ready).is_none());
        assert_eq!(feed.last_epoch(), Some(12));
        assert!(feed.accept(message_frame(12)).is_none());
    }
}
