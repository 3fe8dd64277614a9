//! Keyed hashes (HMAC-SHA-256 with a secret pepper) of knowledge factors.
//!
//! Contract numbers, phone numbers and the other knowledge factors are
//! stored and compared only as keyed hashes. Without the pepper, a leaked
//! store cannot be reversed by hashing every possible value. A plain SHA-256
//! would allow that, because the input spaces are small: about 10^8 for an
//! 8-digit contract number and about 45 000 for a date of birth.

use std::fmt;
use std::hash::{Hash, Hasher};

use ring::hmac;
use subtle::ConstantTimeEq;

/// Minimum pepper length in bytes. HMAC-SHA-256 keys shorter than the
/// 32-byte hash output weaken the construction (RFC 2104, section 3).
pub const MIN_PEPPER_LEN: usize = 32;

/// Field a value belongs to, mixed into the hash for domain separation: the
/// same digits entered as a contract number and as a phone number give
/// different hashes, so one cannot be matched against the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashPurpose {
    /// A contract or customer number, digits only.
    ContractNumber,
    /// A phone number in E.164 form (`+31612345601`).
    PhoneNumber,
    /// A customer id, hashed into the pseudonymous `sub` claim of a token.
    CustomerReference,
    /// A date of birth as DDMMYYYY.
    DateOfBirth,
    /// Postcode digits and house number as `1234:12`.
    Postcode,
    /// The last digits of an IBAN (`factors.iban_last_digits` of them).
    IbanLastDigits,
    /// A one-time code sent by SMS, digits only.
    OneTimeCode,
}

impl HashPurpose {
    /// Label hashed in front of the value. Versioned so that a future change
    /// of normalisation can live next to the old hashes.
    fn label(self) -> &'static [u8] {
        match self {
            HashPurpose::ContractNumber => b"ivr-verify/contract-number/v1",
            HashPurpose::PhoneNumber => b"ivr-verify/phone-number/v1",
            HashPurpose::CustomerReference => b"ivr-verify/customer-reference/v1",
            HashPurpose::DateOfBirth => b"ivr-verify/date-of-birth/v1",
            HashPurpose::Postcode => b"ivr-verify/postcode/v1",
            HashPurpose::IbanLastDigits => b"ivr-verify/iban-last-digits/v1",
            HashPurpose::OneTimeCode => b"ivr-verify/one-time-code/v1",
        }
    }
}

/// Error returned when a keyed hasher cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyedHashError {
    /// The pepper is shorter than [`MIN_PEPPER_LEN`].
    #[error("pepper is {actual} bytes, but at least {MIN_PEPPER_LEN} are required; generate a new pepper file")]
    PepperTooShort {
        /// Length of the rejected pepper in bytes.
        actual: usize,
    },
}

/// Computes keyed hashes with one secret pepper.
pub struct KeyedHasher {
    /// HMAC-SHA-256 key made from the pepper. The pepper itself is not kept.
    key: hmac::Key,
}

impl KeyedHasher {
    /// Creates a hasher from the pepper, which must be at least
    /// [`MIN_PEPPER_LEN`] bytes long.
    pub fn new(pepper: &[u8]) -> Result<KeyedHasher, KeyedHashError> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(KeyedHashError::PepperTooShort {
                actual: pepper.len(),
            });
        }
        Ok(KeyedHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        })
    }

    /// Hashes `value` for `purpose`. The caller normalises the value first
    /// (digits only for contract numbers, E.164 for phone numbers), because
    /// the hash compares bytes.
    #[must_use]
    pub fn hash(&self, purpose: HashPurpose, value: &str) -> KeyedHash {
        let mut context = hmac::Context::with_key(&self.key);

        // The NUL byte separates label and value. Labels contain no NUL, so
        // no (label, value) pair can produce the input of another pair.
        context.update(purpose.label());
        context.update(&[0]);
        context.update(value.as_bytes());

        let tag = context.sign();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        KeyedHash(bytes)
    }
}

