/* test_json.c — the JSON document format (timeline/json.c).
 *
 *   roundtrip_rich        a hand-written document using every kind and
 *                         field: imported values match field by field, the
 *                         export equals the input as JSON, and export ->
 *                         import -> export is byte-identical
 *   defaults_minimal      missing fields and arrays take their defaults
 *   export_canonical      sorted by id, ASCII only, reals bit-exact
 *   bad_malformed         syntax errors, empty, truncated, trailing garbage
 *   bad_format_version    wrong or missing format / version
 *   bad_top_level         unknown top-level key, wrong container types
 *   bad_unknown_field     a typo in an entity's or the Timeline's key
 *   bad_enum              unknown enum names, enums given numbers
 *   bad_numbers           out of range, 1.5 for an integer, 1e400, 2^64
 *   bad_ids               missing, 0, negative, past 2^53, not integers
 *   bad_references        dangling keyframe.track, shot.asset, ordering
 *   bad_duplicates        duplicate ids, duplicate JSON keys
 *   bad_constraints       clip end, image shot, keyframe on prompt track
 *   bad_huge_string       a 10 MB string
 *   bad_deep_nesting      100000 '[' (no crash)
 *   bad_nan_inf           NaN / Infinity literals
 *   bad_nul               \u0000 inside a string
 *   bad_utf8              invalid UTF-8 bytes in the JSON text
 *   bad_too_many          arrays longer than the entity limits
 * Every failing import must leave *out untouched (no document) and name
 * the JSON path (or line and column) of the problem.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "task.h"
#include "vtl_import.h"
#include "vtl_timeline.h"

/* ---- helpers -------------------------------------------------------------- */



/* JSON written with ' for " (readable in C); returns a malloc'd copy with
 * the quotes put back. */
static char *q(const char *s) {
  char *r = strdup(s);
  CHECK(r == NULL);
  for (char *p = r; *p; p++)
    if (*p == '\'') *p = '"';
  return r;
}

/* Imports `text` expecting failure with `code` and a message containing
 * each of the non-NULL needles; checks that no document came out. */
static int expect_fail_n(const char *text, size_t len, int code,
                         const char *n1, const char *n2) {
  vtl_doc *doc = NULL;
  vtl_error err;
  memset(&err, 0x55, sizeof err);
  int rc = vtl_json_import(text, len, &doc, &err);
  if (rc != code)
    fprintf(stderr, "import: got %s (%s), want %s\n", vtl_err_name(rc),
            rc ? err.message : "", vtl_err_name(code));
  ASSERT_EQ(rc, code);
  ASSERT_EQ(err.code, code);
  ASSERT_NULL(doc);
  ASSERT(memchr(err.message, '\0', sizeof err.message) != NULL);
  if (n1) ASSERT_CONTAINS(err.message, n1);
  if (n2) ASSERT_CONTAINS(err.message, n2);
  /* a NULL err is allowed and gives the same code */
  ASSERT_EQ(vtl_json_import(text, len, &doc, NULL), code);
  ASSERT_NULL(doc);
  return 0;
}

/* Same, for a document {format, version, <body>} written with ' quotes. */
static int expect_fail(const char *body, int code, const char *n1,
                       const char *n2) {
  char *b = q(body);
  size_t n = strlen(b) + 64;
  char *text = malloc(n);
  snprintf(text, n, "{\"format\": \"vtl-timeline\", \"version\": 1%s%s}",
           *b ? ", " : "", b);
  int rc = expect_fail_n(text, strlen(text), code, n1, n2);
  free(text);
  free(b);
  return rc;
}

static vtl_doc *import_ok(const char *text) {
  vtl_doc *doc = NULL;
  vtl_error err;
  if (vtl_json_import(text, strlen(text), &doc, &err)) {
    fprintf(stderr, "import failed: %s\n", err.message);
    return NULL;
  }
  return doc;
}

/* noinline: gcc 12 at -O2 reports a false "dangling pointer" once inlined */
__attribute__((noinline)) static char *export_doc(vtl_doc *doc) {
  char *s = NULL;
  CHECK(vtl_json_export(doc, &s));
  return s;
}

/* ---- the rich document ------------------------------------------------------ */

