#!/usr/bin/env bash
# Install, into the project-local (git-ignored) folder .tools/, everything needed to build and
# serve the workers-rs Worker offline: the wasm32 target, worker-build, a wasm-bindgen-cli that
# matches Cargo.lock, and (from npm) wrangler, binaryen (wasm-opt) and @upstash/redis.
# Idempotent: a second run with everything in place takes a few seconds.
# Afterwards: `source .tools/env.sh` (also printed at the end).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
CARGO_ROOT="$TOOLS/cargo"
NODE_DIR="$TOOLS/node"

WORKER_BUILD_VERSION="0.8.7"
# wasm-bindgen that `worker = "=0.8.7"` resolves to; overridden by Cargo.lock when it has one.
DEFAULT_WASM_BINDGEN_VERSION="0.2.130"
WRANGLER_VERSION="4.86.0" # last wrangler that accepts Node 20 (newer ones need Node >= 22.12)

log() { printf '[edge-tools] %s\n' "$*"; }
die() { printf '[edge-tools] ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found"
command -v rustup >/dev/null || die "rustup not found"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

mkdir -p "$CARGO_ROOT" "$NODE_DIR"

# Compiled tools are also kept in a machine-wide cache (outside the repo), so a fresh clone on a
# machine that built them once — CI runs in one — copies them in seconds instead of compiling
# for minutes. A cold machine simply installs them from crates.io below.
CACHE="${TOLLGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-tools}"
restore_from_cache() { # binary name
  if [ ! -x "$CARGO_ROOT/bin/$1" ] && [ -x "$CACHE/bin/$1" ]; then
    mkdir -p "$CARGO_ROOT/bin" && cp -p "$CACHE/bin/$1" "$CARGO_ROOT/bin/$1"
  fi
}
save_to_cache() { # binary name
  mkdir -p "$CACHE/bin" 2>/dev/null && cp -p "$CARGO_ROOT/bin/$1" "$CACHE/bin/$1" 2>/dev/null || true
}
restore_from_cache worker-build
restore_from_cache wasm-bindgen

# 1. wasm32 target -------------------------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rust target wasm32-unknown-unknown: present"
else
  log "rust target wasm32-unknown-unknown: installing"
  rustup target add wasm32-unknown-unknown
fi

# 2. worker-build --------------------------------------------------------------------------
WB="$CARGO_ROOT/bin/worker-build"
if [ -x "$WB" ] && "$WB" --version 2>/dev/null | grep -qw "$WORKER_BUILD_VERSION"; then
  log "worker-build $WORKER_BUILD_VERSION: present"
else
  log "worker-build $WORKER_BUILD_VERSION: installing (several minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --root "$CARGO_ROOT" --force
  save_to_cache worker-build
fi

# 3. wasm-bindgen-cli at exactly the Cargo.lock version --------------------------------------
WBG_VERSION=""
if [ -f "$ROOT/Cargo.lock" ]; then
  WBG_VERSION="$(awk '
    /^name = "wasm-bindgen"$/ { hit = 1; next }
    hit && /^version = / { gsub(/"/, "", $3); print $3; exit }
    /^\[\[package\]\]/ { hit = 0 }' "$ROOT/Cargo.lock")"
fi
if [ -n "$WBG_VERSION" ]; then
  log "wasm-bindgen version from Cargo.lock: $WBG_VERSION"
else
  WBG_VERSION="$DEFAULT_WASM_BINDGEN_VERSION"
  log "wasm-bindgen version (default, no Cargo.lock entry): $WBG_VERSION"
fi
WBG="$CARGO_ROOT/bin/wasm-bindgen"
if [ -x "$WBG" ] && "$WBG" --version 2>/dev/null | grep -qw "$WBG_VERSION"; then
  log "wasm-bindgen-cli $WBG_VERSION: present"
else
  log "wasm-bindgen-cli $WBG_VERSION: installing (several minutes on 2 cores)"
  # No --locked: the registry mirror lacks some of the locked dependency versions.
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --root "$CARGO_ROOT" --force
  save_to_cache wasm-bindgen
fi

cmp -s "$WB" "$CACHE/bin/worker-build" 2>/dev/null || save_to_cache worker-build
cmp -s "$WBG" "$CACHE/bin/wasm-bindgen" 2>/dev/null || save_to_cache wasm-bindgen

# 4. npm tools: wrangler, binaryen (wasm-opt), @upstash/redis ---------------------------------
if [ ! -f "$NODE_DIR/package.json" ]; then
  log "creating $NODE_DIR/package.json"
  printf '{\n  "name": "edge-tools",\n  "private": true\n}\n' >"$NODE_DIR/package.json"
fi
npm_version() { # prints installed version of package $1 in .tools/node, or nothing
  local pj="$NODE_DIR/node_modules/$1/package.json"
  [ -f "$pj" ] && node -p "require(process.argv[1]).version" "$pj" 2>/dev/null || true
}
if [ "$(npm_version wrangler)" = "$WRANGLER_VERSION" ] &&
   [ -n "$(npm_version binaryen)" ] &&
   [ -n "$(npm_version @upstash/redis)" ] &&
   [ -x "$NODE_DIR/node_modules/.bin/wasm-opt" ] &&
   [ -x "$NODE_DIR/node_modules/.bin/wrangler" ]; then
  log "npm: wrangler $WRANGLER_VERSION, binaryen $(npm_version binaryen), @upstash/redis $(npm_version @upstash/redis): present"
else
  log "npm: installing wrangler@$WRANGLER_VERSION binaryen @upstash/redis into $NODE_DIR"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --save-exact \
    "wrangler@$WRANGLER_VERSION" binaryen @upstash/redis)
fi
WRANGLER="$NODE_DIR/node_modules/.bin/wrangler"
WASM_OPT="$NODE_DIR/node_modules/.bin/wasm-opt"
WRANGLER_REPORTED="$(WRANGLER_SEND_METRICS=false "$WRANGLER" --version 2>/dev/null | tail -n1 || true)"
case "$WRANGLER_REPORTED" in
  *"$WRANGLER_VERSION"*) log "wrangler runs on node $(node --version): $WRANGLER_REPORTED" ;;
  *) die "wrangler --version failed or wrong version (got: '$WRANGLER_REPORTED')" ;;
esac

ESBUILD=""
for c in "$NODE_DIR/node_modules/esbuild/bin/esbuild" "$NODE_DIR/node_modules/.bin/esbuild"; do
  if [ -x "$c" ]; then ESBUILD="$c"; break; fi
done

# 5. env lines ------------------------------------------------------------------------------
ENV_FILE="$TOOLS/env.sh"
{
  echo "# generated by scripts/edge-tools.sh; source this file"
  echo "export WASM_BINDGEN_BIN=\"$WBG\""
  echo "export WASM_OPT_BIN=\"$WASM_OPT\""
  [ -n "$ESBUILD" ] && echo "export ESBUILD_BIN=\"$ESBUILD\""
  echo "export WRANGLER=\"$WRANGLER\""
  echo "export WRANGLER_SEND_METRICS=false"
  echo "export CLOUDFLARE_CF_FETCH_ENABLED=false"
  echo "export PATH=\"$CARGO_ROOT/bin:\$PATH\""
} >"$ENV_FILE"
log "done; env written to $ENV_FILE:"
grep '^export' "$ENV_FILE"
