//! The customers file: the registered customers whose callers can be
//! verified.
//!
//! A CSV file whose header starts with `customer_id,phones,mobile,contracts`.
//! `phones` and `contracts` are `;`-separated lists, and `mobile` may be
//! empty. Optional columns may follow in any order: `date_of_birth`
//! (DD-MM-YYYY or YYYY-MM-DD), `postcode` ("1234 AB") with `house_number`
//! ("12a"), and `iban_last_digits` (at most 4 digits). Lines starting with
//! `#` are comments.
//!
//! Every knowledge factor is normalised with
//! [`normalise_entry`](super::factors::normalise_entry), the function that
//! checks what a caller types, and kept only as a keyed hash. The mobile
//! number stays in clear because a one-time code or a callback must be sent
//! to it. A column for data the service never stores (a full IBAN, a card
//! number, a password or PIN, a BSN) is rejected, and so is a value in any
//! column that looks like a full IBAN.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::SystemTime;

use phonenumber::country;

use super::caller_id::to_e164;
use super::factors::{
    normalise_entry, CheckDigit, Date, EntryError, FactorSettings, MAX_IBAN_LAST_DIGITS,
};
use super::keyed_hash::{HashPurpose, KeyedHash, KeyedHasher};
use super::policy::Factor;
use crate::config::forbidden::{forbidden_data, forbidden_message, ForbiddenData};
use crate::config::{Config, ConfigErrors, Problem};

/// Columns the file must start with, in this order.
const REQUIRED_COLUMNS: [&str; 4] = ["customer_id", "phones", "mobile", "contracts"];

/// Columns that may follow the required ones, in any order.
const OPTIONAL_COLUMNS: [&str; 4] = [
    "date_of_birth",
    "postcode",
    "house_number",
    "iban_last_digits",
];

/// Maximum length of a customer id. The id is an internal reference, and a
/// longer one is most likely a shifted column.
const MAX_CUSTOMER_ID_LEN: usize = 64;

/// Shortest and longest IBAN without spaces. An IBAN is two letters, two
/// check digits and a national account number of up to 30 characters, and
/// the shortest national IBANs have 15 characters.
const IBAN_LENGTH: RangeInclusive<usize> = 15..=34;

/// A registered customer, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The contact center's own customer reference.
    pub customer_id: String,
    /// Keyed hashes of the registered numbers in E.164, the mobile included,
    /// matched against the caller's number.
    pub phones: Vec<KeyedHash>,
    /// Mobile number in E.164, the destination of one-time codes and
    /// callbacks.
    pub mobile_e164: Option<String>,
    /// Keyed hashes of the contract numbers, digits only.
    pub contracts: Vec<KeyedHash>,
    /// Keyed hash of the date of birth as DDMMYYYY
    /// ([`HashPurpose::DateOfBirth`]).
    pub date_of_birth: Option<KeyedHash>,
    /// Keyed hash of the postcode digits and house number as `1234:12`
    /// ([`HashPurpose::Postcode`]).
    pub postcode: Option<KeyedHash>,
    /// Keyed hash of the last `factors.iban_last_digits` digits of the IBAN
    /// ([`HashPurpose::IbanLastDigits`]).
    pub iban_last_digits: Option<KeyedHash>,
}

/// Settings that the customers file is checked against, without the factor
/// formats; kept for callers written before the knowledge factors existed.
#[derive(Debug, Clone)]
pub struct CustomerFileOptions {
    /// Region of numbers written without a country code (`customers.default_region`).
    pub default_region: country::Id,
    /// Allowed number of contract digits, from `flow.contract_min_digits` and
    /// `flow.contract_max_digits`. A longer or shorter contract number could
    /// never be entered by a caller.
    pub contract_digits: RangeInclusive<usize>,
}

/// Everything the customers file is checked against.
#[derive(Debug, Clone)]
pub struct CustomerFileSettings {
    /// Region of numbers written without a country code (`customers.default_region`).
    pub default_region: country::Id,
    /// Entry formats, so that every stored value is one a caller can enter.
    pub factors: FactorSettings,
    /// Today's date; a date of birth after it is rejected.
    pub today: Date,
}

impl CustomerFileSettings {
    /// Takes the settings from the configuration.
    #[must_use]
    pub fn from_config(config: &Config, today: Date) -> CustomerFileSettings {
        CustomerFileSettings {
            default_region: config.customers.default_region,
            factors: config.factors.clone(),
            today,
        }
    }
}

impl From<&CustomerFileOptions> for CustomerFileSettings {
    /// Uses no contract check digit, the maximum IBAN digits and today's UTC
    /// date, the formats of a configuration without `[factors]`.
    fn from(options: &CustomerFileOptions) -> CustomerFileSettings {
        CustomerFileSettings {
            default_region: options.default_region,
            factors: FactorSettings {
                contract_digits: options.contract_digits.clone(),
                contract_check_digit: CheckDigit::None,
                iban_last_digits: MAX_IBAN_LAST_DIGITS,
            },
            today: Date::from_system_time(SystemTime::now()),
        }
    }
}

