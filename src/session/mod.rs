//! The `CreateSession` client: request building, signing each attempt, retries,
//! and response parsing.
//!
//! Wire contract (as aws_signing_helper 1.8.0 sends it): `POST /sessions` with the
//! three ARNs in the query string (`profileArn`, `roleArn`, `trustAnchorArn`,
//! RFC 3986-encoded), body `{"durationSeconds":N[,"roleSessionName":"…"]}`, headers
//! `Content-Type: application/json`, `Host`, `X-Amz-Date`, `X-Amz-X509` and
//! `X-Amz-X509-Chain` (when there is a chain), all signed; `User-Agent` unsigned.

pub mod arn;
mod direct;
pub mod endpoint;
pub mod response;
mod roots;

use crate::error::{ErrorKind, Field};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::time::OffsetDateTime;
use rand::Rng as _;

pub use arn::{Arn, ArnError, ArnKind};
pub use endpoint::EndpointError;
/// The URL type of the endpoint functions and [`SessionParams::url`] (the `url`
/// crate's, through reqwest), re-exported on purpose.
pub use reqwest::Url;
pub use response::ServiceError;

use crate::clock::Clock;
use crate::credentials::TemporaryCredentials;
use crate::identity::Identity;
use crate::key::SignError;
use crate::sigv4x509::{self, SignableRequest, canonical_request::uri_encode};

/// Shortest session the service grants.
pub const MIN_DURATION: u32 = 900;
/// Longest session the service grants.
pub const MAX_DURATION: u32 = 43200;
/// The default overall deadline of one `CreateSession` call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// Largest response body accepted.
const MAX_RESPONSE: usize = 1024 * 1024;
/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("iamra/", env!("CARGO_PKG_VERSION"));

/// A session could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// An ARN is malformed.
    #[error(transparent)]
    Arn(#[from] ArnError),
    /// The endpoint or region is malformed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The trust anchor and profile are in different regions.
    #[error(
        "{} is in region {trust_anchor} but {} is in {profile}; they must be in the same region",
        Field::TrustAnchorArn,
        Field::ProfileArn
    )]
    RegionMismatch {
        /// Trust anchor region.
        trust_anchor: String,
        /// Profile region.
        profile: String,
    },
    /// The session duration is out of range.
    #[error("{field} {0} is out of range: it must be 900 to 43200 seconds", field = Field::SessionDuration)]
    Duration(i64),
    /// The role session name is invalid.
    #[error(
        "{field} {value} is invalid: use 2 to 64 characters from A-Z a-z 0-9 + = , . @ _ -",
        field = Field::RoleSessionName,
        value = crate::error::quote(.0)
    )]
    SessionName(String),
    /// The CA bundle could not be used.
    #[error("CA bundle {} {reason}", path.display())]
    CaBundle {
        /// The bundle.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
    /// The request did not get an answer.
    #[error("cannot reach {url} after {attempts} attempt(s): {reason}")]
    Network {
        /// Where.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The innermost cause.
        reason: String,
    },
    /// The endpoint's TLS certificate was refused (untrusted issuer, wrong name,
    /// expired): retrying will not help until the trust settings or the endpoint
    /// change.
    #[error("cannot reach {url} after {attempts} attempt(s): {reason}")]
    Untrusted {
        /// Where.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The TLS stack's complaint.
        reason: String,
    },
    /// The service answered with an error.
    #[error("CreateSession failed: {}{}{} (HTTP {}{})",
        error.code,
        if error.code.is_empty() || error.message.is_empty() { "" } else { ": " },
        error.message,
        error.status,
        if error.request_id.is_empty() { String::new() } else { format!(", request id {}", error.request_id) })]
    Service {
        /// The service's error.
        error: ServiceError,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The service answered with something unusable.
    #[error("{0}")]
    BadResponse(String),
    /// The answer's expiration is unparsable, in the past or absurdly far ahead:
    /// the credentials are neither used nor cached, and retrying soon will not help
    /// (a clock or endpoint problem).
    #[error("{0}")]
    Expiration(String),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The whole call took longer than its deadline.
    #[error(
        "CreateSession at {url} did not complete within {}s (attempt {attempts}): stalled {stalled}",
        deadline.as_secs_f64()
    )]
    Deadline {
        /// Where.
        url: String,
        /// The deadline.
        deadline: Duration,
        /// The attempt under way.
        attempts: u32,
        /// What it was waiting for, e.g. `reading the response body`.
        stalled: &'static str,
    },
}

