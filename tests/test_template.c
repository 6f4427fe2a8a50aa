/* test_template.c — shot templates (timeline/template.c, docs/templates.md).
 *
 * Every shipped templates/<name>.json is applied to the middle shot of a
 * three-shot film whose tracks cross the shot's boundaries with every
 * segment shape (ease, bezier, linear, hold, expression, none at all).
 * Inside the shot the values must follow a reference evaluation of the
 * template written here from the format's definition (values scaled
 * around the neutral); outside it every parameter must be unchanged at
 * every frame. Run from the repository root (ctest does).
 */
#include <dirent.h>
#include <jansson.h>

#include "expr.h"
#include "task.h"
#include "vtl_import.h"

#define LENGTH 120
#define SHOT_A 2 /* frames [0, 40) */
#define SHOT_B 3 /* frames [40, 80) */
#define SHOT_C 4 /* frames [80, 120) */

static const char *const shipped[] = {
  "static", "dolly_in", "dolly_out", "pan_left", "pan_right", "tilt_up",
  "tilt_down", "roll", "orbit", "crane_up", "push_in_zoom", "handheld",
  "slow_zoom_2d", "pov_walk", NULL};

/* ---- helpers ------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *s = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) {
      *len = fread(s, 1, (size_t)n, f);
      s[*len] = '\0';
    }
  }
  fclose(f);
  return s;
}

static char *template_file(const char *name, size_t *len) {
  char path[128];
  snprintf(path, sizeof path, "templates/%s.json", name);
  return read_file(path, len);
}

/* A batch built with the op constructors. */
typedef struct {
  vtl_op ops[64];
  size_t n;
} batch;

static vtl_op *op(batch *b) { return &b->ops[b->n++]; }

static void key(batch *b, vtl_id id, vtl_id track, int64_t frame, double value,
                int interp) {
  vtl_op *o = op(b);
  vtl_op_create(o, VTL_ENT_KEYFRAME, id);
  vtl_op_add_int(o, "track", (int64_t)track);
  vtl_op_add_int(o, "frame", frame);
  vtl_op_add_real(o, "value", value);
  vtl_op_add_int(o, "interp", interp);
}

static void track(batch *b, vtl_id id, int target, int64_t order, bool mute) {
  vtl_op *o = op(b);
  vtl_op_create(o, VTL_ENT_TRACK, id);
  vtl_op_add_int(o, "target", target);
  vtl_op_add_int(o, "order", order);
  vtl_op_add_bool(o, "mute", mute);
}

static void shot(batch *b, vtl_id id, int64_t start) {
  vtl_op *o = op(b);
  vtl_op_create(o, VTL_ENT_SHOT, id);
  vtl_op_add_int(o, "start", start);
}

static void set_last(batch *b, const char *field, double v) {
  vtl_op_add_real(&b->ops[b->n - 1], field, v);
}

static void timeline(batch *b, int anim_mode) {
  vtl_op_set_int(op(b), VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "length", LENGTH);
  vtl_op_set_real(op(b), VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "fps", 12);
  vtl_op_set_int(op(b), VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "anim_mode",
                 anim_mode);
  shot(b, SHOT_A, 0);
  shot(b, SHOT_B, 40);
  shot(b, SHOT_C, 80);
}

/* Three shots and tracks whose segments cross frames 39/40 and 79/80. */
static vtl_doc *make_doc(int anim_mode) {
  batch b = {.n = 0};
  timeline(&b, anim_mode);
  track(&b, 10, VTL_PARAM_TZ, 0, false);
  key(&b, 100, 10, 0, 1, VTL_INTERP_EASE_IN_OUT);     /* ease into the shot */
  key(&b, 101, 10, 60, 3, VTL_INTERP_BEZIER);         /* bezier out of it */
  set_last(&b, "out_dt", 10);
  set_last(&b, "out_dv", 2);
  key(&b, 102, 10, 100, -1, VTL_INTERP_LINEAR);
  set_last(&b, "in_dt", -15);
  set_last(&b, "in_dv", 1.5);
  track(&b, 11, VTL_PARAM_RY, 0, false);               /* linear across */
  key(&b, 110, 11, 10, 0.2, VTL_INTERP_LINEAR);
  key(&b, 111, 11, 110, -0.4, VTL_INTERP_LINEAR);
  track(&b, 12, VTL_PARAM_ZOOM, 0, false);             /* expression across */
  key(&b, 120, 12, 20, 1.0, VTL_INTERP_LINEAR);
  vtl_op_add_str(&b.ops[b.n - 1], "expr", "1+0.01*sin(t/5)");
  key(&b, 121, 12, 95, 1.01, VTL_INTERP_LINEAR);
  track(&b, 13, VTL_PARAM_ANGLE, 0, false);            /* hold across */
  key(&b, 130, 13, 5, 0.3, VTL_INTERP_HOLD);
  key(&b, 131, 13, 90, -0.2, VTL_INTERP_HOLD);
  track(&b, 14, VTL_PARAM_TX, 0, false);               /* one ease over all */
  key(&b, 140, 14, 30, -1, VTL_INTERP_EASE_OUT);
  key(&b, 141, 14, 90, 2, VTL_INTERP_LINEAR);
  track(&b, 15, VTL_PARAM_RX, 5, false);               /* keyless, unmuted */
  track(&b, 16, VTL_PARAM_TY, 0, true);                /* muted, keyed */
  key(&b, 160, 16, 0, 5, VTL_INTERP_LINEAR);
  key(&b, 161, 16, 119, -5, VTL_INTERP_LINEAR);
  track(&b, 17, VTL_PARAM_FOV, 0, false);              /* never touched */
  key(&b, 170, 17, 50, 60, VTL_INTERP_LINEAR);
  vtl_doc *doc;
  vtl_error err;
  if (vtl_doc_new(&doc)) return NULL;
  int rc = vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &err);
  for (size_t i = 0; i < b.n; i++) vtl_op_free(&b.ops[i]);
  if (rc) {
    fprintf(stderr, "make_doc: %s\n", err.message);
    vtl_doc_free(doc);
    return NULL;
  }
  return doc;
}

