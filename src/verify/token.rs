//! The verification token: a JWT (RFC 7519) signed with Ed25519, `alg`
//! `EdDSA` (RFC 8037).
//!
//! The token travels with the transferred call to the agent desktop, which
//! checks it offline against the key published as a JWK Set, or online at the
//! introspection endpoint of the HTTP API.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Default `iss` that [`TokenSigner::verify`] expects, the same as the
/// default of `token.issuer` in the configuration.
pub const DEFAULT_ISSUER: &str = "ivr-verify";

/// Default `aud` that [`TokenSigner::verify`] expects, the same as the
/// default of `token.audience` in the configuration.
pub const DEFAULT_AUDIENCE: &str = "agent-desktop";

/// Maximum length in bytes of a token that is parsed. A token of this service
/// with a 40-byte Call-ID is about 500 bytes, so anything this long is not
/// one of ours.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Seconds that `iat` may lie in the future before a token is rejected, to
/// allow for clock steps between the signing node and the verifying node.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// `acr` of a caller who passed knowledge-based verification.
pub const ACR_BASIC: &str = "basic";

/// `acr` of a caller who was transferred without verification.
pub const ACR_UNVERIFIED: &str = "unverified";

/// Error from loading a signing key or verifying a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The key file exists but cannot be read.
    #[error("failed to read signing key {path}: {source}")]
    ReadKey {
        /// Key file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A new key file cannot be written.
    #[error("failed to write signing key {path}: {source}; check that the directory exists and is writable")]
    WriteKey {
        /// Key file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Group or others may read the key file.
    #[error("signing key {path} has mode {mode:o}, which lets other users read it; run `chmod 600` on it")]
    KeyPermissions {
        /// Key file.
        path: PathBuf,
        /// Permission bits found.
        mode: u32,
    },
    /// The file does not contain an Ed25519 PKCS#8 key in DER or PEM form.
    #[error("signing key {path} is not an Ed25519 PKCS#8 key ({reason}); delete it to have a new key generated, or convert it with `openssl pkcs8 -topk8 -nocrypt`")]
    InvalidKey {
        /// Key file.
        path: PathBuf,
        /// Reason from `ring` or the PEM decoder.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
    /// The token is not three base64url parts with JSON header and claims.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm than `EdDSA`.
    #[error("token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    /// The signature does not match the header and claims.
    #[error("token signature is invalid")]
    InvalidSignature,
    /// `exp` is at or before the current time.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// `exp` claim, Unix seconds.
        exp: u64,
        /// Time of the check, Unix seconds.
        now: u64,
    },
    /// `iat` lies more than the allowed clock skew in the future.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// `iat` claim, Unix seconds.
        iat: u64,
        /// Time of the check, Unix seconds.
        now: u64,
    },
    /// `iss` differs from the expected issuer.
    #[error("token issuer does not match")]
    WrongIssuer,
    /// `aud` differs from the expected audience.
    #[error("token audience does not match")]
    WrongAudience,
}

/// Claims of a verification token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, from `token.issuer`.
    pub iss: String,
    /// Audience, from `token.audience`: the agent desktop that accepts it.
    pub aud: String,
    /// Pseudonymous customer reference. Absent when the caller is unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// Expiry time, Unix seconds.
    pub exp: u64,
    /// Token id: 128 random bits in base64url, single use on introspection.
    pub jti: String,
    /// SIP Call-ID of the verified call, so the agent can match token and call.
    /// NOTE: the Call-ID comes from the caller's side. One of more than about
    /// 2.7 KB makes the token longer than `MAX_TOKEN_LEN`, so it never
    /// verifies.
    pub call_id: String,
    /// Assurance level reached: [`ACR_BASIC`] or [`ACR_UNVERIFIED`].
    pub acr: String,
    /// Authentication methods used, as RFC 8176 values (`kba` for a contract
    /// number, `tel` for a matched caller number).
    pub amr: Vec<String>,
    /// Whether the caller's number is registered for the customer. A weak
    /// signal, because caller ID can be spoofed.
    pub caller_id_match: bool,
    /// The request type the caller chose, which decided the level asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    /// Version of the verification policy that decided (`policy.version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
}

