//! The caller's number, taken from the SIP headers of an INVITE.
//!
//! P-Asserted-Identity (RFC 3325) is believed only from trusted peers, which
//! are the carrier, SBC or PBX in front of this service. From every other
//! source the From header is used, which the caller can set freely. Either way
//! the number is a weak signal, because caller ID can be spoofed upstream.
//! The Netherlands has no STIR/SHAKEN attestation to check it against.

use std::net::IpAddr;

use ipnet::IpNet;
use phonenumber::country;

/// Maximum digits of a number handed to the `phonenumber` parser: 15 digits
/// of E.164 (ITU-T E.164, section 6.1) plus a 2-digit international prefix
/// (`00`). Longer input is rejected before parsing.
const MAX_NUMBER_DIGITS: usize = 17;

/// Minimum digits of a subscriber number worth parsing. Shorter strings are
/// extensions or service codes, never a registered phone number.
const MIN_NUMBER_DIGITS: usize = 3;

/// Maximum length of one header value that is parsed. RFC 3261 sets no limit,
/// so this only bounds the work done on hostile input.
const MAX_HEADER_VALUE_LEN: usize = 1024;

/// The caller's number as far as this service can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerNumber {
    /// A valid number in E.164 form, such as `+31612345601`.
    E164(String),
    /// The caller asked for privacy (`Privacy: id`, `header` or `user`) or
    /// sent an anonymous URI.
    Withheld,
    /// No header carried a number that parses as a valid phone number.
    Unavailable,
}

/// Reason a string is not accepted as a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// A character other than digits, a leading `+` and the visual separators
    /// space, `-`, `.`, `(`, `)` and `/`.
    #[error("contains a character that is not a digit, a leading + or a separator")]
    InvalidCharacter,
    /// Fewer than 3 or more than 17 digits.
    #[error(
        "has {digits} digits, but a phone number has {MIN_NUMBER_DIGITS} to {MAX_NUMBER_DIGITS}"
    )]
    InvalidLength {
        /// Number of digits found.
        digits: usize,
    },
    /// The `phonenumber` crate could not parse it, or its metadata lists no
    /// such number.
    #[error("is not a valid phone number in region {region:?}; write it in international form, such as +31 6 1234 5601")]
    NotValid {
        /// Region used for numbers without a country code.
        region: country::Id,
    },
}

/// Determines the caller's number from the INVITE's headers.
///
/// `source` is the address the INVITE came from. `from` and each entry of
/// `p_asserted_identity` are header values as received (name-addr or
/// addr-spec). P-Asserted-Identity is used only when `source` lies in
/// `trusted_peers`, and From is used when it does not or when no
/// P-Asserted-Identity carries a valid number. `privacy` is the Privacy header
/// value, if present. Local numbers are read in `default_region`.
#[must_use]
pub fn determine_caller_number(
    source: IpAddr,
    trusted_peers: &[IpNet],
    from: &str,
    p_asserted_identity: &[String],
    privacy: Option<&str>,
    default_region: country::Id,
) -> CallerNumber {
    if privacy.is_some_and(privacy_hides_identity) {
        return CallerNumber::Withheld;
    }

    let trusted = trusted_peers.iter().any(|net| net.contains(&source));
    if trusted {
        // RFC 3325, section 9.1: the header may hold one sip/sips and one tel
        // URI, in one header or in two. The first valid number wins.
        let mut asserted = p_asserted_identity
            .iter()
            .flat_map(|value| split_header_values(value))
            .peekable();
        if asserted.peek().is_some() {
            let mut any_anonymous = false;
            for value in asserted {
                match number_from_header_value(value, default_region) {
                    HeaderNumber::Number(e164) => return CallerNumber::E164(e164),
                    HeaderNumber::Anonymous => any_anonymous = true,
                    HeaderNumber::None => {}
                }
            }
            if any_anonymous {
                return CallerNumber::Withheld;
            }
        }
    }

    match number_from_header_value(from, default_region) {
        HeaderNumber::Number(e164) => CallerNumber::E164(e164),
        HeaderNumber::Anonymous => CallerNumber::Withheld,
        HeaderNumber::None => CallerNumber::Unavailable,
    }
}

