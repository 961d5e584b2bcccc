//! Output sinks: what iamra prints or serves. Each module documents its wire contract.

pub mod certificate_data;
pub mod credentials_file;
pub mod matching_identities;
pub mod process;
pub mod server;
pub mod sign_string;

/// One piece of a document built by [`secret_document`].
pub(crate) enum Part<'a> {
    /// Text copied as it is.
    Raw(&'a str),
    /// A value written as a JSON string (quoted and escaped as serde_json does).
    Json(&'a str),
}

/// Builds a document that holds secrets in one buffer, allocated once at its final
/// size (so that no reallocation leaves a stray copy behind) and zeroized on drop.
/// `format!` and `serde_json::to_string` grow their buffers, and the old ones are
/// freed without wiping.
pub(crate) fn secret_document(parts: &[Part<'_>]) -> zeroize::Zeroizing<String> {
    let capacity = parts
        .iter()
        .map(|p| match p {
            Part::Raw(s) => s.len(),
            // Worst case: every byte a \u00XX escape, plus the quotes.
            Part::Json(s) => s.len().saturating_mul(6).saturating_add(2),
        })
        .fold(0usize, usize::saturating_add);
    let mut out = zeroize::Zeroizing::new(String::with_capacity(capacity));
    for part in parts {
        match part {
            Part::Raw(s) => out.push_str(s),
            Part::Json(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        c if u32::from(c) < 0x20 => {
                            const HEX: &[u8; 16] = b"0123456789abcdef";
                            let b = u32::from(c) as usize;
                            out.push_str("\\u00");
                            out.push(char::from(HEX[b >> 4]));
                            out.push(char::from(HEX[b & 0xf]));
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
        }
    }
    debug_assert!(out.len() <= capacity);
    out
}

#[cfg(test)]
mod secret_document_tests {
    use super::*;

    #[test]
    fn json_strings_match_serde_json_without_reallocating() {
        for s in [
            "plain",
            "a\"b\\c",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}\u{8}\u{c}",
            "é€😀",
            "",
        ] {
            let doc = secret_document(&[Part::Raw("{\"k\":"), Part::Json(s), Part::Raw("}")]);
            let expected = format!("{{\"k\":{}}}", serde_json::to_string(s).unwrap());
            assert_eq!(doc.as_str(), expected);
            let again: serde_json::Value = serde_json::from_str(&doc).unwrap();
            assert_eq!(again["k"], s);
        }
    }
}
