//! An identity: a signing key with its certificate and chain, loaded and checked.
//!
//! [`IdentitySpec`] says where everything comes from, typed once ([`spec`]);
//! [`IdentitySpec::load`] is the one loading path of every command and of the
//! library provider. Selection follows the reference helper (the private key
//! defaults to the certificate's file or token; a PKCS#12 bundle carries
//! everything), but never falls back to an OS certificate store.

pub mod spec;

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

pub use spec::{CertificateSource, IdentitySpec, KeySource, SpecError, TpmOptions};

use crate::cert::{self, CertError, Certificate};
use crate::error::{ErrorKind, Field};
use crate::input::Input;
use crate::key::pkcs11::{self, Pkcs11Options, Pkcs11Uri};
use crate::key::{self, KeyError, PasswordSource, SigningKey};
use std::sync::Arc;

/// A key with its certificate and the certificates sent as `X-Amz-X509-Chain`.
#[derive(Debug)]
pub struct Identity {
    /// The signing key (shared: a request may be signed on another thread while
    /// its connection opens).
    pub key: Arc<dyn SigningKey>,
    /// The leaf certificate (`X-Amz-X509`).
    pub certificate: Certificate,
    /// Intermediates (`X-Amz-X509-Chain`), in order.
    pub chain: Vec<Certificate>,
}

impl Identity {
    /// An identity from a key of the caller's own (an HSM of theirs, say) with its
    /// certificate and chain: checks that the key is the certificate's.
    pub fn new(
        key: Box<dyn SigningKey>,
        certificate: Certificate,
        chain: Vec<Certificate>,
    ) -> Result<Self, IdentityError> {
        key::check_matches(
            key.as_ref(),
            Path::new("passed to signing_key()"),
            &certificate,
        )?;
        Ok(Self {
            key: key.into(),
            certificate,
            chain,
        })
    }
}

/// Loading an identity failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A certificate or key value cannot be what it says.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Certificate problem.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No certificate was given.
    #[error(
        "no certificate given: pass {} (and {} unless the certificate file holds the key)",
        Field::Certificate,
        Field::PrivateKey
    )]
    NoCertificate,
    /// A PKCS#11 token problem.
    #[error(transparent)]
    Pkcs11(#[from] key::pkcs11::Pkcs11Error),
    /// A certificate on a PKCS#11 token with a key that is neither on a token nor in a file.
    #[error(
        "the certificate {certificate} is on a PKCS#11 token; its key {key} must be on a token or in a file"
    )]
    Pkcs11CertificateWithKey {
        /// The certificate URI (redacted: no query).
        certificate: String,
        /// The key (redacted: no query).
        key: String,
    },
    /// Intermediates with a PKCS#12 bundle.
    #[error("{} cannot be used with PKCS#12 bundle {}: the bundle's own certificates are sent", Field::Intermediates, path.display())]
    IntermediatesWithPkcs12 {
        /// The bundle.
        path: PathBuf,
    },
}

impl IdentityError {
    /// What kind of failure this is: [`ErrorKind::Authentication`] for a refused
    /// PIN or password or a locked key, [`ErrorKind::Transient`] for a token or
    /// TPM that failed for a moment, else [`ErrorKind::Configuration`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Key(e) => e.kind(),
            IdentityError::Pkcs11(e) => e.kind(),
            IdentityError::Spec(e) => e.kind(),
            IdentityError::Cert(_)
            | IdentityError::NoCertificate
            | IdentityError::Pkcs11CertificateWithKey { .. }
            | IdentityError::IntermediatesWithPkcs12 { .. } => ErrorKind::Configuration,
        }
    }

    /// Whether a PIN or password was refused, or a hardware key is locked.
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }
}

impl IdentitySpec {
    /// Loads and checks the identity: the key must match the certificate, the
    /// certificate must be a leaf inside its validity window at `now`.
    pub fn load(
        &self,
        passwords: &dyn PasswordSource,
        now: OffsetDateTime,
    ) -> Result<Identity, IdentityError> {
        let identity = self.load_without_validity_check(passwords)?;
        identity.certificate.check_leaf(now)?;
        Ok(identity)
    }

    /// Loads the identity and checks the key against the certificate, but not the
    /// certificate's validity window (for diagnostics such as `sign-string`).
    pub fn load_without_validity_check(
        &self,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        let identity = match (&self.certificate, &self.private_key) {
            (CertificateSource::Pkcs11(c), key) => {
                self.load_token_certificate(c, key, passwords)?
            }
            (CertificateSource::Input(c), Some(KeySource::Pkcs11(k))) => {
                let certificate = cert::load_certificate(c)?;
                let key =
                    pkcs11::load_key_for_certificate(k, &certificate, &self.pkcs11, passwords)?;
                Identity {
                    key: Arc::new(key),
                    certificate,
                    chain: self.given_chain()?,
                }
            }
            (CertificateSource::Input(c), Some(KeySource::TpmHandle(h))) => {
                // A persistent TPM key: the certificate always comes from a file.
                let certificate = cert::load_certificate(c)?;
                let tpm_key = key::tpm::load_handle_with_tcti(
                    *h,
                    self.tpm.no_key_password,
                    passwords,
                    self.tpm.tcti.as_ref(),
                )?;
                key::check_matches(&tpm_key, Path::new(&h.to_string()), &certificate)?;
                Identity {
                    key: Arc::new(tpm_key),
                    certificate,
                    chain: self.given_chain()?,
                }
            }
            (CertificateSource::Input(c), key) => {
                let key = match key {
                    Some(KeySource::Input(k)) if k != c => Some(k),
                    _ => None,
                };
                self.load_files(c, key, passwords)?
            }
        };
        tracing::debug!(
            certificate = %self.certificate,
            subject = identity.certificate.subject(),
            serial = identity.certificate.serial_decimal(),
            key = %self.private_key.as_ref().map_or_else(|| self.certificate.to_string(), ToString::to_string),
            key_type = %identity.certificate.public_key().describe(),
            "identity loaded; key matches certificate"
        );
        Ok(identity)
    }

