//! The work behind the call flow's actions: checking an entry against the
//! store with lockouts, sending a one-time code, and issuing the token and
//! audit record at the end.
//!
//! Each function takes what it needs and returns the flow's input; the call
//! task runs them on their own tasks so that media pacing never waits on the
//! store or an SMS gateway.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::flow::{CodeDelivery, EntryCheck, EntryDigits, StopReason, Verification};
use crate::media::prompts::Language;
use crate::store::{
    AttemptDecision, AuditRecord, CustomerRecord, FactorResult, OtpCheck, Reservation, Store,
    StoreError,
};
use crate::verify::caller_id::{mask_number, CallerNumber};
use crate::verify::factors::{normalise_entry, Date};
use crate::verify::keyed_hash::{HashPurpose, KeyedHash};
use crate::verify::otp;
use crate::verify::policy::{amr, highest_level_reached, Factor};
use crate::verify::token::{handle_for_jti, random_jti, Claims, TokenError, ACR_UNVERIFIED};

use super::Services;

/// How long one store operation may take before the flow treats the store
/// as unavailable and fails closed.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Call state that checking an entry needs.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// SIP Call-ID, for logs.
    pub call_id: String,
    /// The caller's number as far as it can be trusted.
    pub caller: CallerNumber,
    /// The customer found by the contract number, once it was.
    pub customer: Option<CustomerRecord>,
}

/// Returns the current time in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Checks one entry: its format first (a typo costs no attempt), then the
/// lockout counters, then the stored value. Returns the flow's input and,
/// for a matched contract number, the customer.
pub async fn check_entry(
    services: &Services,
    context: &CheckContext,
    factor: Factor,
    digits: &EntryDigits,
) -> (EntryCheck, Option<CustomerRecord>) {
    let normalised = match normalise_entry(
        factor,
        digits.expose(),
        &services.config.factors,
        Date::from_system_time(SystemTime::now()),
    ) {
        Ok(normalised) => normalised,
        Err(error) => {
            tracing::info!(call_id = %context.call_id, factor = factor.name(), %error, "entry rejected before comparing");
            return (EntryCheck::InvalidFormat, None);
        }
    };

    let checked = tokio::time::timeout(
        STORE_TIMEOUT,
        compare(services, context, factor, &normalised),
    )
    .await;

    match checked {
        Ok(Ok(result)) => {
            let outcome = match &result.0 {
                EntryCheck::ContractMatched { .. } | EntryCheck::Passed => "passed",
                EntryCheck::Failed => "failed",
                EntryCheck::InvalidFormat => "invalid-format",
                EntryCheck::Locked => "locked",
                EntryCheck::StoreUnavailable => "store-unavailable",
            };
            tracing::info!(call_id = %context.call_id, factor = factor.name(), outcome, "entry checked");
            result
        }
        Ok(Err(error)) => {
            tracing::error!(call_id = %context.call_id, factor = factor.name(), %error, "store failed during a check; failing closed");
            (EntryCheck::StoreUnavailable, None)
        }
        Err(_) => {
            tracing::error!(call_id = %context.call_id, factor = factor.name(), "store timed out during a check; failing closed");
            (EntryCheck::StoreUnavailable, None)
        }
    }
}

