//! One-time codes sent by SMS: generation, the message text, and which
//! numbers may receive them.
//!
//! Pure functions without I/O. Storing the code (as a keyed hash with
//! [`super::HashPurpose::OneTimeCode`]), counting attempts and sending the SMS
//! happen elsewhere.

use std::fmt;
use std::time::Duration;

use phonenumber::country;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::media::prompts::Language;

/// Digits in a one-time code.
pub const CODE_DIGITS: usize = 6;

/// Number of distinct codes, 10^[`CODE_DIGITS`].
const CODE_SPACE: u32 = 1_000_000;

/// Largest multiple of [`CODE_SPACE`] that fits in a `u32` sample space
/// (2^32 = 4 294 967 296). Samples at or above it are drawn again, so that
/// `sample % CODE_SPACE` is uniform. Without this, codes below 967 296 would
/// be slightly more likely than the rest.
const ACCEPT_BELOW: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;

/// Maximum random samples drawn for one code. A sample is rejected with
/// probability 967 296 / 2^32 (about 0.02 %), so 16 rejections in a row mean
/// a broken random source, not bad luck.
const MAX_SAMPLES: usize = 16;

/// A one-time code of [`CODE_DIGITS`] decimal digits. `Debug` hides it and
/// there is no `Display`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// Returns the digits, for the SMS text and for hashing into the store.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares `entered` (the digits the caller typed) with this code in
    /// constant time, so that the comparison leaks no timing about which
    /// digits matched.
    #[must_use]
    pub fn matches(&self, entered: &str) -> bool {
        self.0.as_bytes().ct_eq(entered.as_bytes()).into()
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(******)")
    }
}

/// Error returned when no code could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    /// The operating system's random source failed or kept returning
    /// out-of-range samples. Nothing was sent; the call should continue
    /// without SMS verification.
    #[error("the system random source failed; no one-time code was generated")]
    RandomSourceFailed,
}

/// Generates a code of [`CODE_DIGITS`] digits, uniform over all 10^6 values,
/// from the operating system's CSPRNG (`ring::rand::SystemRandom`).
pub fn generate_code() -> Result<OneTimeCode, OtpError> {
    let rng = SystemRandom::new();
    code_from_samples(|| {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes)
            .map_err(|_| OtpError::RandomSourceFailed)?;
        Ok(u32::from_le_bytes(bytes))
    })
}

/// Turns uniform 32-bit samples into a code by rejection sampling: samples
/// at or above [`ACCEPT_BELOW`] are dropped and the next one is drawn.
fn code_from_samples(
    mut next_sample: impl FnMut() -> Result<u32, OtpError>,
) -> Result<OneTimeCode, OtpError> {
    for _ in 0..MAX_SAMPLES {
        let sample = next_sample()?;
        if sample < ACCEPT_BELOW {
            let value = sample % CODE_SPACE;
            return Ok(OneTimeCode(format!("{value:0width$}", width = CODE_DIGITS)));
        }
    }
    Err(OtpError::RandomSourceFailed)
}

/// Writes the SMS that carries `code`, in `language`.
///
/// `purpose` completes "your verification code for …", such as
/// "uw gesprek met Klantenservice" or "your call with Customer Service", in
/// the same language. `lifetime` is rounded up to whole minutes. The text
/// warns that we never ask for the code except in this call, against a
/// fraudster who phones the customer and asks them to read it out.
#[must_use]
pub fn sms_text(
    language: Language,
    code: &OneTimeCode,
    purpose: &str,
    lifetime: Duration,
) -> String {
    let minutes = lifetime.as_secs().div_ceil(60).max(1);
    let code = code.as_str();

    match language {
        Language::Nl => {
            let unit = if minutes == 1 { "minuut" } else { "minuten" };
            format!(
                "Uw verificatiecode voor {purpose} is {code}. De code is {minutes} {unit} geldig. \
                 Wij vragen nooit om deze code, behalve in dit telefoongesprek."
            )
        }
        Language::En => {
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            format!(
                "Your verification code for {purpose} is {code}. It is valid for {minutes} {unit}. \
                 We never ask for this code, except in this phone call."
            )
        }
    }
}

/// Returns the last two digits of a phone number, the only part of the
/// recipient that SMS logs show (`+31612345601` gives `01`). A number with
/// fewer digits gives what it has.
#[must_use]
pub fn last_two_digits(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().saturating_sub(2);
    digits.get(start..).unwrap_or_default().iter().collect()
}

