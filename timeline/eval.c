/* eval.c — render parameters at a frame, and the dependency hash.
 *
 * Rules (docs/timeline-format.md, "Evaluation"):
 * 1. A parameter is driven by the unmuted track of its target with the
 *    lowest (order, id) that has keyframes; otherwise it takes the
 *    Timeline's value (sampler, spacing, steps, guidance, strength, seed) or
 *    the built-in default (vtl_param_table[]).
 * 2. Keys sorted by (frame, id). Before the first key: the first key's
 *    value; from a key with an expression up to the next key: the
 *    expression at t; otherwise the segment shape (curve.c) towards the next
 *    key's value at its own frame; after the last key: its value. This is
 *    Deforum's schedule semantics (docs/deforum.md).
 * 3. Integer parameters truncate toward zero, enums hold; every value is
 *    clamped into its range.
 * 4. Prompts: clips of unmuted prompt tracks with start <= f < end, weight
 *    times fade-in envelope min(1, (f-start)/fade_in) times fade-out
 *    envelope min(1, (end-f)/fade_out), identical (text, negative) merged,
 *    the heaviest VTL_MAX_PROMPTS_AT kept, normalised to sum 1 (equal
 *    weights if all are 0).
 * 5. Seed: see seed_at().
 * 6. dep_hash(f) mixes the render fields of the Timeline and of every
 *    track, the keys of each driving track up to f plus the next one, the
 *    clips and shots starting at or before f (with their assets). Keys
 *    after that next one, later clips and shots, markers, names and colours
 *    cannot change it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct {
  const vtl_track *track;
  const vtl_keyframe **keys; /* sorted by (frame, id) */
  size_t n;
  uint64_t *prefix;          /* prefix[i]: hash of keys[0..i), n+1 entries */
} track_cache;

struct vtl__eval_cache {
  const vtl_timeline *tl;
  track_cache driver[VTL_PARAM__COUNT]; /* track == NULL: not driven */
  const vtl_prompt_clip **clips;        /* unmuted prompt clips by start */
  size_t nclips;
  uint64_t *clip_prefix;
  const vtl_shot **shots;               /* by (start, id) */
  size_t nshots;
  uint64_t *shot_prefix;
  uint64_t base;                        /* timeline + tracks */
};