impl Claims {
    /// Returns the claims as a JSON object, with `sub` left out when absent.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = json!({
            "iss": self.iss,
            "aud": self.aud,
            "iat": self.iat,
            "exp": self.exp,
            "jti": self.jti,
            "call_id": self.call_id,
            "acr": self.acr,
            "amr": self.amr,
            "caller_id_match": self.caller_id_match,
        });
        if let Some(object) = value.as_object_mut() {
            let optional = [
                ("sub", &self.sub),
                ("request_type", &self.request_type),
                ("policy_version", &self.policy_version),
            ];
            for (name, claim) in optional {
                if let Some(claim) = claim {
                    object.insert(name.to_string(), json!(claim));
                }
            }
        }
        value
    }
}

/// Generates a token id: 128 random bits, base64url without padding.
pub fn random_jti() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Returns the short reference to a token sent as the User-to-User handle:
/// the first 16 bytes of SHA-256 of its `jti`, as 32 lowercase hex digits.
/// It fits PBXs that cap User-to-User at 128 bytes (RFC 7433).
#[must_use]
pub fn handle_for(claims: &Claims) -> String {
    handle_for_jti(&claims.jti)
}

/// Returns the User-to-User handle of the token whose id is `jti`. See
/// [`handle_for`].
#[must_use]
pub fn handle_for_jti(jti: &str) -> String {
    let hash = digest(&SHA256, jti.as_bytes());
    hash.as_ref()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Signs and verifies tokens with one Ed25519 key.
pub struct TokenSigner {
    /// Private key that signs every token.
    key_pair: Ed25519KeyPair,
    /// JWK thumbprint of the public key (RFC 7638), sent as `kid` in each
    /// token header and in the JWK Set, so a verifier can pick the key.
    kid: String,
    /// `iss` required by [`TokenSigner::verify`].
    issuer: String,
    /// `aud` required by [`TokenSigner::verify`].
    audience: String,
}

impl TokenSigner {
    /// Loads the PKCS#8 key at `path`, or generates a new Ed25519 key and
    /// writes it there with mode 0600 when the file is missing. The boolean
    /// is true when a key was created, so the caller can log a warning.
    ///
    /// The file may be DER or PEM (`-----BEGIN PRIVATE KEY-----`), and PKCS#8
    /// v1 without the public key, as written by `openssl genpkey`, is
    /// accepted. A key file that group or others can read is rejected. The
    /// signer expects [`DEFAULT_ISSUER`] and
    /// [`DEFAULT_AUDIENCE`] until [`TokenSigner::with_issuer_audience`]
    /// changes them.
    pub fn load_or_create(path: &Path) -> Result<(TokenSigner, bool), TokenError> {
        let (document, created) = match fs::read(path) {
            Ok(bytes) => {
                check_private(path)?;
                (bytes, false)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (create_key_file(path)?, true)
            }
            Err(source) => {
                return Err(TokenError::ReadKey {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };

        let der = pem_to_der(&document).map_err(|reason| TokenError::InvalidKey {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        })?;
        let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|error| {
            TokenError::InvalidKey {
                path: path.to_path_buf(),
                reason: error.to_string(),
            }
        })?;
        Ok((TokenSigner::from_key_pair(key_pair), created))
    }

    /// Creates a signer with a new random key that is never written to disk,
    /// for tests and one-off tools.
    pub fn generate() -> Result<TokenSigner, TokenError> {
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| TokenError::Random)?;
        let key_pair =
            Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| TokenError::Random)?;
        Ok(TokenSigner::from_key_pair(key_pair))
    }

    /// Sets the `iss` and `aud` that [`TokenSigner::verify`] requires.
    #[must_use]
    pub fn with_issuer_audience(mut self, issuer: &str, audience: &str) -> TokenSigner {
        self.issuer = issuer.to_string();
        self.audience = audience.to_string();
        self
    }

    fn from_key_pair(key_pair: Ed25519KeyPair) -> TokenSigner {
        let x = URL_SAFE_NO_PAD.encode(key_pair.public_key().as_ref());

        // RFC 7638, section 3.2: the required members in lexicographic order,
        // without whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));

        TokenSigner {
            key_pair,
            kid,
            issuer: DEFAULT_ISSUER.to_string(),
            audience: DEFAULT_AUDIENCE.to_string(),
        }
    }

    /// Returns the key id (RFC 7638 thumbprint) put in every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` and returns the compact JWS serialization.
    #[must_use]
    pub fn sign(&self, claims: &Claims) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_json().to_string()),
        );
        let signature = self.key_pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Verifies a token's signature, `alg`, `exp`, `iat`, `iss` and `aud` at
    /// `now_unix` (Unix seconds) and returns its claims. Unknown extra claims
    /// are ignored. Single use is enforced by the store, not here.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed(
                "longer than the maximum token length",
            ));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };

        // The header is checked before the signature so that a token for
        // another algorithm is rejected without trying it (RFC 8725, 3.1).
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed("header is not base64url"))?;
        let header: serde_json::Value = serde_json::from_slice(&header_json)
            .map_err(|_| TokenError::Malformed("header is not JSON"))?;
        if header.get("alg").and_then(|alg| alg.as_str()) != Some("EdDSA") {
            return Err(TokenError::UnsupportedAlgorithm);
        }

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        let signing_input = token
            .get(..signing_input_len)
            .ok_or(TokenError::Malformed("not three dot-separated parts"))?;
        UnparsedPublicKey::new(&ED25519, self.key_pair.public_key().as_ref())
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::InvalidSignature)?;

        let claims_json = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| TokenError::Malformed("claims are not base64url"))?;
        let claims: Claims = serde_json::from_slice(&claims_json)
            .map_err(|_| TokenError::Malformed("claims are not the expected JSON object"))?;

        if claims.exp <= now_unix {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now: now_unix,
            });
        }
        if claims.iat > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(TokenError::IssuedInFuture {
                iat: claims.iat,
                now: now_unix,
            });
        }
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }

    /// Returns the public key as a JWK Set (RFC 7517, section 5), as served
    /// at `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(self.key_pair.public_key().as_ref()),
                "kid": self.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Rejects a key file that group or others may read.
