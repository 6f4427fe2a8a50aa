/* test_doc.c — the document model: ops, validation, atomic apply, cascades,
 * inverses (undo), validate, clone and to_ops (timeline/doc.c, op.c,
 * fields.c).
 *
 *   new_doc_defaults          a fresh document: one default Timeline
 *   create_defaults           every kind created with only what it needs
 *   create_with_fields        every kind created with every field given
 *   set_every_field           every settable field of every kind, by type
 *   delete_every_kind         delete, then delete / set the missing entity
 *   err_unknown_field         field index out of the table, given twice
 *   err_wrong_type            each field type given each wrong value type
 *   err_out_of_range          numbers outside the field's range
 *   err_nan_inf               NaN / +-Inf reals, for REAL and INT fields
 *   err_not_integer           1.5 for an INT field; 30.0 is accepted
 *   err_bad_enum              enum index -1, n, and a real
 *   err_too_long              names, texts, expressions, sha256 at the limit
 *   err_invalid_utf8          malformed, overlong, surrogate, > U+10FFFF
 *   err_dangling_ref          keyframe on a missing track, shot's asset
 *   err_duplicate_id          VTL_EEXIST
 *   err_id_range              0 and 2^53 refused, 2^53-1 accepted
 *   err_timeline_once         creating / deleting the Timeline refused
 *   err_fixed_fields          track.target, keyframe.track, clip.track
 *   err_op_shape              SET with 0 or 2 fields, bad kind, bad type
 *   err_limit_tracks          VTL_MAX_TRACKS, then VTL_ELIMIT
 *   err_limit_assets          VTL_MAX_ASSETS, then VTL_ELIMIT
 *   err_keyframe_prompt_track keys on a prompt track, clips on a param track
 *   clip_end_at_batch_end     end <= start refused at the end of a batch only
 *   err_width_multiple_of_8   checked at batch end, like clip ends
 *   err_image_shot            image source needs an image asset
 *   err_asset_kind_image_shot an image shot's asset cannot stop being one
 *   atomic_fifth_op_fails     a failing 5th op leaves the document identical
 *   cascade_delete_track      a track takes its keyframes and clips
 *   cascade_delete_asset      shots fall back to noise and asset 0
 *   inverse_restores          the inverse of every batch restores the bytes
 *   validate_changes_nothing  vtl_doc_validate never changes the document
 *   clone_equals              vtl_doc_clone is an independent equal copy
 *   to_ops_reproduces         vtl_doc_to_ops on a fresh doc gives the same
 *   list_sorted_by_id         vtl_doc_list / vtl_doc_count / vtl_doc_get
 *   op_constructors           vtl_op_* helpers and value copies
 *   error_names               vtl_strerror / vtl_err_name
 */
#include <stdbool.h>
#include <stdint.h>

#include "task.h"
#include "vtl_import.h"
#include "vtl_timeline.h"

/* ---- helpers -------------------------------------------------------------- */

/* Plumbing that cannot fail in a correct test (op construction). */


/* A batch under construction: up to 64 ops. */
typedef struct {
  vtl_op ops[64];
  size_t n;
} batch;

static vtl_op *b_create(batch *b, vtl_entity_kind k, vtl_id id) {
  vtl_op *o = &b->ops[b->n++];
  CHECK(vtl_op_create(o, k, id));
  return o;
}
static void b_delete(batch *b, vtl_entity_kind k, vtl_id id) {
  CHECK(vtl_op_delete(&b->ops[b->n++], k, id));
}
static void b_int(batch *b, vtl_entity_kind k, vtl_id id, const char *f,
                  int64_t v) {
  CHECK(vtl_op_set_int(&b->ops[b->n++], k, id, f, v));
}
static void b_real(batch *b, vtl_entity_kind k, vtl_id id, const char *f,
                   double v) {
  CHECK(vtl_op_set_real(&b->ops[b->n++], k, id, f, v));
}
static void b_bool(batch *b, vtl_entity_kind k, vtl_id id, const char *f,
                   bool v) {
  CHECK(vtl_op_set_bool(&b->ops[b->n++], k, id, f, v));
}
static void b_str(batch *b, vtl_entity_kind k, vtl_id id, const char *f,
                  const char *v) {
  CHECK(vtl_op_set_str(&b->ops[b->n++], k, id, f, v));
}

static void b_clear(batch *b) {
  for (size_t i = 0; i < b->n; i++) vtl_op_free(&b->ops[i]);
  b->n = 0;
}

/* Applies and empties the batch; returns apply's code. */
static int b_apply(vtl_doc *doc, batch *b, vtl_error *err) {
  int rc = vtl_doc_apply(doc, b->ops, b->n, NULL, NULL, err);
  b_clear(b);
  return rc;
}

static int b_apply_inv(vtl_doc *doc, batch *b, vtl_op **inv, size_t *ninv,
                       vtl_error *err) {
  int rc = vtl_doc_apply(doc, b->ops, b->n, inv, ninv, err);
  b_clear(b);
  return rc;
}

/* A one-op batch: apply it and return the code (err filled). */
static int apply1(vtl_doc *doc, vtl_op op, vtl_error *err) {
  int rc = vtl_doc_apply(doc, &op, 1, NULL, NULL, err);
  vtl_op_free(&op);
  return rc;
}

static vtl_op set_int(vtl_entity_kind k, vtl_id id, const char *f, int64_t v) {
  vtl_op o;
  CHECK(vtl_op_set_int(&o, k, id, f, v));
  return o;
}
static vtl_op set_real(vtl_entity_kind k, vtl_id id, const char *f, double v) {
  vtl_op o;
  CHECK(vtl_op_set_real(&o, k, id, f, v));
  return o;
}
static vtl_op set_bool(vtl_entity_kind k, vtl_id id, const char *f, bool v) {
  vtl_op o;
  CHECK(vtl_op_set_bool(&o, k, id, f, v));
  return o;
}
static vtl_op set_str(vtl_entity_kind k, vtl_id id, const char *f,
                      const char *v) {
  vtl_op o;
  CHECK(vtl_op_set_str(&o, k, id, f, v));
  return o;
}
/* A SET whose value has an arbitrary type / field index. */
static vtl_op set_raw(vtl_entity_kind k, vtl_id id, int field, vtl_value v) {
  vtl_op o = {.type = VTL_OP_SET, .kind = k, .id = id};
  o.fields = malloc(sizeof *o.fields);
  CHECK(o.fields == NULL);
  CHECK(vtl_value_copy(&o.fields[0].value, &v));
  o.fields[0].field = field;
  o.nfields = 1;
  return o;
}

static char *export_doc(vtl_doc *doc) {
  char *s = NULL;
  CHECK(vtl_json_export(doc, &s));
  return s;
}

static vtl_doc *new_doc(void) {
  vtl_doc *d = NULL;
  CHECK(vtl_doc_new(&d));
  return d;
}

static int tracks_add(batch *b, vtl_id id, vtl_target target, int64_t order) {
  vtl_op *o = b_create(b, VTL_ENT_TRACK, id);
  CHECK(vtl_op_add_int(o, "target", target));
  CHECK(vtl_op_add_int(o, "order", order));
  return 0;
}

static void key_add(batch *b, vtl_id id, vtl_id track, int64_t frame,
                    double value, vtl_interp interp) {
  vtl_op *o = b_create(b, VTL_ENT_KEYFRAME, id);
  CHECK(vtl_op_add_int(o, "track", (int64_t)track));
  CHECK(vtl_op_add_int(o, "frame", frame));
  CHECK(vtl_op_add_real(o, "value", value));
  CHECK(vtl_op_add_int(o, "interp", interp));
}

static void clip_add(batch *b, vtl_id id, vtl_id track, int64_t start,
                     int64_t end, const char *text) {
  vtl_op *o = b_create(b, VTL_ENT_PROMPT_CLIP, id);
  CHECK(vtl_op_add_int(o, "track", (int64_t)track));
  CHECK(vtl_op_add_int(o, "start", start));
  CHECK(vtl_op_add_int(o, "end", end));
  CHECK(vtl_op_add_str(o, "text", text));
}

static void asset_add(batch *b, vtl_id id, vtl_asset_kind kind,
                      const char *sha) {
  vtl_op *o = b_create(b, VTL_ENT_ASSET, id);
  CHECK(vtl_op_add_int(o, "kind", kind));
  CHECK(vtl_op_add_str(o, "sha256", sha));
}

static void shot_add(batch *b, vtl_id id, int64_t start, vtl_source src,
                     vtl_id asset) {
  vtl_op *o = b_create(b, VTL_ENT_SHOT, id);
  CHECK(vtl_op_add_int(o, "start", start));
  CHECK(vtl_op_add_int(o, "source", src));
  if (asset) CHECK(vtl_op_add_int(o, "asset", (int64_t)asset));
}

/* A document using every kind and most fields:
 *   assets 100 (image) 101 (sound) 102 (image)
 *   tracks 2 zoom, 3 angle (muted), 4 prompt, 5 translation_x, 6 prompt
 *   keys 10 11 12 on 2, 13 on 3, 14 on 5; clips 20 21 on 4, 22 on 6
 *   shots 30 (noise) 31 (image 100) 32 (image 100) 33 (noise, asset 102)
 *   markers 40 41 */
static void build_rich(vtl_doc *doc) {
  batch b = {0};
  vtl_id T = VTL_TIMELINE_ID;
  b_str(&b, VTL_ENT_TIMELINE, T, "name", "Rich film");
  b_real(&b, VTL_ENT_TIMELINE, T, "fps", 24);
  b_int(&b, VTL_ENT_TIMELINE, T, "width", 768);
  b_int(&b, VTL_ENT_TIMELINE, T, "length", 200);
  b_str(&b, VTL_ENT_TIMELINE, T, "model", "sd15.safetensors");
  b_int(&b, VTL_ENT_TIMELINE, T, "sampler", VTL_SAMPLER_EULER_A);
  b_int(&b, VTL_ENT_TIMELINE, T, "seed", 1234);
  b_int(&b, VTL_ENT_TIMELINE, T, "seed_mode", VTL_SEED_LADDER);
  asset_add(&b, 100, VTL_ASSET_IMAGE, "aa11");
  asset_add(&b, 101, VTL_ASSET_SOUND, "bb22");
  asset_add(&b, 102, VTL_ASSET_IMAGE, "cc33");
  tracks_add(&b, 2, VTL_PARAM_ZOOM, 0);
  tracks_add(&b, 3, VTL_PARAM_ANGLE, 1);
  b_bool(&b, VTL_ENT_TRACK, 3, "mute", true);
  tracks_add(&b, 4, VTL_TARGET_PROMPT, 2);
  tracks_add(&b, 5, VTL_PARAM_TX, 3);
  tracks_add(&b, 6, VTL_TARGET_PROMPT, 4);
  key_add(&b, 10, 2, 0, 1.0, VTL_INTERP_LINEAR);
  key_add(&b, 11, 2, 50, 1.5, VTL_INTERP_BEZIER);
  b_real(&b, VTL_ENT_KEYFRAME, 11, "out_dt", 10);
  b_real(&b, VTL_ENT_KEYFRAME, 11, "out_dv", 0.2);
  key_add(&b, 12, 2, 100, 1.0, VTL_INTERP_HOLD);
  b_real(&b, VTL_ENT_KEYFRAME, 12, "in_dt", -5);
  b_str(&b, VTL_ENT_KEYFRAME, 12, "expr", "1 + 0.01 * sin(t)");
  key_add(&b, 13, 3, 0, 5, VTL_INTERP_HOLD);
  key_add(&b, 14, 5, 10, -3, VTL_INTERP_EASE_IN_OUT);
  clip_add(&b, 20, 4, 0, 60, "a forest");
  b_str(&b, VTL_ENT_PROMPT_CLIP, 20, "negative", "blurry");
  b_int(&b, VTL_ENT_PROMPT_CLIP, 20, "fade_out", 10);
  clip_add(&b, 21, 4, 50, 120, "a city");
  b_int(&b, VTL_ENT_PROMPT_CLIP, 21, "fade_in", 10);
  b_real(&b, VTL_ENT_PROMPT_CLIP, 21, "weight", 2);
  clip_add(&b, 22, 6, 100, 150, "caf\xc3\xa9 \xf0\x9f\x98\x80");
  shot_add(&b, 30, 0, VTL_SOURCE_NOISE, 0);
  b_str(&b, VTL_ENT_SHOT, 30, "name", "intro");
  shot_add(&b, 31, 80, VTL_SOURCE_IMAGE, 100);
  b_real(&b, VTL_ENT_SHOT, 31, "strength", 0.6);
  b_int(&b, VTL_ENT_SHOT, 31, "seed", 99);
  shot_add(&b, 32, 120, VTL_SOURCE_IMAGE, 100);
  shot_add(&b, 33, 160, VTL_SOURCE_NOISE, 102);
  vtl_op *m = b_create(&b, VTL_ENT_MARKER, 40);
  CHECK(vtl_op_add_int(m, "frame", 10));
  CHECK(vtl_op_add_str(m, "label", "beat"));
  CHECK(vtl_op_add_str(m, "note", "drums \"in\"\n"));
  b_create(&b, VTL_ENT_MARKER, 41);
  vtl_error err;
  int rc = b_apply(doc, &b, &err);
  if (rc) {
    fprintf(stderr, "build_rich: %s (op %d)\n", err.message, err.op_index);
    abort();
  }
}

