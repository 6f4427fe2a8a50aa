/* test_deforum.c — Deforum settings import and export (timeline/deforum_*.c).
 *
 *   deforum_<file>            every frame of tests/data/deforum/<file>.json
 *                             against <file>.expected.json, what Deforum's
 *                             own algorithm gives (tests/deforum_reference.py,
 *                             pandas + numexpr; regenerate with the command
 *                             in its header): every mapped parameter, the
 *                             seed of every diffused frame, the prompt
 *                             weights held and (blend_prompts) crossfaded
 *   deforum_mapping           timeline fields, tracks and keys of one file
 *   deforum_warnings          unsupported / ignored / unknown keys listed
 *   deforum_schedule_syntax   numbers vs expressions, bare values, quoted
 *                             and max_f frames, duplicates, keys past the
 *                             end, no key at 0, numexpr names
 *   deforum_colab_cond_uncond Colab 0.7.1's separate negative series, and
 *                             A1111's stray "--neg" in the negative field
 *   deforum_errors            each refused file: the code, the key named in
 *                             the message, *out untouched
 *   deforum_roundtrip         import -> export -> import: equal documents
 *   deforum_export_shapes     hold, bezier, ease and Lua-only expressions
 *                             exported so that Deforum gets the same values
 *   deforum_export_prompts    crossfaded clips and their warnings
 *   deforum_null_lists        warnings and err may be NULL
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "task.h"
#include "vtl_import.h"
#include "vtl_timeline.h"

#ifdef VTL_SOURCE_DIR
#define DATA_DIR VTL_SOURCE_DIR "/tests/data/deforum/"
#else
#define DATA_DIR "tests/data/deforum/"
#endif

/* ---- helpers -------------------------------------------------------------- */

