//! Command-line definitions, flag for flag compatible with aws_signing_helper: every
//! command's flags, so that this module imports no command (the commands import it).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use iamra::output::server;

/// IAM Roles Anywhere credential helper (a drop-in replacement for aws_signing_helper).
#[derive(Debug, Parser)]
#[command(name = "iamra", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Secrets never need the command line: passwords come from IAMRA_PKCS8_PASSWORD / \
IAMRA_PKCS12_PASSWORD, from --pkcs8-password-file / --pkcs12-password-file, or from a prompt when a \
terminal is attached.\nExit status: 0 success, 1 failure, 2 usage error."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Logging flags, accepted by every command.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Logging: stderr only, secrets never logged at any level.
#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Debug logs on stderr (same as --log-level iamra=debug,warn).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_DEBUG")]
    pub debug: bool,
    /// Log level (error, warn, info, debug, trace) or a RUST_LOG-style filter such as
    /// `iamra=debug,hyper=info`. Default: RUST_LOG, else warn.
    #[arg(long, global = true, value_name = "FILTER", env = "IAMRA_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "IAMRA_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// `iamra: warning: message key=value`, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands. Each one's flags are defined only when it is the one parsed
/// (`defer`): a cold `credential-process` does not build the flags of the six other
/// commands that take an identity (about 0.4 ms of CPU per process). The flag
/// structs below carry `//` comments, not doc comments: once deferred, a struct's
/// doc comment would replace the command's description in help, man pages and
/// completions.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
pub enum Command {
    /// Obtain temporary credentials and print them in the credential_process JSON format.
    CredentialProcess(CredentialProcessArgs),
    /// Sign a fixed test string with the configured private key (diagnostic).
    SignString(SignStringArgs),
    /// Print data about the certificate (diagnostic).
    ReadCertificateData(ReadCertificateDataArgs),
    /// Check files, certificate, key, chain, ARNs, endpoint, clock and AWS config, then
    /// try CreateSession; prints a checklist with a hint for each failure.
    Doctor(DoctorArgs),
    /// Keep a profile of the shared credentials file (~/.aws/credentials) filled with
    /// fresh credentials, refreshed before they expire.
    Update(UpdateArgs),
    /// Serve credentials on a local IMDSv2-compatible endpoint (and, with a token, an ECS
    /// container-credentials one), refreshed in the background.
    Serve(ServeArgs),
    /// Run a command with credentials kept fresh for it alone: a private ECS
    /// container-credentials endpoint (or, with --env, environment variables).
    Exec(ExecArgs),
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command into a folder.
    Man {
        /// Write iamra.1 and iamra-COMMAND.1 into this folder instead of printing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Parse a Go-style boolean value.
pub(crate) fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "TRUE" | "True" | "t" | "T" | "1" => Ok(true),
        "false" | "FALSE" | "False" | "f" | "F" | "0" => Ok(false),
        other => Err(format!(
            "{} is not a boolean (use true or false)",
            iamra::error::quote(other)
        )),
    }
}

