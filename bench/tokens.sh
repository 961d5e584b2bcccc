#!/usr/bin/env bash
# Hardware keys one-shot (BENCHMARKS.md, "Hardware keys, one-shot"): builds the release
# binaries as packaged (features tpm,aws-sdk; the TPM helper beside iamra) and the
# rusage launcher, then runs bench/tokens.py. Needs softhsm2, opensc, swtpm,
# tpm2-openssl, openssl and curl. RUNS=N sets the rounds (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/packaged}"
cargo build --locked --release --quiet --features tpm,aws-sdk --bins --example iamra-test-endpoint
cc -O2 -o "$CARGO_TARGET_DIR/bench-rusage" bench/rusage.c
exec python3 bench/tokens.py "$@"
