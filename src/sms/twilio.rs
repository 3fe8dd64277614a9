//! Twilio Programmable Messaging.
//!
//! One POST to `/2010-04-01/Accounts/{AccountSid}/Messages.json`, form
//! encoded (`To`, `From`, `Body`), with HTTP Basic authentication of account
//! SID and auth token. Twilio responds 201 with the message resource, whose
//! `sid` identifies it. Errors carry `code`, `message`, `more_info` and
//! `status`, such as 20003 with 401 for rejected credentials and 21211 with
//! 400 for an invalid `To` number.
//! Source: Twilio documentation, "Twilio API responses" and the error
//! dictionary (twilio.com/docs).

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::{StatusCode, Url};

use super::http::{check_path_segment, check_url, GatewayResponse, HttpClient};
use super::{check_recipient, SentSms, SmsConfigError, SmsError, SmsGateway, SmsMessage};

/// Gateway kind and name in logs.
const NAME: &str = "twilio";

/// Twilio error codes that reject the recipient: 21211 invalid `To` number,
/// 21610 recipient unsubscribed, 21612 `To` not reachable, 21614 `To` not a
/// mobile number.
const RECIPIENT_ERROR_CODES: [i64; 4] = [21211, 21610, 21612, 21614];

/// Sends through Twilio.
pub struct TwilioGateway {
    /// Messages endpoint of the account, built from the base URL (by default
    /// `https://api.twilio.com`) and the account SID.
    url: Url,
    /// Account SID, the Basic authentication user name.
    account_sid: String,
    /// Auth token, the Basic authentication password.
    auth_token: String,
    /// Shared client with the per-request timeout.
    http: HttpClient,
}

impl TwilioGateway {
    /// Creates the gateway for one account.
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        http: HttpClient,
    ) -> Result<TwilioGateway, SmsConfigError> {
        check_path_segment(NAME, "account_sid", account_sid)?;

        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            base_url.trim_end_matches('/')
        );
        Ok(TwilioGateway {
            url: check_url(NAME, &url)?,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            http,
        })
    }

    /// Maps a 400 with one of [`RECIPIENT_ERROR_CODES`] to a rejected
    /// recipient, and every other failure by its status.
    fn error_for(&self, response: &GatewayResponse, message: &SmsMessage) -> SmsError {
        let code = response
            .json(NAME)
            .ok()
            .and_then(|json| json.get("code").and_then(serde_json::Value::as_i64));
        let rejects_recipient = code.is_some_and(|code| RECIPIENT_ERROR_CODES.contains(&code));
        if response.status == StatusCode::BAD_REQUEST && rejects_recipient {
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

#[async_trait]
impl SmsGateway for TwilioGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        check_recipient(&message.to_e164)?;

        let form = [
            ("To", message.to_e164.as_str()),
            ("From", message.from.as_str()),
            ("Body", message.text.as_str()),
        ];
        let request = self
            .http
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .form(&form);

        let response = self.http.execute(NAME, request).await?;
        if !response.status.is_success() {
            return Err(self.error_for(&response, message));
        }

        let json = response.json(NAME)?;
        let sid = json
            .get("sid")
            .and_then(|sid| sid.as_str())
            .ok_or_else(|| SmsError::InvalidResponse {
                gateway: NAME.to_owned(),
                reason: "the message resource has no string \"sid\"".to_owned(),
            })?;
        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id: Some(sid.to_owned()),
        })
    }
}

impl fmt::Debug for TwilioGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioGateway")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}
