#!/usr/bin/env bash
# Supply-chain check: `cargo deny --offline check` (licences, bans, sources,
# advisories; deny.toml) against the offline RustSec advisory database.
#
# CI has no route to the database's git host, so the copy checked out beside the
# repository (../shared/advisory-db, its SOURCE file names the commit) is used, or
# the folder named by ADVISORY_DB. cargo-deny 0.20 reads a database only as a git
# repository at <db-path>/advisory-db-3157b0e258782691 (the name is derived from the
# database URL in deny.toml), so the folder is copied into a temporary db-path, made
# a git repository with one commit, and cargo-deny runs with `--offline` (which
# disables every fetch: crates, advisory databases).
#
# Usage: scripts/deny.sh [extra `cargo deny check` arguments, e.g. `advisories`]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
db=${ADVISORY_DB:-$root/../shared/advisory-db}
# A clone made elsewhere on this machine (a CI work folder) still finds the workplace copy.
[ -d "$db/crates" ] || [ -n "${ADVISORY_DB:-}" ] || db=/work/shared/advisory-db
if [ ! -d "$db/crates" ]; then
  echo "deny.sh: no advisory database at $db (expected a checkout of rustsec/advisory-db with a crates/ folder); set ADVISORY_DB" >&2
  exit 1
fi
if ! command -v cargo-deny >/dev/null; then
  echo "deny.sh: cargo-deny is not installed; run: cargo install --locked cargo-deny" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy="$work/advisory-db-3157b0e258782691"
cp -R "$db" "$copy"
rm -rf "$copy/.git"
(
  cd "$copy"
  export GIT_AUTHOR_NAME=iamra GIT_AUTHOR_EMAIL=iamra@localhost \
    GIT_COMMITTER_NAME=iamra GIT_COMMITTER_EMAIL=iamra@localhost \
    GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
  git init -q -b main .
  git add -A
  git -c commit.gpgsign=false commit -q -m "advisory-db $(head -n1 SOURCE 2>/dev/null || echo copy)"
)
echo "deny.sh: advisory database $(head -n1 "$db/SOURCE" 2>/dev/null || echo "(no SOURCE file)")" >&2
export IAMRA_ADVISORY_DBS="$work"
# `--offline` also stops cargo-deny's `cargo metadata` from downloading crates, and it
# reads the crates of every target (Windows, wasm), which a Linux build never fetched:
# fetch them all from the registry first.
cargo fetch --locked --quiet
cargo deny --offline --locked ${DENY_LOG_LEVEL:+--log-level "$DENY_LOG_LEVEL"} check --hide-inclusion-graph "$@"
