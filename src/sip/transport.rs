//! SIP transports from the endpoint's side (RFC 3261 §18): which transport
//! a message came in on, where a reply must go, and the framing of a byte
//! stream (TCP or TLS) into messages by Content-Length.
//!
//! Nothing here owns a socket. The runtime reads bytes, feeds them to a
//! [`StreamFramer`] per connection, and hands each framed message to the
//! endpoint together with a [`Received`].

use std::net::SocketAddr;

/// A SIP transport protocol (RFC 3261 §18, RFC 5630 for TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// A byte stream framed by Content-Length.
    Tcp,
    /// TCP with TLS (SIPS), framed like TCP.
    Tls,
}

impl Transport {
    /// Returns the transport token of a Via header (RFC 3261 §20.42): `UDP`, `TCP` or `TLS`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Returns the value of the `transport` URI parameter (RFC 3261 §19.1.1).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Returns whether messages arrive as a byte stream that needs Content-Length framing.
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
}

/// Identifier of one TCP or TLS connection, chosen by the runtime and unique
/// while the process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

/// Origin of a received message, passed with every `Endpoint::handle_message` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Transport the message came in on.
    pub transport: Transport,
    /// Address of our listener that received it; Via and Contact of what we
    /// send in the same transaction or dialog name this address.
    pub local: SocketAddr,
    /// Address of the sender (the remote end of the connection on TCP and TLS).
    pub source: SocketAddr,
    /// The connection on TCP and TLS; None on UDP.
    pub connection: Option<ConnectionId>,
}

/// Path of an outgoing message: transport, local listener, destination
/// and, on TCP and TLS, the connection to use first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// Transport to send on.
    pub transport: Transport,
    /// Listener address to send from and to name in Via and Contact.
    pub local: SocketAddr,
    /// Remote address.
    pub destination: SocketAddr,
    /// Connection the request came in on; replies use it while it is open (RFC 3261 §18.2.2).
    pub connection: Option<ConnectionId>,
}

/// One item cut from a byte stream by [`StreamFramer::next_frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFrame {
    /// A complete SIP message: header section, empty line and Content-Length body bytes.
    Message(Vec<u8>),
    /// A double-CRLF keep-alive ping (RFC 5626 §4.4.1); the runtime replies with one CRLF.
    KeepAlive,
    /// The stream cannot be framed any further. The runtime passes `header`
    /// to `Endpoint::reject_unframed` (which sends 400 when a Via can be
    /// read) and then closes the connection.
    Invalid {
        /// The header section when one was complete, for the 400 response.
        header: Option<Vec<u8>>,
        /// Cause of the framing failure.
        error: FramingError,
    },
}

/// Failure to frame a byte stream into SIP messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("no end of the header section within {max} bytes; the connection is closed")]
    HeaderTooLarge { max: usize },
    #[error("message of {size} bytes exceeds the limit of {max} bytes; the connection is closed")]
    MessageTooLarge { size: usize, max: usize },
    #[error("message on a stream has no Content-Length (RFC 3261 §18.3 requires it); the connection is closed")]
    MissingContentLength,
    #[error("Content-Length {value:?} is not a non-negative decimal; the connection is closed")]
    InvalidContentLength { value: String },
}

/// Frames a TCP or TLS byte stream into SIP messages by Content-Length (RFC 3261 §18.3).
///
/// The driver calls [`StreamFramer::push`] with every read, then
/// [`StreamFramer::next_frame`] until it returns None. Several messages in
/// one read and a message split over several reads both work. After
/// [`StreamFrame::Invalid`] the framer returns None for good.
#[derive(Debug)]
pub struct StreamFramer {
    /// Bytes read but not yet returned as a frame.
    buffer: Vec<u8>,
    /// Largest message accepted, header section and body together.
    max_message_bytes: usize,
    /// Set after an Invalid frame: the stream has lost its framing.
    failed: bool,
}

impl StreamFramer {
    /// Creates a framer that accepts messages of up to `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        StreamFramer {
            buffer: Vec::new(),
            max_message_bytes,
            failed: false,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Returns the next complete frame, or None when more bytes are needed.
    #[must_use]
    pub fn next_frame(&mut self) -> Option<StreamFrame> {
        if self.failed {
            return None;
        }

        // RFC 5626 §4.4.1: a double CRLF between messages is a keep-alive
        // ping. Other CRLFs before a start line are ignored (RFC 3261 §7.5).
        loop {
            if self.buffer.starts_with(b"\r\n\r\n") {
                self.buffer.drain(..4);
                return Some(StreamFrame::KeepAlive);
            }
            let leading = self
                .buffer
                .iter()
                .take_while(|byte| **byte == b'\r' || **byte == b'\n')
                .count();
            if leading == self.buffer.len() {
                // Only line breaks so far: they may become a ping.
                return None;
            }
            if leading == 0 {
                break;
            }
            self.buffer.drain(..leading);
        }

        let Some(header_end) = find_subslice(&self.buffer, b"\r\n\r\n") else {
            if self.buffer.len() > self.max_message_bytes {
                return Some(self.fail(
                    None,
                    FramingError::HeaderTooLarge {
                        max: self.max_message_bytes,
                    },
                ));
            }
            return None;
        };
        let body_start = header_end + 4;
        let header = self.buffer.get(..header_end).unwrap_or_default().to_vec();

        let content_length = match content_length(&header) {
            Ok(length) => length,
            Err(error) => return Some(self.fail(Some(header), error)),
        };
        let size = body_start.saturating_add(content_length);
        if size > self.max_message_bytes {
            let error = FramingError::MessageTooLarge {
                size,
                max: self.max_message_bytes,
            };
            return Some(self.fail(Some(header), error));
        }
        if self.buffer.len() < size {
            return None;
        }

        let message: Vec<u8> = self.buffer.drain(..size).collect();
        Some(StreamFrame::Message(message))
    }

