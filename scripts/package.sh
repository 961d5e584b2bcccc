#!/usr/bin/env bash
# Builds the .deb and .rpm from a clean checkout: release binary with every feature,
# man pages and shell completions generated from the CLI definition, then cargo-deb and
# cargo-generate-rpm (metadata in Cargo.toml). Output: target/debian/*.deb, target/generate-rpm/*.rpm
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || cargo install --locked "$tool"
done
# iamra-tpm is the TPM helper; iamra finds it in /usr/libexec/iamra (IAMRA_TPM_HELPER_DIR).
IAMRA_TPM_HELPER_DIR=/usr/libexec/iamra cargo build --locked --release --features tpm,aws-sdk --bin iamra --bin iamra-tpm
rm -rf target/assets && mkdir -p target/assets/man target/assets/completions
target/release/iamra man --out-dir target/assets/man
for f in target/assets/man/*.1; do gzip -9n -f "$f"; done
target/release/iamra completion bash > target/assets/completions/iamra.bash
target/release/iamra completion zsh > target/assets/completions/_iamra
target/release/iamra completion fish > target/assets/completions/iamra.fish
cargo deb --locked --no-build --no-strip
cargo generate-rpm --payload-compress gzip
ls -l target/debian/*.deb target/generate-rpm/*.rpm
