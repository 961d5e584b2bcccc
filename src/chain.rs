//! Local certificate-path checks: leaf → intermediates → trust anchor, as the
//! service does, so `doctor` can say which link is broken before AWS says
//! "Untrusted Signing Certificate".

use ::time::OffsetDateTime;
use x509_parser::prelude::*;

use crate::cert::Certificate;
use crate::utc::rfc3339;

/// The first broken link of a certificate path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// No given certificate is the issuer of `subject`.
    #[error(
        "no intermediate or trust anchor is the issuer of \"{subject}\" (issuer \"{issuer}\"); is --intermediates missing?"
    )]
    NoIssuer {
        /// The certificate whose issuer is missing.
        subject: String,
        /// Its issuer name.
        issuer: String,
    },
    /// The issuer's key does not verify the signature.
    #[error("the signature on \"{subject}\" does not verify with the key of \"{issuer}\"")]
    BadSignature {
        /// The signed certificate.
        subject: String,
        /// The issuer.
        issuer: String,
    },
    /// An issuer is not a CA.
    #[error("\"{0}\" issues certificates but is not a CA (basicConstraints CA:FALSE or missing)")]
    NotCa(String),
    /// A certificate on the path is outside its validity window.
    #[error("\"{subject}\" is not valid now (valid {not_before} to {not_after})")]
    OutsideValidity {
        /// The certificate.
        subject: String,
        /// Start.
        not_before: String,
        /// End.
        not_after: String,
    },
    /// A certificate could not be parsed again.
    #[error("\"{0}\" cannot be parsed")]
    Unparsable(String),
    /// The path is longer than any real one.
    #[error("the path is longer than 10 certificates")]
    TooLong,
}

/// Verifies `issuer` signed `subject`.
fn signed_by(subject: &Certificate, issuer: &Certificate) -> Result<bool, ChainError> {
    use ring::signature as sig;
    let (_, s) = X509Certificate::from_der(subject.der())
        .map_err(|_| ChainError::Unparsable(subject.subject().into()))?;
    let (_, i) = X509Certificate::from_der(issuer.der())
        .map_err(|_| ChainError::Unparsable(issuer.subject().into()))?;
    let alg = s.signature_algorithm.algorithm.to_id_string();
    let spki = i.public_key();
    let p256 = crate::public_key::is_p256(spki);
    if let Some(set) = crate::key::MlDsaParameterSet::from_oid(&alg) {
        // ML-DSA (RFC 9881): pure, empty context, over the TBSCertificate; the
        // issuer's key must be of the same parameter set.
        let issuer_alg = spki.algorithm.algorithm.to_id_string();
        return Ok(issuer_alg == alg
            && s.signature_algorithm.parameters.is_none()
            && crate::key::mldsa_verify(
                set,
                spki.subject_public_key.data.as_ref(),
                s.tbs_certificate.as_ref(),
                s.signature_value.data.as_ref(),
            ));
    }
    let verifier: &dyn sig::VerificationAlgorithm = match alg.as_str() {
        "1.2.840.113549.1.1.11" => &sig::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &sig::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &sig::RSA_PKCS1_2048_8192_SHA512,
        "1.2.840.10045.4.3.2" if p256 => &sig::ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" if p256 => &sig::ECDSA_P256_SHA384_ASN1,
        "1.2.840.10045.4.3.2" => &sig::ECDSA_P384_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &sig::ECDSA_P384_SHA384_ASN1,
        _ => return Ok(false),
    };
    let key = sig::UnparsedPublicKey::new(verifier, spki.subject_public_key.data.as_ref());
    Ok(key
        .verify(s.tbs_certificate.as_ref(), s.signature_value.data.as_ref())
        .is_ok())
}

fn check_window(c: &Certificate, now: OffsetDateTime) -> Result<(), ChainError> {
    if now < c.not_before() || now > c.not_after() {
        return Err(ChainError::OutsideValidity {
            subject: c.subject().into(),
            not_before: rfc3339(c.not_before()),
            not_after: rfc3339(c.not_after()),
        });
    }
    Ok(())
}

/// Builds and checks the path from `leaf` through `intermediates` to one of
/// `anchors`; returns the subjects on the path, leaf first, anchor last.
pub fn verify_path(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    now: OffsetDateTime,
) -> Result<Vec<String>, ChainError> {
    check_window(leaf, now)?;
    let mut path = vec![leaf.subject().to_string()];
    let mut current = leaf.clone();
    for _ in 0..10 {
        // A trust anchor that signed the current certificate ends the path.
        let mut name_match = None;
        for anchor in anchors {
            if anchor.subject() == current.issuer() {
                name_match = Some(anchor);
                if signed_by(&current, anchor)? {
                    if !anchor.is_ca() {
                        return Err(ChainError::NotCa(anchor.subject().into()));
                    }
                    check_window(anchor, now)?;
                    path.push(anchor.subject().to_string());
                    return Ok(path);
                }
            }
        }
        let next = intermediates
            .iter()
            .filter(|c| c.subject() == current.issuer() && c.der() != current.der())
            .find_map(|c| match signed_by(&current, c) {
                Ok(true) => Some(Ok(c)),
                Ok(false) => {
                    name_match = Some(c);
                    None
                }
                Err(e) => Some(Err(e)),
            })
            .transpose()?;
        let Some(next) = next else {
            return Err(match name_match {
                Some(issuer) => ChainError::BadSignature {
                    subject: current.subject().into(),
                    issuer: issuer.subject().into(),
                },
                None => ChainError::NoIssuer {
                    subject: current.subject().into(),
                    issuer: current.issuer().into(),
                },
            });
        };
        if !next.is_ca() {
            return Err(ChainError::NotCa(next.subject().into()));
        }
        check_window(next, now)?;
        path.push(next.subject().to_string());
        current = next.clone();
    }
    Err(ChainError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(rel: &str) -> Certificate {
        crate::cert::load_certificate(&crate::input::Input::file(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("certs-testdata")
                .join(rel),
        ))
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        ::time::macros::datetime!(2030-01-01 0:00 UTC)
    }

    #[test]
    fn leaf_intermediate_root_verifies() {
        let path = verify_path(
            &load("rsa2048/cert.pem"),
            &[load("ca/intermediate.pem")],
            &[load("ca/root.pem")],
            now(),
        )
        .unwrap();
        assert_eq!(path.len(), 3);
        // The intermediate may also be the anchor.
        verify_path(
            &load("ec-p384/cert.pem"),
            &[],
            &[load("ca/intermediate.pem")],
            now(),
        )
        .unwrap();
    }

    #[test]
    fn names_the_first_broken_link() {
        let e = verify_path(
            &load("rsa2048/cert.pem"),
            &[],
            &[load("ca/root.pem")],
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, ChainError::NoIssuer { .. }), "{e}");
        let e = verify_path(
            &load("untrusted/cert.pem"),
            &[load("ca/intermediate.pem")],
            &[load("ca/root.pem")],
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, ChainError::NoIssuer { .. }), "{e}");
        let e = verify_path(
            &load("expired/cert.pem"),
            &[load("ca/intermediate.pem")],
            &[load("ca/root.pem")],
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, ChainError::OutsideValidity { .. }), "{e}");
    }
}
