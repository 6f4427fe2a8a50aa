/* test_property.c — properties of the document model under random edits.
 *
 * A seeded xorshift generator makes batches of 1..4 random ops: creates,
 * sets and deletes of every kind, with values mostly valid and sometimes
 * not (wrong type, out of range, NaN, too long, bad UTF-8, dangling or
 * duplicate ids, fixed fields, the Timeline itself...). The ops depend only
 * on the generator and on the first replica's state, so every replica
 * receives the same sequence, as clients of the server do.
 *
 *   replicas_converge        two replicas applying the same batches accept
 *                            and refuse the same ones, export byte-equal
 *                            JSON and evaluate equal vtl_params (values,
 *                            prompts, seed, dep_hash) at sampled frames;
 *                            the second is perturbed (validate, clone) so
 *                            that its internal order differs
 *   rejected_batch_unchanged a refused batch leaves the document's JSON and
 *                            evaluation exactly as they were
 *   json_roundtrip_states    export -> import -> export is the identity for
 *                            every intermediate document, and the import
 *                            evaluates the same
 *   inverse_each_batch       each batch's inverse restores the document, and
 *                            re-applying the batch gives the same result
 *   undo_all_to_empty        all inverses applied in reverse order give the
 *                            empty document back
 */
#include <stdbool.h>
#include <stdint.h>

#include "task.h"
#include "vtl_import.h"
#include "vtl_timeline.h"

/* ---- helpers -------------------------------------------------------------- */


typedef struct {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) { /* xorshift64* */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545f4914f6cdd1dull;
}
static uint64_t below(rng *r, uint64_t n) { return rnd(r) % n; }
static bool chance(rng *r, unsigned percent) { return below(r, 100) < percent; }
static double unit(rng *r) { return (double)(rnd(r) >> 11) * 0x1p-53; }
static rng rng_new(uint64_t seed) {
  rng r = {seed * 0x9e3779b97f4a7c15ull + 1};
  for (int i = 0; i < 4; i++) rnd(&r);
  return r;
}

#define POOL 12 /* ids 1..POOL per kind, so that creates collide */

