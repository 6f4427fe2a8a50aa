/* render_cache.c — a room's frame cache (contract in render.h): an
 * unordered array searched linearly (a few hundred entries at most, each
 * costing a whole render to make), least recently used evicted first. */
#include <stdlib.h>

#include "render.h"

static size_t bytes_of(uint32_t w, uint32_t h) {
  return (size_t)3 * w * h * sizeof(float);
}

const render_slot *render_cache_get(render_cache *c, int64_t frame,
                                    uint64_t dep_hash) {
  for (size_t i = 0; i < c->n; i++) {
    render_slot *s = &c->slots[i];
    if (s->frame != frame) continue;
    if (s->dep_hash != dep_hash) return NULL; /* stale: replaced by the put */
    s->used = ++c->tick;
    return s;
  }
  return NULL;
}

static void drop(render_cache *c, size_t i) {
  free(c->slots[i].img);
  c->slots[i] = c->slots[--c->n];
}

int render_cache_put(render_cache *c, int64_t frame, uint64_t dep_hash,
                     uint32_t w, uint32_t h, float *img, double render_ms) {
  for (size_t i = 0; i < c->n; i++)
    if (c->slots[i].frame == frame) { drop(c, i); break; }
  /* entries of another size count at this frame's size: a size change
   * makes them all stale, and they leave first as the least used */
  size_t keep = RENDER_CACHE_BYTES / bytes_of(w, h);
  if (keep < 2) keep = 2;
  while (c->n && c->n >= keep) {
    size_t lru = 0;
    for (size_t i = 1; i < c->n; i++)
      if (c->slots[i].used < c->slots[lru].used) lru = i;
    drop(c, lru);
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 16;
    render_slot *s = realloc(c->slots, cap * sizeof *s);
    if (!s) {
      free(img);
      return VTL_ENOMEM;
    }
    c->slots = s;
    c->cap = cap;
  }
  c->slots[c->n++] = (render_slot){frame, dep_hash, ++c->tick, w, h,
                                   render_ms, img};
  return 0;
}

void render_cache_clear(render_cache *c) {
  while (c->n) drop(c, c->n - 1);
  free(c->slots);
  *c = (render_cache){0};
}
