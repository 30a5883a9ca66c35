#!/usr/bin/env bash
# `make demo`: personalizes a blank simulated card with raw APDUs, shows its status, then
# serves the same card from an icsim process and talks to it over a socket.
set -euo pipefail
bin=${1:-build/bin}
dir=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
card="sim:$dir/card.nvm"

step() { printf '\n== %s\n' "$*"; }

step "A blank card is created on first use"
"$bin/icdup" status --card "$card"

step "Personalize it: card type, PINs, a DF with a data EF and a key EF, then activate"
"$bin/icdup" apdu --card "$card" \
  "00 DA DF 02 09 44454D4F2D54595045" \
  "00 24 01 81 06 313233343536" \
  "00 24 01 82 08 3132333435363738" \
  "00 24 01 83 08 3837363534333231" \
  "00 E0 00 00 18 6216 820138 83025000 8408A000000647494344 8603000202" \
  "00 E0 00 00 15 6213 820101 83025001 80020040 8603000102 880108" \
  "00 A4 00 0C 02 5000" \
  "00 E0 00 00 12 6210 820109 83025002 80020020 8603FF0202" \
  "00 A4 00 0C 02 3F00" \
  "00 44 00 00"

step "Write the member number (needs the PIN), read it back, and try to read the key EF"
"$bin/icdup" -v apdu --card "$card" \
  "00 A4 08 0C 04 5000 5001" \
  "00 D6 00 00 08 3030313233343536" \
  "00 20 00 81 06 313233343536" \
  "00 D6 00 00 08 3030313233343536" \
  "00 B0 00 00 08" \
  "00 A4 02 0C 02 5002" \
  "00 B0 00 00 01"

step "Status of the personalized card"
"$bin/icdup" status --card "$card"

step "The same card served by icsim over a socket (vpcd framing)"
"$bin/icsim" --nvm "$dir/card.nvm" --listen 127.0.0.1:0 >"$dir/icsim.out" &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$dir/icsim.out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^icsim: listening on //p' "$dir/icsim.out")
echo "icsim listening on $addr"
"$bin/icdup" apdu --card "tcp:$addr" "00 A4 08 0C 04 5000 5001" "00 B0 81 00 08"
"$bin/icdup" status --card "tcp:$addr" | head -5
echo
echo "demo: done"
