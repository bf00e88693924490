#!/usr/bin/env bash
# The edge Worker's own cost (issue 8 §6): the Rust Worker under raw workerd, beside a bare
# pass-through Worker (the floor), the same pass-through in workers-rs (bench/wasm-bare: the floor
# of any workers-rs Worker) and the same job in JavaScript (jose + @upstash/redis), all in
# front of the same echo upstream, REST bridge and origin; then the Rust Worker under
# `wrangler dev`. Prints a Markdown table (medians over rounds: req/s, p50/p99, workerd CPU per
# request and above the floor) and the code sizes, and writes every run to
# bench/results/edge-workerd.json.tmp (git-ignored), the part scripts/bench.sh passes to
# `tollgate-bench report --workerd`.
#
# Usage: [BENCH_PROFILE=dev] scripts/bench-edge.sh [--quick] [--before DIR] [--no-wrangler]
#                                                 [--routes LIST]
#   --before DIR  also measure an older worker-build bundle (index.js + index_bg.wasm, and
#                 entry.mjs if it has one), e.g. one built from an earlier commit, as
#                 "rust-before" beside "rust" (edge/build/)
#   --quick       2 s per run and one round instead of 5 s and three rounds
#   --routes LIST only these routes, comma-separated (health, protected, forged)
#
# Installs what it needs, idempotently: wrk and redis-server (Debian), the edge toolchain and
# bundle (scripts/build-edge.sh; workerd is the binary wrangler's npm package ships), and
# bench/edge-js's npm packages (exact versions from its package-lock.json).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

SECONDS_PER_RUN=5 ROUNDS=3 BEFORE="" WRANGLER_FLAGS=() ROUTE_FLAGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SECONDS_PER_RUN=2 ROUNDS=1 ;;
    --before) BEFORE="$2"; shift ;;
    --no-wrangler) WRANGLER_FLAGS=(--no-wrangler) ;;
    --routes) ROUTE_FLAGS=(--routes "$2"); shift ;;
    *) echo "usage: scripts/bench-edge.sh [--quick] [--before DIR] [--no-wrangler] [--routes LIST]" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[bench-edge] %s\n' "$*" >&2; }

ensure_packages
ensure_deb wrk
ensure_redis
scripts/build-edge.sh >&2
scripts/build-edge.sh --bare >&2
# shellcheck source=/dev/null
source .tools/env.sh
(cd bench/edge-js && { [ -d node_modules/jose ] && [ -d node_modules/@upstash/redis ] ||
  npm ci --no-audit --no-fund >&2; })

NODE_MODULES="$ROOT/.tools/node/node_modules"
WORKERD="$(find "$NODE_MODULES/@cloudflare" -path '*workerd-linux-64/bin/workerd' -type f | head -1)"
[ -x "$WORKERD" ] || { log "ERROR: workerd binary not found under $NODE_MODULES/@cloudflare"; exit 1; }
ESBUILD="${ESBUILD_BIN:-$NODE_MODULES/esbuild/bin/esbuild}"
log "workerd $("$WORKERD" --version 2>&1 | head -1), esbuild $("$ESBUILD" --version)"

# BENCH_PROFILE=dev skips the release build of the harness (origin, bridge, echo run in-process):
# the Workers' CPU figures do not change, their latencies include a slower upstream.
PROFILE="${BENCH_PROFILE:-release}"
cargo build -q --profile "$PROFILE" -p tollgate-bench --bin tollgate-bench
BIN_DIR="$TARGET/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
RUST=(--rust "rust=$ROOT/edge/build")
[ -n "$BEFORE" ] && RUST+=(--rust "rust-before=$BEFORE")
mkdir -p bench/results
log "load at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$BIN_DIR/tollgate-bench" workerd --root "$ROOT" --workerd "$WORKERD" --esbuild "$ESBUILD" \
  "${RUST[@]}" --bare "bare-rs=$ROOT/bench/wasm-bare/build" "${WRANGLER_FLAGS[@]}" "${ROUTE_FLAGS[@]}" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS" \
  --out bench/results/edge-workerd.json.tmp