/// Masks an E.164 number for logs: keeps the `+`, the first three digits
/// (country code and, for +31, the first national digit, which separates
/// mobile from fixed line) and the last two digits, so `+31612345601` becomes
/// `+316******01`. Numbers of fewer than seven digits keep only the last two.
#[must_use]
pub fn mask_number(e164: &str) -> String {
    let plus = if e164.starts_with('+') { "+" } else { "" };
    let digits: Vec<char> = e164.chars().filter(|c| c.is_ascii_digit()).collect();

    let kept_head = if digits.len() >= 7 { 3 } else { 0 };
    let kept_tail = digits.len().min(2);
    let masked = digits.len().saturating_sub(kept_head + kept_tail);

    let mut out = String::with_capacity(plus.len() + digits.len());
    out.push_str(plus);
    out.extend(digits.iter().take(kept_head));
    out.extend(std::iter::repeat_n('*', masked));
    out.extend(digits.iter().skip(kept_head + masked));
    out
}

/// Normalises a phone number written in any common notation
/// (`06-12345678`, `+31 6 1234 5678`, `0031612345678`, `020 123 4567`) to
/// E.164. Numbers without a country code are read in `region`.
pub fn to_e164(raw: &str, region: country::Id) -> Result<String, PhoneNumberError> {
    let compact = compact_number(raw)?;

    // The input is now an optional `+` followed by 3 to 17 digits. The
    // `phonenumber` crate has panicked on malformed input such as `  2 22#:`
    // (reported upstream in 2021), so nothing else reaches it.
    let parsed = phonenumber::parse(Some(region), &compact)
        .map_err(|_| PhoneNumberError::NotValid { region })?;
    if !phonenumber::is_valid(&parsed) {
        return Err(PhoneNumberError::NotValid { region });
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Removes visual separators and checks that only digits and one leading `+`
/// remain, with a digit count that a phone number can have.
fn compact_number(raw: &str) -> Result<String, PhoneNumberError> {
    let trimmed = raw.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", trimmed),
    };

    let mut compact = String::with_capacity(trimmed.len());
    compact.push_str(plus);
    let mut digits = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                if digits > MAX_NUMBER_DIGITS {
                    return Err(PhoneNumberError::InvalidLength { digits });
                }
                compact.push(c);
            }
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(PhoneNumberError::InvalidCharacter),
        }
    }

    if digits < MIN_NUMBER_DIGITS {
        return Err(PhoneNumberError::InvalidLength { digits });
    }
    Ok(compact)
}

/// Returns whether a Privacy header value (RFC 3323, section 4.2: priv-values
/// separated by `;`) asks to hide the caller's identity. `id` (RFC 3325),
/// `header` and `user` do; `none`, `session` and `critical` do not.
fn privacy_hides_identity(privacy: &str) -> bool {
    privacy.split([';', ',']).map(str::trim).any(|token| {
        ["id", "header", "user"]
            .iter()
            .any(|t| token.eq_ignore_ascii_case(t))
    })
}

/// Number found in one header value.
#[derive(Debug, PartialEq, Eq)]
enum HeaderNumber {
    /// A valid number, in E.164.
    Number(String),
    /// An anonymous URI (RFC 3323, section 4.1.1.3), or `anonymous` as the
    /// user part of any sip/sips URI.
    Anonymous,
    /// No URI, a URI without a phone number, or an invalid number.
    None,
}

