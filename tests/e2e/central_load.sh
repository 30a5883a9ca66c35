#!/usr/bin/env bash
# The central issuance server killed (SIGKILL) in the middle of a load and restarted on the
# same port, twice. 16 branches (tests/load/central_load.c: one thread, one TLS client and one
# branch certificate each) reissue records of their own and records they share (claim, then
# confirm; a claim another branch holds is skipped); each client sends a request that the kill
# cut off again, with the same request_id, once the server is back. Afterwards every record
# counts exactly the confirms its branches were answered "ok" — never more: no double issue —
# with one "issued" event in its history for each; no claim is left open; the server's log
# holds no item value, key or claim token; the server still stops cleanly.
# The central issuance file is SQLite, or PostgreSQL when ICDUP_TEST_BACKEND=postgresql (with
# ICDUP_TEST_PG naming a server: tests/run-unit.sh starts one).
# Usage: tests/e2e/central_load.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from the repo
#        root; KEEP=1 keeps the temporary directory)
# run-unit: each back end
set -u
out=${1:-build/check}
bin="$out/bin"
icissue="$bin/icissue"
load="$bin/central_load"
types=examples/types.json
[ -x "$icissue" ] && [ -x "$load" ] || { echo "central_load.sh: no $icissue or $load" >&2; exit 1; }
[ -f "$types" ] || { echo "central_load.sh: no $types (run from the repo root)" >&2; exit 1; }
backend=${ICDUP_TEST_BACKEND:-sqlite}
# Each branch reissues by turns one of its 2 records and one of the 4 shared ones, until the
# script stops it (SIGTERM: the reissue under way is finished) after the second restart;
# REISSUES only bounds it. So the kills land mid-load however fast or busy the machine is.
BRANCHES=16 REISSUES=1000 RECORDS=2 SHARED=4

tmp=$(mktemp -d /tmp/icdup-e2e-load-XXXXXX)
srv_pid="" load_pid="" pg_db=""
. "$(dirname "$0")/../support/e2e.sh"
. "$(dirname "$0")/../support/central_e2e.sh"
trap central_cleanup EXIT

umask 077
central_db icdup_load
echo "# $BRANCHES branches"
total() { sql "SELECT coalesce(sum(issue_count), 0) FROM records" 2>/dev/null; }

# ---- certificates and the central issuance file --------------------------------------------
# The names central_load expects: ca.crt, bNN.crt and bNN.key; records LNN-R (branch NN's own)
# and S-R (shared).
ic() { "$icissue" "$@"; }
CA=(--ca-cert "$tmp/ca.crt" --ca-key "$tmp/ca.key")
run cert-ca 0 ic cert ca --out-cert "$tmp/ca.crt" --out-key "$tmp/ca.key"
run cert-srv 0 ic cert server "${CA[@]}" --host 127.0.0.1 --out-cert "$tmp/srv.crt" \
  --out-key "$tmp/srv.key"
certs=0
for ((b = 0; b < BRANCHES; b++)); do
  n=$(printf 'b%02d' "$b")
  ic cert branch "${CA[@]}" --name "$n" --out-cert "$tmp/$n.crt" --out-key "$tmp/$n.key" \
    </dev/null >/dev/null 2>>"$tmp/certs.err" && certs=$((certs + 1))
done
eq "branch certificates made" "$certs" "$BRANCHES"
{
  echo "identity,card_type,holder,member,expiry,password"
  for ((b = 0; b < BRANCHES; b++)); do
    for ((r = 0; r < RECORDS; r++)); do
      printf 'L%02d-%d,ICDUP-1,Load Holder %d,%d,2030-01-31,pw-load-%d%d\n' "$b" "$r" "$b" \
        $((20000 + b * RECORDS + r)) "$b" "$r"
    done
  done
  for ((r = 0; r < SHARED; r++)); do
    printf 'S-%d,ICDUP-1,Shared Holder %d,%d,2030-01-31,pw-load-s%d\n' "$r" "$r" $((30000 + r)) "$r"
  done
} >"$tmp/records.csv"
run init 0 "$icissue" init --db "$cdb"
run types 0 "$icissue" types load --db "$cdb" "$types"
run import 0 "$icissue" import --db "$cdb" --csv "$tmp/records.csv"
eq "records imported" "$(sql "SELECT count(*) FROM records")" $((BRANCHES * RECORDS + SHARED))