    fn fail(&mut self, header: Option<Vec<u8>>, error: FramingError) -> StreamFrame {
        self.failed = true;
        self.buffer = Vec::new();
        StreamFrame::Invalid { header, error }
    }
}

/// Reads Content-Length (or its compact form `l`) from a header section.
fn content_length(header: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(header);
    let value = text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().to_string())
    });
    let Some(value) = value else {
        return Err(FramingError::MissingContentLength);
    };

    let is_decimal = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
    value
        .parse::<usize>()
        .ok()
        .filter(|_| is_decimal)
        .ok_or(FramingError::InvalidContentLength { value })
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

    fn frames(framer: &mut StreamFramer) -> Vec<StreamFrame> {
        std::iter::from_fn(|| framer.next_frame()).collect()
    }

    #[test]
    fn framer_splits_two_messages_in_one_read() {
        let mut framer = StreamFramer::new(65_535);
        framer.push(format!("{OPTIONS}{OPTIONS}").as_bytes());
        let framed = frames(&mut framer);
        assert_eq!(framed.len(), 2);
        assert_eq!(framed[0], StreamFrame::Message(OPTIONS.as_bytes().to_vec()));
        assert_eq!(framed[1], StreamFrame::Message(OPTIONS.as_bytes().to_vec()));
    }

    #[test]
    fn framer_joins_partial_reads() {
        let mut framer = StreamFramer::new(65_535);
        let bytes = OPTIONS.as_bytes();
        for chunk in bytes.chunks(7) {
            assert!(frames(&mut framer).is_empty());
            framer.push(chunk);
        }
        assert_eq!(
            frames(&mut framer),
            vec![StreamFrame::Message(bytes.to_vec())]
        );
    }

    #[test]
    fn framer_waits_for_the_whole_body() {
        let mut framer = StreamFramer::new(65_535);
        framer.push(OPTIONS.strip_suffix("dy").unwrap().as_bytes());
        assert!(frames(&mut framer).is_empty());
        framer.push(b"dy");
        assert_eq!(frames(&mut framer).len(), 1);
    }

    #[test]
    fn framer_answers_keepalive_and_skips_crlf() {
        let mut framer = StreamFramer::new(65_535);
        framer.push(b"\r\n");
        assert!(frames(&mut framer).is_empty());
        framer.push(b"\r\n");
        assert_eq!(frames(&mut framer), vec![StreamFrame::KeepAlive]);

        framer.push(format!("\r\n{OPTIONS}").as_bytes());
        assert_eq!(
            frames(&mut framer),
            vec![StreamFrame::Message(OPTIONS.as_bytes().to_vec())]
        );
    }

    #[test]
    fn framer_rejects_missing_content_length() {
        let mut framer = StreamFramer::new(65_535);
        let header = "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1";
        framer.push(format!("{header}\r\n\r\n{OPTIONS}").as_bytes());
        assert_eq!(
            frames(&mut framer),
            vec![StreamFrame::Invalid {
                header: Some(header.as_bytes().to_vec()),
                error: FramingError::MissingContentLength,
            }]
        );
        framer.push(OPTIONS.as_bytes());
        assert!(
            frames(&mut framer).is_empty(),
            "a failed framer stays closed"
        );
    }

    #[test]
    fn framer_rejects_invalid_content_length() {
        for value in ["-1", "abc", "", "99999999999999999999999"] {
            let mut framer = StreamFramer::new(65_535);
            framer.push(format!("OPTIONS sip:a@h SIP/2.0\r\nl: {value}\r\n\r\n").as_bytes());
            let framed = frames(&mut framer);
            let [StreamFrame::Invalid { error, .. }] = framed.as_slice() else {
                panic!("{value:?}: expected one Invalid frame, got {framed:?}");
            };
            assert_eq!(
                *error,
                FramingError::InvalidContentLength {
                    value: value.to_string()
                }
            );
        }
    }

    #[test]
    fn framer_rejects_oversized_message_and_header() {
        let mut framer = StreamFramer::new(100);
        framer.push(b"OPTIONS sip:a@h SIP/2.0\r\nContent-Length: 200\r\n\r\n");
        let framed = frames(&mut framer);
        assert!(matches!(
            framed.as_slice(),
            [StreamFrame::Invalid {
                header: Some(_),
                error: FramingError::MessageTooLarge { max: 100, .. }
            }]
        ));

        let mut framer = StreamFramer::new(100);
        framer.push(&[b'a'; 101]);
        assert_eq!(
            frames(&mut framer),
            vec![StreamFrame::Invalid {
                header: None,
                error: FramingError::HeaderTooLarge { max: 100 }
            }]
        );
    }

    #[test]
    fn transport_tokens() {
        assert_eq!(Transport::Udp.via_token(), "UDP");
        assert_eq!(Transport::Tls.via_token(), "TLS");
        assert_eq!(Transport::Tcp.uri_param(), "tcp");
        assert!(Transport::Tls.is_stream());
        assert!(!Transport::Udp.is_stream());
    }
}
