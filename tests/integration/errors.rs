//! Every user-facing error, pinned: exit status 1 (2 for usage), nothing on stdout,
//! and exactly this stderr. Paths are relative to the repository root.

use crate::common::*;

/// Nothing listens here: every case below must fail before the network.
const NO_ENDPOINT: [&str; 2] = ["--endpoint", "https://127.0.0.1:1"];

const T: &str = "certs-testdata";

fn cp(extra: &[&str]) -> Vec<String> {
    let mut v = vec!["credential-process".to_string()];
    v.extend(ARN_FLAGS.iter().chain(&NO_ENDPOINT).map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.replace("$T", T)));
    v
}

/// `(flags after the ARNs, expected stderr)`.
const LOCAL_FAILURES: &[(&[&str], &str)] = &[
    (
        &[
            "--certificate",
            "$T/missing.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: cannot read certificate file certs-testdata/missing.pem: No such file or directory (os error 2)\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certificate file certs-testdata/bad is not a regular file\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/empty.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certificate file certs-testdata/bad/empty.pem is empty\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/garbage.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certs-testdata/bad/garbage.pem holds no certificate (neither PEM nor DER)\niamra: hint: expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/wrong-label.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certs-testdata/bad/wrong-label.pem holds no certificate (found PUBLIC KEY)\niamra: hint: expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/truncated-cert.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certs-testdata/bad/truncated-cert.pem holds a certificate that does not parse: truncated or malformed DER\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/key-as-cert.pem",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certs-testdata/bad/key-as-cert.pem holds no certificate (found PRIVATE KEY)\niamra: hint: expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)\n",
    ),
    (
        &[
            "--certificate",
            "$T/bad/not-der.der",
            "--private-key",
            "$T/rsa2048/key.pkcs8.pem",
        ],
        "iamra: error: certs-testdata/bad/not-der.der holds no certificate (neither PEM nor DER)\niamra: hint: expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)\n",
    ),
    (
        &["--certificate", "$T/bad/truncated.p12"],
        "iamra: error: PKCS#12 bundle certs-testdata/bad/truncated.p12 does not parse (ASN.1 DER message is incomplete: expected 1677, actual 1676 at DER byte 1676)\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/bad/cert-as-key.pem",
        ],
        "iamra: error: certs-testdata/bad/cert-as-key.pem holds no private key (found CERTIFICATE)\niamra: hint: pass the key file with --private-key\n",
    ),
    (
        &["--certificate", "$T/rsa2048/cert.pem"],
        "iamra: error: certs-testdata/rsa2048/cert.pem holds no private key (found CERTIFICATE)\niamra: hint: pass the key file with --private-key\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/bad/not-der.der",
        ],
        "iamra: error: certs-testdata/bad/not-der.der holds no private key (neither PEM nor DER)\niamra: hint: pass the key file with --private-key\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/bad/empty.pem",
        ],
        "iamra: error: private key file certs-testdata/bad/empty.pem is empty\n",
    ),
    (
        &[
            "--certificate",
            "$T/mismatch/cert.pem",
            "--private-key",
            "$T/mismatch/key.pkcs8.pem",
        ],
        "iamra: error: private key certs-testdata/mismatch/key.pkcs8.pem does not match certificate certs-testdata/mismatch/cert.pem\niamra: hint: the key and certificate must be a pair; check you did not swap files between identities\n",
    ),
    (
        &[
            "--certificate",
            "$T/mismatch/cert.pem",
            "--private-key",
            "$T/mismatch/key-ec.pkcs8.pem",
        ],
        "iamra: error: private key certs-testdata/mismatch/key-ec.pkcs8.pem does not match certificate certs-testdata/mismatch/cert.pem\niamra: hint: the key and certificate must be a pair; check you did not swap files between identities\n",
    ),
    (
        &[
            "--certificate",
            "$T/expired/cert.pem",
            "--private-key",
            "$T/expired/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/expired/cert.pem expired at 2021-01-01T00:00:00Z\niamra: hint: renew the certificate, or check the system clock\n",
    ),
    (
        &[
            "--certificate",
            "$T/not-yet-valid/cert.pem",
            "--private-key",
            "$T/not-yet-valid/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/not-yet-valid/cert.pem is not valid before 2090-01-01T00:00:00Z\niamra: hint: renew the certificate, or check the system clock\n",
    ),
    (
        &[
            "--certificate",
            "$T/ca-as-leaf/cert.pem",
            "--private-key",
            "$T/ca-as-leaf/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/ca-as-leaf/cert.pem is a CA certificate, not an end-entity (leaf) certificate\niamra: hint: --certificate takes the end-entity certificate issued to this machine; CA certificates go in --intermediates\n",
    ),
    (
        &[
            "--certificate",
            "$T/ed25519/cert.pem",
            "--private-key",
            "$T/ed25519/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/ed25519/cert.pem has an unsupported Ed25519 key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa1024/cert.pem",
            "--private-key",
            "$T/rsa1024/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/rsa1024/cert.pem has an unsupported RSA-1024 key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87\n",
    ),
    (
        &[
            "--certificate",
            "$T/p521/cert.pem",
            "--private-key",
            "$T/p521/key.pkcs8.pem",
        ],
        "iamra: error: certificate certs-testdata/p521/cert.pem has an unsupported EC P-521 key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/ed25519/key.pkcs8.pem",
        ],
        "iamra: error: private key certs-testdata/ed25519/key.pkcs8.pem is an unsupported Ed25519 key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/rsa1024/key.pkcs8.pem",
        ],
        "iamra: error: private key certs-testdata/rsa1024/key.pkcs8.pem is an unsupported RSA (under 2048 bits) key; use RSA (2048 bits or more), EC P-256/P-384 or ML-DSA-44/65/87\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/rsa2048/key.enc-scrypt-aes256.pem",
        ],
        "iamra: error: private key certs-testdata/rsa2048/key.enc-scrypt-aes256.pem is encrypted and no password was given\niamra: hint: set IAMRA_PKCS8_PASSWORD (or IAMRA_PKCS12_PASSWORD for a bundle), pass --pkcs8-password-file FILE, or run from a terminal to be prompted\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/rsa2048/key.enc-scrypt-aes256.pem",
            "--pkcs8-password-file",
            "$T/rsa2048/cert.pem",
        ],
        "iamra: error: wrong password for certs-testdata/rsa2048/key.enc-scrypt-aes256.pem\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/cert.pem",
            "--private-key",
            "$T/rsa2048/key.enc-scrypt-aes256.pem",
            "--pkcs8-password-file",
            "$T/nope.txt",
        ],
        "iamra: error: cannot read the password for certs-testdata/rsa2048/key.enc-scrypt-aes256.pem: cannot read password file certs-testdata/nope.txt: No such file or directory (os error 2)\n",
    ),
    (
        &["--certificate", "$T/rsa2048/bundle-modern.p12"],
        "iamra: error: PKCS#12 bundle certs-testdata/rsa2048/bundle-modern.p12 is encrypted and no password was given\niamra: hint: set IAMRA_PKCS8_PASSWORD (or IAMRA_PKCS12_PASSWORD for a bundle), pass --pkcs8-password-file FILE, or run from a terminal to be prompted\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/bundle-modern.p12",
            "--pkcs12-password",
            "nope",
        ],
        "iamra: warning: --pkcs12-password on the command line is visible to other local users; prefer IAMRA_PKCS12_PASSWORD or --pkcs12-password-file\niamra: error: wrong password for certs-testdata/rsa2048/bundle-modern.p12\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/bundle-modern-empty.p12",
            "--intermediates",
            "$T/chain.pem",
        ],
        "iamra: error: --intermediates cannot be used with PKCS#12 bundle certs-testdata/rsa2048/bundle-modern-empty.p12: the bundle's own certificates are sent\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--intermediates",
            "$T/bad/chain-with-key.pem",
        ],
        "iamra: error: certs-testdata/bad/chain-with-key.pem holds a \"PRIVATE KEY\" block; a certificate bundle may hold only CERTIFICATE blocks\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--intermediates",
            "$T/missing.pem",
        ],
        "iamra: error: cannot read intermediates file certs-testdata/missing.pem: No such file or directory (os error 2)\n",
    ),
    (
        &["--private-key", "$T/rsa2048/key.pkcs8.pem"],
        "iamra: error: no certificate given: pass --certificate (and --private-key unless the certificate file holds the key)\n",
    ),
    (
        &["--cert-selector", "Key=x509Subject,Value=CN=x"],
        "iamra: error: --cert-selector, --system-store-name and --use-latest-expiring-certificate need an OS certificate store (Windows, macOS); on Linux pass --certificate and --private-key\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--session-duration",
            "100",
        ],
        "iamra: error: --session-duration 100 is out of range: it must be 900 to 43200 seconds\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--session-duration",
            "43201",
        ],
        "iamra: error: --session-duration 43201 is out of range: it must be 900 to 43200 seconds\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--session-duration",
            "-5",
        ],
        "iamra: error: --session-duration -5 is out of range: it must be 900 to 43200 seconds\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--role-session-name",
            "a b",
        ],
        "iamra: error: --role-session-name \"a b\" is invalid: use 2 to 64 characters from A-Z a-z 0-9 + = , . @ _ -\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--role-session-name",
            "x",
        ],
        "iamra: error: --role-session-name \"x\" is invalid: use 2 to 64 characters from A-Z a-z 0-9 + = , . @ _ -\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--region",
            "US EAST",
        ],
        "iamra: error: --region \"US EAST\" is not a region name (like us-east-1)\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--ca-bundle",
            "$T/bad/garbage.pem",
        ],
        "iamra: error: CA bundle certs-testdata/bad/garbage.pem holds no certificate\n",
    ),
    (
        &[
            "--certificate",
            "$T/rsa2048/combined.pem",
            "--tpm-key-password",
            "x",
            "--no-tpm-key-password",
        ],
        "iamra: error: --tpm-key-password and --no-tpm-key-password exclude each other\n",
    ),
];

