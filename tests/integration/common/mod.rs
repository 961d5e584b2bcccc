//! Shared helpers: the local Roles Anywhere endpoint (one process per test, killed on
//! drop) and running the built `iamra` binary in a clean environment; long-running
//! iamra processes and waiting ([`daemon`]), HTTP and IMDS on loopback ([`http`]),
//! refresh checks ([`refresh`]), boto3 ([`boto3`]), the key backends one test body
//! runs against ([`backend`]), SoftHSM2 tokens ([`softhsm`]) and swtpm TPMs
//! ([`swtpm`]).

pub mod backend;
pub mod boto3;
pub mod daemon;
pub mod der;
pub mod http;
pub mod refresh;
pub mod softhsm;
pub mod swtpm;

pub use boto3::*;
pub use daemon::*;
pub use http::*;
pub use refresh::*;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const TRUST_ANCHOR_ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";
pub const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/iamra-test-role";
pub const PASSWORD: &str = "correct horse battery staple";

/// The three ARN flags with the test PKI's ARNs.
pub const ARN_FLAGS: [&str; 6] = [
    "--trust-anchor-arn",
    TRUST_ANCHOR_ARN,
    "--profile-arn",
    PROFILE_ARN,
    "--role-arn",
    ROLE_ARN,
];

/// `certs-testdata/<rel>`.
pub fn td(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("certs-testdata")
        .join(rel)
}

/// The local endpoint program: the example `iamra-test-endpoint`, built by
/// `cargo test` next to this test binary (`target/<profile>/examples/`). Panics
/// with what to run when it is missing (`cargo test --test integration` alone does
/// not build examples).
pub fn endpoint_program() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/integration-HASH -> target/<profile>/examples/
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let program = profile_dir.join("examples").join("iamra-test-endpoint");
    assert!(
        program.is_file(),
        "{} is missing: build it with `cargo build --example iamra-test-endpoint` \
         (with the same --release/--profile as the tests), or run plain `cargo test`",
        program.display()
    );
    program
}

/// A running local endpoint.
pub struct Endpoint {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    /// Starts the endpoint with the test PKI's root as the trust anchor.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the endpoint with extra flags (faults, ARNs...).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(endpoint_program())
            .arg("--trust-anchor")
            .arg(td("ca/root.pem"))
            .arg("--tls-cert")
            .arg(td("tls/server.pem"))
            .arg("--tls-key")
            .arg(td("tls/server.key"))
            .args(["--listen", "127.0.0.1:0", "--role-arn", ROLE_ARN])
            .arg("--request-log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start iamra-test-endpoint");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("endpoint did not announce its port: {line:?}"));
        Endpoint {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The request log: one JSON object per CreateSession request received.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The standard flags for a credential-process call against this endpoint.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--trust-anchor-arn".into(),
            TRUST_ANCHOR_ARN.into(),
            "--profile-arn".into(),
            PROFILE_ARN.into(),
            "--role-arn".into(),
            ROLE_ARN.into(),
            "--endpoint".into(),
            self.url(),
            "--ca-bundle".into(),
            td("tls/ca.pem").display().to_string(),
        ]
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `iamra` with `args` in the clean environment of [`iamra_command`], and
/// waits for it.
pub fn iamra<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Output {
    iamra_command(args, env).output().expect("run iamra")
}

/// The `iamra` command with `args`: the clean environment of [`clean_iamra_command`],
/// then [`with_iamra_args`].
pub fn iamra_command<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Command {
    with_iamra_args(clean_iamra_command(), args, env)
}

/// `cmd` (a clean iamra command, perhaps through a wrapper) with `args`, no standard
/// input, the credential cache off (it is tested on its own, in cache.rs: elsewhere
/// every call must reach the endpoint), then `env` on top.
pub fn with_iamra_args<S: AsRef<std::ffi::OsStr>>(
    mut cmd: Command,
    args: &[S],
    env: &[(&str, &str)],
) -> Command {
    cmd.args(args)
        .stdin(Stdio::null())
        .env("IAMRA_NO_CACHE", "true")
        .envs(env.iter().copied());
    cmd
}

/// Asserts a failure: exit status 1, nothing on stdout, and the given stderr.
#[track_caller]
pub fn assert_fails_with(out: &Output, expected_stderr: &str) {
    assert_fails_with_status(out, 1, expected_stderr);
}

/// The exit status of a refused PIN or password, or a locked key.
pub const EXIT_AUTHENTICATION: i32 = 77;

/// Asserts a refused PIN or password: exit status 77, nothing on stdout, and the
/// given stderr.
#[track_caller]
pub fn assert_refused_with(out: &Output, expected_stderr: &str) {
    assert_fails_with_status(out, EXIT_AUTHENTICATION, expected_stderr);
}

