/* scheduler.h — the diffusers noise schedulers, in plain C.
 *
 * Five classes of diffusers 0.27.2, reproduced to float32 rounding:
 *
 *   class name                        enum              scale_model_input  noise/step
 *   DDIMScheduler (eta 0)             VTL_SCHED_DDIM     identity           none
 *   EulerDiscreteScheduler (churn 0)  VTL_SCHED_EULER    x/sqrt(s^2+1)      none (*)
 *   EulerAncestralDiscreteScheduler   VTL_SCHED_EULER_A  x/sqrt(s^2+1)      every step
 *   DPMSolverMultistepScheduler       VTL_SCHED_DPM      identity           sde-* only
 *   LCMScheduler                      VTL_SCHED_LCM      identity           all but the last
 *
 *   (*) diffusers draws one tensor per Euler step and, with s_churn = 0,
 *       does not use it; we neither draw nor need it.
 *
 * Use, as the diffusers pipelines do (the loop of StableDiffusionPipeline):
 *
 *   vtl_scheduler_config cfg;   vtl_scheduler s;
 *   vtl_scheduler_config_from_json(json, NULL, &cfg, msg, sizeof msg);
 *   vtl_scheduler_init(&s, &cfg, steps);            x *= s.init_noise_sigma
 *   for (int i = 0; i < s.num_steps; i++) {          t = s.timesteps[i]
 *     vtl_scheduler_scale_model_input(&s, i, x, xin, n);
 *     e = unet(xin, t);
 *     vtl_scheduler_step(&s, i, e, x, noise_or_NULL, x, NULL, n);
 *   }
 *   vtl_scheduler_close(&s);  vtl_scheduler_config_free(&cfg);
 *
 * img2img: vtl_scheduler_set_strength() computes the first index `begin` and
 * sets the begin index; then vtl_scheduler_add_noise(&s, begin, ...) and the
 * same loop from i = begin.
 *
 * Indices. `i` is always an index into s->timesteps (the timestep diffusers
 * is handed is s->timesteps[i]). Like diffusers, the sigma schedulers keep
 * their own step counter (`step_index`): the first scale/step call sets it
 * from the begin index, or else from the position of timesteps[i] in the
 * schedule, and every step() advances it; DDIM and LCM read alphas at the
 * timestep value. So call scale_model_input/step once per step, in order.
 *
 * Arrays: x, model output, noise, outputs are n contiguous float32 values
 * (any layout: every operation is elementwise). Outputs may alias the
 * sample or model-output inputs; `denoised` must not alias an input.
 *
 * Not a handle in the libuv sense: no loop, no callbacks; init/close are
 * synchronous and the struct is caller-allocated. Not thread-safe: one
 * scheduler per render.
 */
#ifndef VTL_SCHEDULER_H
#define VTL_SCHEDULER_H

#include <jansson.h>

#include "pyjson.h" /* configs carry Python's -Infinity */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  VTL_SCHED_DDIM,
  VTL_SCHED_EULER,
  VTL_SCHED_EULER_A,
  VTL_SCHED_DPM,
  VTL_SCHED_LCM
} vtl_sched_class;

typedef enum {
  VTL_BETAS_LINEAR,        /* torch.linspace(start, end, T) in float32 */
  VTL_BETAS_SCALED_LINEAR, /* linspace of the square roots, squared */
  VTL_BETAS_SQUAREDCOS,    /* "squaredcos_cap_v2": cosine alpha-bar, max 0.999 */
  VTL_BETAS_TRAINED        /* config.trained_betas */
} vtl_beta_schedule;

typedef enum { VTL_PRED_EPSILON, VTL_PRED_V, VTL_PRED_SAMPLE } vtl_prediction;
typedef enum {
  VTL_SCHED_SPACING_LINSPACE,
  VTL_SCHED_SPACING_LEADING,
  VTL_SCHED_SPACING_TRAILING
} vtl_sched_spacing;
typedef enum {
  VTL_DPM_PLUSPLUS,     /* "dpmsolver++" (also "deis", which diffusers maps here) */
  VTL_DPM_PLAIN,        /* "dpmsolver" */
  VTL_DPM_SDE_PLUSPLUS, /* "sde-dpmsolver++": needs noise every step */
  VTL_DPM_SDE_PLAIN     /* "sde-dpmsolver" */
} vtl_dpm_algorithm;

