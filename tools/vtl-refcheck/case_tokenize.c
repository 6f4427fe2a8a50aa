/* case_tokenize.c — kind `tokenize`: params.text through the model's CLIP
 * tokenizer (engine/tokenizer.h) into one 77-token window, compared with
 * outputs.input_ids [1, 77] exactly.
 *
 * The tokenizer folder is <kit>/<model.path>/tokenizer. The last one loaded
 * is kept for the next case (every case of a kit names the same folder);
 * a case naming another folder replaces it. The cached tokenizer lives
 * until exit (still reachable, so leak checkers stay quiet).
 *
 * When the ids differ and the case has debug.tokens, the first token string
 * that differs is printed to stderr: the quickest way to see which step
 * (special split, normalisation, regex, BPE) went wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcheck.h"
#include "tokenizer.h"
#include "vtl_error.h"

static struct {
  char dir[4096];     /* folder tok was loaded from */
  vtl_tokenizer *tok; /* owned, NULL before the first case */
} cache;

/* The tokenizer of case c: cached, or loaded (then cached). */
static int case_tokenizer(rc_case *c, vtl_tokenizer **out) {
  json_t *model = json_object_get(c->json, "model");
  const char *rel = json_string_value(json_object_get(model, "path"));
  if (!rel) return rc_case_error(c, VTL_EPARSE, "model.path missing");
  char base[4096], dir[4096];
  snprintf(dir, sizeof dir, "%s/tokenizer", rc_path(c, rel, base, sizeof base));
  if (cache.tok && strcmp(cache.dir, dir) == 0) {
    *out = cache.tok;
    return 0;
  }
  vtl_tokenizer_free(cache.tok);
  cache.tok = NULL;
  char msg[512];
  int rc = vtl_tokenizer_load(dir, &cache.tok, msg, sizeof msg);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  snprintf(cache.dir, sizeof cache.dir, "%s", dir);
  *out = cache.tok;
  return 0;
}

/* Prints where our BPE strings first depart from debug.tokens. */
static void explain(rc_case *c, vtl_tokenizer *tok, const char *text) {
  json_t *want = json_object_get(json_object_get(c->json, "debug"), "tokens");
  int32_t *ids;
  size_t n;
  if (!json_is_array(want) || vtl_tokenizer_tokenize(tok, text, &ids, &n))
    return;
  size_t m = json_array_size(want);
  for (size_t i = 0; i < n || i < m; i++) {
    const char *got = i < n ? vtl_tokenizer_token_str(tok, ids[i]) : NULL;
    const char *exp = i < m ? json_string_value(json_array_get(want, i)) : NULL;
    if (!got || !exp || strcmp(got, exp) != 0) {
      fprintf(stderr,
              "  %s: token %zu is \"%s\", debug.tokens has \"%s\" "
              "(%zu vs %zu tokens)\n",
              c->name, i, got ? got : "(end)", exp ? exp : "(end)", n, m);
      break;
    }
  }
  free(ids);
}

int run_tokenize(rc_case *c) {
  const char *text = json_string_value(json_object_get(c->params, "text"));
  if (!text) return rc_case_error(c, VTL_EPARSE, "params.text missing");
  json_t *ml = json_object_get(c->params, "max_length");
  json_t *pad = json_object_get(c->params, "padding");
  json_t *trunc = json_object_get(c->params, "truncation");
  if ((ml && json_integer_value(ml) != VTL_TOKENIZER_CTX) ||
      (pad && (!json_is_string(pad) ||
               strcmp(json_string_value(pad), "max_length") != 0)) ||
      (trunc && !json_is_true(trunc)))
    return rc_case_error(c, VTL_EUNSUPPORTED,
                         "only max_length %d, padding \"max_length\", "
                         "truncation true",
                         VTL_TOKENIZER_CTX);

  vtl_tokenizer *tok = NULL;
  int rc = case_tokenizer(c, &tok);
  if (rc) return rc;
  int32_t ids[VTL_TOKENIZER_CTX];
  rc = vtl_tokenizer_encode(tok, text, ids, NULL);
  if (rc) return rc_case_error(c, rc, "encode: %s", vtl_strerror(rc));

  int64_t out[VTL_TOKENIZER_CTX];
  for (int i = 0; i < VTL_TOKENIZER_CTX; i++) out[i] = ids[i];
  const int64_t shape[2] = {1, VTL_TOKENIZER_CTX};
  int before = c->failures;
  rc_check_i64(c, "input_ids", out, 2, shape);
  if (c->failures > before) explain(c, tok, text);
  return 0;
}
