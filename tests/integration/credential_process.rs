//! `credential-process` end to end: the built binary against the local endpoint.

use crate::common::*;

/// Every key type and encoding, as `(certificate, private key or "", password env)`.
const GOOD: &[(&str, &str, &str)] = &[
    ("rsa2048/cert.pem", "rsa2048/key.pkcs8.pem", ""),
    ("rsa2048/cert.pem", "rsa2048/key.pkcs8.der", ""),
    ("rsa2048/cert.pem", "rsa2048/key.pkcs1.pem", ""),
    ("rsa2048/cert.pem", "rsa2048/key.pkcs1.der", ""),
    ("rsa2048/cert.der", "rsa2048/key.pkcs8.pem", ""),
    ("rsa2048/combined.pem", "", ""),
    ("rsa2048/combined-cert-first.pem", "", ""),
    (
        "rsa2048/cert.pem",
        "rsa2048/key.enc-pbkdf2-sha1-aes128.pem",
        "8",
    ),
    (
        "rsa2048/cert.pem",
        "rsa2048/key.enc-pbkdf2-sha256-aes256.pem",
        "8",
    ),
    (
        "rsa2048/cert.pem",
        "rsa2048/key.enc-pbkdf2-sha256-aes256.der",
        "8",
    ),
    (
        "rsa2048/cert.pem",
        "rsa2048/key.enc-pbkdf2-sha384-aes192.pem",
        "8",
    ),
    (
        "rsa2048/cert.pem",
        "rsa2048/key.enc-pbkdf2-sha512-aes256.pem",
        "8",
    ),
    ("rsa2048/cert.pem", "rsa2048/key.enc-scrypt-aes256.pem", "8"),
    ("rsa3072/cert.pem", "rsa3072/key.pkcs1.pem", ""),
    ("rsa3072/cert.der", "rsa3072/key.pkcs8.der", ""),
    ("rsa4096/cert.pem", "rsa4096/key.pkcs8.pem", ""),
    ("rsa4096/combined.pem", "", ""),
    ("ec-p256/cert.pem", "ec-p256/key.sec1.pem", ""),
    ("ec-p256/cert.pem", "ec-p256/key.sec1-params.pem", ""),
    ("ec-p256/cert.pem", "ec-p256/key.sec1.der", ""),
    ("ec-p256/cert.pem", "ec-p256/key.pkcs8.pem", ""),
    ("ec-p256/cert.der", "ec-p256/key.pkcs8.der", ""),
    ("ec-p256/combined.pem", "", ""),
    (
        "ec-p256/cert.pem",
        "ec-p256/key.enc-pbkdf2-sha256-aes256.pem",
        "8",
    ),
    ("ec-p256/cert.pem", "ec-p256/key.enc-scrypt-aes256.pem", "8"),
    ("ec-p384/cert.pem", "ec-p384/key.sec1.pem", ""),
    ("ec-p384/cert.pem", "ec-p384/key.sec1-params.pem", ""),
    ("ec-p384/cert.pem", "ec-p384/key.pkcs8.der", ""),
    (
        "ec-p384/cert.pem",
        "ec-p384/key.enc-pbkdf2-sha512-aes256.pem",
        "8",
    ),
    ("ec-p384/combined-cert-first.pem", "", ""),
    ("serial-huge/cert.pem", "serial-huge/key.pkcs8.pem", ""),
    ("no-eku/cert.pem", "no-eku/key.pkcs8.pem", ""),
];

/// PKCS#12 bundles carry their own chain: no --intermediates.
const BUNDLES: &[(&str, &str)] = &[
    ("rsa2048/bundle-modern.p12", "12"),
    ("rsa2048/bundle-modern-empty.p12", ""),
    ("rsa2048/bundle-legacy.p12", "8"),
    ("rsa2048/bundle-legacy-nopass.p12", ""),
    ("rsa2048/bundle-nomac.p12", ""),
    ("ec-p256/bundle-modern.p12", "12"),
    ("ec-p256/bundle-legacy.p12", "12"),
    ("ec-p256/bundle-legacy-nopass.p12", ""),
];