/// Extracts the number from one name-addr or addr-spec header value.
fn number_from_header_value(value: &str, region: country::Id) -> HeaderNumber {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return HeaderNumber::None;
    }
    let Some(uri) = extract_uri(value) else {
        return HeaderNumber::None;
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return HeaderNumber::None;
    };

    if scheme.eq_ignore_ascii_case("tel") {
        // tel:+31-6-1234-5601;phone-context=... keeps only the number.
        // NOTE: a local tel number is read in the default region, and its
        // phone-context parameter is ignored.
        let number = rest.split(';').next().unwrap_or_default();
        return match to_e164(&percent_decode(number), region) {
            Ok(e164) => HeaderNumber::Number(e164),
            Err(_) => HeaderNumber::None,
        };
    }

    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return HeaderNumber::None;
    }

    // sip:user;user-params@host;uri-params, and the user part is optional.
    let Some((userinfo, hostport)) = rest.split_once('@') else {
        return HeaderNumber::None;
    };
    let user = userinfo.split([';', ':']).next().unwrap_or_default();
    let user = percent_decode(user);
    let host = hostport.split([';', ':', '?']).next().unwrap_or_default();

    if user.eq_ignore_ascii_case("anonymous") || host.eq_ignore_ascii_case("anonymous.invalid") {
        return HeaderNumber::Anonymous;
    }

    // Many carriers omit `;user=phone`, so a user part that parses as a
    // number is taken as one either way.
    match to_e164(&user, region) {
        Ok(e164) => HeaderNumber::Number(e164),
        Err(_) => HeaderNumber::None,
    }
}

/// Returns the URI of a name-addr (`"Name" <uri>;params`) or addr-spec
/// (`uri;params`) value. In an addr-spec, parameters after the URI belong to
/// the header (RFC 3261, section 20.10), so they are cut, except that the
/// user part of a sip URI may contain `;` before the `@`.
fn extract_uri(value: &str) -> Option<&str> {
    let value = value.trim();

    // Find a `<` outside a quoted display name.
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => {
                let after = value.get(index + 1..)?;
                let end = after.find('>')?;
                return after.get(..end).map(str::trim);
            }
            _ => {}
        }
    }
    if in_quotes || value.starts_with('"') {
        // A quoted display name without an angle-bracketed URI is malformed.
        return None;
    }

    // addr-spec: header parameters start at the first `;` after the host.
    let host_start = value.find('@').map_or(0, |at| at + 1);
    let params = value
        .get(host_start..)
        .and_then(|host| host.find(';'))
        .map_or(value.len(), |offset| host_start + offset);
    value.get(..params).map(str::trim)
}

