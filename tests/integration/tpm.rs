//! TPM 2.0 keys end to end: one real swtpm per test (`common::swtpm`), the built
//! binary against the local endpoint (which verifies every signature), and every
//! user-facing TPM failure pinned to its exact stderr.
#![cfg(feature = "tpm")]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;

use crate::common::swtpm::{
    self, HANDLE_EC_PASSWORD, HANDLE_EC384, HANDLE_RSA, KEY_PASSWORD, Producer, Swtpm, Transport,
};
use crate::common::*;

/// A swtpm for this test, or return (skip) when the tools are missing outside CI.
macro_rules! swtpm_or_skip {
    () => {
        match Swtpm::start() {
            Some(t) => t,
            None => return,
        }
    };
}

fn handle_name(handle: u32) -> String {
    format!("handle-{handle:08x}")
}

fn handle_ref(handle: u32) -> String {
    format!("handle:{handle:#010x}")
}

/// `credential-process` flags for a certificate and key against `ep`.
fn cp(ep: &Endpoint, cert: &str, key: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "credential-process".to_string(),
        "--certificate".into(),
        cert.into(),
        "--private-key".into(),
        key.into(),
        "--intermediates".into(),
        td("chain.pem").display().to_string(),
    ];
    args.extend(ep.flags());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs iamra against this test's TPM, with `env` on top.
fn run(tpm: &Swtpm, args: &[String], env: &[(&str, &str)]) -> Output {
    run_from(clean_iamra_command(), tpm, args, env)
}

/// Runs iamra in a new session without a controlling terminal (`setsid`), so a
/// password prompt could not even be attempted on a developer's terminal.
fn run_without_terminal(tpm: &Swtpm, args: &[String], env: &[(&str, &str)]) -> Output {
    run_from(clean_iamra_command_via("setsid", &["-w"]), tpm, args, env)
}

/// Runs `cmd` (a clean iamra command) against this test's TPM, with `env` on top.
fn run_from(cmd: Command, tpm: &Swtpm, args: &[String], env: &[(&str, &str)]) -> Output {
    let tcti = tpm.tcti();
    let env = [&[("TPM2TOOLS_TCTI", tcti.as_str())], env].concat();
    with_iamra_args(cmd, args, &env)
        .output()
        .expect("run iamra")
}

/// No transient object or session is left in the TPM.
#[track_caller]
fn assert_tpm_clean(tpm: &Swtpm, after: &str) {
    for kind in ["transient", "loaded-session", "saved-session"] {
        assert_eq!(
            tpm.handles(kind),
            Vec::<String>::new(),
            "{kind} handles left after {after}"
        );
    }
}

