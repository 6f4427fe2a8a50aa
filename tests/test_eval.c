/* test_eval.c — evaluation: curves, expressions, parameters, prompts,
 * seeds, shots and the dependency hash (timeline/curve.c, eval.c).
 *
 *   curve_hold / curve_linear        segment shapes at and between keys
 *   curve_bezier                     endpoints, a hand-computed midpoint,
 *                                    monotonic in time, clamped handles
 *   curve_ease_presets               ease_in/out/in_out against CSS
 *                                    cubic-bezier solved by bisection here
 *   eval_before_after_keys           before the first key, after the last
 *   eval_keys_same_frame             keys sharing a frame, ordered by id
 *   eval_expression_segment          an expression key rules until the next
 *   eval_linear_toward_expr          a segment ends at the expression's value
 *   eval_expr_failure                nerrors / error, plain value fallback
 *   eval_integer_truncate            'I' parameters truncate
 *   eval_enum_hold                   'E' parameters hold, round, clamp
 *   eval_clamp                       every value clamped into its range
 *   eval_driver_selection            lowest (order, id), mute, keyless
 *   eval_timeline_fallbacks          steps/guidance/... from the Timeline
 *   eval_frame_clamp                 frames outside 0..length-1
 *   eval_param_at                    vtl_param_at == vtl_params_at
 *   prompts_single / prompts_crossfade / prompts_merge / prompts_gaps_mute
 *   prompts_zero_weights / prompts_heaviest_kept
 *   seed_modes                       each mode against Deforum's next_seed
 *   seed_shot_cadence                a shot's own seed, cadence 2
 *   seed_random / seed_schedule / seed_wrap
 *   shots_source                     first_frame, source, asset, strength
 *   shots_same_start                 two cuts at one frame: the lowest id
 *   dep_hash_keys                    a key edit changes frames >= previous key
 *   dep_hash_cosmetic                markers, names, colours, other tracks
 *   dep_hash_timeline                steps changes every frame
 *   dep_hash_clip                    a clip at 50 changes frames >= 50
 *   dep_hash_shot_asset              a shot's asset changes frames >= shot
 *   dep_hash_pure                    equal documents built differently agree
 */
#include <stdbool.h>
#include <stdint.h>

#include "task.h"
#include "vtl_timeline.h"

/* ---- helpers -------------------------------------------------------------- */



static vtl_doc *new_doc(void) {
  vtl_doc *d = NULL;
  CHECK(vtl_doc_new(&d));
  return d;
}

/* Applies one op (and frees it); aborts on failure: fixtures must hold. */
static void must(vtl_doc *doc, vtl_op op) {
  vtl_error err;
  int rc = vtl_doc_apply(doc, &op, 1, NULL, NULL, &err);
  vtl_op_free(&op);
  if (rc) {
    fprintf(stderr, "fixture op refused: %s\n", err.message);
    abort();
  }
}

static void tl_int(vtl_doc *doc, const char *f, int64_t v) {
  vtl_op o;
  CHECK(vtl_op_set_int(&o, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, f, v));
  must(doc, o);
}
static void tl_real(vtl_doc *doc, const char *f, double v) {
  vtl_op o;
  CHECK(vtl_op_set_real(&o, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, f, v));
  must(doc, o);
}
static void set_int(vtl_doc *doc, vtl_entity_kind k, vtl_id id, const char *f,
                    int64_t v) {
  vtl_op o;
  CHECK(vtl_op_set_int(&o, k, id, f, v));
  must(doc, o);
}
static void set_real(vtl_doc *doc, vtl_entity_kind k, vtl_id id,
                     const char *f, double v) {
  vtl_op o;
  CHECK(vtl_op_set_real(&o, k, id, f, v));
  must(doc, o);
}
static void set_str(vtl_doc *doc, vtl_entity_kind k, vtl_id id, const char *f,
                    const char *v) {
  vtl_op o;
  CHECK(vtl_op_set_str(&o, k, id, f, v));
  must(doc, o);
}
static void set_bool(vtl_doc *doc, vtl_entity_kind k, vtl_id id,
                     const char *f, bool v) {
  vtl_op o;
  CHECK(vtl_op_set_bool(&o, k, id, f, v));
  must(doc, o);
}

static void track(vtl_doc *doc, vtl_id id, vtl_target target, int64_t order) {
  vtl_op o;
  CHECK(vtl_op_create(&o, VTL_ENT_TRACK, id));
  CHECK(vtl_op_add_int(&o, "target", target));
  CHECK(vtl_op_add_int(&o, "order", order));
  must(doc, o);
}

static void key(vtl_doc *doc, vtl_id id, vtl_id trk, int64_t frame,
                double value, vtl_interp interp, const char *expr) {
  vtl_op o;
  CHECK(vtl_op_create(&o, VTL_ENT_KEYFRAME, id));
  CHECK(vtl_op_add_int(&o, "track", (int64_t)trk));
  CHECK(vtl_op_add_int(&o, "frame", frame));
  CHECK(vtl_op_add_real(&o, "value", value));
  CHECK(vtl_op_add_int(&o, "interp", interp));
  if (expr) CHECK(vtl_op_add_str(&o, "expr", expr));
  must(doc, o);
}

static void clip(vtl_doc *doc, vtl_id id, vtl_id trk, int64_t start,
                 int64_t end, const char *text, const char *neg, double weight,
                 int64_t fade_in, int64_t fade_out) {
  vtl_op o;
  CHECK(vtl_op_create(&o, VTL_ENT_PROMPT_CLIP, id));
  CHECK(vtl_op_add_int(&o, "track", (int64_t)trk));
  CHECK(vtl_op_add_int(&o, "start", start));
  CHECK(vtl_op_add_int(&o, "end", end));
  CHECK(vtl_op_add_str(&o, "text", text));
  CHECK(vtl_op_add_str(&o, "negative", neg));
  CHECK(vtl_op_add_real(&o, "weight", weight));
  CHECK(vtl_op_add_int(&o, "fade_in", fade_in));
  CHECK(vtl_op_add_int(&o, "fade_out", fade_out));
  must(doc, o);
}

static void asset(vtl_doc *doc, vtl_id id, const char *sha) {
  vtl_op o;
  CHECK(vtl_op_create(&o, VTL_ENT_ASSET, id));
  CHECK(vtl_op_add_str(&o, "sha256", sha));
  must(doc, o);
}

static void shot(vtl_doc *doc, vtl_id id, int64_t start, vtl_source src,
                 vtl_id ast, int64_t seed, double strength) {
  vtl_op o;
  CHECK(vtl_op_create(&o, VTL_ENT_SHOT, id));
  CHECK(vtl_op_add_int(&o, "start", start));
  CHECK(vtl_op_add_int(&o, "source", src));
  CHECK(vtl_op_add_int(&o, "asset", (int64_t)ast));
  CHECK(vtl_op_add_int(&o, "seed", seed));
  CHECK(vtl_op_add_real(&o, "strength", strength));
  must(doc, o);
}

static void del(vtl_doc *doc, vtl_entity_kind k, vtl_id id) {
  vtl_op o;
  CHECK(vtl_op_delete(&o, k, id));
  must(doc, o);
}

static double val(vtl_doc *doc, vtl_target p, int64_t f) {
  vtl_params ps;
  CHECK(vtl_params_at(doc, f, &ps));
  return ps.values[p];
}

/* A keyframe struct for the curve functions. */
static vtl_keyframe kf(int64_t frame, vtl_interp interp, double out_dt,
                       double out_dv, double in_dt, double in_dv) {
  vtl_keyframe k = {0};
  k.frame = frame;
  k.interp = interp;
  k.out_dt = out_dt;
  k.out_dv = out_dv;
  k.in_dt = in_dt;
  k.in_dv = in_dv;
  k.expr = "";
  return k;
}

/* The reference: one coordinate of a cubic bezier from 0 to 1. */
static double ref_bez(double p1, double p2, double u) {
  double v = 1 - u;
  return 3 * v * v * u * p1 + 3 * v * u * u * p2 + u * u * u;
}

/* CSS cubic-bezier(x1, y1, x2, y2) at x, solving x(u) = x by plain
 * bisection (x(u) is increasing for x1, x2 in [0, 1]). */
