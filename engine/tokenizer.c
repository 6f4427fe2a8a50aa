/* tokenizer.c — CLIP byte-level BPE (see tokenizer.h for the six steps and
 * the weighting syntax).
 *
 * Data, all built at load and read-only afterwards except the cache:
 *
 *   vocab     strmap  token string -> id              (vocab.json)
 *   added     strmap  added/special content -> id     (added_tokens_decoder,
 *                                                      bos/eos/pad/unk)
 *   ranks     strmap  "a b" -> merge rank             (merges.txt)
 *   specials  array   the strings split out first, longest first
 *   names     array   id -> token string (keys of vocab / added)
 *   cache     strmap  byte-encoded pre-token -> OFF << 24 | N, the N ids at
 *                     cache_ids[OFF]; cleared as a whole when it gets big
 *
 * Text flows through one reusable scratch struct (work) per call:
 *
 *   raw UTF-8 --split specials--> pieces --clean, CJK--> text --NFC--> cps
 *     --split words, lower--> norm --regex--> pre-token --bytes--> word
 *     --BPE--> ids
 */
#include "tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "strmap.h"
#include "vtl_error.h"

#define MERGES_MAX (49152 - 256 - 2) /* CLIP reads merges lines [1, 48895) */
#define MAX_ID (1 << 24)             /* ids above this are a damaged vocab */
#define CACHE_MAX_WORDS (1 << 16)    /* cache entries before it is cleared */
#define CACHE_MAX_IDS (1 << 22)      /* cached ids before it is cleared */
#define CACHE_N_BITS 24              /* cache value: OFF << 24 | N */

typedef int32_t cp_t; /* one Unicode code point */

typedef struct {
  const char *str; /* -> key stored in tok->added */
  size_t len;      /* bytes */
  int32_t id;
} special;

struct vtl_tokenizer {
  vtl_strmap *vocab;   /* token -> id, owned */
  vtl_strmap *added;   /* added token content -> id, owned */
  vtl_strmap *ranks;   /* "a b" -> rank, owned */
  vtl_strmap *cache;   /* word -> OFF << 24 | N into cache_ids, owned */
  int32_t *cache_ids;  /* malloc'd, cache_cap */
  size_t cache_len, cache_cap;
  special *specials;   /* malloc'd, nspecials, longest first */
  int nspecials;
  const char **names;  /* malloc'd [info.vocab_size], strings in the maps */
  vtl_tokenizer_info info;
  char bytes[256][4];  /* bytes_to_unicode as UTF-8, NUL-terminated */
  uint8_t bytes_len[256];
};

/* ---- growable buffers ---------------------------------------------------- */

typedef struct { char *v; size_t n, cap; } sbuf;
typedef struct { cp_t *v; size_t n, cap; } cvec;
typedef struct { int32_t *v; size_t n, cap; } ivec;

/* Makes room for `more` elements of size `elem` in *v (cap in elements). */
static int reserve(void **v, size_t *cap, size_t n, size_t more, size_t elem) {
  if (n + more <= *cap) return 0;
  size_t c = *cap ? *cap : 16;
  while (c < n + more) c *= 2;
  void *p = realloc(*v, c * elem);
  if (!p) return VTL_ENOMEM;
  *v = p;
  *cap = c;
  return 0;
}

#define RESERVE(buf, more)                                                   \
  reserve((void **)&(buf)->v, &(buf)->cap, (buf)->n, (more), sizeof *(buf)->v)

static int sbuf_add(sbuf *b, const char *s, size_t n) {
  if (RESERVE(b, n + 1)) return VTL_ENOMEM;
  memcpy(b->v + b->n, s, n);
  b->n += n;
  b->v[b->n] = '\0';
  return 0;
}

static int cvec_add(cvec *c, cp_t x) {
  if (RESERVE(c, 1)) return VTL_ENOMEM;
  c->v[c->n++] = x;
  return 0;
}

static int ivec_add(ivec *c, int32_t x) {
  if (RESERVE(c, 1)) return VTL_ENOMEM;
  c->v[c->n++] = x;
  return 0;
}

/* Appends the UTF-8 encoding of cp. */
static int sbuf_add_cp(sbuf *b, cp_t cp) {
  utf8proc_uint8_t u[4];
  utf8proc_ssize_t n = utf8proc_encode_char(cp, u);
  return sbuf_add(b, (const char *)u, (size_t)n);
}

/* Decodes one code point of valid UTF-8 at s (n bytes left); returns its
 * length (1 for a byte that is not valid UTF-8, with *cp = -1). */
static size_t decode(const char *s, size_t n, cp_t *cp) {
  utf8proc_ssize_t k =
      utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, cp);
  if (k <= 0) {
    *cp = -1;
    return 1;
  }
  return (size_t)k;
}

/* 0 when s[0..n) is valid UTF-8, else VTL_EINVAL. */
static int check_utf8(const char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    cp_t cp;
    i += decode(s + i, n - i, &cp);
    if (cp < 0) return VTL_EINVAL;
  }
  return 0;
}

/* ---- character classes --------------------------------------------------- */

static int category(cp_t cp) { return (int)utf8proc_category(cp); }

