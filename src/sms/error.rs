//! Errors of the SMS layer: one for building gateways from the config, one
//! for sending.

use std::time::Duration;

/// Error returned when a gateway cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SmsConfigError {
    /// `[[sms.gateways]]` is empty.
    #[error("no SMS gateway is configured; add a [[sms.gateways]] section")]
    NoGateways,

    /// A gateway URL does not parse, or uses plain HTTP to a host that is not
    /// on loopback, which would send the credentials in clear.
    #[error("gateway {gateway}: url {url:?} is invalid: {reason}")]
    InvalidUrl {
        /// Gateway kind.
        gateway: &'static str,
        /// The rejected URL.
        url: String,
        /// Reason the URL was rejected.
        reason: String,
    },

    /// A value that goes into a URL path or a header (account SID, workspace
    /// or channel id, header name or value) contains characters it may not.
    #[error("gateway {gateway}: {key} is invalid: {reason}")]
    InvalidValue {
        /// Gateway kind.
        gateway: &'static str,
        /// Config key of the value.
        key: &'static str,
        /// Reason the value was rejected.
        reason: String,
    },

    /// The `http_json` body template is not valid JSON once its placeholders
    /// are filled in, or lacks `{{to}}` or `{{text}}`.
    #[error("gateway http_json: body_template is invalid: {reason}")]
    InvalidBodyTemplate {
        /// Reason the template was rejected.
        reason: String,
    },

    /// The HTTP client could not be built (the TLS stack failed to load).
    #[error("HTTP client for the SMS gateways could not be built: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Error returned when an SMS could not be sent.
///
/// Provider texts in these variants passed through
/// [`super::sanitize_provider_text`], so they hold no digit runs long enough
/// to be a code or a phone number, and they may be logged.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The recipient is not a `+` followed by 8 to 15 digits. No request was
    /// sent.
    #[error(
        "recipient {recipient} is not an E.164 number; normalise it to +<country><number> first"
    )]
    InvalidRecipient {
        /// The recipient, masked.
        recipient: String,
    },

    /// The gateway sent no response within the configured timeout. The message
    /// may still have been accepted.
    #[error("gateway {gateway}: request timed out after {} ms; the message may still have been accepted", timeout.as_millis())]
    Timeout {
        /// Gateway name.
        gateway: String,
        /// The configured per-request timeout.
        timeout: Duration,
    },

    /// The connection to the gateway failed (DNS, TCP or TLS).
    #[error("gateway {gateway}: connection failed: {source}")]
    Connection {
        /// Gateway name.
        gateway: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },

    /// The gateway rejected the credentials (HTTP 401 or 403, or CM.com's
    /// error code 101). Retrying cannot help; fix the token in the config.
    #[error("gateway {gateway}: credentials rejected (HTTP {status}): {provider_error}; check the gateway's token or key")]
    Unauthorized {
        /// Gateway name.
        gateway: String,
        /// HTTP status code.
        status: u16,
        /// The provider's error text.
        provider_error: String,
    },

    /// The gateway rejected the recipient as invalid or unreachable.
    #[error("gateway {gateway}: recipient {recipient} rejected (HTTP {status}): {provider_error}")]
    RejectedRecipient {
        /// Gateway name.
        gateway: String,
        /// The recipient, masked.
        recipient: String,
        /// HTTP status code.
        status: u16,
        /// The provider's error text.
        provider_error: String,
    },

    /// The gateway responded with another non-success status, such as 429,
    /// 5xx, 400 or a redirect, which is not followed.
    #[error("gateway {gateway}: HTTP {status}: {provider_error}")]
    HttpStatus {
        /// Gateway name.
        gateway: String,
        /// HTTP status code.
        status: u16,
        /// The provider's error text.
        provider_error: String,
    },

    /// The gateway responded with a success status, but the body is not what
    /// its API documents, or is larger than the service reads.
    #[error("gateway {gateway}: invalid response: {reason}")]
    InvalidResponse {
        /// Gateway name.
        gateway: String,
        /// Problem found in the response.
        reason: String,
    },

    /// The request failed for another reason (for example, the request body
    /// could not be built).
    #[error("gateway {gateway}: request failed: {source}")]
    Request {
        /// Gateway name.
        gateway: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },

    /// The console gateway prints codes to the log, which is allowed only
    /// when `[service] development = true`.
    #[error("gateway {gateway} is for development only and refused to send; configure a real SMS gateway or set [service] development = true")]
    NotAllowedOutsideDevelopment {
        /// Gateway name.
        gateway: String,
    },

    /// Every configured gateway failed; `last` is the error of the last
    /// attempt.
    #[error("all {gateways} SMS gateways failed after {attempts} attempts; last error: {last}")]
    AllGatewaysFailed {
        /// Number of gateways tried.
        gateways: usize,
        /// Number of requests made over all gateways.
        attempts: u32,
        /// Error of the last attempt.
        #[source]
        last: Box<SmsError>,
    },
}

impl SmsError {
    /// Returns whether the same request may succeed when sent again to the
    /// same gateway: timeouts, connection failures, HTTP 408, 429 and 5xx.
    /// Rejected credentials, rejected recipients and other 4xx answers come
    /// back the same on every retry.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            SmsError::Timeout { .. } | SmsError::Connection { .. } => true,
            SmsError::HttpStatus { status, .. } => {
                *status == 408 || *status == 429 || (500..=599).contains(status)
            }
            SmsError::InvalidRecipient { .. }
            | SmsError::Unauthorized { .. }
            | SmsError::RejectedRecipient { .. }
            | SmsError::InvalidResponse { .. }
            | SmsError::Request { .. }
            | SmsError::NotAllowedOutsideDevelopment { .. }
            | SmsError::AllGatewaysFailed { .. } => false,
        }
    }

    /// Returns whether another gateway may succeed where this one failed.
    /// Only a recipient that is not E.164 fails everywhere; a provider that
    /// rejects a recipient may not route to that network while another does.
    #[must_use]
    pub fn allows_failover(&self) -> bool {
        !matches!(self, SmsError::InvalidRecipient { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> SmsError {
        SmsError::HttpStatus {
            gateway: "cm".to_owned(),
            status,
            provider_error: String::new(),
        }
    }

    #[test]
    fn transient_statuses_are_retryable() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "HTTP {code}");
        }
    }

    #[test]
    fn client_errors_are_not_retryable() {
        for code in [301, 400, 404, 409, 422] {
            assert!(!status(code).is_retryable(), "HTTP {code}");
        }
    }

    #[test]
    fn rejected_credentials_not_retryable() {
        let error = SmsError::Unauthorized {
            gateway: "spryng".to_owned(),
            status: 401,
            provider_error: "Unauthenticated.".to_owned(),
        };
        assert!(!error.is_retryable());
        assert!(error.allows_failover());
    }

    #[test]
    fn timeout_is_retryable() {
        let error = SmsError::Timeout {
            gateway: "bird".to_owned(),
            timeout: Duration::from_millis(5000),
        };
        assert!(error.is_retryable());
    }

    #[test]
    fn invalid_recipient_stops_failover() {
        let error = SmsError::InvalidRecipient {
            recipient: "+316******01".to_owned(),
        };
        assert!(!error.is_retryable());
        assert!(!error.allows_failover());
    }
}
