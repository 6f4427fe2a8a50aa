/* vtl-make-random-model — writes a randomly initialised Stable Diffusion
 * model of a named real architecture in the diffusers folder layout, for
 * benchmarks (and tests) without downloads.
 *
 *   vtl-make-random-model --arch sd15|sd21|sd-turbo|tiny|pixel|taesd --out DIR
 *                         [--seed N] [--fp16] [--tokenizer DIR]
 *
 * DIR gets model_index.json, scheduler/, text_encoder/, tokenizer/, unet/
 * and (but for pixel) vae/ with the configs of the architecture and one safetensors file per
 * weighted component, holding every weight diffusers / transformers name for
 * that config, at its shape. `vtl-render --model DIR` loads it like a real
 * checkpoint. The images are noise, of course.
 *
 * Architectures (the shapes of the public checkpoints):
 *   sd15      UNet 320/640/1280/1280, 8 heads, cross 768; CLIP ViT-L/14 text
 *             encoder (768, 12 layers, 12 heads, quick_gelu); VAE
 *             128/256/512/512; PNDM schedule, epsilon
 *   sd21      UNet heads [5, 10, 20, 20], linear projections, cross 1024;
 *             OpenCLIP ViT-H text tower as diffusers ships it (1024, 23
 *             layers, 16 heads, gelu); DDIM schedule, v_prediction
 *   sd-turbo  the sd21 shapes (sample size 64), Euler, trailing spacing
 *   tiny      the reference kit's tiny-sd shapes (UNet 32/64, CLIP 32 x 3
 *             layers), for tests
 *   pixel     the default model's family, smaller: a pixel-space pipeline
 *             (VtlPixelDiffusionPipeline, no vae) whose UNet (16/32/32, RGB
 *             and x, y coordinate channels in, RGB out) adds a
 *             class-embedding projection of the pooled
 *             text (class_embed_type "projection"); the tiny CLIP; DDIM,
 *             squaredcos_cap_v2, v_prediction, trailing, clip_sample; for
 *             tests of the pixel path
 *   taesd     not a pipeline: an AutoencoderTiny component folder (config.json
 *             + weights) of the public TAESD's shapes (64 channels, encoder
 *             blocks 1/3/3/3, decoder 3/3/3/1), for vtl-render --taesd DIR
 * The tokenizer's files are copied from --tokenizer (default: the reference
 * kit's tiny-sd tokenizer, ../shared/refkit/models/tiny-sd/tokenizer from
 * the source tree); the text encoder's vocabulary is sized from its
 * vocab.json, and bos / eos come from it, so any CLIP BPE tokenizer fits.
 *
 * Weights: a deterministic PRNG (splitmix64 keyed by --seed and the tensor's
 * name, so a tensor does not depend on the others), uniform with the
 * standard deviation of N(0, 1/fan_in) (conv and linear weights: fan_in =
 * in_channels x kernel area), embeddings std 0.02, norm weights 1, every
 * bias 0. F32 by default; --fp16 stores F16 (in the plain file names, so no
 * --variant is needed to load them).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef VTL_DEFAULT_TOKENIZER
#define VTL_DEFAULT_TOKENIZER "../shared/refkit/models/tiny-sd/tokenizer"
#endif

/* ---- tensors to write ---------------------------------------------------- */

typedef enum { INIT_FANIN, INIT_ONE, INIT_ZERO, INIT_EMBED } init_kind;

typedef struct {
  char *name;
  int ndim;
  int64_t shape[4];
  init_kind init;
} tdesc;

typedef struct {
  tdesc *t;
  size_t n, cap;
} tlist;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("vtl-make-random-model: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void add(tlist *l, init_kind init, int ndim, const int64_t *shape,
                const char *fmt, ...) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->t = realloc(l->t, l->cap * sizeof *l->t);
    if (!l->t) die("out of memory");
  }
  tdesc *d = &l->t[l->n++];
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  d->name = strdup(buf);
  d->ndim = ndim;
  for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
  d->init = init;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})

