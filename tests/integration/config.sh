# vtl-server --config FILE: settings from JSON, flags override them, and a
# bad file is refused with a message naming the problem (exit 2).
set -euo pipefail
SERVER=$1
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
die() { echo "FAIL: $*"; exit 1; }

mkdir "$tmp/data"
printf '{"listen": "127.0.0.1:1", "data": "%s", "snapshot-every": 5}\n' "$tmp/data" >"$tmp/ok.json"
# the file's listen is overridden by the flag that follows it
"$SERVER" --config "$tmp/ok.json" --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -qs "listening on" "$tmp/out" && break; sleep 0.1; done
grep -q "listening on http://127.0.0.1:" "$tmp/out" || die "no start-up line: $(cat "$tmp/err")"
grep -q "data $tmp/data" "$tmp/out" || die "data dir from the file not used: $(cat "$tmp/out")"
kill -TERM "$pid"; wait "$pid"; pid=

check_bad() { # FILE-CONTENT PATTERN
  printf '%s' "$1" >"$tmp/bad.json"
  rc=0; "$SERVER" --config "$tmp/bad.json" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] || die "config '$1': exit $rc, expected 2"
  grep -q -- "$2" "$tmp/err" || die "config '$1': stderr lacks '$2': $(cat "$tmp/err")"
}
check_bad '{"lisen": "x"}' 'unknown setting "lisen"'
check_bad '{"demo": "yes"}' '"demo" wants true or false'
check_bad '{"data": 1.5}' '"data" wants a string or integer'
check_bad '[1, 2]' 'expected a JSON object'
check_bad '{"data": "x",' 'bad.json:1:'
check_bad '{"data": "x", "render": true, "model-root": "/nonexistent"}' \
  '--model-root /nonexistent is not a directory'
check_bad '{"data": "x", "model-root": "."}' '--model-root goes with --render'
rc=0; "$SERVER" --config "$tmp/missing.json" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "missing.json" "$tmp/err" || die "missing file"
echo ok
