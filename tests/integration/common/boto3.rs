//! boto3 and the AWS CLI (v1) as real clients: one virtual environment per build
//! folder, and botocore's credential chain run in a clean environment.

use std::path::{Path, PathBuf};
use std::process::Command;

static VENV: std::sync::Mutex<Option<Result<PathBuf, String>>> = std::sync::Mutex::new(None);

/// The Python of a virtual environment with boto3 and the AWS CLI (v1) from PyPI,
/// made once per build folder (both in one pip run, so that no test's pip run
/// changes botocore under another test). `None` (after saying why) when pip cannot
/// install them outside CI; under CI that is a failure.
pub fn boto3_python() -> Option<PathBuf> {
    let mut guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let result = guard.get_or_insert_with(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("boto3-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(".boto3-awscli-ready");
        if ready.exists() {
            return Ok(python);
        }
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "boto3",
            "awscli",
        ]))?;
        run(Command::new(&python).args(["-c", "import boto3"]))?;
        std::fs::write(&ready, "").map_err(|e| e.to_string())?;
        Ok(python)
    });
    match result {
        Ok(p) => Some(p.clone()),
        Err(e) if super::under_ci() => {
            panic!("under CI, and boto3 could not be installed from PyPI: {e}")
        }
        Err(e) => {
            eprintln!("skipping a boto3 test: boto3 could not be installed from PyPI: {e}");
            None
        }
    }
}

const BOTO3_SCRIPT: &str = r#"
import json, boto3
c = boto3.session.Session().get_credentials()
if c is None:
    raise SystemExit("botocore found no credentials")
f = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "access_key": f.access_key,
                  "secret_key": f.secret_key, "token": f.token}))
"#;

/// Runs botocore's credential chain in a clean environment plus `env`; returns what
/// it found.
pub fn boto3_credentials(python: &Path, home: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = Command::new(python);
    cmd.args(["-c", BOTO3_SCRIPT])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("BOTO_CONFIG", home.join("no-boto-config"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("IAMRA_NO_CACHE", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
