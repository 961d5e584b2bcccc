//! The key backends one test body runs against (as rustls runs its API tests once
//! per provider): a key in a file, in a PKCS#12 bundle, on a SoftHSM2 token, in a
//! swtpm TPM.
//! Each gives the same test role the certificate and key references, the PKCS#11
//! module, and the environment a process needs to reach the key, so a body can
//! drive the CLI (flags + environment) or the library (the typed parts).

use std::path::PathBuf;

use super::softhsm::{self, SoftHsm};
#[cfg(feature = "tpm")]
use super::swtpm::Swtpm;
use super::{PASSWORD, td};

/// Where the test identity's private key lives. The hardware variants own their
/// fixture (a private token copy, a running swtpm), dropped with the backend.
pub enum KeyBackend {
    /// PEM certificate and PKCS#8 key files of the test PKI (EC P-256).
    File,
    /// The same EC P-256 identity in a password-protected PKCS#12 bundle that also
    /// carries the chain.
    Pkcs12,
    /// A P-256 key generated on SoftHSM2 token `ra-test` (id 02), its certificate
    /// on the token.
    SoftHsm2(SoftHsm),
    /// A P-256 TSS2 key file made by the tpm2 OpenSSL provider, in a swtpm.
    #[cfg(feature = "tpm")]
    Swtpm(Swtpm),
}

/// The SoftHSM2 object of [`KeyBackend::SoftHsm2`]: certificate and key share id 02.
const SOFTHSM_OBJECT: &str = "pkcs11:token=ra-test;id=%02";
/// The swtpm key of [`KeyBackend::Swtpm`] (`NAME.crt`, `NAME.tss2.pem`).
#[cfg(feature = "tpm")]
const SWTPM_KEY: &str = "prov-ec";

impl KeyBackend {
    /// The file backend.
    pub fn file() -> Self {
        KeyBackend::File
    }

    /// The PKCS#12 backend.
    pub fn pkcs12() -> Self {
        KeyBackend::Pkcs12
    }

    /// The SoftHSM2 backend; `None` (the test skips) when SoftHSM2 is missing outside
    /// CI. Under CI a missing tool fails the test ([`SoftHsm::new`]).
    pub fn softhsm2() -> Option<Self> {
        SoftHsm::new().map(KeyBackend::SoftHsm2)
    }

    /// The swtpm backend; `None` (the test skips) when swtpm is missing outside CI.
    /// Under CI a missing tool fails the test ([`Swtpm::start`]).
    #[cfg(feature = "tpm")]
    pub fn swtpm() -> Option<Self> {
        Swtpm::start().map(KeyBackend::Swtpm)
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            KeyBackend::File => "file",
            KeyBackend::Pkcs12 => "pkcs12",
            KeyBackend::SoftHsm2(_) => "softhsm2",
            #[cfg(feature = "tpm")]
            KeyBackend::Swtpm(_) => "swtpm",
        }
    }

    /// The certificate reference: a file path (a PEM certificate or a PKCS#12
    /// bundle), or a PKCS#11 URI.
    pub fn certificate(&self) -> String {
        match self {
            KeyBackend::File => td("ec-p256/cert.pem").display().to_string(),
            KeyBackend::Pkcs12 => td("ec-p256/bundle-modern.p12").display().to_string(),
            KeyBackend::SoftHsm2(_) => SOFTHSM_OBJECT.to_string(),
            #[cfg(feature = "tpm")]
            KeyBackend::Swtpm(tpm) => tpm.file(&format!("{SWTPM_KEY}.crt")),
        }
    }

    /// The private key reference (a file path), or `None` when the certificate's
    /// bundle or PKCS#11 URI also holds the key.
    pub fn private_key(&self) -> Option<String> {
        match self {
            KeyBackend::File => Some(td("ec-p256/key.pkcs8.pem").display().to_string()),
            KeyBackend::Pkcs12 | KeyBackend::SoftHsm2(_) => None,
            #[cfg(feature = "tpm")]
            KeyBackend::Swtpm(tpm) => Some(tpm.file(&format!("{SWTPM_KEY}.tss2.pem"))),
        }
    }

    /// The same certificate as a PEM file, for checks (its serial number).
    pub fn certificate_file(&self) -> PathBuf {
        match self {
            KeyBackend::Pkcs12 => td("ec-p256/cert.pem"),
            KeyBackend::SoftHsm2(hsm) => PathBuf::from(hsm.file("cert02.pem")),
            _ => PathBuf::from(self.certificate()),
        }
    }

    /// The intermediate certificates between the leaf and the endpoint's trust
    /// anchor, unless the bundle carries them.
    pub fn intermediates(&self) -> Option<PathBuf> {
        match self {
            KeyBackend::Pkcs12 => None,
            _ => Some(td("chain.pem")),
        }
    }

    /// The password of the bundle, if the identity is in one.
    pub fn pkcs12_password(&self) -> Option<&'static str> {
        match self {
            KeyBackend::Pkcs12 => Some(PASSWORD),
            _ => None,
        }
    }

    /// The PKCS#11 module to load, if the key is on a token.
    pub fn pkcs11_module(&self) -> Option<&'static str> {
        match self {
            KeyBackend::SoftHsm2(_) => Some(softhsm::MODULE),
            _ => None,
        }
    }

    /// The token's user PIN, if the key is on a token.
    pub fn pkcs11_pin(&self) -> Option<&'static str> {
        match self {
            KeyBackend::SoftHsm2(_) => Some(softhsm::PIN),
            _ => None,
        }
    }

    /// The variables a process needs to reach the key: the bundle's password, the
    /// token's configuration and PIN, or the TPM's TCTI.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            KeyBackend::File => Vec::new(),
            KeyBackend::Pkcs12 => self
                .pkcs12_password()
                .map(|pw| ("IAMRA_PKCS12_PASSWORD".into(), pw.into()))
                .into_iter()
                .collect(),
            KeyBackend::SoftHsm2(hsm) => {
                let mut env = vec![("SOFTHSM2_CONF".into(), hsm.conf().display().to_string())];
                env.extend(
                    self.pkcs11_pin()
                        .map(|pin| ("IAMRA_PKCS11_PIN".into(), pin.into())),
                );
                env
            }
            #[cfg(feature = "tpm")]
            KeyBackend::Swtpm(tpm) => vec![("TPM2TOOLS_TCTI".into(), tpm.tcti())],
        }
    }

    /// The identity flags of the CLI: certificate, key, chain and module.
    pub fn identity_flags(&self) -> Vec<String> {
        let mut flags = vec!["--certificate".to_string(), self.certificate()];
        if let Some(key) = self.private_key() {
            flags.extend(["--private-key".into(), key]);
        }
        if let Some(chain) = self.intermediates() {
            flags.extend(["--intermediates".into(), chain.display().to_string()]);
        }
        if let Some(module) = self.pkcs11_module() {
            flags.extend(["--pkcs11-lib".into(), module.into()]);
        }
        flags
    }
}
