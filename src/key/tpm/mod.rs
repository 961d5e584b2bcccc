//! TPM 2.0 keys: TSS2 PEM key files and persistent `handle:0x81……` keys.
//!
//! A [`TpmKey`] signs inside the TPM through tss-esapi (cargo feature `tpm`, which
//! links libtss2). Without the feature the type is uninhabited and the loaders
//! return [`KeyError::TpmUnsupported`] / [`TpmError::Unsupported`], so the default
//! build needs no libtss2; the key-file parser ([`tss2`]), the TCTI selection
//! ([`tcti`]) and the password rules below are plain Rust and built always.
//!
//! By default the TPM commands run in a helper process, `iamra-tpm` (see
//! [`helper`]), started only when a TPM key is loaded and kept for the key's
//! lifetime: the `iamra` executable itself then never references libtss2, so
//! the dynamic loader does not map libtss2 and libcrypto at every start (3 ms and
//! 2.5 MiB per process, BENCHMARKS.md). [`set_backend`] chooses otherwise, e.g.
//! [`TpmBackend::InProcess`] for a program that wants libtss2 in its own process.
//!
//! Behaviour, against the reference helper (`aws_signing_helper`):
//! - The TPM connection, the re-created storage primary key and the loaded key are
//!   kept for the key's lifetime, not re-created per signature. Every transient
//!   object is flushed when the key is dropped (and after a failure).
//! - A password is asked for only when the key needs one: `emptyAuth` FALSE in a key
//!   file, or a handle without `--no-tpm-key-password`. A password given for an
//!   `emptyAuth` key is an error. A password travels in an HMAC session (salted with
//!   the storage key for key files), never in the clear.
//! - A wrong password is reported with the TPM's dictionary-attack counters and is
//!   never retried.
//! - A swtpm is reached over TCP or over its unix socket (`swtpm:path=SOCKET`, or a
//!   `TPM_DEVICE` that is a socket, as the reference accepts it): libtss2 3.2 speaks
//!   TCP only, so the process that talks to the TPM bridges the socket to two
//!   loopback ports only it can use (`bridge.rs` has the design and the decision).

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use super::{KeyError, PasswordSource, SecretKind};
use crate::error::ErrorKind;

pub mod tcti;
pub mod tss2;

#[cfg(feature = "tpm")]
mod bridge;
#[cfg(feature = "tpm")]
mod esys;
#[cfg(feature = "tpm")]
pub mod helper;
mod wire;

#[cfg(feature = "tpm")]
pub use backend::{TpmBackend, TpmKey, set_backend};

#[cfg(feature = "tpm")]
mod backend;

/// A key held in a TPM (this build has no TPM support: the `tpm` feature is off,
/// so no value of this type can exist).
#[cfg(not(feature = "tpm"))]
#[derive(Debug)]
pub enum TpmKey {}

#[cfg(not(feature = "tpm"))]
impl super::SigningKey for TpmKey {
    fn public_key(&self) -> super::PublicKey {
        match *self {}
    }
    fn sign(&self, _: &[u8], _: super::Digest) -> Result<Vec<u8>, super::SignError> {
        match *self {}
    }
}

/// The TPM's dictionary-attack (DA) state, read after a failed authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaState {
    /// Failed authorisations counted so far (`TPM_PT_LOCKOUT_COUNTER`).
    pub counter: u32,
    /// Failures at which the TPM locks out (`TPM_PT_MAX_AUTH_FAIL`).
    pub max_tries: u32,
    /// Seconds after which one failure is forgotten (`TPM_PT_LOCKOUT_INTERVAL`).
    pub interval_secs: u32,
    /// Whether the TPM is locked out now (`TPMA_PERMANENT.inLockout`).
    pub in_lockout: bool,
}

/// Renders what the TPM said about dictionary-attack protection, for
/// [`TpmError::WrongPassword`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DaReport {
    /// The key is exempt from DA protection (`noDA`).
    Exempt,
    /// The counters the TPM reported.
    Counted(DaState),
    /// The TPM did not report them.
    Unknown,
}

