/* scheduler_step.c — the per-step half of the schedulers (scheduler.h):
 * diffusers' step index, scale_model_input, step() of every class, and
 * add_noise. Every per-step coefficient and elementwise operation is
 * float32 in the order the Python expression evaluates; this file is
 * compiled with -ffp-contract=off (engine/CMakeLists.txt), and the
 * surprises of diffusers it reproduces are listed at the top of
 * scheduler_schedule.c.
 *
 * Legend: n = values in a sample, i = an index into s->timesteps,
 * si = diffusers' step_index, t = a timestep value.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "scheduler_int.h"
#include "torch_math.h"
#include "vtl_error.h"

/* ======================================================================
 * Step index (diffusers' _init_step_index / index_for_timestep)
 * ====================================================================== */

/* The position of t in the schedule; when t occurs more than once, the
 * SECOND occurrence (diffusers: "for the very first step, so that we don't
 * accidentally skip a sigma when starting in the middle"). Not found: DPM
 * answers N-1, the others -1 (diffusers raises). */
static int index_for_timestep(const vtl_scheduler *s, float t) {
  int first = -1, second = -1;
  for (int k = 0; k < s->num_steps; k++)
    if (s->timesteps[k] == t) {
      if (first < 0) first = k;
      else if (second < 0) second = k;
    }
  if (first < 0) return s->config.cls == VTL_SCHED_DPM ? s->num_steps - 1 : -1;
  return second >= 0 ? second : first;
}

/* The step index a call at timesteps[i] uses (without setting it). */
static int effective_step_index(const vtl_scheduler *s, int i) {
  if (s->step_index >= 0) return s->step_index;
  if (s->begin_index >= 0) return s->begin_index;
  return index_for_timestep(s, s->timesteps[i]);
}

static int check_i(vtl_scheduler *s, int i) {
  if (i < 0 || i >= s->num_steps || !s->timesteps)
    return vtl__scheduler_fail(s, VTL_ERANGE,
                               "timestep index %d outside the schedule [0, %d)", i,
                               s->num_steps);
  return 0;
}

/* Sets the step index on the first call, as diffusers does. */
static int init_step_index(vtl_scheduler *s, int i) {
  int rc = check_i(s, i);
  if (rc) return rc;
  if (s->step_index < 0) s->step_index = effective_step_index(s, i);
  if (s->step_index < 0 || s->step_index >= s->num_steps)
    return vtl__scheduler_fail(s, VTL_ERANGE, "step index %d outside the schedule",
                               s->step_index);
  return 0;
}

/* ======================================================================
 * scale_model_input, step, add_noise
 * ====================================================================== */

int vtl_scheduler_scale_model_input(vtl_scheduler *s, int i, const float *sample,
                                    float *out, size_t n) {
  vtl_sched_class cls = s->config.cls;
  if (cls == VTL_SCHED_EULER || cls == VTL_SCHED_EULER_A) {
    int rc = init_step_index(s, i);
    if (rc) return rc;
    float sigma = s->sigmas[s->step_index];
    float d = sqrtf(sigma * sigma + 1.0f);
    for (size_t k = 0; k < n; k++) out[k] = sample[k] / d;
    return 0;
  }
  int rc = check_i(s, i);
  if (rc) return rc;
  if (out != sample) memcpy(out, sample, n * sizeof *out);
  return 0;
}

bool vtl_scheduler_step_needs_noise(const vtl_scheduler *s, int i) {
  switch (s->config.cls) {
  case VTL_SCHED_EULER_A:
    return true;
  case VTL_SCHED_LCM:
    if (i < 0 || i >= s->num_steps) return false;
    return effective_step_index(s, i) != s->inference_steps - 1;
  case VTL_SCHED_DPM:
    return s->config.algorithm == VTL_DPM_SDE_PLUSPLUS ||
           s->config.algorithm == VTL_DPM_SDE_PLAIN;
  default:
    return false;
  }
}

/* alphas_cumprod[t] with torch's indexing: -1 is the last entry. It
 * matters: "trailing" spacing with n = 61, 103, 121, ... steps (T / n not
 * exact) makes np.arange produce n + 1 timesteps, the last one -1, and
 * DDIM then reads alphas_cumprod[T-1] for it. Indices are checked at init. */
static float acp_at(const vtl_scheduler *s, int t) {
  return s->alphas_cumprod[t < 0 ? t + s->num_train : t];
}

