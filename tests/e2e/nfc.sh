#!/usr/bin/env bash
# The nfc: transport through the real libnfc: simulated cards behind emulated PN532 readers
# (tests/pn532emu, on pseudo-terminals) reached with libnfc's pn532_uart driver. The emulator's
# framing checked byte by byte without libnfc (wake-up, ACK, NACK, bad checksum, syntax error
# frame, extended frames); nfc-list sees an ISO 14443-4 target; icdup status, init and clone
# with nfc: URIs; every APDU on the wire is short (extended commands go as chained short ones,
# long answers come with GET RESPONSE or the PN532's MI chaining) and the -v trace shows no
# secret; icissue issue and reissue over nfc:; faults: a reader killed mid-command and a mute
# card give a clear message naming the reader and exit 1, and a rerun of the interrupted clone
# finishes it.
# Usage: tests/e2e/nfc.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from the repo root;
#        KEEP=1 keeps the temporary directory with every output for a look afterwards)
set -u
out=${1:-build/check}
bin="$out/bin"
icdup="$bin/icdup" icissue="$bin/icissue" emu="$bin/pn532emu"
types=examples/types.json
for b in "$icdup" "$icissue" "$emu"; do
  [ -x "$b" ] || { echo "nfc.sh: no $b" >&2; exit 1; }
done
[ -f "$types" ] || { echo "nfc.sh: no $types (run from the repo root)" >&2; exit 1; }
command -v nfc-list >/dev/null || { echo "nfc.sh: nfc-list (libnfc-bin) is needed" >&2; exit 1; }

