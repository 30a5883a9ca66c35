#!/usr/bin/env bash
# icissue through the real CLI binary on in-process simulated cards (sim: NVM files), with the
# card types of examples/types.json: init, types load, CSV import (good and bad), list, show
# (secrets hidden), issue of an original and a backup card, the refusals (record already
# issued, card not blank, loose secrets file) leaving the issuance file unchanged, reissue
# from a card (the old card terminated; a rerun finds it done) and for a lost card (--id), to
# another card type, print, batch on a pool of cards, help texts and usage errors, a
# PostgreSQL server that does not answer. Checks exit codes (0 ok, 1 failure, 2 usage),
# outputs, the cards (icdup status) and the database (sqlite3, or psql).
# Usage: tests/e2e/issue.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from the repo root;
#        KEEP=1 keeps the temporary directory with every output for a look afterwards)
# The issuance file is a SQLite file, or with ICDUP_TEST_BACKEND=postgresql a new database on
# the server $ICDUP_TEST_PG (a URI without a database, as scripts/pg-env.sh gives), dropped at
# the end. tests/run-unit.sh runs it on each back end:
# run-unit: each back end
set -u
out=${1:-build/check}
bin="$out/bin"
icissue="$bin/icissue"
icdup="$bin/icdup"
types=examples/types.json
backend=${ICDUP_TEST_BACKEND:-sqlite}
[ -x "$icissue" ] && [ -x "$icdup" ] || { echo "issue.sh: no $icissue or $icdup" >&2; exit 1; }
[ -f "$types" ] || { echo "issue.sh: no $types (run from the repo root)" >&2; exit 1; }
icissue=$(cd "$bin" && pwd)/icissue icdup=$(cd "$bin" && pwd)/icdup # the reissues run in $tmp
case $backend in
  sqlite)
    command -v sqlite3 >/dev/null || { echo "issue.sh: the sqlite3 command is needed" >&2; exit 1; } ;;
  postgresql)
    [ -n "${ICDUP_TEST_PG:-}" ] || { echo "issue.sh: ICDUP_TEST_BACKEND=postgresql needs ICDUP_TEST_PG" >&2; exit 1; }
    command -v psql >/dev/null || { echo "issue.sh: the psql command is needed" >&2; exit 1; } ;;
  *) echo "issue.sh: ICDUP_TEST_BACKEND is sqlite or postgresql" >&2; exit 1 ;;
esac