static const char *const strings[] = {
  "", "a", "sunset over hills", "caf\xc3\xa9 \xf0\x9f\x98\x80", "\"quoted\"\n",
  "fog", "a", "city at night, neon",
};
static const char *const exprs[] = {
  "t * 0.5", "sin(t / 10) * 5", "1 + t / max_f", "where(t > 20, 2, 1)",
  "s * fps", "undefined_x + 1", "t < 30 and t or nope()", "0 / 0",
  "floor(t / 7)", "2^40",
};
static const char *const bad_strings[] = {
  "\xff", "\xed\xa0\x80", "\xc3", "\xc0\x80", "\xf4\x90\x80\x80", "1 +",
  "sin(", "))",
};
static const vtl_target targets[] = {
  VTL_PARAM_ZOOM, VTL_PARAM_TX, VTL_PARAM_STEPS, VTL_PARAM_SEED,
  VTL_PARAM_SAMPLER, VTL_PARAM_CADENCE, VTL_PARAM_STRENGTH, VTL_PARAM_ZOOM,
  VTL_TARGET_PROMPT, VTL_TARGET_PROMPT, VTL_TARGET_PROMPT,
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char long_string[VTL_MAX_TEXT + 2];

/* An existing id of kind in doc (most of the time), else one of the pool. */
static vtl_id pick_id(rng *r, vtl_doc *doc, vtl_entity_kind kind) {
  size_t n;
  const void *const *items = vtl_doc_list(doc, kind, &n);
  if (n && chance(r, 75)) return *(const vtl_id *)items[below(r, n)];
  return 1 + below(r, POOL);
}

/* A track of the right sort for a keyframe (params) or a clip (prompt),
 * most of the time. */
static vtl_id pick_track(rng *r, vtl_doc *doc, bool prompt) {
  size_t n;
  const void *const *items = vtl_doc_list(doc, VTL_ENT_TRACK, &n);
  if (n && chance(r, 85)) {
    size_t i0 = below(r, n);
    for (size_t j = 0; j < n; j++) {
      const vtl_track *t = items[(i0 + j) % n];
      if ((t->target == VTL_TARGET_PROMPT) == prompt) return t->id;
    }
  }
  return pick_id(r, doc, VTL_ENT_TRACK);
}

/* A value for field f of kind: mostly valid, sometimes not. */
static vtl_value gen_value(rng *r, vtl_doc *doc, vtl_entity_kind kind,
                           const vtl_field_desc *f) {
  vtl_value v = {.type = VTL_FT_INT};
  if (chance(r, 3)) { /* something invalid */
    if (f->type == VTL_FT_STR && chance(r, 70)) {
      v.type = VTL_FT_STR;
      v.u.s = strdup(chance(r, 25) ? long_string
                                   : bad_strings[below(r, NELEM(bad_strings))]);
      return v;
    }
    switch (below(r, 6)) {
    case 0: v = (vtl_value){.type = VTL_FT_BOOL, .u.b = true}; break;
    case 1: v = (vtl_value){.type = VTL_FT_REAL, .u.r = NAN}; break;
    case 2: v = (vtl_value){.type = VTL_FT_REAL, .u.r = 2.5}; break;
    case 3: v = (vtl_value){.type = VTL_FT_INT, .u.i = (int64_t)f->max + 1}; break;
    case 4: v = (vtl_value){.type = VTL_FT_INT, .u.i = -1000000000}; break;
    default:
      v.type = VTL_FT_STR;
      v.u.s = strdup(chance(r, 30) ? long_string
                                   : bad_strings[below(r, NELEM(bad_strings))]);
      break;
    }
    return v;
  }
  const char *name = f->name;
  switch (f->type) {
  case VTL_FT_INT: {
    int64_t x;
    if (!strcmp(name, "frame") || !strcmp(name, "start")) x = below(r, 100);
    else if (!strcmp(name, "end")) x = 1 + below(r, 120);
    else if (!strcmp(name, "fade_in") || !strcmp(name, "fade_out")) x = below(r, 12);
    else if (!strcmp(name, "width") || !strcmp(name, "height"))
      x = chance(r, 90) ? 8 * (1 + below(r, 64)) : 1 + below(r, 512);
    else if (!strcmp(name, "length")) x = 1 + below(r, 150);
    else if (!strcmp(name, "steps")) x = 1 + below(r, 50);
    else if (!strcmp(name, "seed")) x = (int64_t)below(r, 1ull << 32) - (kind == VTL_ENT_SHOT && chance(r, 30));
    else if (!strcmp(name, "seed_iter_n")) x = 1 + below(r, 4);
    else if (!strcmp(name, "order")) x = (int64_t)below(r, 7) - 3;
    else if (!strcmp(name, "color")) x = below(r, 0x1000000);
    else x = (int64_t)f->min + below(r, 100);
    v.u.i = x;
    if (chance(r, 10)) v = (vtl_value){.type = VTL_FT_REAL, .u.r = (double)x};
    return v;
  }
  case VTL_FT_REAL: {
    double lo = f->min, hi = f->max;
    if (hi - lo > 100) {
      lo = lo > -10 ? lo : -10;
      hi = hi < 10 ? hi : 10;
    }
    double x = lo + (hi - lo) * unit(r);
    if (chance(r, 30)) x = round(x * 4) / 4;
    v = (vtl_value){.type = VTL_FT_REAL, .u.r = x};
    return v;
  }
  case VTL_FT_BOOL: return (vtl_value){.type = VTL_FT_BOOL, .u.b = chance(r, 40)};
  case VTL_FT_STR:
    v.type = VTL_FT_STR;
    if (kind == VTL_ENT_KEYFRAME && !strcmp(name, "expr"))
      v.u.s = strdup(chance(r, 50) ? "" : exprs[below(r, NELEM(exprs))]);
    else
      v.u.s = strdup(strings[below(r, NELEM(strings))]);
    return v;
  case VTL_FT_ENUM: {
    int n = 0;
    while (f->enums[n]) n++;
    if (kind == VTL_ENT_TRACK) v.u.i = targets[below(r, NELEM(targets))];
    else v.u.i = (int64_t)below(r, n);
    return v;
  }
  case VTL_FT_REF:
    if (chance(r, 5)) v.u.i = 0;
    else if (f->ref == VTL_ENT_TRACK)
      v.u.i = (int64_t)pick_track(r, doc, kind == VTL_ENT_PROMPT_CLIP);
    else v.u.i = (int64_t)pick_id(r, doc, f->ref);
    return v;
  }
  return v;
}

static void push_field(vtl_op *op, int field, vtl_value v) {
  op->fields = realloc(op->fields, (op->nfields + 1) * sizeof *op->fields);
  CHECK(op->fields == NULL);
  op->fields[op->nfields++] = (vtl_field_value){field, v};
}

static vtl_entity_kind gen_kind(rng *r) {
  return (vtl_entity_kind)(VTL_ENT_TRACK + below(r, VTL_ENT__COUNT - 1));
}

/* A kind that has entities, most of the time (sets and deletes). */
static vtl_entity_kind gen_existing_kind(rng *r, vtl_doc *doc) {
  vtl_entity_kind k = gen_kind(r);
  for (int i = 0; i < 3 && vtl_doc_count(doc, k) == 0; i++) k = gen_kind(r);
  return k;
}

/* A pool id not used by kind, most of the time (creates). */
static vtl_id fresh_id(rng *r, vtl_doc *doc, vtl_entity_kind k) {
  vtl_id id = 1 + below(r, POOL);
  for (int i = 0; i < 4 && vtl_doc_get(doc, k, id); i++) id = 1 + below(r, POOL);
  return id;
}

static void gen_op(rng *r, vtl_doc *doc, vtl_op *op) {
  unsigned roll = (unsigned)below(r, 100);
  if (roll < 40) { /* create */
    vtl_entity_kind k = chance(r, 2) ? VTL_ENT_TIMELINE : gen_kind(r);
    vtl_id id = chance(r, 2) ? (chance(r, 50) ? 0 : VTL_ID_MAX + 1)
                             : fresh_id(r, doc, k);
    vtl_op_create(op, k, id);
    const vtl_entity_desc *d = &vtl_entities[k];
    for (int i = 0; i < d->nfields; i++) {
      const vtl_field_desc *f = &d->fields[i];
      bool need = f->type == VTL_FT_REF && !(f->flags & VTL_FF_OPTIONAL);
      if (chance(r, need || (f->flags & VTL_FF_FIXED) ? 97 : 30))
        push_field(op, i, gen_value(r, doc, k, f));
    }
    if (k == VTL_ENT_PROMPT_CLIP && chance(r, 70)) { /* a sane span */
      int64_t start = below(r, 100);
      int fs = vtl_field_lookup(k, "start"), fe = vtl_field_lookup(k, "end");
      for (int i = 0; i < op->nfields; i++)
        if (op->fields[i].field == fs || op->fields[i].field == fe) {
          vtl_value_free(&op->fields[i].value);
          op->fields[i] = op->fields[--op->nfields];
          i--;
        }
      push_field(op, fs, (vtl_value){.type = VTL_FT_INT, .u.i = start});
      push_field(op, fe, (vtl_value){.type = VTL_FT_INT,
                                     .u.i = start + 1 + (int64_t)below(r, 40)});
    }
    if (k == VTL_ENT_SHOT && chance(r, 40)) { /* an image shot */
      int fs = vtl_field_lookup(k, "source"), fa = vtl_field_lookup(k, "asset");
      for (int i = 0; i < op->nfields; i++)
        if (op->fields[i].field == fs || op->fields[i].field == fa) {
          vtl_value_free(&op->fields[i].value);
          op->fields[i] = op->fields[--op->nfields];
          i--;
        }
      push_field(op, fs, (vtl_value){.type = VTL_FT_INT, .u.i = VTL_SOURCE_IMAGE});
      push_field(op, fa, (vtl_value){.type = VTL_FT_INT,
                                     .u.i = (int64_t)pick_id(r, doc, VTL_ENT_ASSET)});
    }
    if (chance(r, 1)) /* the same field twice */
      if (op->nfields) {
        vtl_value v;
        CHECK(vtl_value_copy(&v, &op->fields[0].value));
        push_field(op, op->fields[0].field, v);
      }
  } else if (roll < 85) { /* set */
    vtl_entity_kind k = chance(r, 20) ? VTL_ENT_TIMELINE : gen_existing_kind(r, doc);
    vtl_id id = k == VTL_ENT_TIMELINE ? VTL_TIMELINE_ID : pick_id(r, doc, k);
    *op = (vtl_op){.type = VTL_OP_SET, .kind = k, .id = id};
    const vtl_entity_desc *d = &vtl_entities[k];
    int fi = chance(r, 1) ? d->nfields + 3 : (int)below(r, d->nfields);
    const vtl_field_desc *f = &d->fields[fi < d->nfields ? fi : 0];
    push_field(op, fi, gen_value(r, doc, k, f));
  } else { /* delete */
    vtl_entity_kind k = chance(r, 2) ? VTL_ENT_TIMELINE : gen_existing_kind(r, doc);
    vtl_op_delete(op, k, k == VTL_ENT_TIMELINE ? VTL_TIMELINE_ID : pick_id(r, doc, k));
  }
}

typedef struct {
  vtl_op ops[4];
  size_t n;
} batch;

static void gen_batch(rng *r, vtl_doc *doc, batch *b) {
  b->n = chance(r, 50) ? 1 : 2 + below(r, 3);
  for (size_t i = 0; i < b->n; i++) gen_op(r, doc, &b->ops[i]);
}

static void batch_free(batch *b) {
  for (size_t i = 0; i < b->n; i++) vtl_op_free(&b->ops[i]);
  b->n = 0;
}

static char *export_doc(vtl_doc *doc) {
  char *s = NULL;
  CHECK(vtl_json_export(doc, &s));
  return s;
}

static const int64_t sample_frames[] = {0, 3, 17, 42, 99, 149};
#define NSAMPLES NELEM(sample_frames)

/* 0 when p and q are equal in every field (strings by content). */
static int params_equal(const vtl_params *p, const vtl_params *q) {
  ASSERT_EQ(p->frame, q->frame);
  ASSERT(memcmp(&p->seconds, &q->seconds, sizeof p->seconds) == 0);
  ASSERT(memcmp(p->values, q->values, sizeof p->values) == 0);
  ASSERT_EQ(p->seed, q->seed);
  ASSERT_U64_EQ(p->shot, q->shot);
  ASSERT_EQ(p->shot_start, q->shot_start);
  ASSERT_EQ(p->first_frame, q->first_frame);
  ASSERT_EQ(p->source, q->source);
  ASSERT_U64_EQ(p->source_asset, q->source_asset);
  ASSERT(memcmp(&p->source_strength, &q->source_strength, sizeof(double)) == 0);
  ASSERT_EQ(p->nprompts, q->nprompts);
  for (int i = 0; i < p->nprompts; i++) {
    ASSERT_STR_EQ(p->prompts[i].text, q->prompts[i].text);
    ASSERT_STR_EQ(p->prompts[i].negative, q->prompts[i].negative);
    ASSERT(memcmp(&p->prompts[i].weight, &q->prompts[i].weight,
                  sizeof(double)) == 0);
  }
  ASSERT_U64_EQ(p->dep_hash, q->dep_hash);
  ASSERT_EQ(p->nerrors, q->nerrors);
  ASSERT_STR_EQ(p->error, q->error);
  return 0;
}

/* Sanity of one evaluation, whatever the document. */
static int params_sane(const vtl_params *p) {
  for (int i = 0; i < VTL_PARAM__COUNT; i++) {
    ASSERT(isfinite(p->values[i]));
    ASSERT(p->values[i] >= vtl_param_table[i].min);
    ASSERT(p->values[i] <= vtl_param_table[i].max);
  }
  ASSERT_GE(p->seed, 0);
  ASSERT_LE(p->seed, 4294967295ll);
  ASSERT(p->nprompts >= 0 && p->nprompts <= VTL_MAX_PROMPTS_AT);
  if (p->nprompts) {
    double sum = 0;
    for (int i = 0; i < p->nprompts; i++) sum += p->prompts[i].weight;
    ASSERT_NEAR(sum, 1, 1e-9);
  }
  return 0;
}

/* Evaluates both documents at the sample frames and compares. */
static int same_eval(vtl_doc *a, vtl_doc *b) {
  for (size_t i = 0; i < NSAMPLES; i++) {
    vtl_params p, q;
    ASSERT_OK(vtl_params_at(a, sample_frames[i], &p));
    ASSERT_OK(vtl_params_at(b, sample_frames[i], &q));
    ASSERT_OK(params_sane(&p));
    if (params_equal(&p, &q)) {
      fprintf(stderr, "  at frame %" PRId64 "\n", sample_frames[i]);
      return 1;
    }
  }
  return 0;
}

typedef struct {
  int ok, refused;
  size_t max_count[VTL_ENT__COUNT];
} stats;

static void count(stats *st, vtl_doc *doc) {
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    size_t n = vtl_doc_count(doc, k);
    if (n > st->max_count[k]) st->max_count[k] = n;
  }
}