static vtl_params *snapshot(vtl_doc *doc) {
  vtl_params *p = malloc(LENGTH * sizeof *p);
  for (int64_t f = 0; p && f < LENGTH; f++) vtl_params_at(doc, f, &p[f]);
  return p;
}

static bool near(double a, double b) {
  return fabs(a - b) <= 1e-9 * fmax(1, fabs(a));
}

/* Applies a template, then its ops; returns the vtl error code. */
static int apply(vtl_doc *doc, const char *json, vtl_id shot_id, double I,
                 vtl_error *err) {
  static vtl_id next_id = 1000;
  vtl_op *ops;
  size_t n;
  int rc = vtl_template_apply(doc, json, strlen(json), shot_id, I, &next_id,
                              &ops, &n, err);
  if (rc) return rc;
  rc = vtl_doc_apply(doc, ops, n, NULL, NULL, err);
  if (rc) fprintf(stderr, "apply: op %d: %s\n", err->op_index, err->message);
  vtl_ops_free(ops, n);
  return rc;
}

/* ---- the reference: the template's curve, straight from docs/templates.md ---- */

typedef struct {
  int target;
  double neutral;
  vtl_keyframe k[16]; /* unscaled, on frames, deduplicated */
  int n;
} ref_track;

typedef struct {
  int anim_mode; /* -1: any */
  ref_track t[VTL_PARAM__COUNT];
  int n;
} ref;

/* Reads the template and places its keys on the shot [S, E). */
static int ref_load(const char *json, int64_t S, int64_t E, ref *r) {
  json_t *root = json_loads(json, 0, NULL);
  ASSERT_NOT_NULL(root);
  const char *mode = json_string_value(json_object_get(root, "anim_mode"));
  r->anim_mode = !mode || !strcmp(mode, "any") ? -1 : !strcmp(mode, "3d");
  json_t *tracks = json_object_get(root, "tracks");
  r->n = (int)json_array_size(tracks);
  for (int i = 0; i < r->n; i++) {
    json_t *t = json_array_get(tracks, i);
    ref_track *rt = &r->t[i];
    rt->target = vtl_enum_lookup(vtl_target_names,
                                 json_string_value(json_object_get(t, "target")));
    ASSERT_GE(rt->target, 0);
    json_t *neutral = json_object_get(t, "neutral");
    rt->neutral = neutral ? json_number_value(neutral)
                          : vtl_param_table[rt->target].def;
    json_t *keys = json_object_get(t, "keys");
    rt->n = 0;
    for (size_t j = 0; j < json_array_size(keys); j++) {
      json_t *k = json_array_get(keys, j);
      const char *interp = json_string_value(json_object_get(k, "interp"));
      const char *expr = json_string_value(json_object_get(k, "expr"));
      json_t *value = json_object_get(k, "value");
      vtl_keyframe kf = {
        .frame = S + llround(json_number_value(json_object_get(k, "at")) *
                             (double)(E - S - 1)),
        .value = value ? json_number_value(value) : rt->neutral,
        .interp = interp ? vtl_enum_lookup(vtl_interp_names, interp)
                         : VTL_INTERP_LINEAR,
        .out_dt = json_number_value(json_object_get(k, "out_dt")) * (double)(E - S - 1),
        .out_dv = json_number_value(json_object_get(k, "out_dv")),
        .in_dt = json_number_value(json_object_get(k, "in_dt")) * (double)(E - S - 1),
        .in_dv = json_number_value(json_object_get(k, "in_dv")),
        .expr = strdup(expr ? expr : ""),
      };
      /* insert by frame; a later key on the same frame replaces */
      int at = 0;
      while (at < rt->n && rt->k[at].frame < kf.frame) at++;
      if (at < rt->n && rt->k[at].frame == kf.frame) {
        free(rt->k[at].expr);
      } else {
        memmove(&rt->k[at + 1], &rt->k[at], (rt->n - at) * sizeof kf);
        rt->n++;
      }
      rt->k[at] = kf;
    }
  }
  json_decref(root);
  return 0;
}

