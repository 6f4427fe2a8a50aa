/* vae.c — AutoencoderKL (contract and model: vae.h).
 *
 * Parameters (STYLE.md 12): every weight is a view into one device buffer,
 * registered by walking the architecture of the config (ae_common.h); each
 * field names its diffusers key suffix and shape. The layer functions
 * (STYLE.md 11) compose ops.h ops; scratch tensors come from the pool and go
 * back as soon as the op that reads them is queued (the queue is in order).
 */
#include "vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_common.h"
#include "ops.h"
#include "runtime_int.h"

/* <prefix>.resnets.<j>.* (ResnetBlock2D without time embedding) */
typedef struct {
  int cin, cout;
  vtl_tensor n1_w, n1_b; /* [cin] norm1 */
  vtl_tensor c1_w, c1_b; /* [cout, cin, 3, 3], [cout] conv1 */
  vtl_tensor n2_w, n2_b; /* [cout] norm2 */
  vtl_tensor c2_w, c2_b; /* [cout, cout, 3, 3], [cout] conv2 */
  vtl_tensor sc_w, sc_b; /* [cout, cin, 1, 1], [cout] conv_shortcut (cin !=
                            cout only) */
} vae_resnet;

/* <prefix>.mid_block.attentions.0.* (single head over all pixels) */
typedef struct {
  vtl_tensor gn_w, gn_b;   /* [C] group_norm */
  vtl_tensor q_w, q_b;     /* [C, C], [C] to_q */
  vtl_tensor k_w, k_b;     /* [C, C], [C] to_k */
  vtl_tensor v_w, v_b;     /* [C, C], [C] to_v */
  vtl_tensor o_w, o_b;     /* [C, C], [C] to_out.0 */
} vae_attn;

/* encoder.* or decoder.* */
typedef struct {
  vtl_tensor in_w, in_b;   /* conv_in: encoder [C0, 3, 3, 3], decoder
                              [C(B-1), L, 3, 3] */
  vae_resnet *res;         /* level i's resnets at res[i * per_level ..] */
  int per_level;           /* R (encoder) or R + 1 (decoder) */
  vtl_tensor samp_w[VTL_MAX_LEVELS], samp_b[VTL_MAX_LEVELS];
                           /* [Ci, Ci, 3, 3], [Ci]: level i's
                              down_blocks.i.downsamplers.0.conv or
                              up_blocks.i.upsamplers.0.conv (but the last) */
  vae_resnet mid[2];       /* mid_block.resnets.{0,1} */
  vae_attn attn;           /* mid_block.attentions.0 */
  vtl_tensor nout_w, nout_b; /* conv_norm_out [C] */
  vtl_tensor out_w, out_b; /* conv_out: encoder [2L, C(B-1), 3, 3], decoder
                              [out_channels, C0, 3, 3] */
} vae_coder;

struct vtl_vae {
  vtl_cl *cl;              /* borrowed */
  vtl_vae_config cfg;
  vtl__ae_kernels k;
  vtl__arenas arenas;      /* own every weight */
  vae_coder enc, dec;
  vtl_tensor quant_w, quant_b;   /* [2L, 2L, 1, 1], [2L] quant_conv */
  vtl_tensor pquant_w, pquant_b; /* [L, L, 1, 1], [L] post_quant_conv */
};

/* ---- parameters --------------------------------------------------------- */

#define D1(a) 1, VTL_DIMS(a)
#define D2(a, b) 2, VTL_DIMS(a, b)
#define D4(a, b, c, d) 4, VTL_DIMS(a, b, c, d)

static void add_conv(vtl__params *ps, vtl_tensor *w, vtl_tensor *b,
                     int cout, int cin, int k, const char *name) {
  vtl__param_add(ps, w, D4(cout, cin, k, k), "%s.weight", name);
  vtl__param_add(ps, b, D1(cout), "%s.bias", name);
}