impl std::fmt::Display for DaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaReport::Exempt => {
                f.write_str(" (the key is exempt from dictionary-attack protection)")
            }
            DaReport::Counted(s) if s.in_lockout => write!(
                f,
                " (the TPM has counted {} failed authorizations and is now in dictionary-attack lockout; it forgets one every {} s)",
                s.counter, s.interval_secs
            ),
            DaReport::Counted(s) => write!(
                f,
                " (the TPM has counted {} of {} failed authorizations before it locks out; it forgets one every {} s)",
                s.counter, s.max_tries, s.interval_secs
            ),
            DaReport::Unknown => Ok(()),
        }
    }
}

/// A TPM key could not be loaded or used. `key` names the key file or the
/// `handle:` reference.
///
/// Serialisable, so that the helper process ([`helper`]) reports exactly the error
/// an in-process key would.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TpmError {
    /// The TSS2 key file cannot be used.
    #[error("TPM key file {} {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: tss2::Tss2Error,
    },
    /// The TPM public area inside a key file does not parse.
    #[error("TPM key file {} holds a public area that does not parse ({reason})", path.display())]
    BadPublicArea {
        /// The file.
        path: PathBuf,
        /// tss-esapi's complaint.
        reason: String,
    },
    /// A `handle:` value that is not a persistent handle.
    #[error(
        "{reference} is not a persistent TPM key handle (expected handle:0x81000000 to handle:0x81FFFFFF)"
    )]
    BadHandle {
        /// The value as given.
        reference: String,
    },
    /// `--certificate handle:…`: the TPM holds keys, not certificates.
    #[error(
        "{reference} is a TPM key handle, not a certificate: TPM keys need a certificate file (--certificate FILE --private-key {reference})"
    )]
    HandleAsCertificate {
        /// The value as given.
        reference: String,
    },
    /// This build has no TPM support.
    #[error("{reference} is a TPM key handle, which this build of iamra cannot use")]
    Unsupported {
        /// The value as given.
        reference: String,
    },
    /// The TCTI variables are unusable.
    #[error(transparent)]
    Tcti(#[from] tcti::TctiError),
    /// No TPM answered.
    #[error("no TPM reachable through TCTI {tcti} ({origin}): {reason}")]
    Unreachable {
        /// The TCTI string tried.
        tcti: String,
        /// Where it came from.
        origin: tcti::TctiOrigin,
        /// Why it failed.
        reason: String,
    },
    /// Nothing is stored at the persistent handle.
    #[error("no key is stored at TPM handle {handle:#010x}")]
    NoSuchHandle {
        /// The handle.
        handle: u32,
    },
    /// The parent of a key file is unusable.
    #[error("cannot use parent {parent:#010x} of TPM key {key}: {reason}")]
    Parent {
        /// The key.
        key: String,
        /// The parent handle.
        parent: u32,
        /// Why.
        reason: String,
    },
    /// The TPM refused to load the key under its parent.
    #[error("the TPM refused to load TPM key {key}: {reason}")]
    Load {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The key has no `sign` attribute.
    #[error("TPM key {key} is a decrypt-only key (its sign attribute is clear) and cannot sign")]
    DecryptOnly {
        /// The key.
        key: String,
    },
    /// The key is of a kind Roles Anywhere does not accept.
    #[error(
        "TPM key {key} is an unsupported {kind} key; use RSA (2048 bits or more) or EC P-256/P-384"
    )]
    UnsupportedKey {
        /// The key.
        key: String,
        /// What it is.
        kind: String,
    },
    /// The key can only be used with a policy session.
    #[error(
        "TPM key {key} can only be used with a TPM policy (userWithAuth is clear), which iamra does not support"
    )]
    PolicyOnly {
        /// The key.
        key: String,
    },
    /// The key's fixed signing scheme does not allow this digest.
    #[error("TPM key {key} signs only with {allowed} (its scheme is fixed), not {requested}")]
    DigestNotAllowed {
        /// The key.
        key: String,
        /// The digest its scheme allows.
        #[serde(deserialize_with = "wire::static_str")]
        allowed: wire::StaticStr,
        /// The digest asked for.
        #[serde(deserialize_with = "wire::static_str")]
        requested: wire::StaticStr,
    },
    /// A key file says `emptyAuth`, yet a password was configured.
    #[error(
        "a TPM key password was given, but TPM key {key} has no password (emptyAuth is TRUE); remove the password"
    )]
    PasswordForEmptyAuth {
        /// The key.
        key: String,
    },
    /// A password and `--no-tpm-key-password` together.
    #[error(
        "a TPM key password was given for {key} together with {}",
        crate::error::Field::NoTpmKeyPassword
    )]
    PasswordAndNoPassword {
        /// The key.
        key: String,
    },
    /// The key file says the key has a password, and none was available.
    #[error("TPM key {key} has a password and none was given")]
    PasswordRequired {
        /// The key.
        key: String,
    },
    /// A handle key: whether it has a password is not known, and none was given.
    #[error(
        "TPM key {key} may have a password: none was given, and {} was not set",
        crate::error::Field::NoTpmKeyPassword
    )]
    HandlePasswordUnknown {
        /// The key.
        key: String,
    },
    /// Longer than a TPM authorisation value can be.
    #[error("the password for TPM key {key} is longer than 64 bytes, which no TPM key can have")]
    PasswordTooLong {
        /// The key.
        key: String,
    },
    /// The TPM rejected the password.
    #[error("wrong password for TPM key {key}{da}")]
    WrongPassword {
        /// The key.
        key: String,
        /// The TPM's dictionary-attack state.
        da: DaReport,
    },
    /// The TPM is in dictionary-attack lockout.
    #[error(
        "the TPM is in dictionary-attack lockout and refuses to use TPM key {key} (it forgets one failure every {interval_secs} s; the owner can reset it with tpm2_dictionarylockout --clear-lockout)"
    )]
    Lockout {
        /// The key.
        key: String,
        /// `TPM_PT_LOCKOUT_INTERVAL`.
        interval_secs: u32,
    },
    /// The TPM refused this key's password earlier in this process: it is not
    /// offered again (each wrong try counts towards the dictionary-attack lockout).
    #[error(
        "the TPM refused the password for TPM key {key} earlier; iamra does not try it again until restarted with the right password"
    )]
    PasswordNotRetried {
        /// The key.
        key: String,
    },
    /// The helper process that runs TPM commands (`iamra-tpm`) is missing or failed.
    #[error("cannot use TPM key {key}: {reason}")]
    Helper {
        /// The key.
        key: String,
        /// What went wrong with the helper.
        reason: String,
    },
    /// Any other TPM command failure.
    #[error("TPM2_{command} failed for TPM key {key}: {reason}")]
    Command {
        /// The key.
        key: String,
        /// The command, e.g. `Sign`.
        #[serde(deserialize_with = "wire::static_str")]
        command: wire::StaticStr,
        /// The TPM's or the TSS's error.
        reason: String,
    },
}

