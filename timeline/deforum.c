/* deforum.c — Deforum settings files to documents, and back (docs/deforum.md).
 *
 * Deforum (the Colab notebook deforum-stable-diffusion and the AUTOMATIC1111
 * extension sd-webui-deforum) saves its settings as one flat JSON object.
 * Its animation parameters are "schedules": strings of keys
 *
 *   "0: (1.0), 30: (1.0+0.002*sin(1.25*3.14*t/30)), max_f-10: (0.9)"
 *    ^frame ^value                                   ^frame expression (A1111)
 *
 * that Deforum expands to one value per frame (get_inbetweens):
 *   1. A value that is a plain number (after removing parentheses and
 *      quotes it matches [+-]?[0-9]*(\.[0-9]+)?) is set at its frame and
 *      linearly interpolated with its neighbours (pandas interpolate).
 *   2. Any other value is a numexpr expression of t (the frame), max_f
 *      (max_frames - 1) and s (the seed), evaluated at EVERY frame from its
 *      key up to the next key. Note "1e-3", "1." and "( 1 )" are
 *      expressions (held), not numbers (interpolated).
 *   3. Before the first key: the first value; after the last: the last.
 *      Keys at negative frames or at/after max_frames are ignored.
 * vtl keyframes say the same thing (eval.c rule 2): a numeric key becomes a
 * LINEAR keyframe with that value; an expression key a keyframe whose expr
 * is the expression rewritten as Lua (expr.h), with `value` its value at
 * the key's own frame (the fallback if it ever fails).
 *
 * Mapping (Deforum key -> vtl), in the order import reads them:
 *
 *   KEY                        VTL                     NOTE
 *   animation_mode             timeline.anim_mode      2D, 3D; Interpolation
 *                                                      -> 2D, strength 1,
 *                                                      blended prompts;
 *                                                      None, Video Input:
 *                                                      refused (UNSUPPORTED)
 *   max_frames                 timeline.length         required
 *   W, H                       width, height           floored to x8, warned
 *   fps                        fps                     default 15 (A1111) /
 *                                                      12 (Colab), warned
 *   seed                       seed                    -1: FNV-1a of the file
 *   seed_behavior, seed_iter_N seed_mode, seed_iter_n  random: not reproducible
 *   sampler                    sampler                 see samplers[]
 *   steps                      steps                   timeline constant
 *   scale (Colab)              guidance                timeline constant
 *   strength                   strength = 1 - strength only without
 *                                                      strength_schedule
 *   batch_name, sd_model_name  name, model
 *   diffusion_cadence          a "cadence" track       when != 1
 *   angle zoom translation_x/y/z rotation_3d_x/y/z     tracks of that name
 *   fov_schedule near_schedule far_schedule            fov, near, far
 *     (Colab: fov, near_plane, far_plane constants)
 *   noise_schedule contrast_schedule                   noise, contrast
 *   cfg_scale_schedule         guidance
 *   steps_schedule             steps                   if enable_steps_
 *                                                      scheduling (A1111) or
 *                                                      present (Colab)
 *   seed_schedule              seed                    if seed_behavior is
 *                                                      schedule
 *   strength_schedule          strength                vtl = 1 - Deforum
 *                                                      (expressions wrapped
 *                                                      as 1-(...))
 *   animation_prompts | prompts  one prompt track      "--neg" splits text
 *     + animation_prompts_positive|positive_prompts    prepended to each
 *     + animation_prompts_negative|negative_prompts    appended to negatives
 *   cond_prompts, uncond_prompts (Colab 0.7.1)         text / negative
 *
 * A schedule that is one numeric key folds into the timeline field where
 * there is one (guidance, steps, strength) and is dropped when it equals
 * the parameter's default; otherwise it becomes a track. Every other key of
 * the file is listed in a warning (unsupported / ignored / unknown).
 *
 * The importer builds the document as one batch of ops (ids minted 2, 3,
 * ... in reading order) applied to a fresh document, so the result is a
 * pure function of the file bytes and the options.
 *
 * Export writes every schedule from the track that drives it so that
 * Deforum computes vtl's value at every frame: linear keys as numbers, hold
 * keys as two numbers, expressions as numexpr when an evaluator with
 * numexpr's semantics (nx_evaluate) agrees with vtl on every frame, and
 * everything else (bezier, ease, Lua-only expressions) as one number per
 * frame, with a warning.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "vtl_import.h"

#define SEED_MAX 4294967295.0

/* ---- small helpers --------------------------------------------------------- */

/* Fills err (may be NULL); returns code. */
static int dfail(vtl_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int dfail(vtl_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->op_index = -1;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* A growable string. On allocation failure `oom` is set and further
 * appends are dropped, so callers check once at the end. */
typedef struct {
  char *p;     /* malloc'd, NUL-terminated when n > 0 */
  size_t n;    /* bytes used, without the NUL */
  size_t cap;
  bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    sb_putn(b, tmp, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_putn(b, big, (size_t)n);
  free(big);
}

static const char *sb_str(const sbuf *b) { return b->p ? b->p : ""; }

static char *xstrndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* Copies s (n bytes) into out for a message: whitespace runs collapsed,
 * cut at 40 bytes with "..." appended. */
static void snippet(char *out, size_t outlen, const char *s, size_t n) {
  size_t j = 0;
  bool space = false;
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  for (size_t i = 0; i < n && j + 4 < outlen; i++) {
    if (j >= 40) {
      memcpy(out + j, "...", 3);
      j += 3;
      break;
    }
    if (isspace((unsigned char)s[i])) {
      if (!space) out[j++] = ' ';
      space = true;
      continue;
    }
    space = false;
    out[j++] = s[i];
  }
  out[j] = '\0';
}

static const char *jtype(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* Deforum's check_is_number(): [+-]?[0-9]*(\.[0-9]+)? with at least one
 * digit, after A1111's removal of parentheses and quotes; spaces inside
 * make it an expression, as in Deforum. */
static bool is_plain_number(const char *s, size_t n, double *out) {
  char buf[64];
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '(' || c == ')' || c == '\'' || c == '"') continue;
    if (j + 1 >= sizeof buf) return false;
    buf[j++] = c;
  }
  buf[j] = '\0';
  char *p = buf;
  const char *q = p;
  if (*q == '+' || *q == '-') q++;
  size_t digits = 0;
  while (isdigit((unsigned char)*q)) q++, digits++;
  if (*q == '.') {
    q++;
    size_t frac = 0;
    while (isdigit((unsigned char)*q)) q++, frac++;
    if (frac == 0) return false;
    digits += frac;
  }
  if (*q || digits == 0) return false;
  *out = strtod(p, NULL);
  return isfinite(*out);
}

/* Shortest decimal that reads back as v (through 1 - x when `invert`), in
 * plain notation: Deforum treats "1e-05" as an expression, not a number. */
static void fmt_num(char *out, size_t outlen, double v, bool invert) {
  double d = invert ? 1 - v : v;
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*g", p, d);
    double x = strtod(tmp, NULL);
    if ((invert ? 1 - x : x) == v) break;
  }
  /* tmp is [-]D[.DDD][e[+-]XX]: rewrite it without the exponent */
  const char *p = tmp;
  bool neg = *p == '-';
  if (neg) p++;
  char digits[40];
  size_t nd = 0;
  int point = -1, exp10 = 0;
  for (; *p && *p != 'e'; p++) {
    if (*p == '.') point = (int)nd;
    else digits[nd++] = *p;
  }
  if (*p == 'e') exp10 = atoi(p + 1);
  if (point < 0) point = (int)nd;
  int pos = point + exp10; /* digits before the decimal point */
  char res[400];
  size_t j = 0;
  if (neg) res[j++] = '-';
  if (pos <= 0) {
    res[j++] = '0';
    res[j++] = '.';
    for (int i = 0; i < -pos && j < sizeof res - 40; i++) res[j++] = '0';
    for (size_t i = 0; i < nd; i++) res[j++] = digits[i];
  } else if ((size_t)pos >= nd) {
    for (size_t i = 0; i < nd; i++) res[j++] = digits[i];
    for (size_t i = nd; i < (size_t)pos && j < sizeof res - 2; i++)
      res[j++] = '0';
  } else {
    for (size_t i = 0; i < nd; i++) {
      if ((int)i == pos) res[j++] = '.';
      res[j++] = digits[i];
    }
  }
  res[j] = '\0';
  /* trailing zeros after a point (not produced by %g, but be safe) */
  if (strchr(res, '.')) {
    while (j > 0 && res[j - 1] == '0') res[--j] = '\0';
    if (j > 0 && res[j - 1] == '.') res[--j] = '\0';
  }
  if (strcmp(res, "-0") == 0) strcpy(res, "0");
  snprintf(out, outlen, "%s", res);
}

/* ---- numexpr, evaluated the way Deforum's numexpr does ------------------------
 * Deforum evaluates schedule values, frame keys and prompt keys with
 * numexpr, which follows Python: ints stay ints (t % 7 is C's remainder on
 * negative ints, Python's floor modulo on floats), / is true division,
 * comparisons give booleans, & | ~ are logical on booleans and bitwise on
 * ints, and the precedences are Python's (comparisons bind looser than
 * |). vtl evaluates the Lua rewrite instead; this evaluator lets import
 * check, frame by frame, that both agree, and lets export prove that what
 * it writes gives Deforum the values vtl has.
 *
 *   cmp   := bor [('<'|'<='|'>'|'>='|'=='|'!=') bor]
 *   bor   := band ('|' band)*
 *   band  := shift ('&' shift)*
 *   shift := sum (('<<'|'>>') sum)*
 *   sum   := prod (('+'|'-') prod)*
 *   prod  := unary (('*'|'/'|'%') unary)*
 *   unary := ('-'|'+'|'~') unary | power
 *   power := atom ['**' unary]
 *   atom  := number | name | func '(' cmp (',' cmp)* ')' | '(' cmp ')'
 */

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

enum { NX_BOOL, NX_INT, NX_FLOAT };

typedef struct {
  int type;  /* NX_* */
  double v;  /* ints are whole numbers held exactly (|v| < 2^53) */
} nxval;

typedef struct {
  const char *p, *end;
  bool has_t;        /* t is defined (schedule values, not frame keys) */
  double t, max_f, seed;
  const char *err;   /* static message, NULL while fine */
} nxeval;

static nxval nx_cmp(nxeval *c);

static void nx_ws(nxeval *c) {
  while (c->p < c->end && isspace((unsigned char)*c->p)) c->p++;
}

static bool nx_op(nxeval *c, const char *op) {
  nx_ws(c);
  size_t n = strlen(op);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, op, n) != 0) return false;
  /* "*" must not match the first half of "**", nor "<" of "<=" / "<<" */
  if (n == 1 && c->p + 1 < c->end &&
      ((op[0] == '*' && c->p[1] == '*') ||
       ((op[0] == '<' || op[0] == '>') && (c->p[1] == '=' || c->p[1] == op[0]))))
    return false;
  c->p += n;
  return true;
}

static nxval nx_fail(nxeval *c, const char *msg) {
  if (!c->err) c->err = msg;
  return (nxval){NX_FLOAT, NAN};
}

static bool nx_isint(nxval x) { return x.type != NX_FLOAT; }

static nxval nx_call(nxeval *c, const char *name, size_t n) {
  nxval a[3];
  int na = 0;
  if (!nx_op(c, "(")) return nx_fail(c, "expected '('");
  if (!nx_op(c, ")")) {
    do {
      if (na == 3) return nx_fail(c, "too many arguments");
      a[na++] = nx_cmp(c);
    } while (nx_op(c, ","));
    if (!nx_op(c, ")")) return nx_fail(c, "expected ')'");
  }
  if (c->err) return nx_fail(c, c->err);
#define IS(s) (n == strlen(s) && memcmp(name, s, n) == 0)
  if (IS("where")) {
    if (na != 3) return nx_fail(c, "where() takes 3 arguments");
    nxval r = a[0].v != 0 ? a[1] : a[2];
    if (a[1].type == NX_FLOAT || a[2].type == NX_FLOAT) r.type = NX_FLOAT;
    else if (r.type == NX_BOOL && (a[1].type == NX_INT || a[2].type == NX_INT))
      r.type = NX_INT;
    return r;
  }
  if (IS("arctan2") || IS("fmod")) {
    if (na != 2) return nx_fail(c, "expected 2 arguments");
    if (IS("arctan2")) return (nxval){NX_FLOAT, atan2(a[0].v, a[1].v)};
    bool ints = nx_isint(a[0]) && nx_isint(a[1]);
    if (ints && a[1].v == 0) return nx_fail(c, "integer division by zero");
    return (nxval){ints ? NX_INT : NX_FLOAT, fmod(a[0].v, a[1].v)};
  }
  if (na != 1) return nx_fail(c, "expected 1 argument");
  double x = a[0].v;
  if (IS("abs")) return (nxval){a[0].type == NX_FLOAT ? NX_FLOAT : NX_INT, fabs(x)};
  static const struct {
    const char *name;
    double (*fn)(double);
  } f1[] = {{"sin", sin},     {"cos", cos},       {"tan", tan},
            {"arcsin", asin}, {"arccos", acos},   {"arctan", atan},
            {"sqrt", sqrt},   {"exp", exp},       {"log", log},
            {"log10", log10}, {"floor", floor},   {"ceil", ceil}};
  for (size_t i = 0; i < sizeof f1 / sizeof f1[0]; i++)
    if (IS(f1[i].name)) return (nxval){NX_FLOAT, f1[i].fn(x)};
#undef IS
  return nx_fail(c, "unknown function");
}