/// `args` (a credential-process) gets credentials silently, as the endpoint's
/// `n`th request, accepted, and leaves nothing in the TPM.
#[track_caller]
fn assert_round_trip(tpm: &Swtpm, ep: &Endpoint, n: usize, args: &[String], env: &[(&str, &str)]) {
    let out = run(tpm, args, env);
    assert_credentials(&out);
    assert!(
        out.stderr.is_empty(),
        "{args:?}: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ep.requests().len(), n);
    assert_eq!(ep.requests()[n - 1]["status"], 201, "{args:?}");
    assert_tpm_clean(tpm, &args.join(" "));
}

#[test]
fn every_tpm_key_kind_gets_credentials() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    let mut n = 0;
    for (name, _, _, password) in swtpm::KEY_FILES {
        let cert = tpm.file(&format!("{name}.crt"));
        let key = tpm.file(&format!("{name}.tss2.pem"));
        let env: &[(&str, &str)] = if *password {
            &[("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)]
        } else {
            &[]
        };
        n += 1;
        assert_round_trip(&tpm, &ep, n, &cp(&ep, &cert, &key, &[]), env);
    }
    // Persistent keys: with --no-tpm-key-password, or with the password.
    for (handle, extra, env) in [
        (HANDLE_RSA, &["--no-tpm-key-password"][..], &[][..]),
        (HANDLE_EC384, &["--no-tpm-key-password"][..], &[][..]),
        (
            HANDLE_EC_PASSWORD,
            &[][..],
            &[("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)][..],
        ),
    ] {
        let cert = tpm.file(&format!("{}.crt", handle_name(handle)));
        n += 1;
        assert_round_trip(
            &tpm,
            &ep,
            n,
            &cp(&ep, &cert, &handle_ref(handle), extra),
            env,
        );
    }
    // Both producers, both parents, RSA and EC were all in the list.
    assert!(
        swtpm::KEY_FILES
            .iter()
            .any(|k| k.1 == Producer::Provider && k.3)
    );
    assert!(
        swtpm::KEY_FILES
            .iter()
            .any(|k| k.1 == Producer::Tools && k.3)
    );
}

#[test]
fn tpm_password_from_file_from_stdin_and_from_the_flag_with_a_warning() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    let cert = tpm.file("tools-ec-pw.crt");
    let key = tpm.file("tools-ec-pw.tss2.pem");
    let pw_file = tpm.scratch().join("tpm-password");
    std::fs::write(&pw_file, format!("{KEY_PASSWORD}\n")).unwrap();
    let pw_file = pw_file.display().to_string();
    let out = run(
        &tpm,
        &cp(&ep, &cert, &key, &["--tpm-key-password-file", &pw_file]),
        &[],
    );
    assert_credentials(&out);
    assert!(out.stderr.is_empty());

    let out = run(
        &tpm,
        &cp(&ep, &cert, &key, &["--tpm-key-password", KEY_PASSWORD]),
        &[],
    );
    assert_credentials(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "iamra: warning: --tpm-key-password on the command line is visible to other local users; prefer IAMRA_TPM_KEY_PASSWORD or --tpm-key-password-file\n"
    );
    assert!(!stderr.contains(KEY_PASSWORD));
    // From standard input.
    let tcti = tpm.tcti();
    let out = output_with_stdin(
        iamra_command(
            &cp(&ep, &cert, &key, &["--tpm-key-password-file", "-"]),
            &[("TPM2TOOLS_TCTI", &tcti)],
        ),
        format!("{KEY_PASSWORD}\n").as_bytes(),
    );
    assert_credentials(&out);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A handle key's password the same way.
    let cert = tpm.file(&format!("{}.crt", handle_name(HANDLE_EC_PASSWORD)));
    let out = run(
        &tpm,
        &cp(
            &ep,
            &cert,
            &handle_ref(HANDLE_EC_PASSWORD),
            &["--tpm-key-password-file", &pw_file],
        ),
        &[],
    );
    assert_credentials(&out);
    assert_tpm_clean(&tpm, "password runs");
}

#[test]
fn tpm_passwords_never_reach_stderr_even_at_trace_level() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    for (cert, key) in [
        (tpm.file("prov-ec-pw.crt"), tpm.file("prov-ec-pw.tss2.pem")),
        (
            tpm.file(&format!("{}.crt", handle_name(HANDLE_EC_PASSWORD))),
            handle_ref(HANDLE_EC_PASSWORD),
        ),
    ] {
        let args = cp(&ep, &cert, &key, &["--log-level", "trace"]);
        let out = run(&tpm, &args, &[("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)]);
        let creds = assert_credentials(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("iamra: debug: ") || stderr.contains("iamra: trace: "),
            "trace logging is on: {stderr}"
        );
        for secret in [
            KEY_PASSWORD,
            creds["SecretAccessKey"].as_str().unwrap(),
            creds["SessionToken"].as_str().unwrap(),
        ] {
            assert!(!stderr.contains(secret), "a secret reached stderr");
        }
        // Not even hex-encoded (as a TPM command dump would show it).
        assert!(!stderr.contains(&hex::encode(KEY_PASSWORD)));
    }
}

#[test]
fn keys_without_a_password_never_need_a_terminal() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    let out = run_without_terminal(
        &tpm,
        &cp(
            &ep,
            &tpm.file("prov-ec.crt"),
            &tpm.file("prov-ec.tss2.pem"),
            &[],
        ),
        &[],
    );
    assert_credentials(&out);
    let cert = tpm.file(&format!("{}.crt", handle_name(HANDLE_RSA)));
    let out = run_without_terminal(
        &tpm,
        &cp(
            &ep,
            &cert,
            &handle_ref(HANDLE_RSA),
            &["--no-tpm-key-password"],
        ),
        &[],
    );
    assert_credentials(&out);
}

#[test]
fn sign_string_with_sha384_and_sha512_verifies_with_openssl() {
    let tpm = swtpm_or_skip!();
    for name in ["prov-rsa", "prov-ec", "prov-ec384"] {
        for digest in ["SHA256", "SHA384", "SHA512"] {
            assert_sign_string_verifies(&tpm, name, digest, &[]);
        }
    }
    assert_tpm_clean(&tpm, "sign-string");
}

/// `sign-string --digest DIGEST` with the fixture key `name` (env on top) gives
/// a signature of the test message that openssl verifies.
#[track_caller]
fn assert_sign_string_verifies(tpm: &Swtpm, name: &str, digest: &str, env: &[(&str, &str)]) {
    let public_pem = tpm.file(&format!("{name}.pub.pem"));
    let pem = std::fs::read(&public_pem).unwrap();
    let blocks = iamra::pem::parse_all(&pem).unwrap();
    let (_, spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            &blocks[0].der,
        )
        .unwrap();
    let public = iamra::key::PublicKey::from_spki_der(spki.raw).unwrap();
    let message = iamra::output::sign_string::test_message(&public);
    let msg_file = tpm.scratch().join(format!("{name}.msg"));
    std::fs::write(&msg_file, &message).unwrap();
    let out = run(
        tpm,
        &[
            "sign-string".to_string(),
            "--certificate".into(),
            tpm.file(&format!("{name}.crt")),
            "--private-key".into(),
            tpm.file(&format!("{name}.tss2.pem")),
            "--format".into(),
            "bin".into(),
            "--digest".into(),
            digest.into(),
        ],
        env,
    );
    assert!(
        out.status.success(),
        "{name} {digest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig_file = tpm.scratch().join(format!("{name}.{digest}.sig"));
    std::fs::write(&sig_file, &out.stdout).unwrap();
    let verify = Command::new("openssl")
        .args(["dgst", &format!("-{}", digest.to_lowercase()), "-verify"])
        .arg(&public_pem)
        .arg("-signature")
        .arg(&sig_file)
        .arg(&msg_file)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{name} {digest}: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The checks of the TCP transport over swtpm's unix socket, which iamra is
/// pointed at by `env` (on top of `TPM2TOOLS_TCTI=swtpm:path=SOCKET`): key files
/// with and without a password, persistent keys, sign-string, no object left
/// behind, and a wrong password tried once.
fn assert_unix_socket_transport(
    transport: Transport,
    env: impl Fn(&Swtpm) -> Vec<(&'static str, String)>,
) {
    let Some(tpm) = Swtpm::start_on(transport) else {
        return;
    };
    let env = env(&tpm);
    let ep = Endpoint::start();
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(extra.iter().copied())
            .collect()
    };
    let password = [("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)];
    let mut n = 0;
    let keys = [
        (
            tpm.file("prov-ec.crt"),
            tpm.file("prov-ec.tss2.pem"),
            &[][..],
            &[][..],
        ),
        (
            tpm.file("tools-rsa-pw.crt"),
            tpm.file("tools-rsa-pw.tss2.pem"),
            &[][..],
            &password[..],
        ),
        (
            tpm.file(&format!("{}.crt", handle_name(HANDLE_RSA))),
            handle_ref(HANDLE_RSA),
            &["--no-tpm-key-password"][..],
            &[][..],
        ),
        (
            tpm.file(&format!("{}.crt", handle_name(HANDLE_EC_PASSWORD))),
            handle_ref(HANDLE_EC_PASSWORD),
            &[][..],
            &password[..],
        ),
    ];
    for (cert, key, flags, extra) in &keys {
        n += 1;
        assert_round_trip(&tpm, &ep, n, &cp(&ep, cert, key, flags), &with(extra));
    }
    for (name, digest) in [("prov-rsa", "SHA256"), ("prov-ec384", "SHA384")] {
        assert_sign_string_verifies(&tpm, name, digest, &with(&[]));
    }
    assert_tpm_clean(&tpm, "sign-string");
    // A wrong password is tried once (the TPM counts one failure), never again.
    let key = tpm.file("tools-ec-pw.tss2.pem");
    let args = cp(&ep, &tpm.file("tools-ec-pw.crt"), &key, &[]);
    let out = run(
        &tpm,
        &args,
        &with(&[("IAMRA_TPM_KEY_PASSWORD", "not the password")]),
    );
    assert_refused_with(
        &out,
        &format!(
            "iamra: error: wrong password for TPM key {key} (the TPM has counted 1 of 3 failed authorizations before it locks out; it forgets one every 1000 s)\niamra: hint: check IAMRA_TPM_KEY_PASSWORD or --tpm-key-password-file; iamra never retries, but every wrong password counts towards the TPM's lockout\n"
        ),
    );
    assert_eq!(ep.requests().len(), n, "nothing sent");
    assert_credentials(&run(&tpm, &args, &with(&password)));
    assert_tpm_clean(&tpm, "the wrong password");
}

#[test]
fn swtpm_unix_socket_by_tpm2tools_tcti_gets_credentials() {
    // `run` sets TPM2TOOLS_TCTI=swtpm:path=SOCKET.
    assert_unix_socket_transport(Transport::UnixSocket, |_| Vec::new());
}

#[test]
fn swtpm_unix_socket_by_tpm_device_gets_credentials_without_a_control_socket() {
    assert_unix_socket_transport(Transport::UnixSocketOnly, |tpm| {
        vec![
            ("TPM2TOOLS_TCTI", String::new()),
            ("TPM_DEVICE", tpm.socket().display().to_string()),
        ]
    });
}

/// Re-encodes a TSS2 key file's DER with `edit` applied to its fields (the
/// SEQUENCE's contents).
fn edit_key_file(from: &str, to: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let pem = std::fs::read(from).unwrap();
    let der = iamra::pem::parse_all(&pem).unwrap().remove(0).der;
    let (header, len) = match der[1] {
        n if n < 0x80 => (2, usize::from(n)),
        0x81 => (3, usize::from(der[2])),
        0x82 => (4, usize::from(der[2]) << 8 | usize::from(der[3])),
        other => panic!("length form {other:#x}"),
    };
    let mut body = der[header..header + len].to_vec();
    edit(&mut body);
    let mut out = vec![0x30];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(&body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&out);
    let mut text = String::from("-----BEGIN TSS2 PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(chunk).unwrap());
        text.push('\n');
    }
    text.push_str("-----END TSS2 PRIVATE KEY-----\n");
    std::fs::write(to, text).unwrap();
}

/// `(arguments, environment on top of the TPM's, expected stderr)`.
type Case<'a> = (Vec<String>, Vec<(&'a str, String)>, String);

#[test]
fn tpm_failures_give_one_clear_line() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    let f = |name: &str| tpm.file(name);
    let scratch = |name: &str| tpm.scratch().join(name).display().to_string();

    // Synthesised key files: a policy, an importable key, a corrupted private blob.
    let with_policy = scratch("with-policy.tss2.pem");
    edit_key_file(&f("prov-ec.tss2.pem"), Path::new(&with_policy), |body| {
        // After the OID (8 octets) and [0] emptyAuth (5 octets): [1] { SEQUENCE {} }.
        body.splice(13..13, [0xA1, 0x02, 0x30, 0x00]);
    });
    let importable = scratch("importable.tss2.pem");
    edit_key_file(&f("prov-ec.tss2.pem"), Path::new(&importable), |body| {
        body[7] = 0x04;
    });
    let corrupted = scratch("corrupted.tss2.pem");
    edit_key_file(&f("prov-ec.tss2.pem"), Path::new(&corrupted), |body| {
        let last = body.len() - 1;
        body[last] ^= 0x01;
    });
    let truncated = scratch("truncated.tss2.pem");
    edit_key_file(&f("prov-ec.tss2.pem"), Path::new(&truncated), |body| {
        body.truncate(body.len() - 10);
    });
    // A unix socket nobody listens on any more.
    let socket = tpm.scratch().join("swtpm.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let socket = socket.display().to_string();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed_tcti = format!("swtpm:host=127.0.0.1,port={closed_port}");

    let tools_ec = f("tools-ec.tss2.pem");
    let prov_ec_pw = f("prov-ec-pw.tss2.pem");
    let cases: Vec<Case> = vec![
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("IAMRA_TPM_KEY_PASSWORD", "x".into())],
            format!(
                "iamra: error: a TPM key password was given, but TPM key {} has no password (emptyAuth is TRUE); remove the password\n",
                f("prov-ec.tss2.pem")
            ),
        ),
        (
            cp(&ep, &f("prov-ec-pw.crt"), &prov_ec_pw, &[]),
            vec![],
            format!(
                "iamra: error: TPM key {prov_ec_pw} has a password and none was given\niamra: hint: set IAMRA_TPM_KEY_PASSWORD, pass --tpm-key-password-file FILE, or run from a terminal to be prompted\n"
            ),
        ),
        (
            cp(
                &ep,
                &f(&format!("{}.crt", handle_name(HANDLE_EC_PASSWORD))),
                &handle_ref(HANDLE_EC_PASSWORD),
                &[],
            ),
            vec![],
            "iamra: error: TPM key handle:0x81000102 may have a password: none was given, and --no-tpm-key-password was not set\niamra: hint: pass --no-tpm-key-password if the key has no password; otherwise set IAMRA_TPM_KEY_PASSWORD, pass --tpm-key-password-file FILE, or run from a terminal to be prompted\n".into(),
        ),
        (
            cp(
                &ep,
                &f(&format!("{}.crt", handle_name(HANDLE_RSA))),
                &handle_ref(HANDLE_RSA),
                &["--no-tpm-key-password"],
            ),
            vec![("IAMRA_TPM_KEY_PASSWORD", "x".into())],
            "iamra: error: a TPM key password was given for handle:0x81000101 together with --no-tpm-key-password\n".into(),
        ),
        (
            cp(&ep, &td("rsa2048/cert.pem").display().to_string(), &f("decrypt-only.tss2.pem"), &[]),
            vec![],
            format!(
                "iamra: error: TPM key {} is a decrypt-only key (its sign attribute is clear) and cannot sign\n",
                f("decrypt-only.tss2.pem")
            ),
        ),
        (
            cp(&ep, &td("rsa2048/cert.pem").display().to_string(), &f("policy-only.tss2.pem"), &[]),
            vec![],
            format!(
                "iamra: error: TPM key {} can only be used with a TPM policy (userWithAuth is clear), which iamra does not support\n",
                f("policy-only.tss2.pem")
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &with_policy, &[]),
            vec![],
            format!(
                "iamra: error: TPM key file {with_policy} needs a TPM policy to be used, which iamra does not support (only a password or no authorization)\n"
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &importable, &[]),
            vec![],
            format!(
                "iamra: error: TPM key file {importable} is an importable TPM key (OID 2.23.133.10.1.4); only loadable keys (2.23.133.10.1.3) are supported\n"
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &truncated, &[]),
            vec![],
            format!("iamra: error: TPM key file {truncated} is not a valid TSS2 key (truncated)\n"),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &corrupted, &[]),
            vec![],
            format!(
                "iamra: error: the TPM refused to load TPM key {corrupted}: the key was not created under parent 0x40000001 of this TPM (integrity check failed)\n"
            ),
        ),
        (
            cp(&ep, &f("prov-rsa.crt"), &f("tools-rsa.tss2.pem"), &[]),
            vec![],
            format!(
                "iamra: error: private key {} does not match certificate {}\niamra: hint: the key and certificate must be a pair; check you did not swap files between identities\n",
                f("tools-rsa.tss2.pem"),
                f("prov-rsa.crt")
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), "handle:0x81000999", &["--no-tpm-key-password"]),
            vec![],
            "iamra: error: no key is stored at TPM handle 0x81000999\n".into(),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), "handle:0x40000001", &["--no-tpm-key-password"]),
            vec![],
            "iamra: error: handle:0x40000001 is not a persistent TPM key handle (expected handle:0x81000000 to handle:0x81FFFFFF)\n".into(),
        ),
        (
            cp(&ep, "handle:0x81000101", "handle:0x81000101", &["--no-tpm-key-password"]),
            vec![],
            "iamra: error: handle:0x81000101 is a TPM key handle, not a certificate: TPM keys need a certificate file (--certificate FILE --private-key handle:0x81000101)\n".into(),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("TPM2TOOLS_TCTI", closed_tcti.clone())],
            format!(
                "iamra: error: no TPM reachable through TCTI {closed_tcti} (from TPM2TOOLS_TCTI): cannot connect to the swtpm simulator at host=127.0.0.1,port={closed_port} (TSS2 error 0xa000a)\niamra: hint: choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE\n"
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("TPM2TOOLS_TCTI", String::new()), ("TPM_DEVICE", "/nonexistent/tpm0".into())],
            "iamra: error: no TPM reachable through TCTI device:/nonexistent/tpm0 (from TPM_DEVICE): /nonexistent/tpm0 does not exist (no TPM, or its driver is not loaded)\niamra: hint: choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE\n".into(),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("TPM2TOOLS_TCTI", String::new()), ("TPM_DEVICE", socket.clone())],
            format!(
                "iamra: error: no TPM reachable through TCTI swtpm:path={socket} (from TPM_DEVICE): cannot connect to swtpm's unix socket {socket}: Connection refused (os error 111)\niamra: hint: choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE\n"
            ),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("TPM2TOOLS_TCTI", "swtpm:path=/nonexistent/swtpm.sock".into())],
            "iamra: error: no TPM reachable through TCTI swtpm:path=/nonexistent/swtpm.sock (from TPM2TOOLS_TCTI): /nonexistent/swtpm.sock does not exist\niamra: hint: choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE\n".into(),
        ),
        (
            cp(&ep, &f("prov-ec.crt"), &f("prov-ec.tss2.pem"), &[]),
            vec![("TPM2TOOLS_TCTI", format!("swtpm:path={socket},port=2321"))],
            format!(
                "iamra: error: TPM2TOOLS_TCTI=\"swtpm:path={socket},port=2321\" cannot be used: path= (a unix socket) cannot be combined with host= or port=\niamra: hint: choose the TPM with TPM2TOOLS_TCTI (device:/dev/tpmrm0, or for a simulator swtpm:path=SOCKET or swtpm:host=127.0.0.1,port=2321) or TPM_DEVICE\n"
            ),
        ),
        (
            vec![
                "sign-string".into(),
                "--certificate".into(),
                f("tools-rsa.crt"),
                "--private-key".into(),
                f("tools-rsa.tss2.pem"),
                "--digest".into(),
                "SHA384".into(),
            ],
            vec![],
            format!(
                "iamra: error: TPM key {} signs only with SHA-256 (its scheme is fixed), not SHA-384\n",
                f("tools-rsa.tss2.pem")
            ),
        ),
    ];
    for (args, env, expected) in &cases {
        let tcti = tpm.tcti();
        let mut all: Vec<(&str, &str)> = Vec::new();
        if !env.iter().any(|(k, _)| *k == "TPM2TOOLS_TCTI") {
            all.push(("TPM2TOOLS_TCTI", tcti.as_str()));
        }
        all.extend(env.iter().map(|(k, v)| (*k, v.as_str())));
        let out = iamra(args, &all);
        assert_fails_with(&out, expected);
    }
    assert_eq!(ep.requests().len(), 0, "every failure is local");
    assert_tpm_clean(&tpm, "the failures");

    // The storage parent missing from the TPM.
    tpm.tpm2("tpm2_evictcontrol", &["-C", "o", "-c", "0x81000001"]);
    let out = run(&tpm, &cp(&ep, &f("tools-ec.crt"), &tools_ec, &[]), &[]);
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: cannot use parent 0x81000001 of TPM key {tools_ec}: no key is stored at that handle\n"
        ),
    );
}

