# vtl-server's log: every stderr line of a run is one logfmt record
# (ts=... level=... event=... msg="..."), and the run's events are there.
set -euo pipefail
SERVER=$1
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$SERVER" --listen 127.0.0.1:0 --data "$tmp" --demo >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -qs "listening on" "$tmp/out" && break; sleep 0.1; done
grep -q "listening on" "$tmp/out" || { echo "FAIL: no start-up line"; cat "$tmp/err"; exit 1; }
kill -TERM "$pid"
wait "$pid"
re='^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z level=(debug|info|warn|error) event=[a-z_.]+ msg="([^"\\]|\\.)*"$'
if grep -Evq "$re" "$tmp/err"; then
  echo "FAIL: lines that are not logfmt records:"; grep -Ev "$re" "$tmp/err"; exit 1
fi
for ev in room.loaded server.stopping server.stopped; do
  grep -q "event=$ev " "$tmp/err" || { echo "FAIL: no $ev event"; cat "$tmp/err"; exit 1; }
done
echo ok