static int is_letter(cp_t cp) { /* \p{L} */
  int c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

static int is_number(cp_t cp) { /* \p{N} */
  int c = category(cp);
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}

/* Python's str.isspace() (what str.split() and \s split on). */
static int py_isspace(cp_t cp) {
  if (cp < 0x80) return (cp >= 9 && cp <= 13) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* BasicTokenizer._is_control: category C*, but not \t \n \r. */
static int is_control(cp_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
  int c = category(cp);
  return c == UTF8PROC_CATEGORY_CN || c >= UTF8PROC_CATEGORY_CC;
}

/* BasicTokenizer._is_whitespace: space, \t \n \r, category Zs. */
static int is_basic_space(cp_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' ||
         category(cp) == UTF8PROC_CATEGORY_ZS;
}

/* BasicTokenizer._is_chinese_char. */
static int is_cjk(cp_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Unicode "Cased" (for Python's final-sigma rule): Lu Ll Lt, plus the
 * Other_Uppercase / Other_Lowercase characters of other categories that are
 * not case-ignorable anyway (ª º, Roman numerals, circled letters). */
static int is_cased(cp_t cp) {
  int c = category(cp);
  if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LT) return 1;
  return cp == 0xAA || cp == 0xBA || (cp >= 0x2160 && cp <= 0x217F) ||
         (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
         (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189);
}

/* Unicode "Case_Ignorable": Mn Me Cf Lm Sk, plus Word_Break MidLetter,
 * MidNumLet and Single_Quote. */
static int is_case_ignorable(cp_t cp) {
  int c = category(cp);
  if (c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME ||
      c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_LM ||
      c == UTF8PROC_CATEGORY_SK)
    return 1;
  switch (cp) {
  case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F:
  case 0x5F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027:
  case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E:
  case 0xFF1A:
    return 1;
  default:
    return 0;
  }
}

/* The regex's IGNORECASE for the ASCII letters it spells out: of lowercase
 * text only U+017F (long s) case-folds to one of them. */
static cp_t fold(cp_t cp) { return cp == 0x17F ? 's' : cp; }

/* ---- errors -------------------------------------------------------------- */

static int fail(char *msg, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t len, int code, const char *fmt, ...) {
  if (msg && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* ---- loading ------------------------------------------------------------- */

/* Reads dir/name into *data (malloc'd, NUL-terminated). Returns 0,
 * VTL_ENOENT (missing), VTL_EIO or VTL_ENOMEM, with msg set. */
static int read_file(const char *dir, const char *name, char **data,
                     size_t *size, char *msg, size_t msglen) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *data = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(msg, msglen, errno == ENOENT ? VTL_ENOENT : VTL_EIO, "%s: %s",
                path, strerror(errno));
  sbuf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (sbuf_add(&b, chunk, n)) {
      fclose(f);
      free(b.v);
      return fail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(b.v);
    return fail(msg, msglen, VTL_EIO, "%s: read error", path);
  }
  if (sbuf_add(&b, "", 0)) {
    free(b.v);
    return fail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
  }
  *data = b.v;
  *size = b.n;
  return 0;
}

/* Parses dir/name as JSON. Returns 0 with *out (NULL when the file is absent
 * and optional), or VTL_E* with msg set. */
static int load_json(const char *dir, const char *name, int optional,
                     json_t **out, char *msg, size_t msglen) {
  char *data;
  size_t size;
  *out = NULL;
  int rc = read_file(dir, name, &data, &size, msg, msglen);
  if (rc == VTL_ENOENT && optional) return 0;
  if (rc) return rc;
  json_error_t e;
  *out = json_loadb(data, size, 0, &e);
  free(data);
  if (!*out)
    return fail(msg, msglen, VTL_EPARSE, "%s/%s:%d:%d: %s", dir, name, e.line,
                e.column, e.text);
  return 0;
}


/* names[id] = s, growing names[] (zero-filled) as needed. */
static int set_name(vtl_tokenizer *tok, int64_t id, const char *s) {
  if (id >= tok->info.vocab_size) {
    const char **p = realloc(tok->names, (size_t)(id + 1) * sizeof *p);
    if (!p) return VTL_ENOMEM;
    memset(p + tok->info.vocab_size, 0,
           (size_t)(id + 1 - tok->info.vocab_size) * sizeof *p);
    tok->names = p;
    tok->info.vocab_size = (int32_t)id + 1;
  }
  tok->names[id] = s;
  return 0;
}

/* vocab.json: {"token": id, ...}; ids are non-negative and below MAX_ID. */
static int load_vocab(vtl_tokenizer *tok, const char *dir, char *msg,
                      size_t msglen) {
  json_t *root;
  int rc = load_json(dir, "vocab.json", 0, &root, msg, msglen);
  if (rc) return rc;
  if (!json_is_object(root) || json_object_size(root) == 0) {
    json_decref(root);
    return fail(msg, msglen, VTL_EPARSE,
                "%s/vocab.json: expected a non-empty object of token -> id",
                dir);
  }
  const char *key;
  json_t *val;
  json_int_t max = -1;
  json_object_foreach(root, key, val) {
    json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
    if (id < 0 || id >= MAX_ID || !*key) {
      rc = fail(msg, msglen, VTL_EPARSE,
                "%s/vocab.json: token \"%.64s\": not a non-empty token with "
                "an integer id in [0, %d)",
                dir, key, MAX_ID);
      json_decref(root); /* after the message: key lives in root */
      return rc;
    }
    if (id > max) max = id;
  }
  tok->vocab = vtl_strmap_create(json_object_size(root));
  tok->names = calloc((size_t)max + 1, sizeof *tok->names);
  if (!tok->vocab || !tok->names) {
    json_decref(root);
    return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  }
  tok->info.vocab_size = (int32_t)max + 1;
  json_object_foreach(root, key, val) {
    const char *stored;
    json_int_t id = json_integer_value(val);
    if (vtl_strmap_put(tok->vocab, key, strlen(key), id, &stored)) {
      json_decref(root);
      return fail(msg, msglen, VTL_ENOMEM, "out of memory");
    }
    tok->names[id] = stored;
  }
  json_decref(root);
  return 0;
}

static int is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* merges.txt as CLIPTokenizer reads it: the file stripped of surrounding
 * whitespace, split on "\n", line 0 (the "#version" header) skipped, at
 * most MERGES_MAX lines; rank = index after the header, a repeated pair
 * keeps its last rank. A blank line takes a rank and merges nothing; any
 * other line must be exactly two symbols. */
static int load_merges(vtl_tokenizer *tok, const char *dir, char *msg,
                       size_t msglen) {
  char *data;
  size_t size;
  int rc = read_file(dir, "merges.txt", &data, &size, msg, msglen);
  if (rc) return rc;
  if (check_utf8(data, size)) {
    free(data);
    return fail(msg, msglen, VTL_EPARSE, "%s/merges.txt: not valid UTF-8",
                dir);
  }
  size_t beg = 0, end = size;
  int line = 1; /* file line number of data[beg] */
  while (beg < end && (is_ascii_space(data[beg]) || data[beg] == '\n'))
    line += data[beg++] == '\n';
  while (end > beg && (is_ascii_space(data[end - 1]) || data[end - 1] == '\n'))
    end--;
  tok->ranks = vtl_strmap_create(MERGES_MAX);
  if (!tok->ranks) {
    free(data);
    return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  }
  sbuf key = {0};
  int index = 0; /* line index after stripping: 0 is the header */
  rc = 0;
  for (size_t p = beg; p < end && index <= MERGES_MAX; index++, line++) {
    const char *nl = memchr(data + p, '\n', end - p);
    size_t e = nl ? (size_t)(nl - data) : end;
    if (index > 0) {
      const char *f[2];
      size_t fl[2];
      int nf = 0;
      for (size_t q = p; q < e;) {
        while (q < e && is_ascii_space(data[q])) q++;
        if (q == e) break;
        size_t s = q;
        while (q < e && !is_ascii_space(data[q])) q++;
        if (nf < 2) {
          f[nf] = data + s;
          fl[nf] = q - s;
        }
        nf++;
      }
      if (nf != 0 && nf != 2) {
        rc = fail(msg, msglen, VTL_EPARSE,
                  "%s/merges.txt:%d: expected two symbols, found %d", dir,
                  line, nf);
        break;
      }
      if (nf == 2) {
        key.n = 0;
        if (sbuf_add(&key, f[0], fl[0]) || sbuf_add(&key, " ", 1) ||
            sbuf_add(&key, f[1], fl[1]) ||
            vtl_strmap_put(tok->ranks, key.v, key.n, index - 1, NULL)) {
          rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
          break;
        }
      }
    }
    p = e + 1;
  }
  free(key.v);
  free(data);
  if (rc) return rc;
  tok->info.merges = index > 0 ? index - 1 : 0;
  if (vtl_strmap_count(tok->ranks) == 0)
    return fail(msg, msglen, VTL_EPARSE, "%s/merges.txt: no merges", dir);
  return 0;
}

/* A token entry of tokenizer_config.json / special_tokens_map.json:
 * "string" or {"content": "string", ...}; NULL when absent, null or "". */
static const char *token_content(json_t *v) {
  if (json_is_object(v)) v = json_object_get(v, "content");
  if (json_is_string(v) && *json_string_value(v)) return json_string_value(v);
  return NULL;
}

/* Registers an added token: content -> id in tok->added, a name for id,
 * and a string to split out of the text (once per content). */
static int add_token(vtl_tokenizer *tok, const char *s, int64_t id) {
  const char *stored;
  size_t len = strlen(s);
  int64_t old;
  int known = vtl_strmap_get(tok->added, s, len, &old);
  if (vtl_strmap_put(tok->added, s, len, id, &stored)) return VTL_ENOMEM;
  if (set_name(tok, id, stored)) return VTL_ENOMEM;
  if (known) {
    for (int i = 0; i < tok->nspecials; i++)
      if (tok->specials[i].str == stored) tok->specials[i].id = (int32_t)id;
    return 0;
  }
  special *p = realloc(tok->specials, (size_t)(tok->nspecials + 1) * sizeof *p);
  if (!p) return VTL_ENOMEM;
  tok->specials = p;
  p[tok->nspecials++] = (special){stored, len, (int32_t)id};
  return 0;
}

static int cmp_special(const void *a, const void *b) {
  const special *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? 1 : -1;
  return strcmp(x->str, y->str);
}

/* bos/eos/pad/unk (tokenizer_config.json, then special_tokens_map.json, then
 * CLIPTokenizer's defaults) and added_tokens_decoder. A special token's id
 * is its added_tokens_decoder id, else its vocab.json id. */
static int load_specials(vtl_tokenizer *tok, const char *dir, char *msg,
                         size_t msglen) {
  static const char *const keys[4] = {"bos_token", "eos_token", "pad_token",
                                      "unk_token"};
  static const char *const defaults[4] = {"<|startoftext|>", "<|endoftext|>",
                                          "<|endoftext|>", "<|endoftext|>"};
  json_t *config = NULL, *map = NULL;
  int rc = load_json(dir, "tokenizer_config.json", 1, &config, msg, msglen);
  if (!rc) rc = load_json(dir, "special_tokens_map.json", 1, &map, msg, msglen);
  if (rc) goto done;
  if ((config && !json_is_object(config)) || (map && !json_is_object(map))) {
    rc = fail(msg, msglen, VTL_EPARSE,
              "%s: tokenizer_config.json or special_tokens_map.json is not a "
              "JSON object",
              dir);
    goto done;
  }
  tok->added = vtl_strmap_create(16);
  if (!tok->added) {
    rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
    goto done;
  }

  /* added_tokens_decoder: {"1066": {"content": "<|startoftext|>", ...}} */
  json_t *dec = config ? json_object_get(config, "added_tokens_decoder") : NULL;
  if (dec && !json_is_object(dec)) {
    rc = fail(msg, msglen, VTL_EPARSE,
              "%s/tokenizer_config.json: added_tokens_decoder is not an object",
              dir);
    goto done;
  }
  const char *idstr;
  json_t *entry;
  json_object_foreach(dec, idstr, entry) {
    char *endp;
    long id = strtol(idstr, &endp, 10);
    const char *content = token_content(entry);
    if (*idstr == '\0' || *endp != '\0' || id < 0 || id >= MAX_ID ||
        !content) {
      rc = fail(msg, msglen, VTL_EPARSE,
                "%s/tokenizer_config.json: added_tokens_decoder entry "
                "\"%.32s\" is not \"id\": {\"content\": \"...\"}",
                dir, idstr);
      goto done;
    }
    if (add_token(tok, content, id)) {
      rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
      goto done;
    }
  }

  int32_t *ids[4] = {&tok->info.bos, &tok->info.eos, &tok->info.pad,
                     &tok->info.unk};
  for (int k = 0; k < 4; k++) {
    const char *s = config ? token_content(json_object_get(config, keys[k]))
                           : NULL;
    if (!s && map) s = token_content(json_object_get(map, keys[k]));
    if (!s) s = defaults[k];
    int64_t id;
    if (!vtl_strmap_get(tok->added, s, strlen(s), &id) &&
        !vtl_strmap_get(tok->vocab, s, strlen(s), &id)) {
      rc = fail(msg, msglen, VTL_EPARSE,
                "%s: %s \"%.64s\" is neither in vocab.json nor in "
                "added_tokens_decoder",
                dir, keys[k], s);
      goto done;
    }
    *ids[k] = (int32_t)id;
    if (add_token(tok, s, id)) { /* special tokens are added tokens too */
      rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
      goto done;
    }
  }
  qsort(tok->specials, (size_t)tok->nspecials, sizeof *tok->specials,
        cmp_special);
  rc = 0;
done:
  json_decref(config);
  json_decref(map);
  return rc;
}

/* GPT-2/CLIP bytes_to_unicode: printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ map to
 * themselves, the other 68 bytes to U+0100.. in byte order. */
static void init_bytes(vtl_tokenizer *tok) {
  int next = 0x100;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                    (b >= 0xAE && b <= 0xFF);
    cp_t cp = printable ? b : next++;
    utf8proc_ssize_t n =
        utf8proc_encode_char(cp, (utf8proc_uint8_t *)tok->bytes[b]);
    tok->bytes[b][n] = '\0';
    tok->bytes_len[b] = (uint8_t)n;
  }
}

int vtl_tokenizer_load(const char *dir, vtl_tokenizer **out, char *msg,
                       size_t msglen) {
  *out = NULL;
  if (msg && msglen) msg[0] = '\0';
  vtl_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  init_bytes(tok);
  int rc = load_vocab(tok, dir, msg, msglen);
  if (!rc) rc = load_merges(tok, dir, msg, msglen);
  if (!rc) rc = load_specials(tok, dir, msg, msglen);
  if (!rc && !(tok->cache = vtl_strmap_create(1024)))
    rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
  if (rc) {
    vtl_tokenizer_free(tok);
    return rc;
  }
  if (msg && msglen) msg[0] = '\0'; /* an optional file's ENOENT text */
  *out = tok;
  return 0;
}

void vtl_tokenizer_free(vtl_tokenizer *tok) {
  if (!tok) return;
  vtl_strmap_release(tok->vocab);
  vtl_strmap_release(tok->added);
  vtl_strmap_release(tok->ranks);
  vtl_strmap_release(tok->cache);
  free(tok->cache_ids);
  free(tok->specials);
  free(tok->names);
  free(tok);
}

const vtl_tokenizer_info *vtl_tokenizer_get_info(const vtl_tokenizer *tok) {
  return &tok->info;
}

const char *vtl_tokenizer_token_str(const vtl_tokenizer *tok, int32_t id) {
  return id >= 0 && id < tok->info.vocab_size ? tok->names[id] : NULL;
}

/* ---- BPE ----------------------------------------------------------------- */

typedef struct {
  size_t off, len; /* bytes of the word string */
  int64_t rank;    /* rank of the pair (this, next), -1: none */
  int fresh;       /* made by the last merge pass */
} span;

/* Scratch buffers of one encode call (reused across pieces and words). */
typedef struct {
  sbuf text;       /* a cleaned piece, UTF-8 */
  cvec cps;        /* the piece after NFC, code points */
  cvec norm;       /* lowercased words joined by ' ' */
  sbuf word;       /* one byte-encoded pre-token, then "</w>" */
  sbuf key;        /* "a b" merge key */
  span *sym, *tmp; /* symbols of the word (symcap, tmpcap) */
  size_t symcap, tmpcap;
} work;

static void work_free(work *w) {
  free(w->text.v);
  free(w->cps.v);
  free(w->norm.v);
  free(w->word.v);
  free(w->key.v);
  free(w->sym);
  free(w->tmp);
}

/* The id of BPE symbol s: an added token's, else vocab.json's, else unk. */
static int32_t symbol_id(const vtl_tokenizer *tok, const char *s, size_t n) {
  int64_t id;
  if (vtl_strmap_get(tok->added, s, n, &id)) return (int32_t)id;
  if (vtl_strmap_get(tok->vocab, s, n, &id)) return (int32_t)id;
  return tok->info.unk;
}

/* Rank of the pair (a, b) of the word, or -1. */
static int64_t pair_rank(const vtl_tokenizer *tok, work *w, span a, span b) {
  w->key.n = 0;
  if (sbuf_add(&w->key, w->word.v + a.off, a.len) ||
      sbuf_add(&w->key, " ", 1) ||
      sbuf_add(&w->key, w->word.v + b.off, b.len))
    return -2;
  int64_t r;
  return vtl_strmap_get(tok->ranks, w->key.v, w->key.n, &r) ? r : -1;
}

static int span_eq(const char *s, span a, span b) {
  return a.len == b.len && memcmp(s + a.off, s + b.off, a.len) == 0;
}

static int cache_put(vtl_tokenizer *tok, const char *word, size_t n,
                     const int32_t *ids, size_t nids) {
  if (vtl_strmap_count(tok->cache) >= CACHE_MAX_WORDS ||
      tok->cache_len + nids > CACHE_MAX_IDS) {
    vtl_strmap_clear(tok->cache);
    tok->cache_len = 0;
  }
  if (nids >= ((size_t)1 << CACHE_N_BITS) || nids > CACHE_MAX_IDS)
    return 0; /* too long to cache: fine, just slower */
  if (reserve((void **)&tok->cache_ids, &tok->cache_cap, tok->cache_len, nids,
              sizeof *tok->cache_ids))
    return VTL_ENOMEM;
  int64_t val = (int64_t)tok->cache_len << CACHE_N_BITS | (int64_t)nids;
  if (vtl_strmap_put(tok->cache, word, n, val, NULL)) return VTL_ENOMEM;
  memcpy(tok->cache_ids + tok->cache_len, ids, nids * sizeof *ids);
  tok->cache_len += nids;
  return 0;
}

/* BPE of the byte-encoded pre-token in w->word (w->word.n bytes): appends
 * its ids to out. CLIPTokenizer.bpe, with its two preset cache entries. */
static int bpe_word(vtl_tokenizer *tok, work *w, ivec *out) {
  const size_t n = w->word.n;
  int64_t val;
  if (vtl_strmap_get(tok->cache, w->word.v, n, &val)) {
    size_t off = (size_t)(val >> CACHE_N_BITS);
    size_t cnt = (size_t)(val & (((int64_t)1 << CACHE_N_BITS) - 1));
    if (RESERVE(out, cnt)) return VTL_ENOMEM;
    memcpy(out->v + out->n, tok->cache_ids + off, cnt * sizeof *out->v);
    out->n += cnt;
    return 0;
  }
  size_t first = out->n;
  if ((n == 15 && memcmp(w->word.v, "<|startoftext|>", 15) == 0) ||
      (n == 13 && memcmp(w->word.v, "<|endoftext|>", 13) == 0)) {
    if (ivec_add(out, symbol_id(tok, w->word.v, n))) return VTL_ENOMEM;
    return cache_put(tok, w->word.v, n, out->v + first, 1);
  }

  /* Symbols: one per character, "</w>" glued to the last. */
  if (reserve((void **)&w->sym, &w->symcap, 0, n, sizeof *w->sym) ||
      reserve((void **)&w->tmp, &w->tmpcap, 0, n, sizeof *w->tmp) ||
      sbuf_add(&w->word, "</w>", 4))
    return VTL_ENOMEM;
  size_t ns = 0;
  for (size_t i = 0; i < n;) {
    cp_t cp;
    size_t k = decode(w->word.v + i, n - i, &cp);
    w->sym[ns++] = (span){i, k, -1, 0};
    i += k;
  }
  w->sym[ns - 1].len += 4;

  for (size_t i = 0; i < ns; i++) {
    w->sym[i].rank = i + 1 < ns ? pair_rank(tok, w, w->sym[i], w->sym[i + 1])
                                : -1;
    if (w->sym[i].rank == -2) return VTL_ENOMEM;
  }

  /* Each pass merges every occurrence of the lowest-ranked pair; only the
   * pairs next to a merged symbol are looked up again. A pass is O(ns),
   * passes are at most the distinct merges that apply. */
  while (ns > 1) {
    int64_t best = -1;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
      int64_t r = w->sym[i].rank;
      if (r >= 0 && (best < 0 || r < best)) {
        best = r;
        bi = i;
      }
    }
    if (best < 0) break;
    span a = w->sym[bi], b = w->sym[bi + 1];
    size_t nt = 0;
    for (size_t i = 0; i < ns;) {
      if (i + 1 < ns && span_eq(w->word.v, w->sym[i], a) &&
          span_eq(w->word.v, w->sym[i + 1], b)) {
        /* Adjacent symbols are adjacent bytes: the merge is one span. */
        w->tmp[nt++] = (span){w->sym[i].off,
                              w->sym[i].len + w->sym[i + 1].len, -1, 1};
        i += 2;
      } else {
        w->tmp[nt] = w->sym[i++];
        w->tmp[nt++].fresh = 0;
      }
    }
    for (size_t j = 0; j < nt; j++) {
      if (j + 1 == nt)
        w->tmp[j].rank = -1;
      else if (w->tmp[j].fresh || w->tmp[j + 1].fresh)
        w->tmp[j].rank = pair_rank(tok, w, w->tmp[j], w->tmp[j + 1]);
      if (w->tmp[j].rank == -2) return VTL_ENOMEM;
    }
    span *t = w->sym;
    size_t tc = w->symcap;
    w->sym = w->tmp;
    w->symcap = w->tmpcap;
    w->tmp = t;
    w->tmpcap = tc;
    ns = nt;
  }
  if (RESERVE(out, ns)) return VTL_ENOMEM;
  for (size_t i = 0; i < ns; i++)
    out->v[out->n++] =
        symbol_id(tok, w->word.v + w->sym[i].off, w->sym[i].len);
  return cache_put(tok, w->word.v, n, out->v + first, ns);
}

/* ---- normalisation and pre-tokenisation ---------------------------------- */

/* Python's str.lower() of word[0..n) appended to out: simple lowercase
 * mappings, U+0130 -> "i\u0307", and capital sigma -> final sigma when a
 * cased letter comes before it and none after it (case-ignorables skipped
 * both ways). */
static int lower_word(const cp_t *word, size_t n, cvec *out) {
  for (size_t i = 0; i < n; i++) {
    cp_t c = word[i];
    if (c == 0x130) {
      if (cvec_add(out, 'i') || cvec_add(out, 0x307)) return VTL_ENOMEM;
      continue;
    }
    if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && is_case_ignorable(word[j - 1])) j--;
      int final = j > 0 && is_cased(word[j - 1]);
      if (final) {
        j = i + 1;
        while (j < n && is_case_ignorable(word[j])) j++;
        final = j == n || !is_cased(word[j]);
      }
      if (cvec_add(out, final ? 0x3C2 : 0x3C3)) return VTL_ENOMEM;
      continue;
    }
    if (cvec_add(out, utf8proc_tolower(c))) return VTL_ENOMEM;
  }
  return 0;
}

/* BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize of
 * the piece s[0..n), joined by single spaces, into w->norm. */
static int normalize(const char *s, size_t n, work *w) {
  w->text.n = 0;
  w->cps.n = 0;
  w->norm.n = 0;
  if (sbuf_add(&w->text, "", 0)) return VTL_ENOMEM;
  for (size_t i = 0; i < n;) {
    cp_t cp;
    i += decode(s + i, n - i, &cp);
    if (cp <= 0 || cp == 0xFFFD || is_control(cp)) continue;
    int rc;
    if (is_basic_space(cp))
      rc = sbuf_add(&w->text, " ", 1);
    else if (is_cjk(cp))
      rc = sbuf_add(&w->text, " ", 1) || sbuf_add_cp(&w->text, cp) ||
           sbuf_add(&w->text, " ", 1);
    else
      rc = sbuf_add_cp(&w->text, cp);
    if (rc) return VTL_ENOMEM;
  }
  if (w->text.n == 0) return 0;

  utf8proc_uint8_t *nfc = NULL;
  utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)w->text.v,
                                    (utf8proc_ssize_t)w->text.n, &nfc,
                                    UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (m < 0) return m == UTF8PROC_ERROR_NOMEM ? VTL_ENOMEM : VTL_EINVAL;
  for (utf8proc_ssize_t i = 0; i < m;) {
    cp_t cp;
    i += (utf8proc_ssize_t)decode((const char *)nfc + i, (size_t)(m - i), &cp);
    if (cvec_add(&w->cps, cp)) {
      free(nfc);
      return VTL_ENOMEM;
    }
  }
  free(nfc);

  for (size_t i = 0; i < w->cps.n;) {
    while (i < w->cps.n && py_isspace(w->cps.v[i])) i++;
    size_t s0 = i;
    while (i < w->cps.n && !py_isspace(w->cps.v[i])) i++;
    if (i == s0) break;
    if (w->norm.n && cvec_add(&w->norm, ' ')) return VTL_ENOMEM;
    if (lower_word(w->cps.v + s0, i - s0, &w->norm)) return VTL_ENOMEM;
  }
  return 0;
}

