//! Keeping credentials fresh for the long-running modes (`update`, `serve`).
//!
//! A [`Refresher`] owns one background task and one [`CredentialSource`]. It starts
//! from credentials obtained at start (or fetches them first), and refreshes them
//! [`RefreshPolicy::refresh_before`] their expiry, minus a random share of the wait
//! (so that a fleet started together does not refresh in step). It is the only caller
//! of the source, so there is exactly one refresh at a time however many readers
//! there are; readers get [`Snapshot`]s through a `watch` channel and never wait for
//! the network.
//!
//! A failed refresh never replaces good credentials: the last good ones stay
//! published until a refresh succeeds (readers decide what to do once they have
//! expired). Transient failures (network, 5xx, throttling, a malformed answer) are
//! retried with capped exponential backoff and jitter, before and after expiry;
//! permanent ones (access denied, an expired certificate, a bad key) are logged as
//! errors and retried on a slow schedule, or at once when the certificate or key
//! files change, since an operator may be fixing them.
//!
//! Time: the schedule is kept in wall-clock time from an injected [`Clock`] and the
//! task sleeps in slices of at most [`RefreshPolicy::max_sleep`], so a suspended
//! machine or a clock step is noticed within one slice.
//!
//! [`SessionSource`] is the real source: `CreateSession` through a
//! [`Client`], re-reading the certificate, key and chain files when their device,
//! inode, size or times change (rotation by cert-manager, step-ca, certbot). A
//! rotated identity that does not load (a half-written pair) is logged and the
//! previous one is kept.

use std::future::Future;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::time::OffsetDateTime;
use rand::Rng as _;
/// tokio's `watch` channel, in which a [`Refresher`] publishes its [`Snapshot`]s
/// (re-exported: it is part of this module's API).
pub use tokio::sync::watch;

use crate::clock::Clock;
use crate::credentials::TemporaryCredentials;
use crate::error::ErrorKind;
use crate::identity::{Identity, IdentityError, IdentitySpec};
use crate::input::Input;
use crate::key::PasswordSource;
use crate::session::{Client, SessionError, SessionParams};

/// The future a [`CredentialSource`] returns.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TemporaryCredentials, RefreshError>> + Send + 'a>>;

/// Where fresh credentials come from.
pub trait CredentialSource: Send + Sync {
    /// Obtains new credentials (one refresh; the source may retry inside).
    fn fetch(&self) -> FetchFuture<'_>;
    /// Whether the inputs changed since the last fetch (a retry after a failure
    /// then happens at once).
    fn identity_changed(&self) -> bool {
        false
    }
}

/// A refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// `CreateSession` failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The identity is unusable (expired certificate, bad key...).
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// How a failed refresh is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth retrying soon (network, 5xx, throttling, a malformed answer).
    Transient,
    /// Retrying soon is pointless until someone changes something (access denied,
    /// an expired certificate, a bad configuration): retried slowly.
    Permanent,
    /// A PIN or password was refused, or a hardware key is locked: never retried,
    /// since every try counts towards a lockout. Long-running modes stop.
    Authentication,
}

impl RefreshError {
    /// What kind of failure this is (the session's or the identity's own kind).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RefreshError::Identity(e) => e.kind(),
            RefreshError::Session(e) => e.kind(),
        }
    }

    /// How this failure is handled, from its [`ErrorKind`]: configuration errors
    /// and refusals are retried slowly, authentication failures never.
    pub fn class(&self) -> FailureClass {
        match self.kind() {
            ErrorKind::Authentication => FailureClass::Authentication,
            ErrorKind::Transient => FailureClass::Transient,
            ErrorKind::Configuration | ErrorKind::Refused => FailureClass::Permanent,
        }
    }

    /// Whether retrying soon is pointless until someone changes something: access
    /// denied and other 4xx answers, an expired certificate, a bad configuration, and
    /// (never retried at all) a refused PIN or password.
    pub fn is_permanent(&self) -> bool {
        self.class() != FailureClass::Transient
    }

    /// Whether a PIN or password was refused or a hardware key is locked: the
    /// caller must not try again.
    pub fn is_authentication(&self) -> bool {
        self.class() == FailureClass::Authentication
    }
}

