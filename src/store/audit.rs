//! The audit trail: one record per decision a call made, with no digits in
//! clear.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Retention of audit records: 90 days. Long enough to handle a
/// customer's complaint or a fraud investigation about a call from the last
/// quarter, and short enough that the trail is not a lasting archive of who
/// called when (GDPR storage limitation, article 5(1)(e)). Make it
/// configurable when a contact center's retention policy differs.
pub const AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// The verification decision of one call and its reasons, stored as JSON.
///
/// The caller builds it from hashes, names and outcomes only: no contract
/// numbers, codes or other entered digits, and phone numbers only masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// SIP Call-ID of the call, to join the record with SIP traces and the
    /// token's claim.
    pub call_id: String,
    /// When the decision was made, Unix milliseconds. Retention counts from
    /// here.
    pub at_ms: u64,
    /// The request type the caller chose, when the flow asked for one.
    pub request_type: Option<String>,
    /// Version of the verification policy that decided, so a later policy
    /// change does not rewrite history.
    pub policy_version: String,
    /// Assurance level reached, the token's `acr`.
    pub acr: String,
    /// Every factor checked, in the order the caller was asked.
    pub factors: Vec<FactorResult>,
    /// Whether the calling number is registered to the verified customer.
    pub caller_id_match: bool,
    /// Outcome of verification, such as `verified` or `unverified`.
    pub outcome: String,
}

/// The result of checking one knowledge factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorResult {
    /// Config name of the factor, such as `date_of_birth`.
    pub factor: String,
    /// Whether the caller passed it.
    pub passed: bool,
    /// Reason for the result, such as `match`, `mismatch` or `locked`.
    pub reason: String,
}