static const char rich_json[] =
  "{'format': 'vtl-timeline', 'version': 1,\n"
  " 'timeline': {'name': 'Caf\\u00e9 \\\\ \\'Noir\\'', 'fps': 23.976,\n"
  "   'width': 1024, 'height': 576, 'length': 480, 'model': 'sd15.safetensors',\n"
  "   'sampler': 'dpmpp_2m', 'spacing': 'trailing', 'steps': 28,\n"
  "   'guidance': 6.5, 'strength': 0.55, 'seed': 4294967295,\n"
  "   'seed_mode': 'ladder', 'seed_iter_n': 3, 'anim_mode': '3d'},\n"
  " 'tracks': [\n"
  "  {'id': 2, 'name': 'Zoom', 'target': 'zoom', 'order': -3, 'mute': false,\n"
  "   'lock': true, 'color': 16711680},\n"
  "  {'id': 3, 'name': 'Prompts', 'target': 'prompt', 'order': 0,\n"
  "   'mute': false, 'lock': false, 'color': 255},\n"
  "  {'id': 4, 'name': 'Old angle', 'target': 'angle', 'order': 7,\n"
  "   'mute': true, 'lock': false, 'color': 0},\n"
  "  {'id': 9007199254740991, 'name': '', 'target': 'cadence', 'order': 1000000,\n"
  "   'mute': false, 'lock': false, 'color': 8952234}],\n"
  " 'keyframes': [\n"
  "  {'id': 10, 'track': 2, 'frame': 0, 'value': 1.0, 'interp': 'bezier',\n"
  "   'out_dt': 12.5, 'out_dv': 0.25, 'in_dt': 0.0, 'in_dv': 0.0, 'expr': ''},\n"
  "  {'id': 11, 'track': 2, 'frame': 48, 'value': 1.5,\n"
  "   'interp': 'ease_in_out', 'out_dt': 0.0, 'out_dv': 0.0, 'in_dt': -8.0,\n"
  "   'in_dv': -0.125, 'expr': '1 + 0.5 * sin(t / fps)'},\n"
  "  {'id': 12, 'track': 4, 'frame': 100, 'value': -45.0, 'interp': 'hold',\n"
  "   'out_dt': 0.0, 'out_dv': 0.0, 'in_dt': 0.0, 'in_dv': 0.0, 'expr': ''},\n"
  "  {'id': 13, 'track': 9007199254740991, 'frame': 999999, 'value': 3.0,\n"
  "   'interp': 'ease_out', 'out_dt': 0.0, 'out_dv': 0.0, 'in_dt': 0.0,\n"
  "   'in_dv': 0.0, 'expr': 'where(t > 10, 2, 1)'}],\n"
  " 'prompt_clips': [\n"
  "  {'id': 20, 'track': 3, 'start': 0, 'end': 96,\n"
  "   'text': 'a lighthouse in a storm', 'negative': 'blurry, text',\n"
  "   'weight': 1.0, 'fade_in': 0, 'fade_out': 12},\n"
  "  {'id': 21, 'track': 3, 'start': 84, 'end': 480,\n"
  "   'text': 'dawn over the sea \\u2600 \\ud83c\\udf05', 'negative': '',\n"
  "   'weight': 2.5, 'fade_in': 12, 'fade_out': 0}],\n"
  " 'shots': [\n"
  "  {'id': 30, 'name': 'storm', 'start': 0, 'source': 'noise', 'asset': 0,\n"
  "   'seed': -1, 'strength': 0.75},\n"
  "  {'id': 31, 'name': 'dawn', 'start': 96, 'source': 'image', 'asset': 40,\n"
  "   'seed': 1234, 'strength': 0.6},\n"
  "  {'id': 32, 'name': 'fade', 'start': 400, 'source': 'black', 'asset': 41,\n"
  "   'seed': 0, 'strength': 0.0}],\n"
  " 'markers': [\n"
  "  {'id': 50, 'frame': 96, 'label': 'cut', 'note': 'line 1\\nline 2\\ttab'},\n"
  "  {'id': 51, 'frame': 0, 'label': '', 'note': ''}],\n"
  " 'assets': [\n"
  "  {'id': 40, 'name': 'dawn.png', 'kind': 'image', 'mime': 'image/png',\n"
  "   'sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',\n"
  "   'size': 1099511627776},\n"
  "  {'id': 41, 'name': 'score.ogg', 'kind': 'sound', 'mime': 'audio/ogg',\n"
  "   'sha256': '', 'size': 0},\n"
  "  {'id': 42, 'name': 'script.txt', 'kind': 'manuscript',\n"
  "   'mime': 'text/plain', 'sha256': 'ab', 'size': 17}]}\n";

/* Every key of the JSON object `o` equals the field of `ent`. */
static int check_fields(vtl_entity_kind kind, const void *ent, json_t *o) {
  const char *k;
  json_t *v;
  ASSERT_NOT_NULL(ent);
  json_object_foreach(o, k, v) {
    if (strcmp(k, "id") == 0) {
      ASSERT_U64_EQ(*(const vtl_id *)ent, (vtl_id)json_integer_value(v));
      continue;
    }
    int fi = vtl_field_lookup(kind, k);
    ASSERT(fi >= 0);
    const vtl_field_desc *f = &vtl_entities[kind].fields[fi];
    const char *p = (const char *)ent + f->offset;
    switch (f->type) {
    case VTL_FT_STR: ASSERT_STR_EQ(*(char *const *)p, json_string_value(v)); break;
    case VTL_FT_REAL: ASSERT(*(const double *)p == json_real_value(v)); break;
    case VTL_FT_BOOL: ASSERT_EQ(*(const bool *)p, json_is_true(v)); break;
    case VTL_FT_ENUM:
      ASSERT_STR_EQ(f->enums[*(const int64_t *)p], json_string_value(v));
      break;
    case VTL_FT_INT: ASSERT_EQ(*(const int64_t *)p, json_integer_value(v)); break;
    case VTL_FT_REF:
      ASSERT_U64_EQ(*(const vtl_id *)p, (vtl_id)json_integer_value(v));
      break;
    }
  }
  return 0;
}

