//! The TPM side of [`super::TpmKey`], through tss-esapi (cargo feature `tpm`): run
//! in the helper process `iamra-tpm` ([`super::helper`]), or in the caller's
//! process with [`super::TpmBackend::InProcess`].
//!
//! One [`Context`] per key, opened at load and kept, with the re-created storage
//! primary (for key files under a hierarchy) and the loaded key. tss-esapi's
//! `Context` flushes every transient object and session it created when it is
//! dropped, so no handle outlives the key, on success or on error.

use std::path::Path;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{
    CapabilityType, PropertyTag, SessionType, Tss2ResponseCode, Tss2ResponseCodeKind,
};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy as TpmHierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, CapabilityData, Digest as TpmDigest, EccPoint, EccScheme, HashScheme, HashcheckTicket,
    KeyDerivationFunctionScheme, MaxBuffer, Private, Public, PublicEccParametersBuilder, RsaScheme,
    Signature, SignatureScheme, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::UnMarshall as _;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{Context, TctiNameConf};
use zeroize::Zeroizing;

use super::backend::contract::{Backend, KeyRef, Opener};
use super::bridge::Bridge;
use super::tcti::TctiConfig;
use super::tss2::{Hierarchy, Parent, Tss2Key};
use super::{DaReport, DaState, TpmError, rsa_public_der};
use crate::key::{Digest, PublicKey};

/// A key held in a TPM 2.0: a TSS2 key file loaded under its parent, or a
/// persistent key (`handle:0x81……`).
///
/// The TPM connection, the parent and the loaded key stay open while the value
/// lives (so long-running modes pay the load once); dropping it flushes every
/// transient object.
pub(crate) struct TpmKey {
    label: String,
    public: PublicKey,
    signer: SignerInfo,
    source: Source,
    tcti: TctiConfig,
    auth: Option<Zeroizing<Vec<u8>>>,
    state: Mutex<Option<Loaded>>,
    /// Set once the TPM refused the password (or was in lockout): the key never
    /// offers it again, whoever asks (`update`, `serve`, the provider).
    refused: AtomicBool,
}

impl std::fmt::Debug for TpmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: the password is never printed, only whether there is one.
        f.debug_struct("TpmKey")
            .field("key", &self.label)
            .field("public", &self.public.describe())
            .field("tcti", &self.tcti.conf)
            .field("password", &self.auth.as_ref().map(|_| "** redacted **"))
            .finish_non_exhaustive()
    }
}

/// Where the key comes from, kept to re-open it after a lost connection.
enum Source {
    File {
        parent: Parent,
        public: Public,
        private: Private,
    },
    Handle(u32),
}

/// What the public area says about signing.
#[derive(Clone, Copy, Debug)]
struct SignerInfo {
    kind: Kind,
    /// The hash of a fixed scheme (`None`: the scheme is NULL, any hash will do).
    fixed_hash: Option<HashingAlgorithm>,
    restricted: bool,
    no_da: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
}

/// An open connection with the key loaded.
struct Loaded {
    ctx: Connection,
    key: KeyHandle,
    /// The storage key the key was loaded under, kept to salt password sessions.
    parent: Option<KeyHandle>,
    /// The HMAC session of a key with a password, kept between signatures.
    session: Option<AuthSession>,
}

impl TpmKey {
    /// Loads a parsed key file.
    pub(super) fn load_file(
        tcti: TctiConfig,
        key: &Tss2Key,
        path: &Path,
    ) -> Result<Self, TpmError> {
        let label = path.display().to_string();
        let bad = |reason: String| TpmError::BadPublicArea {
            path: path.to_path_buf(),
            reason,
        };
        let public = Public::unmarshall(&key.public).map_err(|e| bad(e.to_string()))?;
        let private = Private::try_from(key.private.to_vec())
            .map_err(|e| bad(format!("private area: {e}")))?;
        let (pk, signer) = inspect(&public, &label)?;
        let source = Source::File {
            parent: key.parent,
            public,
            private,
        };
        let loaded = Loaded::open(&tcti, &source, &label)?;
        Ok(TpmKey {
            label,
            public: pk,
            signer,
            source,
            tcti,
            auth: None,
            state: Mutex::new(Some(loaded)),
            refused: AtomicBool::new(false),
        })
    }

