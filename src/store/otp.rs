//! One-time code checking for the stores that keep a code as one entry
//! (memory and embedded). The Redis store runs the same rules in a Lua
//! script.

use serde::{Deserialize, Serialize};

use super::OtpCheck;
use crate::verify::keyed_hash::KeyedHash;

/// The stored one-time code of one customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OtpEntry {
    /// Keyed hash of the code.
    pub(crate) code: [u8; 32],
    /// End of the code's lifetime, Unix milliseconds.
    pub(crate) expires_at_ms: u64,
    /// Entries left; a wrong code uses one up.
    pub(crate) remaining: u32,
}

/// Action the store takes on the entry after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterCheck {
    /// Write the (possibly changed) entry back.
    Keep,
    /// Delete the entry.
    Delete,
}

/// Checks `code` against `entry` at `now_ms` and updates `entry`. The hashes
/// are compared in constant time by [`KeyedHash`]'s equality.
pub(crate) fn check(entry: &mut OtpEntry, code: &KeyedHash, now_ms: u64) -> (OtpCheck, AfterCheck) {
    if entry.expires_at_ms <= now_ms {
        return (OtpCheck::Expired, AfterCheck::Delete);
    }
    if entry.remaining == 0 {
        return (OtpCheck::Exhausted, AfterCheck::Keep);
    }
    if KeyedHash(entry.code) == *code {
        return (OtpCheck::Valid, AfterCheck::Delete);
    }

    entry.remaining -= 1;
    (
        OtpCheck::Invalid {
            remaining: entry.remaining,
        },
        AfterCheck::Keep,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(remaining: u32) -> OtpEntry {
        OtpEntry {
            code: [7; 32],
            expires_at_ms: 1_000,
            remaining,
        }
    }

    #[test]
    fn right_code_valid_and_deleted() {
        let mut entry = entry(3);
        let result = check(&mut entry, &KeyedHash([7; 32]), 999);
        assert_eq!(result, (OtpCheck::Valid, AfterCheck::Delete));
    }

    #[test]
    fn wrong_code_uses_entry() {
        let mut entry = entry(2);
        let first = check(&mut entry, &KeyedHash([8; 32]), 10);
        assert_eq!(
            first,
            (OtpCheck::Invalid { remaining: 1 }, AfterCheck::Keep)
        );
        let second = check(&mut entry, &KeyedHash([8; 32]), 11);
        assert_eq!(
            second,
            (OtpCheck::Invalid { remaining: 0 }, AfterCheck::Keep)
        );
        let right_too_late = check(&mut entry, &KeyedHash([7; 32]), 12);
        assert_eq!(right_too_late, (OtpCheck::Exhausted, AfterCheck::Keep));
    }

    #[test]
    fn expired_at_lifetime_end() {
        let mut entry = entry(3);
        let result = check(&mut entry, &KeyedHash([7; 32]), 1_000);
        assert_eq!(result, (OtpCheck::Expired, AfterCheck::Delete));
    }
}
