//! Each SMS gateway against a loopback server that responds as the provider
//! documents: the exact request (path, auth header, body shape, recipient,
//! sender) and the mapping of each documented response to a result.

#[path = "support/sms_server.rs"]
mod sms_server;

use std::time::Duration;

use ivr_verify::sms::{
    build_http_client, BirdGateway, CmComGateway, HttpClient, HttpJsonGateway, SmsError,
    SmsGateway, SmsMessage, SpryngGateway, TwilioGateway,
};
use serde_json::json;
use sms_server::{Reply, SmsServer};

/// The code inside the test message; no error or log may contain it.
const CODE: &str = "482913";

fn message() -> SmsMessage {
    SmsMessage {
        to_e164: "+31612345601".to_owned(),
        from: "Klantdienst".to_owned(),
        text: format!("Uw verificatiecode is {CODE}."),
    }
}

fn http() -> HttpClient {
    build_http_client(Duration::from_millis(500)).expect("HTTP client")
}

/// Asserts that the error's message contains neither the code nor the
/// recipient's full number.
fn assert_error_is_clean(error: &SmsError) {
    let text = format!("{error} {error:?}");
    assert!(!text.contains(CODE), "error contains the code: {text}");
    assert!(
        !text.contains("612345601"),
        "error contains the number: {text}"
    );
}

// ---------------------------------------------------------------- CM.com

fn cm_accepted() -> Reply {
    Reply::json(
        200,
        json!({
            "details": "Created 1 message(s)",
            "errorCode": 0,
            "messages": [{
                "to": "0031612345601",
                "status": "Accepted",
                "reference": null,
                "parts": 1,
                "messageDetails": null,
                "messageErrorCode": 0
            }]
        }),
    )
}

#[tokio::test]
async fn cm_sends_documented_request() {
    let server = SmsServer::start(cm_accepted()).await;
    let token = "4f6a0c4e-51c4-4d4f-9a3b-5f1c2b3a4d5e";
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), token, http()).unwrap();

    let sent = gateway.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "cm");
    assert_eq!(sent.provider_message_id, None);
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1.0/message");
    assert_eq!(request.header("X-CM-PRODUCTTOKEN"), Some(token));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let msg = &request.json()["messages"]["msg"][0];
    assert_eq!(msg["from"], "Klantdienst");
    assert_eq!(msg["to"], json!([{ "number": "0031612345601" }]));
    assert_eq!(msg["body"]["type"], "auto");
    assert_eq!(
        msg["body"]["content"],
        format!("Uw verificatiecode is {CODE}.")
    );
    assert_eq!(msg["allowedChannels"], json!(["SMS"]));
}

#[tokio::test]
async fn cm_unknown_token_is_unauthorized() {
    let server = SmsServer::start(Reply::json(
        400,
        json!({
            "details": "No account found for the given authentication",
            "errorCode": 101,
            "messages": []
        }),
    ))
    .await;
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), "bad", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    match &error {
        SmsError::Unauthorized {
            status,
            provider_error,
            ..
        } => {
            assert_eq!(*status, 400);
            assert!(
                provider_error.contains("No account found"),
                "{provider_error}"
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn cm_rejected_number_is_rejected_recipient() {
    let server = SmsServer::start(Reply::json(
        400,
        json!({
            "details": "Created 0 message(s)",
            "errorCode": 201,
            "messages": [{
                "to": "0031612345601",
                "status": "Rejected",
                "reference": null,
                "parts": 0,
                "messageDetails": "Gsm '0031612345601' is not a number.",
                "messageErrorCode": 303
            }]
        }),
    ))
    .await;
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), "t", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    match &error {
        SmsError::RejectedRecipient {
            recipient,
            provider_error,
            ..
        } => {
            assert_eq!(recipient, "+316******01");
            assert!(
                provider_error.contains("is not a number"),
                "{provider_error}"
            );
        }
        other => panic!("expected RejectedRecipient, got {other:?}"),
    }
    assert_error_is_clean(&error);
}

#[tokio::test]
async fn cm_success_without_accepted_message_is_invalid() {
    let server = SmsServer::start(Reply::json(200, json!({ "details": "", "errorCode": 0 }))).await;
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), "t", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(error, SmsError::InvalidResponse { .. }),
        "{error:?}"
    );
}

// ---------------------------------------------------------------- Spryng