# ---- the central server --------------------------------------------------------------------
# load_running: central_load has not ended yet
load_running() { kill -0 "$load_pid" 2>/dev/null; }
# confirms: the confirms answered "ok" by every server so far, from their logs (a cheap poll:
# a query can take a second while the load keeps the machine's cores busy)
confirms() { grep -c ' op=confirm request_id=[0-9a-f]* status=ok ' "$tmp/serve.log"; }
# wait_confirms N: waits (up to 60 s) until N confirms were answered, while the load runs
wait_confirms() {
  for _ in $(seq 1200); do
    [ "$(confirms)" -ge "$1" ] && return 0
    load_running || return 1
    sleep 0.05
  done
  return 1
}
# kill_restart K: waits for some more reissues, kills the server mid-load (SIGKILL) and
# starts it again on the same port
kill_restart() {
  local k=$1 want=$(($(confirms) + 2 * BRANCHES))
  wait_confirms "$want" && ok "kill $k: $want confirms answered, the load goes on" ||
    bad "kill $k: the load ended or stalled before $want confirms ($(confirms))" "$tmp/load.err"
  load_running && ok "kill $k: central_load is still running" ||
    bad "kill $k: central_load ended before the kill" "$tmp/load.err"
  kill -9 "$srv_pid"
  wait "$srv_pid" 2>/dev/null
  srv_pid=""
  at_kill[k]=$(total)
  # what the dead server had applied: a later server that logs one of these request ids
  # answered a resend from the stored first result
  sql "SELECT request_id FROM claim_requests" >"$tmp/applied-$k.txt"
  log_at_kill[k]=$(wc -l <"$tmp/serve.log")
  echo "# kill $k: the server killed with ${at_kill[k]} issues counted"
  local old=$port
  if start_server "$old"; then
    eq "kill $k: the server restarted on the same port" "$port" "$old"
  else
    bad "kill $k: the server did not restart on port $old" "$tmp/serve.log"
    exit 1
  fi
}

start_server || { bad "icissue serve did not start" "$tmp/serve.log"; exit 1; }
ok "icissue serve listens on port $port"

# ---- the load, the kills -------------------------------------------------------------------
t0=$SECONDS
"$load" "127.0.0.1:$port" "$tmp" "$BRANCHES" "$REISSUES" "$RECORDS" "$SHARED" \
  >"$tmp/load.out" 2>"$tmp/load.err" </dev/null &
load_pid=$!
declare -a at_kill log_at_kill
kill_restart 1
kill_restart 2
want=$(($(confirms) + 2 * BRANCHES))
wait_confirms "$want" && ok "after the second restart: $want confirms answered" ||
  bad "after the second restart: the load ended or stalled before $want confirms" "$tmp/load.err"

kill -TERM "$load_pid" # each branch finishes the reissue under way
for _ in $(seq 600); do load_running || break; sleep 0.1; done
if load_running; then
  bad "central_load did not stop within 60 s of SIGTERM" "$tmp/load.err"
  kill -9 "$load_pid"
fi
wait "$load_pid"; lrc=$?
load_pid=""
sed 's/^/# /' "$tmp/load.err"
echo "# the load took $((SECONDS - t0)) s"
eq "central_load across two kills of the server (exit)" "$lrc" 0
grep -q "^central_load: $BRANCHES branches, .*; stopped by a signal$" "$tmp/load.err" &&
  ok "central_load ran until it was stopped" || bad "central_load ended by itself" "$tmp/load.err"
final=$(total)
for k in 1 2; do
  n=$(tail -n +"$((log_at_kill[k] + 1))" "$tmp/serve.log" |
    sed -n 's/.* request_id=\([0-9a-f]*\) status=.*/\1/p' | grep -cxFf "$tmp/applied-$k.txt")
  echo "# kill $k: $n requests applied before it were sent again and answered after it"
