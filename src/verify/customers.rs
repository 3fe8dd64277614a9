//! The customers file: the registered customers whose callers can be
//! verified.
//!
//! A CSV file with the header `customer_id,phones,mobile,contracts`. `phones`
//! and `contracts` are `;`-separated lists, and `mobile` may be empty. Lines
//! starting with `#` are comments. Contract numbers and phone numbers are
//! kept only as keyed hashes. The mobile number stays in clear because a
//! one-time code or a callback must be sent to it.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;

use phonenumber::country;

use super::caller_id::to_e164;
use super::keyed_hash::{HashPurpose, KeyedHash, KeyedHasher};
use crate::config::{ConfigErrors, Problem};

/// Columns the file must start with, in this order.
const REQUIRED_COLUMNS: [&str; 4] = ["customer_id", "phones", "mobile", "contracts"];

/// Maximum length of a customer id. The id is an internal reference, and a
/// longer one is most likely a shifted column.
const MAX_CUSTOMER_ID_LEN: usize = 64;

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
    /// (`HashPurpose::DateOfBirth`).
    pub date_of_birth: Option<KeyedHash>,
    /// Keyed hash of the 4 postcode digits and the house number as
    /// `1234:12` (`HashPurpose::Postcode`).
    pub postcode: Option<KeyedHash>,
    /// Keyed hash of the last digits of the known IBAN, as many as
    /// `factors.iban_last_digits` (1 to 4) (`HashPurpose::IbanLastDigits`).
    pub iban_last_digits: Option<KeyedHash>,
}

/// Settings that the customers file is checked against.
#[derive(Debug, Clone)]
pub struct CustomerFileOptions {
    /// Region of numbers written without a country code (`customers.default_region`).
    pub default_region: country::Id,
    /// Allowed number of contract digits, from `flow.contract_min_digits` and
    /// `flow.contract_max_digits`. A longer or shorter contract number could
    /// never be entered by a caller.
    pub contract_digits: RangeInclusive<usize>,
}

/// Reads and checks the customers file at `path`. Returns every problem found,
/// each naming its line and column, or the customers in file order.
pub fn load_customers(
    path: &Path,
    options: &CustomerFileOptions,
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
    parse_customers(&text, path, options, hasher)
}

/// Parses customers file contents. `path` is used only in problems.
pub fn parse_customers(
    text: &str,
    path: &Path,
    options: &CustomerFileOptions,
    hasher: &KeyedHasher,
) -> Result<Vec<Customer>, ConfigErrors> {
    let mut problems = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());

    // The header must name the required columns first.
    // NOTE: further columns are allowed and ignored. A later version may read
    // more knowledge factors (postcode digits, date of birth) from them.
    let header_line = first_data_line(text);
    match reader.headers() {
        Ok(headers) => {
            let found: Vec<&str> = headers.iter().take(REQUIRED_COLUMNS.len()).collect();
            if found != REQUIRED_COLUMNS {
                problems.push(Problem::new(
                    path,
                    Some(header_line),
                    None,
                    format!(
                        "header must start with `{}`, found `{}`",
                        REQUIRED_COLUMNS.join(","),
                        found.join(",")
                    ),
                ));
                return Err(ConfigErrors { problems });
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
    }

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
        let field = |index: usize| record.get(index).unwrap_or_default();

        let row = Row {
            path,
            line,
            options,
            hasher,
        };
        let problems_before = problems.len();

        let customer_id = row.customer_id(field(0), &mut problems);
        let mut phones = row.phones(field(1), &mut problems);
        let mobile_e164 = row.mobile(field(2), &mut problems);
        let contracts = row.contracts(field(3), &mut problems);

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
            date_of_birth: None,
            postcode: None,
            iban_last_digits: None,
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

/// Context for checking the fields of one record.
struct Row<'a> {
    /// File name for problems.
    path: &'a Path,
    /// Line of the record.
    line: usize,
    /// Region and contract length to check against.
    options: &'a CustomerFileOptions,
    /// Hasher for phone and contract numbers.
    hasher: &'a KeyedHasher,
}

impl Row<'_> {
    fn problem(&self, column: &str, message: String) -> Problem {
        Problem::new(self.path, Some(self.line), Some(column), message)
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
            match to_e164(item, self.options.default_region) {
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
        let e164 = match to_e164(raw, self.options.default_region) {
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
        let digits_range = &self.options.contract_digits;
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
            if !digits_range.contains(&digits.len()) {
                problems.push(self.problem(
                    "contracts",
                    format!(
                        "item {position} has {} digits, but flow.contract_min_digits and flow.contract_max_digits allow {} to {}",
                        digits.len(),
                        digits_range.start(),
                        digits_range.end()
                    ),
                ));
                continue;
            }
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
    fn extra_columns_ignored() {
        let text = "customer_id,phones,mobile,contracts,postcode\nC1,,,123456,1234AB\n";
        assert_eq!(parse(text).unwrap().len(), 1);
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