/* ---- tests ------------------------------------------------------------------ */

TEST_IMPL(roundtrip_rich) {
  char *text = q(rich_json);
  json_error_t jerr;
  json_t *in = json_loads(text, 0, &jerr);
  if (!in) fprintf(stderr, "fixture: %s at %d:%d\n", jerr.text, jerr.line, jerr.column);
  ASSERT_NOT_NULL(in);
  vtl_doc *doc = import_ok(text);
  ASSERT_NOT_NULL(doc);

  /* field by field */
  ASSERT_OK(check_fields(VTL_ENT_TIMELINE, vtl_doc_timeline(doc),
                         json_object_get(in, "timeline")));
  ASSERT_STR_EQ(vtl_doc_timeline(doc)->name, "Caf\xc3\xa9 \\ \"Noir\"");
  size_t total = 0;
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
    json_t *arr = json_object_get(in, vtl_entities[k].plural);
    ASSERT_NOT_NULL(arr);
    ASSERT_GT(json_array_size(arr), 0); /* the fixture uses every kind */
    ASSERT_EQ(vtl_doc_count(doc, k), json_array_size(arr));
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
      /* every field given */
      ASSERT_EQ(json_object_size(o), (size_t)vtl_entities[k].nfields + 1);
      vtl_id id = (vtl_id)json_integer_value(json_object_get(o, "id"));
      ASSERT_OK(check_fields(k, vtl_doc_get(doc, k, id), o));
    }
    total += json_array_size(arr);
  }
  ASSERT_EQ(json_object_size(json_object_get(in, "timeline")),
            (size_t)vtl_entities[VTL_ENT_TIMELINE].nfields);
  const vtl_prompt_clip *c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 21);
  ASSERT_STR_EQ(c->text, "dawn over the sea \xe2\x98\x80 \xf0\x9f\x8c\x85");
  ASSERT_GE(total, 15);

  /* the export is the same JSON value as the input */
  char *out = export_doc(doc);
  json_t *back = json_loads(out, 0, &jerr);
  ASSERT_NOT_NULL(back);
  if (!json_equal(in, back)) fprintf(stderr, "export:\n%s\n", out);
  ASSERT(json_equal(in, back));

  /* export -> import -> export is the identity */
  vtl_doc *doc2 = import_ok(out);
  ASSERT_NOT_NULL(doc2);
  char *out2 = export_doc(doc2);
  ASSERT_STR_EQ(out2, out);
  /* and evaluation agrees */
  for (int64_t f = 0; f < 480; f += 37) {
    vtl_params p, p2;
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_OK(vtl_params_at(doc2, f, &p2));
    ASSERT_U64_EQ(p.dep_hash, p2.dep_hash);
    ASSERT(memcmp(p.values, p2.values, sizeof p.values) == 0);
    ASSERT_EQ(p.seed, p2.seed);
  }
  json_decref(in);
  json_decref(back);
  free(text);
  free(out);
  free(out2);
  vtl_doc_free(doc);
  vtl_doc_free(doc2);
  return 0;
}

TEST_IMPL(defaults_minimal) {
  vtl_doc *fresh = NULL;
  ASSERT_OK(vtl_doc_new(&fresh));
  char *want = export_doc(fresh);
  char *text = q("{'format': 'vtl-timeline', 'version': 1}");
  vtl_doc *doc = import_ok(text);
  ASSERT_NOT_NULL(doc);
  char *got = export_doc(doc);
  ASSERT_STR_EQ(got, want);
  free(got);
  vtl_doc_free(doc);
  free(text);
  /* empty arrays and an empty timeline are the same */
  text = q("{'version': 1, 'tracks': [], 'timeline': {}, 'assets': [],"
           " 'format': 'vtl-timeline'}");
  doc = import_ok(text);
  ASSERT_NOT_NULL(doc);
  got = export_doc(doc);
  ASSERT_STR_EQ(got, want);
  free(got);
  vtl_doc_free(doc);
  free(text);
  /* an entity with only its id (and what it needs) */
  text = q("{'format': 'vtl-timeline', 'version': 1,"
           " 'tracks': [{'id': 5}], 'keyframes': [{'id': 6, 'track': 5}]}");
  doc = import_ok(text);
  ASSERT_NOT_NULL(doc);
  const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, 5);
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->target, VTL_PARAM_STRENGTH);
  ASSERT_EQ(t->color, 0x8899aa);
  const vtl_keyframe *k = vtl_doc_get(doc, VTL_ENT_KEYFRAME, 6);
  ASSERT_EQ(k->interp, VTL_INTERP_LINEAR);
  ASSERT_STR_EQ(k->expr, "");
  /* integers are fine for real fields */
  vtl_doc_free(doc);
  free(text);
  text = q("{'format': 'vtl-timeline', 'version': 1, 'timeline': {'fps': 30}}");
  doc = import_ok(text);
  ASSERT_NOT_NULL(doc);
  ASSERT_NEAR(vtl_doc_timeline(doc)->fps, 30, 0);
  vtl_doc_free(doc);
  free(text);
  free(want);
  vtl_doc_free(fresh);
  return 0;
}

