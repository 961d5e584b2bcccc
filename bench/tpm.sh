#!/usr/bin/env bash
# TPM 2.0 benchmark (BENCHMARKS.md, "TPM 2.0 (swtpm)"): builds the release binaries and
# bench/tpm.rs with the `tpm` feature, then runs it (a swtpm on loopback in a temp dir;
# needs swtpm, tpm2-openssl, openssl and libtss2). Argument: seconds per row (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --features tpm --bins --example tpm --example iamra-test-endpoint
exec "${CARGO_TARGET_DIR:-target}/release/examples/tpm" "$@"
