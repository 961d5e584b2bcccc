//! The library entry point: a builder that loads an identity once and produces
//! temporary credentials, refreshing them before they expire.
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
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::credentials::TemporaryCredentials;
use crate::identity::{Identity, IdentityError, IdentitySource};
use crate::key::{FixedPassword, NoPassword, PasswordSource};
use crate::session::{Client, ClientOptions, SessionError, SessionParams};

/// Building a provider failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A required setting is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A parameter is invalid, or the service refused.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Builds a [`RolesAnywhereProvider`]; see the module docs.
#[derive(Default)]
pub struct Builder {
    source: IdentitySource,
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
        f.debug_struct("Builder")
            .field("source", &self.source)
            .field("trust_anchor_arn", &self.trust_anchor_arn)
            .field("profile_arn", &self.profile_arn)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Certificate file (PEM, DER, combined PEM or PKCS#12 bundle).
    pub fn certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.source.certificate = Some(path.into());
        self
    }
    /// Private key file (defaults to the certificate file).
    pub fn private_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.source.private_key = Some(path.into());
        self
    }
    /// Intermediate certificates (PEM bundle), sent as `X-Amz-X509-Chain`.
    pub fn intermediates(mut self, path: impl Into<PathBuf>) -> Self {
        self.source.intermediates = Some(path.into());
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
        let passwords = self.passwords.unwrap_or_else(|| Box::new(NoPassword));
        let identity = self.source.load(passwords.as_ref(), clock.now())?;
        let client = Client::new(self.options)?;
        Ok(RolesAnywhereProvider {
            inner: Arc::new(Inner {
                params,
                identity,
                client,
                clock,
                refresh_before: self.refresh_before.unwrap_or(Duration::from_secs(300)),
                current: Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    params: SessionParams,
    identity: Identity,
    client: Client,
    clock: Arc<dyn Clock>,
    refresh_before: Duration,
    current: Mutex<Option<TemporaryCredentials>>,
}

/// Temporary credentials from IAM Roles Anywhere, fetched on first use and
/// refreshed once they are within the refresh margin of expiry. Cheap to clone;
/// concurrent callers share one refresh.
#[derive(Clone)]
pub struct RolesAnywhereProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RolesAnywhereProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolesAnywhereProvider")
            .field("role", &self.inner.params.role().as_str())
            .field("certificate", &self.inner.identity.certificate.subject())
            .finish_non_exhaustive()
    }
}

impl RolesAnywhereProvider {
    /// Starts a [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Returns valid credentials, calling `CreateSession` when there are none yet or
    /// the current ones are within the refresh margin of expiry.
    pub async fn credentials(&self) -> Result<TemporaryCredentials, SessionError> {
        let mut current = self.inner.current.lock().await;
        let now = self.inner.clock.now();
        if let Some(c) = current.as_ref()
            && c.expires_at() - now > self.inner.refresh_before
        {
            return Ok(c.clone());
        }
        let fresh = self
            .inner
            .client
            .create_session(
                &self.inner.params,
                &self.inner.identity,
                self.inner.clock.as_ref(),
            )
            .await?;
        *current = Some(fresh.clone());
        Ok(fresh)
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
