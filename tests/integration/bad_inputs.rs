//! The bad-input corpus: malformed inputs on every input path (files, flags,
//! environment variables, `pkcs11:` URIs, CreateSession answers, HTTP requests to
//! `serve`). Every CLI case must exit non-zero (and not 101, a panic), print
//! nothing on stdout, and print ONE `iamra: error:` line naming the input (a second
//! line may be an `iamra: hint:`), with no fixture secret and nothing that looks like
//! a credential. Every request to `serve` gets a 4xx (or, for bytes that are not
//! HTTP/1, a closed connection) and the server keeps serving.
//!
//! The exact messages of the common failures are pinned in `errors.rs` (missing,
//! directory and empty `--certificate`, `bad/*.pem`, `bad/truncated.p12`, Ed25519,
//! RSA-1024 and P-521 certificates, wrong-password files, durations, malformed ARNs,
//! `--role-arn` with invalid UTF-8, FIFO/loop/1 MiB certificates) and `faults.rs`
//! (broken CreateSession answers to `credential-process`); `serve.rs` pins the IMDS
//! error answers. None of those is repeated here: this corpus covers the other flags,
//! subcommands and sources that reach the same readers and parsers.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::der::{with_kdf_integer, with_serial};
use crate::common::*;

/// Longest a single CLI case may take (scrypt in a debug build is slow).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------
// Cases and the runner

/// One malformed input given to the CLI.
struct Case {
    /// What is wrong, for failure messages.
    what: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// Unset after the clean environment is set up (`HOME`).
    unset: Vec<&'static str>,
    stdin: Vec<u8>,
    /// The headline must contain one of these (the input: flag, path, value...).
    names: Vec<String>,
    /// Secrets of this case that must not appear on stderr.
    secrets: Vec<String>,
}

fn case<S: AsRef<OsStr>>(what: impl Into<String>, args: &[S]) -> Case {
    Case {
        what: what.into(),
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        env: Vec::new(),
        unset: Vec::new(),
        stdin: Vec::new(),
        names: Vec::new(),
        secrets: Vec::new(),
    }
}

impl Case {
    fn names(mut self, s: impl Into<String>) -> Self {
        self.names.push(s.into());
        self
    }
    fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }
    fn unset(mut self, k: &'static str) -> Self {
        self.unset.push(k);
        self
    }
    fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = data.into();
        self
    }
    fn secret(mut self, s: impl Into<String>) -> Self {
        self.secrets.push(s.into());
        self
    }
}

/// Secrets of the committed fixtures: the password and a line of each key's base64.
fn fixture_secrets() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = vec![PASSWORD.to_string()];
        for key in [
            "rsa2048/key.pkcs8.pem",
            "ec-p256/key.pkcs8.pem",
            "ec-p384/key.pkcs8.pem",
            "rsa2048/key.pkcs1.pem",
            "ec-p256/key.sec1.pem",
        ] {
            let pem = std::fs::read_to_string(td(key)).unwrap();
            s.extend(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .take(3)
                    .map(String::from),
            );
        }
        s
    })
}

/// A run of 40 or more base64 characters mixing digits, upper and lower case: the
/// shape of a secret access key, session token, PIN blob or key material.
fn looks_like_a_credential(text: &str) -> Option<&str> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    text.split(|c: char| !is_b64(c)).find(|run| {
        run.len() >= 40
            && run.bytes().any(|b| b.is_ascii_digit())
            && run.bytes().any(|b| b.is_ascii_uppercase())
            && run.bytes().any(|b| b.is_ascii_lowercase())
    })
}

/// The `iamra` command with no `IAMRA_`/`AWS_` variables, no proxies, no cache and a
/// throwaway `HOME` (so `update` never reaches the real `~/.aws/credentials`).
fn command(home: &Path) -> Command {
    let mut cmd = clean_iamra_command();
    cmd.env("IAMRA_NO_CACHE", "true").env("HOME", home);
    cmd
}

struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

fn run(case: &Case) -> Ran {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = command(home.path());
    cmd.args(&case.args);
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    for k in &case.unset {
        cmd.env_remove(k);
    }
    let (out, in_time) = output_with_stdin_within(cmd, &case.stdin, CASE_TIMEOUT);
    // Written files are checked by the caller; the home folder goes now.
    drop(home);
    Ran {
        code: if in_time { out.status.code() } else { Some(-1) },
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Everything wrong with one run, or nothing.
fn problems(case: &Case, ran: &Ran) -> Vec<String> {
    let mut p = Vec::new();
    match ran.code {
        Some(-1) => p.push(format!("did not finish within {CASE_TIMEOUT:?}")),
        None => p.push("killed by a signal".into()),
        Some(0) => p.push("exit status 0".into()),
        Some(101) => p.push("exit status 101 (a panic)".into()),
        Some(_) => {}
    }
    if !ran.stdout.is_empty() {
        p.push(format!(
            "stdout is not empty: {:?}",
            String::from_utf8_lossy(&ran.stdout)
        ));
    }
    let stderr = &ran.stderr;
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        p.push("a panic message".into());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.as_slice() {
        [headline] | [headline, _] => {
            if !headline.starts_with("iamra: error: ") {
                p.push("the first line is not `iamra: error: ...`".into());
            }
            if !case.names.iter().any(|n| headline.contains(n.as_str())) {
                p.push(format!("the headline names none of {:?}", case.names));
            }
            if let [_, second] = lines.as_slice()
                && !second.starts_with("iamra: hint: ")
            {
                p.push("the second line is not a hint".into());
            }
        }
        _ => p.push(format!("{} stderr lines, not 1 (+ hint)", lines.len())),
    }
    for s in fixture_secrets().iter().chain(&case.secrets) {
        if stderr.contains(s.as_str()) {
            p.push(format!("stderr holds the secret {s:?}"));
        }
    }
    if let Some(run) = looks_like_a_credential(stderr) {
        p.push(format!("stderr holds something credential-like: {run:?}"));
    }
    p
}

/// Runs every case (on a few threads), then fails with every problem found.
fn check_all(group: &str, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let cases = std::sync::Arc::new(cases);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let cases = cases.clone();
            let next = next.clone();
            let group = group.to_string();
            std::thread::spawn(move || {
                let mut found = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let ran = run(case);
                    let p = problems(case, &ran);
                    if !p.is_empty() {
                        found.push(format!(
                            "[{group} #{i}] {}: {}\n    args: {:?}\n    stderr: {:?}",
                            case.what,
                            p.join("; "),
                            case.args,
                            ran.stderr
                        ));
                    }
                }
                found
            })
        })
        .collect();
    let found: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        found.is_empty(),
        "{} bad case(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// Fixtures made at run time

