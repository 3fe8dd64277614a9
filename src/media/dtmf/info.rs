//! Key presses carried in SIP INFO bodies.
//!
//! Some PBXs and SBCs relay DTMF as in-dialog INFO requests instead of RTP.
//! Two body formats are common, and neither has an RFC:
//! - `application/dtmf-relay`, introduced by Cisco: lines `Signal=5` and
//!   `Duration=160` (milliseconds), in any case, with any spacing around
//!   `=` and with CRLF, LF or CR line ends.
//! - `application/dtmf`: the body is the key alone, for example `5`.
//!
//! The body is caller input and may hold a contract number, so errors
//! describe where it is malformed but never quote it.

use std::time::{Duration, Instant};

use crate::media::dtmf::{Digit, DtmfEvent};

/// Content type of Cisco-style `Signal=`/`Duration=` bodies.
pub const DTMF_RELAY_CONTENT_TYPE: &str = "application/dtmf-relay";

/// Content type of bodies that contain only the key.
pub const DTMF_CONTENT_TYPE: &str = "application/dtmf";

/// Largest INFO body parsed, in bytes. A key press needs about 30 bytes, so
/// a longer body is not DTMF from a working peer.
pub const MAX_INFO_BODY_BYTES: usize = 512;

/// Signal values that report a hook flash rather than a key. Some gateways
/// send `!` and others the RFC 4733 event code 16.
const FLASH_SIGNALS: [&str; 2] = ["!", "16"];

/// A key press read from an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// The key pressed.
    pub digit: Digit,
    /// How long the key was held, from `Duration=`; `None` when the body
    /// has no duration (always for `application/dtmf`).
    pub duration: Option<Duration>,
}

impl InfoDigit {
    /// Converts this key press into a [`DtmfEvent`] for the
    /// [`super::merge::DigitMerger`], dated at the arrival of the INFO
    /// request.
    pub fn into_event(self, received_at: Instant) -> DtmfEvent {
        DtmfEvent {
            digit: self.digit,
            received_at,
        }
    }
}

/// Errors from parsing an INFO body that claims to carry DTMF. The SIP
/// layer has already responded 200, so the caller of [`parse_info`] logs the
/// error and drops the body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InfoError {
    /// The body is longer than [`MAX_INFO_BODY_BYTES`].
    #[error(
        "DTMF INFO body of {len} bytes exceeds the maximum of {MAX_INFO_BODY_BYTES}; ignore it"
    )]
    BodyTooLarge {
        /// Body length in bytes.
        len: usize,
    },

    /// The body is not UTF-8.
    #[error("DTMF INFO body is not valid UTF-8; ignore it")]
    NotUtf8,

    /// A line of a `dtmf-relay` body has no `=`.
    #[error("DTMF relay body line {line} has no '='; expected Signal=KEY or Duration=MS")]
    InvalidLine {
        /// Line number, counting from 1.
        line: usize,
    },

    /// The `dtmf-relay` body has no `Signal` line.
    #[error("DTMF relay body has no Signal line; the peer sent no key")]
    MissingSignal,

    /// The `dtmf-relay` body has two `Signal` lines.
    #[error("DTMF relay body has more than one Signal line (line {line}); ignore it")]
    DuplicateSignal {
        /// Line number of the second `Signal`, counting from 1.
        line: usize,
    },

    /// The signal, or the whole `application/dtmf` body, is not one key.
    /// The value itself is not kept, because it may be caller digits.
    #[error("DTMF signal of {len} characters is not a keypad key (0-9, *, #, A-D, 10 or 11)")]
    InvalidSignal {
        /// Length of the value in characters.
        len: usize,
    },

    /// `Duration` is not a whole number of milliseconds.
    #[error("DTMF relay Duration on line {line} is not a whole number of milliseconds")]
    InvalidDuration {
        /// Line number, counting from 1.
        line: usize,
    },
}

/// Parses the body of an in-dialog INFO request and returns the key it
/// carries.
///
/// `content_type` is the request's Content-Type header value, parameters
/// included. Returns `Ok(None)` for any other content type (the body is not
/// DTMF) and for a hook flash, which is no key. Returns an error for a DTMF
/// body that is malformed. Never panics.
pub fn parse_info(content_type: Option<&str>, body: &[u8]) -> Result<Option<InfoDigit>, InfoError> {
    let Some(media_type) = content_type.map(media_type) else {
        return Ok(None);
    };
    let is_relay = media_type.eq_ignore_ascii_case(DTMF_RELAY_CONTENT_TYPE);
    let is_plain = media_type.eq_ignore_ascii_case(DTMF_CONTENT_TYPE);
    if !is_relay && !is_plain {
        return Ok(None);
    }

    if body.len() > MAX_INFO_BODY_BYTES {
        return Err(InfoError::BodyTooLarge { len: body.len() });
    }
    let text = std::str::from_utf8(body).map_err(|_| InfoError::NotUtf8)?;

    if is_relay {
        parse_dtmf_relay(text)
    } else {
        let digit = parse_signal(text.trim())?;
        Ok(digit.map(|digit| InfoDigit {
            digit,
            duration: None,
        }))
    }
}

