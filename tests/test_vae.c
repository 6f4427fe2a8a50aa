/* test_vae.c — the autoencoders (engine/vae.h, engine/taesd.h) on configs
 * other than the kit's (the kit's own cases run in vtl-refcheck, kinds
 * vae_encode / vae_decode / taesd_encode / taesd_decode):
 *
 *   vae_random           a random AutoencoderKL written to a scratch folder
 *                        (3 levels of 8/16/16 channels, 4 groups, 1 layer
 *                        per block, 3 latent channels, 2 image channels in,
 *                        3 out) decoded and encoded (odd, non-square image)
 *                        against a plain double-precision forward pass
 *                        written here from diffusers' modules
 *   vae_gelu_no_attn     2 levels of 6 channels, 3 groups, 2 layers per
 *                        block, act_fn gelu, mid_block_add_attention false
 *   taesd_random         a random AutoencoderTiny: 3 encoder stages of 8
 *                        channels with 1/0/2 blocks, 3 decoder stages with
 *                        0/2/1 blocks, 3 latent channels, gelu
 *   load_errors          a missing weight (VTL_ENOENT), an extra one
 *                        (VTL_EUNSUPPORTED), nothing leaked
 *   shape_errors         wrong output shapes: VTL_EINVAL
 *
 * The reference asks for each weight by its diffusers name; the first ask
 * creates it (random), so the file written afterwards holds exactly the
 * weights the reference used: a name the engine asks for that the reference
 * does not know fails the load, and so does one the engine never reads.
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
#include "taesd.h"
#include "engine_test.h"
#include "task.h"
#include "vae.h"
#include "vtl_error.h"

/* ---- weights: created on first ask -------------------------------------- */

typedef struct {
  char name[128];
  int ndim;
  int64_t shape[4];
  size_t n;
  float *v;
} weight;

static weight store[512];
static int nstore;

static void store_clear(void) {
  for (int i = 0; i < nstore; i++) free(store[i].v);
  nstore = 0;
}

/* The weight `name` of shape [a, b, c, d] (trailing 0s: fewer dims). kind:
 * 'g' norm gain (1 + noise), 'b' bias, 'w' matrix / kernel (1/sqrt(fan in)). */
static const float *W(const char *name, char kind, int64_t a, int64_t b,
                      int64_t c, int64_t d) {
  for (int i = 0; i < nstore; i++)
    if (strcmp(store[i].name, name) == 0) return store[i].v;
  if (nstore == (int)(sizeof store / sizeof store[0])) abort();
  weight *w = &store[nstore++];
  snprintf(w->name, sizeof w->name, "%s", name);
  int64_t s[4] = {a, b, c, d};
  w->ndim = 0;
  w->n = 1;
  for (int i = 0; i < 4 && s[i]; i++) {
    w->shape[w->ndim++] = s[i];
    w->n *= (size_t)s[i];
  }
  w->v = malloc(w->n * sizeof *w->v);
  if (!w->v) abort();
  double fan = w->ndim > 1 ? (double)(w->n / (size_t)s[0]) : 1;
  for (size_t i = 0; i < w->n; i++)
    w->v[i] = kind == 'g'   ? 1 + 0.2f * frand()
              : kind == 'b' ? 0.1f * frand()
                            : (float)(1.5 / sqrt(fan)) * frand();
  return w->v;
}

