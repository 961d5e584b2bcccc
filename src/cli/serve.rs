//! `iamra serve`: a local IMDSv2-compatible (and optionally ECS-compatible)
//! credentials endpoint, refreshed in the background.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use iamra::clock::{Clock, SystemClock};
use iamra::output::server::{self, Server, ServerConfig, ecs};
use iamra::refresh::{CredentialSource as _, Refresher};

use super::CliError;
use super::args::ServeArgs;
use super::daemon::{check_refresh_before, policy, refresh_error, shutdown_signal};

/// Completes when the refresher has stopped for good, with its reason.
async fn stopped_reason(
    rx: &mut tokio::sync::watch::Receiver<iamra::refresh::Snapshot>,
) -> Arc<str> {
    loop {
        if let Some(reason) = rx.borrow_and_update().stopped.clone() {
            return reason;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A value for a shell `export` line.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:[]+=@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn token_file_for_clients(path: &Path) -> Option<String> {
    let input = iamra::input::Input::parse(path);
    let p = input.as_file()?;
    Some(
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string(),
    )
}

/// The id of group `name` (a number, or a name from /etc/group).
fn group_id(name: &str) -> Result<u32, CliError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| {
            CliError::Unsupported(format!(
                "--ecs-token-file-group {}: no such group in /etc/group (a group id works too)",
                iamra::error::quote(name)
            ))
        })
}

/// The listening socket systemd passed to this process (socket activation:
/// `LISTEN_PID` is ours and `LISTEN_FDS=1`), if any. Called first thing, while the
/// process has one thread and before any PKCS#11 module or TPM connection could
/// have taken descriptor 3: the `LISTEN_*` variables are removed from the
/// environment (so that nothing started later believes the socket is its own), and
/// the adopted descriptor is made close-on-exec.
fn activated_listener() -> Result<Option<std::net::TcpListener>, CliError> {
    let pid = std::env::var("LISTEN_PID");
    let fds = std::env::var("LISTEN_FDS");
    if pid.is_err() && fds.is_err() {
        return Ok(None);
    }
    // `serve` calls this before it starts a runtime, loads a PKCS#11 module or opens
    // a TPM: the process has a single thread.
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        super::remove_env_var_single_threaded(name);
    }
    let (Ok(pid), Ok(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim() != std::process::id().to_string() {
        return Ok(None); // meant for another process
    }
    if fds.trim() != "1" {
        return Err(CliError::Unsupported(format!(
            "LISTEN_FDS={}: iamra serve takes exactly one socket from systemd (one ListenStream= in the .socket unit)",
            iamra::error::quote(&fds)
        )));
    }
    use std::os::unix::fs::FileTypeExt as _;
    let is_socket = std::fs::metadata("/proc/self/fd/3")
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Err(CliError::Unsupported(
            "LISTEN_FDS=1 but file descriptor 3 is not a socket".into(),
        ));
    }
    // SAFETY: systemd hands the process named by LISTEN_PID (checked above to be this
    // one) ownership of file descriptor 3 (SD_LISTEN_FDS_START), checked above to be an
    // open socket; this runs before iamra opens anything else (no token, TPM or
    // runtime descriptor can be number 3), nothing uses descriptor 3 by number, and it
    // is wrapped exactly once.
    #[allow(unsafe_code, reason = "adopting the socket systemd passed (fd 3)")]
    let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(3) };
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::CLOEXEC).map_err(|e| {
        CliError::Unsupported(format!(
            "cannot make the socket passed by systemd close-on-exec: {e}"
        ))
    })?;
    Ok(Some(listener))
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(a: ServeArgs) -> Result<(), CliError> {
    check_refresh_before(a.refresh_before, a.credential.session_duration)?;
    // Before anything else opens a descriptor (see activated_listener).
    let activated = activated_listener()?;
    let p = super::prepare(&a.credential)?;
    let role_arn = p.params.role().clone();
    // This runtime refreshes the credentials and waits for signals; the server
    // accepts and answers on threads of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let ecs_token = match (&a.ecs_token_file, &a.ecs_token_from_file) {
            (Some(_), _) => Some(ecs::generate()),
            (None, Some(path)) => Some(ecs::read_token_file(path)?),
            (None, None) => None,
        };
        let token_group = a
            .ecs_token_file_group
            .as_deref()
            .map(group_id)
            .transpose()?;
        // An ECS token restricts access only if the IMDS routes (which need no
        // secret) are off: it turns them off unless --imds says otherwise.
        let imds = a.imds.unwrap_or(ecs_token.is_none());
        if imds && ecs_token.is_some() {
            tracing::warn!(
                "--imds with an ECS token: any local process can get credentials from the IMDS routes, without the token"
            );
        }
        let config = ServerConfig::new(SocketAddr::new(a.bind, a.port), role_arn)
            .with_allow_non_loopback(a.allow_non_loopback_bind)
            .with_hop_limit(a.hop_limit)
            .with_ecs_token(ecs_token.clone())
            .with_imds(imds)
            .with_threads(a.threads.map_or_else(server::default_threads, usize::from));
        let server = match activated {
            Some(listener) => {
                tracing::info!(
                    "using the socket passed by systemd; --bind and --port do not apply"
                );
                Server::from_listener(listener, config)?
            }
            None => Server::bind(config)?,
        };
        if let (Some(path), Some(token)) = (&a.ecs_token_file, &ecs_token) {
            ecs::write_token_file(path, token, token_group)?;
        }
        drop(ecs_token);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let source = p.into_long_running_source(clock.clone());
        // Fail fast: no endpoint without credentials to serve.
        let first = tokio::select! {
            first = source.fetch() => first.map_err(refresh_error)?,
            () = &mut shutdown => return Ok(()),
        };
        let refresher =
            Refresher::spawn(source, clock.clone(), policy(a.refresh_before), Some(first));
        let mut lines = String::new();
        if let Some(endpoint) = server.imds_endpoint() {
            lines.push_str(&format!(
                "export AWS_EC2_METADATA_SERVICE_ENDPOINT={}\n",
                shell_quote(&endpoint)
            ));
        }
        if let Some(uri) = server.ecs_uri() {
            lines.push_str(&format!(
                "export AWS_CONTAINER_CREDENTIALS_FULL_URI={}\n",
                shell_quote(&uri)
            ));
            if let Some(file) = a
                .ecs_token_file
                .as_deref()
                .or(a.ecs_token_from_file.as_deref())
                .and_then(token_file_for_clients)
            {
                lines.push_str(&format!(
                    "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n",
                    shell_quote(&file)
                ));
            }
        }
        // The endpoint to point SDKs at is the payload: stdout (closed stdout is fine).
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(lines.as_bytes()).and_then(|()| out.flush());
        }
        tracing::info!("listening on {}", server.local_addr());
        // Stop on a signal, or when refreshing stopped for good (a refused PIN or
        // password: never retried, see refresh.rs).
        let stopped: std::sync::Mutex<Option<Arc<str>>> = std::sync::Mutex::new(None);
        let mut watch = refresher.subscribe();
        let stop = async {
            tokio::select! {
                () = &mut shutdown => {}
                reason = stopped_reason(&mut watch) => {
                    *stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
                }
            }
        };
        server.run(refresher.subscribe(), clock, stop).await?;
        drop(refresher);
        match stopped
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(reason) => Err(CliError::AuthenticationStopped(reason.to_string())),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_values_are_quoted_when_needed() {
        assert_eq!(shell_quote("http://[::1]:9911/"), "http://[::1]:9911/");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