/// Returns the media type of a Content-Type value: the part before any
/// parameters, without surrounding whitespace.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Parses a `Signal=`/`Duration=` body. Lines with other names are ignored,
/// because some gateways add their own.
fn parse_dtmf_relay(text: &str) -> Result<Option<InfoDigit>, InfoError> {
    let mut signal = None;
    let mut duration = None;

    // Lines may end in CRLF, LF or a bare CR.
    let text = text.replace("\r\n", "\n");
    for (index, line) in text.split(['\r', '\n']).enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }

        let Some((name, value)) = line.split_once('=') else {
            return Err(InfoError::InvalidLine { line: line_number });
        };
        let name = name.trim();
        let value = value.trim();

        if name.eq_ignore_ascii_case("signal") {
            if signal.is_some() {
                return Err(InfoError::DuplicateSignal { line: line_number });
            }
            signal = Some(value);
        } else if name.eq_ignore_ascii_case("duration") {
            let millis: u64 = value
                .parse()
                .map_err(|_| InfoError::InvalidDuration { line: line_number })?;
            duration = Some(Duration::from_millis(millis));
        }
    }

    let signal = signal.ok_or(InfoError::MissingSignal)?;
    let digit = parse_signal(signal)?;
    Ok(digit.map(|digit| InfoDigit { digit, duration }))
}