fn password_env(which: &str) -> Vec<(&'static str, &'static str)> {
    match which {
        "8" => vec![("IAMRA_PKCS8_PASSWORD", PASSWORD)],
        "12" => vec![("IAMRA_PKCS12_PASSWORD", PASSWORD)],
        _ => vec![],
    }
}

#[test]
fn every_key_type_and_encoding_gets_credentials() {
    let ep = Endpoint::start();
    for (i, (cert, key, pw)) in GOOD.iter().enumerate() {
        let mut args = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            td(cert).display().to_string(),
        ];
        if !key.is_empty() {
            args.extend(["--private-key".into(), td(key).display().to_string()]);
        }
        args.extend([
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ]);
        args.extend(ep.flags());
        let out = iamra(&args, &password_env(pw));
        assert!(
            out.status.success(),
            "{cert} + {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_credentials(&out);
        assert!(
            out.stderr.is_empty(),
            "{cert} + {key}: stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        let requests = ep.requests();
        assert_eq!(requests.len(), i + 1, "one CreateSession per call");
        assert_eq!(requests[i]["status"], 201);
    }
    // The 20-octet serial with its high bit set went out as a positive decimal.
    let huge = std::fs::read_to_string(td("serial-huge/serial.txt")).unwrap();
    assert!(ep.requests().iter().any(|r| r["serial"] == huge.as_str()));
}

#[test]
fn pkcs12_bundles_modern_and_legacy_with_and_without_password() {
    let ep = Endpoint::start();
    for (bundle, pw) in BUNDLES {
        let mut args = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            td(bundle).display().to_string(),
        ];
        args.extend(ep.flags());
        let out = iamra(&args, &password_env(pw));
        assert!(
            out.status.success(),
            "{bundle}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_credentials(&out);
    }
    // The chain inside the bundle was sent (without the leaf).
    assert!(ep.requests().iter().all(|r| {
        r["signed_headers"]
            .as_str()
            .unwrap()
            .ends_with("x-amz-x509-chain")
    }));
}

#[test]
fn password_from_file_and_pkcs8_flag_for_a_bundle() {
    let ep = Endpoint::start();
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("rsa2048/cert.pem").display().to_string(),
        "--private-key".into(),
        td("rsa2048/key.enc-scrypt-aes256.pem")
            .display()
            .to_string(),
        "--pkcs8-password-file".into(),
        td("password.txt").display().to_string(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    assert_credentials(&iamra(&args, &[]));

    // The reference accepts --pkcs8-password for a bundle: so do we, with a warning.
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("ec-p256/bundle-modern.p12").display().to_string(),
        "--pkcs8-password".into(),
        PASSWORD.into(),
    ];
    args.extend(ep.flags());
    let out = iamra(&args, &[]);
    assert_credentials(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "iamra: warning: --pkcs8-password on the command line is visible to other local users; prefer IAMRA_PKCS8_PASSWORD or --pkcs8-password-file\n"
    );
    assert!(!stderr.contains(PASSWORD));
}

#[test]
fn session_duration_and_role_session_name_reach_the_service() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("ec-p256/combined.pem").display().to_string(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
        "--session-duration".into(),
        "900".into(),
        "--role-session-name".into(),
        "build-42".into(),
    ];
    args.extend(ep.flags());
    let v = assert_credentials(&iamra(&args, &[]));
    let exp = time::OffsetDateTime::parse(
        v["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left.whole_seconds() <= 900 && left.whole_seconds() > 800,
        "{left}"
    );
}

#[test]
fn endpoint_path_prefix_is_kept_and_signed() {
    let ep = Endpoint::start();
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        td("rsa2048/combined.pem").display().to_string(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
    ];
    let mut flags = ep.flags();
    let i = flags.iter().position(|f| f == "--endpoint").unwrap();
    flags[i + 1] = format!("{}/gateway/ra/", ep.url());
    args.extend(flags);
    assert_credentials(&iamra(&args, &[]));
}

#[test]
fn ca_bundle_from_aws_ca_bundle_and_insecure_mode_warns() {
    let ep = Endpoint::start();
    let base = |extra: &[&str]| {
        let mut args = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            td("rsa2048/combined.pem").display().to_string(),
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
            "--endpoint".into(),
            ep.url(),
        ];
        args.extend(ARN_FLAGS.iter().chain(extra).map(|s| s.to_string()));
        args
    };
    let ca = td("tls/ca.pem").display().to_string();
    assert_credentials(&iamra(&base(&[]), &[("AWS_CA_BUNDLE", &ca)]));
    let out = iamra(&base(&["--no-verify-ssl"]), &[]);
    assert_credentials(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--no-verify-ssl: the endpoint's TLS certificate is NOT verified")
    );
}

