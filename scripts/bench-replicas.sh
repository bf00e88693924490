#!/usr/bin/env bash
# The revocation window with read replicas (issue 13): a real redis-server replica behind an
# injected delay of 0, 50, 100 and 200 ms each way, the REST bridge reading from it as an Upstash
# read region, and the window in which a revoked token is still accepted on that read path after
# the logout answered — without and with REDIS_WAIT_REPLICAS — plus the strict route's read cost.
# Prints the Markdown table BENCHMARKS.md quotes.
#
# Usage: scripts/bench-replicas.sh [--samples N] [--wait-samples N] [--delays 0,50,100,200]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_packages
cargo build -q --release -p tollgate-bench --bin tollgate-replica-window
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate-replica-window" "$@"