static nxval nx_atom(nxeval *c) {
  nx_ws(c);
  if (c->p >= c->end) return nx_fail(c, "unexpected end");
  if (nx_op(c, "(")) {
    nxval v = nx_cmp(c);
    if (!nx_op(c, ")")) return nx_fail(c, "expected ')'");
    return v;
  }
  if (isdigit((unsigned char)*c->p) || *c->p == '.') {
    char buf[64];
    size_t n = 0;
    bool isfloat = false;
    while (c->p < c->end && n + 1 < sizeof buf &&
           (isalnum((unsigned char)*c->p) || *c->p == '.' ||
            ((*c->p == '+' || *c->p == '-') && n > 0 &&
             (buf[n - 1] == 'e' || buf[n - 1] == 'E')))) {
      if (*c->p == '.' || *c->p == 'e' || *c->p == 'E') isfloat = true;
      buf[n++] = *c->p++;
    }
    buf[n] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (*e) return nx_fail(c, "bad number");
    return (nxval){isfloat ? NX_FLOAT : NX_INT, v};
  }
  if (ident_start(*c->p)) {
    const char *s = c->p;
    while (c->p < c->end && ident_char(*c->p)) c->p++;
    size_t n = (size_t)(c->p - s);
    nx_ws(c);
    if (c->p < c->end && *c->p == '(') return nx_call(c, s, n);
    if (n == 1 && *s == 't' && c->has_t) return (nxval){NX_INT, c->t};
    if (n == 5 && memcmp(s, "max_f", 5) == 0) return (nxval){NX_INT, c->max_f};
    if (n == 10 && memcmp(s, "max_frames", 10) == 0)
      return (nxval){NX_INT, c->max_f + 1};
    if (n == 1 && *s == 's') return (nxval){NX_INT, c->seed};
    if (n == 4 && memcmp(s, "True", 4) == 0) return (nxval){NX_BOOL, 1};
    if (n == 5 && memcmp(s, "False", 5) == 0) return (nxval){NX_BOOL, 0};
    return nx_fail(c, c->has_t ? "unknown name (Deforum knows t, max_f and s)"
                               : "unknown name (only max_f and s are known here)");
  }
  return nx_fail(c, "unexpected character");
}

static nxval nx_unary(nxeval *c);

static nxval nx_power(nxeval *c) {
  nxval a = nx_atom(c);
  if (!nx_op(c, "**")) return a;
  nxval b = nx_unary(c);
  if (nx_isint(a) && nx_isint(b) && b.v >= 0)
    return (nxval){NX_INT, pow(a.v, b.v)};
  return (nxval){NX_FLOAT, pow(a.v, b.v)};
}

static nxval nx_unary(nxeval *c) {
  if (nx_op(c, "-")) {
    nxval v = nx_unary(c);
    return (nxval){v.type == NX_BOOL ? NX_INT : v.type, -v.v};
  }
  if (nx_op(c, "+")) return nx_unary(c);
  if (nx_op(c, "~")) {
    nxval v = nx_unary(c);
    if (v.type == NX_BOOL) return (nxval){NX_BOOL, v.v == 0};
    if (v.type == NX_INT) return (nxval){NX_INT, -v.v - 1};
    return nx_fail(c, "~ of a float");
  }
  return nx_power(c);
}

static int nx_arith_type(nxval a, nxval b) {
  return nx_isint(a) && nx_isint(b) ? NX_INT : NX_FLOAT;
}

static nxval nx_prod(nxeval *c) {
  nxval a = nx_unary(c);
  for (;;) {
    if (c->err) return a;
    if (nx_op(c, "*")) {
      nxval b = nx_unary(c);
      a = (nxval){nx_arith_type(a, b), a.v * b.v};
    } else if (nx_op(c, "/")) {
      if (c->p < c->end && *c->p == '/') return nx_fail(c, "// is not numexpr");
      nxval b = nx_unary(c);
      a = (nxval){NX_FLOAT, a.v / b.v};
    } else if (nx_op(c, "%")) {
      nxval b = nx_unary(c);
      if (nx_arith_type(a, b) == NX_INT) {
        if (b.v == 0) return nx_fail(c, "integer modulo by zero");
        a = (nxval){NX_INT, fmod(a.v, b.v)}; /* C remainder, as numexpr */
      } else {
        a = (nxval){NX_FLOAT, a.v - floor(a.v / b.v) * b.v};
      }
    } else {
      return a;
    }
  }
}

static nxval nx_sum(nxeval *c) {
  nxval a = nx_prod(c);
  for (;;) {
    if (c->err) return a;
    if (nx_op(c, "+")) {
      nxval b = nx_prod(c);
      a = (nxval){nx_arith_type(a, b), a.v + b.v};
    } else if (nx_op(c, "-")) {
      nxval b = nx_prod(c);
      a = (nxval){nx_arith_type(a, b), a.v - b.v};
    } else {
      return a;
    }
  }
}

static nxval nx_shift(nxeval *c) {
  nxval a = nx_sum(c);
  for (;;) {
    bool left = nx_op(c, "<<");
    if (!left && !nx_op(c, ">>")) return a;
    nxval b = nx_sum(c);
    if (!nx_isint(a) || !nx_isint(b)) return nx_fail(c, "shift of a float");
    double m = pow(2, b.v);
    a = (nxval){NX_INT, left ? a.v * m : floor(a.v / m)};
  }
}

/* & and |: logical on two booleans, bitwise on ints */
static nxval nx_bits(nxeval *c, nxval a, nxval b, char op) {
  if (a.type == NX_FLOAT || b.type == NX_FLOAT)
    return nx_fail(c, "& or | of a float");
  if (a.type == NX_BOOL && b.type == NX_BOOL)
    return (nxval){NX_BOOL, op == '&' ? (a.v && b.v) : (a.v || b.v)};
  int64_t x = (int64_t)a.v, y = (int64_t)b.v;
  return (nxval){NX_INT, (double)(op == '&' ? (x & y) : (x | y))};
}

static nxval nx_band(nxeval *c) {
  nxval a = nx_shift(c);
  while (!c->err && nx_op(c, "&")) a = nx_bits(c, a, nx_shift(c), '&');
  return a;
}

static nxval nx_bor(nxeval *c) {
  nxval a = nx_band(c);
  while (!c->err && nx_op(c, "|")) a = nx_bits(c, a, nx_band(c), '|');
  return a;
}

static nxval nx_cmp(nxeval *c) {
  nxval a = nx_bor(c);
  static const char *const ops[] = {"<=", ">=", "==", "!=", "<", ">", NULL};
  for (int i = 0; ops[i]; i++) {
    if (!nx_op(c, ops[i])) continue;
    nxval b = nx_bor(c);
    double x = a.v, y = b.v;
    bool r = i == 0 ? x <= y : i == 1 ? x >= y : i == 2 ? x == y
           : i == 3 ? x != y : i == 4 ? x < y : x > y;
    for (int j = 0; ops[j]; j++)
      if (nx_op(c, ops[j])) return nx_fail(c, "chained comparison");
    return (nxval){NX_BOOL, r};
  }
  return a;
}

/* Evaluates numexpr text s[0..n) at frame t (has_t false: a frame key).
 * Returns 0 and *out, or -1 with a static message. */
static int nx_evaluate(const char *s, size_t n, bool has_t, double t,
                       double max_f, double seed, double *out,
                       const char **msg) {
  nxeval c = {s, s + n, has_t, t, max_f, seed, NULL};
  nxval v = nx_cmp(&c);
  nx_ws(&c);
  if (!c.err && c.p < c.end) c.err = "unexpected text";
  if (!c.err && !isfinite(v.v)) c.err = "not a finite number";
  if (c.err) {
    *msg = c.err;
    return -1;
  }
  *out = v.v;
  return 0;
}

static int const_eval(const char *s, size_t n, double max_f, double seed,
                      double *out, const char **msg) {
  return nx_evaluate(s, n, false, 0, max_f, seed, out, msg);
}

/* ---- numexpr <-> vtl names ------------------------------------------------------
 * vtl_expr_from_numexpr() (expr.c) rewrites operators; the names differ too:
 *
 *   numexpr (Deforum)           vtl Lua
 *   t                           t
 *   max_f                       max_f
 *   s (A1111: the seed)         the seed's number (vtl's s is seconds)
 *   max_frames (Colab local)    (max_f+1)
 *   arcsin arccos arctan        asin acos atan
 *   arctan2(y, x)               atan(y, x)
 *   log10(x)                    (log(x)/log(10))
 *   sin cos tan sqrt exp log abs floor ceil where fmod   unchanged
 */

static const struct {
  const char *nx, *lua;
} nx_funcs[] = {
    {"sin", "sin"},       {"cos", "cos"},     {"tan", "tan"},
    {"arcsin", "asin"},   {"arccos", "acos"}, {"arctan", "atan"},
    {"arctan2", "atan"},  {"sqrt", "sqrt"},   {"exp", "exp"},
    {"log", "log"},       {"abs", "abs"},     {"floor", "floor"},
    {"ceil", "ceil"},     {"where", "where"}, {"fmod", "fmod"},
};

/* Index just past the ')' matching the '(' at s[i], or 0 if none. */
static size_t match_paren(const char *s, size_t n, size_t i) {
  int depth = 0;
  for (size_t j = i; j < n; j++) {
    if (s[j] == '(') depth++;
    else if (s[j] == ')' && --depth == 0) return j + 1;
  }
  return 0;
}

/* Appends src[0..n) to out with Deforum's names made vtl's. Returns 0, or
 * -1 with a message. */
static int nx_names(sbuf *out, const char *src, size_t n, const char *seed,
                    char *msg, size_t msglen) {
  size_t i = 0;
  while (i < n) {
    char c = src[i];
    if (isdigit((unsigned char)c) ||
        (c == '.' && i + 1 < n && isdigit((unsigned char)src[i + 1]))) {
      size_t s = i;
      while (i < n && (isalnum((unsigned char)src[i]) || src[i] == '.' ||
                       ((src[i] == '+' || src[i] == '-') &&
                        (src[i - 1] == 'e' || src[i - 1] == 'E'))))
        i++;
      sb_putn(out, src + s, i - s);
      continue;
    }
    if (ident_start(c)) {
      size_t s = i;
      while (i < n && ident_char(src[i])) i++;
      size_t len = i - s;
      size_t k = i;
      while (k < n && isspace((unsigned char)src[k])) k++;
      if (k < n && src[k] == '(') { /* a function call */
        if (len == 5 && memcmp(src + s, "log10", 5) == 0) {
          size_t close = match_paren(src, n, k);
          if (!close) {
            snprintf(msg, msglen, "expected ')' after log10(");
            return -1;
          }
          sb_puts(out, "(log(");
          if (nx_names(out, src + k + 1, close - k - 2, seed, msg, msglen))
            return -1;
          sb_puts(out, ")/log(10))");
          i = close;
          continue;
        }
        size_t f = 0, nf = sizeof nx_funcs / sizeof nx_funcs[0];
        while (f < nf && !(strlen(nx_funcs[f].nx) == len &&
                           memcmp(nx_funcs[f].nx, src + s, len) == 0))
          f++;
        if (f == nf) {
          snprintf(msg, msglen, "function '%.*s' is not available (vtl has "
                   "sin cos tan arcsin arccos arctan arctan2 sqrt exp log "
                   "log10 abs floor ceil where fmod)", (int)(len > 32 ? 32 : len),
                   src + s);
          return -1;
        }
        sb_puts(out, nx_funcs[f].lua);
        continue;
      }
      if (len == 1 && src[s] == 't') sb_puts(out, "t");
      else if (len == 5 && memcmp(src + s, "max_f", 5) == 0) sb_puts(out, "max_f");
      else if (len == 1 && src[s] == 's') sb_puts(out, seed);
      else if (len == 10 && memcmp(src + s, "max_frames", 10) == 0)
        sb_puts(out, "(max_f+1)");
      else if ((len == 4 && memcmp(src + s, "True", 4) == 0) ||
               (len == 5 && memcmp(src + s, "False", 5) == 0))
        sb_putn(out, src + s, len); /* vtl_expr_from_numexpr spells them */
      else {
        snprintf(msg, msglen, "unknown name '%.*s' (Deforum knows t, max_f "
                 "and s)", (int)(len > 32 ? 32 : len), src + s);
        return -1;
      }
      continue;
    }
    if (strchr("+-*/%<>=!&|~(), \t\r\n", c) == NULL) {
      snprintf(msg, msglen, "unexpected character '%c'", c);
      return -1;
    }
    sb_putn(out, &c, 1);
    i++;
  }
  return 0;
}

/* The inverse for export: Lua names (after vtl_expr_to_numexpr) made
 * numexpr's. Returns -1 when the expression uses something numexpr has no
 * word for (min, max, int, math.x, strings...); the caller then writes
 * per-frame values instead. */
static int lua_names(sbuf *out, const char *src, size_t n, double fps) {
  size_t i = 0;
  while (i < n) {
    char c = src[i];
    if (isdigit((unsigned char)c) ||
        (c == '.' && i + 1 < n && isdigit((unsigned char)src[i + 1]))) {
      size_t s = i;
      while (i < n && (isalnum((unsigned char)src[i]) || src[i] == '.' ||
                       ((src[i] == '+' || src[i] == '-') &&
                        (src[i - 1] == 'e' || src[i - 1] == 'E'))))
        i++;
      sb_putn(out, src + s, i - s);
      continue;
    }
    if (ident_start(c)) {
      size_t s = i;
      while (i < n && ident_char(src[i])) i++;
      size_t len = i - s, k = i;
      while (k < n && isspace((unsigned char)src[k])) k++;
      char name[16];
      if (len >= sizeof name) return -1;
      memcpy(name, src + s, len);
      name[len] = '\0';
      if (k < n && src[k] == '(') {
        /* vtl_expr_to_numexpr may have renamed these already */
        if (strcmp(name, "asin") == 0 || strcmp(name, "arcsin") == 0)
          sb_puts(out, "arcsin");
        else if (strcmp(name, "acos") == 0 || strcmp(name, "arccos") == 0)
          sb_puts(out, "arccos");
        else if (strcmp(name, "atan") == 0 || strcmp(name, "arctan") == 0 ||
                 strcmp(name, "arctan2") == 0) {
          /* one argument: arctan; two: arctan2 */
          size_t close = match_paren(src, n, k);
          if (!close) return -1;
          int depth = 0, commas = 0;
          for (size_t j = k; j < close; j++) {
            if (src[j] == '(') depth++;
            else if (src[j] == ')') depth--;
            else if (src[j] == ',' && depth == 1) commas++;
          }
          sb_puts(out, commas ? "arctan2" : "arctan");
        } else {
          static const char *const same[] = {"sin",   "cos",  "tan",  "sqrt",
                                             "exp",   "log",  "abs",  "floor",
                                             "ceil",  "where", "fmod", NULL};
          int f = 0;
          while (same[f] && strcmp(same[f], name)) f++;
          if (!same[f]) return -1;
          sb_puts(out, name);
        }
        continue;
      }
      char num[40];
      if (strcmp(name, "t") == 0 || strcmp(name, "max_f") == 0) {
        sb_puts(out, name);
      } else if (strcmp(name, "s") == 0) {
        fmt_num(num, sizeof num, fps, false);
        sb_printf(out, "(t/%s)", num);
      } else if (strcmp(name, "fps") == 0) {
        fmt_num(num, sizeof num, fps, false);
        sb_puts(out, num);
      } else if (strcmp(name, "pi") == 0) {
        sb_puts(out, "3.141592653589793");
      } else {
        return -1;
      }
      continue;
    }
    if (strchr("+-*/%<>=!&|~(), \t\r\n", c) == NULL) return -1;
    if (c == '/' && i + 1 < n && src[i + 1] == '/') return -1; /* Lua // */
    sb_putn(out, &c, 1);
    i++;
  }
  return 0;
}

