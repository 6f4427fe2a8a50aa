/* test_tokenizer.c — the CLIP tokenizer (engine/tokenizer.h).
 *
 *   kit_cases          every `tokenize` case of the reference kit: ids exact,
 *                      and the untruncated token strings equal debug.tokens
 *   encode_framing     bos .. eos, pad to 77; truncation keeps eos at 76
 *   empty_prompt       "" -> [bos, eos, pad...] and one weighted window
 *   weights_syntax     (x:1.5) [x] ((x)) \(x\) -> per-token weights
 *   weights_edge       nesting, open and unmatched brackets, bad numbers,
 *                      lone backslashes
 *   weights_plain      no syntax: the weighted window equals encode()
 *   long_prompt        76+ tokens -> several windows, each framed by itself
 *   break_keyword      BREAK ends a window; never an empty one
 *   lowercase_rules    final sigma, U+0130, upper-case special strings
 *   pad_token_string   a pad token "!" is split out and pads the window
 *   bad_text           invalid UTF-8, over-long text
 *   load_errors        missing / damaged vocab.json, merges.txt, configs
 *
 * The kit is ../shared/refkit (tests run from the repo root), or the folder
 * named by VTL_REFKIT.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "pyjson.h"
#include "task.h"
#include "tokenizer.h"
#include "vtl_error.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *kit_dir(void) {
  const char *env = getenv("VTL_REFKIT");
  return env && *env ? env : "../shared/refkit";
}

static const char *tok_dir(void) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "%s/models/tiny-sd/tokenizer", kit_dir());
  return buf;
}

static vtl_tokenizer *load_kit(void) {
  vtl_tokenizer *tok = NULL;
  char msg[512];
  int rc = vtl_tokenizer_load(tok_dir(), &tok, msg, sizeof msg);
  if (rc) fprintf(stderr, "load %s: %s\n", tok_dir(), msg);
  return tok;
}

/* Appends the ids of text with weight w to ids/ws (expected sequences). */
static int append(vtl_tokenizer *tok, const char *text, float w, int32_t *ids,
                  float *ws, size_t *n) {
  int32_t *v;
  size_t k;
  if (vtl_tokenizer_tokenize(tok, text, &v, &k)) return -1;
  for (size_t i = 0; i < k; i++) {
    ids[*n] = v[i];
    ws[*n] = w;
    (*n)++;
  }
  free(v);
  return 0;
}

/* Asserts that window 0 of out is bos + ids[0..n) + eos + pad with the
 * given weights. */
static int check_window(vtl_tokenizer *tok, const vtl_token_windows *out,
                        int win, const int32_t *ids, const float *ws,
                        size_t n) {
  const vtl_tokenizer_info *info = vtl_tokenizer_get_info(tok);
  const int32_t *wi = out->ids + win * VTL_TOKENIZER_CTX;
  const float *ww = out->weights + win * VTL_TOKENIZER_CTX;
  ASSERT_LT(win, out->count);
  ASSERT_EQ(wi[0], info->bos);
  ASSERT_NEAR(ww[0], 1.0, 0);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(wi[1 + i], ids[i]);
    ASSERT_NEAR(ww[1 + i], ws[i], 1e-6);
  }
  ASSERT_EQ(wi[1 + n], info->eos);
  for (size_t i = n + 1; i < VTL_TOKENIZER_CTX; i++) {
    if (i > n + 1) ASSERT_EQ(wi[i], info->pad);
    ASSERT_NEAR(ww[i], 1.0, 0);
  }
  return 0;
}

