//! `iamra doctor`: render the library's checklist.

use std::path::PathBuf;

use iamra::clock::SystemClock;
use iamra::doctor::{self, Status};
use iamra::session;

use super::args::DoctorArgs;
use super::{CliError, client_options, identity_spec, password_sources, runtime, write_stdout};

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
    let spec = identity_spec(&c.identity, c.intermediates.as_ref());
    let passwords = password_sources(&c.identity);
    let trust_anchor_certs = a.trust_anchor_cert.as_ref().map(iamra::input::Input::parse);
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
        identity: match &spec {
            Ok(Some(spec)) => Some(Ok(spec)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        },
        passwords: &passwords,
        params,
        trust_anchor_certs: trust_anchor_certs.as_ref(),
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
        // The one table of hints first (as for every error the CLI prints), then
        // the check's own.
        let from_table = match &check.error {
            Some(doctor::CheckError::Identity(e)) => super::hints::for_identity(e),
            Some(doctor::CheckError::Session(e)) => super::hints::for_session(e),
            _ => None,
        };
        if let Some(hint) = from_table.as_ref().or(check.hint.as_ref())
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
