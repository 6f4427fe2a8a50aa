/* test_unet.c — the UNet (engine/unet.h) on configs other than the kit's
 * (the kit's own cases run in vtl-refcheck, kind unet):
 *
 *   random_linear     3 levels, use_linear_projection, per-block head
 *                     counts, transformer_layers_per_block [1, 1, 2] (the
 *                     mid block takes 2), attention only in some blocks,
 *                     conv_in kernel 5, conv_out kernel 1, freq_shift 1,
 *                     flip_sin_to_cos false, time_embedding_dim 20, one
 *                     timestep per sample (fractional)
 *   random_odd_size   a 5x7 sample through 3 levels (5x7 -> 3x4 -> 2x2 and
 *                     back: the upsamplers resize to the skip sizes), a
 *                     timestep per sample, batch 3
 *   random_conv       2 levels, 1x1 conv projections, 2 resnets per block,
 *                     2 transformer layers, downsample_padding 0,
 *                     mid_block_scale_factor 1.5, eps 1e-6, one timestep
 *                     for the batch
 *   random_class_proj class_embed_type "projection" (RGB in and out, the
 *                     pixel model's family): class labels [B, P] through
 *                     class_embedding.linear_1 / SiLU / linear_2, added to
 *                     the time embedding
 *   class_labels_errors class labels missing, of the wrong width, or given
 *                     to a UNet without a class embedding: VTL_EINVAL
 *   forward_errors    wrong shapes, timestep counts: VTL_EINVAL, nothing
 *                     leaked
 *   load_errors       a missing weight (VTL_ENOENT), an extra one
 *                     (VTL_EUNSUPPORTED), a wrong shape (VTL_ERANGE), an
 *                     unsupported config (refused at open): no device
 *                     memory left behind
 *
 * Each random model is defined here by a plain double-precision forward
 * pass written from diffusers' modules (ref_*): running it creates the
 * weights it asks for by name and shape, which are then written as a
 * diffusers unet/ folder for the engine to load.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_files.h"
#include "ops.h"
#include "engine_test.h"
#include "task.h"
#include "unet.h"
#include "vtl_error.h"

/* ---- the test's UNet configs --------------------------------------------- */

typedef struct {
  int N, ch[4], down_attn[4], up_attn[4], heads[4], tl[4];
  int lpb, linear, groups, flip, ted, cin, cout, kin, kout, dpad, dc;
  double eps, shift, mid_scale;
  int proj; /* class_embed_type "projection": class label width; 0: none */
} ucfg;

/* ---- weights by name ----------------------------------------------------- */

typedef struct {
  char name[160];
  int ndim;
  int64_t shape[4];
  size_t n;
  float *v;
} wentry;

static wentry wt[1024];
static int nwt;

static void weights_reset(void) {
  for (int i = 0; i < nwt; i++)
    free(wt[i].v);
  nwt = 0;
}

/* The weight `name` [shape], created on first use: norm scales around 1,
 * biases small, matrices ~ 1/sqrt(fan in). */
static const float *W(int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const float *W(int ndim, const int64_t *shape, const char *fmt, ...) {
  char name[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  for (int i = 0; i < nwt; i++)
    if (strcmp(wt[i].name, name) == 0)
      return wt[i].v;
  if (nwt == 1024)
    abort();
  wentry *e = &wt[nwt++];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->ndim = ndim;
  e->n = 1;
  for (int i = 0; i < ndim; i++)
    e->n *= (size_t)(e->shape[i] = shape[i]);
  e->v = malloc(e->n * sizeof *e->v);
  if (!e->v)
    abort();
  size_t len = strlen(name);
  int bias = len > 5 && strcmp(name + len - 5, ".bias") == 0;
  int norm = !bias && strstr(name, "norm") != NULL;
  double fan = (double)e->n / (double)shape[0];
  for (size_t i = 0; i < e->n; i++)
    e->v[i] = bias   ? 0.1f * frand()
              : norm ? 1 + 0.2f * frand()
                     : (float)(frand() * 1.5 / sqrt(fan));
  return e->v;
}

/* ---- reference ops (double) ---------------------------------------------- */

static double *dnew(size_t n) {
  double *p = calloc(n ? n : 1, sizeof *p);
  if (!p)
    abort();
  return p;
}

static double act(double v) { return v / (1 + exp(-v)); } /* silu */

/* y [N, Co, OH, OW] = conv(x [N, Ci, H, W]) with padding pt/pl (zero beyond) */
static void ref_conv(double *y, const double *x, const float *w, const float *b,
                     int N, int Ci, int H, int Wd, int Co, int K, int stride,
                     int pt, int pl, int OH, int OW) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < Co; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double s = b[o];
          for (int c = 0; c < Ci; c++)
            for (int kh = 0; kh < K; kh++)
              for (int kw = 0; kw < K; kw++) {
                int ih = oh * stride - pt + kh, iw = ow * stride - pl + kw;
                if (ih < 0 || iw < 0 || ih >= H || iw >= Wd)
                  continue;
                s += x[(((size_t)n * Ci + c) * H + ih) * Wd + iw] *
                     w[(((size_t)o * Ci + c) * K + kh) * K + kw];
              }
          y[(((size_t)n * Co + o) * OH + oh) * OW + ow] = s;
        }
}

static void ref_gn(double *y, const double *x, const float *g, const float *b,
                   int N, int C, int S, int G, double eps, int silu) {
  int cg = C / G;
  for (int n = 0; n < N; n++)
    for (int gi = 0; gi < G; gi++) {
      const double *p = x + ((size_t)n * C + (size_t)gi * cg) * S;
      double mu = 0, var = 0;
      for (size_t i = 0; i < (size_t)cg * S; i++)
        mu += p[i];
      mu /= (double)cg * S;
      for (size_t i = 0; i < (size_t)cg * S; i++)
        var += (p[i] - mu) * (p[i] - mu);
      var /= (double)cg * S;
      for (int c = 0; c < cg; c++)
        for (int s = 0; s < S; s++) {
          int ch = gi * cg + c;
          double v =
              (p[(size_t)c * S + s] - mu) / sqrt(var + eps) * g[ch] + b[ch];
          y[((size_t)n * C + ch) * S + s] = silu ? act(v) : v;
        }
    }
}

