/* deforum_import.c — Deforum settings files to documents (docs/deforum.md);
 * the way back is deforum_export.c.
 *
 * Deforum (the Colab notebook deforum-stable-diffusion and the AUTOMATIC1111
 * extension sd-webui-deforum) saves its settings as one flat JSON object.
 * Its animation parameters are "schedules": strings of keys
 *
 *   "0: (1.0), 30: (1.0+0.002*sin(1.25*3.14*t/30)), max_f-10: (0.9)"
 *    ^frame ^value                                   ^frame expression (A1111)
 *
 * that Deforum expands to one value per frame (get_inbetweens):
 *   1. A value that is a plain number (after removing parentheses and
 *      quotes it matches [+-]?[0-9]*(\.[0-9]+)?) is set at its frame and
 *      linearly interpolated with its neighbours (pandas interpolate).
 *   2. Any other value is a numexpr expression of t (the frame), max_f
 *      (max_frames - 1) and s (the seed), evaluated at EVERY frame from its
 *      key up to the next key. Note "1e-3", "1." and "( 1 )" are
 *      expressions (held), not numbers (interpolated).
 *   3. Before the first key: the first value; after the last: the last.
 *      Keys at negative frames or at/after max_frames are ignored.
 * vtl keyframes say the same thing (eval.c rule 2): a numeric key becomes a
 * LINEAR keyframe with that value; an expression key a keyframe whose expr
 * is the expression rewritten as Lua (expr.h), with `value` its value at
 * the key's own frame (the fallback if it ever fails).
 *
 * Mapping (Deforum key -> vtl), in the order import reads them:
 *
 *   KEY                        VTL                     NOTE
 *   animation_mode             timeline.anim_mode      2D, 3D; Interpolation
 *                                                      -> 2D, strength 1,
 *                                                      blended prompts;
 *                                                      None, Video Input:
 *                                                      refused (UNSUPPORTED)
 *   max_frames                 timeline.length         required
 *   W, H                       width, height           floored to x8, warned
 *   fps                        fps                     default 15 (A1111) /
 *                                                      12 (Colab), warned
 *   seed                       seed                    -1: FNV-1a of the file
 *   seed_behavior, seed_iter_N seed_mode, seed_iter_n  random: not reproducible
 *   sampler                    sampler                 see samplers[]
 *   steps                      steps                   timeline constant
 *   scale (Colab)              guidance                timeline constant
 *   strength                   strength = 1 - strength only without
 *                                                      strength_schedule
 *   batch_name, sd_model_name  name, model
 *   diffusion_cadence          a "cadence" track       when != 1
 *   angle zoom translation_x/y/z rotation_3d_x/y/z     tracks of that name
 *   fov_schedule near_schedule far_schedule            fov, near, far
 *     (Colab: fov, near_plane, far_plane constants)
 *   noise_schedule contrast_schedule                   noise, contrast
 *   cfg_scale_schedule         guidance
 *   steps_schedule             steps                   if enable_steps_
 *                                                      scheduling (A1111) or
 *                                                      present (Colab)
 *   seed_schedule              seed                    if seed_behavior is
 *                                                      schedule
 *   strength_schedule          strength                vtl = 1 - Deforum
 *                                                      (expressions wrapped
 *                                                      as 1-(...))
 *   animation_prompts | prompts  one prompt track      "--neg" splits text
 *     + animation_prompts_positive|positive_prompts    prepended to each
 *     + animation_prompts_negative|negative_prompts    appended to negatives
 *   cond_prompts, uncond_prompts (Colab 0.7.1)         text / negative
 *
 * A schedule that is one numeric key folds into the timeline field where
 * there is one (guidance, steps, strength) and is dropped when it equals
 * the parameter's default; otherwise it becomes a track. Every other key of
 * the file is listed in a warning (unsupported / ignored / unknown).
 *
 * The importer builds the document as one batch of ops (ids minted 2, 3,
 * ... in reading order) applied to a fresh document, so the result is a
 * pure function of the file bytes and the options.
 *
 * This file holds the import context, the timeline fields and
 * vtl_deforum_import; the schedules are read in deforum_schedule.c, the
 * prompts in deforum_prompts.c, and the keys left over are reported by
 * deforum_keys.c (deforum_int.h lists them all).
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deforum_int.h"

#define SEED_MAX 4294967295.0

/* ---- the import context (vtl__deforum_imp, deforum_int.h) ----------------- */

