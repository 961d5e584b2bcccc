//! [`Pkcs11Key`]: signing through a session kept open for the key's lifetime.

#[allow(clippy::wildcard_imports, reason = "one module split into files")]
use super::*;

/// The RSA signature mechanism in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RsaMechanism {
    /// `CKM_SHA256_RSA_PKCS` (and 384/512): the token hashes.
    Hashing,
    /// `CKM_RSA_PKCS` over a DigestInfo built here.
    Raw,
}

pub(super) struct KeyState {
    pub(super) session: TokenSession,
    pub(super) handle: ObjectHandle,
    /// Kept (zeroized on drop) to log in again if the token forgets the login.
    pub(super) user_pin: Option<SecretString>,
    /// The PIN for `CKA_ALWAYS_AUTHENTICATE` keys.
    pub(super) context_pin: Option<SecretString>,
    pub(super) rsa: RsaMechanism,
    /// Set once the token refused a PIN: no PIN is offered again.
    pub(super) refused: bool,
}

/// A private key on a PKCS#11 token, with its module and session kept open for
/// as long as the value lives (one login for every signature of `update`/`serve`).
pub struct Pkcs11Key {
    // Field order matters: the session closes before the module is finalised.
    pub(super) state: Mutex<KeyState>,
    pub(super) uri: String,
    pub(super) kind: KeyKind,
    pub(super) public_key: PublicKey,
    pub(super) always_authenticate: bool,
    /// Whether the token offers `CKM_ECDSA_SHA256` (used for always-authenticate keys).
    pub(super) ecdsa_sha256: bool,
    pub(super) module: Arc<Module>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: no PIN, no session state.
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.uri)
            .field("kind", &self.kind)
            .field("module", &self.module.name)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// The key's URI (path attributes only).
    pub fn uri(&self) -> &str {
        &self.uri
    }
}

pub(super) const DIGEST_INFO_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
pub(super) const DIGEST_INFO_SHA384: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
pub(super) const DIGEST_INFO_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// The DER `DigestInfo` PKCS#1 v1.5 signs.
pub(super) fn digest_info(digest: Digest, message: &[u8]) -> Vec<u8> {
    let prefix = match digest {
        Digest::Sha256 => DIGEST_INFO_SHA256,
        Digest::Sha384 => DIGEST_INFO_SHA384,
        Digest::Sha512 => DIGEST_INFO_SHA512,
    };
    let mut out = prefix.to_vec();
    out.extend_from_slice(digest.hash(message).as_ref());
    out
}

/// Raw `r || s` to a DER `Ecdsa-Sig-Value`.
pub(super) fn ecdsa_der(kind: KeyKind, raw: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        KeyKind::P256 => p256::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(|_| {
                format!(
                    "the token returned a malformed {}-byte ECDSA signature",
                    raw.len()
                )
            }),
        KeyKind::P384 => p384::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(|_| {
                format!(
                    "the token returned a malformed {}-byte ECDSA signature",
                    raw.len()
                )
            }),
        KeyKind::Rsa => Ok(raw.to_vec()),
    }
}

pub(super) enum Attempt {
    Done(Vec<u8>),
    /// The token refused the `CKA_ALWAYS_AUTHENTICATE` PIN.
    Refused(Pkcs11Error),
    Token(CkError, &'static str),
    Other(String),
}

impl Pkcs11Key {
    fn mechanism(&self, st: &KeyState, digest: Digest) -> Mechanism<'static> {
        match (self.kind, st.rsa) {
            (KeyKind::Rsa, RsaMechanism::Hashing) => match digest {
                Digest::Sha256 => Mechanism::Sha256RsaPkcs,
                Digest::Sha384 => Mechanism::Sha384RsaPkcs,
                Digest::Sha512 => Mechanism::Sha512RsaPkcs,
            },
            (KeyKind::Rsa, RsaMechanism::Raw) => Mechanism::RsaPkcs,
            _ => Mechanism::Ecdsa,
        }
    }