uint64_t vtl__hash_bytes(uint64_t h, const void *p, size_t n) {
  /* 8 bytes per step (multiply-xorshift); the dependency hash is rebuilt for
   * every key after each edit, so byte-wise FNV was most of an edit's cost */
  const unsigned char *b = p;
  for (; n >= 8; n -= 8, b += 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, b, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return h;
}

/* Mixes the fields of ent that have all of only_flags (0: every field). */
uint64_t vtl__hash_entity(uint64_t h, vtl_entity_kind kind, const void *ent,
                          unsigned only_flags) {
  const vtl_entity_desc *d = &vtl_entities[kind];
  h = vtl__hash_bytes(h, ent, sizeof(vtl_id));
  for (int i = 0; i < d->nfields; i++) {
    const vtl_field_desc *f = &d->fields[i];
    if ((f->flags & only_flags) != only_flags) continue;
    vtl_value v;
    vtl__field_read(ent, f, &v);
    switch (v.type) {
    case VTL_FT_STR: h = vtl__hash_bytes(h, v.u.s, strlen(v.u.s) + 1); break;
    case VTL_FT_REAL: h = vtl__hash_bytes(h, &v.u.r, sizeof v.u.r); break;
    case VTL_FT_BOOL: h = vtl__hash_bytes(h, &v.u.b, sizeof v.u.b); break;
    default: h = vtl__hash_bytes(h, &v.u.i, sizeof v.u.i); break;
    }
  }
  return h;
}

void vtl__eval_cache_free(vtl__eval_cache *c) {
  if (!c) return;
  for (int p = 0; p < VTL_PARAM__COUNT; p++) {
    free(c->driver[p].keys);
    free(c->driver[p].prefix);
  }
  free(c->clips);
  free(c->clip_prefix);
  free(c->shots);
  free(c->shot_prefix);
  free(c);
}

static int cmp_key(const void *a, const void *b) {
  const vtl_keyframe *x = *(const vtl_keyframe *const *)a;
  const vtl_keyframe *y = *(const vtl_keyframe *const *)b;
  if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static int cmp_clip(const void *a, const void *b) {
  const vtl_prompt_clip *x = *(const vtl_prompt_clip *const *)a;
  const vtl_prompt_clip *y = *(const vtl_prompt_clip *const *)b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static int cmp_shot(const void *a, const void *b) {
  const vtl_shot *x = *(const vtl_shot *const *)a;
  const vtl_shot *y = *(const vtl_shot *const *)b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* prefix[i+1] = mix(prefix[i], item i); NULL on NOMEM. */
static uint64_t *prefix_hashes(vtl_doc *doc, vtl_entity_kind kind,
                               const void *const *items, size_t n) {
  uint64_t *p = malloc((n + 1) * sizeof *p);
  if (!p) return NULL;
  p[0] = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    uint64_t h = vtl__hash_entity(p[i], kind, items[i], VTL_FF_RENDER);
    if (kind == VTL_ENT_SHOT) {
      const vtl_shot *s = items[i];
      const void *a = vtl_doc_get(doc, VTL_ENT_ASSET, s->asset);
      if (a) h = vtl__hash_entity(h, VTL_ENT_ASSET, a, VTL_FF_RENDER);
    }
    p[i + 1] = h;
  }
  return p;
}

static bool track_before(const vtl_track *a, const vtl_track *b) {
  return a->order != b->order ? a->order < b->order : a->id < b->id;
}

static vtl__eval_cache *cache_build(vtl_doc *doc) {
  vtl__eval_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->tl = vtl_doc_timeline(doc);
  c->base = vtl__hash_entity(0xcbf29ce484222325ull, VTL_ENT_TIMELINE, c->tl,
                             VTL_FF_RENDER);
  size_t nt, nk, nc, ns;
  const void *const *tracks = vtl_doc_list(doc, VTL_ENT_TRACK, &nt);
  const void *const *keys = vtl_doc_list(doc, VTL_ENT_KEYFRAME, &nk);
  const void *const *clips = vtl_doc_list(doc, VTL_ENT_PROMPT_CLIP, &nc);
  const void *const *shots = vtl_doc_list(doc, VTL_ENT_SHOT, &ns);
  /* one pass finds each key's track (tracks are sorted by id), a second
   * hands the keys of driving tracks to their parameter */
  size_t *count = calloc(nt ? nt : 1, sizeof *count);
  uint32_t *owner = malloc((nk ? nk : 1) * sizeof *owner);
  if (!count || !owner) {
    free(count);
    free(owner);
    goto nomem;
  }
  for (size_t i = 0; i < nt; i++) {
    const vtl_track *t = tracks[i];
    c->base = vtl__hash_entity(c->base, VTL_ENT_TRACK, t, VTL_FF_RENDER);
    c->base = vtl__hash_bytes(c->base, &t->order, sizeof t->order);
  }
  for (size_t i = 0; i < nk; i++) {
    vtl_id track = ((const vtl_keyframe *)keys[i])->track;
    size_t lo = 0, hi = nt;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (((const vtl_track *)tracks[mid])->id < track) lo = mid + 1;
      else hi = mid;
    }
    owner[i] = (uint32_t)lo; /* a key's track always exists */
    if (lo < nt) count[lo]++;
  }
  for (size_t i = 0; i < nt; i++) {
    const vtl_track *t = tracks[i];
    if (t->mute || t->target >= VTL_PARAM__COUNT || !count[i]) continue;
    track_cache *d = &c->driver[t->target];
    if (!d->track || track_before(t, d->track)) {
      d->track = t;
      d->n = count[i];
    }
  }
  free(count);
  int rc = 0;
  for (int p = 0; p < VTL_PARAM__COUNT; p++) {
    track_cache *d = &c->driver[p];
    if (d->track && !(d->keys = malloc(d->n * sizeof *d->keys))) rc = -1;
    d->n = 0; /* refilled below */
  }
  for (size_t i = 0; i < nk && !rc; i++) {
    if (owner[i] >= nt) continue;
    const vtl_track *t = tracks[owner[i]];
    if (t->target >= VTL_PARAM__COUNT) continue;
    track_cache *d = &c->driver[t->target];
    if (d->track == t) d->keys[d->n++] = keys[i];
  }
  free(owner);
  if (rc) goto nomem;
  for (int p = 0; p < VTL_PARAM__COUNT; p++) {
    track_cache *d = &c->driver[p];
    if (!d->track) continue;
    qsort(d->keys, d->n, sizeof *d->keys, cmp_key);
    if (!(d->prefix = prefix_hashes(doc, VTL_ENT_KEYFRAME,
                                    (const void *const *)d->keys, d->n)))
      goto nomem;
  }
  if (!(c->clips = malloc((nc ? nc : 1) * sizeof *c->clips))) goto nomem;
  for (size_t i = 0; i < nc; i++) {
    const vtl_prompt_clip *cl = clips[i];
    const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, cl->track);
    if (t && !t->mute) c->clips[c->nclips++] = cl;
  }
  qsort(c->clips, c->nclips, sizeof *c->clips, cmp_clip);
  c->clip_prefix = prefix_hashes(doc, VTL_ENT_PROMPT_CLIP,
                                 (const void *const *)c->clips, c->nclips);
  if (!(c->shots = malloc((ns ? ns : 1) * sizeof *c->shots))) goto nomem;
  if (ns) memcpy(c->shots, shots, ns * sizeof *c->shots); /* NULL when 0 */
  c->nshots = ns;
  qsort(c->shots, ns, sizeof *c->shots, cmp_shot);
  c->shot_prefix = prefix_hashes(doc, VTL_ENT_SHOT,
                                 (const void *const *)c->shots, ns);
  if (!c->clip_prefix || !c->shot_prefix) goto nomem;
  return c;
nomem:
  vtl__eval_cache_free(c);
  return NULL;
}

/* Number of keys with frame <= f. */
static size_t keys_upto(const track_cache *d, int64_t f) {
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->keys[mid]->frame <= f) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

typedef struct {
  vtl_doc *doc;
  const vtl_timeline *tl;
  vtl_params *p; /* where errors are recorded, may be NULL */
} eval_ctx;

/* Value of key k at frame t: its expression if it has one, else its value. */
static double key_value(eval_ctx *e, const vtl_keyframe *k, int64_t t) {
  if (!k->expr[0]) return k->value;
  vtl_expr_ctx *x;
  char msg[160] = "expression: out of memory"; /* if there is no context */
  double out;
  vtl_expr_vars vars = {(double)t, (double)t / e->tl->fps,
                        (double)(e->tl->length - 1), e->tl->fps};
  if (vtl__expr_ctx(e->doc, &x) == 0 &&
      vtl_expr_eval(x, k->expr, &vars, &out, msg, sizeof msg) == 0)
    return out;
  if (e->p) {
    if (e->p->nerrors++ == 0)
      snprintf(e->p->error, sizeof e->p->error, "keyframe %llu at frame %lld: "
               "%s", (unsigned long long)k->id, (long long)t, msg);
  }
  return k->value;
}

static double timeline_value(const vtl_timeline *tl, int p) {
  switch (p) {
  case VTL_PARAM_STRENGTH: return tl->strength;
  case VTL_PARAM_GUIDANCE: return tl->guidance;
  case VTL_PARAM_STEPS: return (double)tl->steps;
  case VTL_PARAM_SEED: return (double)tl->seed;
  case VTL_PARAM_SAMPLER: return (double)tl->sampler;
  case VTL_PARAM_SPACING: return (double)tl->spacing;
  default: return vtl_param_table[p].def;
  }
}

static double param_value(eval_ctx *e, const vtl__eval_cache *c, int p,
                          int64_t f) {
  const track_cache *d = &c->driver[p];
  const vtl_param_desc *pd = &vtl_param_table[p];
  double v;
  if (!d->track) {
    v = timeline_value(e->tl, p);
  } else {
    size_t i = keys_upto(d, f);
    if (i == 0) {
      v = key_value(e, d->keys[0], d->keys[0]->frame);
    } else {
      const vtl_keyframe *a = d->keys[i - 1];
      if (pd->kind == 'E') v = a->expr[0] ? key_value(e, a, f) : a->value;
      else if (a->expr[0]) v = key_value(e, a, f);
      else if (i == d->n) v = a->value;
      else {
        const vtl_keyframe *b = d->keys[i];
        v = vtl_curve_segment(a, a->value, b, key_value(e, b, b->frame),
                              (double)f);
      }
    }
  }
  if (pd->kind == 'I') v = trunc(v);
  if (pd->kind == 'E') v = round(v);
  return v < pd->min ? pd->min : v > pd->max ? pd->max : v;
}

/* splitmix64: the RANDOM seed mode's deterministic stand-in for Python's
 * random.randint (which Deforum does not seed: not reproducible there). */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Seed of frame f: base (the shot's seed, or the timeline's), advanced by
 * the seed mode per diffused frame d = (f - shot start) / cadence, exactly
 * as Deforum's next_seed() advances once per diffused frame:
 *   fixed: base; iter: base + ceil(d / N); ladder: base + d/2 (d even),
 *   base + (d+3)/2 (d odd); alternate: base + d%2; random: a hash of
 *   (base, d); schedule: the seed parameter. Wraps modulo 2^32. */
static int64_t seed_at(const vtl_timeline *tl, const vtl_params *p,
                       int64_t base) {
  int64_t cad = (int64_t)p->values[VTL_PARAM_CADENCE];
  int64_t d = (p->frame - p->shot_start) / (cad > 0 ? cad : 1);
  int64_t n = tl->seed_iter_n > 0 ? tl->seed_iter_n : 1, s;
  switch (tl->seed_mode) {
  case VTL_SEED_ITER: s = base + (d + n - 1) / n; break;
  case VTL_SEED_LADDER: s = base + (d % 2 ? (d + 3) / 2 : d / 2); break;
  case VTL_SEED_ALTERNATE: s = base + d % 2; break;
  case VTL_SEED_RANDOM:
    s = (int64_t)(mix64((uint64_t)base * 0x100000001b3ull ^ (uint64_t)d) >> 32);
    break;
  case VTL_SEED_SCHEDULE: s = (int64_t)p->values[VTL_PARAM_SEED]; break;
  default: s = base; break;
  }
  return (int64_t)((uint64_t)s & 0xffffffffull);
}

static void prompts_at(const vtl__eval_cache *c, int64_t f, vtl_params *p) {
  enum { CAP = 64 };
  vtl_prompt_weight w[CAP];
  int n = 0, covering = 0;
  for (size_t i = 0; i < c->nclips && c->clips[i]->start <= f; i++) {
    const vtl_prompt_clip *cl = c->clips[i];
    if (f >= cl->end) continue;
    covering++;
    double env = cl->weight;
    if (cl->fade_in > 0) env *= fmin(1.0, (double)(f - cl->start) / cl->fade_in);
    if (cl->fade_out > 0) env *= fmin(1.0, (double)(cl->end - f) / cl->fade_out);
    int j = 0;
    while (j < n && (strcmp(w[j].text, cl->text) ||
                     strcmp(w[j].negative, cl->negative)))
      j++;
    if (j < n) {
      w[j].weight += env;
    } else if (n < CAP) {
      w[n++] = (vtl_prompt_weight){cl->text, cl->negative, env};
    }
  }
  double sum = 0;
  for (int i = 0; i < n; i++) sum += w[i].weight;
  if (sum <= 0) {
    for (int i = 0; i < n; i++) w[i].weight = 1;
  } else { /* a clip at the very start of its fade-in contributes nothing */
    int m = 0;
    for (int i = 0; i < n; i++)
      if (w[i].weight > 0) w[m++] = w[i];
    n = m;
  }
  /* stable order by weight: insertion sort (n is small) */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && w[j].weight > w[j - 1].weight; j--) {
      vtl_prompt_weight t = w[j];
      w[j] = w[j - 1];
      w[j - 1] = t;
    }
  if (n > VTL_MAX_PROMPTS_AT) n = VTL_MAX_PROMPTS_AT;
  sum = 0;
  for (int i = 0; i < n; i++) sum += w[i].weight;
  for (int i = 0; i < n; i++) {
    p->prompts[i] = w[i];
    p->prompts[i].weight = w[i].weight / sum;
  }
  p->nprompts = covering ? n : 0;
}