/// Reads and checks the customers file at `path` with the default factor
/// formats (see [`CustomerFileSettings::from`]).
///
/// NOTE: this ignores `flow.contract_check_digit` and
/// `factors.iban_last_digits`; use [`load_customers_with_settings`] with
/// [`CustomerFileSettings::from_config`] to honour them.
pub fn load_customers(
    path: &Path,
    options: &CustomerFileOptions,
    hasher: &KeyedHasher,
) -> Result<Vec<Customer>, ConfigErrors> {
    load_customers_with_settings(path, &CustomerFileSettings::from(options), hasher)
}

/// Reads and checks the customers file at `path`. Returns every problem
/// found, each naming its line and column, or the customers in file order.
pub fn load_customers_with_settings(
    path: &Path,
    settings: &CustomerFileSettings,
    hasher: &KeyedHasher,
) -> Result<Vec<Customer>, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigErrors {
        problems: vec![Problem::new(
            path,
            None,
            None,
            format!("failed to read customers file: {error}"),
        )],
    })?;
    parse_customers_with_settings(&text, path, settings, hasher)
}

/// Parses customers file contents with the default factor formats. `path`
/// is used only in problems.
pub fn parse_customers(
    text: &str,
    path: &Path,
    options: &CustomerFileOptions,
    hasher: &KeyedHasher,
) -> Result<Vec<Customer>, ConfigErrors> {
    parse_customers_with_settings(text, path, &CustomerFileSettings::from(options), hasher)
}

