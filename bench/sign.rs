//! In-process signing time per key type, in one run (`bench/mldsa.sh` runs it):
//! RSA-2048 (ring), EC P-256 (p256) and ML-DSA-44/65/87 (ml-dsa, deterministic,
//! empty context), each signing a 143-byte SigV4-X509 string to sign whose last
//! 8 bytes change on every signature: ML-DSA's rejection sampling takes a
//! message-dependent number of rounds, so a fixed message would time one draw
//! (RSA and ECDSA hash it with SHA-256). Also the
//! time to load each key file (for ML-DSA: PKCS#8 parse and FIPS 204 key
//! expansion from the seed). Each figure is the thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) divided by the number of operations, so that other
//! processes on a loaded machine do not inflate it; the wall-clock median of
//! batches of 10 is printed beside it.
//!
//! Usage: `cargo run --release --example sign [SECONDS_PER_ROW]`
#![allow(
    clippy::expect_used,
    reason = "a benchmark harness: a failure aborts the measurement run with its message"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use iamra::key::{Digest, NoPassword, SigningKey as _, load_key};

const KEYS: &[(&str, &str)] = &[
    ("RSA-2048", "rsa2048/key.pkcs8.pem"),
    ("EC P-256", "ec-p256/key.pkcs8.pem"),
    ("ML-DSA-44", "mldsa44/key.seed.pem"),
    ("ML-DSA-65", "mldsa65/key.seed.pem"),
    ("ML-DSA-87", "mldsa87/key.seed.pem"),
];

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).expect("seconds"),
        u32::try_from(t.tv_nsec).expect("nanoseconds"),
    )
}

/// (thread CPU time per operation, wall-clock median per operation over batches
/// of 10) while the operations fill `budget`.
fn per_op(budget: Duration, mut op: impl FnMut()) -> (Duration, Duration) {
    let mut samples = Vec::new();
    let start = Instant::now();
    let cpu_start = thread_cpu();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..10 {
            op();
        }
        samples.push(t.elapsed() / 10);
    }
    let ops = u32::try_from(samples.len() * 10).expect("count");
    let cpu = (thread_cpu() - cpu_start) / ops;
    samples.sort();
    (cpu, samples[samples.len() / 2])
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata");
    let mut message =
        b"AWS4-X509-MLDSA\n20261202T062442Z\n20261202/us-east-1/rolesanywhere/aws4_request\n\
        6e3c0b5c8e1ee2b6f0e6b3b1ab2ad2f3b5f2b8c0f3f4ad6bb7f8e6c9b2d1e0f1"
            .to_vec();
    assert_eq!(message.len(), 143);
    let mut counter: u64 = 0;
    println!(
        "| key | sign µs (CPU) | sign µs (wall median) | signature bytes | load µs (CPU) | load µs (wall median) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, rel) in KEYS {
        let input = iamra::input::Input::file(dir.join(rel));
        let key = load_key(&input, &NoPassword).expect("key");
        let sig_len = key.sign(&message, Digest::Sha256).expect("sign").len();
        let (sign_cpu, sign_wall) = per_op(budget, || {
            counter += 1;
            let at = message.len() - 8;
            message[at..].copy_from_slice(&counter.to_le_bytes());
            std::hint::black_box(
                key.sign(std::hint::black_box(&message), Digest::Sha256)
                    .expect("sign"),
            );
        });
        let (load_cpu, load_wall) = per_op(budget / 2, || {
            std::hint::black_box(load_key(&input, &NoPassword).expect("key"));
        });
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "| {label} | {:.0} | {:.0} | {sig_len} | {:.0} | {:.0} |",
            us(sign_cpu),
            us(sign_wall),
            us(load_cpu),
            us(load_wall)
        );
    }
}
