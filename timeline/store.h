/* store.h — internals shared by the document's files (not a public API).
 *
 * A document keeps, per entity kind, an array of pointers to individually
 * malloc'd entity structs plus an id -> index hash map (open addressing,
 * linear probing, backward-shift deletion). Pointers stay valid until that
 * entity is deleted; indices change on delete (swap-remove).
 *
 * Derived data for evaluation (per-track sorted keyframes, sorted clips and
 * shots, prefix hashes) lives in an eval cache that every apply invalidates.
 */
#ifndef VTL_STORE_H
#define VTL_STORE_H

#include "expr.h"
#include "vtl_timeline.h"

typedef struct {
  void **items;        /* malloc'd array of malloc'd entities */
  size_t n, cap;
  vtl_id *slot_id;     /* hash map, malloc'd, nslots entries, 0 = empty */
  uint32_t *slot_idx;  /* index into items */
  size_t nslots;       /* power of two, > 2 n */
  const void **sorted; /* malloc'd: items sorted by id, or NULL if stale */
} vtl__table;

typedef struct vtl__eval_cache vtl__eval_cache;

struct vtl_doc {
  vtl__table tables[VTL_ENT__COUNT];
  vtl_expr_ctx *expr;      /* lazily made; a cache of compiled chunks */
  vtl__eval_cache *cache;  /* NULL when stale (after every apply) */
};

void *vtl__table_get(const vtl__table *t, vtl_id id);
/* Field access by table entry. */
void vtl__field_read(const void *ent, const vtl_field_desc *f, vtl_value *out);
int vtl__expr_ctx(vtl_doc *doc, vtl_expr_ctx **out);

/* Fills err (may be NULL) with code and a formatted message; returns code. */
int vtl__errorf(vtl_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* eval.c: drops the evaluation cache (called by every apply). */
void vtl__eval_cache_free(vtl__eval_cache *c);

/* FNV-1a style 64-bit mixing used by the dependency hash. */
uint64_t vtl__hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t vtl__hash_entity(uint64_t h, vtl_entity_kind kind, const void *ent,
                          unsigned only_flags);

#endif /* VTL_STORE_H */