/// When to refresh and how to retry: `RefreshPolicy::default()` and the `with_*`
/// methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Refresh this long before the credentials expire.
    pub refresh_before: Duration,
    /// Up to this share of the wait is taken off at random (0.1: refresh within the
    /// last 10 % of the wait).
    pub jitter: f64,
    /// Shortest wait between two refreshes.
    pub min_delay: Duration,
    /// First retry delay after a transient failure; doubles per failure.
    pub retry_base: Duration,
    /// Longest retry delay after a transient failure.
    pub retry_cap: Duration,
    /// Retry delay after a permanent failure.
    pub permanent_retry: Duration,
    /// Longest single sleep: the clock and the input files are looked at this often.
    pub max_sleep: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(300),
            jitter: 0.1,
            min_delay: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            permanent_retry: Duration::from_secs(300),
            max_sleep: Duration::from_secs(5),
        }
    }
}

with_setters!(RefreshPolicy {
    with_refresh_before => refresh_before: Duration,
    with_jitter => jitter: f64,
    with_min_delay => min_delay: Duration,
    with_retry_base => retry_base: Duration,
    with_retry_cap => retry_cap: Duration,
    with_permanent_retry => permanent_retry: Duration,
    with_max_sleep => max_sleep: Duration,
});

fn to_std(d: ::time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

impl RefreshPolicy {
    /// When to refresh credentials obtained at `now` that expire at `expires_at`;
    /// `u` in `[0, 1]` picks the jitter.
    pub fn refresh_at(
        &self,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        u: f64,
    ) -> OffsetDateTime {
        // At most a day ahead: no expiration, however absurd, makes the schedule
        // overflow (the session client refuses those beyond 12 h anyway).
        let remaining = to_std(expires_at - now).min(Duration::from_secs(86_400));
        let wait = match remaining.checked_sub(self.refresh_before) {
            Some(w) if !w.is_zero() => w.mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * u),
            // Shorter-lived than the margin: refresh half-way through.
            _ => remaining / 2,
        };
        let wait = wait.max(self.min_delay);
        now.checked_add(::time::Duration::try_from(wait).unwrap_or(::time::Duration::DAY))
            .unwrap_or(now)
    }

    /// The delay before retry number `failures` (1 = the first retry); `u` in
    /// `[0, 1]` picks the jitter.
    pub fn retry_delay(&self, failures: u32, permanent: bool, u: f64) -> Duration {
        let u = u.clamp(0.0, 1.0);
        if permanent {
            return self
                .permanent_retry
                .mul_f64(1.0 - 0.2 * u)
                .max(self.min_delay);
        }
        let exp = self
            .retry_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.retry_cap);
        exp.mul_f64(0.5 + 0.5 * u).max(Duration::from_millis(100))
    }
}

/// What readers see.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last good credentials (kept while refreshes fail).
    pub credentials: Option<Arc<TemporaryCredentials>>,
    /// When they were obtained.
    pub obtained_at: Option<OffsetDateTime>,
    /// How many times credentials were obtained (0: none yet).
    pub generation: u64,
    /// The last refresh error, cleared by a success. Never holds a secret.
    pub last_error: Option<Arc<str>>,
    /// The kind of the last refresh error.
    pub last_error_kind: Option<ErrorKind>,
    /// When the next refresh is due (`None` once refreshing stopped).
    pub next_refresh: Option<OffsetDateTime>,
    /// Set when refreshing stopped for good: a PIN or password was refused, or a
    /// hardware key is locked ([`FailureClass::Authentication`]). Long-running
    /// modes exit on it. Never holds a secret.
    pub stopped: Option<Arc<str>>,
}

impl Snapshot {
    /// The credentials, if there are some that have not expired at `now`.
    pub fn valid_at(&self, now: OffsetDateTime) -> Option<&Arc<TemporaryCredentials>> {
        self.credentials.as_ref().filter(|c| c.expires_at() > now)
    }
}

/// The background refresh task and the channel readers watch. Dropping it stops
/// the task.
#[derive(Debug)]
pub struct Refresher {
    rx: watch::Receiver<Snapshot>,
    task: tokio::task::JoinHandle<()>,
    kick: Arc<tokio::sync::Notify>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Refresher {
    /// Starts the task (inside a tokio runtime). With `initial` credentials, the
    /// first refresh is scheduled from them; without, the task fetches at once,
    /// retrying as after any failure.
    pub fn spawn(
        source: Arc<dyn CredentialSource>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
        initial: Option<TemporaryCredentials>,
    ) -> Self {
        let now = clock.now();
        let mut snapshot = Snapshot::default();
        let next = match initial {
            Some(c) => {
                let next = policy.refresh_at(now, c.expires_at(), rand::rng().random());
                log_success(&c, next);
                snapshot.credentials = Some(Arc::new(c));
                snapshot.obtained_at = Some(now);
                snapshot.generation = 1;
                next
            }
            None => now,
        };
        snapshot.next_refresh = Some(next);
        let (tx, rx) = watch::channel(snapshot);
        let kick = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run(source, clock, policy, tx, next, kick.clone()));
        Self { rx, task, kick }
    }

