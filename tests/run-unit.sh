#!/usr/bin/env bash
# Runs every cmocka test binary of a build (default build/check) from the repo root, with the
# simulator binary of the same build for the end-to-end tests. Prints a total line; exits
# non-zero if any binary failed.
set -u
cd "$(dirname "$0")/.."
out=${1:-build/check}
export ICSIM="$out/bin/icsim" ICDUP="$out/bin/icdup"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0 fail=0 failed=()
for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  echo "=== $(basename "$t")"
  if "$t"; then pass=$((pass+1)); else fail=$((fail+1)); failed+=("$(basename "$t")"); fi
done
for s in tests/e2e/*.sh; do
  [ -f "$s" ] || continue
  echo "=== $(basename "$s")"
  if bash "$s" "$out"; then pass=$((pass+1)); else fail=$((fail+1)); failed+=("$(basename "$s")"); fi
done
echo "test programs: $pass passed, $fail failed"
[ "$fail" = 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
[ "$pass" -gt 0 ] || { echo "no test ran"; exit 1; }