/// Reserves attempts on every lockout key, compares, and releases the
/// reservations when the guess was right.
async fn compare(
    services: &Services,
    context: &CheckContext,
    factor: Factor,
    normalised: &str,
) -> Result<(EntryCheck, Option<CustomerRecord>), StoreError> {
    let store = services.store.as_ref();
    let hasher = &services.hasher;

    let purpose = match factor {
        Factor::ContractNumber => HashPurpose::ContractNumber,
        Factor::DateOfBirth => HashPurpose::DateOfBirth,
        Factor::Postcode => HashPurpose::Postcode,
        Factor::IbanLastDigits => HashPurpose::IbanLastDigits,
        Factor::SmsOtp => HashPurpose::OneTimeCode,
        Factor::CallerIdMatch => return Ok((EntryCheck::Failed, None)),
    };
    let entered = hasher.hash(purpose, normalised);

    let keys = lockout_keys(services, context, factor, &entered);
    let Some(reservations) = reserve_all(store, &keys).await? else {
        tracing::warn!(call_id = %context.call_id, factor = factor.name(), "lockout in force; verification paused");
        return Ok((EntryCheck::Locked, None));
    };

    let (check, customer) = match factor {
        Factor::ContractNumber => match store.customer_by_contract(&entered).await? {
            Some(customer) => {
                let caller_id_match =
                    caller_registered(services, &context.caller, &customer).await?;
                let check = EntryCheck::ContractMatched {
                    customer_id: customer.customer_id.clone(),
                    caller_id_match,
                    available: available_factors(services, &customer),
                };
                (check, Some(customer))
            }
            None => (EntryCheck::Failed, None),
        },
        Factor::SmsOtp => {
            let Some(customer) = &context.customer else {
                return Ok((EntryCheck::Failed, None));
            };
            match store
                .check_otp(&customer.customer_id, &entered, unix_ms())
                .await?
            {
                OtpCheck::Valid => (EntryCheck::Passed, None),
                other => {
                    tracing::info!(call_id = %context.call_id, result = ?other, "one-time code not accepted");
                    (EntryCheck::Failed, None)
                }
            }
        }
        Factor::DateOfBirth | Factor::Postcode | Factor::IbanLastDigits => {
            let stored = context.customer.as_ref().and_then(|customer| match factor {
                Factor::DateOfBirth => customer.date_of_birth.as_ref(),
                Factor::Postcode => customer.postcode.as_ref(),
                _ => customer.iban_last_digits.as_ref(),
            });
            // KeyedHash compares in constant time.
            if stored.is_some_and(|stored| *stored == entered) {
                (EntryCheck::Passed, None)
            } else {
                (EntryCheck::Failed, None)
            }
        }
        Factor::CallerIdMatch => (EntryCheck::Failed, None),
    };

    let right = matches!(
        check,
        EntryCheck::Passed | EntryCheck::ContractMatched { .. }
    );
    if right {
        for (key, reservation) in &reservations {
            store.release_attempt(key, reservation).await?;
        }
    }

    Ok((check, customer))
}

/// One lockout counter: its store key, limit and window.
struct LockoutKey {
    key: String,
    limit: u32,
    window: Duration,
}

/// Returns the counters a guess at `factor` counts against: the contract
/// number guessed (or the customer, once known) and the calling number.
fn lockout_keys(
    services: &Services,
    context: &CheckContext,
    factor: Factor,
    entered: &KeyedHash,
) -> Vec<LockoutKey> {
    let lockout = &services.config.lockout;
    let mut keys = Vec::with_capacity(2);

    match (factor, &context.customer) {
        (Factor::ContractNumber, _) => keys.push(LockoutKey {
            key: format!("lockout:contract:{}", entered.to_hex()),
            limit: lockout.contract_limit,
            window: lockout.contract_window,
        }),
        (_, Some(customer)) => keys.push(LockoutKey {
            key: format!("lockout:customer:{}", customer.customer_id),
            limit: lockout.customer_limit,
            window: lockout.customer_window,
        }),
        (_, None) => {}
    }

    if let CallerNumber::E164(number) = &context.caller {
        let phone = services.hasher.hash(HashPurpose::PhoneNumber, number);
        keys.push(LockoutKey {
            key: format!("lockout:calling:{}", phone.to_hex()),
            limit: lockout.calling_number_limit,
            window: lockout.calling_number_window,
        });
    }
    keys
}

/// Reserves one attempt on every key. Returns `None` when any key is
/// locked, after taking back the reservations already made.
async fn reserve_all(
    store: &dyn Store,
    keys: &[LockoutKey],
) -> Result<Option<Vec<(String, Reservation)>>, StoreError> {
    let now = unix_ms();
    let mut reservations = Vec::with_capacity(keys.len());

    for lockout in keys {
        match store
            .reserve_attempt(&lockout.key, lockout.limit, lockout.window, now)
            .await?
        {
            AttemptDecision::Allowed { reservation, .. } => {
                reservations.push((lockout.key.clone(), reservation));
            }
            AttemptDecision::Locked { .. } => {
                for (key, reservation) in &reservations {
                    store.release_attempt(key, reservation).await?;
                }
                return Ok(None);
            }
        }
    }
    Ok(Some(reservations))
}

/// Returns whether the calling number is registered to `customer`.
async fn caller_registered(
    services: &Services,
    caller: &CallerNumber,
    customer: &CustomerRecord,
) -> Result<bool, StoreError> {
    let CallerNumber::E164(number) = caller else {
        return Ok(false);
    };
    let phone = services.hasher.hash(HashPurpose::PhoneNumber, number);
    let customers = services.store.customers_by_phone(&phone).await?;
    Ok(customers.contains(&customer.customer_id))
}

