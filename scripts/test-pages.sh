#!/usr/bin/env bash
# Tests the origin's pages (the devices page and the admin page) in Debian's Chromium through
# playwright-core, against the real origin binary with a private redis-server and SQLite
# (tests/browser). Idempotent: installs chromium and redis-server if missing (never a browser
# download), `npm ci` from the lock file, builds the origin. Screenshots of both pages go to
# tests/browser/artifacts/. Ends with one line "pages: N passed, N failed"; exits non-zero on
# failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh

log() { printf '[test-pages] %s\n' "$*"; }

ensure_packages
ensure_chromium

log "cargo build -p tollgate-origin"
cargo build -q -p tollgate-origin

cd tests/browser
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error

log "npm test"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
npm test --silent 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
passed=$(sed -En 's/^(ℹ|#) pass ([0-9]+)$/\2/p' "$out" | tail -n 1)
failed=$(sed -En 's/^(ℹ|#) fail ([0-9]+)$/\2/p' "$out" | tail -n 1)
echo "pages: ${passed:-0} passed, ${failed:-0} failed"
log "screenshots: tests/browser/artifacts/"
if [ "$status" -ne 0 ] || [ "${failed:-1}" != 0 ] || [ "${passed:-0}" = 0 ]; then
  exit 1
fi
