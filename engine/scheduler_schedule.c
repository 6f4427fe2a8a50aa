/* scheduler_schedule.c — the schedules of DDIM, Euler, Euler ancestral,
 * DPM-Solver(++) multistep and LCM, as diffusers 0.27.2 computes them
 * (src/diffusers/schedulers/scheduling_{ddim,euler_discrete,
 * euler_ancestral_discrete,dpmsolver_multistep,lcm}.py, read at tag
 * v0.27.2; our own C): init (the class's __init__ + set_timesteps), close,
 * and img2img's begin index. The steps are in scheduler_step.c, the config
 * reader in scheduler_config.c; this header is the scheduler's notes.
 *
 * Legend: T = num_train_timesteps, n = steps asked, N = timesteps in the
 * schedule (n except where numpy says otherwise), t = a timestep value,
 * i = an index into s->timesteps, si = diffusers' step_index.
 *
 * Precision: the reference runs torch float32 for tensors and numpy float64
 * for the schedule, mixed in a particular way. We follow the mix exactly,
 * because a float64 re-derivation differs in the last float32 bits and the
 * errors compound over the steps:
 *
 *   betas            torch float32 (linspace in float32, see torch_linspace)
 *   alphas_cumprod   torch.cumprod of float32 — on CPU it ACCUMULATES IN
 *                    DOUBLE (at::acc_type<float, is_cuda=false> is double)
 *                    and rounds every partial product to float32
 *   sigma table      torch float32: sqrt((1 - acp) / acp)
 *   timesteps        numpy float64 (np.linspace / np.arange / round), then
 *                    cast to int64 or float32
 *   interpolation    np.interp in float64 over the float32 sigma table,
 *                    result cast to float32
 *   every per-step coefficient and every elementwise op: float32, in the
 *                    order the Python expression evaluates
 *
 * FLT_EVAL_METHOD is 0 on our targets, and engine/CMakeLists.txt compiles
 * this file and the rest of the scheduler (scheduler_int.h) with
 * -ffp-contract=off (clang would otherwise fuse a*b + c), so a float
 * expression here rounds where torch rounds; the fused operations torch
 * does perform are written as fmaf().
 *
 * Things diffusers (and torch / numpy under it) do that surprised us, each
 * repeated at its place:
 *   - torch.cumprod of float32 on the CPU accumulates in double.
 *   - torch.linspace in float32 is computed in 8-float SIMD blocks with
 *     fused multiply-adds; the betas, and through them ~60% of the
 *     alphas_cumprod, depend on it (torch_math.c).
 *   - torch.exp / torch.log of float32 are SLEEF's 1-ulp functions, not the
 *     correctly rounded ones, even on a 0-d tensor (torch_math.c).
 *   - numpy's round() is round-half-to-even (166.5 -> 166): we use rint().
 *   - np.arange with a float step computes element k >= 2 as
 *     start + k * ((start + step) - start), and its length as
 *     ceil((stop - start) / step): "trailing" spacing with n = 61, 103,
 *     121, ... steps has n + 1 timesteps, the last one -1 (a valid sigma
 *     schedule for Euler/DPM, np.interp clamps; DDIM indexes
 *     alphas_cumprod[-1], i.e. the last entry).
 *   - DDIM's previous timestep is t - T // n for every spacing, even
 *     "trailing" and "linspace" where the schedule's real gaps differ.
 *   - The first step index is looked up by value and, when the timestep
 *     occurs twice, the SECOND occurrence is taken.
 *   - Euler with interpolation_type "log_linear" builds n+1 sigmas and
 *     then appends 0: the schedule has n timesteps and n+2 sigmas, so the
 *     last step ends at the smallest sigma instead of 0.
 *   - DPM-Solver's "leading" divides by n+1 (not n) and drops the 0
 *     timestep; its "trailing" starts at the lambda-clipped last timestep
 *     but keeps the unclipped ratio T/n.
 *   - Euler and Euler ancestral draw a noise tensor in every step; Euler
 *     ancestral uses it even in the last step (multiplied by sigma_up = 0).
 *   - LCM's set_timesteps ignores timestep_spacing; its last step returns
 *     the denoised sample itself and draws no noise.
 *   - _sigma_to_t (Karras / LU timesteps) runs under numpy 1.x value-based
 *     casting: distances and the weight in float32, the blend in float64.
 *
 * Result: every output of the kit's scheduler cases, and of 467 more cases
 * generated with the reference's own diffusers 0.27.2 / torch 1.13 /
 * numpy 1.24 over the config space (v-prediction, sample, zero-SNR,
 * cosine, trained betas, Karras, LU, log-linear, continuous, DPM orders
 * 1-3, heun, dpmsolver, SDE, lambda clipping, LCM variants, img2img), is
 * bit-identical, except Euler's Karras timesteps (numpy's own float32 log
 * in the sigma table, below 1e-4 absolute; we use logf).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "scheduler_int.h"
#include "torch_math.h"
#include "vtl_error.h"

/* scheduler_int.h */
int vtl__scheduler_fail(vtl_scheduler *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  va_end(ap);
  return code;
}

