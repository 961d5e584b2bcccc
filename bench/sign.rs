//! In-process signing time per key type, in one run (`bench/mldsa.sh` runs it):
//! RSA-2048 (ring), EC P-256 (p256) and ML-DSA-44/65/87 (ml-dsa, deterministic,
//! empty context), each signing a 226-byte SigV4-X509 string to sign. Also the
//! time to load each key file (for ML-DSA: PKCS#8 parse and FIPS 204 key
//! expansion from the seed). Medians of batches.
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

/// Median of per-operation times over batches that fill `budget`.
fn median_per_op(budget: Duration, mut op: impl FnMut()) -> Duration {
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..10 {
            op();
        }
        samples.push(t.elapsed() / 10);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-testdata");
    let message =
        "AWS4-X509-MLDSA\n20261202T062442Z\n20261202/us-east-1/rolesanywhere/aws4_request\n\
                   6e3c0b5c8e1ee2b6f0e6b3b1ab2ad2f3b5f2b8c0f3f4ad6bb7f8e6c9b2d1e0f1"
            .repeat(2);
    println!("| key | sign µs (median) | signature bytes | load µs (median) |");
    println!("|---|---:|---:|---:|");
    for (label, rel) in KEYS {
        let path = dir.join(rel);
        let key = load_key(&path, &NoPassword).expect("key");
        let sig_len = key
            .sign(message.as_bytes(), Digest::Sha256)
            .expect("sign")
            .len();
        let sign = median_per_op(budget, || {
            std::hint::black_box(
                key.sign(std::hint::black_box(message.as_bytes()), Digest::Sha256)
                    .expect("sign"),
            );
        });
        let load = median_per_op(budget / 2, || {
            std::hint::black_box(load_key(&path, &NoPassword).expect("key"));
        });
        println!(
            "| {label} | {:.1} | {sig_len} | {:.1} |",
            sign.as_secs_f64() * 1e6,
            load.as_secs_f64() * 1e6
        );
    }
}
