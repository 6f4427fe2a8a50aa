/* op_conv.c — conv2d as im2col + GEMM, on both backends (the GEMM goes
 * through vtl__sgemm: CLBlast or OpenBLAS), bias, residual and activation
 * fused as the GEMM's epilogue; 3x3 stride-1 "same" convolutions with
 * enough channels and pixels as Winograd F(2x2, 3x3) instead
 * (op_winograd.c), chosen in one place: use_winograd. Kernels:
 * kernels/conv.cl (im2col), kernels/elementwise.cl (bias_act_mat, the CL
 * epilogue). Contracts: ops.h.
 *
 * Per image n, with P = OH*OW output pixels and K = Ci*KH*KW:
 *
 *   y[n] [Co, P] = w [Co, K] x col [K, P]
 *
 * A 1x1 convolution with stride 1 and no padding needs no im2col: col is
 * x[n] itself. Bias, residual and activation are vtl__sgemm's epilogue,
 * applied to each block while it is in cache. Otherwise col is built
 * vtl__conv_col_chunk floats at a time, a range of pixels (columns) per
 * chunk, so the scratch buffer stays small even for the VAE decoder at
 * 512x512 (128 channels x 9 x 262144 pixels would be 1.2 GB): the chunk's
 * GEMM writes columns p0 .. p0+np-1 of y[n] with ldc = P. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "runtime_int.h"

size_t vtl__conv_col_chunk = (size_t)8 << 20; /* im2col scratch: 32 MiB */

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

void vtl_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                    const float *r, int N, int Ci, int H, int W, int Co,
                    int KH, int KW, int stride, int pad_t, int pad_l, int OH,
                    int OW, vtl_act act) {
  for (int n = 0; n < N; n++)
    for (int co = 0; co < Co; co++)
      for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
          double s = b ? b[co] : 0.0;
          for (int ci = 0; ci < Ci; ci++)
            for (int kh = 0; kh < KH; kh++) {
              int iy = oy * stride - pad_t + kh;
              if (iy < 0 || iy >= H) continue;
              for (int kw = 0; kw < KW; kw++) {
                int ix = ox * stride - pad_l + kw;
                if (ix < 0 || ix >= W) continue;
                s += (double)x[(((size_t)n * Ci + ci) * H + iy) * W + ix] *
                     w[(((size_t)co * Ci + ci) * KH + kh) * KW + kw];
              }
            }
          size_t i = (((size_t)n * Co + co) * OH + oy) * OW + ox;
          float v = (float)s;
          if (r) v += r[i];
          vtl_activation_ref(&v, &v, 1, act);
          y[i] = v;
        }
}

static int im2col(vtl_cl *cl, const vtl_tensor *col, const vtl_tensor *x,
                  size_t x_off, int C, int H, int W, int KH, int KW,
                  int stride, int pad_t, int pad_l, int OW, int p0, int np) {
  /* CPUs: the row variant, whose precondition (whole rows) the chunking
   * in vtl_conv2d_ex keeps; GPUs: one item per element, coalesced. */
  int rows = vtl_cl_is_host_cpu(cl) && p0 % OW == 0 && np % OW == 0;
  const char *name = rows ? "im2col_rows" : "im2col";
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_CONV, name, &k));
  cl_ulong co = col->off, xo = x->off + x_off;
  VTL__TRY(vtl__args(cl, k, name, ARG_MEM(col), ARG(co), ARG_MEM(x),
                     ARG(xo), ARG(C), ARG(H), ARG(W), ARG(KH), ARG(KW),
                     ARG(stride), ARG(pad_t), ARG(pad_l), ARG(OW), ARG(p0),
                     ARG(np), (size_t)0));
  size_t lws[2] = {16, 1}, gws[2] = {(size_t)np, (size_t)C * KH * KW};
  if (rows) {
    gws[0] = (size_t)(np / OW);
    lws[0] = 1; /* rows are few, K is many: groups of 1 x 16 */
    lws[1] = 16;
  }
  return vtl__launch(cl, k, name, 2, gws, lws);
}