/* ======================================================================
 * diffusers' own helpers of the schedule (numpy and torch: torch_math.c)
 * ====================================================================== */

/* _sigma_to_t(sigma, log_sigmas): the fractional timestep whose
 * log-sigma is log(sigma), by linear interpolation between table entries.
 * numpy 1.x value-based casting makes the distances and the weight float32
 * (a float64 scalar meets a float32 array) and the final blend float64
 * (float32 array times int64 array). log_sigmas: [T] float32, ascending. */
static double sigma_to_t(double sigma, const float *log_sigmas, int T) {
  double ls = log(fmax(sigma, 1e-10));
  float lsf = (float)ls;
  /* low_idx = cumsum(dists >= 0).argmax() = the last j with dists >= 0 */
  int low = 0;
  for (int j = 0; j < T; j++)
    if (lsf - log_sigmas[j] >= 0.0f) low = j;
  if (low > T - 2) low = T - 2;
  float lo = log_sigmas[low], hi = log_sigmas[low + 1];
  float w = (lo - lsf) / (lo - hi);
  w = w < 0.0f ? 0.0f : w > 1.0f ? 1.0f : w; /* np.clip keeps NaN */
  return (double)(1.0f - w) * low + (double)w * (low + 1);
}

/* _convert_to_karras: rho = 7 between sigma_max and sigma_min, float64. */
static void karras_sigmas(double sigma_min, double sigma_max, int n, double *out) {
  const double rho = 7.0;
  double min_inv = pow(sigma_min, 1 / rho), max_inv = pow(sigma_max, 1 / rho);
  vtl__np_linspace(0, 1, n, true, out); /* ramp */
  for (int k = 0; k < n; k++) out[k] = pow(max_inv + out[k] * (min_inv - max_inv), rho);
}

/* ======================================================================
 * Schedule: betas, alphas_cumprod, timesteps, sigmas
 * ====================================================================== */

/* betas_for_alpha_bar(T), "cosine": Python floats, then float32. */
static double alpha_bar_cos(double t) {
  const double pi = 3.141592653589793; /* math.pi */
  double c = cos((t + 0.008) / 1.008 * pi / 2);
  return c * c;
}

/* rescale_zero_terminal_snr (arXiv 2305.08891 alg. 1) in torch float32.
 * ab: [T] scratch. */
static void rescale_zero_snr(float *betas, float *ab, int T) {
  double acc = 1.0;
  for (int k = 0; k < T; k++) {
    acc *= (double)(1.0f - betas[k]);
    ab[k] = sqrtf((float)acc);
  }
  float a0 = ab[0], aT = ab[T - 1];
  float scale = a0 / (a0 - aT);
  for (int k = 0; k < T; k++) {
    float v = (ab[k] - aT) * scale;
    ab[k] = v * v; /* alphas_bar */
  }
  for (int k = T - 1; k >= 1; k--) betas[k] = 1.0f - ab[k] / ab[k - 1];
  betas[0] = 1.0f - ab[0];
}

