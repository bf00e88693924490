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

trap 'printf "[test-pages] screenshots: tests/browser/artifacts/\n"' EXIT
node_suite pages tests/browser
