/* op_norm.c — group norm (+ fused SiLU) and layer norm. Kernels:
 * kernels/norm.cl (one work-group per group / row, local size WGS). Both
 * backends run the kernels: normalisation is memory-bound. Contracts: ops.h. */
#include <math.h>

#include "ops.h"
#include "runtime_int.h"

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

/* Mean and biased variance in double, as the reference should be exact. */
static void stats(const float *x, size_t n, size_t stride, double *mean,
                  double *var) {
  double s = 0, v = 0;
  for (size_t i = 0; i < n; i++) s += x[i * stride];
  s /= (double)n;
  for (size_t i = 0; i < n; i++) v += (x[i * stride] - s) * (x[i * stride] - s);
  *mean = s;
  *var = v / (double)n;
}

void vtl_group_norm_ref(float *y, const float *x, const float *gamma,
                        const float *beta, int N, int C, int S, int G,
                        float eps, int silu) {
  int cpg = C / G;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < G; g++) {
      size_t base = ((size_t)n * C + (size_t)g * cpg) * S;
      double mean, var;
      stats(x + base, (size_t)cpg * S, 1, &mean, &var);
      double rstd = 1.0 / sqrt(var + eps);
      for (int c = 0; c < cpg; c++)
        for (int s = 0; s < S; s++) {
          size_t i = base + (size_t)c * S + s;
          float o = (float)((x[i] - mean) * rstd) * gamma[g * cpg + c] +
                    beta[g * cpg + c];
          y[i] = silu ? o / (1.0f + expf(-o)) : o;
        }
    }
}

int vtl_group_norm(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *gamma, const vtl_tensor *beta, int groups,
                   float eps, int silu) {
  VTL__REQUIRE(cl, x->ndim >= 2 && vtl_tensor_numel(y) == vtl_tensor_numel(x),
               "group_norm: needs x [N, C, ...] and y of its size");
  int64_t N = x->shape[0], C = x->shape[1];
  int64_t S = (int64_t)vtl_tensor_numel(x) / (N * C);
  VTL__REQUIRE(cl, groups > 0 && C % groups == 0,
               "group_norm: %d groups do not divide %lld channels", groups,
               (long long)C);
  VTL__REQUIRE(cl, (int64_t)vtl_tensor_numel(gamma) == C &&
                       (int64_t)vtl_tensor_numel(beta) == C,
               "group_norm: gamma and beta need %lld elements", (long long)C);
  VTL__REQUIRE(cl, vtl_tensor_numel(x) <= VTL__MAX_ELEMS, "group_norm: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_NORM, "group_norm", &k));
  cl_ulong yo = y->off, xo = x->off, go = gamma->off, bo = beta->off;
  cl_int ci = (cl_int)C, si = (cl_int)S, gi = groups, sl = silu != 0;
  VTL__TRY(vtl__args(cl, k, "group_norm", ARG_MEM(y), ARG(yo), ARG_MEM(x),
                     ARG(xo), ARG_MEM(gamma), ARG(go), ARG_MEM(beta), ARG(bo),
                     ARG(ci), ARG(si), ARG(gi), ARG(eps), ARG(sl), (size_t)0));
  size_t lws = vtl__wgs(cl), gws = (size_t)(N * groups) * lws;
  return vtl__launch(cl, k, "group_norm", 1, &gws, &lws);
}

void vtl_layer_norm_ref(float *y, const float *x, const float *gamma,
                        const float *beta, int R, int E, float eps) {
  for (int r = 0; r < R; r++) {
    double mean, var;
    stats(x + (size_t)r * E, (size_t)E, 1, &mean, &var);
    double rstd = 1.0 / sqrt(var + eps);
    for (int e = 0; e < E; e++) {
      size_t i = (size_t)r * E + e;
      y[i] = (float)((x[i] - mean) * rstd) * gamma[e] + beta[e];
    }
  }
}

int vtl_layer_norm(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *gamma, const vtl_tensor *beta, float eps) {
  int64_t E = x->shape[x->ndim - 1];
  int64_t R = (int64_t)vtl_tensor_numel(x) / E;
  VTL__REQUIRE(cl, vtl_tensor_numel(y) == vtl_tensor_numel(x) &&
                       (int64_t)vtl_tensor_numel(gamma) == E &&
                       (int64_t)vtl_tensor_numel(beta) == E,
               "layer_norm: needs y of x's size and gamma, beta [%lld]",
               (long long)E);
  VTL__REQUIRE(cl, vtl_tensor_numel(x) <= VTL__MAX_ELEMS, "layer_norm: too large");
  /* CPU devices: a row per work-item (no barriers); else a work-group per row */
  int rows = vtl_cl_is_host_cpu(cl);
  const char *name = rows ? "layer_norm_rows" : "layer_norm";
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_NORM, name, &k));
  cl_ulong yo = y->off, xo = x->off, go = gamma->off, bo = beta->off;
  cl_int ei = (cl_int)E, ri = (cl_int)R;
  VTL__TRY(vtl__args(cl, k, name, ARG_MEM(y), ARG(yo), ARG_MEM(x), ARG(xo),
                     ARG_MEM(gamma), ARG(go), ARG_MEM(beta), ARG(bo), ARG(ei),
                     ARG(eps), rows ? sizeof ri : (size_t)0, &ri, (size_t)0));
  size_t lws = vtl__wgs(cl), gws = rows ? (size_t)R : (size_t)R * lws;
  return vtl__launch(cl, k, name, 1, &gws, &lws);
}
