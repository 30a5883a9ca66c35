#!/usr/bin/env bash
# Runs every cmocka test binary and every end-to-end script of a build (default build/check)
# from the repo root, with the simulator binary of the same build. Ends with one total line,
# "tests: N passed, M failed" (cmocka test cases plus end-to-end checks); exits non-zero if any
# program failed or nothing ran.
#
# The issuance tests run on both back ends of the issuance file: SQLite, and a PostgreSQL
# server started here for the run (scripts/pg-env.sh: loopback, a free port, a generated
# password) and always stopped at the end, or the server that ICDUP_TEST_PG names already
# (postgresql://USER:PASSWORD@HOST:PORT, a user that may create databases; each test makes its
# own database). The cmocka tests run their groups once per back end (tests/support/testdb.c);
# an end-to-end script with the line "# run-unit: each back end" runs once with
# ICDUP_TEST_BACKEND=sqlite and once with ICDUP_TEST_BACKEND=postgresql.
set -u
cd "$(dirname "$0")/.."
out=${1:-build/check}
export ICSIM="$out/bin/icsim" ICDUP="$out/bin/icdup"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$(mktemp)
pg_dir=""
. scripts/pg-env.sh
cleanup() {
  rm -f "$log"
  [ -z "$pg_dir" ] || pg_stop "$pg_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
progs=0 failed_progs=() cases_ok=0 cases_bad=0

# count FILE: adds the passed/failed cases a program reported to the totals (a cmocka program
# reports once per group: the groups are summed)
count() {
  local p f
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$1" | awk '{ n += $1 } END { if (NR) print n }')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:$/\1/p' "$1" | awk '{ n += $1 } END { if (NR) print n }')
  if [ -z "$p" ]; then
    p=$(sed -n 's/^.*: \([0-9]*\) of [0-9]* checks passed$/\1/p' "$1" | tail -n 1)
  fi
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

if [ -z "${ICDUP_TEST_PG:-}" ]; then
  echo "=== postgresql: a server for the issuance tests (scripts/pg-env.sh)"
  progs=$((progs + 1))
  if pg_start; then
    echo "PostgreSQL on ${ICDUP_TEST_PG##*@} in $PG_DIR"
  else
    failed_progs+=("postgresql")
  fi
  pg_dir=${PG_DIR:-}
fi

for t in "$out"/tests/test_*; do
  [ -x "$t" ] && run "$(basename "$t")" "$t"
done
for s in tests/e2e/*.sh; do
  [ -f "$s" ] || continue
  if grep -q '^# run-unit: each back end$' "$s"; then
    run "$(basename "$s") (sqlite)" env ICDUP_TEST_BACKEND=sqlite bash "$s" "$out"
    [ -z "${ICDUP_TEST_PG:-}" ] ||
      run "$(basename "$s") (postgresql)" env ICDUP_TEST_BACKEND=postgresql bash "$s" "$out"
  else
    run "$(basename "$s")" bash "$s" "$out"
  fi
done
echo "programs: $progs run, ${#failed_progs[@]} failed ${failed_progs[*]:+(${failed_progs[*]})}"
[ "$progs" -gt 0 ] || { echo "tests: 0 passed, 0 failed (no test ran)"; exit 1; }
if [ ${#failed_progs[@]} -gt 0 ] && [ "$cases_bad" = 0 ]; then
  cases_bad=${#failed_progs[@]} # a program that crashed before reporting its cases
fi
echo "tests: $cases_ok passed, $cases_bad failed"
[ ${#failed_progs[@]} = 0 ] && [ "$cases_bad" = 0 ]
