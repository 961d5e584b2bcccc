//! X.509 certificates: loading (PEM or DER), the decimal serial, and the local checks
//! made before any request (validity window, leaf not a CA, supported key).

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use base64::Engine as _;
use x509_parser::prelude::*;

use crate::input::{Input, ReadError};
use crate::pem;
use crate::public_key::PublicKey;
// `doctor` names the formatter through `cert`.
pub(crate) use crate::utc::rfc3339;

/// A certificate could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file holds no certificate.
    #[error("{} holds no certificate ({found})", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
    /// The certificate bytes do not parse.
    #[error("{} holds a certificate that does not parse: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// A bundle holds a block that is not a certificate.
    #[error("{} holds a \"{label}\" block; a certificate bundle may hold only CERTIFICATE blocks", path.display())]
    UnexpectedBlock {
        /// The file.
        path: PathBuf,
        /// The label found.
        label: String,
    },
    /// The certificate's validity window has ended.
    #[error("certificate {} expired at {not_after}", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// End of validity, RFC 3339.
        not_after: String,
    },
    /// The certificate's validity window has not begun.
    #[error("certificate {} is not valid before {not_before}", path.display())]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// Start of validity, RFC 3339.
        not_before: String,
    },
    /// A CA certificate was given where an end-entity certificate is needed.
    #[error("certificate {} is a CA certificate, not an end-entity (leaf) certificate", path.display())]
    CaAsLeaf {
        /// The file.
        path: PathBuf,
    },
    /// The certificate's key is of a kind Roles Anywhere does not sign with.
    #[error("certificate {} has an unsupported {kind} key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// The key kind found.
        kind: String,
    },
    /// The serial number is negative or zero-length (RFC 5280 forbids it).
    #[error("certificate {} has a negative or empty serial number", path.display())]
    BadSerial {
        /// The file.
        path: PathBuf,
    },
    /// The serial number is longer than the 20 octets RFC 5280 allows.
    #[error("certificate {} has a {octets}-octet serial number; RFC 5280 allows at most 20", path.display())]
    SerialTooLong {
        /// The file.
        path: PathBuf,
        /// Octets of the serial's value (leading zero octets not counted).
        octets: usize,
    },
}

/// Longest serial number value accepted, in octets (RFC 5280 4.1.2.2). A DER
/// INTEGER may need one more octet (a leading zero) to keep a 20-octet value positive.
pub const MAX_SERIAL_OCTETS: usize = 20;

/// A parsed X.509 certificate with the facts iamra needs.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    source: PathBuf,
    serial_decimal: String,
    serial_hex: String,
    subject: String,
    issuer: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
    public_key: PublicKey,
}

impl Certificate {
    /// Parses one DER certificate; `source` names where it came from in errors.
    pub fn from_der(der: &[u8], source: &Path) -> Result<Self, CertError> {
        let malformed = |reason: String| CertError::Malformed {
            path: source.to_path_buf(),
            reason,
        };
        let (rest, x509) =
            X509Certificate::from_der(der).map_err(|e| malformed(short_x509_error(&e)))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the certificate".into()));
        }
        let raw_serial = x509.raw_serial();
        let serial_decimal = serial_to_decimal(raw_serial).ok_or_else(|| CertError::BadSerial {
            path: source.to_path_buf(),
        })?;
        let mut magnitude = raw_serial;
        while magnitude.len() > 1 && magnitude[0] == 0 {
            magnitude = &magnitude[1..];
        }
        if magnitude.len() > MAX_SERIAL_OCTETS {
            return Err(CertError::SerialTooLong {
                path: source.to_path_buf(),
                octets: magnitude.len(),
            });
        }
        let public_key =
            PublicKey::from_spki(x509.public_key()).map_err(|kind| CertError::UnsupportedKey {
                path: source.to_path_buf(),
                kind,
            })?;
        let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        Ok(Self {
            der: der.to_vec(),
            source: source.to_path_buf(),
            serial_decimal,
            serial_hex: hex::encode(magnitude),
            subject: x509.subject().to_string(),
            issuer: x509.issuer().to_string(),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            is_ca,
            public_key,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Standard padded base64 of the DER, as sent in `X-Amz-X509`.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }

    /// Where the certificate was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The serial number as a positive decimal integer (the `Credential=` value).
    pub fn serial_decimal(&self) -> &str {
        &self.serial_decimal
    }

    /// The serial number as lower-case hex without leading zero octets.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// Subject distinguished name (RFC 4514 style).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Issuer distinguished name (RFC 4514 style).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Start of the validity window.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the validity window.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether basicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Checks that `now` lies inside the validity window.
    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), CertError> {
        if now < self.not_before {
            return Err(CertError::NotYetValid {
                path: self.source.clone(),
                not_before: rfc3339(self.not_before),
            });
        }
        if now > self.not_after {
            return Err(CertError::Expired {
                path: self.source.clone(),
                not_after: rfc3339(self.not_after),
            });
        }
        Ok(())
    }

    /// Checks that this certificate can be the leaf of a Roles Anywhere request.
    pub fn check_leaf(&self, now: OffsetDateTime) -> Result<(), CertError> {
        if self.is_ca {
            return Err(CertError::CaAsLeaf {
                path: self.source.clone(),
            });
        }
        self.check_validity(now)
    }
}

fn short_x509_error(e: &x509_parser::nom::Err<X509Error>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated DER".into(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => match e {
            X509Error::NomError(_) | X509Error::Der(_) => "truncated or malformed DER".into(),
            other => other.to_string(),
        },
    }
}

