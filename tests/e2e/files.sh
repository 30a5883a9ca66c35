#!/usr/bin/env bash
# icdup encrypt / decrypt / recover through the real CLI binaries, on in-process simulated cards
# (sim: NVM files): A the original, B its backup (icdup clone), C a new original with its own
# key, and a partner's key as a PEM file. Checks round trips (files and standard input/output),
# the partner's entry with an independent decryption (tests/vectors/gen_filevectors.py),
# refusals that leave nothing behind (wrong card, damaged and truncated files), and a recovery
# from B to C with its JSON summary and a rerun.
# Usage: tests/e2e/files.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from anywhere)
set -u
out=${1:-build/check}
bin="$out/bin"
icdup="$bin/icdup"
[ -x "$icdup" ] || { echo "files.sh: no $icdup" >&2; exit 1; }
root=$(cd "$(dirname "$0")/../.." && pwd)

tmp=$(mktemp -d /tmp/icdup-e2e-files-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/../support/e2e.sh"
same() {
  if cmp -s "$1" "$2"; then ok "$3"; else bad "$3: $1 and $2 differ"; fi
}
absent() {
  if [ ! -e "$1" ]; then ok "$2: no $(basename "$1")"; else bad "$2: $1 exists"; fi
}
no_tmp() {
  if [ -z "$(find "$1" -name '*.tmp-*' 2>/dev/null)" ]; then ok "no temporary file in $(basename "$1")"
  else bad "temporary files left in $1"; fi
}
# partner_opens FILE PLAIN: the partner's private key opens FILE to PLAIN, with the independent
# Python implementation of the format
partner_opens() {
  if python3 - "$tmp/partner.key" "$1" "$2" <<'EOF' 2>"$tmp/py.err"
import importlib.util, os, sys
from cryptography.hazmat.primitives import serialization
spec = importlib.util.spec_from_file_location("gfv", os.environ["GFV"])
g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
priv = key.private_numbers().private_value.to_bytes(32, "big")
assert g.decrypt(open(sys.argv[2], "rb").read(), priv) == open(sys.argv[3], "rb").read()
EOF
  then ok "partner opens $(basename "$1") (Python)"; else bad "partner cannot open $1" "$tmp/py.err"; fi
}
export GFV="$root/tests/vectors/gen_filevectors.py"

umask 077
state="$tmp/state"
pins="$tmp/pins"
shares="$tmp/shares"
s1=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$pins"
printf 'share.1 = %s\n' "$s1" >"$shares"
A="sim:$tmp/a.nvm" B="sim:$tmp/b.nvm" C="sim:$tmp/c.nvm"

# ---- cards and keys --------------------------------------------------------------------------
run init-a 0 "$icdup" init --card "$A" --pin "$pins" --shares-count 1
run init-b 0 "$icdup" init --card "$B" --pin "$pins" --shares-count 1
run init-c 0 "$icdup" init --card "$C" --pin "$pins" --shares-count 1
run clone-ab 0 "$icdup" clone --src "$A" --dst "$B" --shares "$shares" --src-pin "$pins" \
    --dst-pin "$pins" --state-dir "$state"
run gen-c 0 "$icdup" keys generate --card "$C" --pin "$pins"
python3 - "$tmp/partner.key" "$tmp/partner.pem" <<'EOF'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
k = ec.generate_private_key(ec.SECP256R1())
open(sys.argv[1], "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[2], "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))
EOF
[ -s "$tmp/partner.pem" ] && ok "partner key made" || bad "no partner key"

# ---- encrypt and decrypt ---------------------------------------------------------------------
head -c 200000 /dev/urandom >"$tmp/data"
: >"$tmp/empty"
run enc 0 "$icdup" encrypt --to "$A" --to "$tmp/partner.pem" "$tmp/data" "$tmp/data.icd"
has enc out "encrypted 200000 bytes to $tmp/data.icd for 2 recipients"
len=$(stat -c %s "$tmp/data.icd")
# 24 + 2*122 header, 4 chunks of 64 KiB (the last 3392 bytes), 16-byte tags
[ "$len" = $((24 + 244 + 200000 + 4 * 16)) ] && ok "ciphertext length $len" || bad "ciphertext length $len"
run dec-b 0 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/data.icd" "$tmp/data.b"
has dec-b out "decrypted 200000 bytes"
same "$tmp/data" "$tmp/data.b" "the backup decrypts what was encrypted to the original"
if [ "$(stat -c %a "$tmp/data.b")" = 600 ]; then ok "plaintext written with mode 0600"; else
  bad "plaintext mode $(stat -c %a "$tmp/data.b")"; fi
