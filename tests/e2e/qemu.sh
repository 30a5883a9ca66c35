#!/usr/bin/env bash
# The card firmware (make firmware: build/firmware/icdup-card.elf) under qemu-system-arm
# mps2-an386, driven by the real icdup through the qemu: transport. Checks: status and raw APDUs
# (SELECT MF, GET DATA, GET CHALLENGE) on a volatile card; that without nvm= every open is a new
# blank card (the NVM is QEMU RAM); icdup init and status on a file-backed card (nvm=FILE);
# icdup clone with the QEMU card as source and a simulated card as destination and the reverse,
# with equal public keys; the error messages (no ELF, no QEMU, QEMU exiting); no QEMU left
# running; and that the firmware heap check refuses an image that links malloc.
# Usage: tests/e2e/qemu.sh BUILD_DIR   (binaries in BUILD_DIR/bin; the firmware is built with
# make firmware when build/firmware/icdup-card.elf is missing)
set -u
out=${1:-build/check}
bin="$out/bin"
icdup="$bin/icdup"
elf=${ICDUP_FIRMWARE:-build/firmware/icdup-card.elf}
[ -x "$icdup" ] || { echo "qemu.sh: no $icdup" >&2; exit 1; }
if ! command -v qemu-system-arm >/dev/null; then
  echo "qemu.sh: qemu-system-arm not installed (make deps installs it)" >&2; exit 1
fi
if [ ! -f "$elf" ]; then
  make --no-print-directory firmware >/dev/null || { echo "qemu.sh: make firmware failed" >&2; exit 1; }
fi

tmp=$(mktemp -d /tmp/icdup-e2e-qemu-XXXXXX)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

. "$(dirname "$0")/../support/e2e.sh"

umask 077
Q="qemu:$elf"

# ---- a volatile QEMU card ------------------------------------------------------------------
run status 0 "$icdup" status --card "$Q"
has status out "reader      $Q"
has status out "life cycle  creation (01)"
has status out "3F00          MF"
run apdu 0 "$icdup" -v apdu --card "$Q" "00 A4 00 04 02 3F00 00" "00 CA DF01 00" "00 84 00 00 08"
n9000=$(grep -c ' 90 00 (OK)$' "$tmp/apdu.err")
if [ "$n9000" = 3 ]; then ok "SELECT MF, GET DATA, GET CHALLENGE answered 9000"; else
  bad "expected 3 answers 9000, got $n9000" "$tmp/apdu.err"; fi
has apdu out "62 0F 82 01 38 83 02 3F 00"
chal=$(sed -n 3p "$tmp/apdu.out")
if [[ "$chal" =~ ^([0-9A-F]{2}\ ){8}90\ 00$ ]]; then ok "GET CHALLENGE gave 8 bytes"; else
  bad "GET CHALLENGE answer: $chal"; fi

# Without nvm= the NVM is QEMU RAM: init works, and the next open is a blank card again.
s1=$(hexrand) s2=$(hexrand) s3=$(hexrand)
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\n' >"$tmp/pins"
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$tmp/share1"
printf 'share.1 = %s\nshare.2 = %s\nshare.3 = %s\n' "$s1" "$s2" "$s3" >"$tmp/shares"
run init-volatile 0 "$icdup" init --card "$Q" --pin "$tmp/share1"
has init-volatile out "the card is operational"
run status-after-volatile 0 "$icdup" status --card "$Q"
has status-after-volatile out "life cycle  creation (01)"

# ---- a file-backed QEMU card (nvm=FILE) ----------------------------------------------------
QN="$Q,nvm=$tmp/q.nvm"
run init-q 0 "$icdup" init --card "$QN" --pin "$tmp/share1"
has init-q out "key group of 3 shares (set now: 1)"
run status-q 0 "$icdup" status --card "$QN"
has status-q out "life cycle  operational"
run init-q-again 1 "$icdup" init --card "$QN" --pin "$tmp/pins"
has init-q-again err "not blank"

# clone: QEMU card -> simulated card
run init-s 0 "$icdup" init --card "sim:$tmp/s.nvm" --pin "$tmp/share1"
run clone-q-to-s 0 "$icdup" clone --src "$QN" --dst "sim:$tmp/s.nvm" --shares "$tmp/shares" \
    --src-pin "$tmp/pins" --dst-pin "$tmp/pins" --state-dir "$tmp/state1"
has clone-q-to-s out "proof: dst decrypts what src's public key encrypted"
run pub-q 0 "$icdup" keys pubkey --card "$QN"
run pub-s 0 "$icdup" keys pubkey --card "sim:$tmp/s.nvm"
if [ -s "$tmp/pub-q.out" ] && cmp -s "$tmp/pub-q.out" "$tmp/pub-s.out"; then
  ok "same public key on the QEMU card and its simulated backup"; else bad "public keys differ"; fi

# clone: simulated card -> QEMU card
run init-t 0 "$icdup" init --card "sim:$tmp/t.nvm" --pin "$tmp/share1"
run init-q2 0 "$icdup" init --card "$Q,nvm=$tmp/q2.nvm" --pin "$tmp/share1"
run clone-s-to-q 0 "$icdup" clone --src "sim:$tmp/t.nvm" --dst "$Q,nvm=$tmp/q2.nvm" \
    --shares "$tmp/shares" --src-pin "$tmp/pins" --dst-pin "$tmp/pins" --state-dir "$tmp/state2"
has clone-s-to-q out "dst: imported the key"
run status-q2 0 "$icdup" status --card "$Q,nvm=$tmp/q2.nvm"
has status-q2 out "imported from card"

# ---- errors --------------------------------------------------------------------------------
run no-elf 1 "$icdup" status --card "qemu:$tmp/missing.elf"
has no-elf err "build it with make firmware"
run no-qemu 1 env ICDUP_QEMU="$tmp/no-such-qemu" "$icdup" status --card "$Q"
has no-qemu err "qemu-system-arm not found"
run qemu-exits 1 env ICDUP_QEMU=/bin/false "$icdup" status --card "$Q"
has qemu-exits err "exited with status 1"
run bad-option 2 "$icdup" status --card "$Q,foo=bar"
has bad-option err "only nvm=FILE"

# Every QEMU started here was killed by its transport.
if pgrep -f "$tmp" >/dev/null; then bad "a QEMU of this test is still running"; else
  ok "no QEMU left running"; fi

# ---- the image refuses a heap ----------------------------------------------------------------
if command -v arm-none-eabi-gcc >/dev/null; then
  printf '#include <stdlib.h>\nint main(void) { return malloc(4) == 0; }\n' >"$tmp/heap.c"
  if arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb --specs=nano.specs --specs=nosys.specs \
       -o "$tmp/heap.elf" "$tmp/heap.c" 2>"$tmp/heap-cc.err"; then
    run heap-check 1 bash scripts/check-firmware-elf.sh "$tmp/heap.elf"
    has heap-check err "malloc"
  else
    bad "cannot build the malloc probe" "$tmp/heap-cc.err"
  fi
  run fw-check 0 bash scripts/check-firmware-elf.sh "$elf"
fi

echo "qemu.sh: $((checks-fails)) of $checks checks passed"
[ "$fails" = 0 ]