static void ref_free(ref *r) {
  for (int i = 0; i < r->n; i++)
    for (int j = 0; j < r->t[i].n; j++) free(r->t[i].k[j].expr);
}

static double ref_key(vtl_expr_ctx *x, const vtl_keyframe *k, int64_t t) {
  if (!k->expr[0]) return k->value;
  vtl_expr_vars v = {(double)t, t / 12.0, LENGTH - 1, 12};
  double out;
  return vtl_expr_eval(x, k->expr, &v, &out, NULL, 0) ? k->value : out;
}

/* The template's value at f inside the shot: hold before the first and
 * after the last key, segments between, then scaled around the neutral and
 * clamped like every parameter. */
static double ref_at(vtl_expr_ctx *x, const ref_track *t, double I, int64_t f) {
  int j = 0;
  while (j < t->n && t->k[j].frame <= f) j++;
  double raw;
  if (j == 0) {
    raw = ref_key(x, &t->k[0], t->k[0].frame);
  } else {
    const vtl_keyframe *a = &t->k[j - 1];
    if (a->expr[0]) raw = ref_key(x, a, f);
    else if (j == t->n) raw = a->value;
    else raw = vtl_curve_segment(a, a->value, &t->k[j],
                                 ref_key(x, &t->k[j], t->k[j].frame), (double)f);
  }
  double v = t->neutral + (raw - t->neutral) * I;
  const vtl_param_desc *pd = &vtl_param_table[t->target];
  return v < pd->min ? pd->min : v > pd->max ? pd->max : v;
}

/* Every parameter is unchanged outside [S, E) and everywhere for targets
 * the template does not have; inside, template targets follow the
 * reference at intensity I. */
static int check_applied(const vtl_params *before, const vtl_params *after,
                         const ref *r, int64_t S, int64_t E, double I,
                         const char *name) {
  vtl_expr_ctx *x;
  ASSERT_OK(vtl_expr_ctx_new(&x));
  for (int64_t f = 0; f < LENGTH; f++) {
    ASSERT_EQ(after[f].nerrors, 0);
    for (int p = 0; p < VTL_PARAM__COUNT; p++) {
      const ref_track *t = NULL;
      for (int i = 0; i < r->n; i++)
        if (r->t[i].target == p) t = &r->t[i];
      double want = f >= S && f < E && t ? ref_at(x, t, I, f)
                                         : before[f].values[p];
      if (!near(after[f].values[p], want)) {
        fprintf(stderr, "%s: frame %lld %s: %.12g, want %.12g\n", name,
                (long long)f, vtl_param_table[p].name, after[f].values[p],
                want);
        vtl_expr_ctx_free(x);
        return 1;
      }
    }
  }
  vtl_expr_ctx_free(x);
  return 0;
}

/* ---- tests -------------------------------------------------------------------------- */

/* Each shipped template on the middle shot at intensity 1.5, then again
 * (replaces: same keys, same values), then at 0 (no motion). */
TEST_IMPL(template_shipped) {
  for (int i = 0; shipped[i]; i++) {
    size_t len;
    char *json = template_file(shipped[i], &len);
    if (!json) TEST_FAIL_("cannot read templates/%s.json", shipped[i]);
    ref r;
    ASSERT_OK(ref_load(json, 40, 80, &r));
    ASSERT_STR_EQ(shipped[i], shipped[i]);
    for (int mode = 0; mode < 2; mode++) {
      if (r.anim_mode >= 0 && r.anim_mode != mode) continue;
      vtl_doc *doc = make_doc(mode);
      ASSERT_NOT_NULL(doc);
      vtl_params *before = snapshot(doc);
      vtl_error err;
      if (apply(doc, json, SHOT_B, 1.5, &err))
        TEST_FAIL_("%s: %s", shipped[i], err.message);
      vtl_params *after = snapshot(doc);
      ASSERT_OK(check_applied(before, after, &r, 40, 80, 1.5, shipped[i]));
      /* again: the same number of keys and the same values */
      size_t nkeys = vtl_doc_count(doc, VTL_ENT_KEYFRAME);
      size_t ntracks = vtl_doc_count(doc, VTL_ENT_TRACK);
      ASSERT_OK(apply(doc, json, SHOT_B, 1.5, &err));
      ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_KEYFRAME), nkeys);
      ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), ntracks);
      vtl_params *again = snapshot(doc);
      ASSERT_OK(check_applied(before, again, &r, 40, 80, 1.5, shipped[i]));
      free(again);
      free(after);
      vtl_doc_free(doc);
      /* intensity 0: every template target sits at its neutral value */
      doc = make_doc(mode);
      ASSERT_OK(apply(doc, json, SHOT_B, 0, &err));
      after = snapshot(doc);
      ASSERT_OK(check_applied(before, after, &r, 40, 80, 0, shipped[i]));
      for (int t = 0; t < r.n; t++)
        for (int64_t f = 40; f < 80; f++)
          ASSERT_NEAR(after[f].values[r.t[t].target], r.t[t].neutral, 1e-12);
      free(after);
      free(before);
      vtl_doc_free(doc);
    }
    ref_free(&r);
    free(json);
  }
  return 0;
}

