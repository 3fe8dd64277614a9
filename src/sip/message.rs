//! SIP message framing, validation and serialisation.
//!
//! This module is the only place that names rsipstack (pinned to 0.7.14).
//! rsipstack supplies the method, status-code, URI and header types and
//! serialises what we send. Framing of received datagrams is done here:
//! rsipstack's own line splitter stops at the first header line that is not
//! UTF-8 and silently drops the rest, which turns a legal request (RFC 4475
//! §3.1.1.3) into one that seems to lack its required headers. After framing,
//! the checks of RFC 3261 that rsipstack's lenient parser skips are applied
//! here, and each failure maps to the status code the sender should get.

use std::net::SocketAddr;

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Headers, Method, Request, Response, StatusCode, Version};

/// Largest datagram accepted. A UDP payload cannot exceed 65,535 bytes
/// (RFC 768 length field), so anything larger is not a single UDP message.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Largest CSeq sequence number accepted: RFC 3261 §8.1.1.5 requires it to be
/// less than 2^31.
const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Largest Max-Forwards value accepted. RFC 3261 §20.22 gives 0-255 as the
/// useful range, and a larger value can only come from a broken or hostile sender.
const MAX_MAX_FORWARDS: u32 = 255;

/// Compact header names (RFC 3261 §7.3.3, RFC 3515 §2.1, RFC 3892, RFC 6665)
/// and the full names they stand for.
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

/// Headers that RFC 3261 §7.3 allows only once in a message.
const SINGLE_VALUE_HEADERS: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

/// Headers that every request must carry (RFC 3261 §8.1.1).
const REQUIRED_HEADERS: &[&str] = &["Via", "From", "To", "Call-ID", "CSeq"];

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
    #[error("header line {line} has no colon and does not continue a previous header")]
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
}

impl MessageError {
    /// Returns the status code to answer a request that failed with this error.
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
}

