#!/usr/bin/env python3
"""PyTorch on the shapes of bench/engine_ops.c, for the side-by-side table in
bench/README.md. Same rows, same output format, same thread count.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/engine_ops_torch.py [-n 3] [-t 2]

Debian's python3-torch (1.13, OpenBLAS + oneDNN). Attention is computed the
way diffusers' AttnProcessor does on torch 1.13 (no fused SDPA there):
heads to batch, baddbmm(alpha=scale), softmax, bmm, batch to heads.
"""
import argparse
import os
import time

if "OMP_WAIT_POLICY" not in os.environ:  # must be set before torch loads
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CONVS = [
    ("unet conv_in 4->320 64x64", 4, 320, 64),
    ("unet 320->320 64x64", 320, 320, 64),
    ("unet 640->640 32x32", 640, 640, 32),
    ("unet 1280->1280 16x16", 1280, 1280, 16),
    ("vae 512->512 64x64", 512, 512, 64),
    ("vae 256->256 256x256", 256, 256, 256),
]
ATTNS = [
    ("self 4096x4096 C=320", 4096, 4096, 320),
    ("cross 4096x77 C=320", 4096, 77, 320),
    ("self 1024x1024 C=640", 1024, 1024, 640),
]


def best_of(n, fn):
    fn()  # warm-up
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def row(what, best, flop):
    print(f"{what:<32} {'torch':<5} {best * 1e3:10.2f} ms {flop / best * 1e-9:8.1f} GFLOP/s",
          flush=True)


def attention(q, k, v, heads):
    b, tq, c = q.shape
    d = c // heads

    def h2b(x):
        return x.reshape(b, -1, heads, d).permute(0, 2, 1, 3).reshape(b * heads, -1, d)

    qb, kb, vb = h2b(q), h2b(k), h2b(v)
    s = torch.baddbmm(torch.empty(qb.shape[0], qb.shape[1], kb.shape[1]), qb,
                      kb.transpose(-1, -2), beta=0, alpha=d ** -0.5)
    p = s.softmax(dim=-1)
    o = torch.bmm(p, vb)
    return o.reshape(b, heads, tq, d).permute(0, 2, 1, 3).reshape(b, tq, c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("-t", type=int, default=2, help="torch.set_num_threads")
    args = ap.parse_args()
    torch.set_num_threads(args.t)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    with torch.no_grad():
        for s in (1024, 2048):
            a, b = torch.rand(s, s) - 0.5, torch.rand(s, s) - 0.5
            row(f"sgemm {s}^3", best_of(args.n, lambda: torch.mm(a, b)), 2.0 * s ** 3)
        for name, ci, co, hw in CONVS:
            x = torch.rand(1, ci, hw, hw) - 0.5
            w = torch.rand(co, ci, 3, 3) - 0.5
            bias = torch.rand(co) - 0.5
            row(name, best_of(args.n, lambda: F.conv2d(x, w, bias, padding=1)),
                2.0 * co * ci * 9 * hw * hw)
        for name, tq, tk, c in ATTNS:
            q = torch.rand(1, tq, c) - 0.5
            k = torch.rand(1, tk, c) - 0.5
            v = torch.rand(1, tk, c) - 0.5
            row(f"attn {name}", best_of(args.n, lambda: attention(q, k, v, 8)),
                4.0 * tq * tk * c)


if __name__ == "__main__":
    main()