/// Parses customers file contents. `path` is used only in problems.
pub fn parse_customers_with_settings(
    text: &str,
    path: &Path,
    settings: &CustomerFileSettings,
    hasher: &KeyedHasher,
) -> Result<Vec<Customer>, ConfigErrors> {
    let mut problems = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());

    let header_line = first_data_line(text);
    let columns = match reader.headers() {
        Ok(headers) => {
            let names: Vec<String> = headers.iter().map(str::to_string).collect();
            match read_header(&names, path, header_line) {
                Ok(columns) => columns,
                Err(mut header_problems) => {
                    problems.append(&mut header_problems);
                    return Err(ConfigErrors { problems });
                }
            }
        }
        Err(error) => {
            problems.push(Problem::new(
                path,
                Some(header_line),
                None,
                format!("failed to read header: {error}"),
            ));
            return Err(ConfigErrors { problems });
        }
    };

    let mut customers = Vec::new();
    let mut id_lines: HashMap<String, usize> = HashMap::new();
    let mut contract_lines: HashMap<KeyedHash, usize> = HashMap::new();

    for result in reader.records() {
        let record = match result {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map(|p| p.line() as usize);
                problems.push(Problem::new(
                    path,
                    line,
                    None,
                    format!("failed to read record: {error}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);

        if record.len() < REQUIRED_COLUMNS.len() {
            problems.push(Problem::new(
                path,
                Some(line),
                None,
                format!(
                    "has {} fields, but at least {} are required ({})",
                    record.len(),
                    REQUIRED_COLUMNS.len(),
                    REQUIRED_COLUMNS.join(",")
                ),
            ));
            continue;
        }

        if record.len() != columns.names.len() {
            problems.push(Problem::new(
                path,
                Some(line),
                None,
                format!(
                    "has {} fields, but the header has {}; check for a missing or extra separator",
                    record.len(),
                    columns.names.len()
                ),
            ));
            continue;
        }

        let row = Row {
            path,
            line,
            settings,
            hasher,
        };
        let problems_before = problems.len();

        // A value that looks like a full IBAN is rejected wherever it is, and
        // its column is not read further, so it is reported once.
        let iban_columns = row.full_iban_columns(&record, &columns.names, &mut problems);
        let field = |index: usize| -> &str {
            if iban_columns.contains(&index) {
                ""
            } else {
                record.get(index).unwrap_or_default()
            }
        };
        let optional = |index: Option<usize>| index.map_or("", field);

        let customer_id = if iban_columns.contains(&0) {
            None
        } else {
            row.customer_id(field(0), &mut problems)
        };
        let mut phones = row.phones(field(1), &mut problems);
        let mobile_e164 = row.mobile(field(2), &mut problems);
        let contracts = row.contracts(field(3), &mut problems);
        let date_of_birth = row.date_of_birth(optional(columns.date_of_birth), &mut problems);
        let postcode = row.postcode(
            optional(columns.postcode),
            optional(columns.house_number),
            &mut problems,
        );
        let iban_last_digits =
            row.iban_last_digits(optional(columns.iban_last_digits), &mut problems);

        // Duplicates are checked across the whole file, naming both lines.
        if let Some(id) = &customer_id {
            if let Some(first) = id_lines.get(id) {
                problems.push(Problem::new(
                    path,
                    Some(line),
                    Some("customer_id"),
                    format!("duplicate customer id, first used on line {first}"),
                ));
            } else {
                id_lines.insert(id.clone(), line);
            }
        }
        for (position, contract) in contracts.iter().enumerate() {
            if let Some(first) = contract_lines.get(contract) {
                problems.push(Problem::new(
                    path,
                    Some(line),
                    Some("contracts"),
                    format!(
                        "item {} is a duplicate contract number, first used on line {first}",
                        position + 1
                    ),
                ));
            } else {
                contract_lines.insert(*contract, line);
            }
        }

        if problems.len() > problems_before {
            continue;
        }
        let Some(customer_id) = customer_id else {
            continue;
        };

        // The mobile is a registered number too, so a call from it matches.
        if let Some(mobile) = &mobile_e164 {
            let hash = hasher.hash(HashPurpose::PhoneNumber, mobile);
            if !phones.contains(&hash) {
                phones.push(hash);
            }
        }
        customers.push(Customer {
            customer_id,
            phones,
            mobile_e164,
            contracts,
            date_of_birth,
            postcode,
            iban_last_digits,
        });
    }

    if problems.is_empty() {
        Ok(customers)
    } else {
        Err(ConfigErrors { problems })
    }
}

/// Normalises a contract number as written in the file: spaces and dashes are
/// removed, and the rest must be ASCII digits. Returns `None` otherwise.
#[must_use]
pub fn normalise_contract_number(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(digits)
}

/// Positions of the columns in the header.
struct Columns {
    /// Every column name, by position, for problems.
    names: Vec<String>,
    /// Position of `date_of_birth`.
    date_of_birth: Option<usize>,
    /// Position of `postcode`.
    postcode: Option<usize>,
    /// Position of `house_number`.
    house_number: Option<usize>,
    /// Position of `iban_last_digits`.
    iban_last_digits: Option<usize>,
}

/// Checks the header: the required columns first, then known optional
/// columns, each at most once, and `postcode` only with `house_number`.
fn read_header(names: &[String], path: &Path, line: usize) -> Result<Columns, Vec<Problem>> {
    let problem = |key: Option<&str>, message: String| Problem::new(path, Some(line), key, message);

    let found: Vec<&str> = names
        .iter()
        .take(REQUIRED_COLUMNS.len())
        .map(String::as_str)
        .collect();
    if found != REQUIRED_COLUMNS {
        return Err(vec![problem(
            None,
            format!(
                "header must start with `{}`, found `{}`",
                REQUIRED_COLUMNS.join(","),
                found.join(",")
            ),
        )]);
    }

    let mut problems = Vec::new();
    let mut positions: HashMap<&str, usize> = HashMap::new();
    for (index, name) in names.iter().enumerate().skip(REQUIRED_COLUMNS.len()) {
        let name = name.as_str();
        if let Some(known) = OPTIONAL_COLUMNS.iter().find(|known| **known == name) {
            if positions.insert(known, index).is_some() {
                problems.push(problem(Some(name), "column appears twice".to_string()));
            }
        } else if let Some(data) = forbidden_data(name) {
            problems.push(problem(Some(name), forbidden_message("column", name, data)));
        } else {
            problems.push(problem(
                Some(name),
                format!(
                    "unknown column; optional columns are {}. Remove other columns, because the file should hold only what verification needs",
                    OPTIONAL_COLUMNS.join(", ")
                ),
            ));
        }
    }

    let postcode = positions.get("postcode").copied();
    let house_number = positions.get("house_number").copied();
    if postcode.is_some() != house_number.is_some() {
        problems.push(problem(
            None,
            "columns postcode and house_number must both be present, because the caller enters both"
                .to_string(),
        ));
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Columns {
        names: names.to_vec(),
        date_of_birth: positions.get("date_of_birth").copied(),
        postcode,
        house_number,
        iban_last_digits: positions.get("iban_last_digits").copied(),
    })
}

/// Returns whether `value` has the form of an IBAN: two letters, two check
/// digits and alphanumeric characters, 15 to 34 in total once the separators
/// people write (spaces, dashes, dots, slashes) are removed. The checksum is
/// not verified, so a mistyped IBAN is caught too.
fn looks_like_iban(value: &str) -> bool {
    let compact: Vec<char> = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '\t'))
        .collect();
    if !IBAN_LENGTH.contains(&compact.len()) {
        return false;
    }
    let country = compact.iter().take(2).all(char::is_ascii_alphabetic);
    let check = compact.iter().skip(2).take(2).all(char::is_ascii_digit);
    let rest = compact.iter().skip(4).all(char::is_ascii_alphanumeric);
    let has_digits = compact
        .iter()
        .skip(4)
        .filter(|c| c.is_ascii_digit())
        .count()
        >= 6;
    country && check && rest && has_digits
}

/// Context for checking the fields of one record.
struct Row<'a> {
    /// File name for problems.
    path: &'a Path,
    /// Line of the record.
    line: usize,
    /// Region and entry formats to check against.
    settings: &'a CustomerFileSettings,
    /// Hasher for every stored value.
    hasher: &'a KeyedHasher,
}

