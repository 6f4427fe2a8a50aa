/* ae_common.h — what the two autoencoders (vae.c: AutoencoderKL, taesd.c:
 * AutoencoderTiny) share; internal to the engine (vtl__ names).
 *
 *   - a parameter table built while walking the architecture (the models'
 *     layer counts come from the config, so the table is not static as in
 *     clip.c): each entry is a slot (the vtl_tensor field that becomes a view
 *     of the model's one weight buffer), its diffusers key and its shape;
 *     vtl__ae_params_load reads every weight (vtl_weights_get_shaped),
 *     checks that none is left over, and uploads the arena once;
 *   - three pointwise kernels ops.h does not have, built as one small
 *     private program (vtl_cl_build, binary cache included):
 *       affine      y = (x + pre) * mul + post   TAESD's (x+1)/2 and x*2-1
 *       tanh_scale  y = tanh(x / m) * m           TAESD decoder input
 *       clamp       y = min(max(x, lo), hi)       the VAE's logvar
 */
#ifndef VTL_AE_COMMON_H
#define VTL_AE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "model_files.h"
#include "tensor.h"

typedef struct {
  vtl_tensor *slot;  /* the field the view goes to */
  char key[128];     /* diffusers name */
  int ndim;
  int64_t shape[4];
  size_t off, numel; /* in the arena, in elements */
} vtl__ae_param;

typedef struct {
  vtl__ae_param *p;
  size_t n, cap, total;
  int oom; /* an add failed to grow the table */
} vtl__ae_params;

/* Appends slot <- key (printf format) with shape[ndim]. */
void vtl__ae_param_add(vtl__ae_params *ps, vtl_tensor *slot, int ndim,
                       const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void vtl__ae_params_free(vtl__ae_params *ps);
/* Allocates *arena (labelled what), makes every slot a view of it, reads
 * every weight of w into it and checks that w has no other tensor. 0, or a
 * VTL_E* code with msg set (the arena is then released). */
int vtl__ae_params_load(vtl_cl *cl, vtl_weights *w, vtl__ae_params *ps,
                        vtl_tensor *arena, const char *what, char *msg,
                        size_t msglen);

typedef struct {
  vtl_cl *cl;
  cl_program prog;
  cl_kernel affine, tanh_scale, clamp;
} vtl__ae_kernels;

int vtl__ae_kernels_init(vtl_cl *cl, vtl__ae_kernels *k, char *msg,
                         size_t msglen);
void vtl__ae_kernels_free(vtl__ae_kernels *k); /* zeroed: no-op */

/* Element-wise over numel(x) == numel(y); y may be x. */
int vtl__ae_affine(vtl__ae_kernels *k, const vtl_tensor *y,
                   const vtl_tensor *x, float pre, float mul, float post);
int vtl__ae_tanh_scale(vtl__ae_kernels *k, const vtl_tensor *y,
                       const vtl_tensor *x, float m);
int vtl__ae_clamp(vtl__ae_kernels *k, const vtl_tensor *y,
                  const vtl_tensor *x, float lo, float hi);

/* Group norm, then the activation (fused when it is SiLU). */
int vtl__ae_norm_act(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                     const vtl_tensor *gamma, const vtl_tensor *beta,
                     int groups, float eps, vtl_act act);

#endif /* VTL_AE_COMMON_H */
