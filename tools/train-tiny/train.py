#!/usr/bin/python3
"""train.py — trains the default model (models/tiny) on this machine's CPU.

  /usr/bin/python3 tools/train-tiny/train.py --out models/tiny --steps 6000 [--seed 1] [--threads 2]
  /usr/bin/python3 tools/train-tiny/train.py --bench      # candidate sizes: time per training step

A pixel-space UNet2DConditionModel (64x64 RGB, no VAE) and a small
CLIPTextModel with its own BPE vocabulary (bpe.py), trained together with
v-prediction on a cosine schedule over procedural captioned images
(dataset.py, fresh every step). The caption's pooled embedding is added to
the timestep embedding (diffusers' class_embed_type "projection"), the pixel
coordinates are two extra input channels (COORD_CHANNELS), and a quarter of
the timesteps are the four the live playhead's 4-step trailing schedule
visits; the shape's pixels weigh more in the loss (--object-weight). The
weights written are an EMA of the trained ones. Everything is seeded: the
same seed, steps and thread count give the same model.

The folder written is the diffusers layout the engine loads for any
checkpoint: model_index.json (no vae: pixel space), unet/, text_encoder/,
tokenizer/, scheduler/ (DDIM, trailing spacing for few-step renders), plus
training_log.csv and loss.png. Checkpoints of the EMA weights are written
every --save-every steps, so a stopped run still leaves a model.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import dataset  # noqa: E402
from probe import position_probe  # noqa: E402
from sd_torch import clip, clip_pooled, load_st, save_st, unet  # noqa: E402

TEXT_HIDDEN = 64
# x and y as two extra input channels (model_index.json "coord_channels"; the
# engine appends them): position is then something the convolutions see
# instead of something they must infer from the zero padding at the borders.
COORD_CHANNELS = 2
# The shape's pixels weigh 1 + --object-weight (default 4) in the loss:
# they are a tenth of the image, and without it the model learned every
# background long before it drew any shape (seen at 800 steps)
# DDIM with 4 trailing steps (scheduler_config()): 999, 749, 499, 249
LIVE_TIMESTEPS = torch.tensor([999, 749, 499, 249])

CANDIDATES = {
    # name: (block_out_channels, down block types, heads)
    "a": ([16, 32, 64, 128], ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], 4),
    "b": ([32, 64, 128], ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], 4),
    "c": ([24, 48, 96, 128], ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], 4),
    "d": ([16, 32, 64, 96], ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], 4),
}


def unet_config(name, size):
    ch, down, heads = CANDIDATES[name]
    up = [t.replace("Down", "Up") for t in reversed(down)]
    return {
        "_class_name": "UNet2DConditionModel", "sample_size": size, "in_channels": 3 + COORD_CHANNELS,
        "out_channels": 3,
        "down_block_types": down, "up_block_types": up, "mid_block_type": "UNetMidBlock2DCrossAttn",
        "block_out_channels": ch, "layers_per_block": 1, "attention_head_dim": heads,
        "cross_attention_dim": TEXT_HIDDEN, "norm_num_groups": 8, "norm_eps": 1e-5, "act_fn": "silu",
        "flip_sin_to_cos": True, "freq_shift": 0, "use_linear_projection": True,
        "class_embed_type": "projection", "projection_class_embeddings_input_dim": TEXT_HIDDEN,
        "resnet_time_scale_shift": "scale_shift",
    }


def text_config(vocab_size, eos):
    return {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": vocab_size,
        "hidden_size": TEXT_HIDDEN, "intermediate_size": 4 * TEXT_HIDDEN, "num_hidden_layers": 3,
        "num_attention_heads": 4, "max_position_embeddings": bpe.MAX_LEN, "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5, "projection_dim": TEXT_HIDDEN, "bos_token_id": eos - 1, "eos_token_id": eos,
        "pad_token_id": eos,
    }


def scheduler_config():
    return {
        "_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
        "beta_start": 0.0001, "beta_end": 0.02, "prediction_type": "v_prediction", "timestep_spacing": "trailing",
        "clip_sample": True, "clip_sample_range": 1.0, "set_alpha_to_one": True, "steps_offset": 0,
    }


# ---- parameter shapes in diffusers' names ------------------------------------

def resnet_shapes(p, cin, cout, temb):
    # scale_shift (unet_config): the time embedding gives a scale and a shift
    s = {p + "norm1.weight": [cin], p + "norm1.bias": [cin], p + "conv1.weight": [cout, cin, 3, 3],
         p + "conv1.bias": [cout], p + "time_emb_proj.weight": [2 * cout, temb],
         p + "time_emb_proj.bias": [2 * cout],
         p + "norm2.weight": [cout], p + "norm2.bias": [cout], p + "conv2.weight": [cout, cout, 3, 3],
         p + "conv2.bias": [cout]}
    if cin != cout:
        s.update({p + "conv_shortcut.weight": [cout, cin, 1, 1], p + "conv_shortcut.bias": [cout]})
    return s


def linear_shapes(p, cout, cin, bias=True):
    s = {p + "weight": [cout, cin]}
    if bias:
        s[p + "bias"] = [cout]
    return s


def norm_shapes(p, c):
    return {p + "weight": [c], p + "bias": [c]}


def transformer_shapes(p, c, ctx):
    t = p + "transformer_blocks.0."
    s = {**norm_shapes(p + "norm.", c), **linear_shapes(p + "proj_in.", c, c), **linear_shapes(p + "proj_out.", c, c)}
    for n in ("norm1.", "norm2.", "norm3."):
        s.update(norm_shapes(t + n, c))
    for a, kv in (("attn1.", c), ("attn2.", ctx)):
        s.update(linear_shapes(t + a + "to_q.", c, c, False))
        s.update(linear_shapes(t + a + "to_k.", c, kv, False))
        s.update(linear_shapes(t + a + "to_v.", c, kv, False))
        s.update(linear_shapes(t + a + "to_out.0.", c, c))
    s.update(linear_shapes(t + "ff.net.0.proj.", 8 * c, c))
    s.update(linear_shapes(t + "ff.net.2.", c, 4 * c))
    return s


def unet_shapes(cfg):
    ch, lpb, n = cfg["block_out_channels"], cfg["layers_per_block"], len(cfg["block_out_channels"])
    temb, ctx = 4 * ch[0], cfg["cross_attention_dim"]
    s = {**linear_shapes("time_embedding.linear_1.", temb, ch[0]),
         **linear_shapes("time_embedding.linear_2.", temb, temb),
         **linear_shapes("class_embedding.linear_1.", temb, cfg["projection_class_embeddings_input_dim"]),
         **linear_shapes("class_embedding.linear_2.", temb, temb),
         "conv_in.weight": [ch[0], cfg["in_channels"], 3, 3], "conv_in.bias": [ch[0]]}
    for i, typ in enumerate(cfg["down_block_types"]):
        cin = ch[max(i - 1, 0)]
        for j in range(lpb):
            s.update(resnet_shapes(f"down_blocks.{i}.resnets.{j}.", cin if j == 0 else ch[i], ch[i], temb))
            if typ.startswith("CrossAttn"):
                s.update(transformer_shapes(f"down_blocks.{i}.attentions.{j}.", ch[i], ctx))
        if i < n - 1:
            s.update({f"down_blocks.{i}.downsamplers.0.conv.weight": [ch[i], ch[i], 3, 3],
                      f"down_blocks.{i}.downsamplers.0.conv.bias": [ch[i]]})
    s.update(resnet_shapes("mid_block.resnets.0.", ch[-1], ch[-1], temb))
    s.update(transformer_shapes("mid_block.attentions.0.", ch[-1], ctx))
    s.update(resnet_shapes("mid_block.resnets.1.", ch[-1], ch[-1], temb))
    rc = ch[::-1]
    for i, typ in enumerate(cfg["up_block_types"]):
        prev, out, inp = rc[max(i - 1, 0)], rc[i], rc[min(i + 1, n - 1)]
        for j in range(lpb + 1):
            skip = inp if j == lpb else out
            s.update(resnet_shapes(f"up_blocks.{i}.resnets.{j}.", (prev if j == 0 else out) + skip, out, temb))
            if typ.startswith("CrossAttn"):
                s.update(transformer_shapes(f"up_blocks.{i}.attentions.{j}.", out, ctx))
        if i < n - 1:
            s.update({f"up_blocks.{i}.upsamplers.0.conv.weight": [out, out, 3, 3],
                      f"up_blocks.{i}.upsamplers.0.conv.bias": [out]})
    s.update(norm_shapes("conv_norm_out.", ch[0]))
    s.update({"conv_out.weight": [cfg["out_channels"], ch[0], 3, 3], "conv_out.bias": [cfg["out_channels"]]})
    return s


def text_shapes(cfg):
    h, m = cfg["hidden_size"], cfg["intermediate_size"]
    s = {"text_model.embeddings.token_embedding.weight": [cfg["vocab_size"], h],
         "text_model.embeddings.position_embedding.weight": [cfg["max_position_embeddings"], h],
         **norm_shapes("text_model.final_layer_norm.", h)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."
        for n in ("layer_norm1.", "layer_norm2."):
            s.update(norm_shapes(p + n, h))
        for n in ("q_proj.", "k_proj.", "v_proj.", "out_proj."):
            s.update(linear_shapes(p + "self_attn." + n, h, h))
        s.update(linear_shapes(p + "mlp.fc1.", m, h))
        s.update(linear_shapes(p + "mlp.fc2.", h, m))
    return s


def init_params(shapes, gen):
    """PyTorch's default initialisation: uniform(+-1/sqrt(fan_in)) for conv and
    linear weights and biases, ones/zeros for norms, N(0, 0.02) embeddings."""
    W, fan = {}, {}
    for k, shp in shapes.items():
        if k.endswith("weight") and len(shp) >= 2:
            fan[k[:-6]] = int(np.prod(shp[1:]))
    for k in sorted(shapes):
        shp = shapes[k]
        if k.endswith("token_embedding.weight"):
            # unit scale, not CLIP's 0.02: with 0.02 the position and shape
            # words stayed indistinguishable for thousands of steps (their
            # pooled encodings 0.2-0.5 apart against 7 for colours), so the
            # UNet never learned where to draw
            t = torch.randn(shp, generator=gen)
        elif "embedding.weight" in k and "linear" not in k:
            t = torch.randn(shp, generator=gen) * 0.02
        elif "norm" in k:
            t = torch.ones(shp) if k.endswith("weight") else torch.zeros(shp)
        else:
            b = 1.0 / math.sqrt(fan[k.rsplit(".", 1)[0] + "."])
            t = (torch.rand(shp, generator=gen) * 2 - 1) * b
        W[k] = t.requires_grad_(True)
    return W


def alphas_cumprod():
    """diffusers' squaredcos_cap_v2 betas (betas_for_alpha_bar, max_beta 0.999)."""
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f((i + 1) / 1000) / f(i / 1000), 0.999) for i in range(1000)],
                         dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