static double ref_ease(double x1, double y1, double x2, double y2, double x) {
  double lo = 0, hi = 1;
  for (int i = 0; i < 200; i++) {
    double mid = (lo + hi) / 2;
    if (ref_bez(x1, x2, mid) < x) lo = mid;
    else hi = mid;
  }
  return ref_bez(y1, y2, (lo + hi) / 2);
}

/* ---- curves ---------------------------------------------------------------- */

TEST_IMPL(curve_hold) {
  vtl_keyframe a = kf(10, VTL_INTERP_HOLD, 0, 0, 0, 0);
  vtl_keyframe b = kf(20, VTL_INTERP_LINEAR, 0, 0, 0, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 10), 3, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 15), 3, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 19.999), 3, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 20), 7, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 25), 7, 0);
  return 0;
}

TEST_IMPL(curve_linear) {
  vtl_keyframe a = kf(10, VTL_INTERP_LINEAR, 0, 0, 0, 0);
  vtl_keyframe b = kf(20, VTL_INTERP_HOLD, 0, 0, 0, 0);
  for (int f = 10; f <= 20; f++)
    ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, f), 3 + 0.4 * (f - 10), 1e-12);
  ASSERT_NEAR(vtl_curve_segment(&a, -1, &b, 1, 15), 0, 1e-12);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &b, 7, 30), 7, 0); /* past b */
  /* a zero-length segment is b's value */
  vtl_keyframe c = kf(10, VTL_INTERP_LINEAR, 0, 0, 0, 0);
  ASSERT_NEAR(vtl_curve_segment(&a, 3, &c, 7, 10), 7, 0);
  return 0;
}

TEST_IMPL(curve_bezier) {
  /* handles at a third of the span make x(u) = u, so the value at the
   * middle is the bezier at u = 1/2: (va + 3 p1 + 3 p2 + vb) / 8 with
   * p1 = va + out_dv = 6, p2 = vb + in_dv = 16: (0 + 18 + 48 + 10) / 8 */
  vtl_keyframe a = kf(0, VTL_INTERP_BEZIER, 10, 6, 0, 0);
  vtl_keyframe b = kf(30, VTL_INTERP_LINEAR, 0, 0, -10, 6);
  ASSERT_NEAR(vtl_curve_segment(&a, 0, &b, 10, 0), 0, 1e-9);
  ASSERT_NEAR(vtl_curve_segment(&a, 0, &b, 10, 15), 9.5, 1e-9);
  ASSERT_NEAR(vtl_curve_segment(&a, 0, &b, 10, 30), 10, 0);
  /* at a quarter: u = 1/4 */
  double u = 0.25, v = 0.75;
  double want = 3 * v * v * u * 6 + 3 * v * u * u * 16 + u * u * u * 10;
  ASSERT_NEAR(vtl_curve_segment(&a, 0, &b, 10, 7.5), want, 1e-9);

  /* symmetric handles (x1 + x2 = 1) put the middle of time at u = 1/2 even
   * when x(u) is not linear: x1 = 0.8, x2 = 0.2 */
  vtl_keyframe c = kf(100, VTL_INTERP_BEZIER, 16, 2, 0, 0);
  vtl_keyframe d = kf(120, VTL_INTERP_LINEAR, 0, 0, -16, -2);
  /* p1 = 2, p2 = 4 - 2 = 2: (0 + 6 + 6 + 4) / 8 = 2 */
  ASSERT_NEAR(vtl_curve_segment(&c, 0, &d, 4, 110), 2, 1e-9);

  /* monotonic control values give a monotonic curve, also with handles
   * longer than the span (clamped into it) */
  const double handles[] = {0, 5, 15, 30, 1000};
  for (size_t h = 0; h < sizeof handles / sizeof handles[0]; h++) {
    vtl_keyframe e = kf(0, VTL_INTERP_BEZIER, handles[h], 3, 0, 0);
    vtl_keyframe g = kf(30, VTL_INTERP_LINEAR, 0, 0, -handles[h], -3);
    double prev = -1;
    for (double f = 0; f <= 30; f += 0.25) {
      double y = vtl_curve_segment(&e, 0, &g, 10, f);
      ASSERT(isfinite(y));
      ASSERT(y >= prev - 1e-12);
      ASSERT(y >= -1e-9 && y <= 10 + 1e-9);
      prev = y;
    }
    ASSERT_NEAR(vtl_curve_segment(&e, 0, &g, 10, 0), 0, 1e-9);
    ASSERT_NEAR(vtl_curve_segment(&e, 0, &g, 10, 30), 10, 1e-9);
  }
  /* flat handles: the x coordinate solves for any frame (no NaN) */
  vtl_keyframe e = kf(0, VTL_INTERP_BEZIER, 0, 0, 0, 0);
  vtl_keyframe g = kf(30, VTL_INTERP_LINEAR, 0, 0, 0, 0);
  for (double f = 0; f <= 30; f += 1) {
    double y = vtl_curve_segment(&e, 0, &g, 10, f);
    ASSERT_NEAR(y, f / 3, 1e-6); /* y(u) = 10 x(u): a straight line */
  }
  return 0;
}

TEST_IMPL(curve_ease_presets) {
  static const struct {
    vtl_interp interp;
    double x1, y1, x2, y2;
  } presets[] = {
    {VTL_INTERP_EASE_IN, 0.42, 0, 1, 1},
    {VTL_INTERP_EASE_OUT, 0, 0, 0.58, 1},
    {VTL_INTERP_EASE_IN_OUT, 0.42, 0, 0.58, 1},
  };
  const double xs[] = {0.25, 0.5, 0.75};
  for (int p = 0; p < 3; p++) {
    vtl_keyframe a = kf(0, presets[p].interp, 0, 0, 0, 0);
    vtl_keyframe b = kf(100, VTL_INTERP_LINEAR, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
      double want = ref_ease(presets[p].x1, presets[p].y1, presets[p].x2,
                             presets[p].y2, xs[i]);
      ASSERT_NEAR(vtl_bezier_ease(presets[p].x1, presets[p].y1, presets[p].x2,
                                  presets[p].y2, xs[i]),
                  want, 1e-9);
      /* on a segment from 5 to 25 over 100 frames */
      ASSERT_NEAR(vtl_curve_segment(&a, 5, &b, 25, 100 * xs[i]), 5 + 20 * want,
                  1e-7);
    }
    ASSERT_NEAR(vtl_curve_segment(&a, 5, &b, 25, 0), 5, 1e-9);
    ASSERT_NEAR(vtl_curve_segment(&a, 5, &b, 25, 100), 25, 0);
  }
  /* independent sanity of the reference and the curve: ease-in-out is
   * symmetric, ease-out is ease-in turned around, ease-in starts slowly */
  double in25 = vtl_bezier_ease(.42, 0, 1, 1, .25);
  double out75 = vtl_bezier_ease(0, 0, .58, 1, .75);
  ASSERT_NEAR(in25 + out75, 1, 1e-9);
  ASSERT_NEAR(vtl_bezier_ease(.42, 0, .58, 1, .5), 0.5, 1e-9);
  ASSERT_NEAR(vtl_bezier_ease(.42, 0, .58, 1, .25) +
                  vtl_bezier_ease(.42, 0, .58, 1, .75), 1, 1e-9);
  ASSERT(in25 < 0.25 && out75 > 0.75);
  ASSERT_NEAR(vtl_bezier_ease(.42, 0, 1, 1, .5), 0.3153568, 1e-6);
  /* x outside [0, 1] is clamped */
  ASSERT_NEAR(vtl_bezier_ease(.42, 0, .58, 1, -1), 0, 1e-12);
  ASSERT_NEAR(vtl_bezier_ease(.42, 0, .58, 1, 2), 1, 1e-12);
  return 0;
}

/* ---- parameters ------------------------------------------------------------ */

TEST_IMPL(eval_before_after_keys) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_TX, 0);
  key(doc, 10, 2, 20, 5, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 40, 9, VTL_INTERP_LINEAR, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 0), 5, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 19), 5, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 20), 5, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 30), 7, 1e-12);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 40), 9, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 119), 9, 0);
  /* keys given out of order are sorted by frame */
  key(doc, 12, 2, 0, -5, VTL_INTERP_LINEAR, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 10), 0, 1e-12);
  /* one key: its value everywhere */
  del(doc, VTL_ENT_KEYFRAME, 11);
  del(doc, VTL_ENT_KEYFRAME, 12);
  for (int f = 0; f < 120; f += 17) ASSERT_NEAR(val(doc, VTL_PARAM_TX, f), 5, 0);
  vtl_doc_free(doc);
  return 0;
}

