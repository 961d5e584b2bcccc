//! A PIN given in a `pkcs11:` URI (`pin-value`) reaches no output: every command
//! and error path that can mention a URI runs with one at trace level, and its
//! stdout and stderr are searched for the PIN. The library's typed values (spec,
//! errors, the provider builder) print themselves redacted too.

use iamra::identity::{CertificateSource, IdentitySpec, KeySource};

use crate::common::softhsm::{MODULE, PIN, SoftHsm};
use crate::common::*;

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[test]
fn no_command_or_error_shows_a_pin_value_from_a_uri() {
    let Some(hsm) = SoftHsm::new() else { return };
    let ep = Endpoint::start();
    let cert = format!("pkcs11:token=ra-test;id=%02?pin-value={PIN}");
    let key = format!("pkcs11:token=ra-test;id=%02;type=private?pin-value={PIN}");
    let missing = format!("pkcs11:token=no-such-token?pin-value={PIN}");
    let malformed = format!("pkcs11:token=ra-test;tokn=x?pin-value={PIN}");
    let env = [("IAMRA_LOG", "trace")];
    let with_endpoint = |mut v: Vec<String>| {
        v.extend(ep.flags());
        v
    };
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "credential-process",
            with_endpoint(args(&[
                "credential-process",
                "--certificate",
                &cert,
                "--private-key",
                &key,
                "--pkcs11-lib",
                MODULE,
            ])),
        ),
        (
            "credential-process, token certificate with a TPM key",
            with_endpoint(args(&[
                "credential-process",
                "--certificate",
                &cert,
                "--private-key",
                "handle:0x81000001",
                "--pkcs11-lib",
                MODULE,
            ])),
        ),
        (
            "credential-process, no such token",
            with_endpoint(args(&[
                "credential-process",
                "--certificate",
                &missing,
                "--pkcs11-lib",
                MODULE,
            ])),
        ),
        (
            "credential-process, malformed URI",
            with_endpoint(args(&["credential-process", "--certificate", &malformed])),
        ),
        (
            "doctor",
            with_endpoint(args(&[
                "doctor",
                "--certificate",
                &cert,
                "--private-key",
                &key,
                "--pkcs11-lib",
                MODULE,
            ])),
        ),
        (
            "doctor, token certificate with a TPM key",
            with_endpoint(args(&[
                "doctor",
                "--certificate",
                &cert,
                "--private-key",
                "handle:0x81000001",
                "--pkcs11-lib",
                MODULE,
            ])),
        ),
        (
            "read-certificate-data",
            args(&[
                "read-certificate-data",
                "--certificate",
                &cert,
                "--pkcs11-lib",
                MODULE,
            ]),
        ),
        (
            "sign-string",
            args(&["sign-string", "--private-key", &key, "--pkcs11-lib", MODULE]),
        ),
        (
            "sign-string, no such token",
            args(&[
                "sign-string",
                "--private-key",
                &missing,
                "--pkcs11-lib",
                MODULE,
            ]),
        ),
    ];
    let mut succeeded = 0;
    for (name, run) in &runs {
        let out = hsm.iamra(run, &env);
        succeeded += usize::from(out.status.success());
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(PIN),
                "{name}: the PIN is on {stream}:\n{text}"
            );
        }
        // Trace logging was on: the runs did log (the search saw real output).
        assert!(!out.stderr.is_empty(), "{name}: nothing on stderr");
    }
    // The happy paths ran for real (credential-process, doctor, read-certificate-data,
    // sign-string): the PIN was used, and still not shown.
    assert_eq!(succeeded, 4, "runs that succeeded");
}

#[test]
fn typed_values_and_errors_print_without_the_pin() {
    let pin = "pin-4242-secret";
    let cert = CertificateSource::parse(format!("pkcs11:token=t;id=%01?pin-value={pin}")).unwrap();
    let key = KeySource::parse(format!(
        "pkcs11:token=t;id=%01;type=private?pin-value={pin}"
    ))
    .unwrap();
    let spec = IdentitySpec::new(cert.clone()).with_private_key(key.clone());
    let builder = iamra::RolesAnywhereProvider::builder().identity(spec.clone());
    let bad_handle = KeySource::parse("handle:0x81000001").unwrap();
    let with_tpm = IdentitySpec::new(cert.clone()).with_private_key(bad_handle);
    let error = with_tpm
        .load_without_validity_check(&iamra::key::NoPassword)
        .unwrap_err();
    let malformed = CertificateSource::parse(format!("pkcs11:tokn=t?pin-value={pin}")).unwrap_err();
    for (what, text) in [
        ("certificate Display", cert.to_string()),
        ("certificate Debug", format!("{cert:?}")),
        ("key Display", key.to_string()),
        ("spec Debug", format!("{spec:?}")),
        ("builder Debug", format!("{builder:?}")),
        ("error Display", iamra::error::chain(&error)),
        ("error Debug", format!("{error:?}")),
        ("URI error", iamra::error::chain(&malformed)),
    ] {
        assert!(!text.contains(pin), "{what} shows the PIN: {text}");
        assert!(!text.is_empty(), "{what}");
    }
    assert_eq!(cert.to_string(), "pkcs11:token=t;id=%01");
    assert!(
        iamra::error::chain(&error).contains("pkcs11:token=t;id=%01"),
        "{error}"
    );
}
