/* unet_int.h — internal: the parameters of a loaded UNet (unet.c loads
 * them, unet_blocks.c runs them). Every vtl_tensor below is a view into one
 * of the model's arenas; the comment names its diffusers key (after the
 * block prefix) and shape.
 */
#ifndef VTL_UNET_INT_H
#define VTL_UNET_INT_H

#include <stdbool.h>

#include "params.h"
#include "unet.h"

/* ResnetBlock2D: <block>.resnets.<j>. */
typedef struct {
  int ci, co;               /* channels in, out */
  bool shortcut;            /* conv_shortcut present (ci != co) */
  vtl_tensor n1_w, n1_b;    /* [Ci] norm1 */
  vtl_tensor c1_w, c1_b;    /* [Co, Ci, 3, 3], [Co] conv1 */
  bool scale_shift;         /* resnet_time_scale_shift "scale_shift" */
  vtl_tensor t_w, t_b;      /* [Co, Tt], [Co] time_emb_proj; scale_shift:
                               [2 Co, Tt], [2 Co] (scale rows, then shift) */
  vtl_tensor n2_w, n2_b;    /* [Co] norm2 */
  vtl_tensor c2_w, c2_b;    /* [Co, Co, 3, 3], [Co] conv2 */
  vtl_tensor sc_w, sc_b;    /* [Co, Ci, 1, 1], [Co] conv_shortcut */
} u_resnet;

/* BasicTransformerBlock: <attn>.transformer_blocks.<l>. */
typedef struct {
  vtl_tensor n1_w, n1_b;             /* [C] norm1 */
  vtl_tensor q1, k1, v1;             /* [C, C] attn1.to_{q,k,v}.weight */
  vtl_tensor o1_w, o1_b;             /* [C, C], [C] attn1.to_out.0 */
  vtl_tensor n2_w, n2_b;             /* [C] norm2 */
  vtl_tensor q2;                     /* [C, C] attn2.to_q.weight */
  vtl_tensor k2, v2;                 /* [C, Dc] attn2.to_{k,v}.weight */
  vtl_tensor o2_w, o2_b;             /* [C, C], [C] attn2.to_out.0 */
  vtl_tensor n3_w, n3_b;             /* [C] norm3 */
  vtl_tensor ff1_w, ff1_b;           /* [8C, C], [8C] ff.net.0.proj (GEGLU) */
  vtl_tensor ff2_w, ff2_b;           /* [C, 4C], [C] ff.net.2 */
} u_tblock;

/* Transformer2DModel: <block>.attentions.<j>. */
typedef struct {
  int c, heads, layers;
  vtl_tensor norm_w, norm_b;  /* [C] norm (GroupNorm, eps 1e-6) */
  vtl_tensor pin_w, pin_b;    /* [C, C, 1, 1] or [C, C] (linear), [C] proj_in */
  vtl_tensor pout_w, pout_b;  /* the same, proj_out */
  u_tblock *tb;               /* [layers] */
} u_xformer;

/* A down, mid or up block. */
typedef struct {
  int nres;
  u_resnet *res;        /* [nres] */
  u_xformer *attn;      /* [nres] (mid: [1]); NULL: no attention */
  bool sampler;         /* downsamplers.0.conv / upsamplers.0.conv */
  vtl_tensor s_w, s_b;  /* [Co, Co, 3, 3], [Co] */
} u_block;

struct vtl_unet {
  vtl_cl *cl;                  /* borrowed */
  vtl_unet_config cfg;
  vtl__arenas arenas;          /* own every weight below */
  size_t nparams;              /* weights, in elements */
  vtl_tensor te1_w, te1_b;     /* [Tt, C0], [Tt] time_embedding.linear_1 */
  vtl_tensor te2_w, te2_b;     /* [Tt, Tt], [Tt] time_embedding.linear_2 */
  vtl_tensor cond_w;           /* [C0, cond] time_embedding.cond_proj.weight
                                  (time_cond_proj_dim > 0 only) */
  vtl_tensor ce1_w, ce1_b;     /* [Tt, P], [Tt] class_embedding.linear_1 */
  vtl_tensor ce2_w, ce2_b;     /* [Tt, Tt], [Tt] class_embedding.linear_2
                                  (class_proj_dim P > 0 only) */
  vtl_tensor conv_in_w, conv_in_b;   /* [C0, Cin, k, k], [C0] */
  vtl_tensor norm_out_w, norm_out_b; /* [C0] conv_norm_out */
  vtl_tensor conv_out_w, conv_out_b; /* [Cout, C0, k, k], [Cout] */
  u_block down[VTL_MAX_LEVELS], up[VTL_MAX_LEVELS], mid;
};

#endif /* VTL_UNET_INT_H */
