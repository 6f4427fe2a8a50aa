/* manuscript.c — a film from a text: one prompt clip per sentence or
 * paragraph, as long as it takes to read, crossfading into the next.
 *
 * The pipeline, each step a function below:
 *
 *   bytes ──normalise──▶ LF text ──paragraphs──▶ collapsed paragraphs
 *         ──sentences──▶ units ──layout──▶ ops ──vtl_doc_apply──▶ document
 *
 * 1. normalise: a leading UTF-8 BOM is dropped; CRLF and lone CR become LF;
 *    every other control character (tab, NUL, ...) becomes a space. The
 *    text must be valid UTF-8 (no overlongs, surrogates or > U+10FFFF):
 *    otherwise "manuscript: line N: not valid UTF-8".
 * 2. paragraphs: a run of whitespace holding two or more line breaks (a
 *    blank line, with or without spaces on it) separates paragraphs; every
 *    other run of whitespace collapses to one space. Only ASCII whitespace
 *    counts: U+00A0 is a *non-breaking* space and stays.
 * 3. sentences (VTL_SPLIT_SENTENCE): a sentence ends after a run of
 *    terminators ( . ! ? … ‼ ⁇ ⁈ ⁉ ؟ ۔ । ॥ ) and any closing quotes or
 *    brackets after it ( " ' ) ] } ” ’ » › 」 』 ） 】 》 ), when a space or
 *    the paragraph's end follows. The CJK full-width terminators 。！？ end a
 *    sentence with no space after them. A single "." does not end one after
 *    an abbreviation of `abbrevs` ("Mr.", "e.g."), after one capital letter
 *    (initials: "J. R. R. Tolkien") or after a number that opens the
 *    sentence (a numbered list: "1. Dawn").
 * 4. layout: a unit of w words lasts d = max(min_seconds, w / words_per_sec)
 *    seconds, round(d * fps) frames (at least 1). Units are laid end to end
 *    from frame 0: unit i owns [S_i, S_i + d_i), and the timeline's length
 *    is the sum. Words are whitespace-separated tokens; in a token written
 *    without spaces (Chinese, Japanese) every two ideographs or kana count
 *    as one word.
 *
 *    Crossfade between unit i and i+1 (f = min(fade, d_{i+1}) frames):
 *
 *        S_i                 S_{i+1}      S_{i+1}+f
 *         |====== clip i ==========\ fade_out = f
 *                             / fade_in = f ===== clip i+1 ====...
 *
 *    Clip i ends f frames into unit i+1's slot, so at S_{i+1} + k
 *    (0 <= k < f) the weights are (f-k)/f and k/f: they sum to 1 and move
 *    linearly (eval.c rule 4). f <= d_{i+1} keeps every frame in at most
 *    two clips. The first clip has no fade-in, the last no fade-out.
 * 5. ops: the Timeline's name (the text's first words), fps and length; a
 *    prompt track (id 2); the clips (ids 3 ...); a Marker at the first frame
 *    of every paragraph labelled with its first words. A text longer than
 *    VTL_MAX_TEXT is cut at a word boundary if there is one in the last
 *    half, else at a character boundary; its reading time is the whole
 *    text's.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vtl_import.h"

#define fail vtl__errorf

#define DEF_FPS 12.0          /* the Timeline's default (fields.c) */
#define DEF_WORDS_PER_SEC 2.5 /* vtl_import.h */
#define DEF_MIN_SECONDS 2.0
#define LABEL_WORDS 6         /* first words in marker labels and the name */
#define LABEL_BYTES 64

/* Abbreviations after which a single "." does not end a sentence: compared
 * lower-case, without the final dot. Words that often end sentences ("etc",
 * "no", "inc") are left out on purpose. */
static const char *const abbrevs[] = {
  "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "vs",
  "cf", "e.g", "i.e", "viz", "fig", "figs", "vol", "pp", "capt", "col",
  "gen", "lt", "sgt", "rev", "hon", "approx", NULL};

/* ---- UTF-8 ------------------------------------------------------------------- */

/* Decodes one code point at p (avail > 0 bytes). Returns its length in
 * bytes and sets *cp, or 0 if the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *p, size_t avail, uint32_t *cp) {
  uint32_t c = p[0];
  size_t n;
  uint32_t min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2, min = 0x80, c &= 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, min = 0x800, c &= 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, c &= 0x07;
  } else {
    return 0;
  }
  if (avail < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return n;
}

/* Code point at s[i] of a NUL-terminated valid UTF-8 string; *len gets its
 * byte length (0 at the end). */
