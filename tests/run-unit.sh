#!/usr/bin/env bash
# Runs every cmocka test binary and every end-to-end script of a build (default build/check)
# from the repo root, with the simulator binary of the same build. Ends with one total line,
# "tests: N passed, M failed" (cmocka test cases plus end-to-end checks); exits non-zero if any
# program failed or nothing ran.
set -u
cd "$(dirname "$0")/.."
out=${1:-build/check}
export ICSIM="$out/bin/icsim" ICDUP="$out/bin/icdup"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
progs=0 failed_progs=() cases_ok=0 cases_bad=0

# count FILE: adds the passed/failed cases a program reported to the totals
count() {
  local p f
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p; s/^.*: \([0-9]*\) of [0-9]* checks passed$/\1/p' "$1" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:$/\1/p' "$1" | tail -n 1)
  if [ -z "$f" ]; then
    f=$(sed -n 's/^.*: \([0-9]*\) of \([0-9]*\) checks passed$/\2 \1/p; s/^.*: \([0-9]*\) of \([0-9]*\) checks failed$/\1 0/p' "$1" | tail -n 1 | awk '{ print ($1 - $2) }')
  fi
  cases_ok=$((cases_ok + ${p:-0}))
  cases_bad=$((cases_bad + ${f:-0}))
}

run() {
  local name=$1; shift
  echo "=== $name"
  progs=$((progs + 1))
  if "$@" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then :; else failed_progs+=("$name"); fi
  count "$log"
}

for t in "$out"/tests/test_*; do
  [ -x "$t" ] && run "$(basename "$t")" "$t"
done
for s in tests/e2e/*.sh; do
  [ -f "$s" ] && run "$(basename "$s")" bash "$s" "$out"
done
echo "programs: $progs run, ${#failed_progs[@]} failed ${failed_progs[*]:+(${failed_progs[*]})}"
[ "$progs" -gt 0 ] || { echo "tests: 0 passed, 0 failed (no test ran)"; exit 1; }
if [ ${#failed_progs[@]} -gt 0 ] && [ "$cases_bad" = 0 ]; then
  cases_bad=${#failed_progs[@]} # a program that crashed before reporting its cases
fi
echo "tests: $cases_ok passed, $cases_bad failed"
[ ${#failed_progs[@]} = 0 ] && [ "$cases_bad" = 0 ]