/// Files that cannot be committed (FIFOs, loops, 1 MiB) or are made with openssl
/// (DSA and other unsupported keys), and certificates with crafted serials.
struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    fn get() -> &'static Fixtures {
        static F: OnceLock<Fixtures> = OnceLock::new();
        F.get_or_init(Fixtures::make)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn make() -> Fixtures {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-inputs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a-directory")).unwrap();
        let f = Fixtures { dir: dir.clone() };
        let w = |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();
        w("empty", b"");
        w("big.pem", &vec![b'A'; 1024 * 1024 + 1]);
        let ok = Command::new("mkfifo")
            .arg(dir.join("fifo"))
            .status()
            .expect("mkfifo");
        assert!(ok.success());
        std::os::unix::fs::symlink(dir.join("loop2"), dir.join("loop1")).unwrap();
        std::os::unix::fs::symlink(dir.join("loop1"), dir.join("loop2")).unwrap();

        // ML-DSA certificates under an OID that is not pure ML-DSA (HashML-DSA-65)
        // or with a public key of the wrong length for their OID.
        let mldsa = std::fs::read(td("mldsa65/cert.der")).unwrap();
        let oid_65 = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12,
        ];
        let replace_oids = |to: u8| {
            let mut der = mldsa.clone();
            let mut i = 0;
            while i + oid_65.len() <= der.len() {
                if der[i..i + oid_65.len()] == oid_65 {
                    der[i + oid_65.len() - 1] = to;
                }
                i += 1;
            }
            der
        };
        w("mldsa-hash-oid-cert.der", &replace_oids(0x21));
        w("mldsa-as-44-cert.der", &replace_oids(0x11));

        // PEM oddities around a real certificate.
        let cert_pem = std::fs::read_to_string(td("rsa2048/cert.pem")).unwrap();
        let body: Vec<&str> = cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let wrap = |label: &str, end: &str, lines: &[&str]| {
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {end}-----\n",
                lines.join("\n")
            )
        };
        let b = body.as_slice();
        w("crl-label.pem", wrap("X509 CRL", "X509 CRL", b).as_bytes());
        w(
            "trusted-label.pem",
            wrap("TRUSTED CERTIFICATE", "TRUSTED CERTIFICATE", b).as_bytes(),
        );
        w(
            "csr-label.pem",
            wrap("CERTIFICATE REQUEST", "CERTIFICATE REQUEST", b).as_bytes(),
        );
        w(
            "mismatched-end.pem",
            wrap("CERTIFICATE", "X509 CRL", b).as_bytes(),
        );
        w(
            "unterminated.pem",
            format!("-----BEGIN CERTIFICATE-----\n{}\n", body.join("\n")).as_bytes(),
        );
        let mut bad64: Vec<String> = body.iter().map(|s| s.to_string()).collect();
        bad64[1].replace_range(3..4, "*");
        let bad64: Vec<&str> = bad64.iter().map(String::as_str).collect();
        w(
            "bad-base64.pem",
            wrap("CERTIFICATE", "CERTIFICATE", &bad64).as_bytes(),
        );
        w(
            "nested-begin.pem",
            format!("-----BEGIN CERTIFICATE-----\n{}\n{cert_pem}", body[0]).as_bytes(),
        );
        // Key files with the wrong labels or broken contents.
        let key_pem = std::fs::read_to_string(td("rsa2048/key.pkcs8.pem")).unwrap();
        let key_body: Vec<&str> = key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        w(
            "public-key-label.pem",
            wrap("PUBLIC KEY", "PUBLIC KEY", &key_body).as_bytes(),
        );
        w(
            "openssh-label.pem",
            wrap("OPENSSH PRIVATE KEY", "OPENSSH PRIVATE KEY", &key_body).as_bytes(),
        );
        w(
            "dsa-label.pem",
            wrap("DSA PRIVATE KEY", "DSA PRIVATE KEY", &key_body).as_bytes(),
        );
        w(
            "pkcs8-half.pem",
            wrap(
                "PRIVATE KEY",
                "PRIVATE KEY",
                &key_body[..key_body.len() / 2],
            )
            .as_bytes(),
        );
        w(
            "encrypted-garbage.pem",
            wrap("ENCRYPTED PRIVATE KEY", "ENCRYPTED PRIVATE KEY", b).as_bytes(),
        );
        w(
            "rsa-label-on-ec.pem",
            {
                let ec = std::fs::read_to_string(td("ec-p256/key.sec1.pem")).unwrap();
                let l: Vec<&str> = ec.lines().filter(|l| !l.starts_with("-----")).collect();
                wrap("RSA PRIVATE KEY", "RSA PRIVATE KEY", &l).into_bytes()
            }
            .as_slice(),
        );
        w(
            "legacy-encrypted.pem",
            {
                let ec = std::fs::read_to_string(td("ec-p256/key.sec1.pem")).unwrap();
                let mut l = vec![
                    "Proc-Type: 4,ENCRYPTED",
                    "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF",
                    "",
                ];
                l.extend(ec.lines().filter(|l| !l.starts_with("-----")));
                wrap("EC PRIVATE KEY", "EC PRIVATE KEY", &l).into_bytes()
            }
            .as_slice(),
        );
        w("der-sequence.der", &[0x30, 0x03, 0x02, 0x01, 0x05]);
        w("der-garbage.der", &[0x30, 0x82, 0xff, 0xff, 0x00]);
        w("utf16-bom.pem", &[0xff, 0xfe, b'-', 0, b'-', 0]);

        // PKCS#12 bundles cut short or edited.
        let p12 = std::fs::read(td("rsa2048/bundle-modern.p12")).unwrap();
        w("p12-4-octets.p12", &p12[..4]);
        w("p12-64-octets.p12", &p12[..64]);
        w("p12-three-quarters.p12", &p12[..p12.len() * 3 / 4]);
        let mut last = p12.clone();
        *last.last_mut().unwrap() ^= 0x01;
        w("p12-last-octet-flipped.p12", &last);
        let mut mid = p12.clone();
        let m = mid.len() / 2;
        mid[m] ^= 0xff;
        w("p12-middle-octet-flipped.p12", &mid);
        let mut trailing = p12.clone();
        trailing.extend_from_slice(b"trailing garbage");
        w("p12-trailing.p12", &trailing);
        let legacy = std::fs::read(td("rsa2048/bundle-legacy-nopass.p12")).unwrap();
        w("p12-legacy-half.p12", &legacy[..legacy.len() / 2]);

        // Encrypted keys and a bundle whose key derivation would take gigabytes or
        // hours (the parameters come from the file).
        let pem_der = |rel: &str| {
            use base64::Engine as _;
            let pem = std::fs::read_to_string(td(rel)).unwrap();
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        };
        let scrypt = pem_der("ec-p256/key.enc-scrypt-aes256.pem");
        w(
            "scrypt-1-tib.der",
            &with_kdf_integer(&scrypt, &[0x40, 0, 0, 0]),
        );
        let pbkdf2 = pem_der("ec-p256/key.enc-pbkdf2-sha256-aes256.pem");
        w(
            "pbkdf2-2g-iterations.der",
            &with_kdf_integer(&pbkdf2, &[0x7f, 0xff, 0xff, 0xff]),
        );
        w(
            "p12-mac-2g-iterations.p12",
            &p12_with_mac_iterations(&p12, &[0x7f, 0xff, 0xff, 0xff]),
        );

        // Password files that hold the right password wrongly.
        w(
            "password-two-newlines.txt",
            format!("{PASSWORD}\n\n").as_bytes(),
        );
        w(
            "password-leading-space.txt",
            format!(" {PASSWORD}").as_bytes(),
        );

        // Certificates with crafted serials (the signature no longer verifies; the
        // serial is checked before anything else would be).
        let der = std::fs::read(td("ec-p256/cert.der")).unwrap();
        w(
            "serial-negative.der",
            &with_serial(&der, &[0x80, 0x01, 0x02]),
        );
        w("serial-empty.der", &with_serial(&der, &[]));
        w("serial-21-octets.der", &with_serial(&der, &[0x01; 21]));
        w("serial-40-octets.der", &with_serial(&der, &[0x01; 40]));
        w("serial-1000-octets.der", &with_serial(&der, &[0x01; 1000]));
        w("serial-long-length.der", &serial_with_bad_length(&der));

        // Keys and certificates of kinds Roles Anywhere does not sign with.
        let ossl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl (install the openssl package)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ossl(&[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
            "-out",
            "dsa.params",
        ]);
        ossl(&["genpkey", "-paramfile", "dsa.params", "-out", "dsa.key"]);
        let keys: &[(&str, &[&str])] = &[
            (
                "secp256k1",
                &[
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:secp256k1",
                ],
            ),
            (
                "brainpool",
                &[
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:brainpoolP256r1",
                ],
            ),
            (
                "rsa-pss",
                &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
            ("ed448", &["-algorithm", "ED448"]),
            (
                "rsa512",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"],
            ),
            (
                "explicit-p256",
                &[
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-pkeyopt",
                    "ec_param_enc:explicit",
                ],
            ),
        ];
        for (name, opts) in keys {
            let out = format!("{name}.key");
            let mut a = vec!["genpkey"];
            a.extend_from_slice(opts);
            a.extend(["-out", &out]);
            ossl(&a);
        }
        ossl(&["genpkey", "-algorithm", "X25519", "-out", "x25519.key"]);
        for name in [
            "dsa",
            "secp256k1",
            "brainpool",
            "rsa-pss",
            "ed448",
            "rsa512",
        ] {
            let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
            ossl(&[
                "req",
                "-x509",
                "-key",
                &key,
                "-subj",
                "/CN=iamra-bad-input",
                "-days",
                "30",
                "-out",
                &cert,
            ]);
        }
        ossl(&[
            "ecparam",
            "-name",
            "secp256k1",
            "-genkey",
            "-out",
            "secp256k1.sec1.pem",
        ]);
        ossl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-param_enc",
            "explicit",
            "-out",
            "explicit.sec1.pem",
        ]);
        let ec_key = td("ec-p256/key.pkcs8.pem").display().to_string();
        ossl(&[
            "req", "-new", "-key", &ec_key, "-subj", "/CN=csr", "-outform", "DER", "-out",
            "csr.der",
        ]);
        f
    }
}

/// A PKCS#12 PFX (`30 82 LL LL`, ending with `MacData`'s 2-octet iteration count)
/// with the iteration count replaced by the 4 octets `value`.
fn p12_with_mac_iterations(pfx: &[u8], value: &[u8; 4]) -> Vec<u8> {
    let n = pfx.len();
    assert_eq!(pfx[..2], [0x30, 0x82]);
    assert_eq!(pfx[n - 4..n - 2], [0x02, 0x02]);
    let mut out = pfx[..n - 4].to_vec();
    out.extend([0x02, 0x04]);
    out.extend_from_slice(value);
    let len = u16::from_be_bytes([out[2], out[3]]) + 2;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    // MacData: SEQUENCE { DigestInfo, OCTET STRING salt, INTEGER } with a short length.
    let mac = (0..n - 4)
        .rev()
        .find(|&i| out[i] == 0x30 && i + 2 + usize::from(out[i + 1]) == n)
        .unwrap();
    out[mac + 1] += 2;
    out
}

/// `cert` whose serial INTEGER claims a length running past the certificate.
fn serial_with_bad_length(cert: &[u8]) -> Vec<u8> {
    let mut out = cert.to_vec();
    let tbs_at = if cert[1] == 0x82 { 4 } else { 3 };
    let tbs_header = if cert[tbs_at + 1] == 0x82 { 4 } else { 3 };
    let serial_at = tbs_at + tbs_header + 2 + usize::from(cert[tbs_at + tbs_header + 1]);
    assert_eq!(out[serial_at], 0x02);
    out[serial_at + 1] = 0x84; // a 4-octet length follows
    out.splice(serial_at + 2..serial_at + 2, [0x7f, 0xff, 0xff]);
    out
}

// ---------------------------------------------------------------------------------
// CLI argument helpers

const T: &str = "certs-testdata";

/// ARNs, and an endpoint nothing listens on: every local case fails before the network.
fn arns() -> Vec<String> {
    ARN_FLAGS
        .iter()
        .chain(&["--endpoint", "https://127.0.0.1:1"])
        .map(|s| s.to_string())
        .collect()
}

