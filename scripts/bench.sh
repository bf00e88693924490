#!/usr/bin/env bash
# Tollgate's benchmark suite (issue 5), one command: builds in release, installs what is missing
# (wrk and redis-server from Debian, the edge toolchain via scripts/build-edge.sh), runs
#   1. micro:  criterion on tollgate-shared (verify, decide, sign) and Argon2id
#   2. origin: the real origin in-process under wrk, with Redis accounting on a private
#              redis-server (round trips, bytes per session, device scaling)
#   3. edge:   the Worker's verify timed in V8, then scripts/bench-edge.sh (the Worker under raw
#              workerd and under wrangler dev, wasm sizes)
# then prints the tables and writes bench/results/latest.json (+ latest.md).
#
# Usage: scripts/bench.sh [--quick] [--no-micro] [--no-origin] [--no-edge]
#   --quick  3 s per load run and one round (about 6 minutes) instead of 10 s and three rounds
#            (about 20 minutes)
#
# Everything runs on loopback; Redis is a private redis-server on a free port, stopped at the end.
# The machine is shared: each load figure carries the load average it was taken at.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RESULTS="$ROOT/bench/results"

QUICK=()
MICRO=1 ORIGIN=1 EDGE=1
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=(--quick) ;;
    --no-micro) MICRO=0 ;;
    --no-origin) ORIGIN=0 ;;
    --no-edge) EDGE=0 ;;
    *) echo "usage: scripts/bench.sh [--quick] [--no-micro] [--no-origin] [--no-edge]" >&2; exit 2 ;;
  esac
done

log() { printf '[bench] %s\n' "$*" >&2; }

# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_deb wrk redis-server gzip

mkdir -p "$RESULTS"
log "load at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

log "building tollgate-bench (release)"
cargo build --release -p tollgate-bench --bins --benches
BENCH="$TARGET/release/tollgate-bench"

if [ "$MICRO" = 1 ]; then
  log "micro: criterion"
  CRITERION_ARGS=()
  [ ${#QUICK[@]} -gt 0 ] && CRITERION_ARGS=(--warm-up-time 1 --measurement-time 2)
  cargo bench -p tollgate-bench --bench core -- "${CRITERION_ARGS[@]}" >&2
fi

PARTS=()
if [ "$ORIGIN" = 1 ]; then
  log "origin: load, round trips, memory, device scaling (log: $RESULTS/origin.log.tmp)"
  "$BENCH" origin "${QUICK[@]}" --out "$RESULTS/origin.json.tmp" --log "$RESULTS/origin.log.tmp"
  PARTS+=(--origin "$RESULTS/origin.json.tmp")
fi

if [ "$EDGE" = 1 ]; then
  if scripts/build-edge.sh >&2; then
    log "edge: raw workerd and wrangler dev (scripts/bench-edge.sh)"
    if scripts/bench-edge.sh "${QUICK[@]}" >&2; then
      PARTS+=(--workerd "$RESULTS/edge-workerd.json.tmp")
    else
      log "edge: scripts/bench-edge.sh failed; the edge stays unmeasured"
    fi
  else
    log "edge: scripts/build-edge.sh failed; the edge stays unmeasured"
  fi
fi

log "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" report --criterion "$TARGET/criterion" "${PARTS[@]}" \
  --out "$RESULTS/latest.json" --markdown "$RESULTS/latest.md" \
  --command "scripts/bench.sh $*" "${QUICK[@]}"
log "wrote $RESULTS/latest.json and $RESULTS/latest.md"
