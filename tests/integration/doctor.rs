//! `iamra doctor`: every failure mode names the broken part and sets the exit status.

use crate::common::*;

fn doctor(ep: Option<&Endpoint>, extra: &[&str]) -> (String, i32) {
    let mut args = vec!["doctor".to_string()];
    match ep {
        Some(ep) => args.extend(ep.flags()),
        None => args.extend(
            ARN_FLAGS
                .iter()
                .chain(&["--offline"])
                .map(|s| s.to_string()),
        ),
    }
    args.extend(
        extra
            .iter()
            .map(|s| s.replace("$T", &td("").display().to_string())),
    );
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let out = iamra(&args, &[("HOME", &home_s)]);
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

#[test]
fn a_healthy_setup_passes_every_check_including_create_session() {
    let ep = Endpoint::start();
    let (out, code) = doctor(
        Some(&ep),
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
            "--intermediates",
            "$T/chain.pem",
            "--trust-anchor-cert",
            "$T/ca/root.pem",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✔ chain verifies: CN=iamra-test-rsa2048 → CN=iamra Test Intermediate CA → CN=iamra Test Root CA\n"), "{out}");
    assert!(out.contains("is reachable over TLS"), "{out}");
    assert!(
        out.contains("✔ the local clock agrees with the endpoint's"),
        "{out}"
    );
    assert!(
        out.contains("✔ CreateSession succeeded: access key ASIA"),
        "{out}"
    );
    assert!(out.ends_with("all checks passed\n"), "{out}");
    assert!(!out.contains('✘'), "{out}");
    assert_eq!(ep.requests().len(), 1);
}

#[test]
fn each_failure_is_named_with_a_hint() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--certificate", "$T/missing.pem"],
            "✘ cannot read certificate file ",
        ),
        (
            &[
                "--certificate",
                "$T/expired/cert.pem",
                "--private-key",
                "$T/expired/key.pkcs8.pem",
            ],
            " expired at 2021-01-01T00:00:00Z\n    hint: renew the certificate, or check the system clock\n",
        ),
        (
            &[
                "--certificate",
                "$T/ca-as-leaf/cert.pem",
                "--private-key",
                "$T/ca-as-leaf/key.pkcs8.pem",
            ],
            "is a CA certificate, not a leaf\n",
        ),
        (
            &[
                "--certificate",
                "$T/mismatch/cert.pem",
                "--private-key",
                "$T/mismatch/key.pkcs8.pem",
            ],
            "✘ private key ",
        ),
        (
            &[
                "--certificate",
                "$T/rsa2048/combined.pem",
                "--trust-anchor-cert",
                "$T/ca/root.pem",
            ],
            "✘ chain to the trust anchor is broken: no intermediate or trust anchor is the issuer of \"CN=iamra-test-rsa2048\" (issuer \"CN=iamra Test Intermediate CA\"); is --intermediates missing?\n",
        ),
        (
            &[
                "--certificate",
                "$T/untrusted/cert.pem",
                "--private-key",
                "$T/untrusted/key.pkcs8.pem",
                "--intermediates",
                "$T/chain.pem",
                "--trust-anchor-cert",
                "$T/ca/root.pem",
            ],
            "✘ chain to the trust anchor is broken: no intermediate or trust anchor is the issuer of \"CN=iamra-test-untrusted\"",
        ),
        (
            &[
                "--certificate",
                "$T/rsa2048/combined.pem",
                "--session-duration",
                "60",
            ],
            "✘ --session-duration 60 is out of range",
        ),
    ];
    for (extra, expected) in cases {
        let (out, code) = doctor(None, extra);
        assert_eq!(code, 1, "{extra:?}: {out}");
        assert!(
            out.contains(expected),
            "{extra:?}: expected {expected:?} in\n{out}"
        );
        assert!(out.trim_end().ends_with("check(s) failed"), "{out}");
    }
}