static int write_file(const char *dir, const char *name, const char *data,
                      size_t len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  return fclose(f) == 0 && w == len ? 0 : -1;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

/* A scratch copy of the kit's tokenizer folder in dir (mkdtemp). */
static int copy_kit(char *dir) {
  strcpy(dir, "/tmp/vtl-tok-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  static const char *const files[] = {"vocab.json", "merges.txt",
                                      "tokenizer_config.json",
                                      "special_tokens_map.json"};
  for (int i = 0; i < 4; i++) {
    char src[2048];
    size_t len;
    snprintf(src, sizeof src, "%s/%s", tok_dir(), files[i]);
    char *data = slurp(src, &len);
    if (!data || write_file(dir, files[i], data, len)) {
      free(data);
      return -1;
    }
    free(data);
  }
  return 0;
}

static void remove_dir(const char *dir) {
  static const char *const files[] = {"vocab.json", "merges.txt",
                                      "tokenizer_config.json",
                                      "special_tokens_map.json"};
  char path[1024];
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- the kit ------------------------------------------------------------- */

TEST_IMPL(kit_cases) {
  char path[1024], msg[512];
  snprintf(path, sizeof path, "%s/manifest.json", kit_dir());
  json_t *m;
  if (vtl_json_load_python(path, &m, msg, sizeof msg)) TEST_FAIL_("%s", msg);
  vtl_tokenizer *tok = NULL;
  char loaded[1024] = "";
  int ncases = 0, failed = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(m, "cases"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "kind")), "tokenize"))
      continue;
    ncases++;
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *params = json_object_get(c, "params");
    const char *text = json_string_value(json_object_get(params, "text"));
    ASSERT_EQ(json_integer_value(json_object_get(params, "max_length")),
              VTL_TOKENIZER_CTX);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s/tokenizer", kit_dir(),
             json_string_value(json_object_get(json_object_get(c, "model"),
                                               "path")));
    if (strcmp(dir, loaded) != 0) {
      vtl_tokenizer_free(tok);
      ASSERT_OK(vtl_tokenizer_load(dir, &tok, msg, sizeof msg));
      snprintf(loaded, sizeof loaded, "%s", dir);
    }

    int32_t ids[VTL_TOKENIZER_CTX];
    int ntok;
    ASSERT_OK(vtl_tokenizer_encode(tok, text, ids, &ntok));
    json_t *o = json_object_get(json_object_get(c, "outputs"), "input_ids");
    snprintf(path, sizeof path, "%s/%s", kit_dir(),
             json_string_value(json_object_get(o, "file")));
    vtl_npy want;
    if (vtl_npy_load(path, &want, msg, sizeof msg)) TEST_FAIL_("%s", msg);
    ASSERT_EQ(want.dtype, VTL_NPY_I64);
    ASSERT_EQ(want.count, VTL_TOKENIZER_CTX);
    int bad = -1;
    for (int k = 0; k < VTL_TOKENIZER_CTX; k++)
      if (((const int64_t *)want.data)[k] != ids[k] && bad < 0) bad = k;
    if (bad >= 0) {
      fprintf(stderr, "%s: input_ids[%d] = %d, want %" PRId64 "\n", name, bad,
              ids[bad], ((const int64_t *)want.data)[bad]);
      failed++;
    }
    vtl_npy_free(&want);

    /* debug.tokens: the BPE strings before truncation. */
    json_t *dt = json_object_get(json_object_get(c, "debug"), "tokens");
    int32_t *v;
    size_t n;
    ASSERT_OK(vtl_tokenizer_tokenize(tok, text, &v, &n));
    ASSERT_EQ(n, ntok);
    if (json_is_array(dt)) {
      ASSERT_EQ(n, json_array_size(dt));
      for (size_t k = 0; k < n; k++) {
        const char *got = vtl_tokenizer_token_str(tok, v[k]);
        const char *exp = json_string_value(json_array_get(dt, k));
        if (!got || strcmp(got, exp) != 0) {
          fprintf(stderr, "%s: token %zu = \"%s\", want \"%s\"\n", name, k,
                  got ? got : "(null)", exp);
          failed++;
          break;
        }
      }
    }
    free(v);
  }
  vtl_tokenizer_free(tok);
  json_decref(m);
  ASSERT_GE(ncases, 30);
  ASSERT_EQ(failed, 0);
  return 0;
}

/* ---- framing ------------------------------------------------------------- */

