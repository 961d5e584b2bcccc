//! Where the TPM commands of a [`TpmKey`] run: in the helper process `iamra-tpm`
//! (the default) or in this process.
//!
//! The choice is made at run time, but the in-process code is reachable only
//! through [`set_backend`]: an executable that never calls it (the `iamra` CLI)
//! carries no reference to libtss2 after link-time optimisation, so the dynamic
//! loader does not map libtss2 and libcrypto at its start.

use std::path::PathBuf;
use std::sync::OnceLock;

use zeroize::Zeroizing;

pub(super) mod contract;

pub(crate) use self::contract::KeyRef;
use self::contract::{Backend, Opener};
use super::TpmError;
use super::helper;
use super::tcti::TctiConfig;
use crate::key::{Digest, PublicKey, SignError, SigningKey};

/// Where the TPM commands of [`TpmKey`]s run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmBackend {
    /// In a helper process started from this executable (`iamra-tpm`, installed
    /// with iamra), one per loaded key, kept while the key lives. The default,
    /// with the helper found next to the running executable or in the directory
    /// fixed at build time (`IAMRA_TPM_HELPER_DIR`, default `/usr/libexec/iamra`).
    Helper(PathBuf),
    /// In this process, through libtss2: the executable links libtss2.
    InProcess,
}

enum Chosen {
    Helper(PathBuf),
    Opener(&'static dyn Opener),
}

static BACKEND: OnceLock<Chosen> = OnceLock::new();

/// Chooses where TPM commands run, once per process, before the first TPM key is
/// loaded. Returns the value back if a backend was already chosen.
pub fn set_backend(backend: TpmBackend) -> Result<(), TpmBackend> {
    let chosen = match &backend {
        TpmBackend::Helper(path) => Chosen::Helper(path.clone()),
        TpmBackend::InProcess => Chosen::Opener(&super::esys::InProcess),
    };
    BACKEND.set(chosen).map_err(|_| backend)
}

/// A key held in a TPM 2.0: a TSS2 key file loaded under its parent, or a
/// persistent key (`handle:0x81……`).
///
/// The TPM connection, the parent and the loaded key stay open while the value
/// lives (so long-running modes pay the load once); dropping it flushes every
/// transient object (and ends the helper process that held them).
pub struct TpmKey {
    label: String,
    public: PublicKey,
    backend: Box<dyn Backend>,
}

impl std::fmt::Debug for TpmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmKey")
            .field("key", &self.label)
            .field("public", &self.public.describe())
            .field("backend", &self.backend)
            .finish()
    }
}

impl TpmKey {
    /// Opens `key` on the TPM `tcti` names, where [`set_backend`] said.
    pub(super) fn open(tcti: &TctiConfig, key: KeyRef<'_>, label: &str) -> Result<Self, TpmError> {
        let (public, backend) = match BACKEND.get() {
            Some(Chosen::Opener(opener)) => opener.open(tcti, &key)?,
            Some(Chosen::Helper(path)) => helper::open(path, tcti, &key, label)?,
            None => helper::open(&helper::default_path(label)?, tcti, &key, label)?,
        };
        Ok(TpmKey {
            label: label.to_string(),
            public,
            backend,
        })
    }

    /// Sets the key's password (`None` or empty: no password).
    pub(super) fn set_auth(&mut self, auth: Option<Zeroizing<Vec<u8>>>) -> Result<(), TpmError> {
        self.backend.set_auth(auth.filter(|a| !a.is_empty()))
    }

    /// The key file or `handle:` reference this key was loaded from.
    pub fn reference(&self) -> &str {
        &self.label
    }
}

impl SigningKey for TpmKey {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignError> {
        Ok(self.backend.sign(message, digest)?)
    }
}