/* The sequence was meaningful: both outcomes happened and every kind of
 * entity existed at some point. */
static int meaningful(const stats *st) {
  int total = st->ok + st->refused;
  if (getenv("VTL_TEST_VERBOSE")) {
    fprintf(stderr, "  %d batches applied, %d refused; most entities:", st->ok,
            st->refused);
    for (int k = 0; k < VTL_ENT__COUNT; k++)
      fprintf(stderr, " %s %zu", vtl_entities[k].plural, st->max_count[k]);
    fprintf(stderr, "\n");
  }
  ASSERT_GT(st->ok, total / 5);
  ASSERT_GT(st->refused, total / 10);
  for (int k = 0; k < VTL_ENT__COUNT; k++) ASSERT_GT(st->max_count[k], 0);
  return 0;
}

static void init_long_string(void) {
  memset(long_string, 'x', sizeof long_string - 1);
  long_string[sizeof long_string - 1] = '\0';
}

#define SEEDS 6
#define STEPS 200

/* ---- tests ------------------------------------------------------------------ */

TEST_IMPL(replicas_converge) {
  init_long_string();
  stats st = {0};
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    rng r = rng_new(seed), side = rng_new(seed + 1000);
    vtl_doc *a = NULL, *b = NULL;
    CHECK(vtl_doc_new(&a));
    CHECK(vtl_doc_new(&b));
    for (int step = 0; step < STEPS; step++) {
      batch bt;
      gen_batch(&r, a, &bt);
      /* perturb b's internals: validate something (applies and rolls
       * back), or swap b for a clone of itself */
      if (chance(&side, 30)) {
        batch other;
        gen_batch(&side, b, &other);
        char *before = export_doc(b);
        vtl_error verr;
        vtl_doc_validate(b, other.ops, other.n, &verr);
        char *after = export_doc(b);
        ASSERT_STR_EQ(after, before);
        free(before);
        free(after);
        batch_free(&other);
      } else if (chance(&side, 5)) {
        vtl_doc *c = NULL;
        ASSERT_OK(vtl_doc_clone(b, &c));
        vtl_doc_free(b);
        b = c;
      }
      vtl_error ea, eb;
      int ra = vtl_doc_apply(a, bt.ops, bt.n, NULL, NULL, &ea);
      int rb = vtl_doc_apply(b, bt.ops, bt.n, NULL, NULL, &eb);
      ASSERT_EQ(ra, rb);
      if (ra) {
        ASSERT_EQ(ea.op_index, eb.op_index);
        ASSERT_STR_EQ(ea.message, eb.message);
        st.refused++;
      } else {
        st.ok++;
      }
      count(&st, a);
      char *ja = export_doc(a), *jb = export_doc(b);
      if (strcmp(ja, jb) != 0)
        fprintf(stderr, "seed %" PRIu64 " step %d: replicas differ\n", seed, step);
      ASSERT_STR_EQ(ja, jb);
      free(ja);
      free(jb);
      if (same_eval(a, b)) {
        fprintf(stderr, "seed %" PRIu64 " step %d: evaluations differ\n", seed,
                step);
        return 1;
      }
      batch_free(&bt);
    }
    vtl_doc_free(a);
    vtl_doc_free(b);
  }
  ASSERT_OK(meaningful(&st));
  return 0;
}

