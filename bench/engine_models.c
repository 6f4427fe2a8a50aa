/* engine_models.c — whole models on the engine: one guided UNet step, the
 * text encoder, the VAE and TAESD decoders, for bench/README.md next to
 * PyTorch on the same weights (bench/engine_models_torch.py).
 *
 *   cmake --build build --target engine_models_bench
 *   ./build/bench/engine_models_bench --model DIR [--taesd DIR] [--size 256]
 *                                     [-n reps] [--only unet|text|vae|taesd[,...]]
 *
 * Rows (best of n after one warm-up run, then the median and range of the n;
 * the queue drained after each):
 *   text   CLIP text encoder, 1 x 77 tokens (bos, ids, eos)
 *   unet   one guided step: batch 2 (uncond + cond), timestep 500, 77 tokens
 *   vae    AutoencoderKL decode, 1 latent of size/8
 *   taesd  AutoencoderTiny decode (with --taesd), the same latent
 * GFLOP: convolutions, linear layers and the two attention products counted
 * from the config at 2 FLOP per multiply-add (norms, activations, softmax
 * not counted); the UNet row splits them conv / linear / attention.
 * Memory: peak RSS (getrusage; on a CPU OpenCL device the device's buffers
 * are host memory, so it includes the weights, and the pages of the mapped
 * safetensors files an arena's upload touched, given back after it), the
 * weights' device bytes as stored (f32, or f16 conv / linear weights:
 * runtime.h "Weight storage", VTL_WEIGHTS=f16|f32), and the device pool's
 * high-water mark (vtl_cl_bytes_peak over the whole run: the weight arenas
 * plus the activations and scratch, f16 weights' f32 copies included, of
 * the largest row).
 * Inputs are pseudo-random; no row asserts anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clip.h"
#include "model_files.h"
#include "runtime.h"
#include "runtime_int.h" /* vtl__now */
#include "taesd.h"
#include "unet.h"
#include "vae.h"

/* ---- FLOPs from the config ----------------------------------------------- */

typedef struct {
  double conv, lin, attn;
} flops;

static void fconv(flops *f, double ci, double co, double k, double s) {
  f->conv += 2 * ci * co * k * k * s;
}
static void flin(flops *f, double in, double out, double tokens) {
  f->lin += 2 * in * out * tokens;
}
static void fattn(flops *f, double tq, double tk, double c) { f->attn += 4 * tq * tk * c; }

static void unet_resnet(flops *f, int in, int out, double s, int tt) {
  fconv(f, in, out, 3, s);
  fconv(f, out, out, 3, s);
  if (in != out) fconv(f, in, out, 1, s);
  flin(f, tt, out, 1);
}
static void unet_transformer(flops *f, const vtl_unet_config *c, int ch, double s,
                             int layers) {
  double te = 77, dc = c->cross_attention_dim;
  /* proj_in / proj_out: a 1x1 conv or a linear, the same work */
  if (c->use_linear_projection) flin(f, ch, ch, 2 * s);
  else fconv(f, ch, ch, 1, 2 * s);
  for (int l = 0; l < layers; l++) {
    flin(f, ch, ch, 4 * s);        /* attn1 q k v out */
    fattn(f, s, s, ch);
    flin(f, ch, ch, 2 * s);        /* attn2 q out */
    flin(f, dc, ch, 2 * te);       /* attn2 k v */
    fattn(f, s, te, ch);
    flin(f, ch, 8.0 * ch, s);      /* GEGLU proj */
    flin(f, 4.0 * ch, ch, s);      /* ff out */
  }
}

