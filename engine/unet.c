/* unet.c — loading a UNet2DConditionModel (contract: unet.h; the forward
 * pass is unet_blocks.c).
 *
 * Parameters (STYLE.md 12): every weight is a view into an arena. The list
 * of weights is built from the config alone (register_all: one entry per
 * diffusers key with the shape diffusers' constructors give it), then
 * packed, stored (f32 or f16) and uploaded by vtl__params_load (params.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet_int.h"
#include "vtl_error.h"

#define S1(a) 1, VTL_SHAPE(a)
#define S2(a, b) 2, VTL_SHAPE(a, b)
#define S4(a, b, c, d) 4, VTL_SHAPE(a, b, c, d)

static void reg_resnet(vtl__params *r, u_resnet *rs, const char *pre, int ci,
                       int co, int tt, bool scale_shift) {
  rs->ci = ci;
  rs->co = co;
  rs->scale_shift = scale_shift;
  int tco = scale_shift ? 2 * co : co; /* [scale | shift] or a bias */
  rs->shortcut = ci != co;
  vtl__param_add(r, &rs->n1_w, S1(ci), "%snorm1.weight", pre);
  vtl__param_add(r, &rs->n1_b, S1(ci), "%snorm1.bias", pre);
  vtl__param_add(r, &rs->c1_w, S4(co, ci, 3, 3), "%sconv1.weight", pre);
  vtl__param_add(r, &rs->c1_b, S1(co), "%sconv1.bias", pre);
  vtl__param_add(r, &rs->t_w, S2(tco, tt), "%stime_emb_proj.weight", pre);
  vtl__param_add(r, &rs->t_b, S1(tco), "%stime_emb_proj.bias", pre);
  vtl__param_add(r, &rs->n2_w, S1(co), "%snorm2.weight", pre);
  vtl__param_add(r, &rs->n2_b, S1(co), "%snorm2.bias", pre);
  vtl__param_add(r, &rs->c2_w, S4(co, co, 3, 3), "%sconv2.weight", pre);
  vtl__param_add(r, &rs->c2_b, S1(co), "%sconv2.bias", pre);
  if (rs->shortcut) {
    vtl__param_add(r, &rs->sc_w, S4(co, ci, 1, 1), "%sconv_shortcut.weight",
                   pre);
    vtl__param_add(r, &rs->sc_b, S1(co), "%sconv_shortcut.bias", pre);
  }
}

