/* case_scheduler.c — refkit kinds "scheduler" and "img2img_timesteps"
 * (README "Case kinds"): the engine's schedulers (engine/scheduler.h) on
 * the case's inputs.
 *
 * scheduler:          params {class, config, num_inference_steps}
 *   inputs  sample [S...], model_outputs [N, S...], noise (list)
 *   outputs timesteps [N] (int64 | float32), sigmas [N+1] (sigma classes),
 *           init_noise_sigma [1], scaled_model_inputs [N, S...],
 *           prev_samples [N, S...], denoised [N, S...] (LCM)
 * img2img_timesteps:  params {class, config, num_inference_steps, strength}
 *   inputs  init_latents [S...], noise [S...]
 *   outputs timesteps [kept], num_steps [1] (int64), noised_latents [S...]
 *
 * Noise: scheduler draws are the inputs.noise entries with where
 * "<Class>.step" and the step index (rc_noise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcheck.h"
#include "scheduler.h"
#include "vtl_error.h"

/* Reads params.class / config / num_inference_steps and builds *s. */
static int open_scheduler(rc_case *c, vtl_scheduler *s) {
  char msg[512];
  vtl_scheduler_config cfg;
  memset(s, 0, sizeof *s);
  json_t *steps = json_object_get(c->params, "num_inference_steps");
  const char *cls = json_string_value(json_object_get(c->params, "class"));
  if (!json_is_integer(steps))
    return rc_case_error(c, VTL_EPARSE, "params.num_inference_steps missing");
  int rc = vtl_scheduler_config_from_json(json_object_get(c->params, "config"), cls,
                                          &cfg, msg, sizeof msg);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  json_int_t n = json_integer_value(steps);
  rc = vtl_scheduler_init(s, &cfg, n > 0 && n < 1000000 ? (int)n : -1);
  vtl_scheduler_config_free(&cfg);
  if (rc) return rc_case_error(c, rc, "%s", s->error);
  return 0;
}

/* The timesteps s->timesteps[from..] in the dtype diffusers holds them. */
static int check_timesteps(rc_case *c, const vtl_scheduler *s, int from) {
  int64_t shape[1] = {s->num_steps - from};
  if (!s->integer_timesteps)
    return rc_check_f32(c, "timesteps", s->timesteps + from, 1, shape);
  int64_t *t = malloc((size_t)(shape[0] ? shape[0] : 1) * sizeof *t);
  if (!t) return rc_case_error(c, VTL_ENOMEM, "out of memory");
  for (int k = from; k < s->num_steps; k++) t[k - from] = (int64_t)s->timesteps[k];
  int rc = rc_check_i64(c, "timesteps", t, 1, shape);
  free(t);
  return rc;
}

static bool has_output(rc_case *c, const char *name) {
  return json_object_get(json_object_get(c->json, "outputs"), name) != NULL;
}

