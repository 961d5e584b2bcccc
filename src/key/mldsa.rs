//! ML-DSA (FIPS 204) keys: `AWS4-X509-MLDSA`.
//!
//! Private keys come from PKCS#8 (plain or encrypted) in any of the three
//! `privateKey` forms of RFC 9881: `seed` (`[0] IMPLICIT OCTET STRING`, 32 bytes),
//! `expandedKey` (`OCTET STRING`) or `both` (`SEQUENCE { seed, expandedKey }`).
//! For `both` the expanded key must be the one the seed expands to. Signatures are
//! pure ML-DSA over the message itself (no pre-hash) with the empty context, in the
//! deterministic variant, as aws_signing_helper 1.8.0 signs.
//!
//! Cryspen's `libcrux-ml-dsa` does the arithmetic: key generation from the seed,
//! signing and verification, with AVX2 code chosen at run time where the CPU has
//! it (BENCHMARKS.md, "ML-DSA": about ten times the speed of RustCrypto's portable
//! `ml-dsa`). It keeps keys as plain byte arrays, so the key here lives in a box of
//! its own that is zeroized when dropped. It also decodes the key (and draws the
//! masking vector `y`, which with a signature gives the key) into stack arrays that
//! it leaves as they are: after each key generation and signature the stack it used
//! is overwritten ([`scrub_stack`]), unless a process that exits right after one
//! signature turns that off ([`set_stack_scrub`]). Both need about 400 KB of stack
//! (every thread iamra signs on has 2 MiB or more). RustCrypto's `ml-dsa` computes only the public
//! key of an expanded-only key, which libcrux has no function for.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use libcrux_ml_dsa::{MLDSASignature, MLDSASigningKey, MLDSAVerificationKey, SigningError};
use pkcs8::der::{Decode as _, Reader as _, TagNumber, asn1::OctetStringRef};
use zeroize::{Zeroize as _, Zeroizing};

use super::KeyError;
use crate::public_key::MlDsaParameterSet;

/// Verifies a pure ML-DSA signature with the empty context; false for a key,
/// signature or message that does not fit.
pub(crate) fn verify(set: MlDsaParameterSet, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    macro_rules! verify_with {
        ($module:ident) => {{
            let (Ok(key), Ok(sig)) = (public_key.try_into(), sig.try_into()) else {
                return false;
            };
            libcrux_ml_dsa::$module::verify(
                &MLDSAVerificationKey::new(key),
                msg,
                &[],
                &MLDSASignature::new(sig),
            )
            .is_ok()
        }};
    }
    match set {
        MlDsaParameterSet::MlDsa44 => verify_with!(ml_dsa_44),
        MlDsaParameterSet::MlDsa65 => verify_with!(ml_dsa_65),
        MlDsaParameterSet::MlDsa87 => verify_with!(ml_dsa_87),
    }
}

/// The most stack libcrux's ML-DSA key generation or signing uses, rounded up:
/// 354 KB for ML-DSA-87 signing, the largest (release build, x86-64; the smallest
/// thread stack each operation runs on, 4 KB steps).
const STACK_USED: usize = 384 * 1024;

/// Whether [`scrub_stack`] runs (see [`set_stack_scrub`]).
static SCRUB: AtomicBool = AtomicBool::new(true);

/// Turns the overwriting of the stack after each ML-DSA key generation and signature
/// off (`false`) or on (`true`, the default), for the whole process.
///
/// The overwrite is a 384 KB memset: about 6 µs on a stack already in use, but on a
/// fresh thread or a main thread that never went that deep, pages are touched for the
/// first time (a cold ML-DSA-65 `credential-process` took 0.34 ms more CPU and 0.6 MiB
/// more memory with it, BENCHMARKS.md). Turn it off only in a process that exits
/// right after its signature, whose memory goes with it (`iamra credential-process`
/// does); keep it in anything that keeps running with a key (a service, a
/// refreshing provider).
pub fn set_stack_scrub(on: bool) {
    SCRUB.store(on, Ordering::Relaxed);
}

/// Overwrites with zeros the [`STACK_USED`] bytes below the caller's frame, where the
/// libcrux call the caller just made kept the decoded key and `y` (unless turned off,
/// [`set_stack_scrub`]). Called from the frame that made that call, so its array
/// covers the same addresses. `black_box` makes the compiler keep the writes.
fn scrub_stack() {
    #[inline(never)]
    fn overwrite() {
        let area = [0u8; STACK_USED];
        std::hint::black_box(&area);
    }
    if SCRUB.load(Ordering::Relaxed) {
        overwrite();
    }
}

