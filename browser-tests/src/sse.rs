//! A minimal Server-Sent Events reader: `id:`, `event:` and `data:` fields, comments (`:` lines, the
//! server's keep-alives) ignored, a blank line ends a frame. Enough for `GET /api/events`; it follows the
//! WHATWG parsing rules for these fields (one optional space after the colon, `data` lines joined with
//! `\n`, frames without data are not dispatched), except that a lone `\r` does not end a line.

use std::time::Duration;

use tokio::time::Instant;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    /// The `event:` field; `None` means the default type (`message`).
    pub event: Option<String>,
    pub data: String,
}

impl Frame {
    /// The event type, `message` when the frame named none.
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The data parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("event data is not JSON ({error}): {:?}", self.data))
    }
}

/// Turns bytes into frames, whatever the chunking.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Vec<u8>,
    current: Frame,
    has_data: bool,
}

impl Parser {
    /// Feeds `bytes`; answers the frames they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.pending.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(frame) = self.line(&line) {
                frames.push(frame);
            }
        }
        frames
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        if line.is_empty() {
            let frame = std::mem::take(&mut self.current);
            let had_data = std::mem::take(&mut self.has_data);
            return had_data.then_some(frame);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

/// An open event stream: a response body read chunk by chunk and parsed into frames.
pub struct EventStream {
    response: reqwest::Response,
    parser: Parser,
    ready: std::collections::VecDeque<Frame>,
}

impl EventStream {
    /// Wraps a `200 text/event-stream` response (panics on anything else).
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(
            response.status(),
            200,
            "GET /api/events answered {}",
            response.status()
        );
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET /api/events is not an event stream: {content_type:?}"
        );
        Self {
            response,
            parser: Parser::default(),
            ready: Default::default(),
        }
    }

    /// The next frame, or `None` when none arrived within `timeout` or the stream ended.
    pub async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the event stream reads without error")?;
            self.ready.extend(self.parser.push(&chunk));
        }
    }

    /// Skips frames until one of type `kind` arrives; panics when none does within `timeout`.
    pub async fn next_of(&mut self, kind: &str, timeout: Duration) -> Frame {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(frame) if frame.kind() == kind => return frame,
                Some(_) => {}
                None => panic!("no {kind:?} event within {timeout:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_parsed_whatever_the_chunking() {
        let text = ": keep-alive\n\nevent: ready\ndata: {\"epoch\":3}\n\n\
                    id: 7\nevent: message\ndata: a\ndata:b\r\n\r\ndata: plain\n\n";
        let expected = vec![
            Frame {
                id: None,
                event: Some("ready".into()),
                data: "{\"epoch\":3}".into(),
            },
            Frame {
                id: Some("7".into()),
                event: Some("message".into()),
                data: "a\nb".into(),
            },
            Frame {
                id: None,
                event: None,
                data: "plain".into(),
            },
        ];
        for size in 1..text.len() {
            let mut parser = Parser::default();
            let frames: Vec<Frame> = text
                .as_bytes()
                .chunks(size)
                .flat_map(|chunk| parser.push(chunk))
                .collect();
            assert_eq!(frames, expected, "chunks of {size}");
        }
        assert_eq!(expected[2].kind(), "message");
    }

    #[test]
    fn a_frame_without_data_is_not_dispatched() {
        let mut parser = Parser::default();
        assert!(parser.push(b"id: 4\nevent: x\n\n").is_empty());
    }
}