/// Returns the factors the customer has data for.
fn available_factors(services: &Services, customer: &CustomerRecord) -> Vec<Factor> {
    let mut available = Vec::new();
    if customer.date_of_birth.is_some() {
        available.push(Factor::DateOfBirth);
    }
    if customer.postcode.is_some() {
        available.push(Factor::Postcode);
    }
    if customer.iban_last_digits.is_some() {
        available.push(Factor::IbanLastDigits);
    }
    let has_mobile = customer
        .mobile_e164
        .as_deref()
        .is_some_and(|mobile| otp::is_mobile(mobile, services.default_region));
    if has_mobile {
        available.push(Factor::SmsOtp);
    }
    available
}

/// Sends a new one-time code to the customer's registered mobile, within
/// the send limit. The code is stored only as a keyed hash.
pub async fn send_code(
    services: &Services,
    context: &CheckContext,
    language: Language,
) -> CodeDelivery {
    let Some(customer) = &context.customer else {
        return CodeDelivery::NotSent;
    };
    let Some(mobile) = customer.mobile_e164.as_deref() else {
        return CodeDelivery::NotSent;
    };

    match tokio::time::timeout(
        STORE_TIMEOUT * 4,
        store_and_send(services, context, customer, mobile, language),
    )
    .await
    {
        Ok(Ok(delivery)) => delivery,
        Ok(Err(reason)) => {
            tracing::warn!(call_id = %context.call_id, to = %mask_number(mobile), reason, "one-time code not sent");
            CodeDelivery::NotSent
        }
        Err(_) => {
            tracing::warn!(call_id = %context.call_id, to = %mask_number(mobile), "sending the one-time code timed out");
            CodeDelivery::NotSent
        }
    }
}

async fn store_and_send(
    services: &Services,
    context: &CheckContext,
    customer: &CustomerRecord,
    mobile: &str,
    language: Language,
) -> Result<CodeDelivery, String> {
    let settings = &services.config.otp;
    let now = unix_ms();

    let key = format!("otp-send:{}", customer.customer_id);
    let decision = services
        .store
        .reserve_attempt(&key, settings.max_sends, settings.send_window, now)
        .await
        .map_err(|error| format!("store failed: {error}"))?;
    if let AttemptDecision::Locked { .. } = decision {
        return Err("send limit reached".to_owned());
    }

    let code = otp::generate_code().map_err(|error| error.to_string())?;
    let hash = services
        .hasher
        .hash(HashPurpose::OneTimeCode, code.as_str());
    let lifetime_ms = u64::try_from(settings.lifetime.as_millis()).unwrap_or(u64::MAX);
    services
        .store
        .put_otp(
            &customer.customer_id,
            &hash,
            now.saturating_add(lifetime_ms),
            settings.max_entries,
        )
        .await
        .map_err(|error| format!("store failed: {error}"))?;

    let purpose = match language {
        Language::Nl => "uw telefonische verzoek",
        Language::En => "your request by phone",
    };
    let text = otp::sms_text(language, &code, purpose, settings.lifetime);
    let message = services.sms.compose(mobile, text);
    let sent = services
        .sms
        .send(&message)
        .await
        .map_err(|error| format!("every gateway failed: {error}"))?;

    tracing::info!(call_id = %context.call_id, to = %mask_number(mobile), gateway = sent.gateway, "one-time code sent");
    Ok(CodeDelivery::Sent {
        last_two_digits: otp::last_two_digits(mobile),
    })
}

/// The transfer decided for a call: the token's claims and where it goes.
pub struct TransferPlan {
    /// Claims of the verification token.
    pub claims: Claims,
    /// The signed token.
    pub token: String,
    /// The agent queue for the request type.
    pub agent_queue_uri: String,
}

/// Decides the level reached, signs the token and records its id.
pub async fn plan_transfer(
    services: &Services,
    call_id: &str,
    verification: &Verification,
) -> Result<TransferPlan, TokenError> {
    let now = unix_ms() / 1000;
    let policy = &services.config.policy;

    let acr = match verification.stopped {
        Some(StopReason::Locked | StopReason::StoreUnavailable) => ACR_UNVERIFIED.to_owned(),
        Some(StopReason::NoRequestType) | None => {
            highest_level_reached(policy, &verification.outcomes)
                .unwrap_or_else(|| ACR_UNVERIFIED.to_owned())
        }
    };
    let verified = acr != ACR_UNVERIFIED;
    let rule = verification
        .request_type
        .as_deref()
        .and_then(|name| policy.level_for(name))
        .map(|level| &level.rule);

    let claims = Claims {
        iss: services.config.token.issuer.clone(),
        aud: services.config.token.audience.clone(),
        sub: verification.customer_id.clone().filter(|_| verified),
        iat: now,
        exp: now + services.config.token.lifetime.as_secs(),
        jti: random_jti()?,
        call_id: call_id.to_owned(),
        amr: match (verified, rule) {
            (true, Some(rule)) => amr(&verification.outcomes, rule),
            _ => Vec::new(),
        },
        acr,
        caller_id_match: verification.caller_id_match,
        request_type: verification.request_type.clone(),
        policy_version: Some(policy.version().to_owned()),
    };
    let token = services.signer.sign(&claims);

    if let Err(error) = services.store.record_token(&claims.jti, claims.exp).await {
        // The REFER still goes out so the caller reaches an agent, but the
        // token will not introspect as active.
        tracing::error!(call_id, %error, "recording the token id failed");
    }

    let agent_queue_uri = verification
        .request_type
        .as_deref()
        .and_then(|name| policy.request_type(name))
        .map(|request_type| request_type.agent_queue_uri.clone())
        .unwrap_or_else(|| services.config.transfer.agent_queue_uri.clone());

    Ok(TransferPlan {
        claims,
        token,
        agent_queue_uri,
    })
}

