//! Conformance suite that every [`Store`] implementation must pass, public
//! (and hidden from the docs) so that the integration tests against real
//! Redis deployments run the same checks as the unit tests.

use std::sync::Arc;
use std::time::Duration;

use super::{
    AttemptDecision, AuditRecord, CustomerRecord, FactorResult, OtpCheck, Store, StoreError,
    TokenState,
};
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::{HashPurpose, KeyedHash, KeyedHasher};

/// Unix time the suite runs at. The store must take time only from the
/// arguments, never from the clock. It lies in the future, so that Redis,
/// which expires keys by its own clock, keeps every key the suite writes.
const NOW: u64 = 1_900_000_000;

/// [`NOW`] in Unix milliseconds.
const NOW_MS: u64 = NOW * 1000;

/// Returns the hasher of the suite, with a fixed test pepper so that
/// failures are reproducible.
pub fn hasher() -> KeyedHasher {
    match KeyedHasher::new(&[0x42; 32]) {
        Ok(hasher) => hasher,
        Err(error) => panic!("test pepper rejected: {error}"),
    }
}

fn contract(hasher: &KeyedHasher, digits: &str) -> KeyedHash {
    hasher.hash(HashPurpose::ContractNumber, digits)
}

fn phone(hasher: &KeyedHasher, e164: &str) -> KeyedHash {
    hasher.hash(HashPurpose::PhoneNumber, e164)
}

// NOTE: the knowledge factors below are hashed with the contract number
// purpose, because `HashPurpose` has no variant per factor yet. A store
// treats every hash alike, so the checks hold either way.
fn factor(hasher: &KeyedHasher, value: &str) -> KeyedHash {
    hasher.hash(HashPurpose::ContractNumber, value)
}

fn customer(
    hasher: &KeyedHasher,
    id: &str,
    phones: &[&str],
    mobile: Option<&str>,
    contracts: &[&str],
) -> Customer {
    Customer {
        customer_id: id.to_string(),
        phones: phones.iter().map(|p| phone(hasher, p)).collect(),
        mobile_e164: mobile.map(str::to_string),
        contracts: contracts.iter().map(|c| contract(hasher, c)).collect(),
        date_of_birth: None,
        postcode: None,
        iban_last_digits: None,
    }
}

fn record(id: &str, mobile: Option<&str>) -> CustomerRecord {
    CustomerRecord {
        customer_id: id.to_string(),
        mobile_e164: mobile.map(str::to_string),
        date_of_birth: None,
        postcode: None,
        iban_last_digits: None,
    }
}

/// Returns an audit record of call `call_id` at `at_ms` with two factors.
pub fn sample_audit_record(call_id: &str, at_ms: u64) -> AuditRecord {
    AuditRecord {
        call_id: call_id.to_string(),
        at_ms,
        request_type: Some("payment_change".to_string()),
        policy_version: "2".to_string(),
        acr: "substantial".to_string(),
        factors: vec![
            FactorResult {
                factor: "contract_number".to_string(),
                passed: true,
                reason: "match".to_string(),
            },
            FactorResult {
                factor: "sms_otp".to_string(),
                passed: false,
                reason: "mismatch".to_string(),
            },
        ],
        caller_id_match: true,
        outcome: "unverified".to_string(),
    }
}

/// Runs every conformance check against `store`, which must be empty. Panics
/// with the failing check's message.
pub async fn run_store_conformance(store: &dyn Store) {
    store.ping().await.expect("ping an empty store");
    empty_store_finds_nothing(store).await;
    customers_found_by_hash(store).await;
    knowledge_factors_round_trip(store).await;
    replace_swaps_whole_set(store).await;
    duplicate_contract_keeps_old_set(store).await;
    duplicate_customer_id_keeps_old_set(store).await;
    token_single_use(store).await;
    token_expiry(store).await;
    unknown_token(store).await;
    duplicate_token_rejected(store).await;
    attempts_locked_at_limit(store).await;
    attempts_leave_window(store).await;
    released_attempt_not_counted(store).await;
    lockout_keys_independent(store).await;
    otp_single_use(store).await;
    otp_entries_run_out(store).await;
    otp_expiry(store).await;
    otp_replaced_by_newer(store).await;
    audit_newest_first(store).await;
}