fn check_private(path: &Path) -> Result<(), TokenError> {
    let metadata = fs::metadata(path).map_err(|source| TokenError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Generates a PKCS#8 Ed25519 key, writes it as DER to `path` with mode 0600
/// and returns it. Fails if the file appeared in the meantime, so a key
/// written by a concurrent start is never overwritten.
fn create_key_file(path: &Path) -> Result<Vec<u8>, TokenError> {
    let document =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| TokenError::Random)?;
    let write_error = |source| TokenError::WriteKey {
        path: path.to_path_buf(),
        source,
    };

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(document.as_ref()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(document.as_ref().to_vec())
}

/// Returns the DER bytes of a PEM `PRIVATE KEY` block, or the input unchanged
/// when it is not PEM.
fn pem_to_der(document: &[u8]) -> Result<Vec<u8>, &'static str> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";

    let Ok(text) = std::str::from_utf8(document) else {
        return Ok(document.to_vec());
    };
    let Some(start) = text.find(BEGIN) else {
        if text.contains("-----BEGIN") {
            return Err("PEM block is not an unencrypted PRIVATE KEY");
        }
        return Ok(document.to_vec());
    };
    let body = text.get(start + BEGIN.len()..).unwrap_or_default();
    let end = body.find(END).ok_or("PEM block has no END line")?;
    let base64: String = body
        .get(..end)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(base64)
        .map_err(|_| "PEM body is not base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            iss: DEFAULT_ISSUER.to_string(),
            aud: DEFAULT_AUDIENCE.to_string(),
            sub: Some("c-ref".to_string()),
            iat: NOW,
            exp: NOW + 600,
            jti: random_jti().unwrap(),
            call_id: "a84b4c76e66710@pc33.example".to_string(),
            acr: ACR_BASIC.to_string(),
            amr: vec!["kba".to_string()],
            caller_id_match: true,
            request_type: None,
            policy_version: None,
        }
    }

    fn tamper_claims(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let mut value: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        edit(&mut value);
        let claims = URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.{}", parts[0], claims, parts[2])
    }

    fn resign(
        signer: &TokenSigner,
        header: serde_json::Value,
        claims: serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = signer.key_pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn sign_then_verify_roundtrip() {
        let signer = TokenSigner::generate().unwrap();
        let claims = claims();
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token, NOW + 1).unwrap(), claims);
    }

    #[test]
    fn header_names_eddsa_and_kid() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let header_b64 = token.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], signer.kid());
    }

    #[test]
    fn unverified_claims_omit_sub() {
        let signer = TokenSigner::generate().unwrap();
        let mut claims = claims();
        claims.sub = None;
        claims.acr = ACR_UNVERIFIED.to_string();
        claims.amr.clear();
        let token = signer.sign(&claims);
        assert!(claims.to_json().get("sub").is_none());
        assert_eq!(signer.verify(&token, NOW).unwrap().sub, None);
    }

    #[test]
    fn expired_token_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let result = signer.verify(&token, NOW + 600);
        assert!(matches!(result, Err(TokenError::Expired { .. })));
    }

    #[test]
    fn future_token_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let result = signer.verify(&token, NOW - MAX_CLOCK_SKEW_SECS - 1);
        assert!(matches!(result, Err(TokenError::IssuedInFuture { .. })));
        assert!(signer.verify(&token, NOW - MAX_CLOCK_SKEW_SECS).is_ok());
    }

    #[test]
    fn tampered_claims_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let tampered = tamper_claims(&token, |c| c["acr"] = json!("high"));
        let result = signer.verify(&tampered, NOW);
        assert!(matches!(result, Err(TokenError::InvalidSignature)));
    }

    #[test]
    fn other_key_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let other = TokenSigner::generate().unwrap();
        let token = other.sign(&claims());
        let result = signer.verify(&token, NOW);
        assert!(matches!(result, Err(TokenError::InvalidSignature)));
    }

    #[test]
    fn alg_none_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let claims_b64 = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let result = signer.verify(&format!("{header}.{claims_b64}."), NOW);
        assert!(matches!(result, Err(TokenError::UnsupportedAlgorithm)));
    }

    #[test]
    fn wrong_issuer_and_audience_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let header = json!({"alg": "EdDSA"});

        let mut bad_iss = claims().to_json();
        bad_iss["iss"] = json!("someone-else");
        let result = signer.verify(&resign(&signer, header.clone(), bad_iss), NOW);
        assert!(matches!(result, Err(TokenError::WrongIssuer)));

        let mut bad_aud = claims().to_json();
        bad_aud["aud"] = json!("crm");
        let result = signer.verify(&resign(&signer, header, bad_aud), NOW);
        assert!(matches!(result, Err(TokenError::WrongAudience)));
    }

    #[test]
    fn configured_issuer_audience_checked() {
        let signer = TokenSigner::generate()
            .unwrap()
            .with_issuer_audience("acme-ivr", "acme-desk");
        let mut claims = claims();
        let default_token = signer.sign(&claims);
        assert!(matches!(
            signer.verify(&default_token, NOW),
            Err(TokenError::WrongIssuer)
        ));

        claims.iss = "acme-ivr".to_string();
        claims.aud = "acme-desk".to_string();
        assert!(signer.verify(&signer.sign(&claims), NOW).is_ok());
    }

    #[test]
    fn extra_claims_tolerated() {
        let signer = TokenSigner::generate().unwrap();
        let mut value = claims().to_json();
        value["request_type"] = json!("payment-change");
        let token = resign(&signer, json!({"alg": "EdDSA", "typ": "JWT"}), value);
        assert_eq!(signer.verify(&token, NOW).unwrap(), claims_with_jti(&token));
    }

    fn claims_with_jti(token: &str) -> Claims {
        let claims_b64 = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).unwrap()).unwrap()
    }

    #[test]
    fn malformed_tokens_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let cases = [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.b.c",
            long.as_str(),
            &token[..token.len() - 5],
        ];
        for case in cases {
            assert!(signer.verify(case, NOW).is_err(), "token {case:?}");
        }
    }

    #[test]
    fn signed_non_claims_json_rejected() {
        let signer = TokenSigner::generate().unwrap();
        let token = resign(
            &signer,
            json!({"alg": "EdDSA"}),
            json!({"iss": "ivr-verify"}),
        );
        let result = signer.verify(&token, NOW);
        assert!(matches!(result, Err(TokenError::Malformed(_))));
    }

    #[test]
    fn jwks_contains_public_key() {
        let signer = TokenSigner::generate().unwrap();
        let jwks = signer.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], signer.kid());
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        assert_eq!(x, signer.key_pair.public_key().as_ref());
    }

    #[test]
    fn kid_is_rfc7638_thumbprint() {
        // RFC 8037, appendix A.3: thumbprint of the example Ed25519 key.
        let canonical =
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));
        assert_eq!(kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");

        // The signer builds the same string from its own key.
        let signer = TokenSigner::generate().unwrap();
        let x = URL_SAFE_NO_PAD.encode(signer.key_pair.public_key().as_ref());
        let expected = URL_SAFE_NO_PAD.encode(digest(
            &SHA256,
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#).as_bytes(),
        ));
        assert_eq!(signer.kid(), expected);
    }

    #[test]
    fn typical_token_length() {
        let signer = TokenSigner::generate().unwrap();
        let mut claims = claims();
        claims.call_id = "a".repeat(40);
        let token = signer.sign(&claims);
        assert!((450..550).contains(&token.len()), "length {}", token.len());

        // Past about 2.7 KB of Call-ID the token is too long to verify.
        claims.call_id = "a".repeat(2_800);
        let long = signer.sign(&claims);
        assert!(long.len() > MAX_TOKEN_LEN, "length {}", long.len());
        assert!(matches!(
            signer.verify(&long, NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn jti_is_128_random_bits() {
        let a = random_jti().unwrap();
        let b = random_jti().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn handle_is_32_hex_of_jti_hash() {
        let claims = claims();
        let handle = handle_for(&claims);
        assert_eq!(handle.len(), 32);
        assert!(handle
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // SHA-256("abc") starts with ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(handle_for_jti("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn key_file_created_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/token.p8");

        let (first, created) = TokenSigner::load_or_create(&path).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );

        let (second, created) = TokenSigner::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.kid(), second.kid());
        let token = first.sign(&claims());
        assert!(second.verify(&token, NOW).is_ok());
    }

    #[test]
    fn pem_key_file_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let der_path = dir.path().join("token.p8");
        let (signer, _) = TokenSigner::load_or_create(&der_path).unwrap();

        let der = fs::read(&der_path).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        );
        let pem_path = dir.path().join("token.pem");
        write_private(&pem_path, pem.as_bytes());

        let (from_pem, created) = TokenSigner::load_or_create(&pem_path).unwrap();
        assert!(!created);
        assert_eq!(from_pem.kid(), signer.kid());
    }

    fn write_private(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn readable_key_file_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.p8");
        TokenSigner::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let result = TokenSigner::load_or_create(&path);
        assert!(matches!(
            result,
            Err(TokenError::KeyPermissions { mode: 0o640, .. })
        ));
    }

    #[test]
    fn garbage_key_file_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.p8");
        write_private(&path, b"not a key");
        let result = TokenSigner::load_or_create(&path);
        assert!(matches!(result, Err(TokenError::InvalidKey { .. })));

        write_private(&path, b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n");
        let result = TokenSigner::load_or_create(&path);
        assert!(matches!(result, Err(TokenError::InvalidKey { .. })));
    }
}
