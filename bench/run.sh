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
"$bin/bench_files" 1024 | tee -a "$out"
"$bin/bench_issue" 1000000 200 | tee -a "$out"

# Through a real pcscd with the vpcd driver (scripts/pcsc-env.sh): APDU round trip, and the
# median of 5 clones between two blank icsim cards in the two vpcd readers.
pc=$(mktemp -d)
. scripts/pcsc-env.sh
trap 'rm -f "$out"; pcsc_stop "$pc"; rm -rf "$pc"' EXIT
pcsc_start "$pc"
pcsc_insert "$pc" 0 "$pc/rtt.nvm" "$bin/icsim"
"$bin/bench_pcsc" pcsc:0 | tee -a "$out"
for r in 1 2 3 4 5; do
  pcsc_remove "$pc" 0; pcsc_remove "$pc" 1
  pcsc_insert "$pc" 0 "$pc/a$r.nvm" "$bin/icsim"; pcsc_insert "$pc" 1 "$pc/b$r.nvm" "$bin/icsim"
  "$bin/bench_clone" --uris pcsc:0 pcsc:1 >>"$pc/clones"
done
pcsc_stop "$pc"
awk '$1 == "clone_uris_ms" { print $2 }' "$pc/clones" | sort -n | sed -n 3p |
  sed 's/^/clone_pcsc_ms /' | tee -a "$out"
awk '$1 == "clone_uris_apdus" { print "clone_pcsc_apdus", $2; exit }' "$pc/clones" | tee -a "$out"
rm -rf "$pc"

# The central issuance system: 16 branches over loopback mTLS, claim + confirm, on a SQLite
# issuance file and on PostgreSQL (a throwaway server of scripts/pg-env.sh).
cw=$(mktemp -d)
"$bin/bench_central" "$cw/central.db" sqlite 120 | tee -a "$out"
. scripts/pg-env.sh
trap 'rm -f "$out"; pg_stop "$PG_DIR"; rm -rf "$cw"' EXIT
pg_start >/dev/null
psql -X -q "$ICDUP_TEST_PG/postgres" -c "CREATE DATABASE bench_central"
"$bin/bench_central" "$ICDUP_TEST_PG/bench_central" postgresql 120 | tee -a "$out"
pg_stop "$PG_DIR"
rm -rf "$cw"
trap 'rm -f "$out"' EXIT

