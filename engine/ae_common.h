/* ae_common.h — what the two autoencoders (vae.c: AutoencoderKL, taesd.c:
 * AutoencoderTiny) share; internal to the engine (vtl__ names).
 *
 *   - (the parameter table is params.h, shared with the other loaders)
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
#include "params.h"
#include "tensor.h"

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
