"""check_kit.py — reference vectors for a trained default model, in the
reference kit's format (../shared/refkit/README.md), so that
`vtl-refcheck KIT` proves the engine runs this model as PyTorch does:
text encoder cases (last and penultimate hidden states, pooled output) and
UNet cases at two of the timesteps the live playhead uses, with the model's
x/y coordinate channels in the sample and the pooled caption as class
labels (the engine's pixel-space conventions, docs/models.md).

    python3 tools/train-tiny/check_kit.py --model models/tiny --out tests/data/tiny-kit

The kit refers to the model by a path relative to itself; the arrays come
from tools/python/sd_torch.py (checked against the reference kit to 1e-6).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import dataset  # noqa: E402
from sd_torch import clip, clip_pooled, load_st, unet  # noqa: E402
from train import coords  # noqa: E402

CAPTIONS = ["a red star at the top left over the sea", "in the desert with a small blue ring at the bottom"]
TIMESTEPS = [999, 499]  # one caption each: the kit stays small (~300 KB)
TOL = {"max_abs": 5e-5, "max_rel": 5e-5}


def save(out, case, name, arr):
    rel = f"cases/{case}/{name}.npy"
    os.makedirs(os.path.join(out, "cases", case), exist_ok=True)
    np.save(os.path.join(out, rel), arr)
    return {"file": rel, "shape": list(arr.shape), "dtype": str(arr.dtype)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model_rel = os.path.relpath(os.path.abspath(args.model), os.path.abspath(args.out))
    tcfg = json.load(open(os.path.join(args.model, "text_encoder", "config.json")))
    ucfg = json.load(open(os.path.join(args.model, "unet", "config.json")))
    T = load_st(os.path.join(args.model, "text_encoder", "model.safetensors"))
    U = load_st(os.path.join(args.model, "unet", "diffusion_pytorch_model.safetensors"))
    tok = bpe.Tokenizer(dataset.words(dataset.load_vocabulary()))
    cases = []
    model = lambda comp: {"format": "diffusers", "path": model_rel, "component": comp, "variant": None}

    ids = torch.tensor([tok.encode(c) for c in CAPTIONS])
    with torch.no_grad():
        hid = clip(ids, T, tcfg)
        pen = clip(ids, T, dict(tcfg, num_hidden_layers=tcfg["num_hidden_layers"] - 1))
        pooled = clip_pooled(ids, hid, tcfg)
    name = "text_encoder_captions"
    cases.append({"name": name, "kind": "text_encoder", "model": model("text_encoder"),
                  "params": {"texts": CAPTIONS},
                  "inputs": {"input_ids": save(args.out, name, "input_ids", ids.numpy().astype(np.int64))},
                  "outputs": {"last_hidden_state": save(args.out, name, "last_hidden_state", hid.numpy()),
                              "penultimate_hidden_state_final_ln": save(args.out, name, "penultimate", pen.numpy()),
                              "pooled_output": save(args.out, name, "pooled_output", pooled.numpy())},
                  "tolerance": TOL})

    gen = torch.Generator().manual_seed(0)
    size = ucfg["sample_size"]
    for i, t in enumerate(TIMESTEPS):
        x = torch.randn(1, 3, size, size, generator=gen)
        sample = torch.cat([x, coords(x)], 1)
        ctx, labels = hid[i:i + 1], pooled[i:i + 1]
        with torch.no_grad():
            pred = unet(sample, torch.tensor([float(t)]), ctx, U, ucfg, class_labels=labels)
        name = f"unet_t{t}"
        cases.append({"name": name, "kind": "unet", "model": model("unet"), "params": {"timestep": float(t)},
                      "inputs": {"sample": save(args.out, name, "sample", sample.numpy()),
                                 "timestep": save(args.out, name, "timestep", np.array([t], np.float32)),
                                 "encoder_hidden_states": save(args.out, name, "encoder_hidden_states", ctx.numpy()),
                                 "class_labels": save(args.out, name, "class_labels", labels.numpy())},
                      "outputs": {"noise_pred": save(args.out, name, "noise_pred", pred.numpy())},
                      "tolerance": TOL})
    manifest = {"format": "sd-refkit", "format_version": 1, "config": "vtl default model",
                "reference": {"torch": torch.__version__, "implementation": "tools/python/sd_torch.py"},
                "tolerance_rule": "err <= max_abs + max_rel * peak", "cases": cases}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(cases)} cases in {args.out}")


if __name__ == "__main__":
    main()
