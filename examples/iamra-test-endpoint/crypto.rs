//! Signature verification primitives: RSA PKCS#1 v1.5 (ring), ECDSA P-256 /
//! P-384 (ring for SHA-256 and SHA-384; RustCrypto over a prehash for SHA-512,
//! which ring lacks) and pure ML-DSA-44/65/87 with the empty
//! context (RustCrypto `ml-dsa`, FIPS 204 / RFC 9881), for request signatures and
//! certificate signatures alike.

use ecdsa::signature::hazmat::PrehashVerifier;
use ring::signature as rsig;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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
    /// ECDSA on P-256 (checked on the curve when read).
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA on P-384 (checked on the curve when read).
    P384(p384::ecdsa::VerifyingKey),
    /// ML-DSA: the parameter set and the raw FIPS 204 public key.
    MlDsa(MlDsaSet, Vec<u8>),
}

/// An ML-DSA parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlDsaSet {
    /// ML-DSA-44.
    L44,
    /// ML-DSA-65.
    L65,
    /// ML-DSA-87.
    L87,
}

impl MlDsaSet {
    /// The parameter set of an id-ml-dsa-* OID (RFC 9881).
    fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.3.17" => Some(MlDsaSet::L44),
            "2.16.840.1.101.3.4.3.18" => Some(MlDsaSet::L65),
            "2.16.840.1.101.3.4.3.19" => Some(MlDsaSet::L87),
            _ => None,
        }
    }

    /// Length of the public key.
    fn public_key_len(self) -> usize {
        match self {
            MlDsaSet::L44 => 1312,
            MlDsaSet::L65 => 1952,
            MlDsaSet::L87 => 2592,
        }
    }

    /// Verifies a pure ML-DSA signature with the empty context.
    fn verify(self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        fn inner<P: ml_dsa::MlDsaParams>(
            key: Option<Arc<ml_dsa::VerifyingKey<P>>>,
            msg: &[u8],
            sig: &[u8],
        ) -> bool {
            let Some(key) = key else {
                return false;
            };
            let Ok(sig) = ml_dsa::EncodedSignature::<P>::try_from(sig) else {
                return false;
            };
            let Some(sig) = ml_dsa::Signature::<P>::decode(&sig) else {
                return false;
            };
            key.verify_with_context(msg, &[], &sig)
        }
        let keys = decoded_keys();
        match self {
            MlDsaSet::L44 => inner(keys.l44.get(public_key), msg, sig),
            MlDsaSet::L65 => inner(keys.l65.get(public_key), msg, sig),
            MlDsaSet::L87 => inner(keys.l87.get(public_key), msg, sig),
        }
    }
}

/// Decoded ML-DSA public keys by their exact encoding. Decoding (FIPS 204
/// `pkDecode` and the expansion of the matrix A from rho, Algorithm 32) costs about
/// as much as the verification itself, and every request of a client signs with
/// the same leaf key under the same CA key: the decoded key depends on the
/// encoding alone, so using it again checks exactly what decoding anew would.
struct DecodedKeys {
    l44: KeyCache<ml_dsa::MlDsa44>,
    l65: KeyCache<ml_dsa::MlDsa65>,
    l87: KeyCache<ml_dsa::MlDsa87>,
}

fn decoded_keys() -> &'static DecodedKeys {
    static KEYS: OnceLock<DecodedKeys> = OnceLock::new();
    KEYS.get_or_init(|| DecodedKeys {
        l44: KeyCache::default(),
        l65: KeyCache::default(),
        l87: KeyCache::default(),
    })
}

/// Most keys of one parameter set kept (emptied when full).
const MAX_CACHED_KEYS: usize = 64;

/// One parameter set's decoded keys.
struct KeyCache<P: ml_dsa::MlDsaParams>(Mutex<HashMap<Vec<u8>, Arc<ml_dsa::VerifyingKey<P>>>>);

impl<P: ml_dsa::MlDsaParams> Default for KeyCache<P> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<P: ml_dsa::MlDsaParams> KeyCache<P> {
    /// The decoded key of `public_key`; None when it has the wrong length.
    fn get(&self, public_key: &[u8]) -> Option<Arc<ml_dsa::VerifyingKey<P>>> {
        let encoded = ml_dsa::EncodedVerifyingKey::<P>::try_from(public_key).ok()?;
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = lock().get(public_key) {
            return Some(key.clone());
        }
        let key = Arc::new(ml_dsa::VerifyingKey::<P>::decode(&encoded));
        let mut keys = lock();
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(public_key.to_vec(), key.clone());
        Some(key)
    }
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
    /// Pure ML-DSA of the parameter set, empty context, over the message itself.
    MlDsa(MlDsaSet),
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
        if let Some(set) = MlDsaSet::from_oid(&alg.to_id_string()) {
            // RFC 9881: no parameters, the raw public key of the set's length.
            if spki.algorithm.parameters.is_some() || bits.len() != set.public_key_len() {
                return None;
            }
            return Some(PublicKey::MlDsa(set, bits.to_vec()));
        }
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
            // Compressed points are accepted too (RustCrypto decompresses them).
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

