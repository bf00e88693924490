#!/usr/bin/env bash
# Sourced by scripts/test.sh, stack.sh, the bench and the Node test scripts: make sure what the project needs is installed
# and running. Idempotent: uses what already runs, installs and starts only what is missing.

svc_log() { printf '[services] %s\n' "$*"; }

# Debian packages, installed only when their command is missing: `ensure_deb CMD[:PACKAGE]...`
# (PACKAGE defaults to CMD).
ensure_deb() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    svc_log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

# What the tests and the stack need (redis-cli: the Redis Cluster harness, testkit's
# RedisCluster, runs `redis-cli --cluster create`; Debian ships it in redis-tools).
ensure_packages() {
  ensure_deb redis-server redis-cli:redis-tools pg_ctlcluster:postgresql gzip curl openssl
}

# Debian's chromium at /usr/bin/chromium, for the browser tests (playwright-core drives it;
# no browser is ever downloaded).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return
  svc_log "installing chromium"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
}

# Redis on 127.0.0.1:6379 (what the tests and the stack use by default).
ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    svc_log "redis: running"
    return
  fi
  svc_log "redis: starting"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  svc_log "ERROR: redis did not start"; return 1
}

# PostgreSQL on 127.0.0.1:5432 with a database `test` the postgres user can reach without a
# password (the PostgreSQL tests create and drop their own databases through it).
ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    svc_log "postgresql: starting"
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then svc_log "ERROR: no PostgreSQL cluster in /etc/postgresql"; return 1; fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
  else
    svc_log "postgresql: running"
  fi
  if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    # Fresh cluster: allow local trust logins and create the test database.
    svc_log "postgresql: preparing database test"
    local hba
    hba=$(su postgres -c "psql -Atc 'show hba_file'" 2>/dev/null || true)
    if [ -n "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
      su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
    fi
    su postgres -c "psql -Atc \"select 1 from pg_database where datname='test'\"" | grep -q 1 ||
      su postgres -c "createdb test"
  fi
}

# cargo-nextest, from crates.io into .tools when the machine has none.
ensure_nextest() {
  if command -v cargo-nextest >/dev/null; then return; fi
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/cargo"
  export PATH="$root/bin:$PATH"
  command -v cargo-nextest >/dev/null && return
  svc_log "installing cargo-nextest"
  cargo install cargo-nextest --locked --root "$root"
}

# `node_suite NAME DIR [NPM_SCRIPT...]`: a Node test suite against the real origin binary, as
# scripts/test-pages.sh and scripts/test-clients.sh run theirs: Debian's chromium (never a browser
# download), the origin built, `npm ci` in DIR from its lock file, each NPM_SCRIPT (`npm run`),
# then `npm test`, summed up in one line "NAME: N passed, N failed". Fails unless the tests ran,
# at least one passed and none failed.
node_suite() {
  local name="$1" dir="$2"
  shift 2
  ensure_packages
  ensure_chromium
  printf '[test-%s] %s\n' "$name" "cargo build -p tollgate-origin"
  cargo build -q -p tollgate-origin
  (
    cd "$dir"
    printf '[test-%s] %s\n' "$name" "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    for script in "$@"; do
      printf '[test-%s] %s\n' "$name" "npm run $script"
      npm run --silent "$script"
    done
    printf '[test-%s] %s\n' "$name" "npm test"
    out="$(mktemp)"
    trap 'rm -f "$out"' EXIT
    set +e
    npm test --silent 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    set -e
    passed=$(sed -En 's/^(ℹ|#) pass ([0-9]+)$/\2/p' "$out" | tail -n 1)
    failed=$(sed -En 's/^(ℹ|#) fail ([0-9]+)$/\2/p' "$out" | tail -n 1)
    echo "$name: ${passed:-0} passed, ${failed:-0} failed"
    [ "$status" -eq 0 ] && [ "${failed:-1}" = 0 ] && [ "${passed:-0}" != 0 ]
  )
}