impl Row<'_> {
    fn problem(&self, column: &str, message: String) -> Problem {
        Problem::new(self.path, Some(self.line), Some(column), message)
    }

    /// Records a problem for every field that looks like a full IBAN and
    /// returns their positions.
    fn full_iban_columns(
        &self,
        record: &csv::StringRecord,
        names: &[String],
        problems: &mut Vec<Problem>,
    ) -> HashSet<usize> {
        let mut found = HashSet::new();
        for (index, value) in record.iter().enumerate() {
            let items_look_like_iban = value.split(';').any(looks_like_iban);
            if !items_look_like_iban {
                continue;
            }
            let column = names
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("column {}", index + 1));
            let data = ForbiddenData::FullIban;
            problems.push(self.problem(
                &column,
                format!(
                    "looks like {data}; ivr-verify never stores {data}, because {}",
                    data.reason()
                ),
            ));
            found.insert(index);
        }
        found
    }

    fn customer_id(&self, raw: &str, problems: &mut Vec<Problem>) -> Option<String> {
        if raw.is_empty() {
            problems.push(self.problem("customer_id", "is empty".to_string()));
            return None;
        }
        if raw.len() > MAX_CUSTOMER_ID_LEN || raw.chars().any(char::is_control) {
            problems.push(self.problem(
                "customer_id",
                format!("must be at most {MAX_CUSTOMER_ID_LEN} bytes without control characters"),
            ));
            return None;
        }
        Some(raw.to_string())
    }

    fn phones(&self, raw: &str, problems: &mut Vec<Problem>) -> Vec<KeyedHash> {
        let mut hashes = Vec::new();
        for (position, item) in list_items(raw) {
            match to_e164(item, self.settings.default_region) {
                Ok(e164) => {
                    let hash = self.hasher.hash(HashPurpose::PhoneNumber, &e164);
                    if !hashes.contains(&hash) {
                        hashes.push(hash);
                    }
                }
                Err(error) => {
                    problems.push(self.problem("phones", format!("item {position} {error}")))
                }
            }
        }
        hashes
    }

    fn mobile(&self, raw: &str, problems: &mut Vec<Problem>) -> Option<String> {
        if raw.is_empty() {
            return None;
        }
        let e164 = match to_e164(raw, self.settings.default_region) {
            Ok(e164) => e164,
            Err(error) => {
                problems.push(self.problem("mobile", error.to_string()));
                return None;
            }
        };

        // A one-time code sent by SMS to a fixed line usually does not
        // arrive. The E.164 string came from the parser, so parsing it again
        // succeeds.
        let kind = phonenumber::parse(None, &e164)
            .map(|number| number.number_type(&phonenumber::metadata::DATABASE));
        match kind {
            Ok(phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile) => Some(e164),
            _ => {
                problems.push(self.problem(
                    "mobile",
                    "is not a mobile number; move it to phones".to_string(),
                ));
                None
            }
        }
    }

    fn contracts(&self, raw: &str, problems: &mut Vec<Problem>) -> Vec<KeyedHash> {
        let factors = &self.settings.factors;
        let mut hashes: Vec<KeyedHash> = Vec::new();
        let mut seen = HashSet::new();
        for (position, item) in list_items(raw) {
            let Some(digits) = normalise_contract_number(item) else {
                problems.push(self.problem(
                    "contracts",
                    format!("item {position} must contain only digits, spaces and dashes"),
                ));
                continue;
            };
            let digits = match normalise_entry(
                Factor::ContractNumber,
                &digits,
                factors,
                self.settings.today,
            ) {
                Ok(digits) => digits,
                Err(EntryError::ContractLength { actual, min, max }) => {
                    problems.push(self.problem(
                        "contracts",
                        format!(
                            "item {position} has {actual} digits, but flow.contract_min_digits and flow.contract_max_digits allow {min} to {max}"
                        ),
                    ));
                    continue;
                }
                Err(error) => {
                    problems.push(self.problem(
                        "contracts",
                        format!(
                            "item {position}: {error} (flow.contract_check_digit), so a caller could never enter it"
                        ),
                    ));
                    continue;
                }
            };
            let hash = self.hasher.hash(HashPurpose::ContractNumber, &digits);
            if seen.insert(hash) {
                hashes.push(hash);
            } else {
                problems.push(self.problem(
                    "contracts",
                    format!("item {position} repeats a contract number of the same customer"),
                ));
            }
        }
        hashes
    }

    /// Reads a date of birth written DD-MM-YYYY or YYYY-MM-DD. Problems never
    /// repeat the date.
    fn date_of_birth(&self, raw: &str, problems: &mut Vec<Problem>) -> Option<KeyedHash> {
        if raw.is_empty() {
            return None;
        }
        let Some(entry) = date_as_entry(raw) else {
            problems.push(self.problem(
                "date_of_birth",
                "is not a date; write DD-MM-YYYY or YYYY-MM-DD".to_string(),
            ));
            return None;
        };

        match normalise_entry(
            Factor::DateOfBirth,
            &entry,
            &self.settings.factors,
            self.settings.today,
        ) {
            Ok(normalised) => Some(self.hasher.hash(HashPurpose::DateOfBirth, &normalised)),
            Err(EntryError::DateInvalid) => {
                problems.push(self.problem(
                    "date_of_birth",
                    "is not a calendar date; check day and month".to_string(),
                ));
                None
            }
            Err(error) => {
                problems.push(self.problem("date_of_birth", error.to_string()));
                None
            }
        }
    }

    /// Reads a postcode ("1234 AB", "1234AB" or "1234") and a house number
    /// ("12", "12a", "12-2"), keeping only the postcode digits and the
    /// leading digits of the house number.
    fn postcode(
        &self,
        postcode: &str,
        house_number: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<KeyedHash> {
        match (postcode.is_empty(), house_number.is_empty()) {
            (true, true) => return None,
            (false, true) => {
                problems.push(self.problem(
                    "house_number",
                    "is empty, but postcode is set; a caller enters both".to_string(),
                ));
                return None;
            }
            (true, false) => {
                problems.push(self.problem(
                    "postcode",
                    "is empty, but house_number is set; a caller enters both".to_string(),
                ));
                return None;
            }
            (false, false) => {}
        }

        let Some(postcode_digits) = postcode_digits(postcode) else {
            problems.push(
                self.problem(
                    "postcode",
                    "is not a Dutch postcode; write 4 digits and 2 letters, such as \"1234 AB\""
                        .to_string(),
                ),
            );
            return None;
        };
        let Some(house_digits) = house_number_digits(house_number) else {
            problems.push(self.problem(
                "house_number",
                "must start with 1 to 5 digits, optionally followed by an addition such as \"a\" or \"-2\"".to_string(),
            ));
            return None;
        };

        let entry = format!("{postcode_digits}{house_digits}");
        match normalise_entry(
            Factor::Postcode,
            &entry,
            &self.settings.factors,
            self.settings.today,
        ) {
            Ok(normalised) => Some(self.hasher.hash(HashPurpose::Postcode, &normalised)),
            Err(error) => {
                problems.push(self.problem("postcode", error.to_string()));
                None
            }
        }
    }

    /// Reads the trailing IBAN digits and keeps the last
    /// `factors.iban_last_digits` of them.
    fn iban_last_digits(&self, raw: &str, problems: &mut Vec<Problem>) -> Option<KeyedHash> {
        if raw.is_empty() {
            return None;
        }
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        let wanted = self.settings.factors.iban_last_digits;
        if digits.is_empty()
            || digits.len() > MAX_IBAN_LAST_DIGITS
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            problems.push(self.problem(
                "iban_last_digits",
                format!("must be 1 to {MAX_IBAN_LAST_DIGITS} digits: only the end of the IBAN, never all of it"),
            ));
            return None;
        }
        if digits.len() < wanted {
            problems.push(self.problem(
                "iban_last_digits",
                format!(
                    "has {} digits, but factors.iban_last_digits asks the caller for {wanted}",
                    digits.len()
                ),
            ));
            return None;
        }

        let last = digits.get(digits.len() - wanted..).unwrap_or_default();
        match normalise_entry(
            Factor::IbanLastDigits,
            last,
            &self.settings.factors,
            self.settings.today,
        ) {
            Ok(normalised) => Some(self.hasher.hash(HashPurpose::IbanLastDigits, &normalised)),
            Err(error) => {
                problems.push(self.problem("iban_last_digits", error.to_string()));
                None
            }
        }
    }
}