/// `credential-process` with the ARNs and `extra`.
fn cp(extra: &[&str]) -> Vec<String> {
    let mut v = vec!["credential-process".to_string()];
    v.extend(arns());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn t(rel: &str) -> String {
    format!("{T}/{rel}")
}

// ---------------------------------------------------------------------------------
// Files on every file flag

/// Every file flag (but `--certificate` of credential-process, pinned in errors.rs)
/// with each kind of unreadable file.
fn file_cases() -> Vec<Case> {
    let fx = Fixtures::get();
    let kinds = [
        ("empty file", fx.path("empty"), "is empty"),
        ("directory", fx.path("a-directory"), "is not a regular file"),
        (
            "symlink loop",
            fx.path("loop1"),
            "Too many levels of symbolic links",
        ),
        ("FIFO", fx.path("fifo"), "is not a regular file"),
        (
            "file over 1 MiB",
            fx.path("big.pem"),
            "is larger than 1 MiB",
        ),
        (
            "missing file",
            fx.path("missing"),
            "No such file or directory",
        ),
    ];
    let rsa_cert = t("rsa2048/cert.pem");
    let combined = t("rsa2048/combined.pem");
    let pbkdf2 = t("rsa2048/key.enc-pbkdf2-sha256-aes256.pem");
    let p12 = t("rsa2048/bundle-modern.p12");
    let mut cases = Vec::new();
    for (kind, path, why) in &kinds {
        let p = path.as_str();
        let flags: Vec<(&str, Vec<String>)> = vec![
            (
                "credential-process --private-key",
                cp(&["--certificate", &rsa_cert, "--private-key", p]),
            ),
            (
                "credential-process --intermediates",
                cp(&["--certificate", &combined, "--intermediates", p]),
            ),
            (
                "credential-process --ca-bundle",
                cp(&["--certificate", &combined, "--ca-bundle", p]),
            ),
            (
                "credential-process --pkcs8-password-file",
                cp(&[
                    "--certificate",
                    &rsa_cert,
                    "--private-key",
                    &pbkdf2,
                    "--pkcs8-password-file",
                    p,
                ]),
            ),
            (
                "credential-process --pkcs12-password-file",
                cp(&["--certificate", &p12, "--pkcs12-password-file", p]),
            ),
            (
                "read-certificate-data --certificate",
                vec![
                    "read-certificate-data".into(),
                    "--certificate".into(),
                    p.into(),
                ],
            ),
            (
                "sign-string --private-key",
                vec![
                    "sign-string".into(),
                    "--certificate".into(),
                    rsa_cert.clone(),
                    "--private-key".into(),
                    p.into(),
                ],
            ),
            ("update --certificate", {
                let mut v = vec!["update".to_string(), "--once".into()];
                v.extend(arns());
                v.extend(["--certificate".into(), p.into()]);
                v
            }),
            ("serve --ecs-token-from-file", {
                let mut v = vec!["serve".to_string(), "--port".into(), "0".into()];
                v.extend(arns());
                v.extend([
                    "--certificate".into(),
                    combined.clone(),
                    "--ecs-token-from-file".into(),
                    p.into(),
                ]);
                v
            }),
        ];
        for (flag, args) in flags {
            cases.push(
                case(format!("{kind} for {flag}"), &args)
                    .names(p)
                    .names(*why),
            );
        }
    }
    // Standard input and environment variables as sources.
    let stdin_cert = cp(&["--certificate", "-"]);
    cases.push(
        case("empty stdin for --certificate -", &stdin_cert).names("certificate file - is empty"),
    );
    cases.push(
        case("over 1 MiB on stdin for --certificate -", &stdin_cert)
            .stdin(vec![b'A'; 1024 * 1024 + 1])
            .names("certificate file - is larger than 1 MiB"),
    );
    cases.push(
        case("text on stdin for --certificate -", &stdin_cert)
            .stdin("not a certificate\n")
            .names("- holds no certificate"),
    );
    cases.push(
        case(
            "a certificate and no key on stdin",
            &cp(&["--certificate", "-", "--private-key", "-"]),
        )
        .stdin(std::fs::read(td("rsa2048/cert.pem")).unwrap())
        .names("- holds no private key"),
    );
    cases.push(
        case(
            "empty stdin for --pkcs8-password-file - (the empty password)",
            &cp(&[
                "--certificate",
                &rsa_cert,
                "--private-key",
                &pbkdf2,
                "--pkcs8-password-file",
                "-",
            ]),
        )
        .names("wrong password for"),
    );
    cases.push(
        case(
            "unset env: variable",
            &cp(&["--certificate", "env:IAMRA_TEST_UNSET"]),
        )
        .names("environment variable IAMRA_TEST_UNSET is not set"),
    );
    cases.push(
        case(
            "empty env: variable",
            &cp(&["--certificate", "env:IAMRA_TEST_EMPTY"]),
        )
        .env("IAMRA_TEST_EMPTY", "")
        .names("env:IAMRA_TEST_EMPTY is empty"),
    );
    cases.push(
        case(
            "non-UTF-8 env: variable",
            &cp(&["--certificate", "env:IAMRA_TEST_BYTES"]),
        )
        .env("IAMRA_TEST_BYTES", OsStr::from_bytes(b"\xff\xfe"))
        // Set, so not "not set": what is wrong is its content.
        .names("env:IAMRA_TEST_BYTES holds no certificate"),
    );
    cases.push(
        case(
            "a key in an env: variable given as the certificate",
            &cp(&[
                "--certificate",
                "env:IAMRA_TEST_KEY",
                "--private-key",
                &t("rsa2048/key.pkcs8.pem"),
            ]),
        )
        .env(
            "IAMRA_TEST_KEY",
            std::fs::read_to_string(td("rsa2048/key.pkcs8.pem")).unwrap(),
        )
        .names("env:IAMRA_TEST_KEY holds no certificate"),
    );
    cases.push(
        case("env:NAME naming its own variable", &cp(&[]))
            .env("IAMRA_CERTIFICATE", "env:IAMRA_CERTIFICATE")
            .names("env:IAMRA_CERTIFICATE holds no certificate"),
    );
    cases
}

#[test]
fn unreadable_files_on_every_file_flag_are_one_clear_line() {
    check_all("files", file_cases());
}

// ---------------------------------------------------------------------------------
// File contents: labels, DER types, PKCS#12, passwords, key kinds, serials

fn content_cases() -> Vec<Case> {
    let fx = Fixtures::get();
    let rsa_cert = t("rsa2048/cert.pem");
    let rsa_key = t("rsa2048/key.pkcs8.pem");
    let combined = t("rsa2048/combined.pem");
    let mut cases = Vec::new();
    let as_cert = |what: &str, path: String, names: &str| {
        case(
            what,
            &cp(&["--certificate", &path, "--private-key", &rsa_key]),
        )
        .names(path.clone())
        .names(names)
    };
    // PEM with the wrong label, or broken.
    for (file, names) in [
        ("crl-label.pem", "found X509 CRL"),
        ("trusted-label.pem", "found TRUSTED CERTIFICATE"),
        ("csr-label.pem", "found CERTIFICATE REQUEST"),
        ("mismatched-end.pem", "ends with a different label"),
        ("unterminated.pem", "has no END line"),
        ("bad-base64.pem", "is not valid base64"),
        ("nested-begin.pem", "has no END line"),
        ("utf16-bom.pem", "holds no certificate"),
    ] {
        cases.push(as_cert(
            &format!("certificate {file}"),
            fx.path(file),
            names,
        ));
    }
    for (file, names) in [
        ("public-key-label.pem", "found PUBLIC KEY"),
        ("openssh-label.pem", "found OPENSSH PRIVATE KEY"),
        ("dsa-label.pem", "found DSA PRIVATE KEY"),
        ("pkcs8-half.pem", "does not parse"),
        ("encrypted-garbage.pem", "does not parse"),
        ("rsa-label-on-ec.pem", "does not parse"),
        ("legacy-encrypted.pem", "legacy OpenSSL PEM encryption"),
        ("der-sequence.der", "DER of an unknown type"),
        ("der-garbage.der", "DER of an unknown type"),
    ] {
        let p = fx.path(file);
        cases.push(
            case(
                format!("private key {file}"),
                &cp(&["--certificate", &rsa_cert, "--private-key", &p]),
            )
            .names(p.clone())
            .names(names),
        );
    }
    // DER (and PKCS#12) of the wrong type for the flag.
    for (what, args, names) in [
        (
            "PKCS#8 DER as --certificate",
            cp(&[
                "--certificate",
                &t("rsa2048/key.pkcs8.der"),
                "--private-key",
                &rsa_key,
            ]),
            t("rsa2048/key.pkcs8.der"),
        ),
        (
            "SEC 1 DER as --certificate",
            cp(&[
                "--certificate",
                &t("ec-p256/key.sec1.der"),
                "--private-key",
                &rsa_key,
            ]),
            t("ec-p256/key.sec1.der"),
        ),
        (
            "CSR DER as --certificate",
            cp(&[
                "--certificate",
                &fx.path("csr.der"),
                "--private-key",
                &rsa_key,
            ]),
            fx.path("csr.der"),
        ),
        (
            "certificate DER as --private-key",
            cp(&[
                "--certificate",
                &rsa_cert,
                "--private-key",
                &t("rsa2048/cert.der"),
            ]),
            format!(
                "{} holds no private key (found a DER certificate)",
                t("rsa2048/cert.der")
            ),
        ),
        (
            "PKCS#12 as --private-key",
            cp(&[
                "--certificate",
                &combined,
                "--private-key",
                &t("rsa2048/bundle-modern.p12"),
            ]),
            t("rsa2048/bundle-modern.p12"),
        ),
        (
            "PKCS#12 as --intermediates",
            cp(&[
                "--certificate",
                &combined,
                "--intermediates",
                &t("rsa2048/bundle-modern.p12"),
            ]),
            t("rsa2048/bundle-modern.p12"),
        ),
        (
            "key DER as --intermediates",
            cp(&[
                "--certificate",
                &combined,
                "--intermediates",
                &t("rsa2048/key.pkcs8.der"),
            ]),
            t("rsa2048/key.pkcs8.der"),
        ),
        (
            "certificate DER as --ca-bundle",
            cp(&[
                "--certificate",
                &combined,
                "--ca-bundle",
                &t("rsa2048/cert.der"),
            ]),
            t("rsa2048/cert.der"),
        ),
        (
            "key as --ca-bundle",
            cp(&["--certificate", &combined, "--ca-bundle", &rsa_key]),
            rsa_key.clone(),
        ),
        (
            "PKCS#12 with --private-key",
            cp(&[
                "--certificate",
                &t("rsa2048/bundle-modern.p12"),
                "--private-key",
                &rsa_key,
            ]),
            t("rsa2048/bundle-modern.p12"),
        ),
    ] {
        cases.push(case(what, &args).names(names));
    }
    // PKCS#12 cut short or edited (errors.rs pins bad/truncated.p12).
    for file in [
        "p12-4-octets.p12",
        "p12-64-octets.p12",
        "p12-three-quarters.p12",
        "p12-last-octet-flipped.p12",
        "p12-middle-octet-flipped.p12",
        "p12-trailing.p12",
        "p12-legacy-half.p12",
    ] {
        let p = fx.path(file);
        cases.push(
            case(format!("PKCS#12 {file}"), &cp(&["--certificate", &p]))
                .env("IAMRA_PKCS12_PASSWORD", PASSWORD)
                .names(p),
        );
    }
    // Key derivation costs from the file: refused before any work is done.
    for (file, names) in [
        ("scrypt-1-tib.der", "scrypt with N=1073741824, r=8, p=1"),
        (
            "pbkdf2-2g-iterations.der",
            "PBKDF2 with 2147483647 iterations",
        ),
    ] {
        let p = fx.path(file);
        cases.push(
            case(
                format!("encrypted key {file}"),
                &cp(&["--certificate", &t("ec-p256/cert.pem"), "--private-key", &p]),
            )
            .env("IAMRA_PKCS8_PASSWORD", PASSWORD)
            .names(format!(
                "private key {p} uses an unsupported encryption ({names}"
            )),
        );
    }
    let p = fx.path("p12-mac-2g-iterations.p12");
    cases.push(
        case(
            "PKCS#12 with 2^31 MAC iterations",
            &cp(&["--certificate", &p]),
        )
        .env("IAMRA_PKCS12_PASSWORD", PASSWORD)
        .names(format!("PKCS#12 bundle {p} does not parse")),
    );
    // Wrong passwords from the environment (errors.rs pins a wrong password file).
    let wrong = "not-the-password-4a1f";
    for key in [
        "ec-p256/key.enc-pbkdf2-sha1-aes128.pem",
        "ec-p384/key.enc-pbkdf2-sha384-aes192.pem",
        "rsa2048/key.enc-pbkdf2-sha512-aes256.pem",
        "rsa2048/key.enc-pbkdf2-sha256-aes256.der",
        "ec-p256/key.enc-scrypt-aes256.pem",
    ] {
        let cert = format!("{}/cert.pem", key.split('/').next().unwrap());
        cases.push(
            case(
                format!("wrong IAMRA_PKCS8_PASSWORD for {key}"),
                &cp(&["--certificate", &t(&cert), "--private-key", &t(key)]),
            )
            .env("IAMRA_PKCS8_PASSWORD", wrong)
            .names(format!("wrong password for {}", t(key)))
            .secret(wrong),
        );
    }
    cases.push(
        case(
            "empty IAMRA_PKCS8_PASSWORD",
            &cp(&[
                "--certificate",
                &rsa_cert,
                "--private-key",
                &t("rsa2048/key.enc-pbkdf2-sha256-aes256.pem"),
            ]),
        )
        .env("IAMRA_PKCS8_PASSWORD", "")
        .names("wrong password"),
    );
    for (file, pw) in [
        ("password-two-newlines.txt", "two newlines"),
        ("password-leading-space.txt", "a leading space"),
    ] {
        let key = t("rsa2048/key.enc-pbkdf2-sha256-aes256.pem");
        cases.push(
            case(
                format!("password file with {pw}"),
                &cp(&[
                    "--certificate",
                    &rsa_cert,
                    "--private-key",
                    &key,
                    "--pkcs8-password-file",
                    &fx.path(file),
                ]),
            )
            .names(format!("wrong password for {key}")),
        );
    }
    for bundle in [
        "rsa2048/bundle-legacy.p12",
        "ec-p256/bundle-modern.p12",
        "rsa2048/bundle-legacy-nopass.p12",
        "ec-p256/bundle-modern-empty.p12",
    ] {
        cases.push(
            case(
                format!("wrong IAMRA_PKCS12_PASSWORD for {bundle}"),
                &cp(&["--certificate", &t(bundle)]),
            )
            .env("IAMRA_PKCS12_PASSWORD", wrong)
            .names(format!("wrong password for {}", t(bundle)))
            .secret(wrong),
        );
    }
    cases.push(
        case(
            "wrong IAMRA_PKCS12_PASSWORD for sign-string",
            &[
                "sign-string",
                "--certificate",
                &t("ec-p256/bundle-legacy.p12"),
            ],
        )
        .env("IAMRA_PKCS12_PASSWORD", wrong)
        .names("wrong password")
        .secret(wrong),
    );
    // Certificates and keys of kinds Roles Anywhere does not sign with (errors.rs
    // pins Ed25519, RSA-1024 and P-521 for credential-process).
    for (name, kind) in [
        ("dsa", "DSA"),
        ("secp256k1", "EC (curve 1.3.132.0.10)"),
        ("brainpool", "EC (curve 1.3.36.3.3.2.8.1.1.7)"),
        ("rsa-pss", "RSA-PSS"),
        ("ed448", "Ed448"),
        ("rsa512", "RSA-512"),
    ] {
        let (cert, key) = (
            fx.path(&format!("{name}.pem")),
            fx.path(&format!("{name}.key")),
        );
        cases.push(
            case(
                format!("{name} certificate"),
                &cp(&["--certificate", &cert, "--private-key", &key]),
            )
            .names(format!("certificate {cert} has an unsupported {kind} key")),
        );
    }
    for (name, kind) in [
        ("dsa.key", "DSA"),
        ("secp256k1.key", "EC secp256k1"),
        ("secp256k1.sec1.pem", "EC secp256k1"),
        ("brainpool.key", "EC curve 1.3.36.3.3.2.8.1.1.7"),
        ("rsa-pss.key", "RSA-PSS"),
        ("ed448.key", "Ed448"),
        ("rsa512.key", "RSA (under 2048 bits)"),
        ("x25519.key", "OID 1.3.101.110"),
        ("explicit-p256.key", "EC (no named curve)"),
    ] {
        let key = fx.path(name);
        cases.push(
            case(
                format!("{name} with sign-string"),
                &[
                    "sign-string",
                    "--certificate",
                    &rsa_cert,
                    "--private-key",
                    &key,
                ],
            )
            .names(format!("private key {key} is an unsupported {kind} key")),
        );
    }
    cases.push(
        case(
            "explicit EC parameters (SEC 1)",
            &[
                "sign-string",
                "--certificate",
                &rsa_cert,
                "--private-key",
                &fx.path("explicit.sec1.pem"),
            ],
        )
        .names(fx.path("explicit.sec1.pem")),
    );
    for (what, cert) in [
        (
            "Ed25519 certificate for read-certificate-data",
            t("ed25519/cert.pem"),
        ),
        (
            "RSA-1024 certificate for read-certificate-data",
            t("rsa1024/cert.pem"),
        ),
        (
            "DSA certificate for read-certificate-data",
            fx.path("dsa.pem"),
        ),
    ] {
        cases.push(
            case(what, &["read-certificate-data", "--certificate", &cert])
                .names(format!("certificate {cert} has an unsupported")),
        );
    }
    cases.push(
        case(
            "P-384 key for a P-256 certificate",
            &cp(&[
                "--certificate",
                &t("ec-p256/cert.pem"),
                "--private-key",
                &t("ec-p384/key.pkcs8.pem"),
            ]),
        )
        .names(format!(
            "private key {} does not match certificate {}",
            t("ec-p384/key.pkcs8.pem"),
            t("ec-p256/cert.pem")
        )),
    );
    // ML-DSA keys: wrong seed or expanded lengths, halves that disagree, OIDs that
    // are not pure ML-DSA, not one of the three RFC 9881 forms.
    for (file, names) in [
        (
            "mldsa-seed-31-bytes.pem",
            "does not parse: ML-DSA-65 seed is 31 bytes, not 32",
        ),
        (
            "mldsa-expanded-short.pem",
            "does not parse: ML-DSA-65 expanded key is 4031 bytes, not 4032",
        ),
        (
            "mldsa-both-seed-33-bytes.pem",
            "does not parse: ML-DSA-65 seed is 33 bytes, not 32",
        ),
        (
            "mldsa-both-mismatch.pem",
            "is inconsistent: its ML-DSA-65 expanded key is not the one its seed expands to",
        ),
        (
            "mldsa-both-wrong-level.pem",
            "does not parse: ML-DSA-44 expanded key is 4032 bytes, not 2560",
        ),
        (
            "mldsa-hash-oid.pem",
            "is an unsupported HashML-DSA-65 (pre-hash) key",
        ),
        (
            "mldsa-unknown-oid.pem",
            "is an unsupported OID 2.16.840.1.101.3.4.3.99 (not ML-DSA-44/65/87) key",
        ),
        (
            "mldsa-not-a-choice.pem",
            "does not parse: ML-DSA-65 private key is not seed, expandedKey or both (RFC 9881)",
        ),
    ] {
        let key = t(&format!("bad/{file}"));
        cases.push(
            case(
                format!("{file} with credential-process"),
                &cp(&[
                    "--certificate",
                    &t("mldsa65/cert.pem"),
                    "--private-key",
                    &key,
                ]),
            )
            .names(format!("private key {key} {names}")),
        );
    }
    for (cert, key) in [
        ("ec-p256/cert.pem", "mldsa65/key.seed.pem"),
        ("mldsa65/cert.pem", "ec-p256/key.pkcs8.pem"),
        ("mldsa65/cert.pem", "mldsa87/key.both.pem"),
        ("mldsa44/cert.pem", "mldsa65/key.expanded.der"),
    ] {
        cases.push(
            case(
                format!("{key} for {cert}"),
                &cp(&["--certificate", &t(cert), "--private-key", &t(key)]),
            )
            .names(format!(
                "private key {} does not match certificate {}",
                t(key),
                t(cert)
            )),
        );
    }
    for (file, names) in [
        (
            "mldsa-hash-oid-cert.der",
            "has an unsupported HashML-DSA-65 (pre-hash) key",
        ),
        (
            "mldsa-as-44-cert.der",
            "has an unsupported ML-DSA-44 (public key of 1952 bytes, not 1312) key",
        ),
    ] {
        let p = fx.path(file);
        cases.push(
            case(
                format!("{file} with read-certificate-data"),
                &["read-certificate-data", "--certificate", &p],
            )
            .names(format!("certificate {p} {names}")),
        );
    }
    // Serials: negative, empty, longer than RFC 5280's 20 octets, a length that
    // runs past the end.
    for (file, names) in [
        (
            "serial-negative.der",
            "has a negative or empty serial number",
        ),
        ("serial-empty.der", "serial"),
        (
            "serial-21-octets.der",
            "has a 21-octet serial number; RFC 5280 allows at most 20",
        ),
        ("serial-40-octets.der", "has a 40-octet serial number"),
        ("serial-1000-octets.der", "has a 1000-octet serial number"),
        ("serial-long-length.der", "does not parse"),
    ] {
        let p = fx.path(file);
        cases.push(
            case(
                format!("{file} with read-certificate-data"),
                &["read-certificate-data", "--certificate", &p],
            )
            .names(p.clone())
            .names(names),
        );
    }
    for file in ["serial-negative.der", "serial-40-octets.der"] {
        let p = fx.path(file);
        cases.push(
            case(
                format!("{file} with credential-process"),
                &cp(&[
                    "--certificate",
                    &p,
                    "--private-key",
                    &t("ec-p256/key.pkcs8.pem"),
                ]),
            )
            .names(p),
        );
    }
    cases
}

#[test]
fn malformed_or_unsupported_contents_are_one_clear_line() {
    check_all("contents", content_cases());
}

// ---------------------------------------------------------------------------------
// Flags: durations and numbers out of range, odd ARNs, non-UTF-8 arguments

fn flag_cases() -> Vec<Case> {
    let combined = t("rsa2048/combined.pem");
    let mut cases = Vec::new();
    let with = |extra: &[&str]| {
        let mut v = cp(&["--certificate", &combined]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // Durations and numbers (errors.rs pins --session-duration 100, 43201, -5, abc).
    for (flag, value) in [
        ("--session-duration", "899"),
        ("--session-duration", "0"),
        ("--session-duration", "99999999999999999999"),
        ("--session-duration", "1e3"),
        ("--session-duration", ""),
        ("--refresh-before", "8d"),
        ("--refresh-before", "169h"),
        ("--refresh-before", "604801"),
        ("--refresh-before", "5 m"),
        ("--refresh-before", "99999999999999999999h"),
        ("--connect-timeout", "abc"),
        ("--timeout", "-1"),
        ("--max-attempts", "4294967296"),
        ("--max-attempts", "-1"),
    ] {
        let arg = format!("{flag}={value}");
        cases.push(
            case(format!("{flag} {value:?}"), &with(&[&arg]))
                .names(flag)
                .names(value),
        );
    }
    let serve = |extra: &[&str]| {
        let mut v = vec!["serve".to_string()];
        v.extend(arns());
        v.extend(["--certificate".into(), combined.clone()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for (flag, value) in [
        ("--port", "65536"),
        ("--port", "-1"),
        ("--hop-limit", "0"),
        ("--hop-limit", "256"),
        ("--bind", "localhost"),
        ("--bind", "10.0.0.1"),
        ("--bind", "0.0.0.0:99"),
    ] {
        let arg = format!("{flag}={value}");
        cases.push(case(format!("serve {flag} {value:?}"), &serve(&[&arg])).names(flag));
    }
    cases.push(
        case(
            "serve --hop-limit 2 on a non-loopback address",
            &serve(&[
                "--bind",
                "0.0.0.0",
                "--allow-non-loopback-bind",
                "--hop-limit",
                "2",
            ]),
        )
        .names("--hop-limit 2"),
    );
    let update = |extra: &[&str]| {
        let mut v = vec!["update".to_string(), "--once".into()];
        v.extend(arns());
        v.extend(["--certificate".into(), combined.clone()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for profile in [
        "",
        "[x]",
        " leading",
        "trailing ",
        "#comment",
        ";comment",
        "a\nb",
        "tab\there",
    ] {
        let arg = format!("--profile={profile}");
        cases.push(
            case(format!("update --profile {profile:?}"), &update(&[&arg])).names("--profile"),
        );
    }
    for (flag, value) in [
        ("--region", ""),
        ("--region", "us-east-1/../x"),
        ("--role-session-name", &"a".repeat(65)),
        ("--role-session-name", "naïve"),
        ("--endpoint", "ftp://127.0.0.1/"),
        ("--endpoint", "not a url"),
        ("--endpoint", "https://127.0.0.1:1/?q=1"),
        ("--endpoint", "https:///nohost"),
        ("--log-level", "[[["),
        ("--log-format", "xml"),
    ] {
        let arg = format!("{flag}={value}");
        cases.push(case(format!("{flag} {value:?}"), &with(&[&arg])).names(flag));
    }
    cases.push(
        case(
            "--endpoint with a password",
            &with(&["--endpoint=https://user:hunter2-secret@127.0.0.1:1/"]),
        )
        .names("--endpoint")
        .secret("hunter2-secret"),
    );
    cases.push(
        case(
            "sign-string --digest MD5",
            &["sign-string", "--certificate", &combined, "--digest", "MD5"],
        )
        .names("--digest"),
    );
    // ARNs with odd characters (errors.rs pins empty, a 5-digit account, a space,
    // user/bob, mismatched regions, a profile ARN as the trust anchor).
    let long_role = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(3000));
    let role_cases: Vec<(&str, String)> = vec![
        ("newline", "arn:aws:iam::123456789012:role/a\nb".into()),
        (
            "escape sequence",
            "arn:aws:iam::123456789012:role/\x1b[31mred".into(),
        ),
        ("non-ASCII", "arn:aws:iam::123456789012:role/ünïcode".into()),
        ("3000 characters", long_role),
        ("empty role name", "arn:aws:iam::123456789012:role/".into()),
        ("semicolon", "arn:aws:iam::123456789012:role/a;b".into()),
        (
            "percent escape",
            "arn:aws:iam::123456789012:role/a%2Fb".into(),
        ),
        (
            "a region",
            "arn:aws:iam:us-east-1:123456789012:role/x".into(),
        ),
        (
            "letters in the account",
            "arn:aws:iam::12345678901a:role/x".into(),
        ),
        (
            "NUL escape text",
            "arn:aws:iam::123456789012:role/\\0".into(),
        ),
        ("tab", "arn:aws:iam::123456789012:role/a\tb".into()),
    ];
    for (what, arn) in role_cases {
        let arg = format!("--role-arn={arn}");
        cases.push(case(format!("--role-arn with {what}"), &with(&[&arg])).names("--role-arn"));
    }
    let ta = |id: &str| format!("arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/{id}");
    for (what, arn) in [
        ("a path", ta("../../x")),
        ("a query", ta("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0?x=1")),
        ("a fragment", ta("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0#x")),
        ("a short id", ta("0f1e2d3c")),
        ("an extra field", ta("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0:extra")),
        ("an upper-case region", "arn:aws:rolesanywhere:US-EAST-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0".into()),
        ("no region", "arn:aws:rolesanywhere::123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0".into()),
        ("an unknown partition", "arn:foo:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0".into()),
        ("another service", "arn:aws:s3:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0".into()),
        ("upper-case ARN", "ARN:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0".into()),
        ("a leading space", format!(" {}", ta("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"))),
    ] {
        let mut args = vec!["credential-process".to_string(), "--certificate".into(), combined.clone()];
        args.extend(["--trust-anchor-arn".into(), arn, "--profile-arn".into(), PROFILE_ARN.into(), "--role-arn".into(), ROLE_ARN.into()]);
        cases.push(case(format!("--trust-anchor-arn with {what}"), &args).names("--trust-anchor-arn"));
    }
    // Invalid UTF-8 in other arguments (errors.rs pins --role-arn).
    let bytes = |b: &[u8]| OsStr::from_bytes(b).to_os_string();
    let mut raw = |what: &str, args: Vec<OsString>, names: &str| {
        cases.push(case(what, &args).names(names));
    };
    // The ARNs and endpoint, but for the flag under test.
    let plus = |extra: Vec<OsString>| {
        let mut v: Vec<OsString> = vec!["credential-process".into()];
        let given = arns();
        for pair in given.chunks(2) {
            if !extra.iter().any(|e| *e == *pair[0]) {
                v.extend(pair.iter().map(OsString::from));
            }
        }
        v.extend(extra);
        v
    };
    raw(
        "non-UTF-8 --certificate path",
        plus(vec![
            "--certificate".into(),
            bytes(b"/nonexistent/\xff.pem"),
        ]),
        "cannot read certificate file /nonexistent/",
    );
    for flag in [
        "--region",
        "--endpoint",
        "--profile-arn",
        "--role-session-name",
    ] {
        raw(
            &format!("non-UTF-8 {flag}"),
            plus(vec![
                "--certificate".into(),
                combined.clone().into(),
                flag.into(),
                bytes(b"x\xffy"),
            ]),
            "invalid UTF-8",
        );
    }
    raw(
        "non-UTF-8 --profile for update",
        {
            let mut v: Vec<OsString> = update(&[]).into_iter().map(OsString::from).collect();
            v.extend(["--profile".into(), bytes(b"p\xc3")]);
            v
        },
        "invalid UTF-8",
    );
    raw(
        "non-UTF-8 --bind for serve",
        {
            let mut v: Vec<OsString> = serve(&[]).into_iter().map(OsString::from).collect();
            v.extend(["--bind".into(), bytes(b"127.0.0.\xff")]);
            v
        },
        "invalid UTF-8",
    );
    raw(
        "non-UTF-8 subcommand",
        vec![bytes(b"cr\xffdential-process")],
        "iamra: error:",
    );
    cases
}

#[test]
fn bad_flag_values_and_odd_arns_are_one_clear_line() {
    check_all("flags", flag_cases());
}

// ---------------------------------------------------------------------------------
// Environment variables

fn env_cases() -> Vec<Case> {
    let combined = t("rsa2048/combined.pem");
    let base = cp(&["--certificate", &combined]);
    // No --endpoint flag, so that IAMRA_ENDPOINT counts.
    let no_endpoint: Vec<String> = base
        .iter()
        .filter(|a| !a.contains("127.0.0.1:1") && *a != "--endpoint")
        .cloned()
        .collect();
    let mut cases = Vec::new();
    for (var, value, names) in [
        ("IAMRA_DEBUG", "maybe", "--debug"),
        ("IAMRA_LOG_LEVEL", "[[[", "--log-level"),
        ("IAMRA_LOG_FORMAT", "xml", "--log-format"),
        ("IAMRA_MAX_ATTEMPTS", "-1", "--max-attempts"),
        ("IAMRA_MAX_ATTEMPTS", "many", "--max-attempts"),
        ("IAMRA_TIMEOUT", "abc", "--timeout"),
        ("IAMRA_CONNECT_TIMEOUT", "-5", "--connect-timeout"),
        ("IAMRA_REFRESH_BEFORE", "forever", "--refresh-before"),
        ("IAMRA_REGION", "us east", "--region"),
        ("IAMRA_NO_VERIFY_SSL", "perhaps", "--no-verify-ssl"),
        ("IAMRA_NO_CACHE", "2", "--no-cache"),
        ("IAMRA_ROLE_SESSION_NAME", "a b", "--role-session-name"),
        (
            "IAMRA_INTERMEDIATES",
            "/nonexistent/chain.pem",
            "/nonexistent/chain.pem",
        ),
        (
            "IAMRA_CA_BUNDLE",
            "certs-testdata/bad/garbage.pem",
            "CA bundle certs-testdata/bad/garbage.pem",
        ),
        (
            "AWS_CA_BUNDLE",
            "certs-testdata/bad/empty.pem",
            "CA bundle certs-testdata/bad/empty.pem",
        ),
    ] {
        cases.push(
            case(format!("{var}={value:?}"), &base)
                .env(var, value)
                .names(names),
        );
    }
    cases.push(
        case("IAMRA_ENDPOINT=\"ftp://127.0.0.1/\"", &no_endpoint)
            .env("IAMRA_ENDPOINT", "ftp://127.0.0.1/")
            .names("--endpoint"),
    );
    cases.push(
        case(
            "IAMRA_PKCS8_PASSWORD_FILE naming a directory",
            &cp(&[
                "--certificate",
                &t("rsa2048/cert.pem"),
                "--private-key",
                &t("rsa2048/key.enc-pbkdf2-sha256-aes256.pem"),
            ]),
        )
        .env("IAMRA_PKCS8_PASSWORD_FILE", "certs-testdata")
        .names("password file certs-testdata is not a regular file"),
    );
    let no_role: Vec<String> = {
        let mut v = vec![
            "credential-process".to_string(),
            "--certificate".into(),
            combined.clone(),
        ];
        v.extend([
            "--trust-anchor-arn".into(),
            TRUST_ANCHOR_ARN.into(),
            "--profile-arn".into(),
            PROFILE_ARN.into(),
        ]);
        v
    };
    cases.push(
        case("IAMRA_ROLE_ARN=nope", &no_role)
            .env("IAMRA_ROLE_ARN", "nope")
            .names("--role-arn \"nope\""),
    );
    cases.push(
        case("IAMRA_ROLE_ARN with invalid UTF-8", &no_role)
            .env(
                "IAMRA_ROLE_ARN",
                OsStr::from_bytes(b"arn:aws:iam::123456789012:role/\xff"),
            )
            .names("invalid UTF-8"),
    );
    cases.push(
        case("IAMRA_ROLE_ARN with a newline", &no_role)
            .env("IAMRA_ROLE_ARN", "arn:aws:iam::123456789012:role/a\nb")
            .names("--role-arn"),
    );
    cases.push(
        case("IAMRA_CERTIFICATE naming a directory", &cp(&[]))
            .env("IAMRA_CERTIFICATE", "certs-testdata")
            .names("certificate file certs-testdata is not a regular file"),
    );
    cases.push(
        case(
            "IAMRA_PRIVATE_KEY naming a certificate",
            &cp(&["--certificate", &t("rsa2048/cert.pem")]),
        )
        .env("IAMRA_PRIVATE_KEY", t("rsa2048/cert.pem"))
        .names("holds no private key"),
    );
    cases.push(
        case("IAMRA_ENDPOINT with a password", &no_endpoint)
            .env("IAMRA_ENDPOINT", "https://admin:env-hunter2@127.0.0.1:1/")
            .names("--endpoint")
            .secret("env-hunter2"),
    );
    let update: Vec<String> = {
        let mut v = vec!["update".to_string(), "--once".into()];
        v.extend(arns());
        v.extend(["--certificate".into(), combined.clone()]);
        v
    };
    cases.push(
        case(
            "update without HOME or AWS_SHARED_CREDENTIALS_FILE",
            &update,
        )
        .unset("HOME")
        .names("no credentials file"),
    );
    cases.push(
        case("AWS_SHARED_CREDENTIALS_FILE naming a directory", &update)
            .env("AWS_SHARED_CREDENTIALS_FILE", "certs-testdata")
            .names("credentials file certs-testdata is not a regular file"),
    );
    cases.push(
        case("AWS_SHARED_CREDENTIALS_FILE naming a FIFO", &update)
            .env("AWS_SHARED_CREDENTIALS_FILE", Fixtures::get().path("fifo"))
            .names(Fixtures::get().path("fifo")),
    );
    cases
}

#[test]
fn bad_environment_variables_are_one_clear_line() {
    check_all("environment", env_cases());
}

// ---------------------------------------------------------------------------------
// pkcs11: URIs

const PIN_SECRET: &str = "SECRETPIN-93c1";

fn uri_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let pin = PIN_SECRET;
    for (i, (uri, names)) in [
        ("pkcs11:tokn=x".to_string(), "unknown attribute \"tokn\""),
        ("pkcs11:token=a;token=b".into(), "appears twice"),
        ("pkcs11:id=%zz".into(), "malformed percent escape"),
        ("pkcs11:id=%0".into(), "malformed percent escape"),
        ("pkcs11:object=%FF".into(), "not UTF-8"),
        ("pkcs11:type=key".into(), "\"type\" has an invalid value"),
        ("pkcs11:token".into(), "is not of the form attribute=value"),
        (
            "pkcs11:slot-id=-1".into(),
            "\"slot-id\" has an invalid value",
        ),
        (
            "pkcs11:slot-id=0x".into(),
            "\"slot-id\" has an invalid value",
        ),
        (
            "pkcs11:slot-id=99999999999999999999999".into(),
            "\"slot-id\" has an invalid value",
        ),
        (
            "pkcs11:library-version=1.256".into(),
            "\"library-version\" has an invalid value",
        ),
        (
            "pkcs11:library-version=a.b".into(),
            "\"library-version\" has an invalid value",
        ),
        (
            format!("pkcs11:token=t?pin-value={pin}&pin=1"),
            "unknown attribute \"pin\"",
        ),
        (
            format!("pkcs11:token=t?pin-value=%GG{pin}"),
            "\"pin-value\" has a malformed percent escape",
        ),
        (
            format!("pkcs11:token=t?pin-value={pin}&pin-value={pin}"),
            "\"pin-value\" appears twice",
        ),
        (
            format!("pkcs11:token=t;object=%FF?pin-value={pin}"),
            "not UTF-8",
        ),
        (
            "pkcs11:?module-name=a/b".into(),
            "\"module-name\" has an invalid value",
        ),
        (
            "pkcs11:?module-path=".into(),
            "\"module-path\" has an invalid value",
        ),
        ("pkcs11:token=x;;;=;".into(), "iamra: error:"),
        ("pkcs11:%74oken=x".into(), "unknown attribute"),
    ]
    .into_iter()
    .enumerate()
    {
        let args = cp(&["--certificate", &uri]);
        cases.push(
            case(format!("--certificate {uri:?}"), &args)
                .names("--certificate is not a valid PKCS#11 URI")
                .names(names)
                .secret(pin),
        );
        if i % 4 == 0 {
            // The same parser behind --private-key.
            let args = cp(&[
                "--certificate",
                &t("rsa2048/cert.pem"),
                "--private-key",
                &uri,
            ]);
            cases.push(
                case(format!("--private-key {uri:?}"), &args)
                    .names("--private-key is not a valid PKCS#11 URI")
                    .secret(pin),
            );
        }
    }
    cases.push(
        case(
            "read-certificate-data with a bad URI",
            &["read-certificate-data", "--certificate", "pkcs11:tokn=x"],
        )
        .names("--certificate is not a valid PKCS#11 URI"),
    );
    cases.push(
        case(
            "sign-string with a bad URI",
            &["sign-string", "--certificate", "pkcs11:type=secret"],
        )
        .names("--certificate is not a valid PKCS#11 URI"),
    );
    // Well-formed URIs whose module cannot be loaded.
    for (what, extra) in [
        (
            "a missing module",
            vec!["--pkcs11-lib", "/nonexistent/libpkcs11.so"],
        ),
        (
            "a certificate as the module",
            vec!["--pkcs11-lib", "certs-testdata/rsa2048/cert.pem"],
        ),
        (
            "a directory as the module",
            vec!["--pkcs11-lib", "certs-testdata"],
        ),
    ] {
        let mut args = cp(&["--certificate", "pkcs11:token=x;object=y"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        cases.push(
            case(format!("--pkcs11-lib {what}"), &args).names("cannot load a PKCS#11 module"),
        );
    }
    cases.push(
        case(
            "module-path naming a missing file",
            &cp(&[
                "--certificate",
                &format!("pkcs11:token=x?module-path=/nonexistent/p11.so&pin-value={pin}"),
            ]),
        )
        .names("cannot load a PKCS#11 module")
        .secret(pin),
    );
    cases
}

#[test]
fn bad_pkcs11_uris_are_one_clear_line_without_the_pin() {
    check_all("pkcs11 URIs", uri_cases());
}

// ---------------------------------------------------------------------------------
// CreateSession answers (faults.rs covers credential-process; these reach update and
// serve, and the faults faults.rs does not give credential-process)

#[test]
fn broken_service_answers_fail_every_command_cleanly() {
    let faults: &[(&str, &[&str])] = &[
        ("malformed", &[]),
        ("missing-field", &[]),
        ("empty-set", &[]),
        ("wrong-type", &[]),
        ("huge", &[]),
        ("truncated", &["--max-attempts", "1"]),
        ("drop", &["--max-attempts", "1"]),
        ("500", &["--max-attempts", "1"]),
        ("503", &["--max-attempts", "1"]),
        ("429", &["--max-attempts", "1"]),
        ("access-denied", &[]),
        ("delay:3000", &["--max-attempts", "1", "--timeout", "1"]),
        // Expirations past year 9999 in UTC (an abort before) or in the past.
        ("far-future", &[]),
        ("expired", &[]),
        // Stalled answers end at the overall deadline.
        ("stall", &["--total-timeout", "2"]),
        ("hang", &["--total-timeout", "2"]),
    ];
    let mut found = Vec::new();
    let mut total = 0;
    for (fault, extra) in faults {
        let ep = Endpoint::start_with(&["--fault", &format!("always:{fault}")]);
        let mut flags = vec![
            "--certificate".to_string(),
            td("rsa2048/combined.pem").display().to_string(),
            "--intermediates".into(),
            td("chain.pem").display().to_string(),
        ];
        flags.extend(ep.flags());
        flags.extend(extra.iter().map(|s| s.to_string()));
        let credentials = tempfile::tempdir().unwrap();
        let file = credentials.path().join("credentials");
        std::fs::write(&file, "[default]\nregion = eu-west-1\n").unwrap();
        let mut commands: Vec<(&str, Vec<String>)> = vec![
            (
                "update --once",
                [vec!["update".into(), "--once".into()], flags.clone()].concat(),
            ),
            (
                "serve",
                [
                    vec!["serve".into(), "--port".into(), "0".into()],
                    flags.clone(),
                ]
                .concat(),
            ),
        ];
        if ![
            "malformed",
            "missing-field",
            "empty-set",
            "wrong-type",
            "huge",
        ]
        .contains(fault)
        {
            commands.push((
                "credential-process",
                [vec!["credential-process".into()], flags.clone()].concat(),
            ));
        }
        for (command, args) in commands {
            total += 1;
            let c = case(format!("fault {fault} for {command}"), &args)
                .env("AWS_SHARED_CREDENTIALS_FILE", &file)
                .names("CreateSession")
                .names("/sessions");
            let ran = run(&c);
            let mut p = problems(&c, &ran);
            if std::fs::read_to_string(&file).unwrap() != "[default]\nregion = eu-west-1\n" {
                p.push("the credentials file changed".into());
            }
            if !p.is_empty() {
                found.push(format!(
                    "{}: {}\n    stderr: {:?}",
                    c.what,
                    p.join("; "),
                    ran.stderr
                ));
            }
        }
    }
    assert!(total >= 40);
    assert!(
        found.is_empty(),
        "{} bad case(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// Long values, locked hardware keys

/// Longest stderr line a bad value may produce: the value is quoted to 100
/// characters, then `…` and its length (the SDKs paste our stderr into theirs).
const MAX_LINE: usize = 400;

fn long_value_cases() -> Vec<Case> {
    let ten_kb_arn = format!(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/{}",
        "a".repeat(10 * 1024)
    );
    let kb = "x".repeat(1024);
    let mut cases = vec![
        case("10 KB --trust-anchor-arn", &{
            let mut a = cp(&[]);
            let i = a.iter().position(|x| x == "--trust-anchor-arn").unwrap();
            a[i + 1] = ten_kb_arn.clone();
            a
        })
        .names("--trust-anchor-arn"),
        case("1 KB --region", &cp(&["--region", &kb])).names("--region"),
        case(
            "1 KB --role-session-name",
            &cp(&["--role-session-name", &kb]),
        )
        .names("--role-session-name"),
        case("1 KB --endpoint", &{
            let mut a = cp(&[]);
            let i = a.iter().position(|x| x == "--endpoint").unwrap();
            a[i + 1] = format!("{kb}://gw.example");
            a
        })
        .names("--endpoint"),
        case("a plain http:// endpoint on another host", &{
            let mut a = cp(&[]);
            let i = a.iter().position(|x| x == "--endpoint").unwrap();
            a[i + 1] = "http://192.0.2.1:8080".into();
            a
        })
        .names("--endpoint uses plain http:// to \"192.0.2.1\""),
        case("1 KB --session-duration", &cp(&["--session-duration", &kb]))
            .names("--session-duration"),
        case("1 KB --once value", &{
            let mut a = vec!["update".to_string(), format!("--once={kb}")];
            a.extend(cp(&[]).into_iter().skip(1));
            a
        })
        .names("--once"),
        case("1 KB --profile", &{
            let mut a = vec![
                "update".to_string(),
                "--once".into(),
                "--profile".into(),
                format!("{kb}]"),
            ];
            a.extend(cp(&[]).into_iter().skip(1));
            a
        })
        .names("--profile"),
        case("1 KB --log-level", &{
            let mut a = vec!["--log-level".to_string(), format!("{kb}=notalevel")];
            a.extend(cp(&[]));
            a
        })
        .names("--log-level"),
        case(
            "a 1 KB certificate path",
            &cp(&["--certificate", &format!("/nonexistent/{kb}")]),
        )
        .names("certificate"),
        case(
            "1 KB pkcs11 attribute",
            &cp(&["--certificate", &format!("pkcs11:{kb}=1")]),
        )
        .names("--certificate"),
        case(
            "1 KB TPM2TOOLS_TCTI",
            &cp(&[
                "--certificate",
                &t("rsa2048/cert.pem"),
                "--private-key",
                "handle:0x81000001",
            ]),
        )
        .env("TPM2TOOLS_TCTI", format!("swtpm:host={kb}"))
        .names("TPM2TOOLS_TCTI")
        .names("handle:0x81000001"),
    ];
    for c in &mut cases {
        c.what = format!(
            "{} ({} bytes of arguments)",
            c.what,
            c.args.iter().map(|a| a.len()).sum::<usize>()
        );
    }
    cases
}

#[test]
fn long_values_are_quoted_to_100_characters_with_their_length() {
    let cases = long_value_cases();
    let mut found = Vec::new();
    for c in &cases {
        let ran = run(c);
        let mut p = problems(c, &ran);
        if let Some(line) = ran.stderr.lines().find(|l| l.len() > MAX_LINE) {
            p.push(format!("a {}-byte stderr line", line.len()));
        }
        if !p.is_empty() {
            found.push(format!(
                "{}: {}\n    stderr: {:.600?}",
                c.what,
                p.join("; "),
                ran.stderr
            ));
        }
    }
    assert!(
        found.is_empty(),
        "{} bad case(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// A case of a refused PIN or password: no problem found, exit status 77.
#[track_caller]
fn assert_refused_case(c: &Case, ran: &Ran, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{}: {problems:?}\n    stderr: {:?}",
        c.what,
        ran.stderr
    );
    assert_eq!(
        ran.code,
        Some(EXIT_AUTHENTICATION),
        "{}: {:?}",
        c.what,
        ran.stderr
    );
}

/// A PIN the token would lock on: refused before C_Login, exit status 77, one line
/// naming the token and the flag.
#[test]
fn locked_or_final_try_pins_are_one_clear_line_and_exit_77() {
    use crate::common::softhsm::{MODULE, PIN, SoftHsm};
    for (flag, value) in [
        ("CKF_USER_PIN_FINAL_TRY", 0x2_0000),
        ("CKF_USER_PIN_LOCKED", 0x4_0000),
    ] {
        let Some(hsm) = SoftHsm::new() else { return };
        hsm.add_token_flags("ra-test", value);
        let c = case(
            format!("token reporting {flag}"),
            &cp(&[
                "--certificate",
                "pkcs11:token=ra-test;id=%02",
                "--pkcs11-lib",
                MODULE,
            ]),
        )
        .env("SOFTHSM2_CONF", hsm.conf())
        .env("IAMRA_PKCS11_PIN", PIN)
        .names(flag)
        .secret(PIN);
        let ran = run(&c);
        let p = problems(&c, &ran);
        assert_refused_case(&c, &ran, &p);
    }
}

/// A wrong TPM key password, then the lockout it leads to: one line each, exit
/// status 77, the recovery named.
#[cfg(feature = "tpm")]
#[test]
fn tpm_wrong_password_and_lockout_are_one_clear_line_and_exit_77() {
    use crate::common::swtpm::Swtpm;
    let Some(tpm) = Swtpm::start() else { return };
    let key = tpm.file("tools-ec-pw.tss2.pem");
    let args = cp(&[
        "--certificate",
        &tpm.file("tools-ec-pw.crt"),
        "--private-key",
        &key,
    ]);
    for (n, name) in [
        (1, "wrong password for TPM key"),
        (2, "wrong password for TPM key"),
        (3, "wrong password for TPM key"),
        (4, "tpm2_dictionarylockout --clear-lockout"),
    ] {
        let c = case(format!("TPM wrong password, try {n}"), &args)
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .env("IAMRA_TPM_KEY_PASSWORD", "not-the-password-31")
            .names(name)
            .secret("not-the-password-31");
        let ran = run(&c);
        // The warning before the try that locks the TPM is allowed as a third line.
        let stderr: String = ran
            .stderr
            .lines()
            .filter(|l| !l.starts_with("iamra: warning: the TPM has counted"))
            .map(|l| format!("{l}\n"))
            .collect();
        let filtered = Ran {
            code: ran.code,
            stdout: ran.stdout.clone(),
            stderr,
        };
        let p = problems(&c, &filtered);
        assert_refused_case(&c, &ran, &p);
    }
}

/// `update` into a pre-existing credentials file readable by others: the file
/// ends up 0600, and stderr says so in one warning.
#[test]
fn a_world_readable_credentials_file_is_tightened_to_0600_with_one_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let ep = Endpoint::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(&file, "[other]\nregion = eu-west-1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = vec![
        "update".to_string(),
        "--once".into(),
        "--certificate".into(),
    ];
    args.push(td("rsa2048/combined.pem").display().to_string());
    args.push("--intermediates".into());
    args.push(td("chain.pem").display().to_string());
    args.extend(ep.flags());
    let out = iamra(
        &args,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "iamra: warning: credentials file {} was mode 0644, readable by other users; it is now 0600\n",
            file.display()
        )
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Written again: already 0600, nothing to say.
    let out = iamra(
        &args,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

// ---------------------------------------------------------------------------------
// Raw HTTP requests to serve

/// Sends `raw` on a new connection; returns the status of the first answer (after
/// reading its head and `Content-Length` body), or `None` when the connection
/// closed without one.
fn exchange(addr: &str, raw: &[u8]) -> (Option<u16>, String) {
    let mut s = connect(addr);
    let _ = s.write_all(raw);
    let text = read_answer(&mut std::io::BufReader::new(s));
    let status = Reply::parse(&text).status;
    ((status != 0).then_some(status), text)
}

#[test]
fn serve_answers_malformed_requests_with_4xx_and_keeps_serving() {
    let ep = Endpoint::start();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("ecs-token").display().to_string();
    let served = serve(&ep, &["--ecs-token-file", &token_file, "--imds"], &[], 3);
    let a = served.addr.as_str();
    let creds = "/latest/meta-data/iam/security-credentials/iamra-test-role";
    let h = "Host: 127.0.0.1\r\n";
    let token_put = format!("PUT /latest/api/token HTTP/1.1\r\n{h}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown method", format!("FOO /latest/api/token HTTP/1.1\r\n{h}\r\n").into()),
        ("lower-case method", format!("get {creds} HTTP/1.1\r\n{h}\r\n").into()),
        ("TRACE", format!("TRACE / HTTP/1.1\r\n{h}\r\n").into()),
        ("CONNECT", format!("CONNECT 127.0.0.1:1 HTTP/1.1\r\n{h}\r\n").into()),
        ("OPTIONS *", format!("OPTIONS * HTTP/1.1\r\n{h}\r\n").into()),
        ("DELETE the token route", format!("DELETE /latest/api/token HTTP/1.1\r\n{h}\r\n").into()),
        ("HEAD of the credentials", format!("HEAD {creds} HTTP/1.1\r\n{h}\r\n").into()),
        ("POST to ECS", format!("POST /v1/credentials HTTP/1.1\r\n{h}Authorization: x\r\nContent-Length: 0\r\n\r\n").into()),
        ("binary request line", b"\x00\x01\x02garbage\r\n\r\n".to_vec()),
        ("no HTTP version", b"GET /\r\n\r\n".to_vec()),
        ("HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n".to_vec()),
        ("HTTP/2.0 as text", format!("GET / HTTP/2.0\r\n{h}\r\n").into()),
        ("HTTP/1.0 without Host", format!("GET {creds} HTTP/1.0\r\n\r\n").into()),
        ("absolute-form URI", format!("GET http://evil.example{creds} HTTP/1.1\r\n{h}\r\n").into()),
        ("space in the path", format!("GET /a b HTTP/1.1\r\n{h}\r\n").into()),
        ("20 KiB path", format!("GET /{} HTTP/1.1\r\n{h}\r\n", "a".repeat(20_000)).into()),
        ("500 headers", format!("GET / HTTP/1.1\r\n{h}{}\r\n", (0..500).map(|i| format!("X-{i}: y\r\n")).collect::<String>()).into()),
        ("20 KiB token header", format!("GET {creds} HTTP/1.1\r\n{h}X-aws-ec2-metadata-token: {}\r\n\r\n", "t".repeat(20_000)).into()),
        ("header without a colon", format!("GET / HTTP/1.1\r\n{h}Broken header\r\n\r\n").into()),
        ("space in a header name", format!("GET / HTTP/1.1\r\n{h}X Y: z\r\n\r\n").into()),
        ("NUL in a header value", format!("GET / HTTP/1.1\r\n{h}X: a\0b\r\n\r\n").into()),
        ("obsolete line folding", format!("GET / HTTP/1.1\r\n{h}X: a\r\n b\r\n\r\n").into()),
        ("two Host headers", format!("GET {creds} HTTP/1.1\r\n{h}Host: evil.example\r\n\r\n").into()),
        ("Host with user info", format!("GET {creds} HTTP/1.1\r\nHost: user@127.0.0.1\r\n\r\n").into()),
        ("non-UTF-8 Host", [format!("GET {creds} HTTP/1.1\r\nHost: ").as_bytes(), b"\xff\xfe\r\n\r\n"].concat()),
        ("empty Host", format!("GET {creds} HTTP/1.1\r\nHost: \r\n\r\n").into()),
        ("unclosed IPv6 Host", format!("GET {creds} HTTP/1.1\r\nHost: [::1\r\n\r\n").into()),
        ("rebinding Host on the token route", b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254.nip.io\r\n\r\n".to_vec()),
        ("Origin: null", format!("{token_put}Origin: null\r\n\r\n").into()),
        ("negative Content-Length", format!("{token_put}Content-Length: -1\r\n\r\n").into()),
        ("two Content-Lengths", format!("{token_put}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab").into()),
        ("huge Content-Length", format!("{token_put}Content-Length: 99999999999999999999999\r\n\r\n").into()),
        ("Content-Length over the limit", format!("{token_put}Content-Length: 4097\r\n\r\n{}", "x".repeat(4097)).into()),
        ("bad chunk size", format!("{token_put}Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n").into()),
        ("gzip transfer coding", format!("{token_put}Transfer-Encoding: gzip\r\n\r\n").into()),
        ("Expect: 100-continue over the limit", format!("{token_put}Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n").into()),
        ("negative token TTL", format!("{token_put}X-aws-ec2-metadata-token-ttl-seconds: -60\r\n\r\n").into()),
        ("huge token TTL", format!("{token_put}X-aws-ec2-metadata-token-ttl-seconds: 99999999999999999999999\r\n\r\n").into()),
        ("token TTL with a fraction", format!("{token_put}X-aws-ec2-metadata-token-ttl-seconds: 1.5\r\n\r\n").into()),
        ("X-Forwarded-For on the credentials", format!("GET {creds} HTTP/1.1\r\n{h}X-Forwarded-For: 203.0.113.1\r\n\r\n").into()),
        ("non-ASCII token", format!("GET {creds} HTTP/1.1\r\n{h}X-aws-ec2-metadata-token: ü\r\n\r\n").into()),
        // Found by the `serve` fuzz target: this killed serve (a slice inside 'љ').
        ("UTF-8 right after the credentials path", [b"GET /latest/meta-data/iam/security-credentials\xd1\x99uzz HTTP/1.1\r\n".as_slice(), h.as_bytes(), b"X-aws-ec2-metadata-token: abc\r\n\r\n"].concat()),
        ("UTF-8 right after the credentials path, no token", [b"GET /latest/meta-data/iam/security-credentials\xd1\x99 HTTP/1.1\r\n".as_slice(), h.as_bytes(), b"\r\n"].concat()),
        ("path traversal", format!("GET {creds}/../../api/token HTTP/1.1\r\n{h}\r\n").into()),
        ("percent-encoded traversal", format!("GET /latest/meta-data/iam/security-credentials/%2e%2e%2fx HTTP/1.1\r\n{h}\r\n").into()),
        ("double slash", format!("GET //latest/api/token HTTP/1.1\r\n{h}\r\n").into()),
        ("ECS without Authorization", format!("GET /v1/credentials HTTP/1.1\r\n{h}\r\n").into()),
        ("ECS with a wrong token", format!("GET /v1/credentials HTTP/1.1\r\n{h}Authorization: wrong-token-0123456789abcdef\r\n\r\n").into()),
        ("ECS with the token twice", format!("GET /v1/credentials HTTP/1.1\r\n{h}Authorization: a\r\nAuthorization: b\r\n\r\n").into()),
        ("WebSocket upgrade", format!("GET / HTTP/1.1\r\n{h}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n").into()),
    ];
    // Streams that are not HTTP/1 at all: the connection is closed (or 4xx).
    let not_http: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "TLS ClientHello",
            vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
        ),
        ("only CRLFs", b"\r\n\r\n\r\n\r\n".to_vec()),
    ];
    let mut found = Vec::new();
    for (i, (what, raw)) in cases.iter().enumerate() {
        let (status, text) = exchange(a, raw);
        if !status.is_some_and(|s| (400..500).contains(&s)) {
            found.push(format!("#{i} {what}: {status:?}: {text:?}"));
        }
        if text.contains("SecretAccessKey") || text.contains("ASIA") {
            found.push(format!("#{i} {what}: credentials in the answer"));
        }
    }
    for (what, raw) in &not_http {
        let (status, text) = exchange(a, raw);
        if status.is_some_and(|s| !(400..500).contains(&s)) {
            found.push(format!("{what}: {status:?}: {text:?}"));
        }
    }
    // Slow clients: headers that never finish, a body that never arrives, a
    // connection that sends nothing. Each is cut off after the 5 s limits.
    let slow: Vec<std::thread::JoinHandle<Option<String>>> = [
        (
            "trickled headers",
            format!("PUT /latest/api/token HTTP/1.1\r\n{h}").into_bytes(),
            true,
        ),
        (
            "stalled body",
            format!("{token_put}Content-Length: 10\r\n\r\nab").into_bytes(),
            false,
        ),
        ("silent connection", Vec::new(), false),
    ]
    .into_iter()
    .map(|(what, raw, trickle)| {
        let a = a.to_string();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut s = connect(&a);
            s.write_all(&raw).unwrap();
            if trickle {
                // One header byte a second, forever (until the server gives up).
                let mut t = s.try_clone().unwrap();
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        std::thread::sleep(Duration::from_secs(1));
                        if t.write_all(b"X").is_err() {
                            break;
                        }
                    }
                });
            }
            let text = read_all(&mut s);
            let took = start.elapsed();
            let ok = (text.is_empty() || text.starts_with("HTTP/1.1 408"))
                && took >= Duration::from_secs(4)
                && took < Duration::from_secs(20);
            (!ok).then(|| format!("{what}: after {took:?}: {text:?}"))
        })
    })
    .collect();
    found.extend(slow.into_iter().filter_map(|t| t.join().unwrap()));
    // Still serving, and nothing leaked or panicked.
    let token = imds_token(a);
    imds_credentials(a, &token);
    let (status, stderr) = served.daemon.stop();
    assert!(status.success(), "serve exited with {status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if let Some(run) = looks_like_a_credential(&stderr) {
        found.push(format!(
            "serve's stderr holds something credential-like: {run:?}"
        ));
    }
    assert!(cases.len() + not_http.len() + 3 >= 50);
    assert!(
        found.is_empty(),
        "{} bad answer(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// Requests that are ambiguous rather than malformed, which hyper resolves as RFC
/// 9112 allows: pinned so that a change is noticed.
#[test]
fn serve_resolves_ambiguous_requests_as_rfc_9112_allows() {
    let ep = Endpoint::start();
    let served = serve(&ep, &[], &[], 1);
    let a = served.addr.as_str();
    let token_put = "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    // Content-Length with Transfer-Encoding (request smuggling's framing): the
    // transfer coding wins and the connection is closed after the answer (6.1), so
    // a request hidden after the chunked body is never answered.
    let mut s = connect(a);
    s.write_all(
        b"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    // Two TTL headers: the first is used.
    let (status, text) = exchange(
        a,
        format!("{token_put}X-aws-ec2-metadata-token-ttl-seconds: 60\r\nX-aws-ec2-metadata-token-ttl-seconds: 99999\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, Some(200), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-aws-ec2-metadata-token-ttl-seconds: 60"),
        "{text}"
    );
    let (status, _) = served.daemon.stop();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------
// The size of the corpus

#[test]
fn the_corpus_holds_at_least_100_malformed_inputs() {
    let local = file_cases().len()
        + content_cases().len()
        + flag_cases().len()
        + env_cases().len()
        + uri_cases().len();
    // + 28 service answers, + 55 requests to serve (counted in their tests).
    eprintln!("bad-input corpus: {local} CLI cases");
    assert!(local >= 100, "{local}");
}

// ---------------------------------------------------------------------------------
// Debug of a PKCS#11 key (needs a SoftHSM2 token, so it lives here and not beside
// the type: SOFTHSM2_CONF must be set for the process that loads the module, which
// a test can only do for a child process).

#[test]
fn pkcs11_key_debug_is_redacted() {
    let Some(hsm) = crate::common::softhsm::SoftHsm::new() else {
        return;
    };
    run_child_test(
        "bad_inputs::pkcs11_key_debug_child",
        [
            ("SOFTHSM2_CONF", hsm.conf().display().to_string()),
            (
                "IAMRA_TEST_PKCS11_URI",
                format!("{};object=ra-ec;type=private", hsm.token_uri()),
            ),
        ],
    );
}

/// Run by [`pkcs11_key_debug_is_redacted`] with `SOFTHSM2_CONF` set.
#[test]
#[ignore = "run by pkcs11_key_debug_is_redacted in a child process"]
fn pkcs11_key_debug_child() {
    use iamra::key::FixedPassword;
    use iamra::key::pkcs11::{Pkcs11Options, Pkcs11Uri, load_key};
    let Ok(uri) = std::env::var("IAMRA_TEST_PKCS11_URI") else {
        return;
    };
    let pin = crate::common::softhsm::PIN;
    let opts = Pkcs11Options::default().with_module("/usr/lib/softhsm/libsofthsm2.so");
    let key = load_key(
        &Pkcs11Uri::parse(&format!("{uri}?pin-value={pin}")).unwrap(),
        &opts,
        &FixedPassword(pin.into()),
    )
    .unwrap();
    let text = format!("{key:?}");
    assert!(text.starts_with("Pkcs11Key"), "{text}");
    assert!(!text.contains(pin), "{text}");
    assert!(!text.contains("pin-value"), "{text}");
}
