/* template.c — shot templates: named, parameterised camera moves as data.
 *
 * A template (format: docs/templates.md, files: templates/<name>.json) is
 *
 *   { "format": "vtl-template", "version": 1, "name": "dolly_in",
 *     "description": "...", "anim_mode": "3d" | "2d" | "any",
 *     "tracks": [ { "target": "translation_z", "neutral": 0,
 *                   "keys": [ {"at": 0, "value": 0, "interp": "ease_in_out"},
 *                             {"at": 0.25, "value": 2.5}, ... ] } ] }
 *
 * `at` is the position in the shot (0 = its first frame, 1 = its last),
 * values are scaled around the track's `neutral` (default: the parameter's
 * default, so zoom scales around 1 and the rest around 0) by the intensity.
 * Unknown keys are errors; every error names its JSON path.
 *
 * vtl_template_apply(): the shot spans [S, E): from its start to the next
 * later shot start, or the timeline's length. Per template track, on the
 * track T that drives its parameter (eval.c rule 1; else the first unmuted
 * track of the target; else a new one):
 *
 *   1. Template keys land on frames S + round(at * (E - S - 1)); when two
 *      land on one frame the later one in the array wins. Handle times are
 *      fractions of the shot too. Before the first key and after the last
 *      the shot holds that key's value (as the timeline does): a hold key
 *      is added at S and/or E - 1 where the template has none (not after a
 *      last key with an expression, which runs to the end of the shot).
 *   2. T's keys inside [S, E) are deleted and the template's created.
 *   3. The neighbouring shots must not change at any frame. Only two places
 *      can: frames [E, next key of T after E) — the segment leaving the
 *      shot — and frames (last key of T before S, S - 1] — the segment
 *      entering it. For each, the old and the new curve are compared
 *      (every frame, or 1024 samples of a long stretch); where they differ
 *      a "pin" keyframe at E (resp. S - 1) restores the old curve exactly:
 *
 *        old key before the boundary   pin
 *        none                          hold at the old constant value
 *        with an expression            the same expression (E side)
 *        hold / after the last key     hold at its value (a last bezier
 *                                      key before S becomes hold: its
 *                                      handle would bow the curve)
 *        linear                        the old value there (linear on E)
 *        bezier / ease_*               the segment cut at the pin (de
 *                                      Casteljau): the pin and the key on
 *                                      the far side get the handles of the
 *                                      part kept; ease_* becomes bezier
 *
 *      A cut piece is one bezier when its control times lie inside it;
 *      curve.c would clamp them otherwise (handles that reach past each
 *      other), so such a piece is cut again at its middle frame, with a
 *      key there, until they do — at worst every frame, where handles no
 *      longer matter. So the curve is the same at every frame, always.
 *      Where T already has a key at E (resp. S - 1), nothing can change
 *      there and no pin is made: applying a template twice replaces its
 *      keys and adds nothing.
 *
 * Ops come per template track in the order: create track, delete keys,
 * set interp / handles of neighbour keys, create keys by frame. They apply
 * cleanly on the document they were made from (the caller applies them).
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vtl_import.h"

#define FORMAT_NAME "vtl-template"
#define FORMAT_VERSION 1
#define COMPARE_SAMPLES 1024 /* frames compared at most per boundary */
#define VALUE_MAX 1e9        /* keyframe value range (fields.c) */

#define fail vtl__errorf

/* ---- the parsed template ------------------------------------------------------ */

typedef struct {
  double at;                   /* 0..1: position in the shot */
  double value;                /* unscaled */
  int64_t interp;              /* vtl_interp */
  double out_dt, out_dv;       /* handle: shot fraction 0..1, value */
  double in_dt, in_dv;         /* handle: shot fraction -1..0, value */
  const char *expr;            /* borrowed from the JSON; NULL = none */
} tkey;

typedef struct {
  int target;                  /* vtl_target of a parameter */
  double neutral;              /* the value intensity scales around */
  tkey *keys;                  /* is malloc'd, template order */
  size_t nkeys;
} ttrack;

typedef struct {
  json_t *root;                /* owned: holds the strings keys borrow */
  const char *name;            /* borrowed from root */
  int anim_mode;               /* vtl_anim_mode, or -1: any */
  ttrack *tracks;              /* is malloc'd */
  size_t ntracks;
} tmpl;

static void tmpl_free(tmpl *t) {
  for (size_t i = 0; i < t->ntracks; i++) free(t->tracks[i].keys);
  free(t->tracks);
  json_decref(t->root);
}

/* Unknown keys of o (not in the NULL-ended `known`) are errors. */
static int check_keys(json_t *o, const char *const *known, const char *path,
                      vtl_error *err) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int i = 0;
    while (known[i] && strcmp(known[i], key)) i++;
    if (!known[i])
      return fail(err, VTL_EINVAL, "%s%s%s: unknown key", path,
                  path[0] ? "." : "", key);
  }
  return 0;
}

/* Optional number o[key] within lo..hi into *out (unchanged if absent). */
static int get_number(json_t *o, const char *key, const char *path, double lo,
                      double hi, double *out, vtl_error *err) {
  json_t *v = json_object_get(o, key);
  if (!v) return 0;
  if (!json_is_number(v))
    return fail(err, VTL_ETYPE, "%s.%s: expected a number", path, key);
  double x = json_number_value(v);
  if (!(x >= lo && x <= hi))
    return fail(err, VTL_ERANGE, "%s.%s: expected %g..%g", path, key, lo, hi);
  *out = x;
  return 0;
}

static int enum_error(const char *path, const char *const *names,
                      vtl_error *err) {
  char list[200] = "";
  for (int i = 0; names[i]; i++) {
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
  }
  return fail(err, VTL_ERANGE, "%s: expected one of %s", path, list);
}

