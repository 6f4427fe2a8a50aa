#!/usr/bin/python3
"""engine_models_torch.py — PyTorch's side of engine_models_bench: the same
rows (text encoder 1x77, one guided UNet step at batch 2, VAE and TAESD
decode) on the same safetensors files, with a compact functional
implementation of diffusers' UNet2DConditionModel / AutoencoderKL decoder /
AutoencoderTiny decoder and transformers' CLIPTextModel built from the
folder's config.json files (no diffusers here: Debian has no package and there
is no PyPI). Weights are read with json + numpy.frombuffer.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/engine_models_torch.py \\
      --model DIR [--taesd DIR] [--size 256] [-n 2] [-t 2] [--only unet|text|vae|taesd]

FLOPs are counted while the warm-up runs, in the conv / linear / attention
helpers (2 per multiply-add; the two attention products), so they check the
config-derived counts engine_models_bench prints. Inputs are pseudo-random.
PyTorch 1.13 has no fused attention: scores, softmax and the product are
separate ops, as in diffusers' AttnProcessor.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

FL = {"conv": 0.0, "linear": 0.0, "attention": 0.0}
COUNT = [False]


def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    dt = {"F32": np.float32, "F16": np.float16, "BF16": None}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        if v["dtype"] == "BF16":
            u = np.frombuffer(data, dtype=np.uint16, count=(b - a) // 2, offset=a)
            arr = (u.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(data, dtype=dt[v["dtype"]], count=(b - a) // np.dtype(dt[v["dtype"]]).itemsize, offset=a)
        out[k] = torch.from_numpy(arr.astype(np.float32).reshape(v["shape"]))
    return out


def conv(x, W, p, stride=1, pad=None):
    w = W[p + "weight"]
    b = W.get(p + "bias")
    k = w.shape[-1]
    y = F.conv2d(x, w, b, stride=stride, padding=(k - 1) // 2 if pad is None else pad)
    if COUNT[0]:
        FL["conv"] += 2.0 * w.numel() * y.shape[0] * y.shape[2] * y.shape[3]
    return y


def linear(x, W, p):
    w = W[p + "weight"]
    if COUNT[0]:
        FL["linear"] += 2.0 * w.numel() * (x.numel() // x.shape[-1])
    return F.linear(x, w, W.get(p + "bias"))


def attention(q, k, v, heads, mask=None):
    # q [B, Tq, C], k v [B, Tk, C] -> [B, Tq, C]
    B, Tq, C = q.shape
    Tk = k.shape[1]
    d = C // heads
    if COUNT[0]:
        FL["attention"] += 4.0 * B * Tq * Tk * C
    q = q.reshape(B, Tq, heads, d).transpose(1, 2).reshape(B * heads, Tq, d)
    k = k.reshape(B, Tk, heads, d).transpose(1, 2).reshape(B * heads, Tk, d)
    v = v.reshape(B, Tk, heads, d).transpose(1, 2).reshape(B * heads, Tk, d)
    s = torch.baddbmm(torch.empty(B * heads, Tq, Tk), q, k.transpose(1, 2), beta=0, alpha=d ** -0.5)
    if mask is not None:
        s = s + mask
    s = s.softmax(dim=-1)
    o = torch.bmm(s, v)
    return o.reshape(B, heads, Tq, d).transpose(1, 2).reshape(B, Tq, C)


def gn(x, W, p, groups, eps):
    return F.group_norm(x, groups, W[p + "weight"], W[p + "bias"], eps)


def ln(x, W, p, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), W[p + "weight"], W[p + "bias"], eps)


# ---- UNet2DConditionModel ---------------------------------------------------

def resnet(x, W, p, temb, groups, eps):
    h = conv(F.silu(gn(x, W, p + "norm1.", groups, eps)), W, p + "conv1.")
    if temb is not None:
        h = h + linear(F.silu(temb), W, p + "time_emb_proj.")[:, :, None, None]
    h = conv(F.silu(gn(h, W, p + "norm2.", groups, eps)), W, p + "conv2.")
    if p + "conv_shortcut.weight" in W:
        x = conv(x, W, p + "conv_shortcut.")
    return x + h


def transformer(x, W, p, ctx, heads, groups, linear_proj):
    B, C, H, Wd = x.shape
    res = x
    h = gn(x, W, p + "norm.", groups, 1e-6)
    if linear_proj:
        h = linear(h.permute(0, 2, 3, 1).reshape(B, H * Wd, C), W, p + "proj_in.")
    else:
        h = conv(h, W, p + "proj_in.").permute(0, 2, 3, 1).reshape(B, H * Wd, C)
    t = p + "transformer_blocks.0."
    n = ln(h, W, t + "norm1.")
    h = h + linear(attention(linear(n, W, t + "attn1.to_q."), linear(n, W, t + "attn1.to_k."),
                             linear(n, W, t + "attn1.to_v."), heads), W, t + "attn1.to_out.0.")
    n = ln(h, W, t + "norm2.")
    h = h + linear(attention(linear(n, W, t + "attn2.to_q."), linear(ctx, W, t + "attn2.to_k."),
                             linear(ctx, W, t + "attn2.to_v."), heads), W, t + "attn2.to_out.0.")
    n = ln(h, W, t + "norm3.")
    a, g = linear(n, W, t + "ff.net.0.proj.").chunk(2, dim=-1)
    h = h + linear(a * F.gelu(g), W, t + "ff.net.2.")
    if linear_proj:
        h = linear(h, W, p + "proj_out.").reshape(B, H, Wd, C).permute(0, 3, 1, 2)
    else:
        h = conv(h.reshape(B, H, Wd, C).permute(0, 3, 1, 2).contiguous(), W, p + "proj_out.")
    return h + res


def unet(x, t, ctx, W, cfg):
    ch = cfg["block_out_channels"]
    n = len(ch)
    hd = cfg["attention_head_dim"]
    heads = hd if isinstance(hd, list) else [hd] * n
    lpb = cfg["layers_per_block"]
    G, eps, lp = cfg["norm_num_groups"], cfg.get("norm_eps", 1e-5), cfg.get("use_linear_projection", False)
    half = ch[0] // 2
    ex = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - cfg.get("freq_shift", 0)))
    e = torch.full((x.shape[0],), float(t))[:, None] * ex[None]
    e = torch.cat([torch.cos(e), torch.sin(e)], 1) if cfg.get("flip_sin_to_cos", True) else torch.cat([torch.sin(e), torch.cos(e)], 1)
    temb = linear(F.silu(linear(e, W, "time_embedding.linear_1.")), W, "time_embedding.linear_2.")
    h = conv(x, W, "conv_in.")
    skips = [h]
    for i, typ in enumerate(cfg["down_block_types"]):
        for j in range(lpb):
            h = resnet(h, W, f"down_blocks.{i}.resnets.{j}.", temb, G, eps)
            if typ.startswith("CrossAttn"):
                h = transformer(h, W, f"down_blocks.{i}.attentions.{j}.", ctx, heads[i], G, lp)
            skips.append(h)
        if i < n - 1:
            h = conv(h, W, f"down_blocks.{i}.downsamplers.0.conv.", stride=2, pad=1)
            skips.append(h)
    h = resnet(h, W, "mid_block.resnets.0.", temb, G, eps)
    h = transformer(h, W, "mid_block.attentions.0.", ctx, heads[-1], G, lp)
    h = resnet(h, W, "mid_block.resnets.1.", temb, G, eps)
    for i, typ in enumerate(cfg["up_block_types"]):
        for j in range(lpb + 1):
            h = torch.cat([h, skips.pop()], 1)
            h = resnet(h, W, f"up_blocks.{i}.resnets.{j}.", temb, G, eps)
            if typ.startswith("CrossAttn"):
                h = transformer(h, W, f"up_blocks.{i}.attentions.{j}.", ctx, heads[n - 1 - i], G, lp)
        if i < n - 1:
            h = F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest")
            h = conv(h, W, f"up_blocks.{i}.upsamplers.0.conv.")
    h = F.silu(gn(h, W, "conv_norm_out.", G, eps))
    return conv(h, W, "conv_out.")


# ---- CLIPTextModel -----------------------------------------------------------

def clip(ids, W, cfg):
    T = ids.shape[1]
    x = W["text_model.embeddings.token_embedding.weight"][ids] + W["text_model.embeddings.position_embedding.weight"][:T]
    mask = torch.full((T, T), float("-inf")).triu(1)
    heads = cfg["num_attention_heads"]
    act = cfg["hidden_act"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."
        n = ln(x, W, p + "layer_norm1.")
        x = x + linear(attention(linear(n, W, p + "self_attn.q_proj."), linear(n, W, p + "self_attn.k_proj."),
                                 linear(n, W, p + "self_attn.v_proj."), heads, mask), W, p + "self_attn.out_proj.")
        h = linear(ln(x, W, p + "layer_norm2."), W, p + "mlp.fc1.")
        h = h * torch.sigmoid(1.702 * h) if act == "quick_gelu" else F.gelu(h)
        x = x + linear(h, W, p + "mlp.fc2.")
    return ln(x, W, "text_model.final_layer_norm.")


# ---- AutoencoderKL decoder, AutoencoderTiny decoder ---------------------------

def vae_decode(z, W, cfg):
    ch = cfg["block_out_channels"]
    n = len(ch)
    G, lpb = cfg["norm_num_groups"], cfg["layers_per_block"]
    h = conv(conv(z, W, "post_quant_conv."), W, "decoder.conv_in.")
    h = resnet(h, W, "decoder.mid_block.resnets.0.", None, G, 1e-6)
    p = "decoder.mid_block.attentions.0."
    B, C, H, Wd = h.shape
    a = gn(h, W, p + "group_norm.", G, 1e-6).reshape(B, C, H * Wd).transpose(1, 2)
    a = linear(attention(linear(a, W, p + "to_q."), linear(a, W, p + "to_k."), linear(a, W, p + "to_v."), 1),
               W, p + "to_out.0.")
    h = h + a.transpose(1, 2).reshape(B, C, H, Wd)
    h = resnet(h, W, "decoder.mid_block.resnets.1.", None, G, 1e-6)
    for i in range(n):
        for j in range(lpb + 1):
            h = resnet(h, W, f"decoder.up_blocks.{i}.resnets.{j}.", None, G, 1e-6)
        if i < n - 1:
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), W, f"decoder.up_blocks.{i}.upsamplers.0.conv.")
    h = F.silu(gn(h, W, "decoder.conv_norm_out.", G, 1e-6))
    return conv(h, W, "decoder.conv_out.")


def taesd_decode(z, W, cfg):
    h = torch.tanh(z / 3) * 3
    h = F.relu(conv(h, W, "decoder.layers.0."))
    idx = 2
    nb = cfg["num_decoder_blocks"]
    for i, nblk in enumerate(nb):
        for _ in range(nblk):
            p = f"decoder.layers.{idx}.conv."
            r = conv(F.relu(conv(F.relu(conv(h, W, p + "0.")), W, p + "2.")), W, p + "4.")
            h = F.relu(r + h)
            idx += 1
        if i < len(nb) - 1:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            idx += 1
        h = conv(h, W, f"decoder.layers.{idx}.")
        idx += 1
    return h * 2 - 1


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
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    tot = sum(fl.values())
    print(f"{name:<6} {best:10.3f} s {tot * 1e-9:9.3f} GFLOP {tot / best * 1e-9:7.1f} GFLOP/s   "
          f"(conv {fl['conv'] * 1e-9:.2f}, linear {fl['linear'] * 1e-9:.2f}, attention {fl['attention'] * 1e-9:.2f})",
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
    want = lambda k: not a.only or a.only == k
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
