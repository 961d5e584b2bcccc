//! The SigV4 canonical request, exactly as the service rebuilds it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// RFC 3986 unreserved characters are left alone; everything else is `%XX`.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` with the RFC 3986 unreserved set (upper-case hex).
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// Canonicalises a raw query string: each name and value decoded (`+` is a space),
/// re-encoded, then sorted by name and value.
pub fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (decode(name), decode(value))
        })
        .map(|(n, v)| (uri_encode(&n), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// Trims a header value and collapses inner runs of spaces.
fn normalize_value(v: &str) -> String {
    v.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical header block (`name:value\n` per signed header) for the lower-case,
/// sorted `signed` names; repeated headers are joined with `,`.
pub fn canonical_headers(headers: &[(String, String)], signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| normalize_value(v))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// Builds the canonical request.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed: &[String],
    body: &[u8],
) -> String {
    let payload_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, body));
    format!(
        "{method}\n{path}\n{}\n{}\n{}\n{payload_hash}",
        canonical_query(query),
        canonical_headers(headers, signed),
        signed.join(";"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=x%3ay&c=a+b"), "a=x%3Ay&b=2&c=a%20b");
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let headers = vec![
            ("X-A".to_string(), "  a   b ".to_string()),
            ("x-a".to_string(), "c".to_string()),
        ];
        assert_eq!(canonical_headers(&headers, &["x-a".into()]), "x-a:a b,c\n");
    }
}
