#!/usr/bin/python3
"""engine_models_torch.py — PyTorch's side of engine_models_bench: the same
rows (text encoder 1x77, one guided UNet step at batch 2, VAE and TAESD
decode) on the same safetensors files, through tools/python/sd_torch.py.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/engine_models_torch.py \\
      --model DIR [--taesd DIR] [--size 256] [-n 2] [-t 2] [--only unet|text|vae|taesd[,...]]

FLOPs are counted while the warm-up runs, so they check the config-derived
counts engine_models_bench prints. Inputs are pseudo-random.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "python"))
from sd_torch import COUNT, FL, clip, load_st, taesd_decode, unet, vae_decode  # noqa: E402

# ---- driver ----------------------------------------------------------------

def timed(name, fn, reps):
    COUNT[0] = True
    for k in FL:
        FL[k] = 0.0
    t0 = time.perf_counter()
    fn()
    print(f"  {name} warm-up: {time.perf_counter() - t0:.3f} s", file=sys.stderr)
    COUNT[0] = False
    fl = dict(FL)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    best, med = ts[0], (ts[(reps - 1) // 2] + ts[reps // 2]) / 2
    tot = sum(fl.values())
    print(f"{name:<6} {best:10.3f} s {tot * 1e-9:9.3f} GFLOP {tot / best * 1e-9:7.1f} GFLOP/s   "
          f"(conv {fl['conv'] * 1e-9:.2f}, linear {fl['linear'] * 1e-9:.2f}, attention {fl['attention'] * 1e-9:.2f})"
          f"   median {med:.3f} s, range {best:.3f}-{ts[-1]:.3f} s",
          flush=True)


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check(kit):
    """Max abs error against the kit's reference outputs (diffusers / transformers)."""
    m, c = os.path.join(kit, "models", "tiny-sd"), os.path.join(kit, "cases")
    L = lambda case, f: torch.from_numpy(np.load(os.path.join(c, case, f + ".npy")))
    rd = lambda *p: json.load(open(os.path.join(*p)))
    with torch.no_grad():
        W = load_st(os.path.join(m, "unet", "diffusion_pytorch_model.safetensors"))
        y = unet(L("unet_t500", "sample"), float(L("unet_t500", "timestep")[0]),
                 L("unet_t500", "encoder_hidden_states"), W, rd(m, "unet", "config.json"))
        print(f"check unet_t500: max abs err {(y - L('unet_t500', 'noise_pred')).abs().max():.2e}")
        W = load_st(os.path.join(m, "text_encoder", "model.safetensors"))
        y = clip(L("text_encoder_b1", "input_ids"), W, rd(m, "text_encoder", "config.json"))
        print(f"check text_encoder_b1: max abs err {(y - L('text_encoder_b1', 'last_hidden_state')).abs().max():.2e}")
        W = load_st(os.path.join(m, "vae", "diffusion_pytorch_model.safetensors"))
        y = vae_decode(L("vae_decode", "latents"), W, rd(m, "vae", "config.json"))
        print(f"check vae_decode: max abs err {(y - L('vae_decode', 'image')).abs().max():.2e}")
        t = os.path.join(kit, "models", "taesd")
        W = load_st(os.path.join(t, "diffusion_pytorch_model.safetensors"))
        y = taesd_decode(L("taesd_decode", "latents"), W, rd(t, "config.json"))
        print(f"check taesd_decode: max abs err {(y - L('taesd_decode', 'image')).abs().max():.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--taesd")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--check", metavar="REFKIT", help="first check this implementation against the reference "
                    "kit's tiny-sd cases (unet_t500, text_encoder_b1, vae_decode, taesd_decode)")
    a = ap.parse_args()
    if a.check:
        check(a.check)
    torch.set_num_threads(a.t)
    torch.manual_seed(0)
    want = lambda k: not a.only or k in a.only.split(",")
    rd = lambda *p: json.load(open(os.path.join(*p)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")
    print(f"model: {a.model}  size {a.size}x{a.size}  best of {a.n} after a warm-up")
    lh = a.size // 8
    with torch.no_grad():
        if want("text"):
            cfg = rd(a.model, "text_encoder", "config.json")
            W = load_st(os.path.join(a.model, "text_encoder", "model.safetensors"))
            ids = torch.tensor([[cfg["bos_token_id"]] + [(i * 7919) % (cfg["vocab_size"] - 2) for i in range(1, 76)]
                                + [cfg["eos_token_id"]]])
            timed("text", lambda: clip(ids, W, cfg), a.n)
            del W
        if want("unet"):
            cfg = rd(a.model, "unet", "config.json")
            W = load_st(os.path.join(a.model, "unet", "diffusion_pytorch_model.safetensors"))
            x = torch.rand(2, cfg["in_channels"], lh, lh) * 2 - 1
            ctx = torch.rand(2, 77, cfg["cross_attention_dim"]) * 2 - 1
            timed("unet", lambda: unet(x, 500.0, ctx, W, cfg), a.n)
            del W
        z = (torch.rand(1, 4, lh, lh) - 0.5) * 4
        if want("vae"):
            cfg = rd(a.model, "vae", "config.json")
            W = load_st(os.path.join(a.model, "vae", "diffusion_pytorch_model.safetensors"))
            timed("vae", lambda: vae_decode(z, W, cfg), a.n)
            del W
        if a.taesd and want("taesd"):
            cfg = rd(a.taesd, "config.json")
            W = load_st(os.path.join(a.taesd, "diffusion_pytorch_model.safetensors"))
            timed("taesd", lambda: taesd_decode(z, W, cfg), a.n)
            del W
    print(f"peak RSS {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
