//! `iamra-test-endpoint`: a local IAM Roles Anywhere `CreateSession` endpoint
//! for tests.
//!
//! It verifies requests the way the real service does (SigV4-X509 signature,
//! certificate chain to the configured trust anchors, ARNs, duration, session
//! name), with its own canonicaliser and verifier, independent of the `iamra`
//! library, and answers with the real response and error shapes. Faults can be
//! injected request by request (see [`faults`]).
//!
//! ```text
//! iamra-test-endpoint --trust-anchor FILE [--trust-anchor FILE...]
//!     --tls-cert FILE --tls-key FILE [--listen 127.0.0.1:0] [--port-file PATH]
//!     [--trust-anchor-arn ARN] [--profile-arn ARN] [--role-arn ARN...]
//!     [--max-duration 43200] [--no-role-session-name] [--clock-skew-seconds 300]
//!     [--fault SPEC...] [--request-log PATH]
//! ```
//!
//! After binding it prints exactly one line, `listening on https://127.0.0.1:PORT`,
//! and writes PORT (no newline) to `--port-file` atomically. It listens on
//! loopback addresses only and exits with status 0 on SIGTERM or SIGINT.
//! Exit status 2: bad arguments or unreadable files; 1: the listener failed.

#![forbid(unsafe_code)]
// A binary has no API: `pub` inside it means "visible in this crate", as `pub(crate)` does.
#![allow(unreachable_pub, reason = "a binary crate exports nothing")]

mod arn;
mod canonical;
mod cert;
mod crypto;
mod error;
mod faults;
mod response;
mod server;
mod verify;

#[cfg(test)]
mod tests;

use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Default trust anchor ARN.
const DEFAULT_TRUST_ANCHOR_ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";
/// Default profile ARN.
const DEFAULT_PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
/// Default role ARN.
const DEFAULT_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/iamra-test-role";

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "iamra-test-endpoint",
    version,
    about = "Local IAM Roles Anywhere CreateSession endpoint for tests (loopback only)"
)]
struct Cli {
    /// Trust anchor certificate file (PEM bundle or DER); repeatable.
    #[arg(long = "trust-anchor", value_name = "FILE", required = true)]
    trust_anchor: Vec<PathBuf>,
    /// TLS server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// TLS server private key (PEM: PKCS#8, PKCS#1 or SEC 1).
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// Loopback address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// File to write the bound port number to (atomically, no newline).
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// The trust anchor ARN that exists; its region is the endpoint's region.
    #[arg(long, value_name = "ARN", default_value = DEFAULT_TRUST_ANCHOR_ARN)]
    trust_anchor_arn: String,
    /// The profile ARN that exists.
    #[arg(long, value_name = "ARN", default_value = DEFAULT_PROFILE_ARN)]
    profile_arn: String,
    /// Role ARNs the profile allows (repeatable; default the test role).
    #[arg(long = "role-arn", value_name = "ARN", num_args = 1..)]
    role_arn: Vec<String>,
    /// Largest durationSeconds accepted.
    #[arg(long, value_name = "SECONDS", default_value_t = 43200)]
    max_duration: i64,
    /// Refuse requests that set roleSessionName (403).
    #[arg(long)]
    no_role_session_name: bool,
    /// Accepted distance between X-Amz-Date and the server clock.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    clock_skew_seconds: i64,
    /// Fault for the next request: ok, 500, 503, 429, malformed, truncated, drop,
    /// delay:MS, missing-field, empty-set, wrong-type, huge, access-denied;
    /// N*SPEC repeats, always:SPEC applies once the list is used up. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    fault: Vec<String>,
    /// Sessions expire this many seconds after issue, whatever durationSeconds asked
    /// (at least 1; for tests of expiry and refresh).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
    session_lifetime: Option<i64>,
    /// Append one JSON line per /sessions request to this file.
    #[arg(long, value_name = "PATH")]
    request_log: Option<PathBuf>,
}

/// A start-up error: message for stderr.
#[derive(Debug)]
struct StartError(String);

/// Reads the certificates of a trust anchor file (PEM bundle, else DER).
fn load_anchor_file(path: &Path) -> Result<Vec<Vec<u8>>, StartError> {
    let data = std::fs::read(path)
        .map_err(|e| StartError(format!("cannot read trust anchor {}: {e}", path.display())))?;
    let pem: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&data)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect();
    let ders = if pem.is_empty() { vec![data] } else { pem };
    for der in &ders {
        if cert::parse_der(der).is_none() {
            return Err(StartError(format!(
                "trust anchor {} holds a certificate that does not parse",
                path.display()
            )));
        }
    }
    Ok(ders)
}

