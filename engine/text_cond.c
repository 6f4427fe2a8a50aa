/* text_cond.c — see text_cond.h. */
#include "text_cond.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"
#include "vtl_error.h"

typedef struct {
  char *text;     /* NULL: free slot */
  bool plain;
  int count;      /* windows */
  float *rows;    /* [count * 77 * C], weighted */
  float *pooled;  /* [C] */
  uint64_t used;  /* LRU clock */
} entry;

struct vtl_text_cond {
  vtl_cl *cl;
  vtl_tokenizer *tok;
  vtl_clip *clip;
  int C;
  entry cache[VTL_TEXT_COND_CACHE];
  uint64_t clock;
};

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t msglen, int code, const char *fmt, ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int vtl_text_cond_new(vtl_cl *cl, vtl_tokenizer *tok, vtl_clip *clip,
                      vtl_text_cond **out) {
  vtl_text_cond *tc = calloc(1, sizeof *tc);
  if (!tc) return VTL_ENOMEM;
  tc->cl = cl;
  tc->tok = tok;
  tc->clip = clip;
  tc->C = vtl_clip_config_of(clip)->hidden_size;
  *out = tc;
  return 0;
}

static void entry_clear(entry *e) {
  free(e->text);
  free(e->rows);
  free(e->pooled);
  memset(e, 0, sizeof *e);
}

void vtl_text_cond_free(vtl_text_cond *tc) {
  if (!tc) return;
  for (int i = 0; i < VTL_TEXT_COND_CACHE; i++) entry_clear(&tc->cache[i]);
  free(tc);
}

/* One prompt as windows: plain (one kit-exact window, weights 1) or
 * weighted. */
static int prompt_windows(vtl_text_cond *tc, const char *text, bool plain,
                          vtl_token_windows *w) {
  if (!plain) return vtl_tokenizer_encode_weighted(tc->tok, text, w);
  memset(w, 0, sizeof *w);
  w->count = 1;
  w->ids = malloc(VTL_TOKENIZER_CTX * sizeof *w->ids);
  w->weights = malloc(VTL_TOKENIZER_CTX * sizeof *w->weights);
  if (!w->ids || !w->weights) {
    vtl_token_windows_free(w);
    return VTL_ENOMEM;
  }
  for (int i = 0; i < VTL_TOKENIZER_CTX; i++) w->weights[i] = 1;
  int rc = vtl_tokenizer_encode(tc->tok, text, w->ids, &w->ntokens);
  if (rc) vtl_token_windows_free(w);
  return rc;
}

/* AUTOMATIC1111's emphasis on one encoded window: z *= weight per token,
 * then z *= mean before / mean after (keeps the conditioning's scale). An
 * unweighted window is left exactly as CLIP gave it (the kit's path). */
static void apply_weights(float *row, const float *wt, int C) {
  const int T = VTL_TOKENIZER_CTX;
  bool weighted = false;
  for (int t = 0; t < T; t++) weighted |= wt[t] != 1.0f;
  if (!weighted) return;
  double before = 0, after = 0;
  for (size_t i = 0; i < (size_t)T * C; i++) before += row[i];
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++) row[(size_t)t * C + c] *= wt[t];
  for (size_t i = 0; i < (size_t)T * C; i++) after += row[i];
  if (after != 0) {
    float s = (float)(before / after);
    for (size_t i = 0; i < (size_t)T * C; i++) row[i] *= s;
  }
}