static void reg_xformer(vtl__params *r, u_xformer *x, const char *pre, int c,
                        int heads, int layers, int dc, bool linear) {
  x->c = c;
  x->heads = heads;
  x->layers = layers;
  vtl__param_add(r, &x->norm_w, S1(c), "%snorm.weight", pre);
  vtl__param_add(r, &x->norm_b, S1(c), "%snorm.bias", pre);
  if (linear) {
    vtl__param_add(r, &x->pin_w, S2(c, c), "%sproj_in.weight", pre);
    vtl__param_add(r, &x->pout_w, S2(c, c), "%sproj_out.weight", pre);
  } else {
    vtl__param_add(r, &x->pin_w, S4(c, c, 1, 1), "%sproj_in.weight", pre);
    vtl__param_add(r, &x->pout_w, S4(c, c, 1, 1), "%sproj_out.weight", pre);
  }
  vtl__param_add(r, &x->pin_b, S1(c), "%sproj_in.bias", pre);
  vtl__param_add(r, &x->pout_b, S1(c), "%sproj_out.bias", pre);
  for (int l = 0; l < layers; l++) {
    u_tblock *b = &x->tb[l];
    char p[160];
    snprintf(p, sizeof p, "%stransformer_blocks.%d.", pre, l);
    vtl__param_add(r, &b->n1_w, S1(c), "%snorm1.weight", p);
    vtl__param_add(r, &b->n1_b, S1(c), "%snorm1.bias", p);
    vtl__param_add(r, &b->q1, S2(c, c), "%sattn1.to_q.weight", p);
    vtl__param_add(r, &b->k1, S2(c, c), "%sattn1.to_k.weight", p);
    vtl__param_add(r, &b->v1, S2(c, c), "%sattn1.to_v.weight", p);
    vtl__param_add(r, &b->o1_w, S2(c, c), "%sattn1.to_out.0.weight", p);
    vtl__param_add(r, &b->o1_b, S1(c), "%sattn1.to_out.0.bias", p);
    vtl__param_add(r, &b->n2_w, S1(c), "%snorm2.weight", p);
    vtl__param_add(r, &b->n2_b, S1(c), "%snorm2.bias", p);
    vtl__param_add(r, &b->q2, S2(c, c), "%sattn2.to_q.weight", p);
    vtl__param_add(r, &b->k2, S2(c, dc), "%sattn2.to_k.weight", p);
    vtl__param_add(r, &b->v2, S2(c, dc), "%sattn2.to_v.weight", p);
    vtl__param_add(r, &b->o2_w, S2(c, c), "%sattn2.to_out.0.weight", p);
    vtl__param_add(r, &b->o2_b, S1(c), "%sattn2.to_out.0.bias", p);
    vtl__param_add(r, &b->n3_w, S1(c), "%snorm3.weight", p);
    vtl__param_add(r, &b->n3_b, S1(c), "%snorm3.bias", p);
    vtl__param_add(r, &b->ff1_w, S2(8 * (int64_t)c, c),
                   "%sff.net.0.proj.weight", p);
    vtl__param_add(r, &b->ff1_b, S1(8 * (int64_t)c), "%sff.net.0.proj.bias", p);
    vtl__param_add(r, &b->ff2_w, S2(c, 4 * (int64_t)c), "%sff.net.2.weight", p);
    vtl__param_add(r, &b->ff2_b, S1(c), "%sff.net.2.bias", p);
  }
}

/* Allocates a block's resnet and transformer arrays. */
static int block_alloc(u_block *b, int nres, int nattn, const int *layers) {
  b->nres = nres;
  b->res = calloc((size_t)nres, sizeof *b->res);
  if (!b->res) return VTL_ENOMEM;
  if (nattn) {
    b->attn = calloc((size_t)nattn, sizeof *b->attn);
    if (!b->attn) return VTL_ENOMEM;
    for (int j = 0; j < nattn; j++) {
      b->attn[j].tb = calloc((size_t)layers[j], sizeof *b->attn[j].tb);
      if (!b->attn[j].tb) return VTL_ENOMEM;
    }
  }
  return 0;
}

static void block_free(u_block *b, int nattn) {
  if (b->attn)
    for (int j = 0; j < nattn; j++) free(b->attn[j].tb);
  free(b->attn);
  free(b->res);
  memset(b, 0, sizeof *b);
}

/* Every parameter of the config's UNet, in a fixed order (the down
 * blocks, mid, up blocks as diffusers builds them). */
