/* timeline_bench.c — how fast the document model is on a feature-film-sized
 * timeline.
 *
 *   cmake --build build --target timeline_bench && ./build/bench/timeline_bench
 *   ./build/bench/timeline_bench -n 10     best of 10 instead of 5
 *
 * The document (make_doc): 10,000 frames at 24 fps; 50 keyframe tracks x
 * 200 keys (the first 20 drive one parameter each, the other 30 are
 * alternates with a higher order, a fifth of all tracks muted); a realistic
 * mix of interpolations and ~10% of the keys with a Lua expression such as
 * 1+0.002*sin(1.25*3.14*t/30); two prompt tracks (100 crossfading story
 * clips, 10 style clips); 40 shots, every 4th from an image asset; 50
 * markers.
 *
 * Rows (each timed N times, the best kept; a row is one repetition's work):
 *   eval warm       vtl_params_at for frames 0..9999, eval cache built
 *   eval cold       the same right after an apply (cache rebuilt on the
 *                   first frame, expression chunks still compiled)
 *   apply 1 op      1-op batches setting a keyframe's value, inverse kept
 *                   (the server's path: every op is its own batch + undo)
 *   apply 1 op+eval the same followed by one vtl_params_at (edit, preview)
 *   apply expr      1-op batches setting a keyframe's expression (compile)
 *   apply 100 ops   100-op batches of set-value ops
 *   json export     vtl_json_export of the whole document
 *   json import     vtl_json_import of that export
 * No row asserts anything: this is a measuring program, not a test.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vtl_import.h"
#include "vtl_timeline.h"

#define LENGTH 10000     /* frames */
#define NTRACKS 50       /* keyframe tracks */
#define NKEYS 200        /* keys per track */
#define NCLIPS_STORY 100
#define NCLIPS_STYLE 10
#define NSHOTS 40
#define NASSETS 10
#define NMARKERS 50

/* Id ranges per kind, so that benchmarks can address entities directly. */
#define TRACK_ID(i) ((vtl_id)(100 + (i)))
#define KEY_ID(t, k) ((vtl_id)(10000 + (t) * NKEYS + (k)))
#define CLIP_ID(i) ((vtl_id)(200000 + (i)))
#define SHOT_ID(i) ((vtl_id)(300000 + (i)))
#define ASSET_ID(i) ((vtl_id)(400000 + (i)))
#define MARKER_ID(i) ((vtl_id)(500000 + (i)))

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) { /* xorshift64*: deterministic across runs */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}
static double rnd01(void) { return (double)(rng() >> 11) / 9007199254740992.0; }
static int rnd(int n) { return (int)(rng() % (uint64_t)n); }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(int rc, const char *what, const vtl_error *err) {
  if (!rc) return;
  fprintf(stderr, "timeline_bench: %s: %s%s%s\n", what, vtl_err_name(rc),
          err ? ": " : "", err ? err->message : "");
  exit(1);
}

/* A growable op batch. */
typedef struct {
  vtl_op *ops;
  size_t n, cap;
} batch;

static vtl_op *push(batch *b) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 256;
    b->ops = realloc(b->ops, b->cap * sizeof *b->ops);
    if (!b->ops) check(VTL_ENOMEM, "realloc", NULL);
  }
  return &b->ops[b->n++];
}

/* ---- the document ------------------------------------------------------------------ */

/* Parameter ranges are wide (translation +-1e4); keys stay in a plausible
 * band around the default instead. */
static double plausible(int param) {
  const vtl_param_desc *d = &vtl_param_table[param];
  double span = fmin(d->max - d->min, 10.0) * 0.05;
  double v = d->def + span * (rnd01() - 0.5);
  if (d->kind != 'R') v = floor(v + 0.5 * span * rnd01() * 20);
  return fmin(d->max, fmax(d->min, v));
}

static const char *const expr_forms[] = {
  "1+%.3f*sin(1.25*3.14*t/30)", "%.3f*cos(t/24)",
  "where(t %% 48 < 24, %.3f, 0)", "abs(sin(pi*s))*%.3f",
  "%.3f + 0.01*t/max_f"};