impl SessionError {
    /// What kind of failure this is: bad settings are
    /// [`ErrorKind::Configuration`]; no answer, a malformed one, a 5xx or
    /// throttling are [`ErrorKind::Transient`]; other service errors are
    /// [`ErrorKind::Refused`]; a signing failure has the key's own kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Sign(e) => e.kind(),
            SessionError::Network { .. }
            | SessionError::BadResponse(_)
            | SessionError::Deadline { .. } => ErrorKind::Transient,
            SessionError::Service { error, .. } => {
                if error.status >= 500 || error.status == 429 || error.code == "ThrottlingException"
                {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Refused
                }
            }
            SessionError::Arn(_)
            | SessionError::Untrusted { .. }
            | SessionError::Endpoint(_)
            | SessionError::RegionMismatch { .. }
            | SessionError::Duration(_)
            | SessionError::SessionName(_)
            | SessionError::CaBundle { .. }
            | SessionError::Client(_)
            | SessionError::Expiration(_) => ErrorKind::Configuration,
        }
    }
}

/// What a `CreateSession` call is doing (for [`SessionError::Deadline`]).
#[derive(Debug, Default)]
struct Progress {
    stage: std::sync::atomic::AtomicU8,
    attempt: std::sync::atomic::AtomicU32,
}

const STAGE_SIGNING: u8 = 0;
const STAGE_HEADERS: u8 = 1;
const STAGE_BODY: u8 = 2;
const STAGE_BACKOFF: u8 = 3;

impl Progress {
    fn set(&self, stage: u8) {
        self.stage
            .store(stage, std::sync::atomic::Ordering::Relaxed);
    }

    fn describe(&self) -> &'static str {
        match self.stage.load(std::sync::atomic::Ordering::Relaxed) {
            STAGE_SIGNING => "signing the request",
            STAGE_HEADERS => "connecting or waiting for the response headers",
            STAGE_BODY => "reading the response body",
            _ => "waiting to retry",
        }
    }
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct SessionParams {
    trust_anchor: Arn,
    profile: Arn,
    role: Arn,
    region: String,
    url: reqwest::Url,
    duration_seconds: u32,
    role_session_name: Option<String>,
}

impl SessionParams {
    /// Checks every parameter locally, as the service would.
    pub fn new(
        trust_anchor_arn: &str,
        profile_arn: &str,
        role_arn: &str,
        region: Option<&str>,
        endpoint: Option<&str>,
        duration_seconds: i64,
        role_session_name: Option<&str>,
    ) -> Result<Self, SessionError> {
        let trust_anchor = Arn::parse(ArnKind::TrustAnchor, trust_anchor_arn)?;
        let profile = Arn::parse(ArnKind::Profile, profile_arn)?;
        let role = Arn::parse(ArnKind::Role, role_arn)?;
        if trust_anchor.region() != profile.region() {
            return Err(SessionError::RegionMismatch {
                trust_anchor: trust_anchor.region().into(),
                profile: profile.region().into(),
            });
        }
        let region = match region {
            Some(r) => {
                endpoint::check_region(r)?;
                r.to_string()
            }
            None => trust_anchor.region().to_string(),
        };
        let duration_seconds = u32::try_from(duration_seconds)
            .ok()
            .filter(|d| (MIN_DURATION..=MAX_DURATION).contains(d))
            .ok_or(SessionError::Duration(duration_seconds))?;
        if let Some(name) = role_session_name {
            let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            if !(2..=64).contains(&name.len()) || !name.chars().all(ok_char) {
                return Err(SessionError::SessionName(name.to_string()));
            }
        }
        let url = endpoint::sessions_url(&region, endpoint)?;
        Ok(Self {
            trust_anchor,
            profile,
            role,
            region,
            url,
            duration_seconds,
            role_session_name: role_session_name.map(str::to_string),
        })
    }