static void ref_ln(double *y, const double *x, const float *g, const float *b,
                   int R, int E, double eps) {
  for (int r = 0; r < R; r++) {
    const double *xr = x + (size_t)r * E;
    double mu = 0, var = 0;
    for (int e = 0; e < E; e++)
      mu += xr[e];
    mu /= E;
    for (int e = 0; e < E; e++)
      var += (xr[e] - mu) * (xr[e] - mu);
    var /= E;
    for (int e = 0; e < E; e++)
      y[(size_t)r * E + e] = (xr[e] - mu) / sqrt(var + eps) * g[e] + b[e];
  }
}

/* y [R, O] = x [R, I] w^T (+ b) */
static void ref_linear(double *y, const double *x, const float *w,
                       const float *b, int R, int I, int O) {
  for (int r = 0; r < R; r++)
    for (int o = 0; o < O; o++) {
      double s = b ? b[o] : 0;
      for (int i = 0; i < I; i++)
        s += x[(size_t)r * I + i] * w[(size_t)o * I + i];
      y[(size_t)r * O + o] = s;
    }
}

/* o [B, Tq, C] = multi-head softmax attention, q [B, Tq, C], k v [B, Tk, C] */
static void ref_attn(double *o, const double *q, const double *k,
                     const double *v, int B, int Tq, int Tk, int C, int H) {
  int D = C / H;
  double *s = dnew((size_t)Tk);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < Tk; j++) {
          double d = 0;
          for (int c = 0; c < D; c++)
            d += q[((size_t)b * Tq + i) * C + h * D + c] *
                 k[((size_t)b * Tk + j) * C + h * D + c];
          s[j] = d / sqrt((double)D);
          if (s[j] > mx)
            mx = s[j];
        }
        for (int j = 0; j < Tk; j++)
          sum += s[j] = exp(s[j] - mx);
        for (int c = 0; c < D; c++) {
          double a = 0;
          for (int j = 0; j < Tk; j++)
            a += s[j] / sum * v[((size_t)b * Tk + j) * C + h * D + c];
          o[((size_t)b * Tq + i) * C + h * D + c] = a;
        }
      }
  free(s);
}

/* ---- reference modules (diffusers 0.27) ---------------------------------- */

typedef struct {
  const ucfg *c;
  int B, Te;
  const double *temb; /* [B, Tt] after the activation */
  const double *ctx;  /* [B, Te, Dc] */
} rctx;

/* ResnetBlock2D: returns a new [B, Co, H, W]. */
static double *ref_resnet(const rctx *r, const double *x, int Ci, int Co, int H,
                          int Wd, double scale, const char *pre) {
  const ucfg *c = r->c;
  int B = r->B, S = H * Wd, Tt = c->ted;
  double *a = dnew((size_t)B * Ci * S), *h = dnew((size_t)B * Co * S),
         *tp = dnew((size_t)B * Co), *y = dnew((size_t)B * Co * S);
  ref_gn(a, x, W(1, VTL_DIMS(Ci), "%snorm1.weight", pre),
         W(1, VTL_DIMS(Ci), "%snorm1.bias", pre), B, Ci, S, c->groups, c->eps,
         1);
  ref_conv(h, a, W(4, VTL_DIMS(Co, Ci, 3, 3), "%sconv1.weight", pre),
           W(1, VTL_DIMS(Co), "%sconv1.bias", pre), B, Ci, H, Wd, Co, 3, 1, 1,
           1, H, Wd);
  ref_linear(tp, r->temb, W(2, VTL_DIMS(Co, Tt), "%stime_emb_proj.weight", pre),
             W(1, VTL_DIMS(Co), "%stime_emb_proj.bias", pre), B, Tt, Co);
  for (int n = 0; n < B; n++)
    for (int o = 0; o < Co; o++)
      for (int s = 0; s < S; s++)
        h[((size_t)n * Co + o) * S + s] += tp[n * Co + o];
  double *a2 = dnew((size_t)B * Co * S);
  ref_gn(a2, h, W(1, VTL_DIMS(Co), "%snorm2.weight", pre),
         W(1, VTL_DIMS(Co), "%snorm2.bias", pre), B, Co, S, c->groups, c->eps,
         1);
  ref_conv(y, a2, W(4, VTL_DIMS(Co, Co, 3, 3), "%sconv2.weight", pre),
           W(1, VTL_DIMS(Co), "%sconv2.bias", pre), B, Co, H, Wd, Co, 3, 1, 1,
           1, H, Wd);
  if (Ci != Co) {
    ref_conv(h, x, W(4, VTL_DIMS(Co, Ci, 1, 1), "%sconv_shortcut.weight", pre),
             W(1, VTL_DIMS(Co), "%sconv_shortcut.bias", pre), B, Ci, H, Wd, Co,
             1, 1, 0, 0, H, Wd);
    for (size_t i = 0; i < (size_t)B * Co * S; i++)
      y[i] = (h[i] + y[i]) / scale;
  } else {
    for (size_t i = 0; i < (size_t)B * Co * S; i++)
      y[i] = (x[i] + y[i]) / scale;
  }
  free(a), free(h), free(tp), free(a2);
  return y;
}

