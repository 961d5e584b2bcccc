//! Trust anchors from a CA bundle, decoded when a server chain needs them.
//!
//! A user's bundle is usually the system's (about 145 certificates on Debian, passed
//! as `AWS_CA_BUNDLE`), yet one handshake needs one or two of them. Building a
//! rustls `RootCertStore` up front decodes every anchor (and reqwest's PEM reader
//! decodes base64 in constant time, which certificates, being public, do not
//! need). Here the bundle is scanned once for certificates and their subject
//! names; at each handshake the anchors whose subject is the issuer of a
//! certificate the server presented are handed to rustls's own WebPKI verifier,
//! which then checks the chain exactly as it would against the whole bundle:
//! WebPKI only ever uses an anchor whose subject equals, byte for byte, the issuer
//! of a certificate on the path, so no other anchor could have been used.

use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// A server certificate verifier over a CA bundle, decoding anchors lazily.
#[derive(Debug)]
pub(crate) struct BundleVerifier {
    /// The bundle as read.
    pem: Vec<u8>,
    anchors: Vec<Anchor>,
    provider: Arc<CryptoProvider>,
}

#[derive(Debug)]
struct Anchor {
    /// The base64 text of the certificate in `pem` (line breaks included).
    body: Range<usize>,
    /// Its subject `Name` (tag and length included).
    subject: Vec<u8>,
}

/// Base64 characters decoded to find a subject: 768 bytes of DER, past the subject
/// of all but unusual certificates (the rest are decoded whole).
const PREFIX: usize = 1024;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

impl BundleVerifier {
    /// Reads the `CERTIFICATE` blocks of a PEM bundle (other blocks are skipped,
    /// as reqwest's reader skips them), decoding of each only what holds its
    /// subject. The error completes "CA bundle PATH …".
    pub(crate) fn from_pem(pem: Vec<u8>, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let begin = memchr::memmem::Finder::new(BEGIN);
        let end = memchr::memmem::Finder::new(END);
        let mut anchors = Vec::new();
        let mut at = 0;
        while let Some(found) = begin.find(&pem[at..]) {
            let start = at + found + BEGIN.len();
            let len = end
                .find(&pem[start..])
                .ok_or("is not a PEM certificate bundle (a block has no END line)")?;
            let body = start..start + len;
            let subject = subject_of(&pem[body.clone()])?.ok_or_else(|| {
                format!(
                    "holds a certificate that does not parse (certificate {})",
                    anchors.len() + 1
                )
            })?;
            anchors.push(Anchor { body, subject });
            at = start + len + END.len();
        }
        if anchors.is_empty() {
            return Err("holds no certificate".into());
        }
        Ok(BundleVerifier {
            pem,
            anchors,
            provider,
        })
    }