/* x0 and epsilon from the model output, DDIM / LCM style (alpha products).
 * sa = sqrt(alpha_prod_t), sb = sqrt(beta_prod_t). */
static inline float x0_from_alphas(vtl_prediction p, float e, float x, float sa,
                                   float sb) {
  switch (p) {
  case VTL_PRED_EPSILON: return (x - sb * e) / sa;
  case VTL_PRED_V: return sa * x - sb * e;
  default: return e;
  }
}

static inline float clampf(float v, float lo, float hi) {
  return v < lo ? lo : v > hi ? hi : v; /* torch.clamp keeps NaN */
}

/* DDIMScheduler.step with eta = 0, use_clipped_model_output False. */
static int step_ddim(vtl_scheduler *s, int i, const float *e, const float *x,
                     float *prev, float *den, size_t n) {
  const vtl_scheduler_config *c = &s->config;
  int t = (int)s->timesteps[i];
  /* t - T // n for every spacing (see the header of scheduler_schedule.c) */
  int prev_t = t - c->num_train_timesteps / s->inference_steps;
  float a_t = acp_at(s, t);
  float a_prev = prev_t >= 0 ? acp_at(s, prev_t) : s->final_alpha_cumprod;
  float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  float sa = sqrtf(a_t), sb = sqrtf(b_t);
  /* _get_variance, then std_dev_t = eta * sqrt(variance) with eta = 0 */
  float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
  float std = 0.0f * sqrtf(variance);
  float dir_c = sqrtf(1.0f - a_prev - std * std), prev_c = sqrtf(a_prev);
  float r = (float)c->clip_sample_range;
  for (size_t k = 0; k < n; k++) {
    float x0, eps;
    switch (c->prediction) {
    case VTL_PRED_EPSILON:
      x0 = (x[k] - sb * e[k]) / sa;
      eps = e[k];
      break;
    case VTL_PRED_SAMPLE:
      x0 = e[k];
      eps = (x[k] - sa * x0) / sb;
      break;
    default:
      x0 = sa * x[k] - sb * e[k];
      eps = sa * e[k] + sb * x[k];
      break;
    }
    if (c->clip_sample) x0 = clampf(x0, -r, r);
    float p = prev_c * x0 + dir_c * eps;
    if (den) den[k] = x0;
    prev[k] = p;
  }
  return 0;
}

/* EulerDiscreteScheduler.step with s_churn = 0 (gamma 0, sigma_hat = sigma)
 * and EulerAncestralDiscreteScheduler.step (noise required). */
static int step_euler(vtl_scheduler *s, const float *e, const float *x,
                      const float *noise, float *prev, float *den, size_t n) {
  const vtl_scheduler_config *c = &s->config;
  int si = s->step_index;
  if (si + 1 >= s->num_sigmas)
    return vtl__scheduler_fail(s, VTL_ERANGE, "stepped past the last sigma (step %d)",
                               si);
  float sigma = s->sigmas[si], next = s->sigmas[si + 1];
  float s2p1 = sigma * sigma + 1.0f;
  float vc = -sigma / sqrtf(s2p1); /* v_prediction coefficient */
  bool ancestral = c->cls == VTL_SCHED_EULER_A;
  float dt, up = 0.0f;
  if (ancestral) {
    float to2 = next * next, from2 = sigma * sigma;
    up = sqrtf(to2 * (from2 - to2) / from2);
    float down = sqrtf(to2 - up * up);
    dt = down - sigma;
  } else {
    dt = next - sigma; /* sigmas[i+1] - sigma_hat */
  }
  for (size_t k = 0; k < n; k++) {
    float x0;
    switch (c->prediction) {
    case VTL_PRED_EPSILON: x0 = x[k] - sigma * e[k]; break;
    case VTL_PRED_V: x0 = e[k] * vc + x[k] / s2p1; break;
    default: x0 = e[k]; break;
    }
    float d = (x[k] - x0) / sigma;
    float p = x[k] + d * dt;
    if (ancestral) p = p + noise[k] * up;
    if (den) den[k] = x0;
    prev[k] = p;
  }
  return 0;
}

