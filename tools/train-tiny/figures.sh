#!/usr/bin/env bash
# figures.sh — the model card's figures, rendered by the project's own engine:
#   samples.png + eval.txt   the quality test's held-out captions (vtl-tiny-eval)
#   shot-N.png               the first frame of each shot of demo/demo.vtl.json
#                            (scripts/render-shots)
#   tools/train-tiny/figures.sh [BUILD_DIR] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${2:-models/tiny}
"$build/tools/vtl-tiny-eval/vtl-tiny-eval" --model "$model" \
  --vocabulary tools/train-tiny/vocabulary.json --grid "$model/samples.png" | tee "$model/eval.txt" ||
  echo "(the quality bar is not met: see eval.txt)"
scripts/render-shots demo/demo.vtl.json "$model" "$build"