/* Transformer2DModel in place on x [B, C, H, W]. */
static void ref_xformer(const rctx *r, double *x, int C, int H, int Wd,
                        int heads, int layers, const char *pre) {
  const ucfg *c = r->c;
  int B = r->B, S = H * Wd, Te = r->Te, Dc = c->dc, R = B * S;
  double *n = dnew((size_t)R * C), *t = dnew((size_t)R * C),
         *u = dnew((size_t)R * C);
  ref_gn(n, x, W(1, VTL_DIMS(C), "%snorm.weight", pre),
         W(1, VTL_DIMS(C), "%snorm.bias", pre), B, C, S, c->groups, 1e-6, 0);
  const float *pin_w =
      c->linear ? W(2, VTL_DIMS(C, C), "%sproj_in.weight", pre)
                : W(4, VTL_DIMS(C, C, 1, 1), "%sproj_in.weight", pre);
  const float *pin_b = W(1, VTL_DIMS(C), "%sproj_in.bias", pre);
  if (c->linear) { /* permute, then Linear */
    for (int b = 0; b < B; b++)
      for (int ch = 0; ch < C; ch++)
        for (int s = 0; s < S; s++)
          u[((size_t)b * S + s) * C + ch] = n[((size_t)b * C + ch) * S + s];
    ref_linear(t, u, pin_w, pin_b, R, C, C);
  } else { /* 1x1 conv, then permute */
    ref_conv(u, n, pin_w, pin_b, B, C, H, Wd, C, 1, 1, 0, 0, H, Wd);
    for (int b = 0; b < B; b++)
      for (int ch = 0; ch < C; ch++)
        for (int s = 0; s < S; s++)
          t[((size_t)b * S + s) * C + ch] = u[((size_t)b * C + ch) * S + s];
  }
  double *h = dnew((size_t)R * C), *q = dnew((size_t)R * C),
         *k = dnew((size_t)R * C), *v = dnew((size_t)R * C),
         *a = dnew((size_t)R * C), *kc = dnew((size_t)B * Te * C),
         *vc = dnew((size_t)B * Te * C), *f = dnew((size_t)R * 8 * C),
         *g = dnew((size_t)R * 4 * C);
  for (int l = 0; l < layers; l++) {
    char p[200];
    snprintf(p, sizeof p, "%stransformer_blocks.%d.", pre, l);
    ref_ln(h, t, W(1, VTL_DIMS(C), "%snorm1.weight", p),
           W(1, VTL_DIMS(C), "%snorm1.bias", p), R, C, 1e-5);
    ref_linear(q, h, W(2, VTL_DIMS(C, C), "%sattn1.to_q.weight", p), NULL, R, C,
               C);
    ref_linear(k, h, W(2, VTL_DIMS(C, C), "%sattn1.to_k.weight", p), NULL, R, C,
               C);
    ref_linear(v, h, W(2, VTL_DIMS(C, C), "%sattn1.to_v.weight", p), NULL, R, C,
               C);
    ref_attn(a, q, k, v, B, S, S, C, heads);
    ref_linear(q, a, W(2, VTL_DIMS(C, C), "%sattn1.to_out.0.weight", p),
               W(1, VTL_DIMS(C), "%sattn1.to_out.0.bias", p), R, C, C);
    for (size_t i = 0; i < (size_t)R * C; i++)
      t[i] += q[i];
    ref_ln(h, t, W(1, VTL_DIMS(C), "%snorm2.weight", p),
           W(1, VTL_DIMS(C), "%snorm2.bias", p), R, C, 1e-5);
    ref_linear(q, h, W(2, VTL_DIMS(C, C), "%sattn2.to_q.weight", p), NULL, R, C,
               C);
    ref_linear(kc, r->ctx, W(2, VTL_DIMS(C, Dc), "%sattn2.to_k.weight", p),
               NULL, B * Te, Dc, C);
    ref_linear(vc, r->ctx, W(2, VTL_DIMS(C, Dc), "%sattn2.to_v.weight", p),
               NULL, B * Te, Dc, C);
    ref_attn(a, q, kc, vc, B, S, Te, C, heads);
    ref_linear(q, a, W(2, VTL_DIMS(C, C), "%sattn2.to_out.0.weight", p),
               W(1, VTL_DIMS(C), "%sattn2.to_out.0.bias", p), R, C, C);
    for (size_t i = 0; i < (size_t)R * C; i++)
      t[i] += q[i];
    ref_ln(h, t, W(1, VTL_DIMS(C), "%snorm3.weight", p),
           W(1, VTL_DIMS(C), "%snorm3.bias", p), R, C, 1e-5);
    ref_linear(f, h, W(2, VTL_DIMS(8 * C, C), "%sff.net.0.proj.weight", p),
               W(1, VTL_DIMS(8 * C), "%sff.net.0.proj.bias", p), R, C, 8 * C);
    for (int i = 0; i < R; i++)
      for (int j = 0; j < 4 * C; j++) {
        double gate = f[(size_t)i * 8 * C + 4 * C + j];
        g[(size_t)i * 4 * C + j] =
            f[(size_t)i * 8 * C + j] * 0.5 * gate * (1 + erf(gate / sqrt(2.0)));
      }
    ref_linear(q, g, W(2, VTL_DIMS(C, 4 * C), "%sff.net.2.weight", p),
               W(1, VTL_DIMS(C), "%sff.net.2.bias", p), R, 4 * C, C);
    for (size_t i = 0; i < (size_t)R * C; i++)
      t[i] += q[i];
  }
  const float *po_w =
      c->linear ? W(2, VTL_DIMS(C, C), "%sproj_out.weight", pre)
                : W(4, VTL_DIMS(C, C, 1, 1), "%sproj_out.weight", pre);
  const float *po_b = W(1, VTL_DIMS(C), "%sproj_out.bias", pre);
  if (c->linear) { /* Linear, then permute back */
    ref_linear(u, t, po_w, po_b, R, C, C);
    for (int b = 0; b < B; b++)
      for (int ch = 0; ch < C; ch++)
        for (int s = 0; s < S; s++)
          x[((size_t)b * C + ch) * S + s] += u[((size_t)b * S + s) * C + ch];
  } else {
    for (int b = 0; b < B; b++)
      for (int ch = 0; ch < C; ch++)
        for (int s = 0; s < S; s++)
          n[((size_t)b * C + ch) * S + s] = t[((size_t)b * S + s) * C + ch];
    ref_conv(u, n, po_w, po_b, B, C, H, Wd, C, 1, 1, 0, 0, H, Wd);
    for (size_t i = 0; i < (size_t)R * C; i++)
      x[i] += u[i];
  }
  free(n), free(t), free(u), free(h), free(q), free(k), free(v), free(a);
  free(kc), free(vc), free(f), free(g);
}

