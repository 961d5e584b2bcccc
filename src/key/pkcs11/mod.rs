//! Keys and certificates on PKCS#11 tokens (smart cards, HSMs, YubiKeys, SoftHSM2).
//!
//! The module is loaded at run time with cryptoki (no link-time dependency):
//! `--pkcs11-lib` first, then the URI's `module-path`/`module-name`, then
//! p11-kit-proxy. Objects are named by RFC 7512 URIs ([`uri`]).
//!
//! Unlike the reference helper:
//! - the key is matched to the certificate by `CKA_ID` and by public key
//!   (`CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`, `CKA_EC_POINT`, the public-key object or
//!   the certificate with the same `CKA_ID`), never by signing trial messages;
//! - ambiguity (several tokens, certificates or keys) is an error listing the
//!   candidates' URIs;
//! - the PIN comes from the URI (`pin-value`, `pin-source`) or the
//!   [`PasswordSource`] (environment, file, a prompt only with a terminal); a wrong
//!   PIN is reported with the token's retry-counter flags and never retried;
//!   tokens without `CKF_LOGIN_REQUIRED` are not logged in;
//! - the module and session stay open for the key's lifetime ([`Pkcs11Key`]), with
//!   a new login only when the token answers `CKR_USER_NOT_LOGGED_IN`;
//! - the chain sent with a token certificate holds only the issuers on the path
//!   from the leaf (subject/issuer and AKI/SKI), not every certificate on the token.

mod module;
mod object;
mod signer;
mod token;
pub mod uri;

use self::module::*;
use self::object::*;
pub use self::signer::Pkcs11Key;
use self::signer::*;
use self::token::*;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

pub(crate) use self::object::check_type;
pub use self::uri::Pkcs11Uri;
use self::uri::{ObjectType, UriError};
use super::{Digest, KeyError, PasswordSource, PublicKey, SecretKind, SignError, SigningKey};
use crate::cert::{CertError, Certificate};
use crate::error::{ErrorKind, Field};

/// Modules tried, in order, when neither `--pkcs11-lib` nor the URI names one.
pub const DEFAULT_MODULES: &[&str] = &[
    "p11-kit-proxy.so",
    "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
];

/// Directories searched for a URI's `module-name` after the loader's own path.
pub const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/softhsm",
];

/// How to reach the token, beyond the URIs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Pkcs11Options {
    /// The module to load (wins over the URIs' `module-path`/`module-name`; default
    /// p11-kit-proxy).
    pub module: Option<PathBuf>,
    /// Use the user PIN for `CKA_ALWAYS_AUTHENTICATE` keys too.
    pub reuse_pin: bool,
}

impl Pkcs11Options {
    /// With the module to load.
    pub fn with_module(mut self, module: impl Into<PathBuf>) -> Self {
        self.module = Some(module.into());
        self
    }

    /// Whether to reuse the user PIN for `CKA_ALWAYS_AUTHENTICATE` keys.
    pub fn with_reuse_pin(mut self, reuse_pin: bool) -> Self {
        self.reuse_pin = reuse_pin;
        self
    }
}

