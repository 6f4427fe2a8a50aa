#!/bin/sh
# run-sync.sh — vtl-server and a y-websocket server under the same load, in
# the same session, and the frame fan-out figures; prints the tables of
# bench/README.md "Sync".
#
#   bench/run-sync.sh [BUILD_DIR]      (default: build)
#   REPEATS=3 SECS=5 RATE=10 WINDOW=4 COUNTS="8 32 64" SUBS=1,8,32 bench/run-sync.sh
#
# Needs: BUILD_DIR/bench/sync_bench (cmake --build BUILD_DIR --target
# vtl-server sync_bench), node >= 18 and `npm ci` (or npm install) done in
# bench/yjs. Every figure is the median of REPEATS runs; vtl and Yjs runs
# alternate per client count so that both see the same machine load.
# Raw results (one JSON object per run) go to $OUT (default
# /tmp/vtl-sync-results.jsonl); the servers' logs to $OUT.log.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
bench="$build/bench/sync_bench"
REPEATS=${REPEATS:-3}
SECS=${SECS:-5}
RATE=${RATE:-10}
WINDOW=${WINDOW:-4}
COUNTS=${COUNTS:-"8 32 64"}
SUBS=${SUBS:-1,8,32}
OUT=${OUT:-/tmp/vtl-sync-results.jsonl}
[ -x "$bench" ] || { echo "run-sync.sh: no $bench (build the sync_bench target)" >&2; exit 1; }
[ -d "$here/yjs/node_modules" ] || { echo "run-sync.sh: run 'npm ci' in $here/yjs first" >&2; exit 1; }
: > "$OUT"
: > "$OUT.log"
echo "run-sync.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $REPEATS x ${SECS}s runs" >&2
i=1
while [ "$i" -le "$REPEATS" ]; do
  for n in $COUNTS; do
    echo "  round $i: $n clients (vtl, then yjs)" >&2
    "$bench" edits -c "$n" -r "$RATE" -w "$WINDOW" -t "$SECS" --json >> "$OUT" 2>> "$OUT.log"
    node "$here/yjs/load.js" -c "$n" -r "$RATE" -w "$WINDOW" -t "$SECS" --json >> "$OUT" 2>> "$OUT.log"
  done
  echo "  round $i: frames" >&2
  "$bench" frames -s "$SUBS" -t "$SECS" --json >> "$OUT" 2>> "$OUT.log"
  i=$((i + 1))
done
python3 - "$OUT" "$RATE" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
rate = sys.argv[2]
def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None
def group(pred):
    g = {}
    for r in rows:
        if pred(r):
            g.setdefault((r['mode'], r['n']), []).append(r)
    return g
vtl = group(lambda r: r['sys'] == 'vtl' and r.get('bench') != 'frames')
yjs = group(lambda r: r['sys'] == 'yjs')
f = lambda x, d=1: '—' if x is None else f'{x:,.{d}f}'
print('\n### Edits: vtl-server vs y-websocket (medians of %d runs)\n' % max(len(v) for v in vtl.values()))
print('| load | vtl applied+persisted/s | vtl delivered/s | yjs delivered/s | vtl p50 / p99 / max ms | yjs p50 / p99 / max ms | vtl ack p50 ms | vtl commit ms | server CPU vtl / yjs | client CPU vtl / yjs | p50 yjs÷vtl | delivered vtl÷yjs |')
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for key in sorted(vtl, key=lambda k: (k[0] != 'rate', k[1])):
    v, y = vtl[key], yjs.get(key, [])
    mode, n = key
    load = f'{n} × {rate}/s' if mode == 'rate' else f'{n} flat out (w={v[0]["window"]})'
    vp50, yp50 = med(v, 'p50_ms'), med(y, 'p50_ms')
    vd, yd = med(v, 'delivered_per_s'), med(y, 'delivered_per_s')
    ok = all(r['ok'] for r in v + y)
    print(f"| {load}{'' if ok else ' (a run was NOT OK)'} | {f(med(v,'applied_per_s'),0)} | {f(vd,0)} | {f(yd,0)} | "
          f"{f(vp50,2)} / {f(med(v,'p99_ms'),2)} / {f(med(v,'max_ms'),1)} | "
          f"{f(yp50,2)} / {f(med(y,'p99_ms'),2)} / {f(med(y,'max_ms'),1)} | "
          f"{f(med(v,'ack_p50_ms'),2)} | {f(med(v,'commit_ms'),2)} | "
          f"{f(med(v,'server_cpu'),2)} / {f(med(y,'server_cpu'),2)} | {f(med(v,'client_cpu'),2)} / {f(med(y,'client_cpu'),2)} | "
          f"{f(yp50/vp50 if vp50 and yp50 else None,2)}× | {f(vd/yd if vd and yd else None,2)}× |")
fr = {}
for r in rows:
    if r.get('bench') == 'frames':
        fr.setdefault((r['subs'], r['codec']), []).append(r)
if fr:
    print('\n### Frame fan-out: 512×512 RGB test pattern at 30 fps (medians)\n')
    print('| subscribers | codec | frames/s per subscriber | server CPU (cores) | of which drawing the pattern | bytes/frame | epoch bytes | between epochs | vs raw 786,432 B | client CPU |')
    print('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (s, c), rs in sorted(fr.items()):
        b = med(rs, 'bytes_per_frame')
        ok = all(r['ok'] and r['gaps'] == 0 for r in rs)
        print(f"| {s} | {c}{'' if ok else ' (NOT OK)'} | {f(med(rs,'fps_per_sub'))} | {f(med(rs,'server_cpu'),3)} | {f(med(rs,'pattern_cpu'),3)} | "
              f"{f(b,0)} | {f(med(rs,'epoch_bytes'),0)} | {f(med(rs,'delta_bytes'),0)} | {f(786432/b if b else None,1)}× | {f(med(rs,'client_cpu'),2)} |")
EOF