/// Converts DD-MM-YYYY or YYYY-MM-DD (one- or two-digit day and month) to
/// the DDMMYYYY entry a caller types. Returns `None` for another form.
fn date_as_entry(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split('-').collect();
    let [first, month, last] = parts.as_slice() else {
        return None;
    };
    let (day, year) = if first.len() == 4 {
        (*last, *first)
    } else {
        (*first, *last)
    };

    let numeric = |part: &str, lengths: RangeInclusive<usize>| {
        lengths.contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit())
    };
    if !numeric(day, 1..=2) || !numeric(month, 1..=2) || !numeric(year, 4..=4) {
        return None;
    }
    Some(format!("{day:0>2}{month:0>2}{year}"))
}

/// Returns the 4 digits of a Dutch postcode written "1234 AB", "1234AB" or
/// "1234".
fn postcode_digits(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| *c != ' ').collect();
    let (digits, letters) = compact.split_at_checked(4)?;
    let digits_valid = digits.chars().all(|c| c.is_ascii_digit());
    let letters_valid = letters.is_empty()
        || (letters.len() == 2 && letters.chars().all(|c| c.is_ascii_alphabetic()));
    (digits_valid && letters_valid).then(|| digits.to_string())
}

/// Returns the leading 1 to 5 digits of a house number, dropping an
/// addition such as "a", " bis" or "-2".
fn house_number_digits(raw: &str) -> Option<String> {
    let digits: String = raw.chars().take_while(char::is_ascii_digit).collect();
    let addition = raw.get(digits.len()..).unwrap_or_default();
    let addition_valid = addition
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '/');
    let starts_apart = addition.is_empty() || !addition.starts_with(|c: char| c.is_ascii_digit());
    ((1..=5).contains(&digits.len()) && addition_valid && starts_apart).then_some(digits)
}

/// Splits a `;`-separated list into trimmed, non-empty items with their
/// 1-based position.
fn list_items(raw: &str) -> impl Iterator<Item = (usize, &str)> {
    raw.split(';')
        .map(str::trim)
        .enumerate()
        .filter(|(_, item)| !item.is_empty())
        .map(|(index, item)| (index + 1, item))
}

