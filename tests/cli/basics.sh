# validate and eval on the demo film; usage errors; all-or-nothing output.
. "$(dirname "$0")/lib.bash" "$1"
demo=demo/demo.vtl.json

"$VTL" validate "$demo" | grep -q "^ok: .*120 frames" || die "validate demo"

"$VTL" eval "$demo" --frame 10 >"$TMP/f10.json"
[ "$(json_get "$TMP/f10.json" 'd["frame"]')" = 10 ] || die "eval frame"
# frame 10 lies in the demo's first prompt clip only
[ "$(json_get "$TMP/f10.json" 'd["prompts"][0]["text"]')" = "$(json_get "$demo" 'd["prompt_clips"][0]["text"]')" ] ||
  die "eval prompt"
[ "$(json_get "$TMP/f10.json" 'd["shot"]')" = 50 ] || die "eval shot"

"$VTL" eval "$demo" --frames 38-42 >"$TMP/r.json"
[ "$(json_get "$TMP/r.json" 'len(d)')" = 5 ] || die "eval range length"
# frame 40 is the cut into shot 51 (its own seed 77, iter mode: 77 at its first frame)
[ "$(json_get "$TMP/r.json" 'd[2]["first_frame"], d[2]["seed"], d[2]["shot"]')" = "True 77 51" ] || die "cut at 40"
# prompt weights of every frame sum to 1
python3 - "$TMP/r.json" <<'PY' || die "weights"
import json, sys
for p in json.load(open(sys.argv[1])):
    assert abs(sum(q["weight"] for q in p["prompts"]) - 1) < 1e-9, p
PY

expect_fail "past the end" -- eval "$demo" --frame 120
expect_fail "give --frame" -- eval "$demo"
expect_fail "expected A-B" -- eval "$demo" --frames 9-3
expect_fail "not a frame number" -- eval "$demo" --frame ten
expect_fail "unknown option --bogus" -- validate "$demo" --bogus
expect_fail "No such file" -- validate "$TMP/missing.json"

printf '{"format": "vtl-timeline", "version": 1, "timeline": {"fps": 12,}' >"$TMP/bad.json"
expect_fail "line 1" -- validate "$TMP/bad.json"
expect_fail "line 1" -- eval "$TMP/bad.json" --frame 0

sed 's/"interp": "ease_in"/"interp": "wobble"/' "$demo" >"$TMP/enum.json"
expect_fail 'keyframes\[0\].interp: unknown value "wobble" (hold' -- validate "$TMP/enum.json"

sed 's/"track": 3, "frame": 30/"track": 99, "frame": 30/' "$demo" >"$TMP/ref.json"
expect_fail "no track 99" -- validate "$TMP/ref.json"

sed 's/"expr": "0.6\*sin/"expr": "0.6*sin(/' "$demo" >"$TMP/expr.json"
expect_fail "keyframe.expr: expression" -- validate "$TMP/expr.json"

# -o: nothing is written when the command fails; a good run writes the file
expect_fail "line 1" -- import-deforum "$TMP/bad.json" -o "$TMP/never.json"
[ ! -e "$TMP/never.json" ] || die "-o file written on failure"
ls "$TMP" | grep -q tmp && die "temporary file left behind"
echo ok
