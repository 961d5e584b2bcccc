//! Software keys from files: PKCS#1, SEC 1 (with or without `EC PARAMETERS`),
//! PKCS#8 and encrypted PKCS#8 (PBES2), in PEM or DER.
//!
//! RSA keys are handed to ring (constant-time, blinded); EC keys to p256/p384;
//! ML-DSA keys (PKCS#8 only, RFC 9881) to `libcrux-ml-dsa` (see `mldsa.rs`).
//! Every buffer that held key bytes is zeroized when dropped.

use std::path::Path;

use p256::pkcs8::DecodePrivateKey as _;
use pkcs8::der::Decode as _;
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::tpm::tcti::TctiConfig;
use super::{Digest, KeyError, PasswordSource, PublicKey, SignError, SigningKey};
use crate::input::Input;
use crate::pem;

/// A private key read from a key file: held in process memory, or (a TSS2 key
/// file) loaded into a TPM.
pub enum FileKey {
    /// RSA, signed by ring.
    Rsa(ring::signature::RsaKeyPair),
    /// EC P-256.
    P256(p256::ecdsa::SigningKey),
    /// EC P-384.
    P384(p384::ecdsa::SigningKey),
    /// ML-DSA-44/65/87.
    MlDsa(super::MlDsaKey),
    /// A `TSS2 PRIVATE KEY` file: the key stays in the TPM (feature `tpm`).
    Tpm(super::TpmKey),
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: only the key kind is printed, never key material.
        let kind = match self {
            FileKey::Rsa(_) => "Rsa",
            FileKey::P256(_) => "P256",
            FileKey::P384(_) => "P384",
            FileKey::MlDsa(k) => return write!(f, "FileKey::MlDsa({})", k.parameter_set().name()),
            FileKey::Tpm(k) => return write!(f, "FileKey::Tpm({k:?})"),
        };
        write!(f, "FileKey::{kind}(** redacted **)")
    }
}