static const float *Wf(char kind, int64_t a, int64_t b, int64_t c, int64_t d,
                       const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static const float *Wf(char kind, int64_t a, int64_t b, int64_t c, int64_t d,
                       const char *fmt, ...) {
  char name[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return W(name, kind, a, b, c, d);
}

/* ---- scratch folder and safetensors ------------------------------------- */

static char scratch[256];

static void scratch_dir(void) {
  snprintf(scratch, sizeof scratch, "/tmp/vtl_test_vae_%ld", (long)getpid());
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", scratch, scratch);
  if (system(cmd) != 0) abort();
}

static void scratch_remove(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  if (system(cmd) != 0) abort();
}

/* Writes config (stolen) and the store, minus `skip`, plus an extra tensor
 * when extra, to <scratch>/m. */
static const char *model_write(json_t *config, const char *skip, int extra) {
  static char dir[300];
  char path[600];
  snprintf(dir, sizeof dir, "%s/m", scratch);
  snprintf(path, sizeof path, "mkdir -p '%s'", dir);
  if (system(path) != 0) abort();
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (json_dump_file(config, path, JSON_INDENT(1))) abort();
  json_decref(config);
  json_t *hdr = json_object();
  size_t off = 0;
  for (int i = 0; i < nstore + (extra ? 1 : 0); i++) {
    const weight *w = &store[i < nstore ? i : 0];
    const char *name = i < nstore ? w->name : "decoder.extra.bias";
    if (skip && strcmp(skip, name) == 0) continue;
    json_t *sh = json_array();
    for (int d = 0; d < w->ndim; d++)
      json_array_append_new(sh, json_integer(w->shape[d]));
    json_object_set_new(hdr, name,
                        json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32",
                                  "shape", sh, "data_offsets", (json_int_t)off,
                                  (json_int_t)(off + w->n * 4)));
    off += w->n * 4;
  }
  char *h = json_dumps(hdr, JSON_COMPACT);
  json_decref(hdr);
  size_t hl = strlen(h), pad = (8 - hl % 8) % 8;
  uint64_t len = hl + pad;
  snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  fwrite(&len, 8, 1, fp);
  fwrite(h, 1, hl, fp);
  for (size_t i = 0; i < pad; i++) fputc(' ', fp);
  for (int i = 0; i < nstore + (extra ? 1 : 0); i++) {
    const weight *w = &store[i < nstore ? i : 0];
    const char *name = i < nstore ? w->name : "decoder.extra.bias";
    if (skip && strcmp(skip, name) == 0) continue;
    fwrite(w->v, 4, w->n, fp);
  }
  fclose(fp);
  free(h);
  return dir;
}

/* ---- reference ops (double, NCHW) --------------------------------------- */

typedef struct {
  int N, C, H, W;
  double *v;
} t4;

static t4 t4_new(int N, int C, int H, int W) {
  t4 t = {N, C, H, W, calloc((size_t)N * C * H * W, sizeof(double))};
  if (!t.v) abort();
  return t;
}

static void t4_free(t4 *t) {
  free(t->v);
  t->v = NULL;
}

static double act(double x, int a) { /* 1 silu, 2 gelu, 4 relu */
  if (a == 1) return x / (1 + exp(-x));
  if (a == 2) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (a == 4) return x > 0 ? x : 0;
  return x;
}

/* conv k x k, stride s, padding pt/pl above/left; output OH x OW given. */
static t4 conv(const t4 *x, const float *w, const float *b, int Co, int k,
               int s, int pt, int pl, int OH, int OW, int a) {
  t4 y = t4_new(x->N, Co, OH, OW);
  for (int n = 0; n < x->N; n++)
    for (int o = 0; o < Co; o++)
      for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) {
          double acc = b ? b[o] : 0;
          for (int c = 0; c < x->C; c++)
            for (int u = 0; u < k; u++)
              for (int q = 0; q < k; q++) {
                int yy = i * s + u - pt, xx = j * s + q - pl;
                if (yy < 0 || yy >= x->H || xx < 0 || xx >= x->W) continue;
                acc += w[((size_t)(o * x->C + c) * k + u) * k + q] *
                       x->v[(((size_t)n * x->C + c) * x->H + yy) * x->W + xx];
              }
          y.v[(((size_t)n * Co + o) * OH + i) * OW + j] = act(acc, a);
        }
  return y;
}

static t4 conv3(const t4 *x, const float *w, const float *b, int Co, int a) {
  return conv(x, w, b, Co, 3, 1, 1, 1, x->H, x->W, a);
}

static t4 group_norm(const t4 *x, const float *g, const float *b, int G,
                     int a) {
  t4 y = t4_new(x->N, x->C, x->H, x->W);
  size_t S = (size_t)x->H * x->W, per = (size_t)(x->C / G) * S;
  for (int n = 0; n < x->N; n++)
    for (int gg = 0; gg < G; gg++) {
      const double *p = x->v + ((size_t)n * x->C + (size_t)gg * (x->C / G)) * S;
      double mu = 0, var = 0;
      for (size_t i = 0; i < per; i++) mu += p[i];
      mu /= (double)per;
      for (size_t i = 0; i < per; i++) var += (p[i] - mu) * (p[i] - mu);
      var /= (double)per;
      for (size_t i = 0; i < per; i++) {
        int c = gg * (x->C / G) + (int)(i / S);
        y.v[(p - x->v) + i] =
            act((p[i] - mu) / sqrt(var + 1e-6) * g[c] + b[c], a);
      }
    }
  return y;
}

static t4 upsample(const t4 *x) {
  t4 y = t4_new(x->N, x->C, 2 * x->H, 2 * x->W);
  for (size_t nc = 0; nc < (size_t)x->N * x->C; nc++)
    for (int i = 0; i < y.H; i++)
      for (int j = 0; j < y.W; j++)
        y.v[(nc * y.H + i) * y.W + j] =
            x->v[(nc * x->H + i / 2) * x->W + j / 2];
  return y;
}