/* ---- the import context ------------------------------------------------------ */

/* One key of a parsed schedule. */
typedef struct {
  int64_t frame;
  bool num;      /* a plain number: interpolated */
  double value;  /* num: the number (vtl units); else the value at `frame` */
  char *expr;    /* !num: Lua source, malloc'd */
  char *src;     /* the Deforum (numexpr) text of the value, trimmed,
                    malloc'd: messages and the numexpr cross-check */
} skey;

typedef struct {
  int64_t frame;
  char *text;     /* malloc'd */
  char *negative; /* malloc'd */
  const char *key;/* borrowed: the JSON key, for messages */
} pkey;

typedef struct {
  json_t *root;          /* the settings object, owned */
  json_t *seen;          /* key -> true (used) / false (inactive), owned */
  const char *src;       /* the file, borrowed */
  size_t len;
  vtl_warnings warn;     /* collected here, handed over on success */
  vtl_error *err;        /* may be NULL */
  bool a1111;            /* the file is from the A1111 extension */
  bool interp_mode;      /* animation_mode Interpolation */
  bool blend;            /* prompts crossfade */
  int64_t length;        /* max_frames */
  double fps;
  int64_t seed;          /* resolved base seed */
  char seed_text[24];    /* the seed as numexpr/Lua text (for `s`) */
  vtl_expr_ctx *x;       /* owned: evaluates expressions to validate them */
  vtl_op *ops;           /* malloc'd batch */
  size_t nops, capops;
  vtl_id next_id;        /* ids minted from 2 upward */
  int64_t order;         /* next track order */
  double tl_guidance, tl_strength;
  int64_t tl_steps;
} dimp;

static vtl_op *push_op(dimp *d) {
  if (d->nops == d->capops) {
    size_t cap = d->capops ? d->capops * 2 : 64;
    vtl_op *ops = realloc(d->ops, cap * sizeof *ops);
    if (!ops) return NULL;
    d->ops = ops;
    d->capops = cap;
  }
  vtl_op *op = &d->ops[d->nops++];
  memset(op, 0, sizeof *op);
  return op;
}

#define TRY(x)                                                               \
  do {                                                                       \
    int rc_ = (x);                                                           \
    if (rc_) return rc_;                                                     \
  } while (0)

