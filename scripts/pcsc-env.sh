#!/usr/bin/env bash
# Simulated cards as PC/SC readers: a pcscd of our own with vsmartcard's vpcd driver on
# loopback (two readers, "icsim vpcd 00 00" on port 35963 and "... 00 01" on 35964), and one
# icsim process per inserted card. Used by the PC/SC tests and benchmarks; usable by hand:
#
#   bash scripts/pcsc-env.sh start DIR ICSIM A.nvm [B.nvm]   start pcscd and insert the cards
#   bash scripts/pcsc-env.sh stop DIR                        stop everything started in DIR
#
# Sourced, it defines pcsc_start DIR, pcsc_insert DIR SLOT NVM ICSIM, pcsc_remove DIR SLOT,
# pcsc_wait DIR SLOT present|absent, pcsc_stop DIR. Waits poll the reader state (no fixed
# sleeps) and give up after 10 s; everything is stopped by the PID this script recorded.
# Needs root or a pcscd socket directory it may use (/run/pcscd); refuses to start when
# another pcscd is running.

PCSC_VPCD_LIB=${PCSC_VPCD_LIB:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
PCSC_BASE_PORT=35963

pcsc_log() { echo "pcsc-env: $*" >&2; }

# pcsc_start DIR: a pcscd reading only DIR/reader.conf.d, in the foreground of a background job.
pcsc_start() {
  local dir=$1
  local running
  running=$(ps -C pcscd -o pid=,stat= | awk '$2 !~ /^Z/ { print $1 }' | tr '\n' ' ' || true)
  if [ -n "$running" ]; then
    pcsc_log "another pcscd is running (pid $running); stop it first"
    return 1
  fi
  [ -r "$PCSC_VPCD_LIB" ] || { pcsc_log "no vpcd driver at $PCSC_VPCD_LIB (vsmartcard-vpcd)"; return 1; }
  mkdir -p "$dir/reader.conf.d"
  # One vpcd entry serves two readers: ports BASE and BASE + 1.
  printf 'FRIENDLYNAME "icsim vpcd"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n' \
    "$PCSC_BASE_PORT" "$PCSC_VPCD_LIB" "$PCSC_BASE_PORT" >"$dir/reader.conf.d/vpcd"
  /usr/sbin/pcscd -f -c "$dir/reader.conf.d" >"$dir/pcscd.log" 2>&1 &
  echo $! >"$dir/pcscd.pid"
  local i
  for i in $(seq 200); do
    [ -S /run/pcscd/pcscd.comm ] && opensc-tool -l 2>/dev/null | grep -q 'icsim vpcd' && return 0
    kill -0 "$(cat "$dir/pcscd.pid")" 2>/dev/null || { pcsc_log "pcscd exited: $(tail -n 3 "$dir/pcscd.log")"; return 1; }
    sleep 0.05
  done
  pcsc_log "pcscd did not list the vpcd readers within 10 s"
  return 1
}

# pcsc_state SLOT: "present" or "absent" as pcscd sees reader SLOT (0 or 1).
pcsc_state() {
  local row
  row=$(opensc-tool -l 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }')
  [ "$row" = Yes ] && echo present || echo absent
}

pcsc_wait() {
  local dir=$1 slot=$2 want=$3 i
  for i in $(seq 200); do
    [ "$(pcsc_state "$slot")" = "$want" ] && return 0
    sleep 0.05
  done
  pcsc_log "reader $slot not $want within 10 s"
  return 1
}

# pcsc_insert DIR SLOT NVM ICSIM: an icsim for NVM connects to the reader SLOT.
pcsc_insert() {
  local dir=$1 slot=$2 nvm=$3 icsim=$4
  "$icsim" --nvm "$nvm" --vpcd "127.0.0.1:$((PCSC_BASE_PORT + slot))" >"$dir/icsim.$slot.log" 2>&1 &
  echo $! >"$dir/icsim.$slot.pid"
  pcsc_wait "$dir" "$slot" present
}

# pcsc_remove DIR SLOT: the card leaves reader SLOT (its icsim is killed: a power cut).
pcsc_remove() {
  local dir=$1 slot=$2 pid
  pid=$(cat "$dir/icsim.$slot.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$dir/icsim.$slot.pid"
  pcsc_wait "$dir" "$slot" absent
}

pcsc_stop() {
  local dir=$1 f pid
  for f in "$dir"/icsim.*.pid "$dir/pcscd.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  case ${1:-} in
    start)
      [ $# -ge 4 ] || { echo "usage: $0 start DIR ICSIM A.nvm [B.nvm]" >&2; exit 2; }
      pcsc_start "$2" || { pcsc_stop "$2"; exit 1; }
      pcsc_insert "$2" 0 "$4" "$3" || { pcsc_stop "$2"; exit 1; }
      if [ $# -ge 5 ]; then pcsc_insert "$2" 1 "$5" "$3" || { pcsc_stop "$2"; exit 1; }; fi
      opensc-tool -l ;;
    stop)
      [ $# -ge 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
      pcsc_stop "$2" ;;
    *)
      echo "usage: $0 start DIR ICSIM A.nvm [B.nvm] | stop DIR" >&2; exit 2 ;;
  esac
fi
