/* doc.c — the document store and atomic batch apply.
 *
 * vtl_doc_apply() applies ops one by one, each after validating it against
 * the state the previous ops of the batch left, and records the inverse of
 * everything it changes (including cascades). Constraints that span fields
 * (a clip's end after its start, an image shot's asset) are checked once at
 * the end of the batch, so a batch may pass through intermediate states.
 * Any failure replays the recorded inverses backwards: the document is then
 * byte-for-byte what it was. The inverses of a successful batch are the
 * per-user undo of ARCHITECTURE.md ("Consistency").
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* ---- hash map -------------------------------------------------------------- */

static size_t slot_of(vtl_id id, size_t nslots) {
  uint64_t h = id * 0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 17) & (nslots - 1);
}

static int table_rehash(vtl__table *t, size_t nslots) {
  vtl_id *ids = calloc(nslots, sizeof *ids);
  uint32_t *idx = calloc(nslots, sizeof *idx);
  if (!ids || !idx) {
    free(ids);
    free(idx);
    return VTL_ENOMEM;
  }
  for (size_t i = 0; i < t->n; i++) {
    vtl_id id = *(vtl_id *)t->items[i];
    size_t s = slot_of(id, nslots);
    while (ids[s]) s = (s + 1) & (nslots - 1);
    ids[s] = id;
    idx[s] = (uint32_t)i;
  }
  free(t->slot_id);
  free(t->slot_idx);
  t->slot_id = ids;
  t->slot_idx = idx;
  t->nslots = nslots;
  return 0;
}

static size_t table_find_slot(const vtl__table *t, vtl_id id) {
  if (!t->nslots) return SIZE_MAX;
  size_t s = slot_of(id, t->nslots);
  while (t->slot_id[s]) {
    if (t->slot_id[s] == id) return s;
    s = (s + 1) & (t->nslots - 1);
  }
  return SIZE_MAX;
}

void *vtl__table_get(const vtl__table *t, vtl_id id) {
  size_t s = table_find_slot(t, id);
  return s == SIZE_MAX ? NULL : t->items[t->slot_idx[s]];
}

/* Adds ent (owned from now on). Only fails on NOMEM, changing nothing. */
static int table_insert(vtl__table *t, void *ent) {
  if (t->n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    void **items = realloc(t->items, cap * sizeof *items);
    if (!items) return VTL_ENOMEM;
    t->items = items;
    t->cap = cap;
  }
  if (2 * (t->n + 1) >= t->nslots) {
    int rc = table_rehash(t, t->nslots ? t->nslots * 2 : 32);
    if (rc) return rc;
  }
  vtl_id id = *(vtl_id *)ent;
  size_t s = slot_of(id, t->nslots);
  while (t->slot_id[s]) s = (s + 1) & (t->nslots - 1);
  t->slot_id[s] = id;
  t->slot_idx[s] = (uint32_t)t->n;
  t->items[t->n++] = ent;
  free(t->sorted);
  t->sorted = NULL;
  return 0;
}

/* Removes id's entry (backward-shift deletion) and returns the entity,
 * which the caller now owns. */
static void *table_remove(vtl__table *t, vtl_id id) {
  size_t s = table_find_slot(t, id);
  if (s == SIZE_MAX) return NULL;
  size_t idx = t->slot_idx[s];
  void *ent = t->items[idx];
  size_t mask = t->nslots - 1, hole = s, j = s;
  for (;;) {
    j = (j + 1) & mask;
    if (!t->slot_id[j]) break;
    size_t home = slot_of(t->slot_id[j], t->nslots);
    /* move j into the hole unless its home lies cyclically in (hole, j] */
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      t->slot_id[hole] = t->slot_id[j];
      t->slot_idx[hole] = t->slot_idx[j];
      hole = j;
    }
  }
  t->slot_id[hole] = 0;
  /* swap-remove from items and repoint the moved entity's slot */
  t->n--;
  if (idx != t->n) {
    t->items[idx] = t->items[t->n];
    size_t ms = table_find_slot(t, *(vtl_id *)t->items[idx]);
    t->slot_idx[ms] = (uint32_t)idx;
  }
  free(t->sorted);
  t->sorted = NULL;
  return ent;
}