vtl_op *vtl__deforum_push_op(vtl__deforum_imp *d) {
  if (d->nops == d->capops) {
    size_t cap = d->capops ? d->capops * 2 : 64;
    vtl_op *ops = realloc(d->ops, cap * sizeof *ops);
    if (!ops) return NULL;
    d->ops = ops;
    d->capops = cap;
  }
  vtl_op *op = &d->ops[d->nops++];
  memset(op, 0, sizeof *op);
  return op;
}

static int set_tl_int(vtl__deforum_imp *d, const char *field, int64_t v) {
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_int(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

static int set_tl_real(vtl__deforum_imp *d, const char *field, double v) {
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_real(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

static int set_tl_str(vtl__deforum_imp *d, const char *field, const char *v) {
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_str(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

int vtl__deforum_warn(vtl__deforum_imp *d, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vtl_warnings_add(&d->warn, "%s", buf);
}

/* The value of `key`, marked as used; NULL when absent or null. */
json_t *vtl__deforum_get(vtl__deforum_imp *d, const char *key) {
  json_t *v = json_object_get(d->root, key);
  if (!v) return NULL;
  json_object_set_new(d->seen, key, json_true());
  return json_is_null(v) ? NULL : v;
}

/* Marks `key` as read but without effect (listed as ignored). */
void vtl__deforum_inactive(vtl__deforum_imp *d, const char *key) {
  if (json_object_get(d->root, key) && !json_object_get(d->seen, key))
    json_object_set_new(d->seen, key, json_false());
}

/* A number, or a string holding one (Colab saves diffusion_cadence as
 * '1'). Returns 0 (absent: *out = def), or an error naming the key. */
int vtl__deforum_get_real(vtl__deforum_imp *d, const char *key, double def,
                          double *out) {
  json_t *v = vtl__deforum_get(d, key);
  *out = def;
  if (!v) return 0;
  if (json_is_number(v)) {
    *out = json_number_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *e;
    errno = 0;
    *out = strtod(s, &e);
    while (isspace((unsigned char)*e)) e++;
    if (e == s || *e || errno == ERANGE)
      return vtl__deforum_fail(d->err, VTL_ETYPE,
                               "%s: expected a number, got \"%.40s\"", key, s);
  } else {
    return vtl__deforum_fail(d->err, VTL_ETYPE, "%s: expected a number, got %s",
                             key, vtl__deforum_jtype(v));
  }
  if (!isfinite(*out))
    return vtl__deforum_fail(d->err, VTL_ERANGE, "%s: not a finite number",
                             key);
  return 0;
}

static int get_int(vtl__deforum_imp *d, const char *key, int64_t def,
                   int64_t *out) {
  double v;
  TRY(vtl__deforum_get_real(d, key, (double)def, &v));
  if (v != floor(v) || fabs(v) > 9007199254740991.0)
    return vtl__deforum_fail(d->err, VTL_ETYPE,
                             "%s: expected a whole number, got %g", key, v);
  *out = (int64_t)v;
  return 0;
}

static int get_bool(vtl__deforum_imp *d, const char *key, bool def, bool *out) {
  json_t *v = vtl__deforum_get(d, key);
  *out = def;
  if (!v) return 0;
  if (!json_is_boolean(v))
    return vtl__deforum_fail(d->err, VTL_ETYPE,
                             "%s: expected true or false, got %s", key,
                             vtl__deforum_jtype(v));
  *out = json_is_true(v);
  return 0;
}

int vtl__deforum_get_str(vtl__deforum_imp *d, const char *key, const char *def,
                         const char **out) {
  json_t *v = vtl__deforum_get(d, key);
  *out = def;
  if (!v) return 0;
  if (!json_is_string(v))
    return vtl__deforum_fail(d->err, VTL_ETYPE, "%s: expected a string, got %s",
                             key, vtl__deforum_jtype(v));
  *out = json_string_value(v);
  return 0;
}

/* ---- import ------------------------------------------------------------------------ */

static const struct {
  const char *name; /* lower case; Colab and A1111 spellings */
  int sampler;      /* vtl_sampler, or -1: Deforum has it, vtl does not */
} samplers[] = {
    {"euler", VTL_SAMPLER_EULER},
    {"euler_ancestral", VTL_SAMPLER_EULER_A},
    {"euler a", VTL_SAMPLER_EULER_A},
    {"euler_a", VTL_SAMPLER_EULER_A},
    {"ddim", VTL_SAMPLER_DDIM},
    {"dpmpp_2m", VTL_SAMPLER_DPMPP_2M},
    {"dpm++ 2m", VTL_SAMPLER_DPMPP_2M},
    {"dpm++ 2m karras", VTL_SAMPLER_DPMPP_2M}, /* warned: sigma schedule */
    {"lcm", VTL_SAMPLER_LCM},
    {"klms", -1}, {"lms", -1}, {"lms karras", -1}, {"heun", -1}, {"dpm2", -1},
    {"dpm2 a", -1}, {"dpm2_ancestral", -1}, {"dpm2 karras", -1},
    {"dpm2 a karras", -1}, {"dpm++ 2s a", -1}, {"dpmpp_2s_a", -1},
    {"dpm++ 2s a karras", -1}, {"dpm++ sde", -1}, {"dpm++ sde karras", -1},
    {"dpm++ 2m sde", -1}, {"dpm++ 2m sde karras", -1},
    {"dpm++ 2m sde exponential", -1}, {"dpm++ 2m sde heun", -1},
    {"dpm++ 2m sde heun karras", -1}, {"dpm++ 2m sde heun exponential", -1},
    {"dpm++ 3m sde", -1}, {"dpm++ 3m sde karras", -1},
    {"dpm++ 3m sde exponential", -1}, {"dpm fast", -1}, {"dpm_fast", -1},
    {"dpm adaptive", -1}, {"dpm_adaptive", -1}, {"plms", -1}, {"unipc", -1},
    {"restart", -1}, {"ddpm", -1},
};

static int import_sampler(vtl__deforum_imp *d) {
  const char *name;
  TRY(vtl__deforum_get_str(d, "sampler", "euler_ancestral", &name));
  char low[64];
  size_t n = 0;
  for (; name[n] && n + 1 < sizeof low; n++)
    low[n] = (char)tolower((unsigned char)name[n]);
  low[n] = '\0';
  size_t i = 0, ns = sizeof samplers / sizeof samplers[0];
  while (i < ns && strcmp(samplers[i].name, low)) i++;
  if (i == ns)
    return vtl__deforum_fail(
        d->err, VTL_EINVAL,
        "sampler: unknown sampler \"%.40s\" "
        "(Deforum has euler, euler_ancestral / \"Euler a\", ddim, "
        "dpmpp_2m / \"DPM++ 2M\", klms, heun, ...)",
        name);
  int s = samplers[i].sampler;
  if (s < 0) {
    TRY(vtl__deforum_warn(
        d, "sampler: \"%s\" is not in vtl; euler used instead", name));
    s = VTL_SAMPLER_EULER;
  } else if (strstr(low, "karras")) {
    TRY(vtl__deforum_warn(
        d,
        "sampler: \"%s\": the Karras sigma schedule is not modelled; "
        "dpmpp_2m used",
        name));
  }
  return set_tl_int(d, "sampler", s);
}

static int import_seed(vtl__deforum_imp *d) {
  int64_t seed = 0, n = 0; /* set by get_int; zero keeps -O2 quiet */
  const char *beh;
  TRY(get_int(d, "seed", -1, &seed));
  if (seed == -1) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < d->len; i++)
      h = (h ^ (unsigned char)d->src[i]) * 16777619u;
    seed = h;
    TRY(vtl__deforum_warn(
        d,
        "seed: -1 (random in Deforum) replaced by %lld, a hash of "
        "the file",
        (long long)seed));
  } else if (seed < 0 || (double)seed > SEED_MAX) {
    return vtl__deforum_fail(d->err, VTL_ERANGE,
                             "seed: %lld is outside 0..4294967295 "
                             "(-1: random)",
                             (long long)seed);
  }
  d->seed = seed;
  snprintf(d->seed_text, sizeof d->seed_text, "%lld", (long long)seed);
  TRY(vtl__deforum_get_str(d, "seed_behavior", "iter", &beh));
  int mode = vtl_enum_lookup(vtl_seed_mode_names, beh);
  if (mode < 0)
    return vtl__deforum_fail(
        d->err, VTL_EINVAL,
        "seed_behavior: unknown value \"%.40s\" "
        "(iter, fixed, ladder, alternate, random, schedule)",
        beh);
  if (mode == VTL_SEED_RANDOM)
    TRY(vtl__deforum_warn(
        d, "seed_behavior: random is not reproducible in Deforum; vtl "
           "uses a deterministic hash of the seed and the frame"));
  TRY(get_int(d, "seed_iter_N", 1, &n));
  if (n < 1 || n > 1000000)
    return vtl__deforum_fail(d->err, VTL_ERANGE,
                             "seed_iter_N: %lld is outside 1..1000000",
                             (long long)n);
  TRY(set_tl_int(d, "seed", seed));
  TRY(set_tl_int(d, "seed_mode", mode));
  TRY(set_tl_int(d, "seed_iter_n", n));
  if (mode == VTL_SEED_SCHEDULE) {
    if (!json_object_get(d->root, "seed_schedule"))
      return vtl__deforum_fail(d->err, VTL_EINVAL,
                               "seed_schedule: missing (seed_behavior "
                               "is schedule)");
    return vtl__deforum_import_schedule(d, "seed_schedule", VTL_PARAM_SEED,
                                        false);
  }
  vtl__deforum_inactive(d, "seed_schedule");
  return 0;
}

/* Width or height: floored to a multiple of 8 with a warning. */
static int import_size(vtl__deforum_imp *d, const char *key,
                       const char *field) {
  int64_t v = 0; /* set by get_int */
  TRY(get_int(d, key, 512, &v));
  if (v < 8 || v > 8192)
    return vtl__deforum_fail(d->err, VTL_ERANGE, "%s: %lld is outside 8..8192",
                             key, (long long)v);
  if (v % 8) {
    TRY(vtl__deforum_warn(d, "%s: %lld rounded down to %lld (a multiple of 8)",
                          key, (long long)v, (long long)(v - v % 8)));
    v -= v % 8;
  }
  return set_tl_int(d, field, v);
}

/* Schedules in the order their tracks are made (export writes the same
 * order, so a round trip mints the same ids). */
static const struct {
  const char *key;
  const char *colab; /* Colab's constant when the schedule is absent */
  int param;
  bool motion;       /* unused in Interpolation mode */
} schedules[] = {
    {"angle", NULL, VTL_PARAM_ANGLE, true},
    {"zoom", NULL, VTL_PARAM_ZOOM, true},
    {"translation_x", NULL, VTL_PARAM_TX, true},
    {"translation_y", NULL, VTL_PARAM_TY, true},
    {"translation_z", NULL, VTL_PARAM_TZ, true},
    {"rotation_3d_x", NULL, VTL_PARAM_RX, true},
    {"rotation_3d_y", NULL, VTL_PARAM_RY, true},
    {"rotation_3d_z", NULL, VTL_PARAM_RZ, true},
    {"fov_schedule", "fov", VTL_PARAM_FOV, true},
    {"near_schedule", "near_plane", VTL_PARAM_NEAR, true},
    {"far_schedule", "far_plane", VTL_PARAM_FAR, true},
    {"noise_schedule", NULL, VTL_PARAM_NOISE, true},
    {"contrast_schedule", NULL, VTL_PARAM_CONTRAST, true},
    {"cfg_scale_schedule", NULL, VTL_PARAM_GUIDANCE, false},
};

static int import_all(vtl__deforum_imp *d, const vtl_deforum_options *opt) {
  /* keys only the A1111 extension writes (Colab saves "prompts" too) */
  static const char *const a1111_marks[] = {
      "cfg_scale_schedule", "sd_model_name", "deforum_git_commit_id",
      "positive_prompts", "negative_prompts", "animation_prompts_positive",
      "animation_prompts_negative", NULL};
  for (int i = 0; a1111_marks[i]; i++)
    if (json_object_get(d->root, a1111_marks[i])) d->a1111 = true;

  /* animation mode and length first: schedules need them */
  const char *mode;
  TRY(vtl__deforum_get_str(d, "animation_mode", "2D", &mode));
  int anim;
  if (strcmp(mode, "2D") == 0) {
    anim = VTL_ANIM_2D;
  } else if (strcmp(mode, "3D") == 0) {
    anim = VTL_ANIM_3D;
  } else if (strcmp(mode, "Interpolation") == 0) {
    anim = VTL_ANIM_2D;
    d->interp_mode = true;
    TRY(vtl__deforum_warn(
        d, "animation_mode: Interpolation imported as 2D at strength 1 "
           "(every frame fully denoised), no motion, prompts blended"));
  } else if (strcmp(mode, "None") == 0 || strcmp(mode, "Video Input") == 0) {
    return vtl__deforum_fail(d->err, VTL_EUNSUPPORTED,
                             "animation_mode: \"%s\" is not "
                             "supported (2D, 3D, Interpolation)",
                             mode);
  } else {
    return vtl__deforum_fail(d->err, VTL_EINVAL,
                             "animation_mode: unknown value \"%.40s\" "
                             "(2D, 3D, Interpolation)",
                             mode);
  }
  d->blend = d->interp_mode || (opt && opt->blend_prompts);
  if (!json_object_get(d->root, "max_frames"))
    return vtl__deforum_fail(d->err, VTL_EINVAL, "max_frames: missing");
  TRY(get_int(d, "max_frames", 0, &d->length));
  if (d->length < 1 || d->length > VTL_MAX_FRAMES)
    return vtl__deforum_fail(d->err, VTL_ERANGE,
                             "max_frames: %lld is outside 1..%d",
                             (long long)d->length, VTL_MAX_FRAMES);
  bool has_fps = json_object_get(d->root, "fps") != NULL;
  TRY(vtl__deforum_get_real(d, "fps", d->a1111 ? 15 : 12, &d->fps));
  if (d->fps < 1 || d->fps > 240)
    return vtl__deforum_fail(d->err, VTL_ERANGE, "fps: %g is outside 1..240",
                             d->fps);
  if (!has_fps)
    TRY(vtl__deforum_warn(d, "fps: missing; %g used (Deforum's video default)",
                          d->fps));
  TRY(set_tl_int(d, "anim_mode", anim));
  TRY(set_tl_int(d, "length", d->length));
  TRY(set_tl_real(d, "fps", d->fps));
  TRY(import_size(d, "W", "width"));
  TRY(import_size(d, "H", "height"));

  const char *s;
  TRY(vtl__deforum_get_str(d, "batch_name", "", &s));
  if (strlen(s) > VTL_MAX_NAME)
    return vtl__deforum_fail(d->err, VTL_ETOOLONG,
                             "batch_name: longer than %d bytes", VTL_MAX_NAME);
  if (*s) TRY(set_tl_str(d, "name", s));
  TRY(vtl__deforum_get_str(d, "sd_model_name", "", &s));
  if (strlen(s) > VTL_MAX_NAME)
    return vtl__deforum_fail(d->err, VTL_ETOOLONG,
                             "sd_model_name: longer than %d bytes",
                             VTL_MAX_NAME);
  if (*s) TRY(set_tl_str(d, "model", s));

  TRY(import_seed(d));
  TRY(import_sampler(d));

  /* constants that schedules may override */
  int64_t steps;
  TRY(get_int(d, "steps", d->a1111 ? 25 : 50, &steps));
  if (steps < 1 || steps > 1000)
    return vtl__deforum_fail(
        d->err, VTL_ERANGE, "steps: %lld is outside 1..1000", (long long)steps);
  d->tl_steps = steps;
  TRY(vtl__deforum_get_real(d, "scale", 7, &d->tl_guidance));
  if (d->tl_guidance < 0 || d->tl_guidance > 50)
    return vtl__deforum_fail(d->err, VTL_ERANGE, "scale: %g is outside 0..50",
                             d->tl_guidance);
  d->tl_strength = vtl_param_table[VTL_PARAM_STRENGTH].def;
  if (json_object_get(d->root, "strength_schedule")) {
    vtl__deforum_inactive(d, "strength");
  } else if (json_object_get(d->root, "strength")) {
    double st;
    TRY(vtl__deforum_get_real(d, "strength", 0.65, &st));
    if (st < 0 || st > 1) {
      TRY(vtl__deforum_warn(d, "strength: %g clamped to 0..1 (as Deforum does)",
                            st));
      st = st < 0 ? 0 : 1;
    }
    d->tl_strength = 1 - st;
  }

  /* schedules */
  for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++) {
    const char *key = schedules[i].key, *colab = schedules[i].colab;
    if (d->interp_mode && schedules[i].motion) {
      vtl__deforum_inactive(d, key);
      if (colab) vtl__deforum_inactive(d, colab);
    } else if (colab && !json_object_get(d->root, key)) {
      TRY(vtl__deforum_import_constant(d, colab, key, schedules[i].param));
    } else {
      if (colab) vtl__deforum_inactive(d, colab);
      TRY(vtl__deforum_import_schedule(d, key, schedules[i].param, false));
    }
  }
  bool steps_on = false;
  TRY(get_bool(d, "enable_steps_scheduling", !d->a1111, &steps_on));
  if (steps_on)
    TRY(vtl__deforum_import_schedule(d, "steps_schedule", VTL_PARAM_STEPS,
                                     false));
  else vtl__deforum_inactive(d, "steps_schedule");
  if (d->interp_mode) {
    vtl__deforum_inactive(d, "strength_schedule");
    d->tl_strength = 1;
  } else {
    TRY(vtl__deforum_import_schedule(d, "strength_schedule", VTL_PARAM_STRENGTH,
                                     true));
  }
  if (json_object_get(d->root, "cfg_scale_schedule") &&
      json_object_get(d->root, "scale"))
    json_object_set_new(d->seen, "scale", json_true());

  int64_t cadence;
  TRY(get_int(d, "diffusion_cadence", d->a1111 ? 2 : 1, &cadence));
  if (d->interp_mode) {
    vtl__deforum_inactive(d, "diffusion_cadence");
  } else {
    if (cadence < 1 || cadence > 100)
      return vtl__deforum_fail(d->err, VTL_ERANGE,
                               "diffusion_cadence: %lld is outside "
                               "1..100",
                               (long long)cadence);
    vtl__deforum_skey k = {0, true, (double)cadence, NULL, NULL};
    TRY(vtl__deforum_emit_keys(d, "diffusion_cadence", VTL_PARAM_CADENCE, &k,
                               1));
  }

  TRY(set_tl_int(d, "steps", d->tl_steps));
  TRY(set_tl_real(d, "guidance", d->tl_guidance));
  TRY(set_tl_real(d, "strength", d->tl_strength));

  TRY(vtl__deforum_import_prompts(d));
  return vtl__deforum_report_rest(d->root, d->seen, &d->warn);
}

/* The path of object keys open at byte `pos` of a JSON text, such as
 * `prompts."40"`, for syntax errors: jansson reports a position but not
 * where in the object it is. Empty when pos is at the top level. */
static void key_before(const char *s, size_t len, size_t pos, char *out,
                       size_t outlen) {
  enum { DEPTH = 8 };
  typedef struct {
    size_t off, n;
  } span;
  span key[DEPTH]; /* the last key seen at each depth */
  int depth = 0;
  out[0] = '\0';
  if (pos > len) pos = len;
  for (size_t i = 0; i < pos; i++) {
    char c = s[i];
    if (c == '{' || c == '[') {
      if (depth < DEPTH) key[depth] = (span){0, 0};
      depth++;
    } else if ((c == '}' || c == ']') && depth > 0) {
      depth--;
    } else if (c == '"') {
      size_t st = ++i;
      while (i < pos && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
      if (i >= pos) break;
      size_t j = i + 1;
      while (j < pos && isspace((unsigned char)s[j])) j++;
      if (j < pos && s[j] == ':' && depth >= 1 && depth <= DEPTH)
        key[depth - 1] = (span){st, i - st};
    }
  }
  size_t o = 0;
  for (int d = 0; d < depth && d < DEPTH && o + 8 < outlen; d++) {
    if (!key[d].n) break;
    int n = (int)(key[d].n > 40 ? 40 : key[d].n);
    int w = snprintf(out + o, outlen - o, d ? ".\"%.*s\"" : "%.*s", n,
                     s + key[d].off);
    if (w < 0) break;
    o += (size_t)w < outlen - o ? (size_t)w : outlen - o - 1;
  }
}

int vtl_deforum_import(const char *json, size_t len,
                       const vtl_deforum_options *opt, vtl_doc **out,
                       vtl_warnings *warnings, vtl_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!json || !out)
    return vtl__deforum_fail(err, VTL_EINVAL, "deforum: no input");
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    char key[160];
    key_before(json, len, (size_t)jerr.position, key, sizeof key);
    return vtl__deforum_fail(err, VTL_EPARSE, "%s%sline %d, column %d: %s", key,
                             *key ? ": " : "", jerr.line, jerr.column,
                             jerr.text);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return vtl__deforum_fail(err, VTL_EPARSE,
                             "settings: expected a JSON object");
  }
  vtl__deforum_imp d = {0};
  d.root = root;
  d.src = json;
  d.len = len;
  d.err = err;
  d.next_id = VTL_TIMELINE_ID + 1;
  vtl_doc *doc = NULL;
  int rc = 0;
  if (!(d.seen = json_object()) || vtl_expr_ctx_new(&d.x)) rc = VTL_ENOMEM;
  if (!rc) rc = import_all(&d, opt);
  if (!rc) rc = vtl_doc_new(&doc);
  if (!rc) rc = vtl_doc_apply(doc, d.ops, d.nops, NULL, NULL, err);
  if (!rc && warnings) {
    for (size_t i = 0; i < d.warn.n && !rc; i++)
      rc = vtl_warnings_add(warnings, "%s", d.warn.items[i]);
  }
  if (rc && err && !err->message[0])
    vtl__deforum_fail(err, rc, "deforum: %s", vtl_strerror(rc));
  if (rc) {
    vtl_doc_free(doc);
  } else {
    *out = doc;
  }
  vtl_ops_free(d.ops, d.nops);
  vtl_warnings_free(&d.warn);
  vtl_expr_ctx_free(d.x);
  json_decref(d.seen);
  json_decref(root);
  return rc;
}
