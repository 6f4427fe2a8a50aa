#!/usr/bin/env bash
# test_random_model.sh MAKE RENDER — writes the tiny arch, checks the folder
# layout, renders 1 step of 64x64 with vtl-render (a PNG of that size), and
# checks that the same seed writes the same bytes and another seed others;
# then the pixel arch: txt2img at its native size, img2img, --taesd refused.
set -u
M=$1
R=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }

"$M" --arch tiny --out "$TMP/m" --seed 7 2>"$TMP/m.log" || { cat "$TMP/m.log"; die "make tiny"; }
for f in model_index.json scheduler/scheduler_config.json text_encoder/config.json \
         text_encoder/model.safetensors tokenizer/vocab.json tokenizer/merges.txt \
         unet/config.json unet/diffusion_pytorch_model.safetensors vae/config.json \
         vae/diffusion_pytorch_model.safetensors; do
  [ -s "$TMP/m/$f" ] || die "missing $f"
done
"$R" --model "$TMP/m" --prompt "a red cat" --steps 1 --guidance 7.5 --width 64 --height 64 \
     --seed 1 --out "$TMP/a.png" 2>"$TMP/r.log" || { cat "$TMP/r.log"; die "render"; }
[ "$(head -c 8 "$TMP/a.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || die "not a PNG"
[ "$(od -An -tu1 -j16 -N8 "$TMP/a.png" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')" = 64x64 ] ||
  die "not 64x64"
"$M" --arch tiny --out "$TMP/m2" --seed 7 2>/dev/null || die "make tiny again"
cmp -s "$TMP/m/unet/diffusion_pytorch_model.safetensors" "$TMP/m2/unet/diffusion_pytorch_model.safetensors" ||
  die "same seed, different weights"
"$M" --arch tiny --out "$TMP/m3" --seed 8 2>/dev/null || die "make tiny seed 8"
cmp -s "$TMP/m/unet/diffusion_pytorch_model.safetensors" "$TMP/m3/unet/diffusion_pytorch_model.safetensors" &&
  die "seeds 7 and 8 gave the same weights"
"$M" --arch tiny --out "$TMP/h" --fp16 2>/dev/null || die "make tiny fp16"
"$R" --model "$TMP/h" --prompt "x" --steps 1 --width 64 --height 64 --out "$TMP/h.png" 2>"$TMP/h.log" ||
  { cat "$TMP/h.log"; die "render fp16"; }
size_of() { od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}'; }
# the pixel arch: no vae/, renders at its native size (sample_size 32),
# txt2img with CFG and img2img from the first render
"$M" --arch pixel --out "$TMP/p" --seed 7 2>"$TMP/p.log" || { cat "$TMP/p.log"; die "make pixel"; }
[ -e "$TMP/p/vae" ] && die "pixel arch wrote a vae/"
"$R" --model "$TMP/p" --prompt "a red cat" --negative "blue" --steps 2 --guidance 3 --sampler ddim \
     --seed 1 --out "$TMP/p.png" 2>"$TMP/p.log" || { cat "$TMP/p.log"; die "render pixel"; }
[ "$(size_of "$TMP/p.png")" = 32x32 ] || die "pixel: not 32x32 (the native size)"
"$R" --model "$TMP/p" --prompt "a red cat" --init "$TMP/p.png" --strength 0.5 --steps 4 --guidance 1 \
     --sampler ddim --seed 1 --out "$TMP/q.png" 2>"$TMP/q.log" || { cat "$TMP/q.log"; die "img2img pixel"; }
"$M" --arch taesd --out "$TMP/td" 2>/dev/null || die "make taesd"
"$R" --model "$TMP/p" --prompt "x" --taesd "$TMP/td" --steps 1 --out "$TMP/t.png" 2>"$TMP/t.log"
[ $? = 2 ] && grep -q "pixel-space" "$TMP/t.log" || die "--taesd on a pixel model should be refused"
"$M" --arch nope --out "$TMP/x" 2>/dev/null; [ $? = 2 ] || die "unknown arch should exit 2"
echo ok
