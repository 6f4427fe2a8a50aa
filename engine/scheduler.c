/* scheduler.c — DDIM, Euler, Euler ancestral, DPM-Solver(++) multistep and
 * LCM, as diffusers 0.27.2 computes them (src/diffusers/schedulers/
 * scheduling_{ddim,euler_discrete,euler_ancestral_discrete,
 * dpmsolver_multistep,lcm}.py, read at tag v0.27.2; our own C).
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
 * this file with -ffp-contract=off (clang would otherwise fuse a*b + c), so
 * a float expression here rounds where torch rounds; the fused operations
 * torch does perform are written as fmaf().
 *
 * Things diffusers (and torch / numpy under it) do that surprised us, each
 * repeated at its place:
 *   - torch.cumprod of float32 on the CPU accumulates in double.
 *   - torch.linspace in float32 is computed in 8-float SIMD blocks with
 *     fused multiply-adds; the betas, and through them ~60% of the
 *     alphas_cumprod, depend on it (torch_linspace_f32).
 *   - torch.exp / torch.log of float32 are SLEEF's 1-ulp functions, not the
 *     correctly rounded ones, even on a 0-d tensor (torch_expf/torch_logf).
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
#include "vtl_error.h"

static const char *const class_names[] = {
    "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler", "LCMScheduler"};

static int sfail(vtl_scheduler *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sfail(vtl_scheduler *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  va_end(ap);
  return code;
}

static int cfail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cfail(char *msg, size_t msglen, int code, const char *fmt, ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static bool is_sigma_class(vtl_sched_class c) {
  return c == VTL_SCHED_EULER || c == VTL_SCHED_EULER_A || c == VTL_SCHED_DPM;
}

/* ======================================================================
 * Config
 * ====================================================================== */

int vtl_scheduler_class_from_name(const char *name, vtl_sched_class *out) {
  for (int k = 0; k < (int)(sizeof class_names / sizeof *class_names); k++)
    if (name && strcmp(name, class_names[k]) == 0) {
      *out = (vtl_sched_class)k;
      return 0;
    }
  return VTL_ENOENT;
}

void vtl_scheduler_config_defaults(vtl_sched_class cls, vtl_scheduler_config *c) {
  memset(c, 0, sizeof *c);
  c->cls = cls;
  c->class_name = class_names[cls];
  c->num_train_timesteps = 1000;
  c->beta_start = 0.0001;
  c->beta_end = 0.02;
  c->beta_schedule = VTL_BETAS_LINEAR;
  c->prediction = VTL_PRED_EPSILON;
  c->spacing = (cls == VTL_SCHED_DDIM || cls == VTL_SCHED_LCM)
                   ? VTL_SPACING_LEADING
                   : VTL_SPACING_LINSPACE;
  c->set_alpha_to_one = true;
  c->clip_sample = cls == VTL_SCHED_DDIM;
  c->clip_sample_range = 1.0;
  c->sigma_min = c->sigma_max = NAN;
  c->solver_order = 2;
  c->algorithm = VTL_DPM_PLUSPLUS;
  c->lower_order_final = true;
  c->lambda_min_clipped = -INFINITY;
  c->original_inference_steps = 50;
  c->timestep_scaling = 10.0;
  if (cls == VTL_SCHED_LCM) {
    c->beta_start = 0.00085;
    c->beta_end = 0.012;
    c->beta_schedule = VTL_BETAS_SCALED_LINEAR;
  }
}

void vtl_scheduler_config_free(vtl_scheduler_config *c) {
  free(c->trained_betas);
  c->trained_betas = NULL;
}

/* Which classes take which key (the __init__ parameters in 0.27.2). */
#define C_DDIM (1u << VTL_SCHED_DDIM)
#define C_EULER (1u << VTL_SCHED_EULER)
#define C_EULER_A (1u << VTL_SCHED_EULER_A)
#define C_DPM (1u << VTL_SCHED_DPM)
#define C_LCM (1u << VTL_SCHED_LCM)
#define C_ALL (C_DDIM | C_EULER | C_EULER_A | C_DPM | C_LCM)

