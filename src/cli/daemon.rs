//! What the long-running commands (`update`, `serve`, `exec`) share: the refresh
//! schedule from `--refresh-before`, its check against `--session-duration`, the
//! CLI error for a failed refresh, and the stop signal.

use std::time::Duration;

use iamra::refresh::{RefreshError, RefreshPolicy};

use super::CliError;

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called
/// (inside the runtime), not when the future is first polled, so a signal during
/// start-up is not lost.
pub(super) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot watch for SIGTERM/SIGINT ({e}); stop iamra with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("signal received; stopping");
    }
}

/// The CLI error for a failed refresh.
pub(super) fn refresh_error(e: RefreshError) -> CliError {
    match e {
        RefreshError::Session(e) => CliError::Session(e),
        RefreshError::Identity(e) => CliError::Identity(e),
        other => CliError::Unsupported(iamra::error::chain(&other)),
    }
}

/// Checks `--refresh-before` against `--session-duration`.
pub(super) fn check_refresh_before(
    refresh_before: Duration,
    session_duration: i64,
) -> Result<(), CliError> {
    if refresh_before.as_secs() >= u64::try_from(session_duration).unwrap_or(0) {
        return Err(CliError::Unsupported(format!(
            "--refresh-before {}s must be shorter than --session-duration {session_duration}",
            refresh_before.as_secs()
        )));
    }
    Ok(())
}

/// The refresh schedule for `--refresh-before`.
pub(super) fn policy(refresh_before: Duration) -> RefreshPolicy {
    RefreshPolicy::default().with_refresh_before(refresh_before)
}