/// A signing key in its FIPS 204 encoding (`skEncode`, RFC 9881's `expandedKey`),
/// the form libcrux signs with; in a box of its own, zeroized when dropped.
struct Expanded<const N: usize>(Box<MLDSASigningKey<N>>);

impl<const N: usize> Expanded<N> {
    /// A copy of `bytes`, which must be `N` long.
    fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != N {
            return None;
        }
        let mut key = Self(Box::new(MLDSASigningKey::zero()));
        key.0.as_mut_slice().copy_from_slice(bytes);
        Some(key)
    }

    /// Moves `key` into the box and zeroizes the value handed over.
    fn take(key: &mut MLDSASigningKey<N>) -> Self {
        let mut taken = Self(Box::new(MLDSASigningKey::zero()));
        taken.0.as_ref_mut().copy_from_slice(key.as_ref());
        key.as_mut_slice().zeroize();
        taken
    }

    fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl<const N: usize> Drop for Expanded<N> {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// An ML-DSA private key (any parameter set), held in memory and zeroized on drop.
///
/// Loading (key generation from a seed) and signing use about 400 KB of the calling
/// thread's stack (Rust's and tokio's threads have 2 MiB).
pub struct MlDsaKey {
    secret: Secret,
    /// The encoded public key (FIPS 204 `pkEncode`).
    public: Vec<u8>,
}

/// The signing key of each parameter set (2560, 4032 and 4896 bytes).
enum Secret {
    L44(Expanded<2560>),
    L65(Expanded<4032>),
    L87(Expanded<4896>),
}

impl Secret {
    fn parameter_set(&self) -> MlDsaParameterSet {
        match self {
            Secret::L44(_) => MlDsaParameterSet::MlDsa44,
            Secret::L65(_) => MlDsaParameterSet::MlDsa65,
            Secret::L87(_) => MlDsaParameterSet::MlDsa87,
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Secret::L44(k) => k.as_slice(),
            Secret::L65(k) => k.as_slice(),
            Secret::L87(k) => k.as_slice(),
        }
    }

    /// A copy of an expanded key of `set` (its length checked by the caller).
    fn from_expanded(set: MlDsaParameterSet, bytes: &[u8]) -> Option<Self> {
        Some(match set {
            MlDsaParameterSet::MlDsa44 => Secret::L44(Expanded::from_slice(bytes)?),
            MlDsaParameterSet::MlDsa65 => Secret::L65(Expanded::from_slice(bytes)?),
            MlDsaParameterSet::MlDsa87 => Secret::L87(Expanded::from_slice(bytes)?),
        })
    }

    /// FIPS 204 key generation from a 32-byte seed (Algorithm 6): the signing key
    /// and the encoded public key.
    fn from_seed(set: MlDsaParameterSet, seed: &[u8; 32]) -> (Self, Vec<u8>) {
        macro_rules! generate {
            ($module:ident, $variant:ident) => {{
                let mut pair = libcrux_ml_dsa::$module::generate_key_pair(*seed);
                let public = pair.verification_key.as_slice().to_vec();
                (
                    Secret::$variant(Expanded::take(&mut pair.signing_key)),
                    public,
                )
            }};
        }
        let generated = match set {
            MlDsaParameterSet::MlDsa44 => generate!(ml_dsa_44, L44),
            MlDsaParameterSet::MlDsa65 => generate!(ml_dsa_65, L65),
            MlDsaParameterSet::MlDsa87 => generate!(ml_dsa_87, L87),
        };
        scrub_stack();
        generated
    }

    /// Pure ML-DSA, empty context, deterministic variant (FIPS 204 Algorithm 2 with
    /// `rnd` all zeros).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        const DETERMINISTIC: [u8; 32] = [0; 32];
        let signature = match self {
            Secret::L44(k) => libcrux_ml_dsa::ml_dsa_44::sign(&k.0, msg, &[], DETERMINISTIC)
                .map(|s| s.as_slice().to_vec()),
            Secret::L65(k) => libcrux_ml_dsa::ml_dsa_65::sign(&k.0, msg, &[], DETERMINISTIC)
                .map(|s| s.as_slice().to_vec()),
            Secret::L87(k) => libcrux_ml_dsa::ml_dsa_87::sign(&k.0, msg, &[], DETERMINISTIC)
                .map(|s| s.as_slice().to_vec()),
        };
        scrub_stack();
        signature.map_err(|e| {
            format!(
                "ML-DSA signing failed ({})",
                match e {
                    SigningError::RejectionSamplingError => "rejection sampling did not end",
                    SigningError::ContextTooLongError => "context too long",
                }
            )
        })
    }
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
        self.secret.parameter_set()
    }

    /// The encoded public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Signs `msg`: pure ML-DSA, empty context, deterministic variant.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.secret.sign(msg)
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