static const struct {
  const char *key;
  unsigned classes; /* 0: another diffusers class's key, always ignored */
} known_keys[] = {
    {"num_train_timesteps", C_ALL},
    {"beta_start", C_ALL},
    {"beta_end", C_ALL},
    {"beta_schedule", C_ALL},
    {"trained_betas", C_ALL},
    {"prediction_type", C_ALL},
    {"timestep_spacing", C_ALL},
    {"steps_offset", C_ALL},
    {"rescale_betas_zero_snr", C_ALL},
    {"clip_sample", C_DDIM | C_LCM},
    {"clip_sample_range", C_DDIM | C_LCM},
    {"set_alpha_to_one", C_DDIM | C_LCM},
    {"thresholding", C_DDIM | C_DPM | C_LCM},
    {"dynamic_thresholding_ratio", C_DDIM | C_DPM | C_LCM},
    {"sample_max_value", C_DDIM | C_DPM | C_LCM},
    {"interpolation_type", C_EULER},
    {"use_karras_sigmas", C_EULER | C_DPM},
    {"sigma_min", C_EULER},
    {"sigma_max", C_EULER},
    {"timestep_type", C_EULER},
    {"solver_order", C_DPM},
    {"algorithm_type", C_DPM},
    {"solver_type", C_DPM},
    {"lower_order_final", C_DPM},
    {"euler_at_final", C_DPM},
    {"use_lu_lambdas", C_DPM},
    {"final_sigmas_type", C_DPM},
    {"lambda_min_clipped", C_DPM},
    {"variance_type", C_DPM},
    {"original_inference_steps", C_LCM},
    {"timestep_scaling", C_LCM},
    /* PNDMScheduler (the scheduler_config.json of SD 1.x/2.x folders) */
    {"skip_prk_steps", 0},
};

static bool json_num(json_t *v, double *out) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return true;
  }
  if (json_is_string(v)) { /* vtl_json_load_python's bare literals */
    const char *s = json_string_value(v);
    if (strcmp(s, "Infinity") == 0) *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0) *out = -INFINITY;
    else if (strcmp(s, "NaN") == 0) *out = NAN;
    else return false;
    return true;
  }
  return false;
}

static bool json_int(json_t *v, long long lo, long long hi, long long *out) {
  double d = json_is_real(v) ? json_real_value(v) : 0.5;
  if (json_is_integer(v)) {
    *out = (long long)json_integer_value(v);
  } else if (d == floor(d) && fabs(d) < 9e15) { /* 1000.0 */
    *out = (long long)d;
  } else {
    return false;
  }
  return *out >= lo && *out <= hi;
}

/* Index of v's string in names (count entries), or -1. */
static int json_enum(json_t *v, const char *const *names, int count) {
  if (!json_is_string(v)) return -1;
  for (int k = 0; k < count; k++)
    if (strcmp(json_string_value(v), names[k]) == 0) return k;
  return -1;
}

#define ENUM(v, ...)                                                        \
  json_enum((v), (const char *const[]){__VA_ARGS__},                        \
            (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)))

