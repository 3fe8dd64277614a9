//! Validation of framed messages: the RFC 3261 rules that rsipstack's parser does not enforce.

use rsipstack::sip::Method;

use super::{
    header_param, is_token, parse_digits, split_header_values, MessageError, RawMessage, ViaHop,
};

/// Largest CSeq sequence number accepted: RFC 3261 §8.1.1.5 requires it to be
/// less than 2^31.
const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Largest Max-Forwards value accepted. RFC 3261 §20.22 gives 0-255 as the
/// useful range, and a larger value can only come from a broken or hostile sender.
const MAX_MAX_FORWARDS: u32 = 255;

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

/// Method of a received request: one of rsipstack's `Method` variants, or an extension token.
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
    /// rsipstack's parser accepts without complaint: framing, the Request-Line form,
    /// version, URI scheme, required and single-value headers, CSeq, Via,
    /// Content-Length and the syntax of From, To and Contact.
    pub fn validate(raw: &RawMessage) -> Result<IncomingRequest, MessageError> {
        if let Some(defect) = &raw.defect {
            return Err(defect.clone());
        }

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
    /// Validates a framed response: no framing defect, SIP/2.0, a three-digit
    /// code from 100 to 699, a readable CSeq.
    pub fn validate(raw: &RawMessage) -> Result<IncomingResponse, MessageError> {
        if let Some(defect) = &raw.defect {
            return Err(defect.clone());
        }

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
    // RFC 3986 §3.1: a scheme starts with a letter. Checking this first also
    // keeps a number typed as a scheme out of the logged error.
    let scheme_is_valid = scheme.starts_with(|character: char| character.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    if !scheme_is_valid {
        return Err(MessageError::InvalidRequestUri {
            reason: "the scheme is not a letter followed by letters, digits, +, - or .".to_string(),
        });
    }
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

    if scheme != "tel" {
        let after_scheme = uri.split_once(':').map_or(uri, |(_, rest)| rest);
        check_host_brackets(after_scheme).map_err(|reason| MessageError::InvalidRequestUri {
            reason: reason.to_string(),
        })?;
    }

    rsipstack::sip::parse_uri(uri)
        .map(|_| ())
        .map_err(|_| MessageError::InvalidRequestUri {
            reason: "does not parse as a sip, sips or tel URI".to_string(),
        })
}

/// Checks the brackets of the host in a sip or sips URI without its scheme.
/// An IPv6 reference must be closed and contain an IPv6 address (RFC 3261
/// §25.1), and `[` or `]` may appear nowhere else in the host and port.
/// This check exists because rsipstack 0.7.14 accepts `sip:ivr@[::1`.
fn check_host_brackets(after_scheme: &str) -> Result<(), &'static str> {
    // The user part cannot hold an unescaped `@`, and URI parameters cannot
    // hold `@`, so the host starts after the last one.
    let host_and_rest = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, host)| host);
    let hostport = host_and_rest.split([';', '?']).next().unwrap_or_default();

    let Some(reference) = hostport.strip_prefix('[') else {
        if hostport.contains(['[', ']']) {
            return Err("[ or ] outside an IPv6 reference in the host");
        }
        return Ok(());
    };
    let Some((address, after)) = reference.split_once(']') else {
        return Err("the IPv6 reference in the host has no closing ]");
    };
    if address.parse::<std::net::Ipv6Addr>().is_err() {
        return Err("the IPv6 reference in the host is not an IPv6 address");
    }
    if !after.is_empty() && !after.starts_with(':') {
        return Err("the IPv6 reference in the host is followed by something other than a port");
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::push_header;
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
            ("OPTIONS 0612345678:b@h SIP/2.0", 400),
            ("OPTIONS sip:ivr@[::1 SIP/2.0", 400),
            ("OPTIONS sip:ivr@[::1:5060 SIP/2.0", 400),
            ("OPTIONS sips:ivr@[not-ipv6] SIP/2.0", 400),
            ("OPTIONS sip:ivr@[::1]x SIP/2.0", 400),
            ("OPTIONS sip:ivr@::1] SIP/2.0", 400),
        ];
        for (line, status) in cases {
            let error = validate(&request(line, &[], "")).unwrap_err();
            assert_eq!(error.status(), status, "{line}: {error}");
        }
    }

    #[test]
    fn validate_accepts_ipv6_request_uri() {
        for line in [
            "OPTIONS sip:ivr@[::1] SIP/2.0",
            "OPTIONS sip:ivr@[2001:db8::1]:5060;transport=udp SIP/2.0",
            "OPTIONS sip:[::1] SIP/2.0",
        ] {
            let result = validate(&request(line, &[], ""));
            assert!(result.is_ok(), "{line}: {:?}", result.err());
        }
    }

    #[test]
    fn validate_reports_framing_defect() {
        let text = request("OPTIONS sip:b@h SIP/2.0", &[("Subject", "x")], "")
            .replace("Subject: x", "Subject x");
        let error = validate(&text).unwrap_err();
        assert_eq!(error, MessageError::InvalidHeaderLine { line: 7 });
        assert_eq!(error.status(), 400);
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
}
