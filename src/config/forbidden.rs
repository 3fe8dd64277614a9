//! Data the service never asks for or stores: a full IBAN, a card number, a
//! password or PIN, or a BSN (Dutch citizen service number).
//!
//! Names of factors, levels, request types, prompts and customers-file
//! columns are checked against these categories, so that no configuration
//! can make a call ask for such data. A name is split into lowercase word
//! parts at every non-alphanumeric character and at lower-to-upper case
//! changes (`fullIban` and `full-IBAN` both give `full`, `iban`), and the
//! parts are matched, not substrings, so `spinnaker` or `opinion` pass.

use std::fmt;

/// A category of data that is never asked for or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenData {
    /// A full IBAN or bank account number.
    FullIban,
    /// A payment card number or its security code.
    CardNumber,
    /// A password.
    Password,
    /// A PIN.
    Pin,
    /// A BSN (burgerservicenummer), the Dutch citizen service number.
    Bsn,
}

impl ForbiddenData {
    /// Returns the category with an article, for messages.
    fn description(self) -> &'static str {
        match self {
            ForbiddenData::FullIban => "a full IBAN",
            ForbiddenData::CardNumber => "a card number",
            ForbiddenData::Password => "a password",
            ForbiddenData::Pin => "a PIN",
            ForbiddenData::Bsn => "a BSN (citizen service number)",
        }
    }

    /// Returns why the service never asks for it, and what to use instead.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            ForbiddenData::FullIban => {
                "it is printed on every invoice, so it proves little, and with a name it is enough to set up a direct debit in the customer's name; use iban_last_digits (at most 4 trailing digits) instead"
            }
            ForbiddenData::CardNumber => {
                "card data falls under PCI DSS, which would put every system that receives the digits in scope"
            }
            ForbiddenData::Password | ForbiddenData::Pin => {
                "it must stay known only to the customer, and asking for it on the phone teaches customers to give it to anyone who calls"
            }
            ForbiddenData::Bsn => {
                "Dutch law allows the BSN to be processed only where a law provides for it, and verifying callers is not such a purpose"
            }
        }
    }
}

impl fmt::Display for ForbiddenData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Word parts that on their own name forbidden data.
const SINGLE_PARTS: &[(&str, ForbiddenData)] = &[
    ("iban", ForbiddenData::FullIban),
    ("rekeningnummer", ForbiddenData::FullIban),
    ("bankrekeningnummer", ForbiddenData::FullIban),
    ("ibannummer", ForbiddenData::FullIban),
    ("cardnumber", ForbiddenData::CardNumber),
    ("creditcard", ForbiddenData::CardNumber),
    ("creditcardnumber", ForbiddenData::CardNumber),
    ("creditcardnummer", ForbiddenData::CardNumber),
    ("kaartnummer", ForbiddenData::CardNumber),
    ("pasnummer", ForbiddenData::CardNumber),
    ("cvc", ForbiddenData::CardNumber),
    ("cvv", ForbiddenData::CardNumber),
    ("password", ForbiddenData::Password),
    ("passwd", ForbiddenData::Password),
    ("passphrase", ForbiddenData::Password),
    ("wachtwoord", ForbiddenData::Password),
    ("pin", ForbiddenData::Pin),
    ("pincode", ForbiddenData::Pin),
    ("pinnummer", ForbiddenData::Pin),
    ("bsn", ForbiddenData::Bsn),
    ("burgerservicenummer", ForbiddenData::Bsn),
    ("sofinummer", ForbiddenData::Bsn),
    ("bsnnummer", ForbiddenData::Bsn),
    ("accountnumber", ForbiddenData::FullIban),
    ("bankaccount", ForbiddenData::FullIban),
    ("rekeningnr", ForbiddenData::FullIban),
    ("ibanfull", ForbiddenData::FullIban),
    ("fulliban", ForbiddenData::FullIban),
    ("securitycode", ForbiddenData::CardNumber),
    ("kaartnr", ForbiddenData::CardNumber),
    ("creditcardnr", ForbiddenData::CardNumber),
    ("debitcard", ForbiddenData::CardNumber),
    ("passcode", ForbiddenData::Password),
    ("pwd", ForbiddenData::Password),
];