static char *read_file(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", DATA_DIR, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

static int param_index(const char *name) {
  for (int i = 0; i < VTL_PARAM__COUNT; i++)
    if (strcmp(vtl_param_table[i].name, name) == 0) return i;
  return -1;
}

static bool has_warning(const vtl_warnings *w, const char *needle) {
  for (size_t i = 0; i < w->n; i++)
    if (strstr(w->items[i], needle)) return true;
  return false;
}

static void print_warnings(const vtl_warnings *w) {
  for (size_t i = 0; i < w->n; i++) fprintf(stderr, "  warning: %s\n", w->items[i]);
}

/* Imports a JSON string; returns the doc or NULL (err filled). */
static vtl_doc *import_str(const char *json, bool blend, vtl_warnings *w,
                           vtl_error *err) {
  vtl_deforum_options opt = {blend};
  vtl_doc *doc = NULL;
  if (vtl_deforum_import(json, strlen(json), &opt, &doc, w, err)) return NULL;
  return doc;
}

static bool near(double a, double b) {
  return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

/* Compares every frame of the document imported from `name` with the
 * reference values. Returns 0 or 1 (printing the first difference). */
static int check_reference(const char *name, bool blend) {
  char file[128], exp_name[128];
  snprintf(file, sizeof file, "%s.json", name);
  snprintf(exp_name, sizeof exp_name, "%s.expected.json", name);
  size_t len, elen;
  char *src = read_file(file, &len), *etext = read_file(exp_name, &elen);
  ASSERT_NOT_NULL(src);
  ASSERT_NOT_NULL(etext);
  json_error_t jerr;
  json_t *exp = json_loadb(etext, elen, 0, &jerr);
  ASSERT_NOT_NULL(exp);
  vtl_deforum_options opt = {blend};
  vtl_doc *doc = NULL;
  vtl_warnings w = {0};
  vtl_error err;
  int rc = vtl_deforum_import(src, len, &opt, &doc, &w, &err);
  if (rc) fprintf(stderr, "%s: %s\n", name, err.message);
  ASSERT_OK(rc);
  int64_t n = json_integer_value(json_object_get(exp, "max_frames"));
  ASSERT_EQ(vtl_doc_timeline(doc)->length, n);
  json_t *params = json_object_get(exp, "params");
  json_t *seeds = json_object_get(exp, "seeds");
  json_t *texts = json_object_get(exp, "texts");
  json_t *prompts = json_object_get(exp, blend ? "prompts_blend" : "prompts_hold");
  int checked = 0;
  for (int64_t f = 0; f < n; f++) {
    vtl_params p;
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(p.nerrors, 0);
    const char *pname;
    json_t *series;
    json_object_foreach(params, pname, series) {
      int i = param_index(pname);
      ASSERT_GE(i, 0);
      double want = json_number_value(json_array_get(series, (size_t)f));
      if (!near(p.values[i], want)) {
        fprintf(stderr, "%s: %s at frame %lld: vtl %.17g, Deforum %.17g\n", name,
                pname, (long long)f, p.values[i], want);
        print_warnings(&w);
        return 1;
      }
      checked++;
    }
    json_t *s = json_array_get(seeds, (size_t)f);
    if (s && !json_is_null(s) && p.seed != json_integer_value(s)) {
      fprintf(stderr, "%s: seed at frame %lld: vtl %lld, Deforum %lld\n", name,
              (long long)f, (long long)p.seed, (long long)json_integer_value(s));
      return 1;
    }
    if (prompts) {
      json_t *fr = json_array_get(prompts, (size_t)f);
      size_t i;
      json_t *e;
      int nonzero = 0;
      for (int k = 0; k < p.nprompts; k++) nonzero += p.prompts[k].weight > 1e-12;
      ASSERT_EQ(nonzero, json_array_size(fr));
      json_array_foreach(fr, i, e) {
        json_t *t = json_array_get(texts, (size_t)json_integer_value(json_array_get(e, 0)));
        const char *text = json_string_value(json_array_get(t, 0));
        const char *neg = json_string_value(json_array_get(t, 1));
        double want = json_number_value(json_array_get(e, 1));
        int k = 0;
        while (k < p.nprompts && (strcmp(p.prompts[k].text, text) ||
                                  strcmp(p.prompts[k].negative, neg)))
          k++;
        if (k == p.nprompts || !near(p.prompts[k].weight, want)) {
          fprintf(stderr, "%s: frame %lld: prompt \"%s\" --neg \"%s\": vtl %g, "
                  "Deforum %g\n", name, (long long)f, text, neg,
                  k < p.nprompts ? p.prompts[k].weight : 0.0, want);
          return 1;
        }
      }
    }
  }
  ASSERT_GT(checked, 0);
  vtl_doc_free(doc);
  vtl_warnings_free(&w);
  json_decref(exp);
  free(src);
  free(etext);
  return 0;
}

/* ---- against Deforum's own algorithm ----------------------------------------- */

TEST_IMPL(deforum_colab_2d_iter) { return check_reference("colab_2d_iter", false); }
TEST_IMPL(deforum_colab_3d_ladder) {
  return check_reference("colab_3d_ladder", false) ||
         check_reference("colab_3d_ladder", true);
}
TEST_IMPL(deforum_a1111_2d_schedules) {
  return check_reference("a1111_2d_schedules", false) ||
         check_reference("a1111_2d_schedules", true);
}
TEST_IMPL(deforum_a1111_3d_iter) {
  return check_reference("a1111_3d_iter", false) ||
         check_reference("a1111_3d_iter", true);
}
TEST_IMPL(deforum_a1111_seed_schedule) {
  return check_reference("a1111_seed_schedule", false);
}
TEST_IMPL(deforum_a1111_interpolation) {
  /* Interpolation mode always blends, whatever the option says */
  return check_reference("a1111_interpolation", false) ||
         check_reference("a1111_interpolation", true);
}
TEST_IMPL(deforum_colab_random) { return check_reference("colab_random", false); }

/* ---- the document an import builds -------------------------------------------- */

static const vtl_track *track_named(vtl_doc *doc, const char *name) {
  size_t n;
  const void *const *t = vtl_doc_list(doc, VTL_ENT_TRACK, &n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(((const vtl_track *)t[i])->name, name) == 0) return t[i];
  return NULL;
}

static size_t keys_of(vtl_doc *doc, vtl_id track, const vtl_keyframe **out,
                      size_t max) {
  size_t n, m = 0;
  const void *const *k = vtl_doc_list(doc, VTL_ENT_KEYFRAME, &n);
  for (size_t i = 0; i < n && m < max; i++)
    if (((const vtl_keyframe *)k[i])->track == track) out[m++] = k[i];
  return m;
}

TEST_IMPL(deforum_mapping) {
  size_t len;
  char *src = read_file("a1111_2d_schedules.json", &len);
  ASSERT_NOT_NULL(src);
  vtl_doc *doc = NULL;
  vtl_warnings w = {0};
  vtl_error err;
  ASSERT_OK(vtl_deforum_import(src, len, NULL, &doc, &w, &err));
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  ASSERT_EQ(tl->length, 150);
  ASSERT_EQ(tl->width, 512);
  ASSERT_EQ(tl->height, 768);
  ASSERT_NEAR(tl->fps, 15, 0);
  ASSERT_EQ(tl->steps, 25);
  ASSERT_EQ(tl->sampler, VTL_SAMPLER_DPMPP_2M); /* "DPM++ 2M Karras" */
  ASSERT_EQ(tl->seed, 2887451631);
  ASSERT_EQ(tl->seed_mode, VTL_SEED_ALTERNATE);
  ASSERT_EQ(tl->anim_mode, VTL_ANIM_2D);
  ASSERT_STR_EQ(tl->name, "Deforum_{timestring}");
  ASSERT_STR_EQ(tl->model, "v1-5-pruned-emaonly.safetensors");
  ASSERT(has_warning(&w, "Karras"));

  /* strength: numeric keys inverted, the expression wrapped as 1-(...) */
  const vtl_track *t = track_named(doc, "strength_schedule");
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->target, VTL_PARAM_STRENGTH);
  const vtl_keyframe *k[8];
  ASSERT_EQ(keys_of(doc, t->id, k, 8), 3);
  ASSERT_EQ(k[0]->frame, 0);
  ASSERT_NEAR(k[0]->value, 0.35, 1e-15);
  ASSERT_STR_EQ(k[0]->expr, "");
  ASSERT_EQ(k[0]->interp, VTL_INTERP_LINEAR);
  ASSERT_EQ(k[1]->frame, 30);
  ASSERT(strncmp(k[1]->expr, "1-(", 3) == 0);
  ASSERT_NEAR(k[1]->value, 1 - (0.5 + 0.1 * cos(30 / 5.0)), 1e-12);
  ASSERT_EQ(k[2]->frame, 80);

  /* translation_x: the key at max_f/2 = 74 */
  t = track_named(doc, "translation_x");
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(keys_of(doc, t->id, k, 8), 3);
  ASSERT_EQ(k[1]->frame, 74);
  ASSERT_STR_EQ(k[1]->expr, "5*sin(t/7)");

  /* constants: folded into the timeline or dropped at the default */
  ASSERT_NOT_NULL(track_named(doc, "cfg_scale_schedule")); /* 7 -> 9 */
  ASSERT_NULL(track_named(doc, "translation_y"));           /* 0: default */
  ASSERT_NULL(track_named(doc, "contrast_schedule"));       /* 1: default */
  t = track_named(doc, "noise_schedule");                   /* 0.065 */
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(keys_of(doc, t->id, k, 8), 1);
  t = track_named(doc, "diffusion_cadence");
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->target, VTL_PARAM_CADENCE);
  ASSERT_EQ(keys_of(doc, t->id, k, 8), 1);
  ASSERT_NEAR(k[0]->value, 2, 0);
  ASSERT_NULL(track_named(doc, "seed_schedule")); /* seed_behavior alternate */

  /* one prompt track, four clips held: [0,30) [30,60) [60,129) [129,150) */
  t = track_named(doc, "prompts");
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->target, VTL_TARGET_PROMPT);
  size_t nc;
  const void *const *clips = vtl_doc_list(doc, VTL_ENT_PROMPT_CLIP, &nc);
  ASSERT_EQ(nc, 4);
  const vtl_prompt_clip *c = clips[2];
  ASSERT_EQ(c->start, 60);
  ASSERT_EQ(c->end, 129);
  ASSERT_STR_EQ(c->text, "masterpiece, best quality, a beautiful coconut");
  ASSERT_STR_EQ(c->negative, "photo, realistic  nsfw, nude");
  ASSERT_EQ(c->fade_in, 0);
  ASSERT_EQ(((const vtl_prompt_clip *)clips[3])->end, 150);
  vtl_doc_free(doc);
  vtl_warnings_free(&w);

  /* blend: fades equal to the key distances */
  vtl_deforum_options opt = {true};
  ASSERT_OK(vtl_deforum_import(src, len, &opt, &doc, NULL, &err));
  clips = vtl_doc_list(doc, VTL_ENT_PROMPT_CLIP, &nc);
  ASSERT_EQ(nc, 4);
  c = clips[2];
  ASSERT_EQ(c->start, 30);
  ASSERT_EQ(c->end, 129);
  ASSERT_EQ(c->fade_in, 30);
  ASSERT_EQ(c->fade_out, 69);
  c = clips[0];
  ASSERT_EQ(c->start, 0);
  ASSERT_EQ(c->fade_in, 0);
  ASSERT_EQ(c->fade_out, 30);
  vtl_doc_free(doc);
  free(src);
  return 0;
}