static int register_all(vtl_unet *u, vtl__params *r) {
  const vtl_unet_config *c = &u->cfg;
  const bool ss = c->time_scale_shift;
  const int N = c->num_blocks, tt = c->time_embed_dim, dc =
      c->cross_attention_dim, c0 = c->block_out_channels[0];
  const bool lin = c->use_linear_projection;
  int rc, layers[64];
  char pre[128];

  vtl__param_add(r, &u->conv_in_w, S4(c0, c->in_channels, c->conv_in_kernel,
                           c->conv_in_kernel), "conv_in.weight");
  vtl__param_add(r, &u->conv_in_b, S1(c0), "conv_in.bias");
  vtl__param_add(r, &u->te1_w, S2(tt, c0), "time_embedding.linear_1.weight");
  vtl__param_add(r, &u->te1_b, S1(tt), "time_embedding.linear_1.bias");
  vtl__param_add(r, &u->te2_w, S2(tt, tt), "time_embedding.linear_2.weight");
  vtl__param_add(r, &u->te2_b, S1(tt), "time_embedding.linear_2.bias");
  if (c->time_cond_proj_dim > 0)
    vtl__param_add(r, &u->cond_w, S2(c0, c->time_cond_proj_dim),
        "time_embedding.cond_proj.weight");
  if (c->class_proj_dim > 0) {
    vtl__param_add(r, &u->ce1_w, S2(tt, c->class_proj_dim),
        "class_embedding.linear_1.weight");
    vtl__param_add(r, &u->ce1_b, S1(tt), "class_embedding.linear_1.bias");
    vtl__param_add(r, &u->ce2_w, S2(tt, tt), "class_embedding.linear_2.weight");
    vtl__param_add(r, &u->ce2_b, S1(tt), "class_embedding.linear_2.bias");
  }

  for (int i = 0; i < N; i++) { /* down blocks */
    u_block *b = &u->down[i];
    int nres = c->layers_per_block[i], co = c->block_out_channels[i];
    int ci = i ? c->block_out_channels[i - 1] : c0;
    if (nres > 64) return VTL_EINVAL;
    for (int j = 0; j < nres; j++) layers[j] = c->transformer_layers[i];
    if ((rc = block_alloc(b, nres, c->down_attn[i] ? nres : 0, layers)))
      return rc;
    for (int j = 0; j < nres; j++) {
      snprintf(pre, sizeof pre, "down_blocks.%d.resnets.%d.", i, j);
      reg_resnet(r, &b->res[j], pre, j ? co : ci, co, tt, ss);
      if (b->attn) {
        snprintf(pre, sizeof pre, "down_blocks.%d.attentions.%d.", i, j);
        reg_xformer(r, &b->attn[j], pre, co, c->num_heads[i],
                    c->transformer_layers[i], dc, lin);
      }
    }
    if ((b->sampler = i < N - 1)) {
      vtl__param_add(r, &b->s_w, S4(co, co, 3, 3),
                     "down_blocks.%d.downsamplers.0.conv.weight", i);
      vtl__param_add(r, &b->s_b, S1(co),
                     "down_blocks.%d.downsamplers.0.conv.bias", i);
    }
  }

  { /* mid: resnet, transformer, resnet */
    int top = c->block_out_channels[N - 1];
    layers[0] = vtl_unet_mid_transformer_layers(c);
    if ((rc = block_alloc(&u->mid, 2, 1, layers))) return rc;
    reg_resnet(r, &u->mid.res[0], "mid_block.resnets.0.", top, top, tt, ss);
    reg_xformer(r, &u->mid.attn[0], "mid_block.attentions.0.", top,
                vtl_unet_mid_heads(c), layers[0], dc, lin);
    reg_resnet(r, &u->mid.res[1], "mid_block.resnets.1.", top, top, tt, ss);
  }

  int prev = c->block_out_channels[N - 1];
  for (int i = 0; i < N; i++) { /* up blocks, deepest first */
    u_block *b = &u->up[i];
    int nres = vtl_unet_up_layers(c, i), co = vtl_unet_up_channels(c, i);
    int in = c->block_out_channels[N - 1 - (i + 1 < N ? i + 1 : N - 1)];
    int tl = vtl_unet_up_transformer_layers(c, i);
    if (nres > 64) return VTL_EINVAL;
    for (int j = 0; j < nres; j++) layers[j] = tl;
    if ((rc = block_alloc(b, nres, c->up_attn[i] ? nres : 0, layers)))
      return rc;
    for (int j = 0; j < nres; j++) {
      int skip = j == nres - 1 ? in : co;
      snprintf(pre, sizeof pre, "up_blocks.%d.resnets.%d.", i, j);
      reg_resnet(r, &b->res[j], pre, (j ? co : prev) + skip, co, tt, ss);
      if (b->attn) {
        snprintf(pre, sizeof pre, "up_blocks.%d.attentions.%d.", i, j);
        reg_xformer(r, &b->attn[j], pre, co, vtl_unet_up_heads(c, i), tl, dc,
                    lin);
      }
    }
    if ((b->sampler = i < N - 1)) {
      vtl__param_add(r, &b->s_w, S4(co, co, 3, 3),
                     "up_blocks.%d.upsamplers.0.conv.weight", i);
      vtl__param_add(r, &b->s_b, S1(co),
                     "up_blocks.%d.upsamplers.0.conv.bias", i);
    }
    prev = co;
  }

  vtl__param_add(r, &u->norm_out_w, S1(c0), "conv_norm_out.weight");
  vtl__param_add(r, &u->norm_out_b, S1(c0), "conv_norm_out.bias");
  vtl__param_add(r, &u->conv_out_w, S4(c->out_channels, c0, c->conv_out_kernel,
                            c->conv_out_kernel), "conv_out.weight");
  vtl__param_add(r, &u->conv_out_b, S1(c->out_channels), "conv_out.bias");
  return r->err;
}

