//! SIP message framing, validation and serialisation.
//!
//! This module and its children are the only place that names rsipstack
//! (pinned to 0.7.14). rsipstack supplies the method, status-code, URI and
//! header types and serialises what we send (`build.rs`).
//!
//! Received datagrams are framed here rather than by rsipstack's parser, for
//! two reasons found in its 0.7.14 source. The parser fails on any method
//! outside its `Method` enum, so an extension method could not get its 501.
//! Its line splitter also stops at the first header line that is not UTF-8
//! and silently drops the headers after it. After framing, `validate.rs`
//! applies the checks of RFC 3261 that rsipstack's lenient parser skips, and
//! maps each failure to the status code the sender should get.

use std::net::SocketAddr;

mod build;
mod validate;

/// SIP request method, re-exported so that the endpoint never names rsipstack.
pub(crate) use rsipstack::sip::Method;

pub(crate) use build::{build_request, build_response, RequestParts, ResponseParts};
pub(crate) use validate::{IncomingRequest, IncomingResponse, RequestMethod};

/// Largest datagram accepted. A UDP payload cannot exceed 65,535 bytes
/// (RFC 768 length field), so anything larger is not a single UDP message.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Compact header names (RFC 3261 §7.3.3, RFC 3515, RFC 3892, RFC 4028,
/// RFC 6665) and the full names they stand for.
const COMPACT_HEADER_NAMES: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("o", "Event"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
];

/// Characters allowed in a `token` besides letters and digits (RFC 3261 §25.1).
const TOKEN_SYMBOLS: &[u8] = b"-.!%*_+`'~";

/// A received message that failed framing or validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error(
        "datagram of {size} bytes exceeds the limit of {MAX_MESSAGE_SIZE} bytes; it is dropped"
    )]
    TooLarge { size: usize },
    #[error("no empty line ends the header section; the datagram is truncated or not SIP")]
    MissingHeaderEnd,
    #[error("header line {line} is empty, has no colon, has a name that is not a token, or continues no header")]
    InvalidHeaderLine { line: usize },
    #[error("invalid start line: {reason}")]
    InvalidStartLine { reason: &'static str },
    #[error("unsupported protocol version {version:?}; only SIP/2.0 is supported")]
    UnsupportedVersion { version: String },
    #[error("unsupported Request-URI scheme {scheme:?}; only sip, sips and tel are supported")]
    UnsupportedUriScheme { scheme: String },
    #[error("invalid Request-URI: {reason}")]
    InvalidRequestUri { reason: String },
    #[error("required header {name} is missing")]
    MissingHeader { name: &'static str },
    #[error("header {name} occurs {count} times but takes a single value")]
    RepeatedHeader { name: &'static str, count: usize },
    #[error("invalid {name} header: {reason}")]
    InvalidHeader {
        name: &'static str,
        reason: &'static str,
    },
    #[error("CSeq method {cseq_method:?} does not match the request method {method:?}")]
    CSeqMethodMismatch { method: String, cseq_method: String },
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    ContentLengthTooLarge { declared: usize, available: usize },
    #[error("message on a stream could not be framed: {reason}")]
    Unframed { reason: String },
}

impl MessageError {
    /// Returns the status code of the response to a request that failed with this error.
    pub fn status(&self) -> u16 {
        match self {
            MessageError::UnsupportedVersion { .. } => 505,
            MessageError::UnsupportedUriScheme { .. } => 416,
            _ => 400,
        }
    }
}

/// One header line after unfolding, with a compact name replaced by its full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHeader {
    /// Full header name, in the letter case of the sender unless it was compact.
    pub name: String,
    /// Value with surrounding white space removed and folded lines joined by one space.
    pub value: String,
}

/// A datagram cut into start line, headers and body, before any validation.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage {
    /// First line, without its line ending.
    pub start_line: String,
    /// Header lines in received order.
    pub headers: Vec<RawHeader>,
    /// Every byte after the empty line; Content-Length is applied in validation.
    pub body: Vec<u8>,
    /// First framing fault: a missing empty line, or a header line that was
    /// skipped because it could not be read. Validation fails with it, and
    /// the headers that were read still route a 400.
    pub defect: Option<MessageError>,
}