static int parse_key(json_t *o, const char *path, tkey *k, double neutral,
                     vtl_error *err) {
  static const char *const known[] = {"at", "value", "interp", "expr",
                                      "out_dt", "out_dv", "in_dt", "in_dv",
                                      NULL};
  char fpath[96];
  int rc;
  if (!json_is_object(o))
    return fail(err, VTL_ETYPE, "%s: expected an object", path);
  if ((rc = check_keys(o, known, path, err))) return rc;
  *k = (tkey){.at = -1, .value = neutral, .interp = VTL_INTERP_LINEAR};
  if (!json_object_get(o, "at"))
    return fail(err, VTL_EINVAL, "%s.at: required", path);
  if ((rc = get_number(o, "at", path, 0, 1, &k->at, err)) ||
      (rc = get_number(o, "value", path, -VALUE_MAX, VALUE_MAX, &k->value,
                       err)) ||
      (rc = get_number(o, "out_dt", path, 0, 1, &k->out_dt, err)) ||
      (rc = get_number(o, "out_dv", path, -VALUE_MAX, VALUE_MAX, &k->out_dv,
                       err)) ||
      (rc = get_number(o, "in_dt", path, -1, 0, &k->in_dt, err)) ||
      (rc = get_number(o, "in_dv", path, -VALUE_MAX, VALUE_MAX, &k->in_dv,
                       err)))
    return rc;
  json_t *interp = json_object_get(o, "interp");
  if (interp) {
    snprintf(fpath, sizeof fpath, "%s.interp", path);
    int e = json_is_string(interp)
                ? vtl_enum_lookup(vtl_interp_names, json_string_value(interp))
                : -1;
    if (e < 0) return enum_error(fpath, vtl_interp_names, err);
    k->interp = e;
  }
  json_t *expr = json_object_get(o, "expr");
  if (expr) {
    if (!json_is_string(expr))
      return fail(err, VTL_ETYPE, "%s.expr: expected a string", path);
    const char *s = json_string_value(expr);
    if (json_string_length(expr) != strlen(s))
      return fail(err, VTL_EINVAL, "%s.expr: contains a NUL character", path);
    if (strlen(s) > VTL_MAX_EXPR)
      return fail(err, VTL_ETOOLONG, "%s.expr: longer than %d bytes", path,
                  VTL_MAX_EXPR);
    if (s[0]) k->expr = s;
  }
  if (!k->expr && !json_object_get(o, "value"))
    return fail(err, VTL_EINVAL, "%s.value: required (or an expr)", path);
  return 0;
}

static int parse_track(json_t *o, const char *path, ttrack *t,
                       vtl_error *err) {
  static const char *const known[] = {"target", "neutral", "keys", NULL};
  char fpath[80];
  int rc;
  if (!json_is_object(o))
    return fail(err, VTL_ETYPE, "%s: expected an object", path);
  if ((rc = check_keys(o, known, path, err))) return rc;
  json_t *target = json_object_get(o, "target");
  if (!json_is_string(target))
    return fail(err, VTL_EINVAL, "%s.target: expected a parameter name",
                path);
  int p = vtl_enum_lookup(vtl_target_names, json_string_value(target));
  if (p == VTL_TARGET_PROMPT)
    return fail(err, VTL_EINVAL, "%s.target: prompt tracks hold clips, not "
                "keyframes", path);
  if (p < 0)
    return fail(err, VTL_EINVAL, "%s.target: unknown parameter \"%s\"", path,
                json_string_value(target));
  t->target = p;
  t->neutral = vtl_param_table[p].def;
  if ((rc = get_number(o, "neutral", path, -VALUE_MAX, VALUE_MAX, &t->neutral,
                       err)))
    return rc;
  json_t *keys = json_object_get(o, "keys");
  if (!json_is_array(keys) || json_array_size(keys) == 0)
    return fail(err, VTL_EINVAL, "%s.keys: expected a non-empty array", path);
  if (json_array_size(keys) > VTL_MAX_KEYFRAMES)
    return fail(err, VTL_ELIMIT, "%s.keys: more than %d", path,
                VTL_MAX_KEYFRAMES);
  t->nkeys = json_array_size(keys);
  if (!(t->keys = calloc(t->nkeys, sizeof *t->keys)))
    return fail(err, VTL_ENOMEM, "out of memory");
  for (size_t i = 0; i < t->nkeys; i++) {
    snprintf(fpath, sizeof fpath, "%s.keys[%zu]", path, i);
    if ((rc = parse_key(json_array_get(keys, i), fpath, &t->keys[i],
                        t->neutral, err)))
      return rc;
  }
  return 0;
}

/* Parses and checks a template; on failure t is freed. */
static int tmpl_parse(const char *text, size_t len, tmpl *t, vtl_error *err) {
  static const char *const known[] = {"format", "version", "name",
                                      "description", "anim_mode", "tracks",
                                      NULL};
  static const char *const modes[] = {"2d", "3d", "any", NULL};
  json_error_t jerr;
  int rc;
  *t = (tmpl){.anim_mode = -1};
  if (!(t->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
    return fail(err, VTL_EPARSE, "line %d, column %d: %s", jerr.line,
                jerr.column, jerr.text);
  json_t *root = t->root;
  if (!json_is_object(root)) {
    rc = fail(err, VTL_EPARSE, "top level: expected an object");
    goto bad;
  }
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) || strcmp(json_string_value(fmt), FORMAT_NAME)) {
    rc = fail(err, VTL_EPARSE, "format: expected \"%s\"", FORMAT_NAME);
    goto bad;
  }
  json_t *ver = json_object_get(root, "version");
  if (!json_is_integer(ver) || json_integer_value(ver) != FORMAT_VERSION) {
    rc = fail(err, VTL_EUNSUPPORTED, "version: only %d is known",
              FORMAT_VERSION);
    goto bad;
  }
  if ((rc = check_keys(root, known, "", err))) goto bad;
  json_t *name = json_object_get(root, "name");
  if (!json_is_string(name) || !json_string_value(name)[0] ||
      json_string_length(name) != strlen(json_string_value(name))) {
    rc = fail(err, VTL_EINVAL, "name: expected a non-empty string");
    goto bad;
  }
  if (json_string_length(name) > VTL_MAX_NAME) {
    rc = fail(err, VTL_ETOOLONG, "name: longer than %d bytes", VTL_MAX_NAME);
    goto bad;
  }
  t->name = json_string_value(name);
  json_t *desc = json_object_get(root, "description");
  if (desc && !json_is_string(desc)) {
    rc = fail(err, VTL_ETYPE, "description: expected a string");
    goto bad;
  }
  json_t *mode = json_object_get(root, "anim_mode");
  if (mode) {
    int m = json_is_string(mode) ? vtl_enum_lookup(modes, json_string_value(mode))
                                 : -1;
    if (m < 0) {
      rc = enum_error("anim_mode", modes, err);
      goto bad;
    }
    t->anim_mode = m == 2 ? -1 : m;
  }
  json_t *tracks = json_object_get(root, "tracks");
  if (!json_is_array(tracks) || json_array_size(tracks) == 0) {
    rc = fail(err, VTL_EINVAL, "tracks: expected a non-empty array");
    goto bad;
  }
  size_t n = json_array_size(tracks);
  if (n > VTL_PARAM__COUNT) {
    rc = fail(err, VTL_ELIMIT, "tracks: more than one per parameter");
    goto bad;
  }
  if (!(t->tracks = calloc(n, sizeof *t->tracks))) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto bad;
  }
  for (size_t i = 0; i < n; i++) {
    char path[32];
    snprintf(path, sizeof path, "tracks[%zu]", i);
    t->ntracks = i + 1;
    if ((rc = parse_track(json_array_get(tracks, i), path, &t->tracks[i],
                          err)))
      goto bad;
    for (size_t j = 0; j < i; j++)
      if (t->tracks[j].target == t->tracks[i].target) {
        rc = fail(err, VTL_EINVAL, "%s.target: %s is also tracks[%zu]'s",
                  path, vtl_target_names[t->tracks[i].target], j);
        goto bad;
      }
  }
  return 0;
