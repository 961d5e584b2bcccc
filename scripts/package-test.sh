#!/usr/bin/env bash
# Checks the packages built by scripts/package.sh: lintian (no errors), rpm contents and
# computed dependencies, systemd-analyze verify and security on every unit, and the
# packaged binary run from an unpacked .deb root: `iamra version` and a credential-process
# round trip against the local Roles Anywhere endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls target/debian/iamra_*.deb | tail -n1)
rpm=$(ls target/generate-rpm/iamra-*.rpm | tail -n1)
echo "== lintian $deb"
lintian --tag-display-limit 0 --fail-on error "$deb"
echo "== rpm -qpl / -qpR $rpm"
root=$(mktemp -d); units=$(mktemp -d); work=$(mktemp -d)
trap 'kill "${ep:-}" 2>/dev/null || true; rm -rf "$root" "$units" "$work"' EXIT
rpm -qpl "$rpm" > "$work/files"; rpm -qpR "$rpm" > "$work/requires"; dpkg-deb -I "$deb" > "$work/control"
grep -qx /usr/bin/iamra "$work/files"
grep -qx /usr/lib/systemd/system/iamra-serve.service "$work/files"
grep -qx /usr/share/doc/iamra/examples/backup.timer "$work/files"
grep -qx /usr/libexec/iamra/iamra-tpm "$work/files"
grep -q 'libtss2-esys.so.0' "$work/requires"   # computed from the TPM helper (tpm feature)
grep -q 'Depends:.*libtss2-esys' "$work/control"
echo "rpm requires: $(grep -v GLIBC "$work/requires" | tr '\n' ' ')"
dpkg-deb -x "$deb" "$root"
echo "== libtss2 only in the TPM helper"
# iamra runs TPM keys in /usr/libexec/iamra/iamra-tpm: the main binary must not make
# the loader map libtss2 (and libcrypto) at every start.
if readelf -d "$root/usr/bin/iamra" | grep -q 'NEEDED.*libtss2'; then
  echo "usr/bin/iamra links libtss2" >&2; exit 1
fi
readelf -d "$root/usr/libexec/iamra/iamra-tpm" | grep -q 'NEEDED.*libtss2-esys'
grep -q /usr/libexec/iamra "$root/usr/bin/iamra"   # the helper directory built in
echo "== systemd-analyze verify / security"
for f in "$root"/lib/systemd/system/*; do
  sed "s|/usr/bin/iamra|$root/usr/bin/iamra|" "$f" > "$units/$(basename "$f")"
done
cp "$units/iamra-update@.service" "$units/iamra-update@default.service"
for f in backup.service backup.timer; do   # the iamra exec example
  sed "s|/usr/bin/iamra|$root/usr/bin/iamra|" "$root/usr/share/doc/iamra/examples/$f" > "$units/$f"
done
systemd-analyze verify --man=no "$units/backup.timer" "$units/backup.service"
systemd-analyze verify --man=no "$units/iamra-serve.socket" "$units/iamra-serve.service" "$units/iamra-update@default.service"
for u in iamra-serve.service iamra-update@default.service; do
  systemd-analyze security --offline=yes --threshold=20 "$units/$u" | tail -n1
done
echo "== packaged binary"
"$root/usr/bin/iamra" version
cargo build --locked --release --quiet --example iamra-test-endpoint
T=certs-testdata
. "$T/arns.env"
target/release/examples/iamra-test-endpoint --trust-anchor "$T/ca/root.pem" --tls-cert "$T/tls/server.pem" \
  --tls-key "$T/tls/server.key" --listen 127.0.0.1:0 --port-file "$work/port" >/dev/null &
ep=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
out=$("$root/usr/bin/iamra" credential-process --no-cache \
  --certificate "$T/rsa2048/cert.pem" --private-key "$T/rsa2048/key.pkcs8.pem" --intermediates "$T/chain.pem" \
  --trust-anchor-arn "$TRUST_ANCHOR_ARN" --profile-arn "$PROFILE_ARN" --role-arn "$ROLE_ARN" \
  --endpoint "https://127.0.0.1:$(cat "$work/port")" --ca-bundle "$T/tls/ca.pem")
case "$out" in
  '{"Version":1,"AccessKeyId":"ASIA'*) echo "credential-process round trip from the packaged binary: ok";;
  *) echo "unexpected output: $out" >&2; exit 1;;
esac
ls -l "$root/usr/bin/iamra" "$root/usr/libexec/iamra/iamra-tpm" "$deb" "$rpm"