/* Reads field f of ent as an int64 / double / bool / string. */
static int64_t rd_int(const void *ent, const vtl_field_desc *f) {
  const char *p = (const char *)ent + f->offset;
  return f->type == VTL_FT_REF ? (int64_t) * (const vtl_id *)p
                               : *(const int64_t *)p;
}
static double rd_real(const void *ent, const vtl_field_desc *f) {
  return *(const double *)((const char *)ent + f->offset);
}
static bool rd_bool(const void *ent, const vtl_field_desc *f) {
  return *(const bool *)((const char *)ent + f->offset);
}
static const char *rd_str(const void *ent, const vtl_field_desc *f) {
  return *(const char *const *)((const char *)ent + f->offset);
}

static const vtl_field_desc *fdesc(vtl_entity_kind k, const char *name) {
  int i = vtl_field_lookup(k, name);
  CHECK(i < 0);
  return &vtl_entities[k].fields[i];
}

/* ---- tests: defaults, create, set, delete --------------------------------- */

TEST_IMPL(new_doc_defaults) {
  vtl_doc *doc = new_doc();
  const vtl_timeline *t = vtl_doc_timeline(doc);
  ASSERT_NOT_NULL(t);
  ASSERT(vtl_doc_get(doc, VTL_ENT_TIMELINE, VTL_TIMELINE_ID) == t);
  ASSERT_EQ(t->id, VTL_TIMELINE_ID);
  ASSERT_STR_EQ(t->name, "");
  ASSERT_STR_EQ(t->model, "");
  ASSERT_NEAR(t->fps, 12, 0);
  ASSERT_EQ(t->width, 512);
  ASSERT_EQ(t->height, 512);
  ASSERT_EQ(t->length, 120);
  ASSERT_EQ(t->sampler, VTL_SAMPLER_DDIM);
  ASSERT_EQ(t->spacing, VTL_SPACING_LEADING);
  ASSERT_EQ(t->steps, 20);
  ASSERT_NEAR(t->guidance, 7.5, 0);
  ASSERT_NEAR(t->strength, 0.35, 0);
  ASSERT_EQ(t->seed, 0);
  ASSERT_EQ(t->seed_mode, VTL_SEED_ITER);
  ASSERT_EQ(t->seed_iter_n, 1);
  ASSERT_EQ(t->anim_mode, VTL_ANIM_2D);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TIMELINE), 1);
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++)
    ASSERT_EQ(vtl_doc_count(doc, k), 0);
  ASSERT_EQ(vtl_doc_count(doc, (vtl_entity_kind)99), 0);
  ASSERT_NULL(vtl_doc_get(doc, (vtl_entity_kind)99, 1));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_TRACK, 1));
  vtl_doc_free(doc);
  vtl_doc_free(NULL); /* allowed */
  return 0;
}

/* Every field of ent is its table default (REF fields skipped). */
static int check_defaults(vtl_entity_kind k, const void *ent) {
  const vtl_entity_desc *d = &vtl_entities[k];
  for (int i = 0; i < d->nfields; i++) {
    const vtl_field_desc *f = &d->fields[i];
    switch (f->type) {
    case VTL_FT_INT:
    case VTL_FT_ENUM: ASSERT_EQ(rd_int(ent, f), (int64_t)f->def); break;
    case VTL_FT_REAL: ASSERT_NEAR(rd_real(ent, f), f->def, 0); break;
    case VTL_FT_BOOL: ASSERT_EQ(rd_bool(ent, f), f->def != 0); break;
    case VTL_FT_STR: ASSERT_STR_EQ(rd_str(ent, f), ""); break;
    case VTL_FT_REF: break;
    }
  }
  return 0;
}

TEST_IMPL(create_defaults) {
  vtl_doc *doc = new_doc();
  batch b = {0};
  vtl_error err;
  b_create(&b, VTL_ENT_TRACK, 2);
  tracks_add(&b, 3, VTL_TARGET_PROMPT, 0);
  vtl_op *o = b_create(&b, VTL_ENT_KEYFRAME, 4);
  CHECK(vtl_op_add_int(o, "track", 2));
  o = b_create(&b, VTL_ENT_PROMPT_CLIP, 5);
  CHECK(vtl_op_add_int(o, "track", 3));
  b_create(&b, VTL_ENT_SHOT, 6);
  b_create(&b, VTL_ENT_MARKER, 7);
  b_create(&b, VTL_ENT_ASSET, 8);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(err.code, 0);
  ASSERT_EQ(err.op_index, -1);

  const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, 2);
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->id, 2);
  ASSERT_OK(check_defaults(VTL_ENT_TRACK, t));
  /* the documented defaults, pinned independently of the table */
  ASSERT_EQ(t->target, VTL_PARAM_STRENGTH);
  ASSERT_EQ(t->order, 0);
  ASSERT_EQ(t->mute, false);
  ASSERT_EQ(t->lock, false);
  ASSERT_EQ(t->color, 0x8899aa);

  const vtl_keyframe *k = vtl_doc_get(doc, VTL_ENT_KEYFRAME, 4);
  ASSERT_NOT_NULL(k);
  ASSERT_OK(check_defaults(VTL_ENT_KEYFRAME, k));
  ASSERT_EQ(k->track, 2);
  ASSERT_EQ(k->frame, 0);
  ASSERT_EQ(k->interp, VTL_INTERP_LINEAR);
  ASSERT_STR_EQ(k->expr, "");

  const vtl_prompt_clip *c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 5);
  ASSERT_NOT_NULL(c);
  ASSERT_OK(check_defaults(VTL_ENT_PROMPT_CLIP, c));
  ASSERT_EQ(c->track, 3);
  ASSERT_EQ(c->start, 0);
  ASSERT_EQ(c->end, 1);
  ASSERT_NEAR(c->weight, 1, 0);

  const vtl_shot *s = vtl_doc_get(doc, VTL_ENT_SHOT, 6);
  ASSERT_NOT_NULL(s);
  ASSERT_OK(check_defaults(VTL_ENT_SHOT, s));
  ASSERT_EQ(s->source, VTL_SOURCE_NOISE);
  ASSERT_EQ(s->asset, 0);
  ASSERT_EQ(s->seed, -1);
  ASSERT_NEAR(s->strength, 0.75, 0);

  const vtl_marker *m = vtl_doc_get(doc, VTL_ENT_MARKER, 7);
  ASSERT_NOT_NULL(m);
  ASSERT_OK(check_defaults(VTL_ENT_MARKER, m));
  const vtl_asset *a = vtl_doc_get(doc, VTL_ENT_ASSET, 8);
  ASSERT_NOT_NULL(a);
  ASSERT_OK(check_defaults(VTL_ENT_ASSET, a));
  ASSERT_EQ(a->kind, VTL_ASSET_IMAGE);
  ASSERT_EQ(a->size, 0);
  ASSERT_OK(check_defaults(VTL_ENT_TIMELINE, vtl_doc_timeline(doc)));
  vtl_doc_free(doc);
  return 0;
}

/* One non-default value for every settable field, in an order that keeps
 * every intermediate document valid (a clip's end before its start, a
 * shot's asset before its image source). Entities: track 2 (zoom), key 4 on
 * 2, clip 5 on prompt track 3, shot 6, marker 7, assets 8 and 9 (images). */
typedef struct {
  vtl_entity_kind kind;
  vtl_id id;
  const char *field;
  char type; /* i r b s */
  int64_t i;
  double r;
  const char *s;
} field_case;

