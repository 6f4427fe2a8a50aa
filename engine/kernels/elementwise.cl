// elementwise.cl — pointwise and data-movement kernels (engine/op_elementwise.c).
//
// One work-item per output element, bounds-checked (the host rounds the
// global size up to the work-group size). Where an index would need a
// division per element, the range is 2-D instead (dim 0 the contiguous run,
// dim 1 the rows), so the per-element code is division-free and PoCL
// vectorises the work-group loop over dim 0: measured on PoCL, a same-shape
// add of 64k floats went from 226 us (grid-stride loop with (i / inner) %
// nb) to 31 us. Buffers come with an element offset (views into one weight
// arena, tensor.h); indices are int: the host checks n < 2^31.
//
// The broadcast of bias_act / add / mul (y = x op b[(i / inner) % nb]) comes
// in three ranges, chosen by the host:
//   _all   b as large as x: 1-D over n, b[i]
//   _cols  inner == 1: 2-D (nb, n / nb), b[dim 0]
//   _rows  inner > 1: 2-D (inner, n / inner), b[dim 1 % nb]
//
//   bias_<act>_*  y = act(x + b)    (b optional: has_b = 0), one family per
//                 activation: none, silu, gelu, quick_gelu, relu
//   bias_act_mat  the GEMM epilogue on an m x n block of a row-major matrix
//                 with leading dimension ldc: c = act(c + b[row or column]
//                 + r), r (has_r) a residual laid out as c.
//                 2-D range (n, m), bounds-checked.
//   add_*, mul_*  y = a + b, a * b
//   scale         y = s * x
//   geglu         y[r, f] = x[r, f] * gelu(x[r, F + f])  x: [R, 2F], y: [R, F]
//                 2-D (F, R)
//   upsample2x    nearest, NCHW: y[nc, h, w] = x[nc, h/2, w/2]; 2-D (2W, NC*2H)
//   concat        channels: y[n, 0:Ca] = a[n], y[n, Ca:Ca+Cb] = b[n] (per HW);
//                 2-D (sa + sb, N)
//   timestep_emb  y[n, j] sinusoidal embedding of t[n] (diffusers'
//                 get_timestep_embedding), see the kernel
//
// Tunables: none yet (WGS is set by the runtime for every program).

#ifndef WGS
#define WGS 64
#endif

#define ACT_NONE 0
#define ACT_SILU 1
#define ACT_GELU 2
#define ACT_QUICK_GELU 3
#define ACT_RELU 4

// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): built from exp,
// which PoCL vectorises, where its erf is a scalar call per element (GEGLU
// of 256 x 512 took 1.29 ms with erf, 0.3 ms with this)
inline float erf_as(float x) {
  float a = fabs(x), t = 1.0f / (1.0f + 0.3275911f * a);
  float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
            t * (-1.453152027f + t * 1.061405429f))));
  return copysign(1.0f - p * exp(-a * a), x);
}

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erf_as(x * 0.70710678118654752f)); }

inline float act_apply(float x, int act) {
  switch (act) {
    case ACT_SILU: return x / (1.0f + exp(-x));
    case ACT_GELU: return gelu_erf(x);
    case ACT_QUICK_GELU: return x / (1.0f + exp(-1.702f * x));
    case ACT_RELU: return fmax(x, 0.0f);
    default: return x;
  }
}

// The three broadcast ranges of y = expr(xv, bv) (see the top of the file),
// all with the same arguments so the host sets them alike.
#define BROADCAST_ARGS                                                        \
  __global float *y, ulong yo, __global const float *x, ulong xo,             \
      __global const float *b, ulong bo, int n, int inner, int nb, int has_b, \
      int act
#define BROADCAST_KERNELS(name, expr)                                         \
  __kernel void name##_all(BROADCAST_ARGS) {                                  \
    int i = get_global_id(0);                                                 \
    if (i >= n) return;                                                       \
    float xv = x[xo + i], bv = b[bo + i];                                     \
    y[yo + i] = (expr);                                                       \
  }                                                                           \
  __kernel void name##_cols(BROADCAST_ARGS) {                                 \
    int c = get_global_id(0);                                                 \
    if (c >= nb) return;                                                      \
    size_t i = (size_t)get_global_id(1) * nb + c;                             \
    float xv = x[xo + i], bv = b[bo + c];                                     \
    y[yo + i] = (expr);                                                       \
  }                                                                           \
  __kernel void name##_rows(BROADCAST_ARGS) {                                 \
    int j = get_global_id(0);                                                 \
    if (j >= inner) return;                                                   \
    int r = get_global_id(1);                                                 \
    size_t i = (size_t)r * inner + j;                                         \
    float xv = x[xo + i], bv = b[bo + r % nb];                                \
    y[yo + i] = (expr);                                                       \
  }

