//! Server-Sent Events over a reqwest response: `id:`, `event:` and `data:` fields, comments (the
//! server's keep-alives) ignored, a blank line ends a frame. Written here rather than taken from a crate
//! because the stream must be reopened on another node with our own cookie and `Last-Event-ID`, which
//! is the part the crates own, and the parsing itself is these few lines.

use std::collections::VecDeque;
use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    /// `None` means the default type, `message`.
    pub event: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The `id:` as an epoch, when it is one.
    pub fn epoch(&self) -> Option<u64> {
        self.id.as_deref().and_then(|id| id.trim().parse().ok())
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
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(frame) = self.line(&String::from_utf8_lossy(&line)) {
                frames.push(frame);
            }
        }
        frames
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        if line.is_empty() {
            let frame = std::mem::take(&mut self.current);
            return std::mem::take(&mut self.has_data).then_some(frame);
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

/// Why a stream stopped giving frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed it, or the connection broke.
    Closed(String),
    /// Nothing at all, not even a keep-alive, for longer than the server's keep-alive interval allows:
    /// the node is hung or the network between is.
    Silent,
}

/// An open `text/event-stream` response, read chunk by chunk.
pub struct EventReader {
    response: reqwest::Response,
    parser: Parser,
    ready: VecDeque<Frame>,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        EventReader {
            response,
            parser: Parser::default(),
            ready: VecDeque::new(),
        }
    }

    /// The next frame; `idle` bounds the wait for any bytes at all.
    pub async fn next(&mut self, idle: Duration) -> Result<Frame, StreamEnd> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(frame);
            }
            match tokio::time::timeout(idle, self.response.chunk()).await {
                Err(_) => return Err(StreamEnd::Silent),
                // reqwest calls a cut chunked body "error decoding response body"; say what it means.
                Ok(Err(_)) => return Err(StreamEnd::Closed("the connection broke".into())),
                Ok(Ok(None)) => {
                    return Err(StreamEnd::Closed("the server closed the stream".into()));
                }
                Ok(Ok(Some(chunk))) => self.ready.extend(self.parser.push(&chunk)),
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
        assert_eq!(expected[1].epoch(), Some(7));
        assert_eq!(expected[2].kind(), "message");
    }

    #[test]
    fn a_frame_without_data_is_not_dispatched() {
        let mut parser = Parser::default();
        assert!(parser.push(b"id: 4\nevent: x\n\n").is_empty());
    }
}
