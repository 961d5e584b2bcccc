//! An identity: a signing key with its certificate and chain, loaded and checked.
//!
//! Selection follows the reference helper (a `--private-key` defaults to the
//! `--certificate` file; a PKCS#12 bundle carries everything), but never falls
//! back to an OS certificate store when flags are missing.

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

use crate::cert::{self, CertError, Certificate};
use crate::input::read_file;
use crate::key::{self, KeyError, PasswordSource, SigningKey};

/// A key with its certificate and the certificates sent as `X-Amz-X509-Chain`.
#[derive(Debug)]
pub struct Identity {
    /// The signing key.
    pub key: Box<dyn SigningKey>,
    /// The leaf certificate (`X-Amz-X509`).
    pub certificate: Certificate,
    /// Intermediates (`X-Amz-X509-Chain`), in order.
    pub chain: Vec<Certificate>,
}

/// Where an identity comes from.
#[derive(Debug, Clone, Default)]
pub struct IdentitySource {
    /// `--certificate`: PEM/DER certificate, combined PEM, or PKCS#12 bundle.
    pub certificate: Option<PathBuf>,
    /// `--private-key`: key file; defaults to the certificate file.
    pub private_key: Option<PathBuf>,
    /// `--intermediates`: PEM bundle.
    pub intermediates: Option<PathBuf>,
    /// `--pkcs11-lib`: the PKCS#11 module (default: the URI's `module-path` or
    /// `module-name`, then p11-kit-proxy).
    pub pkcs11_lib: Option<PathBuf>,
    /// `--reuse-pin`: log in to `CKA_ALWAYS_AUTHENTICATE` keys with the user PIN.
    pub reuse_pin: bool,
    /// `--no-tpm-key-password`: a `handle:` TPM key has no password (for TSS2 key
    /// files the file's `emptyAuth` decides).
    pub no_tpm_key_password: bool,
}

/// Loading an identity failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Certificate problem.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Neither a certificate nor a key was given.
    #[error(
        "no certificate given: pass --certificate (and --private-key unless the certificate file holds the key)"
    )]
    NoCertificate,
    /// A key or certificate reference of a kind this build cannot use.
    #[error("{reference} is a {kind}; this version of iamra reads keys from files only")]
    Unavailable {
        /// The reference as given.
        reference: String,
        /// What it is ("PKCS#11 URI", "TPM handle").
        kind: &'static str,
    },
    /// A PKCS#11 token problem.
    #[error(transparent)]
    Pkcs11(#[from] key::pkcs11::Pkcs11Error),
    /// A certificate on a PKCS#11 token with a key that is neither on a token nor in a file.
    #[error(
        "the certificate {certificate} is on a PKCS#11 token; its key {key} must be on a token or in a file"
    )]
    Pkcs11CertificateWithKey {
        /// The certificate URI.
        certificate: String,
        /// The key reference.
        key: String,
    },
    /// `--intermediates` with a PKCS#12 bundle.
    #[error("--intermediates cannot be used with PKCS#12 bundle {}: the bundle's own certificates are sent", path.display())]
    IntermediatesWithPkcs12 {
        /// The bundle.
        path: PathBuf,
    },
}

impl IdentityError {
    /// Whether a PIN or password was refused, or a hardware key is locked.
    pub fn is_authentication(&self) -> bool {
        match self {
            IdentityError::Key(e) => e.is_authentication(),
            IdentityError::Pkcs11(e) => e.is_authentication(),
            IdentityError::Cert(_)
            | IdentityError::NoCertificate
            | IdentityError::Unavailable { .. }
            | IdentityError::Pkcs11CertificateWithKey { .. }
            | IdentityError::IntermediatesWithPkcs12 { .. } => false,
        }
    }
}