static uint32_t cp_at(const char *s, size_t n, size_t i, size_t *len) {
  uint32_t cp = 0;
  *len = i < n ? utf8_decode((const unsigned char *)s + i, n - i, &cp) : 0;
  return cp;
}

static bool is_terminator(uint32_t c) {
  switch (c) {
  case '.': case '!': case '?':
  case 0x2026: /* … */ case 0x203c: case 0x2047: case 0x2048: case 0x2049:
  case 0x061f: /* Arabic ? */ case 0x06d4: /* Urdu . */
  case 0x0964: case 0x0965: /* danda */
  case 0x3002: case 0xff01: case 0xff1f: /* 。！？ */
    return true;
  default:
    return false;
  }
}

/* Full-width terminators: CJK text puts no space after them. */
static bool is_cjk_terminator(uint32_t c) {
  return c == 0x3002 || c == 0xff01 || c == 0xff1f;
}

static bool is_closer(uint32_t c) {
  switch (c) {
  case '"': case '\'': case ')': case ']': case '}':
  case 0x201d: case 0x2019: case 0x00bb: case 0x203a: /* ” ’ » › */
  case 0x300d: case 0x300f: case 0xff09: case 0x3011: case 0x300b:
    return true;
  default:
    return false;
  }
}

static bool is_opener(uint32_t c) {
  switch (c) {
  case '"': case '\'': case '(': case '[': case '{':
  case 0x201c: case 0x2018: case 0x00ab: case 0x2039: /* “ ‘ « ‹ */
  case 0x00bf: case 0x00a1: /* ¿ ¡ */
    return true;
  default:
    return false;
  }
}

/* Ideographs and kana: scripts written without spaces between words. */
static bool is_cjk(uint32_t c) {
  return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) ||
         (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff);
}

/* ---- a growable byte buffer ---------------------------------------------------- */

typedef struct {
  char *s;    /* is malloc'd, NUL-terminated when n > 0 */
  size_t n, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *ns = realloc(b->s, cap);
    if (!ns) return VTL_ENOMEM;
    b->s = ns;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
  return 0;
}

/* ---- 1. normalise ---------------------------------------------------------------- */

/* Text without BOM, with LF line ends, other controls as spaces, checked
 * UTF-8. Returns 0 with out->s malloc'd (may be NULL when empty). */
static int normalise(const char *text, size_t len, buf *out, vtl_error *err) {
  const unsigned char *p = (const unsigned char *)text;
  size_t i = 0;
  long line = 1;
  if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) i = 3;
  while (i < len) {
    unsigned char c = p[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < len && p[i + 1] == '\n') i++;
      line++;
      if (buf_put(out, "\n", 1)) return fail(err, VTL_ENOMEM, "out of memory");
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      if (buf_put(out, " ", 1)) return fail(err, VTL_ENOMEM, "out of memory");
      i++;
    } else {
      uint32_t cp;
      size_t n = utf8_decode(p + i, len - i, &cp);
      if (!n)
        return fail(err, VTL_EINVAL, "manuscript: line %ld: not valid UTF-8",
                    line);
      if (buf_put(out, text + i, n)) return fail(err, VTL_ENOMEM, "out of memory");
      i += n;
    }
  }
  return 0;
}

/* ---- 2. paragraphs, 3. sentences ------------------------------------------------- */

typedef struct {
  char *text;        /* is malloc'd: collapsed, the whole unit */
  size_t words;      /* reading words */
  size_t para;       /* paragraph index, 0-based */
  bool para_start;   /* first unit of its paragraph */
} unit;

typedef struct {
  unit *u;           /* is malloc'd */
  size_t n, cap;
  size_t nparas;
} unit_list;

static void units_free(unit_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->u[i].text);
  free(l->u);
}

/* Reading words of s[0..n) (collapsed: single spaces). */
static size_t count_words(const char *s, size_t n) {
  size_t words = 0, i = 0;
  while (i < n) {
    while (i < n && s[i] == ' ') i++;
    if (i == n) break;
    size_t cjk = 0, len;
    while (i < n && s[i] != ' ') {
      uint32_t c = cp_at(s, n, i, &len);
      if (is_cjk(c)) cjk++;
      i += len ? len : 1;
    }
    words += cjk > 1 ? (cjk + 1) / 2 : 1;
  }
  return words;
}