    /// Opens a persistent key.
    pub(super) fn load_handle(
        tcti: TctiConfig,
        handle: u32,
        reference: &str,
    ) -> Result<Self, TpmError> {
        let source = Source::Handle(handle);
        let mut loaded = Loaded::open(&tcti, &source, reference)?;
        let (public, _, _) = loaded
            .ctx
            .read_public(loaded.key)
            .map_err(|e| command_error(reference, "ReadPublic", &e))?;
        let (pk, signer) = inspect(&public, reference)?;
        Ok(TpmKey {
            label: reference.to_string(),
            public: pk,
            signer,
            source,
            tcti,
            auth: None,
            state: Mutex::new(Some(loaded)),
            refused: AtomicBool::new(false),
        })
    }

    /// Sets the key's password (`None`: empty).
    pub(super) fn set_auth(&mut self, auth: Option<Zeroizing<Vec<u8>>>) {
        self.auth = auth.filter(|a| !a.is_empty());
    }

    /// The key's public key.
    pub(super) fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Signs `message`, re-opening the TPM connection once if a kept one fails for
    /// a reason other than the password (never retried: each try counts towards the
    /// TPM's dictionary-attack lockout).
    pub(super) fn sign_digest(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, TpmError> {
        let plan = self.plan(digest)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.refused.load(Ordering::SeqCst) {
            return Err(TpmError::PasswordNotRetried {
                key: self.label.clone(),
            });
        }
        let mut retried = false;
        loop {
            let (mut loaded, kept) = match state.take() {
                Some(l) => (l, true),
                None => (Loaded::open(&self.tcti, &self.source, &self.label)?, false),
            };
            match loaded.sign(self, &plan, message, digest) {
                Ok(sig) => {
                    *state = Some(loaded);
                    return Ok(sig);
                }
                Err(SignFailure::Auth(e)) => {
                    *state = Some(loaded);
                    self.refused.store(true, Ordering::SeqCst);
                    return Err(e);
                }
                Err(SignFailure::Other(e)) => {
                    // Drop (and so flush) the connection; a kept one may have gone
                    // stale (TPM reset, swtpm restarted): try once with a fresh one.
                    drop(loaded);
                    if kept && !retried {
                        tracing::debug!(key = %self.label, error = %e, "TPM signature failed; re-opening the TPM");
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Chooses the TPM hash and the digest length for a signature.
    fn plan(&self, digest: Digest) -> Result<Plan, TpmError> {
        let requested = hash_alg(digest);
        let len = digest_len(requested);
        let Some(fixed) = self.signer.fixed_hash else {
            return Ok(Plan {
                hash: requested,
                pad_to: len,
            });
        };
        if fixed == requested {
            return Ok(Plan {
                hash: requested,
                pad_to: len,
            });
        }
        // ECDSA signs the leftmost curve-size bits of the digest as an integer:
        // a shorter digest left-padded with zeros to the fixed hash's length is the
        // same integer when that length does not exceed the curve size (the
        // reference helper signs SHA-256 with P-384 keys this way).
        let curve = match self.signer.kind {
            Kind::P256 => 32,
            Kind::P384 => 48,
            Kind::Rsa => 0,
        };
        let fixed_len = digest_len(fixed);
        if !self.signer.restricted && fixed_len >= len && fixed_len <= curve {
            return Ok(Plan {
                hash: fixed,
                pad_to: fixed_len,
            });
        }
        Err(TpmError::DigestNotAllowed {
            key: self.label.clone(),
            allowed: hash_name(fixed),
            requested: hash_name(requested),
        })
    }
}

impl Backend for TpmKey {
    fn set_auth(&mut self, auth: Option<Zeroizing<Vec<u8>>>) -> Result<(), TpmError> {
        TpmKey::set_auth(self, auth);
        Ok(())
    }

    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, TpmError> {
        self.sign_digest(message, digest)
    }
}

/// Opens keys in this process ([`super::TpmBackend::InProcess`]).
pub(crate) struct InProcess;

impl Opener for InProcess {
    fn open(
        &self,
        tcti: &TctiConfig,
        key: &KeyRef<'_>,
    ) -> Result<(PublicKey, Box<dyn Backend>), TpmError> {
        let key = match key {
            KeyRef::File { key, path, .. } => TpmKey::load_file(tcti.clone(), key, path)?,
            KeyRef::Handle { handle, reference } => {
                TpmKey::load_handle(tcti.clone(), *handle, reference)?
            }
        };
        Ok((key.public_key(), Box::new(key)))
    }
}

struct Plan {
    hash: HashingAlgorithm,
    pad_to: usize,
}

enum SignFailure {
    /// The password was refused: not worth a retry (and never retried: DA).
    Auth(TpmError),
    Other(TpmError),
}

impl Loaded {
    /// Connects and loads (or opens) the key.
    fn open(tcti: &TctiConfig, source: &Source, label: &str) -> Result<Self, TpmError> {
        let mut ctx = connect(tcti)?;
        match source {
            Source::Handle(handle) => {
                let key = open_persistent(&mut ctx, *handle)?;
                Ok(Loaded {
                    ctx,
                    key: key.into(),
                    parent: None,
                    session: None,
                })
            }
            Source::File {
                parent,
                public,
                private,
            } => {
                let parent_key = match parent {
                    Parent::Persistent(h) => {
                        let obj = open_persistent(&mut ctx, *h).map_err(|e| TpmError::Parent {
                            key: label.to_string(),
                            parent: *h,
                            reason: match e {
                                TpmError::NoSuchHandle { .. } => {
                                    "no key is stored at that handle".into()
                                }
                                other => other.to_string(),
                            },
                        })?;
                        KeyHandle::from(obj)
                    }
                    Parent::Hierarchy(h) => {
                        create_srk(&mut ctx, *h).map_err(|e| TpmError::Parent {
                            key: label.to_string(),
                            parent: h.handle(),
                            reason: format!(
                                "the TPM refused to create the storage primary key ({})",
                                tss_reason(&e)
                            ),
                        })?
                    }
                };
                // The parent's empty authorisation in a password session:
                // tss-esapi's "nullauth" helper would start (and flush) an HMAC
                // session with parameter encryption, two more TPM round trips
                // that protect nothing here (the private area is already
                // encrypted by the parent).
                let loaded = ctx.execute_with_session(Some(AuthSession::Password), |c| {
                    c.load(parent_key, private.clone(), public.clone())
                });
                let key = match loaded {
                    Ok(k) => k,
                    // A DA-protected parent (tpm2_createprimary's default) is
                    // refused during a lockout too.
                    Err(e) if kind(&e) == Some(Tss2ResponseCodeKind::Lockout) => {
                        return Err(TpmError::Lockout {
                            key: label.to_string(),
                            interval_secs: da_state(&mut ctx).map_or(0, |s| s.interval_secs),
                        });
                    }
                    Err(e) => {
                        return Err(TpmError::Load {
                            key: label.to_string(),
                            reason: load_reason(&e, parent.handle()),
                        });
                    }
                };
                Ok(Loaded {
                    ctx,
                    key,
                    parent: Some(parent_key),
                    session: None,
                })
            }
        }
    }

    fn sign(
        &mut self,
        key: &TpmKey,
        plan: &Plan,
        message: &[u8],
        digest: Digest,
    ) -> Result<Vec<u8>, SignFailure> {
        let label = key.label.as_str();
        let other =
            |command, e: &tss_esapi::Error| SignFailure::Other(command_error(label, command, e));
        let (tpm_digest, ticket) = if key.signer.restricted {
            // A restricted key signs only digests the TPM computed itself (and so
            // knows do not start with TPM_GENERATED_VALUE): hash in the TPM.
            let data = MaxBuffer::try_from(message.to_vec()).map_err(|e| other("Hash", &e))?;
            self.ctx
                .execute_without_session(|c| c.hash(data, plan.hash, TpmHierarchy::Owner))
                .map_err(|e| other("Hash", &e))?
        } else {
            let hash = digest.hash(message);
            let mut bytes = vec![0u8; plan.pad_to.saturating_sub(hash.as_ref().len())];
            bytes.extend_from_slice(hash.as_ref());
            let d = TpmDigest::try_from(bytes).map_err(|e| other("Sign", &e))?;
            (d, null_ticket().map_err(|e| other("Sign", &e))?)
        };
        let scheme = match key.signer.kind {
            Kind::Rsa => SignatureScheme::RsaSsa {
                hash_scheme: HashScheme::new(plan.hash),
            },
            Kind::P256 | Kind::P384 => SignatureScheme::EcDsa {
                hash_scheme: HashScheme::new(plan.hash),
            },
        };
        let session = match (&key.auth, self.session) {
            (None, _) => AuthSession::Password,
            (Some(_), Some(kept)) => kept,
            (Some(password), None) => {
                if !key.signer.no_da {
                    self.check_lockout(label)?;
                }
                let auth = Auth::try_from(password.to_vec()).map_err(|e| other("Sign", &e))?;
                self.ctx
                    .tr_set_auth(self.key.into(), auth)
                    .map_err(|e| other("Sign", &e))?;
                // An HMAC session: the password never crosses the bus; salted
                // with the storage key when there is one. Kept for the next
                // signatures (continueSession).
                let s = self
                    .ctx
                    .start_auth_session(
                        self.parent,
                        None,
                        None,
                        SessionType::Hmac,
                        SymmetricDefinition::AES_128_CFB,
                        HashingAlgorithm::Sha256,
                    )
                    .map_err(|e| other("StartAuthSession", &e))?
                    .ok_or_else(|| {
                        SignFailure::Other(TpmError::Command {
                            key: label.to_string(),
                            command: "StartAuthSession",
                            reason: "no session returned".into(),
                        })
                    })?;
                let (attrs, mask) = SessionAttributesBuilder::new()
                    .with_continue_session(true)
                    .build();
                self.session = Some(s);
                self.ctx
                    .tr_sess_set_attributes(s, attrs, mask)
                    .map_err(|e| other("StartAuthSession", &e))?;
                s
            }
        };
        let handle = self.key;
        let signed = self.ctx.execute_with_session(Some(session), |c| {
            c.sign(handle, tpm_digest, scheme, ticket)
        });
        let signature = match signed {
            Ok(s) => s,
            Err(e) => {
                // Start afresh next time: the TPM may have dropped the session.
                if let Some(s) = self.session.take()
                    && let Err(e) = self
                        .ctx
                        .flush_context(tss_esapi::handles::SessionHandle::from(s).into())
                {
                    tracing::debug!(key = label, error = %e, "could not flush the TPM session");
                }
                return Err(self.sign_error(key, e));
            }
        };
        encode(signature, key.signer.kind).map_err(|reason| {
            SignFailure::Other(TpmError::Command {
                key: label.to_string(),
                command: "Sign",
                reason,
            })
        })
    }

    /// Reads the dictionary-attack state before a password is offered: refuses
    /// while the TPM is in lockout (a try would fail and prolong it), warns when one
    /// more failure would lock it out.
    fn check_lockout(&mut self, label: &str) -> Result<(), SignFailure> {
        let Some(da) = da_state(&mut self.ctx) else {
            tracing::debug!(
                key = label,
                "the TPM did not report its dictionary-attack state"
            );
            return Ok(());
        };
        if da.in_lockout {
            return Err(SignFailure::Auth(TpmError::Lockout {
                key: label.to_string(),
                interval_secs: da.interval_secs,
            }));
        }
        if da.max_tries > 0 && da.counter.saturating_add(1) >= da.max_tries {
            tracing::warn!(
                "the TPM has counted {} of {} failed authorizations: one more wrong password locks it out",
                da.counter,
                da.max_tries
            );
        }
        Ok(())
    }

    /// Classifies a failed TPM2_Sign.
    fn sign_error(&mut self, key: &TpmKey, e: tss_esapi::Error) -> SignFailure {
        let label = key.label.clone();
        match kind(&e) {
            Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
                let da = if key.signer.no_da {
                    DaReport::Exempt
                } else {
                    da_state(&mut self.ctx).map_or(DaReport::Unknown, DaReport::Counted)
                };
                SignFailure::Auth(TpmError::WrongPassword { key: label, da })
            }
            Some(Tss2ResponseCodeKind::Lockout) => {
                let interval_secs = da_state(&mut self.ctx).map_or(0, |s| s.interval_secs);
                SignFailure::Auth(TpmError::Lockout {
                    key: label,
                    interval_secs,
                })
            }
            _ => SignFailure::Other(command_error(&label, "Sign", &e)),
        }
    }
}

/// An ESYS context, and the bridge it reaches a swtpm unix socket through.
struct Connection {
    // Declared first, so dropped first: the context flushes its objects through
    // the bridge.
    ctx: Context,
    _bridge: Option<Bridge>,
}

impl std::ops::Deref for Connection {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

/// Opens the TCTI (through a [`Bridge`] for a swtpm unix socket) and the ESYS
/// context.
fn connect(tcti: &TctiConfig) -> Result<Connection, TpmError> {
    let unreachable = |reason: String| TpmError::Unreachable {
        tcti: tcti.conf.clone(),
        origin: tcti.origin,
        reason,
    };
    let bridge = match tcti.unix_socket() {
        Some(socket) => Some(Bridge::start(socket).map_err(unreachable)?),
        None => None,
    };
    let conf = bridge
        .as_ref()
        .map_or_else(|| tcti.conf.clone(), Bridge::tcti);
    let name_conf = TctiNameConf::from_str(&conf)
        .map_err(|e| unreachable(format!("tss-esapi does not accept it ({e})")))?;
    let ctx = Context::new(name_conf).map_err(|e| {
        let code = rc_hex(&e)
            .map(|c| format!(" (TSS2 error {c})"))
            .unwrap_or_default();
        let reason = match tcti.device_path() {
            Some(path) => match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Err(io) if io.kind() == std::io::ErrorKind::NotFound => {
                    format!(
                        "{} does not exist (no TPM, or its driver is not loaded)",
                        path.display()
                    )
                }
                Err(io) if io.kind() == std::io::ErrorKind::PermissionDenied => format!(
                    "permission denied opening {} (the user must be in its group, usually tss)",
                    path.display()
                ),
                Err(io) => format!("cannot open {}: {io}", path.display()),
                Ok(_) => format!("the TPM at {} did not answer{code}", path.display()),
            },
            None => match tcti.conf.split_once(':') {
                Some(("swtpm", _)) if bridge.is_some() => {
                    format!("swtpm did not answer through its unix socket{code}")
                }
                Some((sim @ ("swtpm" | "mssim"), opts)) => {
                    format!("cannot connect to the {sim} simulator at {opts}{code}")
                }
                _ => format!("the TPM did not answer{code}"),
            },
        };
        unreachable(reason)
    })?;
    Ok(Connection {
        ctx,
        _bridge: bridge,
    })
}

fn open_persistent(ctx: &mut Context, handle: u32) -> Result<ObjectHandle, TpmError> {
    let tpm = PersistentTpmHandle::new(handle).map_err(|_| TpmError::NoSuchHandle { handle })?;
    ctx.execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::Persistent(tpm)))
        .map_err(|e| match kind(&e) {
            Some(Tss2ResponseCodeKind::Handle | Tss2ResponseCodeKind::Value) => {
                TpmError::NoSuchHandle { handle }
            }
            _ => command_error(&format!("handle:{handle:#010x}"), "ReadPublic", &e),
        })
}

/// Re-creates the standard ECC P-256 storage primary key (the template of
/// tpm2-openssl, tpm2-tools `-G ecc256:aes128cfb` and the reference helper).
fn create_srk(ctx: &mut Context, hierarchy: Hierarchy) -> tss_esapi::Result<KeyHandle> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    let parameters = PublicEccParametersBuilder::new()
        .with_symmetric(SymmetricDefinitionObject::AES_128_CFB)
        .with_ecc_scheme(EccScheme::Null)
        .with_curve(EccCurve::NistP256)
        .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
        .with_is_decryption_key(true)
        .with_restricted(true)
        .build()?;
    let template = Public::builder()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()?;
    let h = match hierarchy {
        Hierarchy::Owner => TpmHierarchy::Owner,
        Hierarchy::Null => TpmHierarchy::Null,
        Hierarchy::Endorsement => TpmHierarchy::Endorsement,
        Hierarchy::Platform => TpmHierarchy::Platform,
    };
    // The hierarchy's empty authorisation in a password session, as tpm2-openssl
    // does: the template and the (empty) sensitive data are no secret, so an HMAC
    // session with parameter encryption would only cost two more round trips.
    let primary = ctx.execute_with_session(Some(AuthSession::Password), |c| {
        c.create_primary(h, template, None, None, None, None)
    })?;
    Ok(primary.key_handle)
}

/// Checks that the key can sign for Roles Anywhere and derives its public key.
fn inspect(public: &Public, label: &str) -> Result<(PublicKey, SignerInfo), TpmError> {
    let unsupported = |kind: &str| TpmError::UnsupportedKey {
        key: label.to_string(),
        kind: kind.to_string(),
    };
    let attrs = public.object_attributes();
    let (pk, kind, fixed_hash) = match public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            let bits = match parameters.key_bits() {
                RsaKeyBits::Rsa1024 => return Err(unsupported("RSA-1024")),
                RsaKeyBits::Rsa2048 => 2048,
                RsaKeyBits::Rsa3072 => 3072,
                RsaKeyBits::Rsa4096 => 4096,
            };
            let fixed = match parameters.rsa_scheme() {
                RsaScheme::Null => None,
                RsaScheme::RsaSsa(h) => Some(h.hashing_algorithm()),
                RsaScheme::RsaPss(_) => return Err(unsupported("RSA-PSS")),
                RsaScheme::RsaEs | RsaScheme::Oaep(_) => {
                    return Err(TpmError::DecryptOnly {
                        key: label.to_string(),
                    });
                }
            };
            let exponent = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let pk = PublicKey::Rsa {
                pkcs1: rsa_public_der(unique.value(), exponent),
                bits,
            };
            (pk, Kind::Rsa, fixed)
        }
        Public::Ecc {
            parameters, unique, ..
        } => {
            let (kind, len) = match parameters.ecc_curve() {
                EccCurve::NistP256 => (Kind::P256, 32),
                EccCurve::NistP384 => (Kind::P384, 48),
                EccCurve::NistP521 => return Err(unsupported("EC P-521")),
                other => return Err(unsupported(&format!("EC {other:?}"))),
            };
            let fixed = match parameters.ecc_scheme() {
                EccScheme::Null => None,
                EccScheme::EcDsa(h) => Some(h.hashing_algorithm()),
                EccScheme::EcDh(_) | EccScheme::EcMqv(_) => {
                    return Err(TpmError::DecryptOnly {
                        key: label.to_string(),
                    });
                }
                EccScheme::EcDaa(_) => return Err(unsupported("EC-DAA")),
                EccScheme::Sm2(_) => return Err(unsupported("SM2")),
                EccScheme::EcSchnorr(_) => return Err(unsupported("EC-Schnorr")),
            };
            let (x, y) = (unique.x().value(), unique.y().value());
            if x.len() > len || y.len() > len {
                return Err(unsupported("EC (malformed point)"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend(std::iter::repeat_n(0, len - x.len()));
            point.extend_from_slice(x);
            point.extend(std::iter::repeat_n(0, len - y.len()));
            point.extend_from_slice(y);
            let pk = match kind {
                Kind::P256 => PublicKey::P256(point),
                _ => PublicKey::P384(point),
            };
            (pk, kind, fixed)
        }
        Public::KeyedHash { .. } => return Err(unsupported("HMAC (keyed hash)")),
        Public::SymCipher { .. } => return Err(unsupported("symmetric")),
    };
    if !attrs.sign_encrypt() {
        return Err(TpmError::DecryptOnly {
            key: label.to_string(),
        });
    }
    if !attrs.user_with_auth() {
        return Err(TpmError::PolicyOnly {
            key: label.to_string(),
        });
    }
    if let Some(h) = fixed_hash
        && !matches!(
            h,
            HashingAlgorithm::Sha256 | HashingAlgorithm::Sha384 | HashingAlgorithm::Sha512
        )
    {
        return Err(unsupported(&format!("{} with {h:?}", pk.describe())));
    }
    Ok((
        pk,
        SignerInfo {
            kind,
            fixed_hash,
            restricted: attrs.restricted(),
            no_da: attrs.no_da(),
        },
    ))
}

/// The TPM's signature in Roles Anywhere's encoding.
fn encode(signature: Signature, kind: Kind) -> Result<Vec<u8>, String> {
    match (signature, kind) {
        (Signature::RsaSsa(s), Kind::Rsa) => Ok(s.signature().value().to_vec()),
        (Signature::EcDsa(s), Kind::P256) => {
            let rs = fixed_rs(s.signature_r().value(), s.signature_s().value(), 32)?;
            p256::ecdsa::Signature::from_slice(&rs)
                .map(|sig| sig.to_der().as_bytes().to_vec())
                .map_err(|e| format!("the TPM returned an invalid ECDSA signature ({e})"))
        }
        (Signature::EcDsa(s), Kind::P384) => {
            let rs = fixed_rs(s.signature_r().value(), s.signature_s().value(), 48)?;
            p384::ecdsa::Signature::from_slice(&rs)
                .map(|sig| sig.to_der().as_bytes().to_vec())
                .map_err(|e| format!("the TPM returned an invalid ECDSA signature ({e})"))
        }
        (other, _) => Err(format!(
            "the TPM returned a {:?} signature",
            other.algorithm()
        )),
    }
}

/// `r || s`, each left-padded to `len`.
fn fixed_rs(r: &[u8], s: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let trim = |v: &[u8]| -> Vec<u8> { v.iter().copied().skip_while(|&b| b == 0).collect() };
    let (r, s) = (trim(r), trim(s));
    if r.len() > len || s.len() > len {
        return Err("the TPM returned an oversized ECDSA signature".into());
    }
    let mut out = vec![0u8; 2 * len];
    out[len - r.len()..len].copy_from_slice(&r);
    out[2 * len - s.len()..].copy_from_slice(&s);
    Ok(out)
}

fn null_ticket() -> tss_esapi::Result<HashcheckTicket> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
}

/// Reads the dictionary-attack counters.
fn da_state(ctx: &mut Context) -> Option<DaState> {
    let (data, _) = ctx
        .execute_without_session(|c| {
            c.get_capability(
                CapabilityType::TpmProperties,
                u32::from(PropertyTag::Permanent),
                0x20,
            )
        })
        .ok()?;
    let CapabilityData::TpmProperties(props) = data else {
        return None;
    };
    let get = |tag: PropertyTag| {
        props
            .iter()
            .find(|p| p.property() == tag)
            .map(|p| p.value())
    };
    Some(DaState {
        counter: get(PropertyTag::LockoutCounter)?,
        max_tries: get(PropertyTag::MaxAuthFail)?,
        interval_secs: get(PropertyTag::LockoutInterval)?,
        in_lockout: get(PropertyTag::Permanent).is_some_and(|p| p & (1 << 9) != 0),
    })
}

fn hash_alg(d: Digest) -> HashingAlgorithm {
    match d {
        Digest::Sha256 => HashingAlgorithm::Sha256,
        Digest::Sha384 => HashingAlgorithm::Sha384,
        Digest::Sha512 => HashingAlgorithm::Sha512,
    }
}

fn digest_len(h: HashingAlgorithm) -> usize {
    match h {
        HashingAlgorithm::Sha384 => 48,
        HashingAlgorithm::Sha512 => 64,
        _ => 32,
    }
}

fn hash_name(h: HashingAlgorithm) -> &'static str {
    match h {
        HashingAlgorithm::Sha256 => "SHA-256",
        HashingAlgorithm::Sha384 => "SHA-384",
        HashingAlgorithm::Sha512 => "SHA-512",
        _ => "another hash",
    }
}

fn kind(e: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match e {
        tss_esapi::Error::Tss2Error(rc) if is_tpm_layer(rc) => rc.kind(),
        _ => None,
    }
}

/// Whether a response code comes from the TPM itself (layer 0), not from the
/// TSS (ESYS, TCTI...), whose codes tss-esapi would misread as TPM codes.
fn is_tpm_layer(rc: &Tss2ResponseCode) -> bool {
    rc_value(rc).is_some_and(|v| v >> 16 == 0)
}

fn rc_value(rc: &Tss2ResponseCode) -> Option<u32> {
    let text = match rc {
        Tss2ResponseCode::Success => return Some(0),
        Tss2ResponseCode::FormatZero(c) => c.to_string(),
        Tss2ResponseCode::FormatOne(c) => c.to_string(),
    };
    let hex = text.rsplit("0x").next()?;
    u32::from_str_radix(hex, 16).ok()
}

fn rc_hex(e: &tss_esapi::Error) -> Option<String> {
    match e {
        tss_esapi::Error::Tss2Error(rc) => rc_value(rc).map(|v| format!("{v:#x}")),
        tss_esapi::Error::WrapperError(_) => None,
    }
}

/// tss-esapi's description, with the raw code.
fn tss_reason(e: &tss_esapi::Error) -> String {
    match (e, rc_hex(e)) {
        (tss_esapi::Error::Tss2Error(rc), Some(code)) if is_tpm_layer(rc) => {
            format!("{e}, TPM_RC {code}")
        }
        (tss_esapi::Error::Tss2Error(_), Some(code)) => format!("TSS2 error {code}"),
        _ => e.to_string(),
    }
}

fn load_reason(e: &tss_esapi::Error, parent: u32) -> String {
    match kind(e) {
        Some(Tss2ResponseCodeKind::Integrity) => format!(
            "the key was not created under parent {parent:#010x} of this TPM (integrity check failed)"
        ),
        _ => tss_reason(e),
    }
}

fn command_error(key: &str, command: &'static str, e: &tss_esapi::Error) -> TpmError {
    TpmError::Command {
        key: key.to_string(),
        command,
        reason: tss_reason(e),
    }
}
