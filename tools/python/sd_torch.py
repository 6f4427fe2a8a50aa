"""sd_torch.py — a compact functional PyTorch implementation of diffusers'
UNet2DConditionModel, AutoencoderKL decoder and AutoencoderTiny decoder and
transformers' CLIPTextModel, on weight dicts named as in the diffusers layout
and configs read from the folders' config.json files (no diffusers here:
Debian has no package and there is no PyPI).

Used by bench/engine_models_torch.py (PyTorch's side of the engine bench,
checked against the reference kit to 1e-6) and by tools/train-tiny (the
default model is trained through these same functions, so what it learns is
what the engine computes).

FLOPs are counted in the conv / linear / attention helpers while COUNT[0] is
set (2 per multiply-add; the two attention products). PyTorch 1.13 has no
fused attention: scores, softmax and the product are separate ops, as in
diffusers' AttnProcessor.
"""
import json
import math
import struct

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


def save_st(path, tensors):
    """Writes {name: float tensor} as an F32 safetensors file (names sorted)."""
    hdr, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = tensors[k].detach().float().contiguous().numpy().astype("<f4").tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(a)]}
        blobs.append(a)
        off += len(a)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


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

def resnet(x, W, p, temb, groups, eps, scale_shift=False):
    """diffusers' ResnetBlock2D; scale_shift: resnet_time_scale_shift
    "scale_shift" (the time embedding scales and shifts the normalised
    features instead of being added before the norm)."""
    h = conv(F.silu(gn(x, W, p + "norm1.", groups, eps)), W, p + "conv1.")
    t = linear(F.silu(temb), W, p + "time_emb_proj.")[:, :, None, None] if temb is not None else None
    if t is not None and not scale_shift:
        h = h + t
    h = gn(h, W, p + "norm2.", groups, eps)
    if t is not None and scale_shift:
        scale, shift = t.chunk(2, 1)
        h = h * (1 + scale) + shift
    h = conv(F.silu(h), W, p + "conv2.")
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


def unet(x, t, ctx, W, cfg, class_labels=None):
    """t: a number or one per sample [B]."""
    ch = cfg["block_out_channels"]
    n = len(ch)
    hd = cfg["attention_head_dim"]
    heads = hd if isinstance(hd, list) else [hd] * n
    lpb = cfg["layers_per_block"]
    G, eps, lp = cfg["norm_num_groups"], cfg.get("norm_eps", 1e-5), cfg.get("use_linear_projection", False)
    ss = cfg.get("resnet_time_scale_shift", "default") == "scale_shift"
    half = ch[0] // 2
    ex = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - cfg.get("freq_shift", 0)))
    tt = t.float() if torch.is_tensor(t) else torch.tensor(float(t))
    e = tt.reshape(-1).expand(x.shape[0])[:, None] * ex[None]
    e = torch.cat([torch.cos(e), torch.sin(e)], 1) if cfg.get("flip_sin_to_cos", True) else torch.cat([torch.sin(e), torch.cos(e)], 1)
    temb = linear(F.silu(linear(e, W, "time_embedding.linear_1.")), W, "time_embedding.linear_2.")
    if cfg.get("class_embed_type") == "projection":
        # class_labels: [B, projection_class_embeddings_input_dim] (the
        # engine passes the text encoder's pooled output)
        temb = temb + linear(F.silu(linear(class_labels, W, "class_embedding.linear_1.")), W,
                             "class_embedding.linear_2.")
    h = conv(x, W, "conv_in.")
    skips = [h]
    for i, typ in enumerate(cfg["down_block_types"]):
        for j in range(lpb):
            h = resnet(h, W, f"down_blocks.{i}.resnets.{j}.", temb, G, eps, ss)
            if typ.startswith("CrossAttn"):
                h = transformer(h, W, f"down_blocks.{i}.attentions.{j}.", ctx, heads[i], G, lp)
            skips.append(h)
        if i < n - 1:
            h = conv(h, W, f"down_blocks.{i}.downsamplers.0.conv.", stride=2, pad=1)
            skips.append(h)
    h = resnet(h, W, "mid_block.resnets.0.", temb, G, eps, ss)
    h = transformer(h, W, "mid_block.attentions.0.", ctx, heads[-1], G, lp)
    h = resnet(h, W, "mid_block.resnets.1.", temb, G, eps, ss)
    for i, typ in enumerate(cfg["up_block_types"]):
        for j in range(lpb + 1):
            h = torch.cat([h, skips.pop()], 1)
            h = resnet(h, W, f"up_blocks.{i}.resnets.{j}.", temb, G, eps, ss)
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


def clip_pooled(ids, hidden, cfg):
    """transformers' pooler_output: the final hidden state at the first eos
    token of each row (argmax of the ids for the old configs whose
    eos_token_id is 2)."""
    eos = cfg.get("eos_token_id", 2)
    pos = ids.argmax(-1) if eos == 2 else (ids == eos).int().argmax(-1)
    return hidden[torch.arange(ids.shape[0]), pos]


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