impl RawMessage {
    /// Splits a datagram into start line, unfolded headers and body.
    ///
    /// Header bytes that are not UTF-8 are replaced with U+FFFD, which keeps
    /// the line (and every header after it) available for routing a reply.
    pub fn frame(datagram: &[u8]) -> Result<RawMessage, MessageError> {
        if datagram.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge {
                size: datagram.len(),
            });
        }

        // RFC 3261 §7.5: empty lines before the start line are ignored, which
        // also absorbs the CRLF keep-alives of RFC 5626.
        let leading = datagram
            .iter()
            .take_while(|byte| **byte == b'\r' || **byte == b'\n')
            .count();
        let message = datagram.get(leading..).unwrap_or_default();

        // A datagram that ends right after a header line is taken as a
        // message without body: the datagram boundary frames it over UDP.
        let (header_end, body_start) = match find_subslice(message, b"\r\n\r\n") {
            Some(end) => (end, end + 4),
            None if message.ends_with(b"\r\n") => (message.len() - 2, message.len()),
            None => return Err(MessageError::MissingHeaderEnd),
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

            if line.starts_with([' ', '\t']) {
                let previous = headers
                    .last_mut()
                    .ok_or(MessageError::InvalidHeaderLine { line: line_number })?;
                previous.value.push(' ');
                previous.value.push_str(line.trim());
                previous.value = previous.value.trim().to_string();
                continue;
            }

            let (name, value) = line
                .split_once(':')
                .ok_or(MessageError::InvalidHeaderLine { line: line_number })?;
            let name = name.trim();
            if name.is_empty() || !is_token(name) {
                return Err(MessageError::InvalidHeaderLine { line: line_number });
            }
            headers.push(RawHeader {
                name: full_header_name(name).to_string(),
                value: value.trim().to_string(),
            });
        }

        Ok(RawMessage {
            start_line,
            headers,
            body,
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
    /// wrong version can still be answered 505.
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
        let port = parse_sent_by_port(sent_by)?;

        let mut via = ViaHop {
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

/// Returns the port of a sent-by (`host[:port]`, IPv6 in brackets): Some(None)
/// without a port, None when the sent-by is unreadable.
fn parse_sent_by_port(sent_by: &str) -> Option<Option<u16>> {
    if sent_by.is_empty() || sent_by.contains(char::is_whitespace) {
        return None;
    }

    let after_host = if let Some(inner) = sent_by.strip_prefix('[') {
        let close = inner.find(']')?;
        inner.get(close + 1..)?
    } else {
        match sent_by.split_once(':') {
            Some((host, port)) if !host.is_empty() => return port.parse().ok().map(Some),
            Some(_) => return None,
            None => "",
        }
    };

    match after_host.strip_prefix(':') {
        Some(port) => port.parse().ok().map(Some),
        None if after_host.is_empty() => Some(None),
        None => None,
    }
}

/// The method of a received request: one rsipstack knows, or an extension token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestMethod {
    Known(Method),
    Extension(String),
}

impl RequestMethod {
    fn parse(token: &str) -> RequestMethod {
        // Method names are case-sensitive (RFC 3261 §7.1); rsipstack matches
        // them without regard to case, so only the exact upper-case form is
        // taken as known.
        match token.parse::<Method>() {
            Ok(method) if method.to_string() == token => RequestMethod::Known(method),
            _ => RequestMethod::Extension(token.to_string()),
        }
    }

    /// Returns the method as written on the wire.
    pub fn as_str(&self) -> String {
        match self {
            RequestMethod::Known(method) => method.to_string(),
            RequestMethod::Extension(token) => token.clone(),
        }
    }
}

/// A received request that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct IncomingRequest {
    /// Request method.
    pub method: RequestMethod,
    /// Request-URI as received.
    pub request_uri: String,
    /// The framed message; responses copy their Via, From, To, Call-ID and CSeq from it.
    pub raw: RawMessage,
    /// Body cut to Content-Length; bytes after it in the datagram are ignored (RFC 3261 §18.3).
    pub body: Vec<u8>,
    /// Top Via hop, for transaction matching and reply routing.
    pub via: ViaHop,
    /// Call-ID value.
    pub call_id: String,
    /// CSeq sequence number.
    pub cseq: u32,
    /// tag parameter of From, the remote dialog tag.
    pub from_tag: Option<String>,
    /// tag parameter of To; present on requests inside a dialog.
    pub to_tag: Option<String>,
}

impl IncomingRequest {
    /// Validates a framed request.
    ///
    /// The checks cover what RFC 3261 requires of every request and what
    /// rsipstack's parser accepts without complaint: the Request-Line form,
    /// version, URI scheme, required and single-value headers, CSeq, Via,
    /// Content-Length and the syntax of From, To and Contact.
    pub fn validate(raw: &RawMessage) -> Result<IncomingRequest, MessageError> {
        let (method, request_uri) = validate_request_line(&raw.start_line)?;

        for name in REQUIRED_HEADERS {
            if raw.value(name).is_none() {
                return Err(MessageError::MissingHeader { name });
            }
        }
        for name in SINGLE_VALUE_HEADERS {
            let count = raw.values(name).count();
            if count > 1 {
                return Err(MessageError::RepeatedHeader { name, count });
            }
        }

        let via = raw.top_via().ok_or(MessageError::InvalidHeader {
            name: "Via",
            reason: "no readable sent-by in the top hop",
        })?;
        let has_empty_param = raw
            .values("Via")
            .flat_map(split_header_values)
            .any(|hop| ViaHop::parse(hop).is_none_or(|hop| hop.has_empty_param));
        if has_empty_param {
            return Err(MessageError::InvalidHeader {
                name: "Via",
                reason: "a hop is unreadable or has an empty parameter",
            });
        }

        let (cseq, cseq_method) = parse_cseq(raw.value("CSeq").unwrap_or_default())?;
        if cseq_method != method.as_str() {
            return Err(MessageError::CSeqMethodMismatch {
                method: method.as_str(),
                cseq_method,
            });
        }

        validate_scalar_headers(raw)?;
        validate_address_headers(raw)?;
        let body = body_within_content_length(raw)?;

        let call_id = raw.value("Call-ID").unwrap_or_default().to_string();
        let from_tag = raw
            .value("From")
            .and_then(|value| header_param(value, "tag"));
        let to_tag = raw.value("To").and_then(|value| header_param(value, "tag"));

        Ok(IncomingRequest {
            method,
            request_uri,
            body,
            via,
            call_id,
            cseq,
            from_tag,
            to_tag,
            raw: raw.clone(),
        })
    }

    /// Returns the value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.raw.value(name)
    }

    /// Returns every comma-separated value of every header named `name`.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.raw
            .values(name)
            .flat_map(split_header_values)
            .map(str::to_string)
            .collect()
    }

    /// Returns whether the method is `method`.
    pub fn is(&self, method: Method) -> bool {
        self.method == RequestMethod::Known(method)
    }

    /// Returns the media type of Content-Type (lower case, without parameters).
    pub fn content_type(&self) -> Option<String> {
        let value = self.header("Content-Type")?;
        let media_type = value.split(';').next().unwrap_or_default().trim();
        Some(media_type.to_ascii_lowercase())
    }
}