/* Appends s[0..n) (trimmed of spaces) as a unit; empty input adds nothing. */
static int unit_add(unit_list *l, const char *s, size_t n, size_t para,
                    bool *first) {
  while (n && *s == ' ') s++, n--;
  while (n && s[n - 1] == ' ') n--;
  if (!n) return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    unit *u = realloc(l->u, cap * sizeof *u);
    if (!u) return VTL_ENOMEM;
    l->u = u;
    l->cap = cap;
  }
  char *t = malloc(n + 1);
  if (!t) return VTL_ENOMEM;
  memcpy(t, s, n);
  t[n] = '\0';
  l->u[l->n++] = (unit){t, count_words(t, n), para, *first};
  *first = false;
  return 0;
}

/* True if the "." at p[dot] follows an abbreviation, an initial or a
 * sentence-opening number (sentence starts at p[start]). */
static bool dot_is_abbrev(const char *p, size_t n, size_t start, size_t dot) {
  size_t w = dot;
  while (w > start && p[w - 1] != ' ') w--;
  bool opens_sentence = w == start;
  /* skip opening quotes and brackets */
  for (;;) {
    size_t len;
    uint32_t c = cp_at(p, n, w, &len);
    if (w >= dot || !is_opener(c)) break;
    w += len;
  }
  size_t tl = dot - w;
  if (tl == 0) return false;
  if (tl == 1 && p[w] >= 'A' && p[w] <= 'Z') return true;
  if (opens_sentence) {
    size_t d = 0;
    while (d < tl && p[w + d] >= '0' && p[w + d] <= '9') d++;
    if (d == tl) return true;
  }
  char tok[8];
  if (tl >= sizeof tok) return false;
  for (size_t i = 0; i < tl; i++) {
    char c = p[w + i];
    tok[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  tok[tl] = '\0';
  for (int i = 0; abbrevs[i]; i++)
    if (strcmp(tok, abbrevs[i]) == 0) return true;
  return false;
}

/* Splits the collapsed paragraph p[0..n) into sentence units. */
static int split_sentences(unit_list *l, const char *p, size_t n, size_t para,
                           bool *first) {
  size_t start = 0, i = 0, len;
  while (i < n) {
    uint32_t c = cp_at(p, n, i, &len);
    if (!is_terminator(c)) {
      i += len;
      continue;
    }
    size_t j = i, nterm = 0;
    bool only_dots = true, cjk = false;
    while (j < n && is_terminator(c = cp_at(p, n, j, &len))) {
      only_dots &= c == '.';
      cjk |= is_cjk_terminator(c);
      nterm++;
      j += len;
    }
    while (j < n && is_closer(cp_at(p, n, j, &len))) j += len;
    bool end = j == n || p[j] == ' ' || cjk;
    if (end && only_dots && nterm == 1 && dot_is_abbrev(p, n, start, i))
      end = false;
    if (end) {
      int rc = unit_add(l, p + start, j - start, para, first);
      if (rc) return rc;
      start = j;
      while (start < n && p[start] == ' ') start++;
    }
    i = j;
  }
  return unit_add(l, p + start, n - start, para, first);
}

/* Collapses whitespace, cuts paragraphs and, per split, units. */
static int make_units(const char *s, size_t n, vtl_split split, unit_list *l) {
  buf para = {0};
  int rc = 0;
  size_t i = 0;
  while (i <= n && !rc) {
    /* a whitespace run: count its line breaks */
    size_t breaks = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\n')) breaks += s[i++] == '\n';
    if ((i == n || breaks >= 2) && para.n) {
      bool first = true;
      rc = split == VTL_SPLIT_SENTENCE
               ? split_sentences(l, para.s, para.n, l->nparas, &first)
               : unit_add(l, para.s, para.n, l->nparas, &first);
      l->nparas++;
      para.n = 0;
    }
    if (i == n || rc) break;
    if (para.n) rc = buf_put(&para, " ", 1);
    size_t w = i;
    while (i < n && s[i] != ' ' && s[i] != '\n') i++;
    if (!rc) rc = buf_put(&para, s + w, i - w);
  }
  free(para.s);
  return rc;
}

/* ---- names and cuts ---------------------------------------------------------------- */

/* Largest length <= max that ends on a character boundary of s. */
static size_t utf8_floor(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) max--;
  return max;
}

/* Length of s cut to at most max bytes: at the last space in the second
 * half when there is one, else at a character boundary. */
static size_t cut_text(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max) return n;
  size_t cut = utf8_floor(s, n, max);
  for (size_t i = cut; i > max / 2; i--)
    if (s[i] == ' ') {
      cut = i;
      break;
    }
  while (cut && s[cut - 1] == ' ') cut--;
  return cut;
}