    /// The anchors that may issue a certificate of the presented chain.
    fn roots_for(&self, presented: &[&CertificateDer<'_>]) -> RootCertStore {
        let issuers: Vec<&[u8]> = presented
            .iter()
            .filter_map(|c| names(c).map(|(issuer, _)| issuer))
            .collect();
        let mut roots = RootCertStore::empty();
        for anchor in &self.anchors {
            if issuers.contains(&anchor.subject.as_slice()) {
                // An anchor WebPKI cannot read could not have been used either.
                let added = decode(&self.pem[anchor.body.clone()], usize::MAX)
                    .map_err(|_| "bad base64".to_string())
                    .and_then(|der| {
                        roots
                            .add(CertificateDer::from(der))
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = added {
                    tracing::debug!(error = %e, "skipping a CA certificate WebPKI cannot use");
                }
            }
        }
        roots
    }
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let presented: Vec<&CertificateDer<'_>> =
            std::iter::once(end_entity).chain(intermediates).collect();
        let roots = self.roots_for(&presented);
        if roots.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Decodes the first `limit` base64 characters of `text` (line breaks skipped; all of
/// it when shorter).
fn decode(text: &[u8], limit: usize) -> Result<Vec<u8>, base64::DecodeError> {
    // Copied run by run between whitespace (PEM lines are 64 characters), not byte
    // by byte: this runs for every certificate of a bundle at every call.
    let mut clean = Vec::with_capacity(text.len().min(limit));
    let mut rest = text;
    while !rest.is_empty() && clean.len() < limit {
        let run = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        let take = run.min(limit - clean.len());
        clean.extend_from_slice(&rest[..take]);
        rest = &rest[run..];
        let spaces = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        rest = &rest[spaces..];
    }
    base64::engine::general_purpose::STANDARD.decode(&clean)
}

/// The subject of the certificate whose base64 text is `text`, from a prefix when
/// it holds the subject. `Ok(None)`: not a certificate.
fn subject_of(text: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let bad = |_| "is not a PEM certificate bundle (bad base64)".to_string();
    // Most CA certificates name their subject within the first 384 bytes; the
    // rest within 768; a few need the whole certificate.
    for limit in [PREFIX / 2, PREFIX] {
        let prefix = decode(text, limit).map_err(bad)?;
        if let Some((_, subject)) = names(&prefix) {
            return Ok(Some(subject.to_vec()));
        }
        if prefix.len() < limit / 4 * 3 {
            return Ok(None);
        }
    }
    let whole = decode(text, usize::MAX).map_err(bad)?;
    Ok(names(&whole).map(|(_, subject)| subject.to_vec()))
}

/// One DER element at the start of `input`: (tag, header length, total length).
fn tlv(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
            2 + n,
        )
    };
    let total = header.checked_add(len)?;
    (total <= input.len()).then_some((tag, header, total))
}

/// The length of the tag and length octets of the element at the start of `input`.
fn header_len(input: &[u8]) -> Option<usize> {
    match *input.get(1)? {
        first if first < 0x80 => Some(2),
        first if (0x81..=0x84).contains(&first) => Some(2 + usize::from(first & 0x7f)),
        _ => None,
    }
}

/// Splits the first element off `input`: (tag, the element with its header).
fn next<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (tag, _, total) = tlv(input)?;
    let (element, rest) = input.split_at(total);
    *input = rest;
    Some((tag, element))
}

/// The issuer and subject `Name`s (with tag and length) of a certificate.
///
/// The two outer headers are read without checking that their contents are all
/// there, so that a prefix of a certificate will do.
fn names(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut fields = cert;
    for _ in 0..2 {
        if *fields.first()? != 0x30 {
            return None;
        }
        fields = fields.get(header_len(fields)?..)?;
    }
    let (mut tag, _) = next(&mut fields)?;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        (tag, _) = next(&mut fields)?;
    }
    if tag != 0x02 {
        return None;
    }
    let (_signature, _) = next(&mut fields)?;
    let (tag, issuer) = next(&mut fields)?;
    let (_validity, _) = next(&mut fields)?;
    let (tag2, subject) = next(&mut fields)?;
    (tag == 0x30 && tag2 == 0x30).then_some((issuer, subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn testdata(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/certs-testdata/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn decoding_skips_any_whitespace_and_stops_at_the_limit() {
        use base64::Engine as _;
        let der: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        // Lines of odd lengths, CRLF, tabs and spaces, leading and trailing.
        let mut text = b"\r\n ".to_vec();
        for (i, chunk) in b64.as_bytes().chunks(61).enumerate() {
            text.extend_from_slice(chunk);
            text.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b" \t\n" });
        }
        assert_eq!(decode(&text, usize::MAX).unwrap(), der);
        // A limit inside a line: exactly that many base64 characters decoded.
        assert_eq!(decode(&text, 100).unwrap(), der[..75]);
        assert_eq!(decode(&text, 64).unwrap(), der[..48]);
    }

    #[test]
    fn names_match_a_full_parser() {
        for path in [
            "tls/ca.pem",
            "tls/server.pem",
            "ca/root.pem",
            "ca/intermediate.pem",
            "rsa2048/cert.pem",
        ] {
            let pem = testdata(path);
            let blocks = crate::pem::parse_all(&pem).unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(&blocks[0].der).unwrap();
            let (issuer, subject) = names(&blocks[0].der).unwrap();
            assert_eq!(issuer, cert.issuer().as_raw(), "{path}");
            assert_eq!(subject, cert.subject().as_raw(), "{path}");
        }
    }

    #[test]
    fn only_the_issuers_of_the_presented_chain_are_decoded() {
        let mut bundle = testdata("ca/root.pem");
        bundle.extend(testdata("tls/ca.pem"));
        bundle.extend(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let v = BundleVerifier::from_pem(bundle.clone(), provider()).unwrap();
        assert_eq!(v.anchors.len(), 2, "the key block is skipped");
        let server = crate::pem::parse_all(&testdata("tls/server.pem"))
            .unwrap()
            .remove(0)
            .der;
        let server = CertificateDer::from(server.to_vec());
        let roots = v.roots_for(&[&server]);
        assert_eq!(roots.len(), 1, "only the TLS CA");
        // Issued by the test PKI's intermediate: neither anchor subject matches.
        let leaf = crate::pem::parse_all(&testdata("rsa2048/cert.pem"))
            .unwrap()
            .remove(0)
            .der;
        assert!(
            v.roots_for(&[&CertificateDer::from(leaf.to_vec())])
                .is_empty()
        );
    }

    #[test]
    fn broken_bundles_are_refused_with_the_reason() {
        let e = |pem: &[u8]| BundleVerifier::from_pem(pem.to_vec(), provider()).unwrap_err();
        assert_eq!(e(b""), "holds no certificate");
        assert_eq!(e(b"garbage"), "holds no certificate");
        assert_eq!(
            e(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            "is not a PEM certificate bundle (bad base64)"
        );
        assert_eq!(
            e(b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
            "is not a PEM certificate bundle (a block has no END line)"
        );
        assert_eq!(
            e(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"),
            "holds a certificate that does not parse (certificate 1)"
        );
    }
}