static void add_norm(vtl__params *ps, vtl_tensor *w, vtl_tensor *b, int c,
                     const char *name) {
  vtl__param_add(ps, w, D1(c), "%s.weight", name);
  vtl__param_add(ps, b, D1(c), "%s.bias", name);
}

static void add_resnet(vtl__params *ps, vae_resnet *r, int cin, int cout,
                       const char *prefix) {
  char n[160];
  r->cin = cin;
  r->cout = cout;
  snprintf(n, sizeof n, "%s.norm1", prefix);
  add_norm(ps, &r->n1_w, &r->n1_b, cin, n);
  snprintf(n, sizeof n, "%s.conv1", prefix);
  add_conv(ps, &r->c1_w, &r->c1_b, cout, cin, 3, n);
  snprintf(n, sizeof n, "%s.norm2", prefix);
  add_norm(ps, &r->n2_w, &r->n2_b, cout, n);
  snprintf(n, sizeof n, "%s.conv2", prefix);
  add_conv(ps, &r->c2_w, &r->c2_b, cout, cout, 3, n);
  if (cin != cout) {
    snprintf(n, sizeof n, "%s.conv_shortcut", prefix);
    add_conv(ps, &r->sc_w, &r->sc_b, cout, cin, 1, n);
  }
}

static void add_mid(vtl__params *ps, vae_coder *c, int C, int with_attn,
                    const char *coder) {
  char n[160];
  snprintf(n, sizeof n, "%s.mid_block.resnets.0", coder);
  add_resnet(ps, &c->mid[0], C, C, n);
  if (with_attn) {
    vae_attn *a = &c->attn;
    snprintf(n, sizeof n, "%s.mid_block.attentions.0.group_norm", coder);
    add_norm(ps, &a->gn_w, &a->gn_b, C, n);
    static const char *const lin[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    vtl_tensor *ws[4] = {&a->q_w, &a->k_w, &a->v_w, &a->o_w};
    vtl_tensor *bs[4] = {&a->q_b, &a->k_b, &a->v_b, &a->o_b};
    for (int i = 0; i < 4; i++) {
      vtl__param_add(ps, ws[i], D2(C, C),
                        "%s.mid_block.attentions.0.%s.weight", coder, lin[i]);
      vtl__param_add(ps, bs[i], D1(C), "%s.mid_block.attentions.0.%s.bias",
                        coder, lin[i]);
    }
  }
  snprintf(n, sizeof n, "%s.mid_block.resnets.1", coder);
  add_resnet(ps, &c->mid[1], C, C, n);
}

/* Every weight of the VAE, in the arena's order. */
static void params_list(vtl_vae *v, vtl__params *ps) {
  const vtl_vae_config *c = &v->cfg;
  int B = c->num_blocks, R = c->layers_per_block, L = c->latent_channels;
  const int *ch = c->block_out_channels;
  int last = ch[B - 1];
  char n[160];
  /* encoder */
  vae_coder *e = &v->enc;
  add_conv(ps, &e->in_w, &e->in_b, ch[0], c->in_channels, 3,
           "encoder.conv_in");
  int prev = ch[0];
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < R; j++) {
      snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
      add_resnet(ps, &e->res[i * R + j], j == 0 ? prev : ch[i], ch[i], n);
    }
    if (i < B - 1) {
      snprintf(n, sizeof n, "encoder.down_blocks.%d.downsamplers.0.conv", i);
      add_conv(ps, &e->samp_w[i], &e->samp_b[i], ch[i], ch[i], 3, n);
    }
    prev = ch[i];
  }
  add_mid(ps, e, last, c->mid_block_attention, "encoder");
  add_norm(ps, &e->nout_w, &e->nout_b, last, "encoder.conv_norm_out");
  add_conv(ps, &e->out_w, &e->out_b, 2 * L, last, 3, "encoder.conv_out");
  add_conv(ps, &v->quant_w, &v->quant_b, 2 * L, 2 * L, 1, "quant_conv");
  /* decoder */
  add_conv(ps, &v->pquant_w, &v->pquant_b, L, L, 1, "post_quant_conv");
  vae_coder *d = &v->dec;
  add_conv(ps, &d->in_w, &d->in_b, last, L, 3, "decoder.conv_in");
  add_mid(ps, d, last, c->mid_block_attention, "decoder");
  prev = last;
  for (int i = 0; i < B; i++) {
    int ci = ch[B - 1 - i];
    for (int j = 0; j <= R; j++) {
      snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
      add_resnet(ps, &d->res[i * (R + 1) + j], j == 0 ? prev : ci, ci, n);
    }
    if (i < B - 1) {
      snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
      add_conv(ps, &d->samp_w[i], &d->samp_b[i], ci, ci, 3, n);
    }
    prev = ci;
  }
  add_norm(ps, &d->nout_w, &d->nout_b, ch[0], "decoder.conv_norm_out");
  add_conv(ps, &d->out_w, &d->out_b, c->out_channels, ch[0], 3,
           "decoder.conv_out");
}

