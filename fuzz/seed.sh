#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from certs-testdata and a few hand-written inputs.
# Corpora are not committed (fuzz/corpus is in .gitignore); run this before the first
# `cargo fuzz run`. Existing corpus files are kept (libFuzzer names them by hash).
set -euo pipefail
cd "$(dirname "$0")"
T=../certs-testdata
C=corpus
mkdir -p "$C"/{cert,key,pkcs12,pkcs8_encrypted,tss2,pkcs11_uri,credentials_file,session_response,serve}
put() { # put TARGET NAME (content on stdin)
  cat > "$C/$1/seed-$2"
}
copy() { # copy TARGET FILE...
  local target=$1
  shift
  for f in "$@"; do
    put "$target" "$(echo "${f#"$T"/}" | tr / _)" < "$f"
  done
}

# Certificates, chains and the broken fixtures.
copy cert $(find "$T" -name '*.pem' -o -name '*.der' | grep -v '/tls/' | sort)
# Every key encoding (ML-DSA seed/expanded/both forms included), combined files, and the
# wrong-kind fixtures (bad/mldsa-*: wrong lengths, disagreeing halves, unknown OIDs).
copy key $(find "$T" \( -name 'key*' -o -name 'combined*' -o -name '*.key' \) -type f | sort) "$T"/bad/*
# PKCS#12 bundles, modern and legacy, with and without passwords and MACs.
copy pkcs12 $(find "$T" -name '*.p12' | sort)
# Encrypted PKCS#8, PBKDF2 (SHA-1/256/384/512) and scrypt, PEM and DER.
copy pkcs8_encrypted $(find "$T" -name 'key.enc-*' | sort)

# TSS2 keys: the tpm2-openssl provider and tpm2-tools vectors of the unit tests.
grep -E '^ *const (PROVIDER_EC|PROVIDER_EC_PASSWORD|TOOLS_RSA): &str = "' ../src/key/tpm/tss2.rs |
  while read -r line; do
    name=$(echo "$line" | sed -E 's/.*const ([A-Z_]+).*/\1/')
    echo "$line" | sed -E 's/.*= "([^"]*)";/\1/' | base64 -d | put tss2 "$name"
  done

# PKCS#11 URIs as p11tool prints them, with query attributes, and edge cases.
i=0
for u in \
  'pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=bb217e9134443552;token=ra-test;id=%01;object=ra-rsa;type=private' \
  'pkcs11:token=a%3Bb?pin-value=12%2634&module-path=/usr/lib/softhsm/libsofthsm2.so' \
  'pkcs11:?module-name=softhsm2&pin-source=file:///run/pin' \
  'pkcs11:slot-id=0x10;library-version=2.6;library-manufacturer=x;library-description=y' \
  'pkcs11:slot-description=s;slot-manufacturer=m;type=cert;id=%AB%cd' \
  'pkcs11:' ; do
  printf '%s' "$u" | put pkcs11_uri "uri$i"
  i=$((i + 1))
done

# Credentials files: one octet (profile length), the profile, then the file.
cred() { # cred NAME PROFILE CONTENT
  { printf "\\$(printf '%03o' "${#2}")"; printf '%s' "$2"; printf '%b' "$3"; } | put credentials_file "$1"
}
cred new default ''
cred replace default '[default]\nregion=eu-west-1\n  AWS_Access_Key_ID=OLD ; c\naws_secret_access_key   =\told\naws_session_token = x\n'
cred others work '# top\n[default]\naws_access_key_id = A\n\n[work]\nregion = x\n# next\n[other]\nk = v\n'
cred crlf default '[default]\r\nregion = x\r\n'
cred dup default '[default]\naws_access_key_id=1\n[x]\n[ default ] # again\naws_session_token=2'
cred comment 'profile p' '[profile p]\n# iamra: credentials expire at 2020-01-01T00:00:00Z\naws_access_key_id = A\n'

# CreateSession answers: the real shape, and error bodies.
printf '%s' '{"credentialSet":[{"assumedRoleUser":{"arn":"a","assumedRoleId":"b"},"credentials":{"accessKeyId":"ASIA1","expiration":"2026-12-01T21:00:00Z","secretAccessKey":"sk","sessionToken":"tok"},"packedPolicySize":0,"roleArn":"r","sourceIdentity":"CN=x"}],"subjectArn":"s"}' | put session_response ok
printf '%s' '{"credentialSet":[{"credentials":{"accessKeyId":"ASIA1","expiration":5,"secretAccessKey":"TOPSECRET"}}]}' | put session_response missing
printf '%s' '{"credentialSet":[]}' | put session_response empty
printf '%s' '{"__type":"com.amazon#ValidationException","Message":"bad"}' | put session_response error

# Requests to serve: the IMDSv2 token dance, credentials, info, ECS, bodies.
req() { printf '%b' "$2" | put serve "$1"; }
req token 'PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n'
req list 'GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-aws-ec2-metadata-token: abc\r\n\r\n'
req creds 'GET /latest/meta-data/iam/security-credentials/fuzz HTTP/1.1\r\nHost: localhost:9911\r\nX-aws-ec2-metadata-token: abc\r\n\r\n'
req info 'GET /latest/meta-data/iam/info HTTP/1.1\r\nHost: [::1]:9911\r\n\r\n'
req ecs 'GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: fuzz\r\n\r\n'
req chunked 'PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
req pipelined 'PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabcGET /latest/meta-data/iam/info HTTP/1.1\r\nOrigin: x\r\n\r\n'
req http10 'GET /latest/meta-data/iam/security-credentials HTTP/1.0\r\n\r\n'

echo "seed.sh: $(find "$C" -name 'seed-*' | wc -l) seed files in $(cd "$C" && pwd)"
