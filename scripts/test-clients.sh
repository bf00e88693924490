#!/usr/bin/env bash
# Tests the client SDK (clients/ts) against the real stack: its Node tests (real Redis and the
# real origin binary) and its Chromium test (two tabs refreshing at once). Idempotent: installs
# Debian's chromium if missing (never a browser download), `npm ci` from the lock file, builds the
# origin and the SDK. Ends with one line "clients: N passed, N failed"; exits non-zero on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/services.sh
source scripts/services.sh
node_suite clients clients/ts build
