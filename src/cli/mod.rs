//! The command-line front end: flags → typed configuration → library calls, and
//! the rendering of errors. No business logic lives here.

pub mod args;
mod daemon;
mod doctor;
mod exec;
mod hints;
pub(crate) mod log_format;
mod passwords;
mod serve;
mod update;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iamra::cert::CertError;
use iamra::clock::{Clock, SystemClock};
use iamra::identity::{CertificateSource, IdentityError, IdentitySpec, KeySource, TpmOptions};
use iamra::input::Input;
use iamra::key::{self, KeyError, SigningKey};
use iamra::output;
use iamra::refresh::SessionSource;
use iamra::session::{self, SessionError};
use secrecy::SecretString;

use args::{
    Command, CredentialArgs, CredentialProcessArgs, IdentityArgs, ReadCertificateDataArgs,
    SignStringArgs,
};
use passwords::{CliPasswords, PKCS8_ENV, PKCS11_PIN_ENV, PKCS12_ENV, Sources, TPM_ENV};

/// Everything that can end a command with an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Loading the identity failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A flag cannot apply here.
    #[error("{0}")]
    Unsupported(String),
    /// Writing stdout failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// `doctor` found problems (already printed).
    #[error("{0} check(s) failed")]
    DoctorFailed(usize),
    /// `update` could not write the credentials file.
    #[error(transparent)]
    CredentialsFile(#[from] iamra::output::credentials_file::CredentialsFileError),
    /// `serve` could not start.
    #[error(transparent)]
    Serve(#[from] iamra::output::server::ServeError),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `exec` could not run the command.
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// `update`/`serve` stopped refreshing: a PIN or password was refused, or the
    /// key is locked (the message is the refresh error's).
    #[error("{0}")]
    AuthenticationStopped(String),
}

/// The exit status when a PIN or password was refused, or a hardware key (token
/// PIN, TPM) is locked: nothing was retried, and a restart with the same settings
/// would only count towards a lockout. The systemd units do not restart on it
/// (`RestartPreventExitStatus=`). 77 is `EX_NOPERM` of sysexits.h.
pub const EXIT_AUTHENTICATION: i32 = 77;

impl CliError {
    /// The process exit status for this error: [`EXIT_AUTHENTICATION`] for a refused
    /// PIN or password (or a locked key); for `exec`, 2 for its usage errors and as
    /// in the shell (126, 127) when the command cannot be run; 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        let auth = match self {
            CliError::Identity(e) => e.is_authentication(),
            CliError::Session(SessionError::Sign(e)) => e.is_authentication(),
            CliError::AuthenticationStopped(_) => true,
            _ => false,
        };
        if auth {
            EXIT_AUTHENTICATION
        } else if let CliError::Exec(e) = self {
            e.exit_code()
        } else {
            1
        }
    }
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        CliError::Identity(IdentityError::Key(e))
    }
}

impl From<CertError> for CliError {
    fn from(e: CertError) -> Self {
        CliError::Identity(IdentityError::Cert(e))
    }
}

impl CliError {
    /// A sentence that helps the user fix the problem, where one is known (the one
    /// table of hints, [`hints`], also used by `doctor`).
    pub fn hint(&self) -> Option<String> {
        hints::for_cli_error(self)
    }
}

fn secret_flag(value: &Option<String>, flag: &str, env: &str) -> Option<SecretString> {
    value.as_ref().map(|v| {
        tracing::warn!("{flag} on the command line is visible to other local users; prefer {env} or {flag}-file");
        SecretString::from(v.as_str())
    })
}

pub(crate) fn password_sources(a: &IdentityArgs) -> CliPasswords {
    CliPasswords {
        pkcs8: Sources {
            flag: secret_flag(&a.pkcs8_password, "--pkcs8-password", PKCS8_ENV),
            file: a.pkcs8_password_file.as_ref().map(Input::parse),
            env: PKCS8_ENV,
        },
        pkcs12: Sources {
            flag: secret_flag(&a.pkcs12_password, "--pkcs12-password", PKCS12_ENV),
            file: a.pkcs12_password_file.as_ref().map(Input::parse),
            env: PKCS12_ENV,
        },
        pkcs11_pin: Sources {
            flag: None,
            file: a.pkcs11_pin_file.as_ref().map(Input::parse),
            env: PKCS11_PIN_ENV,
        },
        tpm: Sources {
            flag: secret_flag(&a.tpm_key_password, "--tpm-key-password", TPM_ENV),
            file: a.tpm_key_password_file.as_ref().map(Input::parse),
            env: TPM_ENV,
        },
        allow_prompt: true,
        before_prompt: None,
    }
}