#[test]
fn wrong_passwords_report_the_dictionary_attack_state_then_the_lockout() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    let key = tpm.file("tools-ec-pw.tss2.pem");
    let args = cp(&ep, &tpm.file("tools-ec-pw.crt"), &key, &[]);
    let wrong = [("IAMRA_TPM_KEY_PASSWORD", "not the password")];
    let hint = "iamra: hint: check IAMRA_TPM_KEY_PASSWORD or --tpm-key-password-file; iamra never retries, but every wrong password counts towards the TPM's lockout\n";
    let lockout_hint = "iamra: hint: wait for the TPM to forget failures, or have its owner run tpm2_dictionarylockout --clear-lockout (with the lockout hierarchy's password); then restart iamra\n";
    for n in 1..=2 {
        let out = run(&tpm, &args, &wrong);
        assert_refused_with(
            &out,
            &format!(
                "iamra: error: wrong password for TPM key {key} (the TPM has counted {n} of 3 failed authorizations before it locks out; it forgets one every 1000 s)\n{hint}"
            ),
        );
    }
    let out = run(&tpm, &args, &wrong);
    assert_refused_with(
        &out,
        &format!(
            "iamra: warning: the TPM has counted 2 of 3 failed authorizations: one more wrong password locks it out\niamra: error: wrong password for TPM key {key} (the TPM has counted 3 failed authorizations and is now in dictionary-attack lockout; it forgets one every 1000 s)\n{hint}"
        ),
    );
    // Now even the right password is refused, and iamra says why.
    let out = run(&tpm, &args, &[("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)]);
    assert_refused_with(
        &out,
        &format!(
            "iamra: error: the TPM is in dictionary-attack lockout and refuses to use TPM key {key} (it forgets one failure every 1000 s; the owner can reset it with tpm2_dictionarylockout --clear-lockout)\n{lockout_hint}"
        ),
    );
    assert_eq!(ep.requests().len(), 0);
    // The lockout covers every DA-protected key, with or without a password.
    let out = run(
        &tpm,
        &cp(
            &ep,
            &tpm.file("prov-ec.crt"),
            &tpm.file("prov-ec.tss2.pem"),
            &[],
        ),
        &[],
    );
    assert_refused_with(
        &out,
        &format!(
            "iamra: error: the TPM is in dictionary-attack lockout and refuses to use TPM key {} (it forgets one failure every 1000 s; the owner can reset it with tpm2_dictionarylockout --clear-lockout)\n{lockout_hint}",
            tpm.file("prov-ec.tss2.pem")
        ),
    );
    assert_eq!(ep.requests().len(), 0);
    // Once the owner clears it, the right password works.
    tpm.tpm2("tpm2_dictionarylockout", &["--clear-lockout"]);
    let out = run(&tpm, &args, &[("IAMRA_TPM_KEY_PASSWORD", KEY_PASSWORD)]);
    assert_credentials(&out);
    assert_tpm_clean(&tpm, "the lockout");
}

#[test]
fn a_missing_tpm_helper_gives_one_clear_line_and_other_keys_still_work() {
    let tpm = swtpm_or_skip!();
    let ep = Endpoint::start();
    // A copy of iamra with no iamra-tpm beside it (and none installed).
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("iamra");
    std::fs::copy(iamra_path(), &lone).unwrap();
    let installed = Path::new(iamra::key::tpm::helper::HELPER_DIR).join("iamra-tpm");
    assert!(!installed.exists(), "{} is installed", installed.display());
    let run_lone = |args: &[String]| run_from(clean_iamra_command_for(&lone), &tpm, args, &[]);
    let key = tpm.file("prov-ec.tss2.pem");
    let out = run_lone(&cp(&ep, &tpm.file("prov-ec.crt"), &key, &[]));
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: cannot use TPM key {key}: its helper program iamra-tpm is not installed (looked for {} and {}); reinstall iamra with the tpm feature\n",
            dir.path().join("iamra-tpm").display(),
            installed.display()
        ),
    );
    assert_eq!(ep.requests().len(), 0);
    // A file key needs no helper.
    let out = run_lone(&cp(
        &ep,
        &td("rsa2048/cert.pem").display().to_string(),
        &td("rsa2048/key.pkcs8.pem").display().to_string(),
        &[],
    ));
    assert_credentials(&out);
    assert_tpm_clean(&tpm, "the missing helper");
}

