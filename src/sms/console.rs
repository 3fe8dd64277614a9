//! A gateway that writes the message to the log, for development.

use async_trait::async_trait;

use super::{check_recipient, SentSms, SmsError, SmsGateway, SmsMessage};
use crate::verify::caller_id::mask_number;

/// Gateway kind and name in logs.
const NAME: &str = "console";

/// Logs each message, text included, at INFO instead of sending it. Outside
/// development it sends nothing and returns
/// [`SmsError::NotAllowedOutsideDevelopment`], so a production config that
/// lists it cannot print codes into the logs.
#[derive(Debug, Clone)]
pub struct ConsoleGateway {
    /// Copy of `[service] development`.
    development: bool,
}

impl ConsoleGateway {
    /// Creates the gateway; `development` is `[service] development`.
    #[must_use]
    pub fn new(development: bool) -> ConsoleGateway {
        ConsoleGateway { development }
    }
}

#[async_trait]
impl SmsGateway for ConsoleGateway {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        check_recipient(&message.to_e164)?;

        if !self.development {
            tracing::error!(
                gateway = NAME,
                recipient = %mask_number(&message.to_e164),
                "console SMS gateway rejected a message because [service] development is false"
            );
            return Err(SmsError::NotAllowedOutsideDevelopment {
                gateway: NAME.to_owned(),
            });
        }

        tracing::info!(
            gateway = NAME,
            recipient = %mask_number(&message.to_e164),
            from = %message.from,
            text = %message.text,
            "SMS written to the log instead of sent (development mode)"
        );
        Ok(SentSms {
            gateway: NAME.to_owned(),
            provider_message_id: None,
        })
    }
}
