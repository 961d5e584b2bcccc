#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then runs every
# check CI runs. README.md's second command; `.ci/run` is a thin call of this script.
#
#   1. System packages the builds and tests need (the TPM build links libtss2; the PKCS#11
#      and TPM tests drive real SoftHSM2 and swtpm; the package checks run lintian and rpm).
#      Installed with apt-get (Debian/Ubuntu) or dnf (Fedora-like), as root or through
#      `sudo -n`; where that is impossible, one line per missing package says what to
#      install, and the script stops non-zero. Nothing is silently skipped.
#   2. Cargo tools: cargo-deny, cargo-fuzz, cargo-deb, cargo-generate-rpm (`cargo install
#      --locked` when missing).
#   3. Guardrails: rustfmt, clippy with -D warnings (all targets, all features, and the
#      default feature set; the library alone without default features, as a library
#      user builds it: no clap, rpassword or tracing-subscriber; the test endpoint's
#      tests), no import cycle between source files, rustdoc with -D warnings.
#   4. Tests: the default build (what `cargo install` users get), the packaged feature
#      set (`--all-features`: TPM included), the test endpoint's unit tests, and the
#      ML-DSA tests on a build without AVX2 code (the portable code path).
#   5. Supply chain (scripts/deny.sh), fuzzing smoke run (scripts/fuzz-smoke.sh), and the
#      .deb/.rpm build and checks (scripts/package.sh, scripts/package-test.sh).
#
# Usage: scripts/test.sh [--install-only]
#   --install-only   install what is missing and stop (for a machine image or a container)
# Environment: IAMRA_TEST_NO_INSTALL=1 reports what is missing instead of installing it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test.sh: %s\n' "$*" >&2; }
step() { printf '\n==> [%ss] %s\n' "$((SECONDS - started))" "$*" >&2; }
started=$SECONDS

# --- 1. System packages ------------------------------------------------------------
# One row per need: a check that succeeds when it is met, then the Debian package and
# the Fedora package that meet it ("-" where Fedora has none we know of).
needs=(
  "command -v cc|gcc|gcc"
  "test -e /usr/include/stdio.h|libc6-dev|glibc-devel"
  "command -v pkg-config|pkg-config|pkgconf-pkg-config"
  "command -v git|git|git"
  "command -v curl|curl|curl"
  "command -v openssl|openssl|openssl"
  "command -v mkfifo|coreutils|coreutils"
  "command -v setsid && command -v setpriv && command -v flock|util-linux|util-linux"
  "command -v script|bsdutils|util-linux"
  "python3 -c 'import venv, ensurepip'|python3-venv|python3"
  # PKCS#11 tests: SoftHSM2 tokens, pkcs11-tool, p11tool, the p11-kit proxy module
  "command -v softhsm2-util|softhsm2|softhsm"
  "command -v pkcs11-tool|opensc|opensc"
  "command -v p11tool|gnutls-bin|gnutls-utils"
  "pkg_lib p11-kit-proxy.so|p11-kit|p11-kit"
  # TPM build (tss-esapi links libtss2) and tests: swtpm, tpm2-tools, the tpm2 OpenSSL provider
  "pkg-config --exists tss2-esys tss2-tctildr tss2-mu 2>/dev/null|libtss2-dev|tpm2-tss-devel"
  "pkg_lib libtss2-tcti-swtpm.so.0|libtss2-tcti-swtpm0|tpm2-tss"
  "command -v swtpm|swtpm|swtpm"
  "command -v swtpm_ioctl && command -v swtpm_setup|swtpm-tools|swtpm-tools"
  "command -v tpm2_getcap && command -v tpm2_encodeobject|tpm2-tools|tpm2-tools"
  "pkg_lib ossl-modules/tpm2.so|tpm2-openssl|tpm2-openssl"
  # Package checks: lintian for the .deb, rpm for the .rpm, systemd-analyze for the units
  "command -v lintian|lintian|-"
  "command -v rpm|rpm|rpm-build"
  "command -v systemd-analyze|systemd|systemd"
)

# A shared library in one of the usual library folders.
pkg_lib() {
  local d
  for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
    [ -e "$d/$1" ] && return 0
  done
  return 1
}

missing_deb=() missing_rpm=()
check_needs() {
  missing_deb=() missing_rpm=()
  local row check deb rpm
  for row in "${needs[@]}"; do
    IFS='|' read -r check deb rpm <<<"$row"
    if ! eval "$check" >/dev/null 2>&1; then
      missing_deb+=("$deb")
      missing_rpm+=("$rpm")
    fi
  done
}

# Runs a command as root: directly when we are root, else through sudo without a prompt.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

