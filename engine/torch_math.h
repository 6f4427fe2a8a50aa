/* torch_math.h — numpy and torch, the parts the schedulers use, rounded as
 * the reference's torch 1.13 (CPU, AVX2) and numpy 1.24 round them. Each
 * function says which library call it reproduces; torch_math.c explains
 * why each differs from the obvious C. Internal to engine/ (scheduler_*.c).
 *
 * Precision: float arguments and results are torch float32, double ones
 * numpy float64. torch_math.c is compiled with -ffp-contract=off.
 */
#ifndef VTL_TORCH_MATH_H
#define VTL_TORCH_MATH_H

#include <stdbool.h>

/* torch.linspace(start, end, steps, dtype=float32) into out[steps], with
 * torch's 8-float SIMD blocking and fused multiply-adds. steps >= 1. */
void vtl__torch_linspace_f32(double start, double end, int steps, float *out);

/* torch.exp / torch.log of a float32 (SLEEF 3.5.1's 1-ulp expf / logf, not
 * the correctly rounded ones). */
float vtl__torch_expf(float d);
float vtl__torch_logf(float d0);

/* np.linspace(start, stop, num, endpoint) in float64 into out[num]. */
void vtl__np_linspace(double start, double stop, int num, bool endpoint,
                      double *out);

/* np.arange(start, stop, step) with a float step into out. Returns the
 * length (<= cap), or -1 when it would exceed cap. */
int vtl__np_arange(double start, double stop, double step, double *out, int cap);

/* np.interp(x, arange(T), fp) with fp[T] a float32 table, in float64. */
double vtl__np_interp(double x, const float *fp, int T);

#endif /* VTL_TORCH_MATH_H */
