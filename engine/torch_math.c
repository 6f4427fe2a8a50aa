/* torch_math.c — the parts of numpy and torch the schedules use, with
 * their exact float32 / float64 rounding (torch_math.h). Compiled with
 * -ffp-contract=off (engine/CMakeLists.txt): every fused operation torch
 * performs is written as fmaf(), and nothing else may be fused.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "torch_math.h"

/* torch.linspace(start, end, steps, dtype=float32) as the reference's torch
 * 1.13 CPU build computes it (ATen RangeFactoriesKernel.cpp + Loops.h
 * vectorized_loop, AVX2, compiled with FMA contraction):
 *   - the ends are rounded to float and step = (end - start) / (steps - 1)
 *     in float;
 *   - element k is start + step*k below steps/2 and end - step*(steps-1-k)
 *     from there on, each ONE fused multiply-add;
 *   - but the loop runs in blocks of two 8-float vectors: a vector starting
 *     at k0 is base(k0) + j*step (another FMA), with the half decided by k0
 *     alone; elements after the last full 16-block use the scalar formula.
 * This is not cosmetic: over 1000 betas the plain scalar formula moves
 * ~600 of the 1000 alphas_cumprod by an ulp, and the kit's sigmas match
 * this blocking bit for bit (an AVX-512 build, 16-float vectors, would
 * not). */
static float linspace_elem(float a, float b, float step, int steps, int k) {
  return k < steps / 2 ? fmaf(step, (float)k, a)
                       : fmaf(-step, (float)(steps - k - 1), b);
}

void vtl__torch_linspace_f32(double start, double end, int steps, float *out) {
  enum { V = 8 }; /* Vectorized<float>::size() with AVX2 */
  float a = (float)start, b = (float)end;
  if (steps == 1) {
    out[0] = a; /* linspace_out fills `start` */
    return;
  }
  float step = (b - a) / (float)(steps - 1);
  int k = 0;
  for (; steps - k >= 2 * V; k += 2 * V)
    for (int v = k; v < k + 2 * V; v += V) {
      float base = linspace_elem(a, b, step, steps, v);
      for (int j = 0; j < V; j++) out[v + j] = fmaf((float)j, step, base);
    }
  for (; k < steps; k++) out[k] = linspace_elem(a, b, step, steps, k);
}

/* torch.exp / torch.log of float32 on the CPU. torch 1.13 evaluates both
 * through SLEEF's vector functions (Sleef_expf8_u10, Sleef_logf8_u10), even
 * for a 0-d tensor, and those are 1-ulp accurate, not correctly rounded:
 * against glibc's expf they differ in about one case in five, which moved
 * DPM-Solver's samples by a few ulps per step. So we evaluate the same
 * algorithms (SLEEF 3.5.1 xexpf and xlogf_u1, AVX2 with FMA; constants from
 * SLEEF, Boost Software License) in scalar C. Checked bit for bit against
 * torch on 50000 values. */
typedef struct {
  float x, y; /* a double-float: value x + y, |y| <= ulp(x)/2 */
} dfloat;