/// A received response that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct IncomingResponse {
    /// Status code, 100 to 699.
    pub status: u16,
    /// branch of the top Via, which names the client transaction (RFC 3261 §17.1.3).
    pub branch: Option<String>,
    /// CSeq method, the second half of the client transaction key.
    pub cseq_method: String,
}

impl IncomingResponse {
    /// Validates a framed response: SIP/2.0, a three-digit code from 100 to 699, a readable CSeq.
    pub fn validate(raw: &RawMessage) -> Result<IncomingResponse, MessageError> {
        let mut parts = raw.start_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "SIP/2.0" {
            return Err(MessageError::UnsupportedVersion {
                version: version.to_string(),
            });
        }

        let code = parts.next().unwrap_or_default();
        let status = match code.parse::<u16>() {
            Ok(status) if code.len() == 3 && (100..=699).contains(&status) => status,
            _ => {
                return Err(MessageError::InvalidStartLine {
                    reason: "status code is not three digits from 100 to 699",
                })
            }
        };

        let (_, cseq_method) = parse_cseq(raw.value("CSeq").unwrap_or_default())?;
        let branch = raw.top_via().and_then(|via| via.branch);

        Ok(IncomingResponse {
            status,
            branch,
            cseq_method,
        })
    }
}

/// Checks `METHOD SP Request-URI SP SIP/2.0` with single spaces (RFC 3261 §7.1).
fn validate_request_line(line: &str) -> Result<(RequestMethod, String), MessageError> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(MessageError::InvalidStartLine {
            reason: "expected METHOD, Request-URI and version separated by single spaces",
        });
    };
    if method.is_empty() || uri.is_empty() {
        return Err(MessageError::InvalidStartLine {
            reason: "expected METHOD, Request-URI and version separated by single spaces",
        });
    }

    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(MessageError::UnsupportedVersion {
            version: (*version).to_string(),
        });
    }
    if !is_token(method) {
        return Err(MessageError::InvalidStartLine {
            reason: "method is not a token",
        });
    }

    validate_request_uri(uri)?;
    Ok((RequestMethod::parse(method), (*uri).to_string()))
}