TEST_IMPL(rejected_batch_unchanged) {
  init_long_string();
  stats st = {0};
  for (uint64_t seed = 101; seed < 101 + SEEDS; seed++) {
    rng r = rng_new(seed);
    vtl_doc *a = NULL;
    CHECK(vtl_doc_new(&a));
    for (int step = 0; step < STEPS; step++) {
      batch bt;
      gen_batch(&r, a, &bt);
      char *before = export_doc(a);
      vtl_doc *copy = NULL;
      ASSERT_OK(vtl_doc_clone(a, &copy));
      vtl_error err;
      int rc = vtl_doc_apply(a, bt.ops, bt.n, NULL, NULL, &err);
      if (rc) {
        st.refused++;
        ASSERT_EQ(err.code, rc);
        ASSERT(err.op_index >= 0 && err.op_index < (int)bt.n);
        ASSERT(err.message[0] != '\0');
        char *after = export_doc(a);
        if (strcmp(after, before))
          fprintf(stderr, "seed %" PRIu64 " step %d: refused (%s) but changed\n",
                  seed, step, err.message);
        ASSERT_STR_EQ(after, before);
        free(after);
        /* evaluation too (no stale cache survives a rollback) */
        if (same_eval(a, copy)) return 1;
        /* validate agrees with apply */
        vtl_error verr;
        ASSERT_EQ(vtl_doc_validate(a, bt.ops, bt.n, &verr), rc);
        ASSERT_EQ(verr.op_index, err.op_index);
      } else {
        st.ok++;
      }
      count(&st, a);
      free(before);
      vtl_doc_free(copy);
      batch_free(&bt);
    }
    vtl_doc_free(a);
  }
  ASSERT_OK(meaningful(&st));
  return 0;
}

