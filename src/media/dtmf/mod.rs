//! DTMF key presses received from the caller.
//!
//! A peer sends keys in one or more of three forms. [`rfc4733`] reads
//! telephone-event RTP packets, [`info`] reads SIP INFO bodies, and
//! [`inband`] finds the tones in the received audio, for peers whose SDP
//! offer has no telephone-event. Each detector reports one [`DtmfEvent`]
//! per key press, and [`merge::DigitMerger`] turns the reports of all three
//! into one stream in which each press appears once.
// NOTE: the per-call task in src/runtime still feeds only the RFC 4733
// receiver. INFO bodies, in-band detection and the merger are not wired in.

pub mod inband;
pub mod info;
pub mod merge;
pub mod rfc4733;

use std::fmt;
use std::time::Instant;

/// One key of a DTMF keypad: `0`-`9`, `*`, `#` or `A`-`D`.
///
/// Caller-typed digits are secrets (contract numbers, codes), so `Debug`
/// prints `Digit(redacted)`. Use [`Digit::as_char`] where the value itself
/// is needed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(char);

impl Digit {
    /// Returns the digit for a keypad character, accepting `a`-`d` as
    /// `A`-`D`, or `None` for any other character.
    pub fn from_char(key: char) -> Option<Digit> {
        let key = key.to_ascii_uppercase();
        match key {
            '0'..='9' | '*' | '#' | 'A'..='D' => Some(Digit(key)),
            _ => None,
        }
    }

    /// Returns the digit for an RFC 4733 event code: 0-9 are the digits, 10
    /// is `*`, 11 is `#`, 12-15 are `A`-`D`. Other codes, such as 16 for
    /// flash, are not keys and give `None`.
    pub fn from_event_code(code: u8) -> Option<Digit> {
        let key = match code {
            0..=9 => char::from(b'0' + code),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + (code - 12)),
            _ => return None,
        };
        Some(Digit(key))
    }

    /// Returns the RFC 4733 event code of this key.
    pub fn event_code(self) -> u8 {
        match self.0 {
            '*' => 10,
            '#' => 11,
            // from_char admits only ASCII, so the byte cast is exact.
            key @ 'A'..='D' => key as u8 - b'A' + 12,
            key => key as u8 - b'0',
        }
    }

    /// Returns the keypad character (`0`-`9`, `*`, `#`, `A`-`D`).
    pub fn as_char(self) -> char {
        self.0
    }

    /// Returns whether this is one of the ten decimal digits.
    pub fn is_decimal(self) -> bool {
        self.0.is_ascii_digit()
    }
}

impl fmt::Debug for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digit(redacted)")
    }
}

/// A key press reported by a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The key pressed.
    pub digit: Digit,
    /// When the key press began, from times passed in by the driver: the
    /// arrival of the first RFC 4733 packet or of the INFO request, or the
    /// estimated start of an in-band tone. The call flow measures
    /// inter-digit timeouts from it.
    pub received_at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_event_codes_round_trip() {
        for code in 0..=15u8 {
            let digit = Digit::from_event_code(code).expect("codes 0-15 are keys");
            assert_eq!(digit.event_code(), code);
            assert_eq!(Digit::from_char(digit.as_char()), Some(digit));
        }
        assert_eq!(Digit::from_event_code(10).map(Digit::as_char), Some('*'));
        assert_eq!(Digit::from_event_code(11).map(Digit::as_char), Some('#'));
        assert_eq!(Digit::from_event_code(15).map(Digit::as_char), Some('D'));
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_event_code(255), None);
    }

    #[test]
    fn digit_from_char_rejects_others() {
        assert_eq!(Digit::from_char('a').map(Digit::as_char), Some('A'));
        assert_eq!(Digit::from_char('E'), None);
        assert_eq!(Digit::from_char(' '), None);
        assert_eq!(Digit::from_char('٣'), None);
    }

    #[test]
    fn digit_debug_is_redacted() {
        let digit = Digit::from_char('7').expect("7 is a key");
        assert!(!format!("{digit:?}").contains('7'));
    }
}