/* Length of the case-folded literal lit at t[i..n), or 0. */
static size_t match_literal(const cp_t *t, size_t n, size_t i,
                            const char *lit) {
  size_t k = 0;
  for (; lit[k]; k++)
    if (i + k >= n || fold(t[i + k]) != (cp_t)lit[k]) return 0;
  return k;
}

/* Length of CLIP's pre-token regex match at t[i] (t[i] is not a space):
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|
 *   [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+            (IGNORECASE) */
static size_t pretoken_len(const cp_t *t, size_t n, size_t i) {
  size_t k;
  if ((k = match_literal(t, n, i, "<|startoftext|>")) ||
      (k = match_literal(t, n, i, "<|endoftext|>")))
    return k;
  if (t[i] == '\'' && i + 1 < n) {
    cp_t a = fold(t[i + 1]), b = i + 2 < n ? fold(t[i + 2]) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
        (a == 'l' && b == 'l'))
      return 3;
  }
  k = i;
  if (is_letter(t[i])) {
    while (k < n && is_letter(t[k])) k++;
    return k - i;
  }
  if (is_number(t[i])) return 1;
  while (k < n && !py_isspace(t[k]) && !is_letter(t[k]) && !is_number(t[k]))
    k++;
  return k - i;
}

/* Steps 2-5 for one piece between special tokens. */
static int tokenize_piece(vtl_tokenizer *tok, const char *s, size_t n,
                          work *w, ivec *out) {
  int rc = normalize(s, n, w);
  if (rc) return rc;
  const cp_t *t = w->norm.v;
  const size_t tn = w->norm.n;
  for (size_t i = 0; i < tn;) {
    if (py_isspace(t[i])) {
      i++;
      continue;
    }
    size_t k = pretoken_len(t, tn, i);
    w->word.n = 0;
    for (size_t j = i; j < i + k; j++) {
      utf8proc_uint8_t u[4];
      utf8proc_ssize_t m = utf8proc_encode_char(t[j], u);
      for (utf8proc_ssize_t q = 0; q < m; q++)
        if (sbuf_add(&w->word, tok->bytes[u[q]], tok->bytes_len[u[q]]))
          return VTL_ENOMEM;
    }
    if ((rc = bpe_word(tok, w, out))) return rc;
    i += k;
  }
  return 0;
}

