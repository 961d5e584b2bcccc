//! TPM 2.0 benchmark against a throwaway swtpm (`bench/tpm.sh` runs it).
//!
//! - one-shot: open the TPM, re-create the storage primary key, load the key,
//!   sign, flush everything — per signature, as the reference helper does;
//! - long-running: one [`iamra::key::TpmKey`] (connection, primary and key kept),
//!   as `update`/`serve` use it;
//!
//! Both run libtss2 in this process (`TpmBackend::InProcess`), to measure the
//! signing engine; the CLI runs the same code in its helper `iamra-tpm`.
//! - one `credential-process` round trip (release binary against the release
//!   `iamra-test-endpoint`), median of several runs.
//!
//! Keys are made by the tpm2 OpenSSL provider (parent 0x40000001, so every
//! one-shot load re-creates the ECC P-256 storage primary). swtpm runs in TCP mode
//! on loopback. Needs swtpm, tpm2-openssl and openssl.
//!
//! Usage: `cargo run --release --features tpm --example tpm [SECONDS_PER_ROW]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness: a failure aborts the measurement run with its message"
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iamra::key::tpm::{load_key_file_with_tcti, tcti::TctiConfig};
use iamra::key::{Digest, FixedPassword, NoPassword, PasswordSource, SigningKey as _};
use secrecy::SecretString;