tmp=$(mktemp -d /tmp/icdup-e2e-issue-XXXXXX)
pgdb=""
cleanup() {
  [ -z "$pgdb" ] || psql -X -q "$ICDUP_TEST_PG/postgres" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/../support/e2e.sh"

umask 077
# sql QUERIES: the rows of the queries, columns separated by "|". On PostgreSQL the database
# gets SQLite's hex() and group_concat() for the checks below (functions: no tables).
if [ "$backend" = sqlite ]; then
  db="$tmp/issuance.db"
  shown=$db
  sql() { sqlite3 -batch -noheader "$db" "$1"; }
else
  pgdb=icdup_e2e_issue_$$
  psql -X -q -v ON_ERROR_STOP=1 "$ICDUP_TEST_PG/postgres" -c "CREATE DATABASE $pgdb" >/dev/null || exit 1
  db="$ICDUP_TEST_PG/$pgdb"
  shown=$(printf '%s' "$db" | sed 's|://\([^:@/]*\):[^@/]*@|://\1@|') # what icissue shows
  sql() { printf '%s\n' "$1" | psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -f -; }
  sql "CREATE FUNCTION hex(bytea) RETURNS text LANGUAGE sql IMMUTABLE
         AS \$\$ SELECT upper(encode(\$1, 'hex')) \$\$;
       CREATE FUNCTION gc_step(text, text) RETURNS text LANGUAGE sql IMMUTABLE
         AS \$\$ SELECT CASE WHEN \$1 IS NULL THEN \$2 ELSE \$1 || ',' || \$2 END \$\$;
       CREATE AGGREGATE group_concat(text) (SFUNC = gc_step, STYPE = text);" || exit 1
fi
# rec IDENTITY COLUMNS: columns of a record ("1|2|..."); events IDENTITY [EVENTS]: its history
# events in order, comma-separated (only those of the SQL list EVENTS when given)
rec() { sql "SELECT $2 FROM records WHERE identity = '$1'"; }
events() {
  sql "SELECT group_concat(event) FROM (SELECT event FROM history h JOIN records r
    ON r.id = h.record_id WHERE identity = '$1' ${2:+AND event IN ($2)} ORDER BY h.id) AS e"
}
# A digest of the state of the issuance file that a refusal must not change (the history
# included).
snapshot() {
  sql "SELECT id, identity, card_type, design, issued, issue_count,
    backup_count, hex(card_serial), hex(pending_serial), pending_role FROM records ORDER BY id;
    SELECT record_id, item, value FROM record_items ORDER BY record_id, item;
    SELECT count(*) FROM history;" | sha256sum | cut -c1-16
}
# card_status NAME URI: icdup status of a card into $tmp/NAME.out
card_status() { "$icdup" status --card "$2" </dev/null >"$tmp/$1.out" 2>"$tmp/$1.err"; }
sig8() { head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n'; } # a PNG: 89504e470d0a1a0a
serial_of() { sed -n 's/^serial      //p' "$tmp/$1.out" | tr -d ' '; }

secrets="$tmp/issuer.secrets"
printf '# the issuer\npuk = 13572468\nadmin = 97531864\n' >"$secrets"
chmod 600 "$secrets"
share=00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF

cat >"$tmp/records.csv" <<EOF
identity,card_type,holder,address,member,expiry,password,share1
M0001,ICDUP-1,Ada Lovelace,"12 St James's Square, London",10001,2029-12-31,pw-ada-4711,$share
M0002,ICDUP-1,Charles Babbage,,10002,2028-06-30,pw-charles-0815,
M0003,ICDUP-DI,Grace Hopper,"Arlington, VA",10003,2030-01-31,pw-grace-2024,$share
B0001,ICDUP-1,Batch One,,20001,2029-01-31,pw-batch-0001,
B0002,ICDUP-1,Batch Two,,20002,2029-02-28,pw-batch-0002,
B0003,ICDUP-1,Batch Three,,20003,2029-03-31,pw-batch-0003,
B0004,ICDUP-DI,Batch Four,,20004,2029-04-30,pw-batch-0004,
B0005,ICDUP-1,Batch Five,,20005,2029-05-31,pw-batch-0005,
F0001,ICDUP-DI,Face One,,40001,2031-07-31,pw-face-0001,
EOF
# Line 3: a date that does not exist; line 4: a type that does not exist; line 5: an identity
# that is in the issuance file already; line 6: a password too long for the type (16).
cat >"$tmp/bad.csv" <<EOF
identity,card_type,holder,address,member,expiry,password,share1
X0001,ICDUP-1,Good Row,,30001,2029-12-31,pw-good-0001,
X0002,ICDUP-1,Bad Date,,30002,2029-02-30,pw-bad-0002,
X0003,NO-SUCH-TYPE,Bad Type,,30003,2029-12-31,pw-bad-0003,
M0001,ICDUP-1,Again,,30004,2029-12-31,pw-bad-0004,
X0005,ICDUP-1,Long Password,,30005,2029-12-31,pw-far-too-long-for-the-item,
EOF

A="sim:$tmp/a.nvm" B="sim:$tmp/b.nvm" C="sim:$tmp/c.nvm" D="sim:$tmp/d.nvm"
E="sim:$tmp/e.nvm" K="sim:$tmp/k.nvm" G="sim:$tmp/g.nvm"

# ---- init and card types --------------------------------------------------------------------
run no-db 1 "$icissue" list --db "$db"
has no-db err "icissue init"
run init 0 "$icissue" init --db "$db"
has init out "created issuance file $shown: schema version 2"
[ "$backend" = postgresql ] || eq "mode of the issuance file" "$(stat -c %a "$db")" 600
eq "schema_version table" "$(sql 'SELECT version FROM schema_version')" 2
run init-again 0 "$icissue" init --db "$db"
has init-again out "schema version 2 (up to date)"
export ICISSUE_DB="$db" # from here on the default of --db

run types-load 0 "$icissue" types load "$types"
has types-load out "2 designs, 1 type readout, 2 identity readouts, 2 card types"
has types-load out "card type ICDUP-1: contact, design classic"
has types-load out "card type ICDUP-DI: dual, design teal"
eq "card types stored" \
  "$(sql 'SELECT group_concat(name) FROM (SELECT name FROM card_types ORDER BY name) AS t')" \
  "ICDUP-1,ICDUP-DI"
eq "correlation rows" "$(sql "SELECT group_concat(card_type || '>' || identity_readout)
  FROM (SELECT * FROM correlation ORDER BY card_type) AS c")" \
  "ICDUP-1>member-ef-5001,ICDUP-DI>member-ef-6010"
sed 's/"name": "ICDUP-DI"/"name": "ICDUP-XX"/; 0,/"sw": "9000"}/s//"sw": "90000"}/' "$types" >"$tmp/badtypes.json"
run types-bad 1 "$icissue" types load "$tmp/badtypes.json"
has types-bad err "\"90000\" is not 4 hex digits"
has types-bad err "nothing stored"
eq "card types after a bad type file" "$(sql 'SELECT count(*) FROM card_types')" 2
run types-list 0 "$icissue" types list
has types-list out "ICDUP-DI"
has types-list out "password         secret max 16 required"
run types-list-json 0 "$icissue" types list --json
has types-list-json out '"name": "ICDUP-1"'

# ---- import ---------------------------------------------------------------------------------
run import 0 "$icissue" import --csv "$tmp/records.csv"
has import out "imported 9 records"
eq "records after import" "$(sql 'SELECT count(*) FROM records')" 9
eq "items of M0002 (no address, no share)" \
  "$(sql "SELECT count(*) FROM record_items JOIN records r ON r.id = record_id
    WHERE identity = 'M0002'")" 4
before=$(snapshot)
run import-bad 1 "$icissue" import --csv "$tmp/bad.csv"
has import-bad err "bad.csv:3:"
has import-bad err "bad.csv:4:"
has import-bad err "bad.csv:5:"
has import-bad err "bad.csv:6:"
has import-bad err "nothing imported"
lacks import-bad err "bad.csv:2:"
lacks import-bad err "pw-far-too-long-for-the-item"
eq "issuance file after the bad import" "$(snapshot)" "$before"
eq "X0001 not half-imported" "$(rec X0001 "count(*)")" 0
run import-none 1 "$icissue" import --csv "$tmp/no-such.csv"
has import-none err "nothing imported"
run import-usage 2 "$icissue" import "$tmp/records.csv"

# ---- list and show --------------------------------------------------------------------------
run list 0 "$icissue" list
has list out "M0003"
eq "list lines (header + 9)" "$(wc -l <"$tmp/list.out")" 10
run list-limit 0 "$icissue" list --unissued --limit 3 --json
eq "list --limit 3 entries" "$(grep -c '"identity"' "$tmp/list-limit.out")" 3
run list-issued 0 "$icissue" list --issued
has list-issued out "(no records)"
run show 0 "$icissue" show --id M0001
has show out "holder    Ada Lovelace"
has show out "password  (secret)"
has show out "share1    (secret)"
lacks show out "pw-ada-4711"
lacks show out "$share"
run show-id 0 "$icissue" show 2
has show-id out "identity     M0002"
run show-json 0 "$icissue" show --id M0001 --json
has show-json out '"name": "password", "kind": "secret", "secret": true, "value": null'
lacks show-json out "pw-ada-4711"
run show-none 1 "$icissue" show --id NOBODY
run show-usage 2 "$icissue" show M0001

# ---- issue ----------------------------------------------------------------------------------
run issue-a 0 "$icissue" issue --id M0001 --card "$A" --secrets "$secrets" --operator alice \
    --stripe "$tmp/a-stripe.txt"
card_status status-a "$A"
sa=$(serial_of status-a)
has issue-a out "issued card $sa for M0001: issuance count 1"
lacks issue-a out "user PIN: ok" # steps only with --steps or -v
has issue-a out "stripe data written to $tmp/a-stripe.txt"
if grep -q '^track1=%B999001.*\^LOVELACE/ADA\^2912' "$tmp/a-stripe.txt" 2>/dev/null &&
   grep -q '^track2=;999001.*=2912' "$tmp/a-stripe.txt"; then
  ok "stripe of M0001: PAN of IIN 999001, LOVELACE/ADA, expiry 2912"; else
  bad "stripe of M0001 is wrong" "$tmp/a-stripe.txt"; fi
has status-a out "life cycle  operational"
has status-a out "card type   ICDUP-1"
has status-a out "key group   3 shares; present: 1;"
eq "M0001 after issue (issued, count, backups, serial)" \
  "$(rec M0001 "issued, issue_count, backup_count, hex(card_serial)")" "1|1|0|$sa"
eq "history of the issue" \
  "$(sql "SELECT event || '/' || role || '/' || operator FROM history WHERE event = 'issued'")" \
  "issued/original/alice"
# the identity EF holds the record's identity
"$icdup" apdu --card "$A" "00 A4 08 0C 04 50 00 50 01" "00 B0 00 00 10" </dev/null >"$tmp/read-a.out" 2>&1
has read-a out "4D 30 30 30 31"

before=$(snapshot)
run issue-again 1 "$icissue" issue --id M0001 --card "$B" --secrets "$secrets"
has issue-again err "already issued"
eq "issuance file after issuing an issued record" "$(snapshot)" "$before"
card_status status-b "$B"
has status-b out "life cycle  creation"
run issue-notblank 1 "$icissue" issue --id M0002 --card "$A" --secrets "$secrets"
has issue-notblank err "not blank"
eq "issuance file after a non-blank card" "$(snapshot)" "$before"
card_status status-a2 "$A"
has status-a2 out "life cycle  operational"
run issue-unknown 1 "$icissue" issue --id NOBODY --card "$B" --secrets "$secrets"
eq "issuance file after an unknown record" "$(snapshot)" "$before"
run issue-nosecrets 1 "$icissue" issue --id M0002 --card "$B"
has issue-nosecrets err "--secrets FILE"
eq "issuance file without the issuer's secrets" "$(snapshot)" "$before"
chmod 644 "$secrets"
run issue-loose 1 "$icissue" issue --id M0002 --card "$B" --secrets "$secrets"
has issue-loose err "group or others"
chmod 600 "$secrets"
card_status status-b2 "$B"
has status-b2 out "life cycle  creation"

run issue-backup 0 "$icissue" issue -v --id M0001 --card "$K" --role backup \
    --secrets "$secrets" --steps
card_status status-k "$K"
sk=$(serial_of status-k)
has issue-backup out "issued backup card $sk for M0001: backup count 1"
has issue-backup out "card: write member number: ok"
has status-k out "life cycle  operational"
has issue-backup err "80 D8 00 01 20 [32 bytes redacted]"
lacks issue-backup err "00 11 22 33 44 55 66 77"
eq "M0001 after the backup (issued, count, backups, serial)" \
  "$(rec M0001 "issued, issue_count, backup_count, hex(card_serial)")" "1|1|1|$sa"
run backup-first 1 "$icissue" issue --id M0002 --card "$B" --role backup --secrets "$secrets"
has backup-first err "issue the original first"

# -v traces the APDUs with the PINs redacted
run issue-v 0 "$icissue" issue -v --id M0002 --card "$D" --secrets "$secrets"
card_status status-d "$D"
sd=$(serial_of status-d)
has issue-v out "issued card $sd for M0002: issuance count 1"
has issue-v out "card: user PIN: ok"
has issue-v err "redacted"
lacks issue-v err "70 77 2D 63 68 61 72" # "pw-char" of the password
lacks issue-v err "31 33 35 37 32 34 36 38" # the PUK

# a step answering another status word than the script expects spoils the card
cat >"$tmp/spoil-types.json" <<'EOF2'
{"format": "icissue-types/1",
 "designs": [{"name": "plain", "background": "#ffffff", "accent": "#000000", "text": "#000000"}],
 "type_readouts": [{"name": "get-data-df02", "apdu": "00 CA DF 02 00", "sw": "9000", "priority": 1}],
 "identity_readouts": [{"name": "member-ef-5001", "encoding": "ascii",
   "steps": [{"apdu": "00 A4 08 0C 04 50 00 50 01"}, {"apdu": "00 B0 00 00 10"}]}],
 "card_types": [{"name": "SPOIL", "interface": "contact", "design": "plain",
   "type_readout": "get-data-df02", "type_value": "SPOIL", "identity_readout": "member-ef-5001",
   "items": [{"name": "holder", "kind": "text", "max": 40, "required": true}],
   "scripts": {
     "original": [{"label": "card type", "apdu": "00 DA DF 02", "item": "card_type"},
                  {"label": "select EF 5001", "apdu": "00 A4 00 0C", "data": "50 01", "sw": "9000"}],
     "backup": [{"label": "card type", "apdu": "00 DA DF 02", "item": "card_type"}]}}]}
EOF2
run types-spoil 0 "$icissue" types load "$tmp/spoil-types.json"
printf 'identity,card_type,holder\nS0001,SPOIL,Spoiled Card\n' >"$tmp/spoil.csv"
run import-spoil 0 "$icissue" import --csv "$tmp/spoil.csv"
S="sim:$tmp/s.nvm"
run issue-spoil 1 "$icissue" issue --id S0001 --card "$S"
has issue-spoil err "select EF 5001"
has issue-spoil err "the card is spoiled (terminated)"
card_status status-s "$S"
has status-s out "life cycle  terminated"
eq "S0001 after the spoiled card (issued, count, serial, pending)" \
  "$(rec S0001 "issued, issue_count, hex(card_serial), hex(pending_serial)")" "0|0||"
eq "history of the spoiled card" \
  "$(events S0001)" \
  "personalizing,spoiled"

# ---- reissue --------------------------------------------------------------------------------
# the reissuing file goes next to a SQLite file; in the current directory on PostgreSQL (so
# the reissues run in $tmp, never leaving a file in the repo)
cd "$tmp" || exit 1
run reissue 0 "$icissue" reissue --from-card "$A" --to "$C" --secrets "$secrets" --operator bob
card_status status-c "$C"
sc=$(serial_of status-c)
has reissue out "reissued M0001 on card $sc: issuance count 2"
has reissue out "old card $sa: terminated"
if [ "$backend" = postgresql ]; then
  has reissue out "record extracted to reissue-M0001.json"
else
  has reissue out "record extracted to $tmp/reissue-M0001.json"
fi
card_status status-a3 "$A"
has status-a3 out "life cycle  terminated"
has status-c out "life cycle  operational"
eq "M0001 after the reissue (issued, count, serial)" \
  "$(rec M0001 "issued, issue_count, hex(card_serial)")" "1|2|$sc"
eq "mode of the reissuing file" "$(stat -c %a "$tmp/reissue-M0001.json" 2>/dev/null)" 600
if grep -qF '"identity": "M0001"' "$tmp/reissue-M0001.json" 2>/dev/null; then
  ok "reissuing file holds the record"; else bad "reissuing file lacks the record"; fi
eq "history of the reissue" \
  "$(events M0001 "'reissue', 'issued', 'terminated'")" \
  "issued,issued,reissue,issued,terminated"
run reissue-again 0 "$icissue" reissue --from-card "$A" --to "$C" --secrets "$secrets"
has reissue-again out "M0001 was reissued already: card $sc is its current card, issuance count 2"
has reissue-again out "terminated already"
eq "M0001 after the rerun (issued, count, serial)" \
  "$(rec M0001 "issued, issue_count, hex(card_serial)")" "1|2|$sc"
run reissue-same 2 "$icissue" reissue --from-card "$C" --to "$C"
run reissue-noto 2 "$icissue" reissue --from-card "$C"
run reissue-unknown 1 "$icissue" reissue --from-card "$B" --to "$E" --secrets "$secrets"
has reissue-unknown err "unknown card type"

# a lost card: M0002's card D stays as it is
run reissue-lost 0 "$icissue" reissue --id M0002 --to "$E" --secrets "$secrets"
card_status status-e "$E"
se=$(serial_of status-e)
has reissue-lost out "reissued M0002 on card $se: issuance count 2"
has reissue-lost out "old card: lost"
eq "M0002 after the reissue (issued, count, serial)" \
  "$(rec M0002 "issued, issue_count, hex(card_serial)")" "1|2|$se"
card_status status-d2 "$D"
has status-d2 out "life cycle  operational"

# from the contact card to a dual-interface card: identity read through the correlation table
run reissue-di 0 "$icissue" reissue --from-card "$C" --to "$G" --type ICDUP-DI --design teal \
    --secrets "$secrets" --reissue-file "$tmp/m1-again.json"
card_status status-g "$G"
sg=$(serial_of status-g)
has reissue-di out "reissued M0001 on card $sg: issuance count 3"
has status-g out "card type   ICDUP-DI"
eq "M0001 now (type, design, count)" \
  "$(rec M0001 "card_type, design, issue_count")" "ICDUP-DI|teal|3"
"$icdup" apdu --card "$G" "00 A4 08 0C 04 60 00 60 10" "00 B0 00 00 10" </dev/null >"$tmp/read-g.out" 2>&1
has read-g out "4D 30 30 30 31"
if [ -f "$tmp/m1-again.json" ]; then ok "--reissue-file written"; else bad "--reissue-file not written"; fi
cd "$OLDPWD" || exit 1

# ---- show, history, print -------------------------------------------------------------------
run show-after 0 "$icissue" show --id M0001
has show-after out "issue count  3"
has show-after out "backups      1"
has show-after out "terminated"
has show-after out "reissue"
run history 0 "$icissue" history --id M0002
has history out "personalizing"
has history out "issued"
run history-all 0 "$icissue" history --json
has history-all out '"identity": "M0001"'
has history-all out '"operator": "bob"'

run print 0 "$icissue" print --id M0003 --face "$tmp/m3.png" --stripe "$tmp/m3.txt"
has print out "card face written to $tmp/m3.png"
eq "PNG signature of the card face" "$(sig8 "$tmp/m3.png")" 89504e470d0a1a0a
if grep -q '^track1=%B999002' "$tmp/m3.txt" 2>/dev/null && grep -q '^track2=;999002' "$tmp/m3.txt"; then
  ok "stripe file holds tracks 1 and 2"; else bad "stripe file lacks the tracks" "$tmp/m3.txt"; fi
run print-usage 2 "$icissue" print --id M0003

# ---- batch ----------------------------------------------------------------------------------
mkdir -p "$tmp/pool"
printf '# five members\nB0001\n\nB0002\n  B0003  \nB0004\r\nB0005\n' >"$tmp/ids.txt"
run batch 0 "$icissue" batch --ids "$tmp/ids.txt" --card-pool "sim:$tmp/pool/card-%d.nvm" \
    --secrets "$secrets"
has batch out "issued 5 of 5, 0 failed"
has batch out "3/5 B0003: card"
has batch out "cards/s"
eq "batch records issued" \
  "$(sql "SELECT count(*) FROM records WHERE identity LIKE 'B%' AND issued = 1 AND issue_count = 1")" 5
card_status status-p4 "sim:$tmp/pool/card-4.nvm"
has status-p4 out "life cycle  operational"
has status-p4 out "card type   ICDUP-DI"
printf 'M0003\nB0002\n' >"$tmp/ids2.txt"
run batch-fail 1 "$icissue" batch --ids "$tmp/ids2.txt" --card-pool "sim:$tmp/pool2-{n}.nvm" \
    --secrets "$secrets"
has batch-fail out "issued 1 of 2, 1 failed"
has batch-fail out "failed B0002"
has batch-fail out "already issued"
eq "M0003 issued by the batch" "$(rec M0003 "issued")" 1
printf 'F0001\n' >"$tmp/ids-f.txt"
run batch-faces 0 "$icissue" batch --ids "$tmp/ids-f.txt" --card-pool "sim:$tmp/pool-f-%d.nvm" \
    --secrets "$secrets" --faces "$tmp/faces"
has batch-faces out "issued 1 of 1, 0 failed"
eq "batch card face (PNG signature)" "$(sig8 "$tmp/faces/F0001.png")" 89504e470d0a1a0a
printf 'B0001\nB0001\n' >"$tmp/ids3.txt"
run batch-dup 1 "$icissue" batch --ids "$tmp/ids3.txt" --card-pool "sim:$tmp/pool3-%d.nvm"
has batch-dup err "ids3.txt:2: B0001 appears already on line 1"
run batch-usage 2 "$icissue" batch --ids "$tmp/ids.txt" --card-pool "sim:$tmp/pool/card.nvm"

# ---- help texts and usage errors ---------------------------------------------------------------
for c in init types import list show history issue reissue batch print; do
  run "help-$c" 0 "$icissue" "$c" --help
  has "help-$c" out "usage: icissue $c"
done
run help-main 0 "$icissue" --help
has help-main out "reissue (--from-card URI | --id IDENTITY) --to URI"
run usage-none 2 "$icissue"
run usage-cmd 2 "$icissue" frobnicate
run usage-opt 2 "$icissue" list --frob
has usage-opt err "Try 'icissue list --help'."
run usage-nocard 2 "$icissue" issue --id M0003
has usage-nocard err "--card URI is required"
run usage-role 2 "$icissue" issue --id M0003 --card "$B" --role spare
run usage-list 2 "$icissue" list --issued --unissued

# ---- a PostgreSQL server that does not answer ---------------------------------------------------
run pg-down 1 "$icissue" list --db "postgresql://clerk:hush-hush-42@127.0.0.1:1/issuance"
has pg-down err "postgresql://clerk@127.0.0.1:1/issuance: cannot connect to PostgreSQL"
lacks pg-down err "hush-hush-42"

# ---- no secret anywhere in the outputs (nor the password of the database's URI) ---------------
pgpw=$(printf '%s' "$db" | sed -n 's|^[a-z]*://[^:@/]*:\([^@/]*\)@.*|\1|p')
if grep -rlE "pw-(ada|charles|grace|batch)|13572468|97531864|00112233445566778899AABBCCDDEEFF${pgpw:+|$pgpw}" \
    "$tmp"/*.out "$tmp"/*.err >"$tmp/leaks" 2>/dev/null; then
  bad "a secret appears in an output" "$tmp/leaks"; else ok "no secret in any output"; fi

echo "issue.sh ($backend): $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