TEST_IMPL(encode_framing) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  const vtl_tokenizer_info *info = vtl_tokenizer_get_info(tok);
  int32_t ids[VTL_TOKENIZER_CTX];
  int n;
  ASSERT_OK(vtl_tokenizer_encode(tok, "a cat", ids, &n));
  ASSERT_EQ(n, 2);
  ASSERT_EQ(ids[0], info->bos);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, ids[1]), "a</w>");
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, ids[2]), "cat</w>");
  ASSERT_EQ(ids[3], info->eos);
  for (int i = 4; i < VTL_TOKENIZER_CTX; i++) ASSERT_EQ(ids[i], info->pad);

  /* 100 tokens: the window keeps 75 and the eos at 76. */
  char text[1024] = "";
  for (int i = 0; i < 100; i++) strcat(text, "cat ");
  ASSERT_OK(vtl_tokenizer_encode(tok, text, ids, &n));
  ASSERT_EQ(n, 100);
  ASSERT_EQ(ids[75], ids[1]);
  ASSERT_EQ(ids[76], info->eos);
  vtl_tokenizer_free(tok);
  return 0;
}

TEST_IMPL(empty_prompt) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  const vtl_tokenizer_info *info = vtl_tokenizer_get_info(tok);
  int32_t ids[VTL_TOKENIZER_CTX];
  int n = -1;
  ASSERT_OK(vtl_tokenizer_encode(tok, "", ids, &n));
  ASSERT_EQ(n, 0);
  ASSERT_EQ(ids[0], info->bos);
  ASSERT_EQ(ids[1], info->eos);
  ASSERT_EQ(ids[76], info->pad);
  int32_t *v = (int32_t *)1;
  size_t k = 1;
  ASSERT_OK(vtl_tokenizer_tokenize(tok, "  \t\n ", &v, &k));
  ASSERT_EQ(k, 0);
  ASSERT_NULL(v);

  const char *empties[] = {"", "   ", "()", "[]", "BREAK", "(:1.5)"};
  for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
    vtl_token_windows w;
    ASSERT_OK(vtl_tokenizer_encode_weighted(tok, empties[i], &w));
    ASSERT_EQ(w.count, 1);
    ASSERT_EQ(w.ntokens, 0);
    if (check_window(tok, &w, 0, NULL, NULL, 0)) return 1;
    vtl_token_windows_free(&w);
  }
  vtl_tokenizer_free(tok);
  return 0;
}

/* ---- weighting ----------------------------------------------------------- */

TEST_IMPL(weights_syntax) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  int32_t ids[VTL_TOKENIZER_CTX];
  float ws[VTL_TOKENIZER_CTX];
  size_t n = 0;
  /* a (red:1.5) [blue] ((green)) \(literal\) */
  ASSERT_OK(append(tok, "a", 1.0f, ids, ws, &n));
  ASSERT_OK(append(tok, "red", 1.5f, ids, ws, &n));
  ASSERT_OK(append(tok, "blue", (float)(1 / 1.1), ids, ws, &n));
  ASSERT_OK(append(tok, "green", (float)(1.1 * 1.1), ids, ws, &n));
  ASSERT_OK(append(tok, "(literal)", 1.0f, ids, ws, &n));
  vtl_token_windows w;
  ASSERT_OK(vtl_tokenizer_encode_weighted(
      tok, "a (red:1.5) [blue] ((green)) \\(literal\\)", &w));
  ASSERT_EQ(w.count, 1);
  ASSERT_EQ(w.ntokens, n);
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  /* The exact values A1111 computes in double, rounded to float. */
  ASSERT(w.weights[2] == 1.5f);
  vtl_token_windows_free(&w);

  /* Spaces inside the number, a negative weight, a weight on a phrase. */
  n = 0;
  ASSERT_OK(append(tok, "big dog", -0.5f, ids, ws, &n));
  ASSERT_OK(append(tok, "sky", 2.0f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "(big dog: -0.5 ) (sky:2)",
                                          &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);
  vtl_tokenizer_free(tok);
  return 0;
}

