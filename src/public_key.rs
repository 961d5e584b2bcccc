//! Public keys and signature families: what a certificate holds and a key signs with.
//!
//! A leaf module: `cert` reads a certificate's [`PublicKey`] and `key` matches
//! private keys against it, both importing it from here. Re-exported as
//! `iamra::key::{PublicKey, KeyAlgorithm, MlDsaParameterSet}`.

use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The signature families Roles Anywhere accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSASSA-PKCS1-v1_5.
    Rsa,
    /// ECDSA with a DER `Ecdsa-Sig-Value`.
    Ecdsa,
    /// Pure ML-DSA (FIPS 204), empty context, over the message itself.
    MlDsa,
}

impl KeyAlgorithm {
    /// The SigV4-X509 algorithm name used in `Authorization`.
    pub fn sigv4_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "AWS4-X509-RSA-SHA256",
            KeyAlgorithm::Ecdsa => "AWS4-X509-ECDSA-SHA256",
            KeyAlgorithm::MlDsa => "AWS4-X509-MLDSA",
        }
    }
}

/// The OID arc of NIST's signature algorithms (ML-DSA, SLH-DSA, HashML-DSA).
const NIST_SIG_ARC: &str = "2.16.840.1.101.3.4.3.";

/// An ML-DSA parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlDsaParameterSet {
    /// ML-DSA-44 (NIST category 2).
    MlDsa44,
    /// ML-DSA-65 (NIST category 3).
    MlDsa65,
    /// ML-DSA-87 (NIST category 5).
    MlDsa87,
}

impl MlDsaParameterSet {
    /// Every parameter set, smallest first.
    pub const ALL: [MlDsaParameterSet; 3] = [Self::MlDsa44, Self::MlDsa65, Self::MlDsa87];

    /// `ML-DSA-44`, `ML-DSA-65` or `ML-DSA-87`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MlDsa44 => "ML-DSA-44",
            Self::MlDsa65 => "ML-DSA-65",
            Self::MlDsa87 => "ML-DSA-87",
        }
    }

    /// The algorithm OID (id-ml-dsa-44 / -65 / -87), used for keys and signatures.
    pub fn oid(self) -> &'static str {
        match self {
            Self::MlDsa44 => "2.16.840.1.101.3.4.3.17",
            Self::MlDsa65 => "2.16.840.1.101.3.4.3.18",
            Self::MlDsa87 => "2.16.840.1.101.3.4.3.19",
        }
    }

    /// The parameter set of an algorithm OID, `None` for any other OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.oid() == oid)
    }

    /// Length of the encoded public key.
    pub fn public_key_len(self) -> usize {
        match self {
            Self::MlDsa44 => 1312,
            Self::MlDsa65 => 1952,
            Self::MlDsa87 => 2592,
        }
    }

    /// Length of the expanded private key.
    pub fn expanded_key_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2560,
            Self::MlDsa65 => 4032,
            Self::MlDsa87 => 4896,
        }
    }

    /// Length of a signature.
    pub fn signature_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2420,
            Self::MlDsa65 => 3309,
            Self::MlDsa87 => 4627,
        }
    }
}

/// What an OID of the NIST signature arc that is not ML-DSA is, for error messages;
/// `None` outside that arc.
pub(crate) fn describe_other_nist_oid(oid: &str) -> Option<String> {
    let n: u32 = oid.strip_prefix(NIST_SIG_ARC)?.parse().ok()?;
    Some(match n {
        20..=31 => format!("SLH-DSA (OID {oid})"),
        32 => "HashML-DSA-44 (pre-hash)".into(),
        33 => "HashML-DSA-65 (pre-hash)".into(),
        34 => "HashML-DSA-87 (pre-hash)".into(),
        _ => format!("OID {oid} (not ML-DSA-44/65/87)"),
    })
}

/// A public key of a kind Roles Anywhere accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA; `pkcs1` is the `RSAPublicKey` DER.
    Rsa {
        /// `RSAPublicKey` DER.
        pkcs1: Vec<u8>,
        /// Modulus size in bits.
        bits: usize,
    },
    /// EC P-256; the uncompressed SEC 1 point.
    P256(Vec<u8>),
    /// EC P-384; the uncompressed SEC 1 point.
    P384(Vec<u8>),
    /// ML-DSA; the raw FIPS 204 public key (1312 / 1952 / 2592 bytes).
    MlDsa {
        /// The parameter set.
        set: MlDsaParameterSet,
        /// The encoded public key.
        key: Vec<u8>,
    },
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The named curve of an EC key (its dotted OID; empty when none is named).
pub(crate) fn ec_curve_oid(spki: &SubjectPublicKeyInfo<'_>) -> String {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default()
}

/// Whether an EC key is on P-256.
pub(crate) fn is_p256(spki: &SubjectPublicKeyInfo<'_>) -> bool {
    ec_curve_oid(spki) == OID_P256
}