static int set_tl_int(dimp *d, const char *field, int64_t v) {
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_int(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

static int set_tl_real(dimp *d, const char *field, double v) {
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_real(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

static int set_tl_str(dimp *d, const char *field, const char *v) {
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  return vtl_op_set_str(op, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, field, v);
}

static int warn(dimp *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(dimp *d, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vtl_warnings_add(&d->warn, "%s", buf);
}

/* The value of `key`, marked as used; NULL when absent or null. */
static json_t *dget(dimp *d, const char *key) {
  json_t *v = json_object_get(d->root, key);
  if (!v) return NULL;
  json_object_set_new(d->seen, key, json_true());
  return json_is_null(v) ? NULL : v;
}

/* Marks `key` as read but without effect (listed as ignored). */
static void dinactive(dimp *d, const char *key) {
  if (json_object_get(d->root, key) && !json_object_get(d->seen, key))
    json_object_set_new(d->seen, key, json_false());
}

/* A number, or a string holding one (Colab saves diffusion_cadence as
 * '1'). Returns 0 (absent: *out = def), or an error naming the key. */
static int get_real(dimp *d, const char *key, double def, double *out) {
  json_t *v = dget(d, key);
  *out = def;
  if (!v) return 0;
  if (json_is_number(v)) {
    *out = json_number_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *e;
    errno = 0;
    *out = strtod(s, &e);
    while (isspace((unsigned char)*e)) e++;
    if (e == s || *e || errno == ERANGE)
      return dfail(d->err, VTL_ETYPE, "%s: expected a number, got \"%.40s\"",
                   key, s);
  } else {
    return dfail(d->err, VTL_ETYPE, "%s: expected a number, got %s", key,
                 jtype(v));
  }
  if (!isfinite(*out))
    return dfail(d->err, VTL_ERANGE, "%s: not a finite number", key);
  return 0;
}

static int get_int(dimp *d, const char *key, int64_t def, int64_t *out) {
  double v;
  TRY(get_real(d, key, (double)def, &v));
  if (v != floor(v) || fabs(v) > 9007199254740991.0)
    return dfail(d->err, VTL_ETYPE, "%s: expected a whole number, got %g", key,
                 v);
  *out = (int64_t)v;
  return 0;
}

static int get_bool(dimp *d, const char *key, bool def, bool *out) {
  json_t *v = dget(d, key);
  *out = def;
  if (!v) return 0;
  if (!json_is_boolean(v))
    return dfail(d->err, VTL_ETYPE, "%s: expected true or false, got %s", key,
                 jtype(v));
  *out = json_is_true(v);
  return 0;
}

static int get_str(dimp *d, const char *key, const char *def, const char **out) {
  json_t *v = dget(d, key);
  *out = def;
  if (!v) return 0;
  if (!json_is_string(v))
    return dfail(d->err, VTL_ETYPE, "%s: expected a string, got %s", key,
                 jtype(v));
  *out = json_string_value(v);
  return 0;
}

/* ---- schedules ------------------------------------------------------------------ */

static void skeys_free(skey *k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(k[i].expr);
    free(k[i].src);
  }
  free(k);
}

/* numexpr source -> Lua (names, then operators). Returns 0 or an error. */
static int nx_to_lua(dimp *d, const char *key, int64_t frame, const char *src,
                     size_t n, bool invert, char **out) {
  char msg[200], lua[VTL_MAX_EXPR + 1], snip[64];
  sbuf b = {0};
  snippet(snip, sizeof snip, src, n);
  if (nx_names(&b, src, n, d->seed_text, msg, sizeof msg)) {
    free(b.p);
    return dfail(d->err, VTL_EEXPR, "%s: frame %lld: %s in \"%s\"", key,
                 (long long)frame, msg, snip);
  }
  if (b.oom) return VTL_ENOMEM;
  int rc = vtl_expr_from_numexpr(sb_str(&b), lua, sizeof lua);
  free(b.p);
  if (rc == VTL_ETOOLONG)
    return dfail(d->err, rc, "%s: frame %lld: expression longer than %d "
                 "bytes", key, (long long)frame, VTL_MAX_EXPR);
  if (rc)
    return dfail(d->err, rc, "%s: frame %lld: cannot read \"%s\"", key,
                 (long long)frame, snip);
  char *s;
  if (invert) {
    size_t len = strlen(lua) + 5;
    if (len > VTL_MAX_EXPR)
      return dfail(d->err, VTL_ETOOLONG, "%s: frame %lld: expression longer "
                   "than %d bytes", key, (long long)frame, VTL_MAX_EXPR);
    size_t ln = strlen(lua);
    s = malloc(len + 1);
    if (s) {
      memcpy(s, "1-(", 3);
      memcpy(s + 3, lua, ln);
      memcpy(s + 3 + ln, ")", 2);
    }
  } else {
    s = strdup(lua);
  }
  if (!s) return VTL_ENOMEM;
  if (vtl_expr_check(d->x, s, msg, sizeof msg)) {
    free(s);
    return dfail(d->err, VTL_EEXPR, "%s: frame %lld: bad expression \"%s\": "
                 "%s", key, (long long)frame, snip, msg);
  }
  *out = s;
  return 0;
}

/* Parses a schedule string into keys sorted by frame (a later duplicate
 * replaces an earlier one, as Deforum's dict does). Keys outside
 * 0..max_frames-1 are dropped with a warning.
 *   schedule := entry (',' entry)* [',']
 *   entry    := frame ':' ( '(' balanced ')' | text up to a top-level ',' )
 *   frame    := digits | a quoted or bare expression of max_f and s
 * This accepts what both Deforum parsers accept (the Colab regex needs the
 * parentheses; the A1111 split on ',' breaks on commas inside them). */
static int parse_schedule(dimp *d, const char *key, const char *s,
                          bool invert, skey **out, size_t *nout) {
  size_t n = strlen(s), i = 0, nk = 0, cap = 0;
  skey *keys = NULL;
  char snip[64];
  int rc = 0;
#define BAD(fmt, ...)                                                        \
  do {                                                                       \
    snippet(snip, sizeof snip, s + start, n - start);                        \
    rc = dfail(d->err, VTL_EPARSE, "%s: bad schedule at \"%s\", " fmt, key,  \
               snip, __VA_ARGS__);                                           \
    goto fail;                                                               \
  } while (0)
  while (i < n && isspace((unsigned char)s[i])) i++;
  if (i == n) {
    return dfail(d->err, VTL_EPARSE, "%s: empty schedule (expected keys like "
                 "\"0: (1.0)\")", key);
  }
  while (i < n) {
    size_t start = i;
    /* frame: up to a top-level ':' */
    int depth = 0;
    char quote = 0;
    while (i < n) {
      char c = s[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '(') {
        depth++;
      } else if (c == ')') {
        depth--;
      } else if ((c == ':' && depth == 0) || c == ',') {
        break;
      }
      i++;
    }
    if (i >= n || s[i] != ':') BAD("expected '%s'", ":");
    const char *fs = s + start, *fe = s + i;
    while (fs < fe && isspace((unsigned char)*fs)) fs++;
    while (fe > fs && isspace((unsigned char)fe[-1])) fe--;
    if (fe - fs >= 2 && (*fs == '"' || *fs == '\'') && fe[-1] == *fs) fs++, fe--;
    if (fs == fe) BAD("expected a frame before '%s'", ":");
    double fv;
    const char *cmsg;
    if (is_plain_number(fs, (size_t)(fe - fs), &fv)) {
      if (fv != floor(fv)) BAD("frame %g is not a whole number", fv);
    } else if (const_eval(fs, (size_t)(fe - fs), (double)(d->length - 1),
                          (double)d->seed, &fv, &cmsg)) {
      BAD("frame: %s", cmsg);
    } else {
      fv = trunc(fv); /* int(numexpr.evaluate(...)) */
    }
    i++; /* ':' */
    while (i < n && isspace((unsigned char)s[i])) i++;
    size_t vs, ve;
    bool paren = i < n && s[i] == '(';
    if (paren) {
      size_t close = match_paren(s, n, i);
      if (!close) BAD("expected '%s'", ")");
      vs = i + 1;
      ve = close - 1;
      i = close;
      while (i < n && isspace((unsigned char)s[i])) i++;
      if (i < n && s[i] != ',') BAD("expected ',' after '%s'", ")");
    } else {
      vs = i;
      depth = 0;
      while (i < n && !(s[i] == ',' && depth == 0)) {
        if (s[i] == '(') depth++;
        else if (s[i] == ')') depth--;
        i++;
      }
      if (depth != 0) BAD("expected '%s'", ")");
      ve = i;
    }
    /* Deforum tests the inside of the parentheses as it is: "( 0.5 )" is
     * not a number to it but an expression (held, not interpolated) */
    size_t rs = vs, re = ve;
    while (ve > vs && isspace((unsigned char)s[ve - 1])) ve--;
    while (vs < ve && isspace((unsigned char)s[vs])) vs++;
    if (!paren) rs = vs, re = ve;
    if (vs == ve) BAD("expected a value after '%s'", ":");
    if (i < n) i++; /* ',' */
    while (i < n && isspace((unsigned char)s[i])) i++;

    if (fv < 0 || fv >= (double)d->length) {
      if ((rc = warn(d, "%s: key at frame %.0f ignored (outside 0..%lld, "
                     "as in Deforum)", key, fv, (long long)(d->length - 1))))
        goto fail;
      continue;
    }
    int64_t frame = (int64_t)fv;
    skey k = {frame, false, 0, NULL, NULL};
    if (!(k.src = xstrndup(s + vs, ve - vs))) {
      rc = VTL_ENOMEM;
      goto fail;
    }
    double num;
    if (is_plain_number(s + rs, re - rs, &num)) {
      k.num = true;
      k.value = invert ? 1 - num : num;
    } else if ((rc = nx_to_lua(d, key, frame, s + vs, ve - vs, invert,
                               &k.expr))) {
      free(k.src);
      goto fail;
    }
    /* insert sorted; a duplicate frame replaces the earlier key */
    size_t at = 0;
    while (at < nk && keys[at].frame < frame) at++;
    if (at < nk && keys[at].frame == frame) {
      free(keys[at].expr);
      free(keys[at].src);
      keys[at] = k;
      continue;
    }
    if (nk == cap) {
      size_t nc = cap ? cap * 2 : 8;
      skey *nkeys = realloc(keys, nc * sizeof *nkeys);
      if (!nkeys) {
        free(k.src);
        free(k.expr);
        rc = VTL_ENOMEM;
        goto fail;
      }
      keys = nkeys;
      cap = nc;
    }
    memmove(keys + at + 1, keys + at, (nk - at) * sizeof *keys);
    keys[at] = k;
    nk++;
  }
#undef BAD
  if (nk == 0) {
    rc = dfail(d->err, VTL_ERANGE, "%s: no key inside frames 0..%lld", key,
               (long long)(d->length - 1));
    goto fail;
  }
  *out = keys;
  *nout = nk;
  return 0;
fail:
  skeys_free(keys, nk);
  return rc;
}

/* Evaluates a Lua expression the way eval.c does. */
static int eval_at(vtl_expr_ctx *x, const char *lua, int64_t t, double fps,
                   int64_t length, double *out, char *msg, size_t msglen) {
  vtl_expr_vars vars = {(double)t, (double)t / fps, (double)(length - 1), fps};
  return vtl_expr_eval(x, lua, &vars, out, msg, msglen);
}

/* Checks a value of parameter p at a frame against vtl's range. Strength is
 * clamped (Deforum clamps it too) with one warning; anything else outside
 * the range is refused: Deforum would render it, but not meaningfully. */
static int check_range(dimp *d, const char *key, int p, int64_t frame,
                       double v, bool *warned) {
  const vtl_param_desc *pd = &vtl_param_table[p];
  if (v >= pd->min && v <= pd->max) return 0;
  if (p == VTL_PARAM_STRENGTH) {
    if (!*warned) {
      *warned = true;
      return warn(d, "%s: %g at frame %lld is outside 0..1 and is clamped "
                  "(as Deforum does)", key, 1 - v, (long long)frame);
    }
    return 0;
  }
  return dfail(d->err, VTL_ERANGE, "%s: %g at frame %lld is outside "
               "vtl's %s range %g..%g", key, v, (long long)frame, pd->name,
               pd->min, pd->max);
}

/* Evaluates every expression key at every frame it covers (so that a file
 * whose expressions fail or leave the range is refused at import, with the
 * frame named) and checks numeric keys' ranges. */
static int validate_keys(dimp *d, const char *key, int p, bool invert,
                         skey *keys, size_t nk) {
  bool warned = false, differs = false;
  char msg[200], snip[64];
  for (size_t i = 0; i < nk; i++) {
    if (keys[i].num) {
      TRY(check_range(d, key, p, keys[i].frame, keys[i].value, &warned));
      continue;
    }
    int64_t end = i + 1 < nk ? keys[i + 1].frame : d->length;
    snippet(snip, sizeof snip, keys[i].src, strlen(keys[i].src));
    for (int64_t f = keys[i].frame; f < end; f++) {
      double v, nv;
      const char *nmsg;
      if (eval_at(d->x, keys[i].expr, f, d->fps, d->length, &v, msg,
                  sizeof msg))
        return dfail(d->err, VTL_EEXPR, "%s: \"%s\" fails at frame %lld: %s",
                     key, snip, (long long)f, msg);
      if (nx_evaluate(keys[i].src, strlen(keys[i].src), true, (double)f,
                      (double)(d->length - 1), (double)d->seed, &nv, &nmsg))
        return dfail(d->err, VTL_EEXPR, "%s: \"%s\" fails at frame %lld in "
                     "numexpr: %s", key, snip, (long long)f, nmsg);
      if (invert) nv = 1 - nv;
      if (!differs && !(fabs(v - nv) <= 1e-9 * fmax(1, fabs(nv)))) {
        differs = true;
        TRY(warn(d, "%s: \"%s\" gives %.17g at frame %lld in vtl but %.17g "
                 "in Deforum's numexpr (integer or boolean arithmetic); vtl's "
                 "value is used", key, snip, invert ? 1 - v : v, (long long)f,
                 invert ? 1 - nv : nv));
      }
      if (f == keys[i].frame) keys[i].value = v;
      TRY(check_range(d, key, p, f, v, &warned));
    }
  }
  return 0;
}

/* Creates the track and keyframes of parameter p from parsed keys, or folds
 * a single numeric key into the timeline / drops it when it is the
 * default. */
static int emit_keys(dimp *d, const char *name, int p, const skey *keys,
                     size_t nk) {
  if (nk == 1 && keys[0].num) {
    double v = keys[0].value;
    switch (p) {
    case VTL_PARAM_GUIDANCE: d->tl_guidance = v; return 0;
    case VTL_PARAM_STEPS: d->tl_steps = (int64_t)trunc(v); return 0;
    case VTL_PARAM_STRENGTH: d->tl_strength = v < 0 ? 0 : v > 1 ? 1 : v; return 0;
    case VTL_PARAM_SEED: break; /* falls back to the timeline's seed */
    default:
      if (v == vtl_param_table[p].def) return 0;
    }
  }
  vtl_id track = d->next_id++;
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_TRACK, track);
  TRY(vtl_op_add_str(op, "name", name));
  TRY(vtl_op_add_int(op, "target", p));
  TRY(vtl_op_add_int(op, "order", d->order++));
  for (size_t i = 0; i < nk; i++) {
    if (!(op = push_op(d))) return VTL_ENOMEM;
    vtl_op_create(op, VTL_ENT_KEYFRAME, d->next_id++);
    TRY(vtl_op_add_int(op, "track", (int64_t)track));
    TRY(vtl_op_add_int(op, "frame", keys[i].frame));
    TRY(vtl_op_add_real(op, "value", keys[i].value));
    TRY(vtl_op_add_int(op, "interp", VTL_INTERP_LINEAR));
    if (!keys[i].num) TRY(vtl_op_add_str(op, "expr", keys[i].expr));
  }
  return 0;
}

/* Reads schedule `key` (a string, or a bare number) into parameter p. */
static int import_schedule(dimp *d, const char *key, int p, bool invert) {
  json_t *v = dget(d, key);
  if (!v) return 0;
  skey *keys = NULL;
  size_t nk = 0;
  if (json_is_number(v)) {
    double num = json_number_value(v);
    if (!(keys = calloc(1, sizeof *keys))) return VTL_ENOMEM;
    keys[0] = (skey){0, true, invert ? 1 - num : num, NULL, NULL};
    nk = 1;
  } else if (json_is_string(v)) {
    TRY(parse_schedule(d, key, json_string_value(v), invert, &keys, &nk));
  } else {
    return dfail(d->err, VTL_ETYPE, "%s: expected a schedule string like "
                 "\"0: (1.0)\", got %s", key, jtype(v));
  }
  int rc = 0;
  if (p == VTL_PARAM_SEED) {
    /* -1 in a seed schedule is "random" in Deforum: make it deterministic */
    for (size_t i = 0; i < nk && !rc; i++) {
      if (keys[i].num && keys[i].value == -1) {
        uint32_t h = 2166136261u;
        for (size_t j = 0; j < d->len; j++)
          h = (h ^ (unsigned char)d->src[j]) * 16777619u;
        h = (h ^ (uint32_t)keys[i].frame) * 16777619u;
        keys[i].value = h;
        rc = warn(d, "%s: -1 (a random seed in Deforum) at frame %lld "
                  "replaced by %u, a hash of the file", key,
                  (long long)keys[i].frame, (unsigned)h);
      }
    }
  }
  if (!rc && keys[0].frame != 0)
    rc = warn(d, "%s: no key at frame 0 (Deforum needs one); the first key's "
              "value is held before it", key);
  if (!rc) rc = validate_keys(d, key, p, invert, keys, nk);
  if (!rc) rc = emit_keys(d, key, p, keys, nk);
  skeys_free(keys, nk);
  return rc;
}

/* A Colab constant (fov, near_plane, far_plane) when the A1111 schedule is
 * absent; its track is named after the schedule, as export writes it. */
static int import_constant(dimp *d, const char *key, const char *track,
                           int p) {
  double v;
  bool warned = false;
  if (!json_object_get(d->root, key)) return 0;
  TRY(get_real(d, key, vtl_param_table[p].def, &v));
  TRY(check_range(d, key, p, 0, v, &warned));
  skey k = {0, true, v, NULL, NULL};
  return emit_keys(d, track, p, &k, 1);
}

/* ---- prompts --------------------------------------------------------------------- */

static void pkeys_free(pkey *k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(k[i].text);
    free(k[i].negative);
  }
  free(k);
}

static char *strip_dup(const char *s, size_t n) {
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  return xstrndup(s, n);
}

/* Frame of a prompt key: digits, or (A1111) a numexpr of max_f. */
static int prompt_frame(dimp *d, const char *obj, const char *k, int64_t *out) {
  const char *p = k;
  while (isdigit((unsigned char)*p)) p++;
  if (*k && !*p) {
    double v = strtod(k, NULL);
    *out = v > 1e15 ? (int64_t)1e15 : (int64_t)v;
    return 0;
  }
  double v;
  const char *msg;
  if (const_eval(k, strlen(k), (double)(d->length - 1), (double)d->seed, &v,
                 &msg))
    return dfail(d->err, VTL_EPARSE, "%s.\"%.40s\": bad frame: %s", obj, k,
                 msg);
  v = trunc(v);
  *out = v < -1e15 ? (int64_t)-1e15 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
  return 0;
}

/* Deforum A1111 (process_args): "{P} {val} {'' if '--neg' in val else
 * '--neg'} {N}", then split on "--neg" and trimmed. More than one "--neg"
 * makes Deforum fail to split, so it is refused. */
static int split_prompt(dimp *d, const char *obj, const char *key,
                        const char *val, const char *pos, const char *neg,
                        bool split, pkey *out) {
  sbuf b = {0};
  if (split) {
    sb_printf(&b, "%s %s %s %s", pos, val, strstr(val, "--neg") ? "" : "--neg",
              neg);
  } else {
    sb_puts(&b, val);
  }
  if (b.oom) return VTL_ENOMEM;
  const char *all = sb_str(&b), *m = split ? strstr(all, "--neg") : NULL;
  if (m && strstr(m + 5, "--neg")) {
    free(b.p);
    return dfail(d->err, VTL_EPARSE, "%s.\"%.40s\": more than one --neg", obj,
                 key);
  }
  out->text = strip_dup(all, m ? (size_t)(m - all) : strlen(all));
  out->negative = m ? strip_dup(m + 5, strlen(m + 5)) : strdup("");
  free(b.p);
  if (!out->text || !out->negative) return VTL_ENOMEM;
  if (strlen(out->text) > VTL_MAX_TEXT || strlen(out->negative) > VTL_MAX_TEXT)
    return dfail(d->err, VTL_ETOOLONG, "%s.\"%.40s\": prompt longer than %d "
                 "bytes", obj, key, VTL_MAX_TEXT);
  if (strchr(out->text, '`') || strchr(out->negative, '`'))
    TRY(warn(d, "%s.\"%.40s\": `...` weight expressions are kept as text "
             "(vtl does not evaluate them)", obj, key));
  return 0;
}

/* Reads a {frame: prompt} object (or a plain string: frame 0) into pkeys
 * sorted by frame; a later duplicate frame replaces an earlier one. */
static int read_prompt_obj(dimp *d, const char *obj, json_t *v,
                           const char *pos, const char *neg, bool split,
                           pkey **out, size_t *nout) {
  size_t nk = 0, n = json_is_object(v) ? json_object_size(v) : 1;
  pkey *keys = calloc(n ? n : 1, sizeof *keys);
  if (!keys) return VTL_ENOMEM;
  int rc = 0;
  if (json_is_string(v)) {
    keys[0].key = "0";
    rc = split_prompt(d, obj, "0", json_string_value(v), pos, neg, split,
                      &keys[0]);
    nk = 1;
  } else if (!json_is_object(v)) {
    rc = dfail(d->err, VTL_ETYPE, "%s: expected an object of frame: prompt, "
               "got %s", obj, jtype(v));
  } else {
    const char *k;
    json_t *pv;
    json_object_foreach(v, k, pv) {
      if (!json_is_string(pv)) {
        rc = dfail(d->err, VTL_ETYPE, "%s.\"%.40s\": expected a string, got "
                   "%s", obj, k, jtype(pv));
        break;
      }
      pkey pk = {0};
      pk.key = k;
      if ((rc = prompt_frame(d, obj, k, &pk.frame))) break;
      rc = split_prompt(d, obj, k, json_string_value(pv), pos, neg, split, &pk);
      if (rc) {
        free(pk.text);
        free(pk.negative);
        break;
      }
      size_t at = 0;
      while (at < nk && keys[at].frame < pk.frame) at++;
      if (at < nk && keys[at].frame == pk.frame) {
        free(keys[at].text);
        free(keys[at].negative);
        keys[at] = pk;
        continue;
      }
      memmove(keys + at + 1, keys + at, (nk - at) * sizeof *keys);
      keys[at] = pk;
      nk++;
    }
  }
  if (rc) {
    pkeys_free(keys, nk);
    return rc;
  }
  *out = keys;
  *nout = nk;
  return 0;
}

static int add_clip(dimp *d, vtl_id track, int64_t start, int64_t end,
                    const pkey *k, int64_t fade_in, int64_t fade_out) {
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_PROMPT_CLIP, d->next_id++);
  TRY(vtl_op_add_int(op, "track", (int64_t)track));
  TRY(vtl_op_add_int(op, "start", start));
  TRY(vtl_op_add_int(op, "end", end));
  TRY(vtl_op_add_str(op, "text", k->text));
  TRY(vtl_op_add_str(op, "negative", k->negative));
  if (fade_in) TRY(vtl_op_add_int(op, "fade_in", fade_in));
  if (fade_out) TRY(vtl_op_add_int(op, "fade_out", fade_out));
  return 0;
}

/* Lays the keys out as clips on one prompt track.
 * Hold (Deforum 2D/3D: ffill then bfill): clip i spans [k_i, k_i+1), the
 *   first from frame 0, the last to the end.
 * Blend (A1111 interpolate_prompts: between k_i and k_i+1 the weights are
 *   1-w and w, w = (f-k_i)/(k_i+1 - k_i)): clip i spans [k_i-1, k_i+1) with
 *   fade_in k_i - k_i-1 and fade_out k_i+1 - k_i; the first starts at 0
 *   without a fade in, the last runs to the end without a fade out. eval.c's
 *   envelopes then give exactly Deforum's weights.
 * Keys at or after max_frames are dropped, except in blend mode the first
 * of them, towards which the last frames still fade. */
static int emit_prompts(dimp *d, pkey *keys, size_t nk) {
  size_t n = 0;
  for (size_t i = 0; i < nk; i++) {
    if (keys[i].frame < 0 ||
        (keys[i].frame >= d->length && !(d->blend && n > 0 &&
                                         keys[n - 1].frame < d->length))) {
      TRY(warn(d, "prompts: key \"%.40s\" (frame %lld) ignored (outside "
               "0..%lld)", keys[i].key, (long long)keys[i].frame,
               (long long)(d->length - 1)));
      continue;
    }
    if (keys[i].frame >= d->length && keys[i].frame >= VTL_MAX_FRAMES - 1)
      return dfail(d->err, VTL_ERANGE, "prompts: key \"%.40s\": frame %lld "
                   "past vtl's limit", keys[i].key, (long long)keys[i].frame);
    if (n != i) {
      pkey t = keys[n];
      keys[n] = keys[i];
      keys[i] = t;
    }
    n++;
  }
  if (n == 0)
    return dfail(d->err, VTL_ERANGE, "prompts: no prompt inside frames "
                 "0..%lld", (long long)(d->length - 1));
  vtl_id track = d->next_id++;
  vtl_op *op = push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_TRACK, track);
  TRY(vtl_op_add_str(op, "name", "prompts"));
  TRY(vtl_op_add_int(op, "target", VTL_TARGET_PROMPT));
  TRY(vtl_op_add_int(op, "order", d->order++));
  for (size_t i = 0; i < n; i++) {
    int64_t k = keys[i].frame;
    int64_t next = i + 1 < n ? keys[i + 1].frame : -1;
    int64_t end = next >= 0 ? next : (k + 1 > d->length ? k + 1 : d->length);
    if (!d->blend) {
      TRY(add_clip(d, track, i == 0 ? 0 : k, end, &keys[i], 0, 0));
    } else {
      int64_t prev = i > 0 ? keys[i - 1].frame : 0;
      TRY(add_clip(d, track, prev, end, &keys[i], i > 0 ? k - prev : 0,
                   next >= 0 ? next - k : 0));
    }
  }
  return 0;
}