TEST_IMPL(deforum_warnings) {
  size_t len;
  char *src = read_file("a1111_2d_schedules.json", &len);
  ASSERT_NOT_NULL(src);
  vtl_doc *doc = NULL;
  vtl_warnings w = {0};
  vtl_error err;
  ASSERT_OK(vtl_deforum_import(src, len, NULL, &doc, &w, &err));
  const char *unsup = NULL, *ignored = NULL;
  for (size_t i = 0; i < w.n; i++) {
    if (strstr(w.items[i], "unsupported settings")) unsup = w.items[i];
    if (strstr(w.items[i], "settings ignored")) ignored = w.items[i];
    ASSERT_NULL(strstr(w.items[i], "unknown keys"));
  }
  ASSERT_NOT_NULL(unsup);
  ASSERT_NOT_NULL(ignored);
  /* switched on in this file: listed as unsupported, by name */
  static const char *const on[] = {"color_coherence", "border", "noise_type",
                                   "enable_noise_multiplier_scheduling",
                                   "noise_multiplier_schedule", "amount_schedule",
                                   "kernel_schedule", "perlin_octaves", NULL};
  for (int i = 0; on[i]; i++)
    if (!strstr(unsup, on[i])) TEST_FAIL_("%s not in: %s", on[i], unsup);
  /* switched off, UI, or off in 2D: grouped as ignored */
  static const char *const off[] = {"hybrid_motion", "use_mask",
                                    "cn_* (85 ControlNet keys", "seed_schedule",
                                    "use_depth_warping", "sd_model_hash",
                                    "perspective_flip_fv", "skip_video_creation", NULL};
  for (int i = 0; off[i]; i++)
    if (!strstr(ignored, off[i])) TEST_FAIL_("%s not in: %s", off[i], ignored);
  ASSERT_NULL(strstr(unsup, "hybrid_"));
  ASSERT_NULL(strstr(unsup, "cn_"));
  ASSERT_NULL(strstr(ignored, "translation_x"));
  vtl_doc_free(doc);
  vtl_warnings_free(&w);
  free(src);

  /* a minimal Colab file: unknown key, random seed, rounding, sampler */
  src = read_file("colab_random.json", &len);
  ASSERT_OK(vtl_deforum_import(src, len, NULL, &doc, &w, &err));
  ASSERT(has_warning(&w, "unknown keys ignored: my_custom_note"));
  ASSERT(has_warning(&w, "seed: -1"));
  ASSERT(has_warning(&w, "seed_behavior: random"));
  ASSERT(has_warning(&w, "sampler: \"klms\""));
  ASSERT(has_warning(&w, "W: 500 rounded down to 496"));
  ASSERT(has_warning(&w, "fps: missing"));
  ASSERT_EQ(vtl_doc_timeline(doc)->width, 496);
  ASSERT_EQ(vtl_doc_timeline(doc)->sampler, VTL_SAMPLER_EULER);
  ASSERT_EQ(vtl_doc_timeline(doc)->seed_mode, VTL_SEED_RANDOM);
  ASSERT_NEAR(vtl_doc_timeline(doc)->strength, 1 - 0.55, 1e-15);
  int64_t seed = vtl_doc_timeline(doc)->seed;
  vtl_doc_free(doc);
  /* the stand-in for -1 is a function of the file */
  ASSERT_OK(vtl_deforum_import(src, len, NULL, &doc, NULL, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->seed, seed);
  vtl_doc_free(doc);
  vtl_warnings_free(&w);
  free(src);
  return 0;
}

/* ---- schedule syntax ------------------------------------------------------------ */

static double at(vtl_doc *doc, int p, int64_t f) { return vtl_param_at(doc, p, f); }

TEST_IMPL(deforum_schedule_syntax) {
  vtl_warnings w = {0};
  vtl_error err;
  /* "1e-3" and "1." are expressions for Deforum: held, not interpolated */
  vtl_doc *doc = import_str(
      "{\"max_frames\": 50, \"seed\": 7, \"animation_mode\": \"3D\","
      " \"translation_z\": \"0: (1e-3), 10: (1.), 20: (3), 30:(5)\","
      " \"translation_x\": \"0:1.5, 10:2.5\","
      " \"translation_y\": \"0:(0), 'max_f-9':(4), \\\"max_f-4\\\": (9)\","
      " \"rotation_3d_x\": \"0:(1), 10:(2), 10:(3), 99:(7), 20 : ( 5 )\","
      " \"rotation_3d_y\": \"10:(2), 20:(4)\","
      " \"rotation_3d_z\": \"0:(where(t<5, 1, 2)), 10:(arcsin(0.5)+log10(100)+max_frames+s)\","
      " \"angle\": \"0: (+.5), 10: (-1), 12: ((2))\"}",
      false, &w, &err);
  if (!doc) TEST_FAIL_("%s", err.message);
  ASSERT_NEAR(at(doc, VTL_PARAM_TZ, 0), 1e-3, 1e-15);
  ASSERT_NEAR(at(doc, VTL_PARAM_TZ, 9), 1e-3, 1e-15);  /* held */
  ASSERT_NEAR(at(doc, VTL_PARAM_TZ, 15), 1, 1e-15);    /* held */
  ASSERT_NEAR(at(doc, VTL_PARAM_TZ, 25), 4, 1e-12);    /* 3 -> 5 linear */
  ASSERT_NEAR(at(doc, VTL_PARAM_TX, 5), 2, 1e-12);     /* bare values */
  ASSERT_NEAR(at(doc, VTL_PARAM_TY, 40), 4, 1e-12);    /* max_f-9 = 40 */
  ASSERT_NEAR(at(doc, VTL_PARAM_TY, 45), 9, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_TY, 20), 2, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_RX, 10), 3, 1e-12);    /* later duplicate */
  ASSERT_NEAR(at(doc, VTL_PARAM_RX, 15), 4, 1e-12);    /* spaces */
  ASSERT_NEAR(at(doc, VTL_PARAM_RX, 49), 5, 1e-12);    /* 99 ignored */
  ASSERT(has_warning(&w, "rotation_3d_x: key at frame 99 ignored"));
  ASSERT_NEAR(at(doc, VTL_PARAM_RY, 0), 2, 1e-12);     /* held before */
  ASSERT(has_warning(&w, "rotation_3d_y: no key at frame 0"));
  ASSERT_NEAR(at(doc, VTL_PARAM_RZ, 4), 1, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_RZ, 5), 2, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_RZ, 10), asin(0.5) + 2 + 50 + 7, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_ANGLE, 0), 0.5, 1e-12);
  ASSERT_NEAR(at(doc, VTL_PARAM_ANGLE, 11), 0.5, 1e-12); /* (2) is a number */
  vtl_doc_free(doc);
  vtl_warnings_free(&w);

  /* spaces inside the parentheses make an expression (held) for Deforum;
   * integer modulo of a negative differs between numexpr and Lua: warned */
  doc = import_str("{\"max_frames\": 30, \"seed\": 1,"
                   " \"zoom\": \"0: ( 1.5 ), 10: (2)\","
                   " \"angle\": \"0: ((t-10)%7)\"}", false, &w, &err);
  if (!doc) TEST_FAIL_("%s", err.message);
  ASSERT_NEAR(at(doc, VTL_PARAM_ZOOM, 5), 1.5, 1e-15);
  ASSERT_NEAR(at(doc, VTL_PARAM_ZOOM, 10), 2, 1e-15);
  ASSERT(has_warning(&w, "angle: \"(t-10)%7\" gives 4 at frame 0 in vtl but "
                         "-3 in Deforum's numexpr"));
  ASSERT_NEAR(at(doc, VTL_PARAM_ANGLE, 12), 2, 1e-15); /* both agree here */
  vtl_doc_free(doc);
  vtl_warnings_free(&w);
  return 0;
}