/* ---- entities ------------------------------------------------------------------ */

static void entity_free(vtl_entity_kind kind, void *ent) {
  if (!ent) return;
  const vtl_entity_desc *d = &vtl_entities[kind];
  for (int i = 0; i < d->nfields; i++)
    if (d->fields[i].type == VTL_FT_STR)
      free(*(char **)((char *)ent + d->fields[i].offset));
  free(ent);
}

/* A new entity with every field at its default. */
static void *entity_new(vtl_entity_kind kind, vtl_id id) {
  const vtl_entity_desc *d = &vtl_entities[kind];
  char *ent = calloc(1, d->size);
  if (!ent) return NULL;
  *(vtl_id *)ent = id;
  for (int i = 0; i < d->nfields; i++) {
    const vtl_field_desc *f = &d->fields[i];
    char *p = ent + f->offset;
    switch (f->type) {
    case VTL_FT_INT:
    case VTL_FT_ENUM: *(int64_t *)p = (int64_t)f->def; break;
    case VTL_FT_REAL: *(double *)p = f->def; break;
    case VTL_FT_BOOL: *(bool *)p = f->def != 0; break;
    case VTL_FT_REF: *(vtl_id *)p = 0; break;
    case VTL_FT_STR:
      if (!(*(char **)p = strdup(""))) {
        entity_free(kind, ent);
        return NULL;
      }
      break;
    }
  }
  return ent;
}

void vtl__field_read(const void *ent, const vtl_field_desc *f,
                     vtl_value *out) {
  const char *p = (const char *)ent + f->offset;
  switch (f->type) {
  case VTL_FT_INT:
  case VTL_FT_ENUM: *out = (vtl_value){VTL_FT_INT, {.i = *(int64_t *)p}}; break;
  case VTL_FT_REF:
    *out = (vtl_value){VTL_FT_INT, {.i = (int64_t) * (vtl_id *)p}};
    break;
  case VTL_FT_REAL: *out = (vtl_value){VTL_FT_REAL, {.r = *(double *)p}}; break;
  case VTL_FT_BOOL: *out = (vtl_value){VTL_FT_BOOL, {.b = *(bool *)p}}; break;
  case VTL_FT_STR:
    *out = (vtl_value){VTL_FT_STR, {.s = *(char **)p}}; /* borrowed */
    break;
  }
}

/* Stores an already validated value; strings are copied. */
static int field_write(void *ent, const vtl_field_desc *f,
                       const vtl_value *v) {
  char *p = (char *)ent + f->offset;
  switch (f->type) {
  case VTL_FT_INT:
  case VTL_FT_ENUM:
    *(int64_t *)p = v->type == VTL_FT_REAL ? (int64_t)v->u.r : v->u.i;
    break;
  case VTL_FT_REF: *(vtl_id *)p = (vtl_id)v->u.i; break;
  case VTL_FT_REAL:
    *(double *)p = v->type == VTL_FT_INT ? (double)v->u.i : v->u.r;
    break;
  case VTL_FT_BOOL: *(bool *)p = v->u.b; break;
  case VTL_FT_STR: {
    char *s = strdup(v->u.s);
    if (!s) return VTL_ENOMEM;
    free(*(char **)p);
    *(char **)p = s;
    break;
  }
  }
  return 0;
}

/* ---- the document ---------------------------------------------------------------- */

int vtl_doc_new(vtl_doc **out) {
  vtl_doc *doc = calloc(1, sizeof *doc);
  if (!doc) return VTL_ENOMEM;
  void *tl = entity_new(VTL_ENT_TIMELINE, VTL_TIMELINE_ID);
  if (!tl || table_insert(&doc->tables[VTL_ENT_TIMELINE], tl)) {
    entity_free(VTL_ENT_TIMELINE, tl);
    vtl_doc_free(doc);
    return VTL_ENOMEM;
  }
  *out = doc;
  return 0;
}