/// What a `--certificate` or `--private-key` value refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReference<'a> {
    /// A file (certificate, key, bundle or TSS2 key file).
    File(&'a Path),
    /// An RFC 7512 `pkcs11:` URI.
    Pkcs11(&'a str),
    /// A persistent TPM key, `handle:0x81……`.
    TpmHandle(&'a str),
}

impl<'a> KeyReference<'a> {
    /// Classifies a flag value.
    pub fn of(value: &'a Path) -> Self {
        match value.to_str() {
            Some(s) if s.starts_with("pkcs11:") => KeyReference::Pkcs11(s),
            Some(s) if s.starts_with("handle:") => KeyReference::TpmHandle(s),
            _ => KeyReference::File(value),
        }
    }
}

impl IdentitySource {
    /// Loads and checks the identity: the key must match the certificate, the
    /// certificate must be a leaf inside its validity window at `now`.
    pub fn load(
        &self,
        passwords: &dyn PasswordSource,
        now: OffsetDateTime,
    ) -> Result<Identity, IdentityError> {
        let Some(cert_path) = self.certificate.as_deref() else {
            return Err(IdentityError::NoCertificate);
        };
        let identity = self.load_unchecked(cert_path, passwords)?;
        identity.certificate.check_leaf(now)?;
        Ok(identity)
    }

    /// Loads the identity and checks the key against the certificate, but not the
    /// certificate's validity window (for diagnostics such as `sign-string`).
    pub fn load_without_validity_check(
        &self,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        let Some(cert_path) = self.certificate.as_deref() else {
            return Err(IdentityError::NoCertificate);
        };
        self.load_unchecked(cert_path, passwords)
    }

    fn load_unchecked(
        &self,
        cert_path: &Path,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        for reference in [Some(cert_path), self.private_key.as_deref()]
            .into_iter()
            .flatten()
        {
            match KeyReference::of(reference) {
                KeyReference::File(_) => {}
                KeyReference::Pkcs11(_) => return self.load_pkcs11(cert_path, passwords),
                KeyReference::TpmHandle(handle) => {
                    if reference == cert_path {
                        return Err(KeyError::from(key::TpmError::HandleAsCertificate {
                            reference: handle.to_string(),
                        })
                        .into());
                    }
                    // A persistent TPM key: the certificate always comes from a file.
                    let certificate = cert::load_certificate(cert_path)?;
                    let tpm_key =
                        key::tpm::load_handle(handle, self.no_tpm_key_password, passwords)?;
                    key::check_matches(&tpm_key, reference, &certificate)?;
                    let chain = match self.intermediates.as_deref() {
                        Some(p) => cert::load_chain(p)?,
                        None => Vec::new(),
                    };
                    return Ok(Identity {
                        key: Box::new(tpm_key),
                        certificate,
                        chain,
                    });
                }
            }
        }
        let cert_bytes = read_file("certificate file", cert_path).map_err(CertError::from)?;
        if key::is_pkcs12(&cert_bytes) && self.private_key.as_deref().is_none_or(|k| k == cert_path)
        {
            if self.intermediates.is_some() {
                return Err(IdentityError::IntermediatesWithPkcs12 {
                    path: cert_path.to_path_buf(),
                });
            }
            let p12 = key::pkcs12::pkcs12_from_bytes(&cert_bytes, cert_path, passwords)?;
            return Ok(Identity {
                key: Box::new(p12.key),
                certificate: p12.certificate,
                chain: p12.chain,
            });
        }
        let certificate = cert::certificate_from_bytes(&cert_bytes, cert_path)?;
        let key: Box<dyn SigningKey> = match self.private_key.as_deref() {
            None => Box::new(key::load_key_bytes(&cert_bytes, cert_path, passwords)?),
            Some(p) if p == cert_path => {
                Box::new(key::load_key_bytes(&cert_bytes, cert_path, passwords)?)
            }
            Some(p) => Box::new(key::load_key(p, passwords)?),
        };
        let key_path = self.private_key.as_deref().unwrap_or(cert_path);
        key::check_matches(key.as_ref(), key_path, &certificate)?;
        tracing::debug!(
            certificate = %cert_path.display(),
            subject = certificate.subject(),
            serial = certificate.serial_decimal(),
            key = %key_path.display(),
            key_type = %certificate.public_key().describe(),
            "identity loaded; key matches certificate"
        );
        let chain = match self.intermediates.as_deref() {
            Some(p) => cert::load_chain(p)?,
            None => Vec::new(),
        };
        Ok(Identity {
            key,
            certificate,
            chain,
        })
    }

    /// Certificate and/or key on a PKCS#11 token: both on tokens (the key found
    /// by `CKA_ID` and public key), a token certificate with a key file, or a
    /// certificate file with a token key. Without `--intermediates`, a token
    /// certificate brings its issuers found on the same token.
    fn load_pkcs11(
        &self,
        cert_path: &Path,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        use key::pkcs11;
        let opts = pkcs11::Pkcs11Options {
            module: self.pkcs11_lib.clone(),
            reuse_pin: self.reuse_pin,
        };
        let want_chain = self.intermediates.is_none();
        let given_chain = || -> Result<Vec<Certificate>, IdentityError> {
            match self.intermediates.as_deref() {
                Some(p) => Ok(cert::load_chain(p)?),
                None => Ok(Vec::new()),
            }
        };
        let key_ref = self.private_key.as_deref().map(KeyReference::of);
        match (KeyReference::of(cert_path), key_ref) {
            (KeyReference::Pkcs11(c), None)
            | (KeyReference::Pkcs11(c), Some(KeyReference::Pkcs11(_))) => {
                let k = match key_ref {
                    Some(KeyReference::Pkcs11(k)) if k != c => Some(k),
                    _ => None,
                };
                let found = pkcs11::load_identity(c, k, want_chain, &opts, passwords)?;
                let chain = if want_chain {
                    found.chain
                } else {
                    given_chain()?
                };
                Ok(Identity {
                    key: Box::new(found.key),
                    certificate: found.certificate,
                    chain,
                })
            }
            (KeyReference::Pkcs11(c), Some(KeyReference::File(p))) => {
                let (certificate, token_chain) =
                    pkcs11::load_certificate(c, want_chain, &opts, passwords)?;
                let key: Box<dyn SigningKey> = Box::new(key::load_key(p, passwords)?);
                key::check_matches(key.as_ref(), p, &certificate)?;
                let chain = if want_chain {
                    token_chain
                } else {
                    given_chain()?
                };
                Ok(Identity {
                    key,
                    certificate,
                    chain,
                })
            }
            (KeyReference::File(c), Some(KeyReference::Pkcs11(k))) => {
                let certificate = cert::load_certificate(c)?;
                let key = pkcs11::load_key_for_certificate(k, &certificate, &opts, passwords)?;
                Ok(Identity {
                    key: Box::new(key),
                    certificate,
                    chain: given_chain()?,
                })
            }
            (cert, key) => Err(IdentityError::Pkcs11CertificateWithKey {
                certificate: cert_path.display().to_string(),
                key: match key {
                    Some(KeyReference::TpmHandle(h)) | Some(KeyReference::Pkcs11(h)) => {
                        h.to_string()
                    }
                    Some(KeyReference::File(p)) => p.display().to_string(),
                    None => format!("{cert:?}"),
                },
            }),
        }
    }
}