/// Using a PKCS#11 token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// A URI does not parse.
    #[error("{} is not a valid PKCS#11 URI", field.map_or_else(|| "a value".to_string(), |f| f.to_string()))]
    BadUri {
        /// The setting it was given for (`None`: a URI inside another one).
        field: Option<crate::error::Field>,
        /// What is wrong.
        #[source]
        source: UriError,
    },
    /// No module could be loaded.
    #[error("cannot load a PKCS#11 module: tried {}", tried.join("; "))]
    ModuleNotLoadable {
        /// Each candidate with the reason it failed.
        tried: Vec<String>,
    },
    /// A module call failed outside any token.
    #[error("PKCS#11 module {module}: {function} failed: {rv}")]
    Module {
        /// The module.
        module: String,
        /// The PKCS#11 function.
        function: &'static str,
        /// The return value, e.g. `CKR_GENERAL_ERROR`.
        rv: String,
    },
    /// No token matches the URI.
    #[error("no token matches {uri} (tokens present: {})", list_or_none(present))]
    NoToken {
        /// The URI, without its query.
        uri: String,
        /// The tokens the module offers.
        present: Vec<String>,
    },
    /// Several tokens match and nothing decides between them.
    #[error("several tokens match {uri}: {}", candidates.join(", "))]
    SeveralTokens {
        /// The URI, without its query.
        uri: String,
        /// The matching tokens' URIs.
        candidates: Vec<String>,
    },
    /// No certificate matches.
    #[error("no certificate matches {uri}")]
    NoCertificate {
        /// The URI, without its query.
        uri: String,
    },
    /// Several certificates match.
    #[error("several certificates match {uri}: {}", candidates.join(", "))]
    SeveralCertificates {
        /// The URI, without its query.
        uri: String,
        /// The matching certificates' URIs.
        candidates: Vec<String>,
    },
    /// No private key matches.
    #[error("no private key matches {uri}")]
    NoKey {
        /// The URI, without its query.
        uri: String,
    },
    /// Private keys match the URI, but none belongs to the certificate.
    #[error("no private key matching {uri} belongs to certificate {certificate} (candidates: {})", candidates.join(", "))]
    NoMatchingKey {
        /// The key URI, without its query.
        uri: String,
        /// The certificate (file or URI).
        certificate: String,
        /// The keys that were looked at.
        candidates: Vec<String>,
    },
    /// Several private keys match.
    #[error("several private keys match {uri}: {}", candidates.join(", "))]
    SeveralKeys {
        /// The URI, without its query.
        uri: String,
        /// The matching keys' URIs.
        candidates: Vec<String>,
    },
    /// The key's public half cannot be read, and nothing else identifies it.
    #[error(
        "cannot read the public key of private key {uri}: the token exposes neither its public key nor a certificate with the same CKA_ID"
    )]
    NoPublicKey {
        /// The key URI.
        uri: String,
    },
    /// The key is of a kind Roles Anywhere does not sign with.
    #[error(
        "private key {uri} is an unsupported {kind} key; use RSA (2048 bits or more) or EC P-256/P-384"
    )]
    UnsupportedKey {
        /// The key URI.
        uri: String,
        /// What it is.
        kind: String,
    },
    /// The token needs a PIN and none was available.
    #[error("token {token} needs its user PIN and none was given")]
    PinRequired {
        /// The token URI.
        token: String,
    },
    /// A `CKA_ALWAYS_AUTHENTICATE` key needs a PIN for each signature and none was available.
    #[error(
        "private key {uri} needs a PIN for every signature (CKA_ALWAYS_AUTHENTICATE) and none was given"
    )]
    KeyPinRequired {
        /// The key URI.
        uri: String,
    },
    /// The token refused the PIN.
    #[error("wrong user PIN for token {token} (not retried); the token reports {state}")]
    WrongPin {
        /// The token URI.
        token: String,
        /// The retry-counter flags, e.g. `CKF_USER_PIN_COUNT_LOW (few tries left)`.
        state: String,
    },
    /// The PIN is locked.
    #[error("the user PIN of token {token} is locked (CKF_USER_PIN_LOCKED)")]
    PinLocked {
        /// The token URI.
        token: String,
    },
    /// The token will lock the PIN at the next failure: iamra does not risk it.
    #[error(
        "token {token} reports CKF_USER_PIN_FINAL_TRY: one more wrong PIN locks it, so iamra does not try one"
    )]
    PinFinalTry {
        /// The token URI.
        token: String,
    },
    /// The token refused the PIN earlier in this process: it is not offered again.
    #[error(
        "token {token} refused the PIN earlier; iamra does not try it again until restarted with the right PIN"
    )]
    PinNotRetried {
        /// The token URI.
        token: String,
    },
    /// The `pin-source` file could not be read.
    #[error("cannot read the PIN from pin-source {}", path.display())]
    PinSource {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::input::ReadError,
    },
    /// The PIN (from any source) is not usable.
    #[error("the PIN for token {token} {reason}")]
    BadPin {
        /// The token URI.
        token: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading the PIN from the password source failed.
    #[error(transparent)]
    Password(#[from] KeyError),
    /// A call on a token failed.
    #[error("{function} on {uri} failed: {rv}")]
    Token {
        /// The token or object URI.
        uri: String,
        /// The PKCS#11 function.
        function: &'static str,
        /// The return value.
        rv: String,
    },
    /// A certificate on the token is unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The key does not belong to the certificate.
    #[error("private key {key} does not match certificate {certificate}")]
    Mismatch {
        /// The key URI.
        key: String,
        /// The certificate.
        certificate: String,
    },
}

impl Pkcs11Error {
    /// What kind of failure this is: a refused (or locked) PIN is
    /// [`ErrorKind::Authentication`]; a module or token call that failed is
    /// [`ErrorKind::Transient`] (a token pulled out, a busy HSM); the rest is
    /// [`ErrorKind::Configuration`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Pkcs11Error::WrongPin { .. }
            | Pkcs11Error::PinLocked { .. }
            | Pkcs11Error::PinFinalTry { .. }
            | Pkcs11Error::PinNotRetried { .. } => ErrorKind::Authentication,
            Pkcs11Error::Module { .. } | Pkcs11Error::Token { .. } => ErrorKind::Transient,
            Pkcs11Error::Password(e) => e.kind(),
            Pkcs11Error::BadUri { .. }
            | Pkcs11Error::ModuleNotLoadable { .. }
            | Pkcs11Error::NoToken { .. }
            | Pkcs11Error::SeveralTokens { .. }
            | Pkcs11Error::NoCertificate { .. }
            | Pkcs11Error::SeveralCertificates { .. }
            | Pkcs11Error::NoKey { .. }
            | Pkcs11Error::NoMatchingKey { .. }
            | Pkcs11Error::SeveralKeys { .. }
            | Pkcs11Error::NoPublicKey { .. }
            | Pkcs11Error::UnsupportedKey { .. }
            | Pkcs11Error::PinRequired { .. }
            | Pkcs11Error::KeyPinRequired { .. }
            | Pkcs11Error::PinSource { .. }
            | Pkcs11Error::BadPin { .. }
            | Pkcs11Error::Cert(_)
            | Pkcs11Error::Mismatch { .. } => ErrorKind::Configuration,
        }
    }

    /// Whether the token refused (or would lock on) a PIN: trying again would
    /// count towards locking it.
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `CKR_PIN_INCORRECT` from cryptoki's `PinIncorrect`.
fn rv_name(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => {
            let debug = format!("{rv:?}");
            let name = debug.split('(').next().unwrap_or(&debug);
            let mut out = String::from("CKR");
            for c in name.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        CkError::LibraryLoading(e) => e.to_string(),
        other => other.to_string(),
    }
}