typedef struct {
  double *t;
  int c, h, w;
} rskip;

/* UNet2DConditionModel.forward: out [B, cout, H, W]. */
static void ref_unet(const ucfg *c, const float *sample, int B, int H, int Wd,
                     const float *ts, int nts, const float *ctx, int Te,
                     const float *labels, double *out) {
  int C0 = c->ch[0], half = C0 / 2, N = c->N;
  double *tp = dnew((size_t)B * C0), *e1 = dnew((size_t)B * c->ted),
         *temb = dnew((size_t)B * c->ted);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < half; j++) {
      double fr = exp(-log(10000.0) * j / (half - c->shift));
      double arg = (double)ts[nts == 1 ? 0 : b] * fr;
      tp[b * C0 + (c->flip ? half + j : j)] = sin(arg);
      tp[b * C0 + (c->flip ? j : half + j)] = cos(arg);
    }
  ref_linear(
      e1, tp, W(2, VTL_DIMS(c->ted, C0), "time_embedding.linear_1.weight"),
      W(1, VTL_DIMS(c->ted), "time_embedding.linear_1.bias"), B, C0, c->ted);
  for (int i = 0; i < B * c->ted; i++)
    e1[i] = act(e1[i]);
  ref_linear(temb, e1,
             W(2, VTL_DIMS(c->ted, c->ted), "time_embedding.linear_2.weight"),
             W(1, VTL_DIMS(c->ted), "time_embedding.linear_2.bias"), B, c->ted,
             c->ted);
  if (c->proj) { /* + class_embedding(labels): TimestepEmbedding(P, Tt) */
    double *dl = dnew((size_t)B * c->proj), *ce = dnew((size_t)B * c->ted);
    for (int i = 0; i < B * c->proj; i++)
      dl[i] = labels[i];
    ref_linear(e1, dl,
               W(2, VTL_DIMS(c->ted, c->proj), "class_embedding.linear_1.weight"),
               W(1, VTL_DIMS(c->ted), "class_embedding.linear_1.bias"), B,
               c->proj, c->ted);
    for (int i = 0; i < B * c->ted; i++)
      e1[i] = act(e1[i]);
    ref_linear(ce, e1,
               W(2, VTL_DIMS(c->ted, c->ted), "class_embedding.linear_2.weight"),
               W(1, VTL_DIMS(c->ted), "class_embedding.linear_2.bias"), B,
               c->ted, c->ted);
    for (int i = 0; i < B * c->ted; i++)
      temb[i] += ce[i];
    free(dl), free(ce);
  }
  for (int i = 0; i < B * c->ted; i++)
    temb[i] = act(temb[i]);
  double *dctx = dnew((size_t)B * Te * c->dc);
  for (size_t i = 0; i < (size_t)B * Te * c->dc; i++)
    dctx[i] = ctx[i];
  rctx r = {c, B, Te, temb, dctx};

  double *x = dnew((size_t)B * c->cin * H * Wd);
  for (size_t i = 0; i < (size_t)B * c->cin * H * Wd; i++)
    x[i] = sample[i];
  double *h = dnew((size_t)B * C0 * H * Wd);
  int pk = (c->kin - 1) / 2;
  ref_conv(h, x, W(4, VTL_DIMS(C0, c->cin, c->kin, c->kin), "conv_in.weight"),
           W(1, VTL_DIMS(C0), "conv_in.bias"), B, c->cin, H, Wd, C0, c->kin, 1,
           pk, pk, H, Wd);
  free(x);
  rskip st[64];
  int ns = 0, ch = C0;
  st[ns++] = (rskip){h, C0, H, Wd};
  char pre[128];
  for (int i = 0; i < N; i++) {
    int co = c->ch[i];
    for (int j = 0; j < c->lpb; j++) {
      snprintf(pre, sizeof pre, "down_blocks.%d.resnets.%d.", i, j);
      h = ref_resnet(&r, h, ch, co, H, Wd, 1.0, pre);
      ch = co;
      if (c->down_attn[i]) {
        snprintf(pre, sizeof pre, "down_blocks.%d.attentions.%d.", i, j);
        ref_xformer(&r, h, co, H, Wd, c->heads[i], c->tl[i], pre);
      }
      st[ns++] = (rskip){h, co, H, Wd};
    }
    if (i < N - 1) {
      int p = c->dpad;
      int OH = p ? (H + 2 * p - 3) / 2 + 1 : (H - 2) / 2 + 1;
      int OW = p ? (Wd + 2 * p - 3) / 2 + 1 : (Wd - 2) / 2 + 1;
      double *d = dnew((size_t)B * co * OH * OW);
      ref_conv(d, h,
               W(4, VTL_DIMS(co, co, 3, 3),
                 "down_blocks.%d.downsamplers.0.conv.weight", i),
               W(1, VTL_DIMS(co), "down_blocks.%d.downsamplers.0.conv.bias", i),
               B, co, H, Wd, co, 3, 2, p, p, OH, OW);
      h = d;
      H = OH;
      Wd = OW;
      st[ns++] = (rskip){h, co, H, Wd};
    }
  }
  /* mid */
  int top = c->ch[N - 1];
  double *m0 =
      ref_resnet(&r, h, top, top, H, Wd, c->mid_scale, "mid_block.resnets.0.");
  ref_xformer(&r, m0, top, H, Wd, c->heads[N - 1], c->tl[N - 1],
              "mid_block.attentions.0.");
  h = ref_resnet(&r, m0, top, top, H, Wd, c->mid_scale, "mid_block.resnets.1.");
  free(m0);
  ch = top;
  for (int i = 0; i < N; i++) {
    int co = c->ch[N - 1 - i], ui = N - 1 - i;
    for (int j = 0; j < c->lpb + 1; j++) {
      rskip s = st[--ns];
      if (s.h != H || s.w != Wd)
        abort();
      double *cat = dnew((size_t)B * (ch + s.c) * H * Wd);
      size_t S = (size_t)H * Wd;
      for (int b = 0; b < B; b++) {
        memcpy(cat + (size_t)b * (ch + s.c) * S, h + (size_t)b * ch * S,
               ch * S * sizeof *cat);
        memcpy(cat + ((size_t)b * (ch + s.c) + ch) * S,
               s.t + (size_t)b * s.c * S, s.c * S * sizeof *cat);
      }
      free(h);
      free(s.t);
      snprintf(pre, sizeof pre, "up_blocks.%d.resnets.%d.", i, j);
      h = ref_resnet(&r, cat, ch + s.c, co, H, Wd, 1.0, pre);
      free(cat);
      ch = co;
      if (c->up_attn[i]) {
        snprintf(pre, sizeof pre, "up_blocks.%d.attentions.%d.", i, j);
        ref_xformer(&r, h, co, H, Wd, c->heads[ui], c->tl[ui], pre);
      }
    }
    if (i < N - 1) { /* nearest, to the next skip's size (torch: float scale) */
      int OH = st[ns - 1].h, OW = st[ns - 1].w;
      float sh = (float)H / (float)OH, sw = (float)Wd / (float)OW;
      double *u = dnew((size_t)B * co * OH * OW);
      for (int bc = 0; bc < B * co; bc++)
        for (int y = 0; y < OH; y++)
          for (int xx = 0; xx < OW; xx++) {
            int sy = (int)floorf((float)y * sh),
                sx = (int)floorf((float)xx * sw);
            if (sy > H - 1)
              sy = H - 1;
            if (sx > Wd - 1)
              sx = Wd - 1;
            u[((size_t)bc * OH + y) * OW + xx] =
                h[((size_t)bc * H + sy) * Wd + sx];
          }
      free(h);
      H = OH;
      Wd = OW;
      h = dnew((size_t)B * co * H * Wd);
      ref_conv(h, u,
               W(4, VTL_DIMS(co, co, 3, 3),
                 "up_blocks.%d.upsamplers.0.conv.weight", i),
               W(1, VTL_DIMS(co), "up_blocks.%d.upsamplers.0.conv.bias", i), B,
               co, H, Wd, co, 3, 1, 1, 1, H, Wd);
      free(u);
    }
  }
  if (ns != 0)
    abort();
  double *n = dnew((size_t)B * C0 * H * Wd);
  ref_gn(n, h, W(1, VTL_DIMS(C0), "conv_norm_out.weight"),
         W(1, VTL_DIMS(C0), "conv_norm_out.bias"), B, C0, H * Wd, c->groups,
         c->eps, 1);
  int po = (c->kout - 1) / 2;
  ref_conv(out, n,
           W(4, VTL_DIMS(c->cout, C0, c->kout, c->kout), "conv_out.weight"),
           W(1, VTL_DIMS(c->cout), "conv_out.bias"), B, C0, H, Wd, c->cout,
           c->kout, 1, po, po, H, Wd);
  free(n), free(h), free(tp), free(e1), free(temb), free(dctx);
}

