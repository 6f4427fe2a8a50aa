/* op_gemm.c — GEMM and linear layers, and vtl__sgemm: the one place where a
 * matrix product goes to CLBlast (VTL_BACKEND_CL) or to OpenBLAS on mapped
 * buffers (VTL_BACKEND_HOST). conv2d and attention come through here too.
 * An f16 operand (a stored weight, runtime.h "Weight storage") is widened
 * into pooled f32 scratch by vtl__widen before the product; the product
 * itself is always f32.
 *
 * Why two backends (NOTES.md, measured on PoCL, 2 cores): CLBlast's SGEMM
 * untuned runs at ~12 GFLOP/s, cblas_sgemm on the zero-copy mapped
 * CL_MEM_ALLOC_HOST_PTR buffers at 125-150. Mapping such a buffer is free on
 * a CPU device; on a GPU it would copy, so AUTO never picks HOST there. */
#include "ops.h"
#include "runtime_int.h"

#include <cblas.h>
#include <clblast_c.h>
#include <math.h>
#include <string.h>

static int clblast_fail(vtl_cl *cl, CLBlastStatusCode st) {
  if (st > -1000) return vtl__check(cl, (cl_int)st, "CLBlastSgemm");
  return vtl__fail(cl, st == CLBlastInsufficientMemoryA ||
                           st == CLBlastInsufficientMemoryB ||
                           st == CLBlastInsufficientMemoryC
                       ? VTL_EINVAL : VTL_EIO,
                   "CLBlastSgemm: CLBlast status %d", (int)st);
}

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

int vtl__widen(vtl_cl *cl, const vtl_tensor **t, vtl_tensor *scratch) {
  memset(scratch, 0, sizeof *scratch);
  const vtl_tensor *h = *t;
  if (h->type == VTL_F32) return 0;
  size_t n = vtl_tensor_numel(h);
  VTL__REQUIRE(cl, h->type == VTL_F16 && n <= VTL__MAX_ELEMS,
               "widen: '%s' is neither f32 nor f16, or too large", h->name);
  VTL__TRY(vtl_tensor_alloc(cl, scratch, h->ndim, h->shape));
  cl_kernel k;
  cl_ulong yo = scratch->off, xo = h->off;
  cl_int ni = (cl_int)n;
  int rc = vtl__kernel(cl, VTL_PROG_CONVERT, "half_to_float", &k);
  if (rc == 0)
    rc = vtl__args(cl, k, "half_to_float", ARG_MEM(scratch), ARG(yo),
                   ARG_MEM(h), ARG(xo), ARG(ni), (size_t)0);
  size_t gws = vtl__gws(cl, n), lws = vtl__wgs(cl);
  if (rc == 0) rc = vtl__launch(cl, k, "half_to_float", 1, &gws, &lws);
  if (rc) {
    vtl_tensor_release(cl, scratch);
    return rc;
  }
  *t = scratch;
  return 0;
}

static int sgemm_f32(vtl_cl *cl, int batch, int ta, int tb, int m, int n,
                     int k, float alpha, const vtl_tensor *a, size_t a_off,
                     size_t a_stride, int lda, const vtl_tensor *b,
                     size_t b_off, size_t b_stride, int ldb, float beta,
                     const vtl_tensor *c, size_t c_off, size_t c_stride,
                     int ldc, const vtl__epilogue *ep) {
  if (vtl_cl_backend(cl) == VTL_BACKEND_HOST) {
    const vtl_tensor *ts[5] = {a, b, c, ep ? ep->bias : NULL,
                               ep ? ep->res : NULL};
    float *p[5];
    vtl__mapping map;
    VTL__TRY(vtl__map(cl, &map, 5, ts, p));
    double t0 = vtl__now();
    for (int i = 0; i < batch; i++) {
      float *ci = p[2] + c_off + i * c_stride;
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                  tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                  p[0] + a_off + i * a_stride, lda,
                  p[1] + b_off + i * b_stride, ldb, beta, ci, ldc);
      if (ep)
        vtl__epilogue_host(ci, ldc, m, n, p[3],
                           p[4] ? p[4] + c_off + i * c_stride : NULL, ep);
    }
    vtl__profile_host(cl, "sgemm (openblas)", vtl__now() - t0);
    return vtl__unmap(cl, &map);
  }
  cl_command_queue q = vtl__queue(cl);
  for (int i = 0; i < batch; i++) {
    cl_event ev = NULL;
    CLBlastStatusCode st = CLBlastSgemm(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a->buf,
        a->off + a_off + i * a_stride, lda, b->buf,
        b->off + b_off + i * b_stride, ldb, beta, c->buf,
        c->off + c_off + i * c_stride, ldc, &q,
        vtl__profiling(cl) ? &ev : NULL);
    if (st != CLBlastSuccess) return clblast_fail(cl, st);
    vtl__profile_event(cl, ev, "sgemm (clblast)");
    if (ep)
      VTL__TRY(vtl__epilogue_cl(cl, c, c_off + i * c_stride, ldc, m, n, ep));
  }
  return 0;
}