/* ---- load --------------------------------------------------------------- */

int vtl_vae_load(vtl_cl *cl, vtl_model_files *m, vtl_vae **out, char *msg,
                 size_t msglen) {
  *out = NULL;
  const vtl_vae_config *cfg = vtl_model_files_vae_config(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_VAE);
  if (!cfg || !w) {
    snprintf(msg, msglen, "the model has no AutoencoderKL VAE");
    return VTL_ENOENT;
  }
  int B = cfg->num_blocks, R = cfg->layers_per_block;
  if (B < 1 || B > VTL_MAX_LEVELS || R < 1 || cfg->latent_channels < 1 ||
      cfg->norm_num_groups < 1) {
    snprintf(msg, msglen, "vae config: %d levels, %d layers per block, %d "
             "latent channels, %d groups", B, R, cfg->latent_channels,
             cfg->norm_num_groups);
    return VTL_EINVAL;
  }
  for (int i = 0; i < B; i++)
    if (cfg->block_out_channels[i] < 1 ||
        cfg->block_out_channels[i] % cfg->norm_num_groups != 0) {
      snprintf(msg, msglen, "vae config: block %d has %d channels, not a "
               "multiple of %d groups", i, cfg->block_out_channels[i],
               cfg->norm_num_groups);
      return VTL_EINVAL;
    }
  vtl_vae *v = calloc(1, sizeof *v);
  if (!v) return VTL_ENOMEM;
  v->cl = cl;
  v->cfg = *cfg;
  v->enc.per_level = R;
  v->dec.per_level = R + 1;
  v->enc.res = calloc((size_t)B * R, sizeof *v->enc.res);
  v->dec.res = calloc((size_t)B * (R + 1), sizeof *v->dec.res);
  int rc = 0;
  if (!v->enc.res || !v->dec.res) {
    snprintf(msg, msglen, "out of memory");
    rc = VTL_ENOMEM;
  }
  vtl__params ps = {0};
  if (!rc) {
    params_list(v, &ps);
    rc = vtl__params_load(cl, w, &ps, &v->arenas, "vae", msg, msglen);
  }
  vtl__params_free(&ps);
  if (!rc) rc = vtl__ae_kernels_init(cl, &v->k, msg, msglen);
  if (rc) {
    vtl_vae_free(v);
    return rc;
  }
  *out = v;
  return 0;
}

void vtl_vae_free(vtl_vae *v) {
  if (!v) return;
  vtl__ae_kernels_free(&v->k);
  vtl__arenas_free(v->cl, &v->arenas);
  free(v->enc.res);
  free(v->dec.res);
  free(v);
}

const vtl_vae_config *vtl_vae_config_of(const vtl_vae *v) { return &v->cfg; }

void vtl_vae_latent_size(const vtl_vae *v, int H, int W, int *h, int *w) {
  for (int i = 0; i < v->cfg.num_blocks - 1; i++) {
    if (H < 2 || W < 2) {
      H = W = 0;
      break;
    }
    H = (H - 2) / 2 + 1; /* pad (0, 1), kernel 3, stride 2 */
    W = (W - 2) / 2 + 1;
  }
  *h = H;
  *w = W;
}