/* LCMScheduler.step. */
static int step_lcm(vtl_scheduler *s, int i, const float *e, const float *x,
                    const float *noise, float *prev, float *den, size_t n) {
  const vtl_scheduler_config *c = &s->config;
  int si = s->step_index;
  int t = (int)s->timesteps[i];
  /* the previous timestep is the next entry; at the end, t itself */
  int prev_t = si + 1 < s->num_steps ? (int)s->timesteps[si + 1] : t;
  float a_t = acp_at(s, t);
  float a_prev = prev_t >= 0 ? acp_at(s, prev_t) : s->final_alpha_cumprod;
  float sa = sqrtf(a_t), sb = sqrtf(1.0f - a_t);
  float spa = sqrtf(a_prev), spb = sqrtf(1.0f - a_prev);
  /* get_scalings_for_boundary_condition_discrete, sigma_data = 0.5:
   * int64 timestep * python float -> float32 */
  float st = (float)t * (float)c->timestep_scaling;
  float c_skip = 0.25f / (st * st + 0.25f);
  float c_out = st / sqrtf(st * st + 0.25f);
  bool last = si == s->inference_steps - 1;
  float r = (float)c->clip_sample_range;
  for (size_t k = 0; k < n; k++) {
    float x0 = x0_from_alphas(c->prediction, e[k], x[k], sa, sb);
    if (c->clip_sample) x0 = clampf(x0, -r, r);
    float d = c_out * x0 + c_skip * x[k];
    float p = last ? d : spa * d + spb * noise[k];
    if (den) den[k] = d;
    prev[k] = p;
  }
  return 0;
}

/* _sigma_to_alpha_sigma_t and the log-SNR lambda, float32. */
static void dpm_alpha_sigma(float sigma, float *alpha_t, float *sigma_t) {
  *alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f);
  *sigma_t = sigma * *alpha_t;
}

/* DPMSolverMultistepScheduler.step: convert_model_output, then the first,
 * second or third order update. mo[order-1] is the newest converted output
 * (x0 for the ++ algorithms, epsilon for the plain ones). */
