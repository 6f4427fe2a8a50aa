/* op_attention.c — scaled dot-product attention with a fused softmax, self
 * and cross, multi-head, optional causal mask (CLIP). Kernels:
 * kernels/attention.cl. Contracts: ops.h.
 *
 * Two ways, chosen by the backend (runtime.h) and the head size:
 *
 *   fused     VTL_BACKEND_CL and D <= ATTN_MAXD: one kernel, online
 *             softmax, no score matrix in memory.
 *   by GEMM   VTL_BACKEND_HOST (or D too large for the fused kernel): per
 *             image and chunk of queries, S [H, q, Tk] = scale * Q K^T
 *             (vtl__sgemm batched over heads: OpenBLAS on mapped buffers, or
 *             CLBlast), softmax_rows in place, O = S V (batched again).
 *             Chunks keep S below vtl__attention_score_chunk floats (64x64 latents make
 *             4096 x 4096 scores per head).
 *
 * Heads are slices of the channel axis, so a head's Q is a strided matrix
 * (lda = H*D) and no transpose or copy is ever made. */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "runtime_int.h"

#define ATTN_MAXD 256 /* = MAXD's default in attention.cl */
size_t vtl__attention_score_chunk = (size_t)8 << 20; /* 32 MiB of scores */

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

void vtl_attention_ref(float *o, const float *q, const float *k,
                       const float *v, int B, int Tq, int Tk, int H, int D,
                       int causal) {
  int C = H * D;
  double scale = 1.0 / sqrt((double)D);
  double *s = malloc(sizeof *s * (size_t)Tk);
  if (!s) abort(); /* a reference for tests: no recovery wanted */
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        const float *qi = q + ((size_t)b * Tq + i) * C + h * D;
        int end = causal ? (i + 1 < Tk ? i + 1 : Tk) : Tk;
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < end; j++) {
          const float *kj = k + ((size_t)b * Tk + j) * C + h * D;
          double dot = 0;
          for (int d = 0; d < D; d++) dot += (double)qi[d] * kj[d];
          s[j] = dot * scale;
          if (s[j] > m) m = s[j];
        }
        for (int j = 0; j < end; j++) sum += s[j] = exp(s[j] - m);
        float *oi = o + ((size_t)b * Tq + i) * C + h * D;
        for (int d = 0; d < D; d++) {
          double acc = 0;
          for (int j = 0; j < end; j++)
            acc += s[j] * v[((size_t)b * Tk + j) * C + h * D + d];
          oi[d] = (float)(acc / sum);
        }
      }
  free(s);
}

static int fused(vtl_cl *cl, const vtl_tensor *o, const vtl_tensor *q,
                 const vtl_tensor *k, const vtl_tensor *v, int B, int Tq,
                 int Tk, int H, int D, float scale, int causal) {
  cl_kernel kk;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ATTENTION, "attention", &kk));
  cl_ulong oo = o->off, qo = q->off, ko = k->off, vo = v->off;
  cl_int c = causal != 0;
  VTL__TRY(vtl__args(cl, kk, "attention", ARG_MEM(o), ARG(oo), ARG_MEM(q),
                     ARG(qo), ARG_MEM(k), ARG(ko), ARG_MEM(v), ARG(vo),
                     ARG(Tq), ARG(Tk), ARG(H), ARG(D), ARG(scale), ARG(c),
                     (size_t)0));
  size_t gws[2] = {(size_t)Tq, (size_t)B * H}, lws[2] = {16, 1};
  return vtl__launch(cl, kk, "attention", 2, gws, lws);
}

static int softmax_rows(vtl_cl *cl, const vtl_tensor *s, int rows, int cols,
                        int causal, int qrows, int q0) {
  cl_kernel k;
  cl_ulong so = s->off;
  cl_int c = causal != 0;
  if (vtl_cl_is_host_cpu(cl)) { /* one item per row: no barriers */
    VTL__TRY(vtl__kernel(cl, VTL_PROG_ATTENTION, "softmax_rows_vec", &k));
    VTL__TRY(vtl__args(cl, k, "softmax_rows_vec", ARG_MEM(s), ARG(so),
                       ARG(rows), ARG(cols), ARG(c), ARG(qrows), ARG(q0),
                       (size_t)0));
    size_t lws = 4, gws = (size_t)rows;
    return vtl__launch(cl, k, "softmax_rows_vec", 1, &gws, &lws);
  }
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ATTENTION, "softmax_rows", &k));
  VTL__TRY(vtl__args(cl, k, "softmax_rows", ARG_MEM(s), ARG(so), ARG(cols),
                     ARG(c), ARG(qrows), ARG(q0), (size_t)0));
  size_t lws = vtl__wgs(cl), gws = (size_t)rows * lws;
  return vtl__launch(cl, k, "softmax_rows", 1, &gws, &lws);
}

