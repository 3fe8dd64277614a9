//! Percent-encoding of header values embedded in a SIP URI (RFC 3261 §19.1.1).

/// Percent-encodes `value` for use as an `hvalue` in a URI's `?name=value&...` part.
///
/// RFC 3261 §25.1 allows only `unreserved` characters (alphanumerics and
/// `-_.!~*'()`) and the `hnv-unreserved` set `[]/?:+$` unescaped in an
/// `hvalue`. Every other byte of the UTF-8 encoding becomes `%XX`, so `;`
/// becomes `%3B`, `=` becomes `%3D` and `&` becomes `%26`.
pub fn escape_uri_header_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        if is_hvalue_unescaped(byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

fn is_hvalue_unescaped(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_semicolon_and_equals() {
        assert_eq!(escape_uri_header_value(";"), "%3B");
        assert_eq!(escape_uri_header_value("="), "%3D");
        assert_eq!(
            escape_uri_header_value("abc;encoding=hex"),
            "abc%3Bencoding%3Dhex"
        );
    }

    #[test]
    fn escape_keeps_unreserved_characters() {
        let unreserved = "AZaz09-_.!~*'()[]/?:+$";
        assert_eq!(escape_uri_header_value(unreserved), unreserved);
    }

    #[test]
    fn escape_separators_and_percent() {
        assert_eq!(escape_uri_header_value("a&b"), "a%26b");
        assert_eq!(escape_uri_header_value("50%"), "50%25");
        assert_eq!(escape_uri_header_value("a b"), "a%20b");
        assert_eq!(escape_uri_header_value("<sip:x@y>"), "%3Csip:x%40y%3E");
        assert_eq!(escape_uri_header_value("a,b\"c"), "a%2Cb%22c");
    }

    #[test]
    fn escape_non_ascii_as_utf8_bytes() {
        assert_eq!(escape_uri_header_value("é"), "%C3%A9");
    }
}
