// attention.cl — scaled dot-product attention (engine/op_attention.c).
//
// Layout: q [B, Tq, H*D], k and v [B, Tk, H*D], o [B, Tq, H*D]: heads are
// slices of the channel axis, as the to_q/to_k/to_v projections produce them.
//
//   attention     the fused kernel of the OpenCL backend: one work-item per
//                 (query, b*H + h), 2-D range (Tq, B*H); keys in blocks of KB
//                 scores with an online softmax (running max and sum, the
//                 accumulator rescaled once per block), so no Tq x Tk matrix
//                 is ever stored. causal: key j > query i is masked (CLIP).
//                 Precondition the host checks: D <= MAXD.
//   softmax_rows  the host backend's middle step: in place over rows of
//                 s [rows, cols] (scores already scaled by the GEMM), one
//                 work-group per row. causal: row r is query q0 + r % qrows,
//                 columns beyond it are 0. Local size == WGS (power of two).
//   softmax_rows_vec  the same, one work-item per row reading float8: for
//                 CPUs, where a work-group's barriers cost more than the row
//                 (PoCL runs a group on one thread). No precondition.

#ifndef WGS
#define WGS 64
#endif
#ifndef MAXD
#define MAXD 256
#endif
#ifndef KB
#define KB 16
#endif

__kernel void attention(__global float *o, ulong oo, __global const float *q,
                        ulong qo, __global const float *k, ulong ko,
                        __global const float *v, ulong vo, int Tq, int Tk,
                        int H, int D, float scale, int causal) {
  int i = get_global_id(0), bh = get_global_id(1);
  if (i >= Tq) return;
  int b = bh / H, h = bh - b * H, C = H * D;
  __global const float *qi = q + qo + ((size_t)b * Tq + i) * C + h * D;
  __global const float *kb = k + ko + (size_t)b * Tk * C + h * D;
  __global const float *vb = v + vo + (size_t)b * Tk * C + h * D;
  float qv[MAXD], acc[MAXD], s[KB];
  for (int d = 0; d < D; d++) { qv[d] = qi[d] * scale; acc[d] = 0.0f; }
  float m = -INFINITY, l = 0.0f;
  int end = causal ? min(Tk, i + 1) : Tk;
  for (int j0 = 0; j0 < end; j0 += KB) {
    int nb = min(KB, end - j0);
    float bm = m;
    for (int jj = 0; jj < nb; jj++) {
      __global const float *kj = kb + (size_t)(j0 + jj) * C;
      float dot = 0.0f;
      for (int d = 0; d < D; d++) dot = fma(qv[d], kj[d], dot);
      s[jj] = dot;
      bm = fmax(bm, dot);
    }
    float corr = exp(m - bm); // 0 on the first block (m = -inf)
    l *= corr;
    for (int d = 0; d < D; d++) acc[d] *= corr;
    for (int jj = 0; jj < nb; jj++) {
      float p = exp(s[jj] - bm);
      l += p;
      __global const float *vj = vb + (size_t)(j0 + jj) * C;
      for (int d = 0; d < D; d++) acc[d] = fma(p, vj[d], acc[d]);
    }
    m = bm;
  }
  __global float *oi = o + oo + ((size_t)b * Tq + i) * C + h * D;
  float inv = 1.0f / l;
  for (int d = 0; d < D; d++) oi[d] = acc[d] * inv;
}

inline float wg_reduce(float v, __local float *red, int is_max) {
  int lid = get_local_id(0);
  red[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WGS / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] = is_max ? fmax(red[lid], red[lid + s]) : red[lid] + red[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void softmax_rows(__global float *s, ulong so, int cols, int causal, int qrows,
                  int q0) {
  __local float red[WGS];
  int r = get_group_id(0), lid = get_local_id(0);
  __global float *row = s + so + (size_t)r * cols;
  int end = causal ? min(cols, q0 + r % qrows + 1) : cols;
  float m = -INFINITY;
  for (int j = lid; j < end; j += WGS) m = fmax(m, row[j]);
  m = wg_reduce(m, red, 1);
  float sum = 0.0f;
  for (int j = lid; j < end; j += WGS) { float e = exp(row[j] - m); row[j] = e; sum += e; }
  float inv = 1.0f / wg_reduce(sum, red, 0);
  for (int j = lid; j < cols; j += WGS) row[j] = j < end ? row[j] * inv : 0.0f;
}

__kernel void softmax_rows_vec(__global float *s, ulong so, int rows, int cols,
                               int causal, int qrows, int q0) {
  int r = get_global_id(0);
  if (r >= rows) return;
  __global float *row = s + so + (size_t)r * cols;
  int end = causal ? min(cols, q0 + r % qrows + 1) : cols;
  int end8 = end & ~7, j;
  float8 m8 = (float8)(-INFINITY);
  for (j = 0; j < end8; j += 8) m8 = fmax(m8, vload8(0, row + j));
  float m = fmax(fmax(fmax(m8.s0, m8.s1), fmax(m8.s2, m8.s3)),
                 fmax(fmax(m8.s4, m8.s5), fmax(m8.s6, m8.s7)));
  for (; j < end; j++) m = fmax(m, row[j]);
  float8 sum8 = (float8)(0.0f);
  for (j = 0; j < end8; j += 8) {
    float8 e = exp(vload8(0, row + j) - m);
    vstore8(e, 0, row + j);
    sum8 += e;
  }
  float sum = (sum8.s0 + sum8.s1) + (sum8.s2 + sum8.s3) +
              (sum8.s4 + sum8.s5) + (sum8.s6 + sum8.s7);
  for (; j < end; j++) { float e = exp(row[j] - m); row[j] = e; sum += e; }
  float inv = 1.0f / sum;
  for (j = 0; j < end8; j += 8) vstore8(vload8(0, row + j) * inv, 0, row + j);
  for (; j < end; j++) row[j] *= inv;
  for (j = end; j < cols; j++) row[j] = 0.0f;
}