static void add_into(t4 *y, const t4 *x) {
  for (size_t i = 0; i < (size_t)y->N * y->C * y->H * y->W; i++)
    y->v[i] += x->v[i];
}

static void replace(t4 *x, t4 y) {
  t4_free(x);
  *x = y;
}

/* ---- reference AutoencoderKL -------------------------------------------- */

typedef struct {
  int in, out, L, B, ch[4], R, G, act, attn;
} vae_cfg;

static void ref_resnet(t4 *x, int cout, const vae_cfg *c, const char *p) {
  int cin = x->C;
  t4 h = group_norm(x, Wf('g', cin, 0, 0, 0, "%s.norm1.weight", p),
                    Wf('b', cin, 0, 0, 0, "%s.norm1.bias", p), c->G, c->act);
  t4 h2 = conv3(&h, Wf('w', cout, cin, 3, 3, "%s.conv1.weight", p),
                Wf('b', cout, 0, 0, 0, "%s.conv1.bias", p), cout, 0);
  replace(&h,
          group_norm(&h2, Wf('g', cout, 0, 0, 0, "%s.norm2.weight", p),
                     Wf('b', cout, 0, 0, 0, "%s.norm2.bias", p), c->G, c->act));
  replace(&h2, conv3(&h, Wf('w', cout, cout, 3, 3, "%s.conv2.weight", p),
                     Wf('b', cout, 0, 0, 0, "%s.conv2.bias", p), cout, 0));
  if (cin != cout)
    replace(x, conv(x, Wf('w', cout, cin, 1, 1, "%s.conv_shortcut.weight", p),
                    Wf('b', cout, 0, 0, 0, "%s.conv_shortcut.bias", p), cout, 1,
                    1, 0, 0, x->H, x->W, 0));
  add_into(x, &h2);
  t4_free(&h);
  t4_free(&h2);
}

static void ref_attn(t4 *x, const vae_cfg *c, const char *p) {
  int C = x->C, S = x->H * x->W;
  t4 h = group_norm(x, Wf('g', C, 0, 0, 0, "%s.group_norm.weight", p),
                    Wf('b', C, 0, 0, 0, "%s.group_norm.bias", p), c->G, 0);
  static const char *const nm[4] = {"to_q", "to_k", "to_v", "to_out.0"};
  const float *w[4], *b[4];
  for (int i = 0; i < 4; i++) {
    w[i] = Wf('w', C, C, 0, 0, "%s.%s.weight", p, nm[i]);
    b[i] = Wf('b', C, 0, 0, 0, "%s.%s.bias", p, nm[i]);
  }
  double *qkv = malloc(3 * (size_t)S * C * sizeof *qkv),
         *o = malloc((size_t)S * C * 8), *s = malloc((size_t)S * 8);
  if (!qkv || !o || !s) abort();
  for (int n = 0; n < x->N; n++) {
    const double *hn = h.v + (size_t)n * C * S;
    for (int m = 0; m < 3; m++)
      for (int t = 0; t < S; t++)
        for (int e = 0; e < C; e++) {
          double acc = b[m][e];
          for (int k = 0; k < C; k++)
            acc += w[m][(size_t)e * C + k] * hn[(size_t)k * S + t];
          qkv[((size_t)m * S + t) * C + e] = acc;
        }
    const double *q = qkv, *k = qkv + (size_t)S * C,
                 *v = qkv + 2 * (size_t)S * C;
    for (int i = 0; i < S; i++) {
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < S; j++) {
        double d = 0;
        for (int e = 0; e < C; e++)
          d += q[(size_t)i * C + e] * k[(size_t)j * C + e];
        s[j] = d / sqrt((double)C);
        if (s[j] > mx) mx = s[j];
      }
      for (int j = 0; j < S; j++) sum += s[j] = exp(s[j] - mx);
      for (int e = 0; e < C; e++) {
        double acc = 0;
        for (int j = 0; j < S; j++) acc += s[j] / sum * v[(size_t)j * C + e];
        o[(size_t)i * C + e] = acc;
      }
    }
    for (int e = 0; e < C; e++)
      for (int t = 0; t < S; t++) {
        double acc = b[3][e];
        for (int k2 = 0; k2 < C; k2++)
          acc += w[3][(size_t)e * C + k2] * o[(size_t)t * C + k2];
        x->v[((size_t)n * C + e) * S + t] += acc;
      }
  }
  free(qkv), free(o), free(s);
  t4_free(&h);
}