async fn empty_store_finds_nothing(store: &dyn Store) {
    let hasher = hasher();
    let found = store
        .customer_by_contract(&contract(&hasher, "12345678"))
        .await
        .unwrap();
    assert_eq!(found, None, "empty store returned a customer");
    let ids = store
        .customers_by_phone(&phone(&hasher, "+31612345601"))
        .await
        .unwrap();
    assert!(ids.is_empty(), "empty store returned customer ids {ids:?}");
}

async fn customers_found_by_hash(store: &dyn Store) {
    let hasher = hasher();
    let customers = vec![
        customer(
            &hasher,
            "C1",
            &["+31612345601"],
            Some("+31612345601"),
            &["12345678", "11112222"],
        ),
        customer(
            &hasher,
            "C2",
            &["+31612345602", "+31612345601"],
            None,
            &["23456789"],
        ),
    ];
    store.replace_customers(customers).await.unwrap();

    let c1 = Some(record("C1", Some("+31612345601")));
    let c2 = Some(record("C2", None));
    for (digits, expected) in [("12345678", &c1), ("11112222", &c1), ("23456789", &c2)] {
        let found = store
            .customer_by_contract(&contract(&hasher, digits))
            .await
            .unwrap();
        assert_eq!(&found, expected, "contract lookup");
    }
    let missing = store
        .customer_by_contract(&contract(&hasher, "99999999"))
        .await
        .unwrap();
    assert_eq!(missing, None, "unregistered contract found");

    // The same digits hashed for another purpose must not match.
    let cross = store
        .customer_by_contract(&phone(&hasher, "12345678"))
        .await
        .unwrap();
    assert_eq!(cross, None, "phone hash matched a contract");

    let shared = store
        .customers_by_phone(&phone(&hasher, "+31612345601"))
        .await
        .unwrap();
    assert_eq!(
        shared,
        vec!["C1".to_string(), "C2".to_string()],
        "shared phone"
    );
    let single = store
        .customers_by_phone(&phone(&hasher, "+31612345602"))
        .await
        .unwrap();
    assert_eq!(single, vec!["C2".to_string()], "single phone");
}

async fn replace_swaps_whole_set(store: &dyn Store) {
    let hasher = hasher();
    let customers = vec![customer(
        &hasher,
        "C9",
        &["+31612345609"],
        None,
        &["99998888"],
    )];
    store.replace_customers(customers).await.unwrap();

    let old = store
        .customer_by_contract(&contract(&hasher, "12345678"))
        .await
        .unwrap();
    assert_eq!(old, None, "customer of the old set still found");
    let old_phone = store
        .customers_by_phone(&phone(&hasher, "+31612345601"))
        .await
        .unwrap();
    assert!(old_phone.is_empty(), "phone of the old set still found");
    let new = store
        .customer_by_contract(&contract(&hasher, "99998888"))
        .await
        .unwrap();
    assert_eq!(
        new.map(|r| r.customer_id),
        Some("C9".to_string()),
        "new set"
    );
}

async fn duplicate_contract_keeps_old_set(store: &dyn Store) {
    let hasher = hasher();
    let customers = vec![
        customer(&hasher, "D1", &[], None, &["55556666"]),
        customer(&hasher, "D2", &[], None, &["55556666"]),
    ];
    let result = store.replace_customers(customers).await;
    assert!(
        matches!(result, Err(StoreError::DuplicateContract { ref first, ref second }) if first == "D1" && second == "D2"),
        "duplicate contract accepted: {result:?}"
    );
    let kept = store
        .customer_by_contract(&contract(&hasher, "99998888"))
        .await
        .unwrap();
    assert!(kept.is_some(), "old set lost after a rejected replacement");
    let partial = store
        .customer_by_contract(&contract(&hasher, "55556666"))
        .await
        .unwrap();
    assert_eq!(partial, None, "part of a rejected replacement stored");
}