fn is_rv(e: &CkError, want: RvError) -> bool {
    matches!(e, CkError::Pkcs11(rv, _) if *rv == want)
}

// ---------------------------------------------------------------------------------
// Loading

/// A certificate and its key, both from tokens.
#[derive(Debug)]
pub struct TokenIdentity {
    /// The key.
    pub key: Pkcs11Key,
    /// The leaf certificate.
    pub certificate: Certificate,
    /// The issuers on the path from the leaf found on the token (roots excluded).
    pub chain: Vec<Certificate>,
}

/// A certificate found on a token, for `read-certificate-data`.
#[derive(Debug, Clone)]
pub struct ListedCertificate {
    /// The object's URI.
    pub uri: String,
    /// The certificate.
    pub certificate: Certificate,
}

/// Finds exactly one end-entity certificate for `uri`, logging in when the token
/// hides its certificates. Returns the open session on the certificate's token.
fn find_certificate(
    module: &Module,
    uri: &Pkcs11Uri,
    pins: &PinSources<'_>,
) -> Result<(TokenCert, TokenSession, Option<SecretString>), Pkcs11Error> {
    let (tokens, present) = matching_tokens(module, uri)?;
    if tokens.is_empty() {
        return Err(Pkcs11Error::NoToken {
            uri: uri.to_string(),
            present,
        });
    }
    let mut sessions = Vec::new();
    let mut found: Vec<(usize, TokenCert)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let ts = open_session(module, token)?;
        for c in read_certs(&ts, uri.id.as_deref(), uri.object.as_deref())? {
            if !c.certificate.is_ca() {
                found.push((i, c));
            }
        }
        sessions.push(ts);
    }
    let mut pin = None;
    if found.is_empty() && sessions.len() == 1 && sessions[0].token.info.login_required() {
        // Private certificate objects are visible only after login.
        pin = login(module, &mut sessions[0], pins)?;
        for c in read_certs(&sessions[0], uri.id.as_deref(), uri.object.as_deref())? {
            if !c.certificate.is_ca() {
                found.push((0, c));
            }
        }
    }
    match found.len() {
        0 => Err(Pkcs11Error::NoCertificate {
            uri: uri.to_string(),
        }),
        1 => {
            let (i, cert) = found.remove(0);
            let ts = sessions.swap_remove(i);
            Ok((cert, ts, pin))
        }
        _ => Err(Pkcs11Error::SeveralCertificates {
            uri: uri.to_string(),
            candidates: sorted(found.into_iter().map(|(_, c)| c.uri)),
        }),
    }
}