TEST_IMPL(weights_edge) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  int32_t ids[VTL_TOKENIZER_CTX];
  float ws[VTL_TOKENIZER_CTX];
  size_t n;
  vtl_token_windows w;

  /* Nesting multiplies: ((a:1.5) b) -> a 1.5*1.1, b 1.1; [[c]] -> 1/1.1^2. */
  n = 0;
  ASSERT_OK(append(tok, "a", (float)(1.5 * 1.1), ids, ws, &n));
  ASSERT_OK(append(tok, "b", 1.1f, ids, ws, &n));
  ASSERT_OK(append(tok, "c", (float)(1 / 1.1 / 1.1), ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "((a:1.5) b) [[c]]", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  /* A bracket left open weighs to the end; unmatched closers are text. */
  n = 0;
  ASSERT_OK(append(tok, "x", 1.0f, ids, ws, &n));
  ASSERT_OK(append(tok, "y ] z", 1.1f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "x (y ] z", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  n = 0;
  ASSERT_OK(append(tok, "x) :1.2) y", 1.0f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "x) :1.2) y", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  /* Not a number: ":" and the rest are text inside the bracket. */
  n = 0;
  ASSERT_OK(append(tok, "x:1.2.3", 1.1f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "(x:1.2.3)", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  /* \\ is a backslash, a lone backslash vanishes, \[ \] are literal. */
  n = 0;
  ASSERT_OK(append(tok, "a\\b cd [e]", 1.0f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "a\\\\b c\\d \\[e\\]", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  /* Escapes keep the weight of their bracket. */
  n = 0;
  ASSERT_OK(append(tok, "(x)", 1.3f, ids, ws, &n));
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "(\\(x\\):1.3)", &w));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);
  vtl_tokenizer_free(tok);
  return 0;
}

TEST_IMPL(weights_plain) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  const char *texts[] = {"a photo of a cat, 8k: sharp", "don't stop!",
                         "café <|endoftext|> 日本", "\\(literal\\)"};
  const char *plain[] = {"a photo of a cat, 8k: sharp", "don't stop!",
                         "café <|endoftext|> 日本", "(literal)"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    int32_t ids[VTL_TOKENIZER_CTX];
    int n;
    vtl_token_windows w;
    ASSERT_OK(vtl_tokenizer_encode(tok, plain[i], ids, &n));
    ASSERT_OK(vtl_tokenizer_encode_weighted(tok, texts[i], &w));
    ASSERT_EQ(w.count, 1);
    ASSERT_EQ(w.ntokens, n);
    for (int k = 0; k < VTL_TOKENIZER_CTX; k++) {
      ASSERT_EQ(w.ids[k], ids[k]);
      ASSERT_NEAR(w.weights[k], 1.0, 0);
    }
    vtl_token_windows_free(&w);
  }
  vtl_tokenizer_free(tok);
  return 0;
}

/* ---- windows ------------------------------------------------------------- */

TEST_IMPL(long_prompt) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  int32_t cat[1], *v;
  size_t k;
  ASSERT_OK(vtl_tokenizer_tokenize(tok, "cat", &v, &k));
  ASSERT_EQ(k, 1);
  cat[0] = v[0];
  free(v);

  static const int counts[] = {75, 76, 150, 151, 200};
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
    int total = counts[c];
    char *text = malloc((size_t)total * 4 + 1);
    text[0] = '\0';
    for (int i = 0; i < total; i++) strcat(text, "cat ");
    vtl_token_windows w;
    ASSERT_OK(vtl_tokenizer_encode_weighted(tok, text, &w));
    ASSERT_EQ(w.count, (total + 74) / 75);
    ASSERT_EQ(w.ntokens, total);
    int32_t ids[VTL_TOKENIZER_CHUNK];
    float ws[VTL_TOKENIZER_CHUNK];
    for (int i = 0; i < VTL_TOKENIZER_CHUNK; i++) {
      ids[i] = cat[0];
      ws[i] = 1.0f;
    }
    for (int win = 0; win < w.count; win++) {
      int in = total - win * 75 < 75 ? total - win * 75 : 75;
      if (check_window(tok, &w, win, ids, ws, (size_t)in)) return 1;
    }
    /* Window 0 is what the kit's single-window encode gives. */
    int32_t one[VTL_TOKENIZER_CTX];
    ASSERT_OK(vtl_tokenizer_encode(tok, text, one, NULL));
    ASSERT_OK(memcmp(one, w.ids, sizeof one));
    vtl_token_windows_free(&w);
    free(text);
  }

  /* Weights carry across the window boundary. */
  char text[2048] = "(";
  for (int i = 0; i < 80; i++) strcat(text, "cat ");
  strcat(text, ":1.4)");
  vtl_token_windows w;
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, text, &w));
  ASSERT_EQ(w.count, 2);
  ASSERT_NEAR(w.weights[75], 1.4, 1e-6);
  ASSERT_NEAR(w.weights[76], 1.0, 0);
  ASSERT_NEAR(w.weights[77 + 5], 1.4, 1e-6);
  ASSERT_NEAR(w.weights[77 + 6], 1.0, 0);
  vtl_token_windows_free(&w);
  vtl_tokenizer_free(tok);
  return 0;
}

TEST_IMPL(break_keyword) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  int32_t ids[8];
  float ws[8];
  size_t n;
  vtl_token_windows w;

  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "a cat BREAK a (dog)", &w));
  ASSERT_EQ(w.count, 2);
  n = 0;
  ASSERT_OK(append(tok, "a cat", 1.0f, ids, ws, &n));
  if (check_window(tok, &w, 0, ids, ws, n)) return 1;
  n = 0;
  ASSERT_OK(append(tok, "a", 1.0f, ids, ws, &n));
  ASSERT_OK(append(tok, "dog", 1.1f, ids, ws, &n));
  if (check_window(tok, &w, 1, ids, ws, n)) return 1;
  vtl_token_windows_free(&w);

  /* No empty windows: leading, doubled and trailing BREAKs. */
  ASSERT_OK(vtl_tokenizer_encode_weighted(tok, "BREAK a BREAK BREAK b BREAK",
                                          &w));
  ASSERT_EQ(w.count, 2);
  ASSERT_EQ(w.ntokens, 2);
  vtl_token_windows_free(&w);

  /* Not a keyword inside a word or in lower case. */
  const char *words[] = {"aBREAK b", "BREAKING news", "break it", "x_BREAK"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    ASSERT_OK(vtl_tokenizer_encode_weighted(tok, words[i], &w));
    ASSERT_EQ(w.count, 1);
    int32_t one[VTL_TOKENIZER_CTX];
    ASSERT_OK(vtl_tokenizer_encode(tok, words[i], one, NULL));
    ASSERT_OK(memcmp(one, w.ids, sizeof one));
    vtl_token_windows_free(&w);
  }
  vtl_tokenizer_free(tok);
  return 0;
}