impl PublicKey {
    /// Reads a certificate's subject public key. The error names the unsupported kind.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, String> {
        let alg = spki.algorithm.algorithm.to_id_string();
        let data = spki.subject_public_key.data.to_vec();
        match alg.as_str() {
            OID_RSA => {
                let bits = match spki.parsed() {
                    Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
                    _ => return Err("malformed RSA".into()),
                };
                if bits < 2048 {
                    return Err(format!("RSA-{bits}"));
                }
                Ok(PublicKey::Rsa { pkcs1: data, bits })
            }
            OID_EC => match ec_curve_oid(spki).as_str() {
                OID_P256 if data.len() == 65 => Ok(PublicKey::P256(data)),
                OID_P384 if data.len() == 97 => Ok(PublicKey::P384(data)),
                OID_P256 | OID_P384 => Err("compressed or malformed EC".into()),
                "1.3.132.0.35" => Err("EC P-521".into()),
                other => Err(format!("EC (curve {other})")),
            },
            "1.3.101.112" => Err("Ed25519".into()),
            "1.3.101.113" => Err("Ed448".into()),
            "1.2.840.10040.4.1" => Err("DSA".into()),
            "1.2.840.113549.1.1.10" => Err("RSA-PSS".into()),
            other => match MlDsaParameterSet::from_oid(other) {
                Some(set) if spki.algorithm.parameters.is_some() => {
                    Err(format!("{} (with parameters)", set.name()))
                }
                Some(set) if data.len() != set.public_key_len() => Err(format!(
                    "{} (public key of {} bytes, not {})",
                    set.name(),
                    data.len(),
                    set.public_key_len()
                )),
                Some(set) => Ok(PublicKey::MlDsa { set, key: data }),
                None => {
                    Err(describe_other_nist_oid(other).unwrap_or_else(|| format!("OID {other}")))
                }
            },
        }
    }

    /// Reads a DER `SubjectPublicKeyInfo` (the body of a `PUBLIC KEY` PEM block, or
    /// a certificate's public key). The error names the unsupported kind, or says
    /// that the DER does not parse.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        match SubjectPublicKeyInfo::from_der(der) {
            Ok(([], spki)) => Self::from_spki(&spki),
            Ok(_) => Err("SubjectPublicKeyInfo followed by extra bytes".into()),
            Err(_) => Err("malformed SubjectPublicKeyInfo".into()),
        }
    }

    /// The signature family this key signs with.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::Rsa { .. } => KeyAlgorithm::Rsa,
            PublicKey::P256(_) | PublicKey::P384(_) => KeyAlgorithm::Ecdsa,
            PublicKey::MlDsa { .. } => KeyAlgorithm::MlDsa,
        }
    }

    /// The encoded public key: `RSAPublicKey` DER, the uncompressed point, or the
    /// raw ML-DSA key.
    pub fn raw_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Rsa { pkcs1, .. } => pkcs1,
            PublicKey::P256(p) | PublicKey::P384(p) => p,
            PublicKey::MlDsa { key, .. } => key,
        }
    }

    /// `"RSA"`, `"EC"` or the ML-DSA parameter set (`"ML-DSA-65"`), as
    /// `read-certificate-data` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::P256(_) | PublicKey::P384(_) => "EC",
            PublicKey::MlDsa { set, .. } => set.name(),
        }
    }

    /// A short description such as `RSA-2048` or `EC P-256`.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("RSA-{bits}"),
            PublicKey::P256(_) => "EC P-256".into(),
            PublicKey::P384(_) => "EC P-384".into(),
            PublicKey::MlDsa { set, .. } => set.name().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_round_trip_through_their_oids() {
        for set in MlDsaParameterSet::ALL {
            assert_eq!(MlDsaParameterSet::from_oid(set.oid()), Some(set));
        }
        assert_eq!(MlDsaParameterSet::from_oid("2.16.840.1.101.3.4.3.20"), None);
        assert_eq!(
            describe_other_nist_oid("2.16.840.1.101.3.4.3.33").as_deref(),
            Some("HashML-DSA-65 (pre-hash)")
        );
        assert_eq!(describe_other_nist_oid("1.2.3"), None);
    }

    #[test]
    fn reads_a_certificates_public_key_der_and_refuses_garbage() {
        use x509_parser::prelude::X509Certificate;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/certs-testdata/ec-p256/cert.der"
        );
        let der = std::fs::read(path).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let key = PublicKey::from_spki_der(cert.public_key().raw).unwrap();
        assert_eq!(key.describe(), "EC P-256");
        assert_eq!(
            PublicKey::from_spki_der(b"\x30\x03\x02\x01\x00").unwrap_err(),
            "malformed SubjectPublicKeyInfo"
        );
    }
}
