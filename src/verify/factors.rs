//! Entry formats of the knowledge factors a caller types on the keypad.
//!
//! [`normalise_entry`] checks an entry's format before it is hashed and
//! compared, so that a typo (a digit too few, a transposed check digit, the
//! 31st of February) is rejected without costing the caller an attempt or
//! counting towards a lockout. Its output is the exact string that is hashed,
//! and the customers file goes through the same function, so a value typed
//! by a caller and the value loaded from the file hash alike.
//!
//! Everything here is pure: "today" is a parameter, and no function reads a
//! clock.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::{SystemTime, UNIX_EPOCH};

use super::policy::Factor;

/// Maximum `factors.iban_last_digits`. Every further digit brings the entry
/// closer to the full account number, which the service never asks for.
pub const MAX_IBAN_LAST_DIGITS: usize = 4;

/// Digits of a one-time code. `verify::otp` generates codes of this length.
pub const OTP_DIGITS: usize = 6;

/// Digits of a Dutch postcode, without its two letters.
const POSTCODE_DIGITS: usize = 4;

/// Lowest Dutch postcode. Postcodes start at 1000; a leading zero is a typo.
const MIN_POSTCODE: u32 = 1000;

/// Maximum digits of a house number. The highest Dutch house numbers have
/// five digits.
const MAX_HOUSE_NUMBER_DIGITS: usize = 5;

/// Earliest accepted year of birth. An earlier year is a typo.
const MIN_BIRTH_YEAR: u16 = 1900;

/// Check digit scheme of contract numbers (`flow.contract_check_digit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckDigit {
    /// Contract numbers carry no check digit; only the length is checked.
    None,
    /// The last digit is a Luhn (mod 10) check digit, as on payment cards.
    Luhn,
    /// The Dutch 11-test ("elfproef"): with weights n, n-1, …, 1 from the
    /// left over an n-digit number, the weighted digit sum is a multiple of
    /// 11. This is the test of the old 9- and 10-digit Dutch bank account
    /// numbers, generalised to any length.
    Elfproef,
}

impl CheckDigit {
    /// Returns the config name (`none`, `luhn`, `elfproef`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CheckDigit::None => "none",
            CheckDigit::Luhn => "luhn",
            CheckDigit::Elfproef => "elfproef",
        }
    }

    /// Parses a config name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<CheckDigit> {
        match name {
            "none" => Some(CheckDigit::None),
            "luhn" => Some(CheckDigit::Luhn),
            "elfproef" => Some(CheckDigit::Elfproef),
            _ => None,
        }
    }

    /// Returns whether the ASCII digit string `digits` passes this check.
    /// Always true for [`CheckDigit::None`].
    #[must_use]
    pub fn accepts(self, digits: &str) -> bool {
        match self {
            CheckDigit::None => true,
            CheckDigit::Luhn => luhn_valid(digits),
            CheckDigit::Elfproef => elfproef_valid(digits),
        }
    }
}

/// Settings of the entry formats, from `[factors]` and `[flow]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorSettings {
    /// Allowed length of a contract number, from `flow.contract_min_digits`
    /// and `flow.contract_max_digits`.
    pub contract_digits: RangeInclusive<usize>,
    /// Check digit of contract numbers (`flow.contract_check_digit`).
    pub contract_check_digit: CheckDigit,
    /// How many trailing IBAN digits are asked and stored
    /// (`factors.iban_last_digits`), 1 to [`MAX_IBAN_LAST_DIGITS`].
    pub iban_last_digits: usize,
}

/// A calendar date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year, such as 1984.
    year: u16,
    /// Month, 1 to 12.
    month: u8,
    /// Day of the month, 1 to the length of the month.
    day: u8,
}

