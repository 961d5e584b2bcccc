//! Signature verification primitives: RSA PKCS#1 v1.5 (ring) and ECDSA P-256 /
//! P-384 over a prehash (RustCrypto), for request signatures and certificate
//! signatures alike.

use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// A public key the endpoint can verify with.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// RSA: the PKCS#1 `RSAPublicKey` DER (the SPKI bit string contents).
    Rsa(Vec<u8>),
    /// ECDSA on P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA on P-384.
    P384(p384::ecdsa::VerifyingKey),
}

/// Digest of a signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A signature scheme: key family and digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5 with the digest.
    RsaPkcs1(Hash),
    /// ECDSA with the digest, DER `Ecdsa-Sig-Value` signature.
    Ecdsa(Hash),
}

impl Hash {
    /// The digest of `msg`.
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

impl PublicKey {
    /// Reads the key of a SubjectPublicKeyInfo; `None` for unsupported key types or curves.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Option<Self> {
        let alg = &spki.algorithm.algorithm;
        let bits = spki.subject_public_key.data.as_ref();
        if *alg == OID_PKCS1_RSAENCRYPTION {
            return Some(PublicKey::Rsa(bits.to_vec()));
        }
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
            if curve == OID_EC_P256 {
                return p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .ok()
                    .map(PublicKey::P256);
            }
            if curve == OID_NIST_EC_P384 {
                return p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .ok()
                    .map(PublicKey::P384);
            }
        }
        None
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self, PublicKey::Rsa(_))
    }

    /// Verifies `sig` over `msg` with `scheme`; false on any mismatch or malformed input.
    pub fn verify(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
        match (self, scheme) {
            (PublicKey::Rsa(der), Scheme::RsaPkcs1(hash)) => {
                let alg: &'static dyn ring::signature::VerificationAlgorithm = match hash {
                    Hash::Sha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    Hash::Sha384 => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                    Hash::Sha512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
                };
                ring::signature::UnparsedPublicKey::new(alg, der)
                    .verify(msg, sig)
                    .is_ok()
            }
            (PublicKey::P256(key), Scheme::Ecdsa(hash)) => {
                let Ok(sig) = p256::ecdsa::DerSignature::try_from(sig) else {
                    return false;
                };
                key.verify_prehash(&hash.digest(msg), &sig).is_ok()
            }
            (PublicKey::P384(key), Scheme::Ecdsa(hash)) => {
                let Ok(sig) = p384::ecdsa::DerSignature::try_from(sig) else {
                    return false;
                };
                key.verify_prehash(&hash.digest(msg), &sig).is_ok()
            }
            _ => false,
        }
    }
}

/// The scheme of a certificate `signatureAlgorithm`; `None` when unsupported
/// (e.g. RSA-PSS, SHA-1) or when parameters are not as RFC 4055 / RFC 5758 require.
pub fn cert_signature_scheme(alg: &AlgorithmIdentifier<'_>) -> Option<Scheme> {
    let oid = &alg.algorithm;
    let rsa = [
        (&OID_PKCS1_SHA256WITHRSA, Hash::Sha256),
        (&OID_PKCS1_SHA384WITHRSA, Hash::Sha384),
        (&OID_PKCS1_SHA512WITHRSA, Hash::Sha512),
    ];
    for (o, h) in rsa {
        if oid == o {
            return Some(Scheme::RsaPkcs1(h));
        }
    }
    let ec = [
        (&OID_SIG_ECDSA_WITH_SHA256, Hash::Sha256),
        (&OID_SIG_ECDSA_WITH_SHA384, Hash::Sha384),
        (&OID_SIG_ECDSA_WITH_SHA512, Hash::Sha512),
    ];
    for (o, h) in ec {
        if oid == o {
            return Some(Scheme::Ecdsa(h));
        }
    }
    None
}