/// Word parts that name forbidden data when followed only by digits, as in
/// `pin1` or `cvv2`.
const NUMBERED_PARTS: &[(&str, ForbiddenData)] = &[
    ("pin", ForbiddenData::Pin),
    ("cvv", ForbiddenData::CardNumber),
    ("cvc", ForbiddenData::CardNumber),
    ("bsn", ForbiddenData::Bsn),
];

/// Word parts that say a name is about a whole value, so an IBAN name with
/// them is never only about its trailing digits.
const WHOLE_VALUE_PARTS: &[&str] = &["full", "volledig", "volledige", "complete", "whole"];

/// Consecutive word parts that together name forbidden data.
const PART_SEQUENCES: &[(&[&str], ForbiddenData)] = &[
    (&["account", "number"], ForbiddenData::FullIban),
    (&["bank", "account"], ForbiddenData::FullIban),
    (&["rekening", "nummer"], ForbiddenData::FullIban),
    (&["card", "number"], ForbiddenData::CardNumber),
    (&["card", "nr"], ForbiddenData::CardNumber),
    (&["credit", "card"], ForbiddenData::CardNumber),
    (&["debit", "card"], ForbiddenData::CardNumber),
    (&["kaart", "nummer"], ForbiddenData::CardNumber),
    (&["pas", "nummer"], ForbiddenData::CardNumber),
    (&["security", "code"], ForbiddenData::CardNumber),
    (&["pass", "word"], ForbiddenData::Password),
    (&["pin", "code"], ForbiddenData::Pin),
    (&["citizen", "service", "number"], ForbiddenData::Bsn),
    (&["burger", "service", "nummer"], ForbiddenData::Bsn),
    (&["sofi", "nummer"], ForbiddenData::Bsn),
    (&["sofi", "number"], ForbiddenData::Bsn),
    (&["cc", "number"], ForbiddenData::CardNumber),
    (&["cc", "nr"], ForbiddenData::CardNumber),
    (&["card", "no"], ForbiddenData::CardNumber),
    (&["rekening", "nr"], ForbiddenData::FullIban),
];

/// Word parts that turn an IBAN name into a name for its trailing digits,
/// as in `iban_last_digits`.
const TRAILING_DIGITS_PARTS: &[&str] = &["last", "laatste", "tail", "suffix"];

/// Returns the forbidden data that `name` would ask for or store, if any.
#[must_use]
pub fn forbidden_data(name: &str) -> Option<ForbiddenData> {
    let parts = word_parts(name);
    let whole_value = parts
        .iter()
        .any(|part| WHOLE_VALUE_PARTS.contains(&part.as_str()));
    let trailing_digits = !whole_value
        && parts
            .iter()
            .any(|part| TRAILING_DIGITS_PARTS.iter().any(|t| part.starts_with(t)));

    let single = parts.iter().find_map(|part| {
        SINGLE_PARTS
            .iter()
            .find(|(word, _)| word == part)
            .map(|(_, data)| *data)
    });
    let sequence = PART_SEQUENCES.iter().find_map(|(sequence, data)| {
        parts
            .windows(sequence.len())
            .any(|window| window.iter().zip(sequence.iter()).all(|(a, b)| a == b))
            .then_some(*data)
    });

    let numbered = parts.iter().find_map(|part| {
        NUMBERED_PARTS.iter().find_map(|(word, data)| {
            let digits = part.strip_prefix(word)?;
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(*data)
        })
    });

    let found = single.or(sequence).or(numbered)?;
    if found == ForbiddenData::FullIban && trailing_digits {
        return None;
    }
    Some(found)
}