/* ---- writing the model --------------------------------------------------- */

static char scratch[256];

static void scratch_dir(void) {
  snprintf(scratch, sizeof scratch, "/tmp/vtl_test_unet_%ld", (long)getpid());
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", scratch, scratch);
  if (system(cmd) != 0)
    abort();
}

static void scratch_remove(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  if (system(cmd) != 0)
    abort();
}

static json_t *int_list(const int *v, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, json_integer(v[i]));
  return a;
}

/* Writes <scratch>/unet/{config.json, diffusion_pytorch_model.safetensors}
 * from wt[]: skip (a key left out), extra (a key added), bad (a key whose
 * shape is written transposed); cfg_patch (a key set to a string in the
 * config) when not NULL. */
static const char *model_write(const ucfg *c, const char *skip, int extra,
                               const char *bad, const char *patch_key,
                               const char *patch_val) {
  static char dir[300];
  snprintf(dir, sizeof dir, "%s/unet", scratch);
  char cmd[1200], path[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(cmd) != 0)
    abort();
  json_t *down = json_array(), *up = json_array();
  for (int i = 0; i < c->N; i++) {
    json_array_append_new(
        down,
        json_string(c->down_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D"));
    json_array_append_new(
        up, json_string(c->up_attn[i] ? "CrossAttnUpBlock2D" : "UpBlock2D"));
  }
  json_t *j = json_object();
  json_object_set_new(j, "_class_name", json_string("UNet2DConditionModel"));
  json_object_set_new(j, "_diffusers_version", json_string("0.27.2"));
  json_object_set_new(j, "act_fn", json_string("silu"));
  json_object_set_new(j, "attention_head_dim", int_list(c->heads, c->N));
  json_object_set_new(j, "block_out_channels", int_list(c->ch, c->N));
  json_object_set_new(j, "cross_attention_dim", json_integer(c->dc));
  json_object_set_new(j, "down_block_types", down);
  json_object_set_new(j, "up_block_types", up);
  json_object_set_new(j, "downsample_padding", json_integer(c->dpad));
  json_object_set_new(j, "flip_sin_to_cos", json_boolean(c->flip));
  json_object_set_new(j, "freq_shift", json_real(c->shift));
  json_object_set_new(j, "in_channels", json_integer(c->cin));
  json_object_set_new(j, "out_channels", json_integer(c->cout));
  json_object_set_new(j, "layers_per_block", json_integer(c->lpb));
  json_object_set_new(j, "mid_block_scale_factor", json_real(c->mid_scale));
  json_object_set_new(j, "norm_eps", json_real(c->eps));
  json_object_set_new(j, "norm_num_groups", json_integer(c->groups));
  json_object_set_new(j, "sample_size", json_integer(8));
  json_object_set_new(j, "time_embedding_dim", json_integer(c->ted));
  json_object_set_new(j, "conv_in_kernel", json_integer(c->kin));
  json_object_set_new(j, "conv_out_kernel", json_integer(c->kout));
  json_object_set_new(j, "transformer_layers_per_block", int_list(c->tl, c->N));
  json_object_set_new(j, "use_linear_projection", json_boolean(c->linear));
  if (c->proj) {
    json_object_set_new(j, "class_embed_type", json_string("projection"));
    json_object_set_new(j, "projection_class_embeddings_input_dim",
                        json_integer(c->proj));
  }
  if (patch_key)
    json_object_set_new(j, patch_key, json_string(patch_val));
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (json_dump_file(j, path, JSON_INDENT(1)))
    abort();
  json_decref(j);

  json_t *hdr = json_object();
  size_t off = 0;
  for (int i = 0; i < nwt + (extra ? 1 : 0); i++) {
    const wentry *e = &wt[i < nwt ? i : 0];
    const char *name = i < nwt ? e->name : "down_blocks.0.extra.bias";
    if (skip && strcmp(skip, name) == 0)
      continue;
    json_t *sh = json_array();
    int tr = bad && strcmp(bad, name) == 0;
    for (int d = 0; d < e->ndim; d++)
      json_array_append_new(sh,
                            json_integer(e->shape[tr ? e->ndim - 1 - d : d]));
    json_object_set_new(hdr, name,
                        json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32",
                                  "shape", sh, "data_offsets", (json_int_t)off,
                                  (json_int_t)(off + e->n * 4)));
    off += e->n * 4;
  }
  char *h = json_dumps(hdr, JSON_COMPACT);
  json_decref(hdr);
  size_t hl = strlen(h), pad = (8 - hl % 8) % 8;
  uint64_t len = hl + pad;
  snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
  FILE *fp = fopen(path, "wb");
  if (!fp)
    abort();
  fwrite(&len, 8, 1, fp);
  fwrite(h, 1, hl, fp);
  for (size_t i = 0; i < pad; i++)
    fputc(' ', fp);
  /* same order as the header was built */
  for (int i = 0; i < nwt + (extra ? 1 : 0); i++) {
    const wentry *e = &wt[i < nwt ? i : 0];
    const char *name = i < nwt ? e->name : "down_blocks.0.extra.bias";
    if (skip && strcmp(skip, name) == 0)
      continue;
    fwrite(e->v, 4, e->n, fp);
  }
  fclose(fp);
  free(h);
  return dir;
}

/* ---- the checks ---------------------------------------------------------- */

static vtl_unet *load(const char *dir, char *msg, size_t msglen, int *rc) {
  vtl_model_files *mf = NULL;
  vtl_unet *u = NULL;
  *rc = vtl_model_files_open(&mf, dir, NULL, msg, msglen);
  if (*rc)
    return NULL;
  *rc = vtl_unet_load(rt(), mf, &u, msg, msglen);
  vtl_model_files_close(mf);
  return u;
}

static int check_random(const ucfg *c, int B, int H, int Wd, int Te,
                        const float *ts, int nts) {
  vtl_cl *cl = rt();
  weights_reset();
  size_t ns = (size_t)B * c->cin * H * Wd, nc = (size_t)B * Te * c->dc,
         no = (size_t)B * c->cout * H * Wd, nl = (size_t)B * c->proj;
  float *sample = malloc(ns * 4), *ctx = malloc(nc * 4), *got = malloc(no * 4),
        *labels = malloc(nl * 4 + 4);
  double *want = dnew(no);
  if (!sample || !ctx || !got || !labels)
    abort();
  for (size_t i = 0; i < ns; i++)
    sample[i] = frand();
  for (size_t i = 0; i < nc; i++)
    ctx[i] = frand();
  for (size_t i = 0; i < nl; i++)
    labels[i] = 2 * frand();
  ref_unet(c, sample, B, H, Wd, ts, nts, ctx, Te, labels, want);

  scratch_dir();
  const char *dir = model_write(c, NULL, 0, NULL, NULL, NULL);
  char msg[512];
  int rc;
  vtl_unet *u = load(dir, msg, sizeof msg, &rc);
  scratch_remove();
  if (!u)
    TEST_FAIL_("load: %s: %s", vtl_err_name(rc), msg);
  size_t before = vtl_cl_bytes_in_use(cl);
  vtl_tensor ts_in, tc_in, out, lb = {0};
  vtl_unet_extra ex = {.class_labels = c->proj ? &lb : NULL};
  if (c->proj) {
    ASSERT_OP(cl, vtl_tensor_alloc(cl, &lb, 2, VTL_SHAPE(B, c->proj)));
    ASSERT_OP(cl, vtl_tensor_write(cl, &lb, labels));
  }
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &ts_in, 4, VTL_SHAPE(B, c->cin, H, Wd)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &tc_in, 3, VTL_SHAPE(B, Te, c->dc)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &out, 4, VTL_SHAPE(B, c->cout, H, Wd)));
  ASSERT_OP(cl, vtl_tensor_write(cl, &ts_in, sample));
  ASSERT_OP(cl, vtl_tensor_write(cl, &tc_in, ctx));
  ASSERT_OP(cl, vtl_unet_forward(u, &ts_in, ts, nts, &tc_in, &ex, &out));
  ASSERT_OP(cl, vtl_tensor_read(cl, &out, got));
  double err = 0, peak = 0;
  for (size_t i = 0; i < no; i++) {
    double d = fabs(got[i] - want[i]);
    if (d > err || isnan(d))
      err = d;
    if (fabs(want[i]) > peak)
      peak = fabs(want[i]);
  }
  vtl_tensor_release(cl, &ts_in);
  vtl_tensor_release(cl, &tc_in);
  vtl_tensor_release(cl, &out);
  vtl_tensor_release(cl, &lb);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  vtl_unet_free(u);
  free(sample), free(ctx), free(got), free(want), free(labels);
  weights_reset();
  if (!(err <= 5e-5 + 5e-5 * peak))
    TEST_FAIL_("max abs error %.3g (peak %.3g)", err, peak);
  if (!(peak > 1e-3))
    TEST_FAIL_("degenerate output (peak %.3g)", peak);
  return 0;
}