    /// Refreshes now if the task is waiting for the next refresh (not during a
    /// fetch: its result comes soon anyway). For callers that find the credentials
    /// within the refresh margin before the task woke up (a clock step).
    pub fn refresh_now(&self) {
        self.kick.notify_waiters();
    }

    /// Whether the task still runs (it ends when refreshing stopped for good, or
    /// when the runtime that spawned it shut down).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// A receiver of every new snapshot.
    ///
    /// A tokio `watch` receiver, on purpose: the refresher runs on tokio, and
    /// readers await changes with `changed()` or read the latest with `borrow()`.
    /// The type is re-exported as [`watch::Receiver`]
    /// so that callers need no tokio dependency of their own to name it.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.rx.clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.rx.borrow().clone()
    }
}

fn log_success(c: &TemporaryCredentials, next: OffsetDateTime) {
    tracing::info!(
        "obtained credentials {} valid until {}; next refresh at {}",
        c.access_key_id(),
        crate::utc::rfc3339(c.expires_at()),
        crate::utc::rfc3339(next)
    );
}

/// Sleeps until `when` by the wall clock, in slices; returns early when `wake`
/// says so.
async fn sleep_until(
    clock: &dyn Clock,
    when: OffsetDateTime,
    max_sleep: Duration,
    wake: &(dyn Fn() -> bool + Sync),
    kick: &tokio::sync::Notify,
) {
    loop {
        let now = clock.now();
        if now >= when || wake() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(to_std(when - now).min(max_sleep)) => {}
            () = kick.notified() => return,
        }
    }
}

async fn run(
    source: Arc<dyn CredentialSource>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    tx: watch::Sender<Snapshot>,
    mut next: OffsetDateTime,
    kick: Arc<tokio::sync::Notify>,
) {
    let mut failures: u32 = 0;
    let mut expiry_reported = false;
    loop {
        let wake = || failures > 0 && source.identity_changed();
        sleep_until(clock.as_ref(), next, policy.max_sleep, &wake, &kick).await;
        let result = source.fetch().await;
        let now = clock.now();
        match result {
            Ok(c) => {
                failures = 0;
                expiry_reported = false;
                next = policy.refresh_at(now, c.expires_at(), rand::rng().random());
                log_success(&c, next);
                tx.send_modify(|s| {
                    s.credentials = Some(Arc::new(c));
                    s.obtained_at = Some(now);
                    s.generation += 1;
                    s.last_error = None;
                    s.last_error_kind = None;
                    s.next_refresh = Some(next);
                });
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if e.is_authentication() {
                    let message = crate::error::chain(&e);
                    tracing::error!(
                        "refresh failed and will not be retried: a PIN or password was refused, or the key is locked, and every further try would count towards a lockout: {message}"
                    );
                    tx.send_modify(|s| {
                        s.last_error = Some(Arc::from(message.as_str()));
                        s.last_error_kind = Some(e.kind());
                        s.stopped = Some(Arc::from(message.as_str()));
                        s.next_refresh = None;
                    });
                    return;
                }
                let permanent = e.is_permanent();
                let delay = policy.retry_delay(failures, permanent, rand::rng().random());
                next = now
                    .checked_add(::time::Duration::try_from(delay).unwrap_or(::time::Duration::DAY))
                    .unwrap_or(now);
                let message = crate::error::chain(&e);
                let held = tx.borrow().credentials.clone();
                let state = match &held {
                    Some(c) if c.expires_at() > now => format!(
                        "the credentials valid until {} stay in use",
                        crate::utc::rfc3339(c.expires_at())
                    ),
                    Some(c) => format!(
                        "the last credentials expired at {}",
                        crate::utc::rfc3339(c.expires_at())
                    ),
                    None => "there are no credentials yet".to_string(),
                };
                let secs = delay.as_secs_f64().ceil() as u64;
                if permanent {
                    tracing::error!(
                        "refresh failed (attempt {failures}), and retrying will not help until the configuration, the certificate or the role is fixed; {state}; next attempt in {secs}s, or as soon as the certificate or key files change: {message}"
                    );
                } else {
                    tracing::warn!(
                        "refresh failed (attempt {failures}); {state}; retrying in {secs}s: {message}"
                    );
                }
                if let Some(c) = &held
                    && c.expires_at() <= now
                    && !expiry_reported
                {
                    expiry_reported = true;
                    tracing::error!(
                        "the credentials expired at {} and no refresh has succeeded since; nothing is served or written until one does",
                        crate::utc::rfc3339(c.expires_at())
                    );
                }
                tx.send_modify(|s| {
                    s.last_error = Some(Arc::from(message.as_str()));
                    s.last_error_kind = Some(e.kind());
                    s.next_refresh = Some(next);
                });
            }
        }
    }
}

