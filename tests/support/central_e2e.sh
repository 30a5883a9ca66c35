# What the central end-to-end scripts (tests/e2e/central.sh, central_load.sh) share: the
# central issuance file on the back end of $ICDUP_TEST_BACKEND, and icissue serve started on
# it. Sourced after tests/support/e2e.sh, with $tmp, $icissue and $backend set; the server's
# certificate, key and CA are $tmp/srv.crt, $tmp/srv.key and $tmp/ca.crt.

# central_db NAME: the central issuance file in $cdb: $tmp/central.db, or a new PostgreSQL
# database named NAME_PID on $ICDUP_TEST_PG (in $pg_db, dropped by central_cleanup). Defines
# sql QUERY (its rows, columns separated by "|"). Exits the script when it cannot.
central_db() {
  case "$backend" in
    sqlite)
      command -v sqlite3 >/dev/null || { echo "$0: the sqlite3 command is needed" >&2; exit 1; }
      cdb="$tmp/central.db"
      # (a busy timeout: the first reader after a kill may find the WAL being recovered)
      sql() { sqlite3 -batch -noheader -cmd ".timeout 10000" "$cdb" "$1"; } ;;
    postgresql)
      [ -n "${ICDUP_TEST_PG:-}" ] || { echo "$0: ICDUP_TEST_PG is not set" >&2; exit 1; }
      command -v psql >/dev/null || { echo "$0: the psql command is needed" >&2; exit 1; }
      pg_db="${1}_$$"
      psql -X -q -v ON_ERROR_STOP=1 "$ICDUP_TEST_PG/postgres" -c "CREATE DATABASE $pg_db" \
        >/dev/null || { pg_db=""; echo "$0: cannot create the database" >&2; exit 1; }
      cdb="$ICDUP_TEST_PG/$pg_db"
      sql() { printf '%s\n' "$1" | psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$cdb" -f -; } ;;
    *) echo "$0: unknown ICDUP_TEST_BACKEND $backend" >&2; exit 1 ;;
  esac
  echo "# central issuance file on $backend"
}

# central_cleanup: the EXIT trap: kills the processes of $srv_pid and $load_pid, drops the
# PostgreSQL database of central_db, and removes $tmp unless KEEP is set.
central_cleanup() {
  [ -z "${load_pid:-}" ] || kill -9 "$load_pid" 2>/dev/null
  [ -z "${srv_pid:-}" ] || kill -9 "$srv_pid" 2>/dev/null
  [ -z "${pg_db:-}" ] || psql -X -q "$ICDUP_TEST_PG/postgres" \
    -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}

# start_server [PORT [OPTION...]]: starts icissue serve on 127.0.0.1:PORT (0: a free one) with
# the options given besides, its log appended to $tmp/serve.log, and waits until it listens;
# sets srv_pid and port. Returns 1 (the server killed) when it did not start.
start_server() {
  local p=${1:-0}
  [ $# -gt 0 ] && shift
  "$icissue" serve --db "$cdb" --listen "127.0.0.1:$p" --cert "$tmp/srv.crt" \
    --key "$tmp/srv.key" --ca "$tmp/ca.crt" "$@" >"$tmp/serve.out" 2>>"$tmp/serve.log" \
    </dev/null &
  srv_pid=$!
  for _ in $(seq 200); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/serve.out")
    [ -n "$port" ] && return 0
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$srv_pid" 2>/dev/null
  wait "$srv_pid" 2>/dev/null
  srv_pid=""
  return 1
}