static vtl_doc *make_doc(size_t *nexpr) {
  vtl_doc *doc;
  vtl_error err;
  check(vtl_doc_new(&doc), "vtl_doc_new", NULL);
  batch b = {0};
  vtl_op *op;

  op = push(&b);
  check(vtl_op_set_int(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "length", LENGTH),
        "op", NULL);
  op = push(&b);
  vtl_op_set_real(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "fps", 24);
  op = push(&b);
  vtl_op_set_str(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "name", "bench film");

  for (int a = 0; a < NASSETS; a++) {
    char name[32];
    snprintf(name, sizeof name, "plate%02d.png", a);
    op = push(&b);
    vtl_op_create(op, VTL_ENT_ASSET, ASSET_ID(a));
    vtl_op_add_str(op, "name", name);
    vtl_op_add_str(op, "mime", "image/png");
    vtl_op_add_int(op, "size", 500000 + a);
  }

  static const vtl_interp mix[20] = {
    VTL_INTERP_LINEAR, VTL_INTERP_LINEAR, VTL_INTERP_LINEAR, VTL_INTERP_LINEAR,
    VTL_INTERP_LINEAR, VTL_INTERP_LINEAR, VTL_INTERP_LINEAR, VTL_INTERP_LINEAR,
    VTL_INTERP_EASE_IN_OUT, VTL_INTERP_EASE_IN_OUT, VTL_INTERP_EASE_IN_OUT,
    VTL_INTERP_EASE_IN_OUT, VTL_INTERP_BEZIER, VTL_INTERP_BEZIER,
    VTL_INTERP_BEZIER, VTL_INTERP_HOLD, VTL_INTERP_HOLD, VTL_INTERP_EASE_IN,
    VTL_INTERP_EASE_OUT, VTL_INTERP_EASE_OUT};
  *nexpr = 0;
  for (int t = 0; t < NTRACKS; t++) {
    int param = t % VTL_PARAM__COUNT;
    op = push(&b);
    vtl_op_create(op, VTL_ENT_TRACK, TRACK_ID(t));
    vtl_op_add_str(op, "name", vtl_param_table[param].name);
    vtl_op_add_int(op, "target", param);
    vtl_op_add_int(op, "order", t);
    vtl_op_add_bool(op, "mute", t >= VTL_PARAM__COUNT && t % 5 == 0);
    for (int k = 0; k < NKEYS; k++) {
      vtl_interp in = mix[rnd(20)];
      op = push(&b);
      vtl_op_create(op, VTL_ENT_KEYFRAME, KEY_ID(t, k));
      vtl_op_add_int(op, "track", (int64_t)TRACK_ID(t));
      vtl_op_add_int(op, "frame", k * (LENGTH / NKEYS) + rnd(LENGTH / NKEYS / 2));
      vtl_op_add_real(op, "value", plausible(param));
      vtl_op_add_int(op, "interp", in);
      if (in == VTL_INTERP_BEZIER) {
        vtl_op_add_real(op, "out_dt", 5 + rnd(10));
        vtl_op_add_real(op, "out_dv", 0.01 * (rnd01() - 0.5));
        vtl_op_add_real(op, "in_dt", -5.0 - rnd(10));
      }
      if (rnd(10) == 0) {
        char src[96];
        snprintf(src, sizeof src, expr_forms[rnd(5)], 0.001 * (1 + rnd(20)));
        vtl_op_add_str(op, "expr", src);
        ++*nexpr;
      }
    }
  }

  vtl_id story = TRACK_ID(NTRACKS), style = TRACK_ID(NTRACKS + 1);
  op = push(&b);
  vtl_op_create(op, VTL_ENT_TRACK, story);
  vtl_op_add_int(op, "target", VTL_TARGET_PROMPT);
  vtl_op_add_str(op, "name", "story");
  op = push(&b);
  vtl_op_create(op, VTL_ENT_TRACK, style);
  vtl_op_add_int(op, "target", VTL_TARGET_PROMPT);
  vtl_op_add_str(op, "name", "style");
  vtl_op_add_int(op, "order", 1);
  for (int c = 0; c < NCLIPS_STORY + NCLIPS_STYLE; c++) {
    bool st = c >= NCLIPS_STORY;
    int i = st ? c - NCLIPS_STORY : c, len = st ? 1000 : 100;
    char text[160];
    snprintf(text, sizeof text, st ? "style %d: oil on canvas, muted palette"
             : "scene %d: a lighthouse keeper walks the cliffs at dusk, "
               "volumetric fog, 35mm", i);
    op = push(&b);
    vtl_op_create(op, VTL_ENT_PROMPT_CLIP, CLIP_ID(c));
    vtl_op_add_int(op, "track", (int64_t)(st ? style : story));
    vtl_op_add_int(op, "start", i * len);
    vtl_op_add_int(op, "end", i * len + len + (st ? 0 : 24));
    vtl_op_add_str(op, "text", text);
    vtl_op_add_str(op, "negative", "blurry, watermark, text");
    vtl_op_add_real(op, "weight", st ? 0.4 : 1.0);
    vtl_op_add_int(op, "fade_in", st ? 0 : 24);
    vtl_op_add_int(op, "fade_out", st ? 0 : 24);
  }
  for (int s = 0; s < NSHOTS; s++) {
    op = push(&b);
    vtl_op_create(op, VTL_ENT_SHOT, SHOT_ID(s));
    vtl_op_add_int(op, "start", s * (LENGTH / NSHOTS));
    if (s % 4 == 0) {
      vtl_op_add_int(op, "source", VTL_SOURCE_IMAGE);
      vtl_op_add_int(op, "asset", (int64_t)ASSET_ID(s / 4 % NASSETS));
    }
    if (s % 3 == 0) vtl_op_add_int(op, "seed", 1000 + s);
  }
  for (int m = 0; m < NMARKERS; m++) {
    op = push(&b);
    vtl_op_create(op, VTL_ENT_MARKER, MARKER_ID(m));
    vtl_op_add_int(op, "frame", m * (LENGTH / NMARKERS));
    vtl_op_add_str(op, "label", "beat");
  }
  check(vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &err), "building", &err);
  vtl_ops_free(b.ops, b.n);
  return doc;
}

