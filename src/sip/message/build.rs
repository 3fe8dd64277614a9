//! Serialisation of the responses and requests we send, with rsipstack's message types.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Headers, Method, Request, Response, StatusCode, Version};

use super::{header_param, RawMessage};

/// Parts of a response to build: status, the request it responds to and the headers to add.
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

#[cfg(test)]
mod tests {
    use super::super::push_header;
    use super::*;

    #[test]
    fn response_copies_dialog_headers() {
        let mut text = "OPTIONS sip:b@h SIP/2.0\r\n".to_string();
        push_header(
            &mut text,
            "Via",
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
        );
        push_header(&mut text, "From", "<sip:a@127.0.0.1>;tag=f1");
        push_header(&mut text, "To", "<sip:b@127.0.0.1>");
        push_header(&mut text, "Call-ID", "c1");
        push_header(&mut text, "CSeq", "1 OPTIONS");
        push_header(&mut text, "Record-Route", "<sip:p;lr>");
        push_header(&mut text, "X-Not-Copied", "x");
        text.push_str("\r\n");
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
        assert!(
            text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"),
            "{text}"
        );
        assert!(text.contains("CSeq: 1 OPTIONS\r\n"), "{text}");
        assert!(text.contains("Allow: INVITE\r\n"), "{text}");
        assert!(!text.contains("X-Not-Copied"), "{text}");
        assert!(text.contains("Content-Length: 0\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}