/* 1 when conv2d goes through Winograd: the shape must be 3x3, stride 1,
 * padding 1 on every side (y the size of x); then $VTL_CONV=winograd forces
 * it, =im2col forbids it, and otherwise the measured rule decides
 * (bench/README.md "Winograd 3x3"): at least 16 input channels (the
 * products' inner size: with fewer, e.g. the UNet's conv_in 4->320, the
 * output transform costs more than the products save) and at least 256
 * tiles an image, 32x32 pixels (fewer make 16 thin products and the
 * per-call weight transform a larger share: 1280 channels at 16x16 ran
 * 1.5x slower). Few output channels are fine: V and M are smaller than
 * im2col's columns, so a 64->3 conv gains too. */
static int use_winograd(int Ci, int H, int W, int KH, int KW, int stride,
                        int pad_t, int pad_l, int OH, int OW) {
  if (KH != 3 || KW != 3 || stride != 1 || pad_t != 1 || pad_l != 1 ||
      OH != H || OW != W)
    return 0;
  const char *env = getenv("VTL_CONV");
  if (env && strcmp(env, "winograd") == 0) return 1;
  if (env && strcmp(env, "im2col") == 0) return 0;
  return Ci >= 16 && (size_t)((H + 1) / 2) * ((W + 1) / 2) >= 256;
}