    /// Refuses a plain `http://` endpoint that is not on this host unless
    /// `allow_plain_http` ([`endpoint::check_plain_http`]).
    pub fn check_transport(&self, allow_plain_http: bool) -> Result<(), SessionError> {
        Ok(endpoint::check_plain_http(&self.url, allow_plain_http)?)
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The URL requests go to.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The role ARN.
    pub fn role(&self) -> &Arn {
        &self.role
    }

    /// The requested duration.
    pub fn duration_seconds(&self) -> u32 {
        self.duration_seconds
    }

    /// The raw query string (ARNs sorted by name, RFC 3986-encoded).
    pub fn query(&self) -> String {
        format!(
            "profileArn={}&roleArn={}&trustAnchorArn={}",
            uri_encode(self.profile.as_str()),
            uri_encode(self.role.as_str()),
            uri_encode(self.trust_anchor.as_str())
        )
    }

    /// The JSON body, compact, keys in the reference's order.
    pub fn body(&self) -> String {
        match &self.role_session_name {
            Some(name) => format!(
                "{{\"durationSeconds\":{},\"roleSessionName\":{}}}",
                self.duration_seconds,
                serde_json::Value::String(name.clone())
            ),
            None => format!("{{\"durationSeconds\":{}}}", self.duration_seconds),
        }
    }
}

/// How the HTTPS client behaves: `ClientOptions::default()` and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Trust only these CA certificates (PEM bundle) instead of the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Skip server certificate verification (`--no-verify-ssl`).
    pub insecure: bool,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one attempt, connect included.
    pub attempt_timeout: Duration,
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub base_delay: Duration,
    /// Largest backoff delay (also caps `Retry-After`).
    pub max_delay: Duration,
    /// Longest a whole `CreateSession` call may take, every attempt and backoff
    /// included (`None`: no overall limit). A slow signature on a token counts too:
    /// signatures are made on a thread of their own, so the deadline ends the call
    /// even when a token never answers (that token call itself cannot be
    /// interrupted; its thread is left to finish).
    pub deadline: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_bundle: None,
            insecure: false,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(20),
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            deadline: Some(DEFAULT_DEADLINE),
        }
    }
}

with_setters!(ClientOptions {
    with_ca_bundle => ca_bundle: Option<PathBuf>,
    with_insecure => insecure: bool,
    with_connect_timeout => connect_timeout: Duration,
    with_attempt_timeout => attempt_timeout: Duration,
    with_max_attempts => max_attempts: u32,
    with_base_delay => base_delay: Duration,
    with_max_delay => max_delay: Duration,
    with_deadline => deadline: Option<Duration>,
});

/// A `CreateSession` client. Build it once and re-use it.
#[derive(Debug, Clone)]
pub struct Client {
    /// Proxied and unverified requests, and [`Client::probe`]: built on first use
    /// (a direct call never needs it).
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// The TLS configuration of both ways out; `None` with `insecure`.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Every other request: its connection opens while it is signed.
    direct: Option<direct::Connector>,
    router: Arc<direct::Router>,
    options: ClientOptions,
}

enum Attempt {
    Done(TemporaryCredentials),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
        last: SessionError,
    },
    Fail(SessionError),
}

