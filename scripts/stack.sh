#!/usr/bin/env bash
# Runs the whole stack locally (README's first command): Redis (if none answers), the Upstash
# REST bridge, the origin (SQLite), the example notes API, and the edge Worker in workerd via
# `wrangler dev` in front of both. Installs what is missing first, prints the URLs, and stops
# everything on Ctrl-C.
#
# Ports: EDGE_PORT (8787), ORIGIN_PORT (8080), BRIDGE_PORT (8079), NOTES_PORT (8090), and the
# Prometheus listeners ORIGIN_METRICS_PORT (9464) and BRIDGE_METRICS_PORT (9465), on loopback
# only. State lives in .run/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh

EDGE_PORT="${EDGE_PORT:-8787}"
ORIGIN_PORT="${ORIGIN_PORT:-8080}"
BRIDGE_PORT="${BRIDGE_PORT:-8079}"
NOTES_PORT="${NOTES_PORT:-8090}"
ORIGIN_METRICS_PORT="${ORIGIN_METRICS_PORT:-9464}"
BRIDGE_METRICS_PORT="${BRIDGE_METRICS_PORT:-9465}"
RUN="$ROOT/.run"
mkdir -p "$RUN"

ensure_packages
ensure_deb python3
ensure_redis
scripts/build-edge.sh
echo "[stack] building origin and bridge (release)"
cargo build -q --release -p tollgate-origin -p tollgate-rest-bridge -p tollgate-notes-api
# shellcheck source=/dev/null
source .tools/env.sh

# Local bridge tokens, made once and kept (git-ignored): the full one for the operator, and the
# edge's, which runs only GET and MGET, so a leaked Worker secret cannot un-revoke a token.
umask 077
for name in bridge-token bridge-edge-token; do
  [ -s "$RUN/$name" ] || head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$RUN/$name"
done
TOKEN="$(cat "$RUN/bridge-token")"
EDGE_TOKEN="$(cat "$RUN/bridge-edge-token")"
# The edge's assertion key, made once and kept: the Worker signs with it, the origin and the
# notes API verify with its public half.
[ -s "$RUN/edge-signing-keys.json" ] ||
  target/release/tollgate-origin edge-key generate --kid edge-local-1 >"$RUN/edge-signing-keys.json"
EDGE_SIGNING_KEYS="$(cat "$RUN/edge-signing-keys.json")"
EDGE_JWKS="$(target/release/tollgate-origin edge-key public <"$RUN/edge-signing-keys.json")"

export DATABASE_URL="${DATABASE_URL:-sqlite://$RUN/tollgate.db?mode=rwc}"
export KEYS_FILE="${KEYS_FILE:-$RUN/keys.json}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export REDIS_KEY_PREFIX="${REDIS_KEY_PREFIX:-}"
export BIND_ADDR="127.0.0.1:$ORIGIN_PORT"
export METRICS_ADDR="127.0.0.1:$ORIGIN_METRICS_PORT"
# The origin trusts the edge's signed assertion (and so needs no Redis call for a request the
# edge let through); a client address comes from the assertion, or from X-Forwarded-For only
# when the peer is the loopback proxy.
export EDGE_JWKS
export TRUSTED_PROXIES=127.0.0.1/32

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo "[stack] stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap cleanup EXIT INT TERM

wait_http() { # url name
  for _ in $(seq 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "[stack] ERROR: $2 did not come up at $1 (see .run/$2.log)"; exit 1
}

# Tokens by environment only (argv shows in `ps`); the bridge refuses them as flags.
UPSTASH_REDIS_REST_TOKEN="$TOKEN" BRIDGE_SCOPED_TOKENS="HMGET=$EDGE_TOKEN" \
  BRIDGE_METRICS_ADDR="127.0.0.1:$BRIDGE_METRICS_PORT" \
  target/release/tollgate-rest-bridge --bind "127.0.0.1:$BRIDGE_PORT" >"$RUN/bridge.log" 2>&1 &
pids+=($!)
target/release/tollgate-origin migrate >/dev/null
JWKS="$(target/release/tollgate-origin keys jwks)"
target/release/tollgate-origin serve >"$RUN/origin.log" 2>&1 &
pids+=($!)
BIND_ADDR="127.0.0.1:$NOTES_PORT" DATABASE_URL="sqlite://$RUN/notes.db?mode=rwc" \
  EDGE_JWKS="$EDGE_JWKS" target/release/tollgate-notes-api >"$RUN/notes.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/ready" origin
wait_http "http://127.0.0.1:$ORIGIN_METRICS_PORT/metrics" origin
wait_http "http://127.0.0.1:$BRIDGE_METRICS_PORT/metrics" bridge
wait_http "http://127.0.0.1:$NOTES_PORT/health" notes

# The route table: wrangler.toml's (the origin's own routes, and /api/notes on the notes API),
# its upstreams on this machine's ports; an upstream it names that runs nowhere here fails.
ROUTES=$(python3 - "$ORIGIN_PORT" "$NOTES_PORT" <<'PY'
import json, sys, tomllib
table = tomllib.load(open("wrangler.toml", "rb"))["vars"]["TOLLGATE_ROUTES"]
ports = {"origin": sys.argv[1], "notes": sys.argv[2]}
table["upstreams"] = {name: {"url": f"http://127.0.0.1:{ports[name]}"} for name in table["upstreams"]}
print(json.dumps(table))
PY
)

# Secrets for wrangler dev come from a git-ignored env file.
{
  echo "UPSTASH_REDIS_REST_TOKEN=$EDGE_TOKEN"
  echo "TOLLGATE_JWKS=$JWKS"
  echo "EDGE_SIGNING_KEYS=$EDGE_SIGNING_KEYS"
  [ -n "${JWT_SECRET:-}" ] && echo "JWT_SECRET=$JWT_SECRET"
} >"$RUN/edge.vars"
"$WRANGLER" dev --ip 127.0.0.1 --port "$EDGE_PORT" --env-file "$RUN/edge.vars" \
  --persist-to "$RUN/wrangler-state" --log-level warn \
  --var "TOLLGATE_ROUTES:$(echo "$ROUTES" | tr -d '\n')" \
  --var "JWKS_URL:http://127.0.0.1:$ORIGIN_PORT/.well-known/jwks.json" \
  --var "ALLOW_INSECURE_HTTP:true" \
  --var "UPSTASH_REDIS_REST_URL:http://127.0.0.1:$BRIDGE_PORT" \
  --var "REDIS_KEY_PREFIX:$REDIS_KEY_PREFIX" \
  >"$RUN/edge.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$EDGE_PORT/health" edge

cat <<MSG

Tollgate is running:
  edge (use this)  http://127.0.0.1:$EDGE_PORT
  origin           http://127.0.0.1:$ORIGIN_PORT
  notes API        http://127.0.0.1:$NOTES_PORT  (behind the edge at /api/notes)
  REST bridge      http://127.0.0.1:$BRIDGE_PORT  (full token in .run/bridge-token; the edge's, GET/MGET only, in .run/bridge-edge-token)
  redis            redis://127.0.0.1:6379
  metrics          http://127.0.0.1:$ORIGIN_METRICS_PORT/metrics (origin), http://127.0.0.1:$BRIDGE_METRICS_PORT/metrics (bridge)
Logs in .run/*.log. Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "[stack] a service exited; see .run/*.log"