/* ---- measurements ----------------------------------------------------------------- */

typedef struct {
  const char *name;
  double best;   /* seconds, best repetition */
  double units;  /* per repetition: frames, ops or bytes */
  const char *unit;
} row;

static double sink; /* keeps results alive */

static double eval_all(vtl_doc *doc) {
  vtl_params p;
  double t0 = now();
  for (int64_t f = 0; f < LENGTH; f++) {
    check(vtl_params_at(doc, f, &p), "vtl_params_at", NULL);
    sink += p.values[VTL_PARAM_ZOOM] + p.nerrors;
  }
  return now() - t0;
}

static void set_value_op(vtl_op *op) {
  int t = rnd(NTRACKS), k = rnd(NKEYS);
  vtl_op_set_real(op, VTL_ENT_KEYFRAME, KEY_ID(t, k), "value",
                  plausible(t % VTL_PARAM__COUNT));
}

/* n 1-op batches; with eval, one vtl_params_at after each. */
static double apply_singles(vtl_doc *doc, int n, bool eval, bool expr) {
  double t = 0;
  for (int i = 0; i < n; i++) {
    vtl_op op, *inv;
    size_t ninv;
    vtl_error err;
    vtl_params p;
    if (expr) {
      char src[96];
      int tr = rnd(VTL_PARAM__COUNT);
      tr = vtl_param_table[tr].kind == 'R' ? tr : VTL_PARAM_ZOOM;
      snprintf(src, sizeof src, expr_forms[rnd(5)], 0.001 * (1 + rnd(1000)));
      vtl_op_set_str(&op, VTL_ENT_KEYFRAME, KEY_ID(tr, rnd(NKEYS)), "expr", src);
    } else {
      set_value_op(&op);
    }
    double t0 = now();
    check(vtl_doc_apply(doc, &op, 1, &inv, &ninv, &err), "apply", &err);
    if (eval) check(vtl_params_at(doc, rnd(LENGTH), &p), "vtl_params_at", NULL);
    t += now() - t0;
    /* expressions are undone (untimed) so the document keeps its mix */
    if (expr) check(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err), "undo", &err);
    vtl_ops_free(inv, ninv);
    vtl_op_free(&op);
  }
  return t;
}

static double apply_batches(vtl_doc *doc, int nbatches, int per) {
  vtl_op *ops = calloc((size_t)per, sizeof *ops);
  double t = 0;
  for (int i = 0; i < nbatches; i++) {
    vtl_op *inv;
    size_t ninv;
    vtl_error err;
    for (int j = 0; j < per; j++) set_value_op(&ops[j]);
    double t0 = now();
    check(vtl_doc_apply(doc, ops, (size_t)per, &inv, &ninv, &err), "apply", &err);
    t += now() - t0;
    vtl_ops_free(inv, ninv);
    for (int j = 0; j < per; j++) vtl_op_free(&ops[j]);
  }
  free(ops);
  return t;
}