static const field_case field_cases[] = {
  {VTL_ENT_TIMELINE, 1, "name", 's', 0, 0, "Le film \xc3\xa9t\xc3\xa9"},
  {VTL_ENT_TIMELINE, 1, "fps", 'r', 0, 29.97, NULL},
  {VTL_ENT_TIMELINE, 1, "width", 'i', 1024, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "height", 'i', 576, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "length", 'i', 1000000, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "model", 's', 0, 0, "models/v1-5.safetensors"},
  {VTL_ENT_TIMELINE, 1, "sampler", 'i', VTL_SAMPLER_LCM, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "spacing", 'i', VTL_SPACING_LINSPACE, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "steps", 'i', 1000, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "guidance", 'r', 0, 50, NULL},
  {VTL_ENT_TIMELINE, 1, "strength", 'r', 0, 1, NULL},
  {VTL_ENT_TIMELINE, 1, "seed", 'i', 4294967295ll, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "seed_mode", 'i', VTL_SEED_SCHEDULE, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "seed_iter_n", 'i', 1000000, 0, NULL},
  {VTL_ENT_TIMELINE, 1, "anim_mode", 'i', VTL_ANIM_3D, 0, NULL},
  {VTL_ENT_TRACK, 2, "name", 's', 0, 0, "Zoom"},
  {VTL_ENT_TRACK, 2, "order", 'i', -1000000, 0, NULL},
  {VTL_ENT_TRACK, 2, "mute", 'b', 1, 0, NULL},
  {VTL_ENT_TRACK, 2, "lock", 'b', 1, 0, NULL},
  {VTL_ENT_TRACK, 2, "color", 'i', 0xffffff, 0, NULL},
  {VTL_ENT_KEYFRAME, 4, "frame", 'i', VTL_MAX_FRAMES - 1, 0, NULL},
  {VTL_ENT_KEYFRAME, 4, "value", 'r', 0, -1e9, NULL},
  {VTL_ENT_KEYFRAME, 4, "interp", 'i', VTL_INTERP_EASE_IN_OUT, 0, NULL},
  {VTL_ENT_KEYFRAME, 4, "out_dt", 'r', 0, 12.5, NULL},
  {VTL_ENT_KEYFRAME, 4, "out_dv", 'r', 0, -0.25, NULL},
  {VTL_ENT_KEYFRAME, 4, "in_dt", 'r', 0, -3, NULL},
  {VTL_ENT_KEYFRAME, 4, "in_dv", 'r', 0, 1e9, NULL},
  {VTL_ENT_KEYFRAME, 4, "expr", 's', 0, 0, "sin(t / fps) * max_f"},
  {VTL_ENT_PROMPT_CLIP, 5, "end", 'i', VTL_MAX_FRAMES, 0, NULL},
  {VTL_ENT_PROMPT_CLIP, 5, "start", 'i', VTL_MAX_FRAMES - 1, 0, NULL},
  {VTL_ENT_PROMPT_CLIP, 5, "text", 's', 0, 0, "a lighthouse, storm"},
  {VTL_ENT_PROMPT_CLIP, 5, "negative", 's', 0, 0, "text, watermark"},
  {VTL_ENT_PROMPT_CLIP, 5, "weight", 'r', 0, 100, NULL},
  {VTL_ENT_PROMPT_CLIP, 5, "fade_in", 'i', VTL_MAX_FRAMES, 0, NULL},
  {VTL_ENT_PROMPT_CLIP, 5, "fade_out", 'i', 7, 0, NULL},
  {VTL_ENT_SHOT, 6, "name", 's', 0, 0, "opening"},
  {VTL_ENT_SHOT, 6, "start", 'i', 42, 0, NULL},
  {VTL_ENT_SHOT, 6, "asset", 'i', 8, 0, NULL},
  {VTL_ENT_SHOT, 6, "source", 'i', VTL_SOURCE_IMAGE, 0, NULL},
  {VTL_ENT_SHOT, 6, "seed", 'i', 4294967295ll, 0, NULL},
  {VTL_ENT_SHOT, 6, "strength", 'r', 0, 0, NULL},
  {VTL_ENT_MARKER, 7, "frame", 'i', 999, 0, NULL},
  {VTL_ENT_MARKER, 7, "label", 's', 0, 0, "drop"},
  {VTL_ENT_MARKER, 7, "note", 's', 0, 0, "bass comes in\nhere"},
  {VTL_ENT_ASSET, 9, "name", 's', 0, 0, "ref.png"},
  {VTL_ENT_ASSET, 9, "kind", 'i', VTL_ASSET_MANUSCRIPT, 0, NULL},
  {VTL_ENT_ASSET, 9, "mime", 's', 0, 0, "text/plain"},
  {VTL_ENT_ASSET, 9, "sha256", 's', 0, 0,
   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  {VTL_ENT_ASSET, 9, "size", 'i', 1099511627776ll, 0, NULL},
};
#define NCASES (sizeof field_cases / sizeof field_cases[0])

static vtl_op case_op(const field_case *c) {
  switch (c->type) {
  case 'i': return set_int(c->kind, c->id, c->field, c->i);
  case 'r': return set_real(c->kind, c->id, c->field, c->r);
  case 'b': return set_bool(c->kind, c->id, c->field, c->i != 0);
  default: return set_str(c->kind, c->id, c->field, c->s);
  }
}

/* The entity holds the case's value. */
static int check_case(vtl_doc *doc, const field_case *c) {
  const void *ent = vtl_doc_get(doc, c->kind, c->id);
  ASSERT_NOT_NULL(ent);
  const vtl_field_desc *f = fdesc(c->kind, c->field);
  switch (c->type) {
  case 'i': ASSERT_EQ(rd_int(ent, f), c->i); break;
  case 'r': ASSERT_NEAR(rd_real(ent, f), c->r, 0); break;
  case 'b': ASSERT_EQ(rd_bool(ent, f), c->i != 0); break;
  default: ASSERT_STR_EQ(rd_str(ent, f), c->s); break;
  }
  return 0;
}

static void setup_entities(vtl_doc *doc) {
  batch b = {0};
  vtl_error err;
  tracks_add(&b, 2, VTL_PARAM_ZOOM, 0);
  tracks_add(&b, 3, VTL_TARGET_PROMPT, 0);
  key_add(&b, 4, 2, 0, 0, VTL_INTERP_LINEAR);
  clip_add(&b, 5, 3, 0, 1, "");
  b_create(&b, VTL_ENT_SHOT, 6);
  b_create(&b, VTL_ENT_MARKER, 7);
  asset_add(&b, 8, VTL_ASSET_IMAGE, "");
  asset_add(&b, 9, VTL_ASSET_IMAGE, "");
  if (b_apply(doc, &b, &err)) {
    fprintf(stderr, "setup_entities: %s\n", err.message);
    abort();
  }
}

TEST_IMPL(set_every_field) {
  /* the table covers every settable field exactly once */
  size_t settable = 0;
  for (int k = 0; k < VTL_ENT__COUNT; k++)
    for (int i = 0; i < vtl_entities[k].nfields; i++)
      if (!(vtl_entities[k].fields[i].flags & VTL_FF_FIXED)) settable++;
  ASSERT_EQ(NCASES, settable);
  for (size_t i = 0; i < NCASES; i++) {
    ASSERT(vtl_field_lookup(field_cases[i].kind, field_cases[i].field) >= 0);
    for (size_t j = 0; j < i; j++)
      ASSERT(field_cases[i].kind != field_cases[j].kind ||
             strcmp(field_cases[i].field, field_cases[j].field) != 0);
  }

  vtl_doc *doc = new_doc();
  setup_entities(doc);
  for (size_t i = 0; i < NCASES; i++) {
    const field_case *c = &field_cases[i];
    char *before = export_doc(doc);
    vtl_op op = case_op(c);
    vtl_op *inv;
    size_t ninv;
    vtl_error err;
    int rc = vtl_doc_apply(doc, &op, 1, &inv, &ninv, &err);
    vtl_op_free(&op);
    if (rc) fprintf(stderr, "case %s.%s: %s\n", vtl_entities[c->kind].name,
                    c->field, err.message);
    ASSERT_OK(rc);
    ASSERT_OK(check_case(doc, c));
    /* a SET's inverse is one SET of the old value */
    ASSERT_EQ(ninv, 1);
    ASSERT_EQ(inv[0].type, VTL_OP_SET);
    ASSERT_EQ(inv[0].kind, c->kind);
    ASSERT_U64_EQ(inv[0].id, c->id);
    ASSERT_EQ(inv[0].nfields, 1);
    ASSERT_EQ(inv[0].fields[0].field, vtl_field_lookup(c->kind, c->field));
    char *after = export_doc(doc);
    ASSERT(strcmp(before, after) != 0); /* the value was not the default */
    ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
    char *undone = export_doc(doc);
    ASSERT_STR_EQ(undone, before);
    vtl_ops_free(inv, ninv);
    /* redo, and keep it */
    op = case_op(c);
    ASSERT_OK(apply1(doc, op, &err));
    char *redone = export_doc(doc);
    ASSERT_STR_EQ(redone, after);
    free(before);
    free(after);
    free(undone);
    free(redone);
  }
  /* every value is still there at the end */
  for (size_t i = 0; i < NCASES; i++) ASSERT_OK(check_case(doc, &field_cases[i]));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(create_with_fields) {
  vtl_doc *doc = new_doc();
  batch b = {0};
  vtl_error err;
  /* parents first: a prompt track for the clip, an asset for the shot */
  tracks_add(&b, 3, VTL_TARGET_PROMPT, 0);
  asset_add(&b, 8, VTL_ASSET_IMAGE, "");
  ASSERT_OK(b_apply(doc, &b, &err));
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
    vtl_id id = 0;
    for (size_t i = 0; i < NCASES; i++)
      if (field_cases[i].kind == (vtl_entity_kind)k) id = field_cases[i].id;
    ASSERT_NE(id, 0);
    vtl_op *o = b_create(&b, k, id);
    if (k == VTL_ENT_TRACK) CHECK(vtl_op_add_int(o, "target", VTL_PARAM_FOV));
    if (k == VTL_ENT_KEYFRAME) CHECK(vtl_op_add_int(o, "track", 2));
    if (k == VTL_ENT_PROMPT_CLIP) CHECK(vtl_op_add_int(o, "track", 3));
    for (size_t i = 0; i < NCASES; i++) {
      const field_case *c = &field_cases[i];
      if (c->kind != (vtl_entity_kind)k) continue;
      switch (c->type) {
      case 'i': CHECK(vtl_op_add_int(o, c->field, c->i)); break;
      case 'r': CHECK(vtl_op_add_real(o, c->field, c->r)); break;
      case 'b': CHECK(vtl_op_add_bool(o, c->field, c->i != 0)); break;
      default: CHECK(vtl_op_add_str(o, c->field, c->s)); break;
      }
    }
  }
  int rc = b_apply(doc, &b, &err);
  if (rc) fprintf(stderr, "%s (op %d)\n", err.message, err.op_index);
  ASSERT_OK(rc);
  for (size_t i = 0; i < NCASES; i++)
    if (field_cases[i].kind != VTL_ENT_TIMELINE)
      ASSERT_OK(check_case(doc, &field_cases[i]));
  const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, 2);
  ASSERT_EQ(t->target, VTL_PARAM_FOV);
  const vtl_keyframe *k = vtl_doc_get(doc, VTL_ENT_KEYFRAME, 4);
  ASSERT_EQ(k->track, 2);
  const vtl_prompt_clip *c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 5);
  ASSERT_EQ(c->track, 3);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), 2);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_ASSET), 2);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(delete_every_kind) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  static const struct { vtl_entity_kind k; vtl_id id; } ents[] = {
    {VTL_ENT_KEYFRAME, 4}, {VTL_ENT_PROMPT_CLIP, 5}, {VTL_ENT_SHOT, 6},
    {VTL_ENT_MARKER, 7},   {VTL_ENT_ASSET, 8},       {VTL_ENT_TRACK, 2},
  };
  for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
    size_t n = vtl_doc_count(doc, ents[i].k);
    vtl_op op;
    CHECK(vtl_op_delete(&op, ents[i].k, ents[i].id));
    ASSERT_OK(apply1(doc, op, &err));
    ASSERT_NULL(vtl_doc_get(doc, ents[i].k, ents[i].id));
    ASSERT_EQ(vtl_doc_count(doc, ents[i].k), n - 1);
    /* a second delete, and a set, find nothing */
    CHECK(vtl_op_delete(&op, ents[i].k, ents[i].id));
    ASSERT_EQ(apply1(doc, op, &err), VTL_ENOENT);
    ASSERT_EQ(err.code, VTL_ENOENT);
    ASSERT_EQ(err.op_index, 0);
    ASSERT_CONTAINS(err.message, vtl_entities[ents[i].k].name);
    const char *f = vtl_entities[ents[i].k].fields[1].name;
    ASSERT_EQ(apply1(doc, set_int(ents[i].k, ents[i].id, f, 1), &err),
              VTL_ENOENT);
  }
  /* the id can be used again */
  batch b = {0};
  tracks_add(&b, 2, VTL_PARAM_ANGLE, 0);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(((const vtl_track *)vtl_doc_get(doc, VTL_ENT_TRACK, 2))->target,
            VTL_PARAM_ANGLE);
  vtl_doc_free(doc);
  return 0;
}

/* ---- tests: validation errors --------------------------------------------- */