static void doc_invalidate(vtl_doc *doc) {
  vtl__eval_cache_free(doc->cache);
  doc->cache = NULL;
}

void vtl_doc_free(vtl_doc *doc) {
  if (!doc) return;
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    vtl__table *t = &doc->tables[k];
    for (size_t i = 0; i < t->n; i++) entity_free(k, t->items[i]);
    free(t->items);
    free(t->slot_id);
    free(t->slot_idx);
    free(t->sorted);
  }
  doc_invalidate(doc);
  vtl_expr_ctx_free(doc->expr);
  free(doc);
}

int vtl__expr_ctx(vtl_doc *doc, vtl_expr_ctx **out) {
  if (!doc->expr) {
    int rc = vtl_expr_ctx_new(&doc->expr);
    if (rc) return rc;
  }
  *out = doc->expr;
  return 0;
}

const void *vtl_doc_get(const vtl_doc *doc, vtl_entity_kind kind, vtl_id id) {
  if ((unsigned)kind >= VTL_ENT__COUNT) return NULL;
  return vtl__table_get(&doc->tables[kind], id);
}

const vtl_timeline *vtl_doc_timeline(const vtl_doc *doc) {
  return doc->tables[VTL_ENT_TIMELINE].items[0];
}

size_t vtl_doc_count(const vtl_doc *doc, vtl_entity_kind kind) {
  return (unsigned)kind < VTL_ENT__COUNT ? doc->tables[kind].n : 0;
}

static int cmp_id(const void *a, const void *b) {
  vtl_id x = **(const vtl_id *const *)a, y = **(const vtl_id *const *)b;
  return (x > y) - (x < y);
}

const void *const *vtl_doc_list(vtl_doc *doc, vtl_entity_kind kind,
                                size_t *n) {
  vtl__table *t = &doc->tables[kind];
  *n = t->n;
  if (!t->sorted && t->n) {
    t->sorted = malloc(t->n * sizeof *t->sorted);
    if (!t->sorted) {
      *n = 0;
      return NULL;
    }
    memcpy(t->sorted, t->items, t->n * sizeof *t->sorted);
    qsort(t->sorted, t->n, sizeof *t->sorted, cmp_id);
  }
  return t->sorted;
}

/* ---- validation ------------------------------------------------------------------- */

int vtl__errorf(vtl_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}
#define fail vtl__errorf

/* Strict UTF-8 (RFC 3629), the same rule jansson applies: no overlong
 * forms, no UTF-16 surrogates, nothing above U+10FFFF. Anything looser
 * would let an op store a string that vtl_json_export cannot write. */
static bool utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p++, cp, min;
    int n;
    if (c < 0x80) continue;
    if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    for (int i = 0; i < n; i++, p++) {
      if ((*p & 0xc0) != 0x80) return false; /* also stops at the NUL */
      cp = cp << 6 | (*p & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
  }
  return true;
}

/* Checks one value for field f of kind (type, range, reference).
 * Returns 0 or an error with a message naming entity and field. */