/// The public key of an expanded-only key: `rho` and `t1`, the high bits of
/// `A·s1 + s2` (FIPS 204 Algorithm 6, lines 5–6). libcrux computes it only during key
/// generation from a seed; RustCrypto's `ml-dsa` computes it from the expanded key.
/// The caller has checked the length and the coefficient ranges.
fn expanded_public_key(set: MlDsaParameterSet, expanded: &[u8]) -> Option<Vec<u8>> {
    use ml_dsa::{ExpandedSigningKey, ExpandedSigningKeyBytes, MlDsa44, MlDsa65, MlDsa87};
    fn derive<P: ml_dsa::MlDsaParams>(expanded: &[u8]) -> Option<Vec<u8>> {
        let bytes = Zeroizing::new(ExpandedSigningKeyBytes::<P>::try_from(expanded).ok()?);
        // `from_expanded` is deprecated in favour of seeds, but RFC 9881 keeps the
        // expanded-only form; the key is zeroized when dropped (feature `zeroize`).
        #[allow(deprecated)]
        let key = ExpandedSigningKey::<P>::from_expanded(&bytes);
        Some(key.verifying_key().encode().to_vec())
    }
    match set {
        MlDsaParameterSet::MlDsa44 => derive::<MlDsa44>(expanded),
        MlDsaParameterSet::MlDsa65 => derive::<MlDsa65>(expanded),
        MlDsaParameterSet::MlDsa87 => derive::<MlDsa87>(expanded),
    }
}