TEST_IMPL(err_unknown_field) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  vtl_value one = {.type = VTL_FT_INT, .u.i = 1};
  ASSERT_EQ(apply1(doc, set_raw(VTL_ENT_TRACK, 2, 99, one), &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "track: no field #99");
  ASSERT_EQ(apply1(doc, set_raw(VTL_ENT_TRACK, 2, -1, one), &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "no field #-1");
  ASSERT_EQ(apply1(doc, set_raw(VTL_ENT_TIMELINE, 1,
                                vtl_entities[VTL_ENT_TIMELINE].nfields, one),
                   &err),
            VTL_EINVAL);

  /* on create: an index past the table, and the same field twice */
  vtl_op op;
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, 50));
  op.fields = calloc(1, sizeof *op.fields);
  op.fields[0] = (vtl_field_value){42, one};
  op.nfields = 1;
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "marker: no field #42");
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, 50));
  CHECK(vtl_op_add_int(&op, "frame", 1));
  CHECK(vtl_op_add_int(&op, "frame", 2));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "marker.frame: given twice");
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_MARKER, 50));

  /* the op helpers refuse unknown names */
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, 50));
  ASSERT_EQ(vtl_op_add_int(&op, "colour", 1), VTL_EINVAL);
  ASSERT_EQ(op.nfields, 0);
  vtl_op_free(&op);
  ASSERT_EQ(vtl_op_set_str(&op, VTL_ENT_TRACK, 2, "nmae", "x"), VTL_EINVAL);
  vtl_op_free(&op);
  ASSERT_EQ(vtl_field_lookup(VTL_ENT_TRACK, "nmae"), -1);
  ASSERT_EQ(vtl_field_lookup((vtl_entity_kind)-1, "name"), -1);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_wrong_type) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  char *before = export_doc(doc);
  vtl_error err;
  vtl_value vi = {.type = VTL_FT_INT, .u.i = 1};
  vtl_value vr = {.type = VTL_FT_REAL, .u.r = 1.0};
  vtl_value vb = {.type = VTL_FT_BOOL, .u.b = true};
  vtl_value vs = {.type = VTL_FT_STR, .u.s = "1"};
  static const struct {
    vtl_entity_kind k;
    vtl_id id;
    const char *field;
    char bad[4]; /* value types that must be refused */
    const char *msg;
  } cases[] = {
    {VTL_ENT_TRACK, 2, "name", "irb", "track.name: expected a string"},
    {VTL_ENT_TIMELINE, 1, "fps", "bs", "timeline.fps: expected a number"},
    {VTL_ENT_TIMELINE, 1, "steps", "bs", "timeline.steps: expected an integer"},
    {VTL_ENT_TRACK, 2, "mute", "irs", "track.mute: expected true or false"},
    {VTL_ENT_SHOT, 6, "asset", "rbs", "shot.asset: expected an id"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int f = vtl_field_lookup(cases[i].k, cases[i].field);
    for (const char *t = cases[i].bad; *t; t++) {
      vtl_value v = *t == 'i' ? vi : *t == 'r' ? vr : *t == 'b' ? vb : vs;
      ASSERT_EQ(apply1(doc, set_raw(cases[i].k, cases[i].id, f, v), &err),
                VTL_ETYPE);
      ASSERT_EQ(err.code, VTL_ETYPE);
      ASSERT_CONTAINS(err.message, cases[i].msg);
    }
  }
  /* enums take an index: anything else is out of their range */
  int f = vtl_field_lookup(VTL_ENT_TIMELINE, "sampler");
  ASSERT_EQ(apply1(doc, set_raw(VTL_ENT_TIMELINE, 1, f, vs), &err), VTL_ERANGE);
  ASSERT_CONTAINS(err.message, "timeline.sampler: not one of the 5 values");
  ASSERT_EQ(apply1(doc, set_raw(VTL_ENT_TIMELINE, 1, f, vr), &err), VTL_ERANGE);
  /* an INT value is fine for a REAL field */
  f = vtl_field_lookup(VTL_ENT_TIMELINE, "fps");
  ASSERT_OK(apply1(doc, set_raw(VTL_ENT_TIMELINE, 1, f,
                                (vtl_value){.type = VTL_FT_INT, .u.i = 25}),
                   &err));
  ASSERT_NEAR(vtl_doc_timeline(doc)->fps, 25, 0);
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "fps", 12), &err));
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(before);
  free(after);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_out_of_range) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  static const struct {
    vtl_entity_kind k;
    vtl_id id;
    const char *field;
    double v;
    const char *msg;
  } cases[] = {
    {VTL_ENT_TIMELINE, 1, "fps", 0.5, "timeline.fps: 0.5 is outside 1..240"},
    {VTL_ENT_TIMELINE, 1, "fps", 240.5, "timeline.fps"},
    {VTL_ENT_TIMELINE, 1, "width", 8200, "timeline.width: 8200 is outside 8..8192"},
    {VTL_ENT_TIMELINE, 1, "length", 0, "timeline.length"},
    {VTL_ENT_TIMELINE, 1, "length", VTL_MAX_FRAMES + 1, "timeline.length"},
    {VTL_ENT_TIMELINE, 1, "steps", 0, "timeline.steps"},
    {VTL_ENT_TIMELINE, 1, "seed", -1, "timeline.seed"},
    {VTL_ENT_TIMELINE, 1, "seed", 4294967296.0, "timeline.seed"},
    {VTL_ENT_TIMELINE, 1, "guidance", 50.001, "timeline.guidance"},
    {VTL_ENT_TIMELINE, 1, "strength", -0.01, "timeline.strength"},
    {VTL_ENT_TIMELINE, 1, "seed_iter_n", 0, "timeline.seed_iter_n"},
    {VTL_ENT_TRACK, 2, "order", 1000001, "track.order"},
    {VTL_ENT_TRACK, 2, "color", 0x1000000, "track.color"},
    {VTL_ENT_TRACK, 2, "color", -1, "track.color"},
    {VTL_ENT_KEYFRAME, 4, "frame", VTL_MAX_FRAMES, "keyframe.frame"},
    {VTL_ENT_KEYFRAME, 4, "frame", -1, "keyframe.frame"},
    {VTL_ENT_KEYFRAME, 4, "value", 2e10, "keyframe.value"},
    {VTL_ENT_KEYFRAME, 4, "out_dt", -1, "keyframe.out_dt"},
    {VTL_ENT_KEYFRAME, 4, "in_dt", 1, "keyframe.in_dt"},
    {VTL_ENT_PROMPT_CLIP, 5, "weight", 100.5, "prompt_clip.weight"},
    {VTL_ENT_PROMPT_CLIP, 5, "end", 0, "prompt_clip.end"},
    {VTL_ENT_PROMPT_CLIP, 5, "fade_in", -1, "prompt_clip.fade_in"},
    {VTL_ENT_SHOT, 6, "seed", -2, "shot.seed"},
    {VTL_ENT_SHOT, 6, "strength", 1.5, "shot.strength"},
    {VTL_ENT_MARKER, 7, "frame", VTL_MAX_FRAMES, "marker.frame"},
    {VTL_ENT_ASSET, 8, "size", -1, "asset.size"},
  };
  char *before = export_doc(doc);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const vtl_field_desc *f = fdesc(cases[i].k, cases[i].field);
    vtl_op op = f->type == VTL_FT_REAL
                    ? set_real(cases[i].k, cases[i].id, cases[i].field, cases[i].v)
                    : set_int(cases[i].k, cases[i].id, cases[i].field,
                              (int64_t)cases[i].v);
    int rc = apply1(doc, op, &err);
    if (rc != VTL_ERANGE) fprintf(stderr, "case %zu (%s)\n", i, cases[i].msg);
    ASSERT_EQ(rc, VTL_ERANGE);
    ASSERT_CONTAINS(err.message, cases[i].msg);
  }
  /* the bounds themselves are inside */
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "fps", 240), &err));
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "fps", 1), &err));
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_TRACK, 2, "color", 0), &err));
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_KEYFRAME, 4, "value", 1e10), &err));
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_SHOT, 6, "seed", -1), &err));
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "fps", 12), &err));
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_TRACK, 2, "color", 0x8899aa), &err));
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_KEYFRAME, 4, "value", 0), &err));
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(before);
  free(after);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_nan_inf) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  const double bad[] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "fps", bad[i]), &err),
              VTL_ERANGE);
    ASSERT_CONTAINS(err.message, "timeline.fps");
    ASSERT_EQ(apply1(doc, set_real(VTL_ENT_KEYFRAME, 4, "value", bad[i]), &err),
              VTL_ERANGE);
    ASSERT_CONTAINS(err.message, "keyframe.value");
    /* an INT field given a non-finite real */
    ASSERT_EQ(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "steps", bad[i]), &err),
              VTL_ETYPE);
    ASSERT_CONTAINS(err.message, "timeline.steps: expected an integer");
    /* and on create */
    vtl_op op;
    CHECK(vtl_op_create(&op, VTL_ENT_KEYFRAME, 70));
    CHECK(vtl_op_add_int(&op, "track", 2));
    CHECK(vtl_op_add_real(&op, "out_dv", bad[i]));
    ASSERT_EQ(apply1(doc, op, &err), VTL_ERANGE);
    ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, 70));
  }
  ASSERT_NEAR(vtl_doc_timeline(doc)->fps, 12, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_not_integer) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  ASSERT_EQ(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "steps", 1.5), &err),
            VTL_ETYPE);
  ASSERT_CONTAINS(err.message, "timeline.steps: expected an integer");
  ASSERT_EQ(apply1(doc, set_real(VTL_ENT_KEYFRAME, 4, "frame", 10.25), &err),
            VTL_ETYPE);
  ASSERT_EQ(apply1(doc, set_real(VTL_ENT_ASSET, 8, "size", 1e17), &err),
            VTL_ETYPE); /* beyond exact doubles */
  ASSERT_EQ(vtl_doc_timeline(doc)->steps, 20);
  /* an integral real is an integer */
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "steps", 30.0), &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->steps, 30);
  ASSERT_OK(apply1(doc, set_real(VTL_ENT_KEYFRAME, 4, "frame", -0.0), &err));
  ASSERT_EQ(((const vtl_keyframe *)vtl_doc_get(doc, VTL_ENT_KEYFRAME, 4))->frame,
            0);
  /* ... still subject to the range */
  ASSERT_EQ(apply1(doc, set_real(VTL_ENT_TIMELINE, 1, "steps", 1001.0), &err),
            VTL_ERANGE);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_bad_enum) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  static const struct { vtl_entity_kind k; vtl_id id; const char *f; int n; }
  cases[] = {
    {VTL_ENT_TIMELINE, 1, "sampler", 5},   {VTL_ENT_TIMELINE, 1, "spacing", 3},
    {VTL_ENT_TIMELINE, 1, "seed_mode", 6}, {VTL_ENT_TIMELINE, 1, "anim_mode", 2},
    {VTL_ENT_KEYFRAME, 4, "interp", 6},    {VTL_ENT_SHOT, 6, "source", 3},
    {VTL_ENT_ASSET, 8, "kind", 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s.%s: not one of the %d values",
             vtl_entities[cases[i].k].name, cases[i].f, cases[i].n);
    ASSERT_EQ(apply1(doc, set_int(cases[i].k, cases[i].id, cases[i].f,
                                  cases[i].n), &err),
              VTL_ERANGE);
    ASSERT_CONTAINS(err.message, msg);
    ASSERT_EQ(apply1(doc, set_int(cases[i].k, cases[i].id, cases[i].f, -1),
                     &err),
              VTL_ERANGE);
    ASSERT_EQ(apply1(doc, set_real(cases[i].k, cases[i].id, cases[i].f, 1.0),
                     &err),
              VTL_ERANGE);
  }
  /* the target of a track, on create */
  vtl_op op;
  CHECK(vtl_op_create(&op, VTL_ENT_TRACK, 77));
  CHECK(vtl_op_add_int(&op, "target", VTL_TARGET__COUNT));
  ASSERT_EQ(apply1(doc, op, &err), VTL_ERANGE);
  ASSERT_CONTAINS(err.message, "track.target");
  /* the last value is valid */
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_TIMELINE, 1, "seed_mode",
                                VTL_SEED_SCHEDULE), &err));
  vtl_doc_free(doc);
  return 0;
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  CHECK(s == NULL);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

