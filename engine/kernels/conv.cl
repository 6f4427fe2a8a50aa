// conv.cl — convolution support (engine/op_conv.c). conv2d is im2col + GEMM
// on both backends (CLBlast or cblas_sgemm); the bias and the activation are
// the GEMM's epilogue (op_gemm.c vtl__sgemm, elementwise.cl bias_act_mat).
//
//   im2col   x: one image [C, H, W] -> col [K, ncols], K = C*KH*KW, columns
//            p0 .. p0+ncols-1 of the OH*OW output pixels (the host chunks the
//            pixels so col stays small at VAE sizes). Row k = (c*KH + kh)*KW
//            + kw; padding reads as 0, so asymmetric padding is just
//            (pad_t, pad_l) with OH, OW computed by the host.
//            2-D range (ncols, K), bounds-checked: no divisibility precondition.
//   im2col_rows  the same for CPUs: one work-item per (output row, k) writing
//            the row's OW columns (one item per element makes PoCL launch
//            ~100k work-groups per chunk). Precondition the host checks: the
//            chunk is whole output rows (p0 and ncols multiples of OW).

__kernel void im2col(__global float *col, ulong co, __global const float *x,
                     ulong xo, int C, int H, int W, int KH, int KW, int stride,
                     int pad_t, int pad_l, int OW, int p0, int ncols) {
  int j = get_global_id(0), k = get_global_id(1);
  if (j >= ncols || k >= C * KH * KW) return;
  int kw = k % KW, t = k / KW, kh = t % KH, c = t / KH;
  int p = p0 + j, oy = p / OW, ox = p - oy * OW;
  int iy = oy * stride - pad_t + kh, ix = ox * stride - pad_l + kw;
  float v = 0.0f;
  if (iy >= 0 && iy < H && ix >= 0 && ix < W)
    v = x[xo + ((size_t)c * H + iy) * W + ix];
  col[co + (size_t)k * ncols + j] = v;
}

__kernel void im2col_rows(__global float *col, ulong co,
                          __global const float *x, ulong xo, int C, int H,
                          int W, int KH, int KW, int stride, int pad_t,
                          int pad_l, int OW, int p0, int ncols) {
  int r = get_global_id(0), k = get_global_id(1);
  if (r >= ncols / OW || k >= C * KH * KW) return;
  int kw = k % KW, t = k / KW, kh = t % KH, c = t / KH;
  int oy = p0 / OW + r, iy = oy * stride - pad_t + kh;
  __global float *dst = col + co + (size_t)k * ncols + (size_t)r * OW;
  if (iy < 0 || iy >= H) {
    for (int ox = 0; ox < OW; ox++) dst[ox] = 0.0f;
    return;
  }
  __global const float *src = x + xo + ((size_t)c * H + iy) * W;
  for (int ox = 0; ox < OW; ox++) {
    int ix = ox * stride - pad_l + kw;
    dst[ox] = (ix >= 0 && ix < W) ? src[ix] : 0.0f;
  }
}
