#!/usr/bin/env bash
# Builds the release binaries and runs the whole-process benchmarks (see bench/run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --bins
exec python3 bench/run.py "$@"