/// Identity of one input file: device, inode, size, modification and change
/// times (nanoseconds); `None` when it cannot be read.
type Stamp = Option<(u64, u64, u64, i64, i64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

#[derive(Debug)]
struct Loaded {
    identity: Arc<Identity>,
    /// The stamps of the inputs when a load was last attempted.
    attempted: Vec<Stamp>,
}

/// `CreateSession` as a [`CredentialSource`], re-reading rotated files.
pub struct SessionSource {
    client: Client,
    params: SessionParams,
    spec: Option<IdentitySpec>,
    passwords: Arc<dyn PasswordSource>,
    clock: Arc<dyn Clock>,
    /// The input files watched for rotation (empty when an input is stdin).
    files: Vec<std::path::PathBuf>,
    state: Mutex<Loaded>,
}

impl std::fmt::Debug for SessionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSource")
            .field("params", &self.params)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl SessionSource {
    /// `identity` is what `spec` loaded at start (`None`: the identity is not
    /// reloaded, as for a caller's own key); `passwords` must not prompt (reloads
    /// happen in the background).
    pub fn new(
        client: Client,
        params: SessionParams,
        spec: Option<IdentitySpec>,
        passwords: Arc<dyn PasswordSource>,
        identity: Identity,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let inputs: Vec<&Input> = spec.iter().flat_map(IdentitySpec::inputs).collect();
        let files = if inputs.contains(&&Input::Stdin) {
            tracing::info!(
                "an input comes from stdin: certificate and key rotation is not followed"
            );
            Vec::new()
        } else {
            inputs
                .into_iter()
                .filter_map(Input::as_file)
                .map(Path::to_path_buf)
                .collect()
        };
        let attempted = files.iter().map(|p| stamp(p)).collect();
        Self {
            client,
            params,
            spec,
            passwords,
            clock,
            files,
            state: Mutex::new(Loaded {
                identity: Arc::new(identity),
                attempted,
            }),
        }
    }

    fn stamps(&self) -> Vec<Stamp> {
        self.files.iter().map(|p| stamp(p)).collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The identity in use.
    pub fn identity(&self) -> Arc<Identity> {
        self.state().identity.clone()
    }

    /// Reloads the identity if its files changed since the last attempt.
    async fn current_identity(&self) -> Arc<Identity> {
        let stamps = self.stamps();
        let previous = {
            let mut st = self.state();
            if stamps == st.attempted {
                return st.identity.clone();
            }
            st.attempted = stamps;
            st.identity.clone()
        };
        let Some(spec) = self.spec.clone() else {
            return previous;
        };
        let passwords = self.passwords.clone();
        let now = self.clock.now();
        let loaded = tokio::task::spawn_blocking(move || spec.load(passwords.as_ref(), now)).await;
        match loaded {
            Ok(Ok(identity)) => {
                tracing::info!(
                    "the certificate or key files changed: now using certificate serial {} (was {})",
                    identity.certificate.serial_decimal(),
                    previous.certificate.serial_decimal()
                );
                let identity = Arc::new(identity);
                self.state().identity = identity.clone();
                identity
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "the certificate or key files changed but cannot be used; keeping certificate serial {}: {}",
                    previous.certificate.serial_decimal(),
                    crate::error::chain(&e)
                );
                previous
            }
            Err(e) => {
                tracing::warn!("reloading the certificate and key failed: {e}");
                previous
            }
        }
    }
}

impl CredentialSource for SessionSource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let identity = self.current_identity().await;
            identity
                .certificate
                .check_leaf(self.clock.now())
                .map_err(IdentityError::from)?;
            Ok(self
                .client
                .create_session(&self.params, &identity, self.clock.as_ref())
                .await?)
        })
    }

    fn identity_changed(&self) -> bool {
        !self.files.is_empty() && self.stamps() != self.state().attempted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Wall-clock time that follows tokio's (paused) clock.
    struct TestClock {
        base: OffsetDateTime,
        start: tokio::time::Instant,
    }

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            self.base + self.start.elapsed()
        }
    }

    const T0: OffsetDateTime = ::time::macros::datetime!(2026-12-01 12:00:00 UTC);

    fn creds(n: u32, expires_at: OffsetDateTime) -> TemporaryCredentials {
        TemporaryCredentials::new(
            format!("ASIA{n}"),
            SecretString::from(format!("secret{n}")),
            SecretString::from(format!("token{n}")),
            crate::utc::rfc3339(expires_at),
            expires_at,
        )
    }

    fn transient() -> RefreshError {
        RefreshError::Session(SessionError::Network {
            url: "https://127.0.0.1/sessions".into(),
            attempts: 1,
            reason: "connection refused".into(),
        })
    }

    fn permanent() -> RefreshError {
        RefreshError::Identity(IdentityError::NoCertificate)
    }

    /// Answers from a script (then success), counting calls; each success lasts
    /// `lifetime` from the clock's now.
    struct Script {
        clock: Arc<TestClock>,
        answers: Mutex<VecDeque<Result<(), RefreshError>>>,
        calls: AtomicU32,
        lifetime: Duration,
    }

    impl CredentialSource for Script {
        fn fetch(&self) -> FetchFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let next = self.answers.lock().unwrap().pop_front();
                match next {
                    Some(Err(e)) => Err(e),
                    _ => Ok(creds(n, self.clock.now() + self.lifetime)),
                }
            })
        }
    }

    fn setup(
        answers: Vec<Result<(), RefreshError>>,
        lifetime: Duration,
    ) -> (Arc<TestClock>, Arc<Script>) {
        let clock = Arc::new(TestClock {
            base: T0,
            start: tokio::time::Instant::now(),
        });
        let script = Arc::new(Script {
            clock: clock.clone(),
            answers: Mutex::new(answers.into()),
            calls: AtomicU32::new(0),
            lifetime,
        });
        (clock, script)
    }

    #[test]
    fn refresh_time_is_before_the_margin_with_bounded_jitter() {
        let p = RefreshPolicy::default();
        let exp = T0 + Duration::from_secs(3600);
        assert_eq!(p.refresh_at(T0, exp, 0.0), T0 + Duration::from_secs(3300));
        assert_eq!(p.refresh_at(T0, exp, 1.0), T0 + Duration::from_secs(2970));
        // Shorter-lived than the margin: half-way, never sooner than min_delay.
        let short = T0 + Duration::from_secs(200);
        assert_eq!(p.refresh_at(T0, short, 0.5), T0 + Duration::from_secs(100));
        assert_eq!(p.refresh_at(T0, T0, 0.5), T0 + Duration::from_secs(1));
    }

    #[test]
    fn retry_delays_grow_are_capped_and_slow_for_permanent_failures() {
        let p = RefreshPolicy::default();
        let d: Vec<u64> = (1..=8)
            .map(|n| p.retry_delay(n, false, 1.0).as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.retry_delay(3, false, 0.0), Duration::from_secs(2));
        assert_eq!(p.retry_delay(1, true, 0.0), Duration::from_secs(300));
        assert_eq!(p.retry_delay(1, true, 1.0), Duration::from_secs(240));
        assert!(permanent().is_permanent() && !transient().is_permanent());
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_before_expiry_and_only_then() {
        let (clock, script) = setup(vec![], Duration::from_secs(900));
        let r = Refresher::spawn(
            script.clone(),
            clock.clone(),
            RefreshPolicy::default(),
            Some(creds(0, T0 + Duration::from_secs(900))),
        );
        // The refresh is due between 540 s and 600 s after start.
        tokio::time::sleep(Duration::from_secs(539)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 0);
        assert_eq!(r.snapshot().generation, 1);
        tokio::time::sleep(Duration::from_secs(62)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        let s = r.snapshot();
        assert_eq!(s.generation, 2);
        assert_eq!(s.credentials.unwrap().access_key_id(), "ASIA1");
    }

    fn no_jitter() -> RefreshPolicy {
        RefreshPolicy {
            jitter: 0.0,
            ..RefreshPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_keep_the_last_good_credentials_and_back_off() {
        let (clock, script) = setup(
            vec![Err(transient()), Err(transient()), Err(transient())],
            Duration::from_secs(900),
        );
        let r = Refresher::spawn(
            script.clone(),
            clock.clone(),
            no_jitter(),
            Some(creds(0, T0 + Duration::from_secs(900))),
        );
        // Due at 600 s; the first retry comes 0.5 to 1 s after the failure.
        tokio::time::sleep(Duration::from_millis(600_300)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        let s = r.snapshot();
        assert_eq!(s.credentials.unwrap().access_key_id(), "ASIA0");
        assert!(s.last_error.unwrap().contains("connection refused"));
        // Retries after at most 1 + 2 + 4 s.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 4);
        let s = r.snapshot();
        assert_eq!(s.credentials.unwrap().access_key_id(), "ASIA4");
        assert!(s.last_error.is_none());
        assert_eq!(s.generation, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_retry_slowly_and_expired_credentials_are_not_valid() {
        let (clock, script) = setup(vec![Err(permanent())], Duration::from_secs(900));
        let r = Refresher::spawn(
            script.clone(),
            clock.clone(),
            no_jitter(),
            Some(creds(0, T0 + Duration::from_secs(200))),
        );
        // Lifetime 200 s < margin: refresh half-way, at 100 s; it fails for good.
        tokio::time::sleep(Duration::from_secs(101)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
        // The slow retry comes 240 to 300 s later.
        tokio::time::sleep(Duration::from_secs(230)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1, "no fast retry");
        let s = r.snapshot();
        assert!(s.valid_at(clock.now()).is_none(), "expired");
        assert!(s.credentials.is_some(), "still held, never blanked");
        tokio::time::sleep(Duration::from_secs(80)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        assert!(r.snapshot().valid_at(clock.now()).is_some());
    }

    fn refused() -> RefreshError {
        RefreshError::Session(SessionError::Sign(crate::key::SignError::Tpm(
            crate::key::TpmError::WrongPassword {
                key: "key.tss2.pem".into(),
                da: crate::key::tpm::DaReport::Unknown,
            },
        )))
    }

    #[test]
    fn refused_passwords_and_locked_keys_are_their_own_class() {
        use crate::key::pkcs11::Pkcs11Error;
        assert_eq!(refused().class(), FailureClass::Authentication);
        assert!(refused().is_permanent() && refused().is_authentication());
        for e in [
            Pkcs11Error::WrongPin {
                token: "t".into(),
                state: String::new(),
            },
            Pkcs11Error::PinLocked { token: "t".into() },
            Pkcs11Error::PinFinalTry { token: "t".into() },
            Pkcs11Error::PinNotRetried { token: "t".into() },
        ] {
            let at_load = RefreshError::Identity(IdentityError::Pkcs11(e));
            assert_eq!(at_load.class(), FailureClass::Authentication, "{at_load}");
        }
        let lockout = RefreshError::Identity(IdentityError::Key(crate::key::KeyError::Tpm(
            crate::key::TpmError::Lockout {
                key: "k".into(),
                interval_secs: 1,
            },
        )));
        assert_eq!(lockout.class(), FailureClass::Authentication);
        // Other signing failures (a lost TPM connection) stay transient; a wrong
        // password for a key file locks nothing.
        let backend = RefreshError::Session(SessionError::Sign(crate::key::SignError::Backend(
            "gone".into(),
        )));
        assert_eq!(backend.class(), FailureClass::Transient);
        let file =
            RefreshError::Identity(IdentityError::Key(crate::key::KeyError::WrongPassword {
                path: "k.pem".into(),
            }));
        assert_eq!(file.class(), FailureClass::Permanent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_password_stops_refreshing_for_good() {
        let (clock, script) = setup(vec![Err(refused())], Duration::from_secs(900));
        let r = Refresher::spawn(
            script.clone(),
            clock.clone(),
            no_jitter(),
            Some(creds(0, T0 + Duration::from_secs(900))),
        );
        let mut rx = r.subscribe();
        while rx.borrow_and_update().stopped.is_none() {
            rx.changed().await.unwrap();
        }
        let s = r.snapshot();
        assert!(s.stopped.unwrap().contains("wrong password for TPM key"));
        assert!(s.next_refresh.is_none());
        assert_eq!(s.credentials.unwrap().access_key_id(), "ASIA0");
        // Hours later, still exactly one try.
        tokio::time::sleep(Duration::from_secs(4 * 3600)).await;
        assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_initial_credentials_it_fetches_at_once() {
        let (clock, script) = setup(vec![Err(transient())], Duration::from_secs(900));
        let r = Refresher::spawn(script.clone(), clock, RefreshPolicy::default(), None);
        let mut rx = r.subscribe();
        while rx.borrow_and_update().generation == 0 {
            rx.changed().await.unwrap();
        }
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    }
}