TEST_IMPL(json_roundtrip_states) {
  init_long_string();
  stats st = {0};
  for (uint64_t seed = 201; seed < 201 + SEEDS; seed++) {
    rng r = rng_new(seed);
    vtl_doc *a = NULL;
    CHECK(vtl_doc_new(&a));
    for (int step = 0; step < STEPS; step++) {
      batch bt;
      gen_batch(&r, a, &bt);
      vtl_error err;
      if (vtl_doc_apply(a, bt.ops, bt.n, NULL, NULL, &err)) st.refused++;
      else st.ok++;
      count(&st, a);
      batch_free(&bt);
      char *j = export_doc(a);
      vtl_doc *b = NULL;
      int rc = vtl_json_import(j, strlen(j), &b, &err);
      if (rc)
        fprintf(stderr, "seed %" PRIu64 " step %d: import of own export: %s\n",
                seed, step, err.message);
      ASSERT_OK(rc);
      char *j2 = export_doc(b);
      ASSERT_STR_EQ(j2, j);
      if (same_eval(a, b)) return 1;
      /* to_ops on a fresh document gives the same bytes as well */
      if (step % 10 == 0) {
        vtl_op *ops;
        size_t n;
        vtl_doc *c = NULL;
        ASSERT_OK(vtl_doc_to_ops(a, &ops, &n));
        ASSERT_OK(vtl_doc_new(&c));
        ASSERT_OK(vtl_doc_apply(c, ops, n, NULL, NULL, &err));
        char *j3 = export_doc(c);
        ASSERT_STR_EQ(j3, j);
        free(j3);
        vtl_ops_free(ops, n);
        vtl_doc_free(c);
      }
      free(j);
      free(j2);
      vtl_doc_free(b);
    }
    vtl_doc_free(a);
  }
  ASSERT_OK(meaningful(&st));
  return 0;
}