static int make_alphas(vtl_scheduler *s, const vtl_scheduler_config *c) {
  int T = c->num_train_timesteps;
  float *betas = malloc((size_t)T * 2 * sizeof *betas); /* + scratch */
  s->alphas_cumprod = malloc((size_t)T * sizeof *s->alphas_cumprod);
  if (!betas || !s->alphas_cumprod) {
    free(betas);
    return vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
  }
  switch (c->beta_schedule) {
  case VTL_BETAS_TRAINED:
    if (!c->trained_betas || c->trained_betas_count != T) {
      free(betas);
      return vtl__scheduler_fail(s, VTL_EINVAL, "trained_betas must have %d entries",
                                 T);
    }
    memcpy(betas, c->trained_betas, (size_t)T * sizeof *betas);
    break;
  case VTL_BETAS_LINEAR:
    vtl__torch_linspace_f32(c->beta_start, c->beta_end, T, betas);
    break;
  case VTL_BETAS_SCALED_LINEAR:
    vtl__torch_linspace_f32(sqrt(c->beta_start), sqrt(c->beta_end), T, betas);
    for (int k = 0; k < T; k++) betas[k] = betas[k] * betas[k]; /* ** 2 */
    break;
  case VTL_BETAS_SQUAREDCOS:
    for (int k = 0; k < T; k++) {
      double b = 1 - alpha_bar_cos((double)(k + 1) / T) / alpha_bar_cos((double)k / T);
      betas[k] = (float)(b < 0.999 ? b : 0.999);
    }
    break;
  }
  if (c->rescale_betas_zero_snr) rescale_zero_snr(betas, betas + T, T);
  /* torch.cumprod(1 - betas): float32 factors, double accumulator (CPU) */
  double acc = 1.0;
  for (int k = 0; k < T; k++) {
    acc *= (double)(1.0f - betas[k]);
    s->alphas_cumprod[k] = (float)acc;
  }
  free(betas);
  /* Euler, Euler ancestral and DPM pin the last alpha so that the terminal
   * sigma is finite (DDIM and LCM keep the exact 0) */
  if (c->rescale_betas_zero_snr && vtl__scheduler_is_sigma_class(c->cls))
    s->alphas_cumprod[T - 1] = 0x1p-24f;
  s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
  return 0;
}

/* sqrt((1 - acp) / acp) for every train timestep, torch float32. */
static float sigma_of(float acp) { return sqrtf((1.0f - acp) / acp); }

/* The spacing shared by DDIM, Euler and Euler ancestral: n timesteps in
 * float64 (integral except Euler's linspace) into ts. Returns the count, or a
 * VTL_E* code with s->error set. */
static int spaced_timesteps(vtl_scheduler *s, int n, double *ts, int cap) {
  const vtl_scheduler_config *c = &s->config;
  int T = c->num_train_timesteps, N = n;
  switch (c->spacing) {
  case VTL_SCHED_SPACING_LINSPACE:
    vtl__np_linspace(0, T - 1, n, true, ts);
    for (int k = 0; k < n; k++) {
      /* DDIM rounds (half to even); Euler keeps the fractions, in float32 */
      ts[k] = c->cls == VTL_SCHED_DDIM ? rint(ts[k]) : (double)(float)ts[k];
    }
    break;
  case VTL_SCHED_SPACING_LEADING: {
    int ratio = T / n;
    for (int k = 0; k < n; k++) ts[k] = (double)k * ratio + c->steps_offset;
    break;
  }
  case VTL_SCHED_SPACING_TRAILING: {
    double ratio = (double)T / n;
    N = vtl__np_arange(T, 0, -ratio, ts, cap);
    if (N < 0)
      return vtl__scheduler_fail(s, VTL_EINVAL, "trailing spacing: too many timesteps");
    for (int k = 0; k < N; k++) ts[k] = rint(ts[k]) - 1;
    break;
  }
  }
  /* linspace and leading were built ascending: reverse ([::-1]) */
  if (c->spacing != VTL_SCHED_SPACING_TRAILING)
    for (int a = 0, b = n - 1; a < b; a++, b--) {
      double t = ts[a];
      ts[a] = ts[b];
      ts[b] = t;
    }
  return N;
}