// Where the identity comes from, shared by every command that signs.
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// Certificate: PEM or DER file, a PEM file holding key and certificate, or a PKCS#12 bundle;
    /// `-` reads stdin, `env:NAME` the variable NAME.
    #[arg(long, value_name = "FILE", env = "IAMRA_CERTIFICATE")]
    pub certificate: Option<PathBuf>,
    /// Private key: PKCS#1, SEC 1, PKCS#8 or encrypted PKCS#8, PEM or DER (a file, `-` for stdin,
    /// or `env:NAME`). Defaults to --certificate.
    #[arg(long, value_name = "FILE", env = "IAMRA_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key (or a PKCS#12 bundle). Visible in `ps`: prefer
    /// IAMRA_PKCS8_PASSWORD or --pkcs8-password-file.
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub pkcs8_password: Option<String>,
    /// Read the PKCS#8 key password from FILE (`-` for stdin; one trailing newline is removed).
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS8_PASSWORD_FILE")]
    pub pkcs8_password_file: Option<PathBuf>,
    /// Password of a PKCS#12 bundle. Visible in `ps`: prefer IAMRA_PKCS12_PASSWORD or
    /// --pkcs12-password-file.
    #[arg(long, value_name = "PASSWORD")]
    pub pkcs12_password: Option<String>,
    /// Read the PKCS#12 bundle password from FILE (`-` for stdin; one trailing newline is removed).
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS12_PASSWORD_FILE")]
    pub pkcs12_password_file: Option<PathBuf>,
    /// OS certificate store selector (Windows/macOS only; an error on Linux).
    #[arg(long, value_name = "SELECTOR", env = "IAMRA_CERT_SELECTOR")]
    pub cert_selector: Option<String>,
    /// Windows certificate store name (an error on Linux).
    #[arg(long, value_name = "NAME", env = "IAMRA_SYSTEM_STORE_NAME")]
    pub system_store_name: Option<String>,
    /// Pick the latest-expiring OS-store certificate (an error on Linux).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_USE_LATEST_EXPIRING_CERTIFICATE")]
    pub use_latest_expiring_certificate: bool,
    /// PKCS#11 module (default: the URI's module-path/module-name, else p11-kit-proxy).
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS11_LIB")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Re-use the user PIN for CKA_ALWAYS_AUTHENTICATE keys (PKCS#11).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_REUSE_PIN")]
    pub reuse_pin: bool,
    /// Read the PKCS#11 user PIN from FILE (`-` for stdin); also IAMRA_PKCS11_PIN.
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// TPM key password. Visible in `ps`: prefer IAMRA_TPM_KEY_PASSWORD or
    /// --tpm-key-password-file.
    #[arg(long, value_name = "PASSWORD")]
    pub tpm_key_password: Option<String>,
    /// Read the TPM key password from FILE (`-` for stdin).
    #[arg(long, value_name = "FILE", env = "IAMRA_TPM_KEY_PASSWORD_FILE")]
    pub tpm_key_password_file: Option<PathBuf>,
    /// The TPM key has no password.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_NO_TPM_KEY_PASSWORD")]
    pub no_tpm_key_password: bool,
}

// Flags of every command that calls CreateSession (`credential-process`, and the
// long-running modes).
#[derive(Debug, Args, Clone)]
pub struct CredentialArgs {
    /// Identity flags.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// PEM bundle of intermediate CA certificates, sent as X-Amz-X509-Chain.
    #[arg(long, value_name = "FILE", env = "IAMRA_INTERMEDIATES")]
    pub intermediates: Option<PathBuf>,
    /// ARN of the role to assume.
    #[arg(long, value_name = "ARN", default_value = "", env = "IAMRA_ROLE_ARN")]
    pub role_arn: String,
    /// ARN of the Roles Anywhere profile.
    #[arg(
        long,
        value_name = "ARN",
        default_value = "",
        env = "IAMRA_PROFILE_ARN"
    )]
    pub profile_arn: String,
    /// ARN of the trust anchor; its region is the default region.
    #[arg(
        long,
        value_name = "ARN",
        default_value = "",
        env = "IAMRA_TRUST_ANCHOR_ARN"
    )]
    pub trust_anchor_arn: String,
    /// Session duration in seconds (900 to 43200).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    pub session_duration: i64,
    /// Role session name (the profile must allow it).
    #[arg(long, value_name = "NAME", env = "IAMRA_ROLE_SESSION_NAME")]
    pub role_session_name: Option<String>,
    /// Signing region (default: the trust anchor's region).
    #[arg(long, value_name = "REGION", env = "IAMRA_REGION")]
    pub region: Option<String>,
    /// Endpoint URL instead of https://rolesanywhere.REGION.amazonaws.com (a path prefix is kept).
    #[arg(long, value_name = "URL", env = "IAMRA_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Trust only the CA certificates in FILE (PEM) for the endpoint (also AWS_CA_BUNDLE).
    #[arg(long, value_name = "FILE", env = "IAMRA_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Do not verify the endpoint's TLS certificate (dangerous).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_NO_VERIFY_SSL")]
    pub no_verify_ssl: bool,
    /// Allow a plain http:// --endpoint on another host (the credentials then cross
    /// the network unencrypted); http:// to this host is always allowed.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_ALLOW_PLAIN_HTTP")]
    pub allow_plain_http: bool,
    /// Accepted for compatibility: HTTPS_PROXY and NO_PROXY are always honoured.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_WITH_PROXY")]
    pub with_proxy: bool,
    /// Connect timeout in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 5,
        env = "IAMRA_CONNECT_TIMEOUT"
    )]
    pub connect_timeout: u64,
    /// Timeout of each attempt in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 20,
        env = "IAMRA_TIMEOUT"
    )]
    pub timeout: u64,
    /// Attempts in all, retries included (also AWS_MAX_ATTEMPTS).
    #[arg(long, value_name = "N", env = "IAMRA_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Longest one CreateSession call may take in seconds, every attempt and retry
    /// included (the AWS CLI waits for credential-process without a limit of its own).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        env = "IAMRA_TOTAL_TIMEOUT"
    )]
    pub total_timeout: u64,
}