fn key_from(form: &PrivateKeyForm<'_>, set: MlDsaParameterSet) -> Result<MlDsaKey, KeyError2> {
    let from_seed = |seed: &[u8]| -> Result<(Secret, Vec<u8>), KeyError2> {
        check_seed_len(seed, set).map_err(KeyError2::Malformed)?;
        let seed = Zeroizing::new(
            <[u8; 32]>::try_from(seed).map_err(|_| KeyError2::Malformed("seed".into()))?,
        );
        Ok(Secret::from_seed(set, &seed))
    };
    let (secret, public) = match form {
        PrivateKeyForm::Seed(seed) => from_seed(seed)?,
        PrivateKeyForm::Expanded(expanded) => {
            check_expanded_len(expanded, set).map_err(KeyError2::Malformed)?;
            if !check_short_vectors(expanded, set) {
                return Err(KeyError2::Malformed(format!(
                    "{} expanded key holds out-of-range coefficients",
                    set.name()
                )));
            }
            let unreadable = || KeyError2::Malformed(format!("{} expanded key", set.name()));
            let secret = Secret::from_expanded(set, expanded).ok_or_else(unreadable)?;
            let public = expanded_public_key(set, expanded).ok_or_else(unreadable)?;
            (secret, public)
        }
        PrivateKeyForm::Both { seed, expanded } => {
            check_expanded_len(expanded, set).map_err(KeyError2::Malformed)?;
            let (secret, public) = from_seed(seed)?;
            if secret.as_slice() != *expanded {
                return Err(KeyError2::Inconsistent(format!(
                    "its {} expanded key is not the one its seed expands to",
                    set.name()
                )));
            }
            (secret, public)
        }
    };
    let key = MlDsaKey { secret, public };
    if let PrivateKeyForm::Expanded(_) = form {
        // The expanded form carries no seed to re-derive from: check that its
        // parts agree by signing once and verifying with the derived public key
        // (a wrong t0 or tr would fail every request otherwise).
        let probe = b"iamra: ML-DSA key check";
        let ok = key
            .sign(probe)
            .map(|sig| verify(set, &key.public, probe, &sig))
            .unwrap_or(false);
        if !ok {
            return Err(KeyError2::Inconsistent(format!(
                "its {} expanded key parts disagree (a test signature does not verify)",
                set.name()
            )));
        }
    }
    Ok(key)
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
    let key = key_from(&form, set).map_err(map)?;
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
        for set in MlDsaParameterSet::ALL {
            let mut bytes = Secret::from_seed(set, &[7u8; 32]).0.as_slice().to_vec();
            assert_eq!(bytes.len(), set.expanded_key_len());
            assert!(check_short_vectors(&bytes, set), "{set:?}");
            // All ones in the first coefficient of s1: 7 (eta 2) or 15 (eta 4).
            bytes[128] |= 0x0f;
            assert!(!check_short_vectors(&bytes, set), "{set:?}");
        }
    }

    /// libcrux (which signs) and RustCrypto (which gives an expanded-only key its
    /// public key, and verifies in the test endpoint) agree on key generation,
    /// the public key of an expanded key, signatures and verification.
    #[test]
    fn libcrux_and_rustcrypto_agree_on_keys_and_signatures() {
        use ml_dsa::{MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signer as _, SigningKey};
        fn rustcrypto<P: MlDsaParams>(seed: [u8; 32], msg: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
            let key = SigningKey::<P>::from_seed(&ml_dsa::Seed::from(seed));
            #[allow(deprecated)]
            let expanded = key.expanded_key().to_expanded().to_vec();
            let public = AsRef::<ml_dsa::VerifyingKey<P>>::as_ref(&key)
                .encode()
                .to_vec();
            let sig = key.try_sign(msg).unwrap().encode().to_vec();
            (expanded, public, sig)
        }
        for (n, set) in MlDsaParameterSet::ALL.into_iter().enumerate() {
            for round in 0u8..4 {
                let seed = [round.wrapping_mul(37).wrapping_add(n as u8); 32];
                let msg = format!("string to sign {round} for {}", set.name());
                let (expanded, public, sig) = match set {
                    MlDsaParameterSet::MlDsa44 => rustcrypto::<MlDsa44>(seed, msg.as_bytes()),
                    MlDsaParameterSet::MlDsa65 => rustcrypto::<MlDsa65>(seed, msg.as_bytes()),
                    MlDsaParameterSet::MlDsa87 => rustcrypto::<MlDsa87>(seed, msg.as_bytes()),
                };
                let (secret, derived) = Secret::from_seed(set, &seed);
                assert_eq!(secret.as_slice(), expanded, "{set:?} expanded key");
                assert_eq!(derived, public, "{set:?} public key");
                assert_eq!(expanded_public_key(set, &expanded).unwrap(), public);
                assert_eq!(
                    secret.sign(msg.as_bytes()).unwrap(),
                    sig,
                    "{set:?} signature"
                );
                assert!(verify(set, &public, msg.as_bytes(), &sig));
            }
        }
    }

    /// The stack overwrite runs after libcrux returned, below the caller's frame:
    /// with it on or off, keys and signatures are the same.
    #[test]
    fn keys_and_signatures_are_the_same_with_the_stack_scrub_on_or_off() {
        let run = || {
            MlDsaParameterSet::ALL.map(|set| {
                let (secret, public) = Secret::from_seed(set, &[5u8; 32]);
                (public, secret.sign(b"scrub").unwrap())
            })
        };
        let on = run();
        set_stack_scrub(false);
        let off = run();
        set_stack_scrub(true);
        assert_eq!(on, off);
    }

    #[test]
    fn the_three_forms_of_one_key_sign_alike_and_a_tampered_expanded_key_is_refused() {
        for set in MlDsaParameterSet::ALL {
            let seed = [3u8; 32];
            let expanded = Secret::from_seed(set, &seed).0.as_slice().to_vec();
            let seeded = key_from(&PrivateKeyForm::Seed(&seed), set).ok().unwrap();
            let alone = key_from(&PrivateKeyForm::Expanded(&expanded), set)
                .ok()
                .unwrap();
            let both = key_from(
                &PrivateKeyForm::Both {
                    seed: &seed,
                    expanded: &expanded,
                },
                set,
            )
            .ok()
            .unwrap();
            assert_eq!(alone.public_key(), seeded.public_key());
            assert_eq!(both.public_key(), seeded.public_key());
            let sig = seeded.sign(b"m").unwrap();
            assert_eq!(alone.sign(b"m").unwrap(), sig);
            assert_eq!(both.sign(b"m").unwrap(), sig);
            // A flipped bit of tr (bytes 64..128): the parts disagree.
            let mut tampered = expanded.clone();
            tampered[70] ^= 1;
            assert!(matches!(
                key_from(&PrivateKeyForm::Expanded(&tampered), set),
                Err(KeyError2::Inconsistent(_))
            ));
            assert!(matches!(
                key_from(
                    &PrivateKeyForm::Both {
                        seed: &seed,
                        expanded: &tampered,
                    },
                    set,
                ),
                Err(KeyError2::Inconsistent(_))
            ));
        }
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
