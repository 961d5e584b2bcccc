//! `read-certificate-data` for a `pkcs11:` URI: every matching identity.
//!
//! Wire contract (the layout of aws_signing_helper's "Matching identities", with
//! more fields): the line `Matching identities`, then per certificate
//! `N) <SHA-1 fingerprint, lower-case hex> "<subject>"` followed by tab-indented
//! `URI:`, `Issuer:`, `Serial Number:` (upper-case hex), `Not Before:` and
//! `Not After:` (RFC 3339 UTC) lines; or the single line `No matching identities`.
//! Every line ends with a newline.

use std::fmt::Write as _;

use crate::cert::Certificate;

/// One identity to list.
pub struct Entry<'a> {
    /// The certificate object's full URI.
    pub uri: &'a str,
    /// The certificate.
    pub certificate: &'a Certificate,
}

/// Renders the listing.
pub fn render(entries: &[Entry<'_>]) -> String {
    if entries.is_empty() {
        return "No matching identities\n".into();
    }
    let mut out = String::from("Matching identities\n");
    for (i, e) in entries.iter().enumerate() {
        let c = e.certificate;
        let fingerprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, c.der());
        let _ = write!(
            out,
            "{}) {} \"{}\"\n\tURI: {}\n\tIssuer: \"{}\"\n\tSerial Number: {}\n\tNot Before: {}\n\tNot After: {}\n",
            i + 1,
            hex::encode(fingerprint),
            c.subject(),
            e.uri,
            c.issuer(),
            c.serial_hex().to_ascii_uppercase(),
            crate::utc::rfc3339(c.not_before()),
            crate::utc::rfc3339(c.not_after()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list() {
        assert_eq!(render(&[]), "No matching identities\n");
    }

    #[test]
    fn lists_each_identity() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("certs-testdata/ec-p256/cert.der");
        let cert = crate::cert::load_certificate(&crate::input::Input::file(path)).unwrap();
        let out = render(&[Entry {
            uri: "pkcs11:token=t;id=%01;type=cert",
            certificate: &cert,
        }]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Matching identities");
        assert!(lines[1].starts_with("1) "));
        assert!(lines[1].ends_with("\"CN=iamra-test-ec-p256\""));
        assert_eq!(lines[2], "\tURI: pkcs11:token=t;id=%01;type=cert");
        assert_eq!(lines[3], "\tIssuer: \"CN=iamra Test Intermediate CA\"");
        assert_eq!(
            lines[4],
            format!("\tSerial Number: {}", cert.serial_hex().to_uppercase())
        );
        assert_eq!(lines[5], "\tNot Before: 2026-01-01T00:00:00Z");
        assert_eq!(lines[6], "\tNot After: 2046-01-01T00:00:00Z");
    }
}