static void ref_mid(t4 *x, const vae_cfg *c, const char *coder) {
  char p[128];
  snprintf(p, sizeof p, "%s.mid_block.resnets.0", coder);
  ref_resnet(x, x->C, c, p);
  if (c->attn) {
    snprintf(p, sizeof p, "%s.mid_block.attentions.0", coder);
    ref_attn(x, c, p);
  }
  snprintf(p, sizeof p, "%s.mid_block.resnets.1", coder);
  ref_resnet(x, x->C, c, p);
}

static t4 ref_vae_encode(const t4 *img, const vae_cfg *c, t4 *logvar) {
  int B = c->B, last = c->ch[B - 1];
  char p[128];
  t4 x = conv3(img, W("encoder.conv_in.weight", 'w', c->ch[0], c->in, 3, 3),
               W("encoder.conv_in.bias", 'b', c->ch[0], 0, 0, 0), c->ch[0], 0);
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < c->R; j++) {
      snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
      ref_resnet(&x, c->ch[i], c, p);
    }
    if (i < B - 1) /* pad (0, 1, 0, 1), stride 2 */
      replace(&x,
              conv(&x,
                   Wf('w', c->ch[i], c->ch[i], 3, 3,
                      "encoder.down_blocks.%d.downsamplers.0.conv.weight", i),
                   Wf('b', c->ch[i], 0, 0, 0,
                      "encoder.down_blocks.%d.downsamplers.0.conv.bias", i),
                   c->ch[i], 3, 2, 0, 0, (x.H + 1 - 3) / 2 + 1,
                   (x.W + 1 - 3) / 2 + 1, 0));
  }
  ref_mid(&x, c, "encoder");
  replace(
      &x,
      group_norm(&x, W("encoder.conv_norm_out.weight", 'g', last, 0, 0, 0),
                 W("encoder.conv_norm_out.bias", 'b', last, 0, 0, 0), c->G, 1));
  replace(&x, conv3(&x, W("encoder.conv_out.weight", 'w', 2 * c->L, last, 3, 3),
                    W("encoder.conv_out.bias", 'b', 2 * c->L, 0, 0, 0),
                    2 * c->L, 0));
  replace(&x, conv(&x, W("quant_conv.weight", 'w', 2 * c->L, 2 * c->L, 1, 1),
                   W("quant_conv.bias", 'b', 2 * c->L, 0, 0, 0), 2 * c->L, 1, 1,
                   0, 0, x.H, x.W, 0));
  t4 mean = t4_new(x.N, c->L, x.H, x.W);
  *logvar = t4_new(x.N, c->L, x.H, x.W);
  size_t hw = (size_t)x.H * x.W, half = (size_t)c->L * hw;
  for (int n = 0; n < x.N; n++)
    for (size_t i = 0; i < half; i++) {
      mean.v[n * half + i] = x.v[n * 2 * half + i];
      double lv = x.v[n * 2 * half + half + i];
      logvar->v[n * half + i] = lv < -30 ? -30 : lv > 20 ? 20 : lv;
    }
  t4_free(&x);
  return mean;
}

static t4 ref_vae_decode(const t4 *z, const vae_cfg *c) {
  int B = c->B, last = c->ch[B - 1], L = c->L;
  char p[128];
  t4 x = conv(z, W("post_quant_conv.weight", 'w', L, L, 1, 1),
              W("post_quant_conv.bias", 'b', L, 0, 0, 0), L, 1, 1, 0, 0, z->H,
              z->W, 0);
  replace(&x, conv3(&x, W("decoder.conv_in.weight", 'w', last, L, 3, 3),
                    W("decoder.conv_in.bias", 'b', last, 0, 0, 0), last, 0));
  ref_mid(&x, c, "decoder");
  for (int i = 0; i < B; i++) {
    int ci = c->ch[B - 1 - i];
    for (int j = 0; j <= c->R; j++) {
      snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
      ref_resnet(&x, ci, c, p);
    }
    if (i < B - 1) {
      replace(&x, upsample(&x));
      replace(&x, conv3(&x,
                        Wf('w', ci, ci, 3, 3,
                           "decoder.up_blocks.%d.upsamplers.0.conv.weight", i),
                        Wf('b', ci, 0, 0, 0,
                           "decoder.up_blocks.%d.upsamplers.0.conv.bias", i),
                        ci, 0));
    }
  }
  replace(&x, group_norm(
                  &x, W("decoder.conv_norm_out.weight", 'g', c->ch[0], 0, 0, 0),
                  W("decoder.conv_norm_out.bias", 'b', c->ch[0], 0, 0, 0), c->G,
                  1));
  replace(&x,
          conv3(&x, W("decoder.conv_out.weight", 'w', c->out, c->ch[0], 3, 3),
                W("decoder.conv_out.bias", 'b', c->out, 0, 0, 0), c->out, 0));
  return x;
}