int run_scheduler(rc_case *c) {
  vtl_scheduler s;
  vtl_npy x0 = {0}, mo = {0};
  float *scaled = NULL, *prev = NULL, *den = NULL;
  int rc = open_scheduler(c, &s);
  if (rc) goto done;
  if ((rc = rc_input(c, "sample", &x0)) || (rc = rc_input(c, "model_outputs", &mo)))
    goto done;
  int N = s.num_steps;
  size_t n = x0.count;
  if (x0.dtype != VTL_NPY_F32 || mo.dtype != VTL_NPY_F32 || x0.ndim >= VTL_NPY_MAX_DIMS) {
    rc = rc_case_error(c, VTL_EINVAL, "sample and model_outputs must be float32, "
                                      "sample of fewer than %d dims", VTL_NPY_MAX_DIMS);
    goto done;
  }
  if (mo.count != (size_t)N * n) {
    rc = rc_case_error(c, VTL_EINVAL,
                       "model_outputs has %zu values, the schedule needs %d x %zu",
                       mo.count, N, n);
    goto done;
  }

  check_timesteps(c, &s, 0);
  if (has_output(c, "sigmas") && s.sigmas) {
    int64_t shape[1] = {s.num_sigmas};
    rc_check_f32(c, "sigmas", s.sigmas, 1, shape);
  }
  int64_t one[1] = {1};
  rc_check_f32(c, "init_noise_sigma", &s.init_noise_sigma, 1, one);

  scaled = malloc((size_t)N * n * sizeof *scaled);
  prev = malloc((size_t)N * n * sizeof *prev);
  den = malloc((size_t)N * n * sizeof *den);
  if (!scaled || !prev || !den) {
    rc = rc_case_error(c, VTL_ENOMEM, "out of memory");
    goto done;
  }
  char where[96];
  snprintf(where, sizeof where, "%s.step", s.config.class_name);
  const float *x = x0.data;
  for (int i = 0; i < N; i++) {
    vtl_npy noise = {0};
    size_t off = (size_t)i * n;
    if (vtl_scheduler_step_needs_noise(&s, i)) {
      if ((rc = rc_noise(c, where, i, &noise))) goto done;
      if (noise.count != n || noise.dtype != VTL_NPY_F32) {
        vtl_npy_free(&noise);
        rc = rc_case_error(c, VTL_EINVAL, "noise at step %d has the wrong size", i);
        goto done;
      }
    }
    rc = vtl_scheduler_scale_model_input(&s, i, x, scaled + off, n);
    if (!rc)
      rc = vtl_scheduler_step(&s, i, (const float *)mo.data + off, x, noise.data,
                              prev + off, den + off, n);
    vtl_npy_free(&noise);
    if (rc) {
      rc = rc_case_error(c, rc, "step %d: %s", i, s.error);
      goto done;
    }
    x = prev + off;
  }
  int64_t shape[VTL_NPY_MAX_DIMS] = {N};
  memcpy(shape + 1, x0.shape, (size_t)x0.ndim * sizeof *shape);
  rc_check_f32(c, "scaled_model_inputs", scaled, x0.ndim + 1, shape);
  rc_check_f32(c, "prev_samples", prev, x0.ndim + 1, shape);
  if (has_output(c, "denoised")) rc_check_f32(c, "denoised", den, x0.ndim + 1, shape);
  rc = 0;
done:
  free(scaled);
  free(prev);
  free(den);
  vtl_npy_free(&x0);
  vtl_npy_free(&mo);
  vtl_scheduler_close(&s);
  return rc;
}

int run_img2img_timesteps(rc_case *c) {
  vtl_scheduler s;
  vtl_npy init = {0}, noise = {0};
  float *noised = NULL;
  int rc = open_scheduler(c, &s), begin, count;
  if (rc) goto done;
  json_t *strength = json_object_get(c->params, "strength");
  if (!json_is_number(strength)) {
    rc = rc_case_error(c, VTL_EPARSE, "params.strength missing");
    goto done;
  }
  if ((rc = vtl_scheduler_set_strength(&s, json_number_value(strength), &begin, &count))) {
    rc = rc_case_error(c, rc, "%s", s.error);
    goto done;
  }
  /* noise is one entry here; accept a one-entry list too */
  json_t *nj = json_object_get(json_object_get(c->json, "inputs"), "noise");
  if ((rc = rc_input(c, "init_latents", &init)) ||
      (rc = json_is_array(nj) ? rc_noise(c, NULL, 0, &noise) : rc_input(c, "noise", &noise)))
    goto done;
  if (init.dtype != VTL_NPY_F32 || noise.dtype != VTL_NPY_F32 || noise.count != init.count) {
    rc = rc_case_error(c, VTL_EINVAL, "init_latents and noise differ in size or dtype");
    goto done;
  }
  noised = malloc((init.count ? init.count : 1) * sizeof *noised);
  if (!noised) {
    rc = rc_case_error(c, VTL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = vtl_scheduler_add_noise(&s, begin, init.data, noise.data, noised, init.count))) {
    rc = rc_case_error(c, rc, "add_noise at index %d failed", begin);
    goto done;
  }
  check_timesteps(c, &s, begin);
  int64_t num[1] = {count}, one[1] = {1};
  rc_check_i64(c, "num_steps", num, 1, one);
  rc_check_f32(c, "noised_latents", noised, init.ndim, init.shape);
  rc = 0;
done:
  free(noised);
  vtl_npy_free(&init);
  vtl_npy_free(&noise);
  vtl_scheduler_close(&s);
  return rc;
}