static int check_value(vtl_doc *doc, vtl_entity_kind kind,
                       const vtl_field_desc *f, const vtl_value *v,
                       vtl_error *err) {
  const char *en = vtl_entities[kind].name;
  double x;
  switch (f->type) {
  case VTL_FT_STR:
    if (v->type != VTL_FT_STR || !v->u.s)
      return fail(err, VTL_ETYPE, "%s.%s: expected a string", en, f->name);
    if (strlen(v->u.s) > (size_t)f->max)
      return fail(err, VTL_ETOOLONG, "%s.%s: longer than %.0f bytes", en,
                  f->name, f->max);
    if (!utf8_valid(v->u.s))
      return fail(err, VTL_EINVAL, "%s.%s: not valid UTF-8", en, f->name);
    if (kind == VTL_ENT_KEYFRAME && strcmp(f->name, "expr") == 0 &&
        v->u.s[0]) {
      vtl_expr_ctx *ctx;
      char msg[160];
      if (vtl__expr_ctx(doc, &ctx)) return fail(err, VTL_ENOMEM, "no memory");
      if (vtl_expr_check(ctx, v->u.s, msg, sizeof msg))
        return fail(err, VTL_EEXPR, "%s.%s: %s", en, f->name, msg);
    }
    return 0;
  case VTL_FT_BOOL:
    if (v->type != VTL_FT_BOOL)
      return fail(err, VTL_ETYPE, "%s.%s: expected true or false", en,
                  f->name);
    return 0;
  case VTL_FT_REAL:
    if (v->type != VTL_FT_REAL && v->type != VTL_FT_INT)
      return fail(err, VTL_ETYPE, "%s.%s: expected a number", en, f->name);
    x = v->type == VTL_FT_INT ? (double)v->u.i : v->u.r;
    if (!isfinite(x) || x < f->min || x > f->max)
      return fail(err, VTL_ERANGE, "%s.%s: %g is outside %g..%g", en, f->name,
                  x, f->min, f->max);
    return 0;
  case VTL_FT_INT:
    if (v->type == VTL_FT_REAL) {
      if (!isfinite(v->u.r) || v->u.r != floor(v->u.r) || fabs(v->u.r) > 9e15)
        return fail(err, VTL_ETYPE, "%s.%s: expected an integer", en, f->name);
      x = v->u.r;
    } else if (v->type == VTL_FT_INT) {
      x = (double)v->u.i;
    } else {
      return fail(err, VTL_ETYPE, "%s.%s: expected an integer", en, f->name);
    }
    if (x < f->min || x > f->max)
      return fail(err, VTL_ERANGE, "%s.%s: %.0f is outside %.0f..%.0f", en,
                  f->name, x, f->min, f->max);
    return 0;
  case VTL_FT_ENUM: {
    int n = 0;
    while (f->enums[n]) n++;
    if (v->type != VTL_FT_INT || v->u.i < 0 || v->u.i >= n)
      return fail(err, VTL_ERANGE, "%s.%s: not one of the %d values", en,
                  f->name, n);
    return 0;
  }
  case VTL_FT_REF:
    if (v->type != VTL_FT_INT)
      return fail(err, VTL_ETYPE, "%s.%s: expected an id", en, f->name);
    if (v->u.i == 0) {
      if (f->flags & VTL_FF_OPTIONAL) return 0;
      return fail(err, VTL_EREF, "%s.%s: required", en, f->name);
    }
    if (!vtl__table_get(&doc->tables[f->ref], (vtl_id)v->u.i))
      return fail(err, VTL_EREF, "%s.%s: no %s %lld", en, f->name,
                  vtl_entities[f->ref].name, (long long)v->u.i);
    return 0;
  }
  return fail(err, VTL_EINVAL, "%s.%s: bad field type", en, f->name);
}

/* Constraints across fields and entities, checked at the end of a batch
 * for every entity the batch created or changed. */