/// Returns whether `e164` is a valid mobile number that may receive a code.
///
/// Fixed-line numbers (which includes the caller's landline), freephone
/// (0800), premium rate (0900), VoIP (085, 091), company numbers (088),
/// personal numbers (084, 087) and every other non-mobile type return false.
/// A number written without a country code is read in `region`.
///
/// NOTE: where a numbering plan cannot tell mobile from fixed line (the
/// `FixedLineOrMobile` type, as for +1), the number is refused, so customers
/// with such numbers cannot receive codes.
#[must_use]
pub fn is_mobile(e164: &str, region: country::Id) -> bool {
    // to_e164 checks the characters and length before the phonenumber parser
    // receives the input, because that parser has panicked on malformed strings.
    let Ok(normalised) = super::caller_id::to_e164(e164, region) else {
        return false;
    };
    let Ok(parsed) = phonenumber::parse(None, &normalised) else {
        return false;
    };
    parsed.number_type(&phonenumber::metadata::DATABASE) == phonenumber::Type::Mobile
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(digits: &str) -> OneTimeCode {
        OneTimeCode(digits.to_owned())
    }

    #[test]
    fn generated_code_has_six_digits() {
        for _ in 0..100 {
            let code = generate_code().unwrap();
            assert_eq!(code.as_str().len(), CODE_DIGITS);
            assert!(
                code.as_str().bytes().all(|b| b.is_ascii_digit()),
                "{}",
                code.as_str()
            );
        }
    }

    #[test]
    fn generated_codes_differ() {
        let codes: std::collections::HashSet<String> = (0..50)
            .map(|_| generate_code().unwrap().as_str().to_owned())
            .collect();
        // 50 draws from 10^6 values collide with probability about 0.1 %.
        assert!(codes.len() >= 49, "only {} distinct codes", codes.len());
    }

    #[test]
    fn sample_is_reduced_and_zero_padded() {
        let mut samples = [123u32].into_iter();
        let code = code_from_samples(|| Ok(samples.next().unwrap_or(0))).unwrap();
        assert_eq!(code.as_str(), "000123");
    }

    #[test]
    fn largest_accepted_sample_maps_to_999999() {
        let mut samples = [ACCEPT_BELOW - 1].into_iter();
        let code = code_from_samples(|| Ok(samples.next().unwrap_or(0))).unwrap();
        assert_eq!(code.as_str(), "999999");
    }

    #[test]
    fn biased_samples_are_redrawn() {
        let mut samples = [ACCEPT_BELOW, u32::MAX, 4_000_042].into_iter();
        let code = code_from_samples(|| Ok(samples.next().unwrap_or(0))).unwrap();
        assert_eq!(code.as_str(), "000042");
    }

    #[test]
    fn accept_bound_is_multiple_of_code_space() {
        assert_eq!(ACCEPT_BELOW, 4_294_000_000);
        assert_eq!(ACCEPT_BELOW % CODE_SPACE, 0);
        assert!(u64::from(ACCEPT_BELOW) + u64::from(CODE_SPACE) > u64::from(u32::MAX));
    }

    #[test]
    fn endless_rejection_is_an_error() {
        let result = code_from_samples(|| Ok(u32::MAX));
        assert_eq!(result, Err(OtpError::RandomSourceFailed));
    }

    #[test]
    fn random_source_failure_is_passed_on() {
        let result = code_from_samples(|| Err(OtpError::RandomSourceFailed));
        assert_eq!(result, Err(OtpError::RandomSourceFailed));
    }

    #[test]
    fn debug_hides_code() {
        assert_eq!(format!("{:?}", code("482913")), "OneTimeCode(******)");
    }

    #[test]
    fn matches_only_exact_code() {
        let code = code("482913");
        assert!(code.matches("482913"));
        assert!(!code.matches("482914"));
        assert!(!code.matches("48291"));
        assert!(!code.matches("4829130"));
        assert!(!code.matches(""));
    }

    #[test]
    fn dutch_text() {
        let text = sms_text(
            Language::Nl,
            &code("482913"),
            "uw gesprek met Klantenservice",
            Duration::from_secs(300),
        );
        assert_eq!(
            text,
            "Uw verificatiecode voor uw gesprek met Klantenservice is 482913. \
             De code is 5 minuten geldig. \
             Wij vragen nooit om deze code, behalve in dit telefoongesprek."
        );
    }

    #[test]
    fn english_text() {
        let text = sms_text(
            Language::En,
            &code("482913"),
            "your call with Customer Service",
            Duration::from_secs(300),
        );
        assert_eq!(
            text,
            "Your verification code for your call with Customer Service is 482913. \
             It is valid for 5 minutes. \
             We never ask for this code, except in this phone call."
        );
    }

    #[test]
    fn lifetime_rounds_up_to_minutes() {
        let nl = sms_text(Language::Nl, &code("000001"), "x", Duration::from_secs(61));
        assert!(nl.contains("2 minuten"), "{nl}");
        let one = sms_text(Language::Nl, &code("000001"), "x", Duration::from_secs(60));
        assert!(one.contains("1 minuut geldig"), "{one}");
        let en = sms_text(Language::En, &code("000001"), "x", Duration::from_secs(30));
        assert!(en.contains("1 minute."), "{en}");
    }

    #[test]
    fn text_fits_one_sms() {
        // A single GSM-7 SMS carries 160 characters. A longer text is sent,
        // and charged, as several concatenated parts.
        for language in Language::ALL {
            let purpose = match language {
                Language::Nl => "uw gesprek met Klantenservice",
                Language::En => "your call with Customer Service",
            };
            let text = sms_text(language, &code("482913"), purpose, Duration::from_secs(300));
            assert!(
                text.chars().count() <= 160,
                "{language}: {} characters",
                text.chars().count()
            );
        }
    }

    #[test]
    fn last_two_digits_of_numbers() {
        assert_eq!(last_two_digits("+31612345601"), "01");
        assert_eq!(last_two_digits("+3"), "3");
        assert_eq!(last_two_digits(""), "");
    }

    #[test]
    fn dutch_mobile_is_mobile() {
        assert!(is_mobile("+31612345678", country::Id::NL));
        assert!(is_mobile("0612345678", country::Id::NL));
    }

    #[test]
    fn non_mobile_numbers_are_refused() {
        let cases = [
            ("+31201234567", "Amsterdam landline"),
            ("+31800123456", "0800 freephone"),
            ("+31900123456", "0900 premium rate"),
            ("+31881234567", "088 company number"),
            ("+31851234567", "085 VoIP"),
        ];
        for (number, what) in cases {
            assert!(
                !is_mobile(number, country::Id::NL),
                "{what} {number} counted as mobile"
            );
        }
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for number in ["", "+", "06-abc", "  2 22#:", "+3161234567890123456"] {
            assert!(!is_mobile(number, country::Id::NL), "{number:?}");
        }
    }
}