impl SigningKey for FileKey {
    fn public_key(&self) -> PublicKey {
        match self {
            FileKey::Rsa(k) => PublicKey::Rsa {
                pkcs1: k.public().as_ref().to_vec(),
                bits: k.public().modulus_len() * 8,
            },
            FileKey::P256(k) => {
                PublicKey::P256(k.verifying_key().to_sec1_point(false).as_bytes().to_vec())
            }
            FileKey::P384(k) => {
                PublicKey::P384(k.verifying_key().to_sec1_point(false).as_bytes().to_vec())
            }
            FileKey::MlDsa(k) => PublicKey::MlDsa {
                set: k.parameter_set(),
                key: k.public_key().to_vec(),
            },
            FileKey::Tpm(k) => k.public_key(),
        }
    }

    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignError> {
        use ecdsa::signature::hazmat::PrehashSigner as _;
        match self {
            FileKey::Rsa(k) => {
                let alg = match digest {
                    Digest::Sha256 => &ring::signature::RSA_PKCS1_SHA256,
                    Digest::Sha384 => &ring::signature::RSA_PKCS1_SHA384,
                    Digest::Sha512 => &ring::signature::RSA_PKCS1_SHA512,
                };
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(alg, &ring::rand::SystemRandom::new(), message, &mut sig)
                    .map_err(|_| SignError::Backend("RSA signing failed".into()))?;
                Ok(sig)
            }
            FileKey::P256(k) => {
                let hash = digest.hash(message);
                let sig: p256::ecdsa::DerSignature = k
                    .sign_prehash(hash.as_ref())
                    .map_err(|e| SignError::Backend(e.to_string()))?;
                Ok(sig.as_bytes().to_vec())
            }
            FileKey::P384(k) => {
                let hash = digest.hash(message);
                let sig: p384::ecdsa::DerSignature = k
                    .sign_prehash(hash.as_ref())
                    .map_err(|e| SignError::Backend(e.to_string()))?;
                Ok(sig.as_bytes().to_vec())
            }
            // Pure ML-DSA signs the message itself: `digest` does not apply.
            FileKey::MlDsa(k) => k.sign(message).map_err(SignError::Backend),
            FileKey::Tpm(k) => k.sign(message, digest),
        }
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Loads a private key file (PEM or DER, any supported encoding; a TSS2 key file
/// on the TPM the environment names).
pub fn load_key(input: &Input, passwords: &dyn PasswordSource) -> Result<FileKey, KeyError> {
    load_key_on(input, passwords, None)
}

/// [`load_key`], a TSS2 key file on the TPM `tcti` names (`None`: from the
/// environment).
pub fn load_key_on(
    input: &Input,
    passwords: &dyn PasswordSource,
    tcti: Option<&TctiConfig>,
) -> Result<FileKey, KeyError> {
    let data = input.read("private key file")?;
    load_key_bytes_on(&data, &input.label(), passwords, tcti)
}

/// Parses private key bytes; `path` names the source in errors.
pub fn load_key_bytes(
    data: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
) -> Result<FileKey, KeyError> {
    load_key_bytes_on(data, path, passwords, None)
}

/// [`load_key_bytes`], a TSS2 key on the TPM `tcti` names.
pub(crate) fn load_key_bytes_on(
    data: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
    tcti: Option<&TctiConfig>,
) -> Result<FileKey, KeyError> {
    if pem::looks_like_pem(data) {
        let blocks = pem::parse_all(data).map_err(|e| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        for block in &blocks {
            let label = block.label.as_str();
            if matches!(label, "RSA PRIVATE KEY" | "EC PRIVATE KEY") && block.has_headers {
                return Err(KeyError::UnsupportedEncryption {
                    path: path.to_path_buf(),
                    reason: "legacy OpenSSL PEM encryption; convert with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
                });
            }
            match label {
                "PRIVATE KEY" => return from_pkcs8(&block.der, path),
                "RSA PRIVATE KEY" => return from_pkcs1(&block.der, path),
                "EC PRIVATE KEY" => return from_sec1(&block.der, path),
                "ENCRYPTED PRIVATE KEY" => return from_encrypted(&block.der, path, passwords),
                super::tpm::tss2::PEM_LABEL => {
                    return super::tpm::load_key_file_with_tcti(&block.der, path, passwords, tcti)
                        .map(FileKey::Tpm);
                }
                _ => {}
            }
        }
        return Err(KeyError::NoKey {
            path: path.to_path_buf(),
            found: crate::cert::describe_labels(&blocks),
        });
    }
    if data.first() != Some(&0x30) {
        return Err(KeyError::NoKey {
            path: path.to_path_buf(),
            found: "neither PEM nor DER".into(),
        });
    }
    // DER: try each structure in turn; they are distinguishable by shape.
    if pkcs8::PrivateKeyInfoRef::from_der(data).is_ok() {
        return from_pkcs8(data, path);
    }
    if pkcs8::EncryptedPrivateKeyInfoRef::from_der(data).is_ok() {
        return from_encrypted(data, path, passwords);
    }
    if let Ok(k) = from_pkcs1(data, path) {
        return Ok(k);
    }
    if sec1::EcPrivateKey::from_der(data).is_ok() {
        return from_sec1(data, path);
    }
    if x509_parser::parse_x509_certificate(data).is_ok() {
        return Err(KeyError::NoKey {
            path: path.to_path_buf(),
            found: "found a DER certificate".into(),
        });
    }
    Err(KeyError::NoKey {
        path: path.to_path_buf(),
        found: "DER of an unknown type".into(),
    })
}

fn malformed(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn rsa_from(
    result: Result<ring::signature::RsaKeyPair, ring::error::KeyRejected>,
    path: &Path,
) -> Result<FileKey, KeyError> {
    match result {
        Ok(k) => {
            // ring checks the key's consistency when loading it, but not every CRT
            // parameter (a wrong dP passes), and verifies each signature it makes:
            // such a key would fail its first request. Sign once now instead.
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                b"iamra: key check",
                &mut sig,
            )
            .map_err(|_| {
                malformed(
                    path,
                    "RSA key rejected (a test signature failed: its CRT parameters are inconsistent)",
                )
            })?;
            Ok(FileKey::Rsa(k))
        }
        Err(e) if e.to_string() == "TooSmall" => Err(KeyError::Unsupported {
            path: path.to_path_buf(),
            kind: "RSA (under 2048 bits)".into(),
        }),
        Err(e) if e.to_string() == "TooLarge" => Err(KeyError::Unsupported {
            path: path.to_path_buf(),
            kind: "RSA (over 8192 bits)".into(),
        }),
        Err(e) => Err(malformed(path, format!("RSA key rejected ({})", e))),
    }
}

/// Unencrypted PKCS#8 `PrivateKeyInfo`.
pub(crate) fn from_pkcs8(der: &[u8], path: &Path) -> Result<FileKey, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|e| malformed(path, format!("not PKCS#8 ({e})")))?;
    let oid = info.algorithm.oid.to_string();
    match oid.as_str() {
        OID_RSA => rsa_from(ring::signature::RsaKeyPair::from_pkcs8(der), path),
        OID_EC => {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<pkcs8::ObjectIdentifier>().ok())
                .map(|o| o.to_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(FileKey::P256)
                    .map_err(|e| malformed(path, e.to_string())),
                OID_P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(FileKey::P384)
                    .map_err(|e| malformed(path, e.to_string())),
                other => Err(unsupported_curve(path, other)),
            }
        }
        "1.3.101.112" => Err(unsupported(path, "Ed25519")),
        "1.3.101.113" => Err(unsupported(path, "Ed448")),
        "1.2.840.10040.4.1" => Err(unsupported(path, "DSA")),
        "1.2.840.113549.1.1.10" => Err(unsupported(path, "RSA-PSS")),
        other => match super::MlDsaParameterSet::from_oid(other) {
            Some(set) => super::mldsa::from_pkcs8(
                set,
                info.algorithm.parameters.is_some(),
                info.private_key.as_bytes(),
                info.public_key.map(|k| k.raw_bytes()),
                path,
            )
            .map(FileKey::MlDsa),
            None => Err(unsupported(
                path,
                &crate::public_key::describe_other_nist_oid(other)
                    .unwrap_or_else(|| format!("OID {other}")),
            )),
        },
    }
}

fn unsupported(path: &Path, kind: &str) -> KeyError {
    KeyError::Unsupported {
        path: path.to_path_buf(),
        kind: kind.into(),
    }
}

fn unsupported_curve(path: &Path, oid: &str) -> KeyError {
    let name = match oid {
        "1.3.132.0.35" => "EC P-521".to_string(),
        "1.3.132.0.10" => "EC secp256k1".to_string(),
        "" => "EC (no named curve)".to_string(),
        other => format!("EC curve {other}"),
    };
    unsupported(path, &name)
}

/// PKCS#1 `RSAPrivateKey`.
fn from_pkcs1(der: &[u8], path: &Path) -> Result<FileKey, KeyError> {
    rsa_from(ring::signature::RsaKeyPair::from_der(der), path)
}

/// SEC 1 `ECPrivateKey`; the curve comes from the parameters or the key length.
fn from_sec1(der: &[u8], path: &Path) -> Result<FileKey, KeyError> {
    let parsed = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| malformed(path, format!("not SEC 1 ({e})")))?;
    let curve = parsed
        .parameters
        .and_then(|p| p.named_curve())
        .map(|o| o.to_string());
    let curve = match curve {
        Some(c) => c,
        None => match parsed.private_key.len() {
            32 => OID_P256.to_string(),
            48 => OID_P384.to_string(),
            _ => String::new(),
        },
    };
    match curve.as_str() {
        OID_P256 => p256::SecretKey::from_sec1_der(der)
            .map(|k| FileKey::P256(k.into()))
            .map_err(|e| malformed(path, e.to_string())),
        OID_P384 => p384::SecretKey::from_sec1_der(der)
            .map(|k| FileKey::P384(k.into()))
            .map_err(|e| malformed(path, e.to_string())),
        other => Err(unsupported_curve(path, other)),
    }
}