/* DPMSolverMultistepScheduler.set_timesteps, timesteps part. */
static int dpm_timesteps(vtl_scheduler *s, int n, double *ts, int cap) {
  const vtl_scheduler_config *c = &s->config;
  int T = c->num_train_timesteps;
  /* clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped) */
  int lo = 0, hi = T;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    float acp = s->alphas_cumprod[T - 1 - mid];
    float lambda = vtl__torch_logf(sqrtf(acp)) - vtl__torch_logf(sqrtf(1.0f - acp));
    if ((double)lambda < c->lambda_min_clipped) lo = mid + 1;
    else hi = mid;
  }
  int last = T - lo, N = n;
  switch (c->spacing) {
  case VTL_SCHED_SPACING_LINSPACE: {
    double *tmp = malloc((size_t)(n + 1) * sizeof *tmp);
    if (!tmp) return vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
    vtl__np_linspace(0, last - 1, n + 1, true, tmp);
    for (int k = 0; k < n; k++) ts[k] = rint(tmp[n - k]); /* [::-1][:-1] */
    free(tmp);
    break;
  }
  case VTL_SCHED_SPACING_LEADING: {
    int ratio = last / (n + 1);
    for (int k = 0; k < n; k++) ts[k] = (double)(n - k) * ratio + c->steps_offset;
    break;
  }
  case VTL_SCHED_SPACING_TRAILING:
    N = vtl__np_arange(last, 0, -((double)T / n), ts, cap);
    if (N < 0)
      return vtl__scheduler_fail(s, VTL_EINVAL, "trailing spacing: too many timesteps");
    for (int k = 0; k < N; k++) ts[k] = rint(ts[k]) - 1;
    break;
  }
  return N;
}

/* LCMScheduler.set_timesteps(n) (strength 1, no custom timesteps). */
static int lcm_timesteps(vtl_scheduler *s, int n, double *ts) {
  const vtl_scheduler_config *c = &s->config;
  int T = c->num_train_timesteps, orig = c->original_inference_steps;
  if (orig > T)
    return vtl__scheduler_fail(
        s, VTL_EINVAL, "original_inference_steps %d > num_train_timesteps %d", orig, T);
  if (n > orig)
    return vtl__scheduler_fail(s, VTL_EINVAL,
                               "LCM: %d steps > original_inference_steps %d", n, orig);
  int k = T / orig;
  /* inference_indices = floor(np.linspace(0, orig, n, endpoint=False)) */
  vtl__np_linspace(0, orig, n, false, ts);
  /* timesteps = ([1..orig] * k - 1)[::-1][indices] */
  for (int j = 0; j < n; j++) ts[j] = (double)(orig - (int)floor(ts[j])) * k - 1;
  return 0;
}

/* Euler's and DPM's sigma schedule for the timesteps ts[N] (which Karras
 * and LU replace). Writes s->sigmas, s->num_sigmas, maybe ts and *N. */
