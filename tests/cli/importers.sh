# The importers and templates from the command line, end to end:
# Deforum -> vtl -> Deforum, manuscripts, applying and saving templates.
. "$(dirname "$0")/lib.bash" "$1"
data=tests/data/deforum

# import-deforum: warnings on stderr name the keys vtl does not model
"$VTL" import-deforum "$data/colab_3d_ladder.json" -o "$TMP/film.json" 2>"$TMP/warn"
grep -q "warning" "$TMP/warn" || die "no warning for unsupported keys"
grep -q "color_coherence" "$TMP/warn" || die "unsupported key not named"
"$VTL" validate "$TMP/film.json" >/dev/null || die "imported film invalid"

# eval of the imported film equals eval of the settings file read directly
"$VTL" eval "$TMP/film.json" --frames 0-20 >"$TMP/a.json" 2>/dev/null
"$VTL" eval "$data/colab_3d_ladder.json" --frames 0-20 >"$TMP/b.json" 2>/dev/null
cmp -s "$TMP/a.json" "$TMP/b.json" || die "eval differs between the import and the settings file"

# export-deforum then re-import: the same film at every frame
"$VTL" export-deforum "$TMP/film.json" -o "$TMP/deforum.json" 2>/dev/null
len=$(json_get "$TMP/film.json" 'd["timeline"]["length"]')
"$VTL" eval "$TMP/film.json" --frames "0-$((len - 1))" >"$TMP/before.json"
"$VTL" eval "$TMP/deforum.json" --frames "0-$((len - 1))" >"$TMP/after.json" 2>/dev/null
cmp -s "$TMP/before.json" "$TMP/after.json" || die "Deforum round trip changed the film"

expect_fail "animation_mode" -- import-deforum <(echo '{"max_frames": 10, "animation_mode": "Video Input"}')
expect_fail "max_frames" -- import-deforum <(echo '{"max_frames": -5, "animation_mode": "2D"}')

# import-text: one clip per sentence, timeline at the given fps
printf 'The sea is calm tonight.\nA red star rises over the water! Then the night falls.\n\nMorning comes.\n' >"$TMP/story.txt"
"$VTL" import-text "$TMP/story.txt" --fps 12 -o "$TMP/story.json"
[ "$(json_get "$TMP/story.json" 'len(d["prompt_clips"])')" = 4 ] || die "sentences"
[ "$(json_get "$TMP/story.json" 'd["timeline"]["fps"]')" = 12.0 ] || die "fps"
"$VTL" import-text "$TMP/story.txt" --fps 12 --paragraphs -o "$TMP/para.json"
[ "$(json_get "$TMP/para.json" 'len(d["prompt_clips"])')" = 2 ] || die "paragraphs"
expect_fail "give --fps" -- import-text "$TMP/story.txt"
: >"$TMP/empty.txt"
expect_fail "no text" -- import-text "$TMP/empty.txt" --fps 12

# apply-template to the demo's middle shot: it moves, the other shots do not
demo=demo/demo.vtl.json
"$VTL" apply-template "$demo" --shot 51 --template dolly_in --intensity 2 -o "$TMP/dolly.json"
"$VTL" eval "$demo" --frames 0-119 >"$TMP/d0.json"
"$VTL" eval "$TMP/dolly.json" --frames 0-119 >"$TMP/d1.json"
python3 - "$TMP/d0.json" "$TMP/d1.json" <<'PY' || die "template applied wrongly"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
inside = [f for f in range(40, 80) if a[f]["translation_z"] != b[f]["translation_z"]]
assert len(inside) > 20, inside
for f in list(range(0, 40)) + list(range(80, 120)):
    assert a[f]["translation_z"] == b[f]["translation_z"], f
PY
expect_fail "no template" -- apply-template "$demo" --shot 51 --template moonwalk
expect_fail "no such shot" -- apply-template "$demo" --shot 999 --template dolly_in

# save-template from keys, then apply it elsewhere
keys=$(json_get "$TMP/dolly.json" '",".join(str(k["id"]) for k in d["keyframes"] if 40 <= k["frame"] < 80 and k["track"] == 5)')
"$VTL" save-template "$TMP/dolly.json" --name my_dolly --keys "$keys" -o "$TMP/my_dolly.json"
[ "$(json_get "$TMP/my_dolly.json" 'd["name"]')" = my_dolly ] || die "saved template name"
"$VTL" apply-template "$demo" --shot 50 --template "$TMP/my_dolly.json" -o "$TMP/again.json"
"$VTL" validate "$TMP/again.json" >/dev/null || die "saved template does not apply"
echo ok