/* prefix is "" or ends with '.' */
static void norm(tlist *l, const char *p, int64_t c) {
  add(l, INIT_ONE, 1, S(c), "%sweight", p);
  add(l, INIT_ZERO, 1, S(c), "%sbias", p);
}
static void linear(tlist *l, const char *p, int64_t out, int64_t in, int bias) {
  add(l, INIT_FANIN, 2, S(out, in), "%sweight", p);
  if (bias) add(l, INIT_ZERO, 1, S(out), "%sbias", p);
}
static void conv(tlist *l, const char *p, int64_t out, int64_t in, int k) {
  add(l, INIT_FANIN, 4, S(out, in, k, k), "%sweight", p);
  add(l, INIT_ZERO, 1, S(out), "%sbias", p);
}

static char *cat(char *buf, const char *a, const char *fmt, ...) {
  size_t n = (size_t)snprintf(buf, 256, "%s", a);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, 256 - n, fmt, ap);
  va_end(ap);
  return buf;
}

/* ---- architectures ------------------------------------------------------- */

typedef struct {
  const char *name;
  /* unet */
  int nblocks;
  int ch[4];
  int heads[4]; /* attention_head_dim per block (a head count in SD) */
  int heads_list; /* write attention_head_dim as a list */
  int attn[4];    /* CrossAttn block */
  int layers_per_block;
  int cross;
  int linear_proj;
  int norm_groups;
  int sample_size;
  /* text encoder */
  int te_hidden, te_layers, te_heads, te_ff, te_proj;
  const char *te_act;
  /* vae */
  int vae_nblocks;
  int vae_ch[4];
  int vae_groups;
  int vae_sample;
  /* scheduler */
  const char *sched;
  int pixel; /* pixel space: RGB UNet with a class embedding, no vae */
} arch;

static const arch arches[] = {
    {"sd15", 4, {320, 640, 1280, 1280}, {8, 8, 8, 8}, 0, {1, 1, 1, 0}, 2, 768, 0,
     32, 64, 768, 12, 12, 3072, 768, "quick_gelu", 4, {128, 256, 512, 512}, 32,
     512, "pndm", 0},
    {"sd21", 4, {320, 640, 1280, 1280}, {5, 10, 20, 20}, 1, {1, 1, 1, 0}, 2, 1024,
     1, 32, 96, 1024, 23, 16, 4096, 512, "gelu", 4, {128, 256, 512, 512}, 32,
     768, "ddim_v", 0},
    {"sd-turbo", 4, {320, 640, 1280, 1280}, {5, 10, 20, 20}, 1, {1, 1, 1, 0}, 2,
     1024, 1, 32, 64, 1024, 23, 16, 4096, 512, "gelu", 4, {128, 256, 512, 512},
     32, 512, "euler_trailing", 0},
    {"tiny", 2, {32, 64}, {4, 4}, 0, {1, 0}, 2, 32, 0, 16, 8, 32, 3, 4, 37, 32,
     "quick_gelu", 4, {16, 32, 32, 32}, 8, 64, "ddim", 0},
    {"pixel", 3, {16, 32, 32}, {4, 4, 4}, 0, {0, 1, 1}, 1, 32, 1, 8, 32, 32, 3,
     4, 37, 32, "quick_gelu", 0, {0}, 0, 0, "ddim_pixel", 1},
};

static void transformer(tlist *l, const char *p, const arch *a, int c) {
  char b[256];
  norm(l, cat(b, p, "norm."), c);
  if (a->linear_proj) {
    linear(l, cat(b, p, "proj_in."), c, c, 1);
    linear(l, cat(b, p, "proj_out."), c, c, 1);
  } else {
    conv(l, cat(b, p, "proj_in."), c, c, 1);
    conv(l, cat(b, p, "proj_out."), c, c, 1);
  }
  const char *tb = "transformer_blocks.0.";
  for (int k = 1; k <= 3; k++) norm(l, cat(b, p, "%snorm%d.", tb, k), c);
  for (int k = 1; k <= 2; k++) {
    int kv = k == 1 ? c : a->cross;
    linear(l, cat(b, p, "%sattn%d.to_q.", tb, k), c, c, 0);
    linear(l, cat(b, p, "%sattn%d.to_k.", tb, k), c, kv, 0);
    linear(l, cat(b, p, "%sattn%d.to_v.", tb, k), c, kv, 0);
    linear(l, cat(b, p, "%sattn%d.to_out.0.", tb, k), c, c, 1);
  }
  linear(l, cat(b, p, "%sff.net.0.proj.", tb), 8 * c, c, 1);
  linear(l, cat(b, p, "%sff.net.2.", tb), c, 4 * c, 1);
}