static int check_entity(vtl_doc *doc, vtl_entity_kind kind, const void *ent,
                        vtl_error *err) {
  switch (kind) {
  case VTL_ENT_TIMELINE: {
    const vtl_timeline *t = ent;
    if (t->width % 8 || t->height % 8)
      return fail(err, VTL_ERANGE, "timeline: width and height must be "
                  "multiples of 8 (got %lldx%lld)", (long long)t->width,
                  (long long)t->height);
    return 0;
  }
  case VTL_ENT_KEYFRAME: {
    const vtl_keyframe *k = ent;
    const vtl_track *t = vtl__table_get(&doc->tables[VTL_ENT_TRACK], k->track);
    if (t && t->target == VTL_TARGET_PROMPT)
      return fail(err, VTL_EINVAL, "keyframe %llu: track %llu is a prompt "
                  "track (it holds prompt clips)", (unsigned long long)k->id,
                  (unsigned long long)k->track);
    return 0;
  }
  case VTL_ENT_PROMPT_CLIP: {
    const vtl_prompt_clip *c = ent;
    const vtl_track *t = vtl__table_get(&doc->tables[VTL_ENT_TRACK], c->track);
    if (t && t->target != VTL_TARGET_PROMPT)
      return fail(err, VTL_EINVAL, "prompt_clip %llu: track %llu is not a "
                  "prompt track", (unsigned long long)c->id,
                  (unsigned long long)c->track);
    if (c->end <= c->start)
      return fail(err, VTL_ERANGE, "prompt_clip %llu: end %lld must be after "
                  "start %lld", (unsigned long long)c->id, (long long)c->end,
                  (long long)c->start);
    return 0;
  }
  case VTL_ENT_SHOT: {
    const vtl_shot *s = ent;
    if (s->source == VTL_SOURCE_IMAGE) {
      const vtl_asset *a = vtl__table_get(&doc->tables[VTL_ENT_ASSET], s->asset);
      if (!a || a->kind != VTL_ASSET_IMAGE)
        return fail(err, VTL_EREF, "shot %llu: source image needs an image "
                    "asset", (unsigned long long)s->id);
    }
    return 0;
  }
  case VTL_ENT_ASSET: {
    /* the shot-side check above, seen from the asset: an image shot must
     * not be left holding an asset that stopped being an image */
    const vtl_asset *a = ent;
    if (a->kind == VTL_ASSET_IMAGE) return 0;
    const vtl__table *st = &doc->tables[VTL_ENT_SHOT];
    for (size_t i = 0; i < st->n; i++) {
      const vtl_shot *s = st->items[i];
      if (s->source == VTL_SOURCE_IMAGE && s->asset == a->id)
        return fail(err, VTL_EREF, "asset %llu: shot %llu uses it as its "
                    "source image", (unsigned long long)a->id,
                    (unsigned long long)s->id);
    }
    return 0;
  }
  default:
    return 0;
  }
}

/* ---- apply ------------------------------------------------------------------------- */

/* The inverse ops of a batch are recorded in a vtl_op_list, in apply
 * order, while it applies. */
/* The op that recreates `ent` exactly (every field). */
static int op_recreate(vtl_op *op, vtl_entity_kind kind, const void *ent) {
  const vtl_entity_desc *d = &vtl_entities[kind];
  vtl_op_create(op, kind, *(const vtl_id *)ent);
  op->fields = calloc(d->nfields, sizeof *op->fields);
  if (!op->fields) return VTL_ENOMEM;
  for (int i = 0; i < d->nfields; i++) {
    vtl_value v;
    vtl__field_read(ent, &d->fields[i], &v);
    op->fields[i].field = i;
    if (vtl_value_copy(&op->fields[i].value, &v)) return VTL_ENOMEM;
    op->nfields = i + 1;
  }
  return 0;
}

static int apply_one(vtl_doc *doc, const vtl_op *op, vtl_op_list *inv,
                     vtl_error *err);