/* Every file in templates/ is tested above, and is named after its name. */
TEST_IMPL(template_files) {
  DIR *d = opendir("templates");
  ASSERT_NOT_NULL(d);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(l - 5), e->d_name);
    int i = 0;
    while (shipped[i] && strcmp(shipped[i], name)) i++;
    if (!shipped[i]) TEST_FAIL_("templates/%s is not in shipped[]", e->d_name);
    size_t len;
    char *json = template_file(name, &len);
    json_t *root = json_loads(json, 0, NULL);
    ASSERT_NOT_NULL(root);
    ASSERT_STR_EQ(json_string_value(json_object_get(root, "name")), name);
    ASSERT_NOT_NULL(json_string_value(json_object_get(root, "description")));
    json_decref(root);
    free(json);
    files++;
  }
  closedir(d);
  int n = 0;
  while (shipped[n]) n++;
  ASSERT_EQ(files, n);
  return 0;
}

/* The first shot (no frame before it) and the last (none after it). */
TEST_IMPL(template_edge_shots) {
  static const vtl_id shots[] = {SHOT_A, SHOT_C};
  static const int64_t span[][2] = {{0, 40}, {80, 120}};
  for (int s = 0; s < 2; s++)
    for (int i = 0; shipped[i]; i++) {
      size_t len;
      char *json = template_file(shipped[i], &len);
      ASSERT_NOT_NULL(json);
      ref r;
      ASSERT_OK(ref_load(json, span[s][0], span[s][1], &r));
      vtl_doc *doc = make_doc(r.anim_mode == 0 ? 0 : 1);
      vtl_params *before = snapshot(doc);
      vtl_error err;
      ASSERT_OK(apply(doc, json, shots[s], -0.75, &err));
      vtl_params *after = snapshot(doc);
      ASSERT_OK(check_applied(before, after, &r, span[s][0], span[s][1], -0.75,
                              shipped[i]));
      free(before);
      free(after);
      vtl_doc_free(doc);
      ref_free(&r);
      free(json);
    }
  return 0;
}

/* Bezier handles, a neutral, colliding keys on a two-frame shot. */
TEST_IMPL(template_custom) {
  const char *json =
    "{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"custom\","
    " \"tracks\": ["
    "  {\"target\": \"fov\", \"neutral\": 40, \"keys\": ["
    "    {\"at\": 0, \"value\": 40, \"interp\": \"bezier\", \"out_dt\": 0.3,"
    "     \"out_dv\": 25},"
    "    {\"at\": 0.6, \"value\": 70, \"interp\": \"ease_out\", \"in_dt\": -0.2,"
    "     \"in_dv\": 5},"
    "    {\"at\": 0.9, \"value\": 55}]},"
    "  {\"target\": \"strength\", \"keys\": ["
    "    {\"at\": 0.2, \"value\": 0.5, \"interp\": \"hold\"},"
    "    {\"at\": 0.7, \"value\": 0.6}]}]}";
  ref r;
  ASSERT_OK(ref_load(json, 40, 80, &r));
  vtl_doc *doc = make_doc(1);
  vtl_params *before = snapshot(doc);
  vtl_error err;
  ASSERT_OK(apply(doc, json, SHOT_B, 0.5, &err));
  vtl_params *after = snapshot(doc);
  ASSERT_OK(check_applied(before, after, &r, 40, 80, 0.5, "custom"));
  /* strength: before its first key the shot holds it */
  ASSERT_NEAR(after[40].values[VTL_PARAM_STRENGTH], 0.35 + (0.5 - 0.35) * 0.5,
              1e-12);
  free(after);
  free(before);
  vtl_doc_free(doc);
  ref_free(&r);

  /* a shot of two frames: at 0 and 0.4 land on its first frame, 0.6 and 1
   * on its second; the later key wins */
  const char *tiny =
    "{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"tiny\","
    " \"tracks\": [{\"target\": \"translation_x\", \"keys\": ["
    "  {\"at\": 0, \"value\": 1}, {\"at\": 0.4, \"value\": 2},"
    "  {\"at\": 1, \"value\": 4}, {\"at\": 0.6, \"value\": 3}]}]}";
  batch b = {.n = 0};
  timeline(&b, 1);
  shot(&b, 5, 60);
  shot(&b, 6, 62);
  doc = NULL;
  ASSERT_OK(vtl_doc_new(&doc));
  ASSERT_OK(vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &err));
  for (size_t i = 0; i < b.n; i++) vtl_op_free(&b.ops[i]);
  ASSERT_OK(apply(doc, tiny, 5, 1, &err));
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, 60), 2, 1e-12);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, 61), 3, 1e-12);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, 59), 0, 1e-12);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, 62), 0, 1e-12);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), 1); /* created once */
  vtl_doc_free(doc);
  return 0;
}