static void unet_resnet(tlist *l, const char *p, int in, int out, int temb) {
  char b[256];
  norm(l, cat(b, p, "norm1."), in);
  conv(l, cat(b, p, "conv1."), out, in, 3);
  if (temb) linear(l, cat(b, p, "time_emb_proj."), out, temb, 1);
  norm(l, cat(b, p, "norm2."), out);
  conv(l, cat(b, p, "conv2."), out, out, 3);
  if (in != out) conv(l, cat(b, p, "conv_shortcut."), out, in, 1);
}

/* The pixel arch's UNet also takes x and y (model_index.json
 * "coord_channels", as the default model). */
#define PIXEL_COORD_CHANNELS 2

static void unet_weights(tlist *l, const arch *a) {
  char p[256];
  int n = a->nblocks, c0 = a->ch[0], tt = 4 * c0, io = a->pixel ? 3 : 4;
  conv(l, "conv_in.", c0, io + (a->pixel ? PIXEL_COORD_CHANNELS : 0), 3);
  linear(l, "time_embedding.linear_1.", tt, c0, 1);
  linear(l, "time_embedding.linear_2.", tt, tt, 1);
  if (a->pixel) { /* class labels: the pooled text [B, te_hidden] */
    linear(l, "class_embedding.linear_1.", tt, a->te_hidden, 1);
    linear(l, "class_embedding.linear_2.", tt, tt, 1);
  }
  int prev = c0;
  for (int i = 0; i < n; i++) {
    int out = a->ch[i];
    for (int j = 0; j < a->layers_per_block; j++) {
      snprintf(p, sizeof p, "down_blocks.%d.resnets.%d.", i, j);
      unet_resnet(l, p, j == 0 ? prev : out, out, tt);
      if (a->attn[i]) {
        snprintf(p, sizeof p, "down_blocks.%d.attentions.%d.", i, j);
        transformer(l, p, a, out);
      }
    }
    if (i < n - 1) {
      snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv.", i);
      conv(l, p, out, out, 3);
    }
    prev = out;
  }
  int cl = a->ch[n - 1];
  unet_resnet(l, "mid_block.resnets.0.", cl, cl, tt);
  transformer(l, "mid_block.attentions.0.", a, cl);
  unet_resnet(l, "mid_block.resnets.1.", cl, cl, tt);
  prev = cl;
  for (int i = 0; i < n; i++) {
    int out = a->ch[n - 1 - i];
    int in = a->ch[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
    int attn = a->attn[n - 1 - i];
    for (int j = 0; j <= a->layers_per_block; j++) {
      int skip = j == a->layers_per_block ? in : out;
      int rin = j == 0 ? prev : out;
      snprintf(p, sizeof p, "up_blocks.%d.resnets.%d.", i, j);
      unet_resnet(l, p, rin + skip, out, tt);
      if (attn) {
        snprintf(p, sizeof p, "up_blocks.%d.attentions.%d.", i, j);
        transformer(l, p, a, out);
      }
    }
    if (i < n - 1) {
      snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv.", i);
      conv(l, p, out, out, 3);
    }
    prev = out;
  }
  norm(l, "conv_norm_out.", c0);
  conv(l, "conv_out.", io, c0, 3);
}

static void vae_attn(tlist *l, const char *p, int c) {
  char b[256];
  norm(l, cat(b, p, "group_norm."), c);
  linear(l, cat(b, p, "to_q."), c, c, 1);
  linear(l, cat(b, p, "to_k."), c, c, 1);
  linear(l, cat(b, p, "to_v."), c, c, 1);
  linear(l, cat(b, p, "to_out.0."), c, c, 1);
}

static void vae_weights(tlist *l, const arch *a) {
  char p[256];
  int n = a->vae_nblocks, r = 2, L = 4;
  const int *ch = a->vae_ch;
  int cl = ch[n - 1];
  /* encoder */
  conv(l, "encoder.conv_in.", ch[0], 3, 3);
  int prev = ch[0];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < r; j++) {
      snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d.", i, j);
      unet_resnet(l, p, j == 0 ? prev : ch[i], ch[i], 0);
    }
    if (i < n - 1) {
      snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv.", i);
      conv(l, p, ch[i], ch[i], 3);
    }
    prev = ch[i];
  }
  unet_resnet(l, "encoder.mid_block.resnets.0.", cl, cl, 0);
  vae_attn(l, "encoder.mid_block.attentions.0.", cl);
  unet_resnet(l, "encoder.mid_block.resnets.1.", cl, cl, 0);
  norm(l, "encoder.conv_norm_out.", cl);
  conv(l, "encoder.conv_out.", 2 * L, cl, 3);
  conv(l, "quant_conv.", 2 * L, 2 * L, 1);
  conv(l, "post_quant_conv.", L, L, 1);
  /* decoder */
  conv(l, "decoder.conv_in.", cl, L, 3);
  unet_resnet(l, "decoder.mid_block.resnets.0.", cl, cl, 0);
  vae_attn(l, "decoder.mid_block.attentions.0.", cl);
  unet_resnet(l, "decoder.mid_block.resnets.1.", cl, cl, 0);
  prev = cl;
  for (int i = 0; i < n; i++) {
    int out = ch[n - 1 - i];
    for (int j = 0; j <= r; j++) {
      snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d.", i, j);
      unet_resnet(l, p, j == 0 ? prev : out, out, 0);
    }
    if (i < n - 1) {
      snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv.", i);
      conv(l, p, out, out, 3);
    }
    prev = out;
  }
  norm(l, "decoder.conv_norm_out.", ch[0]);
  conv(l, "decoder.conv_out.", 3, ch[0], 3);
}

