//! Conformance suite that every [`Store`] implementation must pass.
//!
//! NOTE: compiled only for this crate's unit tests. An integration test
//! against a real Redis in `tests/` would need it behind a cargo feature.

use super::{CustomerRecord, Store, StoreError, TokenState};
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::{HashPurpose, KeyedHash, KeyedHasher};

/// Unix time the suite runs at. The store must take time only from the
/// arguments, never from the clock.
const NOW: u64 = 1_800_000_000;

fn hasher() -> KeyedHasher {
    // A fixed test pepper, so that failures are reproducible.
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

/// Runs every conformance check against `store`, which must be empty. Panics
/// with the failing check's message.
pub async fn run_store_conformance(store: &dyn Store) {
    empty_store_finds_nothing(store).await;
    customers_found_by_hash(store).await;
    replace_swaps_whole_set(store).await;
    duplicate_contract_keeps_old_set(store).await;
    duplicate_customer_id_keeps_old_set(store).await;
    token_single_use(store).await;
    token_expiry(store).await;
    unknown_token(store).await;
    duplicate_token_rejected(store).await;
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

    let c1 = Some(CustomerRecord {
        customer_id: "C1".to_string(),
        mobile_e164: Some("+31612345601".to_string()),
    });
    let c2 = Some(CustomerRecord {
        customer_id: "C2".to_string(),
        mobile_e164: None,
    });
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
