//! How long the entry for each factor may be.
//!
//! The flow checks only lengths and that every key is a digit, so it knows
//! when an entry is complete. Formats and check digits are checked by the
//! driver before anything is compared.

use super::FlowConfig;
use crate::verify::policy::Factor;

/// Digits of a date of birth, DDMMYYYY.
const DATE_OF_BIRTH_DIGITS: usize = 8;

/// Four postcode digits plus a house number of one to five digits.
const POSTCODE_MIN_DIGITS: usize = 5;

/// Four postcode digits plus the longest house number (five digits).
const POSTCODE_MAX_DIGITS: usize = 9;

/// Digits of a one-time code sent by SMS.
const ONE_TIME_CODE_DIGITS: usize = 6;

/// The lengths one factor's entry may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpec {
    /// Shortest entry worth checking.
    pub min_digits: usize,
    /// Longest entry; reaching it ends the entry without `#`.
    pub max_digits: usize,
}

impl EntrySpec {
    /// Returns the lengths for `factor` under `config`; `iban_last_digits`
    /// is how many trailing IBAN digits are asked.
    pub fn for_factor(factor: Factor, config: &FlowConfig, iban_last_digits: usize) -> EntrySpec {
        let (min_digits, max_digits) = match factor {
            Factor::ContractNumber => (config.contract_min_digits, config.contract_max_digits),
            Factor::DateOfBirth => (DATE_OF_BIRTH_DIGITS, DATE_OF_BIRTH_DIGITS),
            Factor::Postcode => (POSTCODE_MIN_DIGITS, POSTCODE_MAX_DIGITS),
            Factor::IbanLastDigits => (iban_last_digits, iban_last_digits),
            Factor::SmsOtp => (ONE_TIME_CODE_DIGITS, ONE_TIME_CODE_DIGITS),
            // Never typed; an empty spec rejects every entry.
            Factor::CallerIdMatch => (1, 0),
        };
        EntrySpec {
            min_digits,
            max_digits,
        }
    }

    /// Returns whether `entry` has reached the maximum length, so the flow
    /// submits it without waiting for `#`.
    pub fn is_complete(&self, entry: &str) -> bool {
        entry.len() >= self.max_digits
    }

    /// Returns whether `entry` is worth checking: only digits, and a length
    /// within the bounds.
    pub fn accepts(&self, entry: &str) -> bool {
        (self.min_digits..=self.max_digits).contains(&entry.len())
            && entry.bytes().all(|byte| byte.is_ascii_digit())
    }
}