/// Chooses the private key on `ts` for `cert` (or alone when `cert` is `None`).
fn find_key(
    module: &Module,
    ts: &mut TokenSession,
    key_uri: &Pkcs11Uri,
    explicit: bool,
    cert: Option<(&Certificate, &[u8])>,
    pins: &PinSources<'_>,
) -> Result<(KeyObject, Option<SecretString>), Pkcs11Error> {
    let pin = login(module, ts, pins)?;
    // A key URI derived from the certificate URI searches by the certificate's
    // CKA_ID (its label may differ from the key's), then by public key.
    let (id, label): (Option<&[u8]>, Option<&str>) = match (explicit, cert) {
        (false, Some((_, cert_id))) if !cert_id.is_empty() => (Some(cert_id), None),
        _ => (key_uri.id.as_deref(), key_uri.object.as_deref()),
    };
    let mut handles = find(ts, &object_template(ObjectClass::PRIVATE_KEY, id, label))?;
    if handles.is_empty() && !explicit && cert.is_some() {
        handles = find(ts, &object_template(ObjectClass::PRIVATE_KEY, None, None))?;
    }
    let uri_text = key_uri.to_string();
    if handles.is_empty() {
        return Err(Pkcs11Error::NoKey { uri: uri_text });
    }
    let keys = handles
        .into_iter()
        .map(|h| read_key(ts, h))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((cert, cert_id)) = cert else {
        let mut keys = keys;
        if keys.len() > 1 {
            return Err(Pkcs11Error::SeveralKeys {
                uri: uri_text,
                candidates: sorted(keys.into_iter().map(|k| k.uri)),
            });
        }
        let key = keys.remove(0);
        if let Err(kind) = &key.kind {
            return Err(Pkcs11Error::UnsupportedKey {
                uri: key.uri,
                kind: kind.clone(),
            });
        }
        if key.public_key.is_none() {
            return Err(Pkcs11Error::NoPublicKey { uri: key.uri });
        }
        return Ok((key, pin));
    };
    let want = cert.public_key();
    let (matching, rest): (Vec<KeyObject>, Vec<KeyObject>) = keys
        .into_iter()
        .partition(|k| k.public_key.as_ref() == Some(want));
    if matching.len() > 1 {
        return Err(Pkcs11Error::SeveralKeys {
            uri: uri_text,
            candidates: sorted(matching.into_iter().map(|k| k.uri)),
        });
    }
    if let Some(key) = matching.into_iter().next() {
        if let Err(kind) = &key.kind {
            return Err(Pkcs11Error::UnsupportedKey {
                uri: key.uri,
                kind: kind.clone(),
            });
        }
        return Ok((key, pin));
    }
    // No key proves itself by public key. One key of the certificate's kind whose
    // public half the token hides, selected by the certificate's CKA_ID or by an
    // explicit id/label, is taken: it is the only possible match.
    let want_kind = match want {
        PublicKey::Rsa { .. } => KeyKind::Rsa,
        PublicKey::P256(_) => KeyKind::P256,
        PublicKey::P384(_) => KeyKind::P384,
        PublicKey::MlDsa { set, .. } => {
            return Err(Pkcs11Error::UnsupportedKey {
                uri: uri_text,
                kind: format!("{} (ML-DSA signs from key files only)", set.name()),
            });
        }
    };
    let unknown: Vec<&KeyObject> = rest
        .iter()
        .filter(|k| k.public_key.is_none() && k.kind.as_ref().ok() == Some(&want_kind))
        .collect();
    let selected = explicit && (key_uri.id.is_some() || key_uri.object.is_some())
        || unknown
            .first()
            .is_some_and(|k| !cert_id.is_empty() && k.id == cert_id);
    if unknown.len() == 1 && rest.len() == 1 && selected {
        let key = rest
            .into_iter()
            .next()
            .ok_or(Pkcs11Error::NoKey { uri: uri_text })?;
        tracing::debug!(key = %key.uri, "public key not readable; matched by CKA_ID/label and key type");
        return Ok((key, pin));
    }
    Err(Pkcs11Error::NoMatchingKey {
        uri: uri_text,
        certificate: cert.source().display().to_string(),
        candidates: sorted(rest.into_iter().map(|k| k.uri)),
    })
}