tmp=$(mktemp -d /tmp/icdup-e2e-nfc-XXXXXX)
pids=()
# running PID: the child PID has not exited (a zombie waiting to be reaped has)
running() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 40); do running "$p" || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
# forget PID: a process that has been waited for leaves the list (its PID may be reused)
forget() {
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

. "$(dirname "$0")/../support/e2e.sh"
spaced() { echo "$1" | tr a-f A-F | sed 's/../& /g; s/ $//'; } # "0a1b" -> "0A 1B"
serial_of() { sed -n 's/^serial      //p' "$tmp/$1.out" | tr -d ' '; }
# short_only NAME: every command in the -v trace of run NAME is a short APDU (an extended one
# has 00 where a short one has Lc or Le, followed by more bytes)
short_only() {
  local n
  n=$(awk '/^> / && NF > 6 && $6 == "00" { n++ } END { print n + 0 }' "$tmp/$1.err")
  if [ "$n" = 0 ] && grep -q '^> ' "$tmp/$1.err"; then ok "$1: short APDUs only on the wire"; else
    bad "$1: $n extended APDUs (or no trace)" "$tmp/$1.err"; fi
}

# emu_start NAME NVM [OPTION...]: a pn532emu on card NVM; sets EMU_PID and EMU_URI
# (nfc:pn532_uart:/dev/pts/N). Its output goes to $tmp/emu-NAME.{out,err}.
EMU_PID= EMU_URI=
emu_start() {
  local name=$1 nvm=$2 pts=
  shift 2
  "$emu" --nvm "$nvm" "$@" </dev/null >"$tmp/emu-$name.out" 2>"$tmp/emu-$name.err" &
  EMU_PID=$!
  pids+=("$EMU_PID")
  for _ in $(seq 1 200); do
    pts=$(sed -n 's|^pn532emu: \(/dev/pts/[0-9]*\)$|\1|p' "$tmp/emu-$name.out")
    [ -n "$pts" ] && break
    kill -0 "$EMU_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -n "$pts" ]; then EMU_URI="nfc:pn532_uart:$pts"; ok "pn532emu $name on $pts"; else
    EMU_URI="nfc:pn532_uart:/nonexistent"; bad "pn532emu $name did not start" "$tmp/emu-$name.err"; fi
}
# emu_stop PID NAME: SIGTERM, and the emulator exits 0
emu_stop() {
  kill -TERM "$1" 2>/dev/null
  wait "$1"
  local rc=$?
  forget "$1"
  if [ "$rc" = 0 ]; then ok "pn532emu $2 stops on SIGTERM (exit 0)"; else
    bad "pn532emu $2 exit $rc on SIGTERM" "$tmp/emu-$2.err"; fi
}

umask 077
s1=$(hexrand) s2=$(hexrand) s3=$(hexrand)
printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\nshare.1 = %s\n' "$s1" >"$tmp/pins"
printf 'pin = 123456\nshare.2 = %s\nshare.3 = %s\n' "$s2" "$s3" >"$tmp/officers"
state="$tmp/state"

# ---- two readers, two cards -----------------------------------------------------------------
# Reader B hands the card's long answers out in 64-byte parts with the PN532's MI bit, which
# libnfc joins again.
emu_start A "$tmp/a.nvm"; pid_a=$EMU_PID A=$EMU_URI
emu_start B "$tmp/b.nvm" --mi-chunk 64 -v; pid_b=$EMU_PID B=$EMU_URI

# ---- the emulator against the PN532 manual's framing (UM0701-02 §6.2), without libnfc ---
cat >"$tmp/frames.py" <<'PY'
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
def frame(pd, ext=False):
    data = bytes([0xD4]) + bytes(pd)
    n = len(data)
    if ext:
        hdr = bytes([0xFF, 0xFF, n >> 8, n & 0xFF, (-((n >> 8) + (n & 0xFF))) & 0xFF])
    else:
        hdr = bytes([n, (-n) & 0xFF])
    return b"\x00\x00\xFF" + hdr + data + bytes([(-sum(data)) & 0xFF, 0])
def read(t=0.5):
    buf = b""
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            break
        buf += os.read(fd, 1024)
    return buf.hex(" ").upper()
ACK = "00 00 FF 00 FF 00"
def check(name, got, want):
    print(("ok - " if got == want else "not ok - ") + name + ("" if got == want else ": got '%s', expected '%s'" % (got, want)))
os.write(fd, b"\x55\x55" + b"\x00" * 14 + frame([0x02]))
check("wake-up preamble, GetFirmwareVersion", read(), ACK + " 00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
os.write(fd, b"\x00\x00\xFF\xFF\x00\x00")
check("NACK: the last answer again", read(), "00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
bad = bytearray(frame([0x02])); bad[-2] ^= 1
os.write(fd, bytes(bad))
check("bad checksum: no ACK, no answer", read(0.3), "")
os.write(fd, frame([0x0A, 0x00]))
check("unknown command: ACK and the syntax error frame", read(), ACK + " 00 00 FF 01 FF 7F 81 00")
os.write(fd, frame([0x00, 0x00] + [0x5A] * 260, ext=True))
got = read()
want_pd = [0xD5, 0x01, 0x00] + [0x5A] * 260
n = len(want_pd)
want = ACK + " " + (b"\x00\x00\xFF\xFF\xFF" + bytes([n >> 8, n & 0xFF, (-((n >> 8) + (n & 0xFF))) & 0xFF]) + bytes(want_pd) + bytes([(-sum(want_pd)) & 0xFF, 0])).hex(" ").upper()
check("extended frame both ways (Diagnose, 260 bytes)", got, want)
PY
if command -v python3 >/dev/null; then
  python3 "$tmp/frames.py" "${A#nfc:pn532_uart:}" >"$tmp/frames.out" 2>&1
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "frames: ${line#ok - }" ;;
      "not ok - "*) bad "frames: ${line#not ok - }" ;;
    esac
  done <"$tmp/frames.out"
  grep -q '^ok - ' "$tmp/frames.out" || bad "frames: no result" "$tmp/frames.out"
else
  bad "frames: python3 is needed"
fi

LIBNFC_DEFAULT_DEVICE=${A#nfc:} run nfc-list 0 nfc-list -v -t 1
has nfc-list out "1 ISO14443A passive target(s) found"
has nfc-list out "SAK (SEL_RES): 20"
has nfc-list out "Compliant with ISO/IEC 14443-4"

run status-a0 0 "$icdup" status --card "$A"
has status-a0 out "reader      $A"
has status-a0 out "ATR         3B 8B 80 01 80 31 80 73 B4 21"
has status-a0 out "life cycle  creation"
eq "stderr of status over nfc: (libnfc kept quiet)" "$(cat "$tmp/status-a0.err")" ""
run bad-uri 1 "$icdup" status --card "nfc:pn532_uart:$tmp/no-such-tty"
has bad-uri err "nfc:pn532_uart:$tmp/no-such-tty: cannot open the NFC reader"

# ---- init and clone -------------------------------------------------------------------------
run init-a 0 "$icdup" init --card "$A" --pin "$tmp/pins"
has init-a out "initialized $A"
run init-b 0 "$icdup" init --card "$B" --pin "$tmp/pins"
run clone 0 "$icdup" -v clone --src "$A" --dst "$B" --shares "$tmp/officers" \
    --src-pin "$tmp/officers" --dst-pin "$tmp/officers" --generate --state-dir "$state"
has clone out "dst: imported the key"
has clone out "proof: dst decrypts what src's public key encrypted"
short_only clone
lacks clone err "31 32 33 34 35 36"
lacks clone err "$(spaced "$s2" | cut -c1-23)"
lacks clone err "$(spaced "$s3" | cut -c1-23)"
run status-a 0 "$icdup" status --card "$A"
serial_a=$(serial_of status-a)
run status-b 0 "$icdup" status --card "$B"
has status-b out "present, imported from card $serial_a"
run pub-a 0 "$icdup" keys pubkey --card "$A"
run pub-b 0 "$icdup" keys pubkey --card "$B"
if [ -s "$tmp/pub-a.out" ] && cmp -s "$tmp/pub-a.out" "$tmp/pub-b.out"; then
  ok "same public key on both cards"; else bad "public keys differ"; fi

# ---- extended APDUs through a short-only reader ---------------------------------------------
# A 300-byte UPDATE BINARY goes as a chained pair (10 D6 ... FF, then 00 D6 ... 2D); a 300-byte
# READ BINARY as two short ones; an answer longer than Le comes with 61xx and GET RESPONSE.
data=$(for i in $(seq 0 299); do printf '%02X' $((i * 7 % 256)); done)
run ext 0 "$icdup" -v apdu --card "$A" "00 20 00 83 08 3837363534333231" \
    "00 E0 00 00 0D 62 0B 82 01 01 83 02 70 01 80 02 02 58" "00 D6 00 00 00 01 2C $data" \
    "00 B0 00 00 00 01 2C" "00 CA DF 01 04"
has ext err "> 10 D6 00 00 FF"
has ext err "> 00 D6 00 00 2D"
has ext err "> 00 C0 00 00 04"
short_only ext
if [ "$(sed -n 4p "$tmp/ext.out")" = "$(spaced "$data") 90 00" ]; then
  ok "READ BINARY gives back the 300 bytes of the chained UPDATE BINARY"; else
  bad "READ BINARY differs from the 300 bytes written" "$tmp/ext.out"; fi
eq "GET DATA serial with Le 4, the rest by GET RESPONSE" "$(sed -n 5p "$tmp/ext.out" | tr -d ' ')" \
  "${serial_a}9000"
lacks ext err "38 37 36 35 34 33 32 31"
run challenge-b 0 "$icdup" apdu --card "$B" "00 84 00 00 00"
eq "GET CHALLENGE of 256 bytes in MI parts (bytes with SW)" \
  "$(wc -w <"$tmp/challenge-b.out" | tr -d ' ')" 258
if grep -q "< 00 00 FF 43 BD D5 41 40" "$tmp/emu-B.err"; then
  ok "reader B answered in MI parts (status 40)"; else bad "reader B never used MI" "$tmp/emu-B.err"; fi

emu_stop "$pid_a" A
emu_stop "$pid_b" B

# ---- icissue issue and reissue over nfc: ----------------------------------------------------
emu_start C "$tmp/c.nvm"; C=$EMU_URI
emu_start D "$tmp/d.nvm"; D=$EMU_URI
db="$tmp/issuance.db"
secrets="$tmp/issuer.secrets"
printf 'puk = 13572468\nadmin = 97531864\n' >"$secrets"
share=00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
cat >"$tmp/records.csv" <<EOF
identity,card_type,holder,address,member,expiry,password,share1
M0001,ICDUP-1,Ada Lovelace,"12 St James's Square, London",10001,2029-12-31,pw-ada-4711,$share
EOF
export ICISSUE_DB="$db"
run db-init 0 "$icissue" init
run types 0 "$icissue" types load "$types"
run import 0 "$icissue" import --csv "$tmp/records.csv"
run issue 0 "$icissue" -v issue --id M0001 --card "$C" --secrets "$secrets" \
    --operator alice
run status-c 0 "$icdup" status --card "$C"
serial_c=$(serial_of status-c)
has issue out "issued card $serial_c for M0001: issuance count 1"
short_only issue
lacks issue err "pw-ada-4711"
lacks issue err "$(printf 'pw-ada-4711' | od -An -tx1 | tr -d ' \n' | tr a-f A-F | sed 's/../& /g; s/ $//')"
run reissue 0 "$icissue" reissue --from-card "$C" --to "$D" --secrets "$secrets" \
    --operator bob --reissue-file "$tmp/reissue.json"
run status-d 0 "$icdup" status --card "$D"
serial_d=$(serial_of status-d)
has reissue out "reissued M0001 on card $serial_d: issuance count 2"
has reissue out "old card $serial_c: terminated"
run status-c2 0 "$icdup" status --card "$C"
has status-c2 out "life cycle  terminated"
has status-d out "life cycle  operational"
run reissue-again 0 "$icissue" reissue --from-card "$C" --to "$D" \
    --secrets "$secrets" --reissue-file "$tmp/reissue2.json"
has reissue-again out "M0001 was reissued already"

# ---- faults: the reader killed mid-command, a mute card -------------------------------------
# F's emulator hangs on the first IMPORT WRAPPED (INS E6) link and is then killed: the clone
# stops with the reader named and keeps the blob; a rerun through a new reader finishes it.
emu_start E "$tmp/e.nvm"; E=$EMU_URI
emu_start F "$tmp/f.nvm" --hang-ins E6; pid_f=$EMU_PID F=$EMU_URI
run init-e 0 "$icdup" init --card "$E" --pin "$tmp/pins"
run init-f 0 "$icdup" init --card "$F" --pin "$tmp/pins"
"$icdup" clone --src "$E" --dst "$F" --shares "$tmp/officers" --src-pin "$tmp/officers" \
    --dst-pin "$tmp/officers" --generate --state-dir "$state" </dev/null \
    >"$tmp/clone-kill.out" 2>"$tmp/clone-kill.err" &
clone_pid=$!
pids+=("$clone_pid")
hung=
for _ in $(seq 1 200); do
  grep -q "pn532emu: hanging" "$tmp/emu-F.err" && { hung=1; break; }
  kill -0 "$clone_pid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$hung" ] && ok "reader F went mute in the middle of the import" ||
  bad "reader F never reached the import" "$tmp/clone-kill.err"
kill -KILL "$pid_f" 2>/dev/null
wait "$pid_f" 2>/dev/null
forget "$pid_f"
wait "$clone_pid"
rc=$?
forget "$clone_pid"
eq "exit of the clone whose dst reader was killed" "$rc" 1
has clone-kill err "$F: card removed or mute"
has clone-kill err "the wrapped key is kept in $state/clone-"
if ls "$state"/clone-*.blob >/dev/null 2>&1; then ok "blob kept for the rerun"; else
  bad "no blob kept in $state"; fi
emu_start F2 "$tmp/f.nvm"; F2=$EMU_URI
run clone-rerun 0 "$icdup" clone --src "$E" --dst "$F2" --src-pin "$tmp/officers" \
    --dst-pin "$tmp/officers" --state-dir "$state"
has clone-rerun out "proof: dst decrypts what src's public key encrypted"
if ls "$state"/clone-*.blob >/dev/null 2>&1; then bad "blob still kept after the rerun"; else
  ok "no blob left after the rerun"; fi

# A card that stops answering: libnfc gives up after the transport's 5 s.
emu_start G "$tmp/g.nvm" --hang-ins CA; G=$EMU_URI
run mute 1 "$icdup" status --card "$G"
has mute err "$G: card removed or mute, no answer in time"

echo "nfc.sh: $((checks - fails)) of $checks checks passed"
[ "$fails" = 0 ]