/* ---- normalisation details ----------------------------------------------- */

static int same_ids(vtl_tokenizer *tok, const char *a, const char *b) {
  int32_t x[VTL_TOKENIZER_CTX], y[VTL_TOKENIZER_CTX];
  int nx, ny;
  if (vtl_tokenizer_encode(tok, a, x, &nx) ||
      vtl_tokenizer_encode(tok, b, y, &ny))
    return 0;
  return nx == ny && memcmp(x, y, sizeof x) == 0;
}

TEST_IMPL(lowercase_rules) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  /* Python's str.lower(): final sigma at the end of a word only. */
  ASSERT(same_ids(tok, "ΟΔΟΣ ΣΑΣ", "οδος σας"));
  ASSERT(same_ids(tok, "Σ", "σ"));
  ASSERT(!same_ids(tok, "ΟΔΟΣ", "οδοσ"));
  /* U+0130 lowercases to i + U+0307 (two symbols). */
  ASSERT(same_ids(tok, "\xC4\xB0", "i\xCC\x87"));
  /* NFC: e + combining acute == é. */
  ASSERT(same_ids(tok, "cafe\xCC\x81", "caf\xC3\xA9"));
  /* Control characters vanish, NBSP and tabs are spaces. */
  ASSERT(same_ids(tok, "a\x01" "b\xC2\xA0" "c\td", "ab c d"));
  /* Upper-case special strings are not split out, but lowercasing makes
   * them the regex's literal, which BPE leaves whole. */
  int32_t ids[VTL_TOKENIZER_CTX];
  int n;
  ASSERT_OK(vtl_tokenizer_encode(tok, "<|ENDOFTEXT|>", ids, &n));
  ASSERT_EQ(n, 1);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, ids[1]), "<|endoftext|>");
  /* Contractions: 's is one pre-token, also with a long s. */
  int32_t *v;
  size_t k;
  ASSERT_OK(vtl_tokenizer_tokenize(tok, "'s", &v, &k));
  ASSERT_EQ(k, 1);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, v[0]), "'s</w>");
  free(v);
  vtl_tokenizer_free(tok);
  return 0;
}