TEST_IMPL(err_too_long) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  static const struct { vtl_entity_kind k; vtl_id id; const char *f; size_t max; }
  cases[] = {
    {VTL_ENT_TIMELINE, 1, "name", VTL_MAX_NAME},
    {VTL_ENT_TIMELINE, 1, "model", VTL_MAX_NAME},
    {VTL_ENT_TRACK, 2, "name", VTL_MAX_NAME},
    {VTL_ENT_PROMPT_CLIP, 5, "text", VTL_MAX_TEXT},
    {VTL_ENT_PROMPT_CLIP, 5, "negative", VTL_MAX_TEXT},
    {VTL_ENT_SHOT, 6, "name", VTL_MAX_NAME},
    {VTL_ENT_MARKER, 7, "label", VTL_MAX_NAME},
    {VTL_ENT_MARKER, 7, "note", VTL_MAX_TEXT},
    {VTL_ENT_ASSET, 8, "sha256", 64},
    {VTL_ENT_ASSET, 8, "mime", VTL_MAX_NAME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *ok = repeat('a', cases[i].max), *bad = repeat('a', cases[i].max + 1);
    ASSERT_EQ(apply1(doc, set_str(cases[i].k, cases[i].id, cases[i].f, bad),
                     &err),
              VTL_ETOOLONG);
    char msg[96];
    snprintf(msg, sizeof msg, "%s.%s: longer than %zu bytes",
             vtl_entities[cases[i].k].name, cases[i].f, cases[i].max);
    ASSERT_CONTAINS(err.message, msg);
    ASSERT_OK(apply1(doc, set_str(cases[i].k, cases[i].id, cases[i].f, ok),
                     &err));
    ASSERT_EQ(strlen(rd_str(vtl_doc_get(doc, cases[i].k, cases[i].id),
                            fdesc(cases[i].k, cases[i].f))),
              cases[i].max);
    free(ok);
    free(bad);
  }
  /* bytes, not characters: 128 two-byte characters fill a name */
  char name[2 * 129 + 1] = "";
  for (int i = 0; i < 128; i++) strcat(name, "\xc3\xa9");
  ASSERT_OK(apply1(doc, set_str(VTL_ENT_TRACK, 2, "name", name), &err));
  strcat(name, "\xc3\xa9");
  ASSERT_EQ(apply1(doc, set_str(VTL_ENT_TRACK, 2, "name", name), &err),
            VTL_ETOOLONG);
  /* expressions: a valid one of 1025 bytes is refused, 1024 accepted */
  char *e = repeat(' ', VTL_MAX_EXPR + 1);
  e[0] = '1';
  ASSERT_EQ(apply1(doc, set_str(VTL_ENT_KEYFRAME, 4, "expr", e), &err),
            VTL_ETOOLONG);
  ASSERT_CONTAINS(err.message, "keyframe.expr");
  e[VTL_MAX_EXPR] = '\0';
  ASSERT_OK(apply1(doc, set_str(VTL_ENT_KEYFRAME, 4, "expr", e), &err));
  free(e);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_invalid_utf8) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  static const char *const bad[] = {
    "\xff",                 /* never a UTF-8 byte */
    "abc\x80",              /* a lone continuation byte */
    "\xc3",                 /* truncated two-byte */
    "\xe2\x82",             /* truncated three-byte */
    "\xc0\x80",             /* overlong NUL */
    "\xc1\xbf",             /* overlong two-byte */
    "\xe0\x80\x80",         /* overlong three-byte */
    "\xe0\x9f\xbf",         /* overlong three-byte (U+07FF) */
    "\xed\xa0\x80",         /* UTF-16 surrogate U+D800 */
    "\xed\xbf\xbf",         /* UTF-16 surrogate U+DFFF */
    "\xf0\x80\x80\x80",     /* overlong four-byte */
    "\xf0\x8f\xbf\xbf",     /* overlong four-byte (U+FFFF) */
    "\xf4\x90\x80\x80",     /* U+110000, past Unicode */
    "\xf5\x80\x80\x80",     /* lead byte past U+10FFFF */
  };
  char *before = export_doc(doc);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = apply1(doc, set_str(VTL_ENT_TRACK, 2, "name", bad[i]), &err);
    if (rc != VTL_EINVAL) fprintf(stderr, "invalid UTF-8 case %zu accepted\n", i);
    ASSERT_EQ(rc, VTL_EINVAL);
    ASSERT_CONTAINS(err.message, "track.name: not valid UTF-8");
    ASSERT_EQ(apply1(doc, set_str(VTL_ENT_PROMPT_CLIP, 5, "text", bad[i]), &err),
              VTL_EINVAL);
  }
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  static const char *const good[] = {
    "caf\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf", "\xed\x9f\xbf",
    "\xee\x80\x80", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ASSERT_OK(apply1(doc, set_str(VTL_ENT_TRACK, 2, "name", good[i]), &err));
    ASSERT_STR_EQ(((const vtl_track *)vtl_doc_get(doc, VTL_ENT_TRACK, 2))->name,
                  good[i]);
    /* whatever the document accepts, JSON export can write */
    char *s = NULL;
    ASSERT_OK(vtl_json_export(doc, &s));
    free(s);
  }
  free(before);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_dangling_ref) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  batch b = {0};
  key_add(&b, 50, 99, 0, 1, VTL_INTERP_LINEAR);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "keyframe.track: no track 99");
  /* a keyframe without a track, or with track 0 */
  b_create(&b, VTL_ENT_KEYFRAME, 50);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "keyframe.track: required");
  key_add(&b, 50, 0, 0, 1, VTL_INTERP_LINEAR);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "keyframe.track: required");
  b_create(&b, VTL_ENT_PROMPT_CLIP, 50);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "prompt_clip.track: required");
  /* a track id that exists only as another kind's id */
  key_add(&b, 50, 7, 0, 1, VTL_INTERP_LINEAR); /* 7 is a marker */
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, 50));
  /* shots: a missing asset on create and on set; 0 is allowed */
  shot_add(&b, 51, 0, VTL_SOURCE_NOISE, 1234);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "shot.asset: no asset 1234");
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", 1234), &err),
            VTL_EREF);
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", -5), &err), VTL_EREF);
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", 8), &err));
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", 0), &err));
  /* a reference valid only after a later op of the same batch is refused:
   * references are checked in op order */
  key_add(&b, 52, 60, 0, 1, VTL_INTERP_LINEAR);
  tracks_add(&b, 60, VTL_PARAM_ZOOM, 0);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_EQ(err.op_index, 0);
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_TRACK, 60));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_duplicate_id) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  batch b = {0};
  tracks_add(&b, 2, VTL_PARAM_ANGLE, 5);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EEXIST);
  ASSERT_EQ(err.code, VTL_EEXIST);
  ASSERT_CONTAINS(err.message, "track 2 already exists");
  ASSERT_EQ(((const vtl_track *)vtl_doc_get(doc, VTL_ENT_TRACK, 2))->target,
            VTL_PARAM_ZOOM);
  /* twice in one batch */
  b_create(&b, VTL_ENT_MARKER, 90);
  b_create(&b, VTL_ENT_MARKER, 90);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EEXIST);
  ASSERT_EQ(err.op_index, 1);
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_MARKER, 90));
  /* create, delete, create again in one batch is fine */
  b_create(&b, VTL_ENT_MARKER, 90);
  b_delete(&b, VTL_ENT_MARKER, 90);
  b_create(&b, VTL_ENT_MARKER, 90);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_MARKER, 90));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_id_range) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  const vtl_id bad[] = {0, VTL_ID_MAX + 1, UINT64_MAX};
  for (int i = 0; i < 3; i++) {
    for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
      vtl_op op;
      CHECK(vtl_op_create(&op, k, bad[i]));
      ASSERT_EQ(apply1(doc, op, &err), VTL_ERANGE);
      ASSERT_CONTAINS(err.message, "ids are 1..2^53-1");
      ASSERT_CONTAINS(err.message, vtl_entities[k].name);
    }
  }
  vtl_op op;
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, VTL_ID_MAX));
  ASSERT_OK(apply1(doc, op, &err));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_MARKER, VTL_ID_MAX));
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, 1));
  ASSERT_OK(apply1(doc, op, &err));
  /* a reference to an id past 2^53 finds nothing */
  CHECK(vtl_op_create(&op, VTL_ENT_KEYFRAME, 5));
  CHECK(vtl_op_add_int(&op, "track", (int64_t)(VTL_ID_MAX + 1)));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EREF);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_MARKER), 2);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_timeline_once) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  vtl_op op;
  CHECK(vtl_op_create(&op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "timeline");
  CHECK(vtl_op_create(&op, VTL_ENT_TIMELINE, 2));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  CHECK(vtl_op_delete(&op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "the timeline cannot be deleted");
  /* only id 1 can be set */
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_TIMELINE, 2, "steps", 5), &err),
            VTL_ENOENT);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TIMELINE), 1);
  ASSERT_NOT_NULL(vtl_doc_timeline(doc));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_fixed_fields) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  char *before = export_doc(doc);
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_TRACK, 2, "target", VTL_PARAM_ANGLE),
                   &err),
            VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "track.target is fixed at creation");
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_TRACK, 2, "target", VTL_PARAM_ZOOM),
                   &err),
            VTL_EINVAL); /* even to the same value */
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_KEYFRAME, 4, "track", 2), &err),
            VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "keyframe.track is fixed");
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_PROMPT_CLIP, 5, "track", 3), &err),
            VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "prompt_clip.track is fixed");
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  /* every FIXED field of the schema is one of these */
  int nfixed = 0;
  for (int k = 0; k < VTL_ENT__COUNT; k++)
    for (int i = 0; i < vtl_entities[k].nfields; i++)
      nfixed += (vtl_entities[k].fields[i].flags & VTL_FF_FIXED) != 0;
  ASSERT_EQ(nfixed, 3);
  free(before);
  free(after);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_op_shape) {
  vtl_doc *doc = new_doc();
  setup_entities(doc);
  vtl_error err;
  vtl_op op = {.type = VTL_OP_SET, .kind = VTL_ENT_TRACK, .id = 2};
  ASSERT_EQ(vtl_doc_apply(doc, &op, 1, NULL, NULL, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "exactly one field");
  op = set_int(VTL_ENT_TRACK, 2, "order", 3);
  CHECK(vtl_op_add_int(&op, "color", 3));
  ASSERT_EQ(apply1(doc, op, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "exactly one field");
  op = (vtl_op){.type = VTL_OP_DELETE, .kind = (vtl_entity_kind)VTL_ENT__COUNT,
                .id = 2};
  ASSERT_EQ(vtl_doc_apply(doc, &op, 1, NULL, NULL, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "unknown entity kind");
  op = (vtl_op){.type = (vtl_op_type)7, .kind = VTL_ENT_TRACK, .id = 2};
  ASSERT_EQ(vtl_doc_apply(doc, &op, 1, NULL, NULL, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "unknown op type");
  /* an empty batch succeeds with an empty inverse */
  vtl_op *inv = (vtl_op *)&op;
  size_t ninv = 99;
  ASSERT_OK(vtl_doc_apply(doc, NULL, 0, &inv, &ninv, &err));
  ASSERT_EQ(ninv, 0);
  vtl_ops_free(inv, ninv);
  /* err may be NULL */
  op = set_int(VTL_ENT_TRACK, 2, "order", 5000000);
  ASSERT_EQ(vtl_doc_apply(doc, &op, 1, NULL, NULL, NULL), VTL_ERANGE);
  vtl_op_free(&op);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_limit_tracks) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  size_t n = VTL_MAX_TRACKS;
  vtl_op *ops = calloc(n + 1, sizeof *ops);
  for (size_t i = 0; i <= n; i++) CHECK(vtl_op_create(&ops[i], VTL_ENT_TRACK, 1000 + i));
  /* one batch of MAX + 1: refused whole */
  ASSERT_EQ(vtl_doc_apply(doc, ops, n + 1, NULL, NULL, &err), VTL_ELIMIT);
  ASSERT_EQ(err.op_index, (int)n);
  ASSERT_CONTAINS(err.message, "too many tracks (limit 1024)");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), 0);
  /* MAX fits; one more does not */
  ASSERT_OK(vtl_doc_apply(doc, ops, n, NULL, NULL, &err));
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), n);
  ASSERT_EQ(vtl_doc_apply(doc, &ops[n], 1, NULL, NULL, &err), VTL_ELIMIT);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), n);
  /* delete one, and there is room again in the same batch */
  vtl_op two[2];
  CHECK(vtl_op_delete(&two[0], VTL_ENT_TRACK, 1000));
  two[1] = ops[n];
  ASSERT_OK(vtl_doc_apply(doc, two, 2, NULL, NULL, &err));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_TRACK, 1000));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_TRACK, 1000 + n));
  vtl_ops_free(ops, n + 1);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_limit_assets) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  size_t n = VTL_MAX_ASSETS;
  vtl_op *ops = calloc(n + 1, sizeof *ops);
  for (size_t i = 0; i <= n; i++) CHECK(vtl_op_create(&ops[i], VTL_ENT_ASSET, i + 1));
  ASSERT_OK(vtl_doc_apply(doc, ops, n, NULL, NULL, &err));
  ASSERT_EQ(vtl_doc_apply(doc, &ops[n], 1, NULL, NULL, &err), VTL_ELIMIT);
  ASSERT_CONTAINS(err.message, "too many assets");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_ASSET), n);
  /* every one of them is still found after the hash map grew */
  for (size_t i = 1; i <= n; i++) ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_ASSET, i));
  vtl_ops_free(ops, n + 1);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_keyframe_prompt_track) {
  vtl_doc *doc = new_doc();
  setup_entities(doc); /* 2 zoom, 3 prompt */
  vtl_error err;
  batch b = {0};
  b_create(&b, VTL_ENT_MARKER, 80);
  key_add(&b, 50, 3, 0, 1, VTL_INTERP_LINEAR);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EINVAL);
  ASSERT_EQ(err.op_index, 1);
  ASSERT_CONTAINS(err.message, "keyframe 50: track 3 is a prompt track");
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_MARKER, 80));
  clip_add(&b, 51, 2, 0, 10, "x");
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EINVAL);
  ASSERT_CONTAINS(err.message, "prompt_clip 51: track 2 is not a prompt track");
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 51));
  /* an existing key touched by a set is checked too (nothing to find) */
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_KEYFRAME, 4, "frame", 3), &err));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(clip_end_at_batch_end) {
  vtl_doc *doc = new_doc();
  setup_entities(doc); /* clip 5 on prompt track 3: [0, 1) */
  vtl_error err;
  batch b = {0};
  /* created with end <= start */
  clip_add(&b, 50, 3, 10, 5, "x");
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_ERANGE);
  ASSERT_CONTAINS(err.message, "prompt_clip 50: end 5 must be after start 10");
  clip_add(&b, 50, 3, 10, 10, "x");
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_ERANGE);
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 50));
  /* moving the start past the end, alone */
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_PROMPT_CLIP, 5, "start", 30), &err),
            VTL_ERANGE);
  ASSERT_EQ(err.op_index, 0);
  /* ... allowed when the same batch then fixes the end */
  b_int(&b, VTL_ENT_MARKER, 7, "frame", 1);
  b_int(&b, VTL_ENT_PROMPT_CLIP, 5, "start", 30);
  b_int(&b, VTL_ENT_PROMPT_CLIP, 5, "end", 40);
  ASSERT_OK(b_apply(doc, &b, &err));
  const vtl_prompt_clip *c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 5);
  ASSERT_EQ(c->start, 30);
  ASSERT_EQ(c->end, 40);
  /* created with the default end (1) and fixed later in the batch */
  vtl_op *o = b_create(&b, VTL_ENT_PROMPT_CLIP, 51);
  CHECK(vtl_op_add_int(o, "track", 3));
  CHECK(vtl_op_add_int(o, "start", 100));
  b_int(&b, VTL_ENT_PROMPT_CLIP, 51, "end", 110);
  ASSERT_OK(b_apply(doc, &b, &err));
  /* a batch that passes through a valid state and ends invalid: refused,
   * and op_index names the first op that touched the clip */
  b_int(&b, VTL_ENT_MARKER, 7, "frame", 2);
  b_int(&b, VTL_ENT_PROMPT_CLIP, 51, "end", 120);
  b_int(&b, VTL_ENT_PROMPT_CLIP, 51, "start", 130);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_ERANGE);
  ASSERT_EQ(err.op_index, 1);
  c = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 51);
  ASSERT_EQ(c->start, 100);
  ASSERT_EQ(c->end, 110);
  ASSERT_EQ(((const vtl_marker *)vtl_doc_get(doc, VTL_ENT_MARKER, 7))->frame, 1);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_width_multiple_of_8) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_TIMELINE, 1, "width", 100), &err),
            VTL_ERANGE);
  ASSERT_CONTAINS(err.message, "multiples of 8 (got 100x512)");
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_TIMELINE, 1, "height", 7 * 8 + 1), &err),
            VTL_ERANGE);
  batch b = {0};
  b_int(&b, VTL_ENT_TIMELINE, 1, "width", 100);
  b_int(&b, VTL_ENT_TIMELINE, 1, "width", 104);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->width, 104);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(err_image_shot) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  batch b = {0};
  asset_add(&b, 8, VTL_ASSET_IMAGE, "");
  asset_add(&b, 9, VTL_ASSET_SOUND, "");
  ASSERT_OK(b_apply(doc, &b, &err));
  shot_add(&b, 6, 0, VTL_SOURCE_IMAGE, 0);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "shot 6: source image needs an image asset");
  shot_add(&b, 6, 0, VTL_SOURCE_IMAGE, 9);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_EREF);
  ASSERT_CONTAINS(err.message, "needs an image asset");
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_SHOT, 6));
  shot_add(&b, 6, 0, VTL_SOURCE_IMAGE, 8);
  ASSERT_OK(b_apply(doc, &b, &err));
  /* switching a noise shot to image without an asset */
  shot_add(&b, 7, 10, VTL_SOURCE_BLACK, 0);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_SHOT, 7, "source", VTL_SOURCE_IMAGE),
                   &err),
            VTL_EREF);
  /* ... or pointing an image shot at a sound asset, or at nothing */
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", 9), &err), VTL_EREF);
  ASSERT_EQ(apply1(doc, set_int(VTL_ENT_SHOT, 6, "asset", 0), &err), VTL_EREF);
  /* in one batch: asset first or source first, both fine */
  b_int(&b, VTL_ENT_SHOT, 7, "source", VTL_SOURCE_IMAGE);
  b_int(&b, VTL_ENT_SHOT, 7, "asset", 8);
  ASSERT_OK(b_apply(doc, &b, &err));
  vtl_doc_free(doc);
  return 0;
}