/* ---- load --------------------------------------------------------------- */

void vtl_unet_free(vtl_unet *u) {
  if (!u) return;
  vtl__arenas_free(u->cl, &u->arenas);
  for (int i = 0; i < VTL_MAX_LEVELS; i++) {
    block_free(&u->down[i], u->down[i].nres);
    block_free(&u->up[i], u->up[i].nres);
  }
  block_free(&u->mid, 1);
  free(u);
}

const vtl_unet_config *vtl_unet_config_of(const vtl_unet *u) {
  return &u->cfg;
}

size_t vtl_unet_param_count(const vtl_unet *u) { return u->nparams; }

int vtl_unet_load(vtl_cl *cl, vtl_model_files *m, vtl_unet **out, char *msg,
                  size_t msglen) {
  *out = NULL;
  const vtl_unet_config *cfg = vtl_model_files_unet_config(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_UNET);
  if (!cfg || !w) {
    snprintf(msg, msglen, "the model has no unet");
    return VTL_ENOENT;
  }
  if (cfg->num_blocks < 1 || cfg->num_blocks > VTL_MAX_LEVELS ||
      cfg->norm_num_groups < 1 || cfg->time_embed_dim < 1) {
    snprintf(msg, msglen, "unet config: %d blocks, %d groups, time "
             "embedding %d", cfg->num_blocks, cfg->norm_num_groups,
             cfg->time_embed_dim);
    return VTL_EINVAL;
  }
  for (int i = 0; i < cfg->num_blocks; i++)
    if (cfg->layers_per_block[i] < 1 || cfg->layers_per_block[i] > 63 ||
        cfg->transformer_layers[i] < 1 || cfg->num_heads[i] < 1) {
      snprintf(msg, msglen, "unet config: down block %d has %d layers, %d "
               "transformer layers, %d heads", i, cfg->layers_per_block[i],
               cfg->transformer_layers[i], cfg->num_heads[i]);
      return VTL_EINVAL;
    }
  vtl_unet *u = calloc(1, sizeof *u);
  if (!u) return VTL_ENOMEM;
  u->cl = cl;
  u->cfg = *cfg;

  vtl__params r = {0};
  int rc = register_all(u, &r);
  if (!rc) rc = vtl__params_load(cl, w, &r, &u->arenas, "unet", msg, msglen);
  else
    snprintf(msg, msglen, "unet: %s while listing the weights",
             rc == VTL_ENOMEM ? "out of memory" : "a name too long");
  if (rc) goto fail;
  for (size_t i = 0; i < r.n; i++) u->nparams += r.p[i].numel;
  vtl__params_free(&r);
  *out = u;
  return 0;
fail:
  vtl__params_free(&r);
  vtl_unet_free(u);
  return rc;
}