static void clip_weights(tlist *l, const arch *a, int vocab) {
  char p[256];
  int e = a->te_hidden, f = a->te_ff;
  add(l, INIT_EMBED, 2, S(vocab, e), "text_model.embeddings.token_embedding.weight");
  add(l, INIT_EMBED, 2, S(77, e), "text_model.embeddings.position_embedding.weight");
  for (int i = 0; i < a->te_layers; i++) {
    char b[256];
    snprintf(p, sizeof p, "text_model.encoder.layers.%d.", i);
    norm(l, cat(b, p, "layer_norm1."), e);
    linear(l, cat(b, p, "self_attn.q_proj."), e, e, 1);
    linear(l, cat(b, p, "self_attn.k_proj."), e, e, 1);
    linear(l, cat(b, p, "self_attn.v_proj."), e, e, 1);
    linear(l, cat(b, p, "self_attn.out_proj."), e, e, 1);
    norm(l, cat(b, p, "layer_norm2."), e);
    linear(l, cat(b, p, "mlp.fc1."), f, e, 1);
    linear(l, cat(b, p, "mlp.fc2."), e, f, 1);
  }
  norm(l, "text_model.final_layer_norm.", e);
}

/* TAESD (diffusers AutoencoderTiny, the public madebyollin/taesd shapes):
 * nn.Sequential indices, activations and upsamplers taking one each. */
static const int taesd_ch = 64, taesd_enc[4] = {1, 3, 3, 3},
                 taesd_dec[4] = {3, 3, 3, 1};

static void taesd_block(tlist *l, const char *p, int c) {
  char b[256];
  for (int k = 0; k < 3; k++) conv(l, cat(b, p, "conv.%d.", 2 * k), c, c, 3);
}

static void taesd_weights(tlist *l) {
  char p[256];
  int c = taesd_ch, idx = 0;
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "encoder.layers.%d.", idx++);
    if (i == 0) conv(l, p, c, 3, 3);
    else add(l, INIT_FANIN, 4, S(c, c, 3, 3), "%sweight", p);
    for (int j = 0; j < taesd_enc[i]; j++) {
      snprintf(p, sizeof p, "encoder.layers.%d.", idx++);
      taesd_block(l, p, c);
    }
  }
  snprintf(p, sizeof p, "encoder.layers.%d.", idx);
  conv(l, p, 4, c, 3);
  conv(l, "decoder.layers.0.", c, 4, 3);
  idx = 2; /* 1: the activation */
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < taesd_dec[i]; j++) {
      snprintf(p, sizeof p, "decoder.layers.%d.", idx++);
      taesd_block(l, p, c);
    }
    if (i < 3) {
      idx++; /* the upsampler */
      snprintf(p, sizeof p, "decoder.layers.%d.", idx++);
      add(l, INIT_FANIN, 4, S(c, c, 3, 3), "%sweight", p);
    } else {
      snprintf(p, sizeof p, "decoder.layers.%d.", idx++);
      conv(l, p, 3, c, 3);
    }
  }
}

