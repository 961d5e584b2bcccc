#!/usr/bin/env bash
# Benchmarks `iamra serve` with wrk (Debian package `wrk`) on loopback: credential
# GETs with a token, and token PUT + credential GET pairs, at 1 and 64 connections;
# then the server's peak RSS. Results go into BENCHMARKS.md by hand.
#
#   bench/serve.sh            # 10 s per run
#   DURATION=30s bench/serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
TARGET=${CARGO_TARGET_DIR:-target}
[ -n "${NO_BUILD:-}" ] || cargo build --locked --release --quiet --bins
B=$TARGET/release
T=certs-testdata
W=$(mktemp -d)
cleanup() { kill "${SERVE:-}" "${EP:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
"$B/iamra-test-endpoint" --trust-anchor $T/ca/root.pem --tls-cert $T/tls/server.pem \
  --tls-key $T/tls/server.key --listen 127.0.0.1:0 --port-file "$W/ep-port" >/dev/null &
EP=$!
for _ in $(seq 100); do [ -s "$W/ep-port" ] && break; sleep 0.05; done
source $T/arns.env
"$B/iamra" serve --port 0 --certificate $T/rsa2048/combined.pem --intermediates $T/chain.pem \
  --trust-anchor-arn "$TRUST_ANCHOR_ARN" --profile-arn "$PROFILE_ARN" --role-arn "$ROLE_ARN" \
  --endpoint "https://127.0.0.1:$(cat "$W/ep-port")" --ca-bundle $T/tls/ca.pem >"$W/serve.out" &
SERVE=$!
for _ in $(seq 100); do [ -s "$W/serve.out" ] && break; sleep 0.05; done
URL=$(head -1 "$W/serve.out" | sed 's/^export AWS_EC2_METADATA_SERVICE_ENDPOINT=//; s#/$##')
echo "iamra serve at $URL (pid $SERVE), $(nproc) cores, wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
run() { # script connections threads
  local out; out=$(wrk -t"$3" -c"$2" -d"$DURATION" --latency -s "bench/$1" "$URL")
  printf '%-18s c=%-3s rps=%-10s p50=%-9s p99=%s\n' "$1" "$2" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
  grep -q "Non-2xx" <<<"$out" && { echo "errors:"; echo "$out"; exit 1; } || true
}
wrk -t1 -c1 -d2s -s bench/serve-get.lua "$URL" >/dev/null # warm-up
for c in 1 64; do
  t=$([ "$c" = 1 ] && echo 1 || echo 2)
  run serve-get.lua "$c" "$t"
  run serve-put-get.lua "$c" "$t"
done
echo "peak RSS of iamra serve: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$SERVE/status)"
