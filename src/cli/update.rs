//! `iamra update`: keeps one profile of the shared credentials file filled with
//! fresh credentials (or writes it once with `--once`).

use std::path::PathBuf;
use std::sync::Arc;

use iamra::clock::{Clock, SystemClock};
use iamra::credentials::TemporaryCredentials;
use iamra::output::credentials_file::{self, CredentialsFileError};
use iamra::refresh::{CredentialSource as _, Refresher};
use rand::Rng as _;

use super::CliError;
use super::args::UpdateArgs;
use super::daemon::{check_refresh_before, policy, refresh_error, shutdown_signal};

async fn write(
    path: PathBuf,
    profile: String,
    creds: Arc<TemporaryCredentials>,
) -> Result<(), CredentialsFileError> {
    let shown = path.clone();
    let result = tokio::task::spawn_blocking(move || {
        credentials_file::write_profile(&path, &profile, &creds)
    })
    .await;
    match result {
        Ok(r) => r,
        Err(e) => Err(CredentialsFileError::Io {
            what: "write (the writer stopped)",
            path: shown,
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Runs `update`.
pub fn run(a: UpdateArgs) -> Result<(), CliError> {
    credentials_file::check_profile(&a.profile)?;
    let path = credentials_file::default_path()?;
    credentials_file::check_path(&path)?;
    if !a.once {
        check_refresh_before(a.refresh_before, a.credential.session_duration)?;
    }
    let p = super::prepare(&a.credential)?;
    super::runtime()?.block_on(async move {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let source = p.into_long_running_source(clock.clone());
        let first = tokio::select! {
            first = source.fetch() => first,
            () = &mut shutdown => return Ok(()),
        };
        let describe = |c: &TemporaryCredentials| {
            format!(
                "wrote credentials {} (valid until {}) to profile {} of {}",
                c.access_key_id(),
                iamra::utc::rfc3339(c.expires_at()),
                a.profile,
                path.display()
            )
        };
        if a.once {
            let c = Arc::new(first.map_err(refresh_error)?);
            write(path.clone(), a.profile.clone(), c.clone()).await?;
            tracing::info!("{}", describe(&c));
            return Ok(());
        }
        let initial = match first {
            Ok(c) => {
                // A file that cannot be written is a configuration error: say so now.
                write(path.clone(), a.profile.clone(), Arc::new(c.clone())).await?;
                tracing::info!("{}", describe(&c));
                Some(c)
            }
            Err(e) if !e.is_permanent() => {
                tracing::warn!(
                    "cannot obtain credentials yet; retrying in the background: {}",
                    iamra::error::chain(&e)
                );
                None
            }
            Err(e) => return Err(refresh_error(e)),
        };
        let mut written = u64::from(initial.is_some());
        let policy = policy(a.refresh_before);
        let refresher = Refresher::spawn(source, clock, policy.clone(), initial);
        let mut rx = refresher.subscribe();
        let mut failures = 0u32;
        loop {
            let snapshot = rx.borrow_and_update().clone();
            if let Some(reason) = snapshot.stopped {
                return Err(CliError::AuthenticationStopped(reason.to_string()));
            }
            if snapshot.generation > written
                && let Some(c) = snapshot.credentials
            {
                match write(path.clone(), a.profile.clone(), c.clone()).await {
                    Ok(()) => {
                        written = snapshot.generation;
                        failures = 0;
                        tracing::info!("{}", describe(&c));
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let delay = policy.retry_delay(failures, false, rand::rng().random());
                        tracing::error!(
                            "cannot write the new credentials (attempt {failures}); retrying in {}s: {}",
                            delay.as_secs_f64().ceil(),
                            iamra::error::chain(&e)
                        );
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(delay) => continue,
                        }
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                changed = rx.changed() => if changed.is_err() { break },
            }
        }
        drop(refresher);
        Ok(())
    })
}
