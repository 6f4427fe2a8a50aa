# vtl-render --film on the demo film with the default model:
#   - frames 0..13: 14 PNGs of 64x64 and record.json with a record each
#     (frame 0 txt2img from noise without a camera, then img2img with one);
#   - --from 10 --to 13 leads in from the shot's first frame and writes the
#     same bytes as the whole run (each frame continues the previous one;
#     the same timeline, model and device give the same film);
#   - frame 80 starts a shot from black: img2img at the source strength;
#   - bad flags, a range past the end, a broken timeline and a missing model
#     exit 2 with a message naming the problem and write nothing.
#   test_film.sh VTL_RENDER SOURCE_DIR
set -euo pipefail
render=$1 src=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
cd "$src"
film=demo/demo.vtl.json

"$render" --film $film --to 13 --out-dir "$TMP/all" 2>"$TMP/all.log" || { cat "$TMP/all.log"; die "export 0..13"; }
[ "$(ls "$TMP/all"/frame-*.png | wc -l)" = 14 ] || die "$(ls "$TMP/all" | wc -l) files for 14 frames"
grep -q '^frame 0/119 txt2img, 4 steps' "$TMP/all.log" || die "no progress line: $(head -2 "$TMP/all.log")"
python3 - "$TMP/all/record.json" <<'PY' || die "record.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "models/tiny" and r["width"] == 64 and r["from"] == 0 and r["to"] == 13, r
f = r["frames"]
assert [x["frame"] for x in f] == list(range(14)), [x["frame"] for x in f]
assert f[0]["kind"] == "txt2img" and "camera" not in f[0], f[0]
assert all(x["kind"] == "img2img" and x["camera"]["mode"] == "3d" for x in f[1:]), f[1]
assert all(x["prompts"] and abs(sum(p["weight"] for p in x["prompts"]) - 1) < 1e-9 for x in f)
assert f[0]["file"] == "frame-00000.png" and len(f[0]["dep_hash"]) == 16
PY
size=$(od -An -tu1 -j16 -N8 "$TMP/all/frame-00005.png" | awk '{print $3*256+$4 "x" $7*256+$8}')
[ "$size" = 64x64 ] || die "frame 5 is $size"
! cmp -s "$TMP/all/frame-00005.png" "$TMP/all/frame-00010.png" || die "frames 5 and 10 are the same image"

"$render" --film $film --from 10 --to 13 --out-dir "$TMP/part" 2>"$TMP/part.log" || { cat "$TMP/part.log"; die "export 10..13"; }
grep -q '^frame 9/119 .*(leads in)' "$TMP/part.log" || die "frames before 10 not rendered as lead-in"
[ "$(ls "$TMP/part"/frame-*.png | wc -l)" = 4 ] || die "$(ls "$TMP/part" | wc -l) files for 4 frames"
for f in 10 11 12 13; do
  cmp -s "$TMP/all/frame-000$f.png" "$TMP/part/frame-000$f.png" || die "frame $f differs between runs"
done

"$render" --film $film --from 80 --to 80 --out-dir "$TMP/black" 2>/dev/null || die "export 80"
python3 - "$TMP/black/record.json" $film <<'PY' || die "frame 80's record"
import json, sys
f = json.load(open(sys.argv[1]))["frames"]
shot = [s for s in json.load(open(sys.argv[2]))["shots"] if s["start"] == 80][0]
assert len(f) == 1 and f[0]["source"] == "black" and f[0]["kind"] == "img2img", f
assert f[0]["strength"] == shot.get("source_strength", 1.0) and f[0]["steps_run"] > 0, f[0]
PY

expect_usage() { # expect_usage PATTERN ARGS...: exit 2, message, no files
  local pat=$1; shift
  rm -rf "$TMP/bad"
  set +e
  "$render" "$@" --out-dir "$TMP/bad" 2>"$TMP/err"
  local rc=$?
  set -e
  [ $rc = 2 ] || die "$* exited $rc, not 2"
  grep -q -- "$pat" "$TMP/err" || die "$*: message \"$(cat "$TMP/err")\" lacks \"$pat\""
  [ ! -e "$TMP/bad/record.json" ] || die "$*: wrote a record"
}
expect_usage "the film's frames are 0..119" --film $film --to 120
expect_usage "the film's frames are 0..119" --film $film --from 5 --to 4
expect_usage '--from "x": not a frame number' --film $film --from x
expect_usage "unknown option --prompt" --film $film --prompt hi
expect_usage "model /nonexistent: No such file" --film $film --model /nonexistent
echo '{"format": "vtl-timeline", "version": 1, "timeline": {"fps": "fast"}}' >"$TMP/broken.json"
expect_usage "broken.json: .*fps" --film "$TMP/broken.json"
expect_usage "No such file" --film "$TMP/none.json"
set +e
"$render" --film $film 2>"$TMP/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q -- "--out-dir is required" "$TMP/err" || die "no --out-dir: $rc $(cat "$TMP/err")"
echo "ok"
