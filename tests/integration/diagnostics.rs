//! `sign-string`, `read-certificate-data` and `version` through the binary.

use crate::common::*;

fn vector(rel: &str) -> String {
    format!("{}/tests/vectors/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn sign_string_matches_the_reference_bytes_in_every_format() {
    let key = vector("sign-string/rsa2048/key.pem");
    let cert = vector("sign-string/rsa2048/cert.pem");
    let expected = std::fs::read_to_string(vector("sign-string/rsa2048/SHA384.txt")).unwrap();
    // Key alone (the reference needs --certificate too), and key + certificate.
    for args in [
        vec![
            "sign-string",
            "--private-key",
            &key,
            "--format",
            "text",
            "--digest",
            "SHA384",
        ],
        vec![
            "sign-string",
            "--certificate",
            &cert,
            "--private-key",
            &key,
            "--format",
            "text",
            "--digest",
            "sha384",
        ],
    ] {
        let out = iamra(&args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }
    let json = iamra(
        &["sign-string", "--private-key", &key, "--digest", "SHA384"],
        &[],
    );
    assert_eq!(
        String::from_utf8(json.stdout).unwrap(),
        format!("\"{expected}\"")
    );
    let bin = iamra(
        &[
            "sign-string",
            "--private-key",
            &key,
            "--format",
            "bin",
            "--digest",
            "SHA384",
        ],
        &[],
    );
    assert_eq!(hex::encode(bin.stdout), expected);
}

#[test]
fn sign_string_works_with_bundles_and_checks_the_pair() {
    let out = iamra(
        &[
            "sign-string",
            "--certificate",
            "certs-testdata/ec-p256/bundle-legacy-nopass.p12",
            "--format",
            "text",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = iamra(
        &[
            "sign-string",
            "--certificate",
            "certs-testdata/mismatch/cert.pem",
            "--private-key",
            "certs-testdata/mismatch/key.pkcs8.pem",
        ],
        &[],
    );
    assert_fails_with(
        &out,
        "iamra: error: private key certs-testdata/mismatch/key.pkcs8.pem does not match certificate certs-testdata/mismatch/cert.pem\niamra: hint: the key and certificate must be a pair; check you did not swap files between identities\n",
    );
    // Diagnostics work on an expired certificate.
    let out = iamra(
        &[
            "sign-string",
            "--certificate",
            "certs-testdata/expired/cert.pem",
            "--private-key",
            "certs-testdata/expired/key.pkcs8.pem",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn read_certificate_data_matches_the_reference_and_reads_der() {
    for name in ["rsa2048", "ec-p256", "ec-p256-serial-huge-20byte-highbit"] {
        let out = iamra(
            &[
                "read-certificate-data",
                "--certificate",
                &vector(&format!("read-certificate-data/{name}/cert.pem")),
            ],
            &[],
        );
        let expected =
            std::fs::read_to_string(vector(&format!("read-certificate-data/{name}/output.json")))
                .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{name}");
    }
    let pem = iamra(
        &[
            "read-certificate-data",
            "--certificate",
            "certs-testdata/ec-p384/cert.pem",
        ],
        &[],
    );
    let der = iamra(
        &[
            "read-certificate-data",
            "--certificate",
            "certs-testdata/ec-p384/cert.der",
        ],
        &[],
    );
    assert!(pem.status.success());
    assert_eq!(pem.stdout, der.stdout);
    assert_fails_with(
        &iamra(
            &[
                "read-certificate-data",
                "--certificate",
                "certs-testdata/rsa2048/key.pkcs8.pem",
            ],
            &[],
        ),
        "iamra: error: certs-testdata/rsa2048/key.pkcs8.pem holds no certificate (found PRIVATE KEY)\niamra: hint: expected a PEM or DER certificate (or, for --certificate, a PKCS#12 bundle)\n",
    );
    assert_fails_with(
        &iamra(&["read-certificate-data"], &[]),
        "iamra: error: no certificate given: pass --certificate (and --private-key unless the certificate file holds the key)\n",
    );
}

#[test]
fn version_prints_the_version_and_a_newline() {
    let out = iamra(&["version"], &[]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        concat!(env!("CARGO_PKG_VERSION"), "\n")
    );
    let out = iamra(&["--version"], &[]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        concat!("iamra ", env!("CARGO_PKG_VERSION"), "\n")
    );
}
