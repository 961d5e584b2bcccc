//! `doctor`: check, in order, everything that makes `CreateSession` fail, and say
//! which part is wrong with a hint, before (or instead of) asking AWS.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::time::OffsetDateTime;

use crate::cert::{self, Certificate};
use crate::clock::Clock;
use crate::identity::{CertificateSource, IdentityError, KeySource};
use crate::identity::{Identity, IdentitySpec};
use crate::input::Input;
use crate::key::PasswordSource;
use crate::session::{Client, SessionError, SessionParams};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but should be fixed.
    Warn,
    /// Will make CreateSession fail.
    Fail,
    /// Not run because an earlier check failed, or not asked for.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// Outcome.
    pub status: Status,
    /// What was checked, and the finding.
    pub message: String,
    /// How to fix it, for warnings and failures, where the check itself knows.
    pub hint: Option<String>,
    /// The error behind a failure, for a front end's table of hints (which takes
    /// precedence over `hint` when it has one for the error).
    pub error: Option<CheckError>,
}

/// The error behind a failed check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CheckError {
    /// Loading the identity failed.
    Identity(Arc<IdentityError>),
    /// A parameter, the endpoint or the service failed.
    Session(Arc<SessionError>),
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn push(&mut self, status: Status, message: impl Into<String>, hint: Option<&str>) {
        self.checks.push(Check {
            status,
            message: message.into(),
            hint: hint.map(str::to_string),
            error: None,
        });
    }

    /// A failure caused by `error`; `hint` is the fallback when the front end's
    /// table has none for it.
    fn fail(&mut self, error: CheckError, hint: Option<&str>) {
        let message = match &error {
            CheckError::Identity(e) => describe(e.as_ref()),
            CheckError::Session(e) => describe(e.as_ref()),
        };
        self.checks.push(Check {
            status: Status::Fail,
            message,
            hint: hint.map(str::to_string),
            error: Some(error),
        });
    }

    /// True when no check failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// What `doctor` is asked to check.
pub struct DoctorConfig<'a> {
    /// The identity (`None`: no certificate was given; an error: a certificate or
    /// key value that cannot be what it says, such as a malformed URI).
    pub identity: Option<Result<&'a IdentitySpec, &'a crate::identity::IdentityError>>,
    /// Password sources.
    pub passwords: &'a dyn PasswordSource,
    /// The parameters, or why they are wrong.
    pub params: Result<SessionParams, SessionError>,
    /// The CA certificate(s) of the trust anchor, to verify the chain locally.
    pub trust_anchor_certs: Option<&'a Input>,
    /// The HTTPS client (None when it could not be built; the error is in `client_error`).
    pub client: Option<&'a Client>,
    /// Why the client could not be built.
    pub client_error: Option<String>,
    /// Skip the network checks.
    pub offline: bool,
    /// The AWS config file to inspect.
    pub aws_config: Option<PathBuf>,
}

/// Checks 1-4: the inputs are readable, the certificate is usable, the key matches
/// it. Returns the identity when it loads.
fn check_identity(
    r: &mut Report,
    spec: &IdentitySpec,
    passwords: &dyn PasswordSource,
    now: OffsetDateTime,
) -> Option<Identity> {
    let mut files_ok = true;
    for (what, input) in [
        ("certificate file", certificate_input(spec)),
        ("private key file", key_input(spec)),
        ("intermediates file", spec.intermediates.as_ref()),
    ] {
        let Some(input) = input else { continue };
        match input.read(what) {
            Ok(_) => r.push(Status::Pass, format!("{what} {input} is readable"), None),
            Err(e) => {
                files_ok = false;
                r.push(
                    Status::Fail,
                    describe(&e),
                    Some("check the path and the file's permissions"),
                );
            }
        }
    }
    let key_file = key_input(spec)
        .or_else(|| certificate_input(spec).filter(|_| spec.private_key.is_none()))
        .and_then(|i| i.as_file());
    if let Some(p) = key_file
        && let Ok(meta) = std::fs::metadata(p)
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 && holds_private_key(p) {
            r.push(
                Status::Warn,
                format!(
                    "private key file {} is readable by other users (mode {mode:o})",
                    p.display()
                ),
                Some(&format!("chmod 600 {}", p.display())),
            );
        }
    }

    // 2-4. Certificate, key, chain.
    if files_ok {
        match spec.load_without_validity_check(passwords) {
            Ok(id) => {
                check_certificate(r, &id.certificate, now);
                // Security: the spec prints itself redacted (no pin-value).
                r.push(
                    Status::Pass,
                    format!("the private key matches certificate {}", spec.certificate),
                    None,
                );
                return Some(id);
            }
            Err(e) => r.fail(
                CheckError::Identity(Arc::new(e)),
                Some("see `iamra credential-process` errors in README.md"),
            ),
        }
    } else {
        r.push(Status::Skip, "certificate, key and chain not checked", None);
    }
    None
}