static json_t *vae_config(const vae_cfg *c) {
  json_t *ch = json_array(), *down = json_array(), *up = json_array();
  for (int i = 0; i < c->B; i++) {
    json_array_append_new(ch, json_integer(c->ch[i]));
    json_array_append_new(down, json_string("DownEncoderBlock2D"));
    json_array_append_new(up, json_string("UpDecoderBlock2D"));
  }
  return json_pack(
      "{s:s, s:s, s:o, s:o, s:o, s:i, s:i, s:i, s:i, s:i, "
      "s:f, s:b}",
      "_class_name", "AutoencoderKL", "act_fn", c->act == 1 ? "silu" : "gelu",
      "block_out_channels", ch, "down_block_types", down, "up_block_types", up,
      "in_channels", c->in, "out_channels", c->out, "latent_channels", c->L,
      "layers_per_block", c->R, "norm_num_groups", c->G, "scaling_factor", 0.25,
      "mid_block_add_attention", c->attn);
}

/* ---- comparing ---------------------------------------------------------- */

static t4 random_t4(int N, int C, int H, int W, double scale) {
  t4 t = t4_new(N, C, H, W);
  for (size_t i = 0; i < (size_t)N * C * H * W; i++) t.v[i] = scale * frand();
  return t;
}

static int to_device(vtl_cl *cl, const t4 *x, vtl_tensor *t) {
  size_t n = (size_t)x->N * x->C * x->H * x->W;
  float *f = malloc(n * sizeof *f);
  if (!f) abort();
  for (size_t i = 0; i < n; i++) f[i] = (float)x->v[i];
  int rc = vtl_tensor_alloc(cl, t, 4, VTL_SHAPE(x->N, x->C, x->H, x->W));
  if (!rc) rc = vtl_tensor_write(cl, t, f);
  free(f);
  return rc;
}

/* max |t - want| relative to max(1, peak of want); -1 on a shape mismatch */
static double rel_err(vtl_cl *cl, const vtl_tensor *t, const t4 *want) {
  if (t->shape[0] != want->N || t->shape[1] != want->C ||
      t->shape[2] != want->H || t->shape[3] != want->W)
    return -1;
  size_t n = vtl_tensor_numel(t);
  float *f = malloc(n * sizeof *f);
  if (!f || vtl_tensor_read(cl, t, f)) abort();
  double e = 0, peak = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(f[i] - want->v[i]);
    if (!(d <= e)) e = d;
    if (fabs(want->v[i]) > peak) peak = fabs(want->v[i]);
  }
  free(f);
  return e / peak;
}