/// Asserts a failure with exit status `code`, nothing on stdout, and the given
/// stderr.
#[track_caller]
pub fn assert_fails_with_status(out: &Output, code: i32, expected_stderr: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, expected_stderr, "stderr differs");
    assert!(
        out.stdout.is_empty(),
        "stdout must be empty, got {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(code), "exit status");
}

/// Parses credential-process stdout, checking the exact shape.
#[track_caller]
pub fn assert_credentials(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        out.status.success(),
        "iamra failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.ends_with('\n'), "no trailing newline");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&str> = stdout
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|kv| kv.split(':').next())
        .map(|k| k.trim_matches('"'))
        .collect();
    assert_eq!(
        keys,
        [
            "Version",
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration"
        ]
    );
    assert_eq!(v["Version"], 1);
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    v
}

/// The first of `tools` that cannot be run (`TOOL --version`), if any.
pub fn first_missing_tool(tools: &[&'static str]) -> Option<&'static str> {
    tools.iter().copied().find(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    })
}

/// Whether these tests run under CI: any non-empty `CI` other than `false` or `0`
/// (GitHub Actions and GitLab set `true`, some systems `1`). Under CI a test never
/// skips for want of a tool: it fails.
pub fn under_ci() -> bool {
    ci_value_means_ci(std::env::var_os("CI").as_deref())
}

/// The rule behind [`under_ci`], for one value of `CI`.
pub fn ci_value_means_ci(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether a test that needs `missing` may go on: `true` when nothing is missing.
/// Under CI ([`under_ci`]) a missing tool fails the test (CI must never skip one); elsewhere
/// the test is skipped with a note naming the packages to install.
pub fn tools_present(missing: Option<&str>, tests: &str, packages: &str) -> bool {
    let Some(missing) = missing else {
        return true;
    };
    if under_ci() {
        panic!("{missing} is missing: install {packages}; CI must not skip the {tests} tests");
    }
    eprintln!(
        "note: skipping a {tests} test: {missing} is not installed (apt-get install {packages})"
    );
    false
}

/// Credential flags for the endpoint and a certificate of the test PKI.
pub fn credential_flags(ep: &Endpoint, cert: &Path, key: Option<&Path>) -> Vec<String> {
    let mut f = vec![
        "--certificate".to_string(),
        cert.display().to_string(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
        "--session-duration".into(),
        "900".into(),
    ];
    if let Some(k) = key {
        f.extend(["--private-key".into(), k.display().to_string()]);
    }
    f.extend(ep.flags());
    f
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The built `iamra` binary.
pub fn iamra_path() -> &'static str {
    env!("CARGO_BIN_EXE_iamra")
}

/// Whether the variable `name` is one the test's own environment must not pass on
/// to `iamra`: its configuration (`IAMRA_*`, `RUST_LOG`), the AWS SDKs' (`AWS_*`),
/// the TPM's and PKCS#11 modules' (TCTI, TSS2, SoftHSM2, p11-kit), proxies, TLS
/// trust (`SSL_CERT_*`) and systemd socket activation (`LISTEN_*`). A test sets
/// what it needs on top.
pub fn is_cleared_variable(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "RUST_LOG",
        "TPM2TOOLS_TCTI",
        "TPM2OPENSSL_TCTI",
        "TCTI",
        "TPM_DEVICE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    const PREFIXES: &[&str] = &[
        "IAMRA_", "AWS_", "TSS2_", "SOFTHSM", "P11_KIT", "PKCS11", "LISTEN_",
    ];
    NAMES.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || name.to_ascii_lowercase().ends_with("_proxy")
}

/// The built `iamra`, run from the repository root in a clean environment: none of
/// the variables [`is_cleared_variable`] names. Every test starts `iamra` through
/// this function (or [`clean_iamra_command_via`], [`clean_iamra_command_for`]).
pub fn clean_iamra_command() -> Command {
    clean_iamra_command_for(iamra_path())
}

/// `wrapper WRAPPER_ARGS… iamra` (`setsid --wait`, `setpriv …`, `python3 -c SCRIPT`)
/// with the clean environment of [`clean_iamra_command`]; the caller adds iamra's
/// arguments.
pub fn clean_iamra_command_via(wrapper: &str, wrapper_args: &[&str]) -> Command {
    let mut cmd = clean_iamra_command_for(wrapper);
    cmd.args(wrapper_args).arg(iamra_path());
    cmd
}

/// `program` (a copy of iamra, or a wrapper such as `script` that is given iamra's
/// command line) with the clean environment of [`clean_iamra_command`].
pub fn clean_iamra_command_for(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        if is_cleared_variable(&name.to_string_lossy()) {
            cmd.env_remove(name);
        }
    }
    cmd
}

#[test]
fn ci_is_any_value_but_empty_false_or_zero() {
    use std::ffi::OsStr;
    for yes in ["true", "1", "yes", "TRUE", "woodpecker"] {
        assert!(ci_value_means_ci(Some(OsStr::new(yes))), "CI={yes}");
    }
    for no in ["", "false", "0"] {
        assert!(!ci_value_means_ci(Some(OsStr::new(no))), "CI={no:?}");
    }
    assert!(!ci_value_means_ci(None));
}

/// Runs a fixture-building command, failing the test (with its output) unless it
/// succeeds.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the ignored test `name` (`module::test`) of this test binary in a child
/// process with `env` set (a test cannot change its own process's environment),
/// and fails unless it ran and passed.
#[track_caller]
pub fn run_child_test<K, V>(name: &str, env: impl IntoIterator<Item = (K, V)>)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// Variables that [`the_clean_command_passes_on_none_of_the_callers_variables`]
/// sets in a child test process: each must be kept from iamra.
const CALLERS_VARIABLES: &[&str] = &[
    "RUST_LOG",
    "IAMRA_LOG",
    "IAMRA_PKCS11_PIN",
    "IAMRA_TPM_KEY_PASSWORD",
    "IAMRA_NO_CACHE",
    "AWS_ACCESS_KEY_ID",
    "AWS_CA_BUNDLE",
    "AWS_MAX_ATTEMPTS",
    "AWS_PROFILE",
    "TPM2TOOLS_TCTI",
    "TPM2OPENSSL_TCTI",
    "TCTI",
    "TPM_DEVICE",
    "TSS2_LOG",
    "SOFTHSM2_CONF",
    "P11_KIT_SERVER_ADDRESS",
    "PKCS11SPY",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

/// A variable of the caller that the clean command keeps.
const KEPT_VARIABLE: &str = "CLEAN_COMMAND_KEEPS_THIS";

#[test]
fn only_iamras_aws_tpm_pkcs11_proxy_tls_and_socket_variables_are_cleared() {
    for name in CALLERS_VARIABLES {
        assert!(is_cleared_variable(name), "{name} must be cleared");
    }
    for name in [
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "CI",
        "CARGO_TARGET_DIR",
        "PROXY",
        "SSL_VERSION",
        KEPT_VARIABLE,
    ] {
        assert!(!is_cleared_variable(name), "{name} must be kept");
    }
}

/// The clean commands run in a child test process ([`clean_command_child`]) whose
/// environment holds every name of [`CALLERS_VARIABLES`]: none reaches the program
/// they start.
#[test]
fn the_clean_command_passes_on_none_of_the_callers_variables() {
    run_child_test(
        "common::clean_command_child",
        CALLERS_VARIABLES
            .iter()
            .map(|name| (*name, "set-by-the-caller"))
            .chain([(KEPT_VARIABLE, "kept")]),
    );
}

/// Run by [`the_clean_command_passes_on_none_of_the_callers_variables`] with the
/// variables set.
#[test]
#[ignore = "run by the_clean_command_passes_on_none_of_the_callers_variables in a child process"]
fn clean_command_child() {
    if std::env::var_os(KEPT_VARIABLE).is_none() {
        return;
    }
    for name in CALLERS_VARIABLES {
        assert!(std::env::var_os(name).is_some(), "the caller set {name}");
    }
    let env_of = |mut cmd: Command| -> Vec<(String, String)> {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // `sh -c env IAMRA`: the wrapper form (iamra's path is the script's $0).
    for (how, cmd) in [
        ("clean_iamra_command_for", clean_iamra_command_for("env")),
        (
            "clean_iamra_command_via",
            clean_iamra_command_via("sh", &["-c", "env"]),
        ),
    ] {
        let env = env_of(cmd);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        for name in CALLERS_VARIABLES {
            assert!(!names.contains(name), "{how}: {name} reached the child");
        }
        assert!(names.contains(&KEPT_VARIABLE), "{how}: {names:?}");
        assert!(names.contains(&"PATH"), "{how}: {names:?}");
    }
    // What a test sets on top is passed on, the cleared names included.
    let mut cmd = clean_iamra_command_for("env");
    cmd.env("SOFTHSM2_CONF", "/set/by/the/test");
    let env = env_of(cmd);
    assert!(env.contains(&("SOFTHSM2_CONF".into(), "/set/by/the/test".into())));
    assert_eq!(env.iter().filter(|(k, _)| k == "SOFTHSM2_CONF").count(), 1);
    // iamra_command: the cleared names removed, then the cache off and `env`.
    let cmd = iamra_command(&["--version"], &[("IAMRA_LOG", "debug")]);
    let set: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    for name in CALLERS_VARIABLES {
        let expected = match *name {
            "IAMRA_NO_CACHE" => Some("true".to_string()),
            "IAMRA_LOG" => Some("debug".to_string()),
            _ => None,
        };
        assert!(
            set.contains(&(name.to_string(), expected)),
            "{name}: {set:?}"
        );
    }
}
