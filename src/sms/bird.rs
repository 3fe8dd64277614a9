//! Bird (formerly MessageBird) Channels API.
//!
//! One POST to `/workspaces/{workspaceId}/channels/{channelId}/messages`
//! with `Authorization: AccessKey <key>` and a body of
//! `receiver.contacts[].identifierKey`/`identifierValue` and a text body.
//! Bird responds 202 with the message, whose `id` identifies it, and 422
//! when the request does not pass validation. The channel fixes the sender,
//! so [`SmsMessage::from`] is not sent.
//! Source: Bird API documentation, Channels API reference, "Messaging"
//! (docs.bird.com).

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde_json::json;

use super::http::{check_path_segment, check_url, secret_header, GatewayResponse, HttpClient};
use super::{check_recipient, SentSms, SmsConfigError, SmsError, SmsGateway, SmsMessage};

/// Gateway kind and name in logs.
const NAME: &str = "bird";

/// Sends through a Bird SMS channel.
pub struct BirdGateway {
    /// Full messages endpoint of the channel, built from the base URL (by
    /// default `https://api.bird.com`) and the two ids.
    url: Url,
    /// `AccessKey <key>`, as a sensitive header value.
    authorization: HeaderValue,
    /// Shared client with the per-request timeout.
    http: HttpClient,
}

impl BirdGateway {
    /// Creates the gateway for one SMS channel in one workspace.
    pub fn new(
        base_url: &str,
        access_key: &str,
        workspace_id: &str,
        channel_id: &str,
        http: HttpClient,
    ) -> Result<BirdGateway, SmsConfigError> {
        check_path_segment(NAME, "workspace_id", workspace_id)?;
        check_path_segment(NAME, "channel_id", channel_id)?;

        let url = format!(
            "{}/workspaces/{workspace_id}/channels/{channel_id}/messages",
            base_url.trim_end_matches('/')
        );
        Ok(BirdGateway {
            url: check_url(NAME, &url)?,
            authorization: secret_header(NAME, "access_key", &format!("AccessKey {access_key}"))?,
            http,
        })
    }

    /// Maps a 422 that names the receiver to a rejected recipient, and every
    /// other failure by its status.
    fn error_for(&self, response: &GatewayResponse, message: &SmsMessage) -> SmsError {
        if response.status == StatusCode::UNPROCESSABLE_ENTITY && names_receiver(response) {
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

/// Returns whether a validation error body points at the receiver.
// NOTE: the reference shows the 422 status without its body; this looks for
// the receiver field names or an `invalid_recipient` type anywhere in it.
fn names_receiver(response: &GatewayResponse) -> bool {
    let body = String::from_utf8_lossy(&response.body);
    ["receiver", "identifierValue", "invalid_recipient"]
        .iter()
        .any(|needle| body.contains(needle))
}

#[async_trait]
impl SmsGateway for BirdGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        check_recipient(&message.to_e164)?;

        let body = json!({
            "receiver": {
                "contacts": [{
                    "identifierKey": "phonenumber",
                    "identifierValue": message.to_e164,
                }]
            },
            "body": {
                "type": "text",
                "text": { "text": message.text },
            },
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
                    reason: "the message has no string \"id\"".to_owned(),
                })?;
        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id: Some(id.to_owned()),
        })
    }
}

impl fmt::Debug for BirdGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BirdGateway")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}
