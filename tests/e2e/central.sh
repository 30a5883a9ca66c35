#!/usr/bin/env bash
# The central issuance system and two branches over mutually authenticated TLS on loopback,
# through the real CLIs on in-process simulated cards: icissue cert (CA, central, branches
# north and south, east revoked), icissue serve on the central issuance file, branch reissues
# with --central from a returned card and for a lost card (the central count goes up, the old
# card is terminated, a rerun changes nothing), two branches reissuing one record at once
# (exactly one wins), a revoked branch and plain TCP refused while the server goes on, a branch
# killed (SIGKILL) at random instants between claim and confirm and then rerun (reconciled: one
# good new card, the count up by exactly one), and the central server killed (SIGKILL) and
# restarted mid-flight (the branch's rerun finishes, nothing counted twice), and a reissue onto
# another card type (the central record takes the new card's type and design).
# The central issuance file is SQLite, or PostgreSQL when ICDUP_TEST_BACKEND=postgresql (with
# ICDUP_TEST_PG naming a server: tests/run-unit.sh starts one).
# Usage: tests/e2e/central.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from the repo root;
#        KEEP=1 keeps the temporary directory)
# run-unit: each back end
set -u
out=${1:-build/check}
bin="$out/bin"
icissue="$bin/icissue"
icdup="$bin/icdup"
types=examples/types.json
[ -x "$icissue" ] && [ -x "$icdup" ] || { echo "central.sh: no $icissue or $icdup" >&2; exit 1; }
[ -f "$types" ] || { echo "central.sh: no $types (run from the repo root)" >&2; exit 1; }
backend=${ICDUP_TEST_BACKEND:-sqlite}

tmp=$(mktemp -d /tmp/icdup-e2e-central-XXXXXX)
srv_pid="" load_pid="" pg_db=""
. "$(dirname "$0")/../support/e2e.sh"
. "$(dirname "$0")/../support/central_e2e.sh"
trap central_cleanup EXIT

umask 077
central_db icdup_central

secrets="$tmp/issuer.secrets"
printf 'puk = 13572468\nadmin = 97531864\n' >"$secrets"
cat >"$tmp/records.csv" <<EOF
identity,card_type,holder,address,member,expiry,password,share1
M0001,ICDUP-1,Ada Lovelace,London,10001,2029-12-31,pw-ada-4711,
M0002,ICDUP-1,Charles Babbage,,10002,2028-06-30,pw-charles-0815,
M0003,ICDUP-DI,Grace Hopper,"Arlington, VA",10003,2030-01-31,pw-grace-2024,
M0004,ICDUP-1,Kill Test,,10004,2030-01-31,pw-kill-0004,
EOF
count() { "$icissue" show --db "$cdb" --id "$1" </dev/null 2>/dev/null |
  sed -n 's/^issue count *\([0-9]*\)$/\1/p'; }

# ---- certificates, the central file, the branch files -------------------------------------
cd "$tmp" || exit 1
ic() { "$OLDPWD/$icissue" "$@"; }
CA=(--ca-cert ca.crt --ca-key ca.key)
run cert-ca 0 ic cert ca --out-cert ca.crt --out-key ca.key
run cert-srv 0 ic cert server "${CA[@]}" --host 127.0.0.1 --out-cert srv.crt --out-key srv.key
for b in north south east; do
  run "cert-$b" 0 ic cert branch "${CA[@]}" --name "$b" --out-cert "$b.crt" --out-key "$b.key"
done
run revoke-east 0 ic cert revoke "${CA[@]}" --cert east.crt --crl crl.pem
cd "$OLDPWD" || exit 1

run init-central 0 "$icissue" init --db "$cdb"
run types-central 0 "$icissue" types load --db "$cdb" "$types"
run import 0 "$icissue" import --db "$cdb" --csv "$tmp/records.csv"
# Each branch has a directory of its own: its issuance file and its claim files.
for b in north south east; do
  mkdir -p "$tmp/$b"
  run "init-$b" 0 "$icissue" init --db "$tmp/$b/branch.db"
  run "types-$b" 0 "$icissue" types load --db "$tmp/$b/branch.db" "$types"
done
# The original cards, issued at the central office.
for i in 1 2 3 4; do
  run "issue-$i" 0 "$icissue" issue --db "$cdb" --id "M000$i" --card "sim:$tmp/o$i.nvm" \
    --secrets "$secrets"
done

# ---- the central server ------------------------------------------------------------------
# the server with the CRL and the lease of the test ($LEASE, default 300 s)
serve() { start_server "${1:-0}" --crl "$tmp/crl.pem" --lease "${LEASE:-300}" ||
  { bad "icissue serve did not start" "$tmp/serve.log"; exit 1; }; }
serve
ok "icissue serve listens on port $port"
branch() { # NAME: the options of a branch
  echo --db "$tmp/$1/branch.db" --central "127.0.0.1:$port" --cert "$tmp/$1.crt" \
    --key "$tmp/$1.key" --ca "$tmp/ca.crt" --secrets "$secrets"
}