const PASSWORD: &str = "bench-tpm-pw";

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// swtpm on two consecutive free loopback ports, killed on drop.
struct Swtpm {
    child: Child,
    port: u16,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_swtpm(dir: &Path) -> Swtpm {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    loop {
        let port = {
            let a = TcpListener::bind("127.0.0.1:0").unwrap();
            let p = a.local_addr().unwrap().port();
            if p == u16::MAX || TcpListener::bind(("127.0.0.1", p + 1)).is_err() {
                continue;
            }
            p
        };
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swtpm (apt-get install swtpm)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port + 1)).is_ok() {
                return Swtpm { child, port };
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            assert!(Instant::now() < deadline, "swtpm did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Makes `NAME.tss2.pem` with the tpm2 provider and a certificate `NAME.crt`.
fn make_key(dir: &Path, tcti: &str, name: &str, alg: &[&str], password: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata/ca");
    let key = dir.join(format!("{name}.tss2.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ossl = || {
        let mut c = Command::new("openssl");
        c.env("TPM2OPENSSL_TCTI", tcti).env("TSS2_LOG", "all+none");
        c
    };
    let auth = format!("user-auth:{PASSWORD}");
    let mut c = ossl();
    c.args(["genpkey", "-provider", "tpm2", "-provider", "default"])
        .args(alg);
    if password {
        c.args(["-pkeyopt", &auth]);
    }
    run(c.arg("-out").arg(&key));
    let mut c = ossl();
    c.args(["pkey", "-provider", "tpm2", "-provider", "default", "-in"])
        .arg(&key)
        .arg("-pubout")
        .arg("-out")
        .arg(&public);
    if password {
        c.args(["-passin", &format!("pass:{PASSWORD}")]);
    }
    run(&mut c);
    run(Command::new("openssl")
        .args([
            "x509",
            "-new",
            "-subj",
            &format!("/CN=bench-{name}"),
            "-force_pubkey",
        ])
        .arg(&public)
        .arg("-CA")
        .arg(root.join("intermediate.pem"))
        .arg("-CAkey")
        .arg(root.join("intermediate.key"))
        .args(["-days", "30", "-extfile"])
        .arg(dir.join("ee.ext"))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt"))));
    key
}

fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        f();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn round_trip(tcti: &str, cert: &Path, key: &Path) -> Option<(f64, f64)> {
    // This example runs from <target>/release/examples/.
    let exe = std::env::current_exe().ok()?;
    let examples = exe.parent()?;
    let bin = examples.parent()?.to_path_buf();
    let (iamra, endpoint) = (bin.join("iamra"), examples.join("iamra-test-endpoint"));
    if !iamra.exists() || !endpoint.exists() {
        eprintln!(
            "release binaries missing (cargo build --release --features tpm --bins --example iamra-test-endpoint): no round trip"
        );
        return None;
    }
    let td = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata");
    let mut ep = Command::new(&endpoint)
        .arg("--trust-anchor")
        .arg(td.join("ca/root.pem"))
        .arg("--tls-cert")
        .arg(td.join("tls/server.pem"))
        .arg("--tls-key")
        .arg(td.join("tls/server.key"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--role-arn",
            "arn:aws:iam::123456789012:role/iamra-test-role",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(ep.stdout.take()?), &mut line).ok()?;
    let port = line.trim().rsplit(':').next()?.to_string();
    let mut times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let out = Command::new(&iamra)
            .arg("credential-process")
            .arg("--certificate")
            .arg(cert)
            .arg("--private-key")
            .arg(key)
            .args([
                "--trust-anchor-arn",
                "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
                "--profile-arn",
                "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
                "--role-arn",
                "arn:aws:iam::123456789012:role/iamra-test-role",
                "--endpoint",
                &format!("https://127.0.0.1:{port}"),
                "--ca-bundle",
            ])
            .arg(td.join("tls/ca.pem"))
            .arg("--intermediates")
            .arg(td.join("chain.pem"))
            .env("TPM2TOOLS_TCTI", tcti)
            .env("IAMRA_NO_CACHE", "true")
            .env_remove("IAMRA_TPM_KEY_PASSWORD")
            .output()
            .ok()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            eprintln!(
                "credential-process failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = ep.kill();
            return None;
        }
    }
    let _ = ep.kill();
    let _ = ep.wait();
    times.sort_by(f64::total_cmp);
    Some((times[times.len() / 2], times[0]))
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // The signing engine itself, without the helper process the CLI runs it in
    // (bench/tokens.py measures the CLI).
    iamra::key::tpm::set_backend(iamra::key::tpm::TpmBackend::InProcess)
        .expect("first choice of backend");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(
        dir.join("ee.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let tpm = start_swtpm(dir);
    let tcti_text = format!("swtpm:host=127.0.0.1,port={}", tpm.port);
    let tcti = TctiConfig::new(&tcti_text).expect("TCTI");
    let keys = [
        (
            "RSA-2048",
            make_key(
                dir,
                &tcti_text,
                "rsa",
                &["-algorithm", "RSA", "-pkeyopt", "bits:2048"],
                false,
            ),
            false,
        ),
        (
            "EC P-256",
            make_key(
                dir,
                &tcti_text,
                "ec",
                &["-algorithm", "EC", "-pkeyopt", "group:P-256"],
                false,
            ),
            false,
        ),
        (
            "EC P-256, password (HMAC session)",
            make_key(
                dir,
                &tcti_text,
                "ec-pw",
                &["-algorithm", "EC", "-pkeyopt", "group:P-256"],
                true,
            ),
            true,
        ),
    ];
    let message = b"AWS4-X509-ECDSA-SHA256\n20261201T000000Z\n20261201/us-east-1/rolesanywhere/aws4_request\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let with_password = FixedPassword(SecretString::from(PASSWORD));
    println!("| key (parent 0x40000001) | one-shot sig/s | long-running sig/s | speed-up |");
    println!("|---|---:|---:|---:|");
    for (name, path, password) in &keys {
        let pem = std::fs::read(path).unwrap();
        let der = iamra::pem::parse_all(&pem).unwrap().remove(0).der;
        let passwords: &dyn PasswordSource = if *password {
            &with_password
        } else {
            &NoPassword
        };
        let load =
            || load_key_file_with_tcti(&der, path, passwords, Some(&tcti)).expect("load key");
        let one_shot = rate(seconds, || {
            let key = load();
            key.sign(message, Digest::Sha256).expect("sign");
        });
        let key = load();
        let long_running = rate(seconds, || {
            key.sign(message, Digest::Sha256).expect("sign");
        });
        drop(key);
        println!(
            "| {name} | {one_shot:.1} | {long_running:.1} | {:.1}x |",
            long_running / one_shot
        );
    }
    for (name, stem) in [("RSA-2048", "rsa"), ("EC P-256", "ec")] {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.tss2.pem"));
        if let Some((median, min)) = round_trip(&tcti_text, &cert, &key) {
            println!(
                "credential-process round trip, {name} TSS2 key file: median {median:.2} ms, min {min:.2} ms (21 runs)"
            );
        }
    }
    drop(tpm);
}