/// Reads one signal value: a keypad character, or 10 and 11 for `*` and
/// `#` as some gateways send them. Returns `Ok(None)` for a hook flash.
fn parse_signal(value: &str) -> Result<Option<Digit>, InfoError> {
    if FLASH_SIGNALS.contains(&value) {
        return Ok(None);
    }

    let digit = match value {
        "10" => Digit::from_char('*'),
        "11" => Digit::from_char('#'),
        _ => {
            let mut chars = value.chars();
            match (chars.next(), chars.next()) {
                (Some(key), None) => Digit::from_char(key),
                _ => None,
            }
        }
    };

    match digit {
        Some(digit) => Ok(Some(digit)),
        None => Err(InfoError::InvalidSignal {
            len: value.chars().count(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(body: &str) -> Result<Option<InfoDigit>, InfoError> {
        parse_info(Some(DTMF_RELAY_CONTENT_TYPE), body.as_bytes())
    }

    fn key(result: Result<Option<InfoDigit>, InfoError>) -> Option<char> {
        result
            .expect("valid body")
            .map(|digit| digit.digit.as_char())
    }

    #[test]
    fn relay_signal_and_duration() {
        let parsed = relay("Signal=5\r\nDuration=160\r\n")
            .expect("valid body")
            .expect("a key");
        assert_eq!(parsed.digit.as_char(), '5');
        assert_eq!(parsed.duration, Some(Duration::from_millis(160)));
    }

    #[test]
    fn relay_spacing_case_and_line_ends() {
        let bodies = [
            "Signal=7\r\nDuration=250\r\n",
            "signal = 7\nduration = 250\n",
            "SIGNAL=7\rDURATION=250",
            "  Signal =  7  \r\n\r\n Duration= 250",
            "Duration=250\r\nSignal=7",
            "Signal=7\r\nDuration=250\r\nX-Vendor=abc\r\n",
        ];
        for body in bodies {
            let parsed = relay(body)
                .unwrap_or_else(|e| panic!("{body:?}: {e}"))
                .unwrap_or_else(|| panic!("{body:?}: no key"));
            assert_eq!(parsed.digit.as_char(), '7', "{body:?}");
            assert_eq!(
                parsed.duration,
                Some(Duration::from_millis(250)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn relay_every_key() {
        let cases = [
            ("0", '0'),
            ("9", '9'),
            ("*", '*'),
            ("#", '#'),
            ("10", '*'),
            ("11", '#'),
            ("A", 'A'),
            ("b", 'B'),
            ("C", 'C'),
            ("d", 'D'),
        ];
        for (signal, expected) in cases {
            let body = format!("Signal={signal}\r\nDuration=100\r\n");
            assert_eq!(key(relay(&body)), Some(expected), "Signal={signal}");
        }
    }

    #[test]
    fn info_digit_into_event() {
        let parsed = relay("Signal=4").expect("valid body").expect("a key");
        let now = Instant::now();
        let event = parsed.into_event(now);
        assert_eq!(event.digit.as_char(), '4');
        assert_eq!(event.received_at, now);
    }

    #[test]
    fn relay_without_duration() {
        let parsed = relay("Signal=#").expect("valid body").expect("a key");
        assert_eq!(parsed.digit.as_char(), '#');
        assert_eq!(parsed.duration, None);
    }

    #[test]
    fn relay_flash_is_no_key() {
        assert_eq!(relay("Signal=!\r\nDuration=500\r\n"), Ok(None));
        assert_eq!(relay("Signal=16\r\nDuration=500\r\n"), Ok(None));
    }

    #[test]
    fn relay_garbage_is_error() {
        assert_eq!(relay(""), Err(InfoError::MissingSignal));
        assert_eq!(relay("Duration=160"), Err(InfoError::MissingSignal));
        assert_eq!(relay("hello"), Err(InfoError::InvalidLine { line: 1 }));
        assert_eq!(
            relay("Signal=1\r\nSignal=2"),
            Err(InfoError::DuplicateSignal { line: 2 })
        );
        assert_eq!(relay("Signal=12"), Err(InfoError::InvalidSignal { len: 2 }));
        assert_eq!(relay("Signal=E"), Err(InfoError::InvalidSignal { len: 1 }));
        assert_eq!(relay("Signal="), Err(InfoError::InvalidSignal { len: 0 }));
        assert_eq!(
            relay("Signal=12345678"),
            Err(InfoError::InvalidSignal { len: 8 })
        );
        assert_eq!(
            relay("Signal=1\nDuration=-5"),
            Err(InfoError::InvalidDuration { line: 2 })
        );
        assert_eq!(
            relay("Signal=1\nDuration=99999999999999999999999"),
            Err(InfoError::InvalidDuration { line: 2 })
        );
        assert_eq!(
            parse_info(Some(DTMF_RELAY_CONTENT_TYPE), &[0xFF, 0x3D, 0x31]),
            Err(InfoError::NotUtf8)
        );
    }

    #[test]
    fn error_messages_do_not_quote_digits() {
        let error = relay("Signal=87654321").expect_err("not one key");
        assert!(!error.to_string().contains("87654321"), "{error}");
        let error = parse_info(Some(DTMF_CONTENT_TYPE), b"4321").expect_err("not one key");
        assert!(!error.to_string().contains("4321"), "{error}");
    }

    #[test]
    fn oversized_body_is_error() {
        let body = format!("Signal=1\r\n{}", "X=1\r\n".repeat(200));
        assert_eq!(
            relay(&body),
            Err(InfoError::BodyTooLarge { len: body.len() })
        );
    }

    #[test]
    fn plain_dtmf_body() {
        let dtmf = |body: &[u8]| parse_info(Some(DTMF_CONTENT_TYPE), body);
        assert_eq!(key(dtmf(b"5")), Some('5'));
        assert_eq!(key(dtmf(b"#\r\n")), Some('#'));
        assert_eq!(key(dtmf(b" a ")), Some('A'));
        assert_eq!(key(dtmf(b"11")), Some('#'));
        assert_eq!(
            dtmf(b"5").expect("valid body").expect("a key").duration,
            None
        );
        assert_eq!(dtmf(b""), Err(InfoError::InvalidSignal { len: 0 }));
        assert_eq!(dtmf(b"55"), Err(InfoError::InvalidSignal { len: 2 }));
        assert_eq!(dtmf(b"Signal=5"), Err(InfoError::InvalidSignal { len: 8 }));
    }

    #[test]
    fn content_type_parameters_and_case() {
        let body = b"Signal=3\r\nDuration=100\r\n";
        for content_type in [
            "application/dtmf-relay",
            "Application/DTMF-Relay",
            " application/dtmf-relay ; charset=utf-8",
        ] {
            assert_eq!(
                key(parse_info(Some(content_type), body)),
                Some('3'),
                "{content_type}"
            );
        }
    }

    #[test]
    fn other_content_types_are_not_dtmf() {
        let body = b"Signal=3\r\nDuration=100\r\n";
        assert_eq!(parse_info(None, body), Ok(None));
        assert_eq!(parse_info(Some("application/sdp"), body), Ok(None));
        assert_eq!(parse_info(Some("application/dtmf-relayx"), body), Ok(None));
        assert_eq!(parse_info(Some(""), body), Ok(None));
        assert_eq!(parse_info(Some("text/plain"), &[0xFF; 4096]), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every body of up to two bytes, and bodies built from the
        // characters that matter to the parser.
        for first in 0..=u8::MAX {
            for second in 0..=u8::MAX {
                let body = [first, second];
                let _ = parse_info(Some(DTMF_RELAY_CONTENT_TYPE), &body);
                let _ = parse_info(Some(DTMF_CONTENT_TYPE), &body);
            }
        }
        let alphabet = ["Signal", "Duration", "=", "\r", "\n", " ", "1", "é", "#"];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let body = format!("{a}{b}{c}{a}");
                    let _ = relay(&body);
                }
            }
        }
    }
}