/* Deletes kind/id and what hangs on it, recording inverses. */
static int delete_cascade(vtl_doc *doc, vtl_entity_kind kind, vtl_id id,
                          vtl_op_list *inv, vtl_error *err) {
  vtl__table *t = &doc->tables[kind];
  if (kind == VTL_ENT_TRACK) {
    for (int ck = VTL_ENT_KEYFRAME; ck <= VTL_ENT_PROMPT_CLIP; ck++) {
      vtl__table *ct = &doc->tables[ck];
      /* children are keyed by their `track` field, right after the id */
      for (size_t i = ct->n; i-- > 0;) {
        vtl_id owner = ((const vtl_id *)ct->items[i])[1];
        if (owner != id) continue;
        int rc = delete_cascade(doc, ck, *(vtl_id *)ct->items[i], inv, err);
        if (rc) return rc;
        /* swap-remove moved an already visited item into i: fine */
      }
    }
  } else if (kind == VTL_ENT_ASSET) {
    vtl__table *st = &doc->tables[VTL_ENT_SHOT];
    for (size_t i = 0; i < st->n; i++) {
      vtl_shot *s = st->items[i];
      if (s->asset != id) continue;
      vtl_op o;
      if (s->source == VTL_SOURCE_IMAGE) {
        vtl_op_set_int(&o, VTL_ENT_SHOT, s->id, "source", VTL_SOURCE_NOISE);
        int rc = apply_one(doc, &o, inv, err);
        vtl_op_free(&o);
        if (rc) return rc;
      }
      vtl_op_set_int(&o, VTL_ENT_SHOT, s->id, "asset", 0);
      int rc = apply_one(doc, &o, inv, err);
      vtl_op_free(&o);
      if (rc) return rc;
    }
  }
  vtl_op *io = vtl_op_list_push(inv);
  void *ent = vtl__table_get(t, id);
  if (!io || op_recreate(io, kind, ent))
    return fail(err, VTL_ENOMEM, "out of memory");
  entity_free(kind, table_remove(t, id));
  return 0;
}

static int apply_create(vtl_doc *doc, const vtl_op *op, vtl_op_list *inv,
                        vtl_error *err) {
  const vtl_entity_desc *d = &vtl_entities[op->kind];
  vtl__table *t = &doc->tables[op->kind];
  if (op->kind == VTL_ENT_TIMELINE)
    return fail(err, VTL_EINVAL, "the timeline exists once; set its fields");
  if (op->id == 0 || op->id > VTL_ID_MAX)
    return fail(err, VTL_ERANGE, "%s id %llu: ids are 1..2^53-1", d->name,
                (unsigned long long)op->id);
  if (vtl__table_get(t, op->id))
    return fail(err, VTL_EEXIST, "%s %llu already exists", d->name,
                (unsigned long long)op->id);
  if (t->n >= d->max_count)
    return fail(err, VTL_ELIMIT, "too many %s (limit %zu)", d->plural,
                d->max_count);
  void *ent = entity_new(op->kind, op->id);
  if (!ent) return fail(err, VTL_ENOMEM, "out of memory");
  uint64_t seen = 0;
  for (int i = 0; i < op->nfields; i++) {
    int fi = op->fields[i].field;
    int rc;
    if (fi < 0 || fi >= d->nfields) {
      rc = fail(err, VTL_EINVAL, "%s: no field #%d", d->name, fi);
    } else if (seen & (1ull << fi)) {
      rc = fail(err, VTL_EINVAL, "%s.%s: given twice", d->name,
                d->fields[fi].name);
    } else {
      seen |= 1ull << fi;
      rc = check_value(doc, op->kind, &d->fields[fi], &op->fields[i].value, err);
      if (!rc && field_write(ent, &d->fields[fi], &op->fields[i].value))
        rc = fail(err, VTL_ENOMEM, "out of memory");
    }
    if (rc) {
      entity_free(op->kind, ent);
      return rc;
    }
  }
  /* required references must have been given */
  for (int i = 0; i < d->nfields; i++) {
    const vtl_field_desc *f = &d->fields[i];
    if (f->type == VTL_FT_REF && !(f->flags & VTL_FF_OPTIONAL) &&
        !(seen & (1ull << i))) {
      entity_free(op->kind, ent);
      return fail(err, VTL_EREF, "%s.%s: required", d->name, f->name);
    }
  }
  vtl_op *io = vtl_op_list_push(inv);
  if (!io || table_insert(t, ent)) {
    if (io) inv->n--;
    entity_free(op->kind, ent);
    return fail(err, VTL_ENOMEM, "out of memory");
  }
  vtl_op_delete(io, op->kind, op->id);
  return 0;
}

