#!/usr/bin/env bash
# Builds the release binaries and runs the whole-process benchmarks (see bench/run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --bins
cc -O2 -o target/bench-rusage bench/rusage.c
exec python3 bench/run.py "$@"