#[tokio::test]
async fn spryng_sends_documented_request() {
    let server = SmsServer::start(Reply::json(
        200,
        json!({
            "id": "9dbc5ffb-7524-4fae-9514-51decd94a44f",
            "encoding": "plain",
            "originator": "Klantdienst",
            "body": "…",
            "reference": null,
            "credits": 1,
            "scheduled_at": "2026-12-04T12:00:00+01:00",
            "canceled_at": null,
            "created_at": "2026-12-04T12:00:00+01:00",
            "updated_at": "2026-12-04T12:00:00+01:00"
        }),
    ))
    .await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "spryng-key", http()).unwrap();

    let sent = gateway.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "spryng");
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("9dbc5ffb-7524-4fae-9514-51decd94a44f")
    );
    let request = server.single_request();
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("authorization"), Some("Bearer spryng-key"));
    assert_eq!(request.header("accept"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["recipients"], json!(["31612345601"]));
    assert_eq!(body["originator"], "Klantdienst");
    assert_eq!(body["body"], format!("Uw verificatiecode is {CODE}."));
    assert_eq!(body["encoding"], "auto");
    assert_eq!(body["route"], "business");
}

#[tokio::test]
async fn spryng_invalid_key_is_unauthorized() {
    let server = SmsServer::start(Reply::json(401, json!({ "message": "Unauthenticated." }))).await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "wrong", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::Unauthorized { status: 401, provider_error, .. } if provider_error == "Unauthenticated."),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn spryng_invalid_recipient_is_rejected_recipient() {
    let server = SmsServer::start(Reply::json(
        422,
        json!({
            "message": "The given data was invalid.",
            "errors": { "recipients.0": ["The recipients.0 format is invalid."] }
        }),
    ))
    .await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "k", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::RejectedRecipient { status: 422, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn spryng_rate_limit_is_retryable() {
    let server = SmsServer::start(Reply::text(429, "Too Many Requests")).await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "k", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::HttpStatus { status: 429, provider_error, .. } if provider_error == "Too Many Requests"),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

// ---------------------------------------------------------------- Bird

#[tokio::test]
async fn bird_sends_documented_request() {
    let server = SmsServer::start(Reply::json(
        202,
        json!({
            "id": "1f6b3b0c-2c7e-4a47-9d8a-7d5f0e6c1a2b",
            "channelId": "c-1",
            "status": "accepted",
            "reason": ""
        }),
    ))
    .await;
    let gateway = BirdGateway::new(&server.url(""), "bird-key", "ws-1", "ch-2", http()).unwrap();

    let sent = gateway.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "bird");
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("1f6b3b0c-2c7e-4a47-9d8a-7d5f0e6c1a2b")
    );
    let request = server.single_request();
    assert_eq!(request.path, "/workspaces/ws-1/channels/ch-2/messages");
    assert_eq!(request.header("authorization"), Some("AccessKey bird-key"));
    let body = request.json();
    assert_eq!(
        body["receiver"]["contacts"],
        json!([{ "identifierKey": "phonenumber", "identifierValue": "+31612345601" }])
    );
    assert_eq!(body["body"]["type"], "text");
    assert_eq!(
        body["body"]["text"]["text"],
        format!("Uw verificatiecode is {CODE}.")
    );
}

#[tokio::test]
async fn bird_forbidden_is_unauthorized() {
    let server = SmsServer::start(Reply::json(
        403,
        json!({ "code": "Forbidden", "message": "access key lacks permission" }),
    ))
    .await;
    let gateway = BirdGateway::new(&server.url("/"), "k", "ws", "ch", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::Unauthorized { status: 403, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn bird_invalid_receiver_is_rejected_recipient() {
    let server = SmsServer::start(Reply::json(
        422,
        json!({
            "code": "InvalidPayload",
            "message": "The request did not pass validation",
            "details": { "receiver.contacts.0.identifierValue": ["invalid phone number"] }
        }),
    ))
    .await;
    let gateway = BirdGateway::new(&server.url(""), "k", "ws", "ch", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::RejectedRecipient { status: 422, .. }),
        "{error:?}"
    );
}

// ---------------------------------------------------------------- Twilio

#[tokio::test]
async fn twilio_sends_documented_request() {
    let server = SmsServer::start(Reply::json(
        201,
        json!({
            "sid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0",
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "to": "+31612345601",
            "from": "Klantdienst",
            "status": "queued",
            "error_code": null,
            "error_message": null,
            "api_version": "2010-04-01"
        }),
    ))
    .await;
    let sid = "AC0123456789abcdef0123456789abcdef";
    let gateway = TwilioGateway::new(&server.url(""), sid, "twilio-token", http()).unwrap();

    let sent = gateway.send(&message()).await.unwrap();

    assert_eq!(sent.gateway, "twilio");
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("SM1f0e2d3c4b5a69788796a5b4c3d2e1f0")
    );
    let request = server.single_request();
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{sid}/Messages.json")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // Basic base64("AC0123456789abcdef0123456789abcdef:twilio-token").
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:twilio-token"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(request.form_value("To").as_deref(), Some("+31612345601"));
    assert_eq!(request.form_value("From").as_deref(), Some("Klantdienst"));
    assert_eq!(
        request.form_value("Body"),
        Some(format!("Uw verificatiecode is {CODE}."))
    );
}

#[tokio::test]
async fn twilio_bad_credentials_is_unauthorized() {
    let server = SmsServer::start(Reply::json(
        401,
        json!({
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401
        }),
    ))
    .await;
    let gateway = TwilioGateway::new(&server.url(""), "AC1", "wrong", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::Unauthorized { status: 401, provider_error, .. } if provider_error.contains("Authenticate") && provider_error.contains("20003")),
        "{error:?}"
    );
}

