//! What a [`TpmKey`](super::TpmKey) asks of the place its commands run: the
//! traits the in-process backend (`esys`) and the helper process client (`helper`)
//! implement. A leaf: the backends import it, and `backend` chooses between them.

use std::path::Path;

use zeroize::Zeroizing;

use crate::key::tpm::TpmError;
use crate::key::tpm::tcti::TctiConfig;
use crate::key::tpm::tss2::Tss2Key;
use crate::key::{Digest, PublicKey};

/// The key to open, as the loaders checked it.
pub(crate) enum KeyRef<'a> {
    /// A TSS2 key file: its DER (for the helper, which parses it again) and the
    /// parsed key.
    File {
        der: &'a [u8],
        key: &'a Tss2Key,
        path: &'a Path,
    },
    /// A persistent key.
    Handle { handle: u32, reference: &'a str },
}

/// An open TPM key, wherever its commands run.
pub(crate) trait Backend: std::fmt::Debug + Send + Sync {
    /// Sets the key's password (`None`: empty).
    fn set_auth(&mut self, auth: Option<Zeroizing<Vec<u8>>>) -> Result<(), TpmError>;
    /// Signs `message` hashed with `digest`.
    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, TpmError>;
}

/// Opens keys in this process.
pub(crate) trait Opener: Sync {
    fn open(
        &self,
        tcti: &TctiConfig,
        key: &KeyRef<'_>,
    ) -> Result<(PublicKey, Box<dyn Backend>), TpmError>;
}
