//! Encoding shared by the persistent stores: keyed hashes as hex, customer
//! records as JSON, and random ids.

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{CustomerRecord, StoreError};
use crate::verify::keyed_hash::KeyedHash;

/// Length of a keyed hash in hex digits.
const HASH_HEX_LEN: usize = 64;

/// Encodes a keyed hash as 64 lowercase hex digits.
pub(crate) fn hash_to_hex(hash: &KeyedHash) -> String {
    let mut hex = String::with_capacity(HASH_HEX_LEN);
    for byte in hash.as_bytes() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Decodes 64 hex digits written by [`hash_to_hex`].
pub(crate) fn hash_from_hex(hex: &str) -> Result<KeyedHash, StoreError> {
    let malformed = || StoreError::Malformed {
        what: "keyed hash",
        detail: format!(
            "expected {HASH_HEX_LEN} hex digits, found {} characters",
            hex.len()
        ),
    };
    if hex.len() != HASH_HEX_LEN || !hex.is_ascii() {
        return Err(malformed());
    }

    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| malformed())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
    }
    Ok(KeyedHash(bytes))
}

/// Returns 128 random bits as 32 hex digits.
pub(crate) fn random_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Random)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A [`CustomerRecord`] as stored: JSON with the hashes in hex.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCustomer {
    /// See [`CustomerRecord::customer_id`].
    customer_id: String,
    /// See [`CustomerRecord::mobile_e164`].
    mobile_e164: Option<String>,
    /// See [`CustomerRecord::date_of_birth`].
    date_of_birth: Option<String>,
    /// See [`CustomerRecord::postcode`].
    postcode: Option<String>,
    /// See [`CustomerRecord::iban_last_digits`].
    iban_last_digits: Option<String>,
}

/// Encodes a customer record as JSON.
pub(crate) fn encode_customer(record: &CustomerRecord) -> Result<String, StoreError> {
    let stored = StoredCustomer {
        customer_id: record.customer_id.clone(),
        mobile_e164: record.mobile_e164.clone(),
        date_of_birth: record.date_of_birth.as_ref().map(hash_to_hex),
        postcode: record.postcode.as_ref().map(hash_to_hex),
        iban_last_digits: record.iban_last_digits.as_ref().map(hash_to_hex),
    };
    serde_json::to_string(&stored).map_err(|error| StoreError::Malformed {
        what: "customer record",
        detail: error.to_string(),
    })
}

/// Decodes a customer record written by [`encode_customer`].
pub(crate) fn decode_customer(json: &[u8]) -> Result<CustomerRecord, StoreError> {
    let stored: StoredCustomer =
        serde_json::from_slice(json).map_err(|error| StoreError::Malformed {
            what: "customer record",
            detail: error.to_string(),
        })?;
    let optional_hash = |hex: Option<String>| hex.as_deref().map(hash_from_hex).transpose();

    Ok(CustomerRecord {
        customer_id: stored.customer_id,
        mobile_e164: stored.mobile_e164,
        date_of_birth: optional_hash(stored.date_of_birth)?,
        postcode: optional_hash(stored.postcode)?,
        iban_last_digits: optional_hash(stored.iban_last_digits)?,
    })
}

/// Encodes a list of customer ids as a JSON array.
pub(crate) fn encode_ids(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|error| StoreError::Malformed {
        what: "customer id list",
        detail: error.to_string(),
    })
}

/// Decodes a list written by [`encode_ids`].
pub(crate) fn decode_ids(json: &[u8]) -> Result<Vec<String>, StoreError> {
    serde_json::from_slice(json).map_err(|error| StoreError::Malformed {
        what: "customer id list",
        detail: error.to_string(),
    })
}

/// Encodes an audit record as JSON.
pub(crate) fn encode_audit(record: &super::AuditRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|error| StoreError::Malformed {
        what: "audit record",
        detail: error.to_string(),
    })
}

/// Decodes an audit record written by [`encode_audit`].
pub(crate) fn decode_audit(json: &[u8]) -> Result<super::AuditRecord, StoreError> {
    serde_json::from_slice(json).map_err(|error| StoreError::Malformed {
        what: "audit record",
        detail: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_round_trip() {
        let hash = KeyedHash([0xa5; 32]);
        let hex = hash_to_hex(&hash);
        assert_eq!(hex.len(), HASH_HEX_LEN);
        assert_eq!(&hex[..4], "a5a5");
        assert_eq!(hash_from_hex(&hex).unwrap(), hash);
    }

    #[test]
    fn malformed_hex_rejected() {
        for bad in ["", "zz", &"g".repeat(64), &"é".repeat(32), &"0".repeat(63)] {
            assert!(hash_from_hex(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn customer_round_trip() {
        let record = CustomerRecord {
            customer_id: "C-1".to_string(),
            mobile_e164: Some("+31612345601".to_string()),
            date_of_birth: Some(KeyedHash([1; 32])),
            postcode: None,
            iban_last_digits: Some(KeyedHash([3; 32])),
        };
        let json = encode_customer(&record).unwrap();
        assert_eq!(decode_customer(json.as_bytes()).unwrap(), record);
    }

    #[test]
    fn random_ids_differ() {
        let first = random_id().unwrap();
        let second = random_id().unwrap();
        assert_eq!(first.len(), 32);
        assert_ne!(first, second);
    }
}
