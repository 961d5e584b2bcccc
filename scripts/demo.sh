#!/usr/bin/env bash
# A complete credential-process round trip with no AWS account: builds iamra, starts the
# bundled local Roles Anywhere endpoint (which verifies the signature, chain, date and ARNs)
# on loopback with the committed test PKI, and prints the credentials JSON it issues.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet --bins --example iamra-test-endpoint
T=certs-testdata
. "$T/arns.env"
work=$(mktemp -d)
trap 'kill "$ep" 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/iamra-test-endpoint --trust-anchor "$T/ca/root.pem" \
  --tls-cert "$T/tls/server.pem" --tls-key "$T/tls/server.key" \
  --listen 127.0.0.1:0 --port-file "$work/port" >/dev/null &
ep=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "demo: the local endpoint did not start" >&2; exit 1; }
target/release/iamra credential-process \
  --certificate "$T/rsa2048/cert.pem" --private-key "$T/rsa2048/key.pkcs8.pem" \
  --intermediates "$T/chain.pem" \
  --trust-anchor-arn "$TRUST_ANCHOR_ARN" --profile-arn "$PROFILE_ARN" --role-arn "$ROLE_ARN" \
  --endpoint "https://127.0.0.1:$(cat "$work/port")" --ca-bundle "$T/tls/ca.pem"
echo
