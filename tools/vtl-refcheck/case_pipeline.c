/* case_pipeline.c — kinds `txt2img` and `img2img` (README "Case kinds"):
 * the whole sampling loops of engine/pipeline.h on the case's inputs.
 *
 * model: {"format": "diffusers", "path", "component": "pipeline",
 * "variant"} or {"format": "ldm_single_file", "path", "config_dir"}.
 * params: prompt, negative_prompt (may be null), guidance_scale,
 * num_inference_steps, height, width, scheduler {class, config}, and for
 * img2img strength. inputs: latents (txt2img), init_image (img2img), noise
 * (list). outputs: final_latents [1, L, h, w], image [1, 3, H, W].
 *
 * Noise: the pipeline asks its vtl_noise_source by purpose; here the
 * txt2img starting latents are inputs.latents and every other draw is the
 * inputs.noise entry with the same `where` and `step` (rc_noise).
 *
 * The loaded pipeline is kept for the next case while (format, path,
 * variant, config_dir) stay the same; it is freed at exit, before the
 * shared runtime closes (rc_runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "refcheck.h"
#include "vtl_error.h"

static int load(vtl_cl *cl, const char *path, const vtl_model_open_opts *o,
                void **obj, char *msg, size_t msglen) {
  vtl_pipeline *model = NULL;
  vtl_pipeline_opts po = {.variant = o->variant, .config_dir = o->config_dir};
  int rc = vtl_pipeline_load(cl, path, &po, &model, msg, msglen);
  *obj = model;
  return rc;
}

static void unload(void *obj) { vtl_pipeline_free(obj); }

static rc_model_cache cache = {.load_path = load, .unload = unload};

static int case_pipeline(rc_case *c, vtl_cl *cl, vtl_pipeline **out) {
  void *obj = NULL;
  int rc = rc_model(c, cl, &cache, &obj);
  *out = obj;
  return rc;
}

/* The kit as a noise source. */
static int kit_draw(void *user, vtl_noise_purpose purpose, const char *where,
                    int step, float *out, size_t n) {
  rc_case *c = user;
  vtl_npy a = {0};
  int rc = purpose == VTL_NOISE_LATENTS ? rc_input(c, "latents", &a)
                                        : rc_noise(c, where, step, &a);
  if (rc) return rc;
  if (a.dtype != VTL_NPY_F32 || a.count != n) {
    vtl_npy_free(&a);
    return rc_case_error(c, VTL_EINVAL, "%s (step %d): %zu values, want %zu",
                         where, step, a.count, n);
  }
  memcpy(out, a.data, n * sizeof *out);
  vtl_npy_free(&a);
  return 0;
}

static int get_int(rc_case *c, const char *key, int *out) {
  json_t *v = json_object_get(c->params, key);
  if (!json_is_integer(v) || json_integer_value(v) < 1 ||
      json_integer_value(v) > 100000)
    return rc_case_error(c, VTL_EPARSE, "params.%s missing or out of range", key);
  *out = (int)json_integer_value(v);
  return 0;
}

static int run_pipeline(rc_case *c, bool img2img) {
  vtl_cl *cl = NULL;
  vtl_pipeline *p = NULL;
  int rc = rc_runtime(c, &cl);
  if (!rc) rc = case_pipeline(c, cl, &p);
  if (rc) return rc;

  vtl_gen_params g = {0};
  vtl_scheduler_config cfg;
  memset(&cfg, 0, sizeof cfg);
  bool cfg_open = false;
  vtl_gen_result res = {0};
  vtl_npy init = {0};
  char msg[512];

  g.prompt = json_string_value(json_object_get(c->params, "prompt"));
  g.plain_prompts = true; /* the kit is diffusers: no weighting syntax */
  g.negative_prompt = json_string_value(json_object_get(c->params, "negative_prompt"));
  json_t *gs = json_object_get(c->params, "guidance_scale");
  if (!g.prompt || !json_is_number(gs)) {
    rc = rc_case_error(c, VTL_EPARSE, "params.prompt or guidance_scale missing");
    goto done;
  }
  g.guidance_scale = json_number_value(gs);
  if ((rc = get_int(c, "num_inference_steps", &g.steps)) ||
      (rc = get_int(c, "height", &g.height)) || (rc = get_int(c, "width", &g.width)))
    goto done;
  json_t *sj = json_object_get(c->params, "scheduler");
  rc = vtl_scheduler_config_from_json(json_object_get(sj, "config"),
                                      json_string_value(json_object_get(sj, "class")),
                                      &cfg, msg, sizeof msg);
  if (rc) {
    rc = rc_case_error(c, rc, "%s", msg);
    goto done;
  }
  cfg_open = true;
  g.scheduler = &cfg;
  g.noise.draw = kit_draw;
  g.noise.user = c;

  if (img2img) {
    json_t *st = json_object_get(c->params, "strength");
    if (!json_is_number(st)) {
      rc = rc_case_error(c, VTL_EPARSE, "params.strength missing");
      goto done;
    }
    g.strength = json_number_value(st);
    if ((rc = rc_input(c, "init_image", &init))) goto done;
    if (init.dtype != VTL_NPY_F32 || init.ndim != 4 || init.shape[0] != 1 ||
        init.shape[1] != 3 || init.shape[2] != g.height || init.shape[3] != g.width) {
      rc = rc_case_error(c, VTL_EINVAL, "init_image must be float32 [1, 3, %d, %d]",
                         g.height, g.width);
      goto done;
    }
    rc = vtl_pipeline_img2img(p, &g, init.data, &res, msg, sizeof msg);
  } else {
    rc = vtl_pipeline_txt2img(p, &g, &res, msg, sizeof msg);
  }
  if (rc) {
    if (!c->error[0]) rc_case_error(c, rc, "%s", msg);
    goto done;
  }
  rc_check_f32(c, "final_latents", res.latents, 4, res.latents_shape);
  rc_check_f32(c, "image", res.image, 4, res.image_shape);
done:
  vtl_gen_result_free(&res);
  vtl_npy_free(&init);
  if (cfg_open) vtl_scheduler_config_free(&cfg);
  return rc;
}

int run_txt2img(rc_case *c) { return run_pipeline(c, false); }
int run_img2img(rc_case *c) { return run_pipeline(c, true); }
