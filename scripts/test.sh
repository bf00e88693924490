#!/usr/bin/env bash
# Runs every test (README's second command; .ci/run calls it). Installs and starts what is
# missing first, then: formatting, lints, the wasm build of the shared crate, the edge bundle,
# every test of the workspace (unit, property, origin on SQLite and PostgreSQL, bridge
# conformance, end-to-end through workerd, the soak), schemathesis against the OpenAPI document,
# the deploy checks, and a short fuzzing pass.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh

ensure_packages
ensure_redis
ensure_postgres
ensure_nextest
scripts/build-edge.sh

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "[test] tollgate-shared builds for wasm32"
cargo build -q -p tollgate-shared --target wasm32-unknown-unknown
echo "[test] cargo nextest"
cargo nextest run --workspace --no-fail-fast "$@"
# schemathesis against the origin's OpenAPI document: no 5xx, every answer as documented.
echo "[test] openapi (schemathesis)"; scripts/test-openapi.sh
# The deployments of DEPLOY.md, dry-run: both wrangler envs against the bundle budgets and
# their vars, the systemd units, the Dockerfile and its build step.
echo "[test] check-deploy"; scripts/check-deploy.sh
# The TypeScript client SDK against the real origin, in Node and in Chromium.
scripts/test-clients.sh
# The devices and admin pages in Chromium, through the real origin.
scripts/test-pages.sh
# The JavaScript upstream verifier (Express, Hono) against the Rust-signed vectors.
echo "[test] upstream-js"; scripts/test-upstream-js.sh
# A short fuzzing pass over every target (longer by hand: scripts/fuzz.sh 600).
echo "[test] fuzz (${FUZZ_SECONDS:-30} s per target)"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