/// The empty line that ends the header section (RFC 3261 §7).
const HEADER_SECTION_END: &[u8] = b"\r\n\r\n";

impl RawMessage {
    /// Splits a datagram into start line, unfolded headers and body.
    ///
    /// Fails only for a datagram over [`MAX_MESSAGE_SIZE`]. A datagram
    /// without the empty line, or with a header line that has no colon or a
    /// name that is not a token, is framed as far as it can be read and
    /// carries the fault in `defect`. Header bytes that are not UTF-8 are
    /// replaced with U+FFFD, which keeps the line (and every header after
    /// it) available for routing a reply.
    pub fn frame(datagram: &[u8]) -> Result<RawMessage, MessageError> {
        if datagram.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge {
                size: datagram.len(),
            });
        }

        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let leading = datagram
            .iter()
            .take_while(|byte| **byte == b'\r' || **byte == b'\n')
            .count();
        let message = datagram.get(leading..).unwrap_or_default();

        // RFC 3261 §7 requires the empty line even without a body, so a
        // datagram without it is truncated or not SIP.
        let (header_end, body_start, mut defect) = match find_subslice(message, HEADER_SECTION_END)
        {
            Some(end) => (end, end + HEADER_SECTION_END.len(), None),
            None => {
                let without_last_crlf = message.strip_suffix(b"\r\n").unwrap_or(message);
                (
                    without_last_crlf.len(),
                    message.len(),
                    Some(MessageError::MissingHeaderEnd),
                )
            }
        };
        let header_section = String::from_utf8_lossy(message.get(..header_end).unwrap_or_default());
        let body = message.get(body_start..).unwrap_or_default().to_vec();

        let mut lines = header_section
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let start_line = lines.next().unwrap_or_default().to_string();

        let mut headers: Vec<RawHeader> = Vec::new();
        for (index, line) in lines.enumerate() {
            let line_number = index + 2;

            // An empty line here ends a header section framed with bare LFs,
            // so the rest is not read as headers.
            if line.is_empty() {
                defect.get_or_insert(MessageError::InvalidHeaderLine { line: line_number });
                break;
            }

            if line.starts_with([' ', '\t']) {
                match headers.last_mut() {
                    Some(previous) => {
                        previous.value.push(' ');
                        previous.value.push_str(line.trim());
                        previous.value = previous.value.trim().to_string();
                    }
                    None => {
                        defect.get_or_insert(MessageError::InvalidHeaderLine { line: line_number });
                    }
                }
                continue;
            }

            let header = line.split_once(':').and_then(|(name, value)| {
                let name = name.trim();
                is_token(name).then(|| RawHeader {
                    name: full_header_name(name).to_string(),
                    value: value.trim().to_string(),
                })
            });
            match header {
                Some(header) => headers.push(header),
                None => {
                    defect.get_or_insert(MessageError::InvalidHeaderLine { line: line_number });
                }
            }
        }

        Ok(RawMessage {
            start_line,
            headers,
            body,
            defect,
        })
    }

    /// Returns whether the start line is a Status-Line.
    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/")
    }

    /// Returns the value of every header line named `name` (case-insensitive).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// Returns the value of the first header line named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// Returns the request method token of a Request-Line, if there is one.
    pub fn request_method(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.start_line.split(' ').next()
    }

    /// Adds `received` (and the `rport` value when rport is present) to the
    /// top Via hop, as the server transport does on receipt (RFC 3261
    /// §18.2.1, RFC 3581 §4), so every response copies it.
    ///
    /// `received` is added even when the sent-by already names the source
    /// address, which RFC 3261 allows and saves a comparison of host names.
    pub fn stamp_received(&mut self, source: SocketAddr) {
        let Some(via) = self
            .headers
            .iter_mut()
            .find(|header| header.name.eq_ignore_ascii_case("Via"))
        else {
            return;
        };
        let hops = split_header_values(&via.value);
        let Some((first, rest)) = hops.split_first() else {
            return;
        };
        let Some(parsed) = ViaHop::parse(first) else {
            return;
        };

        let mut stamped: String = first
            .split(';')
            .filter(|param| {
                let name = param.split('=').next().unwrap_or_default().trim();
                !name.eq_ignore_ascii_case("received") && !name.eq_ignore_ascii_case("rport")
            })
            .collect::<Vec<_>>()
            .join(";");
        stamped.push_str(&format!(";received={}", source.ip()));
        if parsed.rport {
            stamped.push_str(&format!(";rport={}", source.port()));
        }

        let mut value = stamped;
        for hop in rest {
            value.push_str(", ");
            value.push_str(hop);
        }
        via.value = value;
    }

    /// Returns the top Via hop when it can be read well enough to route a reply.
    pub fn top_via(&self) -> Option<ViaHop> {
        let first_value = self.value("Via")?;
        let first_hop = split_header_values(first_value).into_iter().next()?;
        ViaHop::parse(first_hop)
    }
}

