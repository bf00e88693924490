#!/usr/bin/env bash
# Runs the tests of the JavaScript upstream library (clients/upstream-js, node:test): its
# cross-implementation vectors from tollgate-shared and real Express and Hono apps on loopback.
# Installs the pinned dependencies first (`npm ci`, skipped when package-lock.json has not changed
# since the last install). Ends with "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/clients/upstream-js"

command -v node >/dev/null || { echo "[upstream-js] ERROR: node not found" >&2; exit 1; }
stamp=node_modules/.tollgate-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[upstream-js] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

echo "[upstream-js] node --test"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
node --test --test-reporter=tap test/ >"$out" 2>&1 || status=$?
# Failures in full; passes as one line each.
grep -E '^(not )?ok |^  (error|expected|actual|location):' "$out" || true
passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out")"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out")"
if [ -z "$passed" ] || [ -z "$failed" ]; then
  cat "$out"
  echo "upstream-js: 0 passed, 1 failed"
  exit 1
fi
echo "upstream-js: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
