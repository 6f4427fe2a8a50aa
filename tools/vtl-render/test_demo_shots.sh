# scripts/render-shots on the demo film with the default model: one 64x64
# PNG per shot, the shots' frames differ, and a second run gives the same
# bytes (the same timeline, model and device give the same film).
#   test_demo_shots.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
cd "$src"
scripts/render-shots demo/demo.vtl.json "$TMP/a" "$build" >"$TMP/a.log" || { cat "$TMP/a.log"; die "render-shots"; }
scripts/render-shots demo/demo.vtl.json "$TMP/b" "$build" >/dev/null || die "render-shots again"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["shots"]))' demo/demo.vtl.json)
[ "$(ls "$TMP/a" | wc -l)" = "$n" ] || die "$n shots, $(ls "$TMP/a" | wc -l) PNGs"
for f in "$TMP"/a/*.png; do
  size=$(od -An -tu1 -j16 -N8 "$f" | awk '{print $3*256+$4 "x" $7*256+$8}')
  [ "$size" = 64x64 ] || die "$f is $size"
  cmp -s "$f" "$TMP/b/$(basename "$f")" || die "$(basename "$f") differs between runs"
done
! cmp -s "$TMP/a/shot-1.png" "$TMP/a/shot-2.png" || die "shots 1 and 2 are the same image"
grep -q '^shot 1 (frame 0): "' "$TMP/a.log" || die "no progress line: $(cat "$TMP/a.log")"