fn certificate_input(spec: &IdentitySpec) -> Option<&Input> {
    match &spec.certificate {
        CertificateSource::Input(i) => Some(i),
        _ => None,
    }
}

fn key_input(spec: &IdentitySpec) -> Option<&Input> {
    match &spec.private_key {
        Some(KeySource::Input(i)) => Some(i),
        _ => None,
    }
}

fn describe(e: &dyn std::error::Error) -> String {
    crate::error::chain(e)
}

/// Runs every check.
pub async fn run(config: DoctorConfig<'_>, clock: &dyn Clock) -> Report {
    let mut r = Report::default();
    let now = clock.now();

    // 1-4. Files, certificate, key, chain.
    let identity = match config.identity {
        Some(Ok(spec)) => check_identity(&mut r, spec, config.passwords, now),
        Some(Err(e)) => {
            r.push(Status::Fail, describe(e), None);
            r.push(Status::Skip, "certificate, key and chain not checked", None);
            None
        }
        None => {
            r.push(
                Status::Fail,
                "no certificate given",
                Some("pass --certificate FILE (and --private-key FILE)"),
            );
            r.push(Status::Skip, "certificate, key and chain not checked", None);
            None
        }
    };
    match (&identity, config.trust_anchor_certs) {
        (Some(id), Some(anchors)) => match cert::load_chain(anchors) {
            Ok(anchor_certs) => match crate::chain::verify_path(&id.certificate, &id.chain, &anchor_certs, now) {
                Ok(path) => r.push(Status::Pass, format!("chain verifies: {}", path.join(" → ")), None),
                Err(e) => r.push(
                    Status::Fail,
                    format!("chain to the trust anchor is broken: {e}"),
                    Some("the trust anchor must hold the CA that issued the certificate; pass the intermediates with --intermediates"),
                ),
            },
            Err(e) => r.push(Status::Fail, describe(&e), Some("--trust-anchor-cert takes the trust anchor's CA certificate(s) in PEM")),
        },
        (Some(_), None) => r.push(
            Status::Skip,
            "chain not verified locally",
            Some("pass --trust-anchor-cert FILE (the trust anchor's CA certificate) to check it"),
        ),
        (None, _) => {}
    }

    // 5. ARNs and regions.
    let params = match config.params {
        Ok(p) => {
            r.push(
                Status::Pass,
                format!(
                    "ARNs are well-formed; region {}, endpoint {}",
                    p.region(),
                    p.url()
                ),
                None,
            );
            Some(p)
        }
        Err(e) => {
            r.fail(
                CheckError::Session(Arc::new(e)),
                Some("copy the ARNs from the IAM Roles Anywhere console"),
            );
            None
        }
    };

    // 6-7. Endpoint and clock.
    let mut reachable = false;
    if config.offline {
        r.push(Status::Skip, "network checks skipped (--offline)", None);
    } else if let Some(e) = &config.client_error {
        r.push(Status::Fail, format!("HTTPS client: {e}"), None);
    } else if let (Some(client), Some(p)) = (config.client, &params) {
        match client.probe(p.url()).await {
            Ok(date) => {
                reachable = true;
                r.push(
                    Status::Pass,
                    format!("{} is reachable over TLS", p.url()),
                    None,
                );
                match date {
                    Some(server) => {
                        let skew = (server - now).whole_seconds();
                        if skew.abs() > 300 {
                            r.push(Status::Fail, format!("the local clock is {skew} s away from the endpoint's"), Some("synchronise the clock (NTP): signatures are valid for 5 minutes"));
                        } else if skew.abs() > 60 {
                            r.push(
                                Status::Warn,
                                format!("the local clock is {skew} s away from the endpoint's"),
                                Some("synchronise the clock (NTP)"),
                            );
                        } else {
                            r.push(
                                Status::Pass,
                                format!("the local clock agrees with the endpoint's ({skew:+} s)"),
                                None,
                            );
                        }
                    }
                    None => r.push(
                        Status::Skip,
                        "the endpoint sent no Date header: clock not checked",
                        None,
                    ),
                }
            }
            Err(e) => r.fail(
                CheckError::Session(Arc::new(e)),
                Some("check --endpoint, the network, HTTPS_PROXY/NO_PROXY and --ca-bundle"),
            ),
        }
    }

    // 8. AWS config.
    check_aws_config(&mut r, config.aws_config.as_deref());

    // 9. The real thing.
    if config.offline {
        r.push(Status::Skip, "CreateSession not tried (--offline)", None);
    } else if let (true, Some(client), Some(p), Some(id)) =
        (reachable, config.client, &params, &identity)
    {
        match client.create_session(p, id, clock).await {
            Ok(c) => r.push(
                Status::Pass,
                format!(
                    "CreateSession succeeded: access key {}, expires {}",
                    c.access_key_id(),
                    c.expiration()
                ),
                None,
            ),
            Err(e) => r.fail(CheckError::Session(Arc::new(e)), None),
        }
    } else {
        r.push(
            Status::Skip,
            "CreateSession not tried: an earlier check failed",
            None,
        );
    }
    r
}