bad:
  tmpl_free(t);
  *t = (tmpl){0};
  return rc;
}

/* ---- curves -------------------------------------------------------------------------- */

typedef struct {
  vtl_doc *doc;
  const vtl_timeline *tl;
  vtl_expr_ctx *x;             /* the document's expression sandbox */
} evaluator;

/* Key k's value at frame t: its expression if it has one and it
 * evaluates, else its plain value (eval.c's key_value). */
static double key_value(evaluator *e, const vtl_keyframe *k, int64_t t) {
  if (!k->expr[0]) return k->value;
  vtl_expr_vars vars = {(double)t, (double)t / e->tl->fps,
                        (double)(e->tl->length - 1), e->tl->fps};
  double out;
  if (vtl_expr_eval(e->x, k->expr, &vars, &out, NULL, 0) == 0) return out;
  return k->value;
}

/* Number of keys with frame <= f (keys sorted by frame). */
static size_t keys_upto(const vtl_keyframe *const *k, size_t n, int64_t f) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (k[mid]->frame <= f) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The raw (unclamped) value at f of a track with keys k[0..n), or v0 when
 * it has none: eval.c rule 2. */
static double curve_at(evaluator *e, const vtl_keyframe *const *k, size_t n,
                       double v0, char kind, int64_t f) {
  if (n == 0) return v0;
  size_t i = keys_upto(k, n, f);
  if (i == 0) return key_value(e, k[0], k[0]->frame);
  const vtl_keyframe *a = k[i - 1];
  if (a->expr[0]) return key_value(e, a, f);
  if (kind == 'E' || i == n) return a->value;
  return vtl_curve_segment(a, a->value, k[i], key_value(e, k[i], k[i]->frame),
                           (double)f);
}

/* True if the two curves differ anywhere in frames [lo, hi] (every frame,
 * or COMPARE_SAMPLES evenly spread ones including both ends). */