    fn given_chain(&self) -> Result<Vec<Certificate>, IdentityError> {
        match &self.intermediates {
            Some(i) => Ok(cert::load_chain(i)?),
            None => Ok(Vec::new()),
        }
    }

    /// Certificate, key and bundle files (or stdin, or variables).
    fn load_files(
        &self,
        cert_input: &Input,
        key_input: Option<&Input>,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        let label = cert_input.label();
        let cert_bytes = cert_input
            .read("certificate file")
            .map_err(CertError::from)?;
        let tcti = self.tpm.tcti.as_ref();
        if key::is_pkcs12(&cert_bytes) && key_input.is_none() {
            if self.intermediates.is_some() {
                return Err(IdentityError::IntermediatesWithPkcs12 { path: label });
            }
            let p12 = key::pkcs12::pkcs12_from_bytes(&cert_bytes, &label, passwords)?;
            return Ok(Identity {
                key: Arc::new(p12.key),
                certificate: p12.certificate,
                chain: p12.chain,
            });
        }
        let certificate = cert::certificate_from_bytes(&cert_bytes, &label)?;
        let (key, key_label): (Box<dyn SigningKey>, PathBuf) = match key_input {
            None => (
                Box::new(key::load_key_bytes_on(
                    &cert_bytes,
                    &label,
                    passwords,
                    tcti,
                )?),
                label,
            ),
            Some(k) => (Box::new(key::load_key_on(k, passwords, tcti)?), k.label()),
        };
        key::check_matches(key.as_ref(), &key_label, &certificate)?;
        Ok(Identity {
            key: key.into(),
            certificate,
            chain: self.given_chain()?,
        })
    }

    /// A certificate on a PKCS#11 token, with its key on a token (found by
    /// `CKA_ID` and public key) or in a file. Without intermediates, a token
    /// certificate brings its issuers found on the same token.
    fn load_token_certificate(
        &self,
        cert_uri: &Pkcs11Uri,
        key: &Option<KeySource>,
        passwords: &dyn PasswordSource,
    ) -> Result<Identity, IdentityError> {
        let want_chain = self.intermediates.is_none();
        let (key, certificate, token_chain): (Box<dyn SigningKey>, Certificate, Vec<Certificate>) =
            match key {
                None | Some(KeySource::Pkcs11(_)) => {
                    let key_uri = match key {
                        Some(KeySource::Pkcs11(k)) if !k.same_object(cert_uri) => Some(k),
                        _ => None,
                    };
                    let found = pkcs11::load_identity(
                        cert_uri,
                        key_uri,
                        want_chain,
                        &self.pkcs11,
                        passwords,
                    )?;
                    (Box::new(found.key), found.certificate, found.chain)
                }
                Some(KeySource::Input(k)) => {
                    let (certificate, token_chain) =
                        pkcs11::load_certificate(cert_uri, want_chain, &self.pkcs11, passwords)?;
                    let key: Box<dyn SigningKey> =
                        Box::new(key::load_key_on(k, passwords, self.tpm.tcti.as_ref())?);
                    key::check_matches(key.as_ref(), &k.label(), &certificate)?;
                    (key, certificate, token_chain)
                }
                Some(k @ KeySource::TpmHandle(_)) => {
                    return Err(IdentityError::Pkcs11CertificateWithKey {
                        certificate: cert_uri.to_string(),
                        key: k.to_string(),
                    });
                }
            };
        let chain = if want_chain {
            token_chain
        } else {
            self.given_chain()?
        };
        Ok(Identity {
            key: key.into(),
            certificate,
            chain,
        })
    }
}

/// Loads a private key alone, without a certificate (`sign-string` with only a
/// key): exactly one key must match a URI; a PKCS#12 bundle gives its key.
pub fn load_key_alone(
    key: &KeySource,
    pkcs11_options: &Pkcs11Options,
    tpm: &TpmOptions,
    passwords: &dyn PasswordSource,
) -> Result<Box<dyn SigningKey>, IdentityError> {
    Ok(match key {
        KeySource::Pkcs11(uri) => Box::new(pkcs11::load_key(uri, pkcs11_options, passwords)?),
        KeySource::TpmHandle(h) => Box::new(key::tpm::load_handle_with_tcti(
            *h,
            tpm.no_key_password,
            passwords,
            tpm.tcti.as_ref(),
        )?),
        KeySource::Input(input) => {
            let data = input.read("private key file").map_err(KeyError::from)?;
            let label = input.label();
            if key::is_pkcs12(&data) {
                Box::new(key::pkcs12::pkcs12_from_bytes(&data, &label, passwords)?.key)
            } else {
                Box::new(key::load_key_bytes_on(
                    &data,
                    &label,
                    passwords,
                    tpm.tcti.as_ref(),
                )?)
            }
        }
    })
}

/// Every certificate matching `uri` on every matching token, CA certificates
/// included (`read-certificate-data` with a `pkcs11:` URI).
pub fn list_token_certificates(
    uri: &Pkcs11Uri,
    options: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<Vec<pkcs11::ListedCertificate>, IdentityError> {
    Ok(pkcs11::list_certificates(uri, options, passwords)?)
}