impl Date {
    /// Creates a date, or returns `None` when the day does not exist (such as
    /// 31 April or 29 February 2023).
    #[must_use]
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Returns the UTC date of `time`. Times before 1970 give 1 January 1970.
    ///
    /// NOTE: the date is UTC, so between midnight and 01:00 or 02:00 Dutch
    /// time it is still yesterday. That only matters for a date of birth of
    /// today, which no caller has.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Date {
        let seconds = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
        civil_from_days(days)
    }

    /// Returns the year.
    #[must_use]
    pub fn year(self) -> u16 {
        self.year
    }

    /// Returns the month, 1 to 12.
    #[must_use]
    pub fn month(self) -> u8 {
        self.month
    }

    /// Returns the day of the month.
    #[must_use]
    pub fn day(self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Rejection of an entry before any lookup. Messages never contain the
/// entered digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is empty.
    #[error("the entry is empty")]
    Empty,
    /// The entry contains something other than the digits 0 to 9.
    #[error("the entry must contain only the digits 0 to 9")]
    NotDigits,
    /// The factor is never typed by the caller.
    #[error("{factor} is not entered on the keypad")]
    NotEntered {
        /// The factor.
        factor: Factor,
    },
    /// A contract number of the wrong length.
    #[error("a contract number has {min} to {max} digits, but the entry has {actual}")]
    ContractLength {
        /// Digits entered.
        actual: usize,
        /// `flow.contract_min_digits`.
        min: usize,
        /// `flow.contract_max_digits`.
        max: usize,
    },
    /// A contract number whose check digit is wrong.
    #[error("the contract number fails its {scheme} check digit")]
    CheckDigit {
        /// The scheme's config name.
        scheme: &'static str,
    },
    /// A date of birth that is not 8 digits.
    #[error("a date of birth has 8 digits (DDMMYYYY), but the entry has {actual}")]
    DateLength {
        /// Digits entered.
        actual: usize,
    },
    /// A date of birth that does not exist in the calendar.
    #[error("the date of birth is not a calendar date; enter it as DDMMYYYY")]
    DateInvalid,
    /// A date of birth after today.
    #[error("the date of birth is in the future")]
    DateInFuture,
    /// A date of birth before [`MIN_BIRTH_YEAR`].
    #[error("the year of birth is before {MIN_BIRTH_YEAR}")]
    DateTooEarly,
    /// A postcode and house number entry of the wrong length.
    #[error("enter the 4 digits of the postcode and then the house number of 1 to {MAX_HOUSE_NUMBER_DIGITS} digits; the entry has {actual} digits")]
    PostcodeLength {
        /// Digits entered.
        actual: usize,
    },
    /// Postcode digits below 1000.
    #[error("the postcode digits are below {MIN_POSTCODE}; Dutch postcodes run from 1000 to 9999")]
    PostcodeRange,
    /// A house number of zero.
    #[error("the house number is 0")]
    HouseNumberZero,
    /// IBAN digits of the wrong length.
    #[error("enter exactly {expected} trailing IBAN digits; the entry has {actual}")]
    IbanDigitsLength {
        /// Digits entered.
        actual: usize,
        /// `factors.iban_last_digits`.
        expected: usize,
    },
    /// A one-time code of the wrong length.
    #[error("a one-time code has {OTP_DIGITS} digits, but the entry has {actual}")]
    OtpLength {
        /// Digits entered.
        actual: usize,
    },
}

/// Checks and normalises the digits a caller typed for `factor` (without the
/// terminating `#`). Returns the string to hash:
///
/// | factor | entry | output |
/// | --- | --- | --- |
/// | contract number | its digits, length and check digit per `settings` | the digits |
/// | date of birth | DDMMYYYY, a real date from 1900 up to `today` | DDMMYYYY |
/// | postcode | 4 postcode digits (1000-9999), then 1 to 5 house-number digits | `1234:12` |
/// | IBAN last digits | exactly `settings.iban_last_digits` digits | the digits |
/// | SMS one-time code | exactly [`OTP_DIGITS`] digits | the digits |
///
/// A caller ID match is never typed, so it is rejected with
/// [`EntryError::NotEntered`].
pub fn normalise_entry(
    factor: Factor,
    digits: &str,
    settings: &FactorSettings,
    today: Date,
) -> Result<String, EntryError> {
    if factor == Factor::CallerIdMatch {
        return Err(EntryError::NotEntered { factor });
    }
    if digits.is_empty() {
        return Err(EntryError::Empty);
    }
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(EntryError::NotDigits);
    }

    match factor {
        Factor::ContractNumber => normalise_contract(digits, settings),
        Factor::DateOfBirth => normalise_date_of_birth(digits, today),
        Factor::Postcode => normalise_postcode(digits),
        Factor::IbanLastDigits => {
            if digits.len() == settings.iban_last_digits {
                Ok(digits.to_string())
            } else {
                Err(EntryError::IbanDigitsLength {
                    actual: digits.len(),
                    expected: settings.iban_last_digits,
                })
            }
        }
        Factor::SmsOtp => {
            if digits.len() == OTP_DIGITS {
                Ok(digits.to_string())
            } else {
                Err(EntryError::OtpLength {
                    actual: digits.len(),
                })
            }
        }
        Factor::CallerIdMatch => Err(EntryError::NotEntered { factor }),
    }
}