async fn duplicate_customer_id_keeps_old_set(store: &dyn Store) {
    let hasher = hasher();
    let customers = vec![
        customer(&hasher, "E1", &[], None, &["77778888"]),
        customer(&hasher, "E1", &[], None, &["77779999"]),
    ];
    let result = store.replace_customers(customers).await;
    assert!(
        matches!(result, Err(StoreError::DuplicateCustomerId { ref customer_id }) if customer_id == "E1"),
        "duplicate customer id accepted: {result:?}"
    );
    let kept = store
        .customer_by_contract(&contract(&hasher, "99998888"))
        .await
        .unwrap();
    assert!(kept.is_some(), "old set lost after a rejected replacement");
}

async fn token_single_use(store: &dyn Store) {
    store.record_token("jti-single", NOW + 600).await.unwrap();
    let first = store.consume_token("jti-single", NOW).await.unwrap();
    assert_eq!(first, TokenState::Fresh, "first introspection");
    let second = store.consume_token("jti-single", NOW + 1).await.unwrap();
    assert_eq!(second, TokenState::AlreadyUsed, "second introspection");
}

async fn token_expiry(store: &dyn Store) {
    store.record_token("jti-expiring", NOW + 600).await.unwrap();
    let at_expiry = store
        .consume_token("jti-expiring", NOW + 600)
        .await
        .unwrap();
    assert_eq!(at_expiry, TokenState::Unknown, "token consumed at its exp");

    store
        .record_token("jti-used-then-expired", NOW + 10)
        .await
        .unwrap();
    let fresh = store
        .consume_token("jti-used-then-expired", NOW)
        .await
        .unwrap();
    assert_eq!(fresh, TokenState::Fresh, "fresh before expiry");
    let expired = store
        .consume_token("jti-used-then-expired", NOW + 11)
        .await
        .unwrap();
    assert_eq!(expired, TokenState::Unknown, "used token after expiry");
}

async fn unknown_token(store: &dyn Store) {
    let state = store.consume_token("never-recorded", NOW).await.unwrap();
    assert_eq!(state, TokenState::Unknown, "unrecorded token");
    let empty = store.consume_token("", NOW).await.unwrap();
    assert_eq!(empty, TokenState::Unknown, "empty token id");
}

async fn duplicate_token_rejected(store: &dyn Store) {
    store.record_token("jti-twice", NOW + 600).await.unwrap();
    let result = store.record_token("jti-twice", NOW + 600).await;
    assert!(
        matches!(result, Err(StoreError::DuplicateToken)),
        "duplicate token id accepted: {result:?}"
    );
}

async fn knowledge_factors_round_trip(store: &dyn Store) {
    let hasher = hasher();
    let mut with_factors = customer(&hasher, "F1", &[], Some("+31612345610"), &["31313131"]);
    with_factors.date_of_birth = Some(factor(&hasher, "01021990"));
    with_factors.postcode = Some(factor(&hasher, "1234:5"));
    with_factors.iban_last_digits = Some(factor(&hasher, "789"));
    let without = customer(&hasher, "F2", &[], None, &["32323232"]);
    store
        .replace_customers(vec![with_factors, without])
        .await
        .unwrap();

    let found = store
        .customer_by_contract(&contract(&hasher, "31313131"))
        .await
        .unwrap()
        .expect("customer with factors not found");
    assert_eq!(found.customer_id, "F1");
    assert_eq!(
        found.date_of_birth,
        Some(factor(&hasher, "01021990")),
        "date of birth"
    );
    assert_eq!(found.postcode, Some(factor(&hasher, "1234:5")), "postcode");
    assert_eq!(
        found.iban_last_digits,
        Some(factor(&hasher, "789")),
        "IBAN digits"
    );

    let bare = store
        .customer_by_contract(&contract(&hasher, "32323232"))
        .await
        .unwrap();
    assert_eq!(bare, Some(record("F2", None)), "customer without factors");
}

/// Reserves an attempt and returns its remaining count, or panics when the
/// store locked it.
async fn expect_allowed(
    store: &dyn Store,
    key: &str,
    limit: u32,
    window: Duration,
    now_ms: u64,
) -> (super::Reservation, u32) {
    match store
        .reserve_attempt(key, limit, window, now_ms)
        .await
        .unwrap()
    {
        AttemptDecision::Allowed {
            reservation,
            remaining,
        } => (reservation, remaining),
        AttemptDecision::Locked { retry_after } => {
            panic!("attempt on {key} at {now_ms} locked for {retry_after:?}")
        }
    }
}

