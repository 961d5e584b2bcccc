//! Shared helpers: the local Roles Anywhere endpoint (one process per test, killed on
//! drop) and running the built `iamra` binary.

pub mod der;
pub mod softhsm;
pub mod swtpm;

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

/// Runs `iamra` with `args` and a clean environment (no password variables,
/// no proxies), plus `env`.
pub fn iamra<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iamra"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    for var in [
        "IAMRA_PKCS8_PASSWORD",
        "IAMRA_PKCS12_PASSWORD",
        "IAMRA_LOG",
        "AWS_CA_BUNDLE",
        "AWS_MAX_ATTEMPTS",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        // TPM selection and secrets: each TPM test sets its own.
        "IAMRA_TPM_KEY_PASSWORD",
        "TPM2TOOLS_TCTI",
        "TCTI",
        "TPM_DEVICE",
        "TSS2_LOG",
    ] {
        cmd.env_remove(var);
    }
    // The credential cache is tested on its own (cache.rs); elsewhere every call
    // must reach the endpoint.
    cmd.env("IAMRA_NO_CACHE", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run iamra")
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

/// The built `iamra`, run from the repository root without the caller's `IAMRA_*`
/// and `AWS_*` variables, proxies or `RUST_LOG`.
pub fn clean_iamra_command() -> Command {
    clean_iamra_command_for(env!("CARGO_BIN_EXE_iamra"))
}

/// `program` (iamra itself, or a wrapper such as `script` that runs it) with the
/// clean environment of [`clean_iamra_command`].
pub fn clean_iamra_command_for(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("IAMRA_")
            || k.starts_with("AWS_")
            || k.to_ascii_lowercase().ends_with("_proxy")
            || k == "RUST_LOG"
        {
            cmd.env_remove(k);
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

/// Sends signal `name` (`TERM`, `INT`, `HUP`, `KILL`, or with a leading `-`) to
/// process `pid` directly (no `kill` program needed: a minimal system may lack
/// procps). Returns whether it was delivered.
pub fn send_signal(pid: u32, name: &str) -> bool {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = match name.trim_start_matches('-') {
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        other => panic!("send_signal: no signal {other:?} here"),
    };
    let pid = Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    kill_process(pid, signal).is_ok()
}