/// Returns the 1-based line of the first line that is neither empty nor a
/// comment, where the CSV reader finds the header.
fn first_data_line(text: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map_or(1, |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "customer_id,phones,mobile,contracts\n";

    fn options() -> CustomerFileOptions {
        CustomerFileOptions {
            default_region: country::Id::NL,
            contract_digits: 6..=12,
        }
    }

    fn hasher() -> KeyedHasher {
        KeyedHasher::new(&[5u8; 32]).unwrap()
    }

    fn parse(text: &str) -> Result<Vec<Customer>, ConfigErrors> {
        parse_customers(text, Path::new("customers.csv"), &options(), &hasher())
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn valid_file_parses() {
        let text = format!(
            "# fictional\n{HEADER}C001,06-12345601;020 123 4567,+31 6 1234 5602,12345678;8765-4321\nC002,,,99 88 77\n"
        );
        let customers = parse(&text).unwrap();
        assert_eq!(customers.len(), 2);

        let hasher = hasher();
        let first = &customers[0];
        assert_eq!(first.customer_id, "C001");
        assert_eq!(first.mobile_e164.as_deref(), Some("+31612345602"));
        assert_eq!(
            first.phones,
            vec![
                hasher.hash(HashPurpose::PhoneNumber, "+31612345601"),
                hasher.hash(HashPurpose::PhoneNumber, "+31201234567"),
                hasher.hash(HashPurpose::PhoneNumber, "+31612345602"),
            ]
        );
        assert_eq!(
            first.contracts,
            vec![
                hasher.hash(HashPurpose::ContractNumber, "12345678"),
                hasher.hash(HashPurpose::ContractNumber, "87654321"),
            ]
        );

        let second = &customers[1];
        assert!(second.phones.is_empty());
        assert_eq!(second.mobile_e164, None);
        assert_eq!(
            second.contracts,
            vec![hasher.hash(HashPurpose::ContractNumber, "998877")]
        );
    }

    #[test]
    fn unknown_column_rejected() {
        let text = "customer_id,phones,mobile,contracts,name\nC1,,,123456,Jansen\n";
        let problems = problems(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("customers.csv:1: name: unknown column; optional columns are"),
            "{problems:?}"
        );
    }

    #[test]
    fn wrong_header_rejected() {
        let text = "id,phones,mobile,contracts\nC1,,,123456\n";
        let problems = problems(text);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("customers.csv:1: header must start with"),
            "{problems:?}"
        );
    }

    #[test]
    fn invalid_phone_names_line_and_column() {
        let text = format!("{HEADER}C1,,,123456\nC2,0612;06-12345603,,234567\n");
        let problems = problems(&text);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("customers.csv:3: phones: item 1 "),
            "{problems:?}"
        );
        // The number itself is not repeated in the message.
        assert!(!problems[0].contains("0612"));
    }

    #[test]
    fn fixed_line_mobile_rejected() {
        let text = format!("{HEADER}C1,,020 123 4567,123456\n");
        let problems = problems(&text);
        assert_eq!(
            problems,
            vec!["customers.csv:2: mobile: is not a mobile number; move it to phones"]
        );
    }

    #[test]
    fn duplicate_contract_names_both_lines() {
        let text = format!("{HEADER}C1,,,123456\nC2,,,222222\nC3,,,333333;123-456\n");
        let problems = problems(&text);
        assert_eq!(
            problems,
            vec!["customers.csv:4: contracts: item 2 is a duplicate contract number, first used on line 2"]
        );
    }

    #[test]
    fn duplicate_customer_id_names_both_lines() {
        let text = format!("{HEADER}C1,,,123456\nC1,,,222222\n");
        let problems = problems(&text);
        assert_eq!(
            problems,
            vec!["customers.csv:3: customer_id: duplicate customer id, first used on line 2"]
        );
    }

    #[test]
    fn contract_format_checked() {
        let text =
            format!("{HEADER}C1,,,12a456\nC2,,,12345\nC3,,,1234567890123\nC4,,,123456;123456\n");
        let problems = problems(&text);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[0].starts_with("customers.csv:2: contracts: item 1 must contain only digits")
        );
        assert!(problems[1].starts_with("customers.csv:3: contracts: item 1 has 5 digits"));
        assert!(problems[2].starts_with("customers.csv:4: contracts: item 1 has 13 digits"));
        assert!(problems[3].starts_with("customers.csv:5: contracts: item 2 repeats"));
    }

    #[test]
    fn all_problems_reported() {
        let text = format!("{HEADER},x,y,z\nC2\n");
        let problems = problems(&text);
        // Line 2: empty id, invalid phone, invalid mobile, invalid contract.
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.starts_with("customers.csv:2:"))
                .count(),
            4
        );
        assert!(problems
            .iter()
            .any(|p| p.starts_with("customers.csv:3: has 1 fields")));
    }

    #[test]
    fn normalise_contract_strips_separators() {
        assert_eq!(
            normalise_contract_number("1234-5678").as_deref(),
            Some("12345678")
        );
        assert_eq!(
            normalise_contract_number("12 34 56").as_deref(),
            Some("123456")
        );
        assert_eq!(normalise_contract_number("12.34"), None);
        assert_eq!(normalise_contract_number("１２３"), None);
        assert_eq!(normalise_contract_number(" - "), None);
    }

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/customers.example.csv");
        let customers = load_customers(&path, &options(), &hasher()).unwrap();
        let hasher = hasher();
        let contract = hasher.hash(HashPurpose::ContractNumber, "12345678");
        let phone = hasher.hash(HashPurpose::PhoneNumber, "+31612345601");
        let owner = customers
            .iter()
            .find(|c| c.contracts.contains(&contract))
            .unwrap();
        assert!(owner.phones.contains(&phone));
    }

    const FACTOR_HEADER: &str =
        "customer_id,phones,mobile,contracts,date_of_birth,postcode,house_number,iban_last_digits\n";

    fn settings(check_digit: CheckDigit, iban_last_digits: usize) -> CustomerFileSettings {
        CustomerFileSettings {
            default_region: country::Id::NL,
            factors: FactorSettings {
                contract_digits: 6..=12,
                contract_check_digit: check_digit,
                iban_last_digits,
            },
            today: Date::new(2026, 6, 15).unwrap(),
        }
    }

    fn parse_with(
        text: &str,
        settings: &CustomerFileSettings,
    ) -> Result<Vec<Customer>, ConfigErrors> {
        parse_customers_with_settings(text, Path::new("customers.csv"), settings, &hasher())
    }

    fn problems_with(text: &str, settings: &CustomerFileSettings) -> Vec<String> {
        parse_with(text, settings)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn knowledge_factors_hashed() {
        let text = format!(
            "{FACTOR_HEADER}C1,,,123456,14-03-1985,1234 ab,12a,NL 4300\nC2,,,234567,1972-1-2,9711EF,7-2, 04 17\nC3,,,345678,,,,\n"
        );
        let settings = settings(CheckDigit::None, 4);
        let customers = parse_with(&text.replace("NL 4300", "4300"), &settings).unwrap();
        let hasher = hasher();

        let first = &customers[0];
        assert_eq!(
            first.date_of_birth,
            Some(hasher.hash(HashPurpose::DateOfBirth, "14031985"))
        );
        assert_eq!(
            first.postcode,
            Some(hasher.hash(HashPurpose::Postcode, "1234:12"))
        );
        assert_eq!(
            first.iban_last_digits,
            Some(hasher.hash(HashPurpose::IbanLastDigits, "4300"))
        );

        let second = &customers[1];
        assert_eq!(
            second.date_of_birth,
            Some(hasher.hash(HashPurpose::DateOfBirth, "02011972"))
        );
        assert_eq!(
            second.postcode,
            Some(hasher.hash(HashPurpose::Postcode, "9711:7"))
        );
        assert_eq!(
            second.iban_last_digits,
            Some(hasher.hash(HashPurpose::IbanLastDigits, "0417"))
        );

        let third = &customers[2];
        assert_eq!(third.date_of_birth, None);
        assert_eq!(third.postcode, None);
        assert_eq!(third.iban_last_digits, None);
    }

    #[test]
    fn file_and_caller_entry_hash_alike() {
        let settings = settings(CheckDigit::None, 4);
        let text = format!("{FACTOR_HEADER}C1,,,123456,1985-03-14,1234 AB,012,4300\n");
        let customer = parse_with(&text, &settings).unwrap().remove(0);
        let hasher = hasher();

        let typed = |factor: Factor, digits: &str, purpose: HashPurpose| {
            let entry = normalise_entry(factor, digits, &settings.factors, settings.today).unwrap();
            Some(hasher.hash(purpose, &entry))
        };
        assert_eq!(
            customer.date_of_birth,
            typed(Factor::DateOfBirth, "14031985", HashPurpose::DateOfBirth)
        );
        assert_eq!(
            customer.postcode,
            typed(Factor::Postcode, "123412", HashPurpose::Postcode)
        );
        assert_eq!(
            customer.iban_last_digits,
            typed(Factor::IbanLastDigits, "4300", HashPurpose::IbanLastDigits)
        );
    }

    #[test]
    fn iban_digits_keep_configured_count() {
        let text = format!("{FACTOR_HEADER}C1,,,123456,,,,4300\n");
        let customer = parse_with(&text, &settings(CheckDigit::None, 2))
            .unwrap()
            .remove(0);
        assert_eq!(
            customer.iban_last_digits,
            Some(hasher().hash(HashPurpose::IbanLastDigits, "00"))
        );

        let text = format!("{FACTOR_HEADER}C1,,,123456,,,,43\n");
        assert_eq!(
            problems_with(&text, &settings(CheckDigit::None, 4)),
            vec!["customers.csv:2: iban_last_digits: has 2 digits, but factors.iban_last_digits asks the caller for 4"]
        );

        let text = format!("{FACTOR_HEADER}C1,,,123456,,,,164300\n");
        assert_eq!(
            problems_with(&text, &settings(CheckDigit::None, 4)),
            vec!["customers.csv:2: iban_last_digits: must be 1 to 4 digits: only the end of the IBAN, never all of it"]
        );
    }

    #[test]
    fn row_with_wrong_field_count_rejected() {
        let text = "customer_id,phones,mobile,contracts,date_of_birth\nC1,+31612345601,,12345678\nC2,+31612345602,,23456789,01-01-1980,extra\n";

        let errors = parse(text).expect_err("rows with too few or too many fields");

        assert_eq!(errors.problems.len(), 2, "{errors}");
        assert_eq!(errors.problems[0].line, Some(2));
        assert_eq!(errors.problems[1].line, Some(3));
        assert!(
            errors.problems[0].message.contains("the header has 5"),
            "{errors}"
        );
    }

    #[test]
    fn iban_with_separators_rejected() {
        let text =
            "customer_id,phones,mobile,contracts\nNL91-ABNA-0417-1643-00,+31612345601,,12345678\n";

        let errors = parse(text).expect_err("a full IBAN with dashes");

        assert!(errors.to_string().contains("IBAN"), "{errors}");
    }

    #[test]
    fn full_iban_rejected_in_any_column() {
        let iban = "NL91 ABNA 0417 1643 00";
        let text = format!(
            "{FACTOR_HEADER}C1,,,123456,,,,{iban}\n{iban},,,234567,,,,\nC3,,,345678;NL91ABNA0417164300,,,,\n"
        );
        let problems = problems_with(&text, &settings(CheckDigit::None, 4));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with(
            "customers.csv:2: iban_last_digits: looks like a full IBAN; ivr-verify never stores a full IBAN, because"
        ));
        assert!(problems[1].starts_with("customers.csv:3: customer_id: looks like a full IBAN"));
        assert!(problems[2].starts_with("customers.csv:4: contracts: looks like a full IBAN"));
        for problem in &problems {
            assert!(!problem.contains("0417"), "{problem}");
        }
    }

    #[test]
    fn forbidden_columns_rejected() {
        let text = "customer_id,phones,mobile,contracts,bsn,wachtwoord,full_iban\nC1,,,123456,,,\n";
        let problems = problems(text);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with(
            "customers.csv:1: bsn: column `bsn` would ask for a BSN (citizen service number); ivr-verify never asks for or stores"
        ));
        assert!(problems[1].starts_with(
            "customers.csv:1: wachtwoord: column `wachtwoord` would ask for a password"
        ));
        assert!(problems[2].starts_with(
            "customers.csv:1: full_iban: column `full_iban` would ask for a full IBAN"
        ));
    }

    #[test]
    fn postcode_needs_house_number() {
        let text = "customer_id,phones,mobile,contracts,postcode\nC1,,,123456,1234AB\n";
        assert_eq!(
            problems(text),
            vec!["customers.csv:1: columns postcode and house_number must both be present, because the caller enters both"]
        );

        let text = format!("{FACTOR_HEADER}C1,,,123456,,1234 AB,,\nC2,,,234567,,,12,\n");
        assert_eq!(
            problems_with(&text, &settings(CheckDigit::None, 4)),
            vec![
                "customers.csv:2: house_number: is empty, but postcode is set; a caller enters both",
                "customers.csv:3: postcode: is empty, but house_number is set; a caller enters both",
            ]
        );
    }

    #[test]
    fn postcode_and_house_number_checked() {
        let text = format!(
            "{FACTOR_HEADER}C1,,,123456,,12345,1,\nC2,,,234567,,0123 AB,1,\nC3,,,345678,,1234 AB,a12,\nC4,,,456789,,1234 AB,123456,\nC5,,,567890,,1234 AB,0,\n"
        );
        let problems = problems_with(&text, &settings(CheckDigit::None, 4));
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].starts_with("customers.csv:2: postcode: is not a Dutch postcode"));
        assert!(problems[1]
            .starts_with("customers.csv:3: postcode: the postcode digits are below 1000"));
        assert!(
            problems[2].starts_with("customers.csv:4: house_number: must start with 1 to 5 digits")
        );
        assert!(
            problems[3].starts_with("customers.csv:5: house_number: must start with 1 to 5 digits")
        );
        assert!(problems[4].starts_with("customers.csv:6: postcode: the house number is 0"));
    }

    #[test]
    fn date_of_birth_checked_without_echo() {
        let text = format!(
            "{FACTOR_HEADER}C1,,,123456,31-02-1985,,,\nC2,,,234567,2030-01-01,,,\nC3,,,345678,14/03/1985,,,\nC4,,,456789,01-01-1899,,,\n"
        );
        let problems = problems_with(&text, &settings(CheckDigit::None, 4));
        assert_eq!(
            problems,
            vec![
                "customers.csv:2: date_of_birth: is not a calendar date; check day and month",
                "customers.csv:3: date_of_birth: the date of birth is in the future",
                "customers.csv:4: date_of_birth: is not a date; write DD-MM-YYYY or YYYY-MM-DD",
                "customers.csv:5: date_of_birth: the year of birth is before 1900",
            ]
        );
    }

    #[test]
    fn contract_check_digit_enforced() {
        // 79927398713 passes the Luhn check; 79927398710 does not.
        let text = format!("{HEADER}C1,,,79927398713\nC2,,,79927398710\n");
        let problems = problems_with(&text, &settings(CheckDigit::Luhn, 4));
        assert_eq!(
            problems,
            vec!["customers.csv:3: contracts: item 1: the contract number fails its luhn check digit (flow.contract_check_digit), so a caller could never enter it"]
        );
    }

    #[test]
    fn duplicate_optional_column_rejected() {
        let text =
            "customer_id,phones,mobile,contracts,date_of_birth,date_of_birth\nC1,,,123456,,\n";
        assert_eq!(
            problems(text),
            vec!["customers.csv:1: date_of_birth: column appears twice"]
        );
    }

    #[test]
    fn example_file_has_factors() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/customers.example.csv");
        let settings = settings(CheckDigit::None, 4);
        let customers = load_customers_with_settings(&path, &settings, &hasher()).unwrap();
        assert!(customers.len() >= 3);
        for customer in &customers {
            assert!(customer.date_of_birth.is_some(), "{}", customer.customer_id);
            assert!(customer.postcode.is_some(), "{}", customer.customer_id);
            assert!(
                customer.iban_last_digits.is_some(),
                "{}",
                customer.customer_id
            );
        }
        assert!(customers.iter().any(|c| c.mobile_e164.is_none()));
        assert!(customers.iter().any(|c| c.mobile_e164.is_some()));
    }

    #[test]
    fn missing_file_is_one_problem() {
        let result = load_customers(
            Path::new("/nonexistent/customers.csv"),
            &options(),
            &hasher(),
        );
        let errors = result.unwrap_err();
        assert_eq!(errors.problems.len(), 1);
        assert!(errors.problems[0]
            .message
            .starts_with("failed to read customers file"));
    }
}