#[test]
fn local_failures_give_one_clear_line_and_no_request() {
    for (extra, expected) in LOCAL_FAILURES {
        let out = iamra(&cp(extra), &[]);
        assert_fails_with(&out, expected);
    }
}

#[test]
fn malformed_arns_name_the_flag() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "",
            PROFILE_ARN,
            ROLE_ARN,
            "iamra: error: --trust-anchor-arn \"\" is not a valid ARN: it is empty (expected arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID)\n",
        ),
        (
            TRUST_ANCHOR_ARN,
            "arn:aws:rolesanywhere:us-east-1:12345:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            ROLE_ARN,
            "iamra: error: --profile-arn \"arn:aws:rolesanywhere:us-east-1:12345:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d\" is not a valid ARN: the account is not 12 digits (expected arn:aws:rolesanywhere:REGION:ACCOUNT:profile/ID)\n",
        ),
        (
            TRUST_ANCHOR_ARN,
            PROFILE_ARN,
            "arn:aws:iam::123456789012:role/bad role",
            "iamra: error: --role-arn \"arn:aws:iam::123456789012:role/bad role\" is not a valid ARN: it holds spaces or characters outside printable ASCII (expected arn:aws:iam::ACCOUNT:role/NAME)\n",
        ),
        (
            TRUST_ANCHOR_ARN,
            PROFILE_ARN,
            "arn:aws:iam::123456789012:user/bob",
            "iamra: error: --role-arn \"arn:aws:iam::123456789012:user/bob\" is not a valid ARN: the resource is not 'role/NAME' (expected arn:aws:iam::ACCOUNT:role/NAME)\n",
        ),
        (
            "arn:aws:rolesanywhere:us-west-2:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
            PROFILE_ARN,
            ROLE_ARN,
            "iamra: error: --trust-anchor-arn is in region us-west-2 but --profile-arn is in us-east-1; they must be in the same region\n",
        ),
        (
            PROFILE_ARN,
            PROFILE_ARN,
            ROLE_ARN,
            "iamra: error: --trust-anchor-arn \"arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d\" is not a valid ARN: the resource is not 'trust-anchor/ID' (expected arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID)\n",
        ),
    ];
    for (ta, profile, role, expected) in cases {
        let args = [
            "credential-process",
            "--certificate",
            "certs-testdata/rsa2048/combined.pem",
            "--trust-anchor-arn",
            ta,
            "--profile-arn",
            profile,
            "--role-arn",
            role,
        ];
        assert_fails_with(&iamra(&args, &[]), expected);
    }
}