async fn attempts_locked_at_limit(store: &dyn Store) {
    let window = Duration::from_secs(60);
    for (step, expected) in [2, 1, 0].into_iter().enumerate() {
        let at = NOW_MS + step as u64 * 1_000;
        let (_, remaining) = expect_allowed(store, "limit", 3, window, at).await;
        assert_eq!(remaining, expected, "remaining after attempt {step}");
    }

    let locked = store
        .reserve_attempt("limit", 3, window, NOW_MS + 10_000)
        .await
        .unwrap();
    assert_eq!(
        locked,
        AttemptDecision::Locked {
            retry_after: Duration::from_millis(50_000)
        },
        "fourth attempt in the window"
    );

    // A locked attempt is not recorded, so the wait does not grow.
    let still_locked = store
        .reserve_attempt("limit", 3, window, NOW_MS + 20_000)
        .await
        .unwrap();
    assert_eq!(
        still_locked,
        AttemptDecision::Locked {
            retry_after: Duration::from_millis(40_000)
        },
        "fifth attempt in the window"
    );
}

async fn attempts_leave_window(store: &dyn Store) {
    let window = Duration::from_secs(10);
    let _ = expect_allowed(store, "window", 1, window, NOW_MS).await;

    let just_before = store
        .reserve_attempt("window", 1, window, NOW_MS + 9_999)
        .await
        .unwrap();
    assert_eq!(
        just_before,
        AttemptDecision::Locked {
            retry_after: Duration::from_millis(1)
        },
        "attempt 1 ms before the window ends"
    );

    let (_, remaining) = expect_allowed(store, "window", 1, window, NOW_MS + 10_000).await;
    assert_eq!(remaining, 0, "attempt after the window");
}

async fn released_attempt_not_counted(store: &dyn Store) {
    let window = Duration::from_secs(60);
    let (right_guess, _) = expect_allowed(store, "release", 2, window, NOW_MS).await;
    store
        .release_attempt("release", &right_guess)
        .await
        .unwrap();

    // Releasing twice, or on another key, does nothing.
    store
        .release_attempt("release", &right_guess)
        .await
        .unwrap();
    store
        .release_attempt("never-used", &right_guess)
        .await
        .unwrap();

    let (_, first) = expect_allowed(store, "release", 2, window, NOW_MS + 1).await;
    assert_eq!(first, 1, "released attempt still counted");
    let (_, second) = expect_allowed(store, "release", 2, window, NOW_MS + 2).await;
    assert_eq!(second, 0, "second attempt after release");
    let locked = store
        .reserve_attempt("release", 2, window, NOW_MS + 3)
        .await
        .unwrap();
    assert!(
        matches!(locked, AttemptDecision::Locked { .. }),
        "third attempt: {locked:?}"
    );
}

async fn lockout_keys_independent(store: &dyn Store) {
    let window = Duration::from_secs(60);
    let _ = expect_allowed(store, "independent-a", 1, window, NOW_MS).await;
    let (_, remaining) = expect_allowed(store, "independent-b", 1, window, NOW_MS).await;
    assert_eq!(remaining, 0, "attempt on another key was counted");
}

async fn otp_single_use(store: &dyn Store) {
    let hasher = hasher();
    let code = hasher.hash(HashPurpose::CustomerReference, "otp-123456");
    store
        .put_otp("O1", &code, NOW_MS + 300_000, 3)
        .await
        .unwrap();

    let first = store.check_otp("O1", &code, NOW_MS + 1_000).await.unwrap();
    assert_eq!(first, OtpCheck::Valid, "first use of the right code");
    let second = store.check_otp("O1", &code, NOW_MS + 2_000).await.unwrap();
    assert_eq!(second, OtpCheck::Missing, "second use of the right code");

    let never = store.check_otp("O-none", &code, NOW_MS).await.unwrap();
    assert_eq!(never, OtpCheck::Missing, "customer without a code");
}

