//! Retries and failover over the configured gateways.

use std::fmt;
use std::time::Duration;

use super::http::build_http_client;
use super::{
    BirdGateway, CmComGateway, ConsoleGateway, GatewayConfig, HttpJsonGateway, SentSms, SmsConfig,
    SmsConfigError, SmsError, SmsGateway, SmsMessage, SpryngGateway, TwilioGateway,
};
use crate::verify::otp::last_two_digits;

/// Maximum wait between two attempts. The caller is on the line while the
/// code is sent, so doubling stops here however many retries are set.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Maximum length of an alphanumeric originator. Spryng's HTTP API
/// documentation gives 11 characters for alphanumeric senders and 16 for
/// numeric ones (with `+`).
const MAX_ALPHANUMERIC_SENDER: usize = 11;

/// Sends SMS through the configured gateways in order of preference.
///
/// Each gateway gets one request plus up to `retries` more when the error is
/// transient ([`SmsError::is_retryable`]), waiting `backoff`, then twice
/// that, and so on up to [`MAX_BACKOFF`]. When a gateway gives up, the next
/// one is tried, unless the error shows that no gateway can succeed
/// ([`SmsError::allows_failover`]).
pub struct SmsSender {
    /// Gateways in order of preference.
    gateways: Vec<Box<dyn SmsGateway>>,
    /// Retries per gateway after the first request.
    retries: u32,
    /// Delay before the first retry.
    backoff: Duration,
    /// Originator for [`SmsSender::compose`], from `[sms] sender`.
    sender: String,
}

impl SmsSender {
    /// Builds every configured gateway, sharing one HTTP client with the
    /// configured per-request timeout.
    pub fn from_config(config: &SmsConfig) -> Result<SmsSender, SmsConfigError> {
        let http = build_http_client(config.timeout)?;

        let mut gateways: Vec<Box<dyn SmsGateway>> = Vec::with_capacity(config.gateways.len());
        for gateway in &config.gateways {
            let built: Box<dyn SmsGateway> = match gateway {
                GatewayConfig::Console => Box::new(ConsoleGateway::new(config.development)),
                GatewayConfig::HttpJson {
                    url,
                    headers,
                    body_template,
                } => Box::new(HttpJsonGateway::new(
                    url,
                    headers,
                    body_template,
                    http.clone(),
                )?),
                GatewayConfig::CmCom { url, product_token } => {
                    Box::new(CmComGateway::new(url, product_token, http.clone())?)
                }
                GatewayConfig::Spryng { url, api_key } => {
                    Box::new(SpryngGateway::new(url, api_key, http.clone())?)
                }
                GatewayConfig::Bird {
                    url,
                    access_key,
                    workspace_id,
                    channel_id,
                } => Box::new(BirdGateway::new(
                    url,
                    access_key,
                    workspace_id,
                    channel_id,
                    http.clone(),
                )?),
                GatewayConfig::Twilio {
                    url,
                    account_sid,
                    auth_token,
                } => Box::new(TwilioGateway::new(
                    url,
                    account_sid,
                    auth_token,
                    http.clone(),
                )?),
            };
            gateways.push(built);
        }

        if !is_plausible_sender(&config.sender) {
            tracing::warn!(
                sender = %config.sender,
                "[sms] sender is neither a number nor at most {MAX_ALPHANUMERIC_SENDER} letters and digits; gateways may truncate or reject it"
            );
        }

        SmsSender::new(
            gateways,
            config.retries,
            config.backoff,
            config.sender.clone(),
        )
    }

    /// Creates a sender over already built gateways, for a gateway that the
    /// config file cannot describe.
    pub fn new(
        gateways: Vec<Box<dyn SmsGateway>>,
        retries: u32,
        backoff: Duration,
        sender: String,
    ) -> Result<SmsSender, SmsConfigError> {
        if gateways.is_empty() {
            return Err(SmsConfigError::NoGateways);
        }
        Ok(SmsSender {
            gateways,
            retries,
            backoff,
            sender,
        })
    }

    /// Builds a message to `to_e164` from the configured originator.
    #[must_use]
    pub fn compose(&self, to_e164: &str, text: String) -> SmsMessage {
        SmsMessage {
            to_e164: to_e164.to_owned(),
            from: self.sender.clone(),
            text,
        }
    }

    /// Sends `message`, retrying and failing over as described on the type.
    /// Returns the first acceptance, or [`SmsError::AllGatewaysFailed`] with
    /// the last error. An [`SmsError::InvalidRecipient`] returns at once.
    ///
    /// NOTE: a timeout is retried although the gateway may have accepted the
    /// message before it, so the caller may receive the code twice.
    pub async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        let recipient = format!("**{}", last_two_digits(&message.to_e164));
        let mut attempts: u32 = 0;
        let mut last_error = None;