/* A scheduler's config.json, every key that changes the arithmetic of one of
 * our classes. Defaults are the class's own (they differ: see
 * vtl_scheduler_config_defaults). */
typedef struct {
  vtl_sched_class cls;
  const char *class_name;      /* static string, e.g. "DDIMScheduler" */
  int num_train_timesteps;     /* T */
  double beta_start, beta_end; /* Python floats */
  vtl_beta_schedule beta_schedule;
  float *trained_betas;        /* [trained_betas_count] malloc'd, or NULL; owned */
  int trained_betas_count;     /* must equal T (checked when parsed) */
  vtl_prediction prediction;   /* prediction_type */
  vtl_sched_spacing spacing;   /* timestep_spacing (LCM: parsed, unused) */
  int steps_offset;            /* added to "leading" timesteps */
  bool rescale_betas_zero_snr;
  /* DDIM, LCM */
  bool set_alpha_to_one;       /* alpha at t = -1: 1, else alphas_cumprod[0] */
  bool clip_sample;            /* clamp x0 to +-clip_sample_range */
  double clip_sample_range;
  /* Euler */
  bool log_linear;             /* interpolation_type "log_linear" (else "linear") */
  bool use_karras_sigmas;      /* Euler, DPM */
  double sigma_min, sigma_max; /* Karras range; NAN = from the schedule */
  bool continuous_timesteps;   /* timestep_type "continuous" (+ v_prediction) */
  /* DPM-Solver */
  int solver_order;            /* 1..3 */
  vtl_dpm_algorithm algorithm;
  bool heun;                   /* solver_type "heun" (else "midpoint") */
  bool lower_order_final, euler_at_final, use_lu_lambdas;
  bool final_sigma_min;        /* final_sigmas_type "sigma_min" (else "zero") */
  double lambda_min_clipped;   /* may be -INFINITY */
  /* LCM */
  int original_inference_steps;
  double timestep_scaling;
} vtl_scheduler_config;

typedef struct {
  void *data;                  /* user pointer, untouched */
  vtl_scheduler_config config; /* copy; its trained_betas is NULL (not owned) */
  int num_train;               /* T */
  float *alphas_cumprod;       /* [T] malloc'd, float32 as torch holds it */
  float final_alpha_cumprod;   /* DDIM/LCM alpha for "t = -1" */
  int num_steps;               /* N: entries in timesteps (usually the steps asked) */
  float *timesteps;            /* [N] malloc'd, descending; what the UNet gets */
  bool integer_timesteps;      /* diffusers holds them as int64 (DDIM, DPM, LCM) */
  int num_sigmas;              /* N+1 (Euler log_linear: see scheduler_schedule.c); 0 = none */
  float *sigmas;               /* [num_sigmas] malloc'd, or NULL (DDIM, LCM) */
  float init_noise_sigma;      /* multiply the starting noise by this */
  int order;                   /* diffusers' class attribute `order`: 1 for all five */
  int begin_index;             /* -1 until set (img2img) */
  int step_index;              /* -1 until the first scale/step call */
  float *model_outputs[3];     /* DPM: last converted outputs, oldest first, [n]
                                  each; they rotate through mo_mem */
  float *mo_mem;               /* DPM: [order * n] malloc'd, behind model_outputs */
  size_t mo_n;                 /* DPM: n of model_outputs (0 = not allocated) */
  int lower_order_nums;        /* DPM: steps taken so far, capped at the order */
  int inference_steps;         /* the steps asked for (diffusers' num_inference_steps) */
  char error[200];             /* why init or a call failed */
} vtl_scheduler;

/* The class's defaults (diffusers' __init__ signature). */
void vtl_scheduler_config_defaults(vtl_sched_class cls, vtl_scheduler_config *c);

