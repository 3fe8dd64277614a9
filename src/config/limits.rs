//! `[service]`, `[factors]`, `[otp]` and `[lockout]`: switches and limits
//! of the verification, each key optional with the default of
//! `config/default.toml`.

use std::time::Duration;

use super::reader::TomlReader;
use crate::flow::FlowConfig;
use crate::verify::factors::{CheckDigit, FactorSettings, MAX_IBAN_LAST_DIGITS};

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// True only on a developer's machine: the console SMS gateway then logs
    /// one-time codes. Production sets false.
    pub development: bool,
}

/// `[otp]`: one-time codes sent by SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpConfig {
    /// Time from sending a code to its expiry.
    pub lifetime: Duration,
    /// Entries allowed per code; a wrong entry uses one up.
    pub max_entries: u32,
    /// Codes sent per customer within `send_window`, so that the service
    /// cannot be used to flood a phone with messages.
    pub max_sends: u32,
    /// Sliding window of `max_sends`.
    pub send_window: Duration,
}

/// `[lockout]`: sliding-window limits on failed attempts, shared by all
/// calls and nodes through the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failed attempts per contract number within `contract_window`.
    pub contract_limit: u32,
    /// Window of `contract_limit`.
    pub contract_window: Duration,
    /// Failed attempts per customer, over all their factors, within
    /// `customer_window`.
    pub customer_limit: u32,
    /// Window of `customer_limit`.
    pub customer_window: Duration,
    /// Failed attempts per calling number within `calling_number_window`,
    /// which slows one caller who tries many contract numbers.
    pub calling_number_limit: u32,
    /// Window of `calling_number_limit`.
    pub calling_number_window: Duration,
}

/// Range of `otp.lifetime_s`. Under 30 seconds an SMS that is a little slow
/// arrives expired. Over 10 minutes a code that reaches the wrong person
/// stays usable long after the caller needed it.
const OTP_LIFETIME_S: std::ops::RangeInclusive<i64> = 30..=600;

/// Maximum `otp.max_entries`. Each wrong entry is a guess at a 6-digit code,
/// so 5 keeps the chance of a lucky guess at 1 in 200 000 per code.
const MAX_OTP_ENTRIES: i64 = 5;

/// Maximum `otp.max_sends`. Each message costs money and disturbs the
/// customer; a caller who needs more codes than this should talk to an agent.
const MAX_OTP_SENDS: i64 = 10;

/// Range of the windows in seconds (`otp.send_window_s` and the lockout
/// windows): from one minute to one week. A shorter window limits nothing,
/// and a longer one locks customers out for longer than an agent would
/// accept.
const WINDOW_S: std::ops::RangeInclusive<i64> = 60..=604_800;

/// Range of the lockout limits. A limit of 100 failed attempts no longer
/// slows guessing down.
const LOCKOUT_LIMIT: std::ops::RangeInclusive<i64> = 1..=100;

pub(crate) fn read_service(reader: &mut TomlReader<'_>) -> ServiceConfig {
    let development = match reader.get("service", "development", false) {
        None => false,
        // An invalid value is reported here and the configuration is not
        // returned, so the placeholder true only keeps the console gateway
        // from being reported as well.
        Some(field) => reader.as_bool(field).is_none_or(|(value, _)| value),
    };
    ServiceConfig { development }
}

/// Reads an optional integer key in `range`, or returns `default` when it is
/// missing or invalid (an invalid value is recorded as a problem).
fn optional_integer(
    reader: &mut TomlReader<'_>,
    section: &str,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> i64 {
    reader
        .get(section, key, false)
        .and_then(|field| reader.as_integer(field, range))
        .map_or(default, |(value, _)| value)
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(value.unsigned_abs())
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(1)
}

pub(crate) fn read_otp(reader: &mut TomlReader<'_>) -> OtpConfig {
    let lifetime = optional_integer(reader, "otp", "lifetime_s", OTP_LIFETIME_S, 300);
    let max_entries = optional_integer(reader, "otp", "max_entries", 1..=MAX_OTP_ENTRIES, 3);
    let max_sends = optional_integer(reader, "otp", "max_sends", 1..=MAX_OTP_SENDS, 3);
    let send_window = optional_integer(reader, "otp", "send_window_s", WINDOW_S, 900);
    OtpConfig {
        lifetime: seconds(lifetime),
        max_entries: count(max_entries),
        max_sends: count(max_sends),
        send_window: seconds(send_window),
    }
}

pub(crate) fn read_lockout(reader: &mut TomlReader<'_>) -> LockoutConfig {
    let limit = |reader: &mut TomlReader<'_>, key: &str, default: i64| {
        count(optional_integer(
            reader,
            "lockout",
            key,
            LOCKOUT_LIMIT,
            default,
        ))
    };
    let contract_limit = limit(reader, "contract_limit", 5);
    let customer_limit = limit(reader, "customer_limit", 10);
    let calling_number_limit = limit(reader, "calling_number_limit", 10);

    let window = |reader: &mut TomlReader<'_>, key: &str, default: i64| {
        seconds(optional_integer(reader, "lockout", key, WINDOW_S, default))
    };
    LockoutConfig {
        contract_limit,
        contract_window: window(reader, "contract_window_s", 900),
        customer_limit,
        customer_window: window(reader, "customer_window_s", 3600),
        calling_number_limit,
        calling_number_window: window(reader, "calling_number_window_s", 3600),
    }
}

/// Reads `[factors]` and `flow.contract_check_digit` into the entry formats,
/// taking the contract number length from the already read `flow`.
pub(crate) fn read_factors(reader: &mut TomlReader<'_>, flow: &FlowConfig) -> FactorSettings {
    let iban_last_digits = match reader.get("factors", "iban_last_digits", false) {
        None => MAX_IBAN_LAST_DIGITS,
        Some(field) => match field.item.as_integer() {
            Some(value) if value > MAX_IBAN_LAST_DIGITS as i64 => {
                reader.field_problem(
                    &field,
                    format!("is {value}, but at most {MAX_IBAN_LAST_DIGITS} trailing IBAN digits are asked, because more digits come close to the full IBAN, which ivr-verify never asks for or stores"),
                );
                MAX_IBAN_LAST_DIGITS
            }
            _ => reader
                .as_integer(field, 1..=MAX_IBAN_LAST_DIGITS as i64)
                .map_or(MAX_IBAN_LAST_DIGITS, |(value, _)| {
                    usize::try_from(value).unwrap_or(MAX_IBAN_LAST_DIGITS)
                }),
        },
    };

    let contract_check_digit = match reader.string("flow", "contract_check_digit", false) {
        None => CheckDigit::None,
        Some((value, field)) => CheckDigit::from_name(&value).unwrap_or_else(|| {
            reader.field_problem(
                &field,
                format!("is `{value}`, but must be \"none\", \"luhn\" or \"elfproef\""),
            );
            CheckDigit::None
        }),
    };

    FactorSettings {
        contract_digits: flow.contract_min_digits..=flow.contract_max_digits,
        contract_check_digit,
        iban_last_digits,
    }
}
