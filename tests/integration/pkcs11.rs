//! PKCS#11 end to end against real SoftHSM2 tokens (`common::softhsm`): every key
//! kind through `credential-process` to the local endpoint (which verifies the
//! signature and the chain), the PIN sources, module selection,
//! `read-certificate-data`, and every user-facing failure with its exact message.

use std::process::Output;

use crate::common::softhsm::{MODULE, PIN, SoftHsm};
use crate::common::*;

const PIN_ENV: (&str, &str) = ("IAMRA_PKCS11_PIN", PIN);

fn cp(ep: &Endpoint, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["credential-process".to_string()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(ep.flags());
    v
}

/// Flags for a call that fails before the network.
fn cp_offline(extra: &[&str]) -> Vec<String> {
    let mut v = vec!["credential-process".to_string()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(
        ARN_FLAGS
            .iter()
            .chain(&["--endpoint", "https://127.0.0.1:1"])
            .map(|s| s.to_string()),
    );
    v
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_credentials(out);
    assert!(
        out.stderr.is_empty(),
        "{what}: stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_certificate_and_key_get_credentials_for_every_key_kind() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    // Generated RSA and EC, imported RSA and EC (the imported EC key has no
    // public-key object: its public half comes from the certificate).
    for id in ["01", "02", "03", "04"] {
        let uri = format!("pkcs11:token=ra-test;id=%{id}");
        let out = hsm.iamra(
            &cp(&ep, &["--certificate", &uri, "--pkcs11-lib", MODULE]),
            &[PIN_ENV],
        );
        assert_ok(&out, &uri);
    }
    let requests = ep.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r["status"] == 201), "{requests:?}");
}

#[test]
fn file_certificate_with_a_token_key() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let chain = td("chain.pem").display().to_string();
    for (cert, key) in [
        // The certificate exists only in the file.
        ("cert07.pem", "pkcs11:token=ra-test;id=%07;type=private"),
        // The whole token: the key is found by the certificate's public key.
        ("cert04.pem", "pkcs11:token=ra-test"),
        ("cert01.pem", "pkcs11:token=ra-test"),
        ("cert03.pem", "pkcs11:token=ra-test;object=ra-imp-rsa"),
        ("cert02.pem", "pkcs11:serial=SERIAL;object=ra-ec"),
    ] {
        let key = key.replace("SERIAL", hsm.serial());
        let cert = hsm.file(cert);
        let out = hsm.iamra(
            &cp(
                &ep,
                &[
                    "--certificate",
                    &cert,
                    "--private-key",
                    &key,
                    "--intermediates",
                    &chain,
                    "--pkcs11-lib",
                    MODULE,
                ],
            ),
            &[PIN_ENV],
        );
        assert_ok(&out, &format!("{cert} + {key}"));
    }
}

#[test]
fn separate_certificate_and_key_uris() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;object=ra-cert-02;type=cert",
                "--private-key",
                "pkcs11:token=ra-test;object=ra-ec;type=private",
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV],
    );
    assert_ok(&out, "separate URIs");
    // The key's URI used as the certificate: the certificate is found by id.
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;id=%01;type=private",
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV],
    );
    assert_ok(&out, "key URI as certificate");
}

#[test]
fn the_chain_holds_only_the_issuers_on_the_path() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    // The token holds the intermediate and an unrelated root besides the leaves:
    // only the intermediate is sent, and the endpoint accepts the chain.
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;id=%02",
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV, ("IAMRA_LOG", "iamra=debug")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("chain=[\"CN=iamra Test Intermediate CA\"]"),
        "{stderr}"
    );
    // With --intermediates the file wins.
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;id=%02",
                "--intermediates",
                &td("chain.pem").display().to_string(),
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV, ("IAMRA_LOG", "iamra=debug")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("chain from the token"));
}

/// Flags and environment of one call.
type Case = (Vec<String>, Vec<(&'static str, &'static str)>);

