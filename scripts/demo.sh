#!/usr/bin/env bash
# `make demo`: the main job on simulated cards. Two blank cards are personalized with the
# key profile (share 1 of the key group set at issuance), the original generates its key pair
# inside the chip, and `icdup clone` gives the backup card the same private key, wrapped under
# the key group and bound to the backup, then proves the backup decrypts for the original's
# public key. Finally the backup card is served by an icsim process over a socket.
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
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$dir/issuance"
printf 'pin = 123456\nshare.2 = %s\nshare.3 = %s\n' "$s2" "$s3" >"$dir/officers"
original="sim:$dir/original.nvm"
backup="sim:$dir/backup.nvm"

step "Issue two blank cards with the key profile; share 1 comes from the issuance data"
"$bin/icdup" init --card "$original" --pin "$dir/issuance" --card-type DEMO
"$bin/icdup" init --card "$backup" --pin "$dir/issuance" --card-type DEMO

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

step "The backup card served by icsim over a socket (vpcd framing), read with -v"
"$bin/icsim" --nvm "$dir/backup.nvm" --listen 127.0.0.1:0 >"$dir/icsim.out" &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$dir/icsim.out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^icsim: listening on //p' "$dir/icsim.out")
"$bin/icdup" -v apdu --card "tcp:$addr" "00 CA DF 10 00" "00 20 00 81 06 313233343536" \
  "00 47 81 00 00"
echo
echo "demo: done"