/* Step 1 and the rest: the ids of s[0..n) (valid UTF-8) appended to out. */
static int tokenize_text(vtl_tokenizer *tok, const char *s, size_t n, work *w,
                         ivec *out) {
  size_t start = 0;
  for (size_t i = 0; i < n;) {
    const special *sp = NULL;
    for (int k = 0; k < tok->nspecials; k++) { /* longest first */
      const special *c = &tok->specials[k];
      if (c->len <= n - i && c->str[0] == s[i] &&
          memcmp(c->str, s + i, c->len) == 0) {
        sp = c;
        break;
      }
    }
    if (!sp) {
      i++;
      continue;
    }
    int rc = tokenize_piece(tok, s + start, i - start, w, out);
    if (rc || (rc = ivec_add(out, sp->id))) return rc;
    i += sp->len;
    start = i;
  }
  return tokenize_piece(tok, s + start, n - start, w, out);
}

static int check_text(const char *text, size_t *n) {
  *n = strlen(text);
  if (*n > VTL_TOKENIZER_MAX_TEXT) return VTL_ETOOLONG;
  return check_utf8(text, *n);
}

int vtl_tokenizer_tokenize(vtl_tokenizer *tok, const char *text, int32_t **ids,
                           size_t *n) {
  *ids = NULL;
  *n = 0;
  size_t len;
  int rc = check_text(text, &len);
  if (rc) return rc;
  work w = {0};
  ivec out = {0};
  rc = tokenize_text(tok, text, len, &w, &out);
  work_free(&w);
  if (rc || out.n == 0) {
    free(out.v);
    return rc;
  }
  *ids = out.v;
  *n = out.n;
  return 0;
}

