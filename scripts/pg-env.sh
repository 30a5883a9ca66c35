#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests (tests/run-unit.sh) and by hand. It
# installs nothing (scripts/install-deps.sh installs postgresql); it runs the newest server
# found under /usr/lib/postgresql/*/bin (or $PG_BINDIR):
#
#   bash scripts/pg-env.sh start [DIR]   initdb and start a server in DIR (default: a new
#                                        /tmp/icdup-pg-XXXXXX); prints its URI
#   bash scripts/pg-env.sh stop DIR      stop that server (by its PID) and remove DIR
#
# Sourced, it defines pg_start [DIR], which sets PG_DIR and exports ICDUP_TEST_PG, and
# pg_stop DIR. ICDUP_TEST_PG is a server URI without a database,
# postgresql://icdup:PASSWORD@127.0.0.1:PORT: the superuser icdup with a password generated
# here (scram-sha-256), TCP on 127.0.0.1 only, on a free port; the Unix socket is in DIR (local
# connections there are trusted: psql -h DIR -p PORT -U icdup postgres). fsync is off: the
# data is thrown away. Run as root, the server runs as the postgres system user (the server
# refuses root) and DIR is given to that user. Start polls until the server answers (no fixed
# sleeps) and gives up after 20 s.

pg_log() { echo "pg-env: $*" >&2; }

# pg_bindir: the directory of the server programs.
pg_bindir() {
  local d=${PG_BINDIR:-}
  if [ -z "$d" ]; then
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  if [ ! -x "$d/postgres" ] || [ ! -x "$d/initdb" ]; then
    pg_log "no PostgreSQL server in ${d:-/usr/lib/postgresql/*/bin} (install the postgresql package: bash scripts/install-deps.sh)"
    return 1
  fi
  echo "$d"
}

# pg_free_port: a TCP port of 127.0.0.1 that nobody listens on right now.
pg_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# pg_alive PID: the process runs (a zombie does not count).
pg_alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case $st in Z*) return 1 ;; esac
  return 0
}

# pg_start [DIR]: a new cluster in DIR/data and its server; sets PG_DIR, exports ICDUP_TEST_PG.
pg_start() {
  local dir=${1:-} bin user=icdup pw port attempt i
  bin=$(pg_bindir) || return 1
  command -v python3 >/dev/null || { pg_log "python3 is needed to find a free port"; return 1; }
  if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/icdup-pg-XXXXXX) || return 1
  else
    mkdir -p "$dir" || return 1
  fi
  dir=$(cd "$dir" && pwd) || return 1
  PG_DIR=$dir
  # As root: the server's programs run as postgres (setpriv execs them, so $! is the server).
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { pg_log "running as root needs the postgres system user (package postgresql)"; return 1; }
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    chown postgres: "$dir" || return 1
  fi
  chmod 700 "$dir"
  pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s\n' "$pw" >"$dir/pwfile")
  [ ${#as[@]} = 0 ] || chown postgres: "$dir/pwfile"
  if ! (cd "$dir" && "${as[@]}" "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C -N) >"$dir/initdb.log" 2>&1; then
    rm -f "$dir/pwfile"
    pg_log "initdb failed: $(tail -n 3 "$dir/initdb.log")"
    return 1
  fi
  rm -f "$dir/pwfile"
  for attempt in 1 2 3 4 5; do
    port=$(pg_free_port) || return 1
    "${as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" \
      -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=200 >"$dir/postgres.log" 2>&1 </dev/null &
    echo $! >"$dir/postgres.pid"
    for i in $(seq 400); do
      if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
        ICDUP_TEST_PG="postgresql://$user:$pw@127.0.0.1:$port"
        export ICDUP_TEST_PG
        (umask 077 && printf '%s\n' "$ICDUP_TEST_PG" >"$dir/uri")
        return 0
      fi
      pg_alive "$(cat "$dir/postgres.pid")" || break
      sleep 0.05
    done
    if pg_alive "$(cat "$dir/postgres.pid")"; then
      pg_log "the server did not answer on port $port within 20 s: $(tail -n 3 "$dir/postgres.log")"
      pg_stop_server "$dir"
      return 1
    fi
    # Another process took the port between the check and the start: try another one.
    grep -q 'could not bind\|could not create listen socket' "$dir/postgres.log" || break
  done
  pg_log "the server did not start: $(tail -n 3 "$dir/postgres.log")"
  return 1
}

# pg_stop_server DIR: stops the server whose PID pg_start recorded (fast shutdown: clients are
# disconnected, then a harder signal after 10 s).
pg_stop_server() {
  local dir=$1 pid sig i
  [ -f "$dir/postgres.pid" ] || return 0
  pid=$(cat "$dir/postgres.pid")
  for sig in INT QUIT KILL; do
    pg_alive "$pid" || break
    kill -s "$sig" "$pid" 2>/dev/null || true
    for i in $(seq 200); do pg_alive "$pid" || break; sleep 0.05; done
  done
  wait "$pid" 2>/dev/null || true
  rm -f "$dir/postgres.pid"
}

# pg_stop DIR: stops the server and removes DIR.
pg_stop() {
  local dir=${1:-${PG_DIR:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  pg_stop_server "$dir"
  rm -rf "$dir"
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  case ${1:-} in
    start)
      pg_start "${2:-}" || { [ -n "${PG_DIR:-}" ] && pg_stop "$PG_DIR"; exit 1; }
      echo "PG_DIR=$PG_DIR"
      echo "ICDUP_TEST_PG=$ICDUP_TEST_PG" ;;
    stop)
      [ $# -ge 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
      pg_stop "$2" ;;
    *)
      echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
  esac
fi