TEST_IMPL(pad_token_string) {
  char dir[64];
  ASSERT_OK(copy_kit(dir));
  const char *config = "{\"bos_token\": \"<|startoftext|>\", "
                       "\"eos_token\": {\"content\": \"<|endoftext|>\"}, "
                       "\"pad_token\": \"!\", "
                       "\"unk_token\": \"<|endoftext|>\"}";
  ASSERT_OK(write_file(dir, "tokenizer_config.json", config, strlen(config)));
  vtl_tokenizer *tok = NULL;
  char msg[512];
  ASSERT_OK(vtl_tokenizer_load(dir, &tok, msg, sizeof msg));
  const vtl_tokenizer_info *info = vtl_tokenizer_get_info(tok);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, info->pad), "!");

  int32_t ids[VTL_TOKENIZER_CTX];
  int n;
  ASSERT_OK(vtl_tokenizer_encode(tok, "Cat!!x", ids, &n));
  ASSERT_EQ(n, 4);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, ids[1]), "cat</w>");
  ASSERT_EQ(ids[2], info->pad);
  ASSERT_EQ(ids[3], info->pad);
  ASSERT_STR_EQ(vtl_tokenizer_token_str(tok, ids[4]), "x</w>");
  ASSERT_EQ(ids[5], info->eos);
  ASSERT_EQ(ids[6], info->pad);
  ASSERT_EQ(ids[76], info->pad);
  vtl_tokenizer_free(tok);
  remove_dir(dir);
  return 0;
}

TEST_IMPL(bad_text) {
  vtl_tokenizer *tok = load_kit();
  ASSERT_NOT_NULL(tok);
  int32_t ids[VTL_TOKENIZER_CTX];
  vtl_token_windows w;
  ASSERT_EQ(vtl_tokenizer_encode(tok, "a \xff b", ids, NULL), VTL_EINVAL);
  ASSERT_EQ(vtl_tokenizer_encode(tok, "\xed\xa0\x80", ids, NULL), VTL_EINVAL);
  ASSERT_EQ(vtl_tokenizer_encode_weighted(tok, "(\xc3)", &w), VTL_EINVAL);
  ASSERT_NULL(w.ids);
  char *big = malloc(VTL_TOKENIZER_MAX_TEXT + 2);
  memset(big, 'a', VTL_TOKENIZER_MAX_TEXT + 1);
  big[VTL_TOKENIZER_MAX_TEXT + 1] = '\0';
  ASSERT_EQ(vtl_tokenizer_encode(tok, big, ids, NULL), VTL_ETOOLONG);
  big[VTL_TOKENIZER_MAX_TEXT] = '\0';
  ASSERT_OK(vtl_tokenizer_encode(tok, big, ids, NULL)); /* one huge word */
  free(big);
  vtl_tokenizer_free(tok);
  return 0;
}

/* ---- loading ------------------------------------------------------------- */

/* Loads dir expecting code, with each of the words in msg. */
static int expect_load(const char *dir, int code, const char *w1,
                       const char *w2) {
  vtl_tokenizer *tok = (vtl_tokenizer *)1;
  char msg[512];
  int rc = vtl_tokenizer_load(dir, &tok, msg, sizeof msg);
  if (rc != code) TEST_FAIL_("load: %s, want %s (%s)", vtl_err_name(rc),
                             vtl_err_name(code), msg);
  if (tok) TEST_FAIL_("load failed but set the tokenizer (%s)", msg);
  if (w1 && !strstr(msg, w1)) TEST_FAIL_("message \"%s\" lacks %s", msg, w1);
  if (w2 && !strstr(msg, w2)) TEST_FAIL_("message \"%s\" lacks %s", msg, w2);
  return 0;
}

