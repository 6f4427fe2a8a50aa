/* engine_ops.c — the engine's GEMM-heavy ops at Stable Diffusion shapes, on
 * both backends (runtime.h), for bench/README.md next to PyTorch on the same
 * shapes (bench/engine_ops_torch.py).
 *
 *   cmake --build build --target engine_ops_bench
 *   ./build/bench/engine_ops_bench                 both backends, best of 3
 *   ./build/bench/engine_ops_bench -b host -n 5    one backend, best of 5
 *   ./build/bench/engine_ops_bench -o attn         one family (sgemm|conv|attn)
 *
 * Rows (FLOPs counted as 2 per multiply-add; each row warmed up once, then
 * timed n times with the queue drained, the best kept):
 *   sgemm M=N=K                      vtl_gemm
 *   conv WHAT                        vtl_conv2d 3x3 pad 1 + bias, batch 1
 *   attn WHAT                        vtl_attention, B=1, 8 heads
 *   small WHAT                       the default model's (models/tiny)
 *                                    per-op shapes at 64x64, batch 1, in
 *                                    microseconds: at this size the launch
 *                                    and the elementwise ops count, not the
 *                                    FLOPs
 * The OpenCL backend on a CPU (CLBlast untuned through PoCL) is an order of
 * magnitude slower, so it runs the big rows once (-n is for host rows).
 * No row asserts anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "runtime.h"
#include "runtime_int.h" /* vtl__now */

typedef struct {
  const char *name;
  int ci, co, hw;     /* conv: channels in/out, side */
} conv_shape;

static const conv_shape convs[] = {
    {"unet conv_in 4->320 64x64", 4, 320, 64},
    {"unet 320->320 64x64", 320, 320, 64},
    {"unet 640->640 32x32", 640, 640, 32},
    {"unet 1280->1280 16x16", 1280, 1280, 16},
    {"vae 512->512 64x64", 512, 512, 64},
    {"vae 256->256 256x256", 256, 256, 256},
};

typedef struct {
  const char *name;
  int tq, tk, c;
} attn_shape;

static const attn_shape attns[] = {
    {"self 4096x4096 C=320", 4096, 4096, 320},
    {"cross 4096x77 C=320", 4096, 77, 320},
    {"self 1024x1024 C=640", 1024, 1024, 640},
};

static void fill(vtl_cl *cl, vtl_tensor *t) {
  size_t n = vtl_tensor_numel(t);
  float *p = malloc(n * sizeof *p);
  if (!p) exit(1);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / (1 << 24) - 0.5f;
  }
  if (vtl_tensor_write(cl, t, p) != 0) exit(1);
  free(p);
}

static void alloc(vtl_cl *cl, vtl_tensor *t, int nd, const int64_t *shape) {
  if (vtl_tensor_alloc(cl, t, nd, shape) != 0) {
    fprintf(stderr, "alloc: %s\n", vtl_cl_errmsg(cl));
    exit(1);
  }
  fill(cl, t);
}

static void ok(vtl_cl *cl, int rc) {
  if (rc != 0) {
    fprintf(stderr, "failed: %s\n", vtl_cl_errmsg(cl));
    exit(1);
  }
}

/* Best of n runs of op (after one warm-up), the queue drained each time. */
#define BEST_OF(best, n, op)                                    \
  do {                                                          \
    best = 1e9;                                                 \
    for (int r_ = -1; r_ < (n); r_++) {                         \
      double t0_ = vtl__now();                                  \
      ok(cl, (op));                                             \
      ok(cl, vtl_cl_finish(cl));                                \
      double t_ = vtl__now() - t0_;                             \
      if (r_ >= 0 && t_ < best) best = t_;                      \
    }                                                           \
  } while (0)

static void small_row(const char *what, const char *backend, double best) {
  printf("%-32s %-5s %10.1f us\n", what, backend, best * 1e6);
  fflush(stdout);
}

/* The tiny model's ops at batch 1 (block 16 channels at 64x64, 64 at 16x16). */
static void small_ops(vtl_cl *cl, const char *bn, int n) {
  vtl_tensor x, y, g, b, w, hs, ff, ffo, ln, lno;
  double best;
  alloc(cl, &x, 4, VTL_SHAPE(1, 16, 64, 64));
  alloc(cl, &y, 4, VTL_SHAPE(1, 16, 64, 64));
  alloc(cl, &g, 1, VTL_SHAPE(16));
  alloc(cl, &b, 1, VTL_SHAPE(16));
  alloc(cl, &w, 4, VTL_SHAPE(16, 16, 3, 3));
  alloc(cl, &ff, 3, VTL_SHAPE(1, 256, 512));
  alloc(cl, &ffo, 3, VTL_SHAPE(1, 256, 256));
  alloc(cl, &ln, 3, VTL_SHAPE(1, 256, 64));
  alloc(cl, &lno, 3, VTL_SHAPE(1, 256, 64));
  alloc(cl, &hs, 1, VTL_SHAPE(64));
  BEST_OF(best, n, vtl_group_norm(cl, &y, &x, &g, &b, 8, 1e-5f, 1));
  small_row("small group_norm+silu 16x64x64", bn, best);
  BEST_OF(best, n, vtl_add(cl, &y, &x, &y));
  small_row("small add 16x64x64", bn, best);
  BEST_OF(best, n, vtl_conv2d(cl, &y, &x, &w, &b, 1, 1, VTL_ACT_NONE));
  small_row("small conv3x3 16->16 64x64", bn, best);
  BEST_OF(best, n, vtl_geglu(cl, &ffo, &ff));
  small_row("small geglu 256x512", bn, best);
  BEST_OF(best, n, vtl_layer_norm(cl, &lno, &ln, &hs, &hs, 1e-5f));
  small_row("small layer_norm 256x64", bn, best);
  vtl_tensor *all[] = {&x, &y, &g, &b, &w, &hs, &ff, &ffo, &ln, &lno};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vtl_tensor_release(cl, all[i]);
}