static bool curves_differ(evaluator *e, const vtl_keyframe *const *ka,
                          size_t na, const vtl_keyframe *const *kb, size_t nb,
                          double v0, char kind, int64_t lo, int64_t hi) {
  if (hi < lo) return false;
  int64_t span = hi - lo;
  int64_t n = span + 1 < COMPARE_SAMPLES ? span + 1 : COMPARE_SAMPLES;
  for (int64_t j = 0; j < n; j++) {
    int64_t f = n == span + 1 ? lo + j : lo + (int64_t)((double)span * j / (n - 1));
    double x = curve_at(e, ka, na, v0, kind, f);
    double y = curve_at(e, kb, nb, v0, kind, f);
    if (fabs(x - y) > 1e-9 * fmax(1, fabs(x))) return true;
  }
  return false;
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

typedef struct { double x, y; } pt;

static pt lerp(pt p, pt q, double u) {
  return (pt){p.x + (q.x - p.x) * u, p.y + (q.y - p.y) * u};
}

/* The part of the cubic c[0..3] between parameters u0 < u1, as a cubic
 * (two de Casteljau cuts). */
static void sub_cubic(const pt c[4], double u0, double u1, pt out[4]) {
  pt l[4];
  pt q0 = lerp(c[0], c[1], u1), q1 = lerp(c[1], c[2], u1),
     q2 = lerp(c[2], c[3], u1), r0 = lerp(q0, q1, u1), r1 = lerp(q1, q2, u1);
  l[0] = c[0], l[1] = q0, l[2] = r0, l[3] = lerp(r0, r1, u1); /* [0, u1] */
  double t = u1 > 0 ? u0 / u1 : 0;
  q0 = lerp(l[0], l[1], t), q1 = lerp(l[1], l[2], t), q2 = lerp(l[2], l[3], t);
  r0 = lerp(q0, q1, t), r1 = lerp(q1, q2, t);
  out[0] = lerp(r0, r1, t), out[1] = r1, out[2] = q2, out[3] = l[3];
}

/* One key of a chain that redraws part of a curved segment: its frame,
 * value and the handles of the pieces arriving at and leaving it. */
typedef struct {
  int64_t frame;
  double value;
  double in_dt, in_dv;         /* frames <= 0, value */
  double out_dt, out_dv;       /* frames >= 0, value */
} chain_key;

typedef struct {
  pt c[4];                     /* the segment: x 0..1 over its span, value */
  int64_t ta;                  /* its first frame */
  double span;                 /* its length in frames */
  chain_key *k;                /* is malloc'd */
  size_t n, cap;
} chain;

static double chain_u(const chain *ch, int64_t f) {
  return vtl_bezier_solve(ch->c[1].x, ch->c[2].x, (double)(f - ch->ta) / ch->span);
}

static int chain_push(chain *ch, chain_key k) {
  if (ch->n == ch->cap) {
    size_t cap = ch->cap ? 2 * ch->cap : 4;
    chain_key *nk = realloc(ch->k, cap * sizeof *nk);
    if (!nk) return VTL_ENOMEM;
    ch->k = nk;
    ch->cap = cap;
  }
  ch->k[ch->n++] = k;
  return 0;
}

/* Appends the piece [f0, f1] of the segment: as one bezier if its control
 * times fall inside it (curve.c clamps them there, which would change the
 * curve), else as two pieces split at the middle frame. A piece of one
 * frame has no frame inside, so its handles never matter: the recursion
 * always ends. The chain's last key is left for the caller. */
static int chain_piece(chain *ch, int64_t f0, int64_t f1) {
  pt q[4];
  sub_cubic(ch->c, chain_u(ch, f0), chain_u(ch, f1), q);
  double w = q[3].x - q[0].x;
  double x1 = w > 0 ? (q[1].x - q[0].x) / w : 0;
  double x2 = w > 0 ? (q[2].x - q[0].x) / w : 1;
  if (f1 - f0 > 1 && !(x1 >= -1e-9 && x1 <= 1 + 1e-9 && x2 >= -1e-9 &&
                       x2 <= 1 + 1e-9)) {
    int64_t fm = f0 + (f1 - f0) / 2;
    int rc = chain_piece(ch, f0, fm);
    return rc ? rc : chain_piece(ch, fm, f1);
  }
  if (ch->n) { /* the handle leaving the piece's first key */
    ch->k[ch->n - 1].out_dt = fmax(0, (q[1].x - q[0].x) * ch->span);
    ch->k[ch->n - 1].out_dv = q[1].y - q[0].y;
  }
  return chain_push(ch, (chain_key){
    .frame = f1, .value = q[3].y,
    .in_dt = fmin(0, (q[2].x - q[3].x) * ch->span), .in_dv = q[2].y - q[3].y,
  });
}

/* Redraws frames [f0, f1] of the curved segment a -> b (vb: b's value at
 * its frame; a->frame <= f0 < f1 <= b->frame) as a chain of bezier
 * segments between keys at whole frames f0 = k[0] < ... < k[n-1] = f1
 * that evaluate like the original at every frame (de Casteljau cuts). The
 * ease presets are beziers with x controls (x1, x2) and value controls
 * va, vb (curve.c). Returns 0 or VTL_ENOMEM; ch->k is malloc'd. */
static int chain_make(chain *ch, const vtl_keyframe *a, const vtl_keyframe *b,
                      double vb, int64_t f0, int64_t f1) {
  double span = (double)(b->frame - a->frame), va = a->value;
  *ch = (chain){.ta = a->frame, .span = span};
  ch->c[0] = (pt){0, va}, ch->c[3] = (pt){1, vb};
  switch (a->interp) {
  case VTL_INTERP_EASE_IN: ch->c[1] = (pt){.42, va}, ch->c[2] = (pt){1, vb}; break;
  case VTL_INTERP_EASE_OUT: ch->c[1] = (pt){0, va}, ch->c[2] = (pt){.58, vb}; break;
  case VTL_INTERP_EASE_IN_OUT:
    ch->c[1] = (pt){.42, va}, ch->c[2] = (pt){.58, vb};
    break;
  default:
    ch->c[1] = (pt){clamp01(a->out_dt / span), va + a->out_dv};
    ch->c[2] = (pt){clamp01(1 + b->in_dt / span), vb + b->in_dv};
    break;
  }
  double u = chain_u(ch, f0), v = 1 - u;
  double y0 = v * v * v * ch->c[0].y + 3 * v * v * u * ch->c[1].y +
              3 * v * u * u * ch->c[2].y + u * u * u * ch->c[3].y;
  int rc = chain_push(ch, (chain_key){.frame = f0, .value = y0});
  return rc ? rc : chain_piece(ch, f0, f1);
}

static bool is_curved(int64_t interp) {
  return interp == VTL_INTERP_BEZIER || interp == VTL_INTERP_EASE_IN ||
         interp == VTL_INTERP_EASE_OUT || interp == VTL_INTERP_EASE_IN_OUT;
}

/* ---- ops ------------------------------------------------------------------------------- */

/* One vtl_template_apply() call. */
typedef struct {
  evaluator e;
  int64_t start, end;          /* the shot: frames [start, end) */
  double intensity;
  vtl_id next_id;              /* the next id to try */
  int64_t next_order;          /* order of the next created track */
  vtl_op_list ops;
} applier;

static bool id_taken(vtl_doc *doc, vtl_id id) {
  for (int k = 0; k < VTL_ENT__COUNT; k++)
    if (vtl_doc_get(doc, k, id)) return true;
  return false;
}

/* A fresh id: the next one not used by any entity. */
static int mint(applier *a, vtl_id *out, vtl_error *err) {
  while (a->next_id <= VTL_ID_MAX && id_taken(a->e.doc, a->next_id))
    a->next_id++;
  if (a->next_id == 0 || a->next_id > VTL_ID_MAX)
    return fail(err, VTL_ELIMIT, "template: no ids left to mint");
  *out = a->next_id++;
  return 0;
}

static int op_create_key(vtl_op *op, vtl_id track, const vtl_keyframe *k) {
  vtl_op_create(op, VTL_ENT_KEYFRAME, k->id);
  int rc = vtl_op_add_int(op, "track", (int64_t)track) ||
           vtl_op_add_int(op, "frame", k->frame) ||
           vtl_op_add_real(op, "value", k->value) ||
           vtl_op_add_int(op, "interp", k->interp);
  if (!rc && k->expr[0]) rc = vtl_op_add_str(op, "expr", k->expr);
  if (!rc && (k->out_dt || k->out_dv))
    rc = vtl_op_add_real(op, "out_dt", k->out_dt) ||
         vtl_op_add_real(op, "out_dv", k->out_dv);
  if (!rc && (k->in_dt || k->in_dv))
    rc = vtl_op_add_real(op, "in_dt", k->in_dt) ||
         vtl_op_add_real(op, "in_dv", k->in_dv);
  return rc;
}

/* Mints k's id and appends the op that creates it on `track`. */
static int push_key(applier *a, vtl_id track, vtl_keyframe *k,
                    vtl_error *err) {
  vtl_op *op;
  int rc = mint(a, &k->id, err);
  if (rc) return rc;
  if (!(op = vtl_op_list_push(&a->ops)) || op_create_key(op, track, k))
    return fail(err, VTL_ENOMEM, "out of memory");
  return 0;
}

/* The same for a key inside a redrawn segment (a chain's inner key). */
static int push_chain_key(applier *a, vtl_id track, const chain_key *c,
                          vtl_error *err) {
  vtl_keyframe k = {.frame = c->frame, .value = c->value,
                    .interp = VTL_INTERP_BEZIER, .expr = "",
                    .in_dt = c->in_dt, .in_dv = c->in_dv,
                    .out_dt = c->out_dt, .out_dv = c->out_dv};
  return push_key(a, track, &k, err);
}

/* Shortest "%g" text that reads back as v. */
static void fmt_num(char *out, size_t n, double v) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, v);
    if (strtod(out, NULL) == v) return;
  }
}

/* The applied expression: `(<expr>)*<i>`, around a non-zero neutral n
 * `n+((<expr>)-n)*<i>`; unchanged at intensity 1. Returns malloc'd text or
 * NULL (no memory). */
static char *scale_expr(const char *expr, double neutral, double intensity) {
  char in[40], nn[40];
  if (intensity == 1) return strdup(expr);
  fmt_num(in, sizeof in - 2, intensity);
  if (intensity < 0) {
    memmove(in + 1, in, strlen(in) + 1);
    in[0] = '(';
    strcat(in, ")");
  }
  fmt_num(nn, sizeof nn, neutral);
  size_t len = strlen(expr) + 2 * strlen(nn) + strlen(in) + 16;
  char *s = malloc(len);
  if (!s) return NULL;
  if (neutral == 0) snprintf(s, len, "(%s)*%s", expr, in);
  else snprintf(s, len, "%s+((%s)-%s)*%s", nn, expr, nn, in);
  return s;
}

static int cmp_key_frame(const void *x, const void *y) {
  const vtl_keyframe *a = *(const vtl_keyframe *const *)x;
  const vtl_keyframe *b = *(const vtl_keyframe *const *)y;
  if (a->frame != b->frame) return a->frame < b->frame ? -1 : 1;
  return (a->id > b->id) - (a->id < b->id);
}

/* Keyframes being made (not yet in the document). */
typedef struct {
  vtl_keyframe *k;             /* is malloc'd; each expr is malloc'd */
  size_t n;
} key_set;