    fn attempt(&self, st: &KeyState, message: &[u8], digest: Digest) -> Attempt {
        let mechanism = self.mechanism(st, digest);
        let data: Zeroizing<Vec<u8>> = Zeroizing::new(match (self.kind, st.rsa) {
            (KeyKind::Rsa, RsaMechanism::Hashing) => message.to_vec(),
            (KeyKind::Rsa, RsaMechanism::Raw) => digest_info(digest, message),
            _ => digest.hash(message).as_ref().to_vec(),
        });
        let session = &st.session.session;
        let raw = if self.always_authenticate {
            // C_SignInit, C_Login(CKU_CONTEXT_SPECIFIC), then the data. cryptoki's
            // single-part sign() re-initialises, so the multi-part calls are used;
            // EC keys use CKM_ECDSA_SHA256 there when the token has it.
            let (mechanism, data): (Mechanism<'static>, &[u8]) =
                if self.kind != KeyKind::Rsa && self.ecdsa_sha256 && digest == Digest::Sha256 {
                    (Mechanism::EcdsaSha256, message)
                } else if self.kind == KeyKind::Rsa {
                    (
                        match digest {
                            Digest::Sha256 => Mechanism::Sha256RsaPkcs,
                            Digest::Sha384 => Mechanism::Sha384RsaPkcs,
                            Digest::Sha512 => Mechanism::Sha512RsaPkcs,
                        },
                        message,
                    )
                } else {
                    (mechanism, &data)
                };
            if let Err(e) = session.sign_init(&mechanism, st.handle) {
                return Attempt::Token(e, "C_SignInit");
            }
            let Some(pin) = st.context_pin.as_ref() else {
                return Attempt::Other(format!(
                    "private key {} needs a PIN for every signature (CKA_ALWAYS_AUTHENTICATE)",
                    self.uri
                ));
            };
            match session.login(UserType::ContextSpecific, Some(pin)) {
                Ok(()) => {}
                Err(e) if is_rv(&e, RvError::PinIncorrect) => {
                    return Attempt::Refused(Pkcs11Error::WrongPin {
                        token: self.uri.clone(),
                        state: pin_state(&self.module, &st.session.token),
                    });
                }
                Err(e) if is_rv(&e, RvError::PinLocked) => {
                    return Attempt::Refused(Pkcs11Error::PinLocked {
                        token: self.uri.clone(),
                    });
                }
                Err(e) => return Attempt::Token(e, "C_Login (context specific)"),
            }
            if let Err(e) = session.sign_update(data) {
                return Attempt::Token(e, "C_SignUpdate");
            }
            session.sign_final().map_err(|e| (e, "C_SignFinal"))
        } else {
            session
                .sign(&mechanism, st.handle, &data)
                .map_err(|e| (e, "C_Sign"))
        };
        match raw {
            Ok(raw) => match ecdsa_der(self.kind, &raw) {
                Ok(sig) => Attempt::Done(sig),
                Err(reason) => Attempt::Other(reason),
            },
            Err((e, f)) => Attempt::Token(e, f),
        }
    }
}

impl SigningKey for Pkcs11Key {
    fn public_key(&self) -> PublicKey {
        self.public_key.clone()
    }

    fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.refused {
            return Err(SignError::Pkcs11(Pkcs11Error::PinNotRetried {
                token: st.session.token.uri_string(),
            }));
        }
        let mut relogged = false;
        loop {
            match self.attempt(&st, message, digest) {
                Attempt::Done(sig) => return Ok(sig),
                Attempt::Refused(e) => {
                    st.refused = true;
                    return Err(SignError::Pkcs11(e));
                }
                Attempt::Other(reason) => return Err(SignError::Backend(reason)),
                Attempt::Token(e, _)
                    if is_rv(&e, RvError::UserNotLoggedIn)
                        && !relogged
                        && !self.always_authenticate =>
                {
                    // The token forgot the login (reset, another process logged out).
                    tracing::debug!(key = %self.uri, "token says CKR_USER_NOT_LOGGED_IN; logging in again");
                    relogged = true;
                    st.session.logged_in = false;
                    let pin = st.user_pin.clone();
                    let KeyState { session, .. } = &mut *st;
                    if let Err(e) = login_with(&self.module, session, pin.as_ref()) {
                        st.refused = e.is_authentication();
                        return Err(SignError::Pkcs11(e));
                    }
                }
                Attempt::Token(e, _)
                    if self.kind == KeyKind::Rsa
                        && st.rsa == RsaMechanism::Hashing
                        && !self.always_authenticate
                        && (is_rv(&e, RvError::MechanismInvalid)
                            || is_rv(&e, RvError::FunctionNotSupported)) =>
                {
                    tracing::debug!(key = %self.uri, "no hashing RSA mechanism; using CKM_RSA_PKCS over a DigestInfo");
                    st.rsa = RsaMechanism::Raw;
                }
                Attempt::Token(e, function) => {
                    return Err(SignError::Backend(format!(
                        "{function} with private key {} failed: {}",
                        self.uri,
                        rv_name(&e)
                    )));
                }
            }
        }
    }
}