static float pow2i(int q) { /* 2^q for q in [-126, 127] */
  uint32_t b = (uint32_t)(q + 0x7f) << 23;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static int half_floor(int q) { return q >= 0 ? q / 2 : -((1 - q) / 2); } /* q >> 1 */

float vtl__torch_expf(float d) {
  if (isnan(d)) return d;
  if (d < -104.0f) return 0.0f;
  if (d > 100.0f) return INFINITY;
  int q = (int)rintf(d * 1.442695040888963407359924681001892137426645954f);
  float s = fmaf((float)q, -0.693145751953125f, d);
  s = fmaf((float)q, -1.428606765330187045e-06f, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf(u, s, 0.00139304355252534151077271f);
  u = fmaf(u, s, 0.00833336077630519866943359f);
  u = fmaf(u, s, 0.0416664853692054748535156f);
  u = fmaf(u, s, 0.166666671633720397949219f);
  u = fmaf(u, s, 0.5f);
  u = 1.0f + fmaf(s * s, u, s);
  return u * pow2i(half_floor(q)) * pow2i(q - half_floor(q));
}

static dfloat df_add2(float x, float y) {
  float s = x + y, v = s - x;
  return (dfloat){s, (x - (s - v)) + (y - v)};
}

float vtl__torch_logf(float d0) {
  if (isnan(d0) || d0 < 0) return NAN;
  if (d0 == 0) return -INFINITY;
  if (isinf(d0)) return INFINITY;
  float d = d0;
  bool tiny = d < FLT_MIN;
  if (tiny) d *= 18446744073709551616.0f; /* 2^64 */
  float dm = d * (1.0f / 0.75f);
  uint32_t b;
  memcpy(&b, &dm, sizeof b);
  int e = (int)((b >> 23) & 0xff) - 0x7f;
  memcpy(&b, &d, sizeof b);
  b += (uint32_t)(-e) << 23; /* m = d / 2^e, in [0.75, 1.5) */
  float m;
  memcpy(&m, &b, sizeof m);
  if (tiny) e -= 64;
  /* s = ln2 * e as a double-float */
  float hi = 0.69314718246459960938f, lo = -1.904654323148236017e-09f;
  float sx = hi * (float)e;
  dfloat s = {sx, fmaf(lo, (float)e, fmaf(hi, (float)e, -sx))};
  /* x = (m - 1) / (m + 1) as a double-float division */
  dfloat n = df_add2(-1.0f, m), dd = df_add2(1.0f, m);
  float t = 1.0f / dd.x, q = n.x * t, u = fmaf(t, n.x, -q);
  float v = fmaf(-dd.y, t, fmaf(-dd.x, t, 1.0f));
  dfloat x = {q, fmaf(q, v, fmaf(n.y, t, u))};
  float x2 = x.x * x.x;
  float p = 0.3027294874e+0f;
  p = fmaf(p, x2, 0.3996108174e+0f);
  p = fmaf(p, x2, 0.6666694880e+0f);
  float s2 = s.x + x.x * 2.0f; /* s += 2x */
  s = (dfloat){s2, (((s.x - s2) + x.x * 2.0f) + s.y) + x.y * 2.0f};
  float w = x2 * x.x * p;
  s2 = s.x + w; /* s += x^3 p */
  s = (dfloat){s2, ((s.x - s2) + w) + s.y};
  return s.x + s.y;
}

/* np.linspace(start, stop, num, endpoint) in float64: k * step + start, and
 * the end point set exactly. */
void vtl__np_linspace(double start, double stop, int num, bool endpoint, double *out) {
  int div = endpoint ? num - 1 : num;
  double delta = stop - start;
  if (div <= 0) {
    for (int k = 0; k < num; k++) out[k] = k * delta + start;
    return;
  }
  double step = delta / div;
  for (int k = 0; k < num; k++)
    out[k] = step == 0 ? (double)k / div * delta + start : (double)k * step + start;
  if (endpoint && num > 1) out[num - 1] = stop;
}

/* np.arange(start, stop, step) with a float step: length
 * ceil((stop - start) / step); element 1 is start + step, element k >= 2
 * is start + k * delta with delta = (start + step) - start (numpy's
 * DOUBLE_fill). Returns the length (<= cap) or -1. */
int vtl__np_arange(double start, double stop, double step, double *out, int cap) {
  double len = ceil((stop - start) / step);
  if (!(len >= 0)) len = 0;
  if (len > cap) return -1;
  int n = (int)len;
  double next = start + step, delta = next - start;
  for (int k = 0; k < n; k++)
    out[k] = k == 0 ? start : k == 1 ? next : start + k * delta;
  return n;
}

/* np.interp(x, arange(T), fp) with fp the float32 table, in float64. */
double vtl__np_interp(double x, const float *fp, int T) {
  if (isnan(x)) return x;
  if (x < 0) return fp[0];
  if (x >= T - 1) return fp[T - 1];
  int j = (int)floor(x);
  if ((double)j == x) return fp[j];
  double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
  double r = slope * (x - j) + (double)fp[j];
  if (isnan(r)) {
    r = slope * (x - (j + 1)) + (double)fp[j + 1];
    if (isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
  }
  return r;
}