/* Step 6: [bos] + ids[:75] + [eos] + pad into win[77]. */
static void frame(const vtl_tokenizer *tok, const int32_t *ids, size_t n,
                  int32_t *win) {
  size_t m = n < VTL_TOKENIZER_CHUNK ? n : VTL_TOKENIZER_CHUNK;
  win[0] = tok->info.bos;
  for (size_t i = 0; i + 1 < VTL_TOKENIZER_CTX; i++)
    win[1 + i] = i < m ? ids[i] : i == m ? tok->info.eos : tok->info.pad;
}

int vtl_tokenizer_encode(vtl_tokenizer *tok, const char *text,
                         int32_t ids[VTL_TOKENIZER_CTX], int *ntokens) {
  int32_t *v;
  size_t n;
  int rc = vtl_tokenizer_tokenize(tok, text, &v, &n);
  if (rc) return rc;
  frame(tok, v, n, ids);
  if (ntokens) *ntokens = (int)n;
  free(v);
  return 0;
}

/* ---- weighting syntax (AUTOMATIC1111's parse_prompt_attention) --------------
 *
 * The prompt is scanned left to right; at each position the first of these
 * that matches is taken (the order of A1111's regex):
 *
 *   \( \) \[ \] \\     the literal character, weight 1.0
 *   \                  (any other backslash) nothing
 *   (  [               open a bracket: remember the segment count
 *   :W)                W = [+-]?[.0-9]+ with optional spaces around it:
 *                      multiply every segment since the innermost open ( by
 *                      W; with no ( open it is literal text
 *   )  ]               close: multiply since the innermost ( by 1.1 or since
 *                      the innermost [ by 1/1.1; literal text when none open
 *   text               a run without \ ( ) [ ] :, split at BREAK
 *   :                  literal text
 *
 * Brackets left open multiply by their factor at the end. Then adjacent
 * segments of equal weight are joined and each is tokenised as one text.
 */

