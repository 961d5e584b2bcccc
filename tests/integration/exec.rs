//! `iamra exec`: real clients (boto3, the AWS CLI) as the command, reading
//! credentials through their own provider chains from the private endpoint while
//! the local endpoint issues sessions that expire within seconds; exit status and
//! signals; stdio passed through byte for byte; where the token may (not) appear;
//! refresh failure during the job; `--env`; every key source, hardware included.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::softhsm::{MODULE, PIN, SoftHsm};
use crate::common::*;

/// `exec` with the RSA file identity against `ep`, `extra` flags, then `-- command`.
fn exec_args(ep: &Endpoint, extra: &[&str], command: &[&str]) -> Vec<String> {
    let mut args = vec!["exec".to_string()];
    args.extend(credential_flags(ep, &td("rsa2048/combined.pem"), None));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(command.iter().map(|s| s.to_string()));
    args
}

/// The `iamra` command with `HOME` in `home` (so that no real ~/.aws is read).
fn exec_command(args: &[String], home: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = iamra_command(args, env);
    cmd.env("HOME", home);
    cmd
}

/// Runs `iamra exec`, waiting at most [`PATIENCE`].
fn run(args: &[String], home: &Path, env: &[(&str, &str)]) -> Output {
    let child = exec_command(args, home, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_within_patience(child)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The access key ids the endpoint issued, in order.
fn issued(ep: &Endpoint) -> Vec<String> {
    let mut log = log_entries(ep);
    log.sort_by_key(|v| v["n"].as_u64());
    log.iter()
        .filter_map(|v| v["access_key_id"].as_str().map(str::to_string))
        .collect()
}

/// Every file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|d| d.windows(needle.len()).any(|w| w == needle)) {
            found.push(p);
        }
    }
    found
}

// ---------------------------------------------------------------------------------
// Real clients

/// boto3 in the command: polls its own credentials (container provider) until it
/// has seen three sets, checking each against a direct read of the endpoint.
const BOTO3_REFRESH: &str = r#"
import json, os, time, urllib.request, boto3
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
session = boto3.session.Session()
creds = session.get_credentials()
seen = []
start = time.time()
while len(seen) < 3 and time.time() - start < 50:
    f = creds.get_frozen_credentials()
    if not seen or seen[-1]["access_key"] != f.access_key:
        req = urllib.request.Request(uri, headers={"Authorization": token})
        doc = json.load(urllib.request.urlopen(req))
        seen.append({"access_key": f.access_key, "method": creds.method,
                     "same_as_endpoint": doc["AccessKeyId"] != f.access_key or
                         (doc["SecretAccessKey"], doc["Token"]) == (f.secret_key, f.token)})
    time.sleep(0.3)
print(json.dumps({"seen": seen, "region": session.region_name, "pid": os.getpid()}))
"#;