TEST_IMPL(load_errors) {
  char dir[64], path[128];
  ASSERT_OK(copy_kit(dir));
  if (expect_load("/nonexistent/tokenizer", VTL_ENOENT, "vocab.json", NULL))
    return 1;

  struct {
    const char *file, *data;
    int code;
    const char *w1, *w2;
  } cases[] = {
      {"vocab.json", "{\"a\": 0, \"b\": ", VTL_EPARSE, "vocab.json", NULL},
      {"vocab.json", "[1, 2]", VTL_EPARSE, "vocab.json", "object"},
      {"vocab.json", "{}", VTL_EPARSE, "vocab.json", NULL},
      {"vocab.json", "{\"a\": \"x\"}", VTL_EPARSE, "vocab.json", "\"a\""},
      {"vocab.json", "{\"a\": -3}", VTL_EPARSE, "vocab.json", NULL},
      {"merges.txt", "", VTL_EPARSE, "merges.txt", "no merges"},
      {"merges.txt", "#version: 0.2\n", VTL_EPARSE, "merges.txt", NULL},
      {"merges.txt", "#version: 0.2\nt h\nth e</w> x\n", VTL_EPARSE,
       "merges.txt:3", "two symbols"},
      {"merges.txt", "#version: 0.2\nt h\n\xff\xfe\n", VTL_EPARSE,
       "merges.txt", "UTF-8"},
      {"tokenizer_config.json", "{\"pad_token\": ", VTL_EPARSE,
       "tokenizer_config.json", NULL},
      {"tokenizer_config.json", "{\"pad_token\": \"zzz-not-a-token\"}",
       VTL_EPARSE, "pad_token", "zzz-not-a-token"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char fresh[64];
    ASSERT_OK(copy_kit(fresh));
    ASSERT_OK(write_file(fresh, cases[i].file, cases[i].data,
                         strlen(cases[i].data)));
    if (expect_load(fresh, cases[i].code, cases[i].w1, cases[i].w2)) {
      fprintf(stderr, "case %zu (%s)\n", i, cases[i].file);
      return 1;
    }
    remove_dir(fresh);
  }

  /* Missing files: vocab.json and merges.txt are required, the two JSON
   * configs are not (CLIP's defaults are the kit's tokens). */
  snprintf(path, sizeof path, "%s/merges.txt", dir);
  ASSERT_OK(unlink(path));
  if (expect_load(dir, VTL_ENOENT, "merges.txt", NULL)) return 1;
  remove_dir(dir);

  ASSERT_OK(copy_kit(dir));
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  ASSERT_OK(unlink(path));
  snprintf(path, sizeof path, "%s/special_tokens_map.json", dir);
  ASSERT_OK(unlink(path));
  vtl_tokenizer *tok = NULL, *ref = load_kit();
  char msg[512];
  ASSERT_OK(vtl_tokenizer_load(dir, &tok, msg, sizeof msg));
  ASSERT_NOT_NULL(ref);
  ASSERT(same_ids(tok, "a photo", "a photo"));
  ASSERT_OK(memcmp(vtl_tokenizer_get_info(tok), vtl_tokenizer_get_info(ref),
                   sizeof(vtl_tokenizer_info)));
  vtl_tokenizer_free(tok);
  vtl_tokenizer_free(ref);
  remove_dir(dir);
  return 0;
}

TEST_LIST(TEST_ENTRY(kit_cases) TEST_ENTRY(encode_framing)
          TEST_ENTRY(empty_prompt) TEST_ENTRY(weights_syntax)
          TEST_ENTRY(weights_edge) TEST_ENTRY(weights_plain)
          TEST_ENTRY(long_prompt) TEST_ENTRY(break_keyword)
          TEST_ENTRY(lowercase_rules) TEST_ENTRY(pad_token_string)
          TEST_ENTRY(bad_text) TEST_ENTRY(load_errors))