/// The fields of one Via hop that a UAS needs (RFC 3261 §18.2.2, RFC 3581).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViaHop {
    /// Host of the sent-by in lower case, an IPv6 address with its brackets.
    pub host: String,
    /// Port of the sent-by, if given; replies go to 5060 otherwise.
    pub port: Option<u16>,
    /// The branch parameter, the transaction identifier of RFC 3261 §17.2.3.
    pub branch: Option<String>,
    /// Whether the rport parameter is present (RFC 3581): replies then go to the source port.
    pub rport: bool,
    /// Whether the hop has an empty parameter such as `;;`, which RFC 3261 §25.1 forbids.
    pub has_empty_param: bool,
}

impl ViaHop {
    /// Parses `SIP / 2.0 / transport sent-by *(; param)`; returns None when no sent-by can be read.
    ///
    /// The protocol version in Via is not checked, so a request with a
    /// wrong version can still get a 505 response.
    pub fn parse(hop: &str) -> Option<ViaHop> {
        let mut rest = hop.trim();
        for _ in 0..2 {
            let slash = rest.find('/')?;
            rest = rest.get(slash + 1..)?.trim_start();
        }

        let transport_end = rest.find(char::is_whitespace)?;
        let after_transport = rest.get(transport_end..)?.trim_start();
        let mut parts = after_transport.split(';');
        let sent_by = parts.next()?.trim();
        let (host, port) = parse_sent_by(sent_by)?;

        let mut via = ViaHop {
            host: host.to_ascii_lowercase(),
            port,
            branch: None,
            rport: false,
            has_empty_param: false,
        };
        for param in parts {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (param.trim(), None),
            };
            if name.is_empty() {
                via.has_empty_param = true;
            } else if name.eq_ignore_ascii_case("branch") {
                via.branch = value.map(str::to_string);
            } else if name.eq_ignore_ascii_case("rport") {
                via.rport = true;
            }
        }
        Some(via)
    }
}

/// Splits a sent-by (`host[:port]`, IPv6 in brackets) into host and port;
/// returns None when it is unreadable.
fn parse_sent_by(sent_by: &str) -> Option<(&str, Option<u16>)> {
    if sent_by.is_empty() || sent_by.contains(char::is_whitespace) {
        return None;
    }

    let (host, after_host) = if sent_by.starts_with('[') {
        let close = sent_by.find(']')?;
        (sent_by.get(..=close)?, sent_by.get(close + 1..)?)
    } else {
        match sent_by.split_once(':') {
            Some((host, port)) if !host.is_empty() => {
                return port.parse().ok().map(|port| (host, Some(port)))
            }
            Some(_) => return None,
            None => (sent_by, ""),
        }
    };

    match after_host.strip_prefix(':') {
        Some(port) => port.parse().ok().map(|port| (host, Some(port))),
        None if after_host.is_empty() => Some((host, None)),
        None => None,
    }
}

/// Parses a run of ASCII digits (leading zeros allowed) that fits in u64.
pub(crate) fn parse_digits(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Returns whether `text` is a `token` (RFC 3261 §25.1).
pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || TOKEN_SYMBOLS.contains(&byte))
}