/// Builds the TLS acceptor (TLS 1.2 and 1.3, ALPN http/1.1, ring provider).
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| {
            StartError(format!(
                "cannot read TLS certificate {}: {e}",
                cert.display()
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| StartError(format!("bad TLS certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError(format!(
            "no certificate in TLS certificate file {}",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError(format!("cannot read TLS key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartError(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session tickets: clients of the endpoint (iamra, curl in the benchmarks)
    // never resume a session, and each ticket is one more encryption and write.
    config.send_tls13_tickets = 0;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Checks the arguments and builds the server state.
fn build_state(cli: &Cli) -> Result<server::State, StartError> {
    let ta = arn::parse_rolesanywhere(&cli.trust_anchor_arn, arn::RaKind::TrustAnchor).ok_or_else(
        || {
            StartError(format!(
                "invalid --trust-anchor-arn {:?}",
                cli.trust_anchor_arn
            ))
        },
    )?;
    arn::parse_rolesanywhere(&cli.profile_arn, arn::RaKind::Profile)
        .ok_or_else(|| StartError(format!("invalid --profile-arn {:?}", cli.profile_arn)))?;
    let role_arns = if cli.role_arn.is_empty() {
        vec![DEFAULT_ROLE_ARN.to_string()]
    } else {
        cli.role_arn.clone()
    };
    for role in &role_arns {
        arn::parse_role(role).ok_or_else(|| StartError(format!("invalid --role-arn {role:?}")))?;
    }
    if cli.max_duration < 900 {
        return Err(StartError("--max-duration must be at least 900".into()));
    }
    if cli.clock_skew_seconds < 0 {
        return Err(StartError(
            "--clock-skew-seconds must not be negative".into(),
        ));
    }
    let faults =
        faults::FaultPlan::parse(&cli.fault).map_err(|e| StartError(format!("--fault: {e}")))?;
    let mut trust_anchors = Vec::new();
    for path in &cli.trust_anchor {
        trust_anchors.extend(load_anchor_file(path)?);
    }
    let log = match &cli.request_log {
        Some(path) => Some(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    StartError(format!("cannot open request log {}: {e}", path.display()))
                })?,
        )),
        None => None,
    };
    Ok(server::State {
        config: verify::VerifyConfig {
            region: ta.region,
            trust_anchor_arn: cli.trust_anchor_arn.clone(),
            profile_arn: cli.profile_arn.clone(),
            role_arns,
            max_duration: cli.max_duration,
            allow_role_session_name: !cli.no_role_session_name,
            clock_skew_seconds: cli.clock_skew_seconds,
            trust_anchors,
        },
        faults,
        counter: AtomicU64::new(0),
        log,
        session_lifetime: cli.session_lifetime,
    })
}

/// Writes the port number to `path` through a temporary file and a rename.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(name);
    std::fs::write(&tmp, port.to_string())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds, announces and serves until a signal arrives.
async fn run(cli: Cli) -> Result<(), (i32, StartError)> {
    if !cli.listen.ip().is_loopback() {
        return Err((
            2,
            StartError(format!("--listen {} is not a loopback address", cli.listen)),
        ));
    }
    let state = Arc::new(build_state(&cli).map_err(|e| (2, e))?);
    let acceptor = tls_acceptor(&cli.tls_cert, &cli.tls_key).map_err(|e| (2, e))?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| {
            (
                1,
                StartError(format!("cannot listen on {}: {e}", cli.listen)),
            )
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| (1, StartError(format!("listener address: {e}"))))?;
    if let Some(path) = &cli.port_file {
        write_port_file(path, local.port()).map_err(|e| {
            (
                1,
                StartError(format!("cannot write port file {}: {e}", path.display())),
            )
        })?;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on https://{local}");
    let _ = stdout.flush();
    drop(stdout);
    server::serve(state, listener, acceptor, shutdown_signal()).await;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iamra-test-endpoint: error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err((code, StartError(message))) = runtime.block_on(run(cli)) {
        eprintln!("iamra-test-endpoint: error: {message}");
        std::process::exit(code);
    }
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
}