/// Splits a header value at commas outside quotes and angle brackets, because
/// one header line may carry several values (RFC 3261, section 7.3.1).
fn split_header_values(value: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_brackets = false;
    let mut escaped = false;
    for (index, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' if !in_brackets => in_quotes = !in_quotes,
            '<' if !in_quotes => in_brackets = true,
            '>' if !in_quotes => in_brackets = false,
            ',' if !in_quotes && !in_brackets => {
                values.push(value.get(start..index).unwrap_or_default().trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    values.push(value.get(start..).unwrap_or_default().trim());
    values.retain(|v| !v.is_empty());
    values
}

/// Decodes `%XX` escapes (RFC 3986, section 2.1). An invalid escape is kept
/// as written, so the result fails number parsing instead of changing.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|b| (*b as char).to_digit(16));
            let low = bytes.get(index + 2).and_then(|b| (*b as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                // Both values are below 16, so the sum fits in a byte.
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(byte);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const NL: country::Id = country::Id::NL;

    fn trusted() -> Vec<IpNet> {
        vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    fn from_trusted(from: &str, pai: &[&str], privacy: Option<&str>) -> CallerNumber {
        let pai: Vec<String> = pai.iter().map(|s| s.to_string()).collect();
        determine_caller_number(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &trusted(),
            from,
            &pai,
            privacy,
            NL,
        )
    }

    fn e164(s: &str) -> CallerNumber {
        CallerNumber::E164(s.to_string())
    }

    #[test]
    fn to_e164_common_dutch_notations() {
        let cases = [
            ("06-12345678", "+31612345678"),
            ("+31 6 1234 5678", "+31612345678"),
            ("0031612345678", "+31612345678"),
            ("020 123 4567", "+31201234567"),
            ("(020) 123-4567", "+31201234567"),
            ("+31 (0)6 12345678", "+31612345678"),
            ("+32 470 12 34 56", "+32470123456"),
        ];
        for (raw, expected) in cases {
            assert_eq!(to_e164(raw, NL).as_deref(), Ok(expected), "input {raw}");
        }
    }

    #[test]
    fn to_e164_rejects_letters() {
        assert_eq!(
            to_e164("06-1234567a", NL),
            Err(PhoneNumberError::InvalidCharacter)
        );
        assert_eq!(
            to_e164("06#12345678", NL),
            Err(PhoneNumberError::InvalidCharacter)
        );
        assert_eq!(
            to_e164("+3+1612345678", NL),
            Err(PhoneNumberError::InvalidCharacter)
        );
    }

    #[test]
    fn to_e164_rejects_bad_lengths() {
        assert_eq!(
            to_e164("12", NL),
            Err(PhoneNumberError::InvalidLength { digits: 2 })
        );
        assert_eq!(
            to_e164("", NL),
            Err(PhoneNumberError::InvalidLength { digits: 0 })
        );
        assert!(matches!(
            to_e164("123456789012345678", NL),
            Err(PhoneNumberError::InvalidLength { .. })
        ));
    }

    #[test]
    fn to_e164_rejects_invalid_numbers() {
        assert_eq!(
            to_e164("0612", NL),
            Err(PhoneNumberError::NotValid { region: NL })
        );
        assert_eq!(
            to_e164("+999 1234 5678", NL),
            Err(PhoneNumberError::NotValid { region: NL })
        );
    }

    #[test]
    fn to_e164_survives_fuzzer_panic_input() {
        // This input made `phonenumber::parse` panic in an older release.
        assert!(to_e164("  2 22#:", NL).is_err());
    }

    #[test]
    fn pai_used_from_trusted_peer() {
        let result = from_trusted(
            "<sip:alice@example.com>;tag=1",
            &["<sip:+31612345601@carrier.example;user=phone>"],
            None,
        );
        assert_eq!(result, e164("+31612345601"));
    }

    #[test]
    fn pai_ignored_from_untrusted_peer() {
        let pai = vec!["<sip:+31612345601@carrier.example;user=phone>".to_string()];
        let result = determine_caller_number(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            &trusted(),
            "<sip:0612345602@pbx.example>;tag=1",
            &pai,
            None,
            NL,
        );
        assert_eq!(result, e164("+31612345602"));
    }

    #[test]
    fn pai_trusted_over_ipv6() {
        let pai = vec!["<tel:+31612345601>".to_string()];
        let result = determine_caller_number(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            &trusted(),
            "<sip:anonymous@anonymous.invalid>",
            &pai,
            None,
            NL,
        );
        assert_eq!(result, e164("+31612345601"));
    }

    #[test]
    fn from_used_when_trusted_peer_sends_no_pai() {
        let result = from_trusted("\"Bob\" <sip:020-1234567@pbx.example>;tag=9", &[], None);
        assert_eq!(result, e164("+31201234567"));
    }

    #[test]
    fn from_used_when_pai_has_no_number() {
        let result = from_trusted(
            "<sip:0612345603@pbx.example>",
            &["<sip:reception@pbx.example>"],
            None,
        );
        assert_eq!(result, e164("+31612345603"));
    }

    #[test]
    fn pai_list_second_value_used() {
        let result = from_trusted(
            "<sip:x@y>",
            &["\"Carrier, Inc\" <sip:operator@carrier.example>, <tel:+31-6-1234-5604>"],
            None,
        );
        assert_eq!(result, e164("+31612345604"));
    }

    #[test]
    fn privacy_id_withholds() {
        let pai = ["<sip:+31612345601@carrier.example;user=phone>"];
        for privacy in ["id", "ID", "header;id", " critical ; Id ", "user"] {
            assert_eq!(
                from_trusted("<sip:+31612345601@x>", &pai, Some(privacy)),
                CallerNumber::Withheld,
                "Privacy: {privacy}"
            );
        }
    }

    #[test]
    fn privacy_none_does_not_withhold() {
        let pai = ["<sip:+31612345601@carrier.example;user=phone>"];
        for privacy in ["none", "session", "critical", "identity"] {
            assert_eq!(
                from_trusted("<sip:x@y>", &pai, Some(privacy)),
                e164("+31612345601"),
                "Privacy: {privacy}"
            );
        }
    }

    #[test]
    fn anonymous_from_withholds() {
        let cases = [
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
            "<sip:anonymous@carrier.example>;tag=1",
            "sip:Anonymous@pbx.example;tag=2",
            "<sips:caller@anonymous.invalid>",
        ];
        for from in cases {
            assert_eq!(
                from_trusted(from, &[], None),
                CallerNumber::Withheld,
                "From: {from}"
            );
        }
    }

    #[test]
    fn anonymous_pai_withholds() {
        let result = from_trusted(
            "<sip:0612345601@pbx.example>",
            &["<sip:anonymous@anonymous.invalid>"],
            None,
        );
        assert_eq!(result, CallerNumber::Withheld);
    }

    #[test]
    fn header_notations_parse() {
        let cases = [
            ("sip:+31612345601@carrier.example;tag=abc", "+31612345601"),
            (
                "<sip:+31612345601@carrier.example;user=phone>;tag=abc",
                "+31612345601",
            ),
            (
                "\"Jan <de Vries>\" <sip:0612345601@pbx.example>",
                "+31612345601",
            ),
            (
                "\"Jan \\\"JJ\\\" Jansen\" <sip:0612345601@pbx.example>",
                "+31612345601",
            ),
            ("Jan <sip:0031612345601@pbx.example:5060>", "+31612345601"),
            ("<tel:+31-6-1234-5601;phone-context=+31>", "+31612345601"),
            ("tel:06.1234.5601", "+31612345601"),
            ("<sip:%2B31612345601@carrier.example>", "+31612345601"),
            (
                "<sip:+31612345601;npdi@carrier.example;user=phone>",
                "+31612345601",
            ),
            ("<SIP:+31612345601@carrier.example>", "+31612345601"),
        ];
        for (from, expected) in cases {
            assert_eq!(
                from_trusted(from, &[], None),
                e164(expected),
                "From: {from}"
            );
        }
    }

    #[test]
    fn numberless_headers_unavailable() {
        let cases = [
            "",
            "<sip:alice@example.com>",
            "<sip:example.com>",
            "\"Unclosed <sip:0612345601@x>",
            "<sip:0612345601@x",
            "<mailto:0612345601@example.com>",
            "<sip:06123456789012345678@x>",
            "<sip:06%ZZ12345601@x>",
            "<sip:12@x>",
        ];
        for from in cases {
            assert_eq!(
                from_trusted(from, &[], None),
                CallerNumber::Unavailable,
                "From: {from}"
            );
        }
    }

    #[test]
    fn oversized_header_unavailable() {
        let from = format!("\"{}\" <sip:0612345601@x>", "a".repeat(2000));
        assert_eq!(from_trusted(&from, &[], None), CallerNumber::Unavailable);
    }

    #[test]
    fn mask_keeps_head_and_last_two() {
        assert_eq!(mask_number("+31612345601"), "+316******01");
        assert_eq!(mask_number("+31201234567"), "+312******67");
        assert_eq!(mask_number("+12345"), "+***45");
        assert_eq!(mask_number("7"), "7");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn mask_hides_middle_digits() {
        let masked = mask_number("+31612345601");
        assert!(!masked.contains("123456"));
        assert_eq!(masked.chars().filter(|c| *c == '*').count(), 6);
    }

    #[test]
    fn percent_decode_keeps_invalid_escape() {
        assert_eq!(percent_decode("%2B31"), "+31");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }
}