TEST_IMPL(export_canonical) {
  vtl_doc *doc = NULL;
  ASSERT_OK(vtl_doc_new(&doc));
  const vtl_id ids[] = {70, 3, 900, 12, 5};
  vtl_op ops[5];
  for (int i = 0; i < 5; i++) {
    CHECK(vtl_op_create(&ops[i], VTL_ENT_MARKER, ids[i]));
    CHECK(vtl_op_add_str(&ops[i], "label", "\xc3\xa9\xf0\x9f\x98\x80\x01"));
  }
  vtl_error err;
  ASSERT_OK(vtl_doc_apply(doc, ops, 5, NULL, NULL, &err));
  for (int i = 0; i < 5; i++) vtl_op_free(&ops[i]);
  /* reals that need all 17 digits, tiny and negative zero */
  const double reals[] = {0.1 + 0.2, 1e-300, -0.0, 123456789.12345679,
                          -999999999.99999988, 5e-324};
  vtl_op t;
  CHECK(vtl_op_create(&t, VTL_ENT_TRACK, 2));
  CHECK(vtl_op_add_int(&t, "target", VTL_PARAM_TX));
  ASSERT_OK(vtl_doc_apply(doc, &t, 1, NULL, NULL, &err));
  vtl_op_free(&t);
  for (int i = 0; i < 6; i++) {
    CHECK(vtl_op_create(&t, VTL_ENT_KEYFRAME, 100 + i));
    CHECK(vtl_op_add_int(&t, "track", 2));
    CHECK(vtl_op_add_int(&t, "frame", i));
    CHECK(vtl_op_add_real(&t, "value", reals[i]));
    ASSERT_OK(vtl_doc_apply(doc, &t, 1, NULL, NULL, &err));
    vtl_op_free(&t);
  }
  char *out = export_doc(doc);
  for (const char *p = out; *p; p++) ASSERT((unsigned char)*p < 0x80);
  /* markers in id order */
  const char *want[] = {"\"id\": 3", "\"id\": 5", "\"id\": 12", "\"id\": 70",
                        "\"id\": 900"};
  size_t pos = 0;
  const char *markers = strstr(out, "\"markers\"");
  ASSERT_NOT_NULL(markers);
  for (int i = 0; i < 5; i++) {
    const char *at = strstr(markers + pos, want[i]);
    ASSERT_NOT_NULL(at);
    pos = (size_t)(at - markers) + 1;
  }
  vtl_doc *back = import_ok(out);
  ASSERT_NOT_NULL(back);
  for (int i = 0; i < 6; i++) {
    const vtl_keyframe *k = vtl_doc_get(back, VTL_ENT_KEYFRAME, 100 + i);
    ASSERT_NOT_NULL(k);
    ASSERT(memcmp(&k->value, &reals[i], sizeof(double)) == 0); /* bit-exact */
  }
  ASSERT_STR_EQ(((const vtl_marker *)vtl_doc_get(back, VTL_ENT_MARKER, 3))->label,
                "\xc3\xa9\xf0\x9f\x98\x80\x01");
  char *out2 = export_doc(back);
  ASSERT_STR_EQ(out2, out);
  free(out);
  free(out2);
  vtl_doc_free(back);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(bad_malformed) {
  const char *t = "{\"format\": \"vtl-timeline\", \"version\": 1,";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "line 1, column", NULL));
  t = "";
  ASSERT_OK(expect_fail_n(t, 0, VTL_EPARSE, "line", NULL));
  t = "{\"format\": \"vtl-timeline\", \"version\": 1} trailing";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "line 1", NULL));
  t = "{\"format\": \"vtl-timeline\",\n \"version\": 1\n, }";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "line 3", NULL));
  t = "{'format': 'vtl-timeline'}"; /* single quotes are not JSON */
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "line 1", NULL));
  /* a valid document cut short by len */
  t = "{\"format\": \"vtl-timeline\", \"version\": 1}";
  ASSERT_OK(expect_fail_n(t, strlen(t) - 1, VTL_EPARSE, NULL, NULL));
  /* a NUL byte inside the buffer */
  const char nul[] = "{\"format\": \"vtl-timeline\",\0 \"version\": 1}";
  ASSERT_OK(expect_fail_n(nul, sizeof nul - 1, VTL_EPARSE, NULL, NULL));
  /* a top level that is not an object */
  t = "[1, 2]";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "top level", NULL));
  t = "\"vtl-timeline\"";
  vtl_doc *doc = NULL;
  ASSERT(vtl_json_import(t, strlen(t), &doc, NULL) != 0);
  ASSERT_NULL(doc);
  return 0;
}