#[test]
fn boto3_in_the_command_sees_refreshed_credentials_without_restarting() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start_with(&["--session-lifetime", "6"]);
    let home = tempfile::tempdir().unwrap();
    let out = run(
        &exec_args(&ep, &[], &[python.to_str().unwrap(), "-c", BOTO3_REFRESH]),
        home.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = v["seen"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "three sessions seen by one process: {v}");
    let issued = issued(&ep);
    for s in seen {
        assert_eq!(s["method"], "container-role");
        assert_eq!(s["same_as_endpoint"], true);
        assert!(
            issued.contains(&s["access_key"].as_str().unwrap().to_string()),
            "{s} not issued by the endpoint: {issued:?}"
        );
    }
    // The trust anchor's region, since none was set.
    assert_eq!(v["region"], "us-east-1");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // Reaped: the command's process is gone.
    let pid = v["pid"].as_u64().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

/// The AWS CLI (v1, from PyPI) of the boto3 venv.
fn aws_cli() -> Option<PathBuf> {
    Some(boto3_python()?.with_file_name("aws"))
}

#[test]
fn the_aws_cli_in_the_command_uses_the_endpoint_and_its_refreshed_credentials() {
    let Some(aws) = aws_cli() else { return };
    let ep = Endpoint::start_with(&["--session-lifetime", "4"]);
    let home = tempfile::tempdir().unwrap();
    // `aws configure list` shows the source and the access key's last four
    // characters; twice, a refresh apart, from one job.
    let script = format!(
        "{aws} configure list && sleep 5 && {aws} configure list",
        aws = aws.display()
    );
    let out = run(
        &exec_args(&ep, &[], &["sh", "-c", &script]),
        home.path(),
        &[
            ("AWS_PROFILE", "stale"),
            ("AWS_ACCESS_KEY_ID", "AKIAOLDOLDOLDOLD0000"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("access_key"))
        .map(|l| {
            assert!(l.contains("container-role"), "{l}");
            l.split_whitespace().nth(1).unwrap()
        })
        .collect();
    assert_eq!(keys.len(), 2, "{text}");
    let region = text
        .lines()
        .find(|l| l.trim_start().starts_with("region"))
        .unwrap();
    assert!(
        region.contains("us-east-1") && region.contains("env"),
        "{region}"
    );
    let issued = issued(&ep);
    for k in &keys {
        let last4 = k.trim_start_matches('*');
        assert!(
            issued.iter().any(|i| i.ends_with(last4)),
            "{k} not issued: {issued:?}"
        );
    }
    assert_ne!(
        keys[0], keys[1],
        "the second call saw the refreshed credentials"
    );
}

/// boto3 reports where its credentials came from and what they are.
const BOTO3_WHICH: &str = r#"
import json, boto3
s = boto3.session.Session()
c = s.get_credentials()
f = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "access_key": f.access_key, "region": s.region_name}))
"#;

#[test]
fn every_source_boto3_would_prefer_is_kept_from_the_command() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = AKIAFILEFILEFILE0000\naws_secret_access_key = s\n[stale]\naws_access_key_id = AKIASTALESTALE000000\naws_secret_access_key = s\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        "[default]\nregion = eu-west-3\ncredential_process = /bin/false\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".boto"),
        "[Credentials]\naws_access_key_id = AKIABOTOBOTOBOTO0000\naws_secret_access_key = s\n",
    )
    .unwrap();
    let out = run(
        &exec_args(&ep, &[], &[python.to_str().unwrap(), "-c", BOTO3_WHICH]),
        home.path(),
        &[
            ("AWS_PROFILE", "stale"),
            ("AWS_DEFAULT_PROFILE", "stale"),
            ("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV0000"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/other"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "container-role");
    assert_eq!(issued(&ep), [v["access_key"].as_str().unwrap()]);
    assert_eq!(v["region"], "ap-south-1", "a region already set is kept");
}

// ---------------------------------------------------------------------------------
// Behaving like the command

#[test]
fn exit_status_is_the_commands() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let out = run(
            &exec_args(&ep, &[], &["sh", "-c", script]),
            home.path(),
            &[],
        );
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{script}");
    }
}