impl TpmError {
    /// What kind of failure this is: a refused password or a lockout is
    /// [`ErrorKind::Authentication`]; an unreachable TPM, a failed helper process
    /// or a failed command is [`ErrorKind::Transient`]; the rest is
    /// [`ErrorKind::Configuration`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            TpmError::WrongPassword { .. }
            | TpmError::Lockout { .. }
            | TpmError::PasswordNotRetried { .. } => ErrorKind::Authentication,
            TpmError::Unreachable { .. } | TpmError::Helper { .. } | TpmError::Command { .. } => {
                ErrorKind::Transient
            }
            TpmError::KeyFile { .. }
            | TpmError::BadPublicArea { .. }
            | TpmError::BadHandle { .. }
            | TpmError::HandleAsCertificate { .. }
            | TpmError::Unsupported { .. }
            | TpmError::Tcti(_)
            | TpmError::NoSuchHandle { .. }
            | TpmError::Parent { .. }
            | TpmError::Load { .. }
            | TpmError::DecryptOnly { .. }
            | TpmError::UnsupportedKey { .. }
            | TpmError::PolicyOnly { .. }
            | TpmError::DigestNotAllowed { .. }
            | TpmError::PasswordForEmptyAuth { .. }
            | TpmError::PasswordAndNoPassword { .. }
            | TpmError::PasswordRequired { .. }
            | TpmError::HandlePasswordUnknown { .. }
            | TpmError::PasswordTooLong { .. } => ErrorKind::Configuration,
        }
    }

    /// Whether the TPM refused an authorisation (wrong password, lockout): trying
    /// again would only count towards (or prolong) the dictionary-attack lockout.
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }
}