fn validate_request_uri(uri: &str) -> Result<(), MessageError> {
    if uri.starts_with('<') {
        return Err(MessageError::InvalidRequestUri {
            reason: "the Request-URI must not be enclosed in <>".to_string(),
        });
    }

    let Some((scheme, _)) = uri.split_once(':') else {
        return Err(MessageError::InvalidRequestUri {
            reason: "no scheme".to_string(),
        });
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Err(MessageError::UnsupportedUriScheme { scheme });
    }

    // RFC 3261 §19.1.5: URI headers are not allowed in a Request-URI. A `?`
    // in the user part (before `@`) is legal, so only the rest is checked.
    let after_user = uri.rsplit_once('@').map_or(uri, |(_, host_part)| host_part);
    if after_user.contains('?') {
        return Err(MessageError::InvalidRequestUri {
            reason: "embedded headers (?) are not allowed".to_string(),
        });
    }

    rsipstack::sip::parse_uri(uri)
        .map(|_| ())
        .map_err(|_| MessageError::InvalidRequestUri {
            reason: "does not parse as a sip, sips or tel URI".to_string(),
        })
}

/// Parses `CSeq: number method`; returns the number and method.
fn parse_cseq(value: &str) -> Result<(u32, String), MessageError> {
    let mut words = value.split_whitespace();
    let number = words.next().unwrap_or_default();
    let method = words.next().unwrap_or_default();
    if words.next().is_some() || method.is_empty() || !is_token(method) {
        return Err(MessageError::InvalidHeader {
            name: "CSeq",
            reason: "expected a sequence number and a method",
        });
    }

    let number = parse_digits(number)
        .filter(|number| *number <= u64::from(MAX_CSEQ))
        .ok_or(MessageError::InvalidHeader {
            name: "CSeq",
            reason: "sequence number is not a decimal below 2^31",
        })?;

    Ok((
        u32::try_from(number).unwrap_or(MAX_CSEQ),
        method.to_string(),
    ))
}

/// Checks Max-Forwards, Expires and Date, whose values rsipstack never reads.
fn validate_scalar_headers(raw: &RawMessage) -> Result<(), MessageError> {
    if let Some(value) = raw.value("Max-Forwards") {
        let within = parse_digits(value).is_some_and(|hops| hops <= u64::from(MAX_MAX_FORWARDS));
        if !within {
            return Err(MessageError::InvalidHeader {
                name: "Max-Forwards",
                reason: "not a decimal from 0 to 255",
            });
        }
    }

    // RFC 3261 §20.19: delta-seconds; values above 2^32-1 are not representable.
    if let Some(value) = raw.value("Expires") {
        if parse_digits(value).is_none_or(|seconds| seconds > u64::from(u32::MAX)) {
            return Err(MessageError::InvalidHeader {
                name: "Expires",
                reason: "not a decimal number of seconds below 2^32",
            });
        }
    }

    // RFC 3261 §20.17: SIP-date is always in GMT.
    if let Some(value) = raw.value("Date") {
        if !value.ends_with("GMT") {
            return Err(MessageError::InvalidHeader {
                name: "Date",
                reason: "time zone must be GMT",
            });
        }
    }

    Ok(())
}

/// Checks the name-addr / addr-spec syntax of From, To and each Contact (RFC 3261 §20.10).
fn validate_address_headers(raw: &RawMessage) -> Result<(), MessageError> {
    for name in ["From", "To"] {
        let value = raw.value(name).unwrap_or_default();
        check_name_addr(value).map_err(|reason| MessageError::InvalidHeader {
            name: if name == "From" { "From" } else { "To" },
            reason,
        })?;
    }

    for value in raw.values("Contact").flat_map(split_header_values) {
        if value == "*" {
            continue;
        }
        check_name_addr(value).map_err(|reason| MessageError::InvalidHeader {
            name: "Contact",
            reason,
        })?;
    }
    Ok(())
}