/* Reads a scheduler config object (scheduler_config.json, or a refkit case's
 * params.config). class_name selects the class; NULL takes the config's
 * "_class_name". Every key is read:
 *   1. keys starting with '_' are metadata and skipped;
 *   2. a key the class takes is parsed; a value we do not implement
 *      (thresholding, variance_type "learned", an unknown spacing ...) is
 *      refused: VTL_EUNSUPPORTED;
 *   3. a key only other classes take is ignored, as diffusers' from_config
 *      ignores it (model folders often carry another class's config);
 *   4. a key no class we know takes is refused: VTL_EUNSUPPORTED.
 * Wrong JSON types give VTL_ETYPE. Numbers may also be the strings
 * "Infinity", "-Infinity", "NaN" (what vtl_json_load_python makes of
 * Python's bare literals). Returns 0 or the code, with msg set. On success
 * *out owns trained_betas: release with vtl_scheduler_config_free. */
int vtl_scheduler_config_from_json(json_t *config, const char *class_name,
                                   vtl_scheduler_config *out, char *msg,
                                   size_t msglen);
void vtl_scheduler_config_free(vtl_scheduler_config *c);
/* "DDIMScheduler" -> VTL_SCHED_DDIM. Returns 0 or VTL_ENOENT. */
int vtl_scheduler_class_from_name(const char *name, vtl_sched_class *out);

/* Builds the schedule (betas, alphas_cumprod, timesteps, sigmas) for
 * num_inference_steps, i.e. Class(**config) + set_timesteps(steps).
 * Returns 0, VTL_EINVAL (steps out of range, a schedule diffusers would
 * index out of bounds), VTL_ENOMEM; s->error says why. Call close even when
 * init failed. */
int vtl_scheduler_init(vtl_scheduler *s, const vtl_scheduler_config *config,
                       int num_inference_steps);
void vtl_scheduler_close(vtl_scheduler *s);

/* diffusers' set_begin_index (DDIM has none: a no-op there, like
 * hasattr() in the pipeline). Returns 0 or VTL_ERANGE. */
int vtl_scheduler_set_begin_index(vtl_scheduler *s, int begin);

/* The img2img pipeline's get_timesteps(steps, strength) + set_begin_index:
 *   init = min(int(steps * strength), steps); t_start = max(steps - init, 0)
 *   *begin = t_start * order       (first index into s->timesteps)
 *   *count = steps - t_start       (denoising steps to run)
 * int() truncates the IEEE double product. Returns 0, or VTL_ERANGE when no
 * step is left (strength too small) or strength is not in [0, 1]. */
int vtl_scheduler_set_strength(vtl_scheduler *s, double strength, int *begin,
                               int *count);

/* scale_model_input(sample, timesteps[i]) into out. Returns 0 or VTL_ERANGE. */
int vtl_scheduler_scale_model_input(vtl_scheduler *s, int i, const float *sample,
                                    float *out, size_t n);

/* Whether step(i) will consume a noise tensor (diffusers' randn in step). */
bool vtl_scheduler_step_needs_noise(const vtl_scheduler *s, int i);

/* step(model_output, timesteps[i], sample).prev_sample into prev; the x0
 * estimate (pred_original_sample, LCM's denoised, DPM's converted output)
 * into denoised when it is not NULL. noise: the Gaussian tensor diffusers
 * draws in this step, required when vtl_scheduler_step_needs_noise, else
 * ignored. Returns 0, VTL_EINVAL (noise missing, n changed between DPM
 * steps), VTL_ERANGE (stepped past the schedule), VTL_ENOMEM. */
int vtl_scheduler_step(vtl_scheduler *s, int i, const float *model_output,
                       const float *sample, const float *noise, float *prev,
                       float *denoised, size_t n);

/* add_noise(original, noise, timesteps[i:i+1]) into out: the noised start
 * of img2img. Returns 0 or VTL_ERANGE. */
int vtl_scheduler_add_noise(const vtl_scheduler *s, int i, const float *original,
                            const float *noise, float *out, size_t n);



#endif /* VTL_SCHEDULER_H */
