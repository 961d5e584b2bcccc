#!/usr/bin/env bash
# Builds the release binaries (the default build in target/release, and the build the
# packages ship, features tpm,aws-sdk, in target/packaged) and runs the whole-process
# benchmarks (see bench/run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --bins --example iamra-test-endpoint
cargo build --locked --release --quiet --features tpm,aws-sdk --bins --target-dir target/packaged
cc -O2 -o target/bench-rusage bench/rusage.c
PACKAGED_BIN=target/packaged/release exec python3 bench/run.py "$@"