static int by_gemm(vtl_cl *cl, const vtl_tensor *o, const vtl_tensor *q,
                   const vtl_tensor *k, const vtl_tensor *v, int B, int Tq,
                   int Tk, int H, int D, float scale, int causal) {
  size_t C = (size_t)H * D;
  size_t qc = vtl__attention_score_chunk / ((size_t)H * Tk);
  if (qc < 1) qc = 1;
  if (qc > (size_t)Tq) qc = (size_t)Tq;
  vtl_tensor s;
  VTL__TRY(vtl_tensor_alloc(cl, &s, 1, VTL_SHAPE((int64_t)(qc * H * Tk))));
  int rc = 0;
  for (int b = 0; b < B && rc == 0; b++)
    for (int q0 = 0; q0 < Tq && rc == 0; q0 += (int)qc) {
      int qn = Tq - q0 < (int)qc ? Tq - q0 : (int)qc;
      size_t qoff = ((size_t)b * Tq + q0) * C, kvoff = (size_t)b * Tk * C;
      rc = vtl__sgemm(cl, H, 0, 1, qn, Tk, D, scale, q, qoff, D, (int)C, k,
                      kvoff, D, (int)C, 0.0f, &s, 0, (size_t)qn * Tk, Tk, NULL);
      if (rc == 0) rc = softmax_rows(cl, &s, H * qn, Tk, causal, qn, q0);
      if (rc == 0)
        rc = vtl__sgemm(cl, H, 0, 0, qn, D, Tk, 1.0f, &s, 0, (size_t)qn * Tk,
                        Tk, v, kvoff, D, (int)C, 0.0f, o, qoff, D, (int)C, NULL);
    }
  vtl_tensor_release(cl, &s);
  return rc;
}

int vtl_attention(vtl_cl *cl, const vtl_tensor *o, const vtl_tensor *q,
                  const vtl_tensor *k, const vtl_tensor *v, int heads,
                  int causal) {
  VTL__REQUIRE(cl, q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && o->ndim == 3,
               "attention: needs q, o [B, Tq, C] and k, v [B, Tk, C]");
  int64_t B = q->shape[0], Tq = q->shape[1], C = q->shape[2], Tk = k->shape[1];
  VTL__REQUIRE(cl, k->shape[0] == B && v->shape[0] == B && o->shape[0] == B &&
                       k->shape[2] == C && v->shape[2] == C &&
                       o->shape[2] == C && v->shape[1] == Tk &&
                       o->shape[1] == Tq,
               "attention: q [%lld, %lld, %lld], k [%lld, %lld, %lld], "
               "v [%lld, %lld, %lld], o [%lld, %lld, %lld]",
               (long long)B, (long long)Tq, (long long)C,
               (long long)k->shape[0], (long long)Tk, (long long)k->shape[2],
               (long long)v->shape[0], (long long)v->shape[1],
               (long long)v->shape[2], (long long)o->shape[0],
               (long long)o->shape[1], (long long)o->shape[2]);
  VTL__REQUIRE(cl, heads > 0 && C % heads == 0,
               "attention: %d heads do not divide %lld channels", heads,
               (long long)C);
  VTL__REQUIRE(cl, !causal || Tq == Tk, "attention: causal needs Tq == Tk");
  VTL__REQUIRE(cl, vtl_tensor_numel(q) <= VTL__MAX_ELEMS &&
                       vtl_tensor_numel(k) <= VTL__MAX_ELEMS,
               "attention: too large");
  int D = (int)(C / heads);
  float scale = 1.0f / sqrtf((float)D);
  if (vtl_cl_backend(cl) == VTL_BACKEND_CL && D <= ATTN_MAXD)
    return fused(cl, o, q, k, v, (int)B, (int)Tq, (int)Tk, heads, D, scale,
                 causal);
  return by_gemm(cl, o, q, k, v, (int)B, (int)Tq, (int)Tk, heads, D, scale,
                 causal);
}