/// Checks one address: quotes balanced, at most one `<...>` with no white space
/// inside, a display name of tokens unless quoted, and no `?` or `,` outside `<>`.
fn check_name_addr(value: &str) -> Result<(), &'static str> {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut open: Option<usize> = None;
    let mut close: Option<usize> = None;

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
            '<' if open.is_none() => open = Some(index),
            '>' if open.is_some() && close.is_none() => close = Some(index),
            '<' | '>' => return Err("unbalanced < and >"),
            _ => {}
        }
    }
    if in_quotes {
        return Err("unterminated quoted display name");
    }

    match (open, close) {
        (Some(open), Some(close)) => {
            let addr_spec = value.get(open + 1..close).unwrap_or_default();
            if addr_spec.is_empty() || addr_spec.contains(char::is_whitespace) {
                return Err("white space or nothing inside <>");
            }
            let display_name = value.get(..open).unwrap_or_default().trim();
            let quoted = display_name.starts_with('"') && display_name.ends_with('"');
            if !quoted && !display_name.split_whitespace().all(is_token) {
                return Err("unquoted display name with characters outside a token");
            }
            Ok(())
        }
        (None, None) => {
            let addr_spec = value.split(';').next().unwrap_or_default().trim();
            if addr_spec.is_empty() || addr_spec.contains(char::is_whitespace) {
                return Err("white space or nothing in the address");
            }
            if addr_spec.contains(['?', ',']) {
                return Err("an address with ? or , must be enclosed in <>");
            }
            Ok(())
        }
        _ => Err("unbalanced < and >"),
    }
}

/// Returns the body cut to Content-Length, or an error for a negative,
/// non-numeric or too large value. Without Content-Length the whole rest of
/// the datagram is the body, which RFC 3261 §18.3 allows over UDP.
fn body_within_content_length(raw: &RawMessage) -> Result<Vec<u8>, MessageError> {
    let Some(value) = raw.value("Content-Length") else {
        return Ok(raw.body.clone());
    };

    let declared = parse_digits(value)
        .and_then(|length| usize::try_from(length).ok())
        .ok_or(MessageError::InvalidHeader {
            name: "Content-Length",
            reason: "not a non-negative decimal",
        })?;
    let available = raw.body.len();
    if declared > available {
        return Err(MessageError::ContentLengthTooLarge {
            declared,
            available,
        });
    }

    Ok(raw.body.get(..declared).unwrap_or_default().to_vec())
}

/// Parses a run of ASCII digits (leading zeros allowed) that fits in u64.
fn parse_digits(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Returns whether `text` is a `token` (RFC 3261 §25.1).
fn is_token(text: &str) -> bool {
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

/// A response to build: status, the request it answers and the headers to add.
pub(crate) struct ResponseParts<'a> {
    /// The request's headers; Via, From, To, Call-ID and CSeq are copied from it (RFC 3261 §8.2.6.2).
    pub request: &'a RawMessage,
    /// Status code, 100 to 699.
    pub status: u16,
    /// Tag to add to To when the request's To has none.
    pub to_tag: Option<&'a str>,
    /// Whether to copy Record-Route, which a 2xx to a dialog-creating request needs (RFC 3261 §12.1.1).
    pub copy_record_route: bool,
    /// Headers added after the copied ones, as (name, value).
    pub extra_headers: Vec<(&'static str, String)>,
    /// Message body; Content-Length is set to its size.
    pub body: &'a [u8],
    /// Value of the Server header.
    pub server: &'a str,
}

/// Serialises a response with rsipstack.
pub(crate) fn build_response(parts: ResponseParts<'_>) -> Vec<u8> {
    let mut headers = Headers::default();
    for header in &parts.request.headers {
        let name = header.name.as_str();
        let copied = ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|copied| name.eq_ignore_ascii_case(copied))
            || (parts.copy_record_route && name.eq_ignore_ascii_case("Record-Route"));
        if copied {
            headers.push(make_header(name, header.value.clone()));
        } else if name.eq_ignore_ascii_case("To") {
            headers.push(make_header("To", to_with_tag(&header.value, parts.to_tag)));
        }
    }

    for (name, value) in parts.extra_headers {
        headers.push(make_header(name, value));
    }
    headers.push(make_header("Server", parts.server.to_string()));
    headers.push(make_header("Content-Length", parts.body.len().to_string()));

    let response = Response {
        status_code: StatusCode::from(parts.status),
        wire_reason: None,
        version: Version::V2,
        headers,
        body: parts.body.to_vec(),
    };
    response.to_bytes()
}

fn to_with_tag(to: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) if header_param(to, "tag").is_none() => format!("{to};tag={tag}"),
        _ => to.to_string(),
    }
}

