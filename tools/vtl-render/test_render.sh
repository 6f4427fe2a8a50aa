#!/usr/bin/env bash
# test_render.sh VTL_RENDER REFKIT — vtl-render on the kit's tiny-sd: 64x64,
# 2 steps; a valid PNG of that size; the same seed gives the same bytes, another
# seed other bytes; img2img and TAESD run; bad flags and files exit 2 with a
# message and leave no output.
set -u
R=$1
KIT=$2
MODEL=$KIT/models/tiny-sd
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }

render() { "$R" --model "$MODEL" --prompt "a red cat" --steps 2 --guidance 7.5 \
             --sampler euler_a --width 64 --height 64 "$@"; }

# PNG signature, IHDR width/height (big-endian at bytes 16..23)
png_size() {
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
  od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}'
}

render --seed 1 --out "$TMP/a.png" 2>"$TMP/a.log" || { cat "$TMP/a.log"; die "render seed 1"; }
grep -q "step 2/2" "$TMP/a.log" || die "no progress line"
[ "$(png_size "$TMP/a.png")" = 64x64 ] || die "not a 64x64 PNG: $(png_size "$TMP/a.png")"
render --seed 1 --out "$TMP/b.png" 2>/dev/null || die "render seed 1 again"
cmp -s "$TMP/a.png" "$TMP/b.png" || die "same seed, different bytes"
render --seed 2 --out "$TMP/c.png" 2>/dev/null || die "render seed 2"
cmp -s "$TMP/a.png" "$TMP/c.png" && die "seeds 1 and 2 gave the same bytes"
render --seed 1 --frame 1 --out "$TMP/f.png" 2>/dev/null || die "render frame 1"
cmp -s "$TMP/a.png" "$TMP/f.png" && die "frames 0 and 1 gave the same bytes"

# every sampler, TAESD, img2img, a non-square size
for s in ddim euler dpmpp_2m lcm; do
  render --seed 3 --sampler $s --spacing trailing --out "$TMP/s_$s.png" 2>/dev/null ||
    die "sampler $s"
done
render --seed 1 --taesd "$KIT/models/taesd" --out "$TMP/t.png" 2>/dev/null || die "taesd"
[ "$(png_size "$TMP/t.png")" = 64x64 ] || die "taesd size"
"$R" --model "$MODEL" --prompt "a red cat" --steps 4 --init "$TMP/a.png" --strength 0.5 \
  --seed 4 --out "$TMP/i.png" 2>"$TMP/i.log" || { cat "$TMP/i.log"; die "img2img"; }
grep -q "step 2/2" "$TMP/i.log" || die "img2img: 2 of 4 steps at strength 0.5"
render --seed 1 --width 96 --height 64 --out "$TMP/w.png" 2>/dev/null || die "96x64"
[ "$(png_size "$TMP/w.png")" = 96x64 ] || die "96x64 size"

# errors: exit 2, a message, no output file
expect2() {
  local want=$1; shift
  "$@" >"$TMP/err.out" 2>"$TMP/err.log"
  local rc=$?
  [ $rc = 2 ] || die "exit $rc (want 2) for: $* ($(cat "$TMP/err.log"))"
  grep -q -- "$want" "$TMP/err.log" || die "message lacks \"$want\": $(cat "$TMP/err.log")"
  [ ! -e "$TMP/x.png" ] || die "output left behind by: $*"
}
expect2 "unknown option --bogus" render --seed 1 --bogus 3 --out "$TMP/x.png"
expect2 "--steps" render --seed 1 --steps zero --out "$TMP/x.png"
expect2 "--seed" render --seed -5 --out "$TMP/x.png"
expect2 "--sampler" render --sampler plms --out "$TMP/x.png"
expect2 "--spacing" render --spacing sideways --out "$TMP/x.png"
expect2 "--out is required" render --seed 1
expect2 "--prompt is required" "$R" --model "$MODEL" --out "$TMP/x.png"
expect2 "--model" "$R" --model "$TMP/nope" --prompt x --out "$TMP/x.png"
expect2 "multiples of 8" render --width 60 --out "$TMP/x.png"
expect2 "--strength needs --init" render --strength 0.5 --out "$TMP/x.png"
expect2 "--init" render --init "$TMP/nope.png" --out "$TMP/x.png"
echo "not a png" >"$TMP/bad.png"
expect2 "--init" render --init "$TMP/bad.png" --out "$TMP/x.png"
expect2 "differ" render --init "$TMP/a.png" --width 128 --out "$TMP/x.png"
expect2 "config-dir" "$R" --model "$KIT/models/tiny-sd-ldm.safetensors" --prompt x --out "$TMP/x.png"
expect2 "--out" render --out "$TMP/no/such/dir/x.png"
echo ok