/* Keys sharing a frame are ordered by id: the segment arrives at the lower
 * id's value, the higher id's value holds from that frame on; the order
 * the keys were created in does not matter. */
TEST_IMPL(eval_keys_same_frame) {
  for (int order = 0; order < 2; order++) {
    vtl_doc *doc = new_doc();
    track(doc, 2, VTL_PARAM_TX, 0);
    key(doc, 9, 2, 0, 0, VTL_INTERP_LINEAR, NULL);
    if (order == 0) {
      key(doc, 10, 2, 10, 1, VTL_INTERP_LINEAR, NULL);
      key(doc, 11, 2, 10, 5, VTL_INTERP_LINEAR, NULL);
    } else {
      key(doc, 11, 2, 10, 5, VTL_INTERP_LINEAR, NULL);
      key(doc, 10, 2, 10, 1, VTL_INTERP_LINEAR, NULL);
    }
    key(doc, 12, 2, 20, 7, VTL_INTERP_LINEAR, NULL);
    ASSERT_NEAR(val(doc, VTL_PARAM_TX, 5), 0.5, 1e-12);
    ASSERT_NEAR(val(doc, VTL_PARAM_TX, 10), 5, 0);
    ASSERT_NEAR(val(doc, VTL_PARAM_TX, 15), 6, 1e-12);
    vtl_doc_free(doc);
  }
  return 0;
}

