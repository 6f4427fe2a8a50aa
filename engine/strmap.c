/* strmap.c — open addressing with linear probing, power-of-two slot count,
 * kept at most half full. Keys live in a chain of arena blocks, so a stored
 * key never moves when the slot table grows.
 *
 *   slots[cap]    { hash, key (-> arena), len, val }   key == NULL: empty
 *   arena         block -> block -> ...   each: next, size, used, bytes[]
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "vtl_error.h"

#define ARENA_BLOCK (64 * 1024) /* bytes of key text per ordinary block */

typedef struct {
  uint64_t hash;   /* FNV-1a of the key */
  const char *key; /* -> arena, NUL-terminated; NULL: empty slot */
  size_t len;      /* key bytes, without the NUL */
  int64_t val;
} slot;

typedef struct block {
  struct block *next; /* older block */
  size_t size, used;  /* bytes of data[] */
  char data[];
} block;

struct vtl_strmap {
  slot *slots;   /* malloc'd, cap entries */
  size_t cap;    /* power of two */
  size_t count;  /* used slots, <= cap / 2 */
  block *arena;  /* newest block first, owned */
};

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n) {
  size_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

vtl_strmap *vtl_strmap_create(size_t hint) {
  vtl_strmap *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->cap = pow2_at_least(hint * 2);
  m->slots = calloc(m->cap, sizeof *m->slots);
  if (!m->slots) {
    free(m);
    return NULL;
  }
  return m;
}

static void free_blocks(block *b) {
  while (b) {
    block *next = b->next;
    free(b);
    b = next;
  }
}

void vtl_strmap_release(vtl_strmap *m) {
  if (!m) return;
  free_blocks(m->arena);
  free(m->slots);
  free(m);
}

void vtl_strmap_clear(vtl_strmap *m) {
  memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->count = 0;
  if (m->arena) {
    /* Keep the newest block for reuse, free the rest. */
    free_blocks(m->arena->next);
    m->arena->next = NULL;
    m->arena->used = 0;
  }
}

size_t vtl_strmap_count(const vtl_strmap *m) { return m->count; }

/* Copies key into the arena. Returns the copy or NULL (out of memory). */
static const char *arena_copy(vtl_strmap *m, const char *key, size_t len) {
  block *b = m->arena;
  if (!b || b->size - b->used < len + 1) {
    size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
    b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->size = size;
    b->used = 0;
    b->next = m->arena;
    m->arena = b;
  }
  char *dst = b->data + b->used;
  memcpy(dst, key, len);
  dst[len] = '\0';
  b->used += len + 1;
  return dst;
}

/* The slot holding key, or the empty slot where it would go. */
static slot *find_slot(slot *slots, size_t cap, uint64_t h, const char *key,
                       size_t len) {
  size_t i = (size_t)h & (cap - 1);
  for (;;) {
    slot *s = &slots[i];
    if (!s->key) return s;
    if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
      return s;
    i = (i + 1) & (cap - 1);
  }
}

static int grow(vtl_strmap *m) {
  size_t cap = m->cap * 2;
  slot *slots = calloc(cap, sizeof *slots);
  if (!slots) return VTL_ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    slot *s = &m->slots[i];
    if (s->key) *find_slot(slots, cap, s->hash, s->key, s->len) = *s;
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  return 0;
}

int vtl_strmap_put(vtl_strmap *m, const char *key, size_t len, int64_t val,
                   const char **stored) {
  uint64_t h = hash_bytes(key, len);
  slot *s = find_slot(m->slots, m->cap, h, key, len);
  if (!s->key) {
    if ((m->count + 1) * 2 > m->cap) {
      if (grow(m) != 0) return VTL_ENOMEM;
      s = find_slot(m->slots, m->cap, h, key, len);
    }
    const char *copy = arena_copy(m, key, len);
    if (!copy) return VTL_ENOMEM;
    s->hash = h;
    s->key = copy;
    s->len = len;
    m->count++;
  }
  s->val = val;
  if (stored) *stored = s->key;
  return 0;
}

int vtl_strmap_get(const vtl_strmap *m, const char *key, size_t len,
                   int64_t *val) {
  slot *s = find_slot(m->slots, m->cap, hash_bytes(key, len), key, len);
  if (!s->key) return 0;
  if (val) *val = s->val;
  return 1;
}
