//! `iamra doctor`: render the library's checklist.

use std::path::PathBuf;

use iamra::clock::SystemClock;
use iamra::doctor::{self, Status};
use iamra::session;

use super::args::DoctorArgs;
use super::{CliError, client_options, identity_source, password_sources, runtime, write_stdout};

/// Runs the checks and prints `✔`/`⚠`/`✘`/`–` lines; fails when a check failed.
pub fn run(a: DoctorArgs) -> Result<(), CliError> {
    let c = &a.credential;
    let params = session::SessionParams::new(
        &c.trust_anchor_arn,
        &c.profile_arn,
        &c.role_arn,
        c.region.as_deref(),
        c.endpoint.as_deref(),
        c.session_duration,
        c.role_session_name.as_deref(),
    )
    .and_then(|p| p.check_transport(c.allow_plain_http).map(|()| p));
    let source = identity_source(&c.identity, c.intermediates.clone());
    let passwords = password_sources(&c.identity);
    let (client, client_error) = match session::Client::new(client_options(c)) {
        Ok(client) => (Some(client), None),
        Err(e) => (None, Some(iamra::error::chain(&e))),
    };
    let aws_config = a.aws_config.clone().or_else(|| {
        std::env::var_os("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/config")))
    });
    let config = doctor::DoctorConfig {
        source: &source,
        passwords: &passwords,
        params,
        trust_anchor_certs: a.trust_anchor_cert.as_deref(),
        client: client.as_ref(),
        client_error,
        offline: a.offline,
        aws_config,
    };
    let report = runtime()?.block_on(doctor::run(config, &SystemClock));
    let mut out = String::new();
    for check in &report.checks {
        let mark = match check.status {
            Status::Pass => "✔",
            Status::Warn => "⚠",
            Status::Fail => "✘",
            Status::Skip => "–",
        };
        out.push_str(&format!("{mark} {}\n", check.message));
        if let Some(hint) = &check.hint
            && check.status != Status::Pass
        {
            out.push_str(&format!("    hint: {hint}\n"));
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if failed == 0 {
        out.push_str("all checks passed\n");
    } else {
        out.push_str(&format!("{failed} check(s) failed\n"));
    }
    write_stdout(out.as_bytes())?;
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::DoctorFailed(failed))
    }
}