/// Most PBKDF2 iterations accepted (OpenSSL writes 2048; a few seconds' work).
pub(crate) const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Most memory scrypt may need (`128 * r * N` bytes; OpenSSL's default is 16 MiB).
pub(crate) const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
/// Largest scrypt parallelisation `p` (OpenSSL writes 1).
pub(crate) const MAX_SCRYPT_PARALLELISM: u16 = 16;

/// Refuses key-derivation parameters that would take minutes or gigabytes before
/// the password is even checked: the parameters come from the key file.
fn check_kdf_cost(kdf: &pkcs5::pbes2::Kdf) -> Result<(), String> {
    const HINT: &str = "re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`";
    match kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(format!(
            "PBKDF2 with {} iterations, more than the {MAX_PBKDF2_ITERATIONS} accepted; {HINT}",
            p.iteration_count
        )),
        pkcs5::pbes2::Kdf::Scrypt(p) => {
            let memory = 128u64
                .saturating_mul(u64::from(p.block_size))
                .saturating_mul(p.cost_parameter);
            if memory > MAX_SCRYPT_MEMORY || p.parallelization > MAX_SCRYPT_PARALLELISM {
                Err(format!(
                    "scrypt with N={}, r={}, p={}, beyond the accepted 256 MiB and p of 16; {HINT}",
                    p.cost_parameter, p.block_size, p.parallelization
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Encrypted PKCS#8 (PBES2 with PBKDF2 or scrypt, AES-CBC).
fn from_encrypted(
    der: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
) -> Result<FileKey, KeyError> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(der)
        .map_err(|e| malformed(path, format!("not encrypted PKCS#8 ({e})")))?;
    let Some(pbes2) = info.encryption_algorithm.pbes2() else {
        return Err(KeyError::UnsupportedEncryption {
            path: path.to_path_buf(),
            reason: "PBES1; re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
        });
    };
    check_kdf_cost(&pbes2.kdf).map_err(|reason| KeyError::UnsupportedEncryption {
        path: path.to_path_buf(),
        reason,
    })?;
    let password = passwords
        .password(super::SecretKind::Pkcs8Password, path)?
        .ok_or_else(|| KeyError::PasswordRequired {
            what: "private key",
            path: path.to_path_buf(),
        })?;
    let plain = match info.decrypt(password.expose_secret().as_bytes()) {
        Ok(doc) => Zeroizing::new(doc.as_bytes().to_vec()),
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::DecryptFailed)) => {
            return Err(KeyError::WrongPassword {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(KeyError::UnsupportedEncryption {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    // A wrong password passes the CBC padding check about once in 256 tries;
    // the decrypted bytes then are not a PrivateKeyInfo.
    if pkcs8::PrivateKeyInfoRef::from_der(&plain).is_err() {
        return Err(KeyError::WrongPassword {
            path: path.to_path_buf(),
        });
    }
    from_pkcs8(&plain, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{FixedPassword, NoPassword};
    use base64::Engine as _;

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("certs-testdata")
                .join(rel),
        )
        .unwrap()
    }

    /// Found by the `key` fuzz target: `rsa3072/key.pkcs1.der` with seven octets of
    /// `exponent1` (dP) shuffled. ring loaded it, then refused every signature.
    const BAD_DP_PKCS1: &str = concat!(
        "MIIG4wIBAAKCAYEA8Mw5FSE5IqqIHO8spMwx6oo580OhsL3fMrVbanF9usS5Fx6NL8HuSLKBbWgcK0Y0MT1DMFMvDmyUtNSz",
        "us0Y8VABmPCxD8nLIyC/nuFJPld4mZiCrN/oEeTSUh11WsmHgaGjgJ8GTp+srl76ieTZhdJ7YaUVm7ZTVS73QnjXWVTv4tVo",
        "L4nKPljQm/Ko7g8CAldSYItSrs0/njSJqN/qnW+JmZ+sXaJ4LzeQwBHTn/m4CtdnYhcernxhMI3C955NcMAb7zqiEMpcOtgI",
        "pfQ4EXFaNGSPii7RjorvNeU4mtit4JMW63tR/0heQvNZLdRTa7ll4ESMm7NPV5SMVyHzzSu7+Jvx0NWxFwbSHB/06jGiZ1u5",
        "uKp5zh0Rbe26OwawJnlLaiSI5l9+41sgjCIMfJVLsuAuz7x5rr15PlzIBMiJkSsoaTkgHsoeiGm6KEJr2kKkGr0cQu6nBfAo",
        "tG1RaRgiMj0XFGEdBt4d7MnWPAAH4Q3O4TCMNSQaqa9ES0bXAgMBAAECggGAHyGQCbLLY7d0tHpEJSQpxJRNTK2EOcjlEnW5",
        "lV00hOZ1Cs+jhOFHe1+UoGk9fGdtolC0yd/J7Xf35m8PXh8GUqsQzHiQXlBXnQ7ZUeL3aKy/W0Az42y+iz2wO/cyBQ7uoBbz",
        "1VJPQEVKz8UDaBDNrIxF8PL6WbDB56Ppn07nLICbfjyFOowlDlgbfuXplX7G4uLuNAF0gEPp2HwbW1ljnX9eOfMXl4gZ40+F",
        "knIGOvWlJ8WpyIKLsBbwK7+leAT05uGNO2+4xGvW52z9sc7XFN4ED2yCCzHZPRmcLkRyRCYbIUhIvEGIar/VeoOiduKVVxQV",
        "kZV2Gp5vJ76z7pnwnOpMB4n2NX+4cHpcc6Ct9ebk/xCc48F2i88K4qEbWnRChGO2zI7UcJlgU3VxPG4yez1FhcKrAn5yo5p1",
        "nk/Zx44ZkdFDkU2fDJreJHslGVfFITdDTDYU/eZtxOal9AK6cRRz+LmID0KlvLkyLKbjFZE8vro93Un/xo/ChCx1jgslAoHB",
        "APy8X2Ij8usE/v9LXg6B+goMHH9Jx4p7VH6VgefSH5kNRB0XfO/7S5DS2k6kDzBJ+xXWSiOqKyoPR8TPy39BJGDP0VAnDEdA",
        "3zEg/s3XlMxAqFdHCADNtr/hZ1LYvkiZOx/wELtwlV8tkLIckFEwN1z4SyEVwpO5EuzMhdHeHTCZBVSEdGEx25AwhiRSb1gB",
        "jIiRbSnAZIGUHo56yodjQm8t1P/UxsXRx0mTHnIO7PowaobVC9WWX0WjuWlAUKsC4wKBwQDz6GERYL49gYspCAW3/GUlHke1",
        "zXGj9sXGPuEays3bOZdGTYoVYCD4nv4gBCWcpFkAF1REebfrawCF4F0d+qB5ikrGP4QG+4ZhtijaRrx22JJjlaemmXDKCCiS",
        "f7TSJTIXbIFCeML/A9skalaBOt99J2VDLsQfaCBkZSC98XQQOtz+YTLsiviSTwtXKmzs+yOF6SK73oM2m3p7i3/I0Xvb4/mj",
        "oAUmeC5LK71KKfiyqp40W9KdYooEyAKpvuv6Cn0CgcBfgNuZ4F1Wb0Qd4U4Ik2sl8s+t9fZWSSZzsxFkxY01K8Mqbx7CHKbA",
        "cj0WbH5k0//yj4hyk7I98YpAP/l4++fAQaep7yd/oW71xK8kn6tVx7UVTf0jOJkvRwDhWJAHJQgnmHLqMa/wSGqeM5cBZwP0",
        "uMrDFNLzOYOCQgLrfFBxddGCz46ez9VVVlDKVvBGREeTr8idd1tDb/JgCtyPbp3DH4GWrxPx2sTA87wUg7lfDX6jtswDCRC1",
        "YxoEQM564NsCgcAgstygicm3UTCo1Yx+t/WPXlnaw6oigyjMhQ2Em/+xDi17nVWPvA1vh1EmVaf9MgNEgdwoOfEwPG4bhJK3",
        "PCxbXvDbVxSKIxpG6zba3HTTsgEeHKgXK6b1TtaxnTFOovHuNfu2P55Utd2hKihittPTYX6v3Qsp8rm0++HB1SbsLhgGel1r",
        "XM4qPzKUAvoLYzfF8hVX/mK05W8sNO1yrLLgLdX/26oVGDOMnFaKJMpUmY8QEedQdi9uqKnCu/fC07kCgcEA0bJOtZ7MzAQa",
        "r9MXEkrftW1PxuuYPykQNoBqLjQP1eS7dA+db9onrsD4KhNqwFnvgTmXftTzUwSzRuN7T+dVpG3Ynvk2adydbvMl/lZdzw0m",
        "l+JqSlhA9aJXcvdn1SPKNE7Ahk6yJvx9g/evnTQ3JN8u4T4fScNFFuSgxC9RQrtraEMW7PAjRxdNHl3deQp1jFOPoxaKvmaI",
        "B9BuSBUHLMCphqx7atp96thomz38ERv3AUxtHy/oVe20xMCNCKt1",
    );

    #[test]
    fn rsa_key_with_inconsistent_crt_parameters_is_refused_at_load() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(BAD_DP_PKCS1)
            .unwrap();
        let e = load_key_bytes(&der, Path::new("k.der"), &NoPassword).unwrap_err();
        assert!(
            matches!(e, KeyError::NoKey { .. } | KeyError::Malformed { .. }),
            "{e}"
        );
        let pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{BAD_DP_PKCS1}\n-----END RSA PRIVATE KEY-----\n"
        );
        let e = load_key_bytes(pem.as_bytes(), Path::new("k.pem"), &NoPassword).unwrap_err();
        assert_eq!(
            e.to_string(),
            "private key k.pem does not parse: RSA key rejected (a test signature failed: its CRT parameters are inconsistent)"
        );
        // The key it came from loads and signs.
        let good = load_key_bytes(
            &fixture("rsa3072/key.pkcs1.der"),
            Path::new("k"),
            &NoPassword,
        )
        .unwrap();
        good.sign(b"x", Digest::Sha256).unwrap();
    }

    /// Reads the PEM `rel` and returns its DER with the KDF's first INTEGER (scrypt
    /// N, or PBKDF2 iterations; two octets in the fixtures) replaced by `value`, and
    /// the 8-octet salt shortened to keep the length, so no outer length changes.
    fn with_kdf_integer(rel: &str, value: &[u8]) -> Vec<u8> {
        let pem = String::from_utf8(fixture(rel)).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let out = crate::test_der::with_kdf_integer(&der, value);
        assert_eq!(out.len(), der.len());
        out
    }

    #[test]
    fn costly_key_derivation_parameters_are_refused_before_deriving() {
        let password = FixedPassword(secrecy::SecretString::from("correct horse battery staple"));
        let cases = [
            // scrypt N = 2^30: 1 TiB; the allocation aborted the process.
            (
                "ec-p256/key.enc-scrypt-aes256.pem",
                [0x40, 0, 0, 0],
                "scrypt with N=1073741824, r=8, p=1",
            ),
            // scrypt N = 2^24: 2 GiB.
            (
                "ec-p256/key.enc-scrypt-aes256.pem",
                [0x01, 0, 0, 0],
                "scrypt with N=16777216, r=8, p=1",
            ),
            // PBKDF2 with 2^31 - 1 iterations: hours.
            (
                "ec-p256/key.enc-pbkdf2-sha256-aes256.pem",
                [0x7f, 0xff, 0xff, 0xff],
                "PBKDF2 with 2147483647 iterations",
            ),
        ];
        for (rel, value, reason) in cases {
            let der = with_kdf_integer(rel, &value);
            let start = std::time::Instant::now();
            let e = load_key_bytes(&der, Path::new("k.der"), &password).unwrap_err();
            assert!(start.elapsed() < std::time::Duration::from_secs(2), "{rel}");
            assert!(matches!(e, KeyError::UnsupportedEncryption { .. }), "{e}");
            assert!(e.to_string().contains(reason), "{e}");
        }
        // At the limits (scrypt N = 2^18 with r = 8 is 256 MiB), accepted.
        let der = with_kdf_integer("ec-p256/key.enc-scrypt-aes256.pem", &[0x04, 0, 0]);
        let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).unwrap();
        check_kdf_cost(&info.encryption_algorithm.pbes2().unwrap().kdf).unwrap();
    }

    #[test]
    fn fixed_password_debug_is_redacted() {
        let p = FixedPassword(secrecy::SecretString::from("hunter2-fixed"));
        assert_eq!(format!("{p:?}"), "FixedPassword(** redacted **)");
        assert!(!format!("{p:#?}").contains("hunter2"));
    }

    #[test]
    fn debug_prints_the_kind_never_the_key() {
        let password = FixedPassword(secrecy::SecretString::from("correct horse battery staple"));
        for rel in [
            "rsa2048/key.pkcs8.pem",
            "ec-p256/key.sec1.pem",
            "ec-p384/key.enc-pbkdf2-sha256-aes256.pem",
        ] {
            let data = fixture(rel);
            let key = load_key_bytes(&data, Path::new(rel), &password).unwrap();
            let text = format!("{key:?} {key:#?}");
            assert!(text.contains("** redacted **"), "{text}");
            let body: String = String::from_utf8_lossy(&data)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            for chunk in body.as_bytes().chunks(16) {
                let chunk = std::str::from_utf8(chunk).unwrap();
                assert!(!text.contains(chunk), "{rel}: {text}");
            }
            assert!(!text.contains("correct horse"), "{text}");
        }
        assert_eq!(
            format!(
                "{:?}",
                load_key_bytes(
                    &fixture("ec-p256/key.pkcs8.der"),
                    Path::new("k"),
                    &NoPassword
                )
                .unwrap()
            ),
            "FileKey::P256(** redacted **)"
        );
    }
}