/* The first LABEL_WORDS words of s, at most LABEL_BYTES bytes, trailing
 * , ; : dropped, and when s goes on "…" in place of a trailing ".".
 * out has LABEL_BYTES + 4 bytes. */
static void first_words(const char *s, char *out) {
  size_t n = strlen(s), i = 0, end = 0;
  int words = 0;
  while (i < n && words < LABEL_WORDS) {
    size_t w = i;
    while (w < n && s[w] != ' ') w++;
    if (w > LABEL_BYTES) {
      if (words == 0) end = utf8_floor(s, n, LABEL_BYTES);
      break;
    }
    end = w;
    words++;
    i = w + 1;
  }
  bool more = end < n;
  while (end && (s[end - 1] == ',' || s[end - 1] == ';' || s[end - 1] == ':' ||
                 (more && s[end - 1] == '.')))
    end--;
  memcpy(out, s, end);
  strcpy(out + end, more ? "\xe2\x80\xa6" : "");
}

/* First words of unit i and what follows it (the next unit when `across`
 * or when it is in the same paragraph), for names and labels. */
static int lead_words(const unit_list *l, size_t i, bool across, char *out) {
  const unit *u = &l->u[i];
  if (i + 1 == l->n || (!across && l->u[i + 1].para != u->para)) {
    first_words(u->text, out);
    return 0;
  }
  size_t a = strlen(u->text), b = strlen(l->u[i + 1].text);
  char *s = malloc(a + b + 2);
  if (!s) return VTL_ENOMEM;
  memcpy(s, u->text, a);
  s[a] = ' ';
  memcpy(s + a + 1, l->u[i + 1].text, b + 1);
  first_words(s, out);
  free(s);
  return 0;
}

/* ---- 4. layout, 5. ops ----------------------------------------------------------------- */

typedef struct {
  double fps, words_per_sec, min_seconds;
  int64_t fade;
  vtl_split split;
} options;

static int check_options(const vtl_manuscript_options *opt, options *o,
                         vtl_error *err) {
  vtl_manuscript_options z = {0};
  if (!opt) opt = &z;
  o->split = opt->split;
  if (o->split != VTL_SPLIT_SENTENCE && o->split != VTL_SPLIT_PARAGRAPH)
    return fail(err, VTL_EINVAL, "manuscript: split: expected sentence or "
                "paragraph");
  o->fps = opt->fps == 0 ? DEF_FPS : opt->fps;
  if (!(o->fps >= 1 && o->fps <= 240))
    return fail(err, VTL_ERANGE, "manuscript: fps %g is outside 1..240",
                opt->fps);
  o->words_per_sec = opt->words_per_sec == 0 ? DEF_WORDS_PER_SEC
                                             : opt->words_per_sec;
  if (!(o->words_per_sec > 0 && isfinite(o->words_per_sec)))
    return fail(err, VTL_ERANGE, "manuscript: words_per_sec %g must be > 0",
                opt->words_per_sec);
  o->min_seconds = opt->min_seconds == 0 ? DEF_MIN_SECONDS : opt->min_seconds;
  if (!(o->min_seconds > 0 && isfinite(o->min_seconds)))
    return fail(err, VTL_ERANGE, "manuscript: min_seconds %g must be > 0",
                opt->min_seconds);
  /* 0: half a second; negative: hard cuts */
  o->fade = opt->fade == 0 ? llround(o->fps / 2) : opt->fade < 0 ? 0 : opt->fade;
  return 0;
}