int vtl__sgemm(vtl_cl *cl, int batch, int ta, int tb, int m, int n, int k,
               float alpha, const vtl_tensor *a, size_t a_off,
               size_t a_stride, int lda, const vtl_tensor *b, size_t b_off,
               size_t b_stride, int ldb, float beta, const vtl_tensor *c,
               size_t c_off, size_t c_stride, int ldc,
               const vtl__epilogue *ep) {
  if (m <= 0 || n <= 0 || batch <= 0) return 0;
  if (ep && !ep->bias && !ep->res && ep->act == VTL_ACT_NONE) ep = NULL;
  VTL__REQUIRE(cl, c->type == VTL_F32 &&
                       (!ep || ((!ep->bias || ep->bias->type == VTL_F32) &&
                                (!ep->res || ep->res->type == VTL_F32))),
               "sgemm: the output, the bias and the residual must be f32");
  vtl_tensor wa, wb;
  int rc = vtl__widen(cl, &a, &wa);
  if (rc == 0) rc = vtl__widen(cl, &b, &wb);
  else memset(&wb, 0, sizeof wb);
  if (rc == 0)
    rc = sgemm_f32(cl, batch, ta, tb, m, n, k, alpha, a, a_off, a_stride, lda,
                   b, b_off, b_stride, ldb, beta, c, c_off, c_stride, ldc, ep);
  vtl_tensor_release(cl, &wa);
  vtl_tensor_release(cl, &wb);
  return rc;
}

/* ---- gemm ------------------------------------------------------------ */

void vtl_gemm_ref(float *c, const float *a, const float *b, int M, int N,
                  int K, int ta, int tb, float alpha, float beta) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int p = 0; p < K; p++)
        s += (double)(ta ? a[(size_t)p * M + i] : a[(size_t)i * K + p]) *
             (tb ? b[(size_t)j * K + p] : b[(size_t)p * N + j]);
      float *cij = &c[(size_t)i * N + j];
      *cij = (float)(alpha * s + (beta != 0.0f ? beta * *cij : 0.0f));
    }
}

static void as_matrix(const vtl_tensor *t, int64_t *rows, int64_t *cols) {
  *cols = t->shape[t->ndim - 1];
  *rows = (int64_t)vtl_tensor_numel(t) / *cols;
}

int vtl_gemm(vtl_cl *cl, const vtl_tensor *c, const vtl_tensor *a,
             const vtl_tensor *b, int ta, int tb, float alpha, float beta) {
  int64_t ar, ac, br, bc, cr, cc;
  as_matrix(a, &ar, &ac);
  as_matrix(b, &br, &bc);
  as_matrix(c, &cr, &cc);
  int64_t M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br,
          N = tb ? br : bc;
  VTL__REQUIRE(cl, K == Kb && cr == M && cc == N,
               "gemm: op(a) [%lld, %lld] x op(b) [%lld, %lld] -> c [%lld, %lld]",
               (long long)M, (long long)K, (long long)Kb, (long long)N,
               (long long)cr, (long long)cc);
  VTL__REQUIRE(cl, M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX,
               "gemm: too large");
  return vtl__sgemm(cl, 1, ta, tb, (int)M, (int)N, (int)K, alpha, a, 0, 0,
                    (int)ac, b, 0, 0, (int)bc, beta, c, 0, 0, (int)cc, NULL);
}

/* ---- linear ----------------------------------------------------------- */

void vtl_linear_ref(float *y, const float *x, const float *w, const float *b,
                    const float *r, int R, int Ei, int Eo, vtl_act act) {
  vtl_gemm_ref(y, x, w, R, Eo, Ei, 0, 1, 1.0f, 0.0f);
  for (size_t i = 0; i < (size_t)R * Eo; i++) {
    if (b) y[i] += b[i % Eo];
    if (r) y[i] += r[i];
    vtl_activation_ref(&y[i], &y[i], 1, act);
  }
}

int vtl_linear(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
               const vtl_tensor *w, const vtl_tensor *b, vtl_act act) {
  return vtl_linear_res(cl, y, x, w, b, NULL, act);
}

static int same_shape(const vtl_tensor *a, const vtl_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

int vtl_linear_res(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *w, const vtl_tensor *b,
                   const vtl_tensor *r, vtl_act act) {
  int64_t R, Ei, Ry, Eo;
  as_matrix(x, &R, &Ei);
  as_matrix(y, &Ry, &Eo);
  VTL__REQUIRE(cl, w->ndim == 2 && w->shape[0] == Eo && w->shape[1] == Ei &&
                       Ry == R,
               "linear: x [%lld, %lld], w [%lld, %lld], y [%lld, %lld]",
               (long long)R, (long long)Ei, (long long)w->shape[0],
               (long long)(w->ndim > 1 ? w->shape[1] : 1), (long long)Ry,
               (long long)Eo);
  VTL__REQUIRE(cl, !b || (int64_t)vtl_tensor_numel(b) == Eo,
               "linear: bias of %zu for %lld outputs", vtl_tensor_numel(b),
               (long long)Eo);
  VTL__REQUIRE(cl, !r || same_shape(r, y),
               "linear: the residual must be y's shape");
  VTL__REQUIRE(cl, vtl_tensor_numel(y) <= VTL__MAX_ELEMS, "linear: too large");
  /* On the host backend an activation with an exp (SiLU, GELU, quick GELU)
   * is a device pass after the product: the host epilogue runs it on one
   * core with scalar expf, the pass on every core, vectorised (CLIP's quick
   * GELU over 77 x 3072, measured under load: 0.8-1.3 ms as the epilogue,
   * 0.3-0.4 ms as the pass). */
  int pass = vtl_cl_backend(cl) == VTL_BACKEND_HOST &&
             act != VTL_ACT_NONE && act != VTL_ACT_RELU;
  vtl__epilogue ep = {b, 0, pass ? VTL_ACT_NONE : act, r};
  VTL__TRY(vtl__sgemm(cl, 1, 0, 1, (int)R, (int)Eo, (int)Ei, 1.0f, x, 0, 0,
                      (int)Ei, w, 0, 0, (int)Ei, 0.0f, y, 0, 0, (int)Eo, &ep));
  if (!pass) return 0;
  return vtl__bias_act(cl, y, 0, y, 0, NULL, vtl_tensor_numel(y), 1, 1, act);
}