static int check_vae(const vae_cfg *c, int N, int H, int W, int h, int w) {
  vtl_cl *cl = rt();
  store_clear();
  scratch_dir();
  t4 img = random_t4(N, c->in, H, W, 1.0), z = random_t4(N, c->L, h, w, 2.0);
  t4 lv, mean = ref_vae_encode(&img, c, &lv), dec = ref_vae_decode(&z, c);
  const char *dir = model_write(vae_config(c), NULL, 0);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  vtl_vae *vae = NULL;
  int rc = vtl_vae_load(cl, mf, &vae, msg, sizeof msg);
  vtl_model_files_close(mf);
  if (rc) TEST_FAIL_("load: %s", msg);
  size_t before = vtl_cl_bytes_in_use(cl);
  int lh, lw;
  vtl_vae_latent_size(vae, H, W, &lh, &lw);
  ASSERT_EQ(lh, mean.H);
  ASSERT_EQ(lw, mean.W);
  vtl_tensor ti, tm, tl, tz, td;
  ASSERT_OP(cl, to_device(cl, &img, &ti));
  ASSERT_OP(cl, to_device(cl, &z, &tz));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &tm, 4, VTL_SHAPE(N, c->L, lh, lw)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &tl, 4, VTL_SHAPE(N, c->L, lh, lw)));
  ASSERT_OP(cl,
            vtl_tensor_alloc(cl, &td, 4, VTL_SHAPE(N, c->out, dec.H, dec.W)));
  ASSERT_OP(cl, vtl_vae_encode(vae, &ti, &tm, &tl));
  ASSERT_OP(cl, vtl_vae_decode(vae, &tz, &td));
  double e1 = rel_err(cl, &tm, &mean), e2 = rel_err(cl, &tl, &lv),
         e3 = rel_err(cl, &td, &dec);
  /* mean alone (logvar NULL) gives the same */
  ASSERT_OP(cl, vtl_vae_encode(vae, &ti, &tl, NULL));
  double e4 = rel_err(cl, &tl, &mean);
  ASSERT_OP(cl, vtl_cl_finish(cl));
  vtl_tensor_release(cl, &ti);
  vtl_tensor_release(cl, &tz);
  vtl_tensor_release(cl, &tm);
  vtl_tensor_release(cl, &tl);
  vtl_tensor_release(cl, &td);
  size_t after = vtl_cl_bytes_in_use(cl); /* no scratch left behind */
  vtl_vae_free(vae);
  t4_free(&img), t4_free(&z), t4_free(&mean), t4_free(&lv), t4_free(&dec);
  store_clear();
  scratch_remove();
  ASSERT_EQ(after, before);
  printf("  vae errors (relative): mean %.3g logvar %.3g image %.3g\n", e1, e2,
         e3);
  double tol = 5e-6;
  ASSERT(e1 >= 0 && e2 >= 0 && e3 >= 0 && e4 >= 0);
  ASSERT_NEAR(e1, 0, tol);
  ASSERT_NEAR(e2, 0, tol);
  ASSERT_NEAR(e3, 0, tol);
  ASSERT_NEAR(e4, 0, tol);
  return 0;
}

TEST_IMPL(vae_random) {
  vae_cfg c = {.in = 2,
               .out = 3,
               .L = 3,
               .B = 3,
               .ch = {8, 16, 16},
               .R = 1,
               .G = 4,
               .act = 1,
               .attn = 1};
  return check_vae(&c, 2, 11, 8, 3, 5); /* 11x8 -> 5x4 -> 2x2 */
}

TEST_IMPL(vae_gelu_no_attn) {
  vae_cfg c = {.in = 3,
               .out = 3,
               .L = 4,
               .B = 2,
               .ch = {6, 6},
               .R = 2,
               .G = 3,
               .act = 2,
               .attn = 0};
  return check_vae(&c, 1, 6, 10, 4, 3);
}

/* ---- reference AutoencoderTiny ------------------------------------------ */

typedef struct {
  int in, out, L, C, ne, eb[4], nd, db[4], act;
} tiny_cfg;

static void ref_block(t4 *x, const tiny_cfg *c, const char *coder, int layer) {
  int C = x->C;
  t4 a = conv3(
      x, Wf('w', C, C, 3, 3, "%s.layers.%d.conv.0.weight", coder, layer),
      Wf('b', C, 0, 0, 0, "%s.layers.%d.conv.0.bias", coder, layer), C, c->act);
  t4 b = conv3(
      &a, Wf('w', C, C, 3, 3, "%s.layers.%d.conv.2.weight", coder, layer),
      Wf('b', C, 0, 0, 0, "%s.layers.%d.conv.2.bias", coder, layer), C, c->act);
  replace(
      &a,
      conv3(&b, Wf('w', C, C, 3, 3, "%s.layers.%d.conv.4.weight", coder, layer),
            Wf('b', C, 0, 0, 0, "%s.layers.%d.conv.4.bias", coder, layer), C,
            0));
  for (size_t i = 0; i < (size_t)x->N * C * x->H * x->W; i++)
    x->v[i] = act(a.v[i] + x->v[i], 4);
  t4_free(&a);
  t4_free(&b);
}

static t4 ref_tiny_encode(const t4 *img, const tiny_cfg *c) {
  t4 x = t4_new(img->N, img->C, img->H, img->W);
  for (size_t i = 0; i < (size_t)img->N * img->C * img->H * img->W; i++)
    x.v[i] = (img->v[i] + 1) / 2;
  int layer = 0;
  for (int i = 0; i < c->ne; i++) {
    if (i == 0) {
      replace(&x, conv3(&x,
                        Wf('w', c->C, c->in, 3, 3, "encoder.layers.%d.weight",
                           layer),
                        Wf('b', c->C, 0, 0, 0, "encoder.layers.%d.bias", layer),
                        c->C, 0));
    } else {
      replace(
          &x,
          conv(&x, Wf('w', c->C, c->C, 3, 3, "encoder.layers.%d.weight", layer),
               NULL, c->C, 3, 2, 1, 1, (x.H - 1) / 2 + 1, (x.W - 1) / 2 + 1,
               0));
    }
    layer++;
    for (int j = 0; j < c->eb[i]; j++) ref_block(&x, c, "encoder", layer++);
  }
  replace(
      &x,
      conv3(&x, Wf('w', c->L, c->C, 3, 3, "encoder.layers.%d.weight", layer),
            Wf('b', c->L, 0, 0, 0, "encoder.layers.%d.bias", layer), c->L, 0));
  return x;
}

