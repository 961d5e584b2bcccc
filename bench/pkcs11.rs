//! PKCS#11 benchmark against a throwaway SoftHSM2 token (`bench/pkcs11.sh` runs it).
//!
//! - one-shot: load the module, open a session, log in, find the key, sign, close,
//!   finalise — per signature, as the reference helper does;
//! - long-running: one [`iamra::key::pkcs11::Pkcs11Key`] (module and session kept),
//!   as `update`/`serve` use it;
//! - one `credential-process` round trip (release binary against the release
//!   `iamra-test-endpoint`), median of several runs.
//!
//! Usage: `cargo run --release --example pkcs11 [SECONDS_PER_ROW]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness: a failure aborts the measurement run with its message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iamra::key::pkcs11::{Pkcs11Options, Pkcs11Uri, load_key};
use iamra::key::{Digest, FixedPassword, SigningKey as _};
use secrecy::SecretString;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "bench-pin-1";

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn setup(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata/ca");
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    let env = |c: &mut Command| {
        c.env("SOFTHSM2_CONF", &conf);
    };
    let mut c = Command::new("softhsm2-util");
    env(&mut c);
    run(c.args([
        "--init-token",
        "--free",
        "--label",
        "bench",
        "--so-pin",
        "12345678",
        "--pin",
        PIN,
    ]));
    std::fs::write(
        dir.join("ee.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    for (id, kind) in [("01", "rsa:2048"), ("02", "EC:prime256v1")] {
        let p11 = |c: &mut Command| {
            env(c);
            c.args([
                "--module",
                MODULE,
                "--token-label",
                "bench",
                "--login",
                "--pin",
                PIN,
            ]);
        };
        let mut c = Command::new("pkcs11-tool");
        p11(&mut c);
        run(c.args(["--keypairgen", "--key-type", kind, "--id", id]));
        let pub_der = dir.join(format!("{id}.pub.der"));
        let pub_pem = dir.join(format!("{id}.pub.pem"));
        let cert = dir.join(format!("{id}.pem"));
        let mut c = Command::new("pkcs11-tool");
        p11(&mut c);
        run(c
            .args(["--read-object", "--type", "pubkey", "--id", id, "-o"])
            .arg(&pub_der));
        run(Command::new("openssl")
            .args(["pkey", "-pubin", "-inform", "DER", "-in"])
            .arg(&pub_der)
            .arg("-out")
            .arg(&pub_pem));
        run(Command::new("openssl")
            .args([
                "x509",
                "-new",
                "-subj",
                &format!("/CN=bench-{id}"),
                "-force_pubkey",
            ])
            .arg(&pub_pem)
            .arg("-CA")
            .arg(root.join("intermediate.pem"))
            .arg("-CAkey")
            .arg(root.join("intermediate.key"))
            .args(["-days", "30", "-extfile"])
            .arg(dir.join("ee.ext"))
            .arg("-out")
            .arg(&cert));
        let der = dir.join(format!("{id}.der"));
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&der));
        let mut c = Command::new("pkcs11-tool");
        p11(&mut c);
        run(c
            .arg("--write-object")
            .arg(&der)
            .args(["--type", "cert", "--id", id]));
    }
    conf
}

fn rate(seconds: f64, mut f: impl FnMut()) -> (f64, u32) {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        f();
        n += 1;
    }
    (f64::from(n) / start.elapsed().as_secs_f64(), n)
}

fn round_trip(conf: &Path, uri: &str) -> Option<f64> {
    // This example runs from <target>/release/examples/.
    let exe = std::env::current_exe().ok()?;
    let examples = exe.parent()?;
    let bin = examples.parent()?.to_path_buf();
    let (iamra, endpoint) = (bin.join("iamra"), examples.join("iamra-test-endpoint"));
    if !iamra.exists() || !endpoint.exists() {
        eprintln!(
            "release binaries missing (cargo build --release --bins --example iamra-test-endpoint): no round trip"
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
            .args(["credential-process", "--certificate", uri, "--pkcs11-lib", MODULE])
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
            .env("SOFTHSM2_CONF", conf)
            .env("IAMRA_PKCS11_PIN", PIN)
            .env("IAMRA_NO_CACHE", "true")
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
    Some(times[times.len() / 2])
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // SoftHSM2 reads SOFTHSM2_CONF when the module initialises: build the token,
    // then run the measurements in a child process that has it in its environment.
    let Some(conf) = std::env::var_os("IAMRA_BENCH_SOFTHSM2_CONF").map(PathBuf::from) else {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = setup(dir.path());
        let status = Command::new(std::env::current_exe().expect("own path"))
            .arg(seconds.to_string())
            .env("SOFTHSM2_CONF", &conf)
            .env("IAMRA_BENCH_SOFTHSM2_CONF", &conf)
            .status()
            .expect("run the measurements");
        std::process::exit(status.code().unwrap_or(1));
    };
    let opts = Pkcs11Options::default().with_module(MODULE);
    let pin = FixedPassword(SecretString::from(PIN));
    let message = b"AWS4-X509-RSA-SHA256\n20261201T000000Z\n20261201/us-east-1/rolesanywhere/aws4_request\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    println!("| key | one-shot sig/s | long-running sig/s | speed-up |");
    println!("|---|---:|---:|---:|");
    for (name, id) in [("RSA-2048", "01"), ("EC P-256", "02")] {
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=bench;id=%{id}")).expect("URI");
        let (one_shot, _) = rate(seconds, || {
            let key = load_key(&uri, &opts, &pin).expect("load key");
            key.sign(message, Digest::Sha256).expect("sign");
        });
        let key = load_key(&uri, &opts, &pin).expect("load key");
        let (long_running, _) = rate(seconds, || {
            key.sign(message, Digest::Sha256).expect("sign");
        });
        drop(key);
        println!(
            "| {name} | {one_shot:.0} | {long_running:.0} | {:.1}x |",
            long_running / one_shot
        );
    }
    for (name, id) in [("RSA-2048", "01"), ("EC P-256", "02")] {
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=bench;id=%{id}")).expect("URI");
        if let Some(ms) = round_trip(&conf, &uri.to_string()) {
            println!(
                "credential-process round trip, {name} on the token: median {ms:.2} ms (21 runs)"
            );
        }
    }
}
