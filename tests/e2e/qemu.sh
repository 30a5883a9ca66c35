#!/usr/bin/env bash
# The card firmware (make firmware: build/firmware/icdup-card.elf) under qemu-system-arm
# mps2-an386, driven by the real icdup through the qemu: transport. Checks: status and raw APDUs
# (SELECT MF, GET DATA, GET CHALLENGE) on a volatile card; that without nvm= every open is a new
# blank card (the NVM is QEMU RAM); icdup init and status on a file-backed card (nvm=FILE);
# icdup clone with the QEMU card as source and a simulated card as destination and the reverse,
# with equal public keys; a 100 KB file encrypted to a key generated on a file-backed QEMU card,
# decrypted on it, and a wrong PIN refused; the serial: reader on QEMU's UART as a pty (-serial
# pty: status, APDUs, bad baud rate, a vanished or silent tty); the error messages (no ELF, no QEMU, QEMU exiting); no QEMU left
# running; that the firmware heap check refuses an image that links malloc; and the budget:
# each key operation within 10% of the mbedtls primitives it wraps (instructions under
# -icount), the stack and heap peaks inside their regions, on the bench image.
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

# a file decrypted on the QEMU card (its key generated on it; nvm=FILE keeps it across opens)
QF="$Q,nvm=$tmp/qf.nvm"
run init-qf 0 "$icdup" init --card "$QF" --pin "$tmp/share1" --shares-count 1
run gen-qf 0 "$icdup" keys generate --card "$QF" --pin "$tmp/share1"
head -c 102400 /dev/urandom >"$tmp/data"
run enc-qf 0 "$icdup" encrypt --to "$QF" "$tmp/data" "$tmp/data.icd"
has enc-qf out "encrypted 102400 bytes"
run dec-qf 0 "$icdup" decrypt --card "$QF" --pin "$tmp/share1" "$tmp/data.icd" "$tmp/data.out"
has dec-qf out "decrypted 102400 bytes"
if cmp -s "$tmp/data" "$tmp/data.out"; then ok "the QEMU card decrypts what was encrypted to it"
else bad "decrypted file differs"; fi
printf 'pin = 654321\n' >"$tmp/wrongpin"
run dec-qf-wrong-pin 1 "$icdup" decrypt --card "$QF" --pin "$tmp/wrongpin" "$tmp/data.icd" \
    "$tmp/w.out"
has dec-qf-wrong-pin err "wrong PIN, 2 tries left"
if [ ! -e "$tmp/w.out" ]; then ok "no output after the wrong PIN"; else
  bad "output left after the wrong PIN"; fi

# ---- serial: the firmware's UART on a pseudo-terminal (QEMU -serial pty), as a board's tty ---
# start_pty NAME [QEMU-OPTION...]: starts QEMU running the firmware with its UART0 on a new pty;
# sets qpid and pts (empty when QEMU did not say which pty it took).
start_pty() {
  local name=$1; shift
  qemu-system-arm -M mps2-an386 -nographic -monitor none -kernel "$elf" -serial pty "$@" \
    </dev/null >"$tmp/$name.qemu" 2>&1 &
  qpid=$! pts=
  for _ in $(seq 50); do
    pts=$(sed -n 's|.*char device redirected to \(/dev/pts/[0-9]*\) (label serial0).*|\1|p' \
          "$tmp/$name.qemu")
    [ -n "$pts" ] && break
    sleep 0.1
  done
  if [ -n "$pts" ]; then ok "QEMU ($name) took $pts"; else bad "QEMU gave no pty" "$tmp/$name.qemu"; fi
}
start_pty pty
run serial-status 0 "$icdup" status --card "serial:$pts"
has serial-status out "reader      serial:$pts"
has serial-status out "life cycle  creation (01)"
run serial-apdu 0 "$icdup" -v apdu --card "serial:$pts,baud=115200" "00 A4 00 04 02 3F00 00" \
    "00 84 00 00 08"
n9000=$(grep -c ' 90 00 (OK)$' "$tmp/serial-apdu.err")
eq "serial: answers 9000" "$n9000" 2
has serial-apdu out "62 0F 82 01 38 83 02 3F 00"
run serial-baud 2 "$icdup" status --card "serial:$pts,baud=1234"
has serial-baud err "baud rate 1234 not supported"
kill "$qpid"; wait "$qpid" 2>/dev/null
run serial-gone 1 "$icdup" status --card "serial:$pts"
has serial-gone err "cannot open serial device $pts"
run serial-not-tty 1 "$icdup" status --card "serial:/dev/null"
has serial-not-tty err "/dev/null is not a serial device"
start_pty stopped -S  # a stopped CPU: the tty is there, nothing answers
run serial-silent 1 "$icdup" status --card "serial:$pts"
has serial-silent err "serial device $pts did not answer within 5 s"
kill "$qpid"; wait "$qpid" 2>/dev/null

# ---- the firmware's budget, measured on the bench image (bench/bench_fw.c) -------------------
# Instructions per operation under -icount shift=0 against the bare mbedtls primitives, and the
# stack and heap peaks after a clone's operations and deciphers: they must stay inside the
# regions the linker script and CARD_MBEDTLS_HEAP give (docs/firmware.md, "Measurements").
belf=${ICDUP_FIRMWARE_BENCH:-build/firmware/icdup-card-bench.elf}
run budget 0 "$bin/bench_fw" "$belf"
val() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/budget.out"; }
for op in keygen binding export import decipher; do
  r=$(val "fw_ratio_$op")
  if [ -n "$r" ] && awk -v r="$r" 'BEGIN { exit !(r > 0.9 && r <= 1.10) }'; then
    ok "$op within 10% of the primitives it wraps ($r)"
  else bad "$op: ratio ${r:-missing} to its primitives" "$tmp/budget.out"; fi
done
for what in stack heap; do
  peak=$(val "fw_${what}_peak_bytes"); size=$(val "fw_${what}_size_bytes")
  if [ -n "$peak" ] && [ "$peak" -gt 256 ] && [ $((peak + 512)) -le "$size" ]; then
    ok "$what peak $peak B leaves at least 512 B of the $size B region"
  else bad "$what peak ${peak:-?} B of ${size:-?} B" "$tmp/budget.out"; fi
done
run budget-prod 1 "$bin/bench_fw" "$elf"
has budget-prod err "the firmware refused it (not the bench image?)"

# ---- errors --------------------------------------------------------------------------------
run no-elf 1 "$icdup" status --card "qemu:$tmp/missing.elf"
has no-elf err "build it with make firmware"
run no-qemu 1 env ICDUP_QEMU="$tmp/no-such-qemu" "$icdup" status --card "$Q"
has no-qemu err "qemu-system-arm not found"
run qemu-exits 1 env ICDUP_QEMU=/bin/false "$icdup" status --card "$Q"
has qemu-exits err "exited with status 1"
run bad-option 2 "$icdup" status --card "$Q,foo=bar"
has bad-option err "bad option \"foo=bar\" (nvm=FILE, icount=0..10)"
run bad-icount 2 "$icdup" status --card "$Q,icount=11"
has bad-icount err "bad option \"icount=11\""

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