partner_opens "$tmp/data.icd" "$tmp/data"

# standard input and output, a small chunk size, an empty file
"$icdup" encrypt --to "$A" --chunk-exp 10 - - <"$tmp/data" >"$tmp/pipe.icd" 2>"$tmp/pipe.err" \
  && ok "encrypt stdin -> stdout" || bad "encrypt stdin -> stdout" "$tmp/pipe.err"
"$icdup" decrypt --card "$A" --pin "$pins" - - <"$tmp/pipe.icd" >"$tmp/pipe.out" 2>"$tmp/pipe.err" \
  && ok "decrypt stdin -> stdout" || bad "decrypt stdin -> stdout" "$tmp/pipe.err"
same "$tmp/data" "$tmp/pipe.out" "round trip through pipes with 1 KiB chunks"
run enc-empty 0 "$icdup" encrypt --to "$A" "$tmp/empty" "$tmp/empty.icd"
[ "$(stat -c %s "$tmp/empty.icd")" = $((24 + 122 + 16)) ] && ok "empty file: one empty chunk" \
  || bad "empty file length $(stat -c %s "$tmp/empty.icd")"
run dec-empty 0 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/empty.icd" "$tmp/empty.out"
same "$tmp/empty" "$tmp/empty.out" "empty round trip"

# ---- refusals: nothing left behind ------------------------------------------------------------
run dec-wrong-card 1 "$icdup" decrypt --card "$C" --pin "$pins" "$tmp/data.icd" "$tmp/w.out"
has dec-wrong-card err "card is not a recipient of this file"
absent "$tmp/w.out" "wrong card"
python3 - "$tmp/data.icd" "$tmp/flip.icd" "$tmp/cut.icd" "$tmp/long.icd" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
f = bytearray(d); f[100000] ^= 0x01; open(sys.argv[2], "wb").write(f)
open(sys.argv[3], "wb").write(d[:268 + 65552])          # header and the first chunk only
open(sys.argv[4], "wb").write(d + b"\0")
EOF
echo "old content" >"$tmp/keep.out"
run dec-flip 1 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/flip.icd" "$tmp/keep.out"
has dec-flip err "chunk 1 failed authentication"
if [ "$(cat "$tmp/keep.out")" = "old content" ]; then ok "existing output kept on failure"; else
  bad "existing output changed"; fi
run dec-cut 1 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/cut.icd" "$tmp/cut.out"
has dec-cut err "truncated file: it ends after chunk 0, which is not the final chunk"
absent "$tmp/cut.out" "truncated"
run dec-long 1 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/long.icd" "$tmp/long.out"
has dec-long err "chunk 3 failed authentication"
absent "$tmp/long.out" "extended"
run dec-plain 1 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/data" "$tmp/p.out"
has dec-plain err "not an icdup encrypted file"
no_tmp "$tmp"
printf 'pin = 654321\n' >"$tmp/wrongpin"
run dec-wrong-pin 1 "$icdup" decrypt --card "$B" --pin "$tmp/wrongpin" "$tmp/data.icd" "$tmp/x.out"
has dec-wrong-pin err "wrong PIN, 2 tries left"
run dec-right-pin 0 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/data.icd" "$tmp/x.out"