static int import_prompts_from(dimp *d, const char *pos, const char *neg);

/* Reads the prompts of whichever style the file has. */
static int import_prompts(dimp *d) {
  const char *pos = "", *neg = "", *tmp;
  /* A1111: the UI fields, saved under two names over the versions */
  TRY(get_str(d, "positive_prompts", "", &tmp));
  if (*tmp) pos = tmp;
  TRY(get_str(d, "animation_prompts_positive", pos, &pos));
  TRY(get_str(d, "negative_prompts", "", &tmp));
  if (*tmp) neg = tmp;
  TRY(get_str(d, "animation_prompts_negative", neg, &neg));
  /* process_args drops a "--neg" typed into the negative field by mistake */
  char *negbuf = strdup(neg);
  if (!negbuf) return VTL_ENOMEM;
  for (char *m; (m = strstr(negbuf, "--neg"));) memmove(m, m + 5, strlen(m + 5) + 1);
  neg = negbuf;
  int rc = import_prompts_from(d, pos, neg);
  free(negbuf);
  return rc;
}

static int import_prompts_from(dimp *d, const char *pos, const char *neg) {
  pkey *keys = NULL;
  size_t nk = 0;
  json_t *ap = json_object_get(d->root, "animation_prompts");
  json_t *pr = json_object_get(d->root, "prompts");
  json_t *cond = json_object_get(d->root, "cond_prompts");
  if (ap && !json_is_null(ap)) {
    dget(d, "animation_prompts");
    if (pr && !json_equal(pr, ap)) {
      dinactive(d, "prompts");
      TRY(warn(d, "prompts: ignored, animation_prompts is used"));
    } else if (pr) {
      dget(d, "prompts");
    }
    TRY(read_prompt_obj(d, "animation_prompts", ap, pos, neg, true, &keys,
                        &nk));
  } else if (pr && !json_is_null(pr)) {
    dget(d, "prompts");
    TRY(read_prompt_obj(d, "prompts", pr, pos, neg, true, &keys, &nk));
  } else if (cond && !json_is_null(cond) && !(json_is_string(cond) &&
                                              !*json_string_value(cond))) {
    /* Colab 0.7.1: two series held separately, then read per frame */
    pkey *c = NULL, *u = NULL;
    size_t nc = 0, nu = 0;
    dget(d, "cond_prompts");
    json_t *unc = dget(d, "uncond_prompts");
    int rc = read_prompt_obj(d, "cond_prompts", cond, "", "", false, &c, &nc);
    if (!rc && nc == 0)
      rc = dfail(d->err, VTL_EINVAL, "cond_prompts: no prompt");
    if (!rc && unc && !(json_is_string(unc) && !*json_string_value(unc)))
      rc = read_prompt_obj(d, "uncond_prompts", unc, "", "", false, &u, &nu);
    if (!rc && !(keys = calloc(nc + nu, sizeof *keys))) rc = VTL_ENOMEM;
    for (size_t i = 0, j = 0; !rc && (i < nc || j < nu);) {
      int64_t f = i < nc && (j >= nu || c[i].frame <= u[j].frame) ? c[i].frame
                                                                  : u[j].frame;
      while (i < nc && c[i].frame <= f) i++;
      while (j < nu && u[j].frame <= f) j++;
      const pkey *ck = &c[i ? i - 1 : 0], *uk = nu ? &u[j ? j - 1 : 0] : NULL;
      keys[nk].frame = f;
      keys[nk].key = f == ck->frame || !uk ? ck->key : uk->key;
      keys[nk].text = strdup(ck->text);
      keys[nk].negative = strdup(uk ? uk->text : "");
      if (!keys[nk].text || !keys[nk].negative) rc = VTL_ENOMEM;
      nk++;
    }
    if (!rc) rc = emit_prompts(d, keys, nk);
    pkeys_free(c, nc);
    pkeys_free(u, nu);
    pkeys_free(keys, nk);
    return rc;
  } else {
    dinactive(d, "cond_prompts");
    dinactive(d, "uncond_prompts");
    return warn(d, "prompts: none in the file; the film has no prompt track");
  }
  dinactive(d, "cond_prompts");
  dinactive(d, "uncond_prompts");
  int rc = emit_prompts(d, keys, nk);
  pkeys_free(keys, nk);
  return rc;
}

/* ---- the rest of the keys ---------------------------------------------------------
 * Every key of the file is either read above, or listed here. UI keys (and
 * known keys whose value, or whose gate key's value, is the "off" one) are
 * grouped into one "ignored" warning; the others change Deforum's frames
 * in ways vtl does not model and go into the "unsupported" warning; keys
 * in neither list are "unknown". `off` is one or more compact JSON texts
 * separated by '|'. */

typedef struct {
  const char *name;
  bool ui;            /* no effect on frames */
  const char *gate;   /* key whose value decides (NULL: the key itself) */
  const char *off;    /* values of the gate meaning "not in use" */
} known_key;

#define UI(n) {n, true, NULL, NULL}
#define OFF(n, off) {n, false, NULL, off}
#define GATED(n, gate, off) {n, false, gate, off}
#define ALWAYS(n) {n, false, NULL, NULL}