        for (position, gateway) in self.gateways.iter().enumerate() {
            let mut retry: u32 = 0;
            loop {
                attempts += 1;
                tracing::info!(
                    gateway = gateway.name(),
                    position,
                    attempt = retry + 1,
                    recipient = %recipient,
                    "sending SMS"
                );

                let error = match gateway.send(message).await {
                    Ok(sent) => {
                        tracing::info!(
                            gateway = gateway.name(),
                            provider_message_id = sent.provider_message_id.as_deref().unwrap_or("-"),
                            recipient = %recipient,
                            attempts,
                            "SMS accepted by gateway"
                        );
                        return Ok(sent);
                    }
                    Err(error) => error,
                };

                if !error.allows_failover() {
                    tracing::warn!(gateway = gateway.name(), recipient = %recipient, %error, "SMS not sent");
                    return Err(error);
                }

                if error.is_retryable() && retry < self.retries {
                    let delay = retry_delay(self.backoff, retry);
                    tracing::warn!(
                        gateway = gateway.name(),
                        recipient = %recipient,
                        attempt = retry + 1,
                        delay_ms = delay.as_millis() as u64,
                        %error,
                        "SMS attempt failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                    continue;
                }

                tracing::warn!(
                    gateway = gateway.name(),
                    recipient = %recipient,
                    attempt = retry + 1,
                    retryable = error.is_retryable(),
                    %error,
                    "SMS gateway failed; trying the next gateway if there is one"
                );
                last_error = Some(error);
                break;
            }
        }

        let last = last_error.unwrap_or(SmsError::InvalidResponse {
            gateway: "-".to_owned(),
            reason: "no gateway was tried".to_owned(),
        });
        let error = SmsError::AllGatewaysFailed {
            gateways: self.gateways.len(),
            attempts,
            last: Box::new(last),
        };
        tracing::error!(recipient = %recipient, %error, "SMS not sent");
        Err(error)
    }
}

/// Returns the wait before retry number `retry + 1`: `backoff` doubled
/// `retry` times, at most [`MAX_BACKOFF`].
#[must_use]
pub fn retry_delay(backoff: Duration, retry: u32) -> Duration {
    let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
    backoff.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Returns whether `sender` is an originator that networks carry: a number
/// (an optional `+` and up to 15 digits) or 1 to 11 ASCII letters, digits
/// and spaces.
fn is_plausible_sender(sender: &str) -> bool {
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    let numeric = (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=MAX_ALPHANUMERIC_SENDER).contains(&sender.len())
        && sender
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ');
    numeric || alphanumeric
}

impl fmt::Debug for SmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.gateways.iter().map(|g| g.name()).collect();
        f.debug_struct("SmsSender")
            .field("gateways", &names)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("sender", &self.sender)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles() {
        let backoff = Duration::from_millis(200);
        assert_eq!(retry_delay(backoff, 0), Duration::from_millis(200));
        assert_eq!(retry_delay(backoff, 1), Duration::from_millis(400));
        assert_eq!(retry_delay(backoff, 2), Duration::from_millis(800));
    }

    #[test]
    fn retry_delay_capped() {
        let backoff = Duration::from_millis(200);
        assert_eq!(retry_delay(backoff, 10), MAX_BACKOFF);
        assert_eq!(retry_delay(backoff, u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn sender_plausibility() {
        assert!(is_plausible_sender("Klantdienst"));
        assert!(is_plausible_sender("+31201234567"));
        assert!(!is_plausible_sender("Klantenservice"));
        assert!(!is_plausible_sender(""));
    }

    #[test]
    fn empty_gateway_list_rejected() {
        let result = SmsSender::new(Vec::new(), 2, Duration::from_millis(1), "X".to_owned());
        assert!(matches!(result, Err(SmsConfigError::NoGateways)));
    }

    #[test]
    fn from_config_builds_every_kind() {
        let config = SmsConfig {
            gateways: vec![
                GatewayConfig::Console,
                GatewayConfig::HttpJson {
                    url: "https://sms.example.com/send".to_owned(),
                    headers: vec![("Authorization".to_owned(), "Bearer x".to_owned())],
                    body_template: r#"{"to": "{{to}}", "text": "{{text}}"}"#.to_owned(),
                },
                GatewayConfig::CmCom {
                    url: "https://gw.messaging.cm.com/v1.0/message".to_owned(),
                    product_token: "00000000-0000-0000-0000-000000000000".to_owned(),
                },
                GatewayConfig::Spryng {
                    url: "https://rest.spryngsms.com/v1/messages".to_owned(),
                    api_key: "key".to_owned(),
                },
                GatewayConfig::Bird {
                    url: "https://api.bird.com".to_owned(),
                    access_key: "key".to_owned(),
                    workspace_id: "ws-1".to_owned(),
                    channel_id: "ch-1".to_owned(),
                },
                GatewayConfig::Twilio {
                    url: "https://api.twilio.com".to_owned(),
                    account_sid: "AC123".to_owned(),
                    auth_token: "token".to_owned(),
                },
            ],
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(200),
            sender: "Klantdienst".to_owned(),
            development: false,
        };
        let sender = SmsSender::from_config(&config).unwrap();
        let printed = format!("{sender:?}");
        assert!(
            printed.contains(r#"["console", "http_json", "cm", "spryng", "bird", "twilio"]"#),
            "{printed}"
        );
        assert!(!printed.contains("Bearer"), "{printed}");
    }

    #[test]
    fn from_config_rejects_bad_twilio_sid() {
        let config = SmsConfig {
            gateways: vec![GatewayConfig::Twilio {
                url: "https://api.twilio.com".to_owned(),
                account_sid: "AC1/../../other".to_owned(),
                auth_token: "token".to_owned(),
            }],
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(200),
            sender: "Klantdienst".to_owned(),
            development: false,
        };
        let result = SmsSender::from_config(&config);
        assert!(matches!(
            result,
            Err(SmsConfigError::InvalidValue {
                key: "account_sid",
                ..
            })
        ));
    }
}