TEST_IMPL(inverse_each_batch) {
  init_long_string();
  stats st = {0};
  for (uint64_t seed = 301; seed < 301 + SEEDS; seed++) {
    rng r = rng_new(seed);
    vtl_doc *a = NULL;
    CHECK(vtl_doc_new(&a));
    for (int step = 0; step < STEPS; step++) {
      batch bt;
      gen_batch(&r, a, &bt);
      char *before = export_doc(a);
      vtl_op *inv;
      size_t ninv;
      vtl_error err;
      if (vtl_doc_apply(a, bt.ops, bt.n, &inv, &ninv, &err)) {
        st.refused++;
      } else {
        st.ok++;
        count(&st, a);
        char *after = export_doc(a);
        int rc = vtl_doc_apply(a, inv, ninv, NULL, NULL, &err);
        if (rc)
          fprintf(stderr, "seed %" PRIu64 " step %d: inverse refused: %s\n",
                  seed, step, err.message);
        ASSERT_OK(rc);
        char *undone = export_doc(a);
        ASSERT_STR_EQ(undone, before);
        /* the batch applies again, to the same result */
        ASSERT_OK(vtl_doc_apply(a, bt.ops, bt.n, NULL, NULL, &err));
        char *redone = export_doc(a);
        ASSERT_STR_EQ(redone, after);
        free(after);
        free(undone);
        free(redone);
        vtl_ops_free(inv, ninv);
      }
      free(before);
      batch_free(&bt);
    }
    vtl_doc_free(a);
  }
  ASSERT_OK(meaningful(&st));
  return 0;
}