#[test]
fn signals_sent_to_iamra_reach_the_command() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    // The command traps each signal and exits with its own status; only iamra is
    // signalled.
    let script = r#"trap 'echo got INT; exit 42' INT; trap 'echo got TERM; exit 43' TERM; trap 'echo got HUP; exit 44' HUP; echo ready $$; while :; do sleep 0.05; done"#;
    for (signal, code) in [("INT", 42), ("TERM", 43), ("HUP", 44)] {
        let mut child = exec_command(
            &exec_args(&ep, &[], &["sh", "-c", script]),
            home.path(),
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pid: u32 = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
        // The endpoint is up while the command runs...
        let port = listening_port_of(child.id());
        assert!(send_signal(child.id(), signal));
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        assert_eq!(rest, format!("got {signal}\n"));
        // ... and gone with it; the command was reaped.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}

/// The loopback port `pid` listens on (from /proc/net/tcp and its sockets).
fn listening_port_of(pid: u32) -> u16 {
    wait_for("the endpoint to listen", || {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .flatten()
            .filter_map(|e| {
                let l = std::fs::read_link(e.path()).ok()?;
                let l = l.to_str()?;
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        table.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // state 0A: LISTEN
            (f.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == f.get(9)))
                .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
                .flatten()
        })
    })
}

#[test]
fn stdin_and_stdout_pass_through_byte_for_byte() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..4096u32)
        .flat_map(|i| (0..=255u8).map(move |b| b ^ (i as u8)))
        .collect();
    let mut child = exec_command(&exec_args(&ep, &[], &["cat"]), home.path(), &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
    });
    let out = output_within_patience(child);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "stdout differs from stdin");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn the_token_is_only_in_the_commands_environment_and_guards_the_endpoint() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let script = r#"echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; echo "$AWS_CONTAINER_AUTHORIZATION_TOKEN"; read done"#;
    let mut child = exec_command(
        &exec_args(&ep, &["--log-level", "trace"], &["sh", "-c", script]),
        home.path(),
        // The cache on: its files are searched for the token too.
        &[
            ("IAMRA_NO_CACHE", "false"),
            (
                "IAMRA_CACHE_DIR",
                home.path().join("cache").to_str().unwrap(),
            ),
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut uri = String::new();
    let mut token = String::new();
    stdout.read_line(&mut uri).unwrap();
    stdout.read_line(&mut token).unwrap();
    let (uri, token) = (uri.trim().to_string(), token.trim().to_string());
    assert!(
        token.len() >= 22,
        "at least 128 bits in URL-safe base64: {token:?}"
    );
    let addr = uri
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/v1/credentials"))
        .unwrap_or_else(|| panic!("{uri}"));
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // Nobody's command line holds it.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !cmdline.windows(token.len()).any(|w| w == token.as_bytes()),
                "token in the command line of {}",
                entry.path().display()
            );
        }
    }
    // Without it (or with another one): 401; the IMDS routes do not exist here.
    assert_eq!(http(addr, "GET", "/v1/credentials", &[]).status, 401);
    assert_eq!(
        http(
            addr,
            "GET",
            "/v1/credentials",
            &[("Authorization", "x".repeat(43).as_str())]
        )
        .status,
        401
    );
    assert_eq!(
        http(
            addr,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")]
        )
        .status,
        404
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/latest/meta-data/iam/security-credentials/",
            &[]
        )
        .status,
        404
    );
    let r = http(
        addr,
        "GET",
        "/v1/credentials",
        &[("Authorization", token.as_str())],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "AccessKeyId",
        "AccountId",
        "Expiration",
        "RoleArn",
        "SecretAccessKey",
        "Token",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(doc["AccountId"], "123456789012");
    assert_eq!(issued(&ep), [doc["AccessKeyId"].as_str().unwrap()]);
    let secret = doc["SecretAccessKey"].as_str().unwrap().to_string();
    child.stdin.take().unwrap().write_all(b"done\n").unwrap();
    let out = output_within_patience(child);
    assert_eq!(out.status.code(), Some(0));
    let log = stderr(&out);
    assert!(
        log.contains("iamra: trace:") || log.contains("iamra: debug:"),
        "trace logging on: {log}"
    );
    assert!(!log.contains(&token), "token in the logs");
    assert!(!log.contains(&secret), "secret key in the logs");
    assert_eq!(
        files_containing(home.path(), token.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert!(
        !files_containing(home.path(), doc["AccessKeyId"].as_str().unwrap().as_bytes()).is_empty(),
        "the credentials were cached (the search looked in the right place)"
    );
}

// ---------------------------------------------------------------------------------
// Refresh failure

const BOTO3_UNTIL_EXPIRY: &str = r#"
import json, os, time, urllib.request, urllib.error, boto3
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
creds = boto3.session.Session().get_credentials()
first = creds.get_frozen_credentials().access_key
keys, status, body = set(), None, ""
start = time.time()
while time.time() - start < 50:
    try:
        req = urllib.request.Request(uri, headers={"Authorization": token})
        keys.add(json.load(urllib.request.urlopen(req))["AccessKeyId"])
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode()
        break
    time.sleep(0.25)
print(json.dumps({"first": first, "keys": sorted(keys), "status": status, "body": body}), flush=True)
creds.get_frozen_credentials()
"#;

#[test]
fn a_failing_refresh_keeps_the_last_credentials_then_the_sdk_error_surfaces() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start_with(&[
        "--session-lifetime",
        "5",
        "--fault",
        "ok",
        "--fault",
        "always:503",
    ]);
    let home = tempfile::tempdir().unwrap();
    let out = run(
        &exec_args(
            &ep,
            &["--max-attempts", "1"],
            &[python.to_str().unwrap(), "-c", BOTO3_UNTIL_EXPIRY],
        ),
        home.path(),
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the command's status: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Until expiry: the first (last good) credentials; then 503 with the reason.
    assert_eq!(v["keys"], serde_json::json!([v["first"]]));
    assert_eq!(issued(&ep), [v["first"].as_str().unwrap()]);
    assert_eq!(v["status"], 503);
    assert!(
        v["body"]
            .as_str()
            .unwrap()
            .contains("CredentialsUnavailable"),
        "{v}"
    );
    assert!(err.contains("iamra: warning: refresh failed"), "{err}");
    assert!(
        err.contains("Error when retrieving credentials from container-role"),
        "the SDK's own error: {err}"
    );
}

// ---------------------------------------------------------------------------------
// --env

const PRINT_ENV: &str = r#"
import json, os
print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("AWS_") or k.startswith("IAMRA_")}))
"#;