static int sigma_schedule(vtl_scheduler *s, double *ts, int *N, int n) {
  const vtl_scheduler_config *c = &s->config;
  int T = c->num_train_timesteps;
  float *table = malloc((size_t)T * sizeof *table);   /* sigma(t), float32 */
  float *logs = malloc((size_t)T * sizeof *logs);     /* np.log of it, float32 */
  double *sig = malloc((size_t)((*N > n ? *N : n) + 2) * sizeof *sig);
  int m = 0, rc = 0;
  if (!table || !logs || !sig) {
    rc = vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (int k = 0; k < T; k++) {
    table[k] = sigma_of(s->alphas_cumprod[k]);
    logs[k] = logf(table[k]);
  }

  bool karras = c->use_karras_sigmas;
  bool lu = c->cls == VTL_SCHED_DPM && c->use_lu_lambdas && !karras;
  if (c->cls == VTL_SCHED_DPM && karras) {
    /* in_sigmas = flip(table): sigma_max = table[T-1], sigma_min = table[0]
     * (DPM's config has no sigma_min / sigma_max) */
    karras_sigmas(table[0], table[T - 1], n, sig);
    m = n;
  } else if (lu) {
    /* _convert_to_lu over flip(log sigmas), rho = 1: a straight line */
    double lmin = logs[0], lmax = logs[T - 1];
    vtl__np_linspace(0, 1, n, true, sig);
    for (int k = 0; k < n; k++) sig[k] = exp(lmax + sig[k] * (lmin - lmax));
    m = n;
  } else if (c->cls == VTL_SCHED_EULER && c->log_linear) {
    /* torch.linspace(log(sigma[-1]), log(sigma[0]), n + 1).exp(): n + 1
     * sigmas for n timesteps (diffusers 0.27.2 as is) */
    float *l = malloc((size_t)(n + 1) * sizeof *l);
    if (!l) {
      rc = vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
      goto done;
    }
    vtl__torch_linspace_f32(logs[T - 1], logs[0], n + 1, l);
    for (int k = 0; k <= n; k++) sig[k] = vtl__torch_expf(l[k]);
    free(l);
    m = n + 1;
  } else {
    for (int k = 0; k < *N; k++) sig[k] = vtl__np_interp(ts[k], table, T);
    m = *N;
  }

  if (c->cls == VTL_SCHED_EULER && karras) {
    /* Euler applies Karras to the interpolated sigmas, range overridable */
    double smin = isnan(c->sigma_min) ? sig[m - 1] : c->sigma_min;
    double smax = isnan(c->sigma_max) ? sig[0] : c->sigma_max;
    karras_sigmas(smin, smax, n, sig);
    m = n;
  }
  if (karras || lu) {
    for (int k = 0; k < m; k++) {
      double t = sigma_to_t(sig[k], logs, T);
      /* DPM rounds to int64; Euler keeps float32 */
      ts[k] = c->cls == VTL_SCHED_DPM ? rint(t) : (double)(float)t;
    }
    *N = m;
  }

  s->num_sigmas = m + 1;
  s->sigmas = malloc((size_t)(m + 1) * sizeof *s->sigmas);
  if (!s->sigmas) {
    rc = vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (int k = 0; k < m; k++) s->sigmas[k] = (float)sig[k];
  s->sigmas[m] = c->cls == VTL_SCHED_DPM && c->final_sigma_min ? table[0] : 0.0f;

  if (c->cls == VTL_SCHED_EULER && c->continuous_timesteps &&
      c->prediction == VTL_PRED_V) {
    /* timesteps = 0.25 * log(sigma) for the sigmas before the final 0 */
    for (int k = 0; k < m; k++) ts[k] = (double)(0.25f * vtl__torch_logf(s->sigmas[k]));
    *N = m;
  }
done:
  free(table);
  free(logs);
  free(sig);
  return rc;
}

int vtl_scheduler_init(vtl_scheduler *s, const vtl_scheduler_config *config,
                       int num_inference_steps) {
  memset(s, 0, sizeof *s);
  s->config = *config;
  s->config.trained_betas = NULL; /* the caller's; consumed below */
  s->begin_index = s->step_index = -1;
  s->order = 1;
  s->inference_steps = num_inference_steps;
  const vtl_scheduler_config *c = config;
  int T = c->num_train_timesteps, n = num_inference_steps, rc;
  s->num_train = T;
  if (T < 2 || T > 1000000)
    return vtl__scheduler_fail(s, VTL_EINVAL, "num_train_timesteps %d out of range", T);
  if (n < 1 || n > T)
    return vtl__scheduler_fail(s, VTL_EINVAL, "%d inference steps: must be in [1, %d]",
                               n, T);
  if ((rc = make_alphas(s, c)) != 0) return rc;

  int cap = n + 2, N = n;
  double *ts = malloc((size_t)cap * sizeof *ts);
  if (!ts) return vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
  switch (c->cls) {
  case VTL_SCHED_DDIM:
  case VTL_SCHED_EULER:
  case VTL_SCHED_EULER_A:
    N = spaced_timesteps(s, n, ts, cap);
    break;
  case VTL_SCHED_DPM:
    N = dpm_timesteps(s, n, ts, cap);
    break;
  case VTL_SCHED_LCM:
    if ((rc = lcm_timesteps(s, n, ts)) != 0) goto fail;
    break;
  }
  if (N < 0) { /* a VTL_E* code, s->error set */
    rc = N;
    goto fail;
  }
  if (N == 0) {
    rc = vtl__scheduler_fail(s, VTL_EINVAL, "empty schedule for %d steps", n);
    goto fail;
  }
  if (vtl__scheduler_is_sigma_class(c->cls) && (rc = sigma_schedule(s, ts, &N, n)) != 0)
    goto fail;

  s->integer_timesteps = !(c->cls == VTL_SCHED_EULER || c->cls == VTL_SCHED_EULER_A);
  s->num_steps = N;
  s->timesteps = malloc((size_t)N * sizeof *s->timesteps);
  if (!s->timesteps) {
    rc = vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
    goto fail;
  }
  for (int k = 0; k < N; k++) {
    s->timesteps[k] = (float)ts[k];
    /* DDIM and LCM index alphas_cumprod by value; torch wraps a negative
     * index (acp_at), anything else would raise */
    if (!vtl__scheduler_is_sigma_class(c->cls) && (ts[k] < -T || ts[k] > T - 1)) {
      rc = vtl__scheduler_fail(s, VTL_EINVAL,
                               "timestep %g out of [0, %d] (%d steps, spacing)", ts[k],
                               T - 1, n);
      goto fail;
    }
  }

  /* init_noise_sigma: 1, or the largest sigma (sqrt(max^2 + 1) for
   * "leading" spacing) in Euler and Euler ancestral */
  s->init_noise_sigma = 1.0f;
  if (c->cls == VTL_SCHED_EULER || c->cls == VTL_SCHED_EULER_A) {
    float mx = s->sigmas[0];
    for (int k = 1; k < s->num_sigmas; k++)
      if (s->sigmas[k] > mx) mx = s->sigmas[k];
    s->init_noise_sigma =
        c->spacing == VTL_SCHED_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
  }
  free(ts);
  return 0;
fail:
  free(ts);
  return rc;
}

void vtl_scheduler_close(vtl_scheduler *s) {
  free(s->alphas_cumprod);
  free(s->timesteps);
  free(s->sigmas);
  free(s->mo_mem);
  s->mo_mem = NULL;
  s->alphas_cumprod = NULL;
  s->timesteps = NULL;
  s->sigmas = NULL;
  memset(s->model_outputs, 0, sizeof s->model_outputs);
  s->mo_n = 0;
}

/* ======================================================================
 * img2img: begin index and strength
 * ====================================================================== */

int vtl_scheduler_set_begin_index(vtl_scheduler *s, int begin) {
  if (begin < 0 || begin >= s->num_steps)
    return vtl__scheduler_fail(s, VTL_ERANGE, "begin index %d outside [0, %d)", begin,
                               s->num_steps);
  if (s->config.cls != VTL_SCHED_DDIM) s->begin_index = begin; /* DDIM has none */
  return 0;
}

int vtl_scheduler_set_strength(vtl_scheduler *s, double strength, int *begin,
                               int *count) {
  int n = s->inference_steps;
  if (!(strength >= 0 && strength <= 1))
    return vtl__scheduler_fail(s, VTL_ERANGE, "strength %g outside [0, 1]", strength);
  /* int(n * s): the IEEE double product truncated (0.3 * 10 = 3.0000000000000004,
   * 0.7 * 10 = 7.000000000000001, 0.29 * 100 = 28.999999999999996 -> 28) */
  int init = (int)((double)n * strength);
  if (init > n) init = n;
  int t_start = n - init > 0 ? n - init : 0;
  if (n - t_start <= 0)
    return vtl__scheduler_fail(s, VTL_ERANGE, "strength %g leaves no step of %d",
                               strength, n);
  *begin = t_start * s->order;
  *count = n - t_start;
  return vtl_scheduler_set_begin_index(s, *begin);
}