TEST_IMPL(eval_expression_segment) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_TX, 0);
  key(doc, 10, 2, 10, 999, VTL_INTERP_LINEAR, "t * 3");
  key(doc, 11, 2, 20, 5, VTL_INTERP_HOLD, NULL);
  key(doc, 12, 2, 30, 0, VTL_INTERP_HOLD, "s * 2 + max_f + fps");
  vtl_params p;
  /* before the first key: the expression at its own frame */
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 0), 30, 0);
  /* from the key to the next: the expression at every t */
  for (int f = 10; f < 20; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_NEAR(p.values[VTL_PARAM_TX], 3.0 * f, 1e-12);
    ASSERT_EQ(p.nerrors, 0);
  }
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 20), 5, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 29), 5, 0);
  /* after the last key an expression goes on; s = t / fps, max_f, fps */
  for (int f = 30; f < 120; f += 7)
    ASSERT_NEAR(val(doc, VTL_PARAM_TX, f), f / 12.0 * 2 + 119 + 12, 1e-9);
  tl_real(doc, "fps", 24);
  tl_int(doc, "length", 200);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 48), 4 + 199 + 24, 1e-9);
  /* math globals */
  set_str(doc, VTL_ENT_KEYFRAME, 12, "expr", "floor(sin(pi / 2) * 10 + abs(-2))");
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 40), 12, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_linear_toward_expr) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_TX, 0);
  key(doc, 10, 2, 0, 0, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 10, 0, VTL_INTERP_LINEAR, "t * 3"); /* 30 at frame 10 */
  key(doc, 12, 2, 20, 5, VTL_INTERP_HOLD, NULL);
  for (int f = 0; f <= 10; f++)
    ASSERT_NEAR(val(doc, VTL_PARAM_TX, f), 3.0 * f, 1e-12);
  /* an ease toward it */
  set_int(doc, VTL_ENT_KEYFRAME, 10, "interp", VTL_INTERP_EASE_IN);
  ASSERT_NEAR(val(doc, VTL_PARAM_TX, 5), 30 * ref_ease(.42, 0, 1, 1, .5), 1e-7);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_expr_failure) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_TX, 0);
  /* fine before t = 5, a runtime error (calling nil) from then on */
  key(doc, 10, 2, 0, 7, VTL_INTERP_LINEAR, "t < 5 and t or nope()");
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 3, &p));
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 3, 0);
  ASSERT_EQ(p.nerrors, 0);
  ASSERT_STR_EQ(p.error, "");
  ASSERT_OK(vtl_params_at(doc, 6, &p));
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 7, 0); /* the plain value */
  ASSERT_EQ(p.nerrors, 1);
  ASSERT_CONTAINS(p.error, "keyframe 10 at frame 6");
  ASSERT_CONTAINS(p.error, "nope");
  /* a non-finite result is a failure too */
  set_str(doc, VTL_ENT_KEYFRAME, 10, "expr", "0 / 0");
  ASSERT_OK(vtl_params_at(doc, 6, &p));
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 7, 0);
  ASSERT_EQ(p.nerrors, 1);
  ASSERT_CONTAINS(p.error, "NaN");
  set_str(doc, VTL_ENT_KEYFRAME, 10, "expr", "1 / (t - 6)");
  ASSERT_OK(vtl_params_at(doc, 6, &p));
  ASSERT_EQ(p.nerrors, 1);
  ASSERT_OK(vtl_params_at(doc, 8, &p));
  ASSERT_EQ(p.nerrors, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 0.5, 1e-12);
  /* a result that is not a number falls back */
  set_str(doc, VTL_ENT_KEYFRAME, 10, "expr", "'x' .. t");
  ASSERT_OK(vtl_params_at(doc, 6, &p));
  ASSERT_EQ(p.nerrors, 1);
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 7, 0);
  /* a failing expression key as the end of a linear segment: its plain
   * value is the target */
  set_str(doc, VTL_ENT_KEYFRAME, 10, "expr", "");
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", 0);
  key(doc, 11, 2, 10, 4, VTL_INTERP_HOLD, "nope() + 1");
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 2, 1e-12);
  ASSERT_EQ(p.nerrors, 1);
  ASSERT_CONTAINS(p.error, "keyframe 11");
  /* two failing parameters: both counted, the first reported */
  track(doc, 3, VTL_PARAM_TY, 0);
  key(doc, 12, 3, 0, 1, VTL_INTERP_HOLD, "undefined_thing * 2");
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_EQ(p.nerrors, 2);
  ASSERT_NEAR(p.values[VTL_PARAM_TY], 1, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_integer_truncate) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_STEPS, 0);
  key(doc, 10, 2, 0, 10, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 10, 11, VTL_INTERP_LINEAR, NULL);
  for (int f = 0; f < 10; f++) ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, f), 10, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, 10), 11, 0);
  set_real(doc, VTL_ENT_KEYFRAME, 11, "value", 20.99);
  ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, 50), 20, 0);
  track(doc, 3, VTL_PARAM_CADENCE, 0);
  key(doc, 12, 3, 0, 2.999, VTL_INTERP_HOLD, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_CADENCE, 0), 2, 0);
  key(doc, 13, 3, 5, 0, VTL_INTERP_HOLD, "3.7");
  ASSERT_NEAR(val(doc, VTL_PARAM_CADENCE, 6), 3, 0);
  /* toward zero, then clamped: 0.9 steps is 1 step */
  set_real(doc, VTL_ENT_KEYFRAME, 11, "value", 0.9);
  ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, 50), 1, 0);
  track(doc, 4, VTL_PARAM_SEED, 0);
  key(doc, 14, 4, 0, -0.7, VTL_INTERP_HOLD, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_SEED, 0), 0, 0);
  set_real(doc, VTL_ENT_KEYFRAME, 14, "value", 123456.9);
  ASSERT_NEAR(val(doc, VTL_PARAM_SEED, 0), 123456, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_enum_hold) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_SAMPLER, 0);
  key(doc, 10, 2, 0, VTL_SAMPLER_DDIM, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 10, VTL_SAMPLER_LCM, VTL_INTERP_LINEAR, NULL);
  for (int f = 0; f < 10; f++)
    ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, f), VTL_SAMPLER_DDIM, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 10), VTL_SAMPLER_LCM, 0);
  /* a bezier with a big handle cannot make an enum wander either */
  set_int(doc, VTL_ENT_KEYFRAME, 10, "interp", VTL_INTERP_BEZIER);
  set_real(doc, VTL_ENT_KEYFRAME, 10, "out_dv", 100);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 5), VTL_SAMPLER_DDIM, 0);
  /* non-integral values round; out of range clamps */
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", 2.6);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 5), 3, 0);
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", 9);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 5), 4, 0);
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", -3);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 5), 0, 0);
  /* an expression on an enum key */
  set_str(doc, VTL_ENT_KEYFRAME, 10, "expr", "t % 3");
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 5), 2, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_SAMPLER, 6), 0, 0);
  track(doc, 3, VTL_PARAM_SPACING, 0);
  key(doc, 12, 3, 0, VTL_SPACING_TRAILING, VTL_INTERP_LINEAR, NULL);
  key(doc, 13, 3, 10, VTL_SPACING_LINSPACE, VTL_INTERP_LINEAR, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_SPACING, 9), VTL_SPACING_TRAILING, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_clamp) {
  vtl_doc *doc = new_doc();
  static const struct { vtl_target p; double v, want; } cases[] = {
    {VTL_PARAM_ZOOM, 500, 100},       {VTL_PARAM_ZOOM, -3, 0.01},
    {VTL_PARAM_FOV, 0, 1},            {VTL_PARAM_FOV, 1000, 179},
    {VTL_PARAM_STRENGTH, 2, 1},       {VTL_PARAM_STRENGTH, -1, 0},
    {VTL_PARAM_GUIDANCE, 51, 50},     {VTL_PARAM_TX, 1e6, 1e4},
    {VTL_PARAM_ANGLE, -5000, -3600},  {VTL_PARAM_STEPS, 5000, 1000},
    {VTL_PARAM_CADENCE, 0, 1},        {VTL_PARAM_NOISE, 11, 10},
    {VTL_PARAM_NEAR, 0, 0.001},       {VTL_PARAM_SEED, 5e9 / 10, 5e8},
  };
  vtl_id id = 100;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, id += 2) {
    track(doc, id, cases[i].p, 0);
    key(doc, id + 1, id, 0, cases[i].v, VTL_INTERP_HOLD, NULL);
    ASSERT_NEAR(val(doc, cases[i].p, 10), cases[i].want, 0);
    del(doc, VTL_ENT_TRACK, id);
  }
  /* expression results clamp too, past the keyframe value range */
  track(doc, 2, VTL_PARAM_SEED, 0);
  key(doc, 3, 2, 0, 0, VTL_INTERP_HOLD, "2^40");
  ASSERT_NEAR(val(doc, VTL_PARAM_SEED, 0), 4294967295.0, 0);
  set_str(doc, VTL_ENT_KEYFRAME, 3, "expr", "3e9 + 0.5");
  ASSERT_NEAR(val(doc, VTL_PARAM_SEED, 0), 3e9, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_driver_selection) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_ZOOM, 5);
  key(doc, 20, 2, 0, 2, VTL_INTERP_HOLD, NULL);
  track(doc, 3, VTL_PARAM_ZOOM, 1);
  key(doc, 30, 3, 0, 3, VTL_INTERP_HOLD, NULL);
  track(doc, 4, VTL_PARAM_ZOOM, 0); /* no keys: ignored */
  track(doc, 5, VTL_PARAM_ZOOM, -1);
  key(doc, 50, 5, 0, 5, VTL_INTERP_HOLD, NULL);
  set_bool(doc, VTL_ENT_TRACK, 5, "mute", true);
  track(doc, 6, VTL_PARAM_ANGLE, -100); /* another target */
  key(doc, 60, 6, 0, 6, VTL_INTERP_HOLD, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 3, 0);
  set_bool(doc, VTL_ENT_TRACK, 3, "mute", true);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 2, 0);
  /* same order: the lower id */
  set_bool(doc, VTL_ENT_TRACK, 3, "mute", false);
  set_int(doc, VTL_ENT_TRACK, 3, "order", 5);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 2, 0);
  set_int(doc, VTL_ENT_TRACK, 2, "order", 6);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 3, 0);
  set_bool(doc, VTL_ENT_TRACK, 5, "mute", false);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 5, 0);
  /* the keyless track gets keys and wins over order 0 < 5 */
  set_int(doc, VTL_ENT_TRACK, 5, "order", 10);
  key(doc, 40, 4, 0, 4, VTL_INTERP_HOLD, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 4, 0);
  /* every zoom track muted: the default */
  for (vtl_id t = 2; t <= 5; t++) set_bool(doc, VTL_ENT_TRACK, t, "mute", true);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 1.0, 0);
  ASSERT_NEAR(val(doc, VTL_PARAM_ANGLE, 0), 6, 0);
  /* a driver's keys deleted: the next one drives */
  set_bool(doc, VTL_ENT_TRACK, 4, "mute", false);
  set_bool(doc, VTL_ENT_TRACK, 2, "mute", false);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 4, 0);
  del(doc, VTL_ENT_KEYFRAME, 40);
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 0), 2, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_timeline_fallbacks) {
  vtl_doc *doc = new_doc();
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 0, &p));
  for (int i = 0; i < VTL_PARAM__COUNT; i++)
    ASSERT_NEAR(p.values[i], vtl_param_table[i].def, 0);
  tl_int(doc, "steps", 33);
  tl_real(doc, "guidance", 9.25);
  tl_real(doc, "strength", 0.6);
  tl_int(doc, "sampler", VTL_SAMPLER_DPMPP_2M);
  tl_int(doc, "spacing", VTL_SPACING_TRAILING);
  tl_int(doc, "seed", 77);
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_NEAR(p.values[VTL_PARAM_STEPS], 33, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_GUIDANCE], 9.25, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_STRENGTH], 0.6, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_SAMPLER], VTL_SAMPLER_DPMPP_2M, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_SPACING], VTL_SPACING_TRAILING, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_SEED], 77, 0);
  /* the rest: built-in defaults */
  ASSERT_NEAR(p.values[VTL_PARAM_ZOOM], 1.0, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_FOV], 40, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_NEAR], 200, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_FAR], 10000, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_NOISE], 0.02, 0);
  ASSERT_NEAR(p.values[VTL_PARAM_CADENCE], 1, 0);
  /* a track overrides the Timeline; muted, the Timeline again */
  track(doc, 2, VTL_PARAM_STEPS, 0);
  key(doc, 10, 2, 0, 12, VTL_INTERP_HOLD, NULL);
  ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, 5), 12, 0);
  set_bool(doc, VTL_ENT_TRACK, 2, "mute", true);
  ASSERT_NEAR(val(doc, VTL_PARAM_STEPS, 5), 33, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_frame_clamp) {
  vtl_doc *doc = new_doc(); /* length 120, fps 12 */
  track(doc, 2, VTL_PARAM_TX, 0);
  key(doc, 10, 2, 0, 0, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 200, 200, VTL_INTERP_LINEAR, NULL);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, -5, &p));
  ASSERT_EQ(p.frame, 0);
  ASSERT_NEAR(p.seconds, 0, 0);
  ASSERT_OK(vtl_params_at(doc, 1000000000, &p));
  ASSERT_EQ(p.frame, 119);
  ASSERT_NEAR(p.seconds, 119 / 12.0, 1e-12);
  ASSERT_NEAR(p.values[VTL_PARAM_TX], 119, 1e-9);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, 500), 119, 1e-9);
  ASSERT_NEAR(vtl_param_at(doc, VTL_PARAM_TX, -1), 0, 0);
  tl_int(doc, "length", 1);
  ASSERT_OK(vtl_params_at(doc, 50, &p));
  ASSERT_EQ(p.frame, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(eval_param_at) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  key(doc, 10, 2, 0, 1, VTL_INTERP_EASE_IN_OUT, NULL);
  key(doc, 11, 2, 60, 3, VTL_INTERP_LINEAR, "1 + t / 100");
  track(doc, 3, VTL_PARAM_STEPS, 0);
  key(doc, 12, 3, 0, 15.5, VTL_INTERP_LINEAR, NULL);
  key(doc, 13, 3, 100, 40, VTL_INTERP_LINEAR, NULL);
  for (int64_t f = -3; f < 130; f += 7) {
    vtl_params p;
    ASSERT_OK(vtl_params_at(doc, f, &p));
    for (int i = 0; i < VTL_PARAM__COUNT; i++)
      ASSERT_NEAR(vtl_param_at(doc, (vtl_target)i, f), p.values[i], 0);
  }
  ASSERT(isnan(vtl_param_at(doc, VTL_TARGET_PROMPT, 0)));
  vtl_doc_free(doc);
  return 0;
}

/* ---- prompts ---------------------------------------------------------------- */

