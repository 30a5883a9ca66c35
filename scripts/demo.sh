#!/usr/bin/env bash
# `make demo`: the main job on simulated cards. Two blank cards are issued by icissue from an
# issuance file (SQLite) with the example card types: the original and its backup, share 1 of
# the key group set at issuance from the record. The original generates its key pair
# inside the chip, and `icdup clone` gives the backup card the same private key, wrapped under
# the key group and bound to the backup, then proves the backup decrypts for the original's
# public key. A broken original is then reissued from the card itself. Finally the backup
# card is served by an icsim process over a socket.
set -euo pipefail
bin=${1:-build/bin}
dir=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

umask 077
hex32() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
s1=$(hex32) s2=$(hex32) s3=$(hex32)
printf 'puk = 12345678\nadmin = 87654321\n' >"$dir/issuer"
printf 'pin = 246810\nshare.2 = %s\nshare.3 = %s\n' "$s2" "$s3" >"$dir/officers"
original="sim:$dir/original.nvm"
backup="sim:$dir/backup.nvm"
export ICISSUE_DB="$dir/issuance.db" # the issuance file of every icissue command below
{
  echo "identity,card_type,holder,address,member,expiry,password,share1"
  echo "1000000000000001,ICDUP-1,Ada Lovelace,\"12 St James's Square, London\",1000000000000001,2029-12-31,246810,$s1"
} >"$dir/records.csv"

step "The issuance file: card types from examples/types.json, records from CSV"
"$bin/icissue" init
"$bin/icissue" types load examples/types.json
"$bin/icissue" import --csv "$dir/records.csv"

step "Issue the original and the backup card; share 1 comes from the issuance record"
"$bin/icissue" issue --id 1000000000000001 --card "$original" --secrets "$dir/issuer" \
  --face "$dir/face.png" --stripe "$dir/stripe.txt"
"$bin/icissue" issue --id 1000000000000001 --card "$backup" --role backup \
  --secrets "$dir/issuer"
cat "$dir/stripe.txt"

step "Officers 2 and 3 bring their shares; clone generates on the original and duplicates"
"$bin/icdup" clone --src "$original" --dst "$backup" --shares "$dir/officers" \
  --src-pin "$dir/officers" --dst-pin "$dir/officers" --generate --state-dir "$dir/state"

step "The original: key generated here, backup flag set"
"$bin/icdup" status --card "$original" | sed -n '/^key/,$p'

step "The backup: the same key, imported from the original under the same key group"
"$bin/icdup" status --card "$backup" | sed -n '/^key/,$p'

step "A second export is refused: the original made its one backup"
if "$bin/icdup" keys export --card "$original" --pin "$dir/officers" --unbound \
     --out "$dir/second.blob"; then
  echo "demo: a second export succeeded, which must not happen" >&2; exit 1
fi

step "The original breaks: reissue it from the card (type, identity, record), count 2"
"$bin/icissue" reissue --from-card "$original" --to "sim:$dir/original2.nvm" \
  --secrets "$dir/issuer"
"$bin/icissue" show --id 1000000000000001 | sed -n '1,12p'

step "The backup card served by icsim over a socket (vpcd framing), read with -v"
"$bin/icsim" --nvm "$dir/backup.nvm" --listen 127.0.0.1:0 >"$dir/icsim.out" &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$dir/icsim.out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^icsim: listening on //p' "$dir/icsim.out")
"$bin/icdup" -v apdu --card "tcp:$addr" "00 CA DF 10 00" "00 20 00 81 06 323436383130" \
  "00 47 81 00 00"
echo
echo "demo: done"