static flops unet_flops(const vtl_unet_config *c, int h, int w) {
  flops f = {0};
  int n = c->num_blocks, tt = c->time_embed_dim, c0 = c->block_out_channels[0];
  double s = (double)h * w;
  flin(&f, c0, tt, 1);
  flin(&f, tt, tt, 1);
  fconv(&f, c->in_channels, c0, c->conv_in_kernel, s);
  int prev = c0;
  for (int i = 0; i < n; i++) {
    int out = c->block_out_channels[i];
    for (int j = 0; j < c->layers_per_block[i]; j++) {
      unet_resnet(&f, j == 0 ? prev : out, out, s, tt);
      if (c->down_attn[i]) unet_transformer(&f, c, out, s, c->transformer_layers[i]);
    }
    if (i < n - 1) {
      s /= 4;
      fconv(&f, out, out, 3, s);
    }
    prev = out;
  }
  int cl = c->block_out_channels[n - 1];
  unet_resnet(&f, cl, cl, s, tt);
  unet_transformer(&f, c, cl, s, vtl_unet_mid_transformer_layers(c));
  unet_resnet(&f, cl, cl, s, tt);
  for (int i = 0; i < n; i++) {
    int out = vtl_unet_up_channels(c, i);
    int in = vtl_unet_up_channels(c, i + 1 < n ? i + 1 : n - 1);
    int layers = vtl_unet_up_layers(c, i);
    for (int j = 0; j < layers; j++) {
      int skip = j == layers - 1 ? in : out;
      unet_resnet(&f, (j == 0 ? prev : out) + skip, out, s, tt);
      if (c->up_attn[i]) unet_transformer(&f, c, out, s, vtl_unet_up_transformer_layers(c, i));
    }
    if (i < n - 1) {
      s *= 4;
      fconv(&f, out, out, 3, s);
    }
    prev = out;
  }
  fconv(&f, c0, c->out_channels, c->conv_out_kernel, s);
  return f;
}

static flops vae_decode_flops(const vtl_vae_config *c, int h, int w) {
  flops f = {0};
  int n = c->num_blocks, cl = c->block_out_channels[n - 1], L = c->latent_channels;
  double s = (double)h * w;
  fconv(&f, L, L, 1, s);
  fconv(&f, L, cl, 3, s);
  unet_resnet(&f, cl, cl, s, 0);
  if (c->mid_block_attention) {
    flin(&f, cl, cl, 4 * s);
    fattn(&f, s, s, cl);
  }
  unet_resnet(&f, cl, cl, s, 0);
  int prev = cl;
  for (int i = 0; i < n; i++) {
    int out = c->block_out_channels[n - 1 - i];
    for (int j = 0; j <= c->layers_per_block; j++) unet_resnet(&f, j == 0 ? prev : out, out, s, 0);
    if (i < n - 1) {
      s *= 4;
      fconv(&f, out, out, 3, s);
    }
    prev = out;
  }
  fconv(&f, c->block_out_channels[0], c->out_channels, 3, s);
  return f;
}

static flops taesd_decode_flops(const vtl_taesd_config *c, int h, int w) {
  flops f = {0};
  double s = (double)h * w;
  int n = c->num_decoder_levels;
  fconv(&f, c->latent_channels, c->decoder_block_out_channels[0], 3, s);
  for (int i = 0; i < n; i++) {
    int ch = c->decoder_block_out_channels[i];
    for (int j = 0; j < c->num_decoder_blocks[i]; j++) fconv(&f, ch, ch, 3, 3 * s);
    if (i < n - 1) {
      s *= 4;
      fconv(&f, ch, c->decoder_block_out_channels[i + 1], 3, s);
    } else {
      fconv(&f, ch, c->out_channels, 3, s);
    }
  }
  return f;
}

static flops clip_flops(const vtl_clip_config *c, int t) {
  flops f = {0};
  double e = c->hidden_size;
  for (int l = 0; l < c->num_hidden_layers; l++) {
    flin(&f, e, e, 4.0 * t);
    fattn(&f, t, t, e);
    flin(&f, e, c->intermediate_size, t);
    flin(&f, c->intermediate_size, e, t);
  }
  return f;
}

/* ---- helpers ------------------------------------------------------------- */

static void fill(vtl_cl *cl, const vtl_tensor *t, float scale) {
  size_t n = vtl_tensor_numel(t);
  float *p = malloc(n * sizeof *p);
  if (!p) exit(1);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = ((float)(s >> 8) / (1 << 24) - 0.5f) * scale;
  }
  if (vtl_tensor_write(cl, t, p) != 0) exit(1);
  free(p);
}

static void ok(vtl_cl *cl, int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "engine_models_bench: %s: %s\n", what, vtl_cl_errmsg(cl));
    exit(1);
  }
}

static double rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* The timed runs of a row: the best (what the FLOP rate uses), the median
 * and the range. */
typedef struct {
  double best, median, worst;
} timing;

static void row(const char *what, timing t, flops f) {
  double tot = f.conv + f.lin + f.attn;
  printf("%-6s %10.3f s %9.3f GFLOP %7.1f GFLOP/s   (conv %.2f, linear %.2f, attention %.2f)"
         "   median %.3f s, range %.3f-%.3f s\n",
         what, t.best, tot * 1e-9, tot / t.best * 1e-9, f.conv * 1e-9, f.lin * 1e-9,
         f.attn * 1e-9, t.median, t.best, t.worst);
  fflush(stdout);
}