/* Weight of `text` at p, or -1 if absent. */
static double weight_of(const vtl_params *p, const char *text) {
  for (int i = 0; i < p->nprompts; i++)
    if (strcmp(p->prompts[i].text, text) == 0) return p->prompts[i].weight;
  return -1;
}

static int check_sum1(const vtl_params *p) {
  double sum = 0;
  for (int i = 0; i < p->nprompts; i++) {
    ASSERT(p->prompts[i].weight >= 0);
    sum += p->prompts[i].weight;
  }
  if (p->nprompts) ASSERT_NEAR(sum, 1, 1e-12);
  return 0;
}

TEST_IMPL(prompts_single) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  clip(doc, 20, 2, 10, 30, "a red fox", "blurry", 2.5, 0, 0);
  vtl_params p;
  for (int f = 10; f < 30; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(p.nprompts, 1);
    ASSERT_STR_EQ(p.prompts[0].text, "a red fox");
    ASSERT_STR_EQ(p.prompts[0].negative, "blurry");
    ASSERT_NEAR(p.prompts[0].weight, 1, 0);
  }
  ASSERT_OK(vtl_params_at(doc, 9, &p));
  ASSERT_EQ(p.nprompts, 0);
  ASSERT_OK(vtl_params_at(doc, 30, &p)); /* end is exclusive */
  ASSERT_EQ(p.nprompts, 0);
  /* the text is borrowed from the document */
  const vtl_prompt_clip *c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 20);
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  ASSERT(p.prompts[0].text == c->text);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(prompts_crossfade) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  clip(doc, 20, 2, 0, 20, "forest", "", 1, 0, 10);
  clip(doc, 21, 2, 10, 30, "city", "", 1, 10, 0);
  vtl_params p;
  for (int f = 0; f < 10; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(p.nprompts, 1);
    ASSERT_NEAR(weight_of(&p, "forest"), 1, 0);
  }
  for (int f = 10; f < 20; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    /* at 10 the fade-in is at 0: "city" contributes nothing and is left
     * out; after that both */
    ASSERT_EQ(p.nprompts, f == 10 ? 1 : 2);
    ASSERT_OK(check_sum1(&p));
    /* linear in f: the fade-out of one is the fade-in of the other */
    ASSERT_NEAR(weight_of(&p, "forest"), (20 - f) / 10.0, 1e-12);
    if (f > 10) ASSERT_NEAR(weight_of(&p, "city"), (f - 10) / 10.0, 1e-12);
    /* heaviest first */
    if (f > 10) ASSERT(p.prompts[0].weight >= p.prompts[1].weight);
  }
  for (int f = 20; f < 30; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(p.nprompts, 1);
    ASSERT_NEAR(weight_of(&p, "city"), 1, 0);
  }
  /* unequal clip weights scale the envelopes: 3 * 0.5 vs 1 * 0.5 */
  set_real(doc, VTL_ENT_PROMPT_CLIP, 20, "weight", 3);
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  ASSERT_NEAR(weight_of(&p, "forest"), 0.75, 1e-12);
  ASSERT_NEAR(weight_of(&p, "city"), 0.25, 1e-12);
  ASSERT_STR_EQ(p.prompts[0].text, "forest");
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(prompts_merge) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  track(doc, 3, VTL_TARGET_PROMPT, 1);
  clip(doc, 20, 2, 0, 50, "sea", "fog", 1, 0, 0);
  clip(doc, 21, 3, 10, 40, "sea", "fog", 1, 0, 0);
  clip(doc, 22, 3, 40, 60, "sea", "rain", 1, 0, 0);
  clip(doc, 23, 2, 20, 30, "sky", "fog", 2, 0, 0);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  ASSERT_EQ(p.nprompts, 1); /* same text and negative: one prompt */
  ASSERT_NEAR(p.prompts[0].weight, 1, 0);
  ASSERT_OK(vtl_params_at(doc, 25, &p));
  ASSERT_EQ(p.nprompts, 2); /* sea/fog 1 + 1, sky/fog 2 */
  ASSERT_NEAR(weight_of(&p, "sea"), 0.5, 1e-12);
  ASSERT_NEAR(weight_of(&p, "sky"), 0.5, 1e-12);
  ASSERT_OK(vtl_params_at(doc, 45, &p));
  ASSERT_EQ(p.nprompts, 2); /* same text, other negative: not merged */
  ASSERT_OK(check_sum1(&p));
  ASSERT_STR_EQ(p.prompts[0].text, "sea");
  ASSERT_STR_EQ(p.prompts[1].text, "sea");
  ASSERT(strcmp(p.prompts[0].negative, p.prompts[1].negative) != 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(prompts_gaps_mute) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  track(doc, 3, VTL_TARGET_PROMPT, 0);
  clip(doc, 20, 2, 0, 10, "one", "", 1, 0, 0);
  clip(doc, 21, 2, 20, 30, "two", "", 1, 0, 0);
  clip(doc, 22, 3, 0, 100, "ghost", "", 1, 0, 0);
  set_bool(doc, VTL_ENT_TRACK, 3, "mute", true);
  vtl_params p;
  for (int f = 0; f < 40; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(weight_of(&p, "ghost"), -1);
    if (f < 10) ASSERT_EQ(p.nprompts, 1);
    else if (f < 20) ASSERT_EQ(p.nprompts, 0);
    else if (f < 30) ASSERT_EQ(p.nprompts, 1);
    else ASSERT_EQ(p.nprompts, 0);
  }
  set_bool(doc, VTL_ENT_TRACK, 3, "mute", false);
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  ASSERT_EQ(p.nprompts, 1);
  ASSERT_STR_EQ(p.prompts[0].text, "ghost");
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(prompts_zero_weights) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  clip(doc, 20, 2, 0, 10, "a", "", 0, 0, 0);
  clip(doc, 21, 2, 0, 10, "b", "", 0, 0, 0);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_EQ(p.nprompts, 2);
  ASSERT_NEAR(weight_of(&p, "a"), 0.5, 0);
  ASSERT_NEAR(weight_of(&p, "b"), 0.5, 0);
  /* at the very start of a fade-in the envelope is 0 */
  clip(doc, 22, 2, 20, 30, "c", "", 1, 5, 0);
  ASSERT_OK(vtl_params_at(doc, 20, &p));
  ASSERT_EQ(p.nprompts, 1);
  ASSERT_NEAR(p.prompts[0].weight, 1, 0);
  ASSERT_OK(vtl_params_at(doc, 22, &p));
  ASSERT_NEAR(p.prompts[0].weight, 1, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(prompts_heaviest_kept) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  char text[16];
  for (int i = 1; i <= 20; i++) {
    snprintf(text, sizeof text, "p%02d", i);
    clip(doc, 100 + i, 2, 0, 10, text, "", i, 0, 0);
  }
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 3, &p));
  ASSERT_EQ(p.nprompts, VTL_MAX_PROMPTS_AT);
  ASSERT_OK(check_sum1(&p));
  /* p05..p20 kept, heaviest first, proportional to their weights */
  double sum = 0;
  for (int i = 5; i <= 20; i++) sum += i;
  for (int i = 0; i < p.nprompts; i++) {
    snprintf(text, sizeof text, "p%02d", 20 - i);
    ASSERT_STR_EQ(p.prompts[i].text, text);
    ASSERT_NEAR(p.prompts[i].weight, (20 - i) / sum, 1e-12);
  }
  ASSERT_EQ(weight_of(&p, "p04"), -1);
  vtl_doc_free(doc);
  return 0;
}

/* ---- seeds ----------------------------------------------------------------- */

/* Deforum's next_seed(), called once after every diffused frame: the seed
 * of diffused frame d starting from base. */
static int64_t deforum_seed(vtl_seed_mode mode, int64_t base, int64_t n,
                            int64_t d) {
  int64_t seed = base, internal = 0;
  for (int64_t i = 0; i < d; i++) {
    switch (mode) {
    case VTL_SEED_ITER:
      seed += internal % n == 0 ? 1 : 0;
      internal++;
      break;
    case VTL_SEED_LADDER:
      seed += internal == 0 ? 2 : -1;
      internal = internal == 0 ? 1 : 0;
      break;
    case VTL_SEED_ALTERNATE:
      seed += internal == 0 ? 1 : -1;
      internal = internal == 0 ? 1 : 0;
      break;
    default: break;
    }
  }
  return seed;
}