/* Colab 0.7.1 keeps negatives in their own series, keyed on their own */
TEST_IMPL(deforum_colab_cond_uncond) {
  vtl_warnings w = {0};
  vtl_error err;
  vtl_doc *doc = import_str(
      "{\"max_frames\": 30, \"seed\": 5, \"animation_mode\": \"2D\","
      " \"cond_prompts\": {\"0\": \"a cat\", \"20\": \"a dog --neg x\"},"
      " \"uncond_prompts\": {\"10\": \"blurry\"},"
      " \"animation_prompts_negative\": \"ugly --neg\"}",
      false, &w, &err);
  if (!doc) TEST_FAIL_("%s", err.message);
  static const struct {
    int64_t f;
    const char *text, *neg;
  } want[] = {{0, "a cat", "blurry"}, {9, "a cat", "blurry"},
              {10, "a cat", "blurry"}, {20, "a dog --neg x", "blurry"},
              {29, "a dog --neg x", "blurry"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    vtl_params p;
    ASSERT_OK(vtl_params_at(doc, want[i].f, &p));
    ASSERT_EQ(p.nprompts, 1);
    ASSERT_STR_EQ(p.prompts[0].text, want[i].text);
    ASSERT_STR_EQ(p.prompts[0].negative, want[i].neg);
  }
  size_t nc;
  vtl_doc_list(doc, VTL_ENT_PROMPT_CLIP, &nc);
  ASSERT_EQ(nc, 3); /* keys 0, 10, 20 */
  vtl_doc_free(doc);
  vtl_warnings_free(&w);

  /* A1111: a "--neg" typed into the negative field is dropped */
  doc = import_str("{\"max_frames\": 3, \"prompts\": {\"0\": \"a --neg b\"},"
                   " \"negative_prompts\": \"--neg c\"}", false, NULL, &err);
  if (!doc) TEST_FAIL_("%s", err.message);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 0, &p));
  ASSERT_STR_EQ(p.prompts[0].text, "a");
  ASSERT_STR_EQ(p.prompts[0].negative, "b   c");
  vtl_doc_free(doc);
  return 0;
}