static t4 ref_tiny_decode(const t4 *z, const tiny_cfg *c) {
  t4 x = t4_new(z->N, z->C, z->H, z->W);
  for (size_t i = 0; i < (size_t)z->N * z->C * z->H * z->W; i++)
    x.v[i] = tanh(z->v[i] / 3) * 3;
  replace(&x,
          conv3(&x, W("decoder.layers.0.weight", 'w', c->C, c->L, 3, 3),
                W("decoder.layers.0.bias", 'b', c->C, 0, 0, 0), c->C, c->act));
  int layer = 2;
  for (int i = 0; i < c->nd; i++) {
    int last = i == c->nd - 1;
    for (int j = 0; j < c->db[i]; j++) ref_block(&x, c, "decoder", layer++);
    if (!last) {
      replace(&x, upsample(&x));
      layer++;
      replace(&x, conv3(&x,
                        Wf('w', c->C, c->C, 3, 3, "decoder.layers.%d.weight",
                           layer),
                        NULL, c->C, 0));
    } else {
      replace(
          &x,
          conv3(&x,
                Wf('w', c->out, c->C, 3, 3, "decoder.layers.%d.weight", layer),
                Wf('b', c->out, 0, 0, 0, "decoder.layers.%d.bias", layer),
                c->out, 0));
    }
    layer++;
  }
  for (size_t i = 0; i < (size_t)x.N * x.C * x.H * x.W; i++)
    x.v[i] = x.v[i] * 2 - 1;
  return x;
}

static json_t *tiny_config(const tiny_cfg *c) {
  json_t *ec = json_array(), *dc = json_array(), *eb = json_array(),
         *db = json_array();
  for (int i = 0; i < c->ne; i++) {
    json_array_append_new(ec, json_integer(c->C));
    json_array_append_new(eb, json_integer(c->eb[i]));
  }
  for (int i = 0; i < c->nd; i++) {
    json_array_append_new(dc, json_integer(c->C));
    json_array_append_new(db, json_integer(c->db[i]));
  }
  return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:i, s:i, s:i}",
                   "_class_name", "AutoencoderTiny", "act_fn",
                   c->act == 4 ? "relu" : "gelu", "encoder_block_out_channels",
                   ec, "decoder_block_out_channels", dc, "num_encoder_blocks",
                   eb, "num_decoder_blocks", db, "in_channels", c->in,
                   "out_channels", c->out, "latent_channels", c->L);
}

TEST_IMPL(taesd_random) {
  vtl_cl *cl = rt();
  tiny_cfg c = {.in = 3,
                .out = 2,
                .L = 3,
                .C = 8,
                .ne = 3,
                .eb = {1, 0, 2},
                .nd = 3,
                .db = {0, 2, 1},
                .act = 2};
  store_clear();
  scratch_dir();
  int N = 2, H = 9, Wd = 6;
  t4 img = random_t4(N, c.in, H, Wd, 1.0), z = random_t4(N, c.L, 2, 3, 3.0);
  t4 lat = ref_tiny_encode(&img, &c), dec = ref_tiny_decode(&z, &c);
  const char *dir = model_write(tiny_config(&c), NULL, 0);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  vtl_taesd *t = NULL;
  int rc = vtl_taesd_load(cl, mf, &t, msg, sizeof msg);
  vtl_model_files_close(mf);
  if (rc) TEST_FAIL_("load: %s", msg);
  int lh, lw;
  vtl_taesd_latent_size(t, H, Wd, &lh, &lw);
  ASSERT_EQ(lh, lat.H);
  ASSERT_EQ(lw, lat.W);
  vtl_tensor ti, tl, tz, td;
  ASSERT_OP(cl, to_device(cl, &img, &ti));
  ASSERT_OP(cl, to_device(cl, &z, &tz));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &tl, 4, VTL_SHAPE(N, c.L, lh, lw)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &td, 4, VTL_SHAPE(N, c.out, 8, 12)));
  ASSERT_OP(cl, vtl_taesd_encode(t, &ti, &tl));
  ASSERT_OP(cl, vtl_taesd_decode(t, &tz, &td));
  double e1 = rel_err(cl, &tl, &lat), e2 = rel_err(cl, &td, &dec);
  vtl_tensor_release(cl, &ti);
  vtl_tensor_release(cl, &tz);
  vtl_tensor_release(cl, &tl);
  vtl_tensor_release(cl, &td);
  vtl_taesd_free(t);
  t4_free(&img), t4_free(&z), t4_free(&lat), t4_free(&dec);
  store_clear();
  scratch_remove();
  printf("  taesd errors (relative): latents %.3g image %.3g\n", e1, e2);
  ASSERT(e1 >= 0 && e2 >= 0);
  ASSERT_NEAR(e1, 0, 5e-6);
  ASSERT_NEAR(e2, 0, 5e-6);
  return 0;
}