static int build_ops(const unit_list *l, const options *o, vtl_op_list *ops,
                     vtl_error *err) {
  const vtl_id track = 2, first_clip = 3;
  const vtl_id first_marker = first_clip + l->n;
  int64_t *dur = malloc(l->n * sizeof *dur);
  char *cut = NULL;
  int rc = 0;
  if (!dur) return fail(err, VTL_ENOMEM, "out of memory");
  /* durations; the length is their sum, checked as it grows */
  int64_t length = 0;
  for (size_t i = 0; i < l->n; i++) {
    double sec = fmax(o->min_seconds, (double)l->u[i].words / o->words_per_sec);
    double d = fmax(1, round(sec * o->fps));
    if ((double)length + d > VTL_MAX_FRAMES) {
      free(dur);
      return fail(err, VTL_ERANGE, "manuscript: %s %zu of %zu would make the "
                  "film longer than %d frames at %g fps; raise words_per_sec "
                  "or lower fps", o->split == VTL_SPLIT_SENTENCE ? "sentence"
                  : "paragraph", i + 1, l->n, VTL_MAX_FRAMES, o->fps);
    }
    dur[i] = (int64_t)d;
    length += dur[i];
  }
  char name[LABEL_BYTES + 4];
  if (lead_words(l, 0, true, name)) goto nomem;
  vtl_op *op;
#define PUSH(expr)                                                           \
  do {                                                                       \
    if (!(op = vtl_op_list_push(ops)) || (expr)) goto nomem;                             \
  } while (0)
  PUSH(vtl_op_set_str(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "name", name));
  PUSH(vtl_op_set_real(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "fps", o->fps));
  PUSH(vtl_op_set_int(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "length", length));
  PUSH(vtl_op_create(op, VTL_ENT_TRACK, track) ||
       vtl_op_add_str(op, "name", "manuscript") ||
       vtl_op_add_int(op, "target", VTL_TARGET_PROMPT));
  int64_t start = 0, fade_in = 0;
  vtl_id marker = first_marker;
  for (size_t i = 0; i < l->n; i++) {
    const unit *u = &l->u[i];
    int64_t fade_out = 0;
    if (i + 1 < l->n) fade_out = o->fade < dur[i + 1] ? o->fade : dur[i + 1];
    size_t tl = cut_text(u->text, VTL_MAX_TEXT);
    free(cut);
    if (!(cut = malloc(tl + 1))) goto nomem;
    memcpy(cut, u->text, tl);
    cut[tl] = '\0';
    PUSH(vtl_op_create(op, VTL_ENT_PROMPT_CLIP, first_clip + i) ||
         vtl_op_add_int(op, "track", (int64_t)track) ||
         vtl_op_add_int(op, "start", start) ||
         vtl_op_add_int(op, "end", start + dur[i] + fade_out) ||
         vtl_op_add_str(op, "text", cut) ||
         vtl_op_add_int(op, "fade_in", fade_in) ||
         vtl_op_add_int(op, "fade_out", fade_out));
    if (u->para_start) {
      char label[LABEL_BYTES + 4], note[32];
      if (lead_words(l, i, false, label)) goto nomem;
      snprintf(note, sizeof note, "paragraph %zu", u->para + 1);
      PUSH(vtl_op_create(op, VTL_ENT_MARKER, marker++) ||
           vtl_op_add_int(op, "frame", start) ||
           vtl_op_add_str(op, "label", label) ||
           vtl_op_add_str(op, "note", note));
    }
    start += dur[i];
    fade_in = fade_out;
  }
#undef PUSH
  goto done;
nomem:
  rc = fail(err, VTL_ENOMEM, "out of memory");
done:
  free(cut);
  free(dur);
  return rc;
}

int vtl_manuscript_import(const char *text, size_t len,
                          const vtl_manuscript_options *opt, vtl_doc **out,
                          vtl_error *err) {
  if (err) *err = (vtl_error){.op_index = -1};
  if (!out || (!text && len))
    return fail(err, VTL_EINVAL, "manuscript: no text or no output");
  options o = {0};
  int rc = check_options(opt, &o, err);
  if (rc) return rc;
  buf norm = {0};
  unit_list units = {0};
  vtl_op_list ops = {0};
  vtl_doc *doc = NULL;
  if ((rc = normalise(text ? text : "", len, &norm, err))) goto done;
  if (make_units(norm.s ? norm.s : "", norm.n, o.split, &units)) {
    rc = fail(err, VTL_ENOMEM, "out of memory");
    goto done;
  }
  if (units.n == 0) {
    rc = fail(err, VTL_EINVAL, "manuscript: no text");
    goto done;
  }
  if (units.n > VTL_MAX_CLIPS) {
    rc = fail(err, VTL_ELIMIT, "manuscript: %zu %s, more than the %d clips "
              "a film holds", units.n, o.split == VTL_SPLIT_SENTENCE
              ? "sentences" : "paragraphs", VTL_MAX_CLIPS);
    goto done;
  }
  if ((rc = build_ops(&units, &o, &ops, err))) goto done;
  if ((rc = vtl_doc_new(&doc))) {
    fail(err, rc, "out of memory");
    goto done;
  }
  vtl_error aerr;
  if ((rc = vtl_doc_apply(doc, ops.ops, ops.n, NULL, NULL, &aerr)))
    fail(err, rc, "manuscript: %s", aerr.message);
done:
  vtl_ops_free(ops.ops, ops.n);
  units_free(&units);
  free(norm.s);
  if (rc) {
    vtl_doc_free(doc);
    return rc;
  }
  *out = doc;
  return 0;
}