static const char taesd_config[] =
    "{\n  \"_class_name\": \"AutoencoderTiny\",\n  \"_diffusers_version\": \"0.27.2\",\n"
    "  \"act_fn\": \"relu\",\n  \"decoder_block_out_channels\": [64, 64, 64, 64],\n"
    "  \"encoder_block_out_channels\": [64, 64, 64, 64],\n  \"force_upcast\": false,\n"
    "  \"in_channels\": 3,\n  \"latent_channels\": 4,\n  \"latent_magnitude\": 3,\n"
    "  \"latent_shift\": 0.5,\n  \"num_decoder_blocks\": [3, 3, 3, 1],\n"
    "  \"num_encoder_blocks\": [1, 3, 3, 3],\n  \"out_channels\": 3,\n"
    "  \"scaling_factor\": 1.0,\n  \"upsampling_scaling_factor\": 2\n}\n";

/* ---- PRNG and the safetensors writer ------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t name_key(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
  return h;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffffu;
  if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - exp;
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

static int64_t numel(const tdesc *d) {
  int64_t n = 1;
  for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
  return n;
}

static void write_safetensors(const char *path, const tlist *l, uint64_t seed,
                              int fp16) {
  size_t esz = fp16 ? 2 : 4;
  /* header */
  size_t cap = 4096 + l->n * 512, len = 0; /* names < 256 */
  char *h = malloc(cap);
  if (!h) die("out of memory");
  len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
  uint64_t off = 0;
  for (size_t i = 0; i < l->n; i++) {
    const tdesc *d = &l->t[i];
    uint64_t nb = (uint64_t)numel(d) * esz;
    len += (size_t)snprintf(h + len, cap - len,
                            ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", d->name,
                            fp16 ? "F16" : "F32");
    for (int k = 0; k < d->ndim; k++)
      len += (size_t)snprintf(h + len, cap - len, "%s%lld", k ? "," : "",
                              (long long)d->shape[k]);
    len += (size_t)snprintf(h + len, cap - len,
                            "],\"data_offsets\":[%llu,%llu]}",
                            (unsigned long long)off,
                            (unsigned long long)(off + nb));
    off += nb;
  }
  len += (size_t)snprintf(h + len, cap - len, "}");
  if (len + 8 >= cap) die("%s: header too long", path);
  while (len % 8) h[len++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f) die("%s: %s", path, strerror(errno));
  uint8_t n8[8];
  for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
  fwrite(n8, 1, 8, f);
  fwrite(h, 1, len, f);
  free(h);
  /* data, one tensor at a time, in chunks */
  enum { CH = 1 << 16 };
  static float buf[CH];
  static uint16_t hbuf[CH];
  for (size_t i = 0; i < l->n; i++) {
    const tdesc *d = &l->t[i];
    int64_t n = numel(d);
    int64_t fan_in = 1;
    for (int k = 1; k < d->ndim; k++) fan_in *= d->shape[k];
    double sd = d->init == INIT_EMBED ? 0.02
                : d->init == INIT_FANIN ? 1.0 / sqrt((double)fan_in)
                                        : 0.0;
    double a = sd * sqrt(3.0); /* uniform(-a, a) has std sd */
    uint64_t s = name_key(seed, d->name);
    for (int64_t at = 0; at < n; at += CH) {
      int m = (int)(n - at < CH ? n - at : CH);
      for (int k = 0; k < m; k++) {
        if (d->init == INIT_ONE) buf[k] = 1.0f;
        else if (d->init == INIT_ZERO) buf[k] = 0.0f;
        else {
          double u = (double)(splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
          buf[k] = (float)((2.0 * u - 1.0) * a);
        }
      }
      if (fp16) {
        for (int k = 0; k < m; k++) hbuf[k] = f32_to_f16(buf[k]);
        if (fwrite(hbuf, 2, (size_t)m, f) != (size_t)m) die("%s: write failed", path);
      } else if (fwrite(buf, 4, (size_t)m, f) != (size_t)m) {
        die("%s: write failed", path);
      }
    }
  }
  if (fclose(f) != 0) die("%s: %s", path, strerror(errno));
  fprintf(stderr, "%s: %zu tensors, %.1f MB\n", path, l->n, (double)off / 1e6);
}

/* ---- configs ------------------------------------------------------------- */

