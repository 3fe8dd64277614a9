//! SMS gateways: how a one-time code reaches the caller's registered mobile.
//!
//! Every provider sits behind [`SmsGateway`]. [`SmsSender`] wraps the
//! configured gateways in order of preference: it retries a gateway on
//! transient errors (timeouts, connection failures, 5xx, 429) with
//! exponential backoff, then fails over to the next gateway.
//!
//! The message text contains the code, so it never reaches a log. `Debug` of
//! [`SmsMessage`] prints neither the text nor the full number. Provider error
//! texts are cleaned of digit runs before they are stored in an error (see
//! [`sanitize_provider_text`]). Only the console gateway prints a text, and
//! only when the service runs in development mode.

pub mod config;

mod bird;
mod cm;
mod console;
mod error;
mod http;
mod http_json;
mod sender;
mod spryng;
mod twilio;

use std::fmt;

use async_trait::async_trait;

pub use bird::BirdGateway;
pub use cm::CmComGateway;
pub use config::{GatewayConfig, SmsConfig};
pub use console::ConsoleGateway;
pub use error::{SmsConfigError, SmsError};
pub use http::{build_http_client, sanitize_provider_text, HttpClient};
pub use http_json::HttpJsonGateway;
pub use sender::SmsSender;
pub use spryng::SpryngGateway;
pub use twilio::TwilioGateway;

/// One SMS to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// Recipient in E.164 form, such as `+31612345601`.
    pub to_e164: String,
    /// Originator shown on the phone: an alphanumeric sender id or a number.
    pub from: String,
    /// Message text. It contains the one-time code, so `Debug` never prints it.
    pub text: String,
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field(
                "to_e164",
                &crate::verify::caller_id::mask_number(&self.to_e164),
            )
            .field("from", &self.from)
            .field(
                "text",
                &format_args!("<{} characters>", self.text.chars().count()),
            )
            .finish()
    }
}

/// A message that a gateway accepted. Acceptance is not delivery: providers
/// report delivery later, through status callbacks this service does not
/// receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// Name of the gateway that accepted the message, as [`SmsGateway::name`].
    pub gateway: String,
    /// The provider's id for the message, when its response carries one.
    pub provider_message_id: Option<String>,
}

/// A way to send an SMS: one provider's API, or the development console.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// Returns the gateway's name for logs and for [`SentSms::gateway`]:
    /// the `kind` from the config file, such as `cm` or `twilio`.
    fn name(&self) -> &str;

    /// Sends one message with one request, without retrying. The caller
    /// ([`SmsSender`]) decides on retries with [`SmsError::is_retryable`].
    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError>;
}

/// Checks that `to_e164` is a `+` followed by 8 to 15 digits (ITU-T E.164
/// allows at most 15), so that no gateway is asked to send to a malformed
/// number. Whether the number is a mobile is the caller's check
/// ([`crate::verify::otp::is_mobile`]).
pub(crate) fn check_recipient(to_e164: &str) -> Result<&str, SmsError> {
    let digits = to_e164.strip_prefix('+').unwrap_or_default();
    let valid = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(SmsError::InvalidRecipient {
            recipient: crate::verify::caller_id::mask_number(to_e164),
        });
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_text_and_number() {
        let message = SmsMessage {
            to_e164: "+31612345601".to_owned(),
            from: "Klantenservice".to_owned(),
            text: "Uw code is 482913.".to_owned(),
        };
        let printed = format!("{message:?}");
        assert!(!printed.contains("482913"), "{printed}");
        assert!(!printed.contains("12345"), "{printed}");
        assert!(printed.contains("+316******01"), "{printed}");
        assert!(printed.contains("<18 characters>"), "{printed}");
    }

    #[test]
    fn recipient_check_accepts_e164() {
        assert_eq!(check_recipient("+31612345601").ok(), Some("31612345601"));
    }

    #[test]
    fn recipient_check_rejects_malformed() {
        for bad in [
            "31612345601",
            "+3161234",
            "+3161234560112345",
            "+31 6 1234 5601",
            "",
        ] {
            assert!(
                matches!(check_recipient(bad), Err(SmsError::InvalidRecipient { .. })),
                "{bad:?} was accepted"
            );
        }
    }
}