/* An image shot's asset changing kind would leave the shot without an image
 * (and make the document's own JSON export fail to import). */
TEST_IMPL(err_asset_kind_image_shot) {
  vtl_doc *doc = new_doc();
  vtl_error err;
  batch b = {0};
  asset_add(&b, 8, VTL_ASSET_IMAGE, "");
  shot_add(&b, 6, 0, VTL_SOURCE_IMAGE, 8);
  ASSERT_OK(b_apply(doc, &b, &err));
  char *before = export_doc(doc);
  int rc = apply1(doc, set_int(VTL_ENT_ASSET, 8, "kind", VTL_ASSET_SOUND), &err);
  ASSERT_EQ(rc, VTL_EREF);
  ASSERT_CONTAINS(err.message, "image");
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  /* ... but fine if the same batch moves the shot off the image source */
  b_int(&b, VTL_ENT_ASSET, 8, "kind", VTL_ASSET_SOUND);
  b_int(&b, VTL_ENT_SHOT, 6, "source", VTL_SOURCE_NOISE);
  ASSERT_OK(b_apply(doc, &b, &err));
  /* and an unreferenced asset changes kind freely */
  asset_add(&b, 9, VTL_ASSET_IMAGE, "");
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_OK(apply1(doc, set_int(VTL_ENT_ASSET, 9, "kind", VTL_ASSET_MANUSCRIPT),
                   &err));
  /* whatever the document holds, its export imports */
  char *json = export_doc(doc);
  vtl_doc *copy = NULL;
  ASSERT_OK(vtl_json_import(json, strlen(json), &copy, &err));
  vtl_doc_free(copy);
  free(json);
  free(before);
  free(after);
  vtl_doc_free(doc);
  return 0;
}

/* ---- tests: atomicity, cascades, inverses ---------------------------------- */

TEST_IMPL(atomic_fifth_op_fails) {
  /* each failure kind as the 5th op after 4 ops that change a lot */
  for (int variant = 0; variant < 6; variant++) {
    vtl_doc *doc = new_doc();
    build_rich(doc);
    char *before = export_doc(doc);
    size_t counts[VTL_ENT__COUNT];
    for (int k = 0; k < VTL_ENT__COUNT; k++) counts[k] = vtl_doc_count(doc, k);
    vtl_params p0;
    ASSERT_OK(vtl_params_at(doc, 60, &p0));
    batch b = {0};
    vtl_error err;
    b_delete(&b, VTL_ENT_TRACK, 2);      /* cascades 3 keys */
    b_delete(&b, VTL_ENT_ASSET, 100);    /* resets 2 shots */
    b_str(&b, VTL_ENT_TIMELINE, 1, "name", "changed");
    tracks_add(&b, 7, VTL_PARAM_ZOOM, -1);
    int want = 0;
    switch (variant) {
    case 0: b_int(&b, VTL_ENT_TRACK, 99, "order", 1); want = VTL_ENOENT; break;
    case 1: tracks_add(&b, 4, VTL_PARAM_FOV, 0); want = VTL_EEXIST; break;
    case 2: b_real(&b, VTL_ENT_TIMELINE, 1, "fps", NAN); want = VTL_ERANGE; break;
    case 3: key_add(&b, 15, 2, 0, 1, VTL_INTERP_LINEAR); want = VTL_EREF; break;
    case 4: b_int(&b, VTL_ENT_PROMPT_CLIP, 21, "end", 50); want = VTL_ERANGE; break;
    case 5: b_str(&b, VTL_ENT_KEYFRAME, 14, "expr", "1 +"); want = VTL_EEXPR; break;
    }
    ASSERT_EQ(b_apply(doc, &b, &err), want);
    ASSERT_EQ(err.code, want);
    ASSERT_EQ(err.op_index, 4);
    char *after = export_doc(doc);
    ASSERT_STR_EQ(after, before);
    for (int k = 0; k < VTL_ENT__COUNT; k++)
      ASSERT_EQ(vtl_doc_count(doc, k), counts[k]);
    /* evaluation sees the old document, not a stale cache */
    vtl_params p1;
    ASSERT_OK(vtl_params_at(doc, 60, &p1));
    ASSERT_U64_EQ(p1.dep_hash, p0.dep_hash);
    ASSERT_NEAR(p1.values[VTL_PARAM_ZOOM], p0.values[VTL_PARAM_ZOOM], 0);
    free(before);
    free(after);
    vtl_doc_free(doc);
  }
  return 0;
}

