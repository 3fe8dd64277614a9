//! A generic gateway for any HTTP API that takes one JSON body per message.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;

use super::http::{check_url, secret_header, HttpClient};
use super::{check_recipient, SentSms, SmsConfigError, SmsError, SmsGateway, SmsMessage};

/// Gateway kind and name in logs.
const NAME: &str = "http_json";

/// Sends a POST with `body_template`, its `{{to}}`, `{{from}}` and
/// `{{text}}` placeholders replaced by the JSON-escaped values, and the
/// configured extra headers. Any 2xx status means sent.
pub struct HttpJsonGateway {
    /// Endpoint to POST to.
    url: Url,
    /// Extra headers, such as Authorization; values are marked sensitive so
    /// they never print.
    headers: HeaderMap,
    /// JSON body with placeholders. The placeholders sit inside JSON strings,
    /// as in `{"to": "{{to}}"}`.
    body_template: String,
    /// Shared client with the per-request timeout.
    http: HttpClient,
}

impl HttpJsonGateway {
    /// Creates the gateway, checking the URL, the header names and values, and
    /// that the template is valid JSON once filled in.
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        body_template: &str,
        http: HttpClient,
    ) -> Result<HttpJsonGateway, SmsConfigError> {
        let url = check_url(NAME, url)?;

        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                SmsConfigError::InvalidValue {
                    gateway: NAME,
                    key: "headers",
                    reason: format!("{name:?} is not a valid header name"),
                }
            })?;
            header_map.append(name, secret_header(NAME, "headers", value)?);
        }

        check_template(body_template)?;

        Ok(HttpJsonGateway {
            url,
            headers: header_map,
            body_template: body_template.to_owned(),
            http,
        })
    }
}

/// Checks that the template names the recipient and the text, and that it is
/// valid JSON once filled with sample values.
fn check_template(template: &str) -> Result<(), SmsConfigError> {
    for placeholder in ["{{to}}", "{{text}}"] {
        if !template.contains(placeholder) {
            return Err(SmsConfigError::InvalidBodyTemplate {
                reason: format!("it does not contain {placeholder}"),
            });
        }
    }

    let sample = fill_template(template, "+31612345601", "Sender", "Line \"one\"\nline two");
    serde_json::from_str::<serde_json::Value>(&sample).map_err(|error| {
        SmsConfigError::InvalidBodyTemplate {
            reason: format!(
                "it is not valid JSON once filled in ({error}); put each placeholder inside a JSON string"
            ),
        }
    })?;
    Ok(())
}

/// Replaces the placeholders with the JSON-escaped values, without quotes,
/// because the template puts them inside strings. Each value is escaped
/// before insertion, so a value cannot close its string and add fields, and
/// the template is scanned once, so a value that contains `{{text}}` is not
/// replaced again.
fn fill_template(template: &str, to: &str, from: &str, text: &str) -> String {
    let mut out = String::with_capacity(template.len() + text.len() + 32);
    let mut rest = template;

    while let Some(start) = rest.find("{{") {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);

        let value = [("{{to}}", to), ("{{from}}", from), ("{{text}}", text)]
            .into_iter()
            .find(|(placeholder, _)| tail.starts_with(placeholder));
        match value {
            Some((placeholder, value)) => {
                out.push_str(&json_escape(value));
                rest = tail.get(placeholder.len()..).unwrap_or_default();
            }
            None => {
                out.push_str("{{");
                rest = tail.get(2..).unwrap_or_default();
            }
        }
    }

    out.push_str(rest);
    out
}

/// Returns `value` as the inside of a JSON string literal.
fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

#[async_trait]
impl SmsGateway for HttpJsonGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        check_recipient(&message.to_e164)?;

        let body = fill_template(
            &self.body_template,
            &message.to_e164,
            &message.from,
            &message.text,
        );
        let request = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);

        let response = self.http.execute(NAME, request).await?;
        if !response.status.is_success() {
            return Err(response.default_error(NAME));
        }

        // A generic API may respond with any body, so the id is taken only
        // from a JSON body with a top-level "id".
        let provider_message_id = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|json| match json.get("id") {
                Some(serde_json::Value::String(id)) => Some(id.clone()),
                Some(serde_json::Value::Number(id)) => Some(id.to_string()),
                _ => None,
            });
        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id,
        })
    }
}

impl fmt::Debug for HttpJsonGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpJsonGateway")
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_escapes_quotes_and_newlines() {
        let body = fill_template(
            r#"{"to": "{{to}}", "text": "{{text}}"}"#,
            "+31612345601",
            "",
            "a \"b\"\nc\\",
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["text"], "a \"b\"\nc\\");
        assert_eq!(json["to"], "+31612345601");
    }

    #[test]
    fn fill_resists_field_injection() {
        let body = fill_template(
            r#"{"to": "{{to}}", "text": "{{text}}"}"#,
            "+31612345601",
            "",
            "\", \"to\": \"+999",
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["to"], "+31612345601");
    }

    #[test]
    fn fill_does_not_expand_placeholders_in_values() {
        let body = fill_template(
            r#"{"from": "{{from}}", "text": "{{text}}"}"#,
            "",
            "{{text}}",
            "code",
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["from"], "{{text}}");
        assert_eq!(json["text"], "code");
    }

    #[test]
    fn template_without_text_rejected() {
        let error = check_template(r#"{"to": "{{to}}"}"#);
        assert!(matches!(
            error,
            Err(SmsConfigError::InvalidBodyTemplate { .. })
        ));
    }

    #[test]
    fn template_with_bare_placeholder_rejected() {
        let error = check_template(r#"{"to": {{to}}, "text": "{{text}}"}"#);
        assert!(matches!(
            error,
            Err(SmsConfigError::InvalidBodyTemplate { .. })
        ));
    }

    #[test]
    fn template_with_quoted_placeholders_accepted() {
        let result = check_template(r#"{"to": "{{to}}", "from": "{{from}}", "text": "{{text}}"}"#);
        assert!(result.is_ok());
    }
}
