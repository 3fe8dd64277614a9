use super::*;

use axum::body::{to_bytes, Body};
use axum::http::Request;
use std::future::IntoFuture;
use tower::ServiceExt;

use crate::store::MemoryStore;
use crate::verify::token::{random_jti, Claims, ACR_BASIC, DEFAULT_AUDIENCE, DEFAULT_ISSUER};

const FORM: &str = "application/x-www-form-urlencoded";

struct Fixture {
    signer: Arc<TokenSigner>,
    store: Arc<MemoryStore>,
    router: Router,
}

fn fixture() -> Fixture {
    let signer = Arc::new(TokenSigner::generate().unwrap());
    let store = Arc::new(MemoryStore::new());
    let router = router(ApiState {
        signer: signer.clone(),
        store: store.clone(),
    });
    Fixture {
        signer,
        store,
        router,
    }
}

fn claims(iat: u64, exp: u64) -> Claims {
    Claims {
        iss: DEFAULT_ISSUER.to_string(),
        aud: DEFAULT_AUDIENCE.to_string(),
        sub: Some("customer-ref".to_string()),
        iat,
        exp,
        jti: random_jti().unwrap(),
        call_id: "call-1@127.0.0.1".to_string(),
        acr: ACR_BASIC.to_string(),
        amr: vec!["kba".to_string()],
        caller_id_match: false,
        request_type: None,
        policy_version: None,
    }
}

/// Signs a token valid for ten minutes from now and records its id.
async fn issued_token(fixture: &Fixture) -> (String, Claims) {
    let now = unix_now();
    let claims = claims(now, now + 600);
    fixture
        .store
        .record_token(&claims.jti, claims.exp)
        .await
        .unwrap();
    (fixture.signer.sign(&claims), claims)
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Response) {
    let response = router.clone().oneshot(request).await.unwrap();
    (response.status(), response)
}

async fn json_body(response: Response) -> serde_json::Value {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn introspect_request(body: String) -> Request<Body> {
    Request::post("/v1/tokens/introspect")
        .header(header::CONTENT_TYPE, FORM)
        .body(Body::from(body))
        .unwrap()
}

async fn introspect_body(router: &Router, token: &str) -> serde_json::Value {
    let (status, response) = send(router, introspect_request(format!("token={token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    json_body(response).await
}

#[tokio::test]
async fn healthz_ok() {
    let fixture = fixture();
    let request = Request::get("/healthz").body(Body::empty()).unwrap();
    let (status, response) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_body(response).await, json!({ "status": "ok" }));
}

#[tokio::test]
async fn jwks_serves_signer_key() {
    let fixture = fixture();
    let request = Request::get("/.well-known/jwks.json")
        .body(Body::empty())
        .unwrap();
    let (status, response) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(json_body(response).await, fixture.signer.jwks());
}

#[tokio::test]
async fn fresh_token_active_once() {
    let fixture = fixture();
    let (token, claims) = issued_token(&fixture).await;

    let first = introspect_body(&fixture.router, &token).await;
    assert_eq!(first["active"], true);
    assert_eq!(first["jti"], claims.jti);
    assert_eq!(first["sub"], "customer-ref");
    assert_eq!(first["call_id"], claims.call_id);
    assert_eq!(first["acr"], "basic");
    assert_eq!(first["amr"], json!(["kba"]));
    assert_eq!(first["exp"], claims.exp);
    assert_eq!(first["caller_id_match"], false);

    let second = introspect_body(&fixture.router, &token).await;
    assert_eq!(second, json!({ "active": false }));
}

#[tokio::test]
async fn expired_token_inactive() {
    let fixture = fixture();
    let now = unix_now();
    let claims = claims(now - 700, now - 100);
    fixture
        .store
        .record_token(&claims.jti, now + 600)
        .await
        .unwrap();
    let token = fixture.signer.sign(&claims);
    assert_eq!(
        introspect_body(&fixture.router, &token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn tampered_token_inactive() {
    let fixture = fixture();
    let (token, _) = issued_token(&fixture).await;
    // Flip one character of the signature.
    let mut bytes = token.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert_eq!(
        introspect_body(&fixture.router, &tampered).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn unrecorded_token_inactive() {
    let fixture = fixture();
    let now = unix_now();
    let token = fixture.signer.sign(&claims(now, now + 600));
    assert_eq!(
        introspect_body(&fixture.router, &token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn other_signer_token_inactive() {
    let fixture = fixture();
    let other = TokenSigner::generate().unwrap();
    let now = unix_now();
    let claims = claims(now, now + 600);
    fixture
        .store
        .record_token(&claims.jti, claims.exp)
        .await
        .unwrap();
    let token = other.sign(&claims);
    assert_eq!(
        introspect_body(&fixture.router, &token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn malformed_token_inactive() {
    let fixture = fixture();
    for token in ["abc", "a.b.c", "%00%ff", "...."] {
        assert_eq!(
            introspect_body(&fixture.router, token).await,
            json!({ "active": false }),
            "token {token}"
        );
    }
}

#[tokio::test]
async fn missing_token_is_bad_request() {
    let fixture = fixture();
    for body in ["", "token=", "token_type_hint=access_token", "tok=abc"] {
        let (status, response) = send(&fixture.router, introspect_request(body.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body:?}");
        let json = json_body(response).await;
        assert_eq!(json["error"], "invalid_request", "body {body:?}");
        assert!(json["error_description"]
            .as_str()
            .unwrap()
            .contains("token"));
    }
}

#[tokio::test]
async fn extra_form_fields_ignored() {
    let fixture = fixture();
    let (token, _) = issued_token(&fixture).await;
    let body = format!("token_type_hint=access_token&token={token}");
    let (status, response) = send(&fixture.router, introspect_request(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_body(response).await["active"], true);
}

#[tokio::test]
async fn json_body_rejected() {
    let fixture = fixture();
    let request = Request::post("/v1/tokens/introspect")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"token":"abc"}"#))
        .unwrap();
    let (status, response) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_body(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn oversized_body_rejected() {
    let fixture = fixture();
    let body = format!("token={}", "a".repeat(MAX_BODY_BYTES));
    let (status, _) = send(&fixture.router, introspect_request(body)).await;
    assert!(status.is_client_error(), "status {status}");
    assert_ne!(status, StatusCode::OK);
}

#[tokio::test]
async fn introspect_requires_post() {
    let fixture = fixture();
    let request = Request::get("/v1/tokens/introspect?token=abc")
        .body(Body::empty())
        .unwrap();
    let (status, _) = send(&fixture.router, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn introspect_over_loopback_socket() {
    let fixture = fixture();
    let (token, claims) = issued_token(&fixture).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, fixture.router.clone()).into_future());

    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/tokens/introspect");
    let first: serde_json::Value = client
        .post(&url)
        .header(header::CONTENT_TYPE, FORM)
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["active"], true);
    assert_eq!(first["jti"], claims.jti);

    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);

    server.abort();
}