async fn otp_entries_run_out(store: &dyn Store) {
    let hasher = hasher();
    let code = hasher.hash(HashPurpose::CustomerReference, "otp-111111");
    let wrong = hasher.hash(HashPurpose::CustomerReference, "otp-222222");
    store
        .put_otp("O2", &code, NOW_MS + 300_000, 2)
        .await
        .unwrap();

    let first = store.check_otp("O2", &wrong, NOW_MS).await.unwrap();
    assert_eq!(
        first,
        OtpCheck::Invalid { remaining: 1 },
        "first wrong code"
    );
    let second = store.check_otp("O2", &wrong, NOW_MS + 1).await.unwrap();
    assert_eq!(
        second,
        OtpCheck::Invalid { remaining: 0 },
        "second wrong code"
    );
    let right = store.check_otp("O2", &code, NOW_MS + 2).await.unwrap();
    assert_eq!(
        right,
        OtpCheck::Exhausted,
        "right code after the entries ran out"
    );
    let again = store.check_otp("O2", &code, NOW_MS + 3).await.unwrap();
    assert_eq!(again, OtpCheck::Exhausted, "exhausted code stays exhausted");
}

async fn otp_expiry(store: &dyn Store) {
    let hasher = hasher();
    let code = hasher.hash(HashPurpose::CustomerReference, "otp-333333");
    store
        .put_otp("O3", &code, NOW_MS + 60_000, 3)
        .await
        .unwrap();

    let before = store.check_otp("O3", &code, NOW_MS + 59_999).await.unwrap();
    assert_eq!(before, OtpCheck::Valid, "code 1 ms before it expires");

    store
        .put_otp("O3", &code, NOW_MS + 60_000, 3)
        .await
        .unwrap();
    let at_expiry = store.check_otp("O3", &code, NOW_MS + 60_000).await.unwrap();
    assert!(
        matches!(at_expiry, OtpCheck::Expired | OtpCheck::Missing),
        "code at its expiry: {at_expiry:?}"
    );
    let after = store.check_otp("O3", &code, NOW_MS + 60_001).await.unwrap();
    assert_eq!(after, OtpCheck::Missing, "expired code is deleted");
}

async fn otp_replaced_by_newer(store: &dyn Store) {
    let hasher = hasher();
    let old = hasher.hash(HashPurpose::CustomerReference, "otp-444444");
    let new = hasher.hash(HashPurpose::CustomerReference, "otp-555555");
    store
        .put_otp("O4", &old, NOW_MS + 300_000, 2)
        .await
        .unwrap();
    let wrong = store.check_otp("O4", &new, NOW_MS).await.unwrap();
    assert_eq!(
        wrong,
        OtpCheck::Invalid { remaining: 1 },
        "wrong code before replacement"
    );

    store
        .put_otp("O4", &new, NOW_MS + 300_000, 2)
        .await
        .unwrap();
    let old_again = store.check_otp("O4", &old, NOW_MS + 1).await.unwrap();
    assert_eq!(
        old_again,
        OtpCheck::Invalid { remaining: 1 },
        "replacement resets the entries and drops the old code"
    );
    let fresh = store.check_otp("O4", &new, NOW_MS + 2).await.unwrap();
    assert_eq!(fresh, OtpCheck::Valid, "replacing code");
}

async fn audit_newest_first(store: &dyn Store) {
    let empty = store.recent_audit(10).await.unwrap();
    assert!(
        empty.is_empty(),
        "empty store returned audit records {empty:?}"
    );

    let records: Vec<AuditRecord> = (0..3)
        .map(|i| sample_audit_record(&format!("call-{i}@example.invalid"), NOW_MS + i))
        .collect();
    for record in &records {
        store.append_audit(record).await.unwrap();
    }

    let recent = store.recent_audit(2).await.unwrap();
    let expected: Vec<AuditRecord> = records.iter().rev().take(2).cloned().collect();
    assert_eq!(recent, expected, "two newest audit records");
    let all = store.recent_audit(10).await.unwrap();
    assert_eq!(all.len(), 3, "every audit record");
    let none = store.recent_audit(0).await.unwrap();
    assert!(none.is_empty(), "limit 0 returned {none:?}");
}

/// Lockout key used by [`run_parallel_reservations`].
pub const PARALLEL_KEY: &str = "parallel";

/// Attempt limit used by [`run_parallel_reservations`].
pub const PARALLEL_LIMIT: u32 = 5;