#[tokio::test]
async fn twilio_invalid_to_is_rejected_recipient() {
    let server = SmsServer::start(Reply::json(
        400,
        json!({
            "code": 21211,
            "message": "The 'To' number +31612345601 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400
        }),
    ))
    .await;
    let gateway = TwilioGateway::new(&server.url(""), "AC1", "t", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::RejectedRecipient { status: 400, .. }),
        "{error:?}"
    );
    assert_error_is_clean(&error);
}

#[tokio::test]
async fn twilio_server_error_is_retryable() {
    let server = SmsServer::start(Reply::text(500, "Internal Server Error")).await;
    let gateway = TwilioGateway::new(&server.url(""), "AC1", "t", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::HttpStatus { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

// ---------------------------------------------------------------- HTTP JSON

#[tokio::test]
async fn http_json_fills_template_and_headers() {
    let server = SmsServer::start(Reply::json(200, json!({ "id": 77 }))).await;
    let template =
        r#"{"recipient": "{{to}}", "sender": "{{from}}", "message": "{{text}}", "priority": 1}"#;
    let headers = vec![
        ("Authorization".to_owned(), "Token abc".to_owned()),
        ("X-Tenant".to_owned(), "contact-center".to_owned()),
    ];
    let gateway = HttpJsonGateway::new(&server.url("/send"), &headers, template, http()).unwrap();
    let mut message = message();
    message.text = format!("Code \"{CODE}\"\nregel twee");

    let sent = gateway.send(&message).await.unwrap();

    assert_eq!(sent.provider_message_id.as_deref(), Some("77"));
    let request = server.single_request();
    assert_eq!(request.path, "/send");
    assert_eq!(request.header("authorization"), Some("Token abc"));
    assert_eq!(request.header("x-tenant"), Some("contact-center"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "recipient": "+31612345601",
            "sender": "Klantdienst",
            "message": format!("Code \"{CODE}\"\nregel twee"),
            "priority": 1
        })
    );
}

#[tokio::test]
async fn http_json_error_body_is_sanitized() {
    // A provider that echoes the whole request in its error.
    let server = SmsServer::start(Reply::text(
        400,
        &format!("bad request: to=+31612345601 text=Uw verificatiecode is {CODE}."),
    ))
    .await;
    let template = r#"{"to": "{{to}}", "text": "{{text}}"}"#;
    let gateway = HttpJsonGateway::new(&server.url("/send"), &[], template, http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::HttpStatus { status: 400, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_error_is_clean(&error);
}

// ---------------------------------------------------------------- shared

#[tokio::test]
async fn slow_answer_times_out() {
    let server = SmsServer::start(cm_accepted().delayed(Duration::from_secs(3))).await;
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), "t", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::Timeout { timeout, .. } if *timeout == Duration::from_millis(500)),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn closed_port_is_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v1/messages");
    let gateway = SpryngGateway::new(&url, "k", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(matches!(&error, SmsError::Connection { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let server = SmsServer::start(Reply::text(302, "moved")).await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "k", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::HttpStatus { status: 302, .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn malformed_recipient_sends_nothing() {
    let server = SmsServer::start(cm_accepted()).await;
    let gateway = CmComGateway::new(&server.url("/v1.0/message"), "t", http()).unwrap();
    let mut message = message();
    message.to_e164 = "0612345601".to_owned();

    let error = gateway.send(&message).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::InvalidRecipient { .. }),
        "{error:?}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn oversized_response_is_invalid() {
    let huge = "x".repeat(100 * 1024);
    let server = SmsServer::start(Reply::text(200, &huge)).await;
    let gateway = SpryngGateway::new(&server.url("/v1/messages"), "k", http()).unwrap();

    let error = gateway.send(&message()).await.unwrap_err();

    assert!(
        matches!(&error, SmsError::InvalidResponse { .. }),
        "{error:?}"
    );
}
