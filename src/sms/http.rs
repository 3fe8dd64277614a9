//! HTTP plumbing shared by the provider gateways: the client, URL checks,
//! bounded response reading and provider error texts that are safe to log.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url};

use super::{SmsConfigError, SmsError};

/// Maximum response body read from a gateway. A provider's response to one
/// message is small (an estimated 2 KB at most, Twilio's message resource
/// being the largest), so a larger body comes from a misbehaving endpoint and
/// is not buffered.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Maximum characters of a provider's error text kept in an [`SmsError`],
/// enough for one sentence and an error code.
const MAX_PROVIDER_TEXT_CHARS: usize = 300;

/// Shortest run of digits that [`sanitize_provider_text`] masks: a one-time
/// code has 6 digits and a phone number more, while provider error codes
/// (Twilio 21211, CM.com 101) have fewer.
const MIN_MASKED_DIGITS: usize = 6;

/// The HTTP client the gateways share, with its per-request timeout.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Connection pool; cloning shares it.
    client: reqwest::Client,
    /// Time allowed for one request, connect to last body byte. Kept to
    /// report it in [`SmsError::Timeout`].
    timeout: Duration,
}

/// Builds the client all gateways share: `timeout` for the whole request,
/// no redirects (a redirect would carry the credentials to another URL), and
/// rustls with the webpki root certificates.
pub fn build_http_client(timeout: Duration) -> Result<HttpClient, SmsConfigError> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ivr-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SmsConfigError::HttpClient)?;
    Ok(HttpClient { client, timeout })
}

impl HttpClient {
    /// Starts a POST request to `url`.
    pub(crate) fn post(&self, url: Url) -> RequestBuilder {
        self.client.post(url)
    }

    /// Sends `request` and reads at most [`MAX_RESPONSE_BYTES`] of the body.
    /// Any status is returned as a response; only transport failures and an
    /// oversized body are errors.
    pub(crate) async fn execute(
        &self,
        gateway: &str,
        request: RequestBuilder,
    ) -> Result<GatewayResponse, SmsError> {
        let mut response = request
            .send()
            .await
            .map_err(|error| self.transport_error(gateway, error))?;
        let status = response.status();

        let mut body = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|error| self.transport_error(gateway, error))?;
            let Some(chunk) = chunk else {
                break;
            };
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SmsError::InvalidResponse {
                    gateway: gateway.to_owned(),
                    reason: format!("response body exceeds {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }

        Ok(GatewayResponse { status, body })
    }

    /// Maps a client error to the variant that names the failed step.
    fn transport_error(&self, gateway: &str, error: reqwest::Error) -> SmsError {
        let gateway = gateway.to_owned();
        if error.is_timeout() {
            SmsError::Timeout {
                gateway,
                timeout: self.timeout,
            }
        } else if error.is_connect() {
            SmsError::Connection {
                gateway,
                source: error,
            }
        } else {
            SmsError::Request {
                gateway,
                source: error,
            }
        }
    }
}

/// A gateway's response: the status and the (bounded) body.
#[derive(Debug)]
pub(crate) struct GatewayResponse {
    /// HTTP status code.
    pub(crate) status: StatusCode,
    /// Response body, at most [`MAX_RESPONSE_BYTES`].
    pub(crate) body: Vec<u8>,
}

impl GatewayResponse {
    /// Parses the body as JSON.
    pub(crate) fn json(&self, gateway: &str) -> Result<serde_json::Value, SmsError> {
        serde_json::from_slice(&self.body).map_err(|error| SmsError::InvalidResponse {
            gateway: gateway.to_owned(),
            reason: format!("body is not JSON: {error}"),
        })
    }

    /// Returns the provider's error text, cleaned for logs.
    pub(crate) fn error_text(&self) -> String {
        sanitize_provider_text(&extract_error_text(&self.body))
    }