/// Reserves `tasks` attempts at once on one lockout key, spread round-robin
/// over `stores` (handles to the same data, standing in for several
/// nodes), and checks that exactly [`PARALLEL_LIMIT`] are allowed. Then
/// releases one and checks that exactly one more is allowed.
pub async fn run_parallel_reservations(stores: &[Arc<dyn Store>], tasks: usize) {
    assert!(!stores.is_empty(), "no store handles given");
    let window = Duration::from_secs(600);

    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let store = stores[task % stores.len()].clone();
        running.spawn(async move {
            store
                .reserve_attempt(PARALLEL_KEY, PARALLEL_LIMIT, window, NOW_MS + task as u64)
                .await
        });
    }

    let mut allowed = Vec::new();
    let mut locked = 0;
    while let Some(joined) = running.join_next().await {
        match joined.expect("reservation task panicked") {
            Ok(AttemptDecision::Allowed { reservation, .. }) => allowed.push(reservation),
            Ok(AttemptDecision::Locked { .. }) => locked += 1,
            Err(error) => panic!("reservation failed: {error}"),
        }
    }
    assert_eq!(
        allowed.len(),
        PARALLEL_LIMIT as usize,
        "allowed parallel attempts"
    );
    assert_eq!(
        locked,
        tasks - PARALLEL_LIMIT as usize,
        "locked parallel attempts"
    );

    let released = allowed.pop().expect("an allowed reservation");
    stores[0]
        .release_attempt(PARALLEL_KEY, &released)
        .await
        .unwrap();
    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let store = stores[task % stores.len()].clone();
        running.spawn(async move {
            store
                .reserve_attempt(PARALLEL_KEY, PARALLEL_LIMIT, window, NOW_MS + 1_000)
                .await
        });
    }
    let mut allowed_after_release = 0;
    while let Some(joined) = running.join_next().await {
        if let Ok(AttemptDecision::Allowed { .. }) = joined.expect("reservation task panicked") {
            allowed_after_release += 1;
        }
    }
    assert_eq!(
        allowed_after_release, 1,
        "attempts allowed after one release"
    );
}

/// Values that [`write_sensitive_sample`] stores only as keyed hashes. None
/// may appear in clear anywhere in the store.
pub const CLEAR_SECRETS: [&str; 6] = [
    "73918264", // contract number
    "46290173", // second contract number
    "15031980", // date of birth, DDMMYYYY
    "1234:12",  // postcode digits and house number
    "7305",     // last IBAN digits
    "482913",   // one-time code
];

/// Writes customers with knowledge factors, a one-time code, lockout
/// attempts on a contract hash, a token id and an audit record, all built
/// from [`CLEAR_SECRETS`], for a test that then reads every stored byte.
pub async fn write_sensitive_sample(store: &dyn Store) {
    let hasher = hasher();
    let [contract_a, contract_b, birth, postcode, iban, code] = CLEAR_SECRETS;

    let mut owner = customer(
        &hasher,
        "C-SAMPLE",
        &["+31201234567"],
        Some("+31612345699"),
        &[contract_a, contract_b],
    );
    owner.date_of_birth = Some(factor(&hasher, birth));
    owner.postcode = Some(factor(&hasher, postcode));
    owner.iban_last_digits = Some(factor(&hasher, iban));
    store.replace_customers(vec![owner]).await.unwrap();

    let code_hash = hasher.hash(HashPurpose::CustomerReference, code);
    store
        .put_otp("C-SAMPLE", &code_hash, NOW_MS + 300_000, 3)
        .await
        .unwrap();

    let lockout_key = format!(
        "contract:{}",
        super::codec::hash_to_hex(&contract(&hasher, contract_a))
    );
    let _ = store
        .reserve_attempt(&lockout_key, 3, Duration::from_secs(600), NOW_MS)
        .await
        .unwrap();
    store.record_token("sample-jti", NOW + 600).await.unwrap();
    store
        .append_audit(&sample_audit_record("sample-call@example.invalid", NOW_MS))
        .await
        .unwrap();

    let found = store
        .customer_by_contract(&contract(&hasher, contract_b))
        .await
        .unwrap();
    assert!(found.is_some(), "sample customer not stored");
}