#[test]
fn secrets_never_reach_stderr_even_at_trace_level() {
    let ep = Endpoint::start();
    let key_pem = std::fs::read_to_string(td("rsa2048/key.pkcs8.pem")).unwrap();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_string();
    for (key, env) in [
        (
            "rsa2048/key.enc-scrypt-aes256.pem",
            vec![("IAMRA_PKCS8_PASSWORD", PASSWORD), ("IAMRA_LOG", "trace")],
        ),
        ("rsa2048/key.pkcs8.pem", vec![("IAMRA_LOG", "trace")]),
    ] {
        let mut args = vec![
            "credential-process".to_string(),
            "--debug".into(),
            "--certificate".into(),
            td("rsa2048/cert.pem").display().to_string(),
            "--private-key".into(),
            td(key).display().to_string(),
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ];
        args.extend(ep.flags());
        let out = iamra(&args, &env);
        let creds = assert_credentials(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("iamra: debug: signed CreateSession request"),
            "trace logging is on"
        );
        for secret in [
            creds["SecretAccessKey"].as_str().unwrap(),
            creds["SessionToken"].as_str().unwrap(),
            PASSWORD,
            key_body.as_str(),
        ] {
            assert!(!stderr.contains(secret), "a secret reached stderr");
        }
    }
}

#[test]
fn certificate_and_key_from_environment_variables_or_stdin() {
    let ep = Endpoint::start();
    let cert = std::fs::read_to_string(td("ec-p256/cert.pem")).unwrap();
    let key = std::fs::read_to_string(td("ec-p256/key.sec1.pem")).unwrap();
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        "env:RA_CERT".into(),
        "--private-key".into(),
        "env:RA_KEY".into(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    assert_credentials(&iamra(&args, &[("RA_CERT", &cert), ("RA_KEY", &key)]));

    // Unset variable: named in the error.
    let out = iamra(&args, &[("RA_CERT", &cert)]);
    assert_fails_with(
        &out,
        "iamra: error: private key file env:RA_KEY: environment variable RA_KEY is not set\n",
    );

    // A combined PEM on stdin for both.
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        "-".into(),
        "--private-key".into(),
        "-".into(),
    ];
    args.extend([
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
    ]);
    args.extend(ep.flags());
    let pem = std::fs::read(td("rsa2048/combined.pem")).unwrap();
    assert_credentials(&output_with_stdin(iamra_command(&args, &[]), &pem));
}

#[test]
fn every_flag_can_come_from_an_iamra_environment_variable() {
    let ep = Endpoint::start();
    let ca = td("tls/ca.pem").display().to_string();
    let cert = td("rsa2048/combined.pem").display().to_string();
    let chain = td("chain.pem").display().to_string();
    let url = ep.url();
    let env = [
        ("IAMRA_CERTIFICATE", cert.as_str()),
        ("IAMRA_INTERMEDIATES", chain.as_str()),
        ("IAMRA_TRUST_ANCHOR_ARN", TRUST_ANCHOR_ARN),
        ("IAMRA_PROFILE_ARN", PROFILE_ARN),
        ("IAMRA_ROLE_ARN", ROLE_ARN),
        ("IAMRA_ENDPOINT", url.as_str()),
        ("IAMRA_CA_BUNDLE", ca.as_str()),
        ("IAMRA_SESSION_DURATION", "900"),
    ];
    let out = iamra(&["credential-process"], &env);
    assert_credentials(&out);
}

