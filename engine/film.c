/* film.c — one frame of a film from the timeline (contract in film.h). */
#include "film.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "camera.h"
#include "philox.h"
#include "vtl_error.h"

struct vtl_film {
  vtl_pipeline *p;
  vtl_film_opts opts;
  /* the scheduler config of the last (sampler, spacing): frames of a film
   * mostly share one */
  vtl_scheduler_config sc;
  int sc_sampler, sc_spacing; /* -1: none loaded */
};

int vtl_film_new(vtl_pipeline *p, const vtl_film_opts *opts, vtl_film **out) {
  vtl_film *f = calloc(1, sizeof *f);
  if (!f) return VTL_ENOMEM;
  f->p = p;
  if (opts) f->opts = *opts;
  f->sc_sampler = f->sc_spacing = -1;
  *out = f;
  return 0;
}

void vtl_film_free(vtl_film *film) {
  if (!film) return;
  if (film->sc_sampler >= 0) vtl_scheduler_config_free(&film->sc);
  free(film);
}

static int scheduler_for(vtl_film *f, int sampler, int spacing, char *msg,
                         size_t msglen) {
  if (f->sc_sampler == sampler && f->sc_spacing == spacing) return 0;
  if (f->sc_sampler >= 0) vtl_scheduler_config_free(&f->sc);
  f->sc_sampler = -1;
  /* the timeline's enum order is not the scheduler's */
  static const int sched_spacing[] = {[VTL_SPACING_LEADING] = VTL_SCHED_SPACING_LEADING,
                                      [VTL_SPACING_TRAILING] = VTL_SCHED_SPACING_TRAILING,
                                      [VTL_SPACING_LINSPACE] = VTL_SCHED_SPACING_LINSPACE};
  int rc = vtl_pipeline_scheduler_config(f->p, vtl_sampler_names[sampler],
                                         sched_spacing[spacing], &f->sc, msg, msglen);
  if (rc) return rc;
  f->sc_sampler = sampler;
  f->sc_spacing = spacing;
  return 0;
}

static vtl_camera_move camera_of(const vtl_params *P, int64_t anim_mode) {
  const double *v = P->values;
  return (vtl_camera_move){.three_d = anim_mode == VTL_ANIM_3D,
                           .zoom = v[VTL_PARAM_ZOOM], .angle = v[VTL_PARAM_ANGLE],
                           .tx = v[VTL_PARAM_TX], .ty = v[VTL_PARAM_TY],
                           .tz = v[VTL_PARAM_TZ], .rx = v[VTL_PARAM_RX],
                           .ry = v[VTL_PARAM_RY], .rz = v[VTL_PARAM_RZ],
                           .fov = v[VTL_PARAM_FOV]};
}

static json_t *camera_json(const vtl_camera_move *m) {
  if (m->three_d)
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "mode", "3d",
                     "translation_x", m->tx, "translation_y", m->ty,
                     "translation_z", m->tz, "rotation_3d_x", m->rx,
                     "rotation_3d_y", m->ry, "rotation_3d_z", m->rz, "fov", m->fov);
  return json_pack("{s:s, s:f, s:f, s:f, s:f}", "mode", "2d", "zoom", m->zoom,
                   "angle", m->angle, "translation_x", m->tx, "translation_y", m->ty);
}

/* The record's fields known before rendering. */
static json_t *record_new(const vtl_params *P, const vtl_timeline *tl,
                          const char *kind, double strength) {
  json_t *prompts = json_array();
  for (int i = 0; i < P->nprompts; i++)
    json_array_append_new(prompts, json_pack("{s:s, s:s, s:f}", "text", P->prompts[i].text,
                                             "negative", P->prompts[i].negative ? P->prompts[i].negative : "",
                                             "weight", P->prompts[i].weight));
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, P->dep_hash);
  const double *v = P->values;
  json_t *r = json_pack(
      "{s:I, s:f, s:I, s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:s}",
      "frame", (json_int_t)P->frame, "seconds", P->seconds, "shot", (json_int_t)P->shot,
      "kind", kind, "source", vtl_source_names[P->source], "prompts", prompts,
      "seed", (json_int_t)P->seed, "steps", (json_int_t)v[VTL_PARAM_STEPS],
      "sampler", vtl_sampler_names[(int)v[VTL_PARAM_SAMPLER]],
      "spacing", vtl_spacing_names[(int)v[VTL_PARAM_SPACING]],
      "guidance", v[VTL_PARAM_GUIDANCE], "strength", strength,
      "noise", v[VTL_PARAM_NOISE], "contrast", v[VTL_PARAM_CONTRAST],
      "cadence", (json_int_t)v[VTL_PARAM_CADENCE], "dep_hash", hash);
  if (!P->first_frame) {
    vtl_camera_move m = camera_of(P, tl->anim_mode);
    json_object_set_new(r, "camera", camera_json(&m));
  }
  if (P->nerrors)
    json_object_set_new(r, "expression_errors",
                        json_pack("{s:i, s:s}", "count", P->nerrors, "first", P->error));
  return r;
}

/* The starting image of a shot's first frame from black or an image. */
static int source_image(vtl_film *f, vtl_doc *doc, const vtl_params *P, int w,
                        int h, float **img, char *msg, size_t msglen) {
  size_t n = (size_t)3 * w * h;
  if (P->source == VTL_SOURCE_BLACK) {
    if (!(*img = malloc(n * sizeof **img))) return VTL_ENOMEM;
    for (size_t i = 0; i < n; i++) (*img)[i] = -1.0f;
    return 0;
  }
  const vtl_asset *a = vtl_doc_get(doc, VTL_ENT_ASSET, P->source_asset);
  if (!a) {
    snprintf(msg, msglen, "frame %" PRId64 ": shot %" PRIu64 " starts from image "
             "asset %" PRIu64 ", which does not exist", P->frame, P->shot, P->source_asset);
    return VTL_EREF;
  }
  if (!f->opts.load_image) {
    snprintf(msg, msglen, "frame %" PRId64 ": shot %" PRIu64 " starts from image "
             "asset \"%s\", and this renderer has no image loader", P->frame, P->shot, a->name);
    return VTL_EUNSUPPORTED;
  }
  return f->opts.load_image(f->opts.user, a, w, h, img, msg, msglen);
}

