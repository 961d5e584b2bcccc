//! The library entry point: a builder that loads an identity once and produces
//! temporary credentials, refreshing them before they expire.
//!
//! The identity is files ([`Builder::certificate`], [`Builder::private_key`],
//! [`Builder::intermediates`]), a typed [`IdentitySpec`] ([`Builder::identity`]:
//! PKCS#12, PKCS#11 URIs, TPM handles and key files, with their options), or a key
//! of the caller's own ([`Builder::signing_key`]). Refreshing is the engine of
//! `iamra update` and `iamra serve` ([`Refresher`]); while it fails, credentials
//! that are still valid keep being returned.
//!
//! ```no_run
//! # async fn demo() -> Result<(), iamra::provider::ProviderError> {
//! let provider = iamra::RolesAnywhereProvider::builder()
//!     .certificate("/etc/pki/host.pem")
//!     .private_key("/etc/pki/host.key")
//!     .trust_anchor_arn("arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0")
//!     .profile_arn("arn:aws:rolesanywhere:eu-west-1:111122223333:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d")
//!     .role_arn("arn:aws:iam::111122223333:role/OnPrem")
//!     .build()?;
//! let creds = provider.credentials().await?;
//! println!("{} expires {}", creds.access_key_id(), creds.expiration());
//! # Ok(()) }
//! ```
//!
//! With the `aws-sdk` feature the provider implements
//! `aws_credential_types::provider::ProvideCredentials`, so an SDK program writes
//! `aws_config::defaults(BehaviorVersion::latest()).credentials_provider(provider)`;
//! the SDK's identity cache then asks it again before the credentials expire.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

use crate::cert::Certificate;
use crate::clock::{Clock, SystemClock};
use crate::credentials::TemporaryCredentials;
use crate::error::ErrorKind;
use crate::identity::{
    CertificateSource, Identity, IdentityError, IdentitySpec, KeySource, TpmOptions,
};
use crate::input::Input;
use crate::key::pkcs11::Pkcs11Options;
use crate::key::{FixedPassword, NoPassword, PasswordSource, SigningKey};
use crate::refresh::{RefreshPolicy, Refresher, SessionSource, Snapshot};
use crate::session::{Client, ClientOptions, SessionError, SessionParams};

/// Building a provider, or obtaining credentials from it, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A required setting is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A parameter is invalid.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No credentials are held and the last refresh failed (it is retried in the
    /// background, with backoff). Never holds a secret.
    #[error("{message}")]
    Refresh {
        /// What kind of failure it was.
        kind: ErrorKind,
        /// The refresh error.
        message: String,
    },
    /// Refreshing stopped for good: a PIN or password was refused, or the key is
    /// locked (every further try would count towards a lockout).
    #[error("refreshing stopped: {0}")]
    Stopped(String),
    /// No answer within the wait limit (the client's deadline).
    #[error("no credentials within {}s", .0.as_secs())]
    Timeout(Duration),
}

impl ProviderError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::Missing(_) => ErrorKind::Configuration,
            ProviderError::Identity(e) => e.kind(),
            ProviderError::Session(e) => e.kind(),
            ProviderError::Refresh { kind, .. } => *kind,
            ProviderError::Stopped(_) => ErrorKind::Authentication,
            ProviderError::Timeout(_) => ErrorKind::Transient,
        }
    }
}