// y = act(x + b), a family per activation (bias_<act>_*, the argument act
// unused): with act a constant each kernel is that activation alone, where
// PoCL compiles act_apply's switch on a run-time act into code 6-9x slower
// (quick GELU over 77 x 3072: 2.4 ms with the switch, 0.38 ms alone).
// has_b = 0 (an activation alone): b is x, read but unused.
#define BIAS_ACT_KERNELS(name, ACT)                                           \
  BROADCAST_KERNELS(bias_##name, act_apply(has_b ? xv + bv : xv, ACT))
BIAS_ACT_KERNELS(none, ACT_NONE)
BIAS_ACT_KERNELS(silu, ACT_SILU)
BIAS_ACT_KERNELS(gelu, ACT_GELU)
BIAS_ACT_KERNELS(quick_gelu, ACT_QUICK_GELU)
BIAS_ACT_KERNELS(relu, ACT_RELU)
// add and mul without the activation switch, which keeps PoCL from
// vectorising (has_b and act unused)
BROADCAST_KERNELS(add, xv + bv)
BROADCAST_KERNELS(mul, xv * bv)

__kernel void bias_act_mat(__global float *c, ulong co, int ldc, int m,
                           int n, __global const float *b, ulong bo,
                           int has_b, int per_row, __global const float *r,
                           ulong ro, int has_r, int act) {
  int j = get_global_id(0), i = get_global_id(1);
  if (j >= n || i >= m) return;
  size_t ij = (size_t)i * ldc + j;
  float v = c[co + ij];
  if (has_b) v += b[bo + (per_row ? i : j)];
  if (has_r) v += r[ro + ij];
  c[co + ij] = act_apply(v, act);
}

// The resnet of a UNet with resnet_time_scale_shift "scale_shift":
// y = act(x * (1 + scale) + shift) with t [N, 2C] = [scale | shift] per
// sample; x, y [N, C, hw]; range (hw, C, N), no index division
__kernel void scale_shift_act(__global float *y, ulong yo,
                              __global const float *x, ulong xo,
                              __global const float *t, ulong to, int hw,
                              int act) {
  int j = get_global_id(0);
  if (j >= hw) return;
  size_t c = get_global_id(1), C = get_global_size(1), n = get_global_id(2);
  float s = t[to + n * 2 * C + c], b = t[to + n * 2 * C + C + c];
  size_t i = (n * C + c) * hw + j;
  y[yo + i] = act_apply(x[xo + i] * (1.0f + s) + b, act);
}

__kernel void scale(__global float *y, ulong yo, __global const float *x,
                    ulong xo, float s, int n) {
  int i = get_global_id(0);
  if (i < n) y[yo + i] = s * x[xo + i];
}

__kernel void geglu(__global float *y, ulong yo, __global const float *x,
                    ulong xo, int f) {
  int c = get_global_id(0);
  if (c >= f) return;
  size_t r = get_global_id(1);
  __global const float *xr = x + xo + r * 2 * f;
  y[yo + r * f + c] = xr[c] * gelu_erf(xr[f + c]);
}

// x: [NC, H, W] -> y: [NC, 2H, 2W]; dim 1 runs over the NC * 2H output rows
__kernel void upsample2x(__global float *y, ulong yo, __global const float *x,
                         ulong xo, int h, int w) {
  int ox = get_global_id(0), ow = 2 * w;
  if (ox >= ow) return;
  int q = get_global_id(1), c = q / (2 * h), oy = q - c * 2 * h;
  y[yo + (size_t)q * ow + ox] = x[xo + ((size_t)c * h + (oy >> 1)) * w + (ox >> 1)];
}

// a: [N, Ca*HW], b: [N, Cb*HW] -> y: [N, (Ca+Cb)*HW]; sa = Ca*HW, sb = Cb*HW
__kernel void concat(__global float *y, ulong yo, __global const float *a,
                     ulong ao, __global const float *b, ulong bo, int sa,
                     int sb) {
  int j = get_global_id(0);
  if (j >= sa + sb) return;
  size_t k = get_global_id(1);
  y[yo + k * (sa + sb) + j] = j < sa ? a[ao + k * sa + j] : b[bo + k * sb + j - sa];
}

// y[n, j], dim = 2*nhalf (+1 zero column when odd):
//   freq[j] = exp(-log(max_period) * j / (nhalf - shift)),  arg = t[n] * freq[j]
//   flip = 0: [sin(arg), cos(arg)]; flip = 1: [cos(arg), sin(arg)]
__kernel void timestep_emb(__global float *y, ulong yo, __global const float *t,
                           ulong to, int nbatch, int dim, int flip, float shift,
                           float log_max_period) {
  y += yo; t += to;
  int nhalf = dim / 2, n = nbatch * dim;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    int k = i / dim, j = i - k * dim;
    float v = 0.0f;
    if (j < 2 * nhalf) {
      int f = j < nhalf ? j : j - nhalf;
      float e = -log_max_period * (float)f;
      float freq = exp(e / ((float)nhalf - shift));
      float arg = t[k] * freq;
      int first = j < nhalf;
      v = (first != flip) ? sin(arg) : cos(arg);
    }
    y[i] = v;
  }
}
