//! What an identity is made of, typed once where the user's values enter (flags,
//! `IAMRA_*` variables, the library builder). After [`IdentitySpec`] is built no
//! code looks at a prefix of a string to decide what something is: a `pkcs11:` URI
//! is a parsed [`Pkcs11Uri`], `handle:0x81……` a [`TpmHandle`], `-` and `env:NAME`
//! are [`Input::Stdin`] and [`Input::Env`].
//!
//! Every type here prints itself redacted: a URI's `pin-value` (and the query as a
//! whole) never reaches `Display` or `Debug`, so no message, log line or `Debug`
//! dump built from a spec can show a PIN.

use std::ffi::OsStr;
use std::path::PathBuf;

use crate::error::Field;
use crate::input::Input;
use crate::key::pkcs11::{Pkcs11Error, Pkcs11Options, Pkcs11Uri};
use crate::key::tpm::tcti::TctiConfig;
use crate::key::{TpmError, TpmHandle};

/// Where the certificate comes from.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per identity; boxing the URI buys nothing"
)]
#[non_exhaustive]
pub enum CertificateSource {
    /// A PEM/DER certificate, a PEM holding key and certificate, or a PKCS#12
    /// bundle, from a file, stdin or a variable.
    Input(Input),
    /// A certificate object on a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
}

/// Where the private key comes from.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per identity; boxing the URI buys nothing"
)]
#[non_exhaustive]
pub enum KeySource {
    /// A key file (PKCS#1, SEC 1, PKCS#8, encrypted PKCS#8, TSS2 key file, PKCS#12)
    /// from a file, stdin or a variable.
    Input(Input),
    /// A private key object on a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A persistent TPM key.
    TpmHandle(TpmHandle),
}

/// A value given for the certificate or the key cannot be what it says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A `pkcs11:` value does not parse, or names neither a certificate nor a key.
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    /// A `handle:` value is not a persistent handle, or was given as the certificate.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

impl SpecError {
    /// Always [`ErrorKind::Configuration`](crate::error::ErrorKind::Configuration).
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Configuration
    }
}

fn pkcs11_uri(text: &str, field: Field) -> Result<Pkcs11Uri, SpecError> {
    let uri = Pkcs11Uri::parse(text).map_err(|source| Pkcs11Error::BadUri {
        field: Some(field),
        source,
    })?;
    crate::key::pkcs11::check_type(&uri, field)?;
    Ok(uri)
}

impl CertificateSource {
    /// Types a certificate value: `pkcs11:…` is a URI, anything else an [`Input`]
    /// (`handle:…` is refused: a TPM holds keys, not certificates).
    pub fn parse(value: impl AsRef<OsStr>) -> Result<Self, SpecError> {
        let value = value.as_ref();
        match value.to_str() {
            Some(s) if s.starts_with("pkcs11:") => Ok(CertificateSource::Pkcs11(pkcs11_uri(
                s,
                Field::Certificate,
            )?)),
            Some(s) if s.starts_with("handle:") => {
                let handle = TpmHandle::parse(s)?;
                Err(TpmError::HandleAsCertificate {
                    reference: handle.to_string(),
                }
                .into())
            }
            _ => Ok(CertificateSource::Input(Input::parse(value))),
        }
    }

    /// A certificate file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        CertificateSource::Input(Input::file(path))
    }

    fn input(&self) -> Option<&Input> {
        match self {
            CertificateSource::Input(i) => Some(i),
            CertificateSource::Pkcs11(_) => None,
        }
    }

    fn pkcs11_uri(&self) -> Option<&Pkcs11Uri> {
        match self {
            CertificateSource::Pkcs11(u) => Some(u),
            CertificateSource::Input(_) => None,
        }
    }
}

impl KeySource {
    /// Types a key value: `pkcs11:…` is a URI, `handle:…` a TPM handle, anything
    /// else an [`Input`].
    pub fn parse(value: impl AsRef<OsStr>) -> Result<Self, SpecError> {
        let value = value.as_ref();
        match value.to_str() {
            Some(s) if s.starts_with("pkcs11:") => {
                Ok(KeySource::Pkcs11(pkcs11_uri(s, Field::PrivateKey)?))
            }
            Some(s) if s.starts_with("handle:") => Ok(KeySource::TpmHandle(TpmHandle::parse(s)?)),
            _ => Ok(KeySource::Input(Input::parse(value))),
        }
    }

    /// A key file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        KeySource::Input(Input::file(path))
    }

    fn input(&self) -> Option<&Input> {
        match self {
            KeySource::Input(i) => Some(i),
            _ => None,
        }
    }

    fn pkcs11_uri(&self) -> Option<&Pkcs11Uri> {
        match self {
            KeySource::Pkcs11(u) => Some(u),
            _ => None,
        }
    }
}