/// A persistent TPM key handle (`0x81000000` to `0x81FFFFFF`), written
/// `handle:0x81000101` on the command line as in the reference helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TpmHandle(u32);

impl TpmHandle {
    /// Parses `handle:0x81000101` (the `0x` is optional, as in the reference).
    pub fn parse(reference: &str) -> Result<Self, TpmError> {
        let bad = || TpmError::BadHandle {
            reference: crate::error::shorten(reference).into_owned(),
        };
        let hex = reference.strip_prefix("handle:").ok_or_else(bad)?;
        let hex = hex
            .strip_prefix("0x")
            .or_else(|| hex.strip_prefix("0X"))
            .unwrap_or(hex);
        if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let handle = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
        Self::new(handle).ok_or_else(bad)
    }

    /// A persistent handle, or `None` outside `0x81000000..=0x81FFFFFF`.
    pub fn new(handle: u32) -> Option<Self> {
        (handle >> 24 == 0x81).then_some(Self(handle))
    }

    /// The handle's value.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for TpmHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "handle:0x{:08x}", self.0)
    }
}

/// What is known about a key's authorisation before it is used.
#[cfg_attr(
    not(feature = "tpm"),
    allow(dead_code, reason = "used by the tpm feature; unit-tested always")
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthNeed {
    /// A key file with `emptyAuth` TRUE, or a handle with `--no-tpm-key-password`.
    None,
    /// A key file with `emptyAuth` FALSE (or absent).
    Password,
    /// A handle without `--no-tpm-key-password`: the TPM does not tell.
    Unknown,
}

/// Fetches the password a key needs, asking `passwords` only when it needs one.
#[cfg_attr(
    not(feature = "tpm"),
    allow(dead_code, reason = "used by the tpm feature; unit-tested always")
)]
fn key_password(
    need: AuthNeed,
    key: &str,
    no_password_flag: bool,
    passwords: &dyn PasswordSource,
) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let configured = passwords.is_configured(SecretKind::TpmKeyPassword);
    let password = match need {
        AuthNeed::None if configured && no_password_flag => {
            return Err(TpmError::PasswordAndNoPassword { key: key.into() }.into());
        }
        AuthNeed::None if configured => {
            return Err(TpmError::PasswordForEmptyAuth { key: key.into() }.into());
        }
        AuthNeed::None => return Ok(None),
        AuthNeed::Password | AuthNeed::Unknown => {
            passwords.password(SecretKind::TpmKeyPassword, Path::new(key))?
        }
    };
    let Some(password) = password else {
        return Err(match need {
            AuthNeed::Unknown => TpmError::HandlePasswordUnknown { key: key.into() },
            _ => TpmError::PasswordRequired { key: key.into() },
        }
        .into());
    };
    Ok(Some(auth_bytes(&password, key)?))
}

#[cfg_attr(
    not(feature = "tpm"),
    allow(dead_code, reason = "used by the tpm feature; unit-tested always")
)]
fn auth_bytes(password: &SecretString, key: &str) -> Result<Zeroizing<Vec<u8>>, TpmError> {
    // Security: the bytes live in zeroized buffers only.
    let bytes = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
    if bytes.len() > 64 {
        return Err(TpmError::PasswordTooLong { key: key.into() });
    }
    Ok(bytes)
}

/// Loads the key of a `TSS2 PRIVATE KEY` PEM block (`der`) read from `path`.
///
/// Connects to the TPM named by the environment (see [`tcti`]), re-creates or opens
/// the parent, loads the key, and asks `passwords` for its password only when the
/// file says it has one.
pub fn load_key_file(
    der: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
) -> Result<TpmKey, KeyError> {
    load_key_file_with_tcti(der, path, passwords, None)
}