typedef int (*run_fn)(void *ctx);

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static timing timed(vtl_cl *cl, run_fn fn, void *ctx, int reps, const char *what) {
  double *ts = malloc(sizeof *ts * (size_t)reps);
  if (!ts) exit(1);
  for (int r = 0; r <= reps; r++) { /* r == 0: warm-up */
    double t0 = vtl__now();
    ok(cl, fn(ctx), what);
    ok(cl, vtl_cl_finish(cl), what);
    double t = vtl__now() - t0;
    if (r > 0) ts[r - 1] = t;
    else fprintf(stderr, "  %s warm-up: %.3f s\n", what, t);
  }
  qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
  timing t = {ts[0], reps % 2 ? ts[reps / 2] : (ts[reps / 2 - 1] + ts[reps / 2]) / 2,
              ts[reps - 1]};
  free(ts);
  return t;
}

typedef struct {
  vtl_clip *clip;
  vtl_unet *unet;
  vtl_vae *vae;
  vtl_taesd *taesd;
  int32_t ids[77];
  vtl_tensor text_out, sample, ctx, eps, lat, img;
} bench;

static int run_text(void *p) {
  bench *b = p;
  return vtl_clip_encode(b->clip, b->ids, 1, 77, &b->text_out, NULL, NULL);
}
static int run_unet(void *p) {
  bench *b = p;
  float t = 500;
  return vtl_unet_forward(b->unet, &b->sample, &t, 1, &b->ctx, NULL, &b->eps);
}
static int run_vae(void *p) {
  bench *b = p;
  return vtl_vae_decode(b->vae, &b->lat, &b->img);
}
static int run_taesd(void *p) {
  bench *b = p;
  return vtl_taesd_decode(b->taesd, &b->lat, &b->img);
}

/* 1 when the comma-separated list names row x. */
static int want(const char *list, const char *x) {
  size_t n = strlen(x);
  for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (!strncmp(p, x, n) && (p[n] == ',' || !p[n])) return 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *model = NULL, *taesd_dir = NULL, *only = "";
  int reps = 2, size = 256;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(argv[i], "--taesd") && i + 1 < argc) taesd_dir = argv[++i];
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else model = NULL, i = argc;
  }
  if (!model || reps < 1 || size < 8) {
    fprintf(stderr, "usage: engine_models_bench --model DIR [--taesd DIR] [--size 256] [-n reps]\n"
                    "                           [--only unet|text|vae|taesd[,...]]\n");
    return 2;
  }