/* Bezier handles that reach past each other (curve.c clamps them into the
 * segment) and a last bezier key before the shot: the neighbours are
 * still unchanged at every frame. */
TEST_IMPL(template_crossing_handles) {
  batch b = {.n = 0};
  timeline(&b, 1);
  track(&b, 10, VTL_PARAM_TZ, 0, false);
  key(&b, 100, 10, 30, 1, VTL_INTERP_BEZIER);  /* into the shot */
  set_last(&b, "out_dt", 9.8);
  set_last(&b, "out_dv", 3);
  key(&b, 101, 10, 41, -1, VTL_INTERP_LINEAR);
  set_last(&b, "in_dt", -10.5);
  set_last(&b, "in_dv", -2);
  key(&b, 102, 10, 75, 2, VTL_INTERP_BEZIER);  /* out of the shot */
  set_last(&b, "out_dt", 9.5);
  set_last(&b, "out_dv", -4);
  key(&b, 103, 10, 85, 0, VTL_INTERP_LINEAR);
  set_last(&b, "in_dt", -9.5);
  set_last(&b, "in_dv", 3);
  track(&b, 11, VTL_PARAM_RY, 0, false);        /* a last bezier key */
  key(&b, 110, 11, 20, 0.7, VTL_INTERP_BEZIER);
  set_last(&b, "out_dt", 5);
  set_last(&b, "out_dv", 3);
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_doc_new(&doc));
  ASSERT_OK(vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &err));
  for (size_t i = 0; i < b.n; i++) vtl_op_free(&b.ops[i]);
  vtl_params *before = snapshot(doc);
  static const char *const names[] = {"dolly_in", "pan_right"};
  for (int i = 0; i < 2; i++) {
    size_t len;
    char *json = template_file(names[i], &len);
    ASSERT_NOT_NULL(json);
    ref r;
    ASSERT_OK(ref_load(json, 40, 80, &r));
    vtl_params *prev = snapshot(doc);
    ASSERT_OK(apply(doc, json, SHOT_B, 1, &err));
    vtl_params *after = snapshot(doc);
    ASSERT_OK(check_applied(prev, after, &r, 40, 80, 1, names[i]));
    for (int64_t f = 0; f < LENGTH; f++)
      if (f < 40 || f >= 80)
        for (int p = 0; p < VTL_PARAM__COUNT; p++)
          ASSERT_NEAR(after[f].values[p], before[f].values[p], 1e-9);
    free(prev);
    free(after);
    ref_free(&r);
    free(json);
  }
  /* the crossing handles needed more than one piece on each side */
  size_t n, outside = 0;
  const void *const *keys = vtl_doc_list(doc, VTL_ENT_KEYFRAME, &n);
  for (size_t i = 0; i < n; i++) {
    const vtl_keyframe *k = keys[i];
    if (k->track == 10 && (k->frame < 40 || k->frame >= 80)) outside++;
  }
  ASSERT_GT(outside, 2 + 2); /* keys 100, 103 and two pins, and more */
  ASSERT_EQ(((const vtl_keyframe *)vtl_doc_get(doc, VTL_ENT_KEYFRAME, 110))->interp,
            VTL_INTERP_HOLD);
  free(before);
  vtl_doc_free(doc);
  return 0;
}

