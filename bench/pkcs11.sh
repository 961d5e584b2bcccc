#!/usr/bin/env bash
# PKCS#11 benchmark (BENCHMARKS.md, "PKCS#11 (SoftHSM2)"): builds the release binaries
# and bench/pkcs11.rs, then runs it (SoftHSM2 token in a temp dir; needs softhsm2,
# opensc and openssl). Argument: seconds per row (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --bins --example pkcs11 --example iamra-test-endpoint
exec "${CARGO_TARGET_DIR:-target}/release/examples/pkcs11" "$@"