TEST_IMPL(bad_format_version) {
  const char *t = "{\"version\": 1}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "format", NULL));
  t = "{\"format\": \"deforum\", \"version\": 1}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "format", "vtl-timeline"));
  t = "{\"format\": 7, \"version\": 1}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "format", NULL));
  t = "{\"format\": \"vtl-timeline\"}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EUNSUPPORTED, "version", NULL));
  t = "{\"format\": \"vtl-timeline\", \"version\": 2}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EUNSUPPORTED, "version", "1"));
  t = "{\"format\": \"vtl-timeline\", \"version\": \"1\"}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EUNSUPPORTED, "version", NULL));
  t = "{\"format\": \"vtl-timeline\", \"version\": 1.0}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EUNSUPPORTED, "version", NULL));
  return 0;
}

TEST_IMPL(bad_top_level) {
  ASSERT_OK(expect_fail("'trakcs': []", VTL_EINVAL, "trakcs: unknown key", NULL));
  ASSERT_OK(expect_fail("'Tracks': []", VTL_EINVAL, "Tracks", NULL));
  ASSERT_OK(expect_fail("'track': []", VTL_EINVAL, "track: unknown key", NULL));
  ASSERT_OK(expect_fail("'tracks': {}", VTL_ETYPE, "tracks: expected an array",
                        NULL));
  ASSERT_OK(expect_fail("'markers': null", VTL_ETYPE, "markers", NULL));
  ASSERT_OK(expect_fail("'tracks': [5]", VTL_ETYPE,
                        "tracks[0]: expected an object", NULL));
  ASSERT_OK(expect_fail("'assets': [{'id': 1}, []]", VTL_ETYPE, "assets[1]", NULL));
  ASSERT_OK(expect_fail("'timeline': []", VTL_ETYPE,
                        "timeline: expected an object", NULL));
  ASSERT_OK(expect_fail("'timeline': {'id': 1}", VTL_EINVAL,
                        "timeline.id: unknown field", NULL));
  return 0;
}

TEST_IMPL(bad_unknown_field) {
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'colour': 5}]", VTL_EINVAL,
                        "tracks[0].colour: unknown field of track", NULL));
  ASSERT_OK(expect_fail("'timeline': {'fps': 12.0, 'framerate': 12}",
                        VTL_EINVAL, "timeline.framerate: unknown field", NULL));
  ASSERT_OK(expect_fail("'markers': [{'id': 1}, {'id': 2, 'Label': 'x'}]",
                        VTL_EINVAL, "markers[1].Label", NULL));
  ASSERT_OK(expect_fail("'shots': [{'id': 1, '': 0}]", VTL_EINVAL,
                        "shots[0].: unknown field", NULL));
  return 0;
}

TEST_IMPL(bad_enum) {
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2, 'interp': 'wobble'}]",
                        VTL_ERANGE, "keyframes[0].interp", "wobble"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2, 'interp': 'Linear'}]",
                        VTL_ERANGE, "hold, linear, bezier", NULL));
  ASSERT_OK(expect_fail("'timeline': {'sampler': 'dpm++'}", VTL_ERANGE,
                        "timeline.sampler", "ddim, euler"));
  ASSERT_OK(expect_fail("'timeline': {'seed_mode': 1}", VTL_ERANGE,
                        "timeline.seed_mode", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'target': 'zoooom'}]",
                        VTL_ERANGE, "tracks[0].target", "zoooom"));
  /* a long bad value is cut at a character boundary (the message stays
   * valid UTF-8): 39 'a' then a 2-byte character across byte 40 */
  ASSERT_OK(expect_fail("'assets': [{'id': 2, 'kind': "
                        "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9zzz'}]",
                        VTL_ERANGE, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" (",
                        "image, manuscript, sound"));
  ASSERT_OK(expect_fail("'assets': [{'id': 2, 'kind': 'video'}]", VTL_ERANGE,
                        "assets[0].kind", NULL));
  ASSERT_OK(expect_fail("'shots': [{'id': 2, 'source': null}]", VTL_ERANGE,
                        "shots[0].source", NULL));
  return 0;
}