TEST_IMPL(undo_all_to_empty) {
  init_long_string();
  stats st = {0};
  vtl_doc *empty = NULL;
  CHECK(vtl_doc_new(&empty));
  char *want = export_doc(empty);
  for (uint64_t seed = 401; seed < 401 + SEEDS; seed++) {
    rng r = rng_new(seed);
    vtl_doc *a = NULL;
    CHECK(vtl_doc_new(&a));
    vtl_op *invs[STEPS];
    size_t ninvs[STEPS];
    int n = 0;
    for (int step = 0; step < STEPS; step++) {
      batch bt;
      gen_batch(&r, a, &bt);
      vtl_error err;
      if (vtl_doc_apply(a, bt.ops, bt.n, &invs[n], &ninvs[n], &err)) {
        st.refused++;
      } else {
        st.ok++;
        n++;
      }
      count(&st, a);
      batch_free(&bt);
    }
    for (int i = n; i-- > 0;) {
      vtl_error err;
      int rc = vtl_doc_apply(a, invs[i], ninvs[i], NULL, NULL, &err);
      if (rc)
        fprintf(stderr, "seed %" PRIu64 " undo %d: %s\n", seed, i, err.message);
      ASSERT_OK(rc);
      vtl_ops_free(invs[i], ninvs[i]);
    }
    char *got = export_doc(a);
    ASSERT_STR_EQ(got, want);
    for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++)
      ASSERT_EQ(vtl_doc_count(a, k), 0);
    if (same_eval(a, empty)) return 1;
    free(got);
    vtl_doc_free(a);
  }
  free(want);
  vtl_doc_free(empty);
  ASSERT_OK(meaningful(&st));
  return 0;
}

TEST_LIST(
  TEST_ENTRY(replicas_converge)
  TEST_ENTRY(rejected_batch_unchanged)
  TEST_ENTRY(json_roundtrip_states)
  TEST_ENTRY(inverse_each_batch)
  TEST_ENTRY(undo_all_to_empty)
)