fn full_header_name(name: &str) -> &str {
    COMPACT_HEADER_NAMES
        .iter()
        .find(|(compact, _)| compact.eq_ignore_ascii_case(name))
        .map_or(name, |(_, full)| full)
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Splits a header value at commas that are outside quotes and `<>`
/// (RFC 3261 §7.3.1), trimming each part and skipping empty ones.
pub(crate) fn split_header_values(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut in_angle = false;
    let mut start = 0;

    for (index, character) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                in_quotes = false;
            }
            continue;
        }
        match character {
            '"' => in_quotes = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ',' if !in_angle => {
                parts.push(value.get(start..index).unwrap_or_default());
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or_default());

    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect()
}

/// Returns the value of header parameter `name` of a name-addr or addr-spec,
/// for example the tag of a From header. Parameters inside `<>` belong to the
/// URI and are skipped.
pub(crate) fn header_param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(close) => value.get(close + 1..)?,
        None => value.split_once(';').map(|(_, params)| params)?,
    };

    params.split(';').find_map(|param| {
        let (key, param_value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| param_value.trim().to_string())
    })
}

/// Returns the URI of a name-addr (`"x" <uri>;p`) or addr-spec (`uri;p`).
pub(crate) fn address_uri(value: &str) -> &str {
    if let Some(open) = value.find('<') {
        let inner = value.get(open + 1..).unwrap_or_default();
        return inner.split('>').next().unwrap_or_default().trim();
    }
    value.split(';').next().unwrap_or_default().trim()
}