/* ---- layers ------------------------------------------------------------- */

static int tmp4(vtl_cl *cl, vtl_tensor *t, int64_t n, int64_t c, int64_t h,
                int64_t w) {
  return vtl_tensor_alloc(cl, t, 4, VTL_SHAPE(n, c, h, w));
}

/* y [N, cout, H, W] = resnet(x [N, cin, H, W]); y may not alias x. */
static int resnet_forward(vtl_vae *v, const vtl_tensor *y, const vtl_tensor *x,
                          const vae_resnet *r) {
  vtl_cl *cl = v->cl;
  const vtl_vae_config *c = &v->cfg;
  int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
  vtl_tensor h = {0}, t = {0};
  int rc = tmp4(cl, &h, N, r->cin, H, W);
  if (!rc) rc = tmp4(cl, &t, N, r->cout, H, W);
  if (!rc) rc = vtl__ae_norm_act(cl, &h, x, &r->n1_w, &r->n1_b,
                                 c->norm_num_groups, c->norm_eps, c->act_fn);
  if (!rc) rc = vtl_conv2d(cl, &t, &h, &r->c1_w, &r->c1_b, 1, 1, VTL_ACT_NONE);
  vtl_tensor_release(cl, &h);
  if (!rc) rc = tmp4(cl, &h, N, r->cout, H, W);
  if (!rc) rc = vtl__ae_norm_act(cl, &h, &t, &r->n2_w, &r->n2_b,
                                 c->norm_num_groups, c->norm_eps, c->act_fn);
  if (!rc) rc = vtl_conv2d(cl, &t, &h, &r->c2_w, &r->c2_b, 1, 1, VTL_ACT_NONE);
  if (!rc && r->cin != r->cout) {
    rc = vtl_conv2d(cl, y, x, &r->sc_w, &r->sc_b, 1, 0, VTL_ACT_NONE);
    if (!rc) rc = vtl_add(cl, y, y, &t);
  } else if (!rc) {
    rc = vtl_add(cl, y, x, &t);
  }
  vtl_tensor_release(cl, &h);
  vtl_tensor_release(cl, &t);
  return rc;
}

/* x [N, C, H, W] = x + to_out(attention(gn(x))), S = H W pixels as tokens:
 * per image, q [S, C] = gn(x)[C, S]^T to_q^T (+ bias), then one head. */