mod library {
    //! The library's [`TpmKey`] in long-running use, its commands run by the
    //! helper program `iamra-tpm` as in the CLI.

    use super::*;
    use iamra::key::tpm::tcti::TctiConfig;
    use iamra::key::tpm::{TpmBackend, set_backend};
    use iamra::key::{Digest, NoPassword, SigningKey as _};

    /// The test binary does not sit next to `iamra-tpm`: name it (once per process).
    fn use_built_helper() {
        let helper = TpmBackend::Helper(env!("CARGO_BIN_EXE_iamra-tpm").into());
        if let Err(other) = set_backend(helper.clone()) {
            assert_eq!(other, helper, "every test chooses the same backend");
        }
    }

    fn verify_p256(public: &iamra::key::PublicKey, message: &[u8], der: &[u8]) {
        use p256::ecdsa::signature::Verifier as _;
        let iamra::key::PublicKey::P256(point) = public else {
            panic!("not P-256");
        };
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p256::ecdsa::DerSignature::try_from(der).unwrap();
        vk.verify(message, &sig).unwrap();
    }

    fn load(tpm: &Swtpm, name: &str) -> iamra::key::TpmKey {
        use_built_helper();
        let path = tpm.file(name);
        let pem = std::fs::read(&path).unwrap();
        let der = iamra::pem::parse_all(&pem).unwrap().remove(0).der;
        let tcti = TctiConfig::new(&tpm.tcti()).unwrap();
        iamra::key::tpm::load_key_file_with_tcti(&der, Path::new(&path), &NoPassword, Some(&tcti))
            .unwrap()
    }