#[test]
fn every_pin_source_works() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let pin_file = pin_file.display().to_string();
    let cases: Vec<Case> = vec![
        (
            vec![
                "--certificate".into(),
                format!("pkcs11:token=ra-test;id=%02?pin-value={PIN}"),
            ],
            vec![],
        ),
        (
            vec![
                "--certificate".into(),
                format!("pkcs11:token=ra-test;id=%02?pin-source={pin_file}"),
            ],
            vec![],
        ),
        (
            vec![
                "--certificate".into(),
                format!("pkcs11:token=ra-test;id=%02?pin-source=file://{pin_file}"),
            ],
            vec![],
        ),
        (
            vec![
                "--certificate".into(),
                "pkcs11:token=ra-test;id=%02".into(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            vec![],
        ),
        (
            vec!["--certificate".into(), "pkcs11:token=ra-test;id=%02".into()],
            vec![PIN_ENV],
        ),
    ];
    for (flags, env) in cases {
        let mut args: Vec<String> = flags.clone();
        args.extend(["--pkcs11-lib".into(), MODULE.into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hsm.iamra(&cp(&ep, &refs), &env);
        assert_ok(&out, &format!("{flags:?}"));
    }
}

#[test]
fn the_module_comes_from_the_uri_or_p11_kit() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    for uri in [
        format!("pkcs11:token=ra-test;id=%02?module-path={MODULE}"),
        "pkcs11:token=ra-test;id=%02?module-name=softhsm2".to_string(),
        "pkcs11:token=ra-test;id=%02?module-path=/usr/lib/softhsm&module-name=libsofthsm2"
            .to_string(),
    ] {
        let out = hsm.iamra(&cp(&ep, &["--certificate", &uri]), &[PIN_ENV]);
        assert_ok(&out, &uri);
    }
    // No module named anywhere: p11-kit-proxy, which loads SoftHSM2's p11-kit module.
    if !std::path::Path::new("/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so").exists() {
        assert!(
            !crate::common::under_ci(),
            "p11-kit is missing: CI must install it"
        );
        eprintln!("note: p11-kit-proxy.so is not installed; skipping the default-module case");
        return;
    }
    let out = hsm.iamra(
        &cp(&ep, &["--certificate", "pkcs11:token=ra-test;id=%01"]),
        &[PIN_ENV],
    );
    assert_ok(&out, "p11-kit-proxy");
}

#[test]
fn always_authenticate_key_with_reuse_pin() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let uri = format!("pkcs11:token=ra-test;id=%05?pin-value={PIN}");
    let out = hsm.iamra(
        &cp(
            &ep,
            &["--certificate", &uri, "--reuse-pin", "--pkcs11-lib", MODULE],
        ),
        &[],
    );
    assert_ok(&out, "--reuse-pin");
    // Without --reuse-pin the key's own PIN comes from the password sources.
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;id=%05",
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV],
    );
    assert_ok(&out, "context PIN from the environment");
    // ... and with none there and no terminal, a clear error instead of a prompt.
    let out = hsm.iamra_without_tty(
        &cp_offline(&["--certificate", &uri, "--pkcs11-lib", MODULE]),
        &[],
    );
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: private key {};id=%05;object=ra-always;type=private needs a PIN for every signature (CKA_ALWAYS_AUTHENTICATE) and none was given\niamra: hint: pass --reuse-pin to use the user PIN for this key, or run from a terminal to be prompted\n",
            hsm.token_uri()
        ),
    );
}