static int step_dpm(vtl_scheduler *s, const float *e, const float *x,
                    const float *noise, float *prev, float *den, size_t n) {
  const vtl_scheduler_config *c = &s->config;
  int si = s->step_index, N = s->num_steps, order = c->solver_order;
  if (si + 1 >= s->num_sigmas)
    return vtl__scheduler_fail(s, VTL_ERANGE, "stepped past the last sigma (step %d)",
                               si);
  if (s->mo_n != n) {
    if (s->mo_n)
      return vtl__scheduler_fail(s, VTL_EINVAL, "sample size changed between steps");
    float *buf = malloc((size_t)order * n * sizeof *buf);
    if (!buf) return vtl__scheduler_fail(s, VTL_ENOMEM, "out of memory");
    s->mo_mem = buf;
    for (int k = 0; k < order; k++) s->model_outputs[k] = buf + (size_t)k * n;
    s->mo_n = n;
  }
  bool pp = c->algorithm == VTL_DPM_PLUSPLUS || c->algorithm == VTL_DPM_SDE_PLUSPLUS;
  bool sde = c->algorithm == VTL_DPM_SDE_PLUSPLUS || c->algorithm == VTL_DPM_SDE_PLAIN;
  bool lower_final = si == N - 1 && (c->euler_at_final ||
                                     (c->lower_order_final && N < 15) ||
                                     !c->final_sigma_min);
  bool lower_second = si == N - 2 && c->lower_order_final && N < 15;
  int use = (order == 1 || s->lower_order_nums < 1 || lower_final) ? 1
            : (order == 2 || s->lower_order_nums < 2 || lower_second) ? 2
                                                                      : 3;
  if (si - (use - 1) < 0)
    return vtl__scheduler_fail(s, VTL_ERANGE, "order %d update at step %d", use, si);

  /* rotate the history: the oldest buffer becomes the newest */
  float *newest = s->model_outputs[0];
  for (int k = 0; k < order - 1; k++) s->model_outputs[k] = s->model_outputs[k + 1];
  s->model_outputs[order - 1] = newest;
  const float *m0 = newest;
  const float *m1 = order >= 2 ? s->model_outputs[order - 2] : NULL;
  const float *m2 = order >= 3 ? s->model_outputs[order - 3] : NULL;

  /* convert_model_output at sigmas[si] */
  float a_s0, s_s0;
  dpm_alpha_sigma(s->sigmas[si], &a_s0, &s_s0);
  for (size_t k = 0; k < n; k++) {
    float v;
    if (pp) {
      switch (c->prediction) {
      case VTL_PRED_EPSILON: v = (x[k] - s_s0 * e[k]) / a_s0; break;
      case VTL_PRED_V: v = a_s0 * x[k] - s_s0 * e[k]; break;
      default: v = e[k]; break;
      }
    } else {
      switch (c->prediction) {
      case VTL_PRED_EPSILON: v = e[k]; break;
      case VTL_PRED_V: v = a_s0 * e[k] + s_s0 * x[k]; break;
      default: v = (x[k] - a_s0 * e[k]) / s_s0; break;
      }
    }
    newest[k] = v;
  }
  if (den)
    for (size_t k = 0; k < n; k++)
      den[k] = pp ? newest[k] : (x[k] - s_s0 * newest[k]) / a_s0;

  float a_t, s_t, a_s1, s_s1, a_s2, s_s2;
  dpm_alpha_sigma(s->sigmas[si + 1], &a_t, &s_t);
  float l_t = vtl__torch_logf(a_t) - vtl__torch_logf(s_t),
        l_s0 = vtl__torch_logf(a_s0) - vtl__torch_logf(s_s0);
  float h = l_t - l_s0;
  float em = vtl__torch_expf(-h) - 1.0f, ep = vtl__torch_expf(h) - 1.0f;
  float sq_pp = sqrtf(1.0f - vtl__torch_expf(-2.0f * h)),
        sq_plain = sqrtf(vtl__torch_expf(2.0f * h) - 1.0f);
  float c_x, c0, c1 = 0, c2 = 0, c_n = 0, r0 = 0, r1 = 0;

  if (use == 1) {
    /* dpm_solver_first_order_update */
    switch (c->algorithm) {
    case VTL_DPM_PLUSPLUS: c_x = s_t / s_s0; c0 = -(a_t * em); break;
    case VTL_DPM_PLAIN: c_x = a_t / a_s0; c0 = -(s_t * ep); break;
    case VTL_DPM_SDE_PLUSPLUS:
      c_x = s_t / s_s0 * vtl__torch_expf(-h);
      c0 = a_t * (1.0f - vtl__torch_expf(-2.0f * h));
      c_n = s_t * sq_pp;
      break;
    default: /* sde-dpmsolver */
      c_x = a_t / a_s0;
      c0 = -(2.0f * (s_t * ep));
      c_n = s_t * sq_plain;
      break;
    }
    for (size_t k = 0; k < n; k++) {
      float p = c_x * x[k] + c0 * m0[k];
      if (sde) p = p + c_n * noise[k];
      prev[k] = p;
    }
  } else {
    dpm_alpha_sigma(s->sigmas[si - 1], &a_s1, &s_s1);
    float l_s1 = vtl__torch_logf(a_s1) - vtl__torch_logf(s_s1), h0 = l_s0 - l_s1;
    r0 = h0 / h;
    if (use == 2) {
      /* multistep_dpm_solver_second_order_update: D1 = (1/r0) (m0 - m1) */
      switch (c->algorithm) {
      case VTL_DPM_PLUSPLUS:
        c_x = s_t / s_s0;
        c0 = -(a_t * em);
        c1 = c->heun ? a_t * (em / h + 1.0f) : -(0.5f * (a_t * em));
        break;
      case VTL_DPM_PLAIN:
        c_x = a_t / a_s0;
        c0 = -(s_t * ep);
        c1 = c->heun ? -(s_t * (ep / h - 1.0f)) : -(0.5f * (s_t * ep));
        break;
      case VTL_DPM_SDE_PLUSPLUS: {
        float em2 = 1.0f - vtl__torch_expf(-2.0f * h);
        c_x = s_t / s_s0 * vtl__torch_expf(-h);
        c0 = a_t * em2;
        c1 = c->heun ? a_t * (em2 / (-2.0f * h) + 1.0f) : 0.5f * (a_t * em2);
        c_n = s_t * sq_pp;
        break;
      }
      default:
        c_x = a_t / a_s0;
        c0 = -(2.0f * (s_t * ep));
        c1 = c->heun ? -(2.0f * (s_t * (ep / h - 1.0f))) : -(s_t * ep);
        c_n = s_t * sq_plain;
        break;
      }
      float inv_r0 = 1.0f / r0;
      for (size_t k = 0; k < n; k++) {
        float d1 = inv_r0 * (m0[k] - m1[k]);
        float p = c_x * x[k] + c0 * m0[k];
        p = p + c1 * d1;
        if (sde) p = p + c_n * noise[k];
        prev[k] = p;
      }
    } else {
      /* multistep_dpm_solver_third_order_update (no SDE variant) */
      dpm_alpha_sigma(s->sigmas[si - 2], &a_s2, &s_s2);
      float l_s2 = vtl__torch_logf(a_s2) - vtl__torch_logf(s_s2), h1 = l_s1 - l_s2;
      r1 = h1 / h;
      if (c->algorithm == VTL_DPM_PLUSPLUS) {
        c_x = s_t / s_s0;
        c0 = -(a_t * em);
        c1 = a_t * (em / h + 1.0f);
        c2 = -(a_t * ((vtl__torch_expf(-h) - 1.0f + h) / (h * h) - 0.5f));
      } else {
        c_x = a_t / a_s0;
        c0 = -(s_t * ep);
        c1 = -(s_t * (ep / h - 1.0f));
        c2 = -(s_t * ((vtl__torch_expf(h) - 1.0f - h) / (h * h) - 0.5f));
      }
      float inv_r0 = 1.0f / r0, inv_r1 = 1.0f / r1;
      float w = r0 / (r0 + r1), inv_sum = 1.0f / (r0 + r1);
      for (size_t k = 0; k < n; k++) {
        float d10 = inv_r0 * (m0[k] - m1[k]), d11 = inv_r1 * (m1[k] - m2[k]);
        float d1 = d10 + w * (d10 - d11);
        float d2 = inv_sum * (d10 - d11);
        float p = c_x * x[k] + c0 * m0[k];
        p = p + c1 * d1;
        p = p + c2 * d2;
        prev[k] = p;
      }
    }
  }
  if (s->lower_order_nums < order) s->lower_order_nums++;
  return 0;
}

