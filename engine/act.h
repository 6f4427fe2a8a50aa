/* act.h — the activation functions, shared by the model configs (which
 * name them) and the ops (which fuse them). No OpenCL here. */
#ifndef VTL_ACT_H
#define VTL_ACT_H

/* Activations; the values are elementwise.cl's ACT_*. Config names:
 * "silu"/"swish", "gelu", "quick_gelu" (CLIP), "relu" (TAESD). */
typedef enum {
  VTL_ACT_NONE = 0,
  VTL_ACT_SILU = 1,       /* x * sigmoid(x) */
  VTL_ACT_GELU = 2,       /* 0.5 x (1 + erf(x / sqrt 2)), the exact GELU */
  VTL_ACT_QUICK_GELU = 3, /* x * sigmoid(1.702 x), CLIP's */
  VTL_ACT_RELU = 4        /* max(x, 0), TAESD's */
} vtl_act;

#endif /* VTL_ACT_H */
