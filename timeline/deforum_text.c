/* deforum_text.c — the small text helpers of the Deforum importer and
 * exporter: error messages, a growable string, and Deforum's notion of a
 * plain number (reading and writing one).
 *
 * deforum_int.h lists the files of the Deforum importer/exporter; the
 * format and the mapping are described in deforum_import.c and
 * docs/deforum.md.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deforum_int.h"

/* ---- small helpers --------------------------------------------------------- */

/* Fills err (may be NULL); returns code. */
int vtl__deforum_fail(vtl_error *err, int code, const char *fmt, ...) {
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

/* ---- the growable string (vtl__sbuf, deforum_int.h) ---- */

void vtl__sbuf_putn(vtl__sbuf *b, const char *s, size_t n) {
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

void vtl__sbuf_puts(vtl__sbuf *b, const char *s) {
  vtl__sbuf_putn(b, s, strlen(s));
}

void vtl__sbuf_printf(vtl__sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    vtl__sbuf_putn(b, tmp, (size_t)n);
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
  vtl__sbuf_putn(b, big, (size_t)n);
  free(big);
}

const char *vtl__sbuf_str(const vtl__sbuf *b) { return b->p ? b->p : ""; }

char *vtl__deforum_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* Deforum's check_is_number(): [+-]?[0-9]*(\.[0-9]+)? with at least one
 * digit, after A1111's removal of parentheses and quotes; spaces inside
 * make it an expression, as in Deforum. */
bool vtl__deforum_is_plain_number(const char *s, size_t n, double *out) {
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
void vtl__deforum_fmt_num(char *out, size_t outlen, double v, bool invert) {
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

/* Index just past the ')' matching the '(' at s[i], or 0 if none. */
size_t vtl__deforum_match_paren(const char *s, size_t n, size_t i) {
  int depth = 0;
  for (size_t j = i; j < n; j++) {
    if (s[j] == '(') depth++;
    else if (s[j] == ')' && --depth == 0) return j + 1;
  }
  return 0;
}

const char *vtl__deforum_jtype(const json_t *v) {
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