static void row(const char *what, const char *backend, double best,
                double flop) {
  printf("%-32s %-5s %10.2f ms %8.1f GFLOP/s\n", what, backend, best * 1e3,
         flop / best * 1e-9);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *which = "both", *only = "";
  int reps = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) which = argv[++i];
    else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: engine_ops_bench [-b host|cl|both] [-n reps] [-o sgemm|conv|attn|small]\n");
      return 2;
    }
  }
  vtl_cl *cl;
  char msg[512];
  if (vtl_cl_init(&cl, NULL, msg, sizeof msg) != 0) {
    fprintf(stderr, "engine_ops_bench: %s\n", msg);
    return 1;
  }
  printf("device: %s\n", vtl_cl_device_name(cl));
  for (int bi = 0; bi < 2; bi++) {
    vtl_backend b = bi == 0 ? VTL_BACKEND_HOST : VTL_BACKEND_CL;
    const char *bn = bi == 0 ? "host" : "cl";
    if (strcmp(which, "both") != 0 && strcmp(which, bn) != 0) continue;
    vtl_cl_set_backend(cl, b);
    int n = b == VTL_BACKEND_HOST ? reps : 1;

    for (int s = 1024; s <= 2048 && strstr("sgemm", only); s *= 2) {
      vtl_tensor A, B, C;
      alloc(cl, &A, 2, VTL_SHAPE(s, s));
      alloc(cl, &B, 2, VTL_SHAPE(s, s));
      alloc(cl, &C, 2, VTL_SHAPE(s, s));
      double best;
      BEST_OF(best, n, vtl_gemm(cl, &C, &A, &B, 0, 0, 1.0f, 0.0f));
      char what[64];
      snprintf(what, sizeof what, "sgemm %d^3", s);
      row(what, bn, best, 2.0 * s * s * (double)s);
      vtl_tensor_release(cl, &A);
      vtl_tensor_release(cl, &B);
      vtl_tensor_release(cl, &C);
    }

    for (size_t i = 0; i < sizeof convs / sizeof convs[0] && strstr("conv", only); i++) {
      const conv_shape *c = &convs[i];
      if (b == VTL_BACKEND_CL && c->hw > 64) continue; /* minutes */
      vtl_tensor x, w, bias, y;
      alloc(cl, &x, 4, VTL_SHAPE(1, c->ci, c->hw, c->hw));
      alloc(cl, &w, 4, VTL_SHAPE(c->co, c->ci, 3, 3));
      alloc(cl, &bias, 1, VTL_SHAPE(c->co));
      alloc(cl, &y, 4, VTL_SHAPE(1, c->co, c->hw, c->hw));
      double best;
      BEST_OF(best, n, vtl_conv2d(cl, &y, &x, &w, &bias, 1, 1, VTL_ACT_NONE));
      row(c->name, bn, best,
          2.0 * c->co * c->ci * 9.0 * (double)c->hw * c->hw);
      vtl_tensor_release(cl, &x);
      vtl_tensor_release(cl, &w);
      vtl_tensor_release(cl, &bias);
      vtl_tensor_release(cl, &y);
    }

    for (size_t i = 0; i < sizeof attns / sizeof attns[0] && strstr("attn", only); i++) {
      const attn_shape *a = &attns[i];
      vtl_tensor q, k, v, o;
      alloc(cl, &q, 3, VTL_SHAPE(1, a->tq, a->c));
      alloc(cl, &k, 3, VTL_SHAPE(1, a->tk, a->c));
      alloc(cl, &v, 3, VTL_SHAPE(1, a->tk, a->c));
      alloc(cl, &o, 3, VTL_SHAPE(1, a->tq, a->c));
      double best;
      BEST_OF(best, n, vtl_attention(cl, &o, &q, &k, &v, 8, 0));
      char what[64];
      snprintf(what, sizeof what, "attn %s", a->name);
      row(what, bn, best, 4.0 * a->tq * (double)a->tk * a->c);
      vtl_tensor_release(cl, &q);
      vtl_tensor_release(cl, &k);
      vtl_tensor_release(cl, &v);
      vtl_tensor_release(cl, &o);
    }
  }
  for (int bi = 0; bi < 2 && strstr("small", only); bi++) {
    vtl_backend b = bi == 0 ? VTL_BACKEND_HOST : VTL_BACKEND_CL;
    const char *bn = bi == 0 ? "host" : "cl";
    if (strcmp(which, "both") != 0 && strcmp(which, bn) != 0) continue;
    vtl_cl_set_backend(cl, b);
    small_ops(cl, bn, reps * 10);
  }
  printf("peak device memory: %.1f MiB\n", vtl_cl_bytes_peak(cl) / 1048576.0);
  vtl_cl_close(cl);
  return 0;
}
