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
