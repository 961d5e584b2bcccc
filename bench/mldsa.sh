#!/usr/bin/env bash
# ML-DSA benchmarks (BENCHMARKS.md, "ML-DSA"): in one run, the in-process signing time of
# every key type (bench/sign.rs), then the cold credential-process with ML-DSA-65 (and
# ML-DSA-87, and RSA-2048 for reference) against curl's same TLS POST (bench/mldsa.py).
# Release build with the packaged feature set, so the binary measured is the one shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --features tpm,aws-sdk --bins --example sign --example iamra-test-endpoint
cc -O2 -o target/bench-rusage bench/rusage.c
ls -l target/release/iamra
target/release/examples/sign "${SIGN_SECONDS:-2}"
exec python3 bench/mldsa.py "$@"