TEST_IMPL(bad_numbers) {
  ASSERT_OK(expect_fail("'timeline': {'fps': 500.0}", VTL_ERANGE,
                        "timeline.fps", "500 is outside 1..240"));
  {
    /* the path once, not "timeline.fps: timeline.fps: ..." */
    vtl_doc *doc = NULL;
    vtl_error err;
    char *t = q("{'format': 'vtl-timeline', 'version': 1,"
                " 'timeline': {'fps': 500.0}}");
    ASSERT_EQ(vtl_json_import(t, strlen(t), &doc, &err), VTL_ERANGE);
    ASSERT_STR_EQ(err.message, "timeline.fps: 500 is outside 1..240");
    free(t);
  }
  ASSERT_OK(expect_fail("'timeline': {'width': 9000}", VTL_ERANGE,
                        "timeline.width", NULL));
  ASSERT_OK(expect_fail("'timeline': {'width': 100}", VTL_ERANGE,
                        "timeline.width", "multiples of 8"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2, 'frame': 1000000}]",
                        VTL_ERANGE, "keyframes[0]", "keyframe.frame"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'color': -1}]", VTL_ERANGE,
                        "tracks[0]", "track.color"));
  /* integers must be integers */
  ASSERT_OK(expect_fail("'timeline': {'steps': 1.5}", VTL_ETYPE,
                        "timeline.steps: expected an integer", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'order': 0.5}]", VTL_ETYPE,
                        "tracks[0].order: expected an integer", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2.5}]",
                        VTL_ETYPE, "keyframes[0].track", NULL));
  /* other wrong types */
  ASSERT_OK(expect_fail("'timeline': {'fps': '12'}", VTL_ETYPE,
                        "timeline.fps: expected a number", NULL));
  ASSERT_OK(expect_fail("'timeline': {'name': 5}", VTL_ETYPE,
                        "timeline.name: expected a string", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'mute': 1}]", VTL_ETYPE,
                        "tracks[0].mute: expected true or false", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'mute': null}]", VTL_ETYPE,
                        "tracks[0].mute", NULL));
  /* numbers JSON cannot hold as int64 / double */
  ASSERT_OK(expect_fail("'timeline': {'fps': 1e400}", VTL_EPARSE,
                        "real number overflow", NULL));
  ASSERT_OK(expect_fail("'timeline': {'seed': 18446744073709551616}",
                        VTL_EPARSE, "too big integer", NULL));
  ASSERT_OK(expect_fail("'timeline': {'seed': 4294967296}", VTL_ERANGE,
                        "timeline.seed", NULL));
  return 0;
}

TEST_IMPL(bad_ids) {
  ASSERT_OK(expect_fail("'tracks': [{'name': 'x'}]", VTL_EINVAL,
                        "tracks[0].id: expected a positive integer", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 0}]", VTL_EINVAL, "tracks[0].id",
                        NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': -3}]", VTL_EINVAL, "tracks[0].id",
                        NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': '2'}]", VTL_EINVAL, "tracks[0].id",
                        NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2.0}]", VTL_EINVAL, "tracks[0].id",
                        NULL));
  ASSERT_OK(expect_fail("'markers': [{'id': 1}, {'id': 9007199254740992}]",
                        VTL_ERANGE, "markers[1]", "2^53-1"));
  return 0;
}

TEST_IMPL(bad_references) {
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2}, {'id': 4, 'track': 99}]",
                        VTL_EREF, "keyframes[1]", "no track 99"));
  ASSERT_OK(expect_fail("'keyframes': [{'id': 3}]", VTL_EREF, "keyframes[0]",
                        "keyframe.track: required"));
  ASSERT_OK(expect_fail("'keyframes': [{'id': 3, 'track': 0}]", VTL_EREF,
                        "keyframes[0]", NULL));
  ASSERT_OK(expect_fail("'shots': [{'id': 3, 'asset': 8}]", VTL_EREF,
                        "shots[0]", "no asset 8"));
  ASSERT_OK(expect_fail("'prompt_clips': [{'id': 3, 'track': 1, 'end': 5}]",
                        VTL_EREF, "prompt_clips[0]", "no track 1"));
  /* an id of another kind is not a reference */
  ASSERT_OK(expect_fail("'markers': [{'id': 2}], 'keyframes': "
                        "[{'id': 3, 'track': 2}]",
                        VTL_EREF, "keyframes[0]", NULL));
  /* order of the arrays in the file does not matter */
  const char *t = "{\"keyframes\": [{\"id\": 3, \"track\": 2}],"
                  " \"shots\": [{\"id\": 5, \"source\": \"image\", \"asset\": 9}],"
                  " \"assets\": [{\"id\": 9}], \"tracks\": [{\"id\": 2}],"
                  " \"version\": 1, \"format\": \"vtl-timeline\"}";
  vtl_doc *doc = import_ok(t);
  ASSERT_NOT_NULL(doc);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(bad_duplicates) {
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}, {'id': 2}]", VTL_EEXIST,
                        "tracks[1]", "track 2 already exists"));
  ASSERT_OK(expect_fail("'assets': [{'id': 1}, {'id': 2}, {'id': 1}]",
                        VTL_EEXIST, "assets[2]", NULL));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'name': 'a', 'name': 'b'}]",
                        VTL_EPARSE, "duplicate", NULL));
  ASSERT_OK(expect_fail("'tracks': [], 'tracks': []", VTL_EPARSE, "duplicate",
                        NULL));
  const char *t = "{\"format\": \"vtl-timeline\", \"version\": 1, \"version\": 1}";
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "duplicate", NULL));
  return 0;
}