static void key_set_free(key_set *s) {
  for (size_t i = 0; i < s->n; i++) free(s->k[i].expr);
  free(s->k);
}

/* Orders template keys by (frame, template index): later wins on ties. */
typedef struct {
  int64_t frame;
  size_t index;
} placed;

static int cmp_placed(const void *x, const void *y) {
  const placed *a = x, *b = y;
  if (a->frame != b->frame) return a->frame < b->frame ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* The new keys of template track t (tracks[ti]) on the shot: placed,
 * deduplicated (later wins), scaled by the intensity, with hold keys at the
 * shot's ends where the template has none (rules 1-3 of docs/templates.md).
 * Sorted by frame; ids 0 (minted when the ops are made). Expressions are
 * checked here so that errors name the template path. */
static int make_keys(applier *a, const ttrack *t, size_t ti, key_set *out,
                     vtl_error *err) {
  int64_t len = a->end - a->start;
  double I = a->intensity, n = t->neutral;
  placed *pl = malloc(t->nkeys * sizeof *pl);
  /* + 2: the hold keys at either end */
  vtl_keyframe *k = calloc(t->nkeys + 2, sizeof *k);
  size_t m = 1; /* slot 0 is for a hold key at the start */
  int rc = 0;
  if (!pl || !k) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < t->nkeys; i++)
    pl[i] = (placed){a->start + llround(t->keys[i].at * (double)(len - 1)), i};
  qsort(pl, t->nkeys, sizeof *pl, cmp_placed);
  for (size_t i = 0; i < t->nkeys; i++) {
    if (i + 1 < t->nkeys && pl[i + 1].frame == pl[i].frame) continue;
    const tkey *tk = &t->keys[pl[i].index];
    char path[64];
    snprintf(path, sizeof path, "tracks[%zu].keys[%zu]", ti, pl[i].index);
    vtl_keyframe *nk = &k[m++];
    *nk = (vtl_keyframe){
      .frame = pl[i].frame,
      .value = n + (tk->value - n) * I,
      .interp = tk->interp,
      .out_dt = tk->out_dt * (double)(len - 1), .out_dv = tk->out_dv * I,
      .in_dt = tk->in_dt * (double)(len - 1), .in_dv = tk->in_dv * I,
    };
    if (!(fabs(nk->value) <= VALUE_MAX && fabs(nk->out_dv) <= VALUE_MAX &&
          fabs(nk->in_dv) <= VALUE_MAX)) {
      rc = fail(err, VTL_ERANGE, "%s.value: scaled by intensity %g it (or a "
                "handle) is outside -1e9..1e9", path, I);
      goto done;
    }
    char msg[160];
    if (tk->expr && vtl_expr_check(a->e.x, tk->expr, msg, sizeof msg)) {
      rc = fail(err, VTL_EEXPR, "%s.expr: %s", path, msg);
      goto done;
    }
    nk->expr = tk->expr ? scale_expr(tk->expr, n, I) : strdup("");
    if (!nk->expr) {
      rc = fail(err, VTL_ENOMEM, "out of memory");
      goto done;
    }
    if (strlen(nk->expr) > VTL_MAX_EXPR) {
      rc = fail(err, VTL_ETOOLONG, "%s.expr: longer than %d bytes once scaled "
                "by intensity %g", path, VTL_MAX_EXPR, I);
      goto done;
    }
    if (nk->expr[0] && vtl_expr_check(a->e.x, nk->expr, msg, sizeof msg)) {
      rc = fail(err, VTL_EEXPR, "%s.expr: once scaled by intensity %g: %s",
                path, I, msg);
      goto done;
    }
  }
  /* hold before the first key: its value at its own frame */
  size_t first = 1;
  if (k[1].frame > a->start) {
    first = 0;
    k[0] = (vtl_keyframe){.frame = a->start, .interp = VTL_INTERP_HOLD,
                          .value = key_value(&a->e, &k[1], k[1].frame),
                          .expr = strdup("")};
    if (!k[0].expr) rc = fail(err, VTL_ENOMEM, "out of memory");
  }
  /* hold after the last key, unless its expression runs to the end */
  vtl_keyframe *last = &k[m - 1];
  if (!rc && last->frame < a->end - 1 && !last->expr[0]) {
    k[m] = (vtl_keyframe){.frame = a->end - 1, .interp = VTL_INTERP_HOLD,
                          .value = last->value, .expr = strdup("")};
    if (!k[m++].expr) rc = fail(err, VTL_ENOMEM, "out of memory");
  }
  if (!rc && first == 1) memmove(k, k + 1, --m * sizeof *k);
done:
  free(pl);
  out->k = k;
  out->n = k ? m : 0;
  if (rc && k) {
    /* unset exprs are NULL in the calloc'd tail: free() ignores them */
    for (size_t i = 0; i < t->nkeys + 2; i++) free(k[i].expr);
    free(k);
    *out = (key_set){0};
  }
  return rc;
}

/* The track a template track writes to: the driving one (the unmuted track
 * of the target with keys and the lowest (order, id)), else the first
 * unmuted one of the target, else NULL (to be created). */
static const vtl_track *pick_track(vtl_doc *doc, int target) {
  size_t nt, nk;
  const void *const *tracks = vtl_doc_list(doc, VTL_ENT_TRACK, &nt);
  const void *const *keys = vtl_doc_list(doc, VTL_ENT_KEYFRAME, &nk);
  const vtl_track *keyed = NULL, *any = NULL;
  /* tracks are sorted by id, so "<" on order keeps the lowest id on ties */
  for (size_t i = 0; i < nt; i++) {
    const vtl_track *t = tracks[i];
    if (t->target == target && !t->mute && (!any || t->order < any->order))
      any = t;
  }
  for (size_t j = 0; j < nk; j++) {
    const vtl_keyframe *k = keys[j];
    if (keyed && k->track == keyed->id) continue;
    const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, k->track);
    if (!t || t->target != target || t->mute) continue;
    if (!keyed || t->order < keyed->order ||
        (t->order == keyed->order && t->id < keyed->id))
      keyed = t;
  }
  return keyed ? keyed : any;
}

/* What keeps one boundary of the shot as it was; see the table at the
 * top. At S - 1 the stretch is (ka, S - 1], at E it is [E, kb). */
typedef struct {
  bool make;                   /* the curve there changes: a pin is needed */
  vtl_keyframe pin;            /* the pin (expr borrowed; id minted later) */
  chain ch;                    /* ch.n > 0: a curved segment redrawn from
                                  ka (left) or the pin (right) to the pin
                                  (left) or kb (right); ch.k malloc'd */
  const vtl_keyframe *ka, *kb; /* the old keys around the boundary */
  int64_t ka_interp;           /* left: ka's new interp, or -1 */
} boundary;