fn make_key(
    module: Arc<Module>,
    ts: TokenSession,
    key: KeyObject,
    user_pin: Option<SecretString>,
    public_key: PublicKey,
    opts: &Pkcs11Options,
    pins: &PinSources<'_>,
) -> Result<Pkcs11Key, Pkcs11Error> {
    let kind = key
        .kind
        .clone()
        .map_err(|kind| Pkcs11Error::UnsupportedKey {
            uri: key.uri.clone(),
            kind,
        })?;
    if let PublicKey::Rsa { bits, .. } = &public_key
        && *bits < 2048
    {
        return Err(Pkcs11Error::UnsupportedKey {
            uri: key.uri,
            kind: format!("RSA-{bits}"),
        });
    }
    let mechanisms = module
        .ctx
        .get_mechanism_list(ts.token.slot)
        .unwrap_or_default();
    let rsa = if kind == KeyKind::Rsa
        && !mechanisms.contains(&MechanismType::SHA256_RSA_PKCS)
        && mechanisms.contains(&MechanismType::RSA_PKCS)
    {
        RsaMechanism::Raw
    } else {
        RsaMechanism::Hashing
    };
    let ecdsa_sha256 = mechanisms.contains(&MechanismType::ECDSA_SHA256);
    let context_pin = if key.always_authenticate {
        let pin = if opts.reuse_pin {
            match &user_pin {
                Some(p) => Some(p.clone()),
                None => pins.user_pin(&ts.token)?,
            }
        } else {
            pins.passwords
                .password(SecretKind::Pkcs11Pin, Path::new(&key.uri))?
        };
        if pin.is_none() {
            return Err(Pkcs11Error::KeyPinRequired { uri: key.uri });
        }
        pin
    } else {
        None
    };
    tracing::debug!(key = %key.uri, always_authenticate = key.always_authenticate, "PKCS#11 key selected");
    Ok(Pkcs11Key {
        state: Mutex::new(KeyState {
            session: ts,
            handle: key.handle,
            user_pin,
            context_pin,
            refused: false,
            rsa,
        }),
        uri: key.uri,
        kind,
        public_key,
        always_authenticate: key.always_authenticate,
        ecdsa_sha256,
        module,
    })
}

/// Issuers of `leaf` found in `pool`, in path order, roots excluded. An issuer
/// must be a CA whose subject is the child's issuer and, where both carry key
/// identifiers, whose SKI is the child's AKI.
pub fn issuers_on_path(leaf: &Certificate, pool: &[Certificate]) -> Vec<Certificate> {
    struct Facts {
        subject: Vec<u8>,
        issuer: Vec<u8>,
        ski: Option<Vec<u8>>,
        aki: Option<Vec<u8>>,
    }
    fn facts(der: &[u8]) -> Option<Facts> {
        use x509_parser::extensions::ParsedExtension;
        use x509_parser::prelude::FromDer as _;
        let (_, x) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
        let mut ski = None;
        let mut aki = None;
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                _ => {}
            }
        }
        Some(Facts {
            subject: x.subject().as_raw().to_vec(),
            issuer: x.issuer().as_raw().to_vec(),
            ski,
            aki,
        })
    }
    let pool: Vec<(&Certificate, Facts)> = pool
        .iter()
        .filter(|c| c.is_ca())
        .filter_map(|c| facts(c.der()).map(|f| (c, f)))
        .collect();
    let mut chain: Vec<Certificate> = Vec::new();
    let Some(mut current) = facts(leaf.der()) else {
        return chain;
    };
    for _ in 0..8 {
        let next = pool.iter().find(|(c, f)| {
            f.subject == current.issuer
                && match (&current.aki, &f.ski) {
                    (Some(aki), Some(ski)) => aki == ski,
                    _ => true,
                }
                && c.der() != leaf.der()
                && !chain.iter().any(|k| k.der() == c.der())
        });
        let Some((cert, f)) = next else {
            break;
        };
        if f.subject == f.issuer {
            break; // a root: the trust anchor has it
        }
        chain.push((*cert).clone());
        current = Facts {
            subject: f.subject.clone(),
            issuer: f.issuer.clone(),
            ski: f.ski.clone(),
            aki: f.aki.clone(),
        };
    }
    chain
}