TEST_IMPL(random_linear) {
  ucfg c = {.N = 3,
            .ch = {16, 24, 32},
            .down_attn = {1, 0, 1},
            .up_attn = {1, 0, 1},
            .heads = {2, 3, 4},
            .tl = {1, 1, 2},
            .lpb = 1,
            .linear = 1,
            .groups = 8,
            .flip = 0,
            .ted = 20,
            .cin = 3,
            .cout = 5,
            .kin = 5,
            .kout = 1,
            .dpad = 1,
            .dc = 12,
            .eps = 1e-5,
            .shift = 1,
            .mid_scale = 1};
  const float ts[2] = {333.5f, 17.0f};
  return check_random(&c, 2, 8, 4, 5, ts, 2);
}

TEST_IMPL(random_conv) {
  ucfg c = {.N = 2,
            .ch = {8, 16},
            .down_attn = {1, 1},
            .up_attn = {1, 1},
            .heads = {2, 4},
            .tl = {2, 1},
            .lpb = 2,
            .linear = 0,
            .groups = 4,
            .flip = 1,
            .ted = 24,
            .cin = 4,
            .cout = 4,
            .kin = 3,
            .kout = 3,
            .dpad = 0,
            .dc = 6,
            .eps = 1e-6,
            .shift = 0,
            .mid_scale = 1.5};
  const float ts[1] = {999.0f};
  return check_random(&c, 2, 6, 4, 3, ts, 1);
}