/// Builds a [`RolesAnywhereProvider`]; see the module docs.
#[derive(Default)]
pub struct Builder {
    /// The parts of the identity spec (files, PKCS#11, TPM), set in any order and
    /// assembled at `build`; the identity is re-read when its files change.
    certificate: Option<CertificateSource>,
    private_key: Option<KeySource>,
    intermediates: Option<Input>,
    pkcs11: Pkcs11Options,
    tpm: TpmOptions,
    /// The caller's own key with its certificate and chain, checked.
    own: Option<Result<Identity, IdentityError>>,
    trust_anchor_arn: Option<String>,
    profile_arn: Option<String>,
    role_arn: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    duration_seconds: Option<i64>,
    role_session_name: Option<String>,
    options: ClientOptions,
    passwords: Option<Box<dyn PasswordSource>>,
    clock: Option<Arc<dyn Clock>>,
    refresh_before: Option<Duration>,
    allow_plain_http: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: the spec's Debug redacts a URI's pin-value; passwords are not shown.
        f.debug_struct("Builder")
            .field("certificate", &self.certificate)
            .field("private_key", &self.private_key)
            .field(
                "own_key",
                &self
                    .own
                    .as_ref()
                    .map(|o| o.as_ref().map(|i| i.certificate.subject())),
            )
            .field("trust_anchor_arn", &self.trust_anchor_arn)
            .field("profile_arn", &self.profile_arn)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Certificate file (PEM, DER, combined PEM or PKCS#12 bundle).
    pub fn certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(CertificateSource::file(path));
        self
    }
    /// Private key file (defaults to the certificate file).
    pub fn private_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.private_key = Some(KeySource::file(path));
        self
    }
    /// Intermediate certificates (PEM bundle), sent as `X-Amz-X509-Chain`.
    pub fn intermediates(mut self, path: impl Into<PathBuf>) -> Self {
        self.intermediates = Some(Input::file(path));
        self
    }
    /// The whole identity as a typed spec: files, PKCS#12, PKCS#11 URIs, TPM keys,
    /// with their options (replaces the file settings above).
    pub fn identity(mut self, spec: IdentitySpec) -> Self {
        let IdentitySpec {
            certificate,
            private_key,
            intermediates,
            pkcs11,
            tpm,
        } = spec;
        self.certificate = Some(certificate);
        self.private_key = private_key;
        self.intermediates = intermediates;
        self.pkcs11 = pkcs11;
        self.tpm = tpm;
        self
    }
    /// PKCS#11 options (module, PIN reuse) for the spec's URIs.
    pub fn pkcs11_options(mut self, options: Pkcs11Options) -> Self {
        self.pkcs11 = options;
        self
    }
    /// TPM options (which TPM, a handle without password).
    pub fn tpm_options(mut self, options: TpmOptions) -> Self {
        self.tpm = options;
        self
    }
    /// A signing key of the caller's own (an HSM of theirs, say) with its
    /// certificate and the intermediates to send; the key is checked against the
    /// certificate at [`build`](Self::build).
    pub fn signing_key(
        mut self,
        key: Box<dyn SigningKey>,
        certificate: Certificate,
        chain: Vec<Certificate>,
    ) -> Self {
        self.own = Some(Identity::new(key, certificate, chain));
        self
    }
    /// Trust anchor ARN (required); its region is the default region.
    pub fn trust_anchor_arn(mut self, arn: impl Into<String>) -> Self {
        self.trust_anchor_arn = Some(arn.into());
        self
    }
    /// Profile ARN (required).
    pub fn profile_arn(mut self, arn: impl Into<String>) -> Self {
        self.profile_arn = Some(arn.into());
        self
    }
    /// Role ARN (required).
    pub fn role_arn(mut self, arn: impl Into<String>) -> Self {
        self.role_arn = Some(arn.into());
        self
    }
    /// Signing region override.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// Endpoint URL override (a path prefix is kept).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    /// Session duration in seconds (900..=43200; default 3600).
    pub fn session_duration(mut self, seconds: i64) -> Self {
        self.duration_seconds = Some(seconds);
        self
    }
    /// Role session name.
    pub fn role_session_name(mut self, name: impl Into<String>) -> Self {
        self.role_session_name = Some(name.into());
        self
    }
    /// Trust only these CA certificates (PEM) for the endpoint.
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.ca_bundle = Some(path.into());
        self
    }
    /// HTTP client options (timeouts, retries).
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }
    /// The password of an encrypted key or PKCS#12 bundle.
    pub fn password(mut self, password: SecretString) -> Self {
        self.passwords = Some(Box::new(FixedPassword(password)));
        self
    }
    /// A custom password source (for PINs and prompts).
    pub fn password_source(mut self, source: Box<dyn PasswordSource>) -> Self {
        self.passwords = Some(source);
        self
    }
    /// Refresh this long before expiry (default 5 minutes).
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = Some(margin);
        self
    }
    /// Allow a plain `http://` endpoint on another host (refused by default: the
    /// credentials would cross the network unencrypted; loopback is always allowed).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }
    /// A clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks every setting and loads the identity (the key is checked against the
    /// certificate); no request is sent yet.
    pub fn build(self) -> Result<RolesAnywhereProvider, ProviderError> {
        let params = SessionParams::new(
            self.trust_anchor_arn
                .as_deref()
                .ok_or(ProviderError::Missing("trust_anchor_arn"))?,
            self.profile_arn
                .as_deref()
                .ok_or(ProviderError::Missing("profile_arn"))?,
            self.role_arn
                .as_deref()
                .ok_or(ProviderError::Missing("role_arn"))?,
            self.region.as_deref(),
            self.endpoint.as_deref(),
            self.duration_seconds.unwrap_or(3600),
            self.role_session_name.as_deref(),
        )?;
        params.check_transport(self.allow_plain_http)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let passwords: Arc<dyn PasswordSource> = match self.passwords {
            Some(p) => Arc::from(p),
            None => Arc::new(NoPassword),
        };
        let (spec, identity) = match (self.own, self.certificate) {
            (Some(own), _) => {
                let identity = own?;
                identity
                    .certificate
                    .check_leaf(clock.now())
                    .map_err(IdentityError::from)?;
                (None, identity)
            }
            (None, Some(certificate)) => {
                let spec = IdentitySpec {
                    certificate,
                    private_key: self.private_key,
                    intermediates: self.intermediates,
                    pkcs11: self.pkcs11,
                    tpm: self.tpm,
                };
                let identity = spec.load(passwords.as_ref(), clock.now())?;
                (Some(spec), identity)
            }
            (None, _) => return Err(ProviderError::Missing("certificate")),
        };
        let wait_limit = self
            .options
            .deadline
            .unwrap_or(Duration::from_secs(60))
            .saturating_add(Duration::from_secs(5));
        let client = Client::new(self.options)?;
        let policy = RefreshPolicy {
            refresh_before: self.refresh_before.unwrap_or(Duration::from_secs(300)),
            ..RefreshPolicy::default()
        };
        let certificate_subject = identity.certificate.subject().to_string();
        let role = params.role().as_str().to_string();
        let source = Arc::new(SessionSource::new(
            client,
            params,
            spec,
            passwords,
            identity,
            clock.clone(),
        ));
        Ok(RolesAnywhereProvider {
            inner: Arc::new(Inner {
                source,
                clock,
                policy,
                wait_limit,
                role,
                certificate_subject,
                refresher: Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    source: Arc<SessionSource>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    wait_limit: Duration,
    role: String,
    certificate_subject: String,
    /// The refresh task, started on first use in the caller's runtime (and again
    /// if that runtime shut down).
    refresher: Mutex<Option<Refresher>>,
}

/// Temporary credentials from IAM Roles Anywhere. The first call starts the same
/// refresh engine as `iamra update` and `iamra serve` ([`Refresher`] over a
/// [`SessionSource`]): one refresh at a time however many callers, refresh before
/// the margin with jitter, backoff after failures, certificate and key files
/// re-read when they change. While refreshes fail, credentials that are still
/// valid keep being returned. Cheap to clone.
#[derive(Clone)]
pub struct RolesAnywhereProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RolesAnywhereProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolesAnywhereProvider")
            .field("role", &self.inner.role)
            .field("certificate", &self.inner.certificate_subject)
            .finish_non_exhaustive()
    }
}

impl RolesAnywhereProvider {
    /// Starts a [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The refresh task's snapshots, starting the task (in the current runtime)
    /// when none runs; a task that stopped for good is kept, so that its reason is
    /// seen.
    fn watch(&self) -> tokio::sync::watch::Receiver<Snapshot> {
        let mut slot = self
            .inner
            .refresher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = slot.as_ref()
            && (r.is_running() || r.snapshot().stopped.is_some())
        {
            return r.subscribe();
        }
        let initial = slot
            .as_ref()
            .and_then(|r| r.snapshot().valid_at(self.inner.clock.now()).cloned())
            .map(|c| (*c).clone());
        let r = Refresher::spawn(
            self.inner.source.clone(),
            self.inner.clock.clone(),
            self.inner.policy.clone(),
            initial,
        );
        let rx = r.subscribe();
        *slot = Some(r);
        rx
    }

    fn kick(&self) {
        let slot = self
            .inner
            .refresher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = slot.as_ref() {
            r.refresh_now();
        }
    }

    /// Returns valid credentials: those held while they are outside the refresh
    /// margin; else fresh ones (waiting at most the client's deadline for the
    /// refresh under way); while refreshes fail, those held as long as they are
    /// valid. Must be called inside a tokio runtime.
    pub async fn credentials(&self) -> Result<TemporaryCredentials, ProviderError> {
        let mut rx = self.watch();
        let deadline = tokio::time::Instant::now() + self.inner.wait_limit;
        let mut kicked = false;
        let first_generation = rx.borrow().generation;
        loop {
            let snapshot = rx.borrow_and_update().clone();
            let now = self.inner.clock.now();
            if let Some(reason) = &snapshot.stopped {
                return Err(ProviderError::Stopped(reason.to_string()));
            }
            match snapshot.valid_at(now) {
                Some(c) if c.expires_at() - now > self.inner.policy.refresh_before => {
                    return Ok((**c).clone());
                }
                // Refreshing fails: what is still valid is better than nothing.
                Some(c) if snapshot.last_error.is_some() => return Ok((**c).clone()),
                // Fresh from a refresh since this call began (short-lived credentials
                // can be inside the margin from the start).
                Some(c) if snapshot.generation > first_generation => return Ok((**c).clone()),
                Some(_) => {
                    if !kicked {
                        self.kick();
                        kicked = true;
                    }
                }
                None => {
                    if let Some(message) = &snapshot.last_error {
                        return Err(ProviderError::Refresh {
                            kind: snapshot.last_error_kind.unwrap_or(ErrorKind::Transient),
                            message: message.to_string(),
                        });
                    }
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // The task is gone (its runtime shut down): start it again.
                Ok(Err(_)) => rx = self.watch(),
                Err(_) => {
                    let now = self.inner.clock.now();
                    return match snapshot.valid_at(now) {
                        Some(c) => Ok((**c).clone()),
                        None => Err(ProviderError::Timeout(self.inner.wait_limit)),
                    };
                }
            }
        }
    }
}

#[cfg(feature = "aws-sdk")]
mod sdk {
    use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};

    use super::RolesAnywhereProvider;

    impl ProvideCredentials for RolesAnywhereProvider {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(async move {
                let c = self
                    .credentials()
                    .await
                    .map_err(|e| CredentialsError::provider_error(crate::error::chain(&e)))?;
                let expiry = std::time::SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_secs(c.expires_at().unix_timestamp().max(0) as u64);
                Ok(aws_credential_types::Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    Some(expiry),
                    "IamRolesAnywhere",
                ))
            })
        }
    }
}
