#!/usr/bin/env bash
# Regenerate the iamra test PKI in place.  TEST KEYS ONLY - never use them for anything real.
# Usage: certs-testdata/generate.sh   (from any directory)
# Needs: python3 with `cryptography`, OpenSSL 3 CLI (with the legacy provider for -legacy).
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
export LC_ALL=C

die() { echo "generate.sh: $*" >&2; exit 1; }

# ---- clean everything we generate (keeps generate.sh, generate.py, README.md) ----
rm -rf ca rsa2048 rsa3072 rsa4096 ec-p256 ec-p384 serial-huge expired not-yet-valid untrusted \
       mismatch ca-as-leaf ed25519 rsa1024 p521 no-eku bad tls mldsa-ca mldsa44 mldsa65 mldsa87
rm -f chain.pem chain-with-root.pem password.txt arns.env

printf '%s' 'correct horse battery staple' > password.txt
PASS="file:$PWD/password.txt"

cat > arns.env <<'EOF'
TRUST_ANCHOR_ARN=arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0
PROFILE_ARN=arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d
ROLE_ARN=arn:aws:iam::123456789012:role/iamra-test-role
EOF

# ---- keys and certificates (exact validity dates and serials) ----
python3 generate.py "$PWD"
# ML-DSA leaves, the ML-DSA CA and the bad ML-DSA keys (checks its own output)
python3 generate_mldsa.py "$PWD"

