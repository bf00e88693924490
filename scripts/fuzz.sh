#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) and fails on any crash.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain (rustup); installs cargo-fuzz into the git-ignored .tools/cargo on
# first use. Each target starts from its committed seeds (fuzz/corpus/<target>/, read-only here)
# plus what earlier runs found (fuzz/target/corpus/<target>/, git-ignored, where new inputs go).
# A crash leaves its input in fuzz/artifacts/<target>/; turn it into a regression test in shared/
# or bridge/ (see SECURITY.md), then fix it. Set FUZZ_SANITIZER=none for more execs per second.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_TARGET="${1:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
TARGETS=(jwt_verify decide upstash_replies bridge_command json_reader)
TOOLS="$ROOT/.tools/cargo"
export PATH="$TOOLS/bin:$PATH"

log() { printf '[fuzz] %s\n' "$*"; }

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  log "ERROR: the nightly toolchain is missing (rustup toolchain install nightly)"
  exit 1
fi
# The machine-wide cache scripts/edge-tools.sh keeps compiled tools in (a fresh clone on a
# machine that built cargo-fuzz once copies it instead of compiling it again).
CACHE="${TOLLGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-tools}"
if ! command -v cargo-fuzz >/dev/null && [ -x "$CACHE/bin/cargo-fuzz" ]; then
  mkdir -p "$TOOLS/bin" && cp -p "$CACHE/bin/cargo-fuzz" "$TOOLS/bin/cargo-fuzz"
fi
if ! command -v cargo-fuzz >/dev/null; then
  log "installing cargo-fuzz into $TOOLS"
  cargo install cargo-fuzz --locked --root "$TOOLS"
  mkdir -p "$CACHE/bin" 2>/dev/null && cp -p "$TOOLS/bin/cargo-fuzz" "$CACHE/bin/" 2>/dev/null || true
fi

log "building ${TARGETS[*]} (nightly, sanitizer: $SANITIZER, debug assertions on)"
cargo +nightly fuzz build --fuzz-dir fuzz -s "$SANITIZER" -a

LOGS="$ROOT/fuzz/target/logs"
mkdir -p "$LOGS"
summary=()
failed=()
for target in "${TARGETS[@]}"; do
  work="fuzz/target/corpus/$target"
  mkdir -p "$work" "fuzz/corpus/$target"
  log "$target: ${SECONDS_PER_TARGET}s"
  status=0
  cargo +nightly fuzz run --fuzz-dir fuzz -s "$SANITIZER" -a "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$LOGS/$target.log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOGS/$target.log" | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$LOGS/$target.log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$LOGS/$target.log" | tail -n 1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  summary+=("$(printf '%-16s %10s execs %8s exec/s  cov %6s  ft %6s  corpus %5s' \
    "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    log "$target FAILED (exit $status); last lines of $LOGS/$target.log:"
    tail -n 40 "$LOGS/$target.log"
  fi
done

log "summary (${SECONDS_PER_TARGET}s each; cov = edges covered, ft = features):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  log "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
log "no crashes"