TEST_IMPL(seed_modes) {
  static const struct { vtl_seed_mode mode; int64_t n; } cases[] = {
    {VTL_SEED_FIXED, 1},     {VTL_SEED_ITER, 1}, {VTL_SEED_ITER, 3},
    {VTL_SEED_LADDER, 1},    {VTL_SEED_ALTERNATE, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    vtl_doc *doc = new_doc();
    tl_int(doc, "seed", 1000);
    tl_int(doc, "seed_mode", cases[c].mode);
    tl_int(doc, "seed_iter_n", cases[c].n);
    for (int64_t f = 0; f < 40; f++) {
      vtl_params p;
      ASSERT_OK(vtl_params_at(doc, f, &p));
      int64_t want = deforum_seed(cases[c].mode, 1000, cases[c].n, f);
      if (p.seed != want)
        fprintf(stderr, "mode %s N=%" PRId64 " frame %" PRId64 "\n",
                vtl_seed_mode_names[cases[c].mode], cases[c].n, f);
      ASSERT_EQ(p.seed, want);
    }
    vtl_doc_free(doc);
  }
  /* spot values, by hand */
  ASSERT_EQ(deforum_seed(VTL_SEED_ITER, 5, 3, 4), 7);
  ASSERT_EQ(deforum_seed(VTL_SEED_LADDER, 5, 1, 3), 8);
  return 0;
}

TEST_IMPL(seed_shot_cadence) {
  static const vtl_seed_mode modes[] = {VTL_SEED_FIXED, VTL_SEED_ITER,
                                        VTL_SEED_LADDER, VTL_SEED_ALTERNATE};
  for (size_t m = 0; m < 4; m++) {
    vtl_doc *doc = new_doc();
    tl_int(doc, "seed", 7);
    tl_int(doc, "seed_mode", modes[m]);
    tl_int(doc, "seed_iter_n", 3);
    track(doc, 2, VTL_PARAM_CADENCE, 0);
    key(doc, 10, 2, 0, 2, VTL_INTERP_HOLD, NULL);
    shot(doc, 30, 0, VTL_SOURCE_NOISE, 0, -1, 0.5);  /* the timeline's seed */
    shot(doc, 31, 11, VTL_SOURCE_NOISE, 0, 500, 0.5); /* its own seed */
    for (int64_t f = 0; f < 60; f++) {
      vtl_params p;
      ASSERT_OK(vtl_params_at(doc, f, &p));
      int64_t start = f < 11 ? 0 : 11, base = f < 11 ? 7 : 500;
      ASSERT_EQ(p.shot_start, start);
      int64_t d = (f - start) / 2;
      ASSERT_EQ(p.seed, deforum_seed(modes[m], base, 3, d));
    }
    vtl_doc_free(doc);
  }
  return 0;
}

TEST_IMPL(seed_random) {
  vtl_doc *a = new_doc(), *b = new_doc();
  vtl_doc *docs[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    tl_int(docs[i], "seed", 42);
    tl_int(docs[i], "seed_mode", VTL_SEED_RANDOM);
    tl_int(docs[i], "length", 400);
  }
  int64_t seeds[400];
  int distinct = 0;
  for (int64_t f = 0; f < 400; f++) {
    vtl_params p, q;
    ASSERT_OK(vtl_params_at(a, f, &p));
    ASSERT_OK(vtl_params_at(b, f, &q));
    ASSERT_EQ(p.seed, q.seed); /* deterministic */
    ASSERT_GE(p.seed, 0);
    ASSERT_LE(p.seed, 4294967295ll);
    seeds[f] = p.seed;
    int dup = 0;
    for (int64_t g = 0; g < f; g++) dup |= seeds[g] == p.seed;
    distinct += !dup;
  }
  ASSERT_GE(distinct, 398);
  /* the same twice: evaluation is a pure function */
  vtl_params p;
  ASSERT_OK(vtl_params_at(a, 123, &p));
  ASSERT_EQ(p.seed, seeds[123]);
  /* another base, other seeds */
  tl_int(b, "seed", 43);
  int same = 0;
  for (int64_t f = 0; f < 100; f++) {
    ASSERT_OK(vtl_params_at(b, f, &p));
    same += p.seed == seeds[f];
  }
  ASSERT_LE(same, 2);
  /* cadence 3: one seed per diffused frame */
  track(a, 2, VTL_PARAM_CADENCE, 0);
  key(a, 10, 2, 0, 3, VTL_INTERP_HOLD, NULL);
  for (int64_t f = 0; f < 30; f++) {
    vtl_params q;
    ASSERT_OK(vtl_params_at(a, f, &p));
    ASSERT_OK(vtl_params_at(a, f - f % 3, &q));
    ASSERT_EQ(p.seed, q.seed);
    ASSERT_EQ(p.seed, seeds[f / 3]);
  }
  vtl_doc_free(a);
  vtl_doc_free(b);
  return 0;
}

TEST_IMPL(seed_schedule) {
  vtl_doc *doc = new_doc();
  tl_int(doc, "seed", 31);
  tl_int(doc, "seed_mode", VTL_SEED_SCHEDULE);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 9, &p));
  ASSERT_EQ(p.seed, 31); /* no track: the timeline's seed, not advanced */
  track(doc, 2, VTL_PARAM_SEED, 0);
  key(doc, 10, 2, 0, 100, VTL_INTERP_HOLD, NULL);
  key(doc, 11, 2, 10, 200, VTL_INTERP_LINEAR, NULL);
  key(doc, 12, 2, 20, 300, VTL_INTERP_HOLD, "t * 1000 + 0.9");
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_EQ(p.seed, 100);
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  /* linear from 200 to the expression's 20000.9 at frame 20, truncated */
  ASSERT_EQ(p.seed, (int64_t)(200 + (20000.9 - 200) * 0.5));
  ASSERT_EQ(p.seed, (int64_t)p.values[VTL_PARAM_SEED]);
  ASSERT_OK(vtl_params_at(doc, 15, &p));
  ASSERT_OK(vtl_params_at(doc, 25, &p));
  ASSERT_EQ(p.seed, 25000);
  /* a shot's own seed does not replace the schedule */
  shot(doc, 30, 0, VTL_SOURCE_NOISE, 0, 999, 0.5);
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_EQ(p.seed, 100);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(seed_wrap) {
  vtl_doc *doc = new_doc();
  tl_int(doc, "seed", 4294967295ll);
  tl_int(doc, "seed_mode", VTL_SEED_ITER);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 0, &p));
  ASSERT_EQ(p.seed, 4294967295ll);
  ASSERT_OK(vtl_params_at(doc, 1, &p));
  ASSERT_EQ(p.seed, 0);
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT_EQ(p.seed, 4);
  tl_int(doc, "seed_mode", VTL_SEED_LADDER);
  ASSERT_OK(vtl_params_at(doc, 1, &p));
  ASSERT_EQ(p.seed, 1);
  tl_int(doc, "seed_mode", VTL_SEED_FIXED);
  ASSERT_OK(vtl_params_at(doc, 77, &p));
  ASSERT_EQ(p.seed, 4294967295ll);
  vtl_doc_free(doc);
  return 0;
}

/* ---- shots ----------------------------------------------------------------- */

