#!/usr/bin/env bash
# What the Prometheus metrics cost on the hot path: the release origin under wrk on
# `GET /api/users/me` (one Redis MGET, memoised signature and profile), once with METRICS_ADDR
# unset (no recorder: the middleware returns at once) and once with it set (every request counted
# and timed, every Redis call timed), in interleaved rounds so drift on this shared machine
# falls on both. Prints requests/s and p99 per round and the medians.
#
# Usage: scripts/bench-metrics.sh [seconds per run, default 10] [rounds, default 3]
# Uses the Redis on 127.0.0.1:6379 (started if none answers) under a fresh key prefix.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh
SECS="${1:-10}"
ROUNDS="${2:-3}"
CONNS="${CONNS:-64}"

ensure_packages
ensure_redis
ensure_deb wrk
cargo build -q --release -p tollgate-origin
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate-origin"

WORK="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME METRICS(0|1): starts an origin, logs a user in, sets PORT_<NAME> and TOKEN_<NAME>.
start() {
  local name="$1" metrics="$2" port mport id
  port="$(free_port)"; mport="$(free_port)"; id="bench-metrics-$name-$$"
  mkdir -p "$WORK/$name"
  (
    cd "$WORK/$name"
    export BIND_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite://$WORK/$name/db.sqlite?mode=rwc"
    export KEYS_FILE="$WORK/$name/keys.json" REDIS_URL="redis://127.0.0.1:6379"
    export REDIS_KEY_PREFIX="$id:" CLEANUP_INTERVAL_SECS=0 RUST_LOG=warn
    if [ "$metrics" = 1 ]; then export METRICS_ADDR="127.0.0.1:$mport"; else unset METRICS_ADDR; fi
    exec "$BIN" serve
  ) >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null && break
    sleep 0.1
  done
  local email="$id@example.com" body
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery\"}" \
    "http://127.0.0.1:$port/api/users/register"
  body="$(curl -fsS -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery\"}" \
    "http://127.0.0.1:$port/api/users/login")"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "MPORT_$name" '%s' "$mport"
  printf -v "TOKEN_$name" '%s' "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["access_token"])' <<<"$body")"
}

start off 0
start on 1
curl -fsS -o /dev/null "http://127.0.0.1:$MPORT_on/metrics"
if curl -fsS -o /dev/null "http://127.0.0.1:$MPORT_off/metrics" 2>/dev/null; then
  echo "the origin without METRICS_ADDR serves metrics" >&2; exit 1
fi

# run NAME: one wrk run; prints "rps p99_ms".
run() {
  local port token
  port="PORT_$1"; token="TOKEN_$1"
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -H "Authorization: Bearer ${!token}" \
    "http://127.0.0.1:${!port}/api/users/me" >"$WORK/wrk.txt"
  if grep -q 'Non-2xx' "$WORK/wrk.txt"; then cat "$WORK/wrk.txt" >&2; exit 1; fi
  python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
print(f"{rps:.0f} {p99:.2f}")
PY
}

# Warm both up (connections, memo, allocator).
SECS_SAVED="$SECS"; SECS=2; run off >/dev/null; run on >/dev/null; SECS="$SECS_SAVED"

echo "GET /api/users/me, wrk -c$CONNS, ${SECS}s per run, load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-6s %-8s %10s %9s\n' round metrics 'req/s' 'p99 ms'
off=(); on=()
for r in $(seq "$ROUNDS"); do
  read -r rps p99 < <(run off); off+=("$rps"); printf '%-6s %-8s %10s %9s\n' "$r" off "$rps" "$p99"
  read -r rps p99 < <(run on); on+=("$rps"); printf '%-6s %-8s %10s %9s\n' "$r" on "$rps" "$p99"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = statistics.median(map(float, sys.argv[1].split()))
on = statistics.median(map(float, sys.argv[2].split()))
print(f"median req/s: off {off:.0f}, on {on:.0f} ({(on - off) / off * 100:+.1f} %)")
PY
samples="$(curl -fsS "http://127.0.0.1:$MPORT_on/metrics" | grep -c '^tollgate_' || true)"
echo "the metrics origin exposes $samples tollgate_ series lines"