    /// Maps a non-success response to the error for its status class: 401 and
    /// 403 reject the credentials, everything else is an HTTP status error
    /// that [`SmsError::is_retryable`] classifies.
    pub(crate) fn default_error(&self, gateway: &str) -> SmsError {
        let status = self.status.as_u16();
        let provider_error = self.error_text();
        if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::FORBIDDEN {
            SmsError::Unauthorized {
                gateway: gateway.to_owned(),
                status,
                provider_error,
            }
        } else {
            SmsError::HttpStatus {
                gateway: gateway.to_owned(),
                status,
                provider_error,
            }
        }
    }
}

/// Checks a gateway URL: it must parse, and it must use HTTPS unless the host
/// is on loopback (tests and a local relay), because every gateway sends a
/// credential with each request.
pub(crate) fn check_url(gateway: &'static str, url: &str) -> Result<Url, SmsConfigError> {
    let invalid = |reason: String| SmsConfigError::InvalidUrl {
        gateway,
        url: url.to_owned(),
        reason,
    };

    let parsed = Url::parse(url).map_err(|error| invalid(error.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&parsed) => {}
        "http" => {
            return Err(invalid(
                "plain http is allowed only to a loopback host; use https".to_owned(),
            ))
        }
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if parsed.host_str().is_none() {
        return Err(invalid("the URL has no host".to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; use the gateway's token setting".to_owned(),
        ));
    }
    Ok(parsed)
}

/// Returns whether the URL's host is `localhost` or a loopback address.
fn is_loopback_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `value` is a non-empty id of ASCII letters, digits, `-` and
/// `_`, so that it can go into a URL path without escaping.
pub(crate) fn check_path_segment(
    gateway: &'static str,
    key: &'static str,
    value: &str,
) -> Result<(), SmsConfigError> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(SmsConfigError::InvalidValue {
            gateway,
            key,
            reason: "must be non-empty and contain only letters, digits, '-' and '_'".to_owned(),
        })
    }
}

/// Builds a header value that `Debug` and reqwest's logging do not print.
pub(crate) fn secret_header(
    gateway: &'static str,
    key: &'static str,
    value: &str,
) -> Result<reqwest::header::HeaderValue, SmsConfigError> {
    let mut header = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        SmsConfigError::InvalidValue {
            gateway,
            key,
            reason: "contains characters not allowed in an HTTP header".to_owned(),
        }
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Finds the human-readable error in a provider's body. The providers put
/// it in different places: Twilio and Bird in `message`, CM.com in `details`
/// and `messages[].messageDetails`, Laravel-style APIs such as Spryng's in
/// `message` and `errors`. A body that is not JSON is taken as text.
fn extract_error_text(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(body).trim().to_owned();
    };

    let mut parts: Vec<String> = Vec::new();
    collect_error_text(&json, &mut parts, 0);
    if parts.is_empty() {
        return json.to_string();
    }
    parts.join("; ")
}

