//! Key sources and the signing capability.
//!
//! [`SigningKey`] is the extension point (a library user may bring an HSM of their
//! own, as with rustls's `SigningKey`); [`FileKey`] is the software key read from PEM,
//! DER, PKCS#8 (plain or encrypted) and PKCS#12 files, ML-DSA included ([`MlDsaParameterSet`]). Keys are checked against the
//! certificate when they are loaded ([`check_matches`]), never at first use.

mod file;
mod mldsa;
pub mod pkcs11;
pub mod pkcs12;
pub mod tpm;

use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use self::pkcs12::{Pkcs12Identity, is_pkcs12, load_pkcs12};
pub(crate) use file::load_key_bytes_on;
pub use file::{FileKey, load_key, load_key_bytes, load_key_on};
pub(crate) use mldsa::verify as mldsa_verify;
pub use mldsa::{MlDsaKey, set_stack_scrub as set_mldsa_stack_scrub};
pub use tpm::{TpmError, TpmHandle, TpmKey};

// Defined in a leaf module that `cert` imports too (no cert <-> key cycle).
pub use crate::public_key::{KeyAlgorithm, MlDsaParameterSet, PublicKey};

use crate::error::ErrorKind;
use crate::input::ReadError;

/// Hash used for a signature. Requests always use SHA-256; `sign-string` may ask
/// for the others. ML-DSA signs the message itself and ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Digest {
    /// SHA-256.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Digest {
    /// Hashes `data`.
    pub fn hash(self, data: &[u8]) -> Hash {
        let alg = match self {
            Digest::Sha256 => &ring::digest::SHA256,
            Digest::Sha384 => &ring::digest::SHA384,
            Digest::Sha512 => &ring::digest::SHA512,
        };
        Hash(ring::digest::digest(alg, data))
    }
}

/// A hash computed by [`Digest::hash`]; its bytes through `as_ref()`. (Wraps the
/// crypto library's type, which stays out of the public API.)
#[derive(Clone, Copy, Debug)]
pub struct Hash(ring::digest::Digest);

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// A signing operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The backend refused to sign.
    #[error("signing failed: {0}")]
    Backend(String),
    /// The TPM refused to sign (wrong password, lockout, lost connection...).
    #[error(transparent)]
    Tpm(#[from] TpmError),
    /// The PKCS#11 token refused to sign or to log in again.
    #[error(transparent)]
    Pkcs11(#[from] pkcs11::Pkcs11Error),
}

impl SignError {
    /// What kind of failure this is: the token's or TPM's own kind; a failure of
    /// a caller's own [`SigningKey`] is [`ErrorKind::Transient`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            SignError::Backend(_) => ErrorKind::Transient,
            SignError::Tpm(e) => e.kind(),
            SignError::Pkcs11(e) => e.kind(),
        }
    }

    /// Whether a PIN or password was refused (or the key is locked): never worth a
    /// retry, since each try counts towards a lockout.
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }
}

/// Something that signs with a private key held somewhere: memory, a token, a TPM.
///
/// Implementations hash `message` themselves with `digest` (SHA-256 for requests)
/// and return the signature encoded as Roles Anywhere wants it: PKCS#1 v1.5 bytes
/// for RSA, a DER `Ecdsa-Sig-Value` for ECDSA. ML-DSA keys ignore `digest` and
/// sign `message` itself (pure ML-DSA, empty context, deterministic variant).
pub trait SigningKey: std::fmt::Debug + Send + Sync {
    /// The public half, used to match the key with the certificate.
    fn public_key(&self) -> PublicKey;
    /// Signs `message`.
    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignError>;
    /// The signature family.
    fn algorithm(&self) -> KeyAlgorithm {
        self.public_key().algorithm()
    }
}

/// Which secret a [`PasswordSource`] is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// The password of an encrypted PKCS#8 key.
    Pkcs8Password,
    /// The password of a PKCS#12 bundle.
    Pkcs12Password,
    /// The user PIN of a PKCS#11 token.
    Pkcs11Pin,
    /// The authorisation value of a TPM key.
    TpmKeyPassword,
}