/* Number of clips / shots with start <= f (arrays sorted by start). */
static size_t clips_upto(const vtl__eval_cache *c, int64_t f) {
  size_t lo = 0, hi = c->nclips;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->clips[mid]->start <= f) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static size_t shots_upto(const vtl__eval_cache *c, int64_t f) {
  size_t lo = 0, hi = c->nshots;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->shots[mid]->start <= f) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static const vtl__eval_cache *cache_get(vtl_doc *doc) {
  if (!doc->cache) doc->cache = cache_build(doc);
  return doc->cache;
}

int vtl_params_at(vtl_doc *doc, int64_t frame, vtl_params *p) {
  const vtl__eval_cache *c = cache_get(doc);
  if (!c) return VTL_ENOMEM;
  const vtl_timeline *tl = c->tl;
  if (frame < 0) frame = 0;
  if (frame >= tl->length) frame = tl->length - 1;
  memset(p, 0, sizeof *p);
  p->frame = frame;
  p->seconds = (double)frame / tl->fps;
  eval_ctx e = {doc, tl, p};
  for (int i = 0; i < VTL_PARAM__COUNT; i++)
    p->values[i] = param_value(&e, c, i, frame);

  size_t ns = shots_upto(c, frame);
  /* of shots cut at the same frame, the lowest id holds it (the array is
   * sorted by (start, id), so walk back to the first of the tie) */
  size_t si = ns;
  while (si > 1 && c->shots[si - 2]->start == c->shots[si - 1]->start) si--;
  const vtl_shot *shot = si ? c->shots[si - 1] : NULL;
  int64_t base = tl->seed;
  p->source = VTL_SOURCE_NOISE;
  p->source_strength = 1.0;
  if (shot) {
    p->shot = shot->id;
    p->shot_start = shot->start;
    p->source = shot->source;
    p->source_asset = shot->asset;
    p->source_strength = shot->source == VTL_SOURCE_IMAGE ? shot->strength : 1;
    if (shot->seed >= 0) base = shot->seed;
  }
  p->first_frame = frame == p->shot_start;
  p->seed = seed_at(tl, p, base);
  prompts_at(c, frame, p);

  uint64_t h = c->base;
  for (int i = 0; i < VTL_PARAM__COUNT; i++) {
    const track_cache *d = &c->driver[i];
    if (!d->track) continue;
    size_t k = keys_upto(d, frame);
    h = vtl__hash_bytes(h, &d->prefix[k < d->n ? k + 1 : d->n], 8);
  }
  h = vtl__hash_bytes(h, &c->clip_prefix[clips_upto(c, frame)], 8);
  h = vtl__hash_bytes(h, &c->shot_prefix[ns], 8);
  p->dep_hash = h;
  return 0;
}

double vtl_param_at(vtl_doc *doc, vtl_target param, int64_t frame) {
  const vtl__eval_cache *c = cache_get(doc);
  if (!c || (unsigned)param >= VTL_PARAM__COUNT) return NAN;
  if (frame < 0) frame = 0;
  if (frame >= c->tl->length) frame = c->tl->length - 1;
  eval_ctx e = {doc, c->tl, NULL};
  return param_value(&e, c, param, frame);
}