/* Decides the pin at S - 1 (the curve entering the shot). old: T's keys
 * before, neu: after the change (without pins); v0: the value when T has
 * no keys. */
static int pin_left(applier *a, boundary *b, const vtl_keyframe **old,
                    size_t nold, const vtl_keyframe **neu, size_t nneu,
                    double v0, char kind) {
  const int64_t L = a->start - 1;
  size_t up = keys_upto(old, nold, L);
  *b = (boundary){.ka_interp = -1};
  if (L < 0 || (up && old[up - 1]->frame == L)) return 0;
  const vtl_keyframe *ka = up ? old[up - 1] : NULL;
  const vtl_keyframe *kb = up < nold ? old[up] : NULL;
  if (!curves_differ(&a->e, old, nold, neu, nneu, v0, kind,
                     ka ? ka->frame + 1 : 0, L))
    return 0;
  b->make = true, b->ka = ka, b->kb = kb;
  b->pin = (vtl_keyframe){.frame = L, .interp = VTL_INTERP_HOLD, .expr = "",
                          .value = curve_at(&a->e, old, nold, v0, kind, L)};
  bool curved = ka && kind != 'E' && !ka->expr[0] && is_curved(ka->interp);
  if (curved && kb) {
    int rc = chain_make(&b->ch, ka, kb, key_value(&a->e, kb, kb->frame),
                        ka->frame, L);
    if (rc) return rc;
    if (ka->interp != VTL_INTERP_BEZIER) b->ka_interp = VTL_INTERP_BEZIER;
    b->pin.value = b->ch.k[b->ch.n - 1].value;
    b->pin.in_dt = b->ch.k[b->ch.n - 1].in_dt;
    b->pin.in_dv = b->ch.k[b->ch.n - 1].in_dv;
  } else if (curved && ka->interp == VTL_INTERP_BEZIER) {
    /* ka was the last key, its handle unused; towards the pin (the same
     * value) the handle would bow the curve: hold instead */
    b->ka_interp = VTL_INTERP_HOLD;
  }
  return 0;
}

/* Decides the pin at E (the curve leaving the shot); as pin_left. */
static int pin_right(applier *a, boundary *b, const vtl_keyframe **old,
                     size_t nold, const vtl_keyframe **neu, size_t nneu,
                     double v0, char kind) {
  const int64_t E = a->end;
  size_t up = keys_upto(old, nold, E);
  *b = (boundary){.ka_interp = -1};
  if (E >= a->e.tl->length || (up && old[up - 1]->frame == E)) return 0;
  const vtl_keyframe *ka = up ? old[up - 1] : NULL;
  const vtl_keyframe *kb = up < nold ? old[up] : NULL;
  if (!curves_differ(&a->e, old, nold, neu, nneu, v0, kind, E,
                     kb ? kb->frame - 1 : a->e.tl->length - 1))
    return 0;
  b->make = true, b->ka = ka, b->kb = kb;
  vtl_keyframe *pin = &b->pin;
  *pin = (vtl_keyframe){.frame = E, .interp = VTL_INTERP_HOLD, .expr = ""};
  if (!nold) {
    pin->value = v0;
  } else if (!ka) {
    pin->value = key_value(&a->e, kb, kb->frame);
  } else if (ka->expr[0]) {
    pin->value = ka->value;
    pin->expr = ka->expr;
    pin->interp = ka->interp;
  } else if (kind == 'E' || ka->interp == VTL_INTERP_HOLD || !kb) {
    pin->value = ka->value;
  } else if (!is_curved(ka->interp)) {
    pin->value = curve_at(&a->e, old, nold, v0, kind, E);
    pin->interp = ka->interp;
  } else {
    int rc = chain_make(&b->ch, ka, kb, key_value(&a->e, kb, kb->frame), E,
                        kb->frame);
    if (rc) return rc;
    pin->value = b->ch.k[0].value;
    pin->interp = VTL_INTERP_BEZIER;
    pin->out_dt = b->ch.k[0].out_dt, pin->out_dv = b->ch.k[0].out_dv;
  }
  return 0;
}

static int apply_track(applier *a, const ttrack *t, size_t ti,
                       vtl_error *err) {
  vtl_doc *doc = a->e.doc;
  const int p = t->target;
  const char kind = vtl_param_table[p].kind;
  const int64_t S = a->start, E = a->end;
  key_set ks = {0};
  const vtl_keyframe **old = NULL, **neu = NULL;
  size_t nold = 0, nneu = 0;
  boundary bd[2] = {{.ka_interp = -1}, {.ka_interp = -1}}; /* S - 1, E */
  int rc = make_keys(a, t, ti, &ks, err);
  if (rc) return rc;

  const vtl_track *T = pick_track(doc, p);
  if (T && T->lock) {
    rc = fail(err, VTL_EPERM, "tracks[%zu].target: track %llu (\"%s\") is "
              "locked", ti, (unsigned long long)T->id, T->name);
    goto done;
  }
  /* T's keys before (old) and after (neu) the change, sorted by frame */
  size_t nk;
  const void *const *keys = vtl_doc_list(doc, VTL_ENT_KEYFRAME, &nk);
  old = malloc((nk + 1) * sizeof *old);
  neu = malloc((nk + ks.n + 1) * sizeof *neu);
  if (!old || !neu) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; T && i < nk; i++) {
    const vtl_keyframe *k = keys[i];
    if (k->track != T->id) continue;
    old[nold++] = k;
    if (k->frame < S || k->frame >= E) neu[nneu++] = k;
  }
  for (size_t i = 0; i < ks.n; i++) neu[nneu++] = &ks.k[i];
  qsort(old, nold, sizeof *old, cmp_key_frame);
  qsort(neu, nneu, sizeof *neu, cmp_key_frame);
  /* undriven before: the timeline's or the default value, constant */
  double v0 = nold ? 0 : vtl_param_at(doc, (vtl_target)p, S);
  if (pin_left(a, &bd[0], old, nold, neu, nneu, v0, kind) ||
      pin_right(a, &bd[1], old, nold, neu, nneu, v0, kind)) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto done;
  }

  /* ---- ops: track, deletes, neighbour keys, creates ---- */
  vtl_op *op;
  vtl_id track_id = 0;
#define PUSH(expr)                                                           \
  do {                                                                       \
    if (!(op = vtl_op_list_push(&a->ops)) || (expr)) {                                   \
      rc = fail(err, VTL_ENOMEM, "out of memory");                           \
      goto done;                                                             \
    }                                                                        \
  } while (0)