# Card APDUs of one `icdup decrypt`, counted from its -v trace (PIN redacted there).
work=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$work"' EXIT
( umask 077; printf 'pin = 123456\npuk = 12345678\nadmin = 87654321\n' >"$work/pins" )
card="sim:$work/card.nvm"
"$bin/icdup" init --card "$card" --pin "$work/pins" >/dev/null
"$bin/icdup" keys generate --card "$card" --pin "$work/pins" >/dev/null
head -c 100000 /dev/urandom >"$work/plain"
"$bin/icdup" encrypt --to "$card" "$work/plain" "$work/enc" >/dev/null
"$bin/icdup" -v decrypt --card "$card" --pin "$work/pins" "$work/enc" "$work/dec" 2>"$work/trace" >/dev/null
cmp -s "$work/plain" "$work/dec" || { echo "bench: decrypt gave other bytes" >&2; exit 1; }
echo "decrypt_apdus $(grep -c '^> ' "$work/trace")" | tee -a "$out"
echo "decrypt_pso $(grep -c '^> 00 2A 80 86' "$work/trace")" | tee -a "$out"
# The card firmware's footprint (flash, RAM, stack) from its map file and -fstack-usage output.
[ -f build/firmware/icdup-card.map ] || make --no-print-directory firmware >/dev/null
bash bench/footprint.sh | tee -a "$out"
# Instructions per card operation on the bench image under QEMU -icount shift=0 (bench_fw.c).
[ -f build/firmware/icdup-card-bench.elf ] || make --no-print-directory firmware-bench >/dev/null
"$bin/bench_fw" build/firmware/icdup-card-bench.elf | tee -a "$out"
val() { awk -v k="$1" '$1 == k { print $2 }' "$out"; }
kib() { awk -v b="$(val "$1")" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
mi() { awk -v b="$(val "fw_insn_$1")" 'BEGIN { if (b >= 1e6) printf "%.2f M", b / 1e6; else printf "%.1f k", b / 1e3 }'; }
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
  echo "| Raw mbedtls AES-256-GCM, 64 KiB records in memory | $(val raw_gcm_mib_s) MiB/s | (reference) |"
  echo "| \`encrypt\` data path, $(val files_mib) MiB file to file | $(val encrypt_mib_s) MiB/s = $(val encrypt_vs_raw)× raw | ≥ 0.8× raw |"
  echo "| \`decrypt\` data path, $(val files_mib) MiB file to file | $(val decrypt_mib_s) MiB/s = $(val decrypt_vs_raw)× raw | ≥ 0.8× raw |"
  echo "| Card APDUs of one \`icdup decrypt\` (of them private-key operations) | $(val decrypt_apdus) ($(val decrypt_pso)) | 1 private-key operation |"
  echo "| APDU round trip through pcscd + vpcd (icsim card), GET DATA, median / p99 | $(val pcsc_apdu_rtt_median_ms) / $(val pcsc_apdu_rtt_p99_ms) ms | median ≤ 0.3 ms |"
  echo "| Clone (N = 3, proof included) through pcscd, two icsim cards in vpcd readers, median of 5 | $(val clone_pcsc_ms) ms, $(val clone_pcsc_apdus) APDUs | ≤ 100 ms |"
  echo "| Reissue lookup (correlation + record with items by identity), $(val issue_records) records, p50 / p99 / max | $(val reissue_lookup_p50_us) / $(val reissue_lookup_p99_us) / $(val reissue_lookup_max_us) µs | p99 < 1 ms |"
  echo "| Same, preceded by the type and identity readout from an in-process card, p50 / p99 | $(val reissue_readout_lookup_p50_us) / $(val reissue_readout_lookup_p99_us) µs | |"
  echo "| Issuance rate, batch of $(val issue_batch_cards) in-process simulated cards ($(val issue_apdus_per_card) APDUs per card, issuance file updated per card) | $(val issue_batch_cards_per_s) cards/s | ≥ 20 cards/s |"
  echo "| Time to fill that issuance file (one transaction) | $(val issue_fill_s) s | |"
  echo "| Firmware flash (text + rodata + .data image): mbedtls / card core / firmware glue / newlib+libgcc | $(kib fw_flash_total_bytes): $(kib fw_flash_mbedtls_bytes) / $(kib fw_flash_core_bytes) / $(kib fw_flash_fw_bytes) / $(kib fw_flash_libc_bytes) | ≤ 64 KiB |"
  echo "| Firmware RAM (stack region + data + bss): stack / card core (of it the mbedtls buffer) / firmware glue / mbedtls | $(kib fw_ram_total_bytes): $(kib fw_ram_stack_region_bytes) / $(kib fw_ram_core_bytes) ($(kib fw_ram_mbedtls_heap_bytes)) / $(kib fw_ram_fw_bytes) / $(val fw_ram_mbedtls_bytes) B | ≤ 16 KiB |"
  echo "| Firmware stack: largest frame; deepest path, direct calls (lower bound) / any indirect target (upper estimate) | $(val fw_stack_largest_frame_bytes) B (\`$(val fw_stack_largest_frame_function)\`); $(val fw_stack_direct_path_bytes) / $(val fw_stack_upper_path_bytes) B | within the stack region |"
  echo "| Firmware stack and mbedtls heap peaks after a clone's operations and deciphers (painted regions, bench image) | stack $(val fw_stack_peak_bytes) of $(val fw_stack_size_bytes) B; heap $(val fw_heap_peak_bytes) of $(val fw_heap_size_bytes) B | inside the regions |"
  echo "| Firmware instructions (QEMU -icount shift=0): bare mbedtls P-256 key generation / ECDH | $(mi prim_keygen) / $(mi prim_ecdh) | (reference) |"
  echo "| Firmware instructions per card operation: PIN verify / share set (completing the group) | $(mi verify) / $(mi share) | |"
  echo "| Same: key generation / binding key, against the bare key generation | $(mi keygen) / $(mi binding) = $(val fw_ratio_keygen)× / $(val fw_ratio_binding)× | ≤ 1.10× |"
  echo "| Same: bound export, against key generation + ECDH | $(mi export) = $(val fw_ratio_export)× | ≤ 1.10× |"
  echo "| Same: import of a bound blob, against ECDH + key generation (the public point is recomputed) | $(mi import) = $(val fw_ratio_import)× | ≤ 1.10× |"
  echo "| Same: decipher, against ECDH | $(mi decipher) = $(val fw_ratio_decipher)× | ≤ 1.10× |"
  echo "| Central reissues (claim + confirm), $(val central_postgresql_branches) branches over loopback mTLS, PostgreSQL: throughput, p50 / p99 | $(val central_postgresql_reissues_per_s)/s, $(val central_postgresql_p50_ms) / $(val central_postgresql_p99_ms) ms | ≥ 500/s, p99 ≤ 50 ms |"
  echo "| Same on a SQLite issuance file | $(val central_sqlite_reissues_per_s)/s, $(val central_sqlite_p50_ms) / $(val central_sqlite_p99_ms) ms | |"
  echo
  echo "The write count covers journal body, commit record, the apply and the invalidation"
  echo "(see nvm.md). The socket figure includes the vpcd framing and both TCP directions."
  echo "The file figures read and write real files through the page cache, while the raw"
  echo "figure is GCM alone in memory: the difference is the file I/O of the same run."
  echo "The central figures run the server, its 16 branch clients and PostgreSQL on the same"
  echo "$(nproc) cores: every reissue costs TLS records and JSON on both sides in this one process,"
  echo "and the database's round trips, so they measure the machine as much as the protocol. The"
  echo "clock starts once every branch has connected and made one warm-up reissue of each of its"
  echo "records (a central system in service, not its start); each branch then makes 120."
  echo "On PostgreSQL a claim is 6 database round trips and a confirm 4 (docs/issuance.md,"
  echo "\"Round trips\"). SQLite has one writer: its p99 is the wait for the write lock."
} > docs/performance.md
echo "bench: wrote docs/performance.md"
