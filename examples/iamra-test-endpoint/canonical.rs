//! The endpoint's own SigV4-X509 canonicaliser (independent of the `iamra` library).
//!
//! Canonical request (SigV4 shape):
//!
//! ```text
//! METHOD\n
//! PATH (exactly as sent)\n
//! CANONICAL QUERY\n
//! name:value\n   (one line per signed header, in SignedHeaders order)
//! \n
//! signed;header;names\n
//! hex(SHA-256(body))
//! ```
//!
//! * Query: split on `&` (empty pieces dropped), each piece split at its first
//!   `=`, name and value percent-decoded (a `+` stays a literal `+`), re-encoded
//!   with the RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~` kept, everything
//!   else `%XX` upper case), pairs sorted by encoded name then encoded value,
//!   joined as `name=value` with `&`.
//! * Header values: every occurrence of the header (names compared
//!   case-insensitively) in the order received, each trimmed of spaces and tabs
//!   with inner runs of spaces collapsed to one, joined with `,`.
//!
//! String to sign: `ALG\nX-Amz-Date\nSCOPE\nhex(SHA-256(canonical request))`.

use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

/// Percent-encodes raw bytes with the RFC 3986 unreserved set, upper-case `%XX`.
fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs (bytes, lossless).
pub fn decode_query(raw: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (
                percent_decode_str(name).collect::<Vec<u8>>(),
                percent_decode_str(value).collect::<Vec<u8>>(),
            )
        })
        .collect()
}

/// The canonical query string of a raw query (see the module docs).
pub fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = decode_query(raw)
        .into_iter()
        .map(|(n, v)| (encode_bytes(&n), encode_bytes(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses inner runs of spaces to one space.
pub fn normalise_header_value(value: &str) -> String {
    let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
    let mut out = String::with_capacity(trimmed.len());
    let mut last_space = false;
    for c in trimmed.chars() {
        if c == ' ' {
            if !last_space {
                out.push(c);
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// All values of header `name` (case-insensitive), in the order received.
pub fn header_values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The canonical value of header `name`: normalised occurrences joined with `,`.
pub fn canonical_header_value(headers: &[(String, String)], name: &str) -> String {
    header_values(headers, name)
        .into_iter()
        .map(normalise_header_value)
        .collect::<Vec<_>>()
        .join(",")
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Inputs of the canonical request.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalInput<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Path exactly as sent, e.g. `/sessions`.
    pub path: &'a str,
    /// Raw query string (after `?`, empty if none).
    pub query: &'a str,
    /// Every header received, in order (`Authorization` may be among them).
    pub headers: &'a [(String, String)],
    /// The signed header names (lower case, sorted), from `SignedHeaders=`.
    pub signed_headers: &'a [&'a str],
    /// Exact request body.
    pub body: &'a [u8],
}

/// Builds the canonical request (see the module docs).
pub fn canonical_request(input: &CanonicalInput<'_>) -> String {
    let mut out = String::new();
    out.push_str(input.method);
    out.push('\n');
    out.push_str(input.path);
    out.push('\n');
    out.push_str(&canonical_query(input.query));
    out.push('\n');
    for name in input.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(input.headers, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&input.signed_headers.join(";"));
    out.push('\n');
    out.push_str(&sha256_hex(input.body));
    out
}

/// Builds the string to sign from the algorithm, `X-Amz-Date`, scope and canonical request.
pub fn string_to_sign(algorithm: &str, amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{algorithm}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query("b=2&a=x%3ay&a=%41b+c&&c"),
            "a=Ab%2Bc&a=x%3Ay&b=2&c="
        );
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("k=%7e%2d%20"), "k=~-%20");
        assert_eq!(canonical_query("k=%zz"), "k=%25zz");
    }

    #[test]
    fn query_with_non_utf8_bytes_is_reencoded_bytewise() {
        assert_eq!(canonical_query("k=%FF%fe"), "k=%FF%FE");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let headers = vec![
            ("X-A".to_string(), "  one   two  ".to_string()),
            ("x-a".to_string(), "three".to_string()),
            ("Other".to_string(), "x".to_string()),
        ];
        assert_eq!(canonical_header_value(&headers, "x-a"), "one two,three");
        assert_eq!(
            normalise_header_value("attempt=1; max=3"),
            "attempt=1; max=3"
        );
        assert_eq!(normalise_header_value("\t a \t"), "a");
    }
}