static int attn_forward(vtl_vae *v, const vtl_tensor *x, const vae_attn *a) {
  vtl_cl *cl = v->cl;
  const vtl_vae_config *c = &v->cfg;
  int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2] * x->shape[3];
  enum { HN, Q, K, V, O, NT };
  vtl_tensor t[NT];
  memset(t, 0, sizeof t);
  int rc = tmp4(cl, &t[HN], N, C, x->shape[2], x->shape[3]);
  for (int i = Q; i < NT && !rc; i++)
    rc = vtl_tensor_alloc(cl, &t[i], 3, VTL_SHAPE(N, S, C));
  if (!rc) rc = vtl_group_norm(cl, &t[HN], x, &a->gn_w, &a->gn_b,
                               c->norm_num_groups, c->norm_eps, 0);
  const vtl_tensor *ws[3] = {&a->q_w, &a->k_w, &a->v_w};
  const vtl_tensor *bs[3] = {&a->q_b, &a->k_b, &a->v_b};
  for (int n = 0; n < N && !rc; n++) {
    vtl_tensor hn, pn;
    rc = vtl_tensor_view(&hn, &t[HN], (size_t)(n * C * S), 2,
                         VTL_SHAPE(C, S));
    for (int i = 0; i < 3 && !rc; i++) {
      rc = vtl_tensor_view(&pn, &t[Q + i], (size_t)(n * S * C), 2,
                           VTL_SHAPE(S, C));
      if (!rc) rc = vtl_gemm(cl, &pn, &hn, ws[i], 1, 1, 1.0f, 0.0f);
    }
  }
  for (int i = 0; i < 3 && !rc; i++) {
    vtl_tensor b;
    rc = vtl_tensor_view(&b, bs[i], 0, 3, VTL_SHAPE(1, 1, C));
    if (!rc) rc = vtl_add(cl, &t[Q + i], &t[Q + i], &b);
  }
  if (!rc) rc = vtl_attention(cl, &t[O], &t[Q], &t[K], &t[V], 1, 0);
  /* to_out, back to [N, C, S]: y_n [C, S] = o_w [C, C] o_n [S, C]^T */
  for (int n = 0; n < N && !rc; n++) {
    vtl_tensor yn, on;
    rc = vtl_tensor_view(&yn, &t[HN], (size_t)(n * C * S), 2,
                         VTL_SHAPE(C, S));
    if (!rc) rc = vtl_tensor_view(&on, &t[O], (size_t)(n * S * C), 2,
                                  VTL_SHAPE(S, C));
    if (!rc) rc = vtl_gemm(cl, &yn, &a->o_w, &on, 0, 1, 1.0f, 0.0f);
  }
  if (!rc) {
    vtl_tensor b;
    rc = vtl_tensor_view(&b, &a->o_b, 0, 4, VTL_SHAPE(1, C, 1, 1));
    if (!rc) rc = vtl_add(cl, &t[HN], &t[HN], &b);
  }
  if (!rc) rc = vtl_add(cl, x, &t[HN], x);
  for (int i = 0; i < NT; i++) vtl_tensor_release(cl, &t[i]);
  return rc;
}

/* Ping-pong state of a forward pass: cur holds the activation. */
typedef struct {
  vtl_tensor cur;
} flow;

/* A new [N, C, H, W] tensor (N of f->cur) for the step after f->cur; the
 * caller fills it and hands it to flow_swap. */
static int flow_next(vtl_cl *cl, flow *f, vtl_tensor *next, int64_t C,
                     int64_t H, int64_t W) {
  return tmp4(cl, next, f->cur.shape[0], C, H, W);
}

static void flow_swap(vtl_cl *cl, flow *f, vtl_tensor *next) {
  vtl_tensor_release(cl, &f->cur);
  f->cur = *next;
  memset(next, 0, sizeof *next);
}

static int resnet_step(vtl_vae *v, flow *f, const vae_resnet *r) {
  vtl_tensor nx = {0};
  int rc = flow_next(v->cl, f, &nx, r->cout, f->cur.shape[2],
                     f->cur.shape[3]);
  if (!rc) rc = resnet_forward(v, &nx, &f->cur, r);
  if (rc) {
    vtl_tensor_release(v->cl, &nx);
    return rc;
  }
  flow_swap(v->cl, f, &nx);
  return 0;
}

/* conv (k x k, stride, pad_t = pad_l = pad) to C channels at OH x OW. */
static int conv_step(vtl_vae *v, flow *f, const vtl_tensor *w,
                     const vtl_tensor *b, int stride, int pad, int64_t OH,
                     int64_t OW, vtl_act act) {
  vtl_tensor nx = {0};
  int rc = flow_next(v->cl, f, &nx, w->shape[0], OH, OW);
  if (!rc) rc = vtl_conv2d_ex(v->cl, &nx, &f->cur, w, b, stride, pad, pad, act);
  if (rc) {
    vtl_tensor_release(v->cl, &nx);
    return rc;
  }
  flow_swap(v->cl, f, &nx);
  return 0;
}

static int mid_forward(vtl_vae *v, flow *f, const vae_coder *c) {
  VTL__TRY(resnet_step(v, f, &c->mid[0]));
  if (v->cfg.mid_block_attention) VTL__TRY(attn_forward(v, &f->cur, &c->attn));
  return resnet_step(v, f, &c->mid[1]);
}

