#!/usr/bin/env bash
# The tools through a real pcscd: two icsim cards in the two readers of pcscd's vpcd driver
# (scripts/pcsc-env.sh). icdup readers, init and clone with pcsc: URIs; icissue issue and
# reissue over PC/SC (cards swapped in the readers); third-party clients against the simulated
# card (opensc-tool: ATR, SELECT MF, READ BINARY of a working EF, a refused READ BINARY of an
# internal EF, unknown AID, unknown GET DATA tag; scriptor from pcsc-tools); faults: the card
# removed, pcscd stopped — a clear message naming the reader and a non-zero exit.
# Usage: tests/e2e/pcsc.sh BUILD_DIR (binaries in BUILD_DIR/bin; run from the repo root).
set -u
out=${1:-build/check}
bin="$out/bin"
icdup="$bin/icdup" icissue="$bin/icissue" icsim="$bin/icsim"
for b in "$icdup" "$icissue" "$icsim"; do
  [ -x "$b" ] || { echo "pcsc.sh: no $b" >&2; exit 1; }
done
. scripts/pcsc-env.sh

tmp=$(mktemp -d /tmp/icdup-e2e-pcsc-XXXXXX)
cleanup() { pcsc_stop "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT

. "$(dirname "$0")/../support/e2e.sh"
finish() { echo "pcsc.sh: $((checks - fails)) of $checks checks passed"; [ "$fails" = 0 ]; exit; }

if ! pcsc_start "$tmp"; then
  bad "pcscd with the vpcd driver started" "$tmp/pcscd.log"
  finish
fi
ok "pcscd with the vpcd driver started"
pcsc_insert "$tmp" 0 "$tmp/a.nvm" "$icsim" && ok "card A in reader 0" || bad "card A in reader 0"
pcsc_insert "$tmp" 1 "$tmp/b.nvm" "$icsim" && ok "card B in reader 1" || bad "card B in reader 1"

umask 077
s1=$(hexrand) s2=$(hexrand) s3=$(hexrand)
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$tmp/pins"
printf 'pin = 123456\nshare.2 = %s\nshare.3 = %s\n' "$s2" "$s3" >"$tmp/officers"
R0="pcsc:icsim vpcd 00 00" R1="pcsc:1"

# ---- readers, ATR, first contact ------------------------------------------------------------
run readers 0 "$icdup" readers
has readers out "pcsc:0  icsim vpcd 00 00"
has readers out "pcsc:1  icsim vpcd 00 01"
has readers out "card present, ATR 3B 8B 80 01 80 31 80 73 B4 21"
run atr 0 opensc-tool -r 0 -a
has atr out "3b:8b:80:01:80:31:80:73:b4:21"
run status-a 0 "$icdup" status --card "$R0"
has status-a out "life cycle"

# ---- init and clone through pcscd ----------------------------------------------------------
run init-a 0 "$icdup" init --card "$R0" --pin "$tmp/pins"
run init-b 0 "$icdup" init --card "$R1" --pin "$tmp/pins"
run clone 0 "$icdup" -v clone --src "$R0" --dst "$R1" --shares "$tmp/officers" \
  --src-pin "$tmp/officers" --dst-pin "$tmp/officers" --generate --state-dir "$tmp/state"
has clone out "proof: dst decrypts what src's public key encrypted"
lacks clone err "313233343536"
lacks clone err "$(echo "$s2" | tr a-f A-F | sed 's/../& /g' | cut -c1-23)"
run status-b 0 "$icdup" status --card "$R1"
has status-b out "imported from card"

# ---- third-party clients --------------------------------------------------------------------
# opensc-tool: SELECT MF, the partner-key working EF 4B20 (read always) and the internal key EF
# 4B10 (never readable), an unknown AID, an unknown GET DATA tag.
run opensc 0 opensc-tool -r 0 -s 00:A4:00:0C:02:3F:00 -s 00:A4:08:0C:04:4B:00:4B:20 \
  -s 00:B0:00:00:41 -s 00:A4:08:0C:04:4B:00:4B:10 -s 00:B0:00:00:10 \
  -s 00:A4:04:00:07:A0:00:00:00:03:10:10:00 -s 00:CA:9F:7F:00
has opensc out "Received (SW1=0x90, SW2=0x00)"
has opensc out "Received (SW1=0x69, SW2=0x81)"
has opensc out "Received (SW1=0x6A, SW2=0x82)"
has opensc out "Received (SW1=0x6A, SW2=0x88)"
if [ "$(grep -c 'SW1=0x90, SW2=0x00' "$tmp/opensc.out")" -ge 4 ]; then ok "opensc: four commands 9000"
else bad "opensc: four commands 9000" "$tmp/opensc.out"; fi
printf 'reset\n00 A4 00 0C 02 3F 00\n00 CA DF 03 00\n00 84 00 00 08\nexit\n' >"$tmp/script"
run scriptor 0 scriptor -r "icsim vpcd 00 01" "$tmp/script"
has scriptor out "< 05 90 00 : Normal processing."
if grep -Eq '^< ([0-9A-F]{2} ){8}90 00 : Normal processing' "$tmp/scriptor.out"; then
  ok "scriptor: GET CHALLENGE gave 8 bytes"; else bad "scriptor: GET CHALLENGE" "$tmp/scriptor.out"; fi

# ---- icissue over PC/SC: blank cards swapped into the readers ------------------------------
printf 'puk = 12345678\nadmin = 87654321\n' >"$tmp/issuer"
{
  echo "identity,card_type,holder,member,expiry,password,share1"
  echo "1000000000000042,ICDUP-1,Grace Hopper,1000000000000042,2030-06-30,135790,$s1"
} >"$tmp/records.csv"
export ICISSUE_DB="$tmp/issuance.db"
run db-init 0 "$icissue" init
run db-types 0 "$icissue" types load examples/types.json
run db-import 0 "$icissue" import --csv "$tmp/records.csv"
pcsc_remove "$tmp" 0 && pcsc_insert "$tmp" 0 "$tmp/c.nvm" "$icsim" && ok "card C in reader 0" \
  || bad "card C in reader 0"
pcsc_remove "$tmp" 1 && pcsc_insert "$tmp" 1 "$tmp/d.nvm" "$icsim" && ok "card D in reader 1" \
  || bad "card D in reader 1"
run issue 0 "$icissue" issue --id 1000000000000042 --card "$R0" --secrets "$tmp/issuer"
has issue out "issuance count 1"
run reissue 0 "$icissue" reissue --from-card "$R0" --to "$R1" --secrets "$tmp/issuer"
has reissue out "issuance count 2"
has reissue out "terminated"
run status-c 0 "$icdup" status --card "$R0"
has status-c out "terminated"

# ---- pcscd restarts: icsim --vpcd reconnects by itself ------------------------------------
pid=$(cat "$tmp/pcscd.pid")
kill "$pid"; wait "$pid" 2>/dev/null; rm -f "$tmp/pcscd.pid"
if pcsc_start "$tmp" && pcsc_wait "$tmp" 0 present && pcsc_wait "$tmp" 1 present; then
  ok "pcscd restarted: both icsim cards reconnected"
else
  bad "pcscd restarted: both icsim cards reconnected" "$tmp/pcscd.log"
fi
run after-restart 0 "$icdup" status --card "$R1"
has after-restart out "operational"

# ---- faults ---------------------------------------------------------------------------------
pcsc_remove "$tmp" 1
run removed 1 "$icdup" status --card "$R1"
has removed err "pcsc:"
has removed err "no card"
pcsc_stop "$tmp"
run nopcscd 1 "$icdup" status --card "$R0"
has nopcscd err "pcscd is not running"

finish