static int apply_set(vtl_doc *doc, const vtl_op *op, vtl_op_list *inv,
                     vtl_error *err) {
  const vtl_entity_desc *d = &vtl_entities[op->kind];
  void *ent = vtl__table_get(&doc->tables[op->kind], op->id);
  if (!ent)
    return fail(err, VTL_ENOENT, "no %s %llu", d->name,
                (unsigned long long)op->id);
  if (op->nfields != 1)
    return fail(err, VTL_EINVAL, "set %s: exactly one field", d->name);
  int fi = op->fields[0].field;
  if (fi < 0 || fi >= d->nfields)
    return fail(err, VTL_EINVAL, "%s: no field #%d", d->name, fi);
  const vtl_field_desc *f = &d->fields[fi];
  if (f->flags & VTL_FF_FIXED)
    return fail(err, VTL_EINVAL, "%s.%s is fixed at creation", d->name,
                f->name);
  int rc = check_value(doc, op->kind, f, &op->fields[0].value, err);
  if (rc) return rc;
  vtl_op *io = vtl_op_list_push(inv);
  if (!io) return fail(err, VTL_ENOMEM, "out of memory");
  vtl_value old;
  vtl__field_read(ent, f, &old);
  *io = (vtl_op){.type = VTL_OP_SET, .kind = op->kind, .id = op->id};
  io->fields = calloc(1, sizeof *io->fields);
  if (!io->fields || vtl_value_copy(&io->fields[0].value, &old)) {
    inv->n--;
    vtl_op_free(io);
    return fail(err, VTL_ENOMEM, "out of memory");
  }
  io->fields[0].field = fi;
  io->nfields = 1;
  if (field_write(ent, f, &op->fields[0].value)) {
    inv->n--;
    vtl_op_free(io);
    return fail(err, VTL_ENOMEM, "out of memory");
  }
  return 0;
}

static int apply_one(vtl_doc *doc, const vtl_op *op, vtl_op_list *inv,
                     vtl_error *err) {
  if ((unsigned)op->kind >= VTL_ENT__COUNT)
    return fail(err, VTL_EINVAL, "unknown entity kind %d", (int)op->kind);
  switch (op->type) {
  case VTL_OP_CREATE: return apply_create(doc, op, inv, err);
  case VTL_OP_SET: return apply_set(doc, op, inv, err);
  case VTL_OP_DELETE:
    if (op->kind == VTL_ENT_TIMELINE)
      return fail(err, VTL_EINVAL, "the timeline cannot be deleted");
    if (!vtl__table_get(&doc->tables[op->kind], op->id))
      return fail(err, VTL_ENOENT, "no %s %llu", vtl_entities[op->kind].name,
                  (unsigned long long)op->id);
    return delete_cascade(doc, op->kind, op->id, inv, err);
  }
  return fail(err, VTL_EINVAL, "unknown op type %d", (int)op->type);
}

/* Undoes inv (backwards) and frees it. Inverses cannot fail but on NOMEM. */
static void rollback(vtl_doc *doc, vtl_op_list *inv) {
  for (size_t i = inv->n; i-- > 0;) {
    vtl_op_list scratch = {0};
    vtl_error ignored;
    apply_one(doc, &inv->ops[i], &scratch, &ignored);
    vtl_ops_free(scratch.ops, scratch.n);
  }
  vtl_ops_free(inv->ops, inv->n);
  *inv = (vtl_op_list){0};
}