can_be_root() { [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; }

no_cargo=
command -v cargo >/dev/null || no_cargo=yes

check_needs
if [ ${#missing_deb[@]} -gt 0 ]; then
  step "system packages missing: ${missing_deb[*]}"
  installed=no
  if [ "${IAMRA_TEST_NO_INSTALL:-}" != 1 ] && can_be_root; then
    if command -v apt-get >/dev/null; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      # Sorted, unique; the Debian names are all known.
      mapfile -t pkgs < <(printf '%s\n' "${missing_deb[@]}" | sort -u)
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
      installed=yes
    elif command -v dnf >/dev/null; then
      mapfile -t pkgs < <(printf '%s\n' "${missing_rpm[@]}" | grep -vx -- - | sort -u)
      [ ${#pkgs[@]} -eq 0 ] || as_root dnf install -y -q "${pkgs[@]}"
      installed=yes
    fi
  fi
  [ "$installed" = yes ] && check_needs
  if [ ${#missing_deb[@]} -gt 0 ]; then
    for i in "${!missing_deb[@]}"; do
      if [ "${missing_rpm[$i]}" = - ]; then
        say "missing: Debian package ${missing_deb[$i]} (no Fedora package known: install its tool by hand)"
      else
        say "missing: Debian package ${missing_deb[$i]} (Fedora: ${missing_rpm[$i]})"
      fi
    done
    [ -z "$no_cargo" ] || say "missing: cargo (install Rust with rustup)"
    say "install the packages above (as root) and run scripts/test.sh again; no test was run"
    exit 1
  fi
fi
if [ -n "$no_cargo" ]; then
  say "missing: cargo (install Rust with rustup, then run scripts/test.sh again); no test was run"
  exit 1
fi

# --- 2. Cargo tools ----------------------------------------------------------------
for tool in cargo-deny cargo-fuzz cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null; then
    step "installing $tool"
    cargo install --locked --quiet "$tool"
  fi
done
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
[ "${1:-}" = --install-only ] && { say "everything the tests need is installed"; exit 0; }

# --- 3. Guardrails -----------------------------------------------------------------
step "cargo fmt --all --check"
cargo fmt --all --check
step "cargo clippy (all targets, all features)"
cargo clippy --locked --all-targets --all-features --quiet -- -D warnings
step "cargo clippy (all targets, default features)"
cargo clippy --locked --all-targets --quiet -- -D warnings
step "cargo clippy + build (library alone: --no-default-features, no CLI dependencies)"
cargo clippy --locked --lib --no-default-features --quiet -- -D warnings
cargo build --locked --lib --no-default-features --quiet
if cargo tree --locked -e normal --no-default-features --prefix none \
  | grep -Eq '^(clap|clap_complete|clap_mangen|rpassword|tracing-subscriber) '; then
  say "the library without default features depends on a CLI-only crate:"
  cargo tree --locked -e normal --no-default-features -i clap 2>/dev/null | head -5 >&2 || true
  exit 1
fi
step "cargo clippy (the test endpoint's tests: examples/iamra-test-endpoint)"
cargo clippy --locked --example iamra-test-endpoint --profile test --quiet -- -D warnings
step "no import cycle between source files (scripts/modgraph.py)"
python3 scripts/modgraph.py >/dev/null || { python3 scripts/modgraph.py | tail -n 5 >&2; exit 1; }
step "cargo doc (library, -D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --lib --all-features --quiet

# --- 4. Tests ----------------------------------------------------------------------
# The default build first: what `cargo install` users get (no TPM).
step "cargo test --locked (default features)"
cargo test --locked
step "cargo test --locked --all-features (the packaged feature set: TPM, aws-sdk)"
cargo test --locked --all-features
# An example, so that `cargo install` leaves it out: its unit tests run only when named.
step "cargo test --locked --example iamra-test-endpoint (the test endpoint's unit tests)"
cargo test --locked --example iamra-test-endpoint
# libcrux-ml-dsa compiles its AVX2 code on every x86-64 build and picks it at run time:
# this machine's CPU never runs the portable code that CPUs without AVX2 get. Its
# ML-DSA tests (libcrux against RustCrypto on keys and signatures, the three key forms)
# run again on a build without the AVX2 code.
step "ML-DSA on CPUs without AVX2 (LIBCRUX_DISABLE_SIMD256=1, the library's key::mldsa tests)"
LIBCRUX_DISABLE_SIMD256=1 cargo test --locked --lib --no-default-features \
  --target-dir target/portable-mldsa --quiet key::mldsa

# --- 5. Supply chain, fuzzing, packages --------------------------------------------
step "cargo deny (scripts/deny.sh)"
scripts/deny.sh
step "fuzzing smoke run (scripts/fuzz-smoke.sh)"
scripts/fuzz-smoke.sh
step "packages (scripts/package.sh, scripts/package-test.sh)"
scripts/package.sh
scripts/package-test.sh

say "all checks passed in $((SECONDS - started)) s"