static const ucfg small = {.N = 2,
                           .ch = {8, 16},
                           .down_attn = {1, 0},
                           .up_attn = {0, 1},
                           .heads = {2, 2},
                           .tl = {1, 1},
                           .lpb = 1,
                           .linear = 0,
                           .groups = 4,
                           .flip = 1,
                           .ted = 16,
                           .cin = 4,
                           .cout = 4,
                           .kin = 3,
                           .kout = 3,
                           .dpad = 1,
                           .dc = 6,
                           .eps = 1e-5,
                           .shift = 0,
                           .mid_scale = 1};

/* Builds the small model's weights (a reference run on a 4x4 sample). */
static void small_weights(void) {
  weights_reset();
  float s[2 * 4 * 4 * 4] = {0}, ctx[2 * 3 * 6] = {0}, t = 1;
  double *o = dnew(2 * 4 * 4 * 4);
  ref_unet(&small, s, 2, 4, 4, &t, 1, ctx, 3, NULL, o);
  free(o);
}

TEST_IMPL(forward_errors) {
  vtl_cl *cl = rt();
  small_weights();
  scratch_dir();
  char msg[512];
  int rc;
  vtl_unet *u = load(model_write(&small, NULL, 0, NULL, NULL, NULL), msg,
                     sizeof msg, &rc);
  scratch_remove();
  weights_reset();
  if (!u)
    TEST_FAIL_("load: %s", msg);
  vtl_tensor s, odd, ctx, bad_ctx, out, bad_out;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &s, 4, VTL_SHAPE(2, 4, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &odd, 4, VTL_SHAPE(2, 4, 5, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &ctx, 3, VTL_SHAPE(2, 3, 6)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &bad_ctx, 3, VTL_SHAPE(2, 3, 7)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &out, 4, VTL_SHAPE(2, 4, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &bad_out, 4, VTL_SHAPE(2, 3, 4, 4)));
  const float ts[3] = {1, 2, 3};
  size_t before = vtl_cl_bytes_in_use(cl);
  ASSERT_EQ(vtl_unet_forward(u, &s, ts, 3, &ctx, NULL, &out), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "timesteps"));
  ASSERT_EQ(vtl_unet_forward(u, &odd, ts, 1, &ctx, NULL, &out), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "output"));
  ASSERT_EQ(vtl_unet_forward(u, &s, ts, 2, &bad_ctx, NULL, &out), VTL_EINVAL);
  ASSERT_EQ(vtl_unet_forward(u, &s, ts, 2, &ctx, NULL, &bad_out), VTL_EINVAL);
  ASSERT_EQ(vtl_unet_forward(u, &ctx, ts, 2, &ctx, NULL, &out), VTL_EINVAL);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  ASSERT_OP(cl, vtl_unet_forward(u, &s, ts, 2, &ctx, NULL, &out));
  ASSERT_OP(cl, vtl_cl_finish(cl));
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  vtl_tensor *all[] = {&s, &odd, &ctx, &bad_ctx, &out, &bad_out};
  for (size_t i = 0; i < 6; i++)
    vtl_tensor_release(cl, all[i]);
  vtl_unet_free(u);
  return 0;
}

static int load_expect(const char *skip, int extra, const char *bad,
                       const char *pk, const char *pv, int want_open, int want,
                       const char *needle) {
  vtl_cl *cl = rt();
  const char *dir = model_write(&small, skip, extra, bad, pk, pv);
  char msg[512] = "";
  size_t before = vtl_cl_bytes_in_use(cl);
  vtl_model_files *mf = NULL;
  int rc = vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg);
  if (want_open) {
    ASSERT_EQ(rc, want_open);
  } else {
    if (rc)
      TEST_FAIL_("open: %s", msg);
    vtl_unet *u = (vtl_unet *)1;
    rc = vtl_unet_load(cl, mf, &u, msg, sizeof msg);
    vtl_model_files_close(mf);
    if (rc != want)
      TEST_FAIL_("load: %s, want %s (%s)", vtl_err_name(rc), vtl_err_name(want),
                 msg);
    ASSERT(u == NULL);
  }
  if (!strstr(msg, needle))
    TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, needle);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  return 0;
}

