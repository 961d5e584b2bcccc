//! PKCS#12 bundles: modern (PBES2/AES + HMAC-SHA256, the OpenSSL 3 default) and
//! legacy (RC2/3DES + SHA-1), with a password, an empty password, or none.
//!
//! The certificate whose public key matches the bundle's key is the leaf; the other
//! certificates, leaf-to-root order first, become `X-Amz-X509-Chain`.

use std::path::Path;

use p12_keystore::Pkcs12Archive;
use secrecy::ExposeSecret as _;

use super::file::from_pkcs8;
use super::{FileKey, KeyError, PasswordSource, SecretKind, SigningKey as _};
use crate::cert::Certificate;

/// What a PKCS#12 bundle yields.
#[derive(Debug)]
pub struct Pkcs12Identity {
    /// The private key.
    pub key: FileKey,
    /// The certificate that matches the key.
    pub certificate: Certificate,
    /// The other certificates, issuer order first.
    pub chain: Vec<Certificate>,
}

/// Whether the bytes look like a PKCS#12 PFX (a DER SEQUENCE starting with version 3).
pub fn is_pkcs12(data: &[u8]) -> bool {
    // SEQUENCE (long or short length) { INTEGER 3, ...
    let body = match data {
        [0x30, 0x82, _, _, rest @ ..] => rest,
        [0x30, 0x81, _, rest @ ..] => rest,
        [0x30, n, rest @ ..] if *n < 0x80 => rest,
        [0x30, 0x83, _, _, _, rest @ ..] => rest,
        _ => return false,
    };
    body.starts_with(&[0x02, 0x01, 0x03])
}

fn p12_error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Pkcs12 {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn is_password_error(e: &p12_keystore::error::Error) -> bool {
    use p12_keystore::error::Error as E;
    matches!(e, E::MacError(_) | E::UnpadError)
}

/// Loads a PKCS#12 bundle from a file.
pub fn load_pkcs12(
    input: &crate::input::Input,
    passwords: &dyn PasswordSource,
) -> Result<Pkcs12Identity, KeyError> {
    let data = input.read("PKCS#12 bundle")?;
    pkcs12_from_bytes(&data, &input.label(), passwords)
}

/// Parses PKCS#12 bytes.
pub fn pkcs12_from_bytes(
    data: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
) -> Result<Pkcs12Identity, KeyError> {
    let kind = SecretKind::Pkcs12Password;
    let archive = if passwords.is_configured(kind) {
        let password = passwords.password(kind, path)?.unwrap_or_default();
        open(data, password.expose_secret(), path)?
    } else {
        // No password configured: most bundles made for machines use an empty one.
        match Pkcs12Archive::from_pkcs12(data, "") {
            Ok(a) => a,
            Err(e) if is_password_error(&e) => {
                let password =
                    passwords
                        .password(kind, path)?
                        .ok_or_else(|| KeyError::PasswordRequired {
                            what: "PKCS#12 bundle",
                            path: path.to_path_buf(),
                        })?;
                open(data, password.expose_secret(), path)?
            }
            Err(e) => return Err(p12_error(path, format!("does not parse ({e})"))),
        }
    };
    identity_from_archive(archive, path)
}

fn open(data: &[u8], password: &str, path: &Path) -> Result<Pkcs12Archive, KeyError> {
    Pkcs12Archive::from_pkcs12(data, password).map_err(|e| {
        if is_password_error(&e) {
            KeyError::WrongPassword {
                path: path.to_path_buf(),
            }
        } else {
            p12_error(path, format!("does not parse ({e})"))
        }
    })
}

fn identity_from_archive(archive: Pkcs12Archive, path: &Path) -> Result<Pkcs12Identity, KeyError> {
    let key = match archive.keys.as_slice() {
        [] => return Err(p12_error(path, "holds no private key")),
        [one] => from_pkcs8(one.key.as_der(), path)?,
        _ => return Err(p12_error(path, "holds more than one private key")),
    };
    let mut certs = Vec::with_capacity(archive.certs.len());
    for bag in &archive.certs {
        let cert = Certificate::from_der(bag.cert.as_der(), path)
            .map_err(|e| p12_error(path, format!("holds a certificate iamra cannot use ({e})")))?;
        certs.push(cert);
    }
    let public = key.public_key();
    let leaf_index = certs
        .iter()
        .position(|c| c.public_key() == &public)
        .ok_or_else(|| p12_error(path, "holds no certificate for its private key"))?;
    let certificate = certs.remove(leaf_index);
    // Order the rest along the issuer path, then any unrelated certificates.
    let mut chain = Vec::with_capacity(certs.len());
    let mut issuer = certificate.issuer().to_string();
    while let Some(i) = certs.iter().position(|c| {
        c.subject() == issuer && !chain.iter().any(|x: &Certificate| x.der() == c.der())
    }) {
        let next = certs.remove(i);
        let self_signed = next.subject() == next.issuer();
        issuer = next.issuer().to_string();
        chain.push(next);
        if self_signed {
            break;
        }
    }
    chain.extend(certs);
    Ok(Pkcs12Identity {
        key,
        certificate,
        chain,
    })
}