/// [`load_key_file`] on the TPM `tcti` names (`None`: from the environment).
pub fn load_key_file_with_tcti(
    der: &[u8],
    path: &Path,
    passwords: &dyn PasswordSource,
    tcti: Option<&tcti::TctiConfig>,
) -> Result<TpmKey, KeyError> {
    #[cfg(feature = "tpm")]
    {
        let parsed = tss2::parse(der).map_err(|reason| TpmError::KeyFile {
            path: path.to_path_buf(),
            reason,
        })?;
        let tcti = match tcti {
            Some(t) => t.clone(),
            None => tcti::from_env().map_err(TpmError::from)?,
        };
        let need = if parsed.empty_auth {
            AuthNeed::None
        } else {
            AuthNeed::Password
        };
        let label = path.display().to_string();
        // Refuse a password for an emptyAuth key before touching the TPM.
        if need == AuthNeed::None {
            key_password(need, &label, false, passwords)?;
        }
        let mut key = TpmKey::open(
            &tcti,
            backend::KeyRef::File {
                der,
                key: &parsed,
                path,
            },
            &label,
        )?;
        if need == AuthNeed::Password {
            key.set_auth(key_password(need, &label, false, passwords)?)?;
        }
        Ok(key)
    }
    #[cfg(not(feature = "tpm"))]
    {
        let _ = (der, passwords, tcti);
        Err(KeyError::TpmUnsupported {
            path: path.to_path_buf(),
        })
    }
}

/// Opens the persistent key at `handle`.
///
/// With `no_password` (`--no-tpm-key-password`) the key is used with an empty
/// password; otherwise `passwords` is asked, because a TPM does not reveal whether
/// a key has one.
pub fn load_handle(
    handle: TpmHandle,
    no_password: bool,
    passwords: &dyn PasswordSource,
) -> Result<TpmKey, KeyError> {
    load_handle_with_tcti(handle, no_password, passwords, None)
}

