#!/usr/bin/env bash
# figures.sh — the model card's figures, rendered by the project's own engine:
#   samples.png + eval.txt   the quality test's held-out captions (vtl-tiny-eval)
#   shot-N.png               the first frame of each shot of demo/demo.vtl.json
#                            (vtl-render --film, one frame per shot)
#   tools/train-tiny/figures.sh [BUILD_DIR] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${2:-models/tiny}
"$build/tools/vtl-tiny-eval/vtl-tiny-eval" --model "$model" \
  --vocabulary tools/train-tiny/vocabulary.json --grid "$model/samples.png" | tee "$model/eval.txt" ||
  echo "(the quality bar is not met: see eval.txt)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for start in $(python3 -c 'import json; print(*sorted(s["start"] for s in json.load(open("demo/demo.vtl.json"))["shots"]))'); do
  n=$((n + 1))
  "$build/tools/vtl-render/vtl-render" --film demo/demo.vtl.json --model "$model" \
    --from "$start" --to "$start" --out-dir "$tmp" 2>/dev/null
  cp "$tmp/$(printf 'frame-%05d.png' "$start")" "$model/shot-$n.png"
done