#define WANT(x) (!*only || want(only, x))
  vtl_cl *cl;
  char msg[1024];
  if (vtl_cl_init(&cl, NULL, msg, sizeof msg) != 0) {
    fprintf(stderr, "engine_models_bench: %s\n", msg);
    return 1;
  }
  vtl_model_files *m;
  if (vtl_model_files_open(&m, model, NULL, msg, sizeof msg) != 0) {
    fprintf(stderr, "engine_models_bench: %s\n", msg);
    return 1;
  }
  bench b = {0};
  double t0 = vtl__now();
  /* the weights: the device bytes the loads took (what the arenas hold,
   * f16 or f32 as the runtime stores them) */
  double wb = (double)vtl_cl_bytes_in_use(cl);
  if (WANT("text") && vtl_clip_load(cl, m, &b.clip, msg, sizeof msg) != 0) goto fail;
  if (WANT("unet") && vtl_unet_load(cl, m, &b.unet, msg, sizeof msg) != 0) goto fail;
  if (WANT("vae") && vtl_vae_load(cl, m, &b.vae, msg, sizeof msg) != 0) goto fail;
  /* copies: the configs belong to m */
  vtl_unet_config ucv = *vtl_model_files_unet_config(m);
  vtl_clip_config ccv = *vtl_model_files_clip_config(m);
  vtl_vae_config vcv = *vtl_model_files_vae_config(m);
  const vtl_unet_config *uc = &ucv;
  const vtl_clip_config *cc = &ccv;
  const vtl_vae_config *vc = &vcv;
  int dc = uc->cross_attention_dim, E = cc->hidden_size;
  vtl_model_files_close(m);
  if (taesd_dir && WANT("taesd")) {
    vtl_model_files *tm;
    if (vtl_model_files_open(&tm, taesd_dir, NULL, msg, sizeof msg) != 0) goto fail;
    if (vtl_taesd_load(cl, tm, &b.taesd, msg, sizeof msg) != 0) goto fail;
    vtl_model_files_close(tm);
  }
  printf("device: %s\nmodel: %s  size %dx%d  best of %d after a warm-up\n",
         vtl_cl_device_name(cl), model, size, size, reps);
  wb = (double)vtl_cl_bytes_in_use(cl) - wb;
  printf("load: %.2f s, weights %.1f MiB (%s), peak RSS after load %.0f MiB\n",
         vtl__now() - t0, wb / 1048576.0, vtl_cl_weights_name(cl), rss_mib());
  int lh = size / 8, lw = size / 8; /* SD's latent factor */

  if (b.clip) {
    b.ids[0] = cc->bos_token_id;
    for (int i = 1; i < 76; i++) b.ids[i] = (int32_t)((i * 7919) % (cc->vocab_size - 2));
    b.ids[76] = cc->eos_token_id;
    ok(cl, vtl_tensor_alloc(cl, &b.text_out, 3, VTL_SHAPE(1, 77, E)), "alloc");
    row("text", timed(cl, run_text, &b, reps, "text"), clip_flops(cc, 77));
    vtl_tensor_release(cl, &b.text_out);
  }
  if (b.unet) {
    ok(cl, vtl_tensor_alloc(cl, &b.sample, 4, VTL_SHAPE(2, uc->in_channels, lh, lw)), "alloc");
    ok(cl, vtl_tensor_alloc(cl, &b.ctx, 3, VTL_SHAPE(2, 77, dc)), "alloc");
    ok(cl, vtl_tensor_alloc(cl, &b.eps, 4, VTL_SHAPE(2, uc->out_channels, lh, lw)), "alloc");
    fill(cl, &b.sample, 2.0f);
    fill(cl, &b.ctx, 2.0f);
    flops f = unet_flops(uc, lh, lw);
    f.conv *= 2, f.lin *= 2, f.attn *= 2; /* batch 2 */
    row("unet", timed(cl, run_unet, &b, reps, "unet"), f);
    vtl_tensor_release(cl, &b.sample);
    vtl_tensor_release(cl, &b.ctx);
    vtl_tensor_release(cl, &b.eps);
  }
  if (b.vae || b.taesd) {
    ok(cl, vtl_tensor_alloc(cl, &b.lat, 4, VTL_SHAPE(1, 4, lh, lw)), "alloc");
    fill(cl, &b.lat, 4.0f);
  }
  if (b.vae) {
    int f = 1 << (vc->num_blocks - 1);
    ok(cl, vtl_tensor_alloc(cl, &b.img, 4, VTL_SHAPE(1, vc->out_channels, lh * f, lw * f)), "alloc");
    row("vae", timed(cl, run_vae, &b, reps, "vae"), vae_decode_flops(vc, lh, lw));
    vtl_tensor_release(cl, &b.img);
  }
  if (b.taesd) {
    const vtl_taesd_config *tc = vtl_taesd_config_of(b.taesd);
    int f = 1 << (tc->num_decoder_levels - 1);
    ok(cl, vtl_tensor_alloc(cl, &b.img, 4, VTL_SHAPE(1, tc->out_channels, lh * f, lw * f)), "alloc");
    row("taesd", timed(cl, run_taesd, &b, reps, "taesd"), taesd_decode_flops(tc, lh, lw));
    vtl_tensor_release(cl, &b.img);
  }
  if (b.vae || b.taesd) vtl_tensor_release(cl, &b.lat);
  double pk = (double)vtl_cl_bytes_peak(cl);
  printf("peak RSS %.0f MiB; device pool peak %.1f MiB = weights %.1f MiB + at most %.1f MiB "
         "activations and scratch\n",
         rss_mib(), pk / 1048576.0, wb / 1048576.0, (pk - wb) / 1048576.0);
  vtl_taesd_free(b.taesd);
  vtl_vae_free(b.vae);
  vtl_unet_free(b.unet);
  vtl_clip_free(b.clip);
  vtl_cl_close(cl);
  return 0;
fail:
  fprintf(stderr, "engine_models_bench: %s\n", msg);
  return 1;
}
