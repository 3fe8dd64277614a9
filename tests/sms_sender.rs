//! `SmsSender` over loopback provider servers: retries with backoff,
//! failover to the next gateway, no retry on rejected credentials, the
//! console gateway outside development, and logs that never hold the code.

#[path = "support/sms_server.rs"]
mod sms_server;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_verify::sms::{GatewayConfig, SmsConfig, SmsError, SmsMessage, SmsSender};
use serde_json::json;
use sms_server::{Reply, SmsServer};
use tracing_subscriber::fmt::MakeWriter;

/// The code inside the test message; no log line may contain it.
const CODE: &str = "482913";

/// Backoff before the first retry in these tests.
const BACKOFF: Duration = Duration::from_millis(50);

fn message() -> SmsMessage {
    SmsMessage {
        to_e164: "+31612345601".to_owned(),
        from: "Klantdienst".to_owned(),
        text: format!("Uw verificatiecode voor uw gesprek is {CODE}."),
    }
}

fn spryng(server: &SmsServer) -> GatewayConfig {
    GatewayConfig::Spryng {
        url: server.url("/v1/messages"),
        api_key: "spryng-key".to_owned(),
    }
}

fn twilio(server: &SmsServer) -> GatewayConfig {
    GatewayConfig::Twilio {
        url: server.url(""),
        account_sid: "AC1".to_owned(),
        auth_token: "twilio-token".to_owned(),
    }
}

fn config(gateways: Vec<GatewayConfig>, retries: u32) -> SmsConfig {
    SmsConfig {
        gateways,
        timeout: Duration::from_millis(300),
        retries,
        backoff: BACKOFF,
        sender: "Klantdienst".to_owned(),
        development: false,
    }
}

fn spryng_accepted() -> Reply {
    Reply::json(200, json!({ "id": "spryng-message-1" }))
}

fn twilio_accepted() -> Reply {
    Reply::json(201, json!({ "sid": "SM0001", "status": "queued" }))
}

fn twilio_unauthorized() -> Reply {
    Reply::json(
        401,
        json!({ "code": 20003, "message": "Authenticate", "status": 401 }),
    )
}

/// Log output captured in memory for the current thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// Captures every log event at TRACE and above on this thread until the
/// guard drops. `#[tokio::test]` runs the test and its spawned servers on
/// one thread, so their events land here too.
fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, guard)
}

#[tokio::test]
async fn retries_with_backoff_then_succeeds() {
    let server = SmsServer::start(spryng_accepted()).await;
    server.push_reply(Reply::text(503, "Service Unavailable"));
    server.push_reply(Reply::text(503, "Service Unavailable"));
    let sender = SmsSender::from_config(&config(vec![spryng(&server)], 2)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "spryng");
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("spryng-message-1")
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first_gap = requests[1].received_at - requests[0].received_at;
    let second_gap = requests[2].received_at - requests[1].received_at;
    assert!(first_gap >= BACKOFF, "first retry after {first_gap:?}");
    assert!(
        second_gap >= BACKOFF * 2,
        "second retry after {second_gap:?}"
    );
}

#[tokio::test]
async fn fails_over_after_retries_run_out() {
    let primary = SmsServer::start(Reply::text(500, "Internal Server Error")).await;
    let secondary = SmsServer::start(twilio_accepted()).await;
    let sender =
        SmsSender::from_config(&config(vec![spryng(&primary), twilio(&secondary)], 1)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "twilio");
    assert_eq!(sent.provider_message_id.as_deref(), Some("SM0001"));
    assert_eq!(primary.requests().len(), 2, "one request and one retry");
    assert_eq!(secondary.requests().len(), 1);
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let primary = SmsServer::start(twilio_unauthorized()).await;
    let secondary = SmsServer::start(spryng_accepted()).await;
    let sender =
        SmsSender::from_config(&config(vec![twilio(&primary), spryng(&secondary)], 3)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "spryng");
    assert_eq!(primary.requests().len(), 1, "a 401 must not be retried");
    assert_eq!(secondary.requests().len(), 1);
}

#[tokio::test]
async fn timeouts_are_retried_then_fail_over() {
    let slow = SmsServer::start(spryng_accepted().delayed(Duration::from_secs(3))).await;
    let fast = SmsServer::start(twilio_accepted()).await;
    let sender = SmsSender::from_config(&config(vec![spryng(&slow), twilio(&fast)], 1)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "twilio");
    assert_eq!(slow.requests().len(), 2);
    assert_eq!(fast.requests().len(), 1);
}