/* ---- errors ------------------------------------------------------------------------ */

static int expect_error(const char *json, int code, const char *in_message) {
  vtl_doc *sentinel = (vtl_doc *)(uintptr_t)0x1234, *doc = sentinel;
  vtl_warnings w = {0};
  vtl_error err;
  int rc = vtl_deforum_import(json, strlen(json), NULL, &doc, &w, &err);
  if (rc != code || !strstr(err.message, in_message) || doc != sentinel ||
      w.n != 0) {
    fprintf(stderr, "input: %s\n  rc %d (%s), want %d; message \"%s\", want "
            "\"%s\"; warnings %zu\n", json, rc, vtl_err_name(rc), code,
            err.message, in_message, w.n);
    vtl_warnings_free(&w);
    return 1;
  }
  ASSERT_EQ(err.code, code);
  return 0;
}

#define BASE "\"max_frames\": 60, \"animation_mode\": \"2D\", \"seed\": 1, "

TEST_IMPL(deforum_errors) {
  int bad = 0;
  bad |= expect_error("{\"max_frames\": 10,, \"zoom\": \"0:(1)\"}", VTL_EPARSE,
                      "max_frames: line 1, column 19");
  bad |= expect_error("{" BASE "\"zoom\": NaN}", VTL_EPARSE, "zoom: line 1");
  bad |= expect_error("[1, 2]", VTL_EPARSE, "expected a JSON object");
  bad |= expect_error("{\"max_frames\": 5, \"prompts\": {\"0\": \"a\" \"9\"}}",
                      VTL_EPARSE, "prompts.\"0\": line 1, column 42");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(1)\", \"zoom\": \"0:(2)\"}",
                      VTL_EPARSE, "duplicate");
  bad |= expect_error("{" BASE "\"translation_x\": \"0:(0), 30:(1.0+\"}",
                      VTL_EPARSE,
                      "translation_x: bad schedule at \"30:(1.0+\", expected ')'");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(1) 30:(2)\"}", VTL_EPARSE,
                      "zoom: bad schedule at \"0:(1) 30:(2)\", expected ','");
  bad |= expect_error("{" BASE "\"zoom\": \"0 (1)\"}", VTL_EPARSE,
                      "zoom: bad schedule at \"0 (1)\", expected ':'");
  bad |= expect_error("{" BASE "\"zoom\": \"\"}", VTL_EPARSE, "zoom: empty");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(nan)\"}", VTL_EEXPR,
                      "zoom: frame 0: unknown name 'nan'");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(sinh(t))\"}", VTL_EEXPR,
                      "zoom: frame 0: function 'sinh'");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(1+1/(t-5)**2)\"}", VTL_EEXPR,
                      "zoom: \"1+1/(t-5)**2\" fails at frame 5");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(1), 10:(0)\"}", VTL_ERANGE,
                      "zoom: 0 at frame 10 is outside");
  bad |= expect_error("{" BASE "\"zoom\": \"0:(1), frame:(2)\"}", VTL_EPARSE,
                      "zoom: bad schedule at \"frame:(2)\", frame: unknown name");
  bad |= expect_error("{" BASE "\"zoom\": [1]}", VTL_ETYPE, "zoom: expected a "
                      "schedule string");
  bad |= expect_error("{" BASE "\"sampler\": \"wobble\"}", VTL_EINVAL,
                      "sampler: unknown sampler \"wobble\"");
  bad |= expect_error("{\"max_frames\": -5}", VTL_ERANGE,
                      "max_frames: -5 is outside 1..");
  bad |= expect_error("{\"max_frames\": 12.5}", VTL_ETYPE,
                      "max_frames: expected a whole number");
  bad |= expect_error("{\"animation_mode\": \"2D\"}", VTL_EINVAL,
                      "max_frames: missing");
  bad |= expect_error("{\"max_frames\": \"nan\"}", VTL_ERANGE,
                      "max_frames: not a finite number");
  bad |= expect_error("{" BASE "\"W\": 4}", VTL_ERANGE, "W: 4 is outside");
  bad |= expect_error("{\"max_frames\": 10, \"animation_mode\": \"Video Input\"}",
                      VTL_EUNSUPPORTED, "animation_mode: \"Video Input\"");
  bad |= expect_error("{\"max_frames\": 10, \"animation_mode\": \"None\"}",
                      VTL_EUNSUPPORTED, "animation_mode: \"None\"");
  bad |= expect_error("{\"max_frames\": 9, \"seed\": -7}", VTL_ERANGE,
                      "seed: -7");
  bad |= expect_error("{" BASE "\"seed_behavior\": \"wobble\"}", VTL_EINVAL,
                      "seed_behavior: unknown value");
  bad |= expect_error("{" BASE "\"seed_iter_N\": 0}", VTL_ERANGE, "seed_iter_N");
  bad |= expect_error("{" BASE "\"seed_behavior\": \"schedule\"}", VTL_EINVAL,
                      "seed_schedule: missing");
  bad |= expect_error("{" BASE "\"diffusion_cadence\": \"0\"}", VTL_ERANGE,
                      "diffusion_cadence: 0");
  bad |= expect_error("{" BASE "\"prompts\": {\"0\": \"a --neg b --neg c\"}}",
                      VTL_EPARSE, "prompts.\"0\": more than one --neg");
  bad |= expect_error("{" BASE "\"prompts\": {\"0\": 5}}", VTL_ETYPE,
                      "prompts.\"0\": expected a string");
  bad |= expect_error("{" BASE "\"prompts\": {\"max_q\": \"x\"}}", VTL_EPARSE,
                      "prompts.\"max_q\": bad frame");
  bad |= expect_error("{" BASE "\"prompts\": {\"90\": \"x\"}}", VTL_ERANGE,
                      "prompts: no prompt inside frames 0..59");
  bad |= expect_error("{" BASE "\"steps\": true}", VTL_ETYPE,
                      "steps: expected a number, got a boolean");
  bad |= expect_error("{" BASE "\"enable_steps_scheduling\": true, "
                      "\"steps_schedule\": \"0:(0)\"}", VTL_ERANGE,
                      "steps_schedule: 0 at frame 0 is outside");
  return bad;
}

