#!/usr/bin/env bash
# The origin container's entrypoint (Dockerfile), also usable anywhere the origin runs.
#
#   entrypoint.sh [serve]     apply migrations, then exec `tollgate-origin serve` (the default)
#   entrypoint.sh healthcheck exit 0 if GET /ready on BIND_ADDR answers 200, else 1
#   entrypoint.sh ARGS...     any other tollgate-origin command (`keys list`, `user promote …`)
#
# Migrations run as their own step first so a failed migration stops the container with the
# migration's error, before anything listens. The healthcheck needs nothing but bash (no curl
# in the image): one HTTP/1.0 request over /dev/tcp, with a deadline.
# TOLLGATE_ORIGIN_BIN overrides the binary (the tests run this script against their build).
set -euo pipefail

BIN="${TOLLGATE_ORIGIN_BIN:-tollgate-origin}"

# Prints "host port" to probe for BIND_ADDR (default 127.0.0.1:8080); a wildcard address is
# probed on loopback.
probe_target() {
  local addr="${BIND_ADDR:-127.0.0.1:8080}" host port
  port="${addr##*:}"
  host="${addr%:*}"
  host="${host#[}"
  host="${host%]}"
  case "$host" in
    0.0.0.0 | "") host=127.0.0.1 ;;
    ::) host=::1 ;;
  esac
  printf '%s %s\n' "$host" "$port"
}

healthcheck() {
  local host port status
  read -r host port < <(probe_target)
  # A subshell with its own deadline: a listener that accepts but never answers fails the check.
  status=$(timeout "${HEALTHCHECK_TIMEOUT_SECS:-3}" bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /ready HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    IFS= read -r line <&3 && printf "%s" "$line"
  ' _ "$host" "$port" 2>/dev/null) || true
  case "$status" in
    "HTTP/1."[01]" 200 "* | "HTTP/1."[01]" 200") exit 0 ;;
    *) echo "healthcheck: GET /ready on $host:$port: ${status:-no answer}" >&2; exit 1 ;;
  esac
}

case "${1:-serve}" in
  serve)
    "$BIN" migrate
    exec "$BIN" serve
    ;;
  healthcheck)
    healthcheck
    ;;
  *)
    exec "$BIN" "$@"
    ;;
esac