impl fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHasher { .. }")
    }
}

/// An HMAC-SHA-256 output. Equality is constant-time, and `Debug` prints only
/// the first four bytes, enough to tell hashes apart in a test failure.
#[derive(Clone, Copy)]
pub struct KeyedHash(pub [u8; 32]);

impl KeyedHash {
    /// Returns the hash as 64 lowercase hex digits, for store keys. The
    /// hash reveals nothing of the value without the pepper.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Returns the hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyedHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for KeyedHash {}

impl Hash for KeyedHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, ..] = self.0;
        write!(f, "KeyedHash({a:02x}{b:02x}{c:02x}{d:02x}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(fill: u8) -> KeyedHasher {
        KeyedHasher::new(&[fill; 32]).unwrap()
    }

    #[test]
    fn hash_is_deterministic() {
        let hasher = hasher(7);
        let first = hasher.hash(HashPurpose::ContractNumber, "12345678");
        let second = hasher.hash(HashPurpose::ContractNumber, "12345678");
        assert_eq!(first, second);
    }

    #[test]
    fn hash_matches_hmac_sha256_of_label_and_value() {
        let pepper = [9u8; 32];
        let hasher = KeyedHasher::new(&pepper).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &pepper);
        let expected = hmac::sign(&key, b"ivr-verify/contract-number/v1\x0012345678");
        let actual = hasher.hash(HashPurpose::ContractNumber, "12345678");
        assert_eq!(&actual.0[..], expected.as_ref());
    }

    #[test]
    fn purpose_separates_domains() {
        let hasher = hasher(7);
        let contract = hasher.hash(HashPurpose::ContractNumber, "31612345601");
        let phone = hasher.hash(HashPurpose::PhoneNumber, "31612345601");
        assert_ne!(contract, phone);
    }

    #[test]
    fn every_purpose_has_own_label() {
        let purposes = [
            HashPurpose::ContractNumber,
            HashPurpose::PhoneNumber,
            HashPurpose::CustomerReference,
            HashPurpose::DateOfBirth,
            HashPurpose::Postcode,
            HashPurpose::IbanLastDigits,
            HashPurpose::OneTimeCode,
        ];
        let hasher = hasher(7);
        let hashes: std::collections::HashSet<KeyedHash> = purposes
            .iter()
            .map(|purpose| hasher.hash(*purpose, "1234"))
            .collect();
        assert_eq!(hashes.len(), purposes.len());
    }

    #[test]
    fn pepper_changes_hash() {
        let a = hasher(1).hash(HashPurpose::ContractNumber, "12345678");
        let b = hasher(2).hash(HashPurpose::ContractNumber, "12345678");
        assert_ne!(a, b);
    }

    #[test]
    fn different_values_differ() {
        let hasher = hasher(7);
        let a = hasher.hash(HashPurpose::ContractNumber, "12345678");
        let b = hasher.hash(HashPurpose::ContractNumber, "12345679");
        assert_ne!(a, b);
    }

    #[test]
    fn short_pepper_rejected() {
        let result = KeyedHasher::new(&[0u8; 31]);
        assert!(matches!(
            result,
            Err(KeyedHashError::PepperTooShort { actual: 31 })
        ));
    }

    #[test]
    fn debug_prints_prefix_only() {
        let hash = KeyedHash([0xab; 32]);
        let printed = format!("{hash:?}");
        assert_eq!(printed, "KeyedHash(abababab…)");
    }

    #[test]
    fn hash_usable_as_map_key() {
        let hasher = hasher(3);
        let mut map = std::collections::HashMap::new();
        map.insert(hasher.hash(HashPurpose::PhoneNumber, "+31612345601"), 1);
        let found = map.get(&hasher.hash(HashPurpose::PhoneNumber, "+31612345601"));
        assert_eq!(found, Some(&1));
    }
}