fn holds_private_key(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|d| {
        let t = String::from_utf8_lossy(&d);
        t.contains("PRIVATE KEY-----")
            || crate::key::is_pkcs12(&d)
            || (!crate::pem::looks_like_pem(&d))
    })
}

fn check_certificate(r: &mut Report, c: &Certificate, now: OffsetDateTime) {
    let name = c.source().display().to_string();
    r.push(
        Status::Pass,
        format!(
            "certificate {name} parses: {} ({}), serial {}",
            c.subject(),
            c.public_key().describe(),
            c.serial_decimal()
        ),
        None,
    );
    if c.is_ca() {
        r.push(
            Status::Fail,
            format!("certificate {name} is a CA certificate, not a leaf"),
            Some("use the end-entity certificate issued to this machine"),
        );
    }
    match c.check_validity(now) {
        Ok(()) => {
            let days = (c.not_after() - now).whole_days();
            if days < 7 {
                r.push(
                    Status::Warn,
                    format!(
                        "certificate {name} expires in {days} day(s), at {}",
                        cert::rfc3339(c.not_after())
                    ),
                    Some("renew it soon"),
                );
            } else {
                r.push(
                    Status::Pass,
                    format!(
                        "certificate {name} is valid until {}",
                        cert::rfc3339(c.not_after())
                    ),
                    None,
                );
            }
        }
        Err(e) => r.push(
            Status::Fail,
            describe(&e),
            Some("renew the certificate, or check the system clock"),
        ),
    }
    let (ku, eku) = usages(c);
    match ku {
        Some(false) => r.push(
            Status::Fail,
            format!("certificate {name} has keyUsage without digitalSignature"),
            Some("issue it with keyUsage digitalSignature"),
        ),
        _ => r.push(Status::Pass, "keyUsage allows signatures", None),
    }
    if eku == Some(false) {
        r.push(
            Status::Warn,
            format!("certificate {name} has extendedKeyUsage without clientAuth"),
            Some("issue it with extendedKeyUsage clientAuth"),
        );
    }
}

/// (keyUsage has digitalSignature, EKU has clientAuth or any); None when absent.
fn usages(c: &Certificate) -> (Option<bool>, Option<bool>) {
    use x509_parser::prelude::*;
    let Ok((_, x)) = X509Certificate::from_der(c.der()) else {
        return (None, None);
    };
    let ku = x
        .key_usage()
        .ok()
        .flatten()
        .map(|k| k.value.digital_signature());
    let eku = x
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| e.value.client_auth || e.value.any);
    (ku, eku)
}

/// Which profiles of the AWS config call iamra or aws_signing_helper, and whether
/// their flags are complete.
fn check_aws_config(r: &mut Report, path: Option<&Path>) {
    let Some(path) = path else {
        r.push(Status::Skip, "no AWS config file to inspect", None);
        return;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        r.push(
            Status::Skip,
            format!("AWS config {} not found", path.display()),
            None,
        );
        return;
    };
    let mut profile = String::new();
    let mut found = 0;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            profile = name
                .trim()
                .trim_start_matches("profile ")
                .trim()
                .to_string();
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if k.trim() != "credential_process"
            || !(v.contains("iamra") || v.contains("aws_signing_helper"))
        {
            continue;
        }
        found += 1;
        let missing: Vec<&str> = ["--trust-anchor-arn", "--profile-arn", "--role-arn"]
            .into_iter()
            .chain(
                (!v.contains("pkcs11:") || !v.contains("--certificate")).then_some("--certificate"),
            )
            .filter(|f| !v.contains(f))
            .collect();
        if missing.is_empty() {
            r.push(
                Status::Pass,
                format!("AWS config profile \"{profile}\" calls the helper with complete flags"),
                None,
            );
        } else {
            r.push(
                Status::Fail,
                format!("AWS config profile \"{profile}\" calls the helper without {}", missing.join(", ")),
                Some("the reference helper then falls back to an OS certificate store; add the missing flags"),
            );
        }
    }
    if found == 0 {
        r.push(
            Status::Skip,
            format!(
                "no profile in {} uses credential_process with iamra",
                path.display()
            ),
            None,
        );
    }
}