/* Parses one key the class takes. Returns 0 or a VTL_E* code with msg. */
static int parse_key(vtl_scheduler_config *c, const char *key, json_t *v,
                     char *msg, size_t msglen) {
  long long ll;
  int e;
  const char *cls = c->class_name;
#define BAD_TYPE(what)                                                       \
  return cfail(msg, msglen, VTL_ETYPE, "%s config: %s must be %s", cls, key, \
               what)
#define UNSUPPORTED(...)                                                     \
  do {                                                                       \
    int k_ = snprintf(msg, msglen, "%s config: %s ", cls, key);              \
    if (k_ >= 0 && (size_t)k_ < msglen)                                      \
      snprintf(msg + k_, msglen - (size_t)k_, __VA_ARGS__);                  \
    return VTL_EUNSUPPORTED;                                                 \
  } while (0)
#define BOOL_INTO(field)                                                     \
  do {                                                                       \
    if (!json_is_boolean(v)) BAD_TYPE("true or false");                      \
    (field) = json_is_true(v);                                               \
  } while (0)
/* Optional[bool] = False: null counts as false */
#define OPT_BOOL_INTO(field)                                                 \
  do {                                                                       \
    if (json_is_null(v)) (field) = false;                                    \
    else BOOL_INTO(field);                                                   \
  } while (0)
#define NUM_INTO(field)                                                      \
  do {                                                                       \
    if (!json_num(v, &(field))) BAD_TYPE("a number");                        \
  } while (0)

  if (strcmp(key, "num_train_timesteps") == 0) {
    if (!json_int(v, 1, 1000000, &ll)) BAD_TYPE("an integer in [1, 1000000]");
    c->num_train_timesteps = (int)ll;
  } else if (strcmp(key, "beta_start") == 0) {
    NUM_INTO(c->beta_start);
  } else if (strcmp(key, "beta_end") == 0) {
    NUM_INTO(c->beta_end);
  } else if (strcmp(key, "beta_schedule") == 0) {
    if ((e = ENUM(v, "linear", "scaled_linear", "squaredcos_cap_v2")) < 0)
      UNSUPPORTED("%s is not implemented (linear, scaled_linear, "
                  "squaredcos_cap_v2)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    if (c->beta_schedule != VTL_BETAS_TRAINED) c->beta_schedule = e;
  } else if (strcmp(key, "trained_betas") == 0) {
    if (json_is_null(v)) return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > 1000000)
      BAD_TYPE("null or an array of numbers");
    float *b = malloc(json_array_size(v) * sizeof *b);
    if (!b) return cfail(msg, msglen, VTL_ENOMEM, "out of memory");
    for (size_t k = 0; k < json_array_size(v); k++) {
      double d;
      if (!json_num(json_array_get(v, k), &d)) {
        free(b);
        BAD_TYPE("null or an array of numbers");
      }
      b[k] = (float)d; /* torch.tensor(trained_betas, dtype=float32) */
    }
    free(c->trained_betas);
    c->trained_betas = b;
    c->beta_schedule = VTL_BETAS_TRAINED;
    /* the length is checked against num_train_timesteps after all keys */
    c->trained_betas_count = (int)json_array_size(v);
  } else if (strcmp(key, "prediction_type") == 0) {
    e = ENUM(v, "epsilon", "v_prediction", "sample", "original_sample");
    /* "original_sample" is an alias of "sample" in Euler only */
    if (e < 0 || (e == 3 && c->cls != VTL_SCHED_EULER))
      UNSUPPORTED("%s is not a prediction type of this class",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    c->prediction = e == 0 ? VTL_PRED_EPSILON : e == 1 ? VTL_PRED_V
                                                       : VTL_PRED_SAMPLE;
  } else if (strcmp(key, "timestep_spacing") == 0) {
    if ((e = ENUM(v, "linspace", "leading", "trailing")) < 0)
      UNSUPPORTED("%s is not implemented (linspace, leading, trailing)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    c->spacing = e;
  } else if (strcmp(key, "steps_offset") == 0) {
    if (!json_int(v, -1000000, 1000000, &ll)) BAD_TYPE("an integer");
    c->steps_offset = (int)ll;
  } else if (strcmp(key, "rescale_betas_zero_snr") == 0) {
    BOOL_INTO(c->rescale_betas_zero_snr);
  } else if (strcmp(key, "clip_sample") == 0) {
    BOOL_INTO(c->clip_sample);
  } else if (strcmp(key, "clip_sample_range") == 0) {
    NUM_INTO(c->clip_sample_range);
  } else if (strcmp(key, "set_alpha_to_one") == 0) {
    BOOL_INTO(c->set_alpha_to_one);
  } else if (strcmp(key, "thresholding") == 0) {
    bool on;
    BOOL_INTO(on);
    if (on) UNSUPPORTED("true (dynamic thresholding) is not implemented");
  } else if (strcmp(key, "dynamic_thresholding_ratio") == 0 ||
             strcmp(key, "sample_max_value") == 0) {
    double d;
    NUM_INTO(d); /* only read by thresholding, which we refuse */
  } else if (strcmp(key, "interpolation_type") == 0) {
    if ((e = ENUM(v, "linear", "log_linear")) < 0)
      UNSUPPORTED("%s is not implemented (linear, log_linear)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    c->log_linear = e == 1;
  } else if (strcmp(key, "use_karras_sigmas") == 0) {
    OPT_BOOL_INTO(c->use_karras_sigmas);
  } else if (strcmp(key, "sigma_min") == 0 || strcmp(key, "sigma_max") == 0) {
    double *f = strcmp(key, "sigma_min") == 0 ? &c->sigma_min : &c->sigma_max;
    if (json_is_null(v)) *f = NAN;
    else NUM_INTO(*f);
  } else if (strcmp(key, "timestep_type") == 0) {
    /* diffusers treats anything but "continuous" as discrete; we refuse
     * values we do not know instead of guessing */
    if ((e = ENUM(v, "discrete", "continuous")) < 0)
      UNSUPPORTED("%s is not implemented (discrete, continuous)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    c->continuous_timesteps = e == 1;
  } else if (strcmp(key, "solver_order") == 0) {
    if (!json_int(v, 1, 1000, &ll)) BAD_TYPE("a positive integer");
    if (ll > 3) UNSUPPORTED("%lld is not implemented (1, 2, 3)", ll);
    c->solver_order = (int)ll;
  } else if (strcmp(key, "algorithm_type") == 0) {
    if ((e = ENUM(v, "dpmsolver++", "dpmsolver", "sde-dpmsolver++",
                  "sde-dpmsolver", "deis")) < 0)
      UNSUPPORTED("%s is not implemented",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    /* diffusers re-registers "deis" as "dpmsolver++" */
    c->algorithm = e == 4 ? VTL_DPM_PLUSPLUS : (vtl_dpm_algorithm)e;
  } else if (strcmp(key, "solver_type") == 0) {
    if ((e = ENUM(v, "midpoint", "heun", "logrho", "bh1", "bh2")) < 0)
      UNSUPPORTED("%s is not implemented (midpoint, heun)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    /* diffusers re-registers logrho/bh1/bh2 as "midpoint" */
    c->heun = e == 1;
  } else if (strcmp(key, "lower_order_final") == 0) {
    BOOL_INTO(c->lower_order_final);
  } else if (strcmp(key, "euler_at_final") == 0) {
    BOOL_INTO(c->euler_at_final);
  } else if (strcmp(key, "use_lu_lambdas") == 0) {
    OPT_BOOL_INTO(c->use_lu_lambdas);
  } else if (strcmp(key, "final_sigmas_type") == 0) {
    if ((e = ENUM(v, "zero", "sigma_min")) < 0)
      UNSUPPORTED("%s is not one of zero, sigma_min",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
    c->final_sigma_min = e == 1;
  } else if (strcmp(key, "lambda_min_clipped") == 0) {
    NUM_INTO(c->lambda_min_clipped);
  } else if (strcmp(key, "variance_type") == 0) {
    if (!json_is_null(v))
      UNSUPPORTED("%s is not implemented (only null)",
                  json_is_string(v) ? json_string_value(v) : "(not a string)");
  } else if (strcmp(key, "original_inference_steps") == 0) {
    if (!json_int(v, 1, 1000000, &ll)) BAD_TYPE("a positive integer");
    c->original_inference_steps = (int)ll;
  } else if (strcmp(key, "timestep_scaling") == 0) {
    NUM_INTO(c->timestep_scaling);
  } else {
    return cfail(msg, msglen, VTL_EUNSUPPORTED, "%s config: %s not handled",
                 cls, key);
  }
  return 0;
#undef BAD_TYPE
#undef UNSUPPORTED
#undef BOOL_INTO
#undef OPT_BOOL_INTO
#undef NUM_INTO
}

int vtl_scheduler_config_from_json(json_t *config, const char *class_name,
                                   vtl_scheduler_config *out, char *msg,
                                   size_t msglen) {
  vtl_sched_class cls;
  memset(out, 0, sizeof *out);
  if (!json_is_object(config))
    return cfail(msg, msglen, VTL_ETYPE, "scheduler config is not an object");
  if (!class_name) class_name = json_string_value(json_object_get(config, "_class_name"));
  if (!class_name)
    return cfail(msg, msglen, VTL_EINVAL, "scheduler config has no _class_name");
  if (vtl_scheduler_class_from_name(class_name, &cls) != 0)
    return cfail(msg, msglen, VTL_EUNSUPPORTED,
                 "scheduler class %s is not implemented", class_name);
  vtl_scheduler_config_defaults(cls, out);

  const char *key;
  json_t *v;
  json_object_foreach(config, key, v) {
    if (key[0] == '_') continue; /* _class_name, _diffusers_version ... */
    size_t k, nk = sizeof known_keys / sizeof *known_keys;
    for (k = 0; k < nk && strcmp(known_keys[k].key, key) != 0; k++) {}
    if (k == nk) {
      /* A key of a newer diffusers or of a class we do not know: harmless
       * only when it switches nothing on. */
      if (json_is_false(v) || json_is_null(v)) continue;
      vtl_scheduler_config_free(out);
      return cfail(msg, msglen, VTL_EUNSUPPORTED,
                   "%s config: unknown key %s (not implemented)", class_name,
                   key);
    }
    if (!(known_keys[k].classes & (1u << cls))) continue; /* from_config ignores it */
    int rc = parse_key(out, key, v, msg, msglen);
    if (rc) {
      vtl_scheduler_config_free(out);
      return rc;
    }
  }

  /* Combinations diffusers refuses or that we do not implement. */
  const char *bad = NULL;
  if (out->trained_betas && out->trained_betas_count != out->num_train_timesteps)
    bad = "trained_betas must have num_train_timesteps entries";
  else if (cls == VTL_SCHED_EULER_A && out->prediction == VTL_PRED_SAMPLE)
    bad = "prediction_type sample is not implemented by diffusers for this class";
  else if (cls == VTL_SCHED_DPM && !out->final_sigma_min &&
           (out->algorithm == VTL_DPM_PLAIN || out->algorithm == VTL_DPM_SDE_PLAIN))
    bad = "final_sigmas_type zero needs algorithm_type dpmsolver++ or "
          "sde-dpmsolver++ (diffusers refuses it)";
  else if (cls == VTL_SCHED_DPM && out->solver_order == 3 &&
           (out->algorithm == VTL_DPM_SDE_PLAIN ||
            out->algorithm == VTL_DPM_SDE_PLUSPLUS))
    bad = "solver_order 3 with an SDE algorithm is not implemented (diffusers "
          "has no third-order SDE update)";
  if (bad) {
    vtl_scheduler_config_free(out);
    return cfail(msg, msglen, VTL_EUNSUPPORTED, "%s config: %s", class_name, bad);
  }
  return 0;
}

/* ======================================================================
 * numpy and torch, the parts the schedules use
 * ====================================================================== */

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

static void torch_linspace_f32(double start, double end, int steps, float *out) {
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

static float torch_expf(float d) {
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

static float torch_logf(float d0) {
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
static void np_linspace(double start, double stop, int num, bool endpoint,
                        double *out) {
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
static int np_arange(double start, double stop, double step, double *out, int cap) {
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
static double np_interp(double x, const float *fp, int T) {
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
  np_linspace(0, 1, n, true, out); /* ramp */
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
    return sfail(s, VTL_ENOMEM, "out of memory");
  }
  switch (c->beta_schedule) {
  case VTL_BETAS_TRAINED:
    if (!c->trained_betas || c->trained_betas_count != T) {
      free(betas);
      return sfail(s, VTL_EINVAL, "trained_betas must have %d entries", T);
    }
    memcpy(betas, c->trained_betas, (size_t)T * sizeof *betas);
    break;
  case VTL_BETAS_LINEAR:
    torch_linspace_f32(c->beta_start, c->beta_end, T, betas);
    break;
  case VTL_BETAS_SCALED_LINEAR:
    torch_linspace_f32(sqrt(c->beta_start), sqrt(c->beta_end), T, betas);
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
  if (c->rescale_betas_zero_snr && is_sigma_class(c->cls))
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
  case VTL_SPACING_LINSPACE:
    np_linspace(0, T - 1, n, true, ts);
    for (int k = 0; k < n; k++) {
      /* DDIM rounds (half to even); Euler keeps the fractions, in float32 */
      ts[k] = c->cls == VTL_SCHED_DDIM ? rint(ts[k]) : (double)(float)ts[k];
    }
    break;
  case VTL_SPACING_LEADING: {
    int ratio = T / n;
    for (int k = 0; k < n; k++) ts[k] = (double)k * ratio + c->steps_offset;
    break;
  }
  case VTL_SPACING_TRAILING: {
    double ratio = (double)T / n;
    N = np_arange(T, 0, -ratio, ts, cap);
    if (N < 0) return sfail(s, VTL_EINVAL, "trailing spacing: too many timesteps");
    for (int k = 0; k < N; k++) ts[k] = rint(ts[k]) - 1;
    break;
  }
  }
  /* linspace and leading were built ascending: reverse ([::-1]) */
  if (c->spacing != VTL_SPACING_TRAILING)
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
    float lambda = torch_logf(sqrtf(acp)) - torch_logf(sqrtf(1.0f - acp));
    if ((double)lambda < c->lambda_min_clipped) lo = mid + 1;
    else hi = mid;
  }
  int last = T - lo, N = n;
  switch (c->spacing) {
  case VTL_SPACING_LINSPACE: {
    double *tmp = malloc((size_t)(n + 1) * sizeof *tmp);
    if (!tmp) return sfail(s, VTL_ENOMEM, "out of memory");
    np_linspace(0, last - 1, n + 1, true, tmp);
    for (int k = 0; k < n; k++) ts[k] = rint(tmp[n - k]); /* [::-1][:-1] */
    free(tmp);
    break;
  }
  case VTL_SPACING_LEADING: {
    int ratio = last / (n + 1);
    for (int k = 0; k < n; k++) ts[k] = (double)(n - k) * ratio + c->steps_offset;
    break;
  }
  case VTL_SPACING_TRAILING:
    N = np_arange(last, 0, -((double)T / n), ts, cap);
    if (N < 0) return sfail(s, VTL_EINVAL, "trailing spacing: too many timesteps");
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
    return sfail(s, VTL_EINVAL, "original_inference_steps %d > num_train_timesteps %d",
                 orig, T);
  if (n > orig)
    return sfail(s, VTL_EINVAL, "LCM: %d steps > original_inference_steps %d", n, orig);
  int k = T / orig;
  /* inference_indices = floor(np.linspace(0, orig, n, endpoint=False)) */
  np_linspace(0, orig, n, false, ts);
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
    rc = sfail(s, VTL_ENOMEM, "out of memory");
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
    np_linspace(0, 1, n, true, sig);
    for (int k = 0; k < n; k++) sig[k] = exp(lmax + sig[k] * (lmin - lmax));
    m = n;
  } else if (c->cls == VTL_SCHED_EULER && c->log_linear) {
    /* torch.linspace(log(sigma[-1]), log(sigma[0]), n + 1).exp(): n + 1
     * sigmas for n timesteps (diffusers 0.27.2 as is) */
    float *l = malloc((size_t)(n + 1) * sizeof *l);
    if (!l) {
      rc = sfail(s, VTL_ENOMEM, "out of memory");
      goto done;
    }
    torch_linspace_f32(logs[T - 1], logs[0], n + 1, l);
    for (int k = 0; k <= n; k++) sig[k] = torch_expf(l[k]);
    free(l);
    m = n + 1;
  } else {
    for (int k = 0; k < *N; k++) sig[k] = np_interp(ts[k], table, T);
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
    rc = sfail(s, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (int k = 0; k < m; k++) s->sigmas[k] = (float)sig[k];
  s->sigmas[m] = c->cls == VTL_SCHED_DPM && c->final_sigma_min ? table[0] : 0.0f;

  if (c->cls == VTL_SCHED_EULER && c->continuous_timesteps &&
      c->prediction == VTL_PRED_V) {
    /* timesteps = 0.25 * log(sigma) for the sigmas before the final 0 */
    for (int k = 0; k < m; k++) ts[k] = (double)(0.25f * torch_logf(s->sigmas[k]));
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
    return sfail(s, VTL_EINVAL, "num_train_timesteps %d out of range", T);
  if (n < 1 || n > T)
    return sfail(s, VTL_EINVAL, "%d inference steps: must be in [1, %d]", n, T);
  if ((rc = make_alphas(s, c)) != 0) return rc;

  int cap = n + 2, N = n;
  double *ts = malloc((size_t)cap * sizeof *ts);
  if (!ts) return sfail(s, VTL_ENOMEM, "out of memory");
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
    rc = sfail(s, VTL_EINVAL, "empty schedule for %d steps", n);
    goto fail;
  }
  if (is_sigma_class(c->cls) && (rc = sigma_schedule(s, ts, &N, n)) != 0) goto fail;

  s->integer_timesteps = !(c->cls == VTL_SCHED_EULER || c->cls == VTL_SCHED_EULER_A);
  s->num_steps = N;
  s->timesteps = malloc((size_t)N * sizeof *s->timesteps);
  if (!s->timesteps) {
    rc = sfail(s, VTL_ENOMEM, "out of memory");
    goto fail;
  }
  for (int k = 0; k < N; k++) {
    s->timesteps[k] = (float)ts[k];
    /* DDIM and LCM index alphas_cumprod by value; torch wraps a negative
     * index (acp_at), anything else would raise */
    if (!is_sigma_class(c->cls) && (ts[k] < -T || ts[k] > T - 1)) {
      rc = sfail(s, VTL_EINVAL, "timestep %g out of [0, %d] (%d steps, spacing)",
                 ts[k], T - 1, n);
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
        c->spacing == VTL_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
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
    return sfail(s, VTL_ERANGE, "timestep index %d outside the schedule [0, %d)",
                 i, s->num_steps);
  return 0;
}

/* Sets the step index on the first call, as diffusers does. */
static int init_step_index(vtl_scheduler *s, int i) {
  int rc = check_i(s, i);
  if (rc) return rc;
  if (s->step_index < 0) s->step_index = effective_step_index(s, i);
  if (s->step_index < 0 || s->step_index >= s->num_steps)
    return sfail(s, VTL_ERANGE, "step index %d outside the schedule", s->step_index);
  return 0;
}

int vtl_scheduler_set_begin_index(vtl_scheduler *s, int begin) {
  if (begin < 0 || begin >= s->num_steps)
    return sfail(s, VTL_ERANGE, "begin index %d outside [0, %d)", begin, s->num_steps);
  if (s->config.cls != VTL_SCHED_DDIM) s->begin_index = begin; /* DDIM has none */
  return 0;
}

int vtl_scheduler_set_strength(vtl_scheduler *s, double strength, int *begin,
                               int *count) {
  int n = s->inference_steps;
  if (!(strength >= 0 && strength <= 1))
    return sfail(s, VTL_ERANGE, "strength %g outside [0, 1]", strength);
  /* int(n * s): the IEEE double product truncated (0.3 * 10 = 3.0000000000000004,
   * 0.7 * 10 = 7.000000000000001, 0.29 * 100 = 28.999999999999996 -> 28) */
  int init = (int)((double)n * strength);
  if (init > n) init = n;
  int t_start = n - init > 0 ? n - init : 0;
  if (n - t_start <= 0)
    return sfail(s, VTL_ERANGE, "strength %g leaves no step of %d", strength, n);
  *begin = t_start * s->order;
  *count = n - t_start;
  return vtl_scheduler_set_begin_index(s, *begin);
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
  /* t - T // n for every spacing (see the header of this file) */
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
    return sfail(s, VTL_ERANGE, "stepped past the last sigma (step %d)", si);
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
    return sfail(s, VTL_ERANGE, "stepped past the last sigma (step %d)", si);
  if (s->mo_n != n) {
    if (s->mo_n) return sfail(s, VTL_EINVAL, "sample size changed between steps");
    float *buf = malloc((size_t)order * n * sizeof *buf);
    if (!buf) return sfail(s, VTL_ENOMEM, "out of memory");
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
    return sfail(s, VTL_ERANGE, "order %d update at step %d", use, si);

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
  float l_t = torch_logf(a_t) - torch_logf(s_t), l_s0 = torch_logf(a_s0) - torch_logf(s_s0);
  float h = l_t - l_s0;
  float em = torch_expf(-h) - 1.0f, ep = torch_expf(h) - 1.0f;
  float sq_pp = sqrtf(1.0f - torch_expf(-2.0f * h)), sq_plain = sqrtf(torch_expf(2.0f * h) - 1.0f);
  float c_x, c0, c1 = 0, c2 = 0, c_n = 0, r0 = 0, r1 = 0;

  if (use == 1) {
    /* dpm_solver_first_order_update */
    switch (c->algorithm) {
    case VTL_DPM_PLUSPLUS: c_x = s_t / s_s0; c0 = -(a_t * em); break;
    case VTL_DPM_PLAIN: c_x = a_t / a_s0; c0 = -(s_t * ep); break;
    case VTL_DPM_SDE_PLUSPLUS:
      c_x = s_t / s_s0 * torch_expf(-h);
      c0 = a_t * (1.0f - torch_expf(-2.0f * h));
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
    float l_s1 = torch_logf(a_s1) - torch_logf(s_s1), h0 = l_s0 - l_s1;
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
        float em2 = 1.0f - torch_expf(-2.0f * h);
        c_x = s_t / s_s0 * torch_expf(-h);
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
      float l_s2 = torch_logf(a_s2) - torch_logf(s_s2), h1 = l_s1 - l_s2;
      r1 = h1 / h;
      if (c->algorithm == VTL_DPM_PLUSPLUS) {
        c_x = s_t / s_s0;
        c0 = -(a_t * em);
        c1 = a_t * (em / h + 1.0f);
        c2 = -(a_t * ((torch_expf(-h) - 1.0f + h) / (h * h) - 0.5f));
      } else {
        c_x = a_t / a_s0;
        c0 = -(s_t * ep);
        c1 = -(s_t * (ep / h - 1.0f));
        c2 = -(s_t * ((torch_expf(h) - 1.0f - h) / (h * h) - 0.5f));
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
    return sfail(s, VTL_EINVAL, "%s step %d needs a noise tensor",
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
  if (!is_sigma_class(cls)) {
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