/// Converts a DER INTEGER's content octets to a positive decimal string.
/// Returns `None` for an empty or negative integer.
pub fn serial_to_decimal(content: &[u8]) -> Option<String> {
    let first = *content.first()?;
    if first & 0x80 != 0 {
        return None;
    }
    // Repeated division by 10 on a big-endian byte string.
    let mut digits = Vec::new();
    let mut num: Vec<u8> = content.iter().copied().skip_while(|b| *b == 0).collect();
    if num.is_empty() {
        return Some("0".into());
    }
    while !num.is_empty() {
        let mut rem = 0u32;
        let mut next = Vec::with_capacity(num.len());
        for &b in &num {
            let cur = (rem << 8) | u32::from(b);
            let q = cur / 10;
            rem = cur % 10;
            if !(next.is_empty() && q == 0) {
                next.push(q as u8);
            }
        }
        digits.push(b'0' + rem as u8);
        num = next;
    }
    digits.reverse();
    String::from_utf8(digits).ok()
}

/// Loads the first certificate from a PEM or DER file.
///
/// In a PEM file the first `CERTIFICATE` block is taken, so a file holding the key
/// and the certificate together works.
pub fn load_certificate(input: &Input) -> Result<Certificate, CertError> {
    let data = input.read("certificate file")?;
    certificate_from_bytes(&data, &input.label())
}

/// Parses the first certificate in PEM or DER bytes.
pub fn certificate_from_bytes(data: &[u8], path: &Path) -> Result<Certificate, CertError> {
    if pem::looks_like_pem(data) {
        let blocks = pem::parse_all(data).map_err(|e| CertError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        match blocks.iter().find(|b| b.label == "CERTIFICATE") {
            Some(block) => Certificate::from_der(&block.der, path),
            None => Err(CertError::NoCertificate {
                path: path.to_path_buf(),
                found: describe_labels(&blocks),
            }),
        }
    } else if data.first() == Some(&0x30) {
        Certificate::from_der(data, path)
    } else {
        Err(CertError::NoCertificate {
            path: path.to_path_buf(),
            found: "neither PEM nor DER".into(),
        })
    }
}

pub(crate) fn describe_labels(blocks: &[pem::Block]) -> String {
    if blocks.is_empty() {
        return "no PEM block".into();
    }
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    format!("found {}", labels.join(", "))
}

/// Loads an intermediates bundle: every certificate in a PEM file (text between
/// blocks tolerated) or a single DER certificate.
pub fn load_chain(input: &Input) -> Result<Vec<Certificate>, CertError> {
    let data = input.read("intermediates file")?;
    let label = input.label();
    let path = label.as_path();
    if !pem::looks_like_pem(&data) {
        return certificate_from_bytes(&data, path).map(|c| vec![c]);
    }
    let blocks = pem::parse_all(&data).map_err(|e| CertError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut chain = Vec::with_capacity(blocks.len());
    for block in &blocks {
        if block.label != "CERTIFICATE" {
            return Err(CertError::UnexpectedBlock {
                path: path.to_path_buf(),
                label: block.label.clone(),
            });
        }
        chain.push(Certificate::from_der(&block.der, path)?);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_decimal_small() {
        assert_eq!(serial_to_decimal(&[0x15]).unwrap(), "21");
        assert_eq!(serial_to_decimal(&[0x00]).unwrap(), "0");
        assert_eq!(serial_to_decimal(&[0x01, 0x00]).unwrap(), "256");
    }

    #[test]
    fn serial_decimal_20_octets_high_bit() {
        // 2^159 = 730750818665451459101842416358141509827966271488
        let mut v = vec![0x00, 0x80];
        v.extend([0u8; 19]);
        assert_eq!(
            serial_to_decimal(&v).unwrap(),
            "730750818665451459101842416358141509827966271488"
        );
    }

    #[test]
    fn serial_negative_rejected() {
        assert!(serial_to_decimal(&[0x80]).is_none());
        assert!(serial_to_decimal(&[]).is_none());
    }

    /// The P-256 test certificate with its serial's content octets replaced.
    fn with_serial(serial: &[u8]) -> Vec<u8> {
        let der = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata/ec-p256/cert.der"),
        )
        .unwrap();
        crate::test_der::with_serial(&der, serial)
    }

    #[test]
    fn serials_over_20_octets_are_refused() {
        let p = Path::new("c.der");
        // 20 octets with the top bit set: a 21-octet DER INTEGER, still accepted.
        let mut twenty = vec![0x00, 0x99];
        twenty.extend([0x01; 19]);
        assert_eq!(
            Certificate::from_der(&with_serial(&twenty), p)
                .unwrap()
                .serial_hex()
                .len(),
            40
        );
        for n in [21, 40, 1000] {
            let e = Certificate::from_der(&with_serial(&vec![0x01; n]), p).unwrap_err();
            assert!(
                matches!(e, CertError::SerialTooLong { octets, .. } if octets == n),
                "{e}"
            );
        }
        assert!(matches!(
            Certificate::from_der(&with_serial(&[0x80, 1]), p).unwrap_err(),
            CertError::BadSerial { .. }
        ));
        assert!(matches!(
            Certificate::from_der(&with_serial(&[]), p).unwrap_err(),
            CertError::BadSerial { .. } | CertError::Malformed { .. }
        ));
    }
}