int vtl_scheduler_step(vtl_scheduler *s, int i, const float *model_output,
                       const float *sample, const float *noise, float *prev,
                       float *denoised, size_t n) {
  vtl_sched_class cls = s->config.cls;
  int rc = cls == VTL_SCHED_DDIM ? check_i(s, i) : init_step_index(s, i);
  if (rc) return rc;
  if (!noise && vtl_scheduler_step_needs_noise(s, i))
    return vtl__scheduler_fail(s, VTL_EINVAL, "%s step %d needs a noise tensor",
                               s->config.class_name, i);
  switch (cls) {
  case VTL_SCHED_DDIM:
    return step_ddim(s, i, model_output, sample, prev, denoised, n);
  case VTL_SCHED_EULER:
  case VTL_SCHED_EULER_A:
    rc = step_euler(s, model_output, sample, noise, prev, denoised, n);
    break;
  case VTL_SCHED_DPM:
    rc = step_dpm(s, model_output, sample, noise, prev, denoised, n);
    break;
  case VTL_SCHED_LCM:
    rc = step_lcm(s, i, model_output, sample, noise, prev, denoised, n);
    break;
  }
  if (rc == 0) s->step_index++;
  return rc;
}

int vtl_scheduler_add_noise(const vtl_scheduler *s, int i, const float *original,
                            const float *noise, float *out, size_t n) {
  if (i < 0 || i >= s->num_steps || !s->timesteps) return VTL_ERANGE;
  vtl_sched_class cls = s->config.cls;
  if (!vtl__scheduler_is_sigma_class(cls)) {
    /* DDIM, LCM: sqrt(acp[t]) x + sqrt(1 - acp[t]) noise */
    float acp = acp_at(s, (int)s->timesteps[i]);
    float a = sqrtf(acp), b = sqrtf(1.0f - acp);
    for (size_t k = 0; k < n; k++) out[k] = a * original[k] + b * noise[k];
    return 0;
  }
  /* the sigma schedulers: the begin index when set (the pipeline sets it),
   * the current step index when stepping, else looked up by value */
  int si = s->begin_index < 0    ? index_for_timestep(s, s->timesteps[i])
           : s->step_index >= 0 ? s->step_index
                                : s->begin_index;
  if (si < 0 || si >= s->num_sigmas) return VTL_ERANGE;
  float sigma = s->sigmas[si];
  if (cls == VTL_SCHED_DPM) {
    float a, b;
    dpm_alpha_sigma(sigma, &a, &b);
    for (size_t k = 0; k < n; k++) out[k] = a * original[k] + b * noise[k];
  } else {
    for (size_t k = 0; k < n; k++) out[k] = original[k] + noise[k] * sigma;
  }
  return 0;
}
