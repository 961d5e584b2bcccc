//! Command-line definitions, flag for flag compatible with aws_signing_helper.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
pub enum Command {
    /// Obtain temporary credentials and print them in the credential_process JSON format.
    CredentialProcess(CredentialArgs),
    /// Sign a fixed test string with the configured private key (diagnostic).
    SignString(SignStringArgs),
    /// Print data about the certificate (diagnostic).
    ReadCertificateData(ReadCertificateDataArgs),
    /// Print the version.
    Version,
}

/// Parse a Go-style boolean value.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "TRUE" | "True" | "t" | "T" | "1" => Ok(true),
        "false" | "FALSE" | "False" | "f" | "F" | "0" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (use true or false)")),
    }
}

/// Where the identity comes from, shared by every command that signs.
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// Certificate: PEM or DER file, a PEM file holding key and certificate, or a PKCS#12 bundle.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// Private key: PKCS#1, SEC 1, PKCS#8 or encrypted PKCS#8, PEM or DER. Defaults to --certificate.
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key (or a PKCS#12 bundle). Visible in `ps`: prefer
    /// IAMRA_PKCS8_PASSWORD or --pkcs8-password-file.
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub pkcs8_password: Option<String>,
    /// Read the PKCS#8 key password from FILE (`-` for stdin; one trailing newline is removed).
    #[arg(long, value_name = "FILE")]
    pub pkcs8_password_file: Option<PathBuf>,
    /// Password of a PKCS#12 bundle. Visible in `ps`: prefer IAMRA_PKCS12_PASSWORD or
    /// --pkcs12-password-file.
    #[arg(long, value_name = "PASSWORD")]
    pub pkcs12_password: Option<String>,
    /// Read the PKCS#12 bundle password from FILE (`-` for stdin; one trailing newline is removed).
    #[arg(long, value_name = "FILE")]
    pub pkcs12_password_file: Option<PathBuf>,
    /// OS certificate store selector (Windows/macOS only; an error on Linux).
    #[arg(long, value_name = "SELECTOR")]
    pub cert_selector: Option<String>,
    /// Windows certificate store name (an error on Linux).
    #[arg(long, value_name = "NAME")]
    pub system_store_name: Option<String>,
    /// Pick the latest-expiring OS-store certificate (an error on Linux).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub use_latest_expiring_certificate: bool,
    /// PKCS#11 module (PKCS#11 tokens are not supported by this version).
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Re-use the user PIN for CKA_ALWAYS_AUTHENTICATE keys (PKCS#11).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub reuse_pin: bool,
    /// Read the PKCS#11 user PIN from FILE (`-` for stdin); also IAMRA_PKCS11_PIN.
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// TPM key password. Visible in `ps`: prefer IAMRA_TPM_KEY_PASSWORD or
    /// --tpm-key-password-file.
    #[arg(long, value_name = "PASSWORD")]
    pub tpm_key_password: Option<String>,
    /// Read the TPM key password from FILE (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub tpm_key_password_file: Option<PathBuf>,
    /// The TPM key has no password.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub no_tpm_key_password: bool,
    /// Print debug logs on stderr (secrets are never logged).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub debug: bool,
}

/// Flags of every command that calls CreateSession (`credential-process`, and the
/// long-running modes).
#[derive(Debug, Args, Clone)]
pub struct CredentialArgs {
    /// Identity flags.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// PEM bundle of intermediate CA certificates, sent as X-Amz-X509-Chain.
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<PathBuf>,
    /// ARN of the role to assume.
    #[arg(long, value_name = "ARN", default_value = "")]
    pub role_arn: String,
    /// ARN of the Roles Anywhere profile.
    #[arg(long, value_name = "ARN", default_value = "")]
    pub profile_arn: String,
    /// ARN of the trust anchor; its region is the default region.
    #[arg(long, value_name = "ARN", default_value = "")]
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
    #[arg(long, value_name = "NAME")]
    pub role_session_name: Option<String>,
    /// Signing region (default: the trust anchor's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Endpoint URL instead of https://rolesanywhere.REGION.amazonaws.com (a path prefix is kept).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Trust only the CA certificates in FILE (PEM) for the endpoint (also AWS_CA_BUNDLE).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Do not verify the endpoint's TLS certificate (dangerous).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub no_verify_ssl: bool,
    /// Accepted for compatibility: HTTPS_PROXY and NO_PROXY are always honoured.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub with_proxy: bool,
    /// Connect timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub connect_timeout: u64,
    /// Timeout of each attempt in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub timeout: u64,
    /// Attempts in all, retries included (also AWS_MAX_ATTEMPTS).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
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

/// Flags of `sign-string`.
#[derive(Debug, Args, Clone)]
pub struct SignStringArgs {
    /// Identity flags.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: FormatArg,
    /// Digest used for the signature.
    #[arg(long, value_enum, default_value = "SHA256", ignore_case = true)]
    pub digest: DigestArg,
}

/// Flags of `read-certificate-data`.
#[derive(Debug, Args, Clone)]
pub struct ReadCertificateDataArgs {
    /// Certificate file (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// OS certificate store selector (an error on Linux).
    #[arg(long, value_name = "SELECTOR")]
    pub cert_selector: Option<String>,
    /// Windows certificate store name (an error on Linux).
    #[arg(long, value_name = "NAME")]
    pub system_store_name: Option<String>,
    /// PKCS#11 module (PKCS#11 tokens are not supported by this version).
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Print debug logs on stderr.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, default_value = "false", value_name = "BOOL")]
    pub debug: bool,
}