/// Returns the problem message for a `kind` (such as "factor" or "column")
/// called `name` that asks for `data`.
#[must_use]
pub fn forbidden_message(kind: &str, name: &str, data: ForbiddenData) -> String {
    format!(
        "{kind} `{name}` would ask for {data}; ivr-verify never asks for or stores {data}, because {}",
        data.reason()
    )
}

/// Splits a name into lowercase alphanumeric word parts.
fn word_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;

    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_detected() {
        let cases = [
            ("iban", ForbiddenData::FullIban),
            ("full_iban", ForbiddenData::FullIban),
            ("fullIBAN", ForbiddenData::FullIban),
            ("IBAN", ForbiddenData::FullIban),
            ("enter_iban", ForbiddenData::FullIban),
            ("bank_account_number", ForbiddenData::FullIban),
            ("rekeningnummer", ForbiddenData::FullIban),
            ("bsn", ForbiddenData::Bsn),
            ("ask_BSN", ForbiddenData::Bsn),
            ("burgerservicenummer", ForbiddenData::Bsn),
            ("citizen-service-number", ForbiddenData::Bsn),
            ("card_number", ForbiddenData::CardNumber),
            ("creditcard", ForbiddenData::CardNumber),
            ("creditCard", ForbiddenData::CardNumber),
            ("enter_cvc", ForbiddenData::CardNumber),
            ("pasnummer", ForbiddenData::CardNumber),
            ("password", ForbiddenData::Password),
            ("wachtwoord", ForbiddenData::Password),
            ("enter_password", ForbiddenData::Password),
            ("pin", ForbiddenData::Pin),
            ("PIN", ForbiddenData::Pin),
            ("pincode", ForbiddenData::Pin),
            ("ask_pin_code", ForbiddenData::Pin),
            ("accountnumber", ForbiddenData::FullIban),
            ("bankaccount", ForbiddenData::FullIban),
            ("rekeningnr", ForbiddenData::FullIban),
            ("ibanfull", ForbiddenData::FullIban),
            ("full_iban_tail", ForbiddenData::FullIban),
            ("securitycode", ForbiddenData::CardNumber),
            ("cvv2", ForbiddenData::CardNumber),
            ("cc_number", ForbiddenData::CardNumber),
            ("card_no", ForbiddenData::CardNumber),
            ("kaartnr", ForbiddenData::CardNumber),
            ("creditcardnr", ForbiddenData::CardNumber),
            ("debitcard", ForbiddenData::CardNumber),
            ("passcode", ForbiddenData::Password),
            ("pwd", ForbiddenData::Password),
            ("sofi_nummer", ForbiddenData::Bsn),
            ("bsnnummer", ForbiddenData::Bsn),
            ("pin1", ForbiddenData::Pin),
        ];
        for (name, expected) in cases {
            assert_eq!(forbidden_data(name), Some(expected), "{name}");
        }
    }

    #[test]
    fn harmless_names_pass() {
        for name in [
            "iban_last_digits",
            "ibanLastDigits",
            "laatste_iban_cijfers",
            "contract_number",
            "date_of_birth",
            "postcode",
            "sms_otp",
            "caller_id_match",
            "spinnaker",
            "opinion",
            "enter_contract_number",
            "what_we_never_ask",
            "financial_change",
            "house_number",
            "customer_id",
        ] {
            assert_eq!(forbidden_data(name), None, "{name}");
        }
    }

    #[test]
    fn message_names_data_and_reason() {
        let message = forbidden_message("factor", "full_iban", ForbiddenData::FullIban);
        assert!(message.starts_with(
            "factor `full_iban` would ask for a full IBAN; ivr-verify never asks for or stores a full IBAN, because"
        ));
        assert!(message.contains("iban_last_digits"));
    }

    #[test]
    fn word_parts_split() {
        assert_eq!(word_parts("fullIban"), vec!["full", "iban"]);
        assert_eq!(word_parts("ask-PIN code"), vec!["ask", "pin", "code"]);
        assert_eq!(word_parts("IBAN"), vec!["iban"]);
        assert_eq!(word_parts("__"), Vec::<String>::new());
    }
}
