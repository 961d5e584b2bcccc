#!/usr/bin/env bash
# `iamra exec -- true` against `iamra credential-process` with a warm cache, in the same
# hyperfine run, with `true` alone as the floor (the cost of starting any process).
# Usage: bench/exec.sh [RUNS]   (release binaries from target/release, or IAMRA_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${IAMRA_BIN:-target/release}
# The local endpoint is a cargo example (never installed).
ENDPOINT=${IAMRA_TEST_ENDPOINT:-target/release/examples/iamra-test-endpoint}
RUNS=${1:-200}
T=certs-testdata
work=$(mktemp -d)
trap 'kill "$ep" 2>/dev/null || true; rm -rf "$work"' EXIT
"$ENDPOINT" --trust-anchor "$T/ca/root.pem" --tls-cert "$T/tls/server.pem" \
  --tls-key "$T/tls/server.key" --listen 127.0.0.1:0 --port-file "$work/port" \
  --request-log "$work/requests.jsonl" >/dev/null &
ep=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
. "$T/arns.env"
flags="--certificate $T/rsa2048/cert.pem --private-key $T/rsa2048/key.pkcs8.pem --intermediates $T/chain.pem \
--trust-anchor-arn $TRUST_ANCHOR_ARN --profile-arn $PROFILE_ARN --role-arn $ROLE_ARN \
--endpoint https://127.0.0.1:$(cat "$work/port") --ca-bundle $T/tls/ca.pem"
export HOME="$work" XDG_CACHE_HOME="$work/cache"
unset IAMRA_NO_CACHE
# Warm the cache: every command below then takes the credentials from it.
"$BIN/iamra" credential-process $flags >/dev/null
hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$work/exec.json" \
  -n 'true (floor)' 'true' \
  -n 'credential-process (warm cache)' "$BIN/iamra credential-process $flags" \
  -n 'exec -- true (endpoint)' "$BIN/iamra exec $flags -- true" \
  -n 'exec --env -- true' "$BIN/iamra exec --env $flags -- true"
python3 - "$work/exec.json" <<'PY'
import json, sys
print("| command | median ms | min ms | mean ms | user ms | system ms |")
print("|---|---:|---:|---:|---:|---:|")
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| {r['command']} | {r['median']*1e3:.2f} | {r['min']*1e3:.2f} | {r['mean']*1e3:.2f} "
          f"| {r['user']*1e3:.2f} | {r['system']*1e3:.2f} |")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CreateSession requests during the run: $(wc -l <"$work/requests.jsonl") (1 = the warm-up only)"