impl Client {
    /// Builds the client (rustls on ring; the system's trust store unless a CA
    /// bundle is given; proxies from `HTTPS_PROXY`/`NO_PROXY`).
    pub fn new(options: ClientOptions) -> Result<Self, SessionError> {
        // Installing fails only when a provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The bundle is read and checked even with --no-verify-ssl.
        let bundle = match &options.ca_bundle {
            Some(path) => {
                let mut pem = crate::input::read_file("CA bundle", path).map_err(|e| {
                    SessionError::CaBundle {
                        path: path.clone(),
                        reason: format!("cannot be read ({})", crate::error::chain(&e)),
                    }
                })?;
                // Not a secret: the bundle is kept, not copied. Anchors are decoded
                // only when a server chain names them (roots.rs).
                Some(
                    roots::BundleVerifier::from_pem(std::mem::take(&mut *pem), provider.clone())
                        .map_err(|reason| SessionError::CaBundle {
                            path: path.clone(),
                            reason,
                        })?,
                )
            }
            None => None,
        };
        let tls = if options.insecure {
            // Verification is off: reqwest's own switch (which warns), and only reqwest.
            None
        } else {
            let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match bundle {
                Some(bundle) => Arc::new(bundle),
                None => Arc::new(
                    rustls_platform_verifier::Verifier::new(provider.clone())
                        .map_err(|e| SessionError::Client(e.to_string()))?,
                ),
            };
            let mut tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| SessionError::Client(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(tls))
        };
        let direct = tls
            .as_ref()
            .map(|tls| direct::Connector::new(Arc::clone(tls), options.connect_timeout));
        Ok(Self {
            http: Arc::default(),
            tls,
            direct,
            router: Arc::new(direct::Router::from_env()),
            options,
        })
    }