TEST_IMPL(shots_source) {
  vtl_doc *doc = new_doc();
  vtl_params p;
  /* no shots: one implicit shot from noise starting at 0 */
  ASSERT_OK(vtl_params_at(doc, 0, &p));
  ASSERT_EQ(p.shot, 0);
  ASSERT(p.first_frame);
  ASSERT_EQ(p.source, VTL_SOURCE_NOISE);
  ASSERT_EQ(p.source_asset, 0);
  ASSERT_NEAR(p.source_strength, 1, 0);
  ASSERT_OK(vtl_params_at(doc, 5, &p));
  ASSERT(!p.first_frame);

  asset(doc, 100, "aa");
  shot(doc, 30, 20, VTL_SOURCE_NOISE, 0, -1, 0.3);
  shot(doc, 31, 50, VTL_SOURCE_IMAGE, 100, -1, 0.6);
  shot(doc, 32, 100, VTL_SOURCE_BLACK, 0, -1, 0.9);
  ASSERT_OK(vtl_params_at(doc, 10, &p)); /* before the first shot */
  ASSERT_EQ(p.shot, 0);
  ASSERT_EQ(p.shot_start, 0);
  ASSERT(!p.first_frame);
  struct { int64_t f; vtl_id shot; int64_t start; bool first; int64_t src;
           vtl_id asset; double strength; } want[] = {
    {20, 30, 20, true, VTL_SOURCE_NOISE, 0, 1},
    {49, 30, 20, false, VTL_SOURCE_NOISE, 0, 1},
    {50, 31, 50, true, VTL_SOURCE_IMAGE, 100, 0.6},
    {51, 31, 50, false, VTL_SOURCE_IMAGE, 100, 0.6},
    {99, 31, 50, false, VTL_SOURCE_IMAGE, 100, 0.6},
    {100, 32, 100, true, VTL_SOURCE_BLACK, 0, 1},
    {119, 32, 100, false, VTL_SOURCE_BLACK, 0, 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    ASSERT_OK(vtl_params_at(doc, want[i].f, &p));
    ASSERT_U64_EQ(p.shot, want[i].shot);
    ASSERT_EQ(p.shot_start, want[i].start);
    ASSERT_EQ(p.first_frame, want[i].first);
    ASSERT_EQ(p.source, want[i].src);
    ASSERT_U64_EQ(p.source_asset, want[i].asset);
    ASSERT_NEAR(p.source_strength, want[i].strength, 0);
  }
  /* moving a shot re-cuts the film */
  set_int(doc, VTL_ENT_SHOT, 32, "start", 30);
  ASSERT_OK(vtl_params_at(doc, 40, &p));
  ASSERT_U64_EQ(p.shot, 32);
  ASSERT_OK(vtl_params_at(doc, 30, &p));
  ASSERT(p.first_frame);
  vtl_doc_free(doc);
  return 0;
}

/* Two shots cut at the same frame: the one with the lowest id holds it
 * (docs/timeline-format.md, Evaluation 7), whatever the creation order. */
TEST_IMPL(shots_same_start) {
  for (int order = 0; order < 2; order++) {
    vtl_doc *doc = new_doc();
    if (order == 0) {
      shot(doc, 30, 20, VTL_SOURCE_NOISE, 0, 5, 0.5);
      shot(doc, 31, 20, VTL_SOURCE_BLACK, 0, 6, 0.5);
    } else {
      shot(doc, 31, 20, VTL_SOURCE_BLACK, 0, 6, 0.5);
      shot(doc, 30, 20, VTL_SOURCE_NOISE, 0, 5, 0.5);
    }
    shot(doc, 29, 40, VTL_SOURCE_NOISE, 0, 7, 0.5);
    vtl_params p;
    for (int64_t f = 20; f < 40; f += 19) {
      ASSERT_OK(vtl_params_at(doc, f, &p));
      ASSERT_U64_EQ(p.shot, 30);
      ASSERT_EQ(p.source, VTL_SOURCE_NOISE);
      ASSERT_EQ(p.seed, deforum_seed(VTL_SEED_ITER, 5, 1, f - 20));
    }
    ASSERT_OK(vtl_params_at(doc, 40, &p));
    ASSERT_U64_EQ(p.shot, 29);
    vtl_doc_free(doc);
  }
  return 0;
}

/* ---- dependency hash ---------------------------------------------------------- */

#define HN 120 /* frames hashed */

static void hashes(vtl_doc *doc, uint64_t *h) {
  for (int64_t f = 0; f < HN; f++) {
    vtl_params p;
    CHECK(vtl_params_at(doc, f, &p));
    h[f] = p.dep_hash;
  }
}

/* Frames [0, from) keep their hash, frames [from, HN) all change. */
static int changed_from(const uint64_t *before, const uint64_t *after,
                        int64_t from) {
  for (int64_t f = 0; f < HN; f++) {
    if (f < from && before[f] != after[f])
      TEST_FAIL_("frame %" PRId64 " changed (expected from %" PRId64 ")", f,
                 from);
    if (f >= from && before[f] == after[f])
      TEST_FAIL_("frame %" PRId64 " unchanged (expected from %" PRId64 ")", f,
                 from);
  }
  return 0;
}

TEST_IMPL(dep_hash_keys) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  key(doc, 10, 2, 10, 1.0, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 20, 1.2, VTL_INTERP_LINEAR, NULL);
  key(doc, 12, 2, 30, 1.1, VTL_INTERP_LINEAR, NULL);
  uint64_t h0[HN], h1[HN];
  hashes(doc, h0);
  /* different key windows give different hashes */
  ASSERT(h0[5] != h0[15] && h0[15] != h0[25]);
  /* the key at 30: frames from 20 on (20..30 interpolates toward it) */
  set_real(doc, VTL_ENT_KEYFRAME, 12, "value", 1.3);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 20));
  ASSERT_NEAR(val(doc, VTL_PARAM_ZOOM, 19), 1.0 + 0.2 * 0.9, 1e-12);
  /* back to the old value: back to the old hashes */
  set_real(doc, VTL_ENT_KEYFRAME, 12, "value", 1.1);
  hashes(doc, h1);
  ASSERT(memcmp(h0, h1, sizeof h0) == 0);
  /* its interp, handles and expression count as well */
  set_int(doc, VTL_ENT_KEYFRAME, 12, "interp", VTL_INTERP_HOLD);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 20));
  set_int(doc, VTL_ENT_KEYFRAME, 12, "interp", VTL_INTERP_LINEAR);
  set_real(doc, VTL_ENT_KEYFRAME, 12, "in_dv", 0.5);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 20));
  set_real(doc, VTL_ENT_KEYFRAME, 12, "in_dv", 0);
  /* the key at 20: from 10 on; the first key: every frame */
  set_real(doc, VTL_ENT_KEYFRAME, 11, "value", 2);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 10));
  set_real(doc, VTL_ENT_KEYFRAME, 11, "value", 1.2);
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", 0.5);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 0));
  set_real(doc, VTL_ENT_KEYFRAME, 10, "value", 1.0);
  /* a new key at 40: from 30 on */
  key(doc, 13, 2, 40, 3, VTL_INTERP_LINEAR, NULL);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 30));
  del(doc, VTL_ENT_KEYFRAME, 13);
  hashes(doc, h1);
  ASSERT(memcmp(h0, h1, sizeof h0) == 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(dep_hash_cosmetic) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  key(doc, 10, 2, 10, 1.0, VTL_INTERP_LINEAR, NULL);
  key(doc, 11, 2, 20, 1.2, VTL_INTERP_LINEAR, NULL);
  track(doc, 3, VTL_PARAM_ZOOM, 5);   /* not driving */
  key(doc, 30, 3, 0, 7, VTL_INTERP_LINEAR, NULL);
  track(doc, 4, VTL_PARAM_ANGLE, 0);  /* muted */
  set_bool(doc, VTL_ENT_TRACK, 4, "mute", true);
  key(doc, 40, 4, 0, 7, VTL_INTERP_LINEAR, NULL);
  track(doc, 5, VTL_TARGET_PROMPT, 0);
  asset(doc, 100, "aa");
  shot(doc, 50, 30, VTL_SOURCE_IMAGE, 100, -1, 0.5);
  uint64_t h0[HN], h1[HN];
  hashes(doc, h0);
  vtl_op m;
  CHECK(vtl_op_create(&m, VTL_ENT_MARKER, 60));
  CHECK(vtl_op_add_int(&m, "frame", 15));
  CHECK(vtl_op_add_str(&m, "label", "beat"));
  must(doc, m);
  set_str(doc, VTL_ENT_TRACK, 2, "name", "renamed");
  set_int(doc, VTL_ENT_TRACK, 2, "color", 0x123456);
  set_bool(doc, VTL_ENT_TRACK, 2, "lock", true);
  set_str(doc, VTL_ENT_TIMELINE, 1, "name", "new title");
  set_str(doc, VTL_ENT_SHOT, 50, "name", "the cut");
  set_str(doc, VTL_ENT_ASSET, 100, "name", "photo.png");
  set_str(doc, VTL_ENT_ASSET, 100, "mime", "image/png");
  set_int(doc, VTL_ENT_ASSET, 100, "size", 12345);
  /* keys of tracks that drive nothing */
  set_real(doc, VTL_ENT_KEYFRAME, 30, "value", 8);
  key(doc, 31, 3, 50, 9, VTL_INTERP_LINEAR, NULL);
  set_real(doc, VTL_ENT_KEYFRAME, 40, "value", 8);
  hashes(doc, h1);
  ASSERT(memcmp(h0, h1, sizeof h0) == 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(dep_hash_timeline) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  key(doc, 10, 2, 10, 1.0, VTL_INTERP_LINEAR, NULL);
  uint64_t h0[HN], h1[HN];
  hashes(doc, h0);
  static const struct { const char *f; int64_t v; } ints[] = {
    {"steps", 21}, {"seed", 5}, {"width", 520}, {"sampler", 1},
    {"seed_mode", VTL_SEED_FIXED}, {"anim_mode", VTL_ANIM_3D},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    const vtl_field_desc *fd =
        &vtl_entities[VTL_ENT_TIMELINE].fields[vtl_field_lookup(VTL_ENT_TIMELINE, ints[i].f)];
    int64_t old = *(const int64_t *)((const char *)vtl_doc_timeline(doc) + fd->offset);
    tl_int(doc, ints[i].f, ints[i].v);
    hashes(doc, h1);
    ASSERT_OK(changed_from(h0, h1, 0));
    tl_int(doc, ints[i].f, old);
  }
  tl_real(doc, "guidance", 8);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 0));
  tl_real(doc, "guidance", 7.5);
  set_str(doc, VTL_ENT_TIMELINE, 1, "model", "other.ckpt");
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 0));
  set_str(doc, VTL_ENT_TIMELINE, 1, "model", "");
  hashes(doc, h1);
  ASSERT(memcmp(h0, h1, sizeof h0) == 0);
  /* muting or reordering a track may change which one drives: all */
  set_bool(doc, VTL_ENT_TRACK, 2, "mute", true);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 0));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(dep_hash_clip) {
  vtl_doc *doc = new_doc();
  track(doc, 2, VTL_TARGET_PROMPT, 0);
  clip(doc, 20, 2, 0, 30, "a", "", 1, 0, 0);
  uint64_t h0[HN], h1[HN];
  hashes(doc, h0);
  clip(doc, 21, 2, 50, 60, "b", "", 1, 0, 0);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 50));
  hashes(doc, h0);
  /* its text, then its start moved earlier */
  set_str(doc, VTL_ENT_PROMPT_CLIP, 21, "text", "c");
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 50));
  hashes(doc, h0);
  set_int(doc, VTL_ENT_PROMPT_CLIP, 21, "start", 40);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 40));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(dep_hash_shot_asset) {
  vtl_doc *doc = new_doc();
  asset(doc, 100, "aa");
  asset(doc, 101, "bb");
  shot(doc, 30, 0, VTL_SOURCE_NOISE, 0, -1, 0.5);
  shot(doc, 31, 40, VTL_SOURCE_IMAGE, 100, -1, 0.5);
  uint64_t h0[HN], h1[HN];
  hashes(doc, h0);
  set_str(doc, VTL_ENT_ASSET, 100, "sha256", "cc");
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 40));
  hashes(doc, h0);
  set_str(doc, VTL_ENT_ASSET, 101, "sha256", "dd"); /* used by no shot */
  hashes(doc, h1);
  ASSERT(memcmp(h0, h1, sizeof h0) == 0);
  set_real(doc, VTL_ENT_SHOT, 31, "strength", 0.9);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 40));
  hashes(doc, h0);
  shot(doc, 32, 80, VTL_SOURCE_BLACK, 0, -1, 0.5);
  hashes(doc, h1);
  ASSERT_OK(changed_from(h0, h1, 80));
  vtl_doc_free(doc);
  return 0;
}