/* conv_out(silu(gn(x))) into y. */
static int out_forward(vtl_vae *v, flow *f, const vae_coder *c,
                       const vtl_tensor *y) {
  vtl_cl *cl = v->cl;
  const vtl_tensor *x = &f->cur;
  vtl_tensor h = {0};
  int rc = tmp4(cl, &h, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
  if (!rc) rc = vtl_group_norm(cl, &h, x, &c->nout_w, &c->nout_b,
                               v->cfg.norm_num_groups, v->cfg.norm_eps, 1);
  if (!rc) rc = vtl_conv2d(cl, y, &h, &c->out_w, &c->out_b, 1, 1,
                           VTL_ACT_NONE);
  vtl_tensor_release(cl, &h);
  return rc;
}

static int shape4_is(const vtl_tensor *t, int64_t n, int64_t c, int64_t h,
                     int64_t w) {
  return t->ndim == 4 && t->shape[0] == n && t->shape[1] == c &&
         t->shape[2] == h && t->shape[3] == w;
}

/* ---- encode ------------------------------------------------------------- */

static int encode_flow(vtl_vae *v, flow *f, const vtl_tensor *image,
                       const vtl_tensor *moments) {
  const vtl_vae_config *c = &v->cfg;
  const vae_coder *e = &v->enc;
  int64_t H = image->shape[2], W = image->shape[3];
  /* conv_in reads the caller's image: the first step writes a new tensor */
  VTL__TRY(tmp4(v->cl, &f->cur, image->shape[0], c->block_out_channels[0], H,
                W));
  VTL__TRY(vtl_conv2d(v->cl, &f->cur, image, &e->in_w, &e->in_b, 1, 1,
                      VTL_ACT_NONE));
  for (int i = 0; i < c->num_blocks; i++) {
    for (int j = 0; j < e->per_level; j++)
      VTL__TRY(resnet_step(v, f, &e->res[i * e->per_level + j]));
    if (i < c->num_blocks - 1) {
      H = (H - 2) / 2 + 1;
      W = (W - 2) / 2 + 1;
      VTL__TRY(conv_step(v, f, &e->samp_w[i], &e->samp_b[i], 2, 0, H, W,
                         VTL_ACT_NONE));
    }
  }
  VTL__TRY(mid_forward(v, f, e));
  vtl_tensor z = {0};
  int rc = flow_next(v->cl, f, &z, 2 * c->latent_channels, H, W);
  if (!rc) rc = out_forward(v, f, e, &z);
  if (!rc) flow_swap(v->cl, f, &z);
  vtl_tensor_release(v->cl, &z);
  if (rc) return rc;
  return vtl_conv2d(v->cl, moments, &f->cur, &v->quant_w, &v->quant_b, 1, 0,
                    VTL_ACT_NONE);
}

/* dst [N, L, h, w] = src[:, first : first + L] of src [N, 2L, h, w]. */
static int copy_half(vtl_cl *cl, const vtl_tensor *dst, const vtl_tensor *src,
                     int first) {
  size_t N = (size_t)src->shape[0], L = (size_t)dst->shape[1],
         hw = (size_t)(src->shape[2] * src->shape[3]);
  for (size_t n = 0; n < N; n++) {
    cl_int err = clEnqueueCopyBuffer(
        vtl__queue(cl), src->buf, dst->buf,
        (src->off + (n * 2 * L + (size_t)first) * hw) * sizeof(float),
        (dst->off + n * L * hw) * sizeof(float), L * hw * sizeof(float), 0,
        NULL, NULL);
    VTL__TRY(vtl__check(cl, err, "clEnqueueCopyBuffer"));
  }
  return 0;
}

int vtl_vae_encode(vtl_vae *v, const vtl_tensor *image,
                   const vtl_tensor *mean, const vtl_tensor *logvar) {
  vtl_cl *cl = v->cl;
  const vtl_vae_config *c = &v->cfg;
  VTL__REQUIRE(cl, image->ndim == 4 && image->shape[1] == c->in_channels,
               "vae: image must be [N, %d, H, W]", c->in_channels);
  int64_t N = image->shape[0], L = c->latent_channels;
  int h, w;
  vtl_vae_latent_size(v, (int)image->shape[2], (int)image->shape[3], &h, &w);
  VTL__REQUIRE(cl, h >= 1 && w >= 1, "vae: image %lld x %lld too small for "
               "%d levels", (long long)image->shape[2],
               (long long)image->shape[3], c->num_blocks);
  VTL__REQUIRE(cl, !mean || shape4_is(mean, N, L, h, w),
               "vae: mean must be [%lld, %lld, %d, %d]", (long long)N,
               (long long)L, h, w);
  VTL__REQUIRE(cl, !logvar || shape4_is(logvar, N, L, h, w),
               "vae: logvar must be [%lld, %lld, %d, %d]", (long long)N,
               (long long)L, h, w);
  flow f = {0};
  vtl_tensor mom = {0};
  int rc = tmp4(cl, &mom, N, 2 * L, h, w);
  if (!rc) rc = encode_flow(v, &f, image, &mom);
  vtl_tensor_release(cl, &f.cur);
  if (!rc && mean) rc = copy_half(cl, mean, &mom, 0);
  if (!rc && logvar) rc = copy_half(cl, logvar, &mom, (int)L);
  if (!rc && logvar) rc = vtl__ae_clamp(&v->k, logvar, logvar, -30.0f, 20.0f);
  vtl_tensor_release(cl, &mom);
  return rc;
}

/* ---- decode ------------------------------------------------------------- */

static int decode_flow(vtl_vae *v, flow *f, const vtl_tensor *z,
                       const vtl_tensor *image) {
  const vtl_vae_config *c = &v->cfg;
  const vae_coder *d = &v->dec;
  int B = c->num_blocks;
  int64_t H = z->shape[2], W = z->shape[3];
  VTL__TRY(tmp4(v->cl, &f->cur, z->shape[0], c->latent_channels, H, W));
  VTL__TRY(vtl_conv2d(v->cl, &f->cur, z, &v->pquant_w, &v->pquant_b, 1, 0,
                      VTL_ACT_NONE));
  VTL__TRY(conv_step(v, f, &d->in_w, &d->in_b, 1, 1, H, W, VTL_ACT_NONE));
  VTL__TRY(mid_forward(v, f, d));
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < d->per_level; j++)
      VTL__TRY(resnet_step(v, f, &d->res[i * d->per_level + j]));
    if (i < B - 1) {
      H *= 2;
      W *= 2;
      vtl_tensor up = {0};
      int rc = flow_next(v->cl, f, &up, f->cur.shape[1], H, W);
      if (!rc) rc = vtl_upsample2x(v->cl, &up, &f->cur);
      if (rc) {
        vtl_tensor_release(v->cl, &up);
        return rc;
      }
      flow_swap(v->cl, f, &up);
      VTL__TRY(conv_step(v, f, &d->samp_w[i], &d->samp_b[i], 1, 1, H, W,
                         VTL_ACT_NONE));
    }
  }
  return out_forward(v, f, d, image);
}

int vtl_vae_decode(vtl_vae *v, const vtl_tensor *latents,
                   const vtl_tensor *image) {
  vtl_cl *cl = v->cl;
  const vtl_vae_config *c = &v->cfg;
  VTL__REQUIRE(cl, latents->ndim == 4 &&
                       latents->shape[1] == c->latent_channels,
               "vae: latents must be [N, %d, h, w]", c->latent_channels);
  int64_t f2 = (int64_t)1 << (c->num_blocks - 1);
  int64_t N = latents->shape[0], H = latents->shape[2] * f2,
          W = latents->shape[3] * f2;
  VTL__REQUIRE(cl, shape4_is(image, N, c->out_channels, H, W),
               "vae: image must be [%lld, %d, %lld, %lld]", (long long)N,
               c->out_channels, (long long)H, (long long)W);
  flow f = {0};
  int rc = decode_flow(v, &f, latents, image);
  vtl_tensor_release(cl, &f.cur);
  return rc;
}