/* img2img from init, or init itself when the strength leaves no step. */
static int denoise(vtl_film *f, const vtl_gen_params *g, const float *init,
                   float *out, size_t n, int *steps_run, char *msg, size_t msglen) {
  vtl_gen_result res = {0};
  int rc = vtl_pipeline_img2img(f->p, g, init, &res, msg, msglen);
  if (rc == VTL_ERANGE) { /* no denoising step at this strength */
    memcpy(out, init, n * sizeof *out);
    *steps_run = 0;
    return 0;
  }
  if (!rc) {
    memcpy(out, res.image, n * sizeof *out);
    *steps_run = res.steps_run;
  }
  vtl_gen_result_free(&res);
  return rc;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int vtl_film_frame(vtl_film *f, vtl_doc *doc, int64_t frame, const float *prev,
                   float *out, json_t **record, char *msg, size_t msglen) {
  double t0 = now_ms();
  msg[0] = 0;
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  int w = (int)tl->width, h = (int)tl->height;
  size_t n = (size_t)3 * w * h;
  vtl_params P;
  int rc = vtl_params_at(doc, frame, &P);
  if (rc) {
    snprintf(msg, msglen, "frame %" PRId64 ": %s", frame, vtl_strerror(rc));
    return rc;
  }
  if (!P.first_frame && !prev) {
    snprintf(msg, msglen, "frame %" PRId64 " continues its shot from frame %" PRId64
             ": its image is needed", frame, frame - 1);
    return VTL_EINVAL;
  }
  const double *v = P.values;
  int sampler = (int)v[VTL_PARAM_SAMPLER], spacing = (int)v[VTL_PARAM_SPACING];
  if ((rc = scheduler_for(f, sampler, spacing, msg, msglen))) return rc;

  vtl_prompt_blend blend[VTL_MAX_PROMPTS_AT];
  for (int i = 0; i < P.nprompts; i++)
    blend[i] = (vtl_prompt_blend){P.prompts[i].text, P.prompts[i].negative,
                                  P.prompts[i].weight};
  vtl_noise_philox_state ns = {.seed = (uint64_t)P.seed, .frame = (uint32_t)P.frame};
  vtl_gen_params g = {.prompt = "", .blend = blend, .nblend = P.nprompts,
                      .guidance_scale = v[VTL_PARAM_GUIDANCE],
                      .steps = (int)v[VTL_PARAM_STEPS], .scheduler = &f->sc,
                      .width = w, .height = h, .use_taesd = f->opts.use_taesd,
                      .noise = vtl_noise_philox(&ns), .progress = f->opts.progress,
                      .progress_user = f->opts.progress_user};
  int steps_run = 0;
  const char *kind;
  double strength;
  float *x = NULL;
  if (P.first_frame && P.source == VTL_SOURCE_NOISE) {
    kind = "txt2img";
    strength = 1.0;
    vtl_gen_result res = {0};
    rc = vtl_pipeline_txt2img(f->p, &g, &res, msg, msglen);
    if (!rc) {
      memcpy(out, res.image, n * sizeof *out);
      steps_run = res.steps_run;
    }
    vtl_gen_result_free(&res);
  } else if (P.first_frame) {
    kind = "img2img";
    strength = g.strength = P.source_strength;
    rc = source_image(f, doc, &P, w, h, &x, msg, msglen);
    if (!rc) rc = denoise(f, &g, x, out, n, &steps_run, msg, msglen);
  } else {
    strength = g.strength = v[VTL_PARAM_STRENGTH];
    if (!(x = malloc(n * sizeof *x))) return VTL_ENOMEM;
    vtl_camera_move m = camera_of(&P, tl->anim_mode);
    vtl_camera_warp(&m, prev, x, w, h);
    float c = (float)v[VTL_PARAM_CONTRAST];
    if (c != 1.0f)
      for (size_t i = 0; i < n; i++) x[i] = (x[i] + 1.0f) * c - 1.0f;
    if ((P.frame - P.shot_start) % (int64_t)v[VTL_PARAM_CADENCE] != 0) {
      kind = "cadence"; /* between diffused frames: the camera move only */
      memcpy(out, x, n * sizeof *out);
    } else {
      kind = "img2img";
      float amount = (float)v[VTL_PARAM_NOISE];
      if (amount > 0) {
        float *z = malloc(n * sizeof *z);
        if (!z) { free(x); return VTL_ENOMEM; }
        vtl_philox_fill_normal((uint64_t)P.seed, (uint32_t)P.frame,
                               vtl_philox_purpose(VTL_FILM_NOISE_KIND, -1), 0, z, n);
        for (size_t i = 0; i < n; i++) x[i] += amount * z[i];
        free(z);
      }
      rc = denoise(f, &g, x, out, n, &steps_run, msg, msglen);
    }
  }
  free(x);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) out[i] = fminf(fmaxf(out[i], -1.0f), 1.0f);
  if (!steps_run && strcmp(kind, "cadence")) kind = "kept";
  if (record) {
    json_t *r = record_new(&P, tl, kind, strength);
    json_object_set_new(r, "steps_run", json_integer(steps_run));
    json_object_set_new(r, "render_ms", json_real(round((now_ms() - t0) * 100) / 100));
    *record = r;
  }
  return 0;
}