/* Expressions are wrapped as (<expr>)*<intensity>, around a neutral. */
TEST_IMPL(template_expr_scaling) {
  const char *json =
    "{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"e\","
    " \"tracks\": [{\"target\": \"translation_y\", \"keys\": ["
    "   {\"at\": 0, \"expr\": \"sin(t)\"}]},"
    "  {\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"expr\": \"1+t/1000\"}]}]}";
  vtl_doc *doc = make_doc(1);
  vtl_id next = 5000;
  vtl_op *ops;
  size_t n;
  vtl_error err;
  ASSERT_OK(vtl_template_apply(doc, json, strlen(json), SHOT_B, -0.5, &next,
                               &ops, &n, &err));
  int seen = 0;
  for (size_t i = 0; i < n; i++) {
    if (ops[i].type != VTL_OP_CREATE || ops[i].kind != VTL_ENT_KEYFRAME) continue;
    for (int f = 0; f < ops[i].nfields; f++) {
      if (strcmp(vtl_entities[VTL_ENT_KEYFRAME].fields[ops[i].fields[f].field].name,
                 "expr"))
        continue;
      const char *e = ops[i].fields[f].value.u.s;
      if (strstr(e, "sin(t)")) {
        ASSERT_STR_EQ(e, "(sin(t))*(-0.5)");
        seen++;
      }
      if (strstr(e, "t/1000")) {
        ASSERT_STR_EQ(e, "1+((1+t/1000)-1)*(-0.5)");
        seen++;
      }
    }
  }
  ASSERT_EQ(seen, 2);
  ASSERT_GE(next, 5000 + 3); /* one new track, keys minted from next */
  ASSERT_OK(vtl_doc_apply(doc, ops, n, NULL, NULL, &err));
  vtl_ops_free(ops, n);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TY, 50), -0.5 * sin(50), 1e-12);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_ZOOM, 50), 1 - 0.5 * 0.05, 1e-12);
  vtl_doc_free(doc);
  return 0;
}

/* Bad templates fail with the JSON path, and produce no ops. */
TEST_IMPL(template_errors) {
#define HEAD "{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"x\", "
  static const struct {
    const char *json;
    int code;
    const char *msg; /* the message starts with this */
  } cases[] = {
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1}]},"
          "{\"target\": \"angle\", \"keys\": [{\"at\": 1.5, \"value\": 1}]}]}",
     VTL_ERANGE, "tracks[1].keys[0].at: expected 0..1"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1,"
          " \"wobble\": 2}]}]}",
     VTL_EINVAL, "tracks[0].keys[0].wobble: unknown key"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1,"
          " \"interp\": \"cubic\"}]}]}",
     VTL_ERANGE, "tracks[0].keys[0].interp: expected one of hold, linear"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0}]}]}",
     VTL_EINVAL, "tracks[0].keys[0].value: required"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"value\": 1}]}]}",
     VTL_EINVAL, "tracks[0].keys[0].at: required"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": \"0\", \"value\": 1}]}]}",
     VTL_ETYPE, "tracks[0].keys[0].at: expected a number"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0,"
          " \"expr\": \"sin(t\"}]}]}",
     VTL_EEXPR, "tracks[0].keys[0].expr: "},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1,"
          " \"out_dt\": 2}]}]}",
     VTL_ERANGE, "tracks[0].keys[0].out_dt: expected 0..1"},
    {HEAD "\"tracks\": [{\"target\": \"prompt\", \"keys\": [{\"at\": 0, \"value\": 1}]}]}",
     VTL_EINVAL, "tracks[0].target: prompt tracks"},
    {HEAD "\"tracks\": [{\"target\": \"dolly\", \"keys\": [{\"at\": 0, \"value\": 1}]}]}",
     VTL_EINVAL, "tracks[0].target: unknown parameter \"dolly\""},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1}]},"
          "{\"target\": \"zoom\", \"keys\": [{\"at\": 0, \"value\": 1}]}]}",
     VTL_EINVAL, "tracks[1].target: zoom is also tracks[0]'s"},
    {HEAD "\"tracks\": [{\"target\": \"zoom\", \"keys\": []}]}",
     VTL_EINVAL, "tracks[0].keys: expected a non-empty array"},
    {HEAD "\"tracks\": []}", VTL_EINVAL, "tracks: expected a non-empty array"},
    {HEAD "\"anim_mode\": \"4d\", \"tracks\": []}", VTL_ERANGE,
     "anim_mode: expected one of 2d, 3d, any"},
    {HEAD "\"speed\": 2, \"tracks\": []}", VTL_EINVAL, "speed: unknown key"},
    {"{\"format\": \"vtl-timeline\", \"version\": 1}", VTL_EPARSE,
     "format: expected \"vtl-template\""},
    {"{\"format\": \"vtl-template\", \"version\": 2}", VTL_EUNSUPPORTED,
     "version: only 1 is known"},
    {"{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"\"}", VTL_EINVAL,
     "name: expected a non-empty string"},
    {"{\"format\": \"vtl-template\",", VTL_EPARSE, "line 1, column "},
    {"[1, 2]", VTL_EPARSE, "top level: expected an object"},
    {HEAD "\"anim_mode\": \"2d\", \"tracks\": [{\"target\": \"zoom\","
          " \"keys\": [{\"at\": 0, \"value\": 1}]}]}",
     VTL_EINVAL, "anim_mode: template \"x\" moves a 2d camera"},
  };