    /// The reqwest client, built on first use with the same TLS configuration.
    fn http(&self) -> Result<&reqwest::Client, SessionError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(self.options.connect_timeout)
            .timeout(self.options.attempt_timeout)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none());
        builder = match &self.tls {
            Some(tls) => builder.tls_backend_preconfigured(rustls::ClientConfig::clone(tls)),
            None => builder.tls_danger_accept_invalid_certs(true),
        };
        let http = builder
            .build()
            .map_err(|e| SessionError::Client(crate::error::chain(&e)))?;
        Ok(self.http.get_or_init(|| http))
    }

    /// Calls `CreateSession`, retrying transient failures, and returns the credentials.
    /// Each attempt's connection opens while its request is signed.
    pub async fn create_session(
        &self,
        params: &SessionParams,
        identity: &Identity,
        clock: &dyn Clock,
    ) -> Result<TemporaryCredentials, SessionError> {
        self.create_session_from(params, identity, clock, None)
            .await
    }

    /// [`Client::create_session`] whose first attempt sends `first`, the request
    /// [`SignedAhead::start`] began signing for the same `params`, `identity` and
    /// `clock`.
    pub async fn create_session_signed_ahead(
        &self,
        params: &SessionParams,
        identity: &Identity,
        clock: &dyn Clock,
        first: SignedAhead,
    ) -> Result<TemporaryCredentials, SessionError> {
        self.create_session_from(params, identity, clock, Some(first))
            .await
    }

    async fn create_session_from(
        &self,
        params: &SessionParams,
        identity: &Identity,
        clock: &dyn Clock,
        first: Option<SignedAhead>,
    ) -> Result<TemporaryCredentials, SessionError> {
        let progress = Progress::default();
        let work = self.create_session_attempts(params, identity, clock, &progress, first);
        let Some(deadline) = self.options.deadline else {
            return work.await;
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(SessionError::Deadline {
                url: params.url().to_string(),
                deadline,
                attempts: progress
                    .attempt
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(1),
                stalled: progress.describe(),
            }),
        }
    }

    async fn create_session_attempts(
        &self,
        params: &SessionParams,
        identity: &Identity,
        clock: &dyn Clock,
        progress: &Progress,
        mut first: Option<SignedAhead>,
    ) -> Result<TemporaryCredentials, SessionError> {
        let max = self.options.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            progress
                .attempt
                .store(attempt, std::sync::atomic::Ordering::Relaxed);
            progress.set(STAGE_SIGNING);
            match self
                .attempt(params, identity, clock, attempt, progress, first.take())
                .await?
            {
                Attempt::Done(c) => return Ok(c),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry {
                    reason,
                    retry_after,
                    last,
                } => {
                    if attempt >= max {
                        return Err(last);
                    }
                    let delay = self.backoff(attempt, retry_after);
                    tracing::info!(attempt, max, delay_ms = delay.as_millis() as u64, %reason, "CreateSession attempt failed; retrying");
                    progress.set(STAGE_BACKOFF);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Checks that `url`'s host answers over TLS (any HTTP status will do) and
    /// returns its `Date` header, for a clock check.
    pub async fn probe(&self, url: &reqwest::Url) -> Result<Option<OffsetDateTime>, SessionError> {
        let response = self
            .http()?
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(&e, url.as_str(), 1))?;
        Ok(response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                OffsetDateTime::parse(v, &::time::format_description::well_known::Rfc2822).ok()
            }))
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .options
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.options.max_delay);
        // Full jitter in [exp/2, exp].
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        match retry_after {
            Some(ra) => ra.min(self.options.max_delay).max(jittered),
            None => jittered,
        }
    }

    async fn attempt(
        &self,
        params: &SessionParams,
        identity: &Identity,
        clock: &dyn Clock,
        attempt: u32,
        progress: &Progress,
        ahead: Option<SignedAhead>,
    ) -> Result<Attempt, SessionError> {
        let url = params.url();
        let signing = match ahead {
            Some(SignedAhead(signing)) => signing,
            None => Signing::start(params, identity, clock),
        };
        let direct = match (&self.direct, self.router.route(url)) {
            (Some(connector), direct::Route::Direct) => Some(connector),
            _ => None,
        };
        let network = |reason: String| {
            let last = SessionError::Network {
                url: url.to_string(),
                attempts: attempt,
                reason: reason.clone(),
            };
            Attempt::Retry {
                reason,
                retry_after: None,
                last,
            }
        };
        let reply = match direct {
            Some(connector) => {
                // The connection opens while another thread signs.
                let connecting = async {
                    let started = std::time::Instant::now();
                    let connection = connector.connect(url).await;
                    (connection, started.elapsed())
                };
                let signed = async {
                    let signed = signing.finish().await;
                    // Signed: from now on, any wait is the network's.
                    progress.set(STAGE_HEADERS);
                    signed
                };
                let (signed, (connection, connect_time)) = tokio::join!(signed, connecting);
                let Request {
                    headers,
                    query,
                    body,
                    signed,
                } = signed?;
                tracing::debug!(attempt, canonical_request = ?signed.canonical_request, "signed CreateSession request");
                let connection = match connection {
                    Ok(c) => c,
                    Err(e) => return Ok(failed_connection(&*e, url.as_str(), attempt, network)),
                };
                let mut path = url.path().to_string();
                path.push('?');
                path.push_str(&query);
                let mut request = hyper::Request::post(path);
                for (name, value) in &headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let request = request
                    .header(hyper::header::AUTHORIZATION, signed.authorization.as_str())
                    .header(hyper::header::USER_AGENT, USER_AGENT)
                    .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                    .map_err(|e| SessionError::Client(e.to_string()))?;
                // The attempt's time limit, as reqwest applies it: connecting, sending
                // and reading the answer (not the signature).
                let left = self.options.attempt_timeout.saturating_sub(connect_time);
                match tokio::time::timeout(
                    left,
                    connection.exchange(request, MAX_RESPONSE, progress),
                )
                .await
                {
                    Ok(reply) => reply,
                    Err(_) => Err(direct::Failure::Network(direct::timed_out())),
                }
            }
            None => {
                let Request {
                    headers,
                    query,
                    body,
                    signed,
                } = signing.finish().await?;
                tracing::debug!(attempt, canonical_request = ?signed.canonical_request, "signed CreateSession request");
                let mut full_url = url.clone();
                full_url.set_query(Some(&query));
                let mut request = self.http()?.post(full_url).body(body);
                for (name, value) in &headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                request = request.header("Authorization", signed.authorization.as_str());
                progress.set(STAGE_HEADERS);
                match request.send().await {
                    Ok(response) => read_reply(response, progress).await,
                    Err(e) => return Ok(failed_connection(&e, url.as_str(), attempt, network)),
                }
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(direct::Failure::Network(e)) => {
                return Ok(failed_connection(&*e, url.as_str(), attempt, network));
            }
            Err(direct::Failure::CutOff(e)) => {
                return Ok(network(format!(
                    "the response was cut off ({})",
                    crate::error::innermost(&*e)
                )));
            }
            Err(direct::Failure::TooLarge) => {
                return Ok(Attempt::Fail(SessionError::BadResponse(
                    "CreateSession response is larger than 1 MiB".into(),
                )));
            }
        };
        let status = reply.status;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let error_type = header("x-amzn-errortype");
        let request_id = header("x-amzn-requestid");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = reply.body;
        if (200..300).contains(&status) {
            return Ok(match response::parse_success(&body) {
                Ok(c) => match response::check_expiration(&c, clock.now()) {
                    Ok(()) => Attempt::Done(c),
                    Err(reason) => Attempt::Fail(SessionError::Expiration(reason)),
                },
                Err(reason) => Attempt::Fail(SessionError::BadResponse(reason)),
            });
        }
        let error =
            response::parse_error(status, error_type.as_deref(), request_id.as_deref(), &body);
        let transient = status >= 500 || status == 429 || error.code == "ThrottlingException";
        let reason = format!("HTTP {status} {}", error.code);
        let last = SessionError::Service {
            error,
            attempts: attempt,
        };
        Ok(if transient {
            Attempt::Retry {
                reason,
                retry_after,
                last,
            }
        } else {
            Attempt::Fail(last)
        })
    }
}