#define SET_REAL(key, field, v)                                              \
  PUSH(vtl_op_set_real(op, VTL_ENT_KEYFRAME, (key)->id, field, v))
  if (T) {
    track_id = T->id;
  } else {
    if ((rc = mint(a, &track_id, err))) goto done;
    PUSH(vtl_op_create(op, VTL_ENT_TRACK, track_id) ||
         vtl_op_add_str(op, "name", vtl_target_names[p]) ||
         vtl_op_add_int(op, "target", p) ||
         vtl_op_add_int(op, "order", a->next_order));
    if (a->next_order < 1000000) a->next_order++;
  }
  for (size_t i = 0; i < nold; i++)
    if (old[i]->frame >= S && old[i]->frame < E)
      PUSH(vtl_op_delete(op, VTL_ENT_KEYFRAME, old[i]->id));
  const boundary *l = &bd[0], *r = &bd[1];
  if (l->make && l->ka_interp >= 0)
    PUSH(vtl_op_set_int(op, VTL_ENT_KEYFRAME, l->ka->id, "interp",
                        l->ka_interp));
  if (l->ch.n) {
    SET_REAL(l->ka, "out_dt", l->ch.k[0].out_dt);
    SET_REAL(l->ka, "out_dv", l->ch.k[0].out_dv);
  }
  if (r->ch.n) {
    SET_REAL(r->kb, "in_dt", r->ch.k[r->ch.n - 1].in_dt);
    SET_REAL(r->kb, "in_dv", r->ch.k[r->ch.n - 1].in_dv);
  }
  /* the keys, by frame: left chain, left pin, template, right pin, chain */
  for (size_t i = 1; i + 1 < l->ch.n && !rc; i++)
    rc = push_chain_key(a, track_id, &l->ch.k[i], err);
  if (!rc && l->make) rc = push_key(a, track_id, &bd[0].pin, err);
  for (size_t i = 0; i < ks.n && !rc; i++)
    rc = push_key(a, track_id, &ks.k[i], err);
  if (!rc && r->make) rc = push_key(a, track_id, &bd[1].pin, err);
  for (size_t i = 1; i + 1 < r->ch.n && !rc; i++)
    rc = push_chain_key(a, track_id, &r->ch.k[i], err);
#undef SET_REAL
#undef PUSH
done:
  free(bd[0].ch.k);
  free(bd[1].ch.k);
  free(old);
  free(neu);
  key_set_free(&ks);
  return rc;
}

/* The frames [start, end) of shot `id`: to the next later shot start or
 * the end of the film. */
static int shot_span(vtl_doc *doc, vtl_id id, int64_t *start, int64_t *end,
                     vtl_error *err) {
  const vtl_shot *shot = vtl_doc_get(doc, VTL_ENT_SHOT, id);
  if (!shot)
    return fail(err, VTL_ENOENT, "shot %llu: no such shot",
                (unsigned long long)id);
  int64_t length = vtl_doc_timeline(doc)->length;
  if (shot->start >= length)
    return fail(err, VTL_ERANGE, "shot %llu starts at frame %lld, after the "
                "film's last frame %lld", (unsigned long long)id,
                (long long)shot->start, (long long)(length - 1));
  size_t n;
  const void *const *shots = vtl_doc_list(doc, VTL_ENT_SHOT, &n);
  int64_t e = length;
  for (size_t i = 0; i < n; i++) {
    const vtl_shot *s = shots[i];
    if (s->start > shot->start && s->start < e) e = s->start;
  }
  *start = shot->start;
  *end = e;
  return 0;
}

int vtl_template_apply(vtl_doc *doc, const char *template_json, size_t len,
                       vtl_id shot, double intensity, vtl_id *next_id,
                       vtl_op **ops, size_t *nops, vtl_error *err) {
  if (err) *err = (vtl_error){.op_index = -1};
  if (!doc || !template_json || !next_id || !ops || !nops)
    return fail(err, VTL_EINVAL, "template: missing argument");
  if (!isfinite(intensity))
    return fail(err, VTL_ERANGE, "intensity: expected a finite number");
  tmpl t;
  int rc = tmpl_parse(template_json, len, &t, err);
  if (rc) return rc;
  applier a = {.e = {doc, vtl_doc_timeline(doc), NULL},
               .intensity = intensity, .next_id = *next_id};
  if (t.anim_mode >= 0 && t.anim_mode != a.e.tl->anim_mode) {
    rc = fail(err, VTL_EINVAL, "anim_mode: template \"%s\" moves a %s camera; "
              "the timeline's anim_mode is %s", t.name,
              vtl_anim_mode_names[t.anim_mode],
              vtl_anim_mode_names[a.e.tl->anim_mode]);
    goto done;
  }
  if ((rc = shot_span(doc, shot, &a.start, &a.end, err))) goto done;
  if (vtl__expr_ctx(doc, &a.e.x)) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto done;
  }
  size_t nt;
  const void *const *tracks = vtl_doc_list(doc, VTL_ENT_TRACK, &nt);
  for (size_t i = 0; i < nt; i++) {
    int64_t o = ((const vtl_track *)tracks[i])->order;
    if (o >= a.next_order) a.next_order = o < 1000000 ? o + 1 : o;
  }
  for (size_t i = 0; i < t.ntracks && !rc; i++)
    rc = apply_track(&a, &t.tracks[i], i, err);
done:
  tmpl_free(&t);
  if (rc) {
    vtl_ops_free(a.ops.ops, a.ops.n);
    return rc;
  }
  *next_id = a.next_id;
  *ops = a.ops.ops;
  *nops = a.ops.n;
  return 0;
}

/* ---- from keys ---------------------------------------------------------------------- */

/* A selected key with its track's target, for sorting by (target, track,
 * frame). */
typedef struct {
  int target;
  const vtl_keyframe *k;
} sel;

static int cmp_sel(const void *x, const void *y) {
  const sel *a = x, *b = y;
  if (a->target != b->target) return a->target < b->target ? -1 : 1;
  if (a->k->track != b->k->track) return a->k->track < b->k->track ? -1 : 1;
  return cmp_key_frame(&a->k, &b->k);
}

/* The shot holding frame f (eval.c's choice: of shots cut at the same
 * frame, the lowest id; the list is sorted by id), or NULL. */
static const vtl_shot *shot_at(vtl_doc *doc, int64_t f) {
  size_t n;
  const void *const *shots = vtl_doc_list(doc, VTL_ENT_SHOT, &n);
  const vtl_shot *best = NULL;
  for (size_t i = 0; i < n; i++) {
    const vtl_shot *s = shots[i];
    if (s->start <= f && (!best || s->start > best->start)) best = s;
  }
  return best;
}

static bool only_2d(int p) { return p == VTL_PARAM_ZOOM || p == VTL_PARAM_ANGLE; }
static bool only_3d(int p) {
  return p == VTL_PARAM_TZ || p == VTL_PARAM_RX || p == VTL_PARAM_RY ||
         p == VTL_PARAM_RZ || p == VTL_PARAM_FOV || p == VTL_PARAM_NEAR ||
         p == VTL_PARAM_FAR;
}