    #[test]
    fn a_loaded_key_keeps_its_primary_and_key_and_flushes_them_on_drop() {
        // Over swtpm's unix socket, libtss2 reaches the TPM through the helper's
        // bridge: every command, and the flush at drop, pass through it.
        for transport in [Transport::Tcp, Transport::UnixSocket] {
            let Some(tpm) = Swtpm::start_on(transport) else {
                return;
            };
            let key = load(&tpm, "prov-ec.tss2.pem");
            // The re-created storage primary and the key: loaded once, kept.
            assert_eq!(tpm.handles("transient").len(), 2, "{transport:?}");
            let public = key.public_key();
            for i in 0..20u8 {
                let message = [b'm', i];
                let sig = key.sign(&message, Digest::Sha256).unwrap();
                verify_p256(&public, &message, &sig);
            }
            assert_eq!(
                tpm.handles("transient").len(),
                2,
                "{transport:?}: nothing re-created or leaked"
            );
            assert_eq!(tpm.handles("loaded-session"), Vec::<String>::new());
            drop(key);
            assert_tpm_clean(&tpm, &format!("drop ({transport:?})"));
        }
    }

    #[test]
    fn a_password_key_keeps_one_hmac_session_and_flushes_it_on_drop() {
        let tpm = swtpm_or_skip!();
        use_built_helper();
        let path = tpm.file("prov-ec-pw.tss2.pem");
        let pem = std::fs::read(&path).unwrap();
        let der = iamra::pem::parse_all(&pem).unwrap().remove(0).der;
        let tcti = TctiConfig::new(&tpm.tcti()).unwrap();
        let password = iamra::key::FixedPassword(KEY_PASSWORD.into());
        let key = iamra::key::tpm::load_key_file_with_tcti(
            &der,
            Path::new(&path),
            &password,
            Some(&tcti),
        )
        .unwrap();
        let public = key.public_key();
        for i in 0..10u8 {
            let message = [b'p', i];
            verify_p256(
                &public,
                &message,
                &key.sign(&message, Digest::Sha256).unwrap(),
            );
        }
        assert_eq!(tpm.handles("loaded-session").len(), 1, "one session, kept");
        drop(key);
        assert_tpm_clean(&tpm, "drop");
    }

