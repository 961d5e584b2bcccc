//! `iamra exec [FLAGS] -- COMMAND [ARGS...]`: runs a command with credentials for it
//! alone, obtained as `credential-process` obtains them (same flags, variables,
//! cache and errors), before the command starts.
//!
//! Default mode: a private ECS container-credentials endpoint on `127.0.0.1` (port
//! chosen by the kernel) serving only the ECS route, guarded by a 256-bit random
//! token that only the command's environment holds
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN`), and
//! refreshed in the background by the refresh engine `serve` uses; the key (a
//! PKCS#11 session, a loaded TPM key) stays open meanwhile, so a refresh costs one
//! signature. `--env` mode: the credentials as the four variables, then iamra
//! replaces itself with the command. The command's environment: see [`env`].
//!
//! The command gets stdin, stdout and stderr as they are (iamra writes nothing on
//! stdout), SIGINT, SIGTERM and SIGHUP are passed on to it, and iamra exits with its
//! status (128 + N when signal N ended it) once it has ended and been reaped; the
//! endpoint closes then. A command that cannot be found exits 127, one that cannot
//! be run 126 (as in the shells; looked up before anything is fetched); iamra's own
//! failures, before the command starts, exit 1 as `credential-process` does (2 for a
//! usage error).

mod child;
mod env;

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iamra::clock::{Clock, SystemClock};
use iamra::output::server::{self, Server, ServerConfig, ecs};
use iamra::refresh::Refresher;

use super::args::{ExecArgs, IdentityArgs};
use super::daemon::{check_refresh_before, policy};
use super::{CliError, fetch_once, prepare, process_credentials, runtime, session_params};

/// `exec` could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No command after `--`.
    #[error("exec needs a command: iamra exec [FLAGS] -- COMMAND [ARGS...]")]
    NoCommand,
    /// Words before `--`.
    #[error(
        "{0:?} is not a flag of exec; the command goes after `--`: iamra exec [FLAGS] -- COMMAND [ARGS...]"
    )]
    Misplaced(String),
    /// `--min-remaining` without `--env`.
    #[error(
        "--min-remaining applies to --env only: without --env the command's credentials are refreshed for as long as it runs"
    )]
    MinRemainingWithoutEnv,
    /// `--min-remaining` that no session can meet.
    #[error(
        "--min-remaining {min}s can never be met: sessions last at most --session-duration {duration}s"
    )]
    MinRemainingTooLong {
        /// `--min-remaining` in seconds.
        min: u64,
        /// `--session-duration`.
        duration: i64,
    },
    /// The credentials expire too soon.
    #[error(
        "the credentials are valid for {left}s only (until {until}), less than --min-remaining {min}s"
    )]
    TooShort {
        /// Seconds left.
        left: i64,
        /// The expiry.
        until: String,
        /// `--min-remaining` in seconds.
        min: u64,
    },
    /// The command could not be started.
    #[error("cannot run {program}: {reason}")]
    Spawn {
        /// The command, quoted and shortened.
        program: String,
        /// Why.
        reason: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Signals cannot be watched.
    #[error("cannot watch for signals to pass on to the command: {0}")]
    Signals(#[source] std::io::Error),
    /// Waiting for the command failed.
    #[error("cannot wait for the command: {0}")]
    Wait(#[source] std::io::Error),
}

/// At most `max` characters of `s`, with `...` when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl ExecError {
    pub(super) fn spawn(program: &std::ffi::OsStr, source: std::io::Error) -> Self {
        let program = format!("{:?}", shorten(&program.to_string_lossy(), 100));
        let reason = match source.kind() {
            std::io::ErrorKind::NotFound => "no such command",
            std::io::ErrorKind::PermissionDenied => "permission denied (not an executable file)",
            _ => "it could not be started",
        };
        ExecError::Spawn {
            program,
            reason,
            source,
        }
    }

    /// 127 when the command is not found, 126 when it cannot be run, 2 for a usage
    /// error, else 1.
    pub(super) fn exit_code(&self) -> i32 {
        match self {
            ExecError::NoCommand
            | ExecError::Misplaced(_)
            | ExecError::MinRemainingWithoutEnv
            | ExecError::MinRemainingTooLong { .. } => 2,
            ExecError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            ExecError::Spawn { .. } => 126,
            _ => 1,
        }
    }

    /// A hint, where one helps.
    pub(super) fn hint(&self) -> Option<String> {
        match self {
            ExecError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("check the name and PATH, or give the command's full path".into())
            }
            ExecError::TooShort { .. } => Some(
                "raise --session-duration (up to the role's maximum session duration), or drop --env: the endpoint mode refreshes the credentials while the command runs".into(),
            ),
            _ => None,
        }
    }
}

/// The variables named by `env:NAME` flag values (keys, certificates, passwords):
/// the command must not get them.
fn env_sources(a: &IdentityArgs, intermediates: Option<&Path>) -> Vec<OsString> {
    [
        a.certificate.as_deref(),
        a.private_key.as_deref(),
        intermediates,
        a.pkcs8_password_file.as_deref(),
        a.pkcs12_password_file.as_deref(),
        a.pkcs11_pin_file.as_deref(),
        a.tpm_key_password_file.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|p| match iamra::input::Input::parse(p) {
        iamra::input::Input::Env(name) => Some(OsString::from(name)),
        _ => None,
    })
    .collect()
}

/// Runs `exec`: exits with the command's status, or returns iamra's own error.
pub fn run(a: ExecArgs) -> Result<(), CliError> {
    let code = run_command(a)?;
    std::process::exit(code)
}

fn run_command(a: ExecArgs) -> Result<i32, CliError> {
    if let Some(first) = a.misplaced.first() {
        return Err(ExecError::Misplaced(shorten(&first.to_string_lossy(), 100)).into());
    }
    let Some(program) = a.command.first() else {
        return Err(ExecError::NoCommand.into());
    };
    child::check_runnable(program, std::env::var_os("PATH").as_deref())?;
    // Descriptors the caller gave iamra are the command's; the ones iamra opens
    // (HSM, TPM, sockets) are not.
    let inherited = child::inherited_fds();
    let remove = env_sources(
        &a.process.credential.identity,
        a.process.credential.intermediates.as_deref(),
    );
    if a.env {
        return env_mode(&a, &inherited, &remove);
    }
    if a.min_remaining.is_some() {
        return Err(ExecError::MinRemainingWithoutEnv.into());
    }
    endpoint_mode(&a, &inherited, &remove)
}

/// Reads a file for the environment checks (`None` when it cannot be read).
fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn log_notes(env: &env::ChildEnv) {
    for note in &env.notes {
        tracing::info!("{note}");
    }
}

fn env_mode(
    a: &ExecArgs,
    inherited: &[std::os::fd::RawFd],
    remove: &[OsString],
) -> Result<i32, CliError> {
    let credential = &a.process.credential;
    let params = session_params(credential)?;
    let min = a.min_remaining.unwrap_or(Duration::ZERO);
    if min.as_secs() >= u64::try_from(credential.session_duration).unwrap_or(0) {
        return Err(ExecError::MinRemainingTooLong {
            min: min.as_secs(),
            duration: credential.session_duration,
        }
        .into());
    }
    let creds = process_credentials(&a.process, a.process.refresh_before.max(min), |release| {
        fetch_once(credential, release)
    })?;
    let now = SystemClock.now();
    let left = (creds.expires_at() - now).whole_seconds();
    if a.min_remaining.is_some() && left < i64::try_from(min.as_secs()).unwrap_or(i64::MAX) {
        return Err(ExecError::TooShort {
            left: left.max(0),
            until: iamra::utc::rfc3339(creds.expires_at()),
            min: min.as_secs(),
        }
        .into());
    }
    let env = env::build(
        std::env::vars_os(),
        &read_text,
        params.region(),
        remove,
        env::Credentials::Variables(&creds),
    );
    drop(creds);
    log_notes(&env);
    child::close_on_exec_except(inherited);
    Err(child::replace_process(&a.command, &env).into())
}

fn endpoint_mode(
    a: &ExecArgs,
    inherited: &[std::os::fd::RawFd],
    remove: &[OsString],
) -> Result<i32, CliError> {
    let refresh_before = a.process.refresh_before;
    check_refresh_before(refresh_before, a.process.credential.session_duration)?;
    let p = prepare(&a.process.credential)?;
    let region = p.params.region().to_string();
    let rt = runtime()?;
    // The key is loaded (and any prompt answered) before the cache lock is taken.
    let first = process_credentials(&a.process, refresh_before, |_| {
        Ok(rt.block_on(
            p.client
                .create_session(&p.params, &p.identity, &SystemClock),
        )?)
    })?;
    let token = ecs::generate();
    // The ECS route only: every IMDS path is 404. An IMDS token is given to anyone
    // who asks, and these credentials are for the token's holder alone.
    let config = ServerConfig::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        p.params.role().clone(),
    )
    .with_ecs_token(Some(token.clone()))
    .with_imds(false)
    .with_limits(server::Limits::default().with_shutdown_grace(Duration::from_secs(1)))
    .with_threads(1);
    let server = Server::bind(config)?;
    let uri = format!("http://{}{}", server.local_addr(), ecs::PATH);
    let env = env::build(
        std::env::vars_os(),
        &read_text,
        &region,
        remove,
        env::Credentials::Endpoint {
            uri: &uri,
            token: &token,
        },
    );
    drop(token);
    log_notes(&env);
    rt.block_on(async move {
        let forwarder = child::Forwarder::new()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let source = p.into_long_running_source(clock.clone());
        let refresher =
            Refresher::spawn(source, clock.clone(), policy(refresh_before), Some(first));
        tracing::debug!("serving the command's credentials on {uri}");
        child::close_on_exec_except(inherited);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = server.run(refresher.subscribe(), clock, async move {
            let _ = stopped.await;
        });
        let supervising = async move {
            let status = forwarder.run(&a.command, env).await;
            let _ = stop.send(());
            status
        };
        let (served, status) = tokio::join!(serving, supervising);
        drop(refresher);
        if let Err(e) = served {
            tracing::error!(
                "the command's credentials endpoint failed: {}",
                iamra::error::chain(&e)
            );
        }
        Ok(child::exit_code(status?))
    })
}