/// Refuses flags that cannot apply on this platform or in this version.
fn check_platform_flags(a: &IdentityArgs) -> Result<(), CliError> {
    if a.cert_selector.is_some()
        || a.system_store_name.is_some()
        || a.use_latest_expiring_certificate
    {
        return Err(CliError::Unsupported(
            "--cert-selector, --system-store-name and --use-latest-expiring-certificate need an OS certificate store (Windows, macOS); on Linux pass --certificate and --private-key".into(),
        ));
    }
    Ok(())
}

/// The typed identity from the flags: the one place where a `--certificate` or
/// `--private-key` value becomes a file, stdin, a variable, a PKCS#11 URI or a TPM
/// handle. `None` when no `--certificate` was given.
pub(crate) fn identity_spec(
    a: &IdentityArgs,
    intermediates: Option<&PathBuf>,
) -> Result<Option<IdentitySpec>, IdentityError> {
    let Some(certificate) = &a.certificate else {
        return Ok(None);
    };
    let mut spec = IdentitySpec::new(CertificateSource::parse(certificate)?)
        .with_pkcs11(pkcs11_options(a.pkcs11_lib.as_ref(), a.reuse_pin))
        .with_tpm(TpmOptions::default().with_no_key_password(a.no_tpm_key_password));
    if let Some(key) = &a.private_key {
        spec = spec.with_private_key(KeySource::parse(key)?);
    }
    if let Some(i) = intermediates {
        spec = spec.with_intermediates(Input::parse(i));
    }
    Ok(Some(spec))
}

/// [`identity_spec`] for the commands that need a certificate.
pub(crate) fn required_identity_spec(
    a: &IdentityArgs,
    intermediates: Option<&PathBuf>,
) -> Result<IdentitySpec, CliError> {
    identity_spec(a, intermediates)?.ok_or(CliError::Identity(IdentityError::NoCertificate))
}

fn pkcs11_options(module: Option<&PathBuf>, reuse_pin: bool) -> key::pkcs11::Pkcs11Options {
    let options = key::pkcs11::Pkcs11Options::default().with_reuse_pin(reuse_pin);
    match module {
        Some(m) => options.with_module(m),
        None => options,
    }
}

/// The flag of each library setting: the library's errors name settings
/// ([`iamra::error::Field`]); registered at start, they name this CLI's flags.
pub fn flag_name(field: iamra::error::Field) -> &'static str {
    use iamra::error::Field;
    match field {
        Field::Certificate => "--certificate",
        Field::PrivateKey => "--private-key",
        Field::Intermediates => "--intermediates",
        Field::TrustAnchorArn => "--trust-anchor-arn",
        Field::ProfileArn => "--profile-arn",
        Field::RoleArn => "--role-arn",
        Field::Region => "--region",
        Field::Endpoint => "--endpoint",
        Field::SessionDuration => "--session-duration",
        Field::RoleSessionName => "--role-session-name",
        Field::NoTpmKeyPassword => "--no-tpm-key-password",
        Field::AllowPlainHttp => "--allow-plain-http",
        other => other.name(),
    }
}

/// Reads the password and PIN variables and removes them from the environment
/// (first thing in `main`, while the process has one thread).
pub fn take_secret_variables() {
    passwords::take_from_environment();
}

/// Runs a parsed command, writing the payload to stdout.
pub fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::CredentialProcess(a) => credential_process(a),
        Command::SignString(a) => sign_string(a),
        Command::ReadCertificateData(a) => read_certificate_data(a),
        Command::Version => write_stdout(concat!(env!("CARGO_PKG_VERSION"), "\n").as_bytes()),
        Command::Completion { shell } => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut args::Cli::command(), "iamra", &mut out);
            write_stdout(&out)
        }
        Command::Man { out_dir } => man(out_dir.as_deref()),
        Command::Doctor(a) => doctor::run(a),
        Command::Update(a) => update::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Exec(a) => exec::run(a),
    }
}

/// Renders the man page(s) from the CLI definition.
fn man(out_dir: Option<&std::path::Path>) -> Result<(), CliError> {
    use clap::CommandFactory as _;
    let cmd = args::Cli::command();
    let render = |cmd: clap::Command| -> Result<Vec<u8>, CliError> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(CliError::Output)?;
        Ok(out)
    };
    let Some(dir) = out_dir else {
        return write_stdout(&render(cmd)?);
    };
    std::fs::create_dir_all(dir).map_err(CliError::Output)?;
    std::fs::write(dir.join("iamra.1"), render(cmd.clone())?).map_err(CliError::Output)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("iamra-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone()))?;
        std::fs::write(dir.join(format!("{name}.1")), page).map_err(CliError::Output)?;
    }
    Ok(())
}

pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// Everything a command that calls CreateSession needs, checked and loaded.
pub(crate) struct Prepared {
    /// The request parameters.
    pub params: session::SessionParams,
    /// Where the identity came from (for re-reading rotated files).
    pub spec: IdentitySpec,
    /// The password sources (for re-reading rotated files).
    pub passwords: CliPasswords,
    /// The loaded identity.
    pub identity: iamra::identity::Identity,
    /// The HTTPS client.
    pub client: session::Client,
}

impl Prepared {
    /// The credential source of `update` and `serve`: it re-reads rotated files and
    /// never prompts (there is no one to answer at a refresh in the night).
    pub(crate) fn into_long_running_source(self, clock: Arc<dyn Clock>) -> Arc<SessionSource> {
        let mut passwords = self.passwords;
        passwords.allow_prompt = false;
        Arc::new(SessionSource::new(
            self.client,
            self.params,
            Some(self.spec),
            Arc::new(passwords),
            self.identity,
            clock,
        ))
    }
}

/// Checks every flag locally, loads the identity and builds the client: nothing is
/// sent yet.
pub(crate) fn prepare(a: &CredentialArgs) -> Result<Prepared, CliError> {
    let (prepared, _) = prepare_with(a, None, |_, _| ())?;
    Ok(prepared)
}

/// [`prepare`], calling `before_prompt` before any password prompt, and `loaded`
/// with the parameters and the identity as soon as the identity is loaded (the
/// client is built before it): `credential-process` starts signing there.
pub(crate) fn prepare_with<T>(
    a: &CredentialArgs,
    before_prompt: Option<Arc<dyn Fn() + Send + Sync>>,
    loaded: impl FnOnce(&session::SessionParams, &iamra::identity::Identity) -> T,
) -> Result<(Prepared, T), CliError> {
    let params = session_params(a)?;
    let spec = required_identity_spec(&a.identity, a.intermediates.as_ref())?;
    let mut passwords = password_sources(&a.identity);
    passwords.before_prompt = before_prompt;
    // The client first: a token or TPM is never asked to sign a request that a bad
    // CA bundle would keep from being sent, and `loaded` runs the moment the key is
    // there.
    let client = session::Client::new(client_options(a))?;
    let identity = spec.load(&passwords, SystemClock.now())?;
    if a.no_verify_ssl {
        tracing::warn!(
            "--no-verify-ssl: the endpoint's TLS certificate is NOT verified; anyone on the path can read the credentials"
        );
    }
    let early = loaded(&params, &identity);
    Ok((
        Prepared {
            params,
            spec,
            passwords,
            identity,
            client,
        },
        early,
    ))
}

