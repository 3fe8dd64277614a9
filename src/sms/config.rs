//! SMS gateway settings (`[sms]` and `[[sms.gateways]]` in the config file).

use std::time::Duration;

/// `[sms]`: how one-time codes reach the caller's mobile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConfig {
    /// Gateways in order of preference; when one fails, the next is tried.
    pub gateways: Vec<GatewayConfig>,
    /// Time allowed for one HTTP request to a gateway.
    pub timeout: Duration,
    /// Retries per gateway before failing over to the next one.
    pub retries: u32,
    /// Delay before the first retry; each further retry doubles it.
    pub backoff: Duration,
    /// Originator shown on the phone: up to 11 letters/digits, or a number.
    pub sender: String,
    /// True only in a development setup; the console gateway refuses to
    /// print codes otherwise.
    pub development: bool,
}

/// One SMS gateway and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayConfig {
    /// Writes the message to the log; for development only.
    Console,
    /// Any HTTP API that takes a JSON body.
    HttpJson {
        /// Endpoint to POST to.
        url: String,
        /// Extra request headers, such as an Authorization header.
        headers: Vec<(String, String)>,
        /// JSON body with `{{to}}`, `{{from}}` and `{{text}}` placeholders.
        body_template: String,
    },
    /// CM.com Business Messaging.
    CmCom {
        /// API endpoint.
        url: String,
        /// The product token (a UUID).
        product_token: String,
    },
    /// Spryng SMS API v1.
    Spryng {
        /// API endpoint.
        url: String,
        /// Bearer token.
        api_key: String,
    },
    /// Bird (formerly MessageBird) channels API.
    Bird {
        /// API endpoint (without the workspace and channel path).
        url: String,
        /// Access key.
        access_key: String,
        /// Workspace id.
        workspace_id: String,
        /// SMS channel id.
        channel_id: String,
    },
    /// Twilio Programmable Messaging.
    Twilio {
        /// API base URL.
        url: String,
        /// Account SID.
        account_sid: String,
        /// Auth token.
        auth_token: String,
    },
}