#[tokio::test]
async fn all_gateways_failing_reports_last_error() {
    let primary = SmsServer::start(twilio_unauthorized()).await;
    let secondary = SmsServer::start(Reply::text(502, "Bad Gateway")).await;
    let sender =
        SmsSender::from_config(&config(vec![twilio(&primary), spryng(&secondary)], 1)).unwrap();

    let error = sender.send(&message()).await.unwrap_err();

    match error {
        SmsError::AllGatewaysFailed {
            gateways,
            attempts,
            last,
        } => {
            assert_eq!(gateways, 2);
            assert_eq!(attempts, 3, "1 to twilio, 2 to spryng");
            assert!(
                matches!(*last, SmsError::HttpStatus { status: 502, .. }),
                "{last:?}"
            );
        }
        other => panic!("expected AllGatewaysFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_recipient_stops_at_once() {
    let primary = SmsServer::start(spryng_accepted()).await;
    let secondary = SmsServer::start(twilio_accepted()).await;
    let sender =
        SmsSender::from_config(&config(vec![spryng(&primary), twilio(&secondary)], 2)).unwrap();
    let mut message = message();
    message.to_e164 = "+31 6 1234 5601".to_owned();

    let error = sender.send(&message).await.unwrap_err();

    assert!(
        matches!(error, SmsError::InvalidRecipient { .. }),
        "{error:?}"
    );
    assert!(primary.requests().is_empty());
    assert!(secondary.requests().is_empty());
}

#[tokio::test]
async fn console_refuses_outside_development() {
    let (logs, _guard) = capture_logs();
    let sender = SmsSender::from_config(&config(vec![GatewayConfig::Console], 2)).unwrap();

    let error = sender.send(&message()).await.unwrap_err();

    match error {
        SmsError::AllGatewaysFailed { attempts, last, .. } => {
            assert_eq!(attempts, 1, "the refusal must not be retried");
            assert!(
                matches!(*last, SmsError::NotAllowedOutsideDevelopment { .. }),
                "{last:?}"
            );
        }
        other => panic!("expected AllGatewaysFailed, got {other:?}"),
    }
    let logs = logs.contents();
    assert!(
        logs.contains("console SMS gateway rejected a message"),
        "{logs}"
    );
    assert!(!logs.contains(CODE), "the code reached the log:\n{logs}");
}

#[tokio::test]
async fn console_refusal_fails_over_to_real_gateway() {
    let server = SmsServer::start(spryng_accepted()).await;
    let sender =
        SmsSender::from_config(&config(vec![GatewayConfig::Console, spryng(&server)], 2)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "spryng");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn console_prints_text_in_development() {
    let (logs, _guard) = capture_logs();
    let mut config = config(vec![GatewayConfig::Console], 0);
    config.development = true;
    let sender = SmsSender::from_config(&config).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "console");
    let logs = logs.contents();
    assert!(
        logs.contains(CODE),
        "development log lacks the text:\n{logs}"
    );
    assert!(
        !logs.contains("612345601"),
        "full number in the log:\n{logs}"
    );
}

#[tokio::test]
async fn logs_never_contain_code_or_number() {
    let (logs, _guard) = capture_logs();
    // The first provider echoes the request in its errors, as some do.
    let echo = format!(
        "{{\"message\": \"rejected to=+31612345601 body=Uw verificatiecode voor uw gesprek is {CODE}.\"}}"
    );
    let primary = SmsServer::start(Reply {
        status: 503,
        body: echo,
        content_type: "application/json",
        delay: Duration::ZERO,
    })
    .await;
    let secondary = SmsServer::start(twilio_accepted()).await;
    let sender =
        SmsSender::from_config(&config(vec![spryng(&primary), twilio(&secondary)], 1)).unwrap();

    let sent = sender.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "twilio");
    let logs = logs.contents();
    assert!(
        logs.contains("sending SMS"),
        "nothing was captured:\n{logs}"
    );
    assert!(
        logs.contains("retrying"),
        "the retry was not logged:\n{logs}"
    );
    assert!(logs.contains("**01"), "masked recipient missing:\n{logs}");
    assert!(!logs.contains(CODE), "the code reached the log:\n{logs}");
    assert!(
        !logs.contains("612345601"),
        "full number in the log:\n{logs}"
    );
    assert!(!logs.contains("spryng-key"), "API key in the log:\n{logs}");
    assert!(
        !logs.contains("twilio-token"),
        "auth token in the log:\n{logs}"
    );
}