/* Builds the same document in two different op orders. */
static void build_a(vtl_doc *doc) {
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  track(doc, 3, VTL_TARGET_PROMPT, 0);
  key(doc, 10, 2, 0, 1, VTL_INTERP_EASE_IN, NULL);
  key(doc, 11, 2, 30, 2, VTL_INTERP_LINEAR, "1 + t / 30");
  key(doc, 12, 2, 60, 1, VTL_INTERP_LINEAR, NULL);
  clip(doc, 20, 3, 0, 40, "x", "", 1, 0, 5);
  clip(doc, 21, 3, 35, 90, "y", "", 1, 5, 0);
  asset(doc, 100, "aa");
  shot(doc, 30, 0, VTL_SOURCE_NOISE, 0, -1, 0.5);
  shot(doc, 31, 45, VTL_SOURCE_IMAGE, 100, 3, 0.5);
  tl_int(doc, "seed_mode", VTL_SEED_LADDER);
}

static void build_b(vtl_doc *doc) {
  asset(doc, 100, "zz");
  tl_int(doc, "seed_mode", VTL_SEED_LADDER);
  shot(doc, 31, 45, VTL_SOURCE_IMAGE, 100, 3, 0.5);
  track(doc, 3, VTL_TARGET_PROMPT, 0);
  clip(doc, 21, 3, 35, 90, "y", "", 1, 5, 0);
  track(doc, 2, VTL_PARAM_ZOOM, 0);
  key(doc, 12, 2, 60, 1, VTL_INTERP_LINEAR, NULL);
  key(doc, 99, 2, 61, 1, VTL_INTERP_LINEAR, NULL);
  shot(doc, 30, 0, VTL_SOURCE_NOISE, 0, -1, 0.5);
  key(doc, 11, 2, 30, 2, VTL_INTERP_LINEAR, "1 + t / 30");
  clip(doc, 20, 3, 0, 40, "x", "", 1, 0, 5);
  key(doc, 10, 2, 0, 1, VTL_INTERP_EASE_IN, NULL);
  del(doc, VTL_ENT_KEYFRAME, 99);
  set_str(doc, VTL_ENT_ASSET, 100, "sha256", "aa");
}

TEST_IMPL(dep_hash_pure) {
  vtl_doc *a = new_doc(), *b = new_doc();
  build_a(a);
  build_b(b);
  for (int64_t f = 0; f < 120; f++) {
    vtl_params p, q;
    ASSERT_OK(vtl_params_at(a, f, &p));
    ASSERT_OK(vtl_params_at(b, f, &q));
    ASSERT_U64_EQ(p.dep_hash, q.dep_hash);
    ASSERT_EQ(p.seed, q.seed);
    ASSERT(memcmp(p.values, q.values, sizeof p.values) == 0);
    ASSERT_EQ(p.nprompts, q.nprompts);
    for (int i = 0; i < p.nprompts; i++) {
      ASSERT_STR_EQ(p.prompts[i].text, q.prompts[i].text);
      ASSERT_NEAR(p.prompts[i].weight, q.prompts[i].weight, 0);
    }
  }
  vtl_doc_free(a);
  vtl_doc_free(b);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(curve_hold)
  TEST_ENTRY(curve_linear)
  TEST_ENTRY(curve_bezier)
  TEST_ENTRY(curve_ease_presets)
  TEST_ENTRY(eval_before_after_keys)
  TEST_ENTRY(eval_keys_same_frame)
  TEST_ENTRY(eval_expression_segment)
  TEST_ENTRY(eval_linear_toward_expr)
  TEST_ENTRY(eval_expr_failure)
  TEST_ENTRY(eval_integer_truncate)
  TEST_ENTRY(eval_enum_hold)
  TEST_ENTRY(eval_clamp)
  TEST_ENTRY(eval_driver_selection)
  TEST_ENTRY(eval_timeline_fallbacks)
  TEST_ENTRY(eval_frame_clamp)
  TEST_ENTRY(eval_param_at)
  TEST_ENTRY(prompts_single)
  TEST_ENTRY(prompts_crossfade)
  TEST_ENTRY(prompts_merge)
  TEST_ENTRY(prompts_gaps_mute)
  TEST_ENTRY(prompts_zero_weights)
  TEST_ENTRY(prompts_heaviest_kept)
  TEST_ENTRY(seed_modes)
  TEST_ENTRY(seed_shot_cadence)
  TEST_ENTRY(seed_random)
  TEST_ENTRY(seed_schedule)
  TEST_ENTRY(seed_wrap)
  TEST_ENTRY(shots_source)
  TEST_ENTRY(shots_same_start)
  TEST_ENTRY(dep_hash_keys)
  TEST_ENTRY(dep_hash_cosmetic)
  TEST_ENTRY(dep_hash_timeline)
  TEST_ENTRY(dep_hash_clip)
  TEST_ENTRY(dep_hash_shot_asset)
  TEST_ENTRY(dep_hash_pure)
)