#[test]
fn env_mode_exports_the_credentials_and_nothing_that_overrides_them() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let out = run(
        &exec_args(&ep, &["--env"], &["python3", "-c", PRINT_ENV]),
        home.path(),
        &[
            ("AWS_PROFILE", "stale"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/x"),
            ("IAMRA_PKCS8_PASSWORD", "not for the command"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let log = log_entries(&ep);
    let names: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_CREDENTIAL_EXPIRATION",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "IAMRA_NO_CACHE"
        ]
    );
    assert_eq!(v["AWS_ACCESS_KEY_ID"], log[0]["access_key_id"]);
    assert_eq!(v["AWS_CREDENTIAL_EXPIRATION"], log[0]["expiration"]);
    assert_eq!(v["AWS_REGION"], "us-east-1");
}

#[test]
fn env_mode_refuses_credentials_shorter_than_min_remaining() {
    let ep = Endpoint::start_with(&["--session-lifetime", "60"]);
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let out = run(
        &exec_args(
            &ep,
            &["--env", "--min-remaining", "2m"],
            &["sh", "-c", &touch],
        ),
        home.path(),
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("iamra: error: the credentials are valid for "),
        "{err}"
    );
    assert!(
        err.contains("less than --min-remaining 120s\niamra: hint: raise --session-duration"),
        "{err}"
    );
    assert!(!marker.exists(), "the command did not run");
    // Enough left: it runs.
    let out = run(
        &exec_args(
            &ep,
            &["--env", "--min-remaining", "30s"],
            &["sh", "-c", &touch],
        ),
        home.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(marker.exists());
}

// ---------------------------------------------------------------------------------
// Errors

#[test]
fn exec_errors_are_one_line_with_the_shells_statuses() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let not_executable = home.path().join("job.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let ne = not_executable.display().to_string();
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (
            exec_args(&ep, &[], &["/nonexistent/job"]),
            127,
            "iamra: error: cannot run \"/nonexistent/job\": no such command: No such file or directory (os error 2)\niamra: hint: check the name and PATH, or give the command's full path\n".into(),
        ),
        (
            exec_args(&ep, &[], &[&ne]),
            126,
            format!("iamra: error: cannot run {ne:?}: permission denied (not an executable file): Permission denied (os error 13)\n"),
        ),
        (
            exec_args(&ep, &[], &[]),
            2,
            "iamra: error: exec needs a command: iamra exec [FLAGS] -- COMMAND [ARGS...]\n".into(),
        ),
        (
            {
                let mut a = exec_args(&ep, &[], &[]);
                a.pop();
                a.push("true".into());
                a
            },
            2,
            "iamra: error: \"true\" is not a flag of exec; the command goes after `--`: iamra exec [FLAGS] -- COMMAND [ARGS...]\n".into(),
        ),
        (
            exec_args(&ep, &["--min-remaining", "1h"], &["true"]),
            2,
            "iamra: error: --min-remaining applies to --env only: without --env the command's credentials are refreshed for as long as it runs\n".into(),
        ),
        (
            exec_args(&ep, &["--env", "--min-remaining", "15m"], &["true"]),
            2,
            "iamra: error: --min-remaining 900s can never be met: sessions last at most --session-duration 900s\n".into(),
        ),
    ];
    for (args, code, expected) in cases {
        let out = run(&args, home.path(), &[]);
        assert_eq!(stderr(&out), expected);
        assert_eq!(out.status.code(), Some(code), "{expected}");
        assert!(out.stdout.is_empty());
    }
    // Every one of them failed before a CreateSession.
    assert_eq!(log_entries(&ep).len(), 0);
}

#[test]
fn exec_fails_before_the_command_when_credentials_cannot_be_had() {
    let ep = Endpoint::start_with(&["--fault", "always:access-denied"]);
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    for mode in [&[][..], &["--env"][..]] {
        let out = run(
            &exec_args(&ep, mode, &["sh", "-c", &touch]),
            home.path(),
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("iamra: error: CreateSession failed: AccessDeniedException: Untrusted Signing Certificate"),
            "{err}"
        );
        assert!(!marker.exists());
    }
}

// ---------------------------------------------------------------------------------
// Key sources

/// The command: deletes the key's password or PIN file (so a refresh cannot log in
/// again), reads the endpoint until it has seen two sets of credentials, and reports
/// the descriptors it inherited.
const TWO_SESSIONS: &str = r#"
import json, os, time, urllib.request
os.remove(os.environ["SECRET_FILE"])
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
keys = []
start = time.time()
while len(keys) < 2 and time.time() - start < 50:
    req = urllib.request.Request(uri, headers={"Authorization": token})
    k = json.load(urllib.request.urlopen(req))["AccessKeyId"]
    if k not in keys:
        keys.append(k)
    time.sleep(0.2)
fds = {}
for n in os.listdir("/proc/self/fd"):
    if int(n) > 2:
        try:
            fds[n] = os.readlink("/proc/self/fd/" + n)
        except OSError:
            pass
print(json.dumps({"keys": keys, "fds": fds}))
"#;

/// A key source: certificate and key flags, the flag naming its password or PIN
/// file and that secret, and the variables it needs.
struct KeySource {
    name: &'static str,
    flags: Vec<String>,
    secret_flag: &'static str,
    secret: String,
    env: Vec<(String, String)>,
}

fn key_sources(hsm: &Option<SoftHsm>) -> Vec<KeySource> {
    let password = std::fs::read_to_string(td("password.txt")).unwrap();
    let mut v = vec![
        KeySource {
            name: "file",
            flags: vec![
                "--certificate".into(),
                td("rsa2048/cert.pem").display().to_string(),
                "--private-key".into(),
                td("rsa2048/key.enc-pbkdf2-sha256-aes256.pem")
                    .display()
                    .to_string(),
            ],
            secret_flag: "--pkcs8-password-file",
            secret: password.clone(),
            env: vec![],
        },
        KeySource {
            name: "pkcs12",
            flags: vec![
                "--certificate".into(),
                td("rsa2048/bundle-modern.p12").display().to_string(),
            ],
            secret_flag: "--pkcs12-password-file",
            secret: password.clone(),
            env: vec![],
        },
    ];
    if let Some(hsm) = hsm {
        v.push(KeySource {
            name: "pkcs11",
            flags: vec![
                "--certificate".into(),
                "pkcs11:token=ra-test;id=%01".into(),
                "--pkcs11-lib".into(),
                MODULE.into(),
            ],
            secret_flag: "--pkcs11-pin-file",
            secret: PIN.into(),
            env: vec![("SOFTHSM2_CONF".into(), hsm.conf().display().to_string())],
        });
    }
    v
}

/// The TPM key source: a TSS2 key file with a password.
#[cfg(feature = "tpm")]
fn tpm_source(tpm: &crate::common::swtpm::Swtpm) -> KeySource {
    KeySource {
        name: "tpm",
        flags: vec![
            "--certificate".into(),
            tpm.file("prov-ec-pw.crt"),
            "--private-key".into(),
            tpm.file("prov-ec-pw.tss2.pem"),
        ],
        secret_flag: "--tpm-key-password-file",
        secret: crate::common::swtpm::KEY_PASSWORD.into(),
        env: vec![("TPM2TOOLS_TCTI".into(), tpm.tcti())],
    }
}

/// The descriptors above 2 that this process passes on to the programs it starts
/// (not close-on-exec): those the test harness was given.
fn passed_on_fds() -> serde_json::Value {
    const O_CLOEXEC: u32 = 0o2000000;
    let mut fds = serde_json::Map::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().unwrap() <= 2 {
            continue;
        }
        let flags = std::fs::read_to_string(format!("/proc/self/fdinfo/{name}"))
            .ok()
            .and_then(|t| {
                let f = t
                    .lines()
                    .find_map(|l| l.strip_prefix("flags:"))?
                    .trim()
                    .to_string();
                u32::from_str_radix(&f, 8).ok()
            });
        if let (Some(flags), Ok(target)) = (flags, std::fs::read_link(e.path()))
            && flags & O_CLOEXEC == 0
        {
            fds.insert(name, target.display().to_string().into());
        }
    }
    serde_json::Value::Object(fds)
}