#[test]
fn usage_errors_are_one_line_with_exit_status_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["credential-process", "--bogus"],
            "iamra: error: unexpected argument '--bogus' found\n",
        ),
        (
            &["credential-process", "--session-duration", "abc"],
            "iamra: error: invalid value 'abc' for '--session-duration <SECONDS>': invalid digit found in string\n",
        ),
        (
            &["credential-process", "--debug=maybe"],
            "iamra: error: invalid value 'maybe' for '--debug[=<BOOL>]': \"maybe\" is not a boolean (use true or false)\n",
        ),
        (
            &["sign-string", "--format", "xml"],
            "iamra: error: invalid value 'xml' for '--format <FORMAT>'\n",
        ),
        (
            &["frobnicate"],
            "iamra: error: unrecognized subcommand 'frobnicate'\n",
        ),
    ];
    for (args, expected) in cases {
        let out = iamra(args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!("{expected}iamra: hint: run 'iamra --help' or 'iamra <command> --help'\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn non_utf8_arguments_are_refused() {
    use std::os::unix::ffi::OsStrExt as _;
    let bad = std::ffi::OsStr::from_bytes(b"arn:aws:iam::123456789012:role/\xff");
    let out = iamra(
        &[
            std::ffi::OsStr::new("credential-process"),
            std::ffi::OsStr::new("--role-arn"),
            bad,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("iamra: error: invalid UTF-8 was detected in one or more arguments\n")
    );
}

#[test]
fn special_files_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let loop1 = dir.path().join("loop1");
    std::os::unix::fs::symlink(dir.path().join("loop2"), &loop1).unwrap();
    std::os::unix::fs::symlink(&loop1, dir.path().join("loop2")).unwrap();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 1024 * 1024 + 1]).unwrap();
    for (path, expected) in [
        (&fifo, "is not a regular file"),
        (&loop1, "Too many levels of symbolic links"),
        (&big, "is larger than 1 MiB"),
    ] {
        let p = path.display().to_string();
        let out = iamra(
            &cp(&[
                "--certificate",
                &p,
                "--private-key",
                "$T/rsa2048/key.pkcs8.pem",
            ]),
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("iamra: error: ")
                && stderr.contains(&p)
                && stderr.contains(expected),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1);
        assert!(out.stdout.is_empty());
        assert_eq!(out.status.code(), Some(1));
    }
}
