/* unet_blocks.c — the UNet's forward pass (contract and model: unet.h;
 * parameters: unet_int.h, loaded by unet.c).
 *
 * The layer functions (STYLE.md 11) are compositions of ops.h ops; the
 * transformer's proj_in / proj_out are one batched GEMM each that also does
 * the NCHW <-> [B, S, C] transpose (a 1x1 conv and a Linear are the same
 * product, only the weight's shape and where diffusers reshapes differ).
 *
 * Scratch tensors come from a per-call table (u_ctx): tmp() allocates from
 * the runtime's pool, drop() gives one back, and everything still held goes
 * back when the call ends, on success or failure. The queue is in order, so
 * a buffer given back may be handed out again at once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "runtime_int.h"
#include "unet_int.h"

#define U_SLOTS 256

typedef struct {
  vtl_unet *u;
  vtl_cl *cl;
  const vtl_unet_extra *ex;
  vtl_tensor slot[U_SLOTS];
  int rc; /* why the last tmp() failed */
} u_ctx;

static vtl_tensor *tmp(u_ctx *x, int ndim, const int64_t *shape) {
  for (int i = 0; i < U_SLOTS; i++)
    if (!x->slot[i].buf) {
      x->rc = vtl_tensor_alloc(x->cl, &x->slot[i], ndim, shape);
      return x->rc ? NULL : &x->slot[i];
    }
  x->rc = vtl__fail(x->cl, VTL_ENOMEM, "unet: more than %d live scratch "
                    "tensors", U_SLOTS);
  return NULL;
}

static void drop(u_ctx *x, vtl_tensor *t) {
  if (t) vtl_tensor_release(x->cl, t);
}

#define TMP(var, ctx, ndim, ...)                                             \
  vtl_tensor *var = tmp((ctx), (ndim), VTL_SHAPE(__VA_ARGS__));              \
  if (!var) return (ctx)->rc

static void tap(u_ctx *x, const char *name, const vtl_tensor *t) {
  if (x->ex && x->ex->tap) x->ex->tap(x->ex->tap_user, name, t);
}

/* y = act(group_norm(x)) with the config's activation (SiLU fused). */
static int norm_act(u_ctx *x, const vtl_tensor *y, const vtl_tensor *in,
                    const vtl_tensor *g, const vtl_tensor *b, float eps) {
  const vtl_unet_config *c = &x->u->cfg;
  int silu = c->act_fn == VTL_ACT_SILU;
  VTL__TRY(vtl_group_norm(x->cl, y, in, g, b, c->norm_num_groups, eps, silu));
  if (!silu && c->act_fn != VTL_ACT_NONE)
    VTL__TRY(vtl_activation(x->cl, y, y, c->act_fn));
  return 0;
}

/* ---- resnet ------------------------------------------------------------- */

/* y [B, Co, H, W] = ResnetBlock2D(in [B, Ci, H, W], temb_act [B, Tt]). */
static int resnet_forward(u_ctx *x, const vtl_tensor *y,
                          const vtl_tensor *in, const vtl_tensor *temb_act,
                          const u_resnet *r, float out_scale) {
  vtl_cl *cl = x->cl;
  const float eps = x->u->cfg.norm_eps;
  int64_t B = in->shape[0], H = in->shape[2], W = in->shape[3];
  VTL__REQUIRE(cl, in->ndim == 4 && in->shape[1] == r->ci,
               "unet: resnet %s expects %d channels, got %lld", r->c1_w.name,
               r->ci, (long long)in->shape[1]);
  TMP(a, x, 4, B, r->ci, H, W);
  VTL__TRY(norm_act(x, a, in, &r->n1_w, &r->n1_b, eps));
  VTL__TRY(vtl_conv2d(cl, y, a, &r->c1_w, &r->c1_b, 1, 1, VTL_ACT_NONE));
  drop(x, a);
  /* time_emb_proj(act(temb)): [B, Co] added before norm2, or [B, 2 Co]
   * scaling and shifting norm2's output (scale_shift) */
  TMP(tp, x, 2, B, r->scale_shift ? 2 * r->co : r->co);
  VTL__TRY(vtl_linear(cl, tp, temb_act, &r->t_w, &r->t_b, VTL_ACT_NONE));
  TMP(b, x, 4, B, r->co, H, W);
  if (r->scale_shift) {
    const vtl_unet_config *c = &x->u->cfg;
    VTL__TRY(vtl_group_norm(cl, b, y, &r->n2_w, &r->n2_b, c->norm_num_groups, eps, 0));
    VTL__TRY(vtl_scale_shift_act(cl, b, b, tp, c->act_fn));
  } else {
    VTL__TRY(vtl_tensor_reshape(tp, 4, VTL_SHAPE(B, r->co, 1, 1)));
    VTL__TRY(vtl_add(cl, y, y, tp));
    VTL__TRY(norm_act(x, b, y, &r->n2_w, &r->n2_b, eps));
  }
  drop(x, tp);
  TMP(h, x, 4, B, r->co, H, W);
  VTL__TRY(vtl_conv2d(cl, h, b, &r->c2_w, &r->c2_b, 1, 1, VTL_ACT_NONE));
  drop(x, b);
  if (r->shortcut) {
    VTL__TRY(vtl_conv2d(cl, y, in, &r->sc_w, &r->sc_b, 1, 0, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, y, y, h));
  } else {
    VTL__TRY(vtl_add(cl, y, in, h));
  }
  drop(x, h);
  if (out_scale != 1.0f) VTL__TRY(vtl_scale(cl, y, y, 1.0f / out_scale));
  return 0;
}