#[test]
fn exec_refreshes_with_every_key_source_on_one_login_and_the_command_inherits_none_of_it() {
    let hsm = SoftHsm::new();
    #[allow(unused_mut, reason = "the TPM source needs the tpm feature")]
    let mut sources = key_sources(&hsm);
    #[cfg(feature = "tpm")]
    let tpm = crate::common::swtpm::Swtpm::start();
    #[cfg(feature = "tpm")]
    if let Some(tpm) = &tpm {
        sources.push(tpm_source(tpm));
    }
    for source in sources {
        let ep = Endpoint::start_with(&["--session-lifetime", "3"]);
        let home = tempfile::tempdir().unwrap();
        let mut args = vec!["exec".to_string()];
        args.extend(source.flags.clone());
        let secret_file = home.path().join("secret");
        std::fs::write(&secret_file, &source.secret).unwrap();
        args.extend([source.secret_flag.into(), secret_file.display().to_string()]);
        if source.name != "pkcs12" {
            // A bundle sends its own chain.
            args.extend([
                "--intermediates".into(),
                td("chain.pem").display().to_string(),
            ]);
        }
        args.extend(ep.flags());
        args.extend([
            "--".into(),
            "python3".into(),
            "-c".into(),
            TWO_SESSIONS.into(),
        ]);
        let secret_env = secret_file.display().to_string();
        let env: Vec<(&str, &str)> = std::iter::once(("SECRET_FILE", secret_env.as_str()))
            .chain(source.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let out = run(&args, home.path(), &env);
        let name = source.name;
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{name}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["keys"].as_array().unwrap().len(), 2, "{name}: {v}");
        let issued = issued(&ep);
        for k in v["keys"].as_array().unwrap() {
            assert!(issued.contains(&k.as_str().unwrap().to_string()), "{name}");
        }
        assert_eq!(
            v["fds"],
            passed_on_fds(),
            "{name}: only the descriptors iamra was given"
        );
        // Both sessions came from one login: the secret was gone before the second.
        assert!(!secret_file.exists());
    }
}

