//! HTTP API for agent desktops and monitoring: health check, the token
//! signing key as a JWK Set, and token introspection (RFC 7662).
//!
//! Tokens are never logged. A log line about a token names its SIP Call-ID.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::store::{Store, TokenState};
use crate::verify::token::{TokenSigner, MAX_TOKEN_LEN};

/// Maximum request body in bytes. An introspection request carries one token
/// of at most `MAX_TOKEN_LEN` bytes plus a hint, so anything larger is not
/// a valid request. Axum's default of 2 MB would let a client make the
/// server buffer far more.
const MAX_BODY_BYTES: usize = MAX_TOKEN_LEN + 1024;

/// Shared state of all HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// Verifies introspected tokens and publishes the public key.
    pub signer: Arc<TokenSigner>,
    /// Marks token ids as used, so each token introspects as active once.
    pub store: Arc<dyn Store>,
}

/// Builds the router:
///
/// - `GET /healthz` returns 200 `{"status":"ok"}`.
/// - `GET /.well-known/jwks.json` returns the public signing key.
/// - `POST /v1/tokens/introspect` takes an `application/x-www-form-urlencoded`
///   body with a `token` field and returns `{"active": true, ...claims}` the
///   first time a valid token is introspected, else `{"active": false}`.
///
/// NOTE: introspection requires no client authentication, although RFC 7662,
/// section 2.1 requires it. Until it does, keep `http.listen` on an address
/// that only the agent desktops can reach.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/tokens/introspect", post(introspect))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn jwks(State(state): State<ApiState>) -> Response {
    let mut response = Json(state.signer.jwks()).into_response();
    // The key changes only when the key file is replaced and the service
    // restarts, so verifiers may cache it briefly.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Form fields of an introspection request (RFC 7662, section 2.1).
#[derive(Deserialize)]
struct IntrospectRequest {
    /// The token to check.
    token: Option<String>,
    // `token_type_hint` and other fields are accepted and ignored, as RFC
    // 7662 allows, because this service issues one token type.
}

async fn introspect(
    State(state): State<ApiState>,
    form: Result<Form<IntrospectRequest>, FormRejection>,
) -> Response {
    let token = match form {
        Ok(Form(IntrospectRequest { token: Some(token) })) if !token.is_empty() => token,
        Ok(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the form field `token` is missing or empty",
            )
        }
        Err(FormRejection::InvalidFormContentType(_)) => {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the body as application/x-www-form-urlencoded",
            )
        }
        Err(rejection) => {
            tracing::debug!(status = %rejection.status(), "introspection request rejected");
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is not a valid form",
            );
        }
    };

    let now = unix_now();
    let claims = match state.signer.verify(&token, now) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::info!(%error, "introspected token is not valid");
            return introspection_response(json!({ "active": false }));
        }
    };

    match state.store.consume_token(&claims.jti, now).await {
        Ok(TokenState::Fresh) => {
            tracing::info!(call_id = %claims.call_id, "token introspected");
            let mut body = claims.to_json();
            if let Some(object) = body.as_object_mut() {
                object.insert("active".to_string(), json!(true));
            }
            introspection_response(body)
        }
        Ok(TokenState::AlreadyUsed) => {
            tracing::warn!(call_id = %claims.call_id, "token introspected again; responded inactive");
            introspection_response(json!({ "active": false }))
        }
        Ok(TokenState::Unknown) => {
            tracing::warn!(call_id = %claims.call_id, "validly signed token has no recorded id; responded inactive");
            introspection_response(json!({ "active": false }))
        }
        Err(error) => {
            tracing::error!(%error, call_id = %claims.call_id, "token store failed during introspection");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token store is unavailable; retry later",
            )
        }
    }
}

/// Returns 200 with `body` and `Cache-Control: no-store`, because the
/// response changes after the first introspection.
fn introspection_response(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Returns an error in the form of RFC 6749, section 5.2, which RFC 7662
/// reuses.
fn error_response(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Returns the current Unix time in seconds, or 0 if the clock is before
/// 1970, which makes every token read as issued in the future.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests;