/// The first attempt's request, signed ahead: [`SignedAhead::start`] begins
/// signing on a thread of its own, so that whatever the caller does meanwhile
/// (building the [`Client`], a runtime) overlaps the signature, and
/// [`Client::create_session_signed_ahead`] sends it. Later attempts, if any, are
/// signed anew.
#[derive(Debug)]
pub struct SignedAhead(Signing);

impl SignedAhead {
    /// Builds the request for `params` and `identity`, dated now by `clock`, and
    /// starts signing it.
    pub fn start(params: &SessionParams, identity: &Identity, clock: &dyn Clock) -> Self {
        Self(Signing::start(params, identity, clock))
    }
}

/// A request whose signature is under way.
#[derive(Debug)]
struct Signing {
    headers: Vec<(String, String)>,
    query: String,
    body: String,
    unsigned: sigv4x509::Unsigned,
    signature: Signature,
}

/// A signature on a thread, or made in place when no thread could be started.
#[derive(Debug)]
enum Signature {
    Thread(tokio::sync::oneshot::Receiver<Result<Vec<u8>, SignError>>),
    Done(Result<Vec<u8>, SignError>),
}

/// A signed request.
struct Request {
    headers: Vec<(String, String)>,
    query: String,
    body: String,
    signed: sigv4x509::SigningOutput,
}

