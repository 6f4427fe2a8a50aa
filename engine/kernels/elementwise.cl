// elementwise.cl — pointwise and data-movement kernels (engine/op_elementwise.c).
//
// Every kernel is a 1-D grid-stride loop over its output (any global size is
// correct; the host launches about one item per element, capped), so none has
// a divisibility precondition. Buffers come with an element offset (views into
// one weight arena, tensor.h); indices are int: the host checks n < 2^31.
//
//   bias_act      y = act(x + b[(i / inner) % nb])    b optional (has_b = 0)
//   bias_act_mat  the GEMM epilogue on an m x n block of a row-major matrix
//                 with leading dimension ldc: c = act(c + b[row or column]).
//                 2-D range (n, m), bounds-checked.
//   add / mul     y = a (+|*) b[(i / inner) % nb]      b same-shape or broadcast
//   scale         y = s * x
//   geglu         y[r, f] = x[r, f] * gelu(x[r, F + f])  x: [R, 2F], y: [R, F]
//   upsample2x    nearest, NCHW: y[nc, h, w] = x[nc, h/2, w/2]
//   concat        channels: y[n, 0:Ca] = a[n], y[n, Ca:Ca+Cb] = b[n] (per HW)
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

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f)); }

inline float act_apply(float x, int act) {
  switch (act) {
    case ACT_SILU: return x / (1.0f + exp(-x));
    case ACT_GELU: return gelu_erf(x);
    case ACT_QUICK_GELU: return x / (1.0f + exp(-1.702f * x));
    case ACT_RELU: return fmax(x, 0.0f);
    default: return x;
  }
}

__kernel void bias_act(__global float *y, ulong yo, __global const float *x,
                       ulong xo, __global const float *b, ulong bo, int has_b,
                       int n, int inner, int nb, int act) {
  y += yo; x += xo; b += bo;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    float v = x[i];
    if (has_b) v += b[(i / inner) % nb];
    y[i] = act_apply(v, act);
  }
}

__kernel void bias_act_mat(__global float *c, ulong co, int ldc, int m,
                           int n, __global const float *b, ulong bo,
                           int has_b, int per_row, int act) {
  int j = get_global_id(0), i = get_global_id(1);
  if (j >= n || i >= m) return;
  __global float *cij = c + co + (size_t)i * ldc + j;
  float v = *cij;
  if (has_b) v += b[bo + (per_row ? i : j)];
  *cij = act_apply(v, act);
}

__kernel void add(__global float *y, ulong yo, __global const float *a,
                  ulong ao, __global const float *b, ulong bo, int n,
                  int inner, int nb) {
  y += yo; a += ao; b += bo;
  for (int i = get_global_id(0); i < n; i += get_global_size(0))
    y[i] = a[i] + b[(i / inner) % nb];
}

__kernel void mul(__global float *y, ulong yo, __global const float *a,
                  ulong ao, __global const float *b, ulong bo, int n,
                  int inner, int nb) {
  y += yo; a += ao; b += bo;
  for (int i = get_global_id(0); i < n; i += get_global_size(0))
    y[i] = a[i] * b[(i / inner) % nb];
}

__kernel void scale(__global float *y, ulong yo, __global const float *x,
                    ulong xo, float s, int n) {
  y += yo; x += xo;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) y[i] = s * x[i];
}

__kernel void geglu(__global float *y, ulong yo, __global const float *x,
                    ulong xo, int rows, int f) {
  y += yo; x += xo;
  int n = rows * f;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    int r = i / f, c = i - r * f;
    y[i] = x[r * 2 * f + c] * gelu_erf(x[r * 2 * f + f + c]);
  }
}

// x: [NC, H, W] -> y: [NC, 2H, 2W]
__kernel void upsample2x(__global float *y, ulong yo, __global const float *x,
                         ulong xo, int nc, int h, int w) {
  y += yo; x += xo;
  int ow = 2 * w, oh = 2 * h, n = nc * oh * ow;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    int q = i / ow, ox = i - q * ow;
    int c = q / oh, oy = q - c * oh;
    y[i] = x[(c * h + (oy >> 1)) * w + (ox >> 1)];
  }
}

// a: [N, Ca*HW], b: [N, Cb*HW] -> y: [N, (Ca+Cb)*HW]; sa = Ca*HW, sb = Cb*HW
__kernel void concat(__global float *y, ulong yo, __global const float *a,
                     ulong ao, __global const float *b, ulong bo, int nbatch,
                     int sa, int sb) {
  y += yo; a += ao; b += bo;
  int s = sa + sb, n = nbatch * s;
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    int k = i / s, j = i - k * s;
    y[i] = j < sa ? a[k * sa + j] : b[k * sb + j - sa];
  }
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
