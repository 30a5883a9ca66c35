# What the end-to-end scripts (tests/e2e/*.sh) share: a TAP-like check counter and the helpers
# that run a command and look at its output. Sourced after $tmp (the script's work directory)
# is set; a script ends with "NAME: N of M checks passed" (tests/run-unit.sh counts it).
fails=0 checks=0
ok()   { checks=$((checks+1)); echo "ok - $1"; }
bad()  { checks=$((checks+1)); fails=$((fails+1)); echo "not ok - $1"; [ -f "${2:-}" ] && sed 's/^/#   /' "$2"; return 0; }
# run NAME EXPECTED_RC CMD...: runs CMD with stdin from /dev/null, output in $tmp/NAME.{out,err}
run() {
  local name=$1 want=$2; shift 2
  "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name (exit $rc)"; else
    bad "$name: exit $rc, expected $want" "$tmp/$name.err"; fi
}
# has NAME FILE TEXT: FILE (out/err of a run) contains TEXT
has() {
  if grep -qF -- "$3" "$tmp/$1.$2"; then ok "$1 $2 has \"$3\""; else
    bad "$1 $2 lacks \"$3\"" "$tmp/$1.$2"; fi
}
# lacks NAME FILE TEXT: FILE does not contain TEXT
lacks() {
  if grep -qF -- "$3" "$tmp/$1.$2"; then bad "$1 $2 has \"$3\"" "$tmp/$1.$2"; else
    ok "$1 $2 lacks \"$3\""; fi
}
# eq WHAT GOT WANT
eq() {
  if [ "$2" = "$3" ]; then ok "$1 = $3"; else bad "$1 = '$2', expected '$3'"; fi
}
hexrand() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