typedef struct {
  sbuf text;  /* UTF-8 */
  double w;   /* weight (double, multiplied in A1111's order) */
  int brk;    /* 1: a BREAK, text empty */
} wseg;

typedef struct {
  wseg *v;
  size_t n, cap;
} wsegs;

static void wsegs_free(wsegs *r) {
  for (size_t i = 0; i < r->n; i++) free(r->v[i].text.v);
  free(r->v);
}

static int seg_push(wsegs *r, const char *s, size_t n, int brk) {
  if (RESERVE(r, 1)) return VTL_ENOMEM;
  wseg *g = &r->v[r->n];
  memset(g, 0, sizeof *g);
  g->w = 1.0;
  g->brk = brk;
  r->n++;
  return sbuf_add(&g->text, s, n);
}

/* The code point before s[i] (UTF-8), or -1 at the start. */
static cp_t cp_before(const char *s, size_t i) {
  if (i == 0) return -1;
  size_t k = i - 1;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
  cp_t cp;
  decode(s + k, i - k, &cp);
  return cp;
}

/* Python's \w (for \b): letters, numbers, underscore. */
static int is_word_cp(cp_t cp) {
  return cp == '_' || (cp >= 0 && (is_letter(cp) || is_number(cp)));
}

/* A text run s[0..n): pushed as segments split at \s*\bBREAK\b\s*, with a
 * break segment for each BREAK. */