TEST_IMPL(bad_constraints) {
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'target': 'prompt'}],"
                        " 'prompt_clips': [{'id': 3, 'track': 2, 'start': 10,"
                        " 'end': 10}]",
                        VTL_ERANGE, "prompt_clips[0]", "must be after start"));
  ASSERT_OK(expect_fail("'shots': [{'id': 1}, {'id': 3, 'source': 'image'}]",
                        VTL_EREF, "shots[1]", "needs an image asset"));
  ASSERT_OK(expect_fail("'assets': [{'id': 8, 'kind': 'sound'}],"
                        " 'shots': [{'id': 3, 'source': 'image', 'asset': 8}]",
                        VTL_EREF, "asset 8", "shot 3"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'target': 'prompt'}],"
                        " 'keyframes': [{'id': 3, 'track': 2}]",
                        VTL_EINVAL, "keyframes[0]", "prompt track"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2}], 'keyframes': [{'id': 3,"
                        " 'track': 2, 'expr': 'sin(t'}]",
                        VTL_EEXPR, "keyframes[0]", "keyframe.expr"));
  ASSERT_OK(expect_fail("'tracks': [{'id': 2, 'name': '\\udc00'}]", VTL_EPARSE,
                        NULL, NULL)); /* a lone surrogate escape */
  return 0;
}

TEST_IMPL(bad_huge_string) {
  size_t n = 10u << 20;
  const char *pre = "{\"format\": \"vtl-timeline\", \"version\": 1, "
                    "\"timeline\": {\"name\": \"";
  const char *post = "\"}}";
  size_t len = strlen(pre) + n + strlen(post);
  char *t = malloc(len + 1);
  ASSERT_NOT_NULL(t);
  memcpy(t, pre, strlen(pre));
  memset(t + strlen(pre), 'a', n);
  memcpy(t + strlen(pre) + n, post, strlen(post) + 1);
  ASSERT_OK(expect_fail_n(t, len, VTL_ETOOLONG, "timeline.name",
                          "longer than 256 bytes"));
  free(t);
  /* the same in a prompt text */
  pre = "{\"format\": \"vtl-timeline\", \"version\": 1, \"tracks\": [{\"id\": 2,"
        " \"target\": \"prompt\"}], \"prompt_clips\": [{\"id\": 3, \"track\": 2,"
        " \"end\": 5, \"text\": \"";
  post = "\"}]}";
  len = strlen(pre) + n + strlen(post);
  t = malloc(len + 1);
  memcpy(t, pre, strlen(pre));
  memset(t + strlen(pre), 'b', n);
  memcpy(t + strlen(pre) + n, post, strlen(post) + 1);
  ASSERT_OK(expect_fail_n(t, len, VTL_ETOOLONG, "prompt_clips[0]",
                          "prompt_clip.text"));
  free(t);
  return 0;
}

TEST_IMPL(bad_deep_nesting) {
  size_t n = 100000;
  char *t = malloc(n + 1);
  memset(t, '[', n);
  t[n] = '\0';
  ASSERT_OK(expect_fail_n(t, n, VTL_EPARSE, "line 1", NULL));
  /* closed, too */
  char *u = malloc(2 * n + 1);
  memset(u, '[', n);
  memset(u + n, ']', n);
  u[2 * n] = '\0';
  ASSERT_OK(expect_fail_n(u, 2 * n, VTL_EPARSE, NULL, NULL));
  /* inside a document, and with objects */
  const char *pre = "{\"format\": \"vtl-timeline\", \"version\": 1, \"tracks\": ";
  char *v = malloc(strlen(pre) + n + 1);
  strcpy(v, pre);
  memset(v + strlen(pre), '[', n);
  v[strlen(pre) + n] = '\0';
  ASSERT_OK(expect_fail_n(v, strlen(v), VTL_EPARSE, NULL, NULL));
  char *w = malloc(5 * n + 1);
  for (size_t i = 0; i < n; i++) memcpy(w + 5 * i, "{\"a\":", 5);
  w[5 * n] = '\0';
  ASSERT_OK(expect_fail_n(w, 5 * n, VTL_EPARSE, NULL, NULL));
  free(t);
  free(u);
  free(v);
  free(w);
  return 0;
}