/// A request to build inside a dialog.
pub(crate) struct RequestParts<'a> {
    /// Request method.
    pub method: Method,
    /// Request-URI: the dialog's remote target.
    pub request_uri: &'a str,
    /// Value of the one Via header we add.
    pub via: String,
    /// Headers in order after Via, as (name, value).
    pub headers: Vec<(&'static str, String)>,
}

/// Serialises a request with rsipstack; fails when the Request-URI does not parse.
pub(crate) fn build_request(parts: RequestParts<'_>) -> Result<Vec<u8>, String> {
    let uri = rsipstack::sip::parse_uri(parts.request_uri).map_err(|error| error.to_string())?;

    let mut headers = Headers::default();
    headers.push(make_header("Via", parts.via));
    for (name, value) in parts.headers {
        headers.push(make_header(name, value));
    }
    headers.push(make_header("Content-Length", "0".to_string()));

    let request = Request {
        method: parts.method,
        uri,
        version: Version::V2,
        headers,
        body: Vec::new(),
    };
    Ok(request.to_bytes())
}

/// Appends `name: value\r\n`; used by tests to build requests.
#[cfg(test)]
pub(crate) fn push_header(buffer: &mut String, name: &str, value: &str) {
    buffer.push_str(&format!("{name}: {value}\r\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start_line: &str, extra: &[(&str, &str)], body: &str) -> String {
        let mut text = format!("{start_line}\r\n");
        push_header(
            &mut text,
            "Via",
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport",
        );
        push_header(&mut text, "From", "<sip:a@127.0.0.1>;tag=f1");
        push_header(&mut text, "To", "<sip:b@127.0.0.1>");
        push_header(&mut text, "Call-ID", "c1");
        push_header(&mut text, "CSeq", "1 OPTIONS");
        for (name, value) in extra {
            push_header(&mut text, name, value);
        }
        text.push_str("\r\n");
        text.push_str(body);
        text
    }

    fn validate(text: &str) -> Result<IncomingRequest, MessageError> {
        IncomingRequest::validate(&RawMessage::frame(text.as_bytes())?)
    }

    #[test]
    fn frame_unfolds_and_expands_compact_names() {
        let text = "OPTIONS sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h\r\nSubject: a\r\n  b\r\n\r\n";
        let raw = RawMessage::frame(text.as_bytes()).unwrap();
        assert_eq!(raw.value("Via"), Some("SIP/2.0/UDP h"));
        assert_eq!(raw.value("Subject"), Some("a b"));
    }

    #[test]
    fn frame_accepts_datagram_ending_after_headers() {
        let raw = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: c1\r\n").unwrap();
        assert_eq!(raw.value("Call-ID"), Some("c1"));
        assert!(raw.body.is_empty());
        let error = RawMessage::frame(b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: c1").unwrap_err();
        assert_eq!(error, MessageError::MissingHeaderEnd);
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
    fn validate_accepts_plain_options() {
        let parsed = validate(&request("OPTIONS sip:b@127.0.0.1 SIP/2.0", &[], "")).unwrap();
        assert!(parsed.is(Method::Options));
        assert_eq!(parsed.cseq, 1);
        assert_eq!(parsed.from_tag.as_deref(), Some("f1"));
        assert_eq!(parsed.to_tag, None);
        assert!(parsed.via.rport);
        assert_eq!(parsed.via.port, Some(5070));
    }

    #[test]
    fn validate_request_line_errors() {
        let cases = [
            ("OPTIONS  sip:b@h SIP/2.0", 400),
            ("OPTIONS sip:b@h SIP/2.0 ", 400),
            ("OPTIONS <sip:b@h> SIP/2.0", 400),
            ("OPTIONS sip:b@h?Route=x SIP/2.0", 400),
            ("OPTIONS sip:b@h SIP/3.0", 505),
            ("OPTIONS mailto:b@h SIP/2.0", 416),
        ];
        for (line, status) in cases {
            let error = validate(&request(line, &[], "")).unwrap_err();
            assert_eq!(error.status(), status, "{line}: {error}");
        }
    }

    #[test]
    fn validate_cseq_method_mismatch() {
        let error = validate(&request("INFO sip:b@h SIP/2.0", &[], "")).unwrap_err();
        assert!(matches!(error, MessageError::CSeqMethodMismatch { .. }));
    }

    #[test]
    fn validate_content_length_rules() {
        let start = "OPTIONS sip:b@h SIP/2.0";
        let too_long = validate(&request(start, &[("Content-Length", "10")], "abc")).unwrap_err();
        assert!(matches!(
            too_long,
            MessageError::ContentLengthTooLarge { .. }
        ));

        let negative = validate(&request(start, &[("Content-Length", "-1")], "")).unwrap_err();
        assert!(matches!(
            negative,
            MessageError::InvalidHeader {
                name: "Content-Length",
                ..
            }
        ));

        let cut = validate(&request(start, &[("Content-Length", "2")], "abcdef")).unwrap();
        assert_eq!(cut.body, b"ab");
    }

    #[test]
    fn validate_repeated_single_header() {
        let error = validate(&request(
            "OPTIONS sip:b@h SIP/2.0",
            &[("Call-ID", "c2")],
            "",
        ))
        .unwrap_err();
        assert_eq!(
            error,
            MessageError::RepeatedHeader {
                name: "Call-ID",
                count: 2
            }
        );
    }

    #[test]
    fn extension_method_is_not_known() {
        let text = request("FOO sip:b@h SIP/2.0", &[], "").replace("1 OPTIONS", "1 FOO");
        let parsed = validate(&text).unwrap();
        assert_eq!(parsed.method, RequestMethod::Extension("FOO".to_string()));
        let lower = request("options sip:b@h SIP/2.0", &[], "").replace("1 OPTIONS", "1 options");
        let parsed = validate(&lower).unwrap();
        assert_eq!(
            parsed.method,
            RequestMethod::Extension("options".to_string())
        );
    }

    #[test]
    fn name_addr_checks() {
        assert!(check_name_addr("\"A, B\" <sip:a@h>;tag=1").is_ok());
        assert!(check_name_addr("caller<sip:a@h>").is_ok());
        assert!(check_name_addr("sip:a@h;tag=1").is_ok());
        assert!(check_name_addr("\"A <sip:a@h>").is_err());
        assert!(check_name_addr("A, B <sip:a@h>").is_err());
        assert!(check_name_addr("<  sip:a@h >").is_err());
        assert!(check_name_addr("sip:a@h?Route=x").is_err());
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

    #[test]
    fn response_copies_dialog_headers() {
        let text = request(
            "OPTIONS sip:b@h SIP/2.0",
            &[("Record-Route", "<sip:p;lr>")],
            "",
        );
        let raw = RawMessage::frame(text.as_bytes()).unwrap();
        let bytes = build_response(ResponseParts {
            request: &raw,
            status: 200,
            to_tag: Some("t1"),
            copy_record_route: true,
            extra_headers: vec![("Allow", "INVITE".to_string())],
            body: b"",
            server: "ivr",
        });
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(text.contains("To: <sip:b@127.0.0.1>;tag=t1\r\n"), "{text}");
        assert!(text.contains("Record-Route: <sip:p;lr>\r\n"), "{text}");
        assert!(text.contains("Content-Length: 0\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}