/* ---- errors ------------------------------------------------------------- */

static int vae_load_expect(const vae_cfg *c, const char *skip, int extra,
                           int want, const char *needle) {
  vtl_cl *cl = rt();
  const char *dir = model_write(vae_config(c), skip, extra);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  size_t before = vtl_cl_bytes_in_use(cl);
  vtl_vae *vae = (vtl_vae *)1;
  int rc = vtl_vae_load(cl, mf, &vae, msg, sizeof msg);
  vtl_model_files_close(mf);
  ASSERT_EQ(rc, want);
  ASSERT(vae == NULL);
  if (!strstr(msg, needle))
    TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, needle);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  return 0;
}

TEST_IMPL(load_errors) {
  vae_cfg c = {.in = 3,
               .out = 3,
               .L = 4,
               .B = 2,
               .ch = {4, 8},
               .R = 1,
               .G = 2,
               .act = 1,
               .attn = 1};
  store_clear();
  scratch_dir();
  t4 img = random_t4(1, 3, 4, 4, 1), z = random_t4(1, 4, 2, 2, 1), lv;
  t4 m = ref_vae_encode(&img, &c, &lv), d = ref_vae_decode(&z, &c);
  t4_free(&img), t4_free(&z), t4_free(&m), t4_free(&lv), t4_free(&d);
  int rc =
      vae_load_expect(&c, "decoder.up_blocks.1.resnets.0.conv_shortcut.bias", 0,
                      VTL_ENOENT, "conv_shortcut.bias");
  if (!rc) rc = vae_load_expect(&c, NULL, 1, VTL_EUNSUPPORTED, "extra");
  store_clear();
  scratch_remove();
  return rc;
}

TEST_IMPL(shape_errors) {
  vtl_cl *cl = rt();
  vae_cfg c = {.in = 3,
               .out = 3,
               .L = 4,
               .B = 2,
               .ch = {4, 8},
               .R = 1,
               .G = 2,
               .act = 1,
               .attn = 1};
  store_clear();
  scratch_dir();
  t4 img = random_t4(1, 3, 4, 4, 1), z = random_t4(1, 4, 2, 2, 1), lv;
  t4 m = ref_vae_encode(&img, &c, &lv), d = ref_vae_decode(&z, &c);
  t4_free(&img), t4_free(&z), t4_free(&m), t4_free(&lv), t4_free(&d);
  const char *dir = model_write(vae_config(&c), NULL, 0);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  vtl_vae *vae = NULL;
  int rc = vtl_vae_load(cl, mf, &vae, msg, sizeof msg);
  vtl_model_files_close(mf);
  store_clear();
  scratch_remove();
  if (rc) TEST_FAIL_("load: %s", msg);
  vtl_tensor a, b;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &a, 4, VTL_SHAPE(1, 4, 2, 2)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &b, 4, VTL_SHAPE(1, 3, 4, 6)));
  size_t before = vtl_cl_bytes_in_use(cl);
  ASSERT_EQ(vtl_vae_decode(vae, &a, &b), VTL_EINVAL); /* image 4x6 != 4x4 */
  ASSERT_EQ(vtl_vae_encode(vae, &b, &a, NULL),
            VTL_EINVAL); /* mean 2x2 != 2x3 */
  ASSERT_EQ(vtl_vae_encode(vae, &a, &a, NULL), VTL_EINVAL); /* 4 channels in */
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  vtl_tensor_release(cl, &a);
  vtl_tensor_release(cl, &b);
  vtl_vae_free(vae);
  return 0;
}

TEST_LIST(TEST_ENTRY(vae_random) TEST_ENTRY(vae_gelu_no_attn)
              TEST_ENTRY(taesd_random) TEST_ENTRY(load_errors)
                  TEST_ENTRY(shape_errors))