# catch PID FILE: waits until the branch PID has its claim (the central's token in its claim
# FILE) and stops it there (SIGSTOP). The poll uses shell builtins only, so it is far quicker
# than the branch's personalization of the new card, which lies between claim and confirm.
# Returns 0 when the branch was stopped holding an unconfirmed claim (kill -CONT PID resumes
# it), 1 when it got past (or never got there).
catch() {
  local text=""
  while kill -0 "$1" 2>/dev/null; do
    if [ -f "$2" ] && read -r -d '' text <"$2"; [[ "$text" == *'"token": "'[0-9a-f]* ]]; then
      kill -STOP "$1"
      read -r -d '' text <"$2"
      [[ "$text" == *'"confirmed": false'* ]] && return 0
      kill -CONT "$1"; return 1
    fi
  done
  return 1
}

# ---- a reissue at a branch -----------------------------------------------------------------
run north-1 0 "$icissue" reissue $(branch north) --from-card "sim:$tmp/o1.nvm" \
  --to "sim:$tmp/n1.nvm"
has north-1 out "reissued M0001 on card"
has north-1 out "issuance count 2 (confirmed by the central system)"
has north-1 out "old card"
eq "central count of M0001" "$(count M0001)" 2
"$icdup" status --card "sim:$tmp/o1.nvm" >"$tmp/o1.status" 2>&1
has o1 status "terminated"
ls "$tmp"/north/central-claim-* >/dev/null 2>&1 && bad "a claim file is left" || ok "no claim file left"
run north-1-again 0 "$icissue" reissue $(branch north) --from-card "sim:$tmp/o1.nvm" \
  --to "sim:$tmp/n1.nvm"
eq "central count of M0001 after a rerun" "$(count M0001)" 2

# A lost card (--id), at the other branch.
run south-lost 0 "$icissue" reissue $(branch south) --id M0002 --to "sim:$tmp/s2.nvm"
has south-lost out "issuance count 2"
eq "central count of M0002" "$(count M0002)" 2
grep -q "branch=south" "$tmp/serve.log" && ok "the server logs the branch from its certificate" ||
  bad "no branch=south in the server log" "$tmp/serve.log"

# ---- two branches, one record, at once -----------------------------------------------------
# North claims M0003 and is stopped before its confirm; south asks for the same record
# meanwhile and is refused; north goes on and finishes. Exactly one new card counts.
cf="$tmp/north/central-claim-M0003.json"
"$icissue" reissue $(branch north) --id M0003 --to "sim:$tmp/race-n.nvm" >"$tmp/race-n.out" \
  2>"$tmp/race-n.err" </dev/null &
pn=$!
if catch "$pn" "$cf"; then
  ok "north holds its claim of M0003"
  run race-south 1 "$icissue" reissue $(branch south) --id M0003 --to "sim:$tmp/race-s.nvm"
  has race-south err "north"
  kill -CONT "$pn"
else bad "north was not caught between claim and confirm"; fi
wait "$pn"; rn=$?
eq "north, which claimed first, finishes (exit)" "$rn" 0
eq "central count of M0003" "$(count M0003)" 2
"$icdup" status --card "sim:$tmp/race-s.nvm" >"$tmp/race-s.status" 2>&1
has race-s status "creation"

# ---- refusals: a revoked branch, plain TCP --------------------------------------------------
run east 1 "$icissue" reissue $(branch east) --id M0004 --to "sim:$tmp/e4.nvm"
eq "central count of M0004 after the revoked branch" "$(count M0004)" 1
# A branch file without the card types: the claim is given back at once, nothing counted, and
# the record is free for the next reissue (not held until the lease ends).
mkdir -p "$tmp/bare"
run init-bare 0 "$icissue" init --db "$tmp/bare/branch.db"
run bare 1 "$icissue" reissue --db "$tmp/bare/branch.db" --central "127.0.0.1:$port" \
  --cert "$tmp/north.crt" --key "$tmp/north.key" --ca "$tmp/ca.crt" --secrets "$secrets" \
  --id M0004 --to "sim:$tmp/bare4.nvm"
has bare err "ICDUP-1"
eq "central count of M0004 after the bare branch" "$(count M0004)" 1
ls "$tmp"/bare/central-claim-* >/dev/null 2>&1 && bad "the bare branch kept a claim file" ||
  ok "the bare branch gave its claim back"
exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && exec 3>&-
run after-plain 0 "$icissue" reissue $(branch north) --id M0002 --to "sim:$tmp/n2b.nvm"
eq "the server still serves after plain TCP (M0002 count)" "$(count M0002)" 3

