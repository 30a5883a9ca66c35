#!/usr/bin/env bash
# Replays the kept regression inputs, then fuzzes for a bounded time starting from the seed
# corpus. New corpus entries go to build/fuzz/corpus (not the repo); a crash fails the run and
# its input is left in build/fuzz/ to be copied into tests/fuzz/regressions/.
set -euo pipefail
bin=$1 seconds=${2:-30}
cd "$(dirname "$0")/../.."
work=build/fuzz
mkdir -p "$work/corpus"
cp -n tests/fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
shopt -s nullglob
regs=(tests/fuzz/regressions/{crash,leak,timeout}-*)
shopt -u nullglob
if [ ${#regs[@]} -gt 0 ]; then
  "$bin" "${regs[@]}" >"$work/regressions.log" 2>&1 || { cat "$work/regressions.log"; exit 1; }
  echo "fuzz: ${#regs[@]} regression inputs replayed, all pass"
fi
"$bin" -max_total_time="$seconds" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" >"$work/fuzz.log" 2>&1 \
  || { tail -n 60 "$work/fuzz.log"; echo "fuzz: FAILED (input saved under $work/)"; exit 1; }
grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$work/fuzz.log" | sed 's/^/fuzz: /'
echo "fuzz: ${seconds}s without a finding"
