/* test_text_cond.c — engine/text_cond.c on the reference kit's tiny-sd
 * tokenizer and text encoder (../shared/refkit/models/tiny-sd):
 *
 *   cond_single      a one-term blend of any weight is exactly the prompt's
 *                    own encoding; a second call (a cache hit) the same bytes
 *   cond_blend       two terms: the weighted mean of their encodings
 *   cond_windows     a long prompt needs two windows; a short one padded to
 *                    two has the empty prompt's rows in the second
 *   cond_cache_evict more distinct prompts than the cache holds, then the
 *                    first again: the same bytes as its first encoding
 *   cond_errors      no terms, a weight <= 0, too few windows: VTL_EINVAL
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "engine_test.h"
#include "model_files.h"
#include "task.h"
#include "text_cond.h"
#include "tokenizer.h"
#include "vtl_error.h"

#define KIT VTL_SOURCE_DIR "/../shared/refkit/models/tiny-sd"
#define LONG_PROMPT                                                           \
  "a cat on a mat by a hat in a flat, a cat on a mat by a hat in a flat, a " \
  "cat on a mat by a hat in a flat, a cat on a mat by a hat in a flat, a "   \
  "cat on a mat by a hat in a flat, a cat on a mat by a hat, the end"

static vtl_tokenizer *tok;
static vtl_clip *clip;
static vtl_text_cond *tc;
static int C;

static void close_all(void) {
  vtl_text_cond_free(tc);
  vtl_clip_free(clip);
  vtl_tokenizer_free(tok);
}

static vtl_text_cond *cond(void) {
  if (tc) return tc;
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_tokenizer_load(KIT "/tokenizer", &tok, msg, sizeof msg) ||
      vtl_model_files_open(&mf, KIT, NULL, msg, sizeof msg) ||
      vtl_clip_load(rt(), mf, &clip, msg, sizeof msg) ||
      vtl_text_cond_new(rt(), tok, clip, &tc)) {
    fprintf(stderr, "%s\n", msg);
    abort();
  }
  vtl_model_files_close(mf);
  atexit(close_all);
  C = vtl_clip_config_of(clip)->hidden_size;
  return tc;
}

/* The blend of t[0..n) over `windows` windows into fresh rows + pooled. */
static float *enc(const vtl_prompt_term *t, int n, int windows, float **pooled) {
  cond(); /* sets C */
  size_t rows = (size_t)windows * VTL_TOKENIZER_CTX * C;
  float *r = malloc(rows * sizeof *r);
  *pooled = malloc((size_t)C * sizeof **pooled);
  char msg[256];
  if (!r || !*pooled ||
      vtl_text_cond_blend(cond(), t, n, false, windows, r, *pooled, msg, sizeof msg)) {
    fprintf(stderr, "blend: %s\n", msg);
    abort();
  }
  return r;
}

#define ROWS1 ((size_t)VTL_TOKENIZER_CTX * C)

TEST_IMPL(cond_single) {
  float *pa, *pb, *pc;
  float *a = enc(&(vtl_prompt_term){"a red cat", 1.0}, 1, 1, &pa);
  float *b = enc(&(vtl_prompt_term){"a red cat", 7.5}, 1, 1, &pb);
  float *c = enc(&(vtl_prompt_term){"a blue dog", 1.0}, 1, 1, &pc);
  ASSERT_OK(memcmp(a, b, ROWS1 * sizeof *a));
  ASSERT_OK(memcmp(pa, pb, (size_t)C * sizeof *pa));
  ASSERT(memcmp(a, c, ROWS1 * sizeof *a) != 0);
  ASSERT(memcmp(pa, pc, (size_t)C * sizeof *pa) != 0);
  free(a), free(b), free(c), free(pa), free(pb), free(pc);
  return 0;
}

TEST_IMPL(cond_blend) {
  float *pa, *pb, *pm;
  float *a = enc(&(vtl_prompt_term){"a red cat", 1.0}, 1, 1, &pa);
  float *b = enc(&(vtl_prompt_term){"(a blue:1.3) dog", 1.0}, 1, 1, &pb);
  vtl_prompt_term two[2] = {{"a red cat", 1.0}, {"(a blue:1.3) dog", 3.0}};
  float *m = enc(two, 2, 1, &pm);
  for (size_t i = 0; i < ROWS1; i++)
    ASSERT(fabsf(m[i] - (0.25f * a[i] + 0.75f * b[i])) < 1e-5f);
  for (int i = 0; i < C; i++) ASSERT(fabsf(pm[i] - (0.25f * pa[i] + 0.75f * pb[i])) < 1e-5f);
  free(a), free(b), free(m), free(pa), free(pb), free(pm);
  return 0;
}

TEST_IMPL(cond_windows) {
  int n = 0;
  char msg[256];
  ASSERT_OK(vtl_text_cond_windows(cond(), LONG_PROMPT, false, &n, msg, sizeof msg));
  ASSERT_EQ(n, 2);
  ASSERT_OK(vtl_text_cond_windows(cond(), LONG_PROMPT, true, &n, msg, sizeof msg));
  ASSERT_EQ(n, 1); /* plain: one truncated window */
  float *pe, *ps;
  float *e = enc(&(vtl_prompt_term){"", 1.0}, 1, 1, &pe);
  float *s = enc(&(vtl_prompt_term){"a red cat", 1.0}, 1, 2, &ps);
  ASSERT_OK(memcmp(s + ROWS1, e, ROWS1 * sizeof *e));
  free(e), free(s), free(pe), free(ps);
  return 0;
}

TEST_IMPL(cond_cache_evict) {
  float *p0, *p1;
  float *first = enc(&(vtl_prompt_term){"prompt number 0", 1.0}, 1, 1, &p0);
  for (int i = 1; i <= VTL_TEXT_COND_CACHE + 3; i++) {
    char text[64];
    snprintf(text, sizeof text, "prompt number %d", i);
    float *pp, *r = enc(&(vtl_prompt_term){text, 1.0}, 1, 1, &pp);
    free(r), free(pp);
  }
  float *again = enc(&(vtl_prompt_term){"prompt number 0", 1.0}, 1, 1, &p1);
  ASSERT_OK(memcmp(first, again, ROWS1 * sizeof *first));
  ASSERT_OK(memcmp(p0, p1, (size_t)C * sizeof *p0));
  free(first), free(again), free(p0), free(p1);
  return 0;
}

TEST_IMPL(cond_errors) {
  char msg[256];
  cond();
  float *rows = malloc(2 * ROWS1 * sizeof *rows);
  ASSERT(rows != NULL);
  vtl_prompt_term zero = {"a cat", 0.0}, ok = {LONG_PROMPT, 1.0};
  ASSERT_EQ(vtl_text_cond_blend(cond(), &ok, 0, false, 1, rows, NULL, msg, sizeof msg), VTL_EINVAL);
  ASSERT_EQ(vtl_text_cond_blend(cond(), &zero, 1, false, 1, rows, NULL, msg, sizeof msg), VTL_EINVAL);
  ASSERT_CONTAINS(msg, "weight");
  ASSERT_EQ(vtl_text_cond_blend(cond(), &ok, 1, false, 1, rows, NULL, msg, sizeof msg), VTL_EINVAL);
  ASSERT_CONTAINS(msg, "windows");
  free(rows);
  return 0;
}

TEST_LIST(TEST_ENTRY(cond_single) TEST_ENTRY(cond_blend) TEST_ENTRY(cond_windows)
              TEST_ENTRY(cond_cache_evict) TEST_ENTRY(cond_errors))
