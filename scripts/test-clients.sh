#!/usr/bin/env bash
# Tests the client SDK (clients/ts) against the real stack: its Node tests (real Redis and the
# real origin binary) and its Chromium test (two tabs refreshing at once). Idempotent: installs
# Debian's chromium if missing (never a browser download), `npm ci` from the lock file, builds the
# origin and the SDK. Ends with one line "clients: N passed, N failed"; exits non-zero on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

log() { printf '[test-clients] %s\n' "$*"; }

# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_packages
ensure_chromium

log "cargo build -p tollgate-origin"
cargo build -q -p tollgate-origin

cd clients/ts
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "npm run build"
npm run --silent build

log "npm test"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
npm test --silent 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
passed=$(sed -En 's/^(ℹ|#) pass ([0-9]+)$/\2/p' "$out" | tail -n 1)
failed=$(sed -En 's/^(ℹ|#) fail ([0-9]+)$/\2/p' "$out" | tail -n 1)
echo "clients: ${passed:-0} passed, ${failed:-0} failed"
if [ "$status" -ne 0 ] || [ "${failed:-1}" != 0 ] || [ "${passed:-0}" = 0 ]; then
  exit 1
fi