/* The template JSON of the selected keys k[0..n), sorted by (target,
 * track, frame), relative to the shot [S, E). */
static int build_json(vtl_doc *doc, const char *name, const vtl_shot *shot,
                      int64_t S, int64_t E, const sel *k, size_t n,
                      json_t **out) {
  double span = (double)(E - S - 1);
  bool has2 = false, has3 = false;
  char desc[VTL_MAX_NAME + 96];
  json_t *root = json_object(), *tracks = json_array(), *keys = NULL;
  if (!root || !tracks) goto nomem;
  for (size_t i = 0; i < n; i++) {
    has2 |= only_2d(k[i].target);
    has3 |= only_3d(k[i].target);
  }
  if (shot->name[0])
    snprintf(desc, sizeof desc, "Saved from shot \"%s\" (frames %lld-%lld).",
             shot->name, (long long)S, (long long)(E - 1));
  else
    snprintf(desc, sizeof desc, "Saved from shot %llu (frames %lld-%lld).",
             (unsigned long long)shot->id, (long long)S, (long long)(E - 1));
  if (json_object_set_new(root, "format", json_string(FORMAT_NAME)) ||
      json_object_set_new(root, "version", json_integer(FORMAT_VERSION)) ||
      json_object_set_new(root, "name", json_string(name)) ||
      json_object_set_new(root, "description", json_string(desc)) ||
      json_object_set_new(root, "anim_mode",
                          json_string(has2 && !has3 ? "2d"
                                      : has3 && !has2 ? "3d" : "any")) ||
      json_object_set(root, "tracks", tracks))
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    const vtl_keyframe *kf = k[i].k;
    if (i == 0 || k[i].target != k[i - 1].target) {
      json_t *tr = json_object();
      if (!tr || json_array_append_new(tracks, tr) ||
          json_object_set_new(tr, "target",
                              json_string(vtl_target_names[k[i].target])) ||
          !(keys = json_array()) || json_object_set_new(tr, "keys", keys))
        goto nomem;
    }
    json_t *o = json_object();
    double at = span > 0 ? (double)(kf->frame - S) / span : 0;
    if (!o || json_array_append_new(keys, o) ||
        json_object_set_new(o, "at", json_real(at)) ||
        json_object_set_new(o, "value", json_real(kf->value)) ||
        json_object_set_new(o, "interp",
                            json_string(vtl_interp_names[kf->interp])))
      goto nomem;
    if (kf->expr[0] && json_object_set_new(o, "expr", json_string(kf->expr)))
      goto nomem;
    /* handle times as shot fractions; beyond the shot they change nothing
     * inside it (curve.c clamps them into their segment) */
    if ((kf->out_dt || kf->out_dv) &&
        (json_object_set_new(o, "out_dt", json_real(span > 0
                                 ? clamp01(kf->out_dt / span) : 0)) ||
         json_object_set_new(o, "out_dv", json_real(kf->out_dv))))
      goto nomem;
    if ((kf->in_dt || kf->in_dv) &&
        (json_object_set_new(o, "in_dt", json_real(span > 0
                                 ? -clamp01(-kf->in_dt / span) : 0)) ||
         json_object_set_new(o, "in_dv", json_real(kf->in_dv))))
      goto nomem;
  }
  json_decref(tracks);
  *out = root;
  return 0;
nomem:
  json_decref(tracks);
  json_decref(root);
  return VTL_ENOMEM;
}

int vtl_template_from_keys(vtl_doc *doc, const char *name, const vtl_id *keys,
                           size_t nkeys, char **out, vtl_error *err) {
  if (err) *err = (vtl_error){.op_index = -1};
  if (!doc || !name || !out || (nkeys && !keys))
    return fail(err, VTL_EINVAL, "template: missing argument");
  if (!name[0] || strlen(name) > VTL_MAX_NAME)
    return fail(err, VTL_EINVAL, "name: expected 1..%d bytes", VTL_MAX_NAME);
  if (nkeys == 0) return fail(err, VTL_EINVAL, "template: no keyframes given");
  sel *k = malloc(nkeys * sizeof *k);
  if (!k) return fail(err, VTL_ENOMEM, "out of memory");
  size_t n = 0;
  int rc = 0;
  const vtl_shot *shot = NULL;
  int64_t S = 0, E = 0;
  for (size_t i = 0; i < nkeys && !rc; i++) {
    const vtl_keyframe *kf = vtl_doc_get(doc, VTL_ENT_KEYFRAME, keys[i]);
    if (!kf) {
      rc = fail(err, VTL_ENOENT, "keyframe %llu: no such keyframe",
                (unsigned long long)keys[i]);
      break;
    }
    const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, kf->track);
    if (!t || t->target >= VTL_PARAM__COUNT) {
      rc = fail(err, VTL_EINVAL, "keyframe %llu: on a prompt track",
                (unsigned long long)kf->id);
      break;
    }
    if (!shot) {
      if (!(shot = shot_at(doc, kf->frame))) {
        rc = fail(err, VTL_EINVAL, "keyframe %llu at frame %lld is in no shot",
                  (unsigned long long)kf->id, (long long)kf->frame);
        break;
      }
      if ((rc = shot_span(doc, shot->id, &S, &E, err))) break;
    }
    if (kf->frame < S || kf->frame >= E) {
      rc = fail(err, VTL_EINVAL, "keyframe %llu at frame %lld is outside shot "
                "%llu (frames %lld..%lld): keys must come from one shot",
                (unsigned long long)kf->id, (long long)kf->frame,
                (unsigned long long)shot->id, (long long)S, (long long)(E - 1));
      break;
    }
    bool dup = false;
    for (size_t j = 0; j < n && !dup; j++) dup = k[j].k == kf;
    if (!dup) k[n++] = (sel){(int)t->target, kf};
  }
  if (!rc) {
    qsort(k, n, sizeof *k, cmp_sel);
    for (size_t i = 1; i < n && !rc; i++)
      if (k[i].target == k[i - 1].target && k[i].k->track != k[i - 1].k->track)
        rc = fail(err, VTL_EINVAL, "keyframes %llu and %llu are on two %s "
                  "tracks (%llu, %llu); a template has one per parameter",
                  (unsigned long long)k[i - 1].k->id,
                  (unsigned long long)k[i].k->id,
                  vtl_target_names[k[i].target],
                  (unsigned long long)k[i - 1].k->track,
                  (unsigned long long)k[i].k->track);
  }
  json_t *root = NULL;
  if (!rc && build_json(doc, name, shot, S, E, k, n, &root))
    rc = fail(err, VTL_EINVAL, "name: not valid UTF-8 (or out of memory)");
  if (!rc) {
    *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(15));
    if (!*out) rc = fail(err, VTL_ENOMEM, "out of memory");
  }
  json_decref(root);
  free(k);
  return rc;
}
