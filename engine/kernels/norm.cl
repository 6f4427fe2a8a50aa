// norm.cl — normalisations (engine/op_norm.c).
//
//   group_norm   one work-group per (n, group): x [N, C, S] (S = H*W or any
//                trailing size), statistics over C/G channels x S, two passes
//                (mean, then the centred variance: stable for large means),
//                y = (x - mean) * rsqrt(var + eps) * gamma[c] + beta[c],
//                then SiLU when silu != 0 (the ResNet block's norm + act).
//   layer_norm   one work-group per row: x [R, C] over C, same formula.
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
  for (int i = lid; i < len; i += WGS) {
    int c = g * cpg + i / S;
    float o = (xs[i] - mean) * rstd * gamma[c] + beta[c];
    if (silu) o = o / (1.0f + exp(-o));
    ys[i] = o;
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