# ---- a branch killed between claim and confirm, then rerun ---------------------------------
# Caught between claim and confirm and killed there (SIGKILL), then at random instants of a
# run; each rerun must finish with exactly one more count and no claim file left.
cf="$tmp/north/central-claim-M0004.json"
for k in 1 2 3 4 5 6; do
  before=$(count M0004)
  "$icissue" reissue $(branch north) --id M0004 --to "sim:$tmp/k$k.nvm" >/dev/null 2>&1 &
  pk=$!
  if [ "$k" -le 3 ]; then
    catch "$pk" "$cf" && ok "kill $k: between claim and confirm" || bad "kill $k: not caught"
  else
    sleep "0.0$((RANDOM % 9 + 1))"
  fi
  kill -9 "$pk" 2>/dev/null
  wait "$pk" 2>/dev/null
  run "kill-rerun-$k" 0 "$icissue" reissue $(branch north) --id M0004 --to "sim:$tmp/k$k.nvm"
  eq "kill $k: count up by one" "$(count M0004)" $((before + 1))
done
ls "$tmp"/north/central-claim-* >/dev/null 2>&1 && bad "a claim file is left" ||
  ok "no claim file left"

# ---- the central server killed mid-flight and restarted ------------------------------------
# Killed (SIGKILL) while the branch holds its claim, restarted on the same port: the branch's
# confirm reaches the new server (its client reconnects): counted once.
before=$(count M0001)
cf="$tmp/north/central-claim-M0001.json"
"$icissue" reissue $(branch north) --id M0001 --to "sim:$tmp/c1.nvm" >"$tmp/c1.out" \
  2>"$tmp/c1.err" </dev/null &
pr=$!
caught=false
catch "$pr" "$cf" && caught=true
kill -9 "$srv_pid"; wait "$srv_pid" 2>/dev/null
serve "$port"
$caught && kill -CONT "$pr"
$caught && ok "the branch held its claim when the central was killed" ||
  bad "the branch was not caught between claim and confirm"
wait "$pr"; rr=$?
eq "the branch's run across the central restart (exit)" "$rr" 0
run central-restart 0 "$icissue" reissue $(branch north) --id M0001 --to "sim:$tmp/c1.nvm"
eq "central killed and restarted: count up by one" "$(count M0001)" $((before + 1))

# ---- a lease that passes before the confirm -----------------------------------------------
# A claim of 1 s, the branch held past it: the server releases it, the confirm is refused, the
# new card is spoiled, nothing is counted and the record is the old card's again.
before=$(count M0002)
cf="$tmp/south/central-claim-M0002.json"
"$icissue" reissue $(branch south) --lease 1 --id M0002 --to "sim:$tmp/l2.nvm" \
  >"$tmp/lease.out" 2>"$tmp/lease.err" </dev/null &
pl=$!
if catch "$pl" "$cf"; then
  sleep 2.5
  kill -CONT "$pl"
  wait "$pl"; rl=$?
  eq "the branch whose lease passed fails (exit)" "$rl" 1
  has lease err "the new card"
  has lease err "was spoiled"
  grep -q "expired claim" "$tmp/serve.log" && ok "the server released the expired claim" ||
    bad "no release in the server log" "$tmp/serve.log"
  eq "nothing counted for the expired claim" "$(count M0002)" "$before"
  "$icdup" status --card "sim:$tmp/l2.nvm" >"$tmp/l2.status" 2>&1
  has l2 status "terminated"
  run lease-again 0 "$icissue" reissue $(branch south) --id M0002 --to "sim:$tmp/l3.nvm"
  eq "a new reissue after it counts once" "$(count M0002)" $((before + 1))
else
  kill -CONT "$pl" 2>/dev/null; wait "$pl"
  bad "the branch was not caught between claim and confirm"
fi

# ---- the lost card turns up: it was replaced (by race-n), so nothing is counted -------------
before=$(count M0003)
run found-card 0 "$icissue" reissue $(branch north) --from-card "sim:$tmp/o3.nvm" \
  --to "sim:$tmp/n3.nvm"
has found-card out "M0003 was reissued already"
eq "a replaced card's reissue counts nothing" "$(count M0003)" "$before"
"$icdup" status --card "sim:$tmp/o3.nvm" >"$tmp/o3.status" 2>&1
has o3 status "terminated"
"$icdup" status --card "sim:$tmp/n3.nvm" >"$tmp/n3.status" 2>&1
has n3 status "life cycle  creation"
"$icissue" show --db "$cdb" --id M0003 >"$tmp/m3.show" 2>&1
has m3 show "claim aborted"

# ---- a reissue onto another card type: the central record follows -------------------------
before=$(count M0001)
run north-type 0 "$icissue" reissue $(branch north) --id M0001 --to "sim:$tmp/t1.nvm" \
  --type ICDUP-DI --design classic
run show-type 0 "$icissue" show --db "$cdb" --id M0001
has show-type out "card type    ICDUP-DI"
has show-type out "design       classic"
has show-type out "issue count  $((before + 1))"

grep -q "pw-\|PRIVATE" "$tmp/serve.log" && bad "secrets in the server log" "$tmp/serve.log" ||
  ok "no item value or key in the server log"
kill "$srv_pid"; wait "$srv_pid"; rc=$?
srv_pid=""
eq "icissue serve stops on SIGTERM with status 0" "$rc" 0
echo "central.sh: $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