    /// Whether this is an ECDSA key.
    pub fn is_ec(&self) -> bool {
        matches!(self, PublicKey::P256(_) | PublicKey::P384(_))
    }

    /// The ML-DSA parameter set of an ML-DSA key.
    pub fn mldsa_set(&self) -> Option<MlDsaSet> {
        match self {
            PublicKey::MlDsa(set, _) => Some(*set),
            _ => None,
        }
    }

    /// Verifies `sig` over `msg` with `scheme`; false on any mismatch or malformed input.
    pub fn verify(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
        match (self, scheme) {
            (PublicKey::Rsa(der), Scheme::RsaPkcs1(hash)) => {
                let alg: &'static dyn rsig::VerificationAlgorithm = match hash {
                    Hash::Sha256 => &rsig::RSA_PKCS1_2048_8192_SHA256,
                    Hash::Sha384 => &rsig::RSA_PKCS1_2048_8192_SHA384,
                    Hash::Sha512 => &rsig::RSA_PKCS1_2048_8192_SHA512,
                };
                ring_verify(alg, der, msg, sig)
            }
            // ring's verifiers for the pairs it has (its assembly is several times
            // faster than RustCrypto's P-384: the test chain's leaves are signed
            // by a P-384 intermediate, on every request's path), handed the
            // uncompressed point; RustCrypto over a prehash for SHA-512.
            (PublicKey::P256(key), Scheme::Ecdsa(hash)) => match ring_ecdsa(Curve::P256, hash) {
                Some(alg) => ring_verify(alg, key.to_sec1_point(false).as_bytes(), msg, sig),
                None => p256::ecdsa::DerSignature::try_from(sig)
                    .is_ok_and(|sig| key.verify_prehash(&hash.digest(msg), &sig).is_ok()),
            },
            (PublicKey::P384(key), Scheme::Ecdsa(hash)) => match ring_ecdsa(Curve::P384, hash) {
                Some(alg) => ring_verify(alg, key.to_sec1_point(false).as_bytes(), msg, sig),
                None => p384::ecdsa::DerSignature::try_from(sig)
                    .is_ok_and(|sig| key.verify_prehash(&hash.digest(msg), &sig).is_ok()),
            },
            (PublicKey::MlDsa(set, key), Scheme::MlDsa(want)) if *set == want => {
                set.verify(key, msg, sig)
            }
            _ => false,
        }
    }
}

/// The curves the endpoint verifies ECDSA on.
#[derive(Clone, Copy)]
enum Curve {
    P256,
    P384,
}

/// ring's ECDSA verifier for a curve and digest; None for SHA-512, which ring lacks.
fn ring_ecdsa(curve: Curve, hash: Hash) -> Option<&'static rsig::EcdsaVerificationAlgorithm> {
    match (curve, hash) {
        (Curve::P256, Hash::Sha256) => Some(&rsig::ECDSA_P256_SHA256_ASN1),
        (Curve::P256, Hash::Sha384) => Some(&rsig::ECDSA_P256_SHA384_ASN1),
        (Curve::P384, Hash::Sha256) => Some(&rsig::ECDSA_P384_SHA256_ASN1),
        (Curve::P384, Hash::Sha384) => Some(&rsig::ECDSA_P384_SHA384_ASN1),
        (_, Hash::Sha512) => None,
    }
}

/// Verifies with one of ring's fixed algorithms; false on any mismatch.
fn ring_verify(
    alg: &'static dyn rsig::VerificationAlgorithm,
    key: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> bool {
    rsig::UnparsedPublicKey::new(alg, key)
        .verify(msg, sig)
        .is_ok()
}

/// The scheme of a certificate `signatureAlgorithm`; `None` when unsupported
/// (e.g. RSA-PSS, SHA-1) or when parameters are not as RFC 4055 / RFC 5758 /
/// RFC 9881 require.
pub fn cert_signature_scheme(alg: &AlgorithmIdentifier<'_>) -> Option<Scheme> {
    let oid = &alg.algorithm;
    if let Some(set) = MlDsaSet::from_oid(&oid.to_id_string()) {
        return alg.parameters.is_none().then_some(Scheme::MlDsa(set));
    }
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
