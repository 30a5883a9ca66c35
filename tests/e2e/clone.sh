#!/usr/bin/env bash
# icdup init + icdup clone through the real CLI binaries, on in-process simulated cards (sim:
# NVM files) and one icsim card over tcp:. Checks exit codes (0 ok, 1 failure, 2 usage), the
# status output of both cards, the --json summary, the refusals (second export, wrong PIN,
# loose secrets file, no terminal), the recovery of a blob kept after a refused import, and the
# approval station (keys wrap of an external key, then keys import: origin external).
# Usage: tests/e2e/clone.sh BUILD_DIR   (binaries in BUILD_DIR/bin)
set -u
out=${1:-build/check}
bin="$out/bin"
icdup="$bin/icdup"
icsim="$bin/icsim"
[ -x "$icdup" ] && [ -x "$icsim" ] || { echo "clone.sh: no $icdup or $icsim" >&2; exit 1; }

tmp=$(mktemp -d /tmp/icdup-e2e-clone-XXXXXX)
icsim_pid=
cleanup() {
  [ -n "$icsim_pid" ] && kill -9 "$icsim_pid" 2>/dev/null && wait "$icsim_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/../support/e2e.sh"

umask 077
state="$tmp/state"
pins="$tmp/pins"
shares="$tmp/shares"
share1="$tmp/pins-share1"
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\n' >"$pins"
s1=$(hexrand) s2=$(hexrand) s3=$(hexrand)
printf '# three officers\nshare.1 = %s\nshare.2 = %s\nshare.3 = %s\n' "$s1" "$s2" "$s3" >"$shares"
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$share1"

A="sim:$tmp/a.nvm" B="sim:$tmp/b.nvm" C="sim:$tmp/c.nvm" D="sim:$tmp/d.nvm"

# ---- init ----------------------------------------------------------------------------------
run init-a 0 "$icdup" init --card "$A" --pin "$share1"
has init-a out "key group of 3 shares (set now: 1)"
run init-b 0 "$icdup" init --card "$B" --pin "$share1"
run init-c 0 "$icdup" init --card "$C" --pin "$pins"
run init-again 1 "$icdup" init --card "$A" --pin "$pins"
has init-again err "not blank"
run init-usage 2 "$icdup" init --card "$D" --pin "$pins" --shares-count 9
run init-noterm 2 "$icdup" init --card "$D"
has init-noterm err "not a terminal"
chmod 644 "$pins"
run init-loose 1 "$icdup" init --card "$D" --pin "$pins"
has init-loose err "group or others"
chmod 600 "$pins"
run init-help 0 "$icdup" init --help
has init-help out "usage: icdup init"

run status-a0 0 "$icdup" status --card "$A"
has status-a0 out "key group   3 shares; present: 1; incomplete (no KCV)"
has status-a0 out "key         none"

# ---- clone usage errors and refusals before any change -----------------------------------------
run clone-nodst 2 "$icdup" clone --src "$A"
run clone-same 2 "$icdup" clone --src "$A" --dst "$A"
run clone-twostdin 2 "$icdup" clone --src "$A" --dst "$B" --src-pin - --dst-pin -
run clone-nopin 2 "$icdup" clone --src "$A" --dst "$B" --shares "$shares"
has clone-nopin err "not a terminal"
run clone-noshares 1 "$icdup" clone --src "$A" --dst "$B" --src-pin "$pins" --dst-pin "$pins" \
    --state-dir "$state"
has clone-noshares err "shares 2 and 3 needed"
has clone-noshares err "nothing was changed"
printf 'pin = 654321\n' >"$tmp/wrong"
run clone-wrongpin 1 "$icdup" clone --src "$A" --dst "$B" --shares "$shares" --src-pin "$pins" \
    --dst-pin "$tmp/wrong" --state-dir "$state"
has clone-wrongpin err "VERIFY user PIN on dst: wrong PIN, 2 tries left"
if grep -q 654321 "$tmp/clone-wrongpin.err" "$tmp/clone-wrongpin.out"; then
  bad "the wrong PIN is echoed"; else ok "the wrong PIN is not echoed"; fi

# ---- the clone, with its JSON summary --------------------------------------------------------
# The dst PIN comes on standard input ('-'), the rest from files.
"$icdup" clone --src "$A" --dst "$B" --shares "$shares" --src-pin "$pins" --dst-pin - \
    --state-dir "$state" --json <"$pins" >"$tmp/clone-ab.out" 2>"$tmp/clone-ab.err"
rc=$?
[ "$rc" = 0 ] && ok "clone-ab with the dst PIN on stdin (exit 0)" || bad "clone-ab: exit $rc" "$tmp/clone-ab.err"
has clone-ab out '"ok": true'
has clone-ab out '"proved": true'
has clone-ab out '"generated": true'
has clone-ab out '"shares_set": {"src": [2, 3], "dst": [2, 3]}'
has clone-ab out '"kcv_from": {"src": "card", "dst": "card"}'
has clone-ab out '"state_kept": false'
apdus=$(sed -n 's/.*"total": \([0-9]*\).*/\1/p' "$tmp/clone-ab.out")
if [ -n "$apdus" ] && [ "$apdus" -le 16 ]; then ok "clone of N=3 in $apdus APDUs (<= 16)"; else
  bad "clone took '$apdus' APDUs"; fi
if [ -z "$(ls -A "$state" 2>/dev/null)" ]; then ok "state directory empty after the clone"; else
  bad "state directory not empty"; fi

run status-a 0 "$icdup" status --card "$A" --json
serial_a=$(sed -n 's/.*"serial": "\([0-9A-F]*\)".*/\1/p' "$tmp/status-a.out")
kcv=$(sed -n 's/.*"key_group": {[^}]*"kcv": "\([0-9A-F]*\)".*/\1/p' "$tmp/status-a.out")
has status-a out '"backup_generated": true'
has status-a out '"export_count": 1'
has status-a out '"origin": "generated"'
run status-b 0 "$icdup" status --card "$B"
has status-b out "key group   3 shares; present: 1, 2 and 3; KCV $kcv"
has status-b out "present, imported from card $serial_a under KCV $kcv"
run status-b-json 0 "$icdup" status --card "$B" --json
has status-b-json out "\"origin\": \"imported\", \"source_serial\": \"$serial_a\", \"source_kcv\": \"$kcv\""

# Public keys agree.
run pub-a 0 "$icdup" keys pubkey --card "$A"
run pub-b 0 "$icdup" keys pubkey --card "$B"
if cmp -s "$tmp/pub-a.out" "$tmp/pub-b.out"; then ok "same public key on both cards"; else
  bad "public keys differ"; fi

# A rerun finds the clone done and only proves it.
run clone-rerun 0 "$icdup" clone --src "$A" --dst "$B" --src-pin "$pins" --dst-pin "$pins" \
    --state-dir "$state"
has clone-rerun out "dst already holds src's key"
has clone-rerun out "proof: dst decrypts what src's public key encrypted"

# ---- the one-export rule --------------------------------------------------------------------
run clone-second 1 "$icdup" clone --src "$A" --dst "$C" --shares "$shares" --src-pin "$pins" \
    --dst-pin "$pins" --state-dir "$state" --json
has clone-second out '"ok": false'
has clone-second err "already exported"
run status-c 0 "$icdup" status --card "$C"
has status-c out "key         none"

# ---- a refused import keeps the blob; the admin imports it by hand ---------------------------
E="sim:$tmp/e.nvm" F="sim:$tmp/f.nvm"
run init-e 0 "$icdup" init --card "$E" --pin "$pins" --shares-count 1
run init-f 0 "$icdup" init --card "$F" --pin "$pins" --shares-count 1
printf 'share.1 = %s\n' "$s1" >"$tmp/share-only1"
run share-f 0 "$icdup" keys share --card "$F" --pin "$pins" --shares "$tmp/share-only1"
run gen-f 0 "$icdup" keys generate --card "$F" --pin "$pins"
run clone-ef 1 "$icdup" clone --src "$E" --dst "$F" --shares "$tmp/share-only1" \
    --src-pin "$pins" --dst-pin "$pins" --state-dir "$state"
has clone-ef err "dst already holds a key (generated here)"
has clone-ef err "The wrapped key is kept in $state/clone-"
blob=$(ls "$state"/clone-*.blob 2>/dev/null | head -1)
if [ -n "$blob" ] && [ "$(stat -c %a "$blob")" = 600 ]; then ok "blob kept with mode 0600"; else
  bad "no blob of mode 0600 in $state"; fi
run import-f 0 "$icdup" keys import --card "$F" --pin "$pins" --replace --in "$blob"
rm -f "$blob"
run clone-ef2 0 "$icdup" clone --src "$E" --dst "$F" --src-pin "$pins" --dst-pin "$pins" \
    --state-dir "$state" --lock-export
has clone-ef2 out "dst already holds src's key"
has clone-ef2 out "src: export locked for good"
run status-e 0 "$icdup" status --card "$E" --json
has status-e out '"export_locked": true'

# ---- approval station: an external key wrapped on the host, imported with keys import --------
W="sim:$tmp/w.nvm"
cat "$pins" "$shares" >"$tmp/pins-shares"
"$icdup" init --card "$W" --pin "$tmp/pins-shares" </dev/null >"$tmp/init-w.out" 2>&1 ||
  bad "init-w failed" "$tmp/init-w.out"
hexrand >"$tmp/ext.key"
run wrap-w 0 "$icdup" keys wrap --shares "$shares" --key "$tmp/ext.key" --out "$tmp/ext.blob"
has wrap-w out "KCV $kcv"
run import-w 0 "$icdup" keys import --card "$W" --pin "$pins" --in "$tmp/ext.blob"
"$icdup" status --card "$W" --json </dev/null >"$tmp/status-w.out" 2>&1
if grep -qF "\"origin\": \"external\", \"source_serial\": null, \"source_kcv\": \"$kcv\"" \
    "$tmp/status-w.out"; then ok "status of W: origin external under KCV $kcv"; else
  bad "status of W: not external under KCV $kcv" "$tmp/status-w.out"; fi
pub_w=$("$icdup" keys pubkey --card "$W" </dev/null 2>/dev/null)
if [ -n "$pub_w" ] && grep -qxF "public key $pub_w" "$tmp/wrap-w.out"; then
  ok "W holds the wrapped key (same public key)"; else bad "W's public key differs" "$tmp/wrap-w.out"; fi

# ---- over an icsim socket --------------------------------------------------------------------
"$icsim" --nvm "$tmp/g.nvm" --listen 127.0.0.1:0 >"$tmp/icsim.out" 2>"$tmp/icsim.err" &
icsim_pid=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's/^icsim: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/icsim.out")
  [ -n "$port" ] && break
  sleep 0.05
done
if [ -n "$port" ]; then
  G="tcp:127.0.0.1:$port" H="sim:$tmp/h.nvm"
  run init-g 0 "$icdup" init --card "$G" --pin "$pins" --shares-count 2
  run init-h 0 "$icdup" init --card "$H" --pin "$pins" --shares-count 2
  run clone-gh 0 "$icdup" clone --src "$G" --dst "$H" --shares "$shares" --src-pin "$pins" \
      --dst-pin "$pins" --state-dir "$state" --json
  has clone-gh out '"kcv_from": {"src": "host", "dst": "host"}'
  has clone-gh out '"proved": true'
else
  bad "icsim did not listen" "$tmp/icsim.err"
fi

# ---- help texts ------------------------------------------------------------------------------
run help-clone 0 "$icdup" clone --help
has help-clone out "usage: icdup clone"
run help-keys 0 "$icdup" keys --help
has help-keys out "usage: icdup keys kcv"
run help-main 0 "$icdup" --help
has help-main out "clone   --src URI --dst URI"

echo "clone.sh: $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