#undef HEAD
  vtl_doc *doc = make_doc(1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vtl_id next = 1000;
    vtl_op *ops = NULL;
    size_t n = 0;
    vtl_error err;
    int rc = vtl_template_apply(doc, cases[i].json, strlen(cases[i].json),
                                SHOT_B, 1, &next, &ops, &n, &err);
    if (rc != cases[i].code ||
        strncmp(err.message, cases[i].msg, strlen(cases[i].msg)))
      TEST_FAIL_("case %zu: %s (%d), want \"%s\"", i, err.message, rc,
                 cases[i].msg);
    ASSERT_EQ(err.code, rc);
    ASSERT_NULL(ops);
    ASSERT_EQ(next, 1000);
  }
  /* the shot, the intensity, a locked track */
  size_t len;
  char *json = template_file("dolly_in", &len);
  ASSERT_NOT_NULL(json);
  vtl_id next = 1000;
  vtl_op *ops = NULL;
  size_t n;
  vtl_error err;
  ASSERT_EQ(vtl_template_apply(doc, json, len, 99, 1, &next, &ops, &n, &err),
            VTL_ENOENT);
  ASSERT_STR_EQ(err.message, "shot 99: no such shot");
  ASSERT_EQ(vtl_template_apply(doc, json, len, SHOT_B, NAN, &next, &ops, &n,
                               &err), VTL_ERANGE);
  vtl_op lock;
  vtl_op_set_bool(&lock, VTL_ENT_TRACK, 10, "lock", true);
  ASSERT_OK(vtl_doc_apply(doc, &lock, 1, NULL, NULL, &err));
  vtl_op_free(&lock);
  ASSERT_EQ(vtl_template_apply(doc, json, len, SHOT_B, 1, &next, &ops, &n,
                               &err), VTL_EPERM);
  ASSERT_STR_EQ(err.message, "tracks[0].target: track 10 (\"\") is locked");
  /* a value scaled out of range */
  const char *big = "{\"format\": \"vtl-template\", \"version\": 1, \"name\": \"b\","
                    " \"tracks\": [{\"target\": \"noise\", \"keys\": ["
                    "  {\"at\": 0, \"value\": 1e9}]}]}";
  ASSERT_EQ(vtl_template_apply(doc, big, strlen(big), SHOT_B, 2, &next, &ops,
                               &n, &err), VTL_ERANGE);
  ASSERT(strncmp(err.message, "tracks[0].keys[0].value: ", 25) == 0);
  ASSERT_NULL(ops);
  free(json);
  vtl_doc_free(doc);
  return 0;
}

/* A shot in a film with the move from another: from_keys writes the keys
 * of one shot as a template; applying it back reproduces every frame. */
static vtl_doc *make_move_doc(void) {
  batch b = {.n = 0};
  timeline(&b, 1);
  track(&b, 10, VTL_PARAM_TZ, 0, false);
  key(&b, 100, 10, 10, -1, VTL_INTERP_LINEAR);
  key(&b, 101, 10, 40, 0, VTL_INTERP_EASE_IN);
  key(&b, 102, 10, 55, 2, VTL_INTERP_BEZIER);
  set_last(&b, "out_dt", 5);
  set_last(&b, "out_dv", 1);
  key(&b, 103, 10, 70, 1, VTL_INTERP_LINEAR);
  set_last(&b, "in_dt", -4);
  set_last(&b, "in_dv", -0.5);
  key(&b, 104, 10, 79, 1.5, VTL_INTERP_HOLD);
  key(&b, 105, 10, 100, 3, VTL_INTERP_LINEAR);
  track(&b, 11, VTL_PARAM_ZOOM, 0, false);
  key(&b, 110, 11, 40, 1, VTL_INTERP_LINEAR);
  vtl_op_add_str(&b.ops[b.n - 1], "expr", "1+0.002*t");
  key(&b, 111, 11, 60, 1.03, VTL_INTERP_EASE_OUT);
  key(&b, 112, 11, 79, 1.0, VTL_INTERP_LINEAR);
  track(&b, 12, VTL_PARAM_RY, 0, false);
  key(&b, 120, 12, 45, 0.3, VTL_INTERP_LINEAR);
  key(&b, 121, 12, 66, -0.2, VTL_INTERP_LINEAR);
  track(&b, 13, VTL_PARAM_TZ, 1, false); /* a second translation_z track */
  key(&b, 130, 13, 50, 7, VTL_INTERP_LINEAR);
  vtl_doc *doc;
  vtl_error err;
  if (vtl_doc_new(&doc)) return NULL;
  int rc = vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &err);
  for (size_t i = 0; i < b.n; i++) vtl_op_free(&b.ops[i]);
  if (rc) {
    fprintf(stderr, "make_move_doc: %s\n", err.message);
    vtl_doc_free(doc);
    return NULL;
  }
  return doc;
}