impl Signing {
    /// Builds the request (the wire contract in this module's docs) dated now and
    /// starts its signature on a thread of its own. A token that never answers
    /// holds that thread, not the caller's runtime: the call's deadline still ends
    /// the wait. Where the thread runs is left to the scheduler: Linux starts it on
    /// this CPU, where it signs while the caller waits for the network; pushing it
    /// onto the other CPU at once (a short sleep after the spawn) measured 0.4 to
    /// 0.8 ms slower per call on the 2-core builder (BENCHMARKS.md).
    fn start(params: &SessionParams, identity: &Identity, clock: &dyn Clock) -> Self {
        let url = params.url();
        let query = params.query();
        let body = params.body();
        let amz_date = sigv4x509::amz_date(clock.now());
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Host".to_string(), endpoint::host_header(url)),
            ("X-Amz-Date".to_string(), amz_date.clone()),
            ("X-Amz-X509".to_string(), identity.certificate.to_base64()),
        ];
        if !identity.chain.is_empty() {
            let chain: Vec<String> = identity.chain.iter().map(|c| c.to_base64()).collect();
            headers.push(("X-Amz-X509-Chain".to_string(), chain.join(",")));
        }
        let unsigned = sigv4x509::prepare(
            &SignableRequest {
                method: "POST",
                path: url.path(),
                query: &query,
                headers: &headers,
                body: body.as_bytes(),
            },
            None,
            params.region(),
            &amz_date,
            identity.certificate.serial_decimal(),
            identity.key.algorithm(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let key = Arc::clone(&identity.key);
        let message = unsigned.string_to_sign.clone();
        let spawned = std::thread::Builder::new()
            .name("iamra-sign".into())
            .spawn(move || {
                let _ = tx.send(key.sign(message.as_bytes(), crate::key::Digest::Sha256));
            });
        let signature = match spawned {
            Ok(_) => Signature::Thread(rx),
            // No thread to be had (a process limit): sign here.
            Err(e) => {
                tracing::debug!(error = %e, "cannot start a signing thread; signing in place");
                Signature::Done(identity.key.sign(
                    unsigned.string_to_sign.as_bytes(),
                    crate::key::Digest::Sha256,
                ))
            }
        };
        Self {
            headers,
            query,
            body,
            unsigned,
            signature,
        }
    }

    /// Waits for the signature and completes the request.
    async fn finish(self) -> Result<Request, SessionError> {
        let signature = match self.signature {
            Signature::Thread(rx) => rx.await.unwrap_or_else(|_| {
                Err(SignError::Backend(
                    "the signing thread ended without a signature".into(),
                ))
            }),
            Signature::Done(result) => result,
        }?;
        Ok(Request {
            headers: self.headers,
            query: self.query,
            body: self.body,
            signed: self.unsigned.finish(&signature),
        })
    }
}

/// Reads reqwest's `response` whole.
async fn read_reply(
    mut response: reqwest::Response,
    progress: &Progress,
) -> Result<direct::Reply, direct::Failure> {
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let mut body = direct::reserved(response.content_length(), MAX_RESPONSE);
    progress.set(STAGE_BODY);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => direct::append(&mut body, &chunk, MAX_RESPONSE)?,
            Ok(None) => break,
            Err(e) => return Err(direct::Failure::CutOff(e.into())),
        }
    }
    Ok(direct::Reply {
        status,
        headers,
        body,
    })
}

/// A connection that failed or was refused: [`SessionError::Untrusted`] (not
/// retried) when TLS refused the endpoint's certificate, else a network retry.
fn failed_connection(
    e: &(dyn std::error::Error + 'static),
    url: &str,
    attempt: u32,
    network: impl Fn(String) -> Attempt,
) -> Attempt {
    match transport_error(e, url, attempt) {
        untrusted @ SessionError::Untrusted { .. } => Attempt::Fail(untrusted),
        _ => network(crate::error::innermost(e)),
    }
}

/// A failed request as an error: [`SessionError::Untrusted`] when the TLS stack
/// refused the endpoint's certificate (found by type in the error's sources, not
/// by its text), else [`SessionError::Network`].
fn transport_error(
    e: &(dyn std::error::Error + 'static),
    url: &str,
    attempts: u32,
) -> SessionError {
    let reason = crate::error::innermost(e);
    if refused_certificate(e) {
        SessionError::Untrusted {
            url: url.to_string(),
            attempts,
            reason,
        }
    } else {
        SessionError::Network {
            url: url.to_string(),
            attempts,
            reason,
        }
    }
}

/// Whether a rustls certificate error is among `e`'s sources (an `io::Error`
/// hides the error it wraps from `source()`: it is looked into too).
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let is_certificate = |e: &(dyn std::error::Error + 'static)| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::InvalidCertRevocationList(_)
            )
        )
    };
    let mut next = Some(e);
    while let Some(err) = next {
        if is_certificate(err) {
            return true;
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && (is_certificate(inner) || refused_certificate(inner))
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// Convenience: the time-of-signing clock a session uses when none is given.
pub fn now() -> OffsetDateTime {
    crate::clock::SystemClock.now()
}
