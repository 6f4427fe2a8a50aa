/* curve.c — interpolation between two keyframes.
 *
 * A segment runs from key a (frame ta, value va) to key b (tb, vb) and its
 * shape is a's `interp`:
 *   hold         va until tb
 *   linear       straight line
 *   bezier       cubic bezier through (ta,va) (ta+a.out_dt, va+a.out_dv)
 *                (tb+b.in_dt, vb+b.in_dv) (tb,vb); handle times are clamped
 *                into [ta,tb] so the curve is a function of time
 *   ease_*       the CSS cubic-bezier presets ease-in (.42,0,1,1),
 *                ease-out (0,0,.58,1), ease-in-out (.42,0,.58,1)
 */
#include <math.h>

#include "vtl_timeline.h"

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* One coordinate of a cubic bezier with end points 0 and 1. */
static double cubic01(double p1, double p2, double u) {
  double v = 1 - u;
  return 3 * v * v * u * p1 + 3 * v * u * u * p2 + u * u * u;
}

double vtl_bezier_solve(double x1, double x2, double x) {
  double lo = 0, hi = 1, u = x;
  for (int i = 0; i < 40; i++) {
    double fx = cubic01(x1, x2, u) - x;
    if (fabs(fx) < 1e-12) break;
    if (fx > 0) hi = u; else lo = u;
    double v = 1 - u;
    double d = 3 * v * v * x1 + 6 * v * u * (x2 - x1) + 3 * u * u * (1 - x2);
    double next = d > 1e-9 ? u - fx / d : (lo + hi) / 2;
    u = (next <= lo || next >= hi) ? (lo + hi) / 2 : next;
  }
  return u;
}

double vtl_bezier_ease(double x1, double y1, double x2, double y2, double x) {
  x = clamp01(x);
  double u = vtl_bezier_solve(clamp01(x1), clamp01(x2), x);
  return cubic01(y1, y2, u);
}

double vtl_curve_segment(const vtl_keyframe *a, double va,
                         const vtl_keyframe *b, double vb, double frame) {
  double span = (double)(b->frame - a->frame);
  if (span <= 0 || frame >= (double)b->frame) return vb;
  double x = clamp01((frame - (double)a->frame) / span);
  switch (a->interp) {
  case VTL_INTERP_HOLD: return va;
  case VTL_INTERP_LINEAR: return va + (vb - va) * x;
  case VTL_INTERP_EASE_IN: return va + (vb - va) * vtl_bezier_ease(.42, 0, 1, 1, x);
  case VTL_INTERP_EASE_OUT: return va + (vb - va) * vtl_bezier_ease(0, 0, .58, 1, x);
  case VTL_INTERP_EASE_IN_OUT:
    return va + (vb - va) * vtl_bezier_ease(.42, 0, .58, 1, x);
  case VTL_INTERP_BEZIER: {
    /* x controls normalised to the span; y controls in value units */
    double u = vtl_bezier_solve(clamp01(a->out_dt / span), clamp01(1 + b->in_dt / span), x);
    double p1 = va + a->out_dv, p2 = vb + b->in_dv, v = 1 - u;
    return v * v * v * va + 3 * v * v * u * p1 + 3 * v * u * u * p2 + u * u * u * vb;
  }
  default: return va + (vb - va) * x;
  }
}
