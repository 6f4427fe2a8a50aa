"""probe.py — does the model know *where*? The x0 prediction at t = 999
(pure noise in: only the caption can place the shape) for the nine position
phrases of a few captions, compared with their mean: how much the picture
moves with the position words (sensitivity, mean per-pixel standard
deviation across the nine, in 0..255) and how often the centroid of what
moves falls in the caption's third (hits). A model that ignores the
position words scores ~2/255 and chance hits (1 in 9); this is what showed
that earlier default models never learned positions at all.

    python3 tools/train-tiny/probe.py MODEL_DIR [RESOLUTION]
"""
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

SUBJECTS = [("a red circle", "in the sky"), ("a blue circle", "in the sky"), ("a yellow circle", "in the sky"),
            ("a red square", "on grass"), ("a blue square", "on grass"), ("a yellow square", "on grass")]


def position_probe(U, T, ucfg, tcfg, tok, voc, res, alphas_cumprod):
    """(sensitivity in 0..255, hits, tries)."""
    from train import coords  # train imports this module's caller; no cycle at load
    pos = list(voc["position_phrases"])
    caps = [f"{s} {voc['position_phrases'][p][0]} {b}" for s, b in SUBJECTS for p in pos]
    ids = torch.tensor([tok.encode(c) for c in caps])
    x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0)).expand(len(caps), 3, res, res)
    with torch.no_grad():
        hid = clip(ids, T, tcfg)
        v = unet(torch.cat([x, coords(x)], 1), torch.tensor([999]), hid, U, ucfg,
                 class_labels=clip_pooled(ids, hid, tcfg))
    a, s = alphas_cumprod[999].sqrt(), (1 - alphas_cumprod[999]).sqrt()
    img = ((a * x - s * v) + 1).numpy() * 127.5  # [N, 3, res, res]
    sens, hits = [], 0
    ys, xs = np.mgrid[0:res, 0:res]
    for k in range(len(SUBJECTS)):
        group = img[k * len(pos):(k + 1) * len(pos)]
        mean = group.mean(0)
        sens.append(group.std(0).mean())
        for p, g in zip(pos, group):
            d = np.abs(g - mean).sum(0)
            w = np.maximum(d - np.percentile(d, 70), 0) + 1e-9
            cx, cy = int((w * xs).sum() / w.sum() / res * 3), int((w * ys).sum() / w.sum() / res * 3)
            hits += (min(cx, 2), min(cy, 2)) == tuple(voc["positions"][p])
    return float(np.mean(sens)), hits, len(caps)


def main():
    from train import alphas_cumprod
    d = sys.argv[1]
    res = int(sys.argv[2]) if len(sys.argv) > 2 else None
    ucfg = json.load(open(os.path.join(d, "unet", "config.json")))
    tcfg = json.load(open(os.path.join(d, "text_encoder", "config.json")))
    U = load_st(os.path.join(d, "unet", "diffusion_pytorch_model.safetensors"))
    T = load_st(os.path.join(d, "text_encoder", "model.safetensors"))
    voc = dataset.load_vocabulary()
    tok = bpe.Tokenizer(dataset.words(voc))
    sens, hits, n = position_probe(U, T, ucfg, tcfg, tok, voc, res or ucfg["sample_size"], alphas_cumprod())
    print(f"position probe: sensitivity {sens:.2f}/255, hits {hits}/{n} (chance {n // 9})")


if __name__ == "__main__":
    main()