/// Supplies passwords for encrypted keys and bundles.
///
/// The library never opens a terminal itself: the CLI passes an implementation that
/// reads a flag, an environment variable, a file, or prompts on a TTY when one is
/// attached (like age's `Callbacks`).
pub trait PasswordSource: Send + Sync {
    /// Returns the password of `kind` for the file `path`, or `None` when no source
    /// has one.
    fn password(&self, kind: SecretKind, path: &Path) -> Result<Option<SecretString>, KeyError>;
    /// Whether a password of `kind` was configured explicitly (flag, environment,
    /// file), so that no guess (such as the empty password) should be tried first.
    fn is_configured(&self, kind: SecretKind) -> bool;
}

/// A [`PasswordSource`] with no password at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPassword;

impl PasswordSource for NoPassword {
    fn password(&self, _: SecretKind, _: &Path) -> Result<Option<SecretString>, KeyError> {
        Ok(None)
    }
    fn is_configured(&self, _: SecretKind) -> bool {
        false
    }
}

/// A fixed password for every secret (for library users and tests).
pub struct FixedPassword(pub SecretString);

impl std::fmt::Debug for FixedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedPassword(** redacted **)")
    }
}

impl PasswordSource for FixedPassword {
    fn password(&self, _: SecretKind, _: &Path) -> Result<Option<SecretString>, KeyError> {
        Ok(Some(self.0.clone()))
    }
    fn is_configured(&self, _: SecretKind) -> bool {
        true
    }
}

/// A private key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file holds no private key.
    #[error("{} holds no private key ({found})", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
    /// The key bytes do not parse.
    #[error("private key {} does not parse: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// The key's parts disagree (an ML-DSA `both` key whose expanded half is not
    /// the one its seed gives).
    #[error("private key {} is inconsistent: {reason}", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// The key is of an unsupported kind.
    #[error("private key {} is an unsupported {kind} key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: String,
    },
    /// The key is encrypted and no password was available.
    #[error("{what} {} is encrypted and no password was given", path.display())]
    PasswordRequired {
        /// `"private key"` or `"PKCS#12 bundle"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The password did not decrypt the key.
    #[error("wrong password for {}", path.display())]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// Encryption scheme not supported.
    #[error("private key {} uses an unsupported encryption ({reason})", path.display())]
    UnsupportedEncryption {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// A PKCS#12 bundle could not be used.
    #[error("PKCS#12 bundle {} {reason}", path.display())]
    Pkcs12 {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A TPM key file was given but TPM support is not available.
    #[error("{} is a TPM 2.0 key (TSS2 PRIVATE KEY), which this build of iamra cannot use", path.display())]
    TpmUnsupported {
        /// The file.
        path: PathBuf,
    },
    /// A TPM key could not be loaded.
    #[error(transparent)]
    Tpm(#[from] TpmError),
    /// The key does not belong to the certificate.
    #[error("private key {} does not match certificate {}", key.display(), cert.display())]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// Reading a password failed.
    #[error("cannot read the password for {}: {reason}", path.display())]
    PasswordSource {
        /// The file the password was for.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl KeyError {
    /// What kind of failure this is: a TPM key's own kind; a key file's problems
    /// (a wrong password included: nothing locks) are
    /// [`ErrorKind::Configuration`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::Tpm(e) => e.kind(),
            KeyError::WrongPassword { .. }
            | KeyError::Read(_)
            | KeyError::NoKey { .. }
            | KeyError::Malformed { .. }
            | KeyError::Unsupported { .. }
            | KeyError::PasswordRequired { .. }
            | KeyError::UnsupportedEncryption { .. }
            | KeyError::Pkcs12 { .. }
            | KeyError::TpmUnsupported { .. }
            | KeyError::Mismatch { .. }
            | KeyError::Inconsistent { .. }
            | KeyError::PasswordSource { .. } => ErrorKind::Configuration,
        }
    }

    /// Whether a hardware key refused its password or is locked (a wrong password
    /// for a key file is an ordinary error: nothing locks).
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }
}

/// Checks that `key` is the private half of `cert`'s public key.
pub fn check_matches(
    key: &dyn SigningKey,
    key_path: &Path,
    cert: &crate::cert::Certificate,
) -> Result<(), KeyError> {
    if &key.public_key() == cert.public_key() {
        Ok(())
    } else {
        Err(KeyError::Mismatch {
            key: key_path.to_path_buf(),
            cert: cert.source().to_path_buf(),
        })
    }
}