TEST_IMPL(bad_nan_inf) {
  ASSERT_OK(expect_fail("'timeline': {'fps': NaN}", VTL_EPARSE, "line 1", NULL));
  ASSERT_OK(expect_fail("'timeline': {'fps': Infinity}", VTL_EPARSE, "line 1",
                        NULL));
  ASSERT_OK(expect_fail("'timeline': {'guidance': -Infinity}", VTL_EPARSE,
                        NULL, NULL));
  ASSERT_OK(expect_fail("'timeline': {'guidance': nan}", VTL_EPARSE, NULL,
                        NULL));
  return 0;
}

TEST_IMPL(bad_nul) {
  /* \u0000 would cut the string short in C: refused, whichever layer */
  vtl_doc *doc = NULL;
  vtl_error err;
  char *t = q("{'format': 'vtl-timeline', 'version': 1,"
              " 'timeline': {'name': 'abc\\u0000def'}}");
  int rc = vtl_json_import(t, strlen(t), &doc, &err);
  ASSERT(rc == VTL_EPARSE || rc == VTL_EINVAL);
  ASSERT_NULL(doc);
  ASSERT(strstr(err.message, "u0000") || strstr(err.message, "NUL"));
  free(t);
  t = q("{'format': 'vtl-timeline', 'version': 1,"
        " 'markers': [{'id': 1, 'note': '\\u0000'}]}");
  rc = vtl_json_import(t, strlen(t), &doc, &err);
  ASSERT(rc == VTL_EPARSE || rc == VTL_EINVAL);
  ASSERT_NULL(doc);
  free(t);
  return 0;
}

TEST_IMPL(bad_utf8) {
  const char *bad[] = {"\xff", "\xc3", "\xed\xa0\x80", "\xc0\x80",
                       "\xf4\x90\x80\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char t[256];
    snprintf(t, sizeof t, "{\"format\": \"vtl-timeline\", \"version\": 1, "
                          "\"timeline\": {\"name\": \"x%sy\"}}", bad[i]);
    ASSERT_OK(expect_fail_n(t, strlen(t), VTL_EPARSE, "line 1", NULL));
  }
  return 0;
}

/* {format, version, "<key>": [0, 0, ... n times]} */
static char *big_array(const char *key, size_t n) {
  size_t cap = 128 + 2 * n;
  char *t = malloc(cap);
  int o = snprintf(t, cap, "{\"format\": \"vtl-timeline\", \"version\": 1, "
                           "\"%s\": [", key);
  for (size_t i = 0; i < n; i++) {
    t[o++] = '0';
    t[o++] = i + 1 < n ? ',' : ']';
  }
  t[o++] = '}';
  t[o] = '\0';
  return t;
}

TEST_IMPL(bad_too_many) {
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
    size_t max = vtl_entities[k].max_count;
    char *t = big_array(vtl_entities[k].plural, max + 1);
    char msg[64];
    snprintf(msg, sizeof msg, "%s: more than %zu", vtl_entities[k].plural, max);
    ASSERT_OK(expect_fail_n(t, strlen(t), VTL_ELIMIT, msg, NULL));
    free(t);
  }
  /* at the limit the array itself is accepted (its elements are checked) */
  char *t = big_array("tracks", VTL_MAX_TRACKS);
  ASSERT_OK(expect_fail_n(t, strlen(t), VTL_ETYPE, "tracks[0]", NULL));
  free(t);
  /* VTL_MAX_TRACKS real tracks import */
  size_t cap = 64 + 32 * VTL_MAX_TRACKS;
  t = malloc(cap);
  int o = snprintf(t, cap, "{\"format\": \"vtl-timeline\", \"version\": 1, "
                           "\"tracks\": [");
  for (int i = 0; i < VTL_MAX_TRACKS; i++)
    o += snprintf(t + o, cap - o, "%s{\"id\": %d}", i ? "," : "", i + 1);
  snprintf(t + o, cap - o, "]}");
  vtl_doc *doc = import_ok(t);
  ASSERT_NOT_NULL(doc);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), VTL_MAX_TRACKS);
  vtl_doc_free(doc);
  free(t);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(roundtrip_rich)
  TEST_ENTRY(defaults_minimal)
  TEST_ENTRY(export_canonical)
  TEST_ENTRY(bad_malformed)
  TEST_ENTRY(bad_format_version)
  TEST_ENTRY(bad_top_level)
  TEST_ENTRY(bad_unknown_field)
  TEST_ENTRY(bad_enum)
  TEST_ENTRY(bad_numbers)
  TEST_ENTRY(bad_ids)
  TEST_ENTRY(bad_references)
  TEST_ENTRY(bad_duplicates)
  TEST_ENTRY(bad_constraints)
  TEST_ENTRY(bad_huge_string)
  TEST_ENTRY(bad_deep_nesting)
  TEST_ENTRY(bad_nan_inf)
  TEST_ENTRY(bad_nul)
  TEST_ENTRY(bad_utf8)
  TEST_ENTRY(bad_too_many)
)
