//! ML-DSA (FIPS 204) keys: `AWS4-X509-MLDSA`.
//!
//! Private keys come from PKCS#8 (plain or encrypted) in any of the three
//! `privateKey` forms of RFC 9881: `seed` (`[0] IMPLICIT OCTET STRING`, 32 bytes),
//! `expandedKey` (`OCTET STRING`) or `both` (`SEQUENCE { seed, expandedKey }`).
//! For `both` the expanded key must be the one the seed expands to. Signatures are
//! pure ML-DSA over the message itself (no pre-hash) with the empty context, in the
//! deterministic variant, as aws_signing_helper 1.8.0 signs; RustCrypto's `ml-dsa`
//! does the arithmetic and zeroizes the key when it is dropped.

use std::path::Path;

use ml_dsa::{
    EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, ExpandedSigningKeyBytes, MlDsa44,
    MlDsa65, MlDsa87, MlDsaParams, Signature, SigningKey, VerifyingKey,
};
use pkcs8::der::{Decode as _, Reader as _, TagNumber, asn1::OctetStringRef};
use zeroize::Zeroizing;

use super::KeyError;
use crate::public_key::MlDsaParameterSet;

/// Verifies a pure ML-DSA signature with the empty context; false for a key,
/// signature or message that does not fit.
pub(crate) fn verify(set: MlDsaParameterSet, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    fn inner<P: MlDsaParams>(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let Ok(pk) = EncodedVerifyingKey::<P>::try_from(public_key) else {
            return false;
        };
        let Ok(sig) = EncodedSignature::<P>::try_from(sig) else {
            return false;
        };
        let Some(sig) = Signature::<P>::decode(&sig) else {
            return false;
        };
        VerifyingKey::<P>::decode(&pk).verify_with_context(msg, &[], &sig)
    }
    match set {
        MlDsaParameterSet::MlDsa44 => inner::<MlDsa44>(public_key, msg, sig),
        MlDsaParameterSet::MlDsa65 => inner::<MlDsa65>(public_key, msg, sig),
        MlDsaParameterSet::MlDsa87 => inner::<MlDsa87>(public_key, msg, sig),
    }
}

/// One parameter set's key: the signing key (zeroized on drop by `ml-dsa`) and the
/// encoded public key.
struct Keys<P: MlDsaParams> {
    secret: Secret<P>,
    public: Vec<u8>,
}

/// How the key was given. A seed's [`SigningKey`] keeps the verifying key that key
/// generation computed (FIPS 204 Algorithm 6): asking an [`ExpandedSigningKey`] for
/// its verifying key computes `A·s1 + s2` a second time (about a third of the cost
/// of loading the key).
enum Secret<P: MlDsaParams> {
    /// From a seed (the `seed` and `both` forms).
    Seeded(Box<SigningKey<P>>),
    /// From an expanded key alone.
    Expanded(Box<ExpandedSigningKey<P>>),
}

impl<P: MlDsaParams> Keys<P> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let signature = match &self.secret {
            // `SigningKey`'s `Signer` is the deterministic variant with the empty
            // context, as `sign_deterministic(msg, &[])` below.
            Secret::Seeded(key) => ml_dsa::Signer::try_sign(key.as_ref(), msg),
            Secret::Expanded(key) => key.sign_deterministic(msg, &[]),
        };
        signature
            .map(|s| s.encode().to_vec())
            .map_err(|e| format!("ML-DSA signing failed ({e})"))
    }
}

/// An ML-DSA private key (any parameter set), held in memory and zeroized on drop.
pub struct MlDsaKey(Inner);

enum Inner {
    L44(Keys<MlDsa44>),
    L65(Keys<MlDsa65>),
    L87(Keys<MlDsa87>),
}

impl std::fmt::Debug for MlDsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: only the parameter set is printed, never key material.
        write!(
            f,
            "MlDsaKey({}, ** redacted **)",
            self.parameter_set().name()
        )
    }
}