/* Tokenizes and encodes text into e (all its windows at once). */
static int encode(vtl_text_cond *tc, const char *text, bool plain, entry *e,
                  char *msg, size_t msglen) {
  const int T = VTL_TOKENIZER_CTX, C = tc->C;
  vtl_cl *cl = tc->cl;
  vtl_token_windows w = {0};
  int rc = prompt_windows(tc, text, plain, &w);
  if (rc) return fail(msg, msglen, rc, "tokenizer: %s", vtl_strerror(rc));
  e->count = w.count;
  e->text = strdup(text);
  e->rows = malloc((size_t)w.count * T * C * sizeof *e->rows);
  float *pooled_all = malloc((size_t)w.count * C * sizeof *pooled_all);
  e->pooled = malloc((size_t)C * sizeof *e->pooled);
  vtl_tensor z = {0}, pz = {0};
  if (!e->text || !e->rows || !pooled_all || !e->pooled) rc = VTL_ENOMEM;
  if (!rc) rc = vtl_tensor_alloc(cl, &z, 3, VTL_SHAPE(w.count, T, C));
  if (!rc) rc = vtl_tensor_alloc(cl, &pz, 2, VTL_SHAPE(w.count, C));
  if (!rc) rc = vtl_clip_encode(tc->clip, w.ids, w.count, T, &z, NULL, &pz);
  if (!rc) rc = vtl_tensor_read(cl, &z, e->rows);
  if (!rc) rc = vtl_tensor_read(cl, &pz, pooled_all);
  vtl_tensor_release(cl, &z);
  vtl_tensor_release(cl, &pz);
  if (!rc) {
    memcpy(e->pooled, pooled_all, (size_t)C * sizeof *e->pooled);
    for (int k = 0; k < w.count; k++)
      apply_weights(e->rows + (size_t)k * T * C, w.weights + (size_t)k * T, C);
  }
  free(pooled_all);
  vtl_token_windows_free(&w);
  if (rc) {
    entry_clear(e);
    return fail(msg, msglen, rc, "text encoder: %s",
                rc == VTL_ENOMEM ? "out of memory" : vtl_cl_errmsg(cl));
  }
  e->plain = plain;
  return 0;
}

/* The cache entry of (text, plain), encoding it on a miss. */
static int lookup(vtl_text_cond *tc, const char *text, bool plain,
                  const entry **out, char *msg, size_t msglen) {
  entry *lru = &tc->cache[0];
  for (int i = 0; i < VTL_TEXT_COND_CACHE; i++) {
    entry *e = &tc->cache[i];
    if (e->text && e->plain == plain && strcmp(e->text, text) == 0) {
      e->used = ++tc->clock;
      *out = e;
      return 0;
    }
    if (!e->text || (lru->text && e->used < lru->used)) lru = e;
  }
  entry_clear(lru);
  int rc = encode(tc, text, plain, lru, msg, msglen);
  if (rc) return rc;
  lru->used = ++tc->clock;
  *out = lru;
  return 0;
}

int vtl_text_cond_windows(vtl_text_cond *tc, const char *text, bool plain,
                          int *count, char *msg, size_t msglen) {
  const entry *e;
  int rc = lookup(tc, text, plain, &e, msg, msglen);
  if (!rc) *count = e->count;
  return rc;
}

int vtl_text_cond_blend(vtl_text_cond *tc, const vtl_prompt_term *terms,
                        int n, bool plain, int windows, float *rows,
                        float *pooled, char *msg, size_t msglen) {
  const int C = tc->C;
  const size_t win = (size_t)VTL_TOKENIZER_CTX * C;
  if (n < 1) return fail(msg, msglen, VTL_EINVAL, "no prompt");
  double total = 0;
  for (int i = 0; i < n; i++) {
    if (!terms[i].text || !(terms[i].weight > 0))
      return fail(msg, msglen, VTL_EINVAL, "prompt %d: no text or a weight "
                  "that is not > 0", i);
    total += terms[i].weight;
  }
  const entry *empty;
  int rc = lookup(tc, "", plain, &empty, msg, msglen);
  /* the empty prompt's rows are kept aside: a later lookup may evict it */
  float *pad = rc ? NULL : malloc(win * sizeof *pad);
  if (!rc && !pad) rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
  if (!rc) memcpy(pad, empty->rows, win * sizeof *pad);
  for (int i = 0; i < n && !rc; i++) {
    const entry *e;
    if ((rc = lookup(tc, terms[i].text, plain, &e, msg, msglen))) break;
    if (e->count > windows) {
      rc = fail(msg, msglen, VTL_EINVAL, "prompt %d needs %d windows, %d "
                "given", i, e->count, windows);
      break;
    }
    float w = n == 1 ? 1.0f : (float)(terms[i].weight / total);
    for (int k = 0; k < windows; k++) {
      const float *src = k < e->count ? e->rows + (size_t)k * win : pad;
      float *dst = rows + (size_t)k * win;
      for (size_t j = 0; j < win; j++) dst[j] = i ? dst[j] + w * src[j] : w * src[j];
    }
    if (pooled)
      for (int c = 0; c < C; c++)
        pooled[c] = i ? pooled[c] + w * e->pooled[c] : w * e->pooled[c];
  }
  free(pad);
  return rc;
}