/* ---- round trip ------------------------------------------------------------------- */

static int roundtrip(const char *name, bool blend) {
  size_t len;
  char file[128];
  snprintf(file, sizeof file, "%s.json", name);
  char *src = read_file(file, &len);
  ASSERT_NOT_NULL(src);
  vtl_deforum_options opt = {blend};
  vtl_doc *a = NULL, *b = NULL;
  vtl_warnings w = {0};
  vtl_error err;
  ASSERT_OK(vtl_deforum_import(src, len, &opt, &a, NULL, &err));
  char *out = NULL;
  int rc = vtl_deforum_export(a, &out, &w, &err);
  if (rc) fprintf(stderr, "%s: export: %s\n", name, err.message);
  ASSERT_OK(rc);
  rc = vtl_deforum_import(out, strlen(out), &opt, &b, NULL, &err);
  if (rc) fprintf(stderr, "%s: re-import: %s\n%s\n", name, err.message, out);
  ASSERT_OK(rc);
  char *ja = NULL, *jb = NULL;
  ASSERT_OK(vtl_json_export(a, &ja));
  ASSERT_OK(vtl_json_export(b, &jb));
  if (strcmp(ja, jb) != 0) {
    size_t i = 0;
    while (ja[i] && ja[i] == jb[i]) i++;
    fprintf(stderr, "%s: documents differ at byte %zu:\n  first:  %.120s\n  "
            "second: %.120s\n", name, i, ja + (i > 40 ? i - 40 : 0),
            jb + (i > 40 ? i - 40 : 0));
    return 1;
  }
  int64_t n = vtl_doc_timeline(a)->length;
  for (int64_t f = 0; f < n; f++) {
    vtl_params pa, pb;
    ASSERT_OK(vtl_params_at(a, f, &pa));
    ASSERT_OK(vtl_params_at(b, f, &pb));
    for (int i = 0; i < VTL_PARAM__COUNT; i++) ASSERT(pa.values[i] == pb.values[i]);
    ASSERT_EQ(pa.seed, pb.seed);
    ASSERT_EQ(pa.nprompts, pb.nprompts);
  }
  /* an imported Deforum file exports without approximations */
  for (size_t i = 0; i < w.n; i++)
    if (strstr(w.items[i], "per-frame")) TEST_FAIL_("%s: %s", name, w.items[i]);
  free(ja);
  free(jb);
  free(out);
  vtl_doc_free(a);
  vtl_doc_free(b);
  vtl_warnings_free(&w);
  free(src);
  return 0;
}

