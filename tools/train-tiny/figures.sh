#!/usr/bin/env bash
# figures.sh — the model card's figures, rendered by the project's own engine:
#   samples.png + eval.txt   the quality test's held-out captions (vtl-tiny-eval)
#   demo-shot-N.png          the first frame of each shot of demo/demo.vtl.json,
#                            with the parameters the timeline gives that frame
#                            (vtl-timeline eval -> vtl-render)
#   tools/train-tiny/figures.sh [BUILD_DIR] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${2:-models/tiny}
demo=demo/demo.vtl.json
"$build/tools/vtl-tiny-eval/vtl-tiny-eval" --model "$model" \
  --vocabulary tools/train-tiny/vocabulary.json --grid "$model/samples.png" | tee "$model/eval.txt"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
starts=$(python3 -c '
import json, sys
print(" ".join(str(s["start"]) for s in sorted(json.load(open(sys.argv[1]))["shots"], key=lambda s: s["start"])))
' "$demo")
size=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timeline"]; print(t["width"], t["height"])' "$demo")
n=0
for f in $starts; do
  n=$((n + 1))
  "$build/tools/vtl-timeline/vtl-timeline" eval "$demo" --frame "$f" > "$tmp/p.json"
  # the strongest prompt of the frame (vtl-render takes one; the render
  # service blends them)
  read -r -a args < <(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
top = max(p["prompts"], key=lambda q: q["weight"])
print(p["steps"], p["guidance"], p["seed"], p["sampler"], p["spacing"], p["frame"])
' "$tmp/p.json")
  prompt=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(max(p["prompts"], key=lambda q: q["weight"])["text"])' "$tmp/p.json")
  "$build/tools/vtl-render/vtl-render" --model "$model" --prompt "$prompt" \
    --steps "${args[0]}" --guidance "${args[1]}" --seed "${args[2]}" --sampler "${args[3]}" \
    --spacing "${args[4]}" --frame "${args[5]}" --width "${size% *}" --height "${size#* }" \
    --out "$model/demo-shot-$n.png"
  echo "shot $n (frame $f): \"$prompt\" -> $model/demo-shot-$n.png"
done
