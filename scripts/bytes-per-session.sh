#!/usr/bin/env bash
# Redis bytes per active session, the seed's layout against Tollgate's, on one private
# redis-server (issue 13 §4). Prints the Markdown table BENCHMARKS.md quotes.
#
# Usage: scripts/bytes-per-session.sh [--users N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_packages
cargo build -q --release -p tollgate-bench --bin tollgate-bytes-per-session
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate-bytes-per-session" "$@"