# ---- usage errors ---------------------------------------------------------------------------
run enc-noto 2 "$icdup" encrypt "$tmp/data" "$tmp/n.icd"
run enc-badexp 2 "$icdup" encrypt --to "$A" --chunk-exp 9 "$tmp/data" "$tmp/n.icd"
run enc-one-arg 2 "$icdup" encrypt --to "$A" "$tmp/data"
run enc-same-key 1 "$icdup" encrypt --to "$A" --to "$B" "$tmp/data" "$tmp/n.icd"
has enc-same-key err "recipients 1 and 2 are the same key"
absent "$tmp/n.icd" "refused encryption"
echo "not a key" >"$tmp/junk.pem"
run enc-bad-pem 1 "$icdup" encrypt --to "$tmp/junk.pem" "$tmp/data" "$tmp/n.icd"
has enc-bad-pem err "not a readable PEM or DER public key file"
run dec-two-stdin 2 "$icdup" decrypt --card "$B" --pin - - "$tmp/x.out"
run dec-noterm 2 "$icdup" decrypt --card "$B" "$tmp/data.icd" "$tmp/x.out"
has dec-noterm err "not a terminal"

# ---- recovery ---------------------------------------------------------------------------------
mkdir "$tmp/docs"
for i in 1 2 3 4 5; do
  head -c $((i * 3000)) /dev/urandom >"$tmp/docs/p$i"
  to=(--to "$A")
  [ "$i" = 3 ] && to+=(--to "$tmp/partner.pem")
  "$icdup" encrypt "${to[@]}" --chunk-exp 10 "$tmp/docs/p$i" "$tmp/docs/f$i.icd" >/dev/null \
    || bad "encrypt f$i"
done
echo "plain text" >"$tmp/docs/notes.txt"
chmod 640 "$tmp/docs/f2.icd"
files=("$tmp"/docs/f{1,2,3,4,5}.icd)
run rec-same 2 "$icdup" recover --backup "$B" --new "$B" --backup-pin "$pins" "${files[@]}"
run rec-nofiles 2 "$icdup" recover --backup "$B" --new "$C" --backup-pin "$pins"
run rec-same-key 1 "$icdup" recover --backup "$B" --new "$A" --backup-pin "$pins" "${files[@]}"
has rec-same-key err "same key as the backup card"
run rec 1 "$icdup" recover --backup "$B" --new "$C" --backup-pin "$pins" --new-pin "$pins" \
    --json "${files[@]}" "$tmp/docs/notes.txt"
has rec out '"ok": false'
has rec out '"proved": true, "done": 5, "skipped": 0, "failed": 1, "not_attempted": 0'
has rec out '"status": "failed", "reason": "not an icdup encrypted file'
has rec err "1 of 6 files failed"
if [ "$(stat -c %a "$tmp/docs/f2.icd")" = 640 ]; then ok "recovery keeps the mode"; else
  bad "mode of f2.icd: $(stat -c %a "$tmp/docs/f2.icd")"; fi
no_tmp "$tmp/docs"
for i in 1 2 3 4 5; do
  "$icdup" decrypt --card "$C" --pin "$pins" "$tmp/docs/f$i.icd" "$tmp/docs/c$i" >/dev/null \
    2>"$tmp/rc.err" || bad "C cannot decrypt f$i" "$tmp/rc.err"
  same "$tmp/docs/p$i" "$tmp/docs/c$i" "new card opens recovered f$i"
done
partner_opens "$tmp/docs/f3.icd" "$tmp/docs/p3"
run rec-b-gone 1 "$icdup" decrypt --card "$B" --pin "$pins" "$tmp/docs/f1.icd" "$tmp/docs/b1"
has rec-b-gone err "not a recipient"
run rec-again 0 "$icdup" recover --backup "$B" --new "$C" --backup-pin "$pins" "${files[@]}"
has rec-again out "recover: 0 done, 5 skipped, 0 failed"

# ---- help texts ------------------------------------------------------------------------------
run help-enc 0 "$icdup" encrypt --help
has help-enc out "usage: icdup encrypt"
run help-dec 0 "$icdup" decrypt --help
has help-dec out "usage: icdup decrypt"
run help-rec 0 "$icdup" recover --help
has help-rec out "usage: icdup recover"
run help-main 0 "$icdup" --help
has help-main out "recover --backup URI --new URI FILE..."

echo "files.sh: $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