#[test]
fn every_mldsa_size_and_private_key_form_gets_credentials() {
    // ML-DSA-44 under the EC intermediate; ML-DSA-65/87 under the ML-DSA CA. The
    // endpoint verifies the AWS4-X509-MLDSA signature and every chain signature;
    // an ML-DSA-87 request carries about 14 KB of headers.
    let ep = Endpoint::start();
    let mut n = 0;
    for (dir, chain) in [
        ("mldsa44", "chain.pem"),
        ("mldsa65", "mldsa-ca/chain.pem"),
        ("mldsa87", "mldsa-ca/chain.pem"),
    ] {
        for (key, pw) in [
            ("key.seed.pem", ""),
            ("key.seed.der", ""),
            ("key.expanded.pem", ""),
            ("key.both.der", ""),
            ("key.enc-seed.pem", "8"),
        ] {
            let args = [
                vec![
                    "credential-process".to_string(),
                    "--certificate".into(),
                    td(&format!("{dir}/cert.pem")).display().to_string(),
                    "--private-key".into(),
                    td(&format!("{dir}/{key}")).display().to_string(),
                    "--intermediates".into(),
                    td(chain).display().to_string(),
                ],
                ep.flags(),
            ]
            .concat();
            let out = iamra(&args, &password_env(pw));
            assert!(
                out.status.success(),
                "{dir}/{key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_credentials(&out);
            assert!(out.stderr.is_empty(), "{dir}/{key}");
            n += 1;
            let requests = ep.requests();
            assert_eq!(requests.len(), n, "one CreateSession per call");
            assert_eq!(requests[n - 1]["status"], 201, "{dir}/{key}");
        }
    }
}

#[test]
fn update_and_serve_refresh_with_an_mldsa87_identity() {
    let ep = Endpoint::start();
    let identity = [
        "--certificate".to_string(),
        td("mldsa87/cert.pem").display().to_string(),
        "--private-key".into(),
        td("mldsa87/key.both.pem").display().to_string(),
        "--intermediates".into(),
        td("mldsa-ca/chain.pem").display().to_string(),
    ];
    // update --once writes the credentials file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let args = [
        vec!["update".to_string(), "--once".into()],
        identity.to_vec(),
        ep.flags(),
    ]
    .concat();
    let out = iamra(
        &args,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("aws_access_key_id = ASIA"), "{text}");
    // serve answers IMDSv2 with credentials from an ML-DSA-signed CreateSession.
    let served = Served::start(&[identity.to_vec(), ep.flags()].concat(), &[], 1);
    let token = imds_token(&served.addr);
    let creds = imds_credentials(&served.addr, &token);
    assert!(
        creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{creds}"
    );
    let requests = ep.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(requests.iter().all(|r| r["status"] == 201), "{requests:?}");
    served.daemon.stop();
}

#[test]
fn mldsa_key_material_never_reaches_the_output_at_trace_level() {
    let ep = Endpoint::start();
    let cert = td("mldsa65/cert.pem").display().to_string();
    let key = td("mldsa65/key.both.pem").display().to_string();
    let pem = std::fs::read_to_string(&key).unwrap();
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    // The base64 of the key (seed and expanded key), and the seed in hex.
    let der = std::fs::read(td("mldsa65/key.both.der")).unwrap();
    let seed_hex = hex::encode(&der[der.len() - 4032 - 4 - 32..der.len() - 4032 - 4]);
    let cp = [
        vec![
            "credential-process".to_string(),
            "--certificate".into(),
            cert.clone(),
            "--private-key".into(),
            key.clone(),
            "--intermediates".into(),
            td("mldsa-ca/chain.pem").display().to_string(),
        ],
        ep.flags(),
    ]
    .concat();
    let env = [("IAMRA_LOG", "trace")];
    let runs = [
        iamra(&cp, &env),
        iamra(
            &["sign-string", "--certificate", &cert, "--private-key", &key],
            &env,
        ),
    ];
    for out in &runs {
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stderr.is_empty(), "trace logging is on");
        for text in [&stderr, &stdout] {
            assert!(!text.contains(&seed_hex));
            for line in &body[..body.len() - 1] {
                assert!(!text.contains(line), "a key line reached the output");
            }
        }
    }
}