done
[ "$final" -gt "${at_kill[2]}" ] && ok "the restarted server counted more issues ($final)" ||
  bad "nothing counted after the second restart ($final)"

# ---- no double issue -----------------------------------------------------------------------
# Per record: the issuance count, its "issued" events and its confirmed claims, against the
# confirms central_load was answered "ok".
LC_ALL=C sort "$tmp/load.out" >"$tmp/confirmed.txt"
sql "SELECT identity || ' ' || issue_count FROM records" | LC_ALL=C sort >"$tmp/counted.txt"
sql "SELECT r.identity || ' ' || count(h.id) FROM records r LEFT JOIN history h
       ON h.record_id = r.id AND h.event = 'issued' GROUP BY r.identity" |
  LC_ALL=C sort >"$tmp/events.txt"
sql "SELECT r.identity || ' ' || count(c.token) FROM records r LEFT JOIN claims c
       ON c.record_id = r.id AND c.state = 'confirmed' GROUP BY r.identity" |
  LC_ALL=C sort >"$tmp/claimed.txt"
eq "records reported by central_load" "$(wc -l <"$tmp/confirmed.txt")" \
  $((BRANCHES * RECORDS + SHARED))
sum=$(awk '{ n += $2 } END { print n + 0 }' "$tmp/confirmed.txt")
eq "issues counted in all = confirms answered ok" "$final" "$sum"
# compare FILE WHAT: the records whose count in FILE is above / below the confirmed one
compare() {
  LC_ALL=C join "$tmp/confirmed.txt" "$tmp/$1" >"$tmp/$1.joined"
  eq "records both in central_load's list and in the issuance file ($2)" \
    "$(wc -l <"$tmp/$1.joined")" $((BRANCHES * RECORDS + SHARED))
  awk '$3 > $2' "$tmp/$1.joined" >"$tmp/$1.over"
  awk '$3 < $2' "$tmp/$1.joined" >"$tmp/$1.under"
  [ -s "$tmp/$1.over" ] &&
    bad "$2 above the confirms (IDENTITY CONFIRMED COUNTED)" "$tmp/$1.over" ||
    ok "no record has $2 above its confirms: no double issue"
  [ -s "$tmp/$1.under" ] &&
    bad "$2 below the confirms (IDENTITY CONFIRMED COUNTED)" "$tmp/$1.under" ||
    ok "no record has $2 below its confirms"
}
compare counted.txt "an issuance count"
compare events.txt "\"issued\" events"
compare claimed.txt "confirmed claims"
awk '$2 > 0' "$tmp/confirmed.txt" | grep -q '^S-' && ok "shared records were reissued" ||
  bad "no shared record was reissued" "$tmp/confirmed.txt"
conflicts=$(sed -n 's/^central_load: .* \([0-9]*\) conflicts; .*/\1/p' "$tmp/load.err")
[ "${conflicts:-0}" -gt 0 ] && ok "branches met on shared records ($conflicts claims refused)" ||
  bad "no claim met another branch's" "$tmp/load.err"
eq "claims left open" "$(sql "SELECT count(*) FROM claims WHERE state = 'open'")" 0
eq "records counted but not issued (a claim never confirmed)" \
  "$(sql "SELECT count(*) FROM records WHERE issued = 0 AND issue_count > 0")" 0

# ---- the log, the stop ---------------------------------------------------------------------
grep -q "pw-load\|PRIVATE" "$tmp/serve.log" && bad "secrets in the server log" "$tmp/serve.log" ||
  ok "no item value or key in the server log"
sql "SELECT token FROM claims" >"$tmp/tokens.txt"
[ -s "$tmp/tokens.txt" ] && grep -qFf "$tmp/tokens.txt" "$tmp/serve.log" &&
  bad "a claim token in the server log" || ok "no claim token in the server log"
kill "$srv_pid"; wait "$srv_pid"; rc=$?
srv_pid=""
eq "icissue serve stops on SIGTERM with status 0" "$rc" 0
echo "central_load.sh: $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