#[test]
fn sign_string_with_a_token_key_verifies_with_openssl() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (id, cert, digest) in [
        ("01", "cert01.pem", "SHA256"),
        ("01", "cert01.pem", "SHA512"),
        ("02", "cert02.pem", "SHA384"),
        ("04", "cert04.pem", "SHA256"),
    ] {
        let uri = format!("pkcs11:token=ra-test;id=%{id}");
        let out = hsm.iamra(
            &[
                "sign-string",
                "--private-key",
                &uri,
                "--format",
                "bin",
                "--digest",
                digest,
                "--pkcs11-lib",
                MODULE,
            ],
            &[PIN_ENV],
        );
        assert!(
            out.status.success(),
            "{uri}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Rebuild the signed message from the certificate's public key.
        let pubkey = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(hsm.file(cert))
            .output()
            .unwrap();
        let pub_pem = dir.path().join("pub.pem");
        std::fs::write(&pub_pem, &pubkey.stdout).unwrap();
        let sig = dir.path().join("sig");
        std::fs::write(&sig, &out.stdout).unwrap();
        let message = message_for(&pub_pem, dir.path());
        let msg_file = dir.path().join("msg");
        std::fs::write(&msg_file, &message).unwrap();
        let verify = std::process::Command::new("openssl")
            .args(["dgst", &format!("-{}", digest.to_lowercase()), "-verify"])
            .arg(&pub_pem)
            .arg("-signature")
            .arg(&sig)
            .arg(&msg_file)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{uri} {digest}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}

/// The `sign-string` message: test string, "1", SHA-256("IAM RA" || public key bytes).
fn message_for(pub_pem: &std::path::Path, dir: &std::path::Path) -> Vec<u8> {
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(pub_pem)
        .output()
        .unwrap()
        .stdout;
    // The SPKI's BIT STRING content is the PKCS#1 key or the EC point.
    let raw = spki_key_bytes(&der);
    let mut hashed = b"IAM RA".to_vec();
    hashed.extend_from_slice(&raw);
    let input = dir.join("hash-input");
    std::fs::write(&input, &hashed).unwrap();
    let digest = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-binary"])
        .arg(&input)
        .output()
        .unwrap()
        .stdout;
    let mut message = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    message.extend_from_slice(&digest);
    message
}

fn der_header(d: &[u8]) -> (usize, usize) {
    // (header length, content length)
    if d[1] & 0x80 == 0 {
        (2, d[1] as usize)
    } else {
        let n = (d[1] & 0x7f) as usize;
        let len = d[2..2 + n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize);
        (2 + n, len)
    }
}

fn spki_key_bytes(spki: &[u8]) -> Vec<u8> {
    let (h, _) = der_header(spki);
    let body = &spki[h..];
    let (ah, alen) = der_header(body);
    let bit = &body[ah + alen..];
    let (bh, blen) = der_header(bit);
    bit[bh + 1..bh + blen].to_vec()
}

fn openssl_field(cert: &str, flag: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout"])
        .args(flag)
        .arg("-in")
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn read_certificate_data_lists_every_matching_identity() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.iamra(
        &[
            "read-certificate-data",
            "--certificate",
            "pkcs11:token=ra-test;id=%01",
            "--pkcs11-lib",
            MODULE,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = hsm.file("cert01.pem");
    let fingerprint = openssl_field(&cert, &["-fingerprint", "-sha1"])
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    let serial = openssl_field(&cert, &["-serial"])
        .trim_start_matches("serial=")
        .trim_start_matches("00")
        .to_string();
    let date = |which: &str| {
        openssl_field(&cert, &[which, "-dateopt", "iso_8601"])
            .split_once('=')
            .unwrap()
            .1
            .replace(' ', "T")
    };
    let expected = format!(
        "Matching identities\n1) {fingerprint} \"CN=iamra-hsm-rsa-generated\"\n\tURI: {};id=%01;object=ra-cert-01;type=cert\n\tIssuer: \"CN=iamra Test Intermediate CA\"\n\tSerial Number: {serial}\n\tNot Before: {}\n\tNot After: {}\n",
        hsm.token_uri(),
        date("-startdate"),
        date("-enddate"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(out.stderr.is_empty());

    // The whole token: five leaves and the two CA certificates.
    let out = hsm.iamra(
        &[
            "read-certificate-data",
            "--certificate",
            "pkcs11:token=ra-test",
            "--pkcs11-lib",
            MODULE,
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let uris: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("\tURI: "))
        .collect();
    assert_eq!(uris.len(), 7, "{text}");
    for label in [
        "ra-cert-01",
        "ra-cert-02",
        "ra-imp-rsa",
        "ra-imp-ec",
        "ra-always",
        "iamra%20Test%20Intermediate%20CA",
        "iamra%20Untrusted%20Root",
    ] {
        assert!(
            uris.iter().any(|u| u.contains(&format!("object={label};"))),
            "{label} in {text}"
        );
    }

    let out = hsm.iamra(
        &[
            "read-certificate-data",
            "--certificate",
            "pkcs11:token=ra-test;id=%99",
            "--pkcs11-lib",
            MODULE,
        ],
        &[],
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No matching identities\n"
    );
}

#[test]
fn read_certificate_data_logs_in_for_private_certificates_with_the_pin_file() {
    let Some(hsm) = SoftHsm::new() else { return };
    let list = |extra: &[&str]| {
        let mut args = vec![
            "read-certificate-data",
            "--certificate",
            "pkcs11:token=ra-test;id=%12",
            "--pkcs11-lib",
            MODULE,
        ];
        args.extend(extra);
        hsm.iamra_without_tty(&args, &[])
    };
    // Without a PIN only public objects are visible.
    let out = list(&[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No matching identities\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let out = list(&["--pkcs11-pin-file", pin_file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Matching identities\n1) "), "{text}");
    assert!(
        text.contains(";id=%12;object=ra-private-cert;type=cert\n"),
        "{text}"
    );
    assert_eq!(text.matches("\tURI: ").count(), 1, "{text}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn wrong_pin_reports_the_token_state_and_is_not_retried() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.iamra(
        &cp_offline(&[
            "--certificate",
            "pkcs11:token=ra-test;id=%02",
            "--pkcs11-lib",
            MODULE,
        ]),
        &[("IAMRA_PKCS11_PIN", "0000")],
    );
    assert_refused_with(
        &out,
        &format!(
            "iamra: error: wrong user PIN for token {} (not retried); the token reports CKF_USER_PIN_COUNT_LOW (few tries left)\niamra: hint: check the PIN before trying again: tokens lock the PIN after a few failures\n",
            hsm.token_uri()
        ),
    );
    // The right PIN still works: one failed try, not a lock-out.
    let ep = Endpoint::start();
    let out = hsm.iamra(
        &cp(
            &ep,
            &[
                "--certificate",
                "pkcs11:token=ra-test;id=%02",
                "--pkcs11-lib",
                MODULE,
            ],
        ),
        &[PIN_ENV],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "iamra: warning: token {} reports CKF_USER_PIN_COUNT_LOW: an earlier PIN was wrong and few tries are left before the PIN locks\n",
            hsm.token_uri()
        ),
        "right PIN after a wrong one: the token's counter is read first"
    );
    assert_credentials(&out);
}

#[test]
fn missing_pin_without_a_terminal_is_an_error_not_a_prompt() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.iamra_without_tty(
        &cp_offline(&[
            "--certificate",
            "pkcs11:token=ra-test;id=%02",
            "--pkcs11-lib",
            MODULE,
        ]),
        &[],
    );
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: token {} needs its user PIN and none was given\niamra: hint: set IAMRA_PKCS11_PIN, pass --pkcs11-pin-file FILE, add pin-source=FILE to the URI, or run from a terminal to be prompted\n",
            hsm.token_uri()
        ),
    );
}

/// `(flags, expected stderr)`; `TOKEN` and `SECOND` stand for the tokens' URIs.
const FAILURES: &[(&[&str], &str)] = &[
    (
        &["--certificate", "pkcs11:token=nope"],
        "iamra: error: no token matches pkcs11:token=nope (tokens present: PRESENT)\niamra: hint: read-certificate-data --certificate 'pkcs11:' lists the certificates on every token\n",
    ),
    (
        &["--certificate", "pkcs11:id=%01"],
        "iamra: error: several certificates match pkcs11:id=%01: CERTS01\niamra: hint: add token=, id= or object= to the URI so that it names one object; read-certificate-data --certificate 'pkcs11:…' lists the certificates\n",
    ),
    (
        &["--certificate", "pkcs11:token=ra-test;id=%07"],
        "iamra: error: no certificate matches pkcs11:token=ra-test;id=%07\niamra: hint: read-certificate-data --certificate 'pkcs11:' lists the certificates on every token\n",
    ),
    (
        &["--certificate", "pkcs11:token=ra-test;tokn=x"],
        "iamra: error: --certificate is not a valid PKCS#11 URI: unknown attribute \"tokn\"\niamra: hint: RFC 7512 attributes: token, manufacturer, serial, model, slot-id, slot-description, slot-manufacturer, library-manufacturer, library-description, library-version, object, type, id; after '?': pin-value, pin-source, module-name, module-path\n",
    ),
    (
        &["--certificate", "pkcs11:token=ra-test;id=%02?pin=1"],
        "iamra: error: --certificate is not a valid PKCS#11 URI: unknown attribute \"pin\"\niamra: hint: RFC 7512 attributes: token, manufacturer, serial, model, slot-id, slot-description, slot-manufacturer, library-manufacturer, library-description, library-version, object, type, id; after '?': pin-value, pin-source, module-name, module-path\n",
    ),
    (
        &[
            "--certificate",
            "$DIR/cert02.pem",
            "--private-key",
            "pkcs11:token=ra-test;id=%01",
        ],
        "iamra: error: no private key matching pkcs11:token=ra-test;id=%01 belongs to certificate $DIR/cert02.pem (candidates: TOKEN;id=%01;object=ra-rsa;type=private)\n",
    ),
    (
        &[
            "--certificate",
            "$DIR/cert02.pem",
            "--private-key",
            "pkcs11:token=ra-test;id=%42",
        ],
        "iamra: error: no private key matches pkcs11:token=ra-test;id=%42\n",
    ),
];

#[test]
fn token_failures_are_reported_exactly() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = hsm.file("");
    let dir = dir.trim_end_matches('/');
    let mut tokens = [hsm.token_uri(), hsm.second_token_uri()];
    tokens.sort();
    let present = tokens.join(", ");
    let mut certs = [
        format!(
            "{};id=%01;object=second-cert-01;type=cert",
            hsm.second_token_uri()
        ),
        format!("{};id=%01;object=ra-cert-01;type=cert", hsm.token_uri()),
    ];
    certs.sort();
    let certs01 = certs.join(", ");
    for (flags, expected) in FAILURES {
        let mut args: Vec<String> = flags.iter().map(|f| f.replace("$DIR", dir)).collect();
        args.extend(["--pkcs11-lib".into(), MODULE.into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hsm.iamra(&cp_offline(&refs), &[PIN_ENV]);
        let expected = expected
            .replace("PRESENT", &present)
            .replace("CERTS01", &certs01)
            .replace("SECOND", &hsm.second_token_uri())
            .replace("TOKEN", &hsm.token_uri())
            .replace("$DIR", dir);
        assert_fails_with(&out, &expected);
    }
}

#[test]
fn several_matching_keys_are_listed() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.iamra(
        &[
            "sign-string",
            "--private-key",
            "pkcs11:token=ra-test;type=private",
            "--pkcs11-lib",
            MODULE,
        ],
        &[PIN_ENV],
    );
    let t = hsm.token_uri();
    let keys = [
        "01;object=ra-rsa",
        "02;object=ra-ec",
        "03;object=ra-imp-rsa",
        "04;object=ra-imp-ec",
        "05;object=ra-always",
        "07;object=ra-file-only",
    ]
    .iter()
    .map(|k| format!("{t};id=%{k};type=private"))
    .collect::<Vec<_>>()
    .join(", ");
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: several private keys match pkcs11:token=ra-test;type=private: {keys}\niamra: hint: add token=, id= or object= to the URI so that it names one object; read-certificate-data --certificate 'pkcs11:…' lists the certificates\n"
        ),
    );
}

#[test]
fn a_module_that_does_not_load_is_named() {
    let Some(hsm) = SoftHsm::new() else { return };
    let hint = "iamra: hint: pass --pkcs11-lib with the module's path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so, OpenSC: /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so) or add ?module-path=FILE to the URI\n";
    let out = hsm.iamra(
        &cp_offline(&[
            "--certificate",
            "pkcs11:token=ra-test;id=%02",
            "--pkcs11-lib",
            "/nonexistent/libnope.so",
        ]),
        &[PIN_ENV],
    );
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: cannot load a PKCS#11 module: tried /nonexistent/libnope.so (cannot open shared object file: No such file or directory)\n{hint}"
        ),
    );
    // A shared library that is not a PKCS#11 module.
    let libc = "/lib/x86_64-linux-gnu/libc.so.6";
    if std::path::Path::new(libc).exists() {
        let out = hsm.iamra(
            &cp_offline(&[
                "--certificate",
                "pkcs11:token=ra-test;id=%02",
                "--pkcs11-lib",
                libc,
            ]),
            &[PIN_ENV],
        );
        assert_fails_with(
            &out,
            &format!(
                "iamra: error: cannot load a PKCS#11 module: tried {libc} (not a PKCS#11 module: no C_GetFunctionList)\n{hint}"
            ),
        );
    }
    let out = hsm.iamra(
        &cp_offline(&[
            "--certificate",
            "pkcs11:token=ra-test;id=%02?module-name=nope",
        ]),
        &[PIN_ENV],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("iamra: error: cannot load a PKCS#11 module: tried libnope.so (cannot open shared object file: No such file or directory); nope.so ("),
        "{stderr}"
    );
}

#[test]
fn the_pin_never_appears_in_logs() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let uri = format!("pkcs11:token=ra-test;id=%01?pin-value={PIN}");
    let out = hsm.iamra(
        &cp(
            &ep,
            &["--certificate", &uri, "--pkcs11-lib", MODULE, "--debug"],
        ),
        &[("IAMRA_LOG", "trace")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(PIN), "the PIN leaked: {stderr}");
    // A failing call with the PIN in the URI does not echo it either.
    let out = hsm.iamra(
        &cp_offline(&[
            "--certificate",
            &format!("pkcs11:token=nope?pin-value={PIN}"),
            "--pkcs11-lib",
            MODULE,
        ]),
        &[("IAMRA_LOG", "trace")],
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PIN));
}