TEST_IMPL(cascade_delete_track) {
  vtl_doc *doc = new_doc();
  build_rich(doc);
  vtl_error err;
  batch b = {0};
  char *before = export_doc(doc);
  b_delete(&b, VTL_ENT_TRACK, 2);
  vtl_op *inv;
  size_t ninv;
  ASSERT_OK(b_apply_inv(doc, &b, &inv, &ninv, &err));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_TRACK, 2));
  for (vtl_id k = 10; k <= 12; k++) ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, k));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, 13));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, 14));
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_KEYFRAME), 2);
  /* inverse: recreate the track first, then its 3 keys */
  ASSERT_EQ(ninv, 4);
  for (size_t i = 0; i < ninv; i++) ASSERT_EQ(inv[i].type, VTL_OP_CREATE);
  ASSERT_EQ(inv[0].kind, VTL_ENT_TRACK);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
  vtl_ops_free(inv, ninv);
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);

  /* a prompt track takes its clips */
  b_delete(&b, VTL_ENT_TRACK, 4);
  ASSERT_OK(b_apply_inv(doc, &b, &inv, &ninv, &err));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 20));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 21));
  ASSERT_NOT_NULL(vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, 22));
  ASSERT_EQ(ninv, 3);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
  vtl_ops_free(inv, ninv);
  after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);

  /* many children: every one goes, whatever the table order */
  tracks_add(&b, 500, VTL_PARAM_NOISE, 0);
  ASSERT_OK(b_apply(doc, &b, &err));
  for (int i = 0; i < 200; i++) {
    key_add(&b, 1000 + (vtl_id)((i * 37) % 200), 500, i, i, VTL_INTERP_LINEAR);
    if (b.n == 64) ASSERT_OK(b_apply(doc, &b, &err));
  }
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_KEYFRAME), 205);
  b_delete(&b, VTL_ENT_TRACK, 500);
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_KEYFRAME), 5);
  for (vtl_id k = 1000; k < 1200; k++) ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, k));
  after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  free(before);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(cascade_delete_asset) {
  vtl_doc *doc = new_doc();
  build_rich(doc); /* shots 31, 32 image on 100; 33 noise with asset 102 */
  vtl_error err;
  batch b = {0};
  char *before = export_doc(doc);
  b_delete(&b, VTL_ENT_ASSET, 100);
  vtl_op *inv;
  size_t ninv;
  ASSERT_OK(b_apply_inv(doc, &b, &inv, &ninv, &err));
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_ASSET, 100));
  for (vtl_id id = 31; id <= 32; id++) {
    const vtl_shot *s = vtl_doc_get(doc, VTL_ENT_SHOT, id);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(s->source, VTL_SOURCE_NOISE);
    ASSERT_EQ(s->asset, 0);
  }
  const vtl_shot *s31 = vtl_doc_get(doc, VTL_ENT_SHOT, 31);
  ASSERT_NEAR(s31->strength, 0.6, 0); /* other fields kept */
  ASSERT_EQ(s31->seed, 99);
  ASSERT_EQ(((const vtl_shot *)vtl_doc_get(doc, VTL_ENT_SHOT, 33))->asset, 102);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
  vtl_ops_free(inv, ninv);
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  /* a non-image shot that names the asset loses only the reference */
  b_delete(&b, VTL_ENT_ASSET, 102);
  ASSERT_OK(b_apply_inv(doc, &b, &inv, &ninv, &err));
  const vtl_shot *s33 = vtl_doc_get(doc, VTL_ENT_SHOT, 33);
  ASSERT_EQ(s33->asset, 0);
  ASSERT_EQ(s33->source, VTL_SOURCE_NOISE);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
  vtl_ops_free(inv, ninv);
  after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  /* deleting the asset and repointing a shot in one batch */
  b_delete(&b, VTL_ENT_ASSET, 100);
  b_int(&b, VTL_ENT_SHOT, 31, "asset", 102);
  b_int(&b, VTL_ENT_SHOT, 31, "source", VTL_SOURCE_IMAGE);
  ASSERT_OK(b_apply_inv(doc, &b, &inv, &ninv, &err));
  ASSERT_EQ(((const vtl_shot *)vtl_doc_get(doc, VTL_ENT_SHOT, 31))->source,
            VTL_SOURCE_IMAGE);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, NULL, NULL, &err));
  vtl_ops_free(inv, ninv);
  after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  free(before);
  vtl_doc_free(doc);
  return 0;
}

/* Applies the batch with its inverse, checks that the inverse restores the
 * document and that the inverse's inverse redoes it, and leaves the batch
 * applied. */
static int check_inverse(vtl_doc *doc, batch *b) {
  vtl_error err;
  char *before = export_doc(doc);
  vtl_op *inv, *inv2;
  size_t ninv, ninv2;
  int rc = b_apply_inv(doc, b, &inv, &ninv, &err);
  if (rc) fprintf(stderr, "batch: %s (op %d)\n", err.message, err.op_index);
  ASSERT_OK(rc);
  char *after = export_doc(doc);
  ASSERT_OK(vtl_doc_apply(doc, inv, ninv, &inv2, &ninv2, &err));
  char *undone = export_doc(doc);
  ASSERT_STR_EQ(undone, before);
  ASSERT_OK(vtl_doc_apply(doc, inv2, ninv2, NULL, NULL, &err));
  char *redone = export_doc(doc);
  ASSERT_STR_EQ(redone, after);
  vtl_ops_free(inv, ninv);
  vtl_ops_free(inv2, ninv2);
  free(before);
  free(after);
  free(undone);
  free(redone);
  return 0;
}