# ---- "EC PARAMETERS" block followed by the SEC1 key, as `openssl ecparam -genkey` writes ----
for pair in ec-p256:prime256v1 ec-p384:secp384r1; do
  d=${pair%%:*}; curve=${pair#*:}
  { openssl ecparam -name "$curve"; cat "$d/key.sec1.pem"; } > "$d/key.sec1-params.pem"
  openssl ec -in "$d/key.sec1-params.pem" -noout 2>/dev/null || die "$d/key.sec1-params.pem unreadable"
done

# ---- encrypted PKCS#8 (PBES2) ----
same_key() {  # $1 reference key, $2 encrypted key, $3 inform
  cmp -s <(openssl pkey -in "$1" -outform DER) \
         <(openssl pkcs8 -inform "$3" -in "$2" -passin "$PASS" | openssl pkey -outform DER)
}
for d in rsa2048 ec-p256 ec-p384; do
  for v in pbkdf2-sha1-aes128:aes-128-cbc:hmacWithSHA1 \
           pbkdf2-sha256-aes256:aes-256-cbc:hmacWithSHA256 \
           pbkdf2-sha384-aes192:aes-192-cbc:hmacWithSHA384 \
           pbkdf2-sha512-aes256:aes-256-cbc:hmacWithSHA512; do
    IFS=: read -r name cipher prf <<<"$v"
    openssl pkcs8 -topk8 -in "$d/key.pkcs8.pem" -v2 "$cipher" -v2prf "$prf" \
      -passout "$PASS" -out "$d/key.enc-$name.pem"
  done
  openssl pkcs8 -topk8 -in "$d/key.pkcs8.pem" -scrypt -v2 aes-256-cbc \
    -passout "$PASS" -out "$d/key.enc-scrypt-aes256.pem"
done
openssl pkcs8 -topk8 -in rsa2048/key.pkcs8.pem -v2 aes-256-cbc -v2prf hmacWithSHA256 \
  -passout "$PASS" -outform DER -out rsa2048/key.enc-pbkdf2-sha256-aes256.der

for f in */key.enc-*.pem rsa2048/key.enc-pbkdf2-sha256-aes256.der; do
  form=PEM; [[ $f == *.der ]] && form=DER
  openssl pkcs8 -inform "$form" -in "$f" -passin "$PASS" -out /dev/null || die "$f does not decrypt"
  same_key "$(dirname "$f")/key.pkcs8.pem" "$f" "$form" || die "$f decrypts to a different key"
done

# ---- PKCS#12 bundles: key + leaf + intermediate ----
for d in rsa2048 ec-p256; do
  p12() {  # $1 output, rest: extra openssl pkcs12 -export args
    local out=$1; shift
    openssl pkcs12 -export -inkey "$d/key.pkcs8.pem" -in "$d/cert.pem" \
      -certfile ca/intermediate.pem -name "iamra-test-$d" -out "$d/$out" "$@"
  }
  p12 bundle-modern.p12        -passout "$PASS"
  p12 bundle-modern-empty.p12  -passout pass:
  p12 bundle-legacy.p12        -legacy -passout "$PASS"
  p12 bundle-legacy-nopass.p12 -legacy -passout pass:
  p12 bundle-nomac.p12         -keypbe NONE -certpbe NONE -nomac -passout pass:

  check() {  # $1 file, rest: extra args
    local f=$d/$1; shift
    openssl pkcs12 -in "$f" -info -noout "$@" 2>"$d/.p12info" || { cat "$d/.p12info" >&2; die "$f: check failed"; }
    # every bundle must hold exactly one key and two certificates
    local n
    n=$(openssl pkcs12 -in "$f" -nodes "$@" 2>/dev/null | grep -c -- '-----BEGIN CERTIFICATE-----')
    [[ $n == 2 ]] || die "$f: expected 2 certificates, found $n"
    openssl pkcs12 -in "$f" -nodes -nocerts "$@" 2>/dev/null | grep -q -- '-----BEGIN PRIVATE KEY-----' \
      || die "$f: no private key"
    rm -f "$d/.p12info"
  }
  check bundle-modern.p12        -passin "$PASS"
  check bundle-modern-empty.p12  -passin pass:
  check bundle-legacy.p12        -legacy -passin "$PASS"
  check bundle-legacy-nopass.p12 -legacy -passin pass:
  check bundle-nomac.p12         -passin pass: -nomacver
  grep -q 'MAC: sha256' <(openssl pkcs12 -in "$d/bundle-modern.p12" -info -noout -passin "$PASS" 2>&1) \
    || die "$d/bundle-modern.p12: MAC is not HMAC-SHA256"
  grep -q 'MAC: sha1' <(openssl pkcs12 -in "$d/bundle-legacy.p12" -info -noout -legacy -passin "$PASS" 2>&1) \
    || die "$d/bundle-legacy.p12: MAC is not HMAC-SHA1"
done

# ---- bad/truncated.p12: first half of rsa2048/bundle-modern.p12 ----
size=$(wc -c < rsa2048/bundle-modern.p12)
head -c $((size / 2)) rsa2048/bundle-modern.p12 > bad/truncated.p12

# ---- verification ----
verify() { openssl verify -CAfile ca/root.pem -untrusted ca/intermediate.pem "$@"; }
for d in rsa2048 rsa3072 rsa4096 ec-p256 ec-p384 serial-huge no-eku ed25519 p521; do
  verify "$d/cert.pem" >/dev/null || die "$d/cert.pem does not verify"
done
for d in untrusted expired not-yet-valid; do
  if verify "$d/cert.pem" >/dev/null 2>&1; then die "$d/cert.pem unexpectedly verifies"; fi
done
openssl verify -CAfile ca/other-root.pem untrusted/cert.pem >/dev/null || die "untrusted vs other-root"
openssl verify -CAfile tls/ca.pem -purpose sslserver tls/server.pem >/dev/null || die "tls/server.pem"
verify -purpose sslclient rsa2048/cert.pem >/dev/null || die "rsa2048 not a client cert"

# each key matches its certificate (mismatch/ must not)
pubof() { openssl pkey -in "$1" -pubout -outform DER | sha256sum; }
certpub() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum; }
for d in rsa2048 rsa3072 rsa4096 ec-p256 ec-p384 serial-huge expired not-yet-valid untrusted \
         ca-as-leaf ed25519 rsa1024 p521 no-eku tls/server; do
  if [[ $d == tls/server ]]; then c=tls/server.pem k=tls/server.key; else c=$d/cert.pem k=$d/key.pkcs8.pem; fi
  [[ $(pubof "$k") == $(certpub "$c") ]] || die "$k does not match $c"
done
[[ $(pubof mismatch/key.pkcs8.pem) != $(certpub mismatch/cert.pem) ]] || die "mismatch/ matches"

# serial-huge: 21-octet DER INTEGER (00 99 ...)
[[ $(openssl x509 -in serial-huge/cert.pem -noout -serial) == serial=9901* ]] || die "serial-huge serial"
openssl asn1parse -in serial-huge/cert.pem | grep -q 'INTEGER *:9901' || die "serial-huge asn1"

# no temporary files may remain
find . -name '*.csr' -o -name '*.srl' -o -name '.p12info' -o -name '*.tmp' | grep -q . && die "temp files left"
echo "certs-testdata: regenerated and verified OK"