TEST_IMPL(template_from_keys) {
  vtl_doc *doc = make_move_doc();
  ASSERT_NOT_NULL(doc);
  static const vtl_id sel[] = {101, 102, 103, 104, 110, 111, 112, 120, 121, 102};
  char *json = NULL;
  vtl_error err;
  ASSERT_OK(vtl_template_from_keys(doc, "my move", sel, 10, &json, &err));
  json_t *root = json_loads(json, 0, NULL);
  ASSERT_NOT_NULL(root);
  ASSERT_STR_EQ(json_string_value(json_object_get(root, "name")), "my move");
  ASSERT_STR_EQ(json_string_value(json_object_get(root, "anim_mode")), "any");
  json_t *tracks = json_object_get(root, "tracks");
  ASSERT_EQ(json_array_size(tracks), 3);
  /* targets in parameter order: zoom, translation_z, rotation_3d_y */
  json_t *tz = json_array_get(tracks, 1);
  ASSERT_STR_EQ(json_string_value(json_object_get(tz, "target")), "translation_z");
  ASSERT_EQ(json_array_size(json_object_get(tz, "keys")), 4);
  json_t *k1 = json_array_get(json_object_get(tz, "keys"), 1);
  ASSERT_NEAR(json_number_value(json_object_get(k1, "at")), 15.0 / 39, 1e-14);
  ASSERT_NEAR(json_number_value(json_object_get(k1, "out_dt")), 5.0 / 39, 1e-14);
  json_decref(root);

  /* back onto the same shot: every frame as before */
  vtl_params *before = snapshot(doc);
  ASSERT_OK(apply(doc, json, SHOT_B, 1, &err));
  vtl_params *after = snapshot(doc);
  for (int64_t f = 0; f < LENGTH; f++)
    for (int p = 0; p < VTL_PARAM__COUNT; p++)
      if (!near(after[f].values[p], before[f].values[p]))
        TEST_FAIL_("frame %lld %s: %.12g vs %.12g", (long long)f,
                   vtl_param_table[p].name, after[f].values[p],
                   before[f].values[p]);
  /* onto the first shot (as long): the move shifted by 40 frames
   * (translation_z and rotation_3d_y; zoom's expression is of the film's t) */
  ASSERT_OK(apply(doc, json, SHOT_A, 1, &err));
  vtl_params *moved = snapshot(doc);
  for (int64_t f = 0; f < 40; f++) {
    ASSERT_NEAR(moved[f].values[VTL_PARAM_TZ], before[f + 40].values[VTL_PARAM_TZ], 1e-9);
    ASSERT_NEAR(moved[f].values[VTL_PARAM_RY], before[f + 40].values[VTL_PARAM_RY], 1e-9);
  }
  for (int64_t f = 40; f < LENGTH; f++)
    for (int p = 0; p < VTL_PARAM__COUNT; p++)
      ASSERT(near(moved[f].values[p], before[f].values[p]));
  free(moved);
  free(after);
  free(before);
  free(json);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(template_from_keys_errors) {
  vtl_doc *doc = make_move_doc();
  ASSERT_NOT_NULL(doc);
  char *json = NULL;
  vtl_error err;
  vtl_id ids[] = {101, 100};
  ASSERT_EQ(vtl_template_from_keys(doc, "m", ids, 2, &json, &err), VTL_EINVAL);
  ASSERT(strstr(err.message, "keyframe 100 at frame 10 is outside shot 3"));
  ids[1] = 999;
  ASSERT_EQ(vtl_template_from_keys(doc, "m", ids, 2, &json, &err), VTL_ENOENT);
  ASSERT_STR_EQ(err.message, "keyframe 999: no such keyframe");
  ids[1] = 130;
  ASSERT_EQ(vtl_template_from_keys(doc, "m", ids, 2, &json, &err), VTL_EINVAL);
  ASSERT(strstr(err.message, "two translation_z tracks"));
  ASSERT_EQ(vtl_template_from_keys(doc, "m", ids, 0, &json, &err), VTL_EINVAL);
  ASSERT_EQ(vtl_template_from_keys(doc, "", ids, 1, &json, &err), VTL_EINVAL);
  ASSERT_EQ(vtl_template_from_keys(doc, "bad \xff", ids, 1, &json, &err),
            VTL_EINVAL);
  /* a key before the first shot */
  vtl_op o;
  vtl_op_set_int(&o, VTL_ENT_SHOT, SHOT_A, "start", 20);
  ASSERT_OK(vtl_doc_apply(doc, &o, 1, NULL, NULL, &err));
  vtl_op_free(&o);
  ids[0] = 100;
  ASSERT_EQ(vtl_template_from_keys(doc, "m", ids, 1, &json, &err), VTL_EINVAL);
  ASSERT_STR_EQ(err.message, "keyframe 100 at frame 10 is in no shot");
  ASSERT_NULL(json);
  vtl_doc_free(doc);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(template_shipped)
  TEST_ENTRY(template_files)
  TEST_ENTRY(template_edge_shots)
  TEST_ENTRY(template_custom)
  TEST_ENTRY(template_crossing_handles)
  TEST_ENTRY(template_expr_scaling)
  TEST_ENTRY(template_errors)
  TEST_ENTRY(template_from_keys)
  TEST_ENTRY(template_from_keys_errors)
)