// Flags of `credential-process`: the credential flags plus the cache.
#[derive(Debug, Args, Clone)]
pub struct CredentialProcessArgs {
    /// Credential flags.
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// Do not use the credential cache (every call makes a CreateSession).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_NO_CACHE")]
    pub no_cache: bool,
    /// Re-use cached credentials until this long before they expire (e.g. 300, 90s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, env = "IAMRA_REFRESH_BEFORE")]
    pub refresh_before: std::time::Duration,
}

/// Parses `300`, `300s`, `5m` or `1h` into a duration.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n <= 7 * 24 * 3600)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| {
            format!(
                "{} is not a duration (use seconds, or a number with s, m or h)",
                iamra::error::quote(s)
            )
        })
}

/// `sign-string --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// JSON string of hex.
    Json,
    /// Hex.
    Text,
    /// Raw bytes.
    Bin,
}

/// `sign-string --digest`.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum DigestArg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

// Flags of `sign-string`.
#[derive(Debug, Args, Clone)]
pub struct SignStringArgs {
    /// Identity flags.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "json", env = "IAMRA_FORMAT")]
    pub format: FormatArg,
    /// Digest used for the signature.
    #[arg(
        long,
        value_enum,
        default_value = "SHA256",
        ignore_case = true,
        env = "IAMRA_DIGEST"
    )]
    pub digest: DigestArg,
}

// Flags of `read-certificate-data`.
#[derive(Debug, Args, Clone)]
pub struct ReadCertificateDataArgs {
    /// Certificate file (PEM or DER).
    #[arg(long, value_name = "FILE", env = "IAMRA_CERTIFICATE")]
    pub certificate: Option<PathBuf>,
    /// OS certificate store selector (an error on Linux).
    #[arg(long, value_name = "SELECTOR", env = "IAMRA_CERT_SELECTOR")]
    pub cert_selector: Option<String>,
    /// Windows certificate store name (an error on Linux).
    #[arg(long, value_name = "NAME", env = "IAMRA_SYSTEM_STORE_NAME")]
    pub system_store_name: Option<String>,
    /// PKCS#11 module (default: the URI's module-path/module-name, else p11-kit-proxy).
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS11_LIB")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Read the PKCS#11 user PIN from FILE (`-` for stdin), for a token that shows its
    /// certificates only after login; also IAMRA_PKCS11_PIN.
    #[arg(long, value_name = "FILE", env = "IAMRA_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

// Flags of `serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Credential flags.
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// TCP port to listen on (0: any free port; the chosen one is printed).
    #[arg(long, value_name = "PORT", default_value_t = server::DEFAULT_PORT, env = "IAMRA_PORT")]
    pub port: u16,
    /// Address to listen on: 127.0.0.1, ::1, or (with --allow-non-loopback-bind) another one.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        env = "IAMRA_BIND"
    )]
    pub bind: IpAddr,
    /// Allow a --bind address that other hosts can reach (for example a pod IP for a
    /// sidecar); the hop limit must then be 1.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_ALLOW_NON_LOOPBACK_BIND")]
    pub allow_non_loopback_bind: bool,
    /// IP TTL / IPv6 hop limit set on every connection (1: answers cannot leave this host
    /// or link, as on EC2).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=255), env = "IAMRA_HOP_LIMIT")]
    pub hop_limit: u8,
    /// Threads answering requests (default: half the cores, at least 1, at most 4; the
    /// clients run on this machine too and need the other half).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), env = "IAMRA_THREADS")]
    pub threads: Option<u16>,
    /// Also serve the ECS container-credentials endpoint, with a token generated at start
    /// and written to FILE (mode 0600) for AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "ecs_token_from_file",
        env = "IAMRA_ECS_TOKEN_FILE"
    )]
    pub ecs_token_file: Option<PathBuf>,
    /// Also serve the ECS endpoint, with the token read from FILE (one line; `-` for
    /// stdin, `env:NAME` for a variable).
    #[arg(long, value_name = "FILE", env = "IAMRA_ECS_TOKEN_FROM_FILE")]
    pub ecs_token_from_file: Option<PathBuf>,
    /// Write the --ecs-token-file readable by this group (name or number; mode 0640)
    /// instead of mode 0600, for clients running as another user of that group.
    #[arg(
        long,
        value_name = "GROUP",
        requires = "ecs_token_file",
        env = "IAMRA_ECS_TOKEN_FILE_GROUP"
    )]
    pub ecs_token_file_group: Option<String>,
    /// Serve the IMDSv2 routes. IMDSv2 has no secret: any local process can get
    /// credentials from them. Default: true, and false when an ECS token is configured
    /// (only holders of the token then get credentials).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL", env = "IAMRA_IMDS")]
    pub imds: Option<bool>,
    /// Refresh this long before the credentials expire (e.g. 300, 90s, 5m, 1h), minus a
    /// random tenth of the wait.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, env = "IAMRA_REFRESH_BEFORE")]
    pub refresh_before: Duration,
}

