#!/usr/bin/env bash
# Sourced by the other scripts. Makes a PostgreSQL available and exports INGESTION_TEST_PG.
#   - When INGESTION_TEST_PG (or, for the sample, INGESTION_PG) is already set, it is used as is.
#   - Otherwise a throwaway cluster is created in a temp folder (or PG_DATA_DIR when given, kept
#     between runs) and started on a free loopback port; it is stopped when the calling script exits.
# Installs Debian's postgresql packages (with PostGIS and contrib) with apt-get when they are absent
# and the script runs as root. initdb/pg_ctl refuse to run as root, so they run as 'postgres' then.

pg_find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

pg_install() {
  if pg_find_bin >/dev/null && ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" != "0" ]; then
    if pg_find_bin >/dev/null; then return 0; fi
    echo "pg.sh: PostgreSQL is not installed; install postgresql-15 (or run as root to let this script install it)" >&2
    return 1
  fi
  echo "pg.sh: installing PostgreSQL 15 with PostGIS from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql-15 postgresql-contrib postgresql-15-postgis-3 >/dev/null
}

pg_free_port() {
  local port
  for _ in $(seq 1 50); do
    # Below Linux's ephemeral range (32768-60999), where outgoing connections take their local ports.
    port=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "pg.sh: no free port found" >&2
  return 1
}

pg_as_owner() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  if [ -n "${INGESTION_TEST_PG:-}" ]; then
    echo "pg.sh: using the PostgreSQL named by INGESTION_TEST_PG" >&2
    return 0
  fi
  pg_install || return 1
  local bin; bin=$(pg_find_bin) || { echo "pg.sh: pg_ctl not found under /usr/lib/postgresql" >&2; return 1; }
  local keep=0
  if [ -n "${PG_DATA_DIR:-}" ]; then
    keep=1
    PG_WORK_DIR="$PG_DATA_DIR"
    mkdir -p "$PG_WORK_DIR"
  else
    PG_WORK_DIR=$(mktemp -d /tmp/ingestion-pg.XXXXXX)
  fi
  if [ "$(id -u)" = "0" ]; then chown -R postgres:postgres "$PG_WORK_DIR"; chmod 700 "$PG_WORK_DIR"; fi
  if [ ! -f "$PG_WORK_DIR/data/PG_VERSION" ]; then
    pg_as_owner "$bin/initdb" -D "$PG_WORK_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_WORK_DIR/initdb.log" 2>&1 \
      || { cat "$PG_WORK_DIR/initdb.log" >&2; return 1; }
  fi
  # A port found free can be taken before the server binds it: then another port is tried.
  local attempt
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(pg_free_port) || return 1
    if [ -f "$PG_WORK_DIR/server.log" ]; then : >"$PG_WORK_DIR/server.log"; fi
    if pg_as_owner "$bin/pg_ctl" -D "$PG_WORK_DIR/data" -l "$PG_WORK_DIR/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_WORK_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c max_locks_per_transaction=256" start >/dev/null; then
      break
    fi
    if [ "$attempt" -lt 5 ] && grep -q "Address already in use" "$PG_WORK_DIR/server.log" 2>/dev/null; then
      echo "pg.sh: port $PG_PORT was taken meanwhile; trying another" >&2
      continue
    fi
    cat "$PG_WORK_DIR/server.log" >&2
    return 1
  done
  PG_BIN="$bin"
  PG_KEEP="$keep"
  export INGESTION_TEST_PG="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Include Error Detail=true"
  export PG_WORK_DIR PG_PORT PG_BIN PG_KEEP
  trap pg_stop EXIT
  echo "pg.sh: PostgreSQL started on 127.0.0.1:$PG_PORT (data in $PG_WORK_DIR)" >&2
}

pg_stop() {
  if [ -n "${PG_WORK_DIR:-}" ] && [ -n "${PG_BIN:-}" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_WORK_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    if [ "${PG_KEEP:-0}" != "1" ]; then rm -rf "$PG_WORK_DIR"; fi
    PG_WORK_DIR=""
  fi
}
