#!/usr/bin/env bash
# Fuzzes the real origin binary against its own OpenAPI document with schemathesis (from PyPI,
# pinned, in a project venv under .tools): a private redis-server and a temporary SQLite database,
# an admin and a second user registered for the bearer routes, an introspection client for
# /oauth/introspect (scripts/schemathesis_hooks.py). Checks: no 5xx, every status documented,
# every body matching its schema. Bounded: OPENAPI_EXAMPLES cases per operation (default 25).
# Idempotent; cleans up after itself. Ends with "openapi: N passed, N failed".
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SCHEMATHESIS_VERSION=4.32.5
VENV="$ROOT/.tools/schemathesis-$SCHEMATHESIS_VERSION"
EXAMPLES="${OPENAPI_EXAMPLES:-25}"
PASSWORD="schemathesis horse battery"

log() { printf '[test-openapi] %s\n' "$*"; }

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v redis-server >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  log "installing redis-server / python3-venv from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server python3-venv
fi
if [ ! -x "$VENV/bin/schemathesis" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into ${VENV#"$ROOT"/}"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

log "cargo build -p tollgate-origin"
cargo build -q -p tollgate-origin
BIN="$ROOT/target/debug/tollgate-origin"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

ORIGIN_PORT="$(free_port)"
BASE="http://127.0.0.1:$ORIGIN_PORT"
CLIENT_ID=schemathesis
CLIENT="$("$BIN" introspection-client "$CLIENT_ID")"
CLIENT_SECRET="$(sed -n 's/^client secret: //p' <<<"$CLIENT")"
export DATABASE_URL="sqlite://$WORK/origin.db?mode=rwc"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export KEYS_FILE="$WORK/keys.json"
export BIND_ADDR="127.0.0.1:$ORIGIN_PORT"
export CLEANUP_INTERVAL_SECS=0
export INTROSPECTION_CLIENTS="$(sed -n 's/^INTROSPECTION_CLIENTS entry: //p' <<<"$CLIENT")"
# Failed logins are what the fuzzer sends most; at the default limits its own logins would get
# 429 too. Registration keeps its default limit (it bounds the Argon2 work of the run).
export LOGIN_RATE_LIMIT_PER_IP=1000000 LOGIN_RATE_LIMIT_PER_EMAIL=1000000
export LOGIN_FAILURE_CAP_PER_EMAIL=1000000
"$BIN" serve >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -fsS "$BASE/health" >/dev/null 2>&1 && break; sleep 0.05; done

register() {
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" "$BASE/api/users/register"
}
ADMIN_EMAIL="admin@schemathesis.test"
LOGOUT_EMAIL="logout@schemathesis.test"
register "$ADMIN_EMAIL"
register "$LOGOUT_EMAIL"
"$BIN" user promote "$ADMIN_EMAIL" >/dev/null

# Kept after the run (target/ is ignored by git): every request and answer, and the JUnit file.
REPORTS="$ROOT/target/schemathesis"
rm -rf "$REPORTS"
log "schemathesis: up to $EXAMPLES cases per operation against $BASE"
start=$(date +%s)
set +e
TOLLGATE_URL="$BASE" TOLLGATE_PASSWORD="$PASSWORD" TOLLGATE_ADMIN_EMAIL="$ADMIN_EMAIL" \
  TOLLGATE_LOGOUT_EMAIL="$LOGOUT_EMAIL" TOLLGATE_CLIENT_ID="$CLIENT_ID" \
  TOLLGATE_CLIENT_SECRET="$CLIENT_SECRET" PYTHONPATH="$ROOT/scripts" \
  SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-examples "$EXAMPLES" --seed 7 --workers 2 --no-color \
  --report junit,har --report-dir "$REPORTS" 2>&1 | tee "$WORK/schemathesis.log"
status=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))
if grep -q ' 500 \|panicked\|internal error' "$WORK/origin.log"; then
  log "the origin logged an internal error:"; grep -m 5 ' 500 \|panicked\|internal error' "$WORK/origin.log"
  status=1
fi
# Schemathesis's summary: "Test cases:" then "N generated, N passed[, N failed …]".
summary="$(grep -A1 '^Test cases:' "$WORK/schemathesis.log" | tail -n 1 | sed 's/^ *//')"
cases=$(sed -En 's/^([0-9]+) generated.*/\1/p' <<<"$summary")
passed=$(sed -En 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(( ${cases:-0} - ${passed:-0} ))
log "${cases:-0} test cases in ${elapsed} s (${summary:-no summary})"
cp "$WORK/origin.log" "$REPORTS/origin.log"
if [ "$status" -ne 0 ] || [ -z "$cases" ]; then
  log "requests and answers: ${REPORTS#"$ROOT"/}/ (HAR), the origin's log: ${REPORTS#"$ROOT"/}/origin.log"
  echo "openapi: ${passed:-0} passed, $(( failed > 0 ? failed : 1 )) failed"
  exit 1
fi
echo "openapi: $passed passed, 0 failed"