/// [`load_handle`] on the TPM `tcti` names (`None`: from the environment).
pub fn load_handle_with_tcti(
    handle: TpmHandle,
    no_password: bool,
    passwords: &dyn PasswordSource,
    tcti: Option<&tcti::TctiConfig>,
) -> Result<TpmKey, KeyError> {
    let reference_text = handle.to_string();
    let reference = reference_text.as_str();
    let handle = handle.value();
    #[cfg(feature = "tpm")]
    {
        let tcti = match tcti {
            Some(t) => t.clone(),
            None => tcti::from_env().map_err(TpmError::from)?,
        };
        let need = if no_password {
            AuthNeed::None
        } else {
            AuthNeed::Unknown
        };
        if need == AuthNeed::None {
            key_password(need, reference, true, passwords)?;
        }
        let mut key = TpmKey::open(
            &tcti,
            backend::KeyRef::Handle { handle, reference },
            reference,
        )?;
        if need == AuthNeed::Unknown {
            key.set_auth(key_password(need, reference, false, passwords)?)?;
        }
        Ok(key)
    }
    #[cfg(not(feature = "tpm"))]
    {
        let _ = (handle, no_password, passwords, tcti);
        Err(TpmError::Unsupported {
            reference: reference.to_string(),
        }
        .into())
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` in DER,
/// as certificates carry it (so the TPM key compares equal to the certificate's).
#[cfg_attr(
    not(feature = "tpm"),
    allow(dead_code, reason = "used by the tpm feature")
)]
fn rsa_public_der(modulus: &[u8], exponent: u32) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, unsigned_be: &[u8]) {
        let start = unsigned_be
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(unsigned_be.len());
        let digits = &unsigned_be[start..];
        let pad = digits.first().is_none_or(|&b| b & 0x80 != 0);
        let len = digits.len() + usize::from(pad);
        out.push(0x02);
        length(out, len);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(digits);
    }
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    let mut body = Vec::with_capacity(modulus.len() + 16);
    integer(&mut body, modulus);
    integer(&mut body, &exponent.to_be_bytes());
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{FixedPassword, NoPassword};

    #[test]
    fn handles_must_be_persistent() {
        let value = |s| TpmHandle::parse(s).unwrap().value();
        assert_eq!(value("handle:0x81000101"), 0x8100_0101);
        assert_eq!(value("handle:81000001"), 0x8100_0001);
        assert_eq!(value("handle:0X81ABCDEF"), 0x81AB_CDEF);
        assert_eq!(
            TpmHandle::parse("handle:81abcdef").unwrap().to_string(),
            "handle:0x81abcdef"
        );
        for bad in [
            "handle:",
            "handle:0x",
            "handle:0x40000001",
            "handle:0x1",
            "handle:0x810000011",
            "handle:0x8100000g",
            "handle:+81000001",
            "0x81000001",
        ] {
            assert_eq!(
                TpmHandle::parse(bad).unwrap_err().to_string(),
                format!(
                    "{bad} is not a persistent TPM key handle (expected handle:0x81000000 to handle:0x81FFFFFF)"
                )
            );
        }
    }

    /// Counts the questions asked.
    struct Counting {
        configured: bool,
        answer: Option<&'static str>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl PasswordSource for Counting {
        fn password(&self, _: SecretKind, _: &Path) -> Result<Option<SecretString>, KeyError> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.answer.map(SecretString::from))
        }
        fn is_configured(&self, _: SecretKind) -> bool {
            self.configured
        }
    }

    fn counting(configured: bool, answer: Option<&'static str>) -> Counting {
        Counting {
            configured,
            answer,
            asked: 0.into(),
        }
    }

    #[test]
    fn no_password_is_asked_when_none_is_needed() {
        let p = counting(false, Some("would prompt"));
        assert!(
            key_password(AuthNeed::None, "k.pem", false, &p)
                .unwrap()
                .is_none()
        );
        assert!(
            key_password(AuthNeed::None, "handle:0x81000001", true, &p)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            p.asked.into_inner(),
            0,
            "never asked, so never a TTY prompt"
        );
    }

    #[test]
    fn a_password_for_an_empty_auth_key_is_an_error() {
        let e =
            key_password(AuthNeed::None, "k.pem", false, &FixedPassword("x".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a TPM key password was given, but TPM key k.pem has no password (emptyAuth is TRUE); remove the password"
        );
        let e = key_password(
            AuthNeed::None,
            "handle:0x81000001",
            true,
            &FixedPassword("x".into()),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a TPM key password was given for handle:0x81000001 together with the no-TPM-key-password setting"
        );
    }

    #[test]
    fn a_needed_password_is_asked_once() {
        let p = counting(true, Some("pw"));
        let got = key_password(AuthNeed::Password, "k.pem", false, &p)
            .unwrap()
            .unwrap();
        assert_eq!(&got[..], b"pw");
        assert_eq!(p.asked.into_inner(), 1);
        let e = key_password(AuthNeed::Password, "k.pem", false, &NoPassword).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TPM key k.pem has a password and none was given"
        );
        let e =
            key_password(AuthNeed::Unknown, "handle:0x81000001", false, &NoPassword).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TPM key handle:0x81000001 may have a password: none was given, and the no-TPM-key-password setting was not set"
        );
        let long = FixedPassword(SecretString::from("x".repeat(65)));
        let e = key_password(AuthNeed::Password, "k.pem", false, &long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the password for TPM key k.pem is longer than 64 bytes, which no TPM key can have"
        );
    }

    #[test]
    fn rsa_public_der_matches_a_certificate() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/certs-testdata/rsa2048/cert.pem"
        ))
        .unwrap();
        let blocks = crate::pem::parse_all(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&blocks[0].der).unwrap();
        let spki = cert.public_key();
        let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
            panic!("not RSA");
        };
        let e = rsa
            .exponent
            .iter()
            .fold(0u32, |a, &b| (a << 8) | u32::from(b));
        assert_eq!(
            rsa_public_der(rsa.modulus, e),
            spki.subject_public_key.data.to_vec()
        );
    }

    #[test]
    fn da_report_wording() {
        let s = DaState {
            counter: 1,
            max_tries: 3,
            interval_secs: 1000,
            in_lockout: false,
        };
        assert_eq!(
            DaReport::Counted(s).to_string(),
            " (the TPM has counted 1 of 3 failed authorizations before it locks out; it forgets one every 1000 s)"
        );
        assert_eq!(DaReport::Unknown.to_string(), "");
    }

    #[cfg(not(feature = "tpm"))]
    #[test]
    fn without_the_feature_tpm_keys_are_refused_clearly() {
        let e = load_handle(
            TpmHandle::parse("handle:0x81000001").unwrap(),
            true,
            &NoPassword,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "handle:0x81000001 is a TPM key handle, which this build of iamra cannot use"
        );
        let e = load_key_file(b"", Path::new("k.pem"), &NoPassword).unwrap_err();
        assert!(matches!(e, KeyError::TpmUnsupported { .. }));
    }
}
