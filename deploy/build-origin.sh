#!/usr/bin/env bash
# Builds tollgate-origin from the committed Cargo.lock and installs it, with deploy/entrypoint.sh,
# into DEST. The Dockerfile's build stage runs exactly this; so does scripts/check-deploy.sh in
# CI (with PROFILE=dev, reusing the test build, since a release build would cost CI minutes), and
# an operator installing the systemd unit runs it with DEST=/usr/local/bin.
#
# Usage: deploy/build-origin.sh DEST   (PROFILE=release by default; CARGO_TARGET_DIR is honoured)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:?usage: deploy/build-origin.sh DEST}"
PROFILE="${PROFILE:-release}"

cd "$ROOT"
cargo build --locked --profile "$PROFILE" -p tollgate-origin
# Cargo names the dev profile's directory `debug`.
dir="$PROFILE"
[ "$PROFILE" = dev ] && dir=debug
install -D -m 0755 "${CARGO_TARGET_DIR:-$ROOT/target}/$dir/tollgate-origin" "$DEST/tollgate-origin"
install -D -m 0755 "$ROOT/deploy/entrypoint.sh" "$DEST/tollgate-entrypoint"
echo "[build-origin] installed tollgate-origin ($PROFILE) and tollgate-entrypoint into $DEST"