/* vtl_conv2d_ex with the residual r of vtl_conv2d_res (NULL: none). */
static int conv2d(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                  const vtl_tensor *w, const vtl_tensor *b,
                  const vtl_tensor *r, int stride, int pad_t, int pad_l,
                  vtl_act act) {
  VTL__REQUIRE(cl, x->ndim == 4 && y->ndim == 4 && w->ndim == 4,
               "conv2d: needs x [N, Ci, H, W], w [Co, Ci, KH, KW], "
               "y [N, Co, OH, OW]");
  int N = (int)x->shape[0], Ci = (int)x->shape[1], H = (int)x->shape[2],
      W = (int)x->shape[3], Co = (int)w->shape[0], KH = (int)w->shape[2],
      KW = (int)w->shape[3], OH = (int)y->shape[2], OW = (int)y->shape[3];
  VTL__REQUIRE(cl, stride >= 1 && pad_t >= 0 && pad_l >= 0 && pad_t < KH &&
                       pad_l < KW,
               "conv2d: stride %d, padding (%d, %d) for a %dx%d kernel",
               stride, pad_t, pad_l, KH, KW);
  VTL__REQUIRE(cl, w->shape[1] == Ci && y->shape[0] == N && y->shape[1] == Co,
               "conv2d: x [%d, %d, ...], w [%d, %lld, ...], y [%lld, %lld, ...]",
               N, Ci, Co, (long long)w->shape[1], (long long)y->shape[0],
               (long long)y->shape[1]);
  /* The bottom/right padding y implies: below a whole kernel, and above
   * -stride (PyTorch's floor may leave up to stride-1 rows unread). */
  int pad_b = (OH - 1) * stride + KH - H - pad_t,
      pad_r = (OW - 1) * stride + KW - W - pad_l;
  VTL__REQUIRE(cl, OH >= 1 && OW >= 1 && pad_b > -stride && pad_b < KH &&
                       pad_r > -stride && pad_r < KW,
               "conv2d: output %dx%d does not fit input %dx%d (kernel %dx%d, "
               "stride %d, padding top %d left %d)",
               OH, OW, H, W, KH, KW, stride, pad_t, pad_l);
  VTL__REQUIRE(cl, !b || (int)vtl_tensor_numel(b) == Co,
               "conv2d: bias of %zu for %d channels", vtl_tensor_numel(b), Co);
  VTL__REQUIRE(cl, !r || (r->ndim == 4 && r->shape[0] == N &&
                          r->shape[1] == Co && r->shape[2] == OH &&
                          r->shape[3] == OW),
               "conv2d: the residual must be y's shape [%d, %d, %d, %d]", N,
               Co, OH, OW);
  VTL__REQUIRE(cl, vtl_tensor_numel(x) <= VTL__MAX_ELEMS &&
                       vtl_tensor_numel(y) <= VTL__MAX_ELEMS,
               "conv2d: too large");
  size_t P = (size_t)OH * OW, K = (size_t)Ci * KH * KW;
  int direct = KH == 1 && KW == 1 && stride == 1 && pad_t == 0 && pad_l == 0 &&
               OH == H && OW == W;
  if (use_winograd(Ci, H, W, KH, KW, stride, pad_t, pad_l, OH, OW))
    return vtl__conv3x3_winograd(cl, y, x, w, b, r, act);
  /* bias per output channel = row; r laid out as y */
  vtl__epilogue ep = {b, 1, act, r};
  if (direct)
    return vtl__sgemm(cl, N, 0, 0, Co, (int)P, Ci, 1.0f, w, 0, 0, Ci, x, 0,
                      (size_t)Ci * P, (int)P, 0.0f, y, 0, (size_t)Co * P,
                      (int)P, &ep);
  {
    /* an f16 weight is widened once here, not once per chunk */
    vtl_tensor ww;
    VTL__TRY(vtl__widen(cl, &w, &ww));
    size_t chunk = vtl__conv_col_chunk / K;
    if (chunk >= (size_t)OW) chunk -= chunk % OW; /* whole rows if we can */
    if (chunk < 1) chunk = 1;
    if (chunk > P) chunk = P;
    vtl_tensor col;
    int rc = vtl_tensor_alloc(cl, &col, 2,
                              VTL_SHAPE((int64_t)K, (int64_t)chunk));
    for (int n = 0; n < N && rc == 0; n++)
      for (size_t p0 = 0; p0 < P && rc == 0; p0 += chunk) {
        int np = (int)(P - p0 < chunk ? P - p0 : chunk);
        rc = im2col(cl, &col, x, (size_t)n * Ci * H * W, Ci, H, W, KH, KW,
                    stride, pad_t, pad_l, OW, (int)p0, np);
        if (rc == 0)
          rc = vtl__sgemm(cl, 1, 0, 0, Co, np, (int)K, 1.0f, w, 0, 0, (int)K,
                          &col, 0, 0, np, 0.0f, y, (size_t)n * Co * P + p0, 0,
                          (int)P, &ep);
      }
    vtl_tensor_release(cl, &col);
    vtl_tensor_release(cl, &ww);
    return rc;
  }
}

int vtl_conv2d_ex(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                  const vtl_tensor *w, const vtl_tensor *b, int stride,
                  int pad_t, int pad_l, vtl_act act) {
  return conv2d(cl, y, x, w, b, NULL, stride, pad_t, pad_l, act);
}

int vtl_conv2d(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
               const vtl_tensor *w, const vtl_tensor *b, int stride, int pad,
               vtl_act act) {
  return vtl_conv2d_res(cl, y, x, w, b, NULL, stride, pad, act);
}

int vtl_conv2d_res(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *w, const vtl_tensor *b,
                   const vtl_tensor *r, int stride, int pad, vtl_act act) {
  if (x->ndim == 4 && y->ndim == 4 && w->ndim == 4) {
    int64_t oh = (x->shape[2] + 2 * pad - w->shape[2]) / stride + 1,
            ow = (x->shape[3] + 2 * pad - w->shape[3]) / stride + 1;
    VTL__REQUIRE(cl, stride >= 1 && y->shape[2] == oh && y->shape[3] == ow,
                 "conv2d: y is %lldx%lld, stride %d pad %d gives %lldx%lld",
                 (long long)y->shape[2], (long long)y->shape[3], stride, pad,
                 (long long)oh, (long long)ow);
  }
  return conv2d(cl, y, x, w, b, r, stride, pad, pad, act);
}
