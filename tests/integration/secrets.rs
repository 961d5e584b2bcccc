//! Secret hygiene: every command at trace level, with known fixture secrets, leaks
//! none of them to stderr (or, except for the intended payload, to stdout).

use crate::common::*;

fn key_body(rel: &str) -> String {
    let pem = std::fs::read_to_string(td(rel)).unwrap();
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .take(2)
        .collect::<Vec<_>>()
        .concat()
}

#[test]
fn no_command_logs_a_secret_at_trace_level() {
    let ep = Endpoint::start();
    let cache = tempfile::tempdir().unwrap();
    let cache_s = cache.path().display().to_string();
    let env = [
        ("IAMRA_LOG", "trace"),
        ("IAMRA_PKCS8_PASSWORD", PASSWORD),
        ("IAMRA_NO_CACHE", "false"),
        ("IAMRA_CACHE_DIR", cache_s.as_str()),
    ];
    let cert = td("rsa2048/cert.pem").display().to_string();
    let key = td("rsa2048/key.enc-pbkdf2-sha256-aes256.pem")
        .display()
        .to_string();
    let chain = td("chain.pem").display().to_string();
    let anchor = td("ca/root.pem").display().to_string();
    let mut cp = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        cert.clone(),
        "--private-key".into(),
        key.clone(),
        "--intermediates".into(),
        chain.clone(),
    ];
    cp.extend(ep.flags());

    // credential-process: cold (service), then warm (cache).
    let cold = iamra(&cp, &env);
    let creds = assert_credentials(&cold);
    let warm = iamra(&cp, &env);
    assert_eq!(cold.stdout, warm.stdout);
    let mut doctor = vec![
        "doctor".to_string(),
        "--certificate".into(),
        cert.clone(),
        "--private-key".into(),
        key.clone(),
        "--intermediates".into(),
        chain,
        "--trust-anchor-cert".into(),
        anchor,
    ];
    doctor.extend(ep.flags());
    let runs = vec![
        ("credential-process (cold)", cold),
        ("credential-process (warm)", warm),
        (
            "sign-string",
            iamra(
                &["sign-string", "--certificate", &cert, "--private-key", &key],
                &env,
            ),
        ),
        (
            "read-certificate-data",
            iamra(&["read-certificate-data", "--certificate", &cert], &env),
        ),
        ("doctor", iamra(&doctor, &env)),
    ];
    let secrets = [
        PASSWORD.to_string(),
        key_body("rsa2048/key.pkcs8.pem"),
        key_body("rsa2048/key.enc-pbkdf2-sha256-aes256.pem"),
        creds["SecretAccessKey"].as_str().unwrap().to_string(),
        creds["SessionToken"].as_str().unwrap().to_string(),
    ];
    for (name, out) in &runs {
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.is_empty(), "{name}: trace logging is on");
        for s in &secrets {
            assert!(
                !stderr.contains(s.as_str()),
                "{name}: a secret reached stderr"
            );
        }
        if !name.starts_with("credential-process") {
            let stdout = String::from_utf8_lossy(&out.stdout);
            for s in &secrets {
                assert!(
                    !stdout.contains(s.as_str()),
                    "{name}: a secret reached stdout"
                );
            }
        }
    }
    // The cache file holds credentials only: no key material, no password.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let content = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!content.contains(PASSWORD));
        assert!(!content.contains(&secrets[1]));
    }
}

/// A running iamra is not dumpable (no core file, no ptrace attach or
/// `/proc/PID/mem` read by another process of its user) and its core size limit is
/// 0. The kernel shows a non-dumpable process's /proc files as owned by root, so
/// the check needs iamra to run as another user: as root, the test runs it as
/// `nobody` through setpriv (util-linux).
#[test]
fn a_running_iamra_cannot_dump_core_or_be_read_by_its_user() {
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt as _;
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    // Reading the certificate from stdin keeps it waiting there, after start-up.
    let mut args = vec![
        "credential-process",
        "--certificate",
        "-",
        "--private-key",
        "/nonexistent/key.pem",
    ];
    args.extend(ARN_FLAGS);
    let mut cmd = if root {
        clean_iamra_command_via(
            "setpriv",
            &["--reuid=65534", "--regid=65534", "--clear-groups"],
        )
    } else {
        clean_iamra_command()
    };
    let mut child = cmd
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run iamra (as root, through setpriv from util-linux)");
    let proc_dir = format!("/proc/{}", child.id());
    // Wait until setpriv has become iamra and iamra has hardened itself: the soft
    // and the hard core limit at 0 and the process non-dumpable (the soft one alone may be 0 already when the shell
    // that runs the tests has `ulimit -c 0`, before iamra has run a line).
    let read_limits = || std::fs::read_to_string(format!("{proc_dir}/limits")).unwrap_or_default();
    let limits = poll_until(std::time::Duration::from_secs(10), || {
        let exe = std::fs::read_link(format!("{proc_dir}/exe")).ok();
        let limits = read_limits();
        let ready = exe.is_some_and(|e| e.ends_with("iamra"))
            && limits.lines().any(|l| {
                l.starts_with("Max core file size")
                    && l.split_whitespace().skip(4).take(2).eq(["0", "0"])
            })
            // Non-dumpable (set right after the limit): /proc/PID/status owned by root.
            && std::fs::metadata(format!("{proc_dir}/status")).is_ok_and(|m| m.uid() == 0);
        ready.then_some(limits)
    })
    .unwrap_or_else(read_limits);
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core limit in {limits}"));
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
    let status_owner = std::fs::metadata(format!("{proc_dir}/status"))
        .unwrap()
        .uid();
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap();
    let real_uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_ne!(real_uid, 0, "iamra should run as another user here");
    assert_eq!(
        status_owner, 0,
        "/proc/PID/status of a dumpable process is owned by its user ({real_uid})"
    );
    drop(child.stdin.take().map(|mut s| s.write_all(b"")));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}