static int push_text(wsegs *r, const char *s, size_t n) {
  size_t part = 0;
  for (size_t i = 0; i + 5 <= n; i++) {
    if (memcmp(s + i, "BREAK", 5) != 0) continue;
    cp_t after = -1;
    if (i + 5 < n) decode(s + i + 5, n - i - 5, &after);
    if (is_word_cp(cp_before(s, i)) || is_word_cp(after)) continue;
    size_t ms = i, me = i + 5;
    while (ms > part && py_isspace(cp_before(s, ms))) {
      cp_t c = cp_before(s, ms);
      utf8proc_uint8_t u[4];
      ms -= (size_t)utf8proc_encode_char(c, u);
    }
    while (me < n) {
      cp_t c;
      size_t k = decode(s + me, n - me, &c);
      if (!py_isspace(c)) break;
      me += k;
    }
    if (seg_push(r, s + part, ms - part, 0) || seg_push(r, "", 0, 1))
      return VTL_ENOMEM;
    part = me;
    i = me - 1;
  }
  return seg_push(r, s + part, n - part, 0);
}

/* ":W)" at s[i]: its end in *end and W in *w; 0 when it does not match or W
 * is not a number Python's float() reads. */
static int match_weight(const char *s, size_t n, size_t i, size_t *end,
                        double *w) {
  size_t j = i + 1;
  cp_t c;
  while (j < n && (decode(s + j, n - j, &c), py_isspace(c)))
    j += decode(s + j, n - j, &c);
  size_t num = j;
  if (j < n && (s[j] == '+' || s[j] == '-')) j++;
  size_t digits0 = j;
  while (j < n && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9'))) j++;
  if (j == digits0) return 0;
  size_t numend = j;
  while (j < n && (decode(s + j, n - j, &c), py_isspace(c)))
    j += decode(s + j, n - j, &c);
  if (j >= n || s[j] != ')') return 0;

  /* [+-]? (D+ (. D*)? | . D+), D = [0-9]; read as mantissa / 10^frac. */
  double sign = s[num] == '-' ? -1.0 : 1.0;
  int dots = 0, ndig = 0, frac = 0;
  double mant = 0.0;
  for (size_t k = digits0; k < numend; k++) {
    if (s[k] == '.') {
      dots++;
      continue;
    }
    mant = mant * 10.0 + (s[k] - '0');
    ndig++;
    frac += dots;
  }
  if (dots > 1 || ndig == 0) return 0;
  double p = 1.0;
  for (int k = 0; k < frac; k++) p *= 10.0;
  *w = sign * (mant / p);
  *end = j + 1;
  return 1;
}

static void multiply(wsegs *r, size_t from, double m) {
  for (size_t p = from; p < r->n; p++) r->v[p].w *= m;
}

static int parse_weights(const char *s, size_t n, wsegs *r) {
  const double round_mul = 1.1, square_mul = 1 / 1.1;
  size_t *round = malloc((n + 1) * sizeof *round);
  size_t *square = malloc((n + 1) * sizeof *square);
  size_t nr = 0, nsq = 0;
  int rc = (!round || !square) ? VTL_ENOMEM : 0;
  for (size_t i = 0; i < n && !rc;) {
    char c = s[i];
    size_t end;
    double w;
    if (c == '\\') {
      if (i + 1 < n && strchr("()[]\\", s[i + 1])) {
        rc = seg_push(r, s + i + 1, 1, 0);
        i += 2;
      } else {
        rc = seg_push(r, "", 0, 0);
        i++;
      }
    } else if (c == '(') {
      round[nr++] = r->n;
      i++;
    } else if (c == '[') {
      square[nsq++] = r->n;
      i++;
    } else if (c == ':' && match_weight(s, n, i, &end, &w)) {
      if (nr)
        multiply(r, round[--nr], w);
      else
        rc = push_text(r, s + i, end - i);
      i = end;
    } else if (c == ')' && nr) {
      multiply(r, round[--nr], round_mul);
      i++;
    } else if (c == ']' && nsq) {
      multiply(r, square[--nsq], square_mul);
      i++;
    } else if (c == ':' || c == ')' || c == ']') {
      rc = push_text(r, s + i, 1);
      i++;
    } else {
      size_t j = i;
      while (j < n && !strchr("\\()[]:", s[j])) j++;
      rc = push_text(r, s + i, j - i);
      i = j;
    }
  }
  for (size_t k = 0; k < nr && !rc; k++) multiply(r, round[k], round_mul);
  for (size_t k = 0; k < nsq && !rc; k++) multiply(r, square[k], square_mul);
  free(round);
  free(square);
  if (rc) return rc;
  if (r->n == 0 && (rc = seg_push(r, "", 0, 0))) return rc;

  /* Join runs of equal weight (never across a BREAK). */
  size_t k = 0;
  for (size_t i = 1; i < r->n; i++) {
    wseg *a = &r->v[k], *b = &r->v[i];
    if (!a->brk && !b->brk && a->w == b->w) {
      if (sbuf_add(&a->text, b->text.v, b->text.n)) return VTL_ENOMEM;
      free(b->text.v);
    } else {
      r->v[++k] = *b;
    }
  }
  r->n = k + 1;
  return 0;
}

/* Appends one framed window of chunk ids/weights to out. */
static int add_window(const vtl_tokenizer *tok, vtl_token_windows *out,
                      const int32_t *ids, const float *weights, size_t n) {
  size_t c = (size_t)out->count + 1;
  int32_t *pi = realloc(out->ids, c * VTL_TOKENIZER_CTX * sizeof *pi);
  if (!pi) return VTL_ENOMEM;
  out->ids = pi;
  float *pw = realloc(out->weights, c * VTL_TOKENIZER_CTX * sizeof *pw);
  if (!pw) return VTL_ENOMEM;
  out->weights = pw;
  int32_t *wi = pi + (c - 1) * VTL_TOKENIZER_CTX;
  float *ww = pw + (c - 1) * VTL_TOKENIZER_CTX;
  frame(tok, ids, n, wi);
  for (size_t k = 0; k < VTL_TOKENIZER_CTX; k++)
    ww[k] = k >= 1 && k <= n ? weights[k - 1] : 1.0f;
  out->count = (int)c;
  out->ntokens += (int)n;
  return 0;
}

void vtl_token_windows_free(vtl_token_windows *w) {
  free(w->ids);
  free(w->weights);
  memset(w, 0, sizeof *w);
}

int vtl_tokenizer_encode_weighted(vtl_tokenizer *tok, const char *text,
                                  vtl_token_windows *out) {
  memset(out, 0, sizeof *out);
  size_t len;
  int rc = check_text(text, &len);
  if (rc) return rc;
  wsegs segs = {0};
  work w = {0};
  ivec ids = {0};
  int32_t chunk[VTL_TOKENIZER_CHUNK];
  float cw[VTL_TOKENIZER_CHUNK];
  size_t cn = 0;
  rc = parse_weights(text, len, &segs);
  for (size_t s = 0; s < segs.n && !rc; s++) {
    if (segs.v[s].brk) {
      if (cn) rc = add_window(tok, out, chunk, cw, cn);
      cn = 0;
      continue;
    }
    ids.n = 0;
    rc = tokenize_text(tok, segs.v[s].text.v, segs.v[s].text.n, &w, &ids);
    for (size_t i = 0; i < ids.n && !rc; i++) {
      if (cn == VTL_TOKENIZER_CHUNK) {
        rc = add_window(tok, out, chunk, cw, cn);
        cn = 0;
      }
      chunk[cn] = ids.v[i];
      cw[cn++] = (float)segs.v[s].w;
    }
  }
  if (!rc && (cn || out->count == 0)) rc = add_window(tok, out, chunk, cw, cn);
  wsegs_free(&segs);
  work_free(&w);
  free(ids.v);
  if (rc) vtl_token_windows_free(out);
  return rc;
}