/// Returns the Refer-To URI: the agent queue with the token and its short
/// handle as embedded headers (RFC 3261 §19.1.1, RFC 7433 for User-to-User).
pub fn refer_to(plan: &TransferPlan) -> String {
    let separator = if plan.agent_queue_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{}{}X-Verification-Token={}&User-to-User={}{}",
        plan.agent_queue_uri,
        separator,
        crate::sip::escape_uri_header_value(&plan.token),
        handle_for_jti(&plan.claims.jti),
        crate::sip::escape_uri_header_value(";encoding=hex"),
    )
}

/// Builds the audit record of a finished verification: which factors passed
/// or failed and why, never the digits.
pub fn audit_record(call_id: &str, verification: &Verification, claims: &Claims) -> AuditRecord {
    let factors = verification
        .outcomes
        .iter()
        .map(|(factor, outcome)| FactorResult {
            factor: factor.name().to_owned(),
            passed: outcome.passed,
            reason: outcome.reason.clone(),
        })
        .collect();

    let outcome = match verification.stopped {
        Some(StopReason::Locked) => "locked",
        Some(StopReason::StoreUnavailable) => "store-unavailable",
        Some(StopReason::NoRequestType) => "no-request-type",
        None if claims.acr == ACR_UNVERIFIED => "unverified",
        None => "verified",
    };

    AuditRecord {
        call_id: call_id.to_owned(),
        at_ms: unix_ms(),
        request_type: verification.request_type.clone(),
        policy_version: claims.policy_version.clone().unwrap_or_default(),
        acr: claims.acr.clone(),
        factors,
        caller_id_match: verification.caller_id_match,
        outcome: outcome.to_owned(),
    }
}

/// Audit records that could not be written yet, kept and retried so that a
/// store outage loses none.
#[derive(Default)]
pub struct AuditBacklog {
    /// Records waiting for the store, oldest first.
    pending: std::sync::Mutex<Vec<AuditRecord>>,
}

/// Most records kept while the store is down. One record is well under
/// 1 KiB, so this bounds the backlog to a few MiB.
const MAX_AUDIT_BACKLOG: usize = 10_000;

impl AuditBacklog {
    /// Writes `record`, or keeps it for [`AuditBacklog::flush`] when the
    /// store fails.
    pub async fn append(&self, store: &dyn Store, record: AuditRecord) {
        if let Err(error) = store.append_audit(&record).await {
            tracing::error!(call_id = %record.call_id, %error, "audit record kept for retry; the store failed");
            let mut pending = self.lock();
            if pending.len() >= MAX_AUDIT_BACKLOG {
                tracing::error!(call_id = %record.call_id, "audit backlog full; dropping the oldest record");
                pending.remove(0);
            }
            pending.push(record);
        }
    }

    /// Retries the kept records in order; stops at the first failure.
    pub async fn flush(&self, store: &dyn Store) {
        let records: Vec<AuditRecord> = std::mem::take(&mut *self.lock());
        if records.is_empty() {
            return;
        }

        let mut written = 0;
        for record in &records {
            if store.append_audit(record).await.is_err() {
                break;
            }
            written += 1;
        }

        let mut pending = self.lock();
        let unwritten: Vec<AuditRecord> = records.into_iter().skip(written).collect();
        pending.splice(0..0, unwritten);
        if written > 0 {
            tracing::info!(
                written,
                left = pending.len(),
                "audit backlog written to the store"
            );
        }
    }

    /// Returns how many records wait for the store.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns whether no record waits for the store.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AuditRecord>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs [`AuditBacklog::flush`] every few seconds until the service stops.
pub async fn flush_audit_backlog(services: Arc<Services>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        services.audit.flush(services.store.as_ref()).await;
    }
}
