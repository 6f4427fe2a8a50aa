/* scheduler_config.c — a diffusers scheduler config.json to a
 * vtl_scheduler_config (scheduler.h): the class names, each class's
 * defaults, and the key-by-key reader with its table of which class takes
 * which key. The arithmetic lives in scheduler_schedule.c (the schedule)
 * and scheduler_step.c (the steps); scheduler_schedule.c's header explains
 * the precision rules they share.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "vtl_error.h"

static const char *const class_names[] = {
    "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler", "LCMScheduler"};

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
                   ? VTL_SCHED_SPACING_LEADING
                   : VTL_SCHED_SPACING_LINSPACE;
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
