#!/usr/bin/env bash
# Runs the benchmarks of a release build and rewrites docs/performance.md with what they
# measured (every figure there comes from this script).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin/bench_card" | tee -a "$out"
"$bin/bench_socket" "$bin/icsim" | tee -a "$out"
"$bin/bench_clone" "$bin/icsim" | tee -a "$out"
val() { awk -v k="$1" '$1 == k { print $2 }' "$out"; }
{
  echo "# Performance"
  echo
  echo "Measured by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d), $(nproc) cores,"
  echo "$(uname -m), release build (-O2). Rerun \`make bench\` to refresh this file."
  echo
  echo "| Measure | Result | Target |"
  echo "|---|---|---|"
  echo "| In-process APDUs/s, GET DATA (DF03) | $(val inproc_getdata_apdu_per_s) | ≥ 100,000 |"
  echo "| In-process APDUs/s, SELECT MF | $(val inproc_select_mf_apdu_per_s) | ≥ 100,000 |"
  echo "| icsim socket APDUs/s, GET DATA (DF03), one client on loopback | $(val socket_getdata_apdu_per_s) | ≥ 20,000 |"
  echo "| NVM bytes written per UPDATE BINARY of 32 bytes | $(val update32_nvm_bytes) ($(val update32_nvm_writes) writes) | |"
  echo "| Write amplification of that update | $(val update32_amplification)× | ≤ 3× |"
  echo "| APDUs of an \`icdup clone\`, N = 3, blank key groups, proof included | $(val clone_n3_apdus) | ≤ 16 |"
  echo "| Wall time of that clone, in-process (two sim: cards) | $(val clone_inproc_ms) ms | ≤ 50 ms |"
  echo "| Wall time of that clone, two icsim processes over loopback | $(val clone_socket_ms) ms | |"
  echo "| NVM bytes written by both cards during that clone | $(val clone_nvm_bytes) ($(val clone_nvm_writes) writes) | |"
  echo
  echo "The write count covers journal body, commit record, the apply and the invalidation"
  echo "(see nvm.md). The socket figure includes the vpcd framing and both TCP directions."
} > docs/performance.md
echo "bench: wrote docs/performance.md"