    #[test]
    fn a_kept_key_survives_a_tpm_restart() {
        let mut tpm = swtpm_or_skip!();
        let key = load(&tpm, "tools-ec.tss2.pem");
        let public = key.public_key();
        verify_p256(
            &public,
            b"before",
            &key.sign(b"before", Digest::Sha256).unwrap(),
        );
        tpm.restart();
        // The kept handles are gone with the reset: the key re-opens once.
        verify_p256(
            &public,
            b"after",
            &key.sign(b"after", Digest::Sha256).unwrap(),
        );
        assert_eq!(
            tpm.handles("transient").len(),
            1,
            "only the key (the parent is persistent)"
        );
        drop(key);
        assert_tpm_clean(&tpm, "drop");
    }

    #[test]
    fn a_handle_key_uses_no_transient_object() {
        let tpm = swtpm_or_skip!();
        use_built_helper();
        let tcti = TctiConfig::new(&tpm.tcti()).unwrap();
        let key = iamra::key::tpm::load_handle_with_tcti(
            iamra::key::TpmHandle::parse(&handle_ref(HANDLE_RSA)).unwrap(),
            true,
            &NoPassword,
            Some(&tcti),
        )
        .unwrap();
        for _ in 0..5 {
            assert_eq!(key.sign(b"x", Digest::Sha256).unwrap().len(), 256);
        }
        assert_tpm_clean(&tpm, "handle signatures");
    }
}