impl MlDsaKey {
    /// The parameter set.
    pub fn parameter_set(&self) -> MlDsaParameterSet {
        match &self.0 {
            Inner::L44(_) => MlDsaParameterSet::MlDsa44,
            Inner::L65(_) => MlDsaParameterSet::MlDsa65,
            Inner::L87(_) => MlDsaParameterSet::MlDsa87,
        }
    }

    /// The encoded public key.
    pub fn public_key(&self) -> &[u8] {
        match &self.0 {
            Inner::L44(k) => &k.public,
            Inner::L65(k) => &k.public,
            Inner::L87(k) => &k.public,
        }
    }

    /// Signs `msg`: pure ML-DSA, empty context, deterministic variant.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        match &self.0 {
            Inner::L44(k) => k.sign(msg),
            Inner::L65(k) => k.sign(msg),
            Inner::L87(k) => k.sign(msg),
        }
    }
}

/// The `privateKey` contents of an ML-DSA PKCS#8 key (RFC 9881 section 6).
enum PrivateKeyForm<'a> {
    Seed(&'a [u8]),
    Expanded(&'a [u8]),
    Both { seed: &'a [u8], expanded: &'a [u8] },
}

fn parse_form<'a>(
    private_key: &'a [u8],
    set: MlDsaParameterSet,
) -> Result<PrivateKeyForm<'a>, String> {
    let name = set.name();
    let bad = |e: pkcs8::der::Error| {
        format!("{name} private key is not seed, expandedKey or both (RFC 9881): {e}")
    };
    let mut reader = pkcs8::der::SliceReader::new(private_key).map_err(bad)?;
    // The three forms differ by their first tag octet.
    let form = match private_key.first() {
        // [0] IMPLICIT OCTET STRING, primitive.
        Some(0x80) => {
            let seed = reader
                .context_specific::<&OctetStringRef>(TagNumber(0), pkcs8::der::TagMode::Implicit)
                .map_err(bad)?
                .ok_or_else(|| format!("{name} private key: unreadable seed"))?;
            PrivateKeyForm::Seed(seed.as_bytes())
        }
        Some(0x04) => PrivateKeyForm::Expanded(
            <&OctetStringRef>::decode(&mut reader)
                .map_err(bad)?
                .as_bytes(),
        ),
        Some(0x30) => reader
            .sequence(|r| {
                let seed = <&OctetStringRef>::decode(r)?.as_bytes();
                let expanded = <&OctetStringRef>::decode(r)?.as_bytes();
                Ok(PrivateKeyForm::Both { seed, expanded })
            })
            .map_err(bad)?,
        other => {
            return Err(format!(
                "{name} private key is not seed, expandedKey or both (RFC 9881): it starts with {}",
                other.map_or("nothing".to_string(), |b| format!("tag 0x{b:02x}"))
            ));
        }
    };
    reader
        .finish()
        .map_err(|_| format!("{name} private key has trailing data"))?;
    Ok(form)
}

fn check_seed_len(seed: &[u8], set: MlDsaParameterSet) -> Result<(), String> {
    if seed.len() != 32 {
        return Err(format!(
            "{} seed is {} bytes, not 32",
            set.name(),
            seed.len()
        ));
    }
    Ok(())
}

fn check_expanded_len(expanded: &[u8], set: MlDsaParameterSet) -> Result<(), String> {
    if expanded.len() != set.expanded_key_len() {
        return Err(format!(
            "{} expanded key is {} bytes, not {}",
            set.name(),
            expanded.len(),
            set.expanded_key_len()
        ));
    }
    Ok(())
}