/// Appends `name: value\r\n`; used by tests to build requests.
#[cfg(test)]
pub(crate) fn push_header(buffer: &mut String, name: &str, value: &str) {
    buffer.push_str(&format!("{name}: {value}\r\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_unfolds_and_expands_compact_names() {
        let text = "OPTIONS sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h\r\nSubject: a\r\n  b\r\n\r\n";
        let raw = RawMessage::frame(text.as_bytes()).unwrap();
        assert_eq!(raw.value("Via"), Some("SIP/2.0/UDP h"));
        assert_eq!(raw.value("Subject"), Some("a b"));
    }

    #[test]
    fn frame_marks_missing_empty_line() {
        let raw = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: c1\r\n").unwrap();
        assert_eq!(raw.value("Call-ID"), Some("c1"));
        assert!(raw.body.is_empty());
        assert_eq!(raw.defect, Some(MessageError::MissingHeaderEnd));

        let raw = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: c1").unwrap();
        assert_eq!(raw.value("Call-ID"), Some("c1"));
        assert_eq!(raw.defect, Some(MessageError::MissingHeaderEnd));

        let raw = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: c1\r\n\r\n").unwrap();
        assert_eq!(raw.defect, None);
    }

    #[test]
    fn frame_skips_unreadable_header_lines() {
        let cases: [(&[u8], usize); 4] = [
            (
                b"OPTIONS sip:b@h SIP/2.0\r\nno colon here\r\nCall-ID: c1\r\n\r\n",
                2,
            ),
            (
                b"OPTIONS sip:b@h SIP/2.0\r\nX-Bad\xff\xfe: v\r\nCall-ID: c1\r\n\r\n",
                2,
            ),
            (
                b"OPTIONS sip:b@h SIP/2.0\r\n folded first\r\nCall-ID: c1\r\n\r\n",
                2,
            ),
            (
                b"OPTIONS sip:b@h SIP/2.0\r\nX-A: 1\r\n: v\r\nCall-ID: c1\r\n\r\n",
                3,
            ),
        ];
        for (datagram, line) in cases {
            let raw = RawMessage::frame(datagram).unwrap();
            let text = String::from_utf8_lossy(datagram);
            assert_eq!(raw.value("Call-ID"), Some("c1"), "{text}");
            assert_eq!(
                raw.defect,
                Some(MessageError::InvalidHeaderLine { line }),
                "{text}"
            );
        }
    }

    #[test]
    fn frame_stops_headers_at_bare_lf_empty_line() {
        let raw = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\nCall-ID: c1\n\nv: not a header\n")
            .unwrap();
        assert_eq!(raw.value("Call-ID"), Some("c1"));
        assert_eq!(raw.value("Via"), None);
        assert_eq!(raw.defect, Some(MessageError::MissingHeaderEnd));
    }

    #[test]
    fn frame_rejects_oversized_datagram() {
        let datagram = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        let error = RawMessage::frame(&datagram).unwrap_err();
        assert!(matches!(error, MessageError::TooLarge { .. }));
    }

    #[test]
    fn frame_keeps_headers_after_non_utf8_line() {
        let mut datagram = b"OPTIONS sip:b@h SIP/2.0\r\nX-A: \xff\xfe\r\n".to_vec();
        datagram.extend_from_slice(b"Call-ID: c9\r\n\r\n");
        let raw = RawMessage::frame(&datagram).unwrap();
        assert_eq!(raw.value("Call-ID"), Some("c9"));
    }

    #[test]
    fn via_hop_fields() {
        let hop = ViaHop::parse("SIP / 2.0 / UDP [::1]:5080;rport;branch=z9hG4bKx").unwrap();
        assert_eq!(hop.port, Some(5080));
        assert!(hop.rport);
        assert_eq!(hop.branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(ViaHop::parse("SIP/2.0/UDP host").unwrap().port, None);
        assert!(ViaHop::parse("SIP/2.0/UDP host:99999").is_none());
        assert!(ViaHop::parse("SIP/2.0/UDP h;;").unwrap().has_empty_param);
    }

    #[test]
    fn via_hop_sent_by_host() {
        let cases = [
            (
                "SIP/2.0/UDP Host.Example:5070;branch=z9hG4bKx",
                "host.example",
                Some(5070),
            ),
            (
                "SIP/2.0/UDP [2001:DB8::1]:5080",
                "[2001:db8::1]",
                Some(5080),
            ),
            ("SIP/2.0/UDP [::1]", "[::1]", None),
            ("SIP/2.0/TCP 192.0.2.1", "192.0.2.1", None),
        ];
        for (value, host, port) in cases {
            let hop = ViaHop::parse(value).unwrap();
            assert_eq!(hop.host, host, "{value}");
            assert_eq!(hop.port, port, "{value}");
        }
        assert!(ViaHop::parse("SIP/2.0/UDP [::1").is_none());
    }

    #[test]
    fn stamp_received_sets_received_and_rport() {
        let text = "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h:5070;rport;branch=z9hG4bK1, SIP/2.0/UDP p\r\n\r\n";
        let mut raw = RawMessage::frame(text.as_bytes()).unwrap();
        raw.stamp_received("127.0.0.2:6000".parse().unwrap());
        assert_eq!(
            raw.value("Via"),
            Some("SIP/2.0/UDP h:5070;branch=z9hG4bK1;received=127.0.0.2;rport=6000, SIP/2.0/UDP p")
        );

        let text = "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        let mut raw = RawMessage::frame(text.as_bytes()).unwrap();
        raw.stamp_received("[::1]:6000".parse().unwrap());
        assert_eq!(
            raw.value("Via"),
            Some("SIP/2.0/UDP h;branch=z9hG4bK1;received=::1")
        );
    }

    #[test]
    fn header_param_and_uri() {
        assert_eq!(
            header_param("<sip:a@h;tag=no>;tag=yes", "tag").as_deref(),
            Some("yes")
        );
        assert_eq!(header_param("sip:a@h;tag=t", "tag").as_deref(), Some("t"));
        assert_eq!(header_param("<sip:a@h>", "tag"), None);
        assert_eq!(address_uri("\"x\" <sip:a@h;lr>;p=1"), "sip:a@h;lr");
        assert_eq!(address_uri("sip:a@h;tag=1"), "sip:a@h");
    }

    #[test]
    fn split_values_respects_quotes_and_brackets() {
        let values = split_header_values("\"a,b\" <sip:x@h>, <tel:+31,1>,sip:y@h");
        assert_eq!(values, vec!["\"a,b\" <sip:x@h>", "<tel:+31,1>", "sip:y@h"]);
    }
}