static void keep_best(row *r, double t) {
  if (r->best == 0 || t < r->best) r->best = t;
}

int main(int argc, char **argv) {
  int reps = 5;
  if (argc == 3 && strcmp(argv[1], "-n") == 0) reps = atoi(argv[2]);
  if (reps < 1 || (argc != 1 && argc != 3)) {
    fprintf(stderr, "usage: timeline_bench [-n REPETITIONS]\n");
    return 2;
  }
  size_t nexpr;
  double t0 = now();
  vtl_doc *doc = make_doc(&nexpr);
  double build = now() - t0;

  char *json = NULL;
  check(vtl_json_export(doc, &json), "export", NULL);
  size_t json_len = strlen(json);

  enum { SINGLES = 20000, SINGLES_EVAL = 2000, EXPRS = 2000, BATCHES = 200 };
  row rows[] = {
    {"eval 10k frames, warm cache", 0, LENGTH, "frames"},
    {"eval 10k frames, after an apply", 0, LENGTH, "frames"},
    {"apply 1-op batch (set value)", 0, SINGLES, "ops"},
    {"apply 1-op batch + params_at", 0, SINGLES_EVAL, "ops"},
    {"apply 1-op batch (set expr)", 0, EXPRS, "ops"},
    {"apply 100-op batches", 0, BATCHES * 100, "ops"},
    {"json export", 0, (double)json_len, "bytes"},
    {"json import", 0, (double)json_len, "bytes"},
  };
  eval_all(doc); /* compile the expressions once */
  for (int r = 0; r < reps; r++) {
    keep_best(&rows[0], eval_all(doc));
    vtl_op op;
    set_value_op(&op);
    check(vtl_doc_apply(doc, &op, 1, NULL, NULL, NULL), "apply", NULL);
    vtl_op_free(&op);
    keep_best(&rows[1], eval_all(doc));
    keep_best(&rows[2], apply_singles(doc, SINGLES, false, false));
    keep_best(&rows[3], apply_singles(doc, SINGLES_EVAL, true, false));
    keep_best(&rows[4], apply_singles(doc, EXPRS, false, true));
    keep_best(&rows[5], apply_batches(doc, BATCHES, 100));

    char *out;
    double s = now();
    check(vtl_json_export(doc, &out), "export", NULL);
    keep_best(&rows[6], now() - s);
    free(out);
    vtl_doc *in;
    vtl_error err;
    s = now();
    check(vtl_json_import(json, json_len, &in, &err), "import", &err);
    keep_best(&rows[7], now() - s);
    vtl_doc_free(in);
  }

  printf("vtl timeline_bench: %d tracks x %d keys (%zu with expressions), "
         "%d clips, %d shots, %d frames; JSON %.2f MB; built in %.0f ms\n",
         NTRACKS, NKEYS, nexpr, NCLIPS_STORY + NCLIPS_STYLE, NSHOTS, LENGTH,
         json_len / 1e6, build * 1e3);
  printf("best of %d\n\n", reps);
  printf("%-34s %12s %12s %16s\n", "measure", "work", "time", "rate");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const row *r = &rows[i];
    char work[32], rate[32];
    if (!strcmp(r->unit, "bytes")) {
      snprintf(work, sizeof work, "%.2f MB", r->units / 1e6);
      snprintf(rate, sizeof rate, "%.1f MB/s", r->units / 1e6 / r->best);
    } else {
      snprintf(work, sizeof work, "%.0f %s", r->units, r->unit);
      snprintf(rate, sizeof rate, "%.0f %s/s", r->units / r->best, r->unit);
    }
    printf("%-34s %12s %9.2f ms %16s\n", r->name, work, r->best * 1e3, rate);
  }
  printf("%-34s %12s %9.2f us\n", "  per op, apply + params_at", "",
         rows[3].best / rows[3].units * 1e6);
  free(json);
  vtl_doc_free(doc);
  return sink == 42.4242 ? 3 : 0; /* never: only uses sink */
}
