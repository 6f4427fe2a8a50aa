/* ae_common.c — private kernels of the autoencoders
 * (contract: ae_common.h). */
#include "ae_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "runtime_int.h"

/* ---- private kernels ---------------------------------------------------- */

static const char ae_source[] =
    "#pragma OPENCL FP_CONTRACT OFF\n"
    "__kernel void affine(__global float *y, ulong yo, __global const float "
    "*x, ulong xo, float pre, float mul, float post, int n) {\n"
    "  y += yo; x += xo;\n"
    "  for (int i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "    y[i] = (x[i] + pre) * mul + post;\n"
    "}\n"
    "__kernel void tanh_scale(__global float *y, ulong yo, __global const "
    "float *x, ulong xo, float m, int n) {\n"
    "  y += yo; x += xo;\n"
    "  for (int i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "    y[i] = tanh(x[i] / m) * m;\n"
    "}\n"
    "__kernel void clamp_range(__global float *y, ulong yo, __global const "
    "float *x, ulong xo, float lo, float hi, int n) {\n"
    "  y += yo; x += xo;\n"
    "  for (int i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "    y[i] = fmin(fmax(x[i], lo), hi);\n"
    "}\n";

int vtl__ae_kernels_init(vtl_cl *cl, vtl__ae_kernels *k, char *msg,
                         size_t msglen) {
  memset(k, 0, sizeof *k);
  k->cl = cl;
  int rc = vtl_cl_build(cl, "autoencoder", ae_source, "-cl-std=CL1.2",
                        &k->prog);
  if (rc) {
    snprintf(msg, msglen, "autoencoder kernels: %s", vtl_cl_errmsg(cl));
    return rc;
  }
  static const char *const names[3] = {"affine", "tanh_scale", "clamp_range"};
  cl_kernel *out[3] = {&k->affine, &k->tanh_scale, &k->clamp};
  for (int i = 0; i < 3; i++) {
    cl_int err;
    *out[i] = clCreateKernel(k->prog, names[i], &err);
    rc = vtl__check(cl, err, "clCreateKernel");
    if (rc) {
      snprintf(msg, msglen, "autoencoder kernel %s: %s", names[i],
               vtl_cl_errmsg(cl));
      vtl__ae_kernels_free(k);
      return rc;
    }
  }
  return 0;
}

void vtl__ae_kernels_free(vtl__ae_kernels *k) {
  if (k->affine) clReleaseKernel(k->affine);
  if (k->tanh_scale) clReleaseKernel(k->tanh_scale);
  if (k->clamp) clReleaseKernel(k->clamp);
  if (k->prog) clReleaseProgram(k->prog);
  memset(k, 0, sizeof *k);
}

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

/* Launches kernel ker (name) over n elements with (y, yo, x, xo, a, b?, n). */
static int pointwise(vtl__ae_kernels *k, cl_kernel ker, const char *name,
                     const vtl_tensor *y, const vtl_tensor *x, int nf,
                     const float *f) {
  vtl_cl *cl = k->cl;
  size_t n = vtl_tensor_numel(x);
  VTL__REQUIRE(cl, vtl_tensor_numel(y) == n, "%s: y and x differ in size",
               name);
  VTL__REQUIRE(cl, n <= VTL__MAX_ELEMS, "%s: too large", name);
  cl_ulong yo = y->off, xo = x->off;
  cl_int ni = (cl_int)n;
  float a = f[0], b = nf > 1 ? f[1] : 0, c = nf > 2 ? f[2] : 0;
  if (nf == 3)
    VTL__TRY(vtl__args(cl, ker, name, ARG_MEM(y), ARG(yo), ARG_MEM(x),
                       ARG(xo), ARG(a), ARG(b), ARG(c), ARG(ni), (size_t)0));
  else if (nf == 2)
    VTL__TRY(vtl__args(cl, ker, name, ARG_MEM(y), ARG(yo), ARG_MEM(x),
                       ARG(xo), ARG(a), ARG(b), ARG(ni), (size_t)0));
  else
    VTL__TRY(vtl__args(cl, ker, name, ARG_MEM(y), ARG(yo), ARG_MEM(x),
                       ARG(xo), ARG(a), ARG(ni), (size_t)0));
  size_t gws = vtl__gws(cl, n), lws = vtl__wgs(cl);
  return vtl__launch(cl, ker, name, 1, &gws, &lws);
}

int vtl__ae_affine(vtl__ae_kernels *k, const vtl_tensor *y,
                   const vtl_tensor *x, float pre, float mul, float post) {
  const float f[3] = {pre, mul, post};
  return pointwise(k, k->affine, "ae_affine", y, x, 3, f);
}

int vtl__ae_tanh_scale(vtl__ae_kernels *k, const vtl_tensor *y,
                       const vtl_tensor *x, float m) {
  const float f[1] = {m};
  return pointwise(k, k->tanh_scale, "ae_tanh_scale", y, x, 1, f);
}

int vtl__ae_clamp(vtl__ae_kernels *k, const vtl_tensor *y,
                  const vtl_tensor *x, float lo, float hi) {
  const float f[2] = {lo, hi};
  return pointwise(k, k->clamp, "ae_clamp", y, x, 2, f);
}

int vtl__ae_norm_act(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                     const vtl_tensor *gamma, const vtl_tensor *beta,
                     int groups, float eps, vtl_act act) {
  VTL__TRY(vtl_group_norm(cl, y, x, gamma, beta, groups, eps,
                          act == VTL_ACT_SILU));
  if (act == VTL_ACT_SILU || act == VTL_ACT_NONE) return 0;
  return vtl_activation(cl, y, y, act);
}
