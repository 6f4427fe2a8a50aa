/* taesd.c — AutoencoderTiny (contract and model: taesd.h). Weights: one
 * arena, registered by walking the config (params.h). */
#include "taesd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_common.h"
#include "ops.h"
#include "runtime_int.h"

/* <coder>.layers.<i>.conv.{0,2,4} (AutoencoderTinyBlock, skip = identity) */
typedef struct {
  vtl_tensor w[3], b[3]; /* [C, C, 3, 3], [C] */
} tiny_block;

/* One stage: the conv that opens (encoder) or closes (decoder) it, and its
 * blocks. */
typedef struct {
  vtl_tensor conv_w, conv_b; /* [Co, Ci, 3, 3], [Co] (b unused when absent) */
  int has_bias;
  tiny_block *blocks;        /* [nblocks] */
  int nblocks;
} tiny_stage;

struct vtl_taesd {
  vtl_cl *cl;                /* borrowed */
  vtl_taesd_config cfg;
  vtl__ae_kernels k;
  vtl__arenas arenas; /* own every weight */
  tiny_stage enc[VTL_MAX_LEVELS];
  vtl_tensor enc_out_w, enc_out_b;  /* [L, C, 3, 3], [L] the last layer */
  vtl_tensor dec_in_w, dec_in_b;    /* [C, L, 3, 3], [C] decoder.layers.0 */
  tiny_stage dec[VTL_MAX_LEVELS];
};

/* ---- parameters --------------------------------------------------------- */

static void add_conv(vtl__params *ps, vtl_tensor *w, vtl_tensor *b,
                     int co, int ci, const char *coder, int layer) {
  vtl__param_add(ps, w, 4, VTL_DIMS(co, ci, 3, 3), "%s.layers.%d.weight",
                    coder, layer);
  if (b)
    vtl__param_add(ps, b, 1, VTL_DIMS(co), "%s.layers.%d.bias", coder,
                      layer);
}

static void add_block(vtl__params *ps, tiny_block *bl, int C,
                      const char *coder, int layer) {
  for (int i = 0; i < 3; i++) {
    vtl__param_add(ps, &bl->w[i], 4, VTL_DIMS(C, C, 3, 3),
                      "%s.layers.%d.conv.%d.weight", coder, layer, 2 * i);
    vtl__param_add(ps, &bl->b[i], 1, VTL_DIMS(C),
                      "%s.layers.%d.conv.%d.bias", coder, layer, 2 * i);
  }
}

static void params_list(vtl_taesd *t, vtl__params *ps) {
  const vtl_taesd_config *c = &t->cfg;
  int layer = 0; /* nn.Sequential index */
  for (int i = 0; i < c->num_encoder_levels; i++) {
    int C = c->encoder_block_out_channels[i];
    tiny_stage *s = &t->enc[i];
    s->has_bias = i == 0;
    add_conv(ps, &s->conv_w, s->has_bias ? &s->conv_b : NULL, C,
             i == 0 ? c->in_channels : C, "encoder", layer++);
    for (int j = 0; j < s->nblocks; j++)
      add_block(ps, &s->blocks[j], C, "encoder", layer++);
  }
  add_conv(ps, &t->enc_out_w, &t->enc_out_b, c->latent_channels,
           c->encoder_block_out_channels[c->num_encoder_levels - 1],
           "encoder", layer);

  layer = 0;
  add_conv(ps, &t->dec_in_w, &t->dec_in_b, c->decoder_block_out_channels[0],
           c->latent_channels, "decoder", layer);
  layer += 2; /* conv, activation */
  for (int i = 0; i < c->num_decoder_levels; i++) {
    int C = c->decoder_block_out_channels[i];
    int last = i == c->num_decoder_levels - 1;
    tiny_stage *s = &t->dec[i];
    for (int j = 0; j < s->nblocks; j++)
      add_block(ps, &s->blocks[j], C, "decoder", layer++);
    if (!last) layer++; /* nn.Upsample */
    s->has_bias = last;
    add_conv(ps, &s->conv_w, last ? &s->conv_b : NULL,
             last ? c->out_channels : C, C, "decoder", layer++);
  }
}

