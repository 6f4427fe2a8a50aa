/* deforum_export.c — a document to a Deforum settings file
 * (vtl_deforum_export, docs/deforum.md); the format and the mapping are
 * described in deforum_import.c.
 *
 * Export writes every schedule from the track that drives it so that
 * Deforum computes vtl's value at every frame: linear keys as numbers, hold
 * keys as two numbers, expressions as numexpr when an evaluator with
 * numexpr's semantics (deforum_numexpr.c) agrees with vtl on every frame, and
 * everything else (bezier, ease, Lua-only expressions) as one number per
 * frame, with a warning.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deforum_int.h"

/* ---- export ------------------------------------------------------------------------ */

typedef struct {
  vtl_doc *doc;
  const vtl_timeline *tl;
  vtl_warnings *w;
  vtl_error *err;
  vtl_expr_ctx *x;
} dexp;

static int xwarn(dexp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xwarn(dexp *e, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vtl_warnings_add(e->w, "%s", buf);
}

static int cmp_kf(const void *a, const void *b) {
  const vtl_keyframe *x = *(const vtl_keyframe *const *)a;
  const vtl_keyframe *y = *(const vtl_keyframe *const *)b;
  if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* The keys of the track that drives parameter p (eval.c rule 1): malloc'd
 * and sorted, or *n = 0 when nothing drives it. */
static int driving_keys(dexp *e, int p, const vtl_keyframe ***out, size_t *n) {
  size_t nt, nk;
  const void *const *tracks = vtl_doc_list(e->doc, VTL_ENT_TRACK, &nt);
  const vtl_track *best = NULL;
  *out = NULL;
  *n = 0;
  const void *const *keys = vtl_doc_list(e->doc, VTL_ENT_KEYFRAME, &nk);
  for (size_t i = 0; i < nt; i++) {
    const vtl_track *t = tracks[i];
    if (t->mute || t->target != p) continue;
    bool has = false;
    for (size_t j = 0; j < nk && !has; j++)
      has = ((const vtl_keyframe *)keys[j])->track == t->id;
    if (!has) continue;
    if (!best || t->order < best->order ||
        (t->order == best->order && t->id < best->id))
      best = t;
  }
  if (!best) return 0;
  const vtl_keyframe **k = malloc(nk * sizeof *k);
  if (!k) return VTL_ENOMEM;
  size_t m = 0;
  for (size_t j = 0; j < nk; j++)
    if (((const vtl_keyframe *)keys[j])->track == best->id) k[m++] = keys[j];
  qsort(k, m, sizeof *k, cmp_kf);
  *out = k;
  *n = m;
  return 0;
}

/* Value of key k at frame t (its expression, or its value if that fails). */
static double kval(dexp *e, const vtl_keyframe *k, int64_t t) {
  if (!k->expr[0]) return k->value;
  double v;
  char msg[160];
  if (vtl__deforum_eval_at(e->x, k->expr, t, e->tl->fps, e->tl->length, &v, msg,
                           sizeof msg))
    return k->value;
  return v;
}

static void put_key(vtl__sbuf *b, int64_t frame, const char *val) {
  vtl__sbuf_printf(b, "%s%lld: (%s)", b->n ? ", " : "", (long long)frame, val);
}

static void put_num(vtl__sbuf *b, int64_t frame, double v, bool invert) {
  char num[400];
  vtl__deforum_fmt_num(num, sizeof num, v, invert);
  put_key(b, frame, num);
}

/* The numexpr text of a vtl expression if it reads back (through the
 * importer's rewriting) as an expression with the same values on frames
 * [from, to); NULL otherwise. malloc'd. */
static char *expr_numexpr(dexp *e, const char *lua, bool invert, int64_t from,
                          int64_t to) {
  const char *body = lua;
  char *inner = NULL;
  size_t n = strlen(lua);
  if (invert) {
    /* our own wrapper 1-(X): write X */
    if (n > 4 && strncmp(lua, "1-(", 3) == 0 && lua[n - 1] == ')' &&
        vtl__deforum_match_paren(lua, n, 2) == n) {
      if (!(inner = vtl__deforum_strndup(lua + 3, n - 4))) return NULL;
      body = inner;
    } else {
      size_t m = n + 5;
      if (!(inner = malloc(m))) return NULL;
      snprintf(inner, m, "1-(%s)", lua);
      body = inner;
    }
  }
  char nx[VTL_MAX_EXPR * 2 + 64];
  vtl__sbuf b = {0};
  char *res = NULL;
  if (vtl_expr_to_numexpr(body, nx, sizeof nx) == 0 &&
      vtl__deforum_lua_names(&b, nx, strlen(nx), e->tl->fps) == 0 && !b.oom) {
    /* read it back the way the importer will and compare */
    char back[VTL_MAX_EXPR * 2 + 64], msg[160];
    vtl__sbuf nb = {0};
    char seed[24];
    snprintf(seed, sizeof seed, "%lld", (long long)e->tl->seed);
    bool ok =
        vtl__deforum_nx_names(&nb, b.p, b.n, seed, msg, sizeof msg) == 0 &&
        !nb.oom &&
        vtl_expr_from_numexpr(vtl__sbuf_str(&nb), back, sizeof back) == 0;
    free(nb.p);
    char *lua2 = NULL;
    if (ok) {
      size_t m = strlen(back) + 6;
      if ((lua2 = malloc(m)))
        snprintf(lua2, m, invert ? "1-(%s)" : "%s", back);
      ok = lua2 != NULL;
    }
    /* and Deforum's numexpr must agree with vtl on every frame */
    for (int64_t f = from; ok && f < to; f++) {
      double v1, v2, v3;
      const char *nmsg;
      if (vtl__deforum_eval_at(e->x, lua, f, e->tl->fps, e->tl->length, &v1,
                               msg, sizeof msg) ||
          vtl__deforum_eval_at(e->x, lua2, f, e->tl->fps, e->tl->length, &v2,
                               msg, sizeof msg) ||
          vtl__deforum_nx_evaluate(b.p, b.n, true, (double)f,
                                   (double)(e->tl->length - 1),
                                   (double)e->tl->seed, &v3, &nmsg) ||
          !(fabs(v1 - v2) <= 1e-12 * fmax(1, fabs(v1))) ||
          !(fabs(v1 - (invert ? 1 - v3 : v3)) <= 1e-9 * fmax(1, fabs(v1))))
        ok = false;
    }
    free(lua2);
    double num;
    /* a constant would read as a number (interpolated): keep it an
     * expression (held) with a space, as Deforum tests the text as is */
    if (ok && vtl__deforum_is_plain_number(b.p, b.n, &num))
      vtl__sbuf_puts(&b, " ");
    if (ok && !b.oom) res = strdup(b.p);
  }
  free(b.p);
  free(inner);
  return res;
}

/* The schedule string of parameter p (strength inverted to Deforum's). */
static int export_schedule(dexp *e, int p, const char *key, vtl__sbuf *b,
                           bool *driven) {
  const vtl_keyframe **k;
  size_t n;
  bool invert = p == VTL_PARAM_STRENGTH;
  int64_t len = e->tl->length;
  TRY(driving_keys(e, p, &k, &n));
  *driven = n > 0;
  if (n == 0) {
    double v;
    switch (p) {
    case VTL_PARAM_STRENGTH: v = e->tl->strength; break;
    case VTL_PARAM_GUIDANCE: v = e->tl->guidance; break;
    case VTL_PARAM_STEPS: v = (double)e->tl->steps; break;
    case VTL_PARAM_SEED: v = (double)e->tl->seed; break;
    default: v = vtl_param_table[p].def;
    }
    put_num(b, 0, v, invert);
    return 0;
  }
  /* skip keys that share a frame (the last one wins in eval.c) and keys
   * past the end (Deforum ignores them; a line towards one is cut with a
   * sample at the last frame) */
  int sampled_from = -1;
  bool wrote_expr_samples = false;
  if (k[0]->frame > 0) put_num(b, 0, kval(e, k[0], k[0]->frame), invert);
  for (size_t i = 0; i < n; i++) {
    const vtl_keyframe *a = k[i];
    if (i + 1 < n && k[i + 1]->frame == a->frame) continue;
    if (a->frame >= len) break;
    const vtl_keyframe *nb = i + 1 < n ? k[i + 1] : NULL;
    int64_t next = nb ? nb->frame : len;
    int64_t stop = next < len ? next : len; /* frames this key covers */
    if (a->expr[0]) {
      char *nx = expr_numexpr(e, a->expr, invert, a->frame, stop);
      if (nx) {
        put_key(b, a->frame, nx);
        free(nx);
        continue;
      }
      for (int64_t f = a->frame; f < stop; f++)
        put_num(b, f, kval(e, a, f), invert);
      if (!wrote_expr_samples)
        TRY(xwarn(e, "%s: expression \"%.60s\" has no numexpr form; written "
                  "as per-frame values", key, a->expr));
      wrote_expr_samples = true;
      continue;
    }
    put_num(b, a->frame, a->value, invert);
    if (!nb) continue;
    double vb = kval(e, nb, nb->frame);
    if (a->interp == VTL_INTERP_LINEAR) {
      if (next >= len && len - 1 > a->frame) /* cut the line at the end */
        put_num(b, len - 1, vtl_curve_segment(a, a->value, nb, vb,
                                              (double)(len - 1)), invert);
    } else if (a->interp == VTL_INTERP_HOLD) {
      if (stop - 1 > a->frame) put_num(b, stop - 1, a->value, invert);
    } else {
      for (int64_t f = a->frame + 1; f < stop; f++)
        put_num(b, f, vtl_curve_segment(a, a->value, nb, vb, (double)f), invert);
      if (sampled_from < 0) {
        sampled_from = (int)a->frame;
        TRY(xwarn(e, "%s: %s curve from frame %lld written as per-frame "
                  "values (Deforum interpolates linearly)", key,
                  vtl_interp_names[a->interp], (long long)a->frame));
      }
    }
  }
  free(k);
  return b->oom ? VTL_ENOMEM : 0;
}

static int jset(json_t *o, const char *key, json_t *v) {
  if (!v) return VTL_ENOMEM;
  return json_object_set_new(o, key, v) ? VTL_ENOMEM : 0;
}

static int jset_str(dexp *e, json_t *o, const char *key, const char *s) {
  json_t *v = json_string(s);
  if (!v)
    return vtl__deforum_fail(e->err, VTL_EINVAL, "%s: text is not valid UTF-8",
                             key);
  return jset(o, key, v);
}

static int cmp_clip_key(const void *a, const void *b) {
  const vtl_prompt_clip *x = *(const vtl_prompt_clip *const *)a;
  const vtl_prompt_clip *y = *(const vtl_prompt_clip *const *)b;
  int64_t fx = x->start + x->fade_in, fy = y->start + y->fade_in;
  if (fx != fy) return fx < fy ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* Prompts: one key per clip at the frame it reaches full weight. */
static int export_prompts(dexp *e, json_t *o) {
  size_t nc;
  const void *const *all = vtl_doc_list(e->doc, VTL_ENT_PROMPT_CLIP, &nc);
  const vtl_prompt_clip **c = malloc((nc ? nc : 1) * sizeof *c);
  if (!c) return VTL_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < nc; i++) {
    const vtl_prompt_clip *cl = all[i];
    const vtl_track *t = vtl_doc_get(e->doc, VTL_ENT_TRACK, cl->track);
    if (t && !t->mute) c[n++] = cl;
  }
  qsort(c, n, sizeof *c, cmp_clip_key);
  json_t *pr = json_object();
  int rc = pr ? 0 : VTL_ENOMEM;
  bool fades = false, overlap = false, gap = false, weights = false;
  int64_t covered = 0; /* frames before this are covered by a clip */
  for (size_t i = 0; i < n && !rc; i++) {
    const vtl_prompt_clip *cl = c[i];
    int64_t key = cl->start + cl->fade_in;
    if (cl->fade_in || cl->fade_out) fades = true;
    if (cl->weight != 1) weights = true;
    if (i + 1 < n && c[i + 1]->start + c[i + 1]->fade_in == key) {
      overlap = true; /* the later one (by id) is written */
      continue;
    }
    if (!cl->fade_in && cl->start > covered && cl->start < e->tl->length)
      gap = true;
    if (!cl->fade_in && i > 0 && cl->start < c[i - 1]->end &&
        !c[i - 1]->fade_out)
      overlap = true;
    if (cl->end > covered) covered = cl->end;
    char fr[24];
    snprintf(fr, sizeof fr, "%lld", (long long)key);
    vtl__sbuf t = {0};
    vtl__sbuf_puts(&t, cl->text);
    if (cl->negative[0]) vtl__sbuf_printf(&t, " --neg %s", cl->negative);
    rc = t.oom ? VTL_ENOMEM : jset_str(e, pr, fr, t.p);
    free(t.p);
  }
  if (!rc && fades)
    rc = xwarn(e, "prompts: crossfades written as keys at each clip's "
               "full-weight frame; Deforum 2D/3D holds each prompt until the "
               "next (import with blend_prompts to get the fades back)");
  if (!rc && weights)
    rc = xwarn(e, "prompts: clip weights other than 1 are not exported");
  if (!rc && overlap)
    rc = xwarn(e, "prompts: overlapping clips; Deforum has one prompt per "
               "frame");
  if (!rc && gap)
    rc = xwarn(e, "prompts: frames without a clip get the previous prompt "
               "in Deforum");
  if (!rc && json_object_size(pr) == 0)
    rc = xwarn(e, "prompts: none (no clip on an unmuted prompt track)");
  if (!rc && json_object_size(pr)) rc = jset(o, "prompts", json_incref(pr));
  if (!rc && json_object_size(pr))
    rc = jset(o, "animation_prompts", json_incref(pr));
  json_decref(pr);
  free(c);
  if (!rc) rc = jset(o, "animation_prompts_positive", json_string(""));
  if (!rc) rc = jset(o, "animation_prompts_negative", json_string(""));
  if (!rc) rc = jset(o, "positive_prompts", json_string(""));
  if (!rc) rc = jset(o, "negative_prompts", json_string(""));
  return rc;
}

static const char *const sampler_out[] = {"DDIM", "Euler", "Euler a",
                                          "DPM++ 2M", "LCM"};

static int export_all(dexp *e, json_t *o) {
  const vtl_timeline *tl = e->tl;
  char num[64];
  TRY(jset(o, "W", json_integer(tl->width)));
  TRY(jset(o, "H", json_integer(tl->height)));
  TRY(jset(o, "seed", json_integer(tl->seed)));
  TRY(jset(o, "sampler", json_string(sampler_out[tl->sampler])));
  TRY(jset(o, "steps", json_integer(tl->steps)));
  TRY(jset(o, "scale", json_real(tl->guidance)));
  TRY(jset(o, "seed_behavior", json_string(vtl_seed_mode_names[tl->seed_mode])));
  TRY(jset(o, "seed_iter_N", json_integer(tl->seed_iter_n)));
  vtl__deforum_fmt_num(num, sizeof num, tl->strength, true);
  TRY(jset(o, "strength", json_real(strtod(num, NULL))));
  if (tl->name[0]) TRY(jset_str(e, o, "batch_name", tl->name));
  if (tl->model[0]) TRY(jset_str(e, o, "sd_model_name", tl->model));
  TRY(jset(o, "animation_mode",
           json_string(tl->anim_mode == VTL_ANIM_3D ? "3D" : "2D")));
  TRY(jset(o, "max_frames", json_integer(tl->length)));
  TRY(jset(o, "fps", json_real(tl->fps)));
  if (tl->spacing != VTL_SPACING_LEADING)
    TRY(xwarn(e, "spacing: \"%s\" has no Deforum setting",
              vtl_spacing_names[tl->spacing]));

  /* cadence: a constant in Deforum */
  double cad0 = vtl_param_at(e->doc, VTL_PARAM_CADENCE, 0);
  for (int64_t f = 1; f < tl->length; f++)
    if (vtl_param_at(e->doc, VTL_PARAM_CADENCE, f) != cad0) {
      TRY(xwarn(e, "diffusion_cadence: changes over time in vtl; Deforum's "
                "is one number, frame 0's (%g) written", cad0));
      break;
    }
  TRY(jset(o, "diffusion_cadence", json_integer((json_int_t)cad0)));

  static const struct {
    const char *key;
    int param;
  } sch[] = {
      {"angle", VTL_PARAM_ANGLE},
      {"zoom", VTL_PARAM_ZOOM},
      {"translation_x", VTL_PARAM_TX},
      {"translation_y", VTL_PARAM_TY},
      {"translation_z", VTL_PARAM_TZ},
      {"rotation_3d_x", VTL_PARAM_RX},
      {"rotation_3d_y", VTL_PARAM_RY},
      {"rotation_3d_z", VTL_PARAM_RZ},
      {"fov_schedule", VTL_PARAM_FOV},
      {"near_schedule", VTL_PARAM_NEAR},
      {"far_schedule", VTL_PARAM_FAR},
      {"noise_schedule", VTL_PARAM_NOISE},
      {"strength_schedule", VTL_PARAM_STRENGTH},
      {"contrast_schedule", VTL_PARAM_CONTRAST},
      {"cfg_scale_schedule", VTL_PARAM_GUIDANCE},
      {"steps_schedule", VTL_PARAM_STEPS},
      {"seed_schedule", VTL_PARAM_SEED},
  };
  for (size_t i = 0; i < sizeof sch / sizeof sch[0]; i++) {
    if (sch[i].param == VTL_PARAM_SEED && tl->seed_mode != VTL_SEED_SCHEDULE)
      continue;
    vtl__sbuf b = {0};
    bool driven;
    int rc = export_schedule(e, sch[i].param, sch[i].key, &b, &driven);
    if (!rc) rc = b.oom ? VTL_ENOMEM : jset(o, sch[i].key, json_string(b.p));
    free(b.p);
    TRY(rc);
    if (sch[i].param == VTL_PARAM_STEPS)
      TRY(jset(o, "enable_steps_scheduling", json_boolean(driven)));
  }
  /* Colab's constants */
  TRY(jset(o, "fov", json_real(vtl_param_at(e->doc, VTL_PARAM_FOV, 0))));
  TRY(jset(o, "near_plane", json_real(vtl_param_at(e->doc, VTL_PARAM_NEAR, 0))));
  TRY(jset(o, "far_plane", json_real(vtl_param_at(e->doc, VTL_PARAM_FAR, 0))));

  size_t nsampler = 0;
  const vtl_keyframe **sk;
  TRY(driving_keys(e, VTL_PARAM_SAMPLER, &sk, &nsampler));
  free(sk);
  if (nsampler)
    TRY(xwarn(e, "sampler: the sampler track is not exported; the timeline's "
              "sampler is written"));
  TRY(export_prompts(e, o));

  /* switch off what Deforum would otherwise add from its UI defaults */
  TRY(jset(o, "color_coherence", json_string("None")));
  TRY(jset(o, "enable_perspective_flip", json_false()));
  TRY(jset(o, "amount_schedule", json_string("0: (0)")));
  TRY(jset(o, "enable_noise_multiplier_scheduling", json_false()));
  TRY(jset(o, "optical_flow_cadence", json_string("None")));
  TRY(jset(o, "hybrid_motion", json_string("None")));
  TRY(jset(o, "hybrid_composite", json_string("None")));
  TRY(jset(o, "use_init", json_false()));
  TRY(jset(o, "use_mask", json_false()));

  size_t ns, nm;
  const void *const *shots = vtl_doc_list(e->doc, VTL_ENT_SHOT, &ns);
  vtl_doc_list(e->doc, VTL_ENT_MARKER, &nm);
  bool cut = false, own = false;
  for (size_t i = 0; i < ns; i++) {
    const vtl_shot *s = shots[i];
    if (s->start > 0) cut = true;
    if (s->source != VTL_SOURCE_NOISE || s->seed >= 0) own = true;
  }
  if (cut)
    TRY(xwarn(e, "shots: cuts are not exported; Deforum renders one "
              "continuous shot"));
  if (own)
    TRY(xwarn(e, "shots: per-shot sources and seeds are not exported"));
  if (nm) TRY(xwarn(e, "markers: %zu marker%s not exported", nm,
                    nm > 1 ? "s" : ""));
  return 0;
}

int vtl_deforum_export(vtl_doc *doc, char **out, vtl_warnings *warnings,
                       vtl_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!doc || !out)
    return vtl__deforum_fail(err, VTL_EINVAL, "deforum: no document");
  vtl_warnings local = {0};
  dexp e = {doc, vtl_doc_timeline(doc), &local, err, NULL};
  json_t *o = json_object();
  int rc = o ? vtl_expr_ctx_new(&e.x) : VTL_ENOMEM;
  if (!rc) rc = export_all(&e, o);
  char *text = NULL;
  if (!rc && !(text = json_dumps(o, JSON_INDENT(4) | JSON_REAL_PRECISION(15))))
    rc = VTL_ENOMEM;
  if (!rc && warnings)
    for (size_t i = 0; i < local.n && !rc; i++)
      rc = vtl_warnings_add(warnings, "%s", local.items[i]);
  if (rc && err && !err->message[0])
    vtl__deforum_fail(err, rc, "deforum: %s", vtl_strerror(rc));
  if (rc) free(text);
  else *out = text;
  vtl_warnings_free(&local);
  vtl_expr_ctx_free(e.x);
  json_decref(o);
  return rc;
}
