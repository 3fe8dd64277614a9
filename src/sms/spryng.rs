//! Spryng SMS REST API v1.
//!
//! One POST to `/v1/messages` with `Authorization: Bearer <API key>` and a
//! JSON body of `body`, `encoding`, `originator`, `recipients` (numbers
//! without `+`) and `route`. Spryng responds 200 with the message object,
//! whose `id` identifies it, 401 for an invalid key, 422 for missing or
//! invalid parameters and 429 past the rate limit.
//! Sources: the Spryng REST API documentation (docs.spryngsms.com) for the
//! header and the status codes; Spryng's PHP client and other clients for
//! the body fields.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde_json::json;

use super::http::{check_url, secret_header, GatewayResponse, HttpClient};
use super::{check_recipient, SentSms, SmsConfigError, SmsError, SmsGateway, SmsMessage};

/// Gateway kind and name in logs.
const NAME: &str = "spryng";

/// Spryng's route for transactional traffic. Spryng documents `business` as
/// the default business route; a numeric custom route id also works.
const ROUTE: &str = "business";

/// Sends through Spryng.
pub struct SpryngGateway {
    /// Endpoint, by default `https://rest.spryngsms.com/v1/messages`.
    url: Url,
    /// `Bearer <API key>`, as a sensitive header value.
    authorization: HeaderValue,
    /// Shared client with the per-request timeout.
    http: HttpClient,
}

impl SpryngGateway {
    /// Creates the gateway with the REST API key from Spryng's portal.
    pub fn new(
        url: &str,
        api_key: &str,
        http: HttpClient,
    ) -> Result<SpryngGateway, SmsConfigError> {
        Ok(SpryngGateway {
            url: check_url(NAME, url)?,
            authorization: secret_header(NAME, "api_key", &format!("Bearer {api_key}"))?,
            http,
        })
    }

    /// Maps a 422 whose errors name the `recipients` field to a rejected
    /// recipient, and every other failure by its status.
    fn error_for(&self, response: &GatewayResponse, message: &SmsMessage) -> SmsError {
        if response.status == StatusCode::UNPROCESSABLE_ENTITY && names_recipients(response) {
            return SmsError::RejectedRecipient {
                gateway: NAME.to_owned(),
                recipient: crate::verify::caller_id::mask_number(&message.to_e164),
                status: response.status.as_u16(),
                provider_error: response.error_text(),
            };
        }
        response.default_error(NAME)
    }
}

/// Returns whether the validation errors of a 422 body name the recipients,
/// as in `{"errors": {"recipients.0": ["..."]}}`.
// NOTE: Spryng's documentation lists the 422 status but shows no error body;
// the Laravel-style `errors` map is an assumption.
// Any other 422 is reported as an HTTP status error, which is not retried.
fn names_recipients(response: &GatewayResponse) -> bool {
    let Ok(json) = response.json(NAME) else {
        return false;
    };
    json.get("errors")
        .and_then(|errors| errors.as_object())
        .is_some_and(|errors| errors.keys().any(|key| key.starts_with("recipients")))
}

#[async_trait]
impl SmsGateway for SpryngGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        let digits = check_recipient(&message.to_e164)?;

        let body = json!({
            "body": message.text,
            "encoding": "auto",
            "originator": message.from,
            "recipients": [digits],
            "route": ROUTE,
        });
        let request = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .json(&body);

        let response = self.http.execute(NAME, request).await?;
        if !response.status.is_success() {
            return Err(self.error_for(&response, message));
        }

        let json = response.json(NAME)?;
        let id =
            json.get("id")
                .and_then(|id| id.as_str())
                .ok_or_else(|| SmsError::InvalidResponse {
                    gateway: NAME.to_owned(),
                    reason: "the message object has no string \"id\"".to_owned(),
                })?;
        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id: Some(id.to_owned()),
        })
    }
}

impl fmt::Debug for SpryngGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpryngGateway")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}