class Model:
    def __init__(self, name, size, tok, gen):
        self.ucfg = unet_config(name, size)
        self.tcfg = text_config(len(tok.vocab), tok.vocab[bpe.EOS])
        self.U = init_params(unet_shapes(self.ucfg), gen)
        self.T = init_params(text_shapes(self.tcfg), gen)

    def params(self):
        return list(self.U.values()) + list(self.T.values())

    def forward(self, x, t, ids):
        hid = clip(ids, self.T, self.tcfg)
        return unet(torch.cat([x, coords(x)], 1), t, hid, self.U, self.ucfg,
                    class_labels=clip_pooled(ids, hid, self.tcfg))


def coords(x):
    """[B, 2, H, W]: channel 0 the column's centre, channel 1 the row's, each
    mapped to [-1, 1] ((j + 0.5) / W * 2 - 1), as the engine's pipeline makes
    them for a model_index.json with "coord_channels": 2."""
    B, _, H, W = x.shape
    cx = ((torch.arange(W, dtype=torch.float32) + 0.5) / W * 2 - 1)[None, :].expand(H, W)
    cy = ((torch.arange(H, dtype=torch.float32) + 0.5) / H * 2 - 1)[:, None].expand(H, W)
    return torch.stack([cx, cy])[None].expand(B, 2, H, W)