/// Checks that the packed `s1 || s2` of an expanded key holds only coefficients
/// in `[-eta, eta]` (FIPS 204 Algorithm 25 assumes it; `ml-dsa` does not check).
fn check_short_vectors(expanded: &[u8], set: MlDsaParameterSet) -> bool {
    // (eta, bits per coefficient, l + k polynomials of 256 coefficients)
    let (eta, bits, polys) = match set {
        MlDsaParameterSet::MlDsa44 => (2u32, 3usize, 4 + 4),
        MlDsaParameterSet::MlDsa65 => (4, 4, 5 + 6),
        MlDsaParameterSet::MlDsa87 => (2, 3, 7 + 8),
    };
    let start = 32 + 32 + 64;
    let len = polys * 256 * bits / 8;
    let Some(packed) = expanded.get(start..start + len) else {
        return false;
    };
    let mut acc: u32 = 0;
    let mut held = 0usize;
    for &byte in packed {
        acc |= u32::from(byte) << held;
        held += 8;
        while held >= bits {
            if acc & ((1 << bits) - 1) > 2 * eta {
                return false;
            }
            acc >>= bits;
            held -= bits;
        }
    }
    true
}

fn keys_from<P: MlDsaParams>(
    form: &PrivateKeyForm<'_>,
    set: MlDsaParameterSet,
) -> Result<Keys<P>, KeyError2> {
    let from_seed = |seed: &[u8]| -> Result<Box<SigningKey<P>>, KeyError2> {
        check_seed_len(seed, set).map_err(KeyError2::Malformed)?;
        let seed = Zeroizing::new(
            ml_dsa::Seed::try_from(seed).map_err(|_| KeyError2::Malformed("seed".into()))?,
        );
        Ok(Box::new(SigningKey::<P>::from_seed(&seed)))
    };
    let from_expanded = |expanded: &[u8]| -> Result<Box<ExpandedSigningKey<P>>, KeyError2> {
        check_expanded_len(expanded, set).map_err(KeyError2::Malformed)?;
        if !check_short_vectors(expanded, set) {
            return Err(KeyError2::Malformed(format!(
                "{} expanded key holds out-of-range coefficients",
                set.name()
            )));
        }
        let bytes = Zeroizing::new(
            ExpandedSigningKeyBytes::<P>::try_from(expanded)
                .map_err(|_| KeyError2::Malformed("expanded key".into()))?,
        );
        // `from_expanded` is deprecated in favour of seeds, but RFC 9881 keeps the
        // expanded-only form; the coefficient ranges are checked above and the key
        // is checked against its public key below.
        #[allow(deprecated)]
        let key = ExpandedSigningKey::<P>::from_expanded(&bytes);
        Ok(Box::new(key))
    };
    // The seed's verifying key as key generation computed it.
    let seeded = |key: Box<SigningKey<P>>| {
        let public = AsRef::<VerifyingKey<P>>::as_ref(key.as_ref())
            .encode()
            .to_vec();
        (Secret::Seeded(key), public)
    };
    let (secret, public) = match form {
        PrivateKeyForm::Seed(seed) => seeded(from_seed(seed)?),
        PrivateKeyForm::Expanded(expanded) => {
            let key = from_expanded(expanded)?;
            let public = key.verifying_key().encode().to_vec();
            (Secret::Expanded(key), public)
        }
        PrivateKeyForm::Both { seed, expanded } => {
            check_expanded_len(expanded, set).map_err(KeyError2::Malformed)?;
            let key = from_seed(seed)?;
            #[allow(deprecated)] // the encoding is what RFC 9881 compares
            let derived = Zeroizing::new(key.expanded_key().to_expanded());
            if derived.as_slice() != *expanded {
                return Err(KeyError2::Inconsistent(format!(
                    "its {} expanded key is not the one its seed expands to",
                    set.name()
                )));
            }
            seeded(key)
        }
    };
    let keys = Keys { secret, public };
    if let PrivateKeyForm::Expanded(_) = form {
        // The expanded form carries no seed to re-derive from: check that its
        // parts agree by signing once and verifying with the derived public key
        // (a wrong t0 or tr would fail every request otherwise).
        let probe = b"iamra: ML-DSA key check";
        let ok = keys
            .sign(probe)
            .map(|sig| verify(set, &keys.public, probe, &sig))
            .unwrap_or(false);
        if !ok {
            return Err(KeyError2::Inconsistent(format!(
                "its {} expanded key parts disagree (a test signature does not verify)",
                set.name()
            )));
        }
    }
    Ok(keys)
}

