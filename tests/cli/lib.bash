# Helpers for the CLI tests: each test script is run by ctest as
#   bash tests/cli/NAME.sh (every *.sh here is a test) PATH/TO/vtl-timeline
# from the repository root. `expect_fail` checks exit status 2, an error
# naming what is wrong, and no output at all.
set -euo pipefail
VTL=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "FAIL: $*" >&2; exit 1; }

# expect_fail PATTERN -- ARGS...: exit 2, stderr matches PATTERN, stdout empty
expect_fail() {
  local pattern=$1; shift; shift
  local rc=0
  "$VTL" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  [ "$rc" -eq 2 ] || die "vtl-timeline $*: exit $rc, expected 2"
  [ ! -s "$TMP/out" ] || die "vtl-timeline $*: printed output on failure"
  grep -q -- "$pattern" "$TMP/err" || die "vtl-timeline $*: stderr lacks '$pattern': $(cat "$TMP/err")"
}

# json_get FILE PYTHON-EXPR (with `d` the parsed JSON)
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