static FILE *open_w(const char *dir, const char *sub, const char *file, char *path) {
  snprintf(path, 4096, "%s/%s", dir, sub);
  if (mkdir(path, 0777) != 0 && errno != EEXIST) die("%s: %s", path, strerror(errno));
  snprintf(path, 4096, "%s/%s/%s", dir, sub, file);
  FILE *f = fopen(path, "w");
  if (!f) die("%s: %s", path, strerror(errno));
  return f;
}

static void int_list(FILE *f, const int *v, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", v[i]);
  fputc(']', f);
}

static void write_unet_config(FILE *f, const arch *a) {
  int n = a->nblocks;
  fprintf(f, "{\n  \"_class_name\": \"UNet2DConditionModel\",\n"
             "  \"_diffusers_version\": \"0.27.2\",\n  \"act_fn\": \"silu\",\n"
             "  \"attention_head_dim\": ");
  if (a->heads_list) int_list(f, a->heads, n);
  else fprintf(f, "%d", a->heads[0]);
  fprintf(f, ",\n  \"block_out_channels\": ");
  int_list(f, a->ch, n);
  fprintf(f, ",\n  \"center_input_sample\": false,\n  \"cross_attention_dim\": %d,\n"
             "  \"down_block_types\": [", a->cross);
  int io = a->pixel ? 3 : 4;
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\"%s\"", i ? ", " : "", a->attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D");
  fprintf(f, "],\n  \"downsample_padding\": 1,\n  \"dual_cross_attention\": false,\n"
             "  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n  \"in_channels\": %d,\n"
             "  \"layers_per_block\": %d,\n  \"mid_block_scale_factor\": 1,\n"
             "  \"mid_block_type\": \"UNetMidBlock2DCrossAttn\",\n  \"norm_eps\": 1e-05,\n"
             "  \"norm_num_groups\": %d,\n  \"num_class_embeds\": null,\n"
             "  \"only_cross_attention\": false,\n  \"out_channels\": %d,\n"
             "  \"resnet_time_scale_shift\": \"default\",\n  \"sample_size\": %d,\n",
          io + (a->pixel ? PIXEL_COORD_CHANNELS : 0), a->layers_per_block, a->norm_groups,
          io, a->sample_size);
  if (a->pixel)
    fprintf(f, "  \"class_embed_type\": \"projection\",\n"
               "  \"projection_class_embeddings_input_dim\": %d,\n", a->te_hidden);
  fprintf(f, "  \"up_block_types\": [");
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\"%s\"", i ? ", " : "",
            a->attn[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D");
  fprintf(f, "],\n  \"upcast_attention\": %s,\n  \"use_linear_projection\": %s\n}\n",
          a->linear_proj ? "true" : "false", a->linear_proj ? "true" : "false");
}

static void write_vae_config(FILE *f, const arch *a) {
  int n = a->vae_nblocks;
  fprintf(f, "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.27.2\",\n"
             "  \"act_fn\": \"silu\",\n  \"block_out_channels\": ");
  int_list(f, a->vae_ch, n);
  fprintf(f, ",\n  \"down_block_types\": [");
  for (int i = 0; i < n; i++) fprintf(f, "%s\"DownEncoderBlock2D\"", i ? ", " : "");
  fprintf(f, "],\n  \"force_upcast\": true,\n  \"in_channels\": 3,\n  \"latent_channels\": 4,\n"
             "  \"layers_per_block\": 2,\n  \"norm_num_groups\": %d,\n  \"out_channels\": 3,\n"
             "  \"sample_size\": %d,\n  \"scaling_factor\": 0.18215,\n  \"up_block_types\": [",
          a->vae_groups, a->vae_sample);
  for (int i = 0; i < n; i++) fprintf(f, "%s\"UpDecoderBlock2D\"", i ? ", " : "");
  fprintf(f, "]\n}\n");
}

static void write_clip_config(FILE *f, const arch *a, int vocab, int bos, int eos) {
  fprintf(f,
          "{\n  \"architectures\": [\"CLIPTextModel\"],\n  \"attention_dropout\": 0.0,\n"
          "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"hidden_act\": \"%s\",\n"
          "  \"hidden_size\": %d,\n  \"initializer_factor\": 1.0,\n"
          "  \"initializer_range\": 0.02,\n  \"intermediate_size\": %d,\n"
          "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 77,\n"
          "  \"model_type\": \"clip_text_model\",\n  \"num_attention_heads\": %d,\n"
          "  \"num_hidden_layers\": %d,\n  \"pad_token_id\": %d,\n  \"projection_dim\": %d,\n"
          "  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.39.0\",\n"
          "  \"vocab_size\": %d\n}\n",
          bos, eos, a->te_act, a->te_hidden, a->te_ff, a->te_heads, a->te_layers, eos,
          a->te_proj, vocab);
}

/* kind: pndm, ddim, ddim_v, euler_trailing (SD's scaled_linear betas), or
 * ddim_pixel (the default pixel model's: cosine betas, v_prediction,
 * trailing, clip_sample). */
static void write_scheduler(FILE *f, const char *kind) {
  const char *cls = "DDIMScheduler", *pred = "epsilon", *spacing = "leading";
  int pixel = !strcmp(kind, "ddim_pixel");
  if (!strcmp(kind, "pndm")) cls = "PNDMScheduler";
  if (!strcmp(kind, "ddim_v") || pixel) pred = "v_prediction";
  if (!strcmp(kind, "euler_trailing")) cls = "EulerDiscreteScheduler", spacing = "trailing";
  if (pixel) spacing = "trailing";
  fprintf(f,
          "{\n  \"_class_name\": \"%s\",\n  \"_diffusers_version\": \"0.27.2\",\n"
          "  \"beta_end\": 0.012,\n  \"beta_schedule\": \"%s\",\n"
          "  \"beta_start\": 0.00085,\n  \"clip_sample\": %s,\n"
          "  \"num_train_timesteps\": 1000,\n  \"prediction_type\": \"%s\",\n"
          "  \"set_alpha_to_one\": %s,\n  \"skip_prk_steps\": true,\n"
          "  \"steps_offset\": %d,\n  \"timestep_spacing\": \"%s\",\n"
          "  \"trained_betas\": null\n}\n",
          cls, pixel ? "squaredcos_cap_v2" : "scaled_linear", pixel ? "true" : "false",
          pred, pixel ? "true" : "false", pixel ? 0 : 1, spacing);
}

static const char model_index[] =
    "{\n  \"_class_name\": \"%s\",\n  \"_diffusers_version\": \"0.27.2\",\n"
    "  \"feature_extractor\": [null, null],\n  \"requires_safety_checker\": false,\n"
    "  \"safety_checker\": [null, null],\n  \"scheduler\": [\"diffusers\", \"%s\"],\n"
    "  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
    "  \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
    "  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
    "%s  \"vae\": %s\n}\n";

static void copy_file(const char *from, const char *to, int required) {
  FILE *in = fopen(from, "rb");
  if (!in) {
    if (required) die("%s: %s", from, strerror(errno));
    return;
  }
  FILE *out = fopen(to, "wb");
  if (!out) die("%s: %s", to, strerror(errno));
  char b[65536];
  size_t n;
  while ((n = fread(b, 1, sizeof b, in)) > 0)
    if (fwrite(b, 1, n, out) != n) die("%s: write failed", to);
  fclose(in);
  if (fclose(out) != 0) die("%s: %s", to, strerror(errno));
}

static void usage(void) {
  fprintf(stderr,
          "usage: vtl-make-random-model --arch sd15|sd21|sd-turbo|tiny|pixel|taesd --out DIR\n"
          "                             [--seed N] [--fp16] [--tokenizer DIR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *arch_name = NULL, *out = NULL, *tok = VTL_DEFAULT_TOKENIZER;
  uint64_t seed = 0;
  int fp16 = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--fp16")) { fp16 = 1; continue; }
    if (!strcmp(o, "-h") || !strcmp(o, "--help")) usage();
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(o, "--arch")) arch_name = v;
    else if (!strcmp(o, "--out")) out = v;
    else if (!strcmp(o, "--tokenizer")) tok = v;
    else if (!strcmp(o, "--seed")) {
      char *end;
      seed = strtoull(v, &end, 10);
      if (*end || !*v) usage();
    } else usage();
  }
  if (!arch_name || !out) usage();
  if (!strcmp(arch_name, "taesd")) { /* a component folder: --taesd DIR */
    char tp[4096];
    if (mkdir(out, 0777) != 0 && errno != EEXIST) die("%s: %s", out, strerror(errno));
    snprintf(tp, sizeof tp, "%s/config.json", out);
    FILE *tf = fopen(tp, "w");
    if (!tf) die("%s: %s", tp, strerror(errno));
    fputs(taesd_config, tf);
    fclose(tf);
    tlist tl = {0};
    taesd_weights(&tl);
    snprintf(tp, sizeof tp, "%s/diffusion_pytorch_model.safetensors", out);
    write_safetensors(tp, &tl, seed, fp16);
    for (size_t i = 0; i < tl.n; i++) free(tl.t[i].name);
    free(tl.t);
    return 0;
  }
  const arch *a = NULL;
  for (size_t i = 0; i < sizeof arches / sizeof *arches; i++)
    if (!strcmp(arches[i].name, arch_name)) a = &arches[i];
  if (!a) {
    fprintf(stderr, "vtl-make-random-model: unknown --arch %s\n", arch_name);
    usage();
  }

  /* tokenizer: vocabulary size and special ids */
  char path[4096], from[4096];
  snprintf(from, sizeof from, "%s/vocab.json", tok);
  json_error_t jerr;
  json_t *vocab = json_load_file(from, 0, &jerr);
  if (!vocab || !json_is_object(vocab)) die("%s: not a vocab.json (%s)", from, jerr.text);
  int nvocab = (int)json_object_size(vocab);
  json_t *jb = json_object_get(vocab, "<|startoftext|>");
  json_t *je = json_object_get(vocab, "<|endoftext|>");
  if (!json_is_integer(jb) || !json_is_integer(je))
    die("%s: no <|startoftext|> / <|endoftext|>", from);
  int bos = (int)json_integer_value(jb), eos = (int)json_integer_value(je);
  json_t *v;
  const char *k;
  json_object_foreach(vocab, k, v) {
    if (json_integer_value(v) + 1 > nvocab) nvocab = (int)json_integer_value(v) + 1;
  }
  json_decref(vocab);

  if (mkdir(out, 0777) != 0 && errno != EEXIST) die("%s: %s", out, strerror(errno));
  snprintf(path, sizeof path, "%s/model_index.json", out);
  FILE *f = fopen(path, "w");
  if (!f) die("%s: %s", path, strerror(errno));
  const char *scls = !strcmp(a->sched, "pndm") ? "PNDMScheduler"
                     : !strcmp(a->sched, "euler_trailing") ? "EulerDiscreteScheduler"
                                                            : "DDIMScheduler";
  fprintf(f, model_index,
          a->pixel ? "VtlPixelDiffusionPipeline" : "StableDiffusionPipeline", scls,
          a->pixel ? "  \"coord_channels\": 2,\n" : "",
          a->pixel ? "[null, null]" : "[\"diffusers\", \"AutoencoderKL\"]");
  fclose(f);
  f = open_w(out, "scheduler", "scheduler_config.json", path);
  write_scheduler(f, a->sched);
  fclose(f);
  f = open_w(out, "unet", "config.json", path);
  write_unet_config(f, a);
  fclose(f);
  if (!a->pixel) {
    f = open_w(out, "vae", "config.json", path);
    write_vae_config(f, a);
    fclose(f);
  }
  f = open_w(out, "text_encoder", "config.json", path);
  write_clip_config(f, a, nvocab, bos, eos);
  fclose(f);
  static const char *tok_files[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                    "special_tokens_map.json"};
  fclose(open_w(out, "tokenizer", "vocab.json", path)); /* makes the folder */
  for (int i = 0; i < 4; i++) {
    snprintf(from, sizeof from, "%s/%s", tok, tok_files[i]);
    snprintf(path, sizeof path, "%s/tokenizer/%s", out, tok_files[i]);
    copy_file(from, path, i < 2);
  }

  tlist l = {0};
  unet_weights(&l, a);
  snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", out);
  write_safetensors(path, &l, seed, fp16);
  for (size_t i = 0; i < l.n; i++) free(l.t[i].name);
  l.n = 0;
  if (!a->pixel) {
    vae_weights(&l, a);
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", out);
    write_safetensors(path, &l, seed, fp16);
    for (size_t i = 0; i < l.n; i++) free(l.t[i].name);
    l.n = 0;
  }
  clip_weights(&l, a, nvocab);
  snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", out);
  write_safetensors(path, &l, seed, fp16);
  for (size_t i = 0; i < l.n; i++) free(l.t[i].name);
  free(l.t);
  return 0;
}
