// norm.cl — normalisations (engine/op_norm.c).
//
//   group_norm   one work-group per (n, group): x [N, C, S] (S = H*W or any
//                trailing size), statistics over C/G channels x S, two passes
//                (mean, then the centred variance: stable for large means),
//                y = (x - mean) * rsqrt(var + eps) * gamma[c] + beta[c],
//                then SiLU when silu != 0 (the ResNet block's norm + act).
//   layer_norm   one work-group per row: x [R, C] over C, same formula;
//                layer_norm_rows (CPU devices) one work-item per row.
//
// Preconditions the host checks: local size == WGS, WGS a power of two,
// C % G == 0. Biased variance (divides by the count), as PyTorch.

#ifndef WGS
#define WGS 64
#endif

// Sum of v over the work-group; every item gets the result.
inline float wg_sum(float v, __local float *red) {
  int lid = get_local_id(0);
  red[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WGS / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] += red[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void group_norm(__global float *y, ulong yo, __global const float *x, ulong xo,
                __global const float *gamma, ulong go,
                __global const float *beta, ulong bo, int C, int S, int G,
                float eps, int silu) {
  __local float red[WGS];
  int ng = get_group_id(0), lid = get_local_id(0);
  int n = ng / G, g = ng - n * G, cpg = C / G, len = cpg * S;
  size_t base = ((size_t)n * C + (size_t)g * cpg) * S;
  __global const float *xs = x + xo + base;
  __global float *ys = y + yo + base;
  gamma += go; beta += bo;
  float s = 0.0f;
  for (int i = lid; i < len; i += WGS) s += xs[i];
  float mean = wg_sum(s, red) / (float)len;
  float v = 0.0f;
  for (int i = lid; i < len; i += WGS) { float d = xs[i] - mean; v += d * d; }
  float rstd = rsqrt(wg_sum(v, red) / (float)len + eps);
  for (int cl = 0; cl < cpg; cl++) {  // channel by channel: no i / S
    int c = g * cpg + cl;
    float a = rstd * gamma[c], b = beta[c];
    __global const float *xc = xs + (size_t)cl * S;
    __global float *yc = ys + (size_t)cl * S;
    if (silu)
      for (int i = lid; i < S; i += WGS) { float o = (xc[i] - mean) * a + b; yc[i] = o / (1.0f + exp(-o)); }
    else
      for (int i = lid; i < S; i += WGS) yc[i] = (xc[i] - mean) * a + b;
  }
}

__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void layer_norm(__global float *y, ulong yo, __global const float *x, ulong xo,
                __global const float *gamma, ulong go,
                __global const float *beta, ulong bo, int C, float eps) {
  __local float red[WGS];
  int r = get_group_id(0), lid = get_local_id(0);
  __global const float *xs = x + xo + (size_t)r * C;
  __global float *ys = y + yo + (size_t)r * C;
  gamma += go; beta += bo;
  float s = 0.0f;
  for (int i = lid; i < C; i += WGS) s += xs[i];
  float mean = wg_sum(s, red) / (float)C;
  float v = 0.0f;
  for (int i = lid; i < C; i += WGS) { float d = xs[i] - mean; v += d * d; }
  float rstd = rsqrt(wg_sum(v, red) / (float)C + eps);
  for (int i = lid; i < C; i += WGS)
    ys[i] = (xs[i] - mean) * rstd * gamma[i] + beta[i];
}

// layer_norm for CPU devices: one work-item per row, no barriers (PoCL
// runs a work-group's barriers as separate loops: 256 rows x 64 took
// 326 us in the work-group form).
__kernel void layer_norm_rows(__global float *y, ulong yo,
                              __global const float *x, ulong xo,
                              __global const float *gamma, ulong go,
                              __global const float *beta, ulong bo, int C,
                              float eps, int R) {
  int r = get_global_id(0);
  if (r >= R) return;
  __global const float *xs = x + xo + (size_t)r * C;
  __global float *ys = y + yo + (size_t)r * C;
  gamma += go; beta += bo;
  float s = 0.0f;
  for (int i = 0; i < C; i++) s += xs[i];
  float mean = s / (float)C, v = 0.0f;
  for (int i = 0; i < C; i++) { float d = xs[i] - mean; v += d * d; }
  float rstd = rsqrt(v / (float)C + eps);
  for (int i = 0; i < C; i++) ys[i] = (xs[i] - mean) * rstd * gamma[i] + beta[i];
}