#[test]
fn a_world_readable_key_is_a_warning_not_a_failure() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::copy(td("ec-p256/key.pkcs8.pem"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_s = key.display().to_string();
    let (out, code) = doctor(
        None,
        &[
            "--certificate",
            "$T/ec-p256/cert.pem",
            "--private-key",
            &key_s,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("⚠ private key file {key_s} is readable by other users (mode 644)\n    hint: chmod 600 {key_s}\n")), "{out}");
}

#[test]
fn unreachable_endpoint_and_untrusted_certificate_fail_the_network_checks() {
    let ep = Endpoint::start();
    let mut flags = ep.flags();
    let i = flags.iter().position(|f| f == "--endpoint").unwrap();
    flags[i + 1] = "https://127.0.0.1:1".into();
    let mut args = vec![
        "doctor".to_string(),
        "--certificate".into(),
        td("rsa2048/combined.pem").display().to_string(),
    ];
    args.extend(flags);
    let out = iamra(&args, &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("✘ cannot reach https://127.0.0.1:1/sessions"),
        "{stdout}"
    );
    assert!(
        stdout.contains("– CreateSession not tried: an earlier check failed"),
        "{stdout}"
    );

    // Reachable, but the service rejects the certificate (no intermediates sent).
    let mut args = vec![
        "doctor".to_string(),
        "--certificate".into(),
        td("rsa2048/combined.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    let stdout = String::from_utf8(iamra(&args, &[]).stdout).unwrap();
    assert!(
        stdout.contains(
            "✘ CreateSession failed: AccessDeniedException: Untrusted Signing Certificate"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("hint: check that the certificate chains to the trust anchor's CA; is --intermediates missing?"), "{stdout}");
}

#[test]
fn aws_config_profiles_with_missing_flags_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-1\n\n[profile good]\ncredential_process = iamra credential-process --certificate c.pem --private-key k.pem --trust-anchor-arn a --profile-arn p --role-arn r\n\n[profile broken]\ncredential_process = /usr/bin/aws_signing_helper credential-process --trust-anchor-arn a --profile-arn p --role-arn r\n",
    )
    .unwrap();
    let c = config.display().to_string();
    let (out, code) = doctor(
        None,
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--aws-config",
            &c,
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("✔ AWS config profile \"good\" calls the helper with complete flags\n"),
        "{out}"
    );
    assert!(
        out.contains("✘ AWS config profile \"broken\" calls the helper without --certificate\n"),
        "{out}"
    );
}

#[test]
fn mldsa_leaves_under_ec_and_mldsa_issuers_pass_every_check() {
    let ep = Endpoint::start();
    for (dir, chain, path) in [
        (
            "mldsa44",
            "chain.pem",
            "CN=iamra-test-mldsa44 → CN=iamra Test Intermediate CA → CN=iamra Test Root CA",
        ),
        (
            "mldsa87",
            "mldsa-ca/chain.pem",
            "CN=iamra-test-mldsa87 → CN=iamra Test ML-DSA Intermediate CA → CN=iamra Test Root CA",
        ),
    ] {
        let cert = format!("$T/{dir}/cert.pem");
        let key = format!("$T/{dir}/key.both.pem");
        let chain = format!("$T/{chain}");
        let (out, code) = doctor(
            Some(&ep),
            &[
                "--certificate",
                &cert,
                "--private-key",
                &key,
                "--intermediates",
                &chain,
                "--trust-anchor-cert",
                "$T/ca/root.pem",
            ],
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("✔ chain verifies: {path}\n")),
            "{out}"
        );
        assert!(out.contains("✔ CreateSession succeeded"), "{out}");
        assert!(!out.contains('✘'), "{out}");
    }
    // An ML-DSA CA whose signature on the leaf is broken is named.
    let tmp = tempfile::tempdir().unwrap();
    let mut der = std::fs::read(td("mldsa65/cert.der")).unwrap();
    let last = der.len() - 20;
    der[last] ^= 0x01;
    let bad = tmp.path().join("cert.der");
    std::fs::write(&bad, &der).unwrap();
    let bad_s = bad.display().to_string();
    let (out, code) = doctor(
        None,
        &[
            "--certificate",
            &bad_s,
            "--private-key",
            "$T/mldsa65/key.seed.pem",
            "--intermediates",
            "$T/mldsa-ca/chain.pem",
            "--trust-anchor-cert",
            "$T/ca/root.pem",
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "the signature on \"CN=iamra-test-mldsa65\" does not verify with the key of \"CN=iamra Test ML-DSA Intermediate CA\""
        ),
        "{out}"
    );
}