impl std::fmt::Display for CertificateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateSource::Input(i) => i.fmt(f),
            // Security: the URI's Display leaves out the query (pin-value).
            CertificateSource::Pkcs11(u) => u.fmt(f),
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Input(i) => i.fmt(f),
            // Security: the URI's Display leaves out the query (pin-value).
            KeySource::Pkcs11(u) => u.fmt(f),
            KeySource::TpmHandle(h) => h.fmt(f),
        }
    }
}

/// How to reach TPM keys.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TpmOptions {
    /// A `handle:` key has no password (for TSS2 key files the file's `emptyAuth`
    /// decides).
    pub no_key_password: bool,
    /// The TPM to use; `None`: from the environment (`TPM2TOOLS_TCTI`, `TCTI`,
    /// `TPM_DEVICE`, else `device:/dev/tpmrm0`).
    pub tcti: Option<TctiConfig>,
}

impl TpmOptions {
    /// Whether a `handle:` key has no password.
    pub fn with_no_key_password(mut self, no_key_password: bool) -> Self {
        self.no_key_password = no_key_password;
        self
    }

    /// The TPM to use instead of the environment's.
    pub fn with_tcti(mut self, tcti: TctiConfig) -> Self {
        self.tcti = Some(tcti);
        self
    }
}

/// Everything an identity is loaded from, typed. Build it with
/// [`IdentitySpec::new`] and the `with_*` methods, or from flag values with the
/// `parse` functions of [`CertificateSource`] and [`KeySource`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IdentitySpec {
    /// The certificate.
    pub certificate: CertificateSource,
    /// The private key; `None`: in the certificate's file (combined PEM, PKCS#12)
    /// or on the certificate's token.
    pub private_key: Option<KeySource>,
    /// Intermediate certificates (PEM bundle), sent as `X-Amz-X509-Chain`. Without
    /// them, a token certificate brings its issuers found on the same token.
    pub intermediates: Option<Input>,
    /// PKCS#11 module and PIN options.
    pub pkcs11: Pkcs11Options,
    /// TPM options.
    pub tpm: TpmOptions,
}

impl IdentitySpec {
    /// A spec with a certificate and nothing else.
    pub fn new(certificate: CertificateSource) -> Self {
        Self {
            certificate,
            private_key: None,
            intermediates: None,
            pkcs11: Pkcs11Options::default(),
            tpm: TpmOptions::default(),
        }
    }

    /// With a private key.
    pub fn with_private_key(mut self, key: KeySource) -> Self {
        self.private_key = Some(key);
        self
    }

    /// With intermediate certificates.
    pub fn with_intermediates(mut self, intermediates: Input) -> Self {
        self.intermediates = Some(intermediates);
        self
    }

    /// With PKCS#11 options.
    pub fn with_pkcs11(mut self, options: Pkcs11Options) -> Self {
        self.pkcs11 = options;
        self
    }

    /// With TPM options.
    pub fn with_tpm(mut self, options: TpmOptions) -> Self {
        self.tpm = options;
        self
    }

    /// Keeps the PKCS#11 modules of the certificate's and the key's URIs loaded and
    /// initialised while the hold lives ([`crate::key::pkcs11::hold_modules`]): the
    /// credential cache resolves the URIs for its key, and a miss then loads the
    /// key; held, the module is set up once for both. Nothing is held without URIs.
    pub fn hold_pkcs11_modules(&self) -> crate::key::pkcs11::ModuleHold {
        let key = self.private_key.as_ref().and_then(KeySource::pkcs11_uri);
        let uris: Vec<&Pkcs11Uri> = [self.certificate.pkcs11_uri(), key]
            .into_iter()
            .flatten()
            .collect();
        crate::key::pkcs11::hold_modules(&uris, &self.pkcs11)
    }

    /// The inputs read from files, stdin or variables (certificate, key,
    /// intermediates), in that order.
    pub fn inputs(&self) -> impl Iterator<Item = &Input> {
        let key = self.private_key.as_ref().and_then(KeySource::input);
        [self.certificate.input(), key, self.intermediates.as_ref()]
            .into_iter()
            .flatten()
    }

    /// Whether the key is the certificate's (`private_key` absent, or the same
    /// input as the certificate).
    pub fn key_in_certificate(&self) -> bool {
        match (&self.private_key, &self.certificate) {
            (None, _) => true,
            (Some(KeySource::Input(k)), CertificateSource::Input(c)) => k == c,
            _ => false,
        }
    }
}