static const known_key known_keys[] = {
    /* output, batch and UI state */
    UI("bit_depth_output"), UI("show_info_on_ui"), UI("save_samples"), UI("save_settings"),
    UI("display_samples"), UI("save_sample_per_step"),
    UI("show_sample_per_step"), UI("n_batch"), UI("n_samples"),
    UI("filename_format"), UI("make_grid"), UI("grid_rows"), UI("outdir"),
    UI("timestring"), UI("seed_internal"), UI("cond_uncond_sync"),
    UI("precision"), UI("C"), UI("f"), UI("prompt"), UI("cond_prompt"),
    UI("uncond_prompt"), UI("clip_prompt"), UI("init_latent"),
    UI("init_sample"), UI("init_sample_raw"), UI("mask_sample"), UI("init_c"),
    UI("resume_from_timestring"), UI("resume_timestring"),
    UI("using_vid_init"), UI("skip_video_creation"), UI("skip_video_for_run_all"),
    UI("make_gif"), UI("delete_imgs"), UI("delete_input_frames"),
    UI("image_path"), UI("mp4_path"), UI("store_frames_in_ram"),
    UI("sd_model_hash"), UI("deforum_git_commit_id"), UI("motion_preview_mode"),
    UI("save_depth_maps"), UI("reroll_patience"), UI("strength_0_no_init"),
    UI("init_image_box"), UI("aspect_ratio_use_old_formula"),
    UI("pix2pix_img_cfg_scale_schedule"), UI("prompt_weighting"),
    UI("normalize_prompt_weights"), UI("log_weighted_subprompts"),
    UI("interpolate_key_frames"), UI("interpolate_x_frames"),
    UI("video_init_path"), UI("extract_nth_frame"), UI("extract_from_frame"),
    UI("extract_to_frame"), UI("overwrite_extracted_frames"),
    UI("exposure_target"), UI("colormatch_image"), UI("colormatch_n_colors"),
    UI("ignore_sat_weight"), UI("clip_name"), UI("cutn"), UI("cut_pow"),
    UI("init_mse_image"), UI("gradient_wrt"), UI("gradient_add_to"),
    UI("decode_method"), UI("grad_threshold_type"),
    UI("clamp_grad_threshold"), UI("clamp_start"), UI("clamp_stop"),
    UI("grad_inject_timing"), UI("r_upscale_factor"), UI("r_upscale_model"),
    UI("r_upscale_keep_imgs"), UI("frame_interpolation_x_amount"),
    UI("frame_interpolation_slow_mo_enabled"),
    UI("frame_interpolation_slow_mo_amount"),
    UI("frame_interpolation_keep_imgs"),
    UI("frame_interpolation_use_upscaled"), UI("soundtrack_path"),
    UI("models_path"), UI("output_path"), UI("model_config"),
    UI("model_checkpoint"), UI("custom_config_path"),
    UI("custom_checkpoint_path"), UI("mask_preset_names"), UI("frames_cache"),
    UI("raw_batch_name"), UI("raw_seed"), UI("first_frame"),
    UI("initial_info"), UI("current_user_os"), UI("noise_mask"),
    UI("half_precision"), UI("device"), UI("clipseg_model"),
    UI("tmp_deforum_run_duplicated_folder"),
    UI("enable_steps_scheduling"), UI("steps_schedule"), UI("seed_schedule"),
    UI("cfg_scale_schedule"), UI("scale"), UI("strength"), UI("fov"),
    UI("near_plane"), UI("far_plane"),
    /* warping and sampling details vtl's renderer decides itself */
    ALWAYS("border"), ALWAYS("noise_type"),
    GATED("perlin_w", "noise_type", "\"uniform\""),
    GATED("perlin_h", "noise_type", "\"uniform\""),
    GATED("perlin_octaves", "noise_type", "\"uniform\""),
    GATED("perlin_persistence", "noise_type", "\"uniform\""),
    GATED("use_depth_warping", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("depth_algorithm", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("midas_weight", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("padding_mode", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("sampling_mode", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("aspect_ratio_schedule", "animation_mode", "\"2D\"|\"Interpolation\""),
    OFF("transform_center_x", "\"0:(0.5)\""),
    OFF("transform_center_y", "\"0:(0.5)\""),
    /* features with an off switch */
    OFF("enable_perspective_flip", "false"), OFF("flip_2d_perspective", "false"),
    GATED("perspective_flip_theta", "enable_perspective_flip", "false"),
    GATED("perspective_flip_phi", "enable_perspective_flip", "false"),
    GATED("perspective_flip_gamma", "enable_perspective_flip", "false"),
    GATED("perspective_flip_fv", "enable_perspective_flip", "false"),
    OFF("enable_subseed_scheduling", "false"),
    GATED("subseed_schedule", "enable_subseed_scheduling", "false"),
    GATED("subseed_strength_schedule", "enable_subseed_scheduling", "false"),
    OFF("enable_sampler_scheduling", "false"),
    GATED("sampler_schedule", "enable_sampler_scheduling", "false"),
    OFF("enable_checkpoint_scheduling", "false"),
    GATED("checkpoint_schedule", "enable_checkpoint_scheduling", "false"),
    OFF("enable_clipskip_scheduling", "false"),
    GATED("clipskip_schedule", "enable_clipskip_scheduling", "false"),
    OFF("enable_noise_multiplier_scheduling", "false"),
    GATED("noise_multiplier_schedule", "enable_noise_multiplier_scheduling",
          "false"),
    OFF("enable_ddim_eta_scheduling", "false"),
    GATED("ddim_eta_schedule", "enable_ddim_eta_scheduling", "false"),
    OFF("enable_ancestral_eta_scheduling", "false"),
    GATED("ancestral_eta_schedule", "enable_ancestral_eta_scheduling", "false"),
    OFF("amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("kernel_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("sigma_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("threshold_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    OFF("color_coherence", "\"None\""),
    GATED("color_coherence_image_path", "color_coherence", "\"None\""),
    GATED("color_coherence_video_every_N_frames", "color_coherence", "\"None\""),
    GATED("legacy_colormatch", "color_coherence", "\"None\""),
    OFF("color_force_grayscale", "false"),
    OFF("optical_flow_cadence", "\"None\"|false"),
    GATED("cadence_flow_factor_schedule", "optical_flow_cadence", "\"None\"|false"),
    OFF("optical_flow_redo_generation", "\"None\"|false"),
    GATED("redo_flow_factor_schedule", "optical_flow_redo_generation",
          "\"None\"|false"),
    OFF("diffusion_redo", "0|\"0\""),
    OFF("use_init", "false"), GATED("init_image", "use_init", "false"),
    GATED("add_init_noise", "use_init", "false"),
    GATED("init_noise", "use_init", "false"),
    OFF("use_mask", "false"), GATED("mask_file", "use_mask", "false"),
    GATED("invert_mask", "use_mask", "false"),
    GATED("mask_brightness_adjust", "use_mask", "false"),
    GATED("mask_contrast_adjust", "use_mask", "false"),
    GATED("overlay_mask", "use_mask", "false"),
    GATED("mask_overlay_blur", "use_mask", "false"),
    GATED("fill", "use_mask", "false"), GATED("full_res_mask", "use_mask", "false"),
    GATED("full_res_mask_padding", "use_mask", "false"),
    GATED("use_alpha_as_mask", "use_mask", "false"),
    GATED("mask_schedule", "use_mask", "false"),
    OFF("use_noise_mask", "false"),
    GATED("noise_mask_schedule", "use_noise_mask", "false"),
    OFF("use_mask_video", "false"),
    GATED("video_mask_path", "use_mask_video", "false"),
    OFF("use_looper", "false"), GATED("init_images", "use_looper", "false"),
    GATED("image_strength_schedule", "use_looper", "false"),
    GATED("blendFactorMax", "use_looper", "false"),
    GATED("blendFactorSlope", "use_looper", "false"),
    GATED("tweening_frames_schedule", "use_looper", "false"),
    GATED("color_correction_factor", "use_looper", "false"),
    OFF("parseq_manifest", "null|\"\""),
    GATED("parseq_use_deltas", "parseq_manifest", "null|\"\""),
    GATED("parseq_non_schedule_overrides", "parseq_manifest", "null|\"\""),
    OFF("mean_scale", "0|0.0"), OFF("var_scale", "0|0.0"),
    OFF("exposure_scale", "0|0.0"), OFF("colormatch_scale", "0|0.0"),
    OFF("clip_scale", "0|0.0"), OFF("aesthetics_scale", "0|0.0"),
    OFF("init_mse_scale", "0|0.0"), OFF("blue_scale", "0|0.0"),
    OFF("ddim_eta", "0|0.0"), OFF("dynamic_threshold", "null"),
    OFF("static_threshold", "null"), OFF("restore_faces", "false"),
    OFF("tiling", "false"), OFF("seed_resize_from_w", "0|-1"),
    OFF("seed_resize_from_h", "0|-1"), OFF("reroll_blank_frames", "\"ignore\""),
    OFF("subseed", "-1"), OFF("subseed_strength", "0|0.0"),
    OFF("frame_interpolation_engine", "\"None\""),
    OFF("r_upscale_video", "false"), OFF("add_soundtrack", "\"None\""),
};

/* Does the value of `key` in the file read as one of `offs`? Schedules are
 * compared without whitespace. Absent keys are off. */
static bool is_off(json_t *root, const char *key, const char *offs) {
  json_t *v = json_object_get(root, key);
  if (!v) return true;
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) return false;
  char *w = text;
  for (char *r = text; *r; r++)
    if (!isspace((unsigned char)*r)) *w++ = *r;
  *w = '\0';
  bool off = false;
  for (const char *p = offs; p && *p && !off;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    off = strlen(text) == n && memcmp(text, p, n) == 0;
    p = bar ? bar + 1 : NULL;
  }
  free(text);
  return off;
}

/* Lists every key nobody read in three warnings. */
static int report_rest(dimp *d) {
  sbuf unsup = {0}, ignored = {0}, unknown = {0};
  int ncn = 0, cn_on = 0;
  /* hybrid video: A1111 names, then Colab 0.7's hybrid_video_* */
  bool hybrid_on = !is_off(d->root, "hybrid_composite", "\"None\"|false") ||
                   !is_off(d->root, "hybrid_motion", "\"None\"") ||
                   !is_off(d->root, "hybrid_video_composite", "\"None\"|false") ||
                   !is_off(d->root, "hybrid_video_motion", "\"None\"");
  const char *k;
  json_t *v;
  json_object_foreach(d->root, k, v) {
    json_t *s = json_object_get(d->seen, k);
    if (s && json_is_true(s)) continue;
    if (s) { /* read, no effect */
      sb_printf(&ignored, "%s%s", ignored.n ? ", " : "", k);
      continue;
    }
    if (strncmp(k, "cn_", 3) == 0 && isdigit((unsigned char)k[3])) {
      ncn++;
      const char *us = strchr(k + 3, '_');
      if (us && strcmp(us, "_enabled") == 0 && json_is_true(v)) cn_on++;
      continue;
    }
    if (strncmp(k, "hybrid_", 7) == 0) {
      sbuf *b = hybrid_on ? &unsup : &ignored;
      sb_printf(b, "%s%s", b->n ? ", " : "", k);
      continue;
    }
    size_t i = 0, n = sizeof known_keys / sizeof known_keys[0];
    while (i < n && strcmp(known_keys[i].name, k)) i++;
    sbuf *b = &unknown;
    if (i < n) {
      const known_key *kk = &known_keys[i];
      bool off = kk->ui || (kk->off && is_off(d->root, kk->gate ? kk->gate : k,
                                              kk->off));
      /* a gate key present in the old name (flip_2d_perspective) */
      if (!off && kk->gate && strcmp(kk->gate, "enable_perspective_flip") == 0 &&
          !json_object_get(d->root, kk->gate))
        off = is_off(d->root, "flip_2d_perspective", "false");
      b = off ? &ignored : &unsup;
    }
    sb_printf(b, "%s%s", b->n ? ", " : "", k);
  }
  int rc = 0;
  if (ncn) {
    if (cn_on)
      sb_printf(&unsup, "%scn_* (%d ControlNet unit%s enabled)",
                unsup.n ? ", " : "", cn_on, cn_on > 1 ? "s" : "");
    else
      sb_printf(&ignored, "%scn_* (%d ControlNet keys, all units disabled)",
                ignored.n ? ", " : "", ncn);
  }
  if (unsup.oom || ignored.oom || unknown.oom) rc = VTL_ENOMEM;
  if (!rc && unsup.n)
    rc = vtl_warnings_add(&d->warn, "unsupported settings ignored (Deforum "
                          "uses them; vtl does not model them): %s", unsup.p);
  if (!rc && ignored.n)
    rc = vtl_warnings_add(&d->warn, "settings ignored (UI, output or "
                          "switched off): %s", ignored.p);
  if (!rc && unknown.n)
    rc = vtl_warnings_add(&d->warn, "unknown keys ignored: %s", unknown.p);
  free(unsup.p);
  free(ignored.p);
  free(unknown.p);
  return rc;
}

/* ---- import ------------------------------------------------------------------------ */

static const struct {
  const char *name; /* lower case; Colab and A1111 spellings */
  int sampler;      /* vtl_sampler, or -1: Deforum has it, vtl does not */
} samplers[] = {
    {"euler", VTL_SAMPLER_EULER},
    {"euler_ancestral", VTL_SAMPLER_EULER_A},
    {"euler a", VTL_SAMPLER_EULER_A},
    {"euler_a", VTL_SAMPLER_EULER_A},
    {"ddim", VTL_SAMPLER_DDIM},
    {"dpmpp_2m", VTL_SAMPLER_DPMPP_2M},
    {"dpm++ 2m", VTL_SAMPLER_DPMPP_2M},
    {"dpm++ 2m karras", VTL_SAMPLER_DPMPP_2M}, /* warned: sigma schedule */
    {"lcm", VTL_SAMPLER_LCM},
    {"klms", -1}, {"lms", -1}, {"lms karras", -1}, {"heun", -1}, {"dpm2", -1},
    {"dpm2 a", -1}, {"dpm2_ancestral", -1}, {"dpm2 karras", -1},
    {"dpm2 a karras", -1}, {"dpm++ 2s a", -1}, {"dpmpp_2s_a", -1},
    {"dpm++ 2s a karras", -1}, {"dpm++ sde", -1}, {"dpm++ sde karras", -1},
    {"dpm++ 2m sde", -1}, {"dpm++ 2m sde karras", -1},
    {"dpm++ 2m sde exponential", -1}, {"dpm++ 2m sde heun", -1},
    {"dpm++ 2m sde heun karras", -1}, {"dpm++ 2m sde heun exponential", -1},
    {"dpm++ 3m sde", -1}, {"dpm++ 3m sde karras", -1},
    {"dpm++ 3m sde exponential", -1}, {"dpm fast", -1}, {"dpm_fast", -1},
    {"dpm adaptive", -1}, {"dpm_adaptive", -1}, {"plms", -1}, {"unipc", -1},
    {"restart", -1}, {"ddpm", -1},
};

static int import_sampler(dimp *d) {
  const char *name;
  TRY(get_str(d, "sampler", "euler_ancestral", &name));
  char low[64];
  size_t n = 0;
  for (; name[n] && n + 1 < sizeof low; n++)
    low[n] = (char)tolower((unsigned char)name[n]);
  low[n] = '\0';
  size_t i = 0, ns = sizeof samplers / sizeof samplers[0];
  while (i < ns && strcmp(samplers[i].name, low)) i++;
  if (i == ns)
    return dfail(d->err, VTL_EINVAL, "sampler: unknown sampler \"%.40s\" "
                 "(Deforum has euler, euler_ancestral / \"Euler a\", ddim, "
                 "dpmpp_2m / \"DPM++ 2M\", klms, heun, ...)", name);
  int s = samplers[i].sampler;
  if (s < 0) {
    TRY(warn(d, "sampler: \"%s\" is not in vtl; euler used instead", name));
    s = VTL_SAMPLER_EULER;
  } else if (strstr(low, "karras")) {
    TRY(warn(d, "sampler: \"%s\": the Karras sigma schedule is not modelled; "
             "dpmpp_2m used", name));
  }
  return set_tl_int(d, "sampler", s);
}

static int import_seed(dimp *d) {
  int64_t seed, n;
  const char *beh;
  TRY(get_int(d, "seed", -1, &seed));
  if (seed == -1) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < d->len; i++)
      h = (h ^ (unsigned char)d->src[i]) * 16777619u;
    seed = h;
    TRY(warn(d, "seed: -1 (random in Deforum) replaced by %lld, a hash of "
             "the file", (long long)seed));
  } else if (seed < 0 || (double)seed > SEED_MAX) {
    return dfail(d->err, VTL_ERANGE, "seed: %lld is outside 0..4294967295 "
                 "(-1: random)", (long long)seed);
  }
  d->seed = seed;
  snprintf(d->seed_text, sizeof d->seed_text, "%lld", (long long)seed);
  TRY(get_str(d, "seed_behavior", "iter", &beh));
  int mode = vtl_enum_lookup(vtl_seed_mode_names, beh);
  if (mode < 0)
    return dfail(d->err, VTL_EINVAL, "seed_behavior: unknown value \"%.40s\" "
                 "(iter, fixed, ladder, alternate, random, schedule)", beh);
  if (mode == VTL_SEED_RANDOM)
    TRY(warn(d, "seed_behavior: random is not reproducible in Deforum; vtl "
             "uses a deterministic hash of the seed and the frame"));
  TRY(get_int(d, "seed_iter_N", 1, &n));
  if (n < 1 || n > 1000000)
    return dfail(d->err, VTL_ERANGE, "seed_iter_N: %lld is outside 1..1000000",
                 (long long)n);
  TRY(set_tl_int(d, "seed", seed));
  TRY(set_tl_int(d, "seed_mode", mode));
  TRY(set_tl_int(d, "seed_iter_n", n));
  if (mode == VTL_SEED_SCHEDULE) {
    if (!json_object_get(d->root, "seed_schedule"))
      return dfail(d->err, VTL_EINVAL, "seed_schedule: missing (seed_behavior "
                   "is schedule)");
    return import_schedule(d, "seed_schedule", VTL_PARAM_SEED, false);
  }
  dinactive(d, "seed_schedule");
  return 0;
}

/* Width or height: floored to a multiple of 8 with a warning. */
static int import_size(dimp *d, const char *key, const char *field) {
  int64_t v;
  TRY(get_int(d, key, 512, &v));
  if (v < 8 || v > 8192)
    return dfail(d->err, VTL_ERANGE, "%s: %lld is outside 8..8192", key,
                 (long long)v);
  if (v % 8) {
    TRY(warn(d, "%s: %lld rounded down to %lld (a multiple of 8)", key,
             (long long)v, (long long)(v - v % 8)));
    v -= v % 8;
  }
  return set_tl_int(d, field, v);
}

/* Schedules in the order their tracks are made (export writes the same
 * order, so a round trip mints the same ids). */
static const struct {
  const char *key;
  const char *colab; /* Colab's constant when the schedule is absent */
  int param;
  bool motion;       /* unused in Interpolation mode */
} schedules[] = {
    {"angle", NULL, VTL_PARAM_ANGLE, true},
    {"zoom", NULL, VTL_PARAM_ZOOM, true},
    {"translation_x", NULL, VTL_PARAM_TX, true},
    {"translation_y", NULL, VTL_PARAM_TY, true},
    {"translation_z", NULL, VTL_PARAM_TZ, true},
    {"rotation_3d_x", NULL, VTL_PARAM_RX, true},
    {"rotation_3d_y", NULL, VTL_PARAM_RY, true},
    {"rotation_3d_z", NULL, VTL_PARAM_RZ, true},
    {"fov_schedule", "fov", VTL_PARAM_FOV, true},
    {"near_schedule", "near_plane", VTL_PARAM_NEAR, true},
    {"far_schedule", "far_plane", VTL_PARAM_FAR, true},
    {"noise_schedule", NULL, VTL_PARAM_NOISE, true},
    {"contrast_schedule", NULL, VTL_PARAM_CONTRAST, true},
    {"cfg_scale_schedule", NULL, VTL_PARAM_GUIDANCE, false},
};

static int import_all(dimp *d, const vtl_deforum_options *opt) {
  /* keys only the A1111 extension writes (Colab saves "prompts" too) */
  static const char *const a1111_marks[] = {
      "cfg_scale_schedule", "sd_model_name", "deforum_git_commit_id",
      "positive_prompts", "negative_prompts", "animation_prompts_positive",
      "animation_prompts_negative", NULL};
  for (int i = 0; a1111_marks[i]; i++)
    if (json_object_get(d->root, a1111_marks[i])) d->a1111 = true;

  /* animation mode and length first: schedules need them */
  const char *mode;
  TRY(get_str(d, "animation_mode", "2D", &mode));
  int anim;
  if (strcmp(mode, "2D") == 0) {
    anim = VTL_ANIM_2D;
  } else if (strcmp(mode, "3D") == 0) {
    anim = VTL_ANIM_3D;
  } else if (strcmp(mode, "Interpolation") == 0) {
    anim = VTL_ANIM_2D;
    d->interp_mode = true;
    TRY(warn(d, "animation_mode: Interpolation imported as 2D at strength 1 "
             "(every frame fully denoised), no motion, prompts blended"));
  } else if (strcmp(mode, "None") == 0 || strcmp(mode, "Video Input") == 0) {
    return dfail(d->err, VTL_EUNSUPPORTED, "animation_mode: \"%s\" is not "
                 "supported (2D, 3D, Interpolation)", mode);
  } else {
    return dfail(d->err, VTL_EINVAL, "animation_mode: unknown value \"%.40s\" "
                 "(2D, 3D, Interpolation)", mode);
  }
  d->blend = d->interp_mode || (opt && opt->blend_prompts);
  if (!json_object_get(d->root, "max_frames"))
    return dfail(d->err, VTL_EINVAL, "max_frames: missing");
  TRY(get_int(d, "max_frames", 0, &d->length));
  if (d->length < 1 || d->length > VTL_MAX_FRAMES)
    return dfail(d->err, VTL_ERANGE, "max_frames: %lld is outside 1..%d",
                 (long long)d->length, VTL_MAX_FRAMES);
  bool has_fps = json_object_get(d->root, "fps") != NULL;
  TRY(get_real(d, "fps", d->a1111 ? 15 : 12, &d->fps));
  if (d->fps < 1 || d->fps > 240)
    return dfail(d->err, VTL_ERANGE, "fps: %g is outside 1..240", d->fps);
  if (!has_fps)
    TRY(warn(d, "fps: missing; %g used (Deforum's video default)", d->fps));
  TRY(set_tl_int(d, "anim_mode", anim));
  TRY(set_tl_int(d, "length", d->length));
  TRY(set_tl_real(d, "fps", d->fps));
  TRY(import_size(d, "W", "width"));
  TRY(import_size(d, "H", "height"));

  const char *s;
  TRY(get_str(d, "batch_name", "", &s));
  if (strlen(s) > VTL_MAX_NAME)
    return dfail(d->err, VTL_ETOOLONG, "batch_name: longer than %d bytes",
                 VTL_MAX_NAME);
  if (*s) TRY(set_tl_str(d, "name", s));
  TRY(get_str(d, "sd_model_name", "", &s));
  if (strlen(s) > VTL_MAX_NAME)
    return dfail(d->err, VTL_ETOOLONG, "sd_model_name: longer than %d bytes",
                 VTL_MAX_NAME);
  if (*s) TRY(set_tl_str(d, "model", s));

  TRY(import_seed(d));
  TRY(import_sampler(d));

  /* constants that schedules may override */
  int64_t steps;
  TRY(get_int(d, "steps", d->a1111 ? 25 : 50, &steps));
  if (steps < 1 || steps > 1000)
    return dfail(d->err, VTL_ERANGE, "steps: %lld is outside 1..1000",
                 (long long)steps);
  d->tl_steps = steps;
  TRY(get_real(d, "scale", 7, &d->tl_guidance));
  if (d->tl_guidance < 0 || d->tl_guidance > 50)
    return dfail(d->err, VTL_ERANGE, "scale: %g is outside 0..50",
                 d->tl_guidance);
  d->tl_strength = vtl_param_table[VTL_PARAM_STRENGTH].def;
  if (json_object_get(d->root, "strength_schedule")) {
    dinactive(d, "strength");
  } else if (json_object_get(d->root, "strength")) {
    double st;
    TRY(get_real(d, "strength", 0.65, &st));
    if (st < 0 || st > 1) {
      TRY(warn(d, "strength: %g clamped to 0..1 (as Deforum does)", st));
      st = st < 0 ? 0 : 1;
    }
    d->tl_strength = 1 - st;
  }

  /* schedules */
  for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++) {
    const char *key = schedules[i].key, *colab = schedules[i].colab;
    if (d->interp_mode && schedules[i].motion) {
      dinactive(d, key);
      if (colab) dinactive(d, colab);
    } else if (colab && !json_object_get(d->root, key)) {
      TRY(import_constant(d, colab, key, schedules[i].param));
    } else {
      if (colab) dinactive(d, colab);
      TRY(import_schedule(d, key, schedules[i].param, false));
    }
  }
  bool steps_on = false;
  TRY(get_bool(d, "enable_steps_scheduling", !d->a1111, &steps_on));
  if (steps_on) TRY(import_schedule(d, "steps_schedule", VTL_PARAM_STEPS, false));
  else dinactive(d, "steps_schedule");
  if (d->interp_mode) {
    dinactive(d, "strength_schedule");
    d->tl_strength = 1;
  } else {
    TRY(import_schedule(d, "strength_schedule", VTL_PARAM_STRENGTH, true));
  }
  if (json_object_get(d->root, "cfg_scale_schedule") &&
      json_object_get(d->root, "scale"))
    json_object_set_new(d->seen, "scale", json_true());

  int64_t cadence;
  TRY(get_int(d, "diffusion_cadence", d->a1111 ? 2 : 1, &cadence));
  if (d->interp_mode) {
    dinactive(d, "diffusion_cadence");
  } else {
    if (cadence < 1 || cadence > 100)
      return dfail(d->err, VTL_ERANGE, "diffusion_cadence: %lld is outside "
                   "1..100", (long long)cadence);
    skey k = {0, true, (double)cadence, NULL, NULL};
    TRY(emit_keys(d, "diffusion_cadence", VTL_PARAM_CADENCE, &k, 1));
  }

  TRY(set_tl_int(d, "steps", d->tl_steps));
  TRY(set_tl_real(d, "guidance", d->tl_guidance));
  TRY(set_tl_real(d, "strength", d->tl_strength));

  TRY(import_prompts(d));
  return report_rest(d);
}

/* The path of object keys open at byte `pos` of a JSON text, such as
 * `prompts."40"`, for syntax errors: jansson reports a position but not
 * where in the object it is. Empty when pos is at the top level. */
static void key_before(const char *s, size_t len, size_t pos, char *out,
                       size_t outlen) {
  enum { DEPTH = 8 };
  typedef struct {
    size_t off, n;
  } span;
  span key[DEPTH]; /* the last key seen at each depth */
  int depth = 0;
  out[0] = '\0';
  if (pos > len) pos = len;
  for (size_t i = 0; i < pos; i++) {
    char c = s[i];
    if (c == '{' || c == '[') {
      if (depth < DEPTH) key[depth] = (span){0, 0};
      depth++;
    } else if ((c == '}' || c == ']') && depth > 0) {
      depth--;
    } else if (c == '"') {
      size_t st = ++i;
      while (i < pos && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
      if (i >= pos) break;
      size_t j = i + 1;
      while (j < pos && isspace((unsigned char)s[j])) j++;
      if (j < pos && s[j] == ':' && depth >= 1 && depth <= DEPTH)
        key[depth - 1] = (span){st, i - st};
    }
  }
  size_t o = 0;
  for (int d = 0; d < depth && d < DEPTH && o + 8 < outlen; d++) {
    if (!key[d].n) break;
    int n = (int)(key[d].n > 40 ? 40 : key[d].n);
    int w = snprintf(out + o, outlen - o, d ? ".\"%.*s\"" : "%.*s", n,
                     s + key[d].off);
    if (w < 0) break;
    o += (size_t)w < outlen - o ? (size_t)w : outlen - o - 1;
  }
}

int vtl_deforum_import(const char *json, size_t len,
                       const vtl_deforum_options *opt, vtl_doc **out,
                       vtl_warnings *warnings, vtl_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!json || !out) return dfail(err, VTL_EINVAL, "deforum: no input");
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    char key[160];
    key_before(json, len, (size_t)jerr.position, key, sizeof key);
    return dfail(err, VTL_EPARSE, "%s%sline %d, column %d: %s", key,
                 *key ? ": " : "", jerr.line, jerr.column, jerr.text);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return dfail(err, VTL_EPARSE, "settings: expected a JSON object");
  }
  dimp d = {0};
  d.root = root;
  d.src = json;
  d.len = len;
  d.err = err;
  d.next_id = VTL_TIMELINE_ID + 1;
  vtl_doc *doc = NULL;
  int rc = 0;
  if (!(d.seen = json_object()) || vtl_expr_ctx_new(&d.x)) rc = VTL_ENOMEM;
  if (!rc) rc = import_all(&d, opt);
  if (!rc) rc = vtl_doc_new(&doc);
  if (!rc) rc = vtl_doc_apply(doc, d.ops, d.nops, NULL, NULL, err);
  if (!rc && warnings) {
    for (size_t i = 0; i < d.warn.n && !rc; i++)
      rc = vtl_warnings_add(warnings, "%s", d.warn.items[i]);
  }
  if (rc && err && !err->message[0])
    dfail(err, rc, "deforum: %s", vtl_strerror(rc));
  if (rc) {
    vtl_doc_free(doc);
  } else {
    *out = doc;
  }
  vtl_ops_free(d.ops, d.nops);
  vtl_warnings_free(&d.warn);
  vtl_expr_ctx_free(d.x);
  json_decref(d.seen);
  json_decref(root);
  return rc;
}

/* ---- export ------------------------------------------------------------------------ */

typedef struct {
  vtl_doc *doc;
  const vtl_timeline *tl;
  vtl_warnings *w;
  vtl_error *err;
  vtl_expr_ctx *x;
} dexp;

static int xwarn(dexp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xwarn(dexp *e, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vtl_warnings_add(e->w, "%s", buf);
}

static int cmp_kf(const void *a, const void *b) {
  const vtl_keyframe *x = *(const vtl_keyframe *const *)a;
  const vtl_keyframe *y = *(const vtl_keyframe *const *)b;
  if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* The keys of the track that drives parameter p (eval.c rule 1): malloc'd
 * and sorted, or *n = 0 when nothing drives it. */
static int driving_keys(dexp *e, int p, const vtl_keyframe ***out, size_t *n) {
  size_t nt, nk;
  const void *const *tracks = vtl_doc_list(e->doc, VTL_ENT_TRACK, &nt);
  const vtl_track *best = NULL;
  *out = NULL;
  *n = 0;
  const void *const *keys = vtl_doc_list(e->doc, VTL_ENT_KEYFRAME, &nk);
  for (size_t i = 0; i < nt; i++) {
    const vtl_track *t = tracks[i];
    if (t->mute || t->target != p) continue;
    bool has = false;
    for (size_t j = 0; j < nk && !has; j++)
      has = ((const vtl_keyframe *)keys[j])->track == t->id;
    if (!has) continue;
    if (!best || t->order < best->order ||
        (t->order == best->order && t->id < best->id))
      best = t;
  }
  if (!best) return 0;
  const vtl_keyframe **k = malloc(nk * sizeof *k);
  if (!k) return VTL_ENOMEM;
  size_t m = 0;
  for (size_t j = 0; j < nk; j++)
    if (((const vtl_keyframe *)keys[j])->track == best->id) k[m++] = keys[j];
  qsort(k, m, sizeof *k, cmp_kf);
  *out = k;
  *n = m;
  return 0;
}

/* Value of key k at frame t (its expression, or its value if that fails). */
static double kval(dexp *e, const vtl_keyframe *k, int64_t t) {
  if (!k->expr[0]) return k->value;
  double v;
  char msg[160];
  if (eval_at(e->x, k->expr, t, e->tl->fps, e->tl->length, &v, msg, sizeof msg))
    return k->value;
  return v;
}

static void put_key(sbuf *b, int64_t frame, const char *val) {
  sb_printf(b, "%s%lld: (%s)", b->n ? ", " : "", (long long)frame, val);
}

static void put_num(sbuf *b, int64_t frame, double v, bool invert) {
  char num[400];
  fmt_num(num, sizeof num, v, invert);
  put_key(b, frame, num);
}

/* The numexpr text of a vtl expression if it reads back (through the
 * importer's rewriting) as an expression with the same values on frames
 * [from, to); NULL otherwise. malloc'd. */
static char *expr_numexpr(dexp *e, const char *lua, bool invert, int64_t from,
                          int64_t to) {
  const char *body = lua;
  char *inner = NULL;
  size_t n = strlen(lua);
  if (invert) {
    /* our own wrapper 1-(X): write X */
    if (n > 4 && strncmp(lua, "1-(", 3) == 0 && lua[n - 1] == ')' &&
        match_paren(lua, n, 2) == n) {
      if (!(inner = xstrndup(lua + 3, n - 4))) return NULL;
      body = inner;
    } else {
      size_t m = n + 5;
      if (!(inner = malloc(m))) return NULL;
      snprintf(inner, m, "1-(%s)", lua);
      body = inner;
    }
  }
  char nx[VTL_MAX_EXPR * 2 + 64];
  sbuf b = {0};
  char *res = NULL;
  if (vtl_expr_to_numexpr(body, nx, sizeof nx) == 0 &&
      lua_names(&b, nx, strlen(nx), e->tl->fps) == 0 && !b.oom) {
    /* read it back the way the importer will and compare */
    char back[VTL_MAX_EXPR * 2 + 64], msg[160];
    sbuf nb = {0};
    char seed[24];
    snprintf(seed, sizeof seed, "%lld", (long long)e->tl->seed);
    bool ok = nx_names(&nb, b.p, b.n, seed, msg, sizeof msg) == 0 && !nb.oom &&
              vtl_expr_from_numexpr(sb_str(&nb), back, sizeof back) == 0;
    free(nb.p);
    char *lua2 = NULL;
    if (ok) {
      size_t m = strlen(back) + 6;
      if ((lua2 = malloc(m)))
        snprintf(lua2, m, invert ? "1-(%s)" : "%s", back);
      ok = lua2 != NULL;
    }
    /* and Deforum's numexpr must agree with vtl on every frame */
    for (int64_t f = from; ok && f < to; f++) {
      double v1, v2, v3;
      const char *nmsg;
      if (eval_at(e->x, lua, f, e->tl->fps, e->tl->length, &v1, msg,
                  sizeof msg) ||
          eval_at(e->x, lua2, f, e->tl->fps, e->tl->length, &v2, msg,
                  sizeof msg) ||
          nx_evaluate(b.p, b.n, true, (double)f, (double)(e->tl->length - 1),
                      (double)e->tl->seed, &v3, &nmsg) ||
          !(fabs(v1 - v2) <= 1e-12 * fmax(1, fabs(v1))) ||
          !(fabs(v1 - (invert ? 1 - v3 : v3)) <= 1e-9 * fmax(1, fabs(v1))))
        ok = false;
    }
    free(lua2);
    double num;
    /* a constant would read as a number (interpolated): keep it an
     * expression (held) with a space, as Deforum tests the text as is */
    if (ok && is_plain_number(b.p, b.n, &num)) sb_puts(&b, " ");
    if (ok && !b.oom) res = strdup(b.p);
  }
  free(b.p);
  free(inner);
  return res;
}

/* The schedule string of parameter p (strength inverted to Deforum's). */
static int export_schedule(dexp *e, int p, const char *key, sbuf *b,
                           bool *driven) {
  const vtl_keyframe **k;
  size_t n;
  bool invert = p == VTL_PARAM_STRENGTH;
  int64_t len = e->tl->length;
  TRY(driving_keys(e, p, &k, &n));
  *driven = n > 0;
  if (n == 0) {
    double v;
    switch (p) {
    case VTL_PARAM_STRENGTH: v = e->tl->strength; break;
    case VTL_PARAM_GUIDANCE: v = e->tl->guidance; break;
    case VTL_PARAM_STEPS: v = (double)e->tl->steps; break;
    case VTL_PARAM_SEED: v = (double)e->tl->seed; break;
    default: v = vtl_param_table[p].def;
    }
    put_num(b, 0, v, invert);
    return 0;
  }
  /* skip keys that share a frame (the last one wins in eval.c) and keys
   * past the end (Deforum ignores them; a line towards one is cut with a
   * sample at the last frame) */
  int sampled_from = -1;
  bool wrote_expr_samples = false;
  if (k[0]->frame > 0) put_num(b, 0, kval(e, k[0], k[0]->frame), invert);
  for (size_t i = 0; i < n; i++) {
    const vtl_keyframe *a = k[i];
    if (i + 1 < n && k[i + 1]->frame == a->frame) continue;
    if (a->frame >= len) break;
    const vtl_keyframe *nb = i + 1 < n ? k[i + 1] : NULL;
    int64_t next = nb ? nb->frame : len;
    int64_t stop = next < len ? next : len; /* frames this key covers */
    if (a->expr[0]) {
      char *nx = expr_numexpr(e, a->expr, invert, a->frame, stop);
      if (nx) {
        put_key(b, a->frame, nx);
        free(nx);
        continue;
      }
      for (int64_t f = a->frame; f < stop; f++)
        put_num(b, f, kval(e, a, f), invert);
      if (!wrote_expr_samples)
        TRY(xwarn(e, "%s: expression \"%.60s\" has no numexpr form; written "
                  "as per-frame values", key, a->expr));
      wrote_expr_samples = true;
      continue;
    }
    put_num(b, a->frame, a->value, invert);
    if (!nb) continue;
    double vb = kval(e, nb, nb->frame);
    if (a->interp == VTL_INTERP_LINEAR) {
      if (next >= len && len - 1 > a->frame) /* cut the line at the end */
        put_num(b, len - 1, vtl_curve_segment(a, a->value, nb, vb,
                                              (double)(len - 1)), invert);
    } else if (a->interp == VTL_INTERP_HOLD) {
      if (stop - 1 > a->frame) put_num(b, stop - 1, a->value, invert);
    } else {
      for (int64_t f = a->frame + 1; f < stop; f++)
        put_num(b, f, vtl_curve_segment(a, a->value, nb, vb, (double)f), invert);
      if (sampled_from < 0) {
        sampled_from = (int)a->frame;
        TRY(xwarn(e, "%s: %s curve from frame %lld written as per-frame "
                  "values (Deforum interpolates linearly)", key,
                  vtl_interp_names[a->interp], (long long)a->frame));
      }
    }
  }
  free(k);
  return b->oom ? VTL_ENOMEM : 0;
}

static int jset(json_t *o, const char *key, json_t *v) {
  if (!v) return VTL_ENOMEM;
  return json_object_set_new(o, key, v) ? VTL_ENOMEM : 0;
}

static int jset_str(dexp *e, json_t *o, const char *key, const char *s) {
  json_t *v = json_string(s);
  if (!v)
    return dfail(e->err, VTL_EINVAL, "%s: text is not valid UTF-8", key);
  return jset(o, key, v);
}

static int cmp_clip_key(const void *a, const void *b) {
  const vtl_prompt_clip *x = *(const vtl_prompt_clip *const *)a;
  const vtl_prompt_clip *y = *(const vtl_prompt_clip *const *)b;
  int64_t fx = x->start + x->fade_in, fy = y->start + y->fade_in;
  if (fx != fy) return fx < fy ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* Prompts: one key per clip at the frame it reaches full weight. */
static int export_prompts(dexp *e, json_t *o) {
  size_t nc;
  const void *const *all = vtl_doc_list(e->doc, VTL_ENT_PROMPT_CLIP, &nc);
  const vtl_prompt_clip **c = malloc((nc ? nc : 1) * sizeof *c);
  if (!c) return VTL_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < nc; i++) {
    const vtl_prompt_clip *cl = all[i];
    const vtl_track *t = vtl_doc_get(e->doc, VTL_ENT_TRACK, cl->track);
    if (t && !t->mute) c[n++] = cl;
  }
  qsort(c, n, sizeof *c, cmp_clip_key);
  json_t *pr = json_object();
  int rc = pr ? 0 : VTL_ENOMEM;
  bool fades = false, overlap = false, gap = false, weights = false;
  int64_t covered = 0; /* frames before this are covered by a clip */
  for (size_t i = 0; i < n && !rc; i++) {
    const vtl_prompt_clip *cl = c[i];
    int64_t key = cl->start + cl->fade_in;
    if (cl->fade_in || cl->fade_out) fades = true;
    if (cl->weight != 1) weights = true;
    if (i + 1 < n && c[i + 1]->start + c[i + 1]->fade_in == key) {
      overlap = true; /* the later one (by id) is written */
      continue;
    }
    if (!cl->fade_in && cl->start > covered && cl->start < e->tl->length)
      gap = true;
    if (!cl->fade_in && i > 0 && cl->start < c[i - 1]->end &&
        !c[i - 1]->fade_out)
      overlap = true;
    if (cl->end > covered) covered = cl->end;
    char fr[24];
    snprintf(fr, sizeof fr, "%lld", (long long)key);
    sbuf t = {0};
    sb_puts(&t, cl->text);
    if (cl->negative[0]) sb_printf(&t, " --neg %s", cl->negative);
    rc = t.oom ? VTL_ENOMEM : jset_str(e, pr, fr, t.p);
    free(t.p);
  }
  if (!rc && fades)
    rc = xwarn(e, "prompts: crossfades written as keys at each clip's "
               "full-weight frame; Deforum 2D/3D holds each prompt until the "
               "next (import with blend_prompts to get the fades back)");
  if (!rc && weights)
    rc = xwarn(e, "prompts: clip weights other than 1 are not exported");
  if (!rc && overlap)
    rc = xwarn(e, "prompts: overlapping clips; Deforum has one prompt per "
               "frame");
  if (!rc && gap)
    rc = xwarn(e, "prompts: frames without a clip get the previous prompt "
               "in Deforum");
  if (!rc && json_object_size(pr) == 0)
    rc = xwarn(e, "prompts: none (no clip on an unmuted prompt track)");
  if (!rc && json_object_size(pr)) rc = jset(o, "prompts", json_incref(pr));
  if (!rc && json_object_size(pr))
    rc = jset(o, "animation_prompts", json_incref(pr));
  json_decref(pr);
  free(c);
  if (!rc) rc = jset(o, "animation_prompts_positive", json_string(""));
  if (!rc) rc = jset(o, "animation_prompts_negative", json_string(""));
  if (!rc) rc = jset(o, "positive_prompts", json_string(""));
  if (!rc) rc = jset(o, "negative_prompts", json_string(""));
  return rc;
}

static const char *const sampler_out[] = {"DDIM", "Euler", "Euler a",
                                          "DPM++ 2M", "LCM"};

static int export_all(dexp *e, json_t *o) {
  const vtl_timeline *tl = e->tl;
  char num[64];
  TRY(jset(o, "W", json_integer(tl->width)));
  TRY(jset(o, "H", json_integer(tl->height)));
  TRY(jset(o, "seed", json_integer(tl->seed)));
  TRY(jset(o, "sampler", json_string(sampler_out[tl->sampler])));
  TRY(jset(o, "steps", json_integer(tl->steps)));
  TRY(jset(o, "scale", json_real(tl->guidance)));
  TRY(jset(o, "seed_behavior", json_string(vtl_seed_mode_names[tl->seed_mode])));
  TRY(jset(o, "seed_iter_N", json_integer(tl->seed_iter_n)));
  fmt_num(num, sizeof num, tl->strength, true);
  TRY(jset(o, "strength", json_real(strtod(num, NULL))));
  if (tl->name[0]) TRY(jset_str(e, o, "batch_name", tl->name));
  if (tl->model[0]) TRY(jset_str(e, o, "sd_model_name", tl->model));
  TRY(jset(o, "animation_mode",
           json_string(tl->anim_mode == VTL_ANIM_3D ? "3D" : "2D")));
  TRY(jset(o, "max_frames", json_integer(tl->length)));
  TRY(jset(o, "fps", json_real(tl->fps)));
  if (tl->spacing != VTL_SPACING_LEADING)
    TRY(xwarn(e, "spacing: \"%s\" has no Deforum setting",
              vtl_spacing_names[tl->spacing]));

  /* cadence: a constant in Deforum */
  double cad0 = vtl_param_at(e->doc, VTL_PARAM_CADENCE, 0);
  for (int64_t f = 1; f < tl->length; f++)
    if (vtl_param_at(e->doc, VTL_PARAM_CADENCE, f) != cad0) {
      TRY(xwarn(e, "diffusion_cadence: changes over time in vtl; Deforum's "
                "is one number, frame 0's (%g) written", cad0));
      break;
    }
  TRY(jset(o, "diffusion_cadence", json_integer((json_int_t)cad0)));

  static const struct {
    const char *key;
    int param;
  } sch[] = {
      {"angle", VTL_PARAM_ANGLE},
      {"zoom", VTL_PARAM_ZOOM},
      {"translation_x", VTL_PARAM_TX},
      {"translation_y", VTL_PARAM_TY},
      {"translation_z", VTL_PARAM_TZ},
      {"rotation_3d_x", VTL_PARAM_RX},
      {"rotation_3d_y", VTL_PARAM_RY},
      {"rotation_3d_z", VTL_PARAM_RZ},
      {"fov_schedule", VTL_PARAM_FOV},
      {"near_schedule", VTL_PARAM_NEAR},
      {"far_schedule", VTL_PARAM_FAR},
      {"noise_schedule", VTL_PARAM_NOISE},
      {"strength_schedule", VTL_PARAM_STRENGTH},
      {"contrast_schedule", VTL_PARAM_CONTRAST},
      {"cfg_scale_schedule", VTL_PARAM_GUIDANCE},
      {"steps_schedule", VTL_PARAM_STEPS},
      {"seed_schedule", VTL_PARAM_SEED},
  };
  for (size_t i = 0; i < sizeof sch / sizeof sch[0]; i++) {
    if (sch[i].param == VTL_PARAM_SEED && tl->seed_mode != VTL_SEED_SCHEDULE)
      continue;
    sbuf b = {0};
    bool driven;
    int rc = export_schedule(e, sch[i].param, sch[i].key, &b, &driven);
    if (!rc) rc = b.oom ? VTL_ENOMEM : jset(o, sch[i].key, json_string(b.p));
    free(b.p);
    TRY(rc);
    if (sch[i].param == VTL_PARAM_STEPS)
      TRY(jset(o, "enable_steps_scheduling", json_boolean(driven)));
  }
  /* Colab's constants */
  TRY(jset(o, "fov", json_real(vtl_param_at(e->doc, VTL_PARAM_FOV, 0))));
  TRY(jset(o, "near_plane", json_real(vtl_param_at(e->doc, VTL_PARAM_NEAR, 0))));
  TRY(jset(o, "far_plane", json_real(vtl_param_at(e->doc, VTL_PARAM_FAR, 0))));

  size_t nsampler = 0;
  const vtl_keyframe **sk;
  TRY(driving_keys(e, VTL_PARAM_SAMPLER, &sk, &nsampler));
  free(sk);
  if (nsampler)
    TRY(xwarn(e, "sampler: the sampler track is not exported; the timeline's "
              "sampler is written"));
  TRY(export_prompts(e, o));

  /* switch off what Deforum would otherwise add from its UI defaults */
  TRY(jset(o, "color_coherence", json_string("None")));
  TRY(jset(o, "enable_perspective_flip", json_false()));
  TRY(jset(o, "amount_schedule", json_string("0: (0)")));
  TRY(jset(o, "enable_noise_multiplier_scheduling", json_false()));
  TRY(jset(o, "optical_flow_cadence", json_string("None")));
  TRY(jset(o, "hybrid_motion", json_string("None")));
  TRY(jset(o, "hybrid_composite", json_string("None")));
  TRY(jset(o, "use_init", json_false()));
  TRY(jset(o, "use_mask", json_false()));

  size_t ns, nm;
  const void *const *shots = vtl_doc_list(e->doc, VTL_ENT_SHOT, &ns);
  vtl_doc_list(e->doc, VTL_ENT_MARKER, &nm);
  bool cut = false, own = false;
  for (size_t i = 0; i < ns; i++) {
    const vtl_shot *s = shots[i];
    if (s->start > 0) cut = true;
    if (s->source != VTL_SOURCE_NOISE || s->seed >= 0) own = true;
  }
  if (cut)
    TRY(xwarn(e, "shots: cuts are not exported; Deforum renders one "
              "continuous shot"));
  if (own)
    TRY(xwarn(e, "shots: per-shot sources and seeds are not exported"));
  if (nm) TRY(xwarn(e, "markers: %zu marker%s not exported", nm,
                    nm > 1 ? "s" : ""));
  return 0;
}

int vtl_deforum_export(vtl_doc *doc, char **out, vtl_warnings *warnings,
                       vtl_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!doc || !out) return dfail(err, VTL_EINVAL, "deforum: no document");
  vtl_warnings local = {0};
  dexp e = {doc, vtl_doc_timeline(doc), &local, err, NULL};
  json_t *o = json_object();
  int rc = o ? vtl_expr_ctx_new(&e.x) : VTL_ENOMEM;
  if (!rc) rc = export_all(&e, o);
  char *text = NULL;
  if (!rc && !(text = json_dumps(o, JSON_INDENT(4) | JSON_REAL_PRECISION(15))))
    rc = VTL_ENOMEM;
  if (!rc && warnings)
    for (size_t i = 0; i < local.n && !rc; i++)
      rc = vtl_warnings_add(warnings, "%s", local.items[i]);
  if (rc && err && !err->message[0]) dfail(err, rc, "deforum: %s",
                                           vtl_strerror(rc));
  if (rc) free(text);
  else *out = text;
  vtl_warnings_free(&local);
  vtl_expr_ctx_free(e.x);
  json_decref(o);
  return rc;
}