TEST_IMPL(inverse_restores) {
  vtl_doc *doc = new_doc();
  batch b = {0};
  /* building the rich document from nothing, as one batch */
  {
    vtl_doc *tmp = new_doc();
    build_rich(tmp);
    vtl_op *ops;
    size_t n;
    ASSERT_OK(vtl_doc_to_ops(tmp, &ops, &n));
    ASSERT(n <= 64);
    for (size_t i = 0; i < n; i++) b.ops[b.n++] = ops[i];
    free(ops);
    vtl_doc_free(tmp);
    ASSERT_OK(check_inverse(doc, &b));
  }
  /* sets of every type */
  b_str(&b, VTL_ENT_TRACK, 2, "name", "zoom \xe2\x86\x92");
  b_real(&b, VTL_ENT_KEYFRAME, 11, "value", 2.25);
  b_bool(&b, VTL_ENT_TRACK, 3, "mute", false);
  b_int(&b, VTL_ENT_KEYFRAME, 11, "interp", VTL_INTERP_EASE_OUT);
  b_int(&b, VTL_ENT_SHOT, 33, "asset", 0);
  b_str(&b, VTL_ENT_KEYFRAME, 12, "expr", "");
  ASSERT_OK(check_inverse(doc, &b));
  /* the same field set several times in one batch */
  b_int(&b, VTL_ENT_TIMELINE, 1, "steps", 5);
  b_int(&b, VTL_ENT_TIMELINE, 1, "steps", 6);
  b_int(&b, VTL_ENT_TIMELINE, 1, "steps", 7);
  ASSERT_OK(check_inverse(doc, &b));
  /* cascades */
  b_delete(&b, VTL_ENT_TRACK, 2);
  ASSERT_OK(check_inverse(doc, &b));
  b_delete(&b, VTL_ENT_ASSET, 100);
  ASSERT_OK(check_inverse(doc, &b));
  b_delete(&b, VTL_ENT_TRACK, 4);
  b_delete(&b, VTL_ENT_TRACK, 6);
  b_delete(&b, VTL_ENT_MARKER, 40);
  ASSERT_OK(check_inverse(doc, &b));
  /* create then delete in one batch: the inverse is a no-op */
  b_create(&b, VTL_ENT_MARKER, 300);
  b_int(&b, VTL_ENT_MARKER, 300, "frame", 4);
  b_delete(&b, VTL_ENT_MARKER, 300);
  ASSERT_OK(check_inverse(doc, &b));
  /* delete and recreate an id as something else, with children */
  b_delete(&b, VTL_ENT_TRACK, 5);
  tracks_add(&b, 5, VTL_TARGET_PROMPT, 0);
  clip_add(&b, 310, 5, 3, 9, "re-created");
  b_delete(&b, VTL_ENT_ASSET, 102);
  asset_add(&b, 102, VTL_ASSET_IMAGE, "dd44");
  shot_add(&b, 311, 5, VTL_SOURCE_IMAGE, 102);
  ASSERT_OK(check_inverse(doc, &b));
  /* a clip passing through an invalid state */
  b_int(&b, VTL_ENT_PROMPT_CLIP, 310, "start", 50);
  b_int(&b, VTL_ENT_PROMPT_CLIP, 310, "end", 60);
  ASSERT_OK(check_inverse(doc, &b));
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(validate_changes_nothing) {
  vtl_doc *doc = new_doc();
  build_rich(doc);
  char *before = export_doc(doc);
  vtl_params p0, p1;
  ASSERT_OK(vtl_params_at(doc, 130, &p0));
  batch b = {0};
  vtl_error err;
  /* valid batches, cascades included */
  b_delete(&b, VTL_ENT_TRACK, 2);
  b_delete(&b, VTL_ENT_ASSET, 100);
  b_int(&b, VTL_ENT_TIMELINE, 1, "steps", 3);
  tracks_add(&b, 9, VTL_PARAM_ZOOM, -5);
  key_add(&b, 90, 9, 0, 50, VTL_INTERP_HOLD);
  ASSERT_OK(vtl_doc_validate(doc, b.ops, b.n, &err));
  char *after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  ASSERT_OK(vtl_params_at(doc, 130, &p1));
  ASSERT_U64_EQ(p1.dep_hash, p0.dep_hash);
  ASSERT_NEAR(p1.values[VTL_PARAM_ZOOM], p0.values[VTL_PARAM_ZOOM], 0);
  ASSERT_EQ(p1.values[VTL_PARAM_STEPS], p0.values[VTL_PARAM_STEPS]);
  /* validating twice gives the same answer: nothing was left behind */
  ASSERT_OK(vtl_doc_validate(doc, b.ops, b.n, &err));
  /* and applying it then succeeds */
  ASSERT_OK(b_apply(doc, &b, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->steps, 3);
  ASSERT_NULL(vtl_doc_get(doc, VTL_ENT_KEYFRAME, 10));
  free(before);
  before = export_doc(doc);
  /* an invalid batch: same error as apply, nothing changed */
  b_int(&b, VTL_ENT_TIMELINE, 1, "steps", 4);
  b_int(&b, VTL_ENT_TRACK, 12345, "order", 1);
  ASSERT_EQ(vtl_doc_validate(doc, b.ops, b.n, &err), VTL_ENOENT);
  ASSERT_EQ(err.op_index, 1);
  ASSERT_EQ(b_apply(doc, &b, &err), VTL_ENOENT);
  after = export_doc(doc);
  ASSERT_STR_EQ(after, before);
  free(after);
  free(before);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(clone_equals) {
  vtl_doc *doc = new_doc();
  build_rich(doc);
  vtl_doc *copy = NULL;
  ASSERT_OK(vtl_doc_clone(doc, &copy));
  char *a = export_doc(doc), *b2 = export_doc(copy);
  ASSERT_STR_EQ(b2, a);
  for (int64_t f = 0; f < 200; f += 13) {
    vtl_params p, q;
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_OK(vtl_params_at(copy, f, &q));
    ASSERT_U64_EQ(p.dep_hash, q.dep_hash);
    ASSERT_EQ(p.seed, q.seed);
    ASSERT(memcmp(p.values, q.values, sizeof p.values) == 0);
  }
  /* independent: editing the copy leaves the original */
  vtl_error err;
  ASSERT_OK(apply1(copy, set_str(VTL_ENT_TRACK, 2, "name", "copy only"), &err));
  vtl_op del;
  CHECK(vtl_op_delete(&del, VTL_ENT_TRACK, 4));
  ASSERT_OK(apply1(copy, del, &err));
  char *a2 = export_doc(doc);
  ASSERT_STR_EQ(a2, a);
  vtl_doc_free(doc); /* the copy owns its strings */
  ASSERT_STR_EQ(((const vtl_track *)vtl_doc_get(copy, VTL_ENT_TRACK, 2))->name,
                "copy only");
  /* a clone of an empty document */
  vtl_doc *e = new_doc(), *e2 = NULL;
  ASSERT_OK(vtl_doc_clone(e, &e2));
  char *x = export_doc(e), *y = export_doc(e2);
  ASSERT_STR_EQ(y, x);
  free(x);
  free(y);
  vtl_doc_free(e);
  vtl_doc_free(e2);
  free(a);
  free(a2);
  free(b2);
  vtl_doc_free(copy);
  return 0;
}

TEST_IMPL(to_ops_reproduces) {
  vtl_doc *doc = new_doc();
  build_rich(doc);
  vtl_op *ops;
  size_t n;
  ASSERT_OK(vtl_doc_to_ops(doc, &ops, &n));
  /* Timeline sets first (one per field), then one create per entity */
  size_t nent = 0;
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) nent += vtl_doc_count(doc, k);
  int ntl = vtl_entities[VTL_ENT_TIMELINE].nfields;
  ASSERT_EQ(n, (size_t)ntl + nent);
  for (int i = 0; i < ntl; i++) {
    ASSERT_EQ(ops[i].type, VTL_OP_SET);
    ASSERT_EQ(ops[i].kind, VTL_ENT_TIMELINE);
  }
  for (size_t i = ntl; i < n; i++) {
    ASSERT_EQ(ops[i].type, VTL_OP_CREATE);
    ASSERT_EQ(ops[i].nfields, vtl_entities[ops[i].kind].nfields);
  }
  vtl_doc *fresh = new_doc();
  vtl_error err;
  ASSERT_OK(vtl_doc_apply(fresh, ops, n, NULL, NULL, &err));
  char *a = export_doc(doc), *b = export_doc(fresh);
  ASSERT_STR_EQ(b, a);
  /* applying them again refuses the duplicates and changes nothing */
  ASSERT_EQ(vtl_doc_apply(fresh, ops, n, NULL, NULL, &err), VTL_EEXIST);
  ASSERT_EQ(err.op_index, ntl);
  char *c = export_doc(fresh);
  ASSERT_STR_EQ(c, a);
  vtl_ops_free(ops, n);
  /* a fresh document's ops are the Timeline sets alone */
  vtl_doc *e = new_doc();
  ASSERT_OK(vtl_doc_to_ops(e, &ops, &n));
  ASSERT_EQ(n, (size_t)ntl);
  vtl_ops_free(ops, n);
  vtl_doc_free(e);
  free(a);
  free(b);
  free(c);
  vtl_doc_free(fresh);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(list_sorted_by_id) {
  vtl_doc *doc = new_doc();
  batch b = {0};
  vtl_error err;
  const vtl_id ids[] = {50, 3, VTL_ID_MAX, 17, 1, 4096, 2};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    b_create(&b, VTL_ENT_MARKER, ids[i]);
  ASSERT_OK(b_apply(doc, &b, &err));
  size_t n;
  const void *const *items = vtl_doc_list(doc, VTL_ENT_MARKER, &n);
  ASSERT_EQ(n, 7);
  for (size_t i = 1; i < n; i++)
    ASSERT_LT(((const vtl_marker *)items[i - 1])->id,
              ((const vtl_marker *)items[i])->id);
  ASSERT_U64_EQ(((const vtl_marker *)items[n - 1])->id, VTL_ID_MAX);
  /* after deletes (swap-removes) the list is sorted again */
  b_delete(&b, VTL_ENT_MARKER, 3);
  b_delete(&b, VTL_ENT_MARKER, 1);
  ASSERT_OK(b_apply(doc, &b, &err));
  items = vtl_doc_list(doc, VTL_ENT_MARKER, &n);
  ASSERT_EQ(n, 5);
  const vtl_id want[] = {2, 17, 50, 4096, VTL_ID_MAX};
  for (size_t i = 0; i < n; i++) {
    ASSERT_U64_EQ(((const vtl_marker *)items[i])->id, want[i]);
    ASSERT(vtl_doc_get(doc, VTL_ENT_MARKER, want[i]) == items[i]);
  }
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_MARKER), 5);
  items = vtl_doc_list(doc, VTL_ENT_SHOT, &n);
  ASSERT_EQ(n, 0);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(op_constructors) {
  vtl_op op;
  ASSERT_OK(vtl_op_set_str(&op, VTL_ENT_TRACK, 5, "name", "abc"));
  ASSERT_EQ(op.type, VTL_OP_SET);
  ASSERT_EQ(op.kind, VTL_ENT_TRACK);
  ASSERT_U64_EQ(op.id, 5);
  ASSERT_EQ(op.nfields, 1);
  ASSERT_EQ(op.fields[0].field, vtl_field_lookup(VTL_ENT_TRACK, "name"));
  ASSERT_EQ(op.fields[0].value.type, VTL_FT_STR);
  ASSERT_STR_EQ(op.fields[0].value.u.s, "abc");
  vtl_value copy;
  ASSERT_OK(vtl_value_copy(&copy, &op.fields[0].value));
  ASSERT(copy.u.s != op.fields[0].value.u.s);
  ASSERT_STR_EQ(copy.u.s, "abc");
  vtl_value_free(&copy);
  ASSERT_NULL(copy.u.s);
  vtl_op_free(&op);
  ASSERT_EQ(op.nfields, 0);
  ASSERT_NULL(op.fields);
  /* NULL strings become "" */
  ASSERT_OK(vtl_op_set_str(&op, VTL_ENT_TRACK, 5, "name", NULL));
  ASSERT_STR_EQ(op.fields[0].value.u.s, "");
  vtl_op_free(&op);
  ASSERT_OK(vtl_op_create(&op, VTL_ENT_KEYFRAME, 9));
  ASSERT_OK(vtl_op_add_int(&op, "track", 2));
  ASSERT_OK(vtl_op_add_real(&op, "value", 0.5));
  ASSERT_OK(vtl_op_add_bool(&op, "value", true)); /* type checked on apply */
  ASSERT_OK(vtl_op_add_str(&op, "expr", "t"));
  ASSERT_EQ(op.nfields, 4);
  ASSERT_EQ(op.fields[1].value.type, VTL_FT_REAL);
  ASSERT_EQ(op.fields[2].value.type, VTL_FT_BOOL);
  vtl_op_free(&op);
  vtl_op *ops = calloc(2, sizeof *ops);
  ASSERT_OK(vtl_op_set_int(&ops[0], VTL_ENT_SHOT, 1, "seed", 3));
  ASSERT_OK(vtl_op_delete(&ops[1], VTL_ENT_SHOT, 1));
  ASSERT_EQ(ops[1].type, VTL_OP_DELETE);
  vtl_ops_free(ops, 2);
  vtl_ops_free(NULL, 0);
  ASSERT_EQ(vtl_enum_lookup(vtl_interp_names, "ease_in_out"),
            VTL_INTERP_EASE_IN_OUT);
  ASSERT_EQ(vtl_enum_lookup(vtl_interp_names, "wobble"), -1);
  ASSERT_EQ(vtl_enum_lookup(vtl_target_names, "prompt"), VTL_TARGET_PROMPT);
  ASSERT_EQ(vtl_enum_lookup(vtl_target_names, "translation_x"), VTL_PARAM_TX);
  return 0;
}

TEST_IMPL(error_names) {
  ASSERT_STR_EQ(vtl_strerror(0), "ok");
  ASSERT_STR_EQ(vtl_err_name(0), "OK");
  ASSERT_STR_EQ(vtl_strerror(VTL_ETOOLONG), "string too long");
  ASSERT_STR_EQ(vtl_err_name(VTL_ETOOLONG), "ETOOLONG");
  ASSERT_STR_EQ(vtl_err_name(VTL_ELIMIT), "ELIMIT");
  ASSERT_STR_EQ(vtl_err_name(VTL_EEXIST), "EEXIST");
  ASSERT_STR_EQ(vtl_strerror(12345), "unknown error");
  ASSERT_STR_EQ(vtl_err_name(-1), "EUNKNOWN");
  /* every code is negative and distinct */
  int codes[] = {VTL_EINVAL, VTL_ENOMEM, VTL_ENOENT, VTL_EEXIST, VTL_ERANGE,
                 VTL_ETYPE, VTL_ETOOLONG, VTL_ELIMIT, VTL_EREF, VTL_EPARSE,
                 VTL_EEXPR, VTL_EPERM, VTL_EIO, VTL_EUNSUPPORTED};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    ASSERT_LT(codes[i], 0);
    ASSERT(strcmp(vtl_err_name(codes[i]), "EUNKNOWN") != 0);
    for (size_t j = 0; j < i; j++) ASSERT_NE(codes[i], codes[j]);
  }
  return 0;
}

TEST_LIST(
  TEST_ENTRY(new_doc_defaults)
  TEST_ENTRY(create_defaults)
  TEST_ENTRY(create_with_fields)
  TEST_ENTRY(set_every_field)
  TEST_ENTRY(delete_every_kind)
  TEST_ENTRY(err_unknown_field)
  TEST_ENTRY(err_wrong_type)
  TEST_ENTRY(err_out_of_range)
  TEST_ENTRY(err_nan_inf)
  TEST_ENTRY(err_not_integer)
  TEST_ENTRY(err_bad_enum)
  TEST_ENTRY(err_too_long)
  TEST_ENTRY(err_invalid_utf8)
  TEST_ENTRY(err_dangling_ref)
  TEST_ENTRY(err_duplicate_id)
  TEST_ENTRY(err_id_range)
  TEST_ENTRY(err_timeline_once)
  TEST_ENTRY(err_fixed_fields)
  TEST_ENTRY(err_op_shape)
  TEST_ENTRY(err_limit_tracks)
  TEST_ENTRY(err_limit_assets)
  TEST_ENTRY(err_keyframe_prompt_track)
  TEST_ENTRY(clip_end_at_batch_end)
  TEST_ENTRY(err_width_multiple_of_8)
  TEST_ENTRY(err_image_shot)
  TEST_ENTRY(err_asset_kind_image_shot)
  TEST_ENTRY(atomic_fifth_op_fails)
  TEST_ENTRY(cascade_delete_track)
  TEST_ENTRY(cascade_delete_asset)
  TEST_ENTRY(inverse_restores)
  TEST_ENTRY(validate_changes_nothing)
  TEST_ENTRY(clone_equals)
  TEST_ENTRY(to_ops_reproduces)
  TEST_ENTRY(list_sorted_by_id)
  TEST_ENTRY(op_constructors)
  TEST_ENTRY(error_names)
)