// Flags of `update`.
#[derive(Debug, Args, Clone)]
pub struct UpdateArgs {
    /// Credential flags.
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// Profile (section) of the credentials file to write; created if absent.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "default",
        env = "IAMRA_PROFILE"
    )]
    pub profile: String,
    /// Write the credentials once and exit, instead of refreshing them until stopped.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_ONCE")]
    pub once: bool,
    /// Refresh this long before the credentials expire (e.g. 300, 90s, 5m, 1h), minus a
    /// random tenth of the wait.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, env = "IAMRA_REFRESH_BEFORE")]
    pub refresh_before: Duration,
}

// Flags of `doctor`: the credential flags plus what only diagnostics need.
#[derive(Debug, Args, Clone)]
pub struct DoctorArgs {
    /// Credential flags, as for credential-process.
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// The trust anchor's CA certificate(s) (PEM): verify the chain locally.
    #[arg(long, value_name = "FILE", env = "IAMRA_TRUST_ANCHOR_CERT")]
    pub trust_anchor_cert: Option<PathBuf>,
    /// Do not contact the endpoint (no TLS, clock or CreateSession check).
    #[arg(long, env = "IAMRA_OFFLINE")]
    pub offline: bool,
    /// AWS config file to inspect (default: AWS_CONFIG_FILE, else ~/.aws/config).
    #[arg(long, value_name = "FILE", env = "IAMRA_AWS_CONFIG")]
    pub aws_config: Option<PathBuf>,
}

// Flags of `exec`.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Exit status: the command's (128+N if signal N ended it); 127 if the command is not found, 126 if it cannot be run; 1 if iamra fails before starting it; 2 usage error."
)]
pub struct ExecArgs {
    /// Credential and cache flags, as for credential-process.
    #[command(flatten)]
    pub process: CredentialProcessArgs,
    /// Give the command the credentials as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION (for tools that read only
    /// variables) instead of a private refreshing endpoint; they are not refreshed.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL", env = "IAMRA_EXEC_ENV")]
    pub env: bool,
    /// With --env: refuse to start the command unless the credentials stay valid this
    /// long (e.g. 90s, 30m, 2h); cached ones with less left are replaced first.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "IAMRA_MIN_REMAINING")]
    pub min_remaining: Option<Duration>,
    /// Words before `--` (an error: the command goes after `--`).
    #[arg(hide = true, value_name = "WORD")]
    pub misplaced: Vec<OsString>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}