#[test]
fn descriptors_the_caller_gives_iamra_reach_the_command() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("input");
    std::fs::write(&file, b"through fd 3\n").unwrap();
    // sh opens the file on descriptor 3 for iamra, as in `iamra exec -- job 3<file`.
    let sh = clean_iamra_command_via("sh", &["-c", r#"exec "$0" "$@" 3<"$INPUT""#]);
    let out = with_iamra_args(
        sh,
        &exec_args(&ep, &[], &["sh", "-c", "cat <&3"]),
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("INPUT", file.to_str().unwrap()),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"through fd 3\n");
}

#[test]
fn exec_shares_credential_process_cache() {
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("cache").display().to_string();
    let cache = [
        ("IAMRA_NO_CACHE", "false"),
        ("IAMRA_CACHE_DIR", dir.as_str()),
    ];
    let mut cp = exec_args(&ep, &[], &[]);
    cp[0] = "credential-process".into();
    cp.pop(); // `--`
    let out = run(&cp, home.path(), &cache);
    let printed = assert_credentials(&out);
    // Both modes start from the cached credentials: no second CreateSession.
    let out = run(
        &exec_args(&ep, &["--env"], &["sh", "-c", "echo $AWS_ACCESS_KEY_ID"]),
        home.path(),
        &cache,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        printed["AccessKeyId"]
    );
    let out = run(&exec_args(&ep, &[], &["true"]), home.path(), &cache);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(log_entries(&ep).len(), 1);
}