/// Collects the strings under the usual error keys, at most three levels
/// deep (enough for `{"errors": {"field": ["text"]}}`).
fn collect_error_text(value: &serde_json::Value, parts: &mut Vec<String>, depth: usize) {
    const KEYS: [&str; 8] = [
        "message",
        "details",
        "detail",
        "description",
        "messageDetails",
        "error_message",
        "error",
        "errors",
    ];
    if depth > 3 {
        return;
    }

    match value {
        serde_json::Value::String(text) if depth > 0 => parts.push(text.clone()),
        serde_json::Value::Array(items) => {
            for item in items {
                collect_error_text(item, parts, depth + 1);
            }
        }
        serde_json::Value::Object(map) => {
            for key in KEYS {
                if let Some(inner) = map.get(key) {
                    collect_error_text(inner, parts, depth + 1);
                }
            }
            if depth > 0 && map.keys().all(|key| !KEYS.contains(&key.as_str())) {
                // A field map such as Laravel's {"recipients.0": ["..."]}.
                for inner in map.values() {
                    collect_error_text(inner, parts, depth + 1);
                }
            }
            if let Some(code) = map.get("code").or_else(|| map.get("errorCode")) {
                if depth == 0 && (code.is_number() || code.is_string()) {
                    parts.push(format!(
                        "code {}",
                        code.as_str().map_or(code.to_string(), str::to_owned)
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Makes a provider's text safe to log.
///
/// Every run of [`MIN_MASKED_DIGITS`] or more digits is masked, because
/// providers echo the recipient's number and some echo the message. Spaces,
/// `-`, `.` and `/` between digits count as part of a run. Control characters
/// become spaces, so the text cannot forge log lines, and at most 300
/// characters are kept.
#[must_use]
pub fn sanitize_provider_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len().min(MAX_PROVIDER_TEXT_CHARS + 4));
    let mut index = 0;

    while let Some(&c) = chars.get(index) {
        if !c.is_ascii_digit() {
            out.push(if c.is_control() { ' ' } else { c });
            index += 1;
            continue;
        }

        // Extend the run over digits and single separators between digits.
        let mut end = index;
        let mut digits = 0;
        while let Some(&d) = chars.get(end) {
            if d.is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(d, ' ' | '-' | '.' | '/')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)
            {
                end += 1;
            } else {
                break;
            }
        }

        let run = chars.get(index..end).unwrap_or_default();
        for &d in run {
            out.push(if digits >= MIN_MASKED_DIGITS && d.is_ascii_digit() {
                '*'
            } else {
                d
            });
        }
        index = end;
    }

    if out.chars().count() > MAX_PROVIDER_TEXT_CHARS {
        out = out.chars().take(MAX_PROVIDER_TEXT_CHARS).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_masks_codes_and_numbers() {
        let text = sanitize_provider_text("Gsm '0031612345601' is not a number, code 482913");
        assert_eq!(text, "Gsm '*************' is not a number, code ******");
    }

    #[test]
    fn sanitize_masks_numbers_with_separators() {
        let text = sanitize_provider_text("To +31 6 1234 5601 is unroutable");
        assert_eq!(text, "To +** * **** **** is unroutable");
    }

    #[test]
    fn sanitize_keeps_short_error_codes() {
        let text = sanitize_provider_text("error 21211, see docs/errors/21211");
        assert_eq!(text, "error 21211, see docs/errors/21211");
    }

    #[test]
    fn sanitize_replaces_control_characters() {
        let text = sanitize_provider_text("bad\r\nINFO forged line");
        assert_eq!(text, "bad  INFO forged line");
    }

    #[test]
    fn sanitize_truncates_long_text() {
        let text = sanitize_provider_text(&"x".repeat(1000));
        assert_eq!(text.chars().count(), MAX_PROVIDER_TEXT_CHARS + 1);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn error_text_from_twilio_body() {
        let body = br#"{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#;
        assert_eq!(extract_error_text(body), "Authenticate; code 20003");
    }

    #[test]
    fn error_text_from_cm_body() {
        let body = br#"{"details": "Created 0 message(s)", "errorCode": 201, "messages": [{"to": "0031600000000", "status": "Rejected", "messageDetails": "Gsm is not a number."}]}"#;
        assert_eq!(extract_error_text(body), "Created 0 message(s); code 201");
    }

    #[test]
    fn error_text_from_laravel_body() {
        let body = br#"{"message": "The given data was invalid.", "errors": {"recipients.0": ["The recipient is invalid."]}}"#;
        assert_eq!(
            extract_error_text(body),
            "The given data was invalid.; The recipient is invalid."
        );
    }

    #[test]
    fn error_text_from_plain_body() {
        assert_eq!(
            extract_error_text(b" Service Unavailable \n"),
            "Service Unavailable"
        );
    }

    #[test]
    fn url_check_accepts_https_and_loopback_http() {
        assert!(check_url("cm", "https://gw.messaging.cm.com/v1.0/message").is_ok());
        assert!(check_url("cm", "http://127.0.0.1:8080/v1.0/message").is_ok());
        assert!(check_url("cm", "http://[::1]:8080/").is_ok());
        assert!(check_url("cm", "http://localhost:8080/").is_ok());
    }

    #[test]
    fn url_check_rejects_plain_http_elsewhere() {
        let error = check_url("cm", "http://gw.messaging.cm.com/v1.0/message");
        assert!(matches!(error, Err(SmsConfigError::InvalidUrl { .. })));
    }

    #[test]
    fn url_check_rejects_credentials_and_schemes() {
        assert!(check_url("cm", "https://user:pw@example.com/").is_err());
        assert!(check_url("cm", "ftp://example.com/").is_err());
        assert!(check_url("cm", "not a url").is_err());
    }

    #[test]
    fn path_segment_check() {
        assert!(check_path_segment("bird", "workspace_id", "a1405560-c8d3-4b1a").is_ok());
        assert!(check_path_segment("bird", "workspace_id", "../admin").is_err());
        assert!(check_path_segment("bird", "workspace_id", "").is_err());
    }
}
