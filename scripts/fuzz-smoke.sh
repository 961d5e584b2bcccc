#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded number of inputs (default
# 2000 each, FUZZ_RUNS to change), on corpora seeded from certs-testdata. For the
# longer runs of FUZZING.md: FUZZ_RUNS=-1 FUZZ_SECONDS=600 scripts/fuzz-smoke.sh
# A crash, a leak, a timeout or a failed property stops the script with libFuzzer's
# report (and the input in fuzz/artifacts/<target>/).
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`). The toolchain here is
# stable; cargo-fuzz's nightly-only flags are allowed with RUSTC_BOOTSTRAP=1.
#
# Usage: scripts/fuzz-smoke.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
runs=${FUZZ_RUNS:-2000}
seconds=${FUZZ_SECONDS:-300}
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz-smoke.sh: cargo-fuzz is not installed; run: cargo install --locked cargo-fuzz" >&2
  exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
./seed.sh >/dev/null
if ! build=$(cargo fuzz build -O 2>&1); then
  # The compiler's errors, not just the end of cargo-fuzz's backtrace.
  echo "$build" | grep -v '^ *Compiling ' | head -n 40 >&2
  echo "fuzz-smoke.sh: building the fuzz targets failed" >&2
  exit 1
fi
echo "$build" | tail -n 1
for t in "${targets[@]}"; do
  start=$(date +%s)
  # -timeout: one input may take at most 10 s (scrypt and PBKDF2 run for real);
  # -rss_limit_mb: a parser must not need 2 GiB.
  if ! out=$(cargo fuzz run -O "$t" -- -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
    -max_total_time="$seconds" -print_final_stats=1 2>&1); then
    echo "$out" | tail -n 40 >&2
    echo "fuzz-smoke.sh: target $t failed" >&2
    exit 1
  fi
  execs=$(echo "$out" | grep -Eo 'stat::number_of_executed_units: *[0-9]+' | grep -Eo '[0-9]+$' || echo "?")
  cov=$(echo "$out" | grep -Eo 'cov: [0-9]+ ft: [0-9]+' | tail -n 1)
  echo "fuzz-smoke.sh: $t: $execs runs in $(($(date +%s) - start)) s, $cov, corpus $(find "corpus/$t" -type f | wc -l) files, 0 crashes"
done