TEST_IMPL(deforum_roundtrip) {
  static const char *const files[] = {"colab_2d_iter", "colab_3d_ladder",
                                      "a1111_2d_schedules", "a1111_3d_iter",
                                      "a1111_seed_schedule", "colab_random",
                                      NULL};
  for (int i = 0; files[i]; i++)
    if (roundtrip(files[i], false)) return 1;
  return roundtrip("a1111_2d_schedules", true) ||
         roundtrip("a1111_3d_iter", true);
}

/* ---- export of what Deforum cannot say directly ----------------------------------- */

static int apply1(vtl_doc *doc, vtl_op *op) {
  vtl_error err;
  int rc = vtl_doc_apply(doc, op, 1, NULL, NULL, &err);
  if (rc) fprintf(stderr, "apply: %s\n", err.message);
  vtl_op_free(op);
  return rc;
}

static int add_track(vtl_doc *doc, vtl_id id, int target) {
  vtl_op op;
  vtl_op_create(&op, VTL_ENT_TRACK, id);
  vtl_op_add_int(&op, "target", target);
  return apply1(doc, &op);
}

static int add_key(vtl_doc *doc, vtl_id id, vtl_id track, int64_t frame,
                   double value, int interp, const char *expr) {
  vtl_op op;
  vtl_op_create(&op, VTL_ENT_KEYFRAME, id);
  vtl_op_add_int(&op, "track", (int64_t)track);
  vtl_op_add_int(&op, "frame", frame);
  vtl_op_add_real(&op, "value", value);
  vtl_op_add_int(&op, "interp", interp);
  if (expr) vtl_op_add_str(&op, "expr", expr);
  return apply1(doc, &op);
}

TEST_IMPL(deforum_export_shapes) {
  vtl_doc *doc;
  ASSERT_OK(vtl_doc_new(&doc));
  vtl_op op;
  vtl_op_set_int(&op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "length", 80);
  ASSERT_OK(apply1(doc, &op));
  /* zoom: hold, linear, bezier, ease-in-out, a key past the end */
  ASSERT_OK(add_track(doc, 10, VTL_PARAM_ZOOM));
  ASSERT_OK(add_key(doc, 11, 10, 0, 1.0, VTL_INTERP_HOLD, NULL));
  ASSERT_OK(add_key(doc, 12, 10, 10, 1.5, VTL_INTERP_LINEAR, NULL));
  ASSERT_OK(add_key(doc, 13, 10, 20, 1.2, VTL_INTERP_BEZIER, NULL));
  vtl_op_set_real(&op, VTL_ENT_KEYFRAME, 13, "out_dt", 4);
  ASSERT_OK(apply1(doc, &op));
  vtl_op_set_real(&op, VTL_ENT_KEYFRAME, 13, "out_dv", 0.5);
  ASSERT_OK(apply1(doc, &op));
  ASSERT_OK(add_key(doc, 14, 10, 30, 1.1, VTL_INTERP_EASE_IN_OUT, NULL));
  ASSERT_OK(add_key(doc, 15, 10, 40, 0.9, VTL_INTERP_LINEAR, NULL));
  ASSERT_OK(add_key(doc, 16, 10, 120, 2.9, VTL_INTERP_LINEAR, NULL));
  /* strength: a plain Lua expression, then one numexpr cannot say */
  ASSERT_OK(add_track(doc, 20, VTL_PARAM_STRENGTH));
  ASSERT_OK(add_key(doc, 21, 20, 0, 0.4, VTL_INTERP_LINEAR, "0.3+0.1*sin(s)"));
  ASSERT_OK(add_key(doc, 22, 20, 30, 0.5, VTL_INTERP_LINEAR, "min(0.6, 0.2+t/100)"));
  ASSERT_OK(add_key(doc, 23, 20, 50, 0.25, VTL_INTERP_LINEAR, NULL));
  /* angle: starts at frame 5 (Deforum needs a key at 0) */
  ASSERT_OK(add_track(doc, 30, VTL_PARAM_ANGLE));
  ASSERT_OK(add_key(doc, 31, 30, 5, 2, VTL_INTERP_LINEAR, "t > 40 and 1 or 2"));

  char *out = NULL;
  vtl_warnings w = {0};
  vtl_error err;
  ASSERT_OK(vtl_deforum_export(doc, &out, &w, &err));
  ASSERT(has_warning(&w, "zoom: bezier curve from frame 20"));
  ASSERT(has_warning(&w, "strength_schedule: expression \"min("));
  /* Lua's `and`/`or` on numbers is not numexpr's bitwise & |: sampled */
  ASSERT(has_warning(&w, "angle: expression \"t > 40 and 1 or 2\""));
  vtl_doc *back = NULL;
  vtl_warnings w2 = {0};
  int rc = vtl_deforum_import(out, strlen(out), NULL, &back, &w2, &err);
  if (rc) fprintf(stderr, "%s\n%s\n", err.message, out);
  ASSERT_OK(rc);
  for (int64_t f = 0; f < 80; f++) {
    for (int p = 0; p < VTL_PARAM__COUNT; p++) {
      if (p == VTL_PARAM_SEED) continue;
      double a = vtl_param_at(doc, p, f), b = vtl_param_at(back, p, f);
      if (!near(b, a))
        TEST_FAIL_("%s at frame %lld: %.17g exported as %.17g\n%s",
                   vtl_param_table[p].name, (long long)f, a, b, out);
    }
  }
  /* the hold is two keys, not samples: 0:(1), 9:(1) */
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  ASSERT_NOT_NULL(j);
  const char *zoom = json_string_value(json_object_get(j, "zoom"));
  ASSERT_NOT_NULL(zoom);
  ASSERT(strncmp(zoom, "0: (1), 9: (1), 10: (1.5), 20: (1.2), 21: (", 43) == 0);
  ASSERT_NOT_NULL(strstr(zoom, "40: (0.9), 79: (1.875)")); /* cut at the end */
  const char *st = json_string_value(json_object_get(j, "strength_schedule"));
  ASSERT(strncmp(st, "0: (1-(0.3+0.1*sin((t/12)))), 30: (", 35) == 0);
  const char *an = json_string_value(json_object_get(j, "angle"));
  ASSERT(strncmp(an, "0: (2), 5: (", 12) == 0);
  json_decref(j);
  free(out);
  vtl_doc_free(back);
  vtl_doc_free(doc);
  vtl_warnings_free(&w);
  vtl_warnings_free(&w2);
  return 0;
}

