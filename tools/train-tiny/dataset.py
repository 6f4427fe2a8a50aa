"""dataset.py — procedural captioned images for the default model, drawn
from vocabulary.json: one shape of a colour, size and position on a
background (vertical gradient stops or a two-colour pattern, optionally at a
time of day), with a caption in one of several wordings. Attributes may be
left out of a caption (the image then draws them at random), and some
captions are empty, so classifier-free guidance has an unconditional model.

Shapes are drawn from signed distances at 2x supersampling, so edges are
antialiased. Samples whose (colour, shape, position, background) is in the
vocabulary's held_out list are never drawn: the quality test prompts with
those.
"""
import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_vocabulary(path=os.path.join(HERE, "vocabulary.json")):
    with open(path) as f:
        return json.load(f)


def background(voc, name, time, size):
    """[size, size, 3] float32 0..255, as the quality test computes it."""
    b = voc["backgrounds"][name]
    y = (np.arange(size, dtype=np.float32) + 0.5) / size
    x = y
    if "stops" in b:
        stops = b["stops"]
        col = np.zeros((size, 3), np.float32)
        for i, yy in enumerate(y):
            # last stop at or above yy, then interpolate to the next one
            k = max(j for j, s in enumerate(stops) if s[0] <= yy or j == 0)
            if k == len(stops) - 1:
                col[i] = stops[k][1]
            else:
                a, c = stops[k], stops[k + 1]
                f = 0.0 if c[0] <= a[0] else (yy - a[0]) / (c[0] - a[0])
                col[i] = np.array(a[1]) * (1 - f) + np.array(c[1]) * f
        img = np.repeat(col[:, None, :], size, axis=1)
    else:
        p = b["period"]
        iy = np.arange(size)[:, None] // p
        ix = np.arange(size)[None, :] // p
        sel = (iy % 2 == 0) if b["pattern"] == "stripes" else ((iy + ix) % 2 == 0)
        sel = np.broadcast_to(sel, (size, size))
        img = np.where(sel[..., None], np.array(b["a"], np.float32), np.array(b["b"], np.float32))
    if time and b.get("outdoor"):
        t = voc["times"][time]
        img = img * np.array(t["mul"], np.float32) + np.array(t["add"], np.float32)
    del x
    return np.clip(img, 0, 255).astype(np.float32)


def shape_distance(shape, px, py, r):
    """Signed distance (pixels, negative inside) of a shape of radius r
    centred at the origin, at points (px, py); y grows downwards."""
    d = np.hypot(px, py)
    if shape == "circle":
        return d - r
    if shape == "ring":
        return np.abs(d - 0.75 * r) - 0.25 * r
    if shape == "square":
        s = 0.85 * r
        return np.maximum(np.abs(px), np.abs(py)) - s
    if shape == "diamond":
        return (np.abs(px) + np.abs(py) - 1.15 * r) / math.sqrt(2)
    if shape == "triangle":
        # upward equilateral triangle: the max of three half-plane distances
        ny = -py
        k = math.sqrt(3) / 2
        d1 = -ny - 0.5 * r
        d2 = k * px + 0.5 * ny - 0.5 * r
        d3 = -k * px + 0.5 * ny - 0.5 * r
        return np.maximum(d1, np.maximum(d2, d3)) - 0.1 * r
    if shape == "star":
        a = np.arctan2(px, -py)
        seg = (a % (2 * math.pi / 5)) / (2 * math.pi / 5)
        tri = np.abs(seg - 0.5) * 2  # 1 at the points, 0 between them
        rad = r * (0.45 + 0.6 * tri)
        return (d - rad) * 0.8
    raise ValueError(shape)


def draw(voc, colour, shape, size_word, position, bg, time, rng):
    n = voc["size"]
    img = background(voc, bg, time, n)
    lo, hi = voc["sizes"][size_word]
    r = rng.uniform(lo, hi)
    gx, gy = voc["positions"][position]
    c = voc["grid"]["centres"]
    j = voc["grid"]["jitter"]
    cx = c[gx] + rng.uniform(-j, j)
    cy = c[gy] + rng.uniform(-j, j)
    ss = (np.arange(2 * n, dtype=np.float32) + 0.5) / 2
    px = ss[None, :] - cx
    py = ss[:, None] - cy
    a = np.clip(0.5 - 2 * shape_distance(shape, px, py, r), 0, 1)
    a = a.reshape(n, 2, n, 2).mean(axis=(1, 3))[..., None]
    img = img * (1 - a) + np.array(voc["colours"][colour], np.float32) * a
    return img, a[..., 0]


def caption(voc, colour, shape, size_word, position, bg, time, rng, keep):
    """One wording of the attributes; keep[name] False leaves one out."""
    obj = " ".join(w for w in [size_word if keep["size"] else "", colour if keep["colour"] else "", shape] if w)
    pos = rng.choice(voc["position_phrases"][position]) if keep["position"] else ""
    bgp = rng.choice(voc["background_phrases"][bg]) if keep["background"] else ""
    if keep["background"] and time and voc["backgrounds"][bg].get("outdoor"):
        bgp += " " + time
    form = rng.integers(3)
    if form == 0:
        parts = ["a " + obj, pos, bgp]
    elif form == 1:
        parts = [obj + ",", pos + ("," if pos else ""), bgp]
    else:
        parts = [bgp + (" with" if bgp else ""), "a " + obj, pos]
    return " ".join(p for p in parts if p).strip(" ,")


class Sampler:
    def __init__(self, voc, seed):
        self.voc = voc
        self.rng = np.random.default_rng(seed)
        self.held = {tuple(h[:4]) for h in voc["held_out"]}

    def one(self):
        v, rng = self.voc, self.rng
        while True:
            colour = rng.choice(list(v["colours"]))
            shape = rng.choice(v["shapes"])
            position = rng.choice(list(v["positions"]))
            bg = rng.choice(list(v["backgrounds"]))
            if (colour, shape, position, bg) not in self.held:
                break
        size_word = rng.choice(list(v["sizes"]))
        time = rng.choice(list(v["times"])) if v["backgrounds"][bg].get("outdoor") else ""
        img, mask = draw(v, colour, shape, size_word, position, bg, time, rng)
        if rng.random() < 0.1:
            text = ""
        else:
            keep = {k: rng.random() > 0.1 for k in ("size", "colour", "position", "background")}
            keep["size"] = keep["size"] and size_word != ""
            text = caption(v, colour, shape, size_word, position, bg, time, rng, keep)
        return img, mask, text

    def batch(self, n):
        """x [n, 3, H, W] in [-1, 1], the shapes' coverage [n, 1, H, W] in
        [0, 1], captions."""
        imgs, masks, texts = zip(*(self.one() for _ in range(n)))
        x = np.stack(imgs).transpose(0, 3, 1, 2) / 127.5 - 1.0
        return x.astype(np.float32), np.stack(masks)[:, None].astype(np.float32), list(texts)


def words(voc):
    """Every word a caption can use, for the tokenizer's BPE."""
    out = set(voc["shapes"]) | set(voc["colours"]) | {"a", "with"}
    for d in (voc["sizes"], voc["positions"], voc["times"]):
        for k in d:
            out |= set(k.split())
    for d in (voc["background_phrases"], voc["position_phrases"]):
        for ph in d.values():
            for p in ph:
                out |= set(p.split())
    out |= {"center", "middle"}
    return sorted(w for w in out if w)