fn token_chain(ts: &TokenSession, leaf: &Certificate) -> Result<Vec<Certificate>, Pkcs11Error> {
    let pool: Vec<Certificate> = read_certs(ts, None, None)?
        .into_iter()
        .map(|c| c.certificate)
        .collect();
    let chain = issuers_on_path(leaf, &pool);
    tracing::debug!(
        chain = ?chain.iter().map(Certificate::subject).collect::<Vec<_>>(),
        "chain from the token"
    );
    Ok(chain)
}

/// Loads a certificate from the token `cert_uri` names and its private key from
/// `key_uri` (default: the certificate's token, by `CKA_ID` and public key). The
/// chain holds the certificate's issuers found on its token when `want_chain`.
pub fn load_identity(
    cert_u: &Pkcs11Uri,
    key_u: Option<&Pkcs11Uri>,
    want_chain: bool,
    opts: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<TokenIdentity, Pkcs11Error> {
    check_type(cert_u, Field::Certificate)?;
    if let Some(k) = key_u {
        check_type(k, Field::PrivateKey)?;
    }
    let mut uris = Vec::new();
    uris.extend(key_u);
    uris.push(cert_u);
    let module = load_module(opts, &uris)?;
    let pins = PinSources { uris, passwords };
    let (cert, cert_ts, cert_pin) = find_certificate(&module, cert_u, &pins)?;
    let chain = if want_chain {
        token_chain(&cert_ts, &cert.certificate)?
    } else {
        Vec::new()
    };
    let (mut key_ts, explicit, key_uri_eff) = match key_u {
        None => (cert_ts, false, cert_u),
        Some(k) => {
            let (tokens, present) = matching_tokens(&module, k)?;
            if tokens.iter().any(|t| t.slot == cert_ts.token.slot) {
                (cert_ts, true, k)
            } else {
                match tokens.len() {
                    0 => {
                        return Err(Pkcs11Error::NoToken {
                            uri: k.to_string(),
                            present,
                        });
                    }
                    1 => (open_session(&module, &tokens[0])?, true, k),
                    _ => {
                        return Err(Pkcs11Error::SeveralTokens {
                            uri: k.to_string(),
                            candidates: sorted(tokens.iter().map(Token::uri_string)),
                        });
                    }
                }
            }
        }
    };
    let (key, login_pin) = find_key(
        &module,
        &mut key_ts,
        key_uri_eff,
        explicit,
        Some((&cert.certificate, &cert.id)),
        &pins,
    )?;
    let user_pin = login_pin.or(cert_pin);
    let public_key = cert.certificate.public_key().clone();
    let key = make_key(module, key_ts, key, user_pin, public_key, opts, &pins)?;
    Ok(TokenIdentity {
        key,
        certificate: cert.certificate,
        chain,
    })
}

/// Loads the private key `key_uri` names for a certificate read from a file.
pub fn load_key_for_certificate(
    key_u: &Pkcs11Uri,
    certificate: &Certificate,
    opts: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<Pkcs11Key, Pkcs11Error> {
    check_type(key_u, Field::PrivateKey)?;
    let module = load_module(opts, &[key_u])?;
    let pins = PinSources {
        uris: vec![key_u],
        passwords,
    };
    let token = one_token(&module, key_u)?;
    let mut ts = open_session(&module, &token)?;
    let (key, pin) = find_key(
        &module,
        &mut ts,
        key_u,
        true,
        Some((certificate, &[])),
        &pins,
    )?;
    let public_key = certificate.public_key().clone();
    make_key(module, ts, key, pin, public_key, opts, &pins)
}

/// Loads the private key `key_uri` names, without a certificate (exactly one key
/// must match; `sign-string`).
pub fn load_key(
    key_u: &Pkcs11Uri,
    opts: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<Pkcs11Key, Pkcs11Error> {
    check_type(key_u, Field::PrivateKey)?;
    let module = load_module(opts, &[key_u])?;
    let pins = PinSources {
        uris: vec![key_u],
        passwords,
    };
    let token = one_token(&module, key_u)?;
    let mut ts = open_session(&module, &token)?;
    let (key, pin) = find_key(&module, &mut ts, key_u, true, None, &pins)?;
    let public_key = key
        .public_key
        .clone()
        .ok_or_else(|| Pkcs11Error::NoPublicKey {
            uri: key.uri.clone(),
        })?;
    make_key(module, ts, key, pin, public_key, opts, &pins)
}

/// Loads only the certificate (and its issuers on the token) `cert_uri` names.
pub fn load_certificate(
    cert_u: &Pkcs11Uri,
    want_chain: bool,
    opts: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<(Certificate, Vec<Certificate>), Pkcs11Error> {
    check_type(cert_u, Field::Certificate)?;
    let module = load_module(opts, &[cert_u])?;
    let pins = PinSources {
        uris: vec![cert_u],
        passwords,
    };
    let (cert, ts, _) = find_certificate(&module, cert_u, &pins)?;
    let chain = if want_chain {
        token_chain(&ts, &cert.certificate)?
    } else {
        Vec::new()
    };
    Ok((cert.certificate, chain))
}

/// Every certificate matching `uri` on every matching token (CA certificates
/// included), for `read-certificate-data`. Logs in only when one token matches,
/// it requires login and shows no certificate without it.
pub fn list_certificates(
    u: &Pkcs11Uri,
    opts: &Pkcs11Options,
    passwords: &dyn PasswordSource,
) -> Result<Vec<ListedCertificate>, Pkcs11Error> {
    check_type(u, Field::Certificate)?;
    let module = load_module(opts, &[u])?;
    let pins = PinSources {
        uris: vec![u],
        passwords,
    };
    let (tokens, _) = matching_tokens(&module, u)?;
    let mut out = Vec::new();
    let mut sessions = Vec::new();
    for token in &tokens {
        let ts = open_session(&module, token)?;
        out.extend(read_certs(&ts, u.id.as_deref(), u.object.as_deref())?);
        sessions.push(ts);
    }
    if out.is_empty() && sessions.len() == 1 && sessions[0].token.info.login_required() {
        // Private certificate objects show only after login; without a PIN the
        // public view is the answer.
        match login(&module, &mut sessions[0], &pins) {
            Ok(_) => out.extend(read_certs(
                &sessions[0],
                u.id.as_deref(),
                u.object.as_deref(),
            )?),
            Err(Pkcs11Error::PinRequired { .. }) => {
                tracing::debug!("no PIN: private certificate objects not searched");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out
        .into_iter()
        .map(|c| ListedCertificate {
            uri: c.uri,
            certificate: c.certificate,
        })
        .collect())
}

/// Keeps PKCS#11 modules loaded and initialised while it lives (see
/// [`hold_modules`]). `C_Finalize` runs when the last holder, this or a key, is
/// dropped.
pub struct ModuleHold(Vec<Arc<Module>>);

impl std::fmt::Debug for ModuleHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|m| &m.name))
            .finish()
    }
}

/// Loads and initialises the module each of `uris` uses (as [`resolve`] and a key
/// load choose it) and keeps it so while the returned hold lives: a key loaded in
/// the meantime, in this process, uses the same instance instead of loading and
/// initialising the module again (SoftHSM2's `C_Initialize` reads its whole token
/// folder, for one). A module that does not load is left out; loading the key
/// reports it.
pub fn hold_modules(uris: &[&Pkcs11Uri], opts: &Pkcs11Options) -> ModuleHold {
    ModuleHold(
        uris.iter()
            .filter_map(|u| load_module(opts, &[u]).ok())
            .collect(),
    )
}

/// What `uri` selects right now, without logging in, for keys of caches: the
/// module, and per matching token its serial number with the id and a digest of
/// each certificate object the URI names. Two runs that would use another token or
/// another certificate get different text; the PIN is never part of it.
pub fn resolve(uri: &Pkcs11Uri, opts: &Pkcs11Options) -> Result<String, Pkcs11Error> {
    use std::fmt::Write as _;
    let module = load_module(opts, &[uri])?;
    let (tokens, _) = matching_tokens(&module, uri)?;
    let mut out = format!("module={};", module.name);
    for token in &tokens {
        let _ = write!(out, "token={};", token.info.serial_number());
        let ts = open_session(&module, token)?;
        for c in read_certs(&ts, uri.id.as_deref(), uri.object.as_deref())? {
            let digest = ring::digest::digest(&ring::digest::SHA256, c.certificate.der());
            let _ = write!(
                out,
                "cert={}:{};",
                hex::encode(&c.id),
                hex::encode(digest.as_ref())
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rv_names_follow_the_specification() {
        let e = CkError::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login);
        assert_eq!(rv_name(&e), "CKR_PIN_INCORRECT");
        let e = CkError::Pkcs11(RvError::UserNotLoggedIn, cryptoki::context::Function::Sign);
        assert_eq!(rv_name(&e), "CKR_USER_NOT_LOGGED_IN");
    }

    #[test]
    fn rsa_public_key_is_canonical_pkcs1() {
        let pk = rsa_public_key(&[0x00, 0xc1, 0x02], &[0x01, 0x00, 0x01]);
        let PublicKey::Rsa { pkcs1, bits } = pk else {
            panic!("not RSA");
        };
        assert_eq!(
            pkcs1,
            [
                0x30, 0x0a, 0x02, 0x03, 0x00, 0xc1, 0x02, 0x02, 0x03, 0x01, 0x00, 0x01
            ]
        );
        assert_eq!(bits, 16);
    }

    #[test]
    fn ec_point_accepts_der_and_raw() {
        let mut raw = vec![0x04];
        raw.extend([7u8; 64]);
        let mut der = vec![0x04, 0x41];
        der.extend(&raw);
        assert_eq!(ec_point(&der, 65), Some(raw.clone()));
        assert_eq!(ec_point(&raw, 65), Some(raw.clone()));
        assert_eq!(ec_point(&raw[..64], 65), None);
    }

    #[test]
    fn digest_info_matches_ring_pkcs1_signatures() {
        // CKM_RSA_PKCS over our DigestInfo must equal RSASSA-PKCS1-v1_5: check the
        // encoding against the DER a hashing mechanism would produce.
        let di = digest_info(Digest::Sha256, b"abc");
        assert_eq!(di.len(), 19 + 32);
        assert_eq!(&di[..19], DIGEST_INFO_SHA256);
        assert_eq!(digest_info(Digest::Sha384, b"abc").len(), 19 + 48);
        assert_eq!(digest_info(Digest::Sha512, b"abc").len(), 19 + 64);
    }

    #[test]
    fn ecdsa_raw_to_der() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        assert_eq!(
            ecdsa_der(KeyKind::P256, &raw).unwrap(),
            [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]
        );
        assert!(ecdsa_der(KeyKind::P256, &raw[..63]).is_err());
    }

    #[test]
    fn module_candidates_follow_the_precedence() {
        let uri = Pkcs11Uri::parse("pkcs11:?module-name=softhsm2").unwrap();
        let flag = Pkcs11Options {
            module: Some("/x/flag.so".into()),
            reuse_pin: false,
        };
        assert_eq!(
            module_candidates(&flag, &[&uri]),
            [PathBuf::from("/x/flag.so")]
        );
        let none = Pkcs11Options::default();
        let c = module_candidates(&none, &[&uri]);
        assert_eq!(c[0], PathBuf::from("libsofthsm2.so"));
        let plain = Pkcs11Uri::parse("pkcs11:token=x").unwrap();
        assert_eq!(
            module_candidates(&none, &[&plain]),
            DEFAULT_MODULES
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
    }
}