TEST_IMPL(deforum_export_prompts) {
  size_t len;
  char *src = read_file("a1111_3d_iter.json", &len);
  ASSERT_NOT_NULL(src);
  vtl_deforum_options opt = {true};
  vtl_doc *doc = NULL;
  vtl_error err;
  ASSERT_OK(vtl_deforum_import(src, len, &opt, &doc, NULL, &err));
  char *out = NULL;
  vtl_warnings w = {0};
  ASSERT_OK(vtl_deforum_export(doc, &out, &w, &err));
  ASSERT(has_warning(&w, "prompts: crossfades"));
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  json_t *pr = json_object_get(j, "prompts");
  ASSERT_EQ(json_object_size(pr), 3);
  ASSERT_STR_EQ(json_string_value(json_object_get(pr, "50")),
                "a lush jungle temple overgrown with vines --neg people, text");
  ASSERT_STR_EQ(json_string_value(json_object_get(pr, "100")),
                "a frozen palace under the aurora");
  ASSERT(json_equal(pr, json_object_get(j, "animation_prompts")));
  ASSERT_STR_EQ(json_string_value(json_object_get(j, "sampler")), "Euler a");
  ASSERT_EQ(json_integer_value(json_object_get(j, "diffusion_cadence")), 4);
  ASSERT_STR_EQ(json_string_value(json_object_get(j, "animation_mode")), "3D");
  json_decref(j);
  free(out);
  vtl_warnings_free(&w);
  vtl_doc_free(doc);
  free(src);
  return 0;
}

TEST_IMPL(deforum_null_lists) {
  const char *json = "{\"max_frames\": 5, \"seed\": -1, \"zoom\": \"0:(1.1)\"}";
  vtl_doc *doc = NULL;
  ASSERT_OK(vtl_deforum_import(json, strlen(json), NULL, &doc, NULL, NULL));
  char *out = NULL;
  ASSERT_OK(vtl_deforum_export(doc, &out, NULL, NULL));
  ASSERT_NOT_NULL(strstr(out, "\"zoom\": \"0: (1.1)\""));
  free(out);
  vtl_doc_free(doc);
  vtl_doc *sentinel = (vtl_doc *)(uintptr_t)0x99;
  doc = sentinel;
  ASSERT_EQ(vtl_deforum_import("{", 1, NULL, &doc, NULL, NULL), VTL_EPARSE);
  ASSERT(doc == sentinel);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(deforum_colab_2d_iter)
  TEST_ENTRY(deforum_colab_3d_ladder)
  TEST_ENTRY(deforum_a1111_2d_schedules)
  TEST_ENTRY(deforum_a1111_3d_iter)
  TEST_ENTRY(deforum_a1111_seed_schedule)
  TEST_ENTRY(deforum_a1111_interpolation)
  TEST_ENTRY(deforum_colab_random)
  TEST_ENTRY(deforum_mapping)
  TEST_ENTRY(deforum_warnings)
  TEST_ENTRY(deforum_schedule_syntax)
  TEST_ENTRY(deforum_colab_cond_uncond)
  TEST_ENTRY(deforum_errors)
  TEST_ENTRY(deforum_roundtrip)
  TEST_ENTRY(deforum_export_shapes)
  TEST_ENTRY(deforum_export_prompts)
  TEST_ENTRY(deforum_null_lists)
)