TEST_IMPL(load_errors) {
  small_weights();
  scratch_dir();
  int rc = load_expect(
      "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.bias", 0, NULL,
      NULL, NULL, 0, VTL_ENOENT,
      "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.bias");
  if (!rc)
    rc = load_expect("down_blocks.1.resnets.0.conv_shortcut.weight", 0, NULL,
                     NULL, NULL, 0, VTL_ENOENT, "conv_shortcut");
  if (!rc)
    rc = load_expect(NULL, 1, NULL, NULL, NULL, 0, VTL_EUNSUPPORTED, "extra");
  if (!rc)
    rc = load_expect(NULL, 0, "down_blocks.0.resnets.0.time_emb_proj.weight",
                     NULL, NULL, 0, VTL_ERANGE, "time_emb_proj");
  if (!rc)
    rc = load_expect(NULL, 0, NULL, "time_embedding_type", "fourier",
                     VTL_EUNSUPPORTED, 0, "ourier");
  if (!rc)
    rc = load_expect(NULL, 0, NULL, "mid_block_type", "UNetMidBlock2D",
                     VTL_EUNSUPPORTED, 0, "mid");
  if (!rc)
    rc = load_expect(NULL, 0, NULL, "class_embed_type", "timestep",
                     VTL_EUNSUPPORTED, 0, "\"projection\"");
  if (!rc)
    rc = load_expect(NULL, 0, NULL, "class_embed_type", "projection",
                     VTL_EINVAL, 0, "projection_class_embeddings_input_dim");
  scratch_remove();
  weights_reset();
  return rc;
}

TEST_IMPL(random_odd_size) {
  ucfg c = {.N = 3,
            .ch = {8, 8, 16},
            .down_attn = {0, 1, 1},
            .up_attn = {1, 1, 0},
            .heads = {1, 2, 2},
            .tl = {1, 1, 1},
            .lpb = 1,
            .linear = 1,
            .groups = 4,
            .flip = 1,
            .ted = 12,
            .cin = 4,
            .cout = 4,
            .kin = 3,
            .kout = 3,
            .dpad = 1,
            .dc = 6,
            .eps = 1e-5,
            .shift = 0,
            .mid_scale = 1};
  const float ts[3] = {0.0f, 500.0f, 1.25f};
  return check_random(&c, 3, 5, 7, 4, ts, 3); /* 5x7 -> 3x4 -> 2x2 */
}

/* class_embed_type "projection" (the default pixel model's shape family:
 * RGB in and out, the pooled text as class labels). */
static const ucfg proj = {.N = 2,
                          .ch = {8, 16},
                          .down_attn = {0, 1},
                          .up_attn = {1, 0},
                          .heads = {2, 4},
                          .tl = {1, 1},
                          .lpb = 1,
                          .linear = 1,
                          .groups = 4,
                          .flip = 1,
                          .ted = 20,
                          .cin = 3,
                          .cout = 3,
                          .kin = 3,
                          .kout = 3,
                          .dpad = 1,
                          .dc = 6,
                          .eps = 1e-5,
                          .shift = 0,
                          .mid_scale = 1,
                          .proj = 6};

TEST_IMPL(random_class_proj) {
  const float ts[2] = {750.0f, 3.5f};
  return check_random(&proj, 2, 8, 6, 4, ts, 2);
}

/* Class labels: required by a UNet with a class embedding, [B, P] only,
 * refused by one without; nothing left allocated. */
TEST_IMPL(class_labels_errors) {
  vtl_cl *cl = rt();
  weights_reset();
  float s0[2 * 3 * 4 * 4] = {0}, c0[2 * 3 * 6] = {0}, l0[2 * 6] = {0}, t = 1;
  double *o = dnew(2 * 3 * 4 * 4);
  ref_unet(&proj, s0, 2, 4, 4, &t, 1, c0, 3, l0, o);
  free(o);
  scratch_dir();
  char msg[512];
  int rc;
  vtl_unet *u = load(model_write(&proj, NULL, 0, NULL, NULL, NULL), msg,
                     sizeof msg, &rc);
  weights_reset();
  if (!u) {
    scratch_remove();
    TEST_FAIL_("load: %s", msg);
  }
  small_weights();
  vtl_unet *plain = load(model_write(&small, NULL, 0, NULL, NULL, NULL), msg,
                         sizeof msg, &rc);
  scratch_remove();
  weights_reset();
  if (!plain)
    TEST_FAIL_("load: %s", msg);
  vtl_tensor s, s4, ctx, out, out4, lb, bad_lb;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &s, 4, VTL_SHAPE(2, 3, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &s4, 4, VTL_SHAPE(2, 4, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &ctx, 3, VTL_SHAPE(2, 3, 6)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &out, 4, VTL_SHAPE(2, 3, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &out4, 4, VTL_SHAPE(2, 4, 4, 4)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &lb, 2, VTL_SHAPE(2, 6)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &bad_lb, 2, VTL_SHAPE(2, 5)));
  vtl_unet_extra none = {0}, ex = {.class_labels = &lb},
                 bad = {.class_labels = &bad_lb};
  size_t before = vtl_cl_bytes_in_use(cl);
  ASSERT_EQ(vtl_unet_forward(u, &s, &t, 1, &ctx, NULL, &out), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "class labels"));
  ASSERT_EQ(vtl_unet_forward(u, &s, &t, 1, &ctx, &none, &out), VTL_EINVAL);
  ASSERT_EQ(vtl_unet_forward(u, &s, &t, 1, &ctx, &bad, &out), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "[2, 6]"));
  ASSERT_EQ(vtl_unet_forward(plain, &s4, &t, 1, &ctx, &ex, &out4),
            VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "without a class embedding"));
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  ASSERT_OP(cl, vtl_unet_forward(u, &s, &t, 1, &ctx, &ex, &out));
  ASSERT_OP(cl, vtl_cl_finish(cl));
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  vtl_tensor *all[] = {&s, &s4, &ctx, &out, &out4, &lb, &bad_lb};
  for (size_t i = 0; i < 7; i++)
    vtl_tensor_release(cl, all[i]);
  vtl_unet_free(u);
  vtl_unet_free(plain);
  return 0;
}

TEST_LIST(TEST_ENTRY(random_linear) TEST_ENTRY(random_conv)
              TEST_ENTRY(random_odd_size) TEST_ENTRY(forward_errors)
                  TEST_ENTRY(load_errors) TEST_ENTRY(random_class_proj)
                      TEST_ENTRY(class_labels_errors))