int vtl_doc_apply(vtl_doc *doc, const vtl_op *ops, size_t n, vtl_op **inverse,
                  size_t *ninverse, vtl_error *err) {
  vtl_op_list inv = {0};
  if (err) *err = (vtl_error){.op_index = -1};
  doc_invalidate(doc);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = apply_one(doc, &ops[i], &inv, err);
    if (rc && err) err->op_index = (int)i;
  }
  /* cross-field constraints of everything the batch touched */
  for (size_t i = 0; i < n && !rc; i++) {
    if ((unsigned)ops[i].kind >= VTL_ENT__COUNT) continue;
    const void *ent = vtl__table_get(&doc->tables[ops[i].kind], ops[i].id);
    if (ent) rc = check_entity(doc, ops[i].kind, ent, err);
    if (rc && err) err->op_index = (int)i;
  }
  if (rc) {
    rollback(doc, &inv);
    return rc;
  }
  if (inverse) {
    /* undo order: last change first */
    for (size_t i = 0; i < inv.n / 2; i++) {
      vtl_op tmp = inv.ops[i];
      inv.ops[i] = inv.ops[inv.n - 1 - i];
      inv.ops[inv.n - 1 - i] = tmp;
    }
    *inverse = inv.ops;
    *ninverse = inv.n;
  } else {
    vtl_ops_free(inv.ops, inv.n);
  }
  return 0;
}

int vtl_doc_validate(vtl_doc *doc, const vtl_op *ops, size_t n,
                     vtl_error *err) {
  vtl_op *inv;
  size_t ninv;
  int rc = vtl_doc_apply(doc, ops, n, &inv, &ninv, err);
  if (rc) return rc;
  vtl_op_list l = {inv, ninv, ninv};
  /* inv is in undo order; rollback() walks backwards, so reverse it */
  for (size_t i = 0; i < ninv / 2; i++) {
    vtl_op tmp = inv[i];
    inv[i] = inv[ninv - 1 - i];
    inv[ninv - 1 - i] = tmp;
  }
  rollback(doc, &l);
  doc_invalidate(doc);
  return 0;
}

/* ---- whole-document ops ------------------------------------------------------------- */

int vtl_doc_to_ops(vtl_doc *doc, vtl_op **out, size_t *nout) {
  vtl_op_list l = {0};
  const vtl_entity_desc *td = &vtl_entities[VTL_ENT_TIMELINE];
  const void *tl = vtl_doc_timeline(doc);
  for (int i = 0; i < td->nfields; i++) {
    vtl_op *op = vtl_op_list_push(&l);
    vtl_value v;
    if (!op) goto nomem;
    vtl__field_read(tl, &td->fields[i], &v);
    *op = (vtl_op){.type = VTL_OP_SET, .kind = VTL_ENT_TIMELINE,
                   .id = VTL_TIMELINE_ID};
    if (!(op->fields = calloc(1, sizeof *op->fields))) goto nomem;
    op->nfields = 1;
    op->fields[0].field = i;
    if (vtl_value_copy(&op->fields[0].value, &v)) goto nomem;
  }
  /* dependency order: assets before shots, tracks before their children */
  static const vtl_entity_kind order[] = {VTL_ENT_ASSET, VTL_ENT_TRACK,
                                          VTL_ENT_KEYFRAME, VTL_ENT_PROMPT_CLIP,
                                          VTL_ENT_SHOT, VTL_ENT_MARKER};
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    size_t n;
    const void *const *items = vtl_doc_list(doc, order[k], &n);
    for (size_t i = 0; i < n; i++) {
      vtl_op *op = vtl_op_list_push(&l);
      if (!op || op_recreate(op, order[k], items[i])) goto nomem;
    }
  }
  *out = l.ops;
  *nout = l.n;
  return 0;
nomem:
  vtl_ops_free(l.ops, l.n);
  return VTL_ENOMEM;
}

int vtl_doc_clone(const vtl_doc *src, vtl_doc **out) {
  vtl_op *ops;
  size_t n;
  vtl_doc *doc;
  /* listing sorts lazily; the source is logically unchanged */
  int rc = vtl_doc_to_ops((vtl_doc *)src, &ops, &n);
  if (rc) return rc;
  rc = vtl_doc_new(&doc);
  if (!rc) rc = vtl_doc_apply(doc, ops, n, NULL, NULL, NULL);
  vtl_ops_free(ops, n);
  if (rc) {
    vtl_doc_free(doc);
    return rc;
  }
  *out = doc;
  return 0;
}