/// The HTTPS client's options from the flags and `AWS_CA_BUNDLE`/`AWS_MAX_ATTEMPTS`.
pub(crate) fn client_options(a: &CredentialArgs) -> session::ClientOptions {
    let ca_bundle = a.ca_bundle.clone().or_else(|| {
        std::env::var_os("AWS_CA_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let max_attempts = a
        .max_attempts
        .or_else(|| {
            std::env::var("AWS_MAX_ATTEMPTS")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(3)
        .clamp(1, 10);
    session::ClientOptions::default()
        .with_ca_bundle(ca_bundle)
        .with_insecure(a.no_verify_ssl)
        .with_connect_timeout(Duration::from_secs(a.connect_timeout.max(1)))
        .with_attempt_timeout(Duration::from_secs(a.timeout.max(1)))
        .with_max_attempts(max_attempts)
        .with_deadline(Some(Duration::from_secs(a.total_timeout)))
}

/// The local checks of every flag that needs no file: platform flags, ARNs, region,
/// endpoint, duration, session name.
pub(crate) fn session_params(a: &CredentialArgs) -> Result<session::SessionParams, CliError> {
    check_platform_flags(&a.identity)?;
    if a.identity.tpm_key_password.is_some() && a.identity.no_tpm_key_password {
        return Err(CliError::Unsupported(
            "--tpm-key-password and --no-tpm-key-password exclude each other".into(),
        ));
    }
    let params = session::SessionParams::new(
        &a.trust_anchor_arn,
        &a.profile_arn,
        &a.role_arn,
        a.region.as_deref(),
        a.endpoint.as_deref(),
        a.session_duration,
        a.role_session_name.as_deref(),
    )?;
    params.check_transport(a.allow_plain_http)?;
    if a.allow_plain_http && params.url().scheme() == "http" {
        tracing::warn!(
            "--allow-plain-http: the request and the credentials cross the network unencrypted"
        );
    }
    Ok(params)
}

/// Removes variable `name` from this process's environment. Only for the start of
/// the process, while it has a single thread (the callers say why that holds): the
/// one place that touches the environment unsafely.
pub(crate) fn remove_env_var_single_threaded(name: &str) {
    // SAFETY: every caller runs before any other thread exists (first thing in
    // `main`, or `serve` before its runtime, PKCS#11 module or TPM), so nothing reads
    // or writes the environment concurrently.
    #[allow(unsafe_code, reason = "remove_var before any thread starts")]
    unsafe {
        std::env::remove_var(name)
    };
}

/// A single-threaded tokio runtime (one process, one request at a time).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn credential_process(a: CredentialProcessArgs) -> Result<(), CliError> {
    // One signature, then the process exits and its memory with it: overwriting the
    // stack after an ML-DSA signature would only cost time (0.34 ms of CPU).
    iamra::key::set_mldsa_stack_scrub(false);
    let creds = process_credentials(&a, a.refresh_before, |release| {
        fetch_once(&a.credential, release)
    })?;
    write_stdout(output::process::render(&creds).as_bytes())
}

/// One `CreateSession` call for `credential-process` and `exec`: the request is
/// signed on a thread of its own from the moment the key is loaded, while the
/// runtime is set up and the connection opens.
pub(crate) fn fetch_once(
    a: &CredentialArgs,
    release: BeforePrompt,
) -> Result<iamra::credentials::TemporaryCredentials, CliError> {
    let (p, first) = prepare_with(a, Some(release), |params, identity| {
        session::SignedAhead::start(params, identity, &SystemClock)
    })?;
    Ok(runtime()?.block_on(p.client.create_session_signed_ahead(
        &p.params,
        &p.identity,
        &SystemClock,
        first,
    ))?)
}

/// Called before a password prompt: releases the credential cache lock, so that other
/// processes for the same profile do not wait on a person at a terminal.
pub(crate) type BeforePrompt = Arc<dyn Fn() + Send + Sync>;

/// Credentials as `credential-process` obtains them: from the cache when it holds
/// some valid for longer than `fresh_for` (unless `--no-cache`), else from `fetch`,
/// with one process per cache key talking to the service while the others wait (at
/// most `--total-timeout`). `fetch` gets the callback to run before any prompt.
pub(crate) fn process_credentials(
    a: &CredentialProcessArgs,
    fresh_for: Duration,
    fetch: impl FnOnce(BeforePrompt) -> Result<iamra::credentials::TemporaryCredentials, CliError>,
) -> Result<iamra::credentials::TemporaryCredentials, CliError> {
    // The cache lock, once taken: released before any password prompt.
    let held: Arc<std::sync::Mutex<Option<iamra::cache::Lock>>> = Arc::default();
    let release: BeforePrompt = {
        let held = held.clone();
        Arc::new(move || {
            let lock = held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if lock.is_some() {
                tracing::debug!("releasing the credential cache lock while prompting");
            }
        })
    };
    if a.no_cache {
        return fetch(release);
    }
    if a.credential.no_verify_ssl {
        // Credentials from an endpoint whose certificate was not verified may be
        // anyone's (a TLS-intercepting proxy's): never cached, never served from
        // the cache.
        tracing::debug!("--no-verify-ssl: the credential cache is not used");
        return fetch(release);
    }
    let params = session_params(&a.credential)?;
    let spec = required_identity_spec(&a.credential.identity, a.credential.intermediates.as_ref())?;
    let cache = match iamra::cache::default_dir()
        .ok_or(iamra::cache::CacheError::NoFolder)
        .and_then(|dir| iamra::cache::Cache::open(&dir))
    {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!("credential cache disabled: {}", iamra::error::chain(&e));
            return fetch(release);
        }
    };
    let c = &a.credential;
    // The cache key resolves PKCS#11 URIs (module, token, certificate objects); on a
    // miss the key is loaded next. Held until this returns, the module is loaded and
    // initialised once for both.
    let _modules = spec.hold_pkcs11_modules();
    let key = iamra::cache::KeyBuilder::default()
        .part("trust-anchor", a.credential.trust_anchor_arn.as_bytes())
        .part("profile", c.profile_arn.as_bytes())
        .part("role", c.role_arn.as_bytes())
        .part("region", params.region().as_bytes())
        .part("url", params.url().as_str().as_bytes())
        .part("body", params.body().as_bytes())
        .identity(&spec)
        .transport(&client_options(c))
        .finish();
    let entry = cache.entry(&key);
    if let Some(creds) = entry.read_fresh(SystemClock.now(), fresh_for) {
        tracing::debug!(path = %entry.path().display(), "using cached credentials");
        return Ok(creds);
    }
    // Miss: one process per key talks to the service; the others wait for it, at
    // most as long as one CreateSession call may take.
    match entry.lock_within(Duration::from_secs(a.credential.total_timeout)) {
        Ok(lock) => {
            *held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(lock);
        }
        Err(e) => {
            tracing::warn!(
                "credential cache lock unavailable: {}",
                iamra::error::chain(&e)
            );
        }
    }
    if let Some(creds) = entry.read_fresh(SystemClock.now(), fresh_for) {
        return Ok(creds);
    }
    let creds = fetch(release)?;
    if let Err(e) = entry.store(&creds) {
        tracing::warn!("credentials not cached: {}", iamra::error::chain(&e));
    }
    Ok(creds)
}

fn sign_string(a: SignStringArgs) -> Result<(), CliError> {
    check_platform_flags(&a.identity)?;
    let passwords = password_sources(&a.identity);
    let key: Arc<dyn SigningKey> = match (&a.identity.private_key, &a.identity.certificate) {
        // Unlike the reference, a key alone is enough; with a certificate too, the
        // pair is checked.
        (Some(k), None) => iamra::identity::load_key_alone(
            &KeySource::parse(k).map_err(IdentityError::from)?,
            &pkcs11_options(a.identity.pkcs11_lib.as_ref(), a.identity.reuse_pin),
            &TpmOptions::default().with_no_key_password(a.identity.no_tpm_key_password),
            &passwords,
        )?
        .into(),
        // Diagnostics work whatever the certificate's dates: no validity check.
        _ => {
            required_identity_spec(&a.identity, None)?
                .load_without_validity_check(&passwords)?
                .key
        }
    };
    let message = output::sign_string::test_message(&key.public_key());
    tracing::debug!(key_type = %key.public_key().describe(), digest = ?a.digest, "signing the test string");
    let digest = match a.digest {
        args::DigestArg::Sha256 => key::Digest::Sha256,
        args::DigestArg::Sha384 => key::Digest::Sha384,
        args::DigestArg::Sha512 => key::Digest::Sha512,
    };
    let signature = key
        .sign(&message, digest)
        .map_err(|e| CliError::Session(SessionError::Sign(e)))?;
    let format = match a.format {
        args::FormatArg::Json => output::sign_string::Format::Json,
        args::FormatArg::Text => output::sign_string::Format::Text,
        args::FormatArg::Bin => output::sign_string::Format::Bin,
    };
    write_stdout(&output::sign_string::render(&signature, format))
}

fn read_certificate_data(a: ReadCertificateDataArgs) -> Result<(), CliError> {
    if a.cert_selector.is_some() || a.system_store_name.is_some() {
        return Err(CliError::Unsupported(
            "--cert-selector and --system-store-name need an OS certificate store (Windows, macOS); on Linux pass --certificate".into(),
        ));
    }
    let Some(path) = a.certificate else {
        return Err(CliError::Identity(IdentityError::NoCertificate));
    };
    let input = match CertificateSource::parse(&path).map_err(IdentityError::from)? {
        CertificateSource::Pkcs11(uri) => {
            // The PIN (needed only when the token hides its certificates) comes from
            // the URI, IAMRA_PKCS11_PIN, --pkcs11-pin-file or a prompt on a terminal.
            let passwords = password_sources(&IdentityArgs {
                pkcs11_pin_file: a.pkcs11_pin_file.clone(),
                ..IdentityArgs::default()
            });
            let found = iamra::identity::list_token_certificates(
                &uri,
                &pkcs11_options(a.pkcs11_lib.as_ref(), false),
                &passwords,
            )?;
            let entries: Vec<output::matching_identities::Entry<'_>> = found
                .iter()
                .map(|c| output::matching_identities::Entry {
                    uri: &c.uri,
                    certificate: &c.certificate,
                })
                .collect();
            return write_stdout(output::matching_identities::render(&entries).as_bytes());
        }
        CertificateSource::Input(input) => input,
        _ => return Err(CliError::Identity(IdentityError::NoCertificate)),
    };
    let cert = iamra::cert::load_certificate(&input)?;
    tracing::debug!(certificate = %path.display(), subject = cert.subject(), "certificate read");
    write_stdout(output::certificate_data::render(&cert).as_bytes())
}
