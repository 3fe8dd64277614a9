//! CM.com Business Messaging, JSON format.
//!
//! One POST to the `/v1.0/message` endpoint with the product token in the
//! `X-CM-PRODUCTTOKEN` header, and a `messages.msg[]` body with `from`,
//! `to[].number`, and `body.type`/`body.content`. CM.com responds 200 with
//! `errorCode` 0 and a per-message `status` of `Accepted`. A request it
//! rejects as a whole gets 400 with `errorCode` and `details`, such as 101
//! for an unknown product token. The response carries no message id.
//! Source: CM.com developer documentation, "Business Messaging Basics" and
//! "Responses & Errors - JSON" (developers.cm.com).

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT};
use reqwest::{StatusCode, Url};
use serde_json::json;

use super::http::{check_url, secret_header, GatewayResponse, HttpClient};
use super::{check_recipient, SentSms, SmsConfigError, SmsError, SmsGateway, SmsMessage};

/// Gateway kind and name in logs.
const NAME: &str = "cm";

/// CM.com's `errorCode` for "No account found for the given authentication".
const ERROR_CODE_AUTHENTICATION: i64 = 101;

/// Header that carries the product token.
const PRODUCT_TOKEN_HEADER: &str = "x-cm-producttoken";

/// Sends through CM.com Business Messaging.
pub struct CmComGateway {
    /// Endpoint, by default `https://gw.messaging.cm.com/v1.0/message`.
    url: Url,
    /// The product token, as a sensitive header value.
    product_token: HeaderValue,
    /// Shared client with the per-request timeout.
    http: HttpClient,
}

impl CmComGateway {
    /// Creates the gateway. The product token is a UUID with hyphens.
    pub fn new(
        url: &str,
        product_token: &str,
        http: HttpClient,
    ) -> Result<CmComGateway, SmsConfigError> {
        Ok(CmComGateway {
            url: check_url(NAME, url)?,
            product_token: secret_header(NAME, "product_token", product_token)?,
            http,
        })
    }

    /// Maps a 400 response: `errorCode` 101 rejects the token, a message whose
    /// `status` is `Rejected` rejects the recipient, anything else is an
    /// HTTP status error.
    fn error_for(&self, response: &GatewayResponse, message: &SmsMessage) -> SmsError {
        let status = response.status.as_u16();
        let json = response.json(NAME).ok();

        let error_code = json
            .as_ref()
            .and_then(|json| json.get("errorCode"))
            .and_then(serde_json::Value::as_i64);
        if error_code == Some(ERROR_CODE_AUTHENTICATION) {
            return SmsError::Unauthorized {
                gateway: NAME.to_owned(),
                status,
                provider_error: response.error_text(),
            };
        }

        if let Some(details) = json.as_ref().and_then(rejected_message_details) {
            return SmsError::RejectedRecipient {
                gateway: NAME.to_owned(),
                recipient: crate::verify::caller_id::mask_number(&message.to_e164),
                status,
                provider_error: super::sanitize_provider_text(&details),
            };
        }

        response.default_error(NAME)
    }
}

/// Returns the `messageDetails` of the first message whose `status` is
/// `Rejected`, if any.
fn rejected_message_details(json: &serde_json::Value) -> Option<String> {
    json.get("messages")?
        .as_array()?
        .iter()
        .find(|message| message.get("status").and_then(|s| s.as_str()) == Some("Rejected"))
        .map(|message| {
            message
                .get("messageDetails")
                .and_then(|d| d.as_str())
                .unwrap_or("rejected without details")
                .to_owned()
        })
}

#[async_trait]
impl SmsGateway for CmComGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        let digits = check_recipient(&message.to_e164)?;

        // CM.com's examples write numbers with the 00 international prefix.
        let body = json!({
            "messages": {
                "msg": [{
                    "allowedChannels": ["SMS"],
                    "from": message.from,
                    "to": [{ "number": format!("00{digits}") }],
                    "body": { "type": "auto", "content": message.text },
                }]
            }
        });
        let request = self
            .http
            .post(self.url.clone())
            .header(
                HeaderName::from_static(PRODUCT_TOKEN_HEADER),
                self.product_token.clone(),
            )
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .json(&body);

        let response = self.http.execute(NAME, request).await?;
        if response.status == StatusCode::BAD_REQUEST {
            return Err(self.error_for(&response, message));
        }
        if !response.status.is_success() {
            return Err(response.default_error(NAME));
        }

        // 200 can still reject the one message, with errorCode 201 and a
        // per-message status.
        let json = response.json(NAME)?;
        if let Some(details) = rejected_message_details(&json) {
            return Err(SmsError::RejectedRecipient {
                gateway: NAME.to_owned(),
                recipient: crate::verify::caller_id::mask_number(&message.to_e164),
                status: response.status.as_u16(),
                provider_error: super::sanitize_provider_text(&details),
            });
        }
        let accepted = json
            .get("messages")
            .and_then(|m| m.as_array())
            .is_some_and(|messages| {
                messages
                    .iter()
                    .any(|m| m.get("status").and_then(|s| s.as_str()) == Some("Accepted"))
            });
        if !accepted {
            return Err(SmsError::InvalidResponse {
                gateway: NAME.to_owned(),
                reason: "no message with status Accepted in the response".to_owned(),
            });
        }

        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id: None,
        })
    }
}

impl fmt::Debug for CmComGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CmComGateway")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}