/* ---- load --------------------------------------------------------------- */

static int all_equal(const int *v, int n) {
  for (int i = 1; i < n; i++)
    if (v[i] != v[0]) return 0;
  return 1;
}

int vtl_taesd_load(vtl_cl *cl, vtl_model_files *m, vtl_taesd **out,
                   char *msg, size_t msglen) {
  *out = NULL;
  const vtl_taesd_config *cfg = vtl_model_files_taesd_config(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_VAE);
  if (!cfg || !w) {
    snprintf(msg, msglen, "the model has no AutoencoderTiny");
    return VTL_ENOENT;
  }
  if (cfg->num_encoder_levels < 1 || cfg->num_decoder_levels < 1 ||
      cfg->num_encoder_levels > VTL_MAX_LEVELS ||
      cfg->num_decoder_levels > VTL_MAX_LEVELS) {
    snprintf(msg, msglen, "taesd config: %d encoder and %d decoder stages",
             cfg->num_encoder_levels, cfg->num_decoder_levels);
    return VTL_EINVAL;
  }
  if (cfg->upsampling_scaling_factor != 2) {
    snprintf(msg, msglen, "taesd config: upsampling_scaling_factor %d is not "
             "supported (the engine upsamples by 2)",
             cfg->upsampling_scaling_factor);
    return VTL_EUNSUPPORTED;
  }
  /* diffusers wires stage i's first conv / blocks with block_out_channels[i]
   * in and out: different counts per stage do not run there either */
  if (!all_equal(cfg->encoder_block_out_channels, cfg->num_encoder_levels) ||
      !all_equal(cfg->decoder_block_out_channels, cfg->num_decoder_levels)) {
    snprintf(msg, msglen, "taesd config: stages with different channel "
             "counts are not supported (AutoencoderTiny cannot run them)");
    return VTL_EUNSUPPORTED;
  }
  vtl_taesd *t = calloc(1, sizeof *t);
  if (!t) return VTL_ENOMEM;
  t->cl = cl;
  t->cfg = *cfg;
  int rc = 0;
  for (int i = 0; i < cfg->num_encoder_levels && !rc; i++) {
    t->enc[i].nblocks = cfg->num_encoder_blocks[i];
    t->enc[i].blocks =
        calloc((size_t)t->enc[i].nblocks + 1, sizeof(tiny_block));
    if (!t->enc[i].blocks) rc = VTL_ENOMEM;
  }
  for (int i = 0; i < cfg->num_decoder_levels && !rc; i++) {
    t->dec[i].nblocks = cfg->num_decoder_blocks[i];
    t->dec[i].blocks =
        calloc((size_t)t->dec[i].nblocks + 1, sizeof(tiny_block));
    if (!t->dec[i].blocks) rc = VTL_ENOMEM;
  }
  if (rc) snprintf(msg, msglen, "out of memory");
  vtl__params ps = {0};
  if (!rc) {
    params_list(t, &ps);
    rc = vtl__params_load(cl, w, &ps, &t->arenas, "taesd", msg, msglen);
  }
  vtl__params_free(&ps);
  if (!rc) rc = vtl__ae_kernels_init(cl, &t->k, msg, msglen);
  if (rc) {
    vtl_taesd_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void vtl_taesd_free(vtl_taesd *t) {
  if (!t) return;
  vtl__ae_kernels_free(&t->k);
  vtl__arenas_free(t->cl, &t->arenas);
  for (int i = 0; i < VTL_MAX_LEVELS; i++) {
    free(t->enc[i].blocks);
    free(t->dec[i].blocks);
  }
  free(t);
}

const vtl_taesd_config *vtl_taesd_config_of(const vtl_taesd *t) {
  return &t->cfg;
}

void vtl_taesd_latent_size(const vtl_taesd *t, int H, int W, int *h, int *w) {
  for (int i = 1; i < t->cfg.num_encoder_levels; i++) {
    H = (H - 1) / 2 + 1; /* kernel 3, pad 1, stride 2 */
    W = (W - 1) / 2 + 1;
  }
  *h = H;
  *w = W;
}

/* ---- layers ------------------------------------------------------------- */

typedef struct {
  vtl_tensor cur; /* the activation, owned */
} flow;

static int flow_to(vtl_taesd *t, flow *f, vtl_tensor *next, int64_t C,
                   int64_t H, int64_t W) {
  return vtl_tensor_alloc(t->cl, next, 4,
                          VTL_SHAPE(f->cur.shape[0], C, H, W));
}

static void flow_swap(vtl_taesd *t, flow *f, vtl_tensor *next) {
  vtl_tensor_release(t->cl, &f->cur);
  f->cur = *next;
  memset(next, 0, sizeof *next);
}

static int conv_step(vtl_taesd *t, flow *f, const vtl_tensor *w,
                     const vtl_tensor *b, int stride, vtl_act act) {
  int64_t H = (f->cur.shape[2] - 1) / stride + 1,
          W = (f->cur.shape[3] - 1) / stride + 1;
  vtl_tensor nx = {0};
  int rc = flow_to(t, f, &nx, w->shape[0], H, W);
  if (!rc) rc = vtl_conv2d(t->cl, &nx, &f->cur, w, b, stride, 1, act);
  if (rc) {
    vtl_tensor_release(t->cl, &nx);
    return rc;
  }
  flow_swap(t, f, &nx);
  return 0;
}

/* cur = relu(conv4(act(conv2(act(conv0(cur))))) + cur) */
static int block_step(vtl_taesd *t, flow *f, const tiny_block *bl) {
  vtl_cl *cl = t->cl;
  const vtl_tensor *x = &f->cur;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  vtl_tensor a = {0}, b = {0};
  int rc = vtl_tensor_alloc(cl, &a, 4, VTL_SHAPE(N, C, H, W));
  if (!rc) rc = vtl_tensor_alloc(cl, &b, 4, VTL_SHAPE(N, C, H, W));
  vtl_act act = t->cfg.act_fn;
  if (!rc) rc = vtl_conv2d(cl, &a, x, &bl->w[0], &bl->b[0], 1, 1, act);
  if (!rc) rc = vtl_conv2d(cl, &b, &a, &bl->w[1], &bl->b[1], 1, 1, act);
  if (!rc) rc = vtl_conv2d_res(cl, &a, &b, &bl->w[2], &bl->b[2], x, 1, 1,
                               VTL_ACT_RELU);
  vtl_tensor_release(cl, &b);
  if (rc) {
    vtl_tensor_release(cl, &a);
    return rc;
  }
  flow_swap(t, f, &a);
  return 0;
}

static int shape4_is(const vtl_tensor *t, int64_t n, int64_t c, int64_t h,
                     int64_t w) {
  return t->ndim == 4 && t->shape[0] == n && t->shape[1] == c &&
         t->shape[2] == h && t->shape[3] == w;
}

/* ---- encode / decode ---------------------------------------------------- */

static int encode_flow(vtl_taesd *t, flow *f, const vtl_tensor *image,
                       const vtl_tensor *latents) {
  const vtl_taesd_config *c = &t->cfg;
  VTL__TRY(vtl_tensor_alloc(t->cl, &f->cur, image->ndim, image->shape));
  VTL__TRY(vtl__ae_affine(&t->k, &f->cur, image, 1.0f, 0.5f, 0.0f));
  for (int i = 0; i < c->num_encoder_levels; i++) {
    const tiny_stage *s = &t->enc[i];
    VTL__TRY(conv_step(t, f, &s->conv_w, s->has_bias ? &s->conv_b : NULL,
                       i == 0 ? 1 : 2, VTL_ACT_NONE));
    for (int j = 0; j < s->nblocks; j++)
      VTL__TRY(block_step(t, f, &s->blocks[j]));
  }
  return vtl_conv2d(t->cl, latents, &f->cur, &t->enc_out_w, &t->enc_out_b, 1,
                    1, VTL_ACT_NONE);
}

int vtl_taesd_encode(vtl_taesd *t, const vtl_tensor *image,
                     const vtl_tensor *latents) {
  vtl_cl *cl = t->cl;
  const vtl_taesd_config *c = &t->cfg;
  VTL__REQUIRE(cl, image->ndim == 4 && image->shape[1] == c->in_channels,
               "taesd: image must be [N, %d, H, W]", c->in_channels);
  int h, w;
  vtl_taesd_latent_size(t, (int)image->shape[2], (int)image->shape[3], &h, &w);
  VTL__REQUIRE(cl, shape4_is(latents, image->shape[0], c->latent_channels, h,
                             w),
               "taesd: latents must be [%lld, %d, %d, %d]",
               (long long)image->shape[0], c->latent_channels, h, w);
  flow f = {0};
  int rc = encode_flow(t, &f, image, latents);
  vtl_tensor_release(cl, &f.cur);
  return rc;
}

static int decode_flow(vtl_taesd *t, flow *f, const vtl_tensor *latents,
                       const vtl_tensor *image) {
  const vtl_taesd_config *c = &t->cfg;
  VTL__TRY(vtl_tensor_alloc(t->cl, &f->cur, latents->ndim, latents->shape));
  VTL__TRY(vtl__ae_tanh_scale(&t->k, &f->cur, latents, 3.0f));
  VTL__TRY(conv_step(t, f, &t->dec_in_w, &t->dec_in_b, 1, c->act_fn));
  for (int i = 0; i < c->num_decoder_levels; i++) {
    const tiny_stage *s = &t->dec[i];
    int last = i == c->num_decoder_levels - 1;
    for (int j = 0; j < s->nblocks; j++)
      VTL__TRY(block_step(t, f, &s->blocks[j]));
    if (!last) {
      vtl_tensor up = {0};
      int rc = flow_to(t, f, &up, f->cur.shape[1], 2 * f->cur.shape[2],
                       2 * f->cur.shape[3]);
      if (!rc) rc = vtl_upsample2x(t->cl, &up, &f->cur);
      if (rc) {
        vtl_tensor_release(t->cl, &up);
        return rc;
      }
      flow_swap(t, f, &up);
      VTL__TRY(conv_step(t, f, &s->conv_w, NULL, 1, VTL_ACT_NONE));
    } else {
      VTL__TRY(vtl_conv2d(t->cl, image, &f->cur, &s->conv_w, &s->conv_b, 1, 1,
                          VTL_ACT_NONE));
    }
  }
  return vtl__ae_affine(&t->k, image, image, 0.0f, 2.0f, -1.0f);
}

int vtl_taesd_decode(vtl_taesd *t, const vtl_tensor *latents,
                     const vtl_tensor *image) {
  vtl_cl *cl = t->cl;
  const vtl_taesd_config *c = &t->cfg;
  VTL__REQUIRE(cl, latents->ndim == 4 &&
                       latents->shape[1] == c->latent_channels,
               "taesd: latents must be [N, %d, h, w]", c->latent_channels);
  int64_t s = (int64_t)1 << (c->num_decoder_levels - 1);
  int64_t N = latents->shape[0], H = latents->shape[2] * s,
          W = latents->shape[3] * s;
  VTL__REQUIRE(cl, shape4_is(image, N, c->out_channels, H, W),
               "taesd: image must be [%lld, %d, %lld, %lld]", (long long)N,
               c->out_channels, (long long)H, (long long)W);
  flow f = {0};
  int rc = decode_flow(t, &f, latents, image);
  vtl_tensor_release(cl, &f.cur);
  return rc;
}