def count(W):
    return sum(v.numel() for v in W.values())


def bench(args, tok, voc):
    samp = dataset.Sampler(voc, 0)
    x, _, texts = samp.batch(args.batch)
    ids = torch.tensor([tok.encode(c) for c in texts])
    for name in args.bench:
        m = Model(name, voc["size"], tok, torch.Generator().manual_seed(0))
        opt = torch.optim.AdamW(m.params(), lr=1e-3)
        ts = []
        for i in range(4):
            t0 = time.perf_counter()
            t = torch.randint(0, 1000, (args.batch,))
            loss = F.mse_loss(m.forward(torch.from_numpy(x), t, ids), torch.zeros_like(torch.from_numpy(x)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            ts.append(time.perf_counter() - t0)
        with torch.no_grad():
            xx = torch.from_numpy(x[:1])
            t0 = time.perf_counter()
            for _ in range(5):
                m.forward(xx, torch.tensor([500]), ids[:1])
            fwd = (time.perf_counter() - t0) / 5
        print(f"{name}: {CANDIDATES[name][0]} unet {count(m.U) / 1e6:.2f}M text {count(m.T) / 1e6:.2f}M  "
              f"train step (batch {args.batch}) {min(ts[1:]):.2f} s  torch forward b1 {fwd * 1e3:.1f} ms", flush=True)


def write_model(out, m, ema_u, ema_t, tok, meta):
    for d in ("unet", "text_encoder", "tokenizer", "scheduler"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    save_st(os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"), ema_u)
    save_st(os.path.join(out, "text_encoder", "model.safetensors"), ema_t)
    dump = lambda obj, *p: json.dump(obj, open(os.path.join(out, *p), "w"), indent=2)
    dump(m.ucfg, "unet", "config.json")
    dump(m.tcfg, "text_encoder", "config.json")
    dump(scheduler_config(), "scheduler", "scheduler_config.json")
    tok.save(os.path.join(out, "tokenizer"))
    dump({"_class_name": "VtlPixelDiffusionPipeline", "_vtl_comment": "pixel space: no vae",
          "unet": ["diffusers", "UNet2DConditionModel"], "text_encoder": ["transformers", "CLIPTextModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"],
          "vae": [None, None], "coord_channels": COORD_CHANNELS}, "model_index.json")
    dump(meta, "training.json")


def plot(log_path, png):
    try:
        import matplotlib
    except ImportError:
        print("loss.png not drawn: apt-get install python3-matplotlib", flush=True)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [l.split(",") for l in open(log_path).read().split("\n")[1:] if l]
    step = [int(r[0]) for r in rows]
    loss = [float(r[2]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(step, loss, lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted v-MSE, 50-step mean")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)


def train(args, tok, voc):
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    m = Model(args.model, voc["size"], tok, gen)
    if args.init:  # go on from a saved model (its EMA weights)
        for W, f in ((m.U, "unet/diffusion_pytorch_model.safetensors"),
                     (m.T, "text_encoder/model.safetensors")):
            saved = load_st(os.path.join(args.init, f))
            with torch.no_grad():
                for k in W:
                    W[k].copy_(saved[k])
    ema_u = {k: v.detach().clone() for k, v in m.U.items()}
    ema_t = {k: v.detach().clone() for k, v in m.T.items()}
    opt = torch.optim.AdamW(m.params(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    ac = alphas_cumprod()
    samp = dataset.Sampler(voc, args.seed)
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "training_log.csv")
    log = open(log_path, "w")
    log.write("step,seconds,loss\n")
    t_start = time.time()
    acc = []
    print(f"unet {count(m.U) / 1e6:.3f}M params, text encoder {count(m.T) / 1e6:.3f}M", flush=True)
    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x0, mask, texts = samp.batch(args.batch)
        x0, mask = torch.from_numpy(x0), torch.from_numpy(mask)
        if step <= args.coarse_steps:  # the same images averaged down to half size
            x0, mask = F.avg_pool2d(x0, 2), F.avg_pool2d(mask, 2)
        w = 1 + args.object_weight * mask
        ids = torch.tensor([tok.encode(c) for c in texts])
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        u = torch.rand(args.batch, generator=gen)
        t = torch.where(u < 0.2, LIVE_TIMESTEPS[torch.randint(0, 4, (args.batch,), generator=gen)], t)
        t = torch.where(u > 1 - args.layout_share, torch.full_like(t, 999), t)
        eps = torch.randn(x0.shape, generator=gen)
        a = ac[t].sqrt()[:, None, None, None]
        s = (1 - ac[t]).sqrt()[:, None, None, None]
        v = a * eps - s * x0
        err = (m.forward(a * x0 + s * eps, t, ids) - v) ** 2
        loss = (w * err).mean() / w.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.params(), 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for E, W in ((ema_u, m.U), (ema_t, m.T)):
                for k in E:
                    E[k].mul_(d).add_(W[k].detach(), alpha=1 - d)
        acc.append(loss.item())
        if step % 50 == 0:
            el = time.time() - t_start
            log.write(f"{step},{el:.1f},{np.mean(acc):.5f}\n")
            log.flush()
            print(f"step {step}/{args.steps} loss {np.mean(acc):.4f} lr {lr:.2e} {el / 60:.1f} min", flush=True)
            acc = []
        if step % args.save_every == 0 or step == args.steps:
            res = voc["size"] // 2 if step <= args.coarse_steps else voc["size"]
            sens, hits, tries = position_probe(ema_u, ema_t, m.ucfg, m.tcfg, tok, voc, res, ac)
            print(f"position probe at {res}²: sensitivity {sens:.2f}/255, hits {hits}/{tries}", flush=True)
            meta = {"seed": args.seed, "steps": step, "of_steps": args.steps, "batch": args.batch,
                    "lr": args.lr, "ema": args.ema, "threads": torch.get_num_threads(),
                    "minutes": round((time.time() - t_start) / 60, 1), "torch": torch.__version__,
                    "unet_params": count(m.U), "text_params": count(m.T), "candidate": args.model,
                    "warmup": args.warmup, "coarse_steps": args.coarse_steps,
                    "layout_share": args.layout_share, "object_weight": args.object_weight,
                    "init": args.init, "position_probe": {"sensitivity": round(sens, 2), "hits": hits,
                                                          "of": tries}}
            write_model(args.out, m, ema_u, ema_t, tok, meta)
            plot(log_path, os.path.join(args.out, "loss.png"))
    print(f"done in {(time.time() - t_start) / 60:.1f} min", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/tiny")
    ap.add_argument("--model", default="a", choices=sorted(CANDIDATES))
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up steps")
    ap.add_argument("--object-weight", type=float, default=4.0)
    ap.add_argument("--init", metavar="DIR", help="start from this saved model instead of random weights")
    ap.add_argument("--layout-share", type=float, default=0.4,
                    help="share of samples at t=999, where only the caption says where things go")
    ap.add_argument("--coarse-steps", type=int, default=0,
                    help="train the first N steps at half resolution (4x cheaper; layout is learned there)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--bench", nargs="*", metavar="CANDIDATE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    voc = dataset.load_vocabulary()
    tok = bpe.Tokenizer(dataset.words(voc))
    if args.bench is not None:
        args.bench = args.bench or sorted(CANDIDATES)
        bench(args, tok, voc)
    else:
        train(args, tok, voc)


if __name__ == "__main__":
    main()