/// Internal error, turned into a [`KeyError`] naming the file.
enum KeyError2 {
    Malformed(String),
    Inconsistent(String),
}

/// Reads an ML-DSA `PrivateKeyInfo` whose algorithm is `set`; `public_key` is the
/// optional public key of a PKCS#8 v2 `OneAsymmetricKey`, checked when present.
pub(crate) fn from_pkcs8(
    set: MlDsaParameterSet,
    has_parameters: bool,
    private_key: &[u8],
    public_key: Option<&[u8]>,
    path: &Path,
) -> Result<MlDsaKey, KeyError> {
    let malformed = |reason: String| KeyError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    if has_parameters {
        return Err(malformed(format!(
            "{} algorithm identifier has parameters (RFC 9881 forbids them)",
            set.name()
        )));
    }
    let form = parse_form(private_key, set).map_err(malformed)?;
    let map = |e: KeyError2| match e {
        KeyError2::Malformed(reason) => malformed(reason),
        KeyError2::Inconsistent(reason) => KeyError::Inconsistent {
            path: path.to_path_buf(),
            reason,
        },
    };
    let key = MlDsaKey(match set {
        MlDsaParameterSet::MlDsa44 => Inner::L44(keys_from(&form, set).map_err(map)?),
        MlDsaParameterSet::MlDsa65 => Inner::L65(keys_from(&form, set).map_err(map)?),
        MlDsaParameterSet::MlDsa87 => Inner::L87(keys_from(&form, set).map_err(map)?),
    });
    if let Some(pk) = public_key
        && pk != key.public_key()
    {
        return Err(KeyError::Inconsistent {
            path: path.to_path_buf(),
            reason: format!(
                "its {} public key is not the one its private key gives",
                set.name()
            ),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_vector_check_accepts_derived_keys_and_refuses_out_of_range_ones() {
        fn case<P: MlDsaParams>(set: MlDsaParameterSet) {
            let key = ExpandedSigningKey::<P>::from_seed(&ml_dsa::Seed::from([7u8; 32]));
            #[allow(deprecated)]
            let mut bytes = key.to_expanded().to_vec();
            assert_eq!(bytes.len(), set.expanded_key_len());
            assert!(check_short_vectors(&bytes, set), "{set:?}");
            // All ones in the first coefficient of s1: 7 (eta 2) or 15 (eta 4).
            bytes[128] |= 0x0f;
            assert!(!check_short_vectors(&bytes, set), "{set:?}");
        }
        case::<MlDsa44>(MlDsaParameterSet::MlDsa44);
        case::<MlDsa65>(MlDsaParameterSet::MlDsa65);
        case::<MlDsa87>(MlDsaParameterSet::MlDsa87);
    }

    #[test]
    fn signatures_have_the_documented_length_and_verify_only_unchanged() {
        for set in MlDsaParameterSet::ALL {
            let seed = [9u8; 32];
            let mut der = vec![0x80, 0x20];
            der.extend_from_slice(&seed);
            let key = from_pkcs8(set, false, &der, None, Path::new("k")).unwrap();
            assert_eq!(key.public_key().len(), set.public_key_len());
            let sig = key.sign(b"message").unwrap();
            assert_eq!(sig.len(), set.signature_len());
            assert_eq!(key.sign(b"message").unwrap(), sig, "deterministic");
            assert!(verify(set, key.public_key(), b"message", &sig));
            assert!(!verify(set, key.public_key(), b"messagE", &sig));
            let mut flipped = sig.clone();
            flipped[10] ^= 1;
            assert!(!verify(set, key.public_key(), b"message", &flipped));
            assert!(!verify(set, key.public_key(), b"message", &sig[1..]));
            assert_eq!(
                format!("{key:?}"),
                format!("MlDsaKey({}, ** redacted **)", set.name())
            );
        }
    }
}
