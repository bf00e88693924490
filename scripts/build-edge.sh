#!/usr/bin/env bash
# Build the edge Worker bundle that wrangler.toml serves: worker-build's edge/build/index.js +
# index_bg.wasm, and edge/entry.mjs (the JS entry that forwards requests itself where it can) copied next
# to them as edge/build/entry.mjs, wrangler's `main`.
#
# Installs/validates the offline toolchain first (scripts/edge-tools.sh, idempotent), then runs
# `worker-build --release` in edge/ with a size-first release profile. Idempotent and fast when
# nothing changed: the inputs are hashed and the build is skipped when the bundle matches them.
# Prints the wasm's raw and gzipped size.
#
# Usage: scripts/build-edge.sh [--force] [--bare]
#   --bare  build bench/wasm-bare (a bare workers-rs pass-through, the bench's floor for any
#           workers-rs Worker) into bench/wasm-bare/build instead, with the same profile and
#           the workspace's target directory
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FORCE=false CRATE="$ROOT/edge" SOURCES=(edge/src shared/src) ENTRY=edge/entry.mjs
MANIFESTS=(Cargo.toml Cargo.lock edge/Cargo.toml shared/Cargo.toml)
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=true ;;
    --bare)
      CRATE="$ROOT/bench/wasm-bare" SOURCES=(bench/wasm-bare/src) ENTRY=""
      MANIFESTS=(Cargo.toml bench/wasm-bare/Cargo.toml bench/wasm-bare/Cargo.lock)
      # Its own workspace, but the edge's target directory: the shared dependencies are built once.
      export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
      ;;
    *) echo "usage: scripts/build-edge.sh [--force] [--bare]" >&2; exit 2 ;;
  esac
done
OUT="$CRATE/build"
STAMP="$OUT/.inputs.sha256"

log() { printf '[build-edge] %s\n' "$*"; }

"$ROOT/scripts/edge-tools.sh" | sed 's/^/  /'
# shellcheck source=/dev/null
source "$ROOT/.tools/env.sh"

# Everything that can change the bundle: our sources, the shared crate, the lock file, the root
# manifest (profiles, workspace deps), this script (flags) and the tool versions.
inputs_hash() {
  {
    (cd "$ROOT" && find "${SOURCES[@]}" -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum)
    (cd "$ROOT" && sha256sum "${MANIFESTS[@]}" ${ENTRY:+"$ENTRY"} scripts/build-edge.sh)
    worker-build --version
    "$WASM_BINDGEN_BIN" --version
    rustc --version
  } | sha256sum | cut -d' ' -f1
}

report() {
  local wasm="$OUT/index_bg.wasm"
  [ -f "$wasm" ] || { log "ERROR: $wasm missing after the build"; exit 1; }
  local raw gz
  raw=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  log "bundle: $OUT/${ENTRY:+entry.mjs + }index.js"
  log "wasm: $raw bytes raw, $gz bytes gzipped ($((gz / 1024)) KiB)"
}

HASH="$(inputs_hash)"
if ! $FORCE && [ -f "$OUT/index.js" ] && [ -f "$OUT/index_bg.wasm" ] &&
   { [ -z "$ENTRY" ] || [ -f "$OUT/entry.mjs" ]; } &&
   [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  log "up to date (inputs unchanged; --force to rebuild)"
  # Inputs may carry newer mtimes with the same content (a checkout, a revert): the bundle is
  # current, and saying so in its mtime is what tests/src/edge.rs checks.
  touch "$OUT/index.js" "$OUT/index_bg.wasm" ${ENTRY:+"$OUT/entry.mjs"}
  report
  exit 0
fi

# Size over speed for the Worker only (opt-level z: 3% smaller than s, with no CPU cost the bench
# could see; the wasm is mostly glue around platform calls): these override the workspace's
# release profile for this cargo invocation alone (the origin keeps its own). `panic = "abort"`
# is wasm32-unknown-unknown's default already.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_DEBUG=false
# No symbol names in the wasm: its name section alone was 31 KB of the gzipped bundle. (A panic
# still logs its message; wasm stack traces show function indices instead of names.)
export CARGO_PROFILE_RELEASE_STRIP=symbols

log "worker-build --release in ${CRATE#"$ROOT"/}/"
(cd "$CRATE" && worker-build --release)
# After worker-build, which replaces the whole output directory.
[ -z "$ENTRY" ] || cp "$ROOT/$ENTRY" "$OUT/entry.mjs"
echo "$HASH" >"$STAMP"
report