/* ---- transformer -------------------------------------------------------- */

/* One BasicTransformerBlock in place on t [B, S, C]; ctx [B, Te, Dc]. */
static int tblock_forward(u_ctx *x, const vtl_tensor *t,
                          const vtl_tensor *ctx, const u_tblock *w,
                          int heads) {
  vtl_cl *cl = x->cl;
  const float eps = 1e-5f; /* BasicTransformerBlock's LayerNorms */
  int64_t B = t->shape[0], S = t->shape[1], C = t->shape[2];
  int64_t Te = ctx->shape[1];
  TMP(h, x, 3, B, S, C);
  TMP(q, x, 3, B, S, C);
  TMP(a, x, 3, B, S, C);
  { /* self-attention */
    TMP(k, x, 3, B, S, C);
    TMP(v, x, 3, B, S, C);
    VTL__TRY(vtl_layer_norm(cl, h, t, &w->n1_w, &w->n1_b, eps));
    VTL__TRY(vtl_linear(cl, q, h, &w->q1, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_linear(cl, k, h, &w->k1, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_linear(cl, v, h, &w->v1, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_attention(cl, a, q, k, v, heads, 0));
    VTL__TRY(vtl_linear(cl, q, a, &w->o1_w, &w->o1_b, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, t, t, q));
    drop(x, k);
    drop(x, v);
  }
  { /* cross-attention over the context */
    TMP(k, x, 3, B, Te, C);
    TMP(v, x, 3, B, Te, C);
    VTL__TRY(vtl_layer_norm(cl, h, t, &w->n2_w, &w->n2_b, eps));
    VTL__TRY(vtl_linear(cl, q, h, &w->q2, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_linear(cl, k, ctx, &w->k2, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_linear(cl, v, ctx, &w->v2, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_attention(cl, a, q, k, v, heads, 0));
    VTL__TRY(vtl_linear(cl, q, a, &w->o2_w, &w->o2_b, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, t, t, q));
    drop(x, k);
    drop(x, v);
  }
  drop(x, a);
  { /* GEGLU feed-forward */
    VTL__TRY(vtl_layer_norm(cl, h, t, &w->n3_w, &w->n3_b, eps));
    TMP(f, x, 3, B, S, 8 * C);
    VTL__TRY(vtl_linear(cl, f, h, &w->ff1_w, &w->ff1_b, VTL_ACT_NONE));
    TMP(g, x, 3, B, S, 4 * C);
    VTL__TRY(vtl_geglu(cl, g, f));
    drop(x, f);
    VTL__TRY(vtl_linear(cl, q, g, &w->ff2_w, &w->ff2_b, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, t, t, q));
    drop(x, g);
  }
  drop(x, h);
  drop(x, q);
  return 0;
}

/* Transformer2DModel in place on h [B, C, H, W]; ctx [B, Te, Dc]. */
static int xformer_forward(u_ctx *x, const vtl_tensor *h,
                           const vtl_tensor *ctx, const u_xformer *w) {
  vtl_cl *cl = x->cl;
  int64_t B = h->shape[0], C = h->shape[1], S = h->shape[2] * h->shape[3];
  VTL__REQUIRE(cl, C == w->c, "unet: transformer of %d channels got %lld",
               w->c, (long long)C);
  VTL__REQUIRE(cl, ctx->ndim == 3 && ctx->shape[0] == B &&
                       ctx->shape[2] == x->u->cfg.cross_attention_dim,
               "unet: context must be [%lld, T, %d]", (long long)B,
               x->u->cfg.cross_attention_dim);
  VTL__REQUIRE(cl, B * S * C <= (int64_t)VTL__MAX_ELEMS && S <= INT32_MAX,
               "unet: transformer input too large");
  TMP(n, x, 4, B, C, h->shape[2], h->shape[3]);
  VTL__TRY(vtl_group_norm(cl, n, h, &w->norm_w, &w->norm_b,
                          x->u->cfg.norm_num_groups, 1e-6f, 0));
  TMP(t, x, 3, B, S, C);
  /* t_b [S, C] = n_b^T [C, S]^T x W^T + bias (per column) */
  vtl__epilogue ep_in = {.bias = &w->pin_b, .per_row = 0, .act = 0};
  VTL__TRY(vtl__sgemm(cl, (int)B, 1, 1, (int)S, (int)C, (int)C, 1.0f, n, 0,
                      (size_t)(C * S), (int)S, &w->pin_w, 0, 0, (int)C, 0.0f,
                      t, 0, (size_t)(S * C), (int)C, &ep_in));
  drop(x, n);
  for (int l = 0; l < w->layers; l++)
    VTL__TRY(tblock_forward(x, t, ctx, &w->tb[l], w->heads));
  TMP(o, x, 4, B, C, h->shape[2], h->shape[3]);
  /* o_b [C, S] = W [C, C] x t_b^T + bias (per row) */
  vtl__epilogue ep_out = {.bias = &w->pout_b, .per_row = 1, .act = 0};
  VTL__TRY(vtl__sgemm(cl, (int)B, 0, 1, (int)C, (int)S, (int)C, 1.0f,
                      &w->pout_w, 0, 0, (int)C, t, 0, (size_t)(S * C),
                      (int)C, 0.0f, o, 0, (size_t)(C * S), (int)S, &ep_out));
  drop(x, t);
  VTL__TRY(vtl_add(cl, h, h, o));
  drop(x, o);
  return 0;
}

/* ---- blocks ------------------------------------------------------------- */

typedef struct {
  vtl_tensor *t[VTL_MAX_LEVELS * 72];
  int n;
} u_stack;

/* A resnet of block b into a new tensor, then its transformer in place. */
static int res_attn(u_ctx *x, vtl_tensor **out, const vtl_tensor *in,
                    const vtl_tensor *temb_act, const vtl_tensor *ctx,
                    const u_block *b, int j, float scale) {
  const u_resnet *r = &b->res[j];
  TMP(y, x, 4, in->shape[0], r->co, in->shape[2], in->shape[3]);
  VTL__TRY(resnet_forward(x, y, in, temb_act, r, scale));
  if (b->attn) VTL__TRY(xformer_forward(x, y, ctx, &b->attn[j]));
  *out = y;
  return 0;
}

/* CrossAttnDownBlock2D / DownBlock2D: *cur in, every output pushed. */
static int down_forward(u_ctx *x, vtl_tensor **cur, u_stack *st,
                        const vtl_tensor *temb_act, const vtl_tensor *ctx,
                        const u_block *b) {
  const vtl_unet_config *c = &x->u->cfg;
  for (int j = 0; j < b->nres; j++) {
    vtl_tensor *y;
    VTL__TRY(res_attn(x, &y, *cur, temb_act, ctx, b, j, 1.0f));
    st->t[st->n++] = y;
    *cur = y;
  }
  if (b->sampler) {
    const vtl_tensor *in = *cur;
    int p = c->downsample_padding;
    /* padding 0: diffusers pads (0, 1, 0, 1) before the conv */
    int64_t OH = p ? (in->shape[2] + 2 * p - 3) / 2 + 1
                   : (in->shape[2] + 1 - 3) / 2 + 1;
    int64_t OW = p ? (in->shape[3] + 2 * p - 3) / 2 + 1
                   : (in->shape[3] + 1 - 3) / 2 + 1;
    TMP(d, x, 4, in->shape[0], in->shape[1], OH, OW);
    VTL__TRY(vtl_conv2d_ex(x->cl, d, in, &b->s_w, &b->s_b, 2, p, p,
                           VTL_ACT_NONE));
    st->t[st->n++] = d;
    *cur = d;
  }
  return 0;
}

/* y [N, C, OH, OW] = nearest interpolation of x [N, C, H, W] to that size
 * (PyTorch's "nearest": src = min(floor(dst * (in / out)), in - 1) with a
 * float scale). Only for sizes that are not 2x (odd latent sizes): on the
 * host, through blocking copies. */
static int upsample_nearest_host(vtl_cl *cl, const vtl_tensor *y,
                                 const vtl_tensor *x) {
  size_t NC = (size_t)x->shape[0] * x->shape[1];
  int64_t H = x->shape[2], W = x->shape[3], OH = y->shape[2],
          OW = y->shape[3];
  float *a = malloc(vtl_tensor_numel(x) * sizeof *a);
  float *b = malloc(vtl_tensor_numel(y) * sizeof *b);
  int rc = a && b ? vtl_tensor_read(cl, x, a)
                  : vtl__fail(cl, VTL_ENOMEM, "unet: out of memory");
  if (!rc) {
    float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    for (size_t p = 0; p < NC; p++)
      for (int64_t i = 0; i < OH; i++) {
        int64_t si = (int64_t)floorf((float)i * sh);
        if (si > H - 1) si = H - 1;
        for (int64_t j = 0; j < OW; j++) {
          int64_t sj = (int64_t)floorf((float)j * sw);
          if (sj > W - 1) sj = W - 1;
          b[(p * OH + i) * OW + j] = a[(p * H + si) * W + sj];
        }
      }
    rc = vtl_tensor_write(cl, y, b);
  }
  free(a);
  free(b);
  return rc;
}

/* CrossAttnUpBlock2D / UpBlock2D: *cur (owned, not on the stack) in and
 * out; pops one skip per resnet. */
static int up_forward(u_ctx *x, vtl_tensor **cur, u_stack *st,
                      const vtl_tensor *temb_act, const vtl_tensor *ctx,
                      const u_block *b) {
  vtl_cl *cl = x->cl;
  for (int j = 0; j < b->nres; j++) {
    VTL__REQUIRE(cl, st->n > 0, "unet: skip connections exhausted");
    vtl_tensor *s = st->t[--st->n], *h = *cur;
    VTL__REQUIRE(cl, s->shape[2] == h->shape[2] && s->shape[3] == h->shape[3],
                 "unet: skip %lldx%lld vs %lldx%lld", (long long)s->shape[2],
                 (long long)s->shape[3], (long long)h->shape[2],
                 (long long)h->shape[3]);
    TMP(cat, x, 4, h->shape[0], h->shape[1] + s->shape[1], h->shape[2],
        h->shape[3]);
    VTL__TRY(vtl_concat_channels(cl, cat, h, s));
    drop(x, s);
    drop(x, h);
    *cur = NULL;
    VTL__TRY(res_attn(x, cur, cat, temb_act, ctx, b, j, 1.0f));
    drop(x, cat);
  }
  if (b->sampler) {
    vtl_tensor *h = *cur;
    /* diffusers upsamples to the next skip's size (2x unless the sample
     * was not divisible by 2^(N-1)) */
    int64_t OH = 2 * h->shape[2], OW = 2 * h->shape[3];
    if (st->n > 0) {
      OH = st->t[st->n - 1]->shape[2];
      OW = st->t[st->n - 1]->shape[3];
    }
    TMP(up, x, 4, h->shape[0], h->shape[1], OH, OW);
    if (OH == 2 * h->shape[2] && OW == 2 * h->shape[3])
      VTL__TRY(vtl_upsample2x(cl, up, h));
    else
      VTL__TRY(upsample_nearest_host(cl, up, h));
    drop(x, h);
    *cur = NULL;
    TMP(y, x, 4, up->shape[0], up->shape[1], up->shape[2], up->shape[3]);
    VTL__TRY(vtl_conv2d(cl, y, up, &b->s_w, &b->s_b, 1, 1, VTL_ACT_NONE));
    drop(x, up);
    *cur = y;
  }
  return 0;
}

/* ---- forward ------------------------------------------------------------ */

/* temb [B, Tt] from the timesteps. */
static int time_forward(u_ctx *x, const vtl_tensor *temb, const float *ts,
                        int nts, int64_t B) {
  vtl_unet *u = x->u;
  vtl_cl *cl = x->cl;
  const vtl_unet_config *c = &u->cfg;
  int64_t C0 = c->block_out_channels[0];
  float tv[256];
  TMP(tt, x, 1, B);
  for (int64_t i = 0; i < B; i++) tv[i] = ts[nts == 1 ? 0 : i];
  VTL__TRY(vtl_tensor_write(cl, tt, tv));
  TMP(tp, x, 2, B, C0);
  VTL__TRY(vtl_timestep_embedding(cl, tp, tt, c->flip_sin_to_cos,
                                  c->freq_shift));
  drop(x, tt);
  tap(x, "time_proj", tp);
  const vtl_tensor *cond = x->ex ? x->ex->timestep_cond : NULL;
  if (cond && c->time_cond_proj_dim > 0) {
    TMP(cp, x, 2, B, C0);
    VTL__TRY(vtl_linear(cl, cp, cond, &u->cond_w, NULL, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, tp, tp, cp));
    drop(x, cp);
  }
  TMP(e1, x, 2, B, c->time_embed_dim);
  VTL__TRY(vtl_linear(cl, e1, tp, &u->te1_w, &u->te1_b, c->act_fn));
  drop(x, tp);
  VTL__TRY(vtl_linear(cl, temb, e1, &u->te2_w, &u->te2_b, VTL_ACT_NONE));
  const vtl_tensor *labels = x->ex ? x->ex->class_labels : NULL;
  if (labels) { /* TimestepEmbedding(P, Tt): its act is always SiLU */
    VTL__TRY(vtl_linear(cl, e1, labels, &u->ce1_w, &u->ce1_b, VTL_ACT_SILU));
    TMP(ce, x, 2, B, c->time_embed_dim);
    VTL__TRY(vtl_linear(cl, ce, e1, &u->ce2_w, &u->ce2_b, VTL_ACT_NONE));
    VTL__TRY(vtl_add(cl, temb, temb, ce));
    drop(x, ce);
  }
  drop(x, e1);
  tap(x, "time_embedding", temb);
  return 0;
}

static int shape_is(const vtl_tensor *t, int ndim, const int64_t *s) {
  if (t->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != s[i]) return 0;
  return 1;
}

static int unet_forward(u_ctx *x, const vtl_tensor *sample,
                        const float *ts, int nts, const vtl_tensor *ctx,
                        const vtl_tensor *out) {
  vtl_unet *u = x->u;
  vtl_cl *cl = x->cl;
  const vtl_unet_config *c = &u->cfg;
  const int N = c->num_blocks;
  int64_t B = sample->shape[0], H = sample->shape[2], W = sample->shape[3];
  int64_t C0 = c->block_out_channels[0];
  char name[32];

  TMP(temb, x, 2, B, c->time_embed_dim);
  VTL__TRY(time_forward(x, temb, ts, nts, B));
  TMP(temb_act, x, 2, B, c->time_embed_dim); /* every resnet's act(temb) */
  VTL__TRY(vtl_activation(cl, temb_act, temb, c->act_fn));
  drop(x, temb);

  u_stack st = {.n = 0};
  TMP(h0, x, 4, B, C0, H, W);
  VTL__TRY(vtl_conv2d(cl, h0, sample, &u->conv_in_w, &u->conv_in_b, 1,
                      (c->conv_in_kernel - 1) / 2, VTL_ACT_NONE));
  tap(x, "conv_in", h0);
  st.t[st.n++] = h0;
  vtl_tensor *cur = h0;
  for (int i = 0; i < N; i++) {
    VTL__TRY(down_forward(x, &cur, &st, temb_act, ctx, &u->down[i]));
    snprintf(name, sizeof name, "down_block_%d", i);
    tap(x, name, cur);
  }
  vtl_tensor *m0;
  VTL__TRY(res_attn(x, &m0, cur, temb_act, ctx, &u->mid, 0,
                    c->mid_block_scale_factor));
  TMP(m1, x, 4, B, m0->shape[1], m0->shape[2], m0->shape[3]);
  VTL__TRY(resnet_forward(x, m1, m0, temb_act, &u->mid.res[1],
                          c->mid_block_scale_factor));
  drop(x, m0);
  tap(x, "mid_block", m1);
  cur = m1;
  for (int i = 0; i < N; i++) {
    VTL__TRY(up_forward(x, &cur, &st, temb_act, ctx, &u->up[i]));
    snprintf(name, sizeof name, "up_block_%d", i);
    tap(x, name, cur);
  }
  VTL__REQUIRE(cl, st.n == 0, "unet: %d skip connections left over", st.n);
  TMP(n, x, 4, B, C0, H, W);
  VTL__TRY(norm_act(x, n, cur, &u->norm_out_w, &u->norm_out_b, c->norm_eps));
  return vtl_conv2d(cl, out, n, &u->conv_out_w, &u->conv_out_b, 1,
                    (c->conv_out_kernel - 1) / 2, VTL_ACT_NONE);
}

int vtl_unet_forward(vtl_unet *u, const vtl_tensor *sample,
                     const float *timesteps, int n_timesteps,
                     const vtl_tensor *context, const vtl_unet_extra *extra,
                     const vtl_tensor *out) {
  vtl_cl *cl = u->cl;
  const vtl_unet_config *c = &u->cfg;
  VTL__REQUIRE(cl, sample->ndim == 4 && sample->shape[1] == c->in_channels,
               "unet: sample must be [B, %d, H, W]", c->in_channels);
  int64_t B = sample->shape[0], H = sample->shape[2], W = sample->shape[3];
  VTL__REQUIRE(cl, B <= 256, "unet: batch %lld > 256", (long long)B);
  VTL__REQUIRE(cl, timesteps && (n_timesteps == 1 || n_timesteps == B),
               "unet: %d timesteps for a batch of %lld", n_timesteps,
               (long long)B);
  VTL__REQUIRE(cl, context->ndim == 3 && context->shape[0] == B &&
                       context->shape[2] == c->cross_attention_dim,
               "unet: context must be [%lld, T, %d]", (long long)B,
               c->cross_attention_dim);
  VTL__REQUIRE(cl, shape_is(out, 4, VTL_SHAPE(B, c->out_channels, H, W)),
               "unet: output must be [%lld, %d, %lld, %lld]", (long long)B,
               c->out_channels, (long long)H, (long long)W);
  const vtl_tensor *cond = extra ? extra->timestep_cond : NULL;
  VTL__REQUIRE(cl, !cond || c->time_cond_proj_dim == 0 ||
                       shape_is(cond, 2, VTL_SHAPE(B, c->time_cond_proj_dim)),
               "unet: timestep_cond must be [%lld, %d]", (long long)B,
               c->time_cond_proj_dim);
  const vtl_tensor *labels = extra ? extra->class_labels : NULL;
  VTL__REQUIRE(cl, labels || c->class_proj_dim == 0,
               "unet: class_embed_type \"projection\" needs class labels "
               "[%lld, %d]", (long long)B, c->class_proj_dim);
  VTL__REQUIRE(cl, !labels || c->class_proj_dim > 0,
               "unet: class labels given to a UNet without a class "
               "embedding");
  VTL__REQUIRE(cl, !labels ||
                       shape_is(labels, 2, VTL_SHAPE(B, c->class_proj_dim)),
               "unet: class labels must be [%lld, %d]", (long long)B,
               c->class_proj_dim);
  u_ctx *x = calloc(1, sizeof *x);
  if (!x) return vtl__fail(cl, VTL_ENOMEM, "unet: out of memory");
  x->u = u;
  x->cl = cl;
  x->ex = extra;
  int rc = unet_forward(x, sample, timesteps, n_timesteps, context, out);
  for (int i = 0; i < U_SLOTS; i++) vtl_tensor_release(cl, &x->slot[i]);
  free(x);
  return rc;
}