fn normalise_contract(digits: &str, settings: &FactorSettings) -> Result<String, EntryError> {
    let range = &settings.contract_digits;
    if !range.contains(&digits.len()) {
        return Err(EntryError::ContractLength {
            actual: digits.len(),
            min: *range.start(),
            max: *range.end(),
        });
    }

    let scheme = settings.contract_check_digit;
    if !scheme.accepts(digits) {
        return Err(EntryError::CheckDigit {
            scheme: scheme.name(),
        });
    }
    Ok(digits.to_string())
}

fn normalise_date_of_birth(digits: &str, today: Date) -> Result<String, EntryError> {
    if digits.len() != 8 {
        return Err(EntryError::DateLength {
            actual: digits.len(),
        });
    }

    // Only ASCII digits reach this point, so every slice is on a character
    // boundary and parses.
    let number = |range: std::ops::Range<usize>| -> u16 {
        digits
            .get(range)
            .and_then(|part| part.parse().ok())
            .unwrap_or(0)
    };
    let day = u8::try_from(number(0..2)).unwrap_or(0);
    let month = u8::try_from(number(2..4)).unwrap_or(0);
    let year = number(4..8);

    let date = Date::new(year, month, day).ok_or(EntryError::DateInvalid)?;
    if year < MIN_BIRTH_YEAR {
        return Err(EntryError::DateTooEarly);
    }
    if date > today {
        return Err(EntryError::DateInFuture);
    }
    Ok(digits.to_string())
}

fn normalise_postcode(digits: &str) -> Result<String, EntryError> {
    let max = POSTCODE_DIGITS + MAX_HOUSE_NUMBER_DIGITS;
    if digits.len() <= POSTCODE_DIGITS || digits.len() > max {
        return Err(EntryError::PostcodeLength {
            actual: digits.len(),
        });
    }

    let (postcode, house_number) = digits.split_at(POSTCODE_DIGITS);
    let postcode: u32 = postcode.parse().map_err(|_| EntryError::NotDigits)?;
    if postcode < MIN_POSTCODE {
        return Err(EntryError::PostcodeRange);
    }

    // A caller who types a leading zero in the house number means the same
    // house, so the number is stored without leading zeros.
    let house_number: u32 = house_number.parse().map_err(|_| EntryError::NotDigits)?;
    if house_number == 0 {
        return Err(EntryError::HouseNumberZero);
    }
    Ok(format!("{postcode}:{house_number}"))
}

/// Returns whether an ASCII digit string passes the Luhn (mod 10) check.
fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (index, byte) in digits.bytes().rev().enumerate() {
        let mut value = u32::from(byte.wrapping_sub(b'0'));
        if index % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    sum.is_multiple_of(10)
}

/// Returns whether an ASCII digit string passes the 11-test with weights n
/// down to 1 from the left.
fn elfproef_valid(digits: &str) -> bool {
    let length = digits.len();
    let mut sum = 0usize;
    for (index, byte) in digits.bytes().enumerate() {
        let value = usize::from(byte.wrapping_sub(b'0'));
        sum += value * (length - index);
    }
    sum.is_multiple_of(11)
}

fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Converts days since 1970-01-01 to a date, with Howard Hinnant's
/// `civil_from_days` algorithm ("chrono-Compatible Low-Level Date
/// Algorithms"). Days after year 65535 saturate.
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);

    Date {
        year: u16::try_from(year).unwrap_or(u16::MAX),
        month: u8::try_from(month).unwrap_or(1),
        day: u8::try_from(day).unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(check_digit: CheckDigit) -> FactorSettings {
        FactorSettings {
            contract_digits: 6..=12,
            contract_check_digit: check_digit,
            iban_last_digits: 4,
        }
    }

    fn today() -> Date {
        Date::new(2026, 6, 15).unwrap()
    }

    fn entry(factor: Factor, digits: &str) -> Result<String, EntryError> {
        normalise_entry(factor, digits, &settings(CheckDigit::None), today())
    }

    #[test]
    fn contract_length_checked() {
        assert_eq!(
            entry(Factor::ContractNumber, "12345678").unwrap(),
            "12345678"
        );
        assert_eq!(
            entry(Factor::ContractNumber, "12345"),
            Err(EntryError::ContractLength {
                actual: 5,
                min: 6,
                max: 12
            })
        );
        assert_eq!(
            entry(Factor::ContractNumber, "1234567890123"),
            Err(EntryError::ContractLength {
                actual: 13,
                min: 6,
                max: 12
            })
        );
    }

    #[test]
    fn non_digits_rejected() {
        assert_eq!(
            entry(Factor::ContractNumber, "1234a678"),
            Err(EntryError::NotDigits)
        );
        assert_eq!(
            entry(Factor::ContractNumber, "1234*678"),
            Err(EntryError::NotDigits)
        );
        assert_eq!(
            entry(Factor::ContractNumber, "１２３４５６"),
            Err(EntryError::NotDigits)
        );
        assert_eq!(entry(Factor::DateOfBirth, ""), Err(EntryError::Empty));
    }

    #[test]
    fn luhn_check_digit() {
        let settings = settings(CheckDigit::Luhn);
        // 7992739871 is the textbook Luhn example with check digit 3.
        assert!(normalise_entry(Factor::ContractNumber, "79927398713", &settings, today()).is_ok());
        for wrong in ["79927398710", "79927398714", "97927398713"] {
            assert_eq!(
                normalise_entry(Factor::ContractNumber, wrong, &settings, today()),
                Err(EntryError::CheckDigit { scheme: "luhn" }),
                "{wrong}"
            );
        }
    }

    #[test]
    fn elfproef_check_digit() {
        let settings = settings(CheckDigit::Elfproef);
        // 1*9 + 2*8 + 3*7 + 4*6 + 5*5 + 6*4 + 7*3 + 8*2 + 9*1 = 165 = 15 * 11.
        assert!(normalise_entry(Factor::ContractNumber, "123456789", &settings, today()).is_ok());
        // Swapping two neighbouring digits changes the sum by their difference.
        assert_eq!(
            normalise_entry(Factor::ContractNumber, "213456789", &settings, today()),
            Err(EntryError::CheckDigit { scheme: "elfproef" })
        );
        assert_eq!(
            normalise_entry(Factor::ContractNumber, "123456780", &settings, today()),
            Err(EntryError::CheckDigit { scheme: "elfproef" })
        );
    }

    #[test]
    fn check_digit_names_round_trip() {
        for scheme in [CheckDigit::None, CheckDigit::Luhn, CheckDigit::Elfproef] {
            assert_eq!(CheckDigit::from_name(scheme.name()), Some(scheme));
        }
        assert_eq!(CheckDigit::from_name("mod97"), None);
    }

    #[test]
    fn date_of_birth_valid() {
        assert_eq!(entry(Factor::DateOfBirth, "29021984").unwrap(), "29021984");
        assert_eq!(entry(Factor::DateOfBirth, "01011900").unwrap(), "01011900");
        assert_eq!(entry(Factor::DateOfBirth, "15062026").unwrap(), "15062026");
    }

    #[test]
    fn date_of_birth_rejections() {
        let cases = [
            ("2902198", EntryError::DateLength { actual: 7 }),
            ("290219840", EntryError::DateLength { actual: 9 }),
            ("29021983", EntryError::DateInvalid),
            ("31042000", EntryError::DateInvalid),
            ("00012000", EntryError::DateInvalid),
            ("01132000", EntryError::DateInvalid),
            ("29021900", EntryError::DateInvalid),
            ("31121899", EntryError::DateTooEarly),
            ("16062026", EntryError::DateInFuture),
            ("01012027", EntryError::DateInFuture),
        ];
        for (digits, expected) in cases {
            assert_eq!(
                entry(Factor::DateOfBirth, digits),
                Err(expected),
                "{digits}"
            );
        }
    }

    #[test]
    fn postcode_normalised() {
        assert_eq!(entry(Factor::Postcode, "123412").unwrap(), "1234:12");
        assert_eq!(entry(Factor::Postcode, "10001").unwrap(), "1000:1");
        assert_eq!(entry(Factor::Postcode, "999912345").unwrap(), "9999:12345");
        assert_eq!(entry(Factor::Postcode, "1234012").unwrap(), "1234:12");
    }

    #[test]
    fn postcode_rejections() {
        let cases = [
            ("1234", EntryError::PostcodeLength { actual: 4 }),
            ("1234123456", EntryError::PostcodeLength { actual: 10 }),
            ("099912", EntryError::PostcodeRange),
            ("12340", EntryError::HouseNumberZero),
        ];
        for (digits, expected) in cases {
            assert_eq!(entry(Factor::Postcode, digits), Err(expected), "{digits}");
        }
    }

    #[test]
    fn iban_digits_exact_length() {
        assert_eq!(entry(Factor::IbanLastDigits, "4300").unwrap(), "4300");
        assert_eq!(
            entry(Factor::IbanLastDigits, "300"),
            Err(EntryError::IbanDigitsLength {
                actual: 3,
                expected: 4
            })
        );
        let two = FactorSettings {
            iban_last_digits: 2,
            ..settings(CheckDigit::None)
        };
        assert_eq!(
            normalise_entry(Factor::IbanLastDigits, "00", &two, today()).unwrap(),
            "00"
        );
        assert!(normalise_entry(Factor::IbanLastDigits, "4300", &two, today()).is_err());
    }

    #[test]
    fn otp_six_digits() {
        assert_eq!(entry(Factor::SmsOtp, "012345").unwrap(), "012345");
        assert_eq!(
            entry(Factor::SmsOtp, "12345"),
            Err(EntryError::OtpLength { actual: 5 })
        );
    }

    #[test]
    fn caller_id_never_entered() {
        assert_eq!(
            entry(Factor::CallerIdMatch, "1"),
            Err(EntryError::NotEntered {
                factor: Factor::CallerIdMatch
            })
        );
    }

    #[test]
    fn errors_never_show_digits() {
        let digits = "98765";
        for factor in Factor::ALL {
            if let Err(error) = entry(factor, digits) {
                assert!(!error.to_string().contains(digits), "{error}");
            }
        }
    }

    #[test]
    fn date_from_system_time() {
        let epoch = Date::from_system_time(UNIX_EPOCH);
        assert_eq!(epoch, Date::new(1970, 1, 1).unwrap());

        // 2024-02-29 12:00:00 UTC is 1709208000 seconds after the epoch.
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(1_709_208_000);
        assert_eq!(
            Date::from_system_time(leap),
            Date::new(2024, 2, 29).unwrap()
        );

        // 2000-03-01 00:00:00 UTC, the day after a leap day of a year
        // divisible by 400.
        let march = UNIX_EPOCH + std::time::Duration::from_secs(951_868_800);
        assert_eq!(
            Date::from_system_time(march),
            Date::new(2000, 3, 1).unwrap()
        );
    }

    #[test]
    fn date_new_checks_calendar() {
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2023, 4, 31).is_none());
        assert!(Date::new(2023, 0, 1).is_none());
        assert!(Date::new(2023, 12, 31).is_some());
        assert_eq!(Date::new(2023, 12, 31).unwrap().to_string(), "2023-12-31");
    }
}
