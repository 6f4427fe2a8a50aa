/* deforum_numexpr.c — numexpr as Deforum evaluates it, and the renaming
 * of names between numexpr and vtl's Lua: what lets import check that vtl
 * and Deforum agree on an expression frame by frame, and lets export prove
 * that what it writes gives Deforum vtl's values.
 *
 * deforum_int.h lists the files of the Deforum importer/exporter; the
 * format and the mapping are described in deforum_import.c and
 * docs/deforum.md.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "deforum_int.h"

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
int vtl__deforum_nx_evaluate(const char *s, size_t n, bool has_t, double t,
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

/* Evaluates a Lua expression the way eval.c does. */
int vtl__deforum_eval_at(vtl_expr_ctx *x, const char *lua, int64_t t,
                         double fps, int64_t length, double *out, char *msg,
                         size_t msglen) {
  vtl_expr_vars vars = {(double)t, (double)t / fps, (double)(length - 1), fps};
  return vtl_expr_eval(x, lua, &vars, out, msg, msglen);
}

int vtl__deforum_nx_const_eval(const char *s, size_t n, double max_f,
                               double seed, double *out, const char **msg) {
  return vtl__deforum_nx_evaluate(s, n, false, 0, max_f, seed, out, msg);
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

/* Appends src[0..n) to out with Deforum's names made vtl's. Returns 0, or
 * -1 with a message. */
int vtl__deforum_nx_names(vtl__sbuf *out, const char *src, size_t n,
                          const char *seed, char *msg, size_t msglen) {
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
      vtl__sbuf_putn(out, src + s, i - s);
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
          size_t close = vtl__deforum_match_paren(src, n, k);
          if (!close) {
            snprintf(msg, msglen, "expected ')' after log10(");
            return -1;
          }
          vtl__sbuf_puts(out, "(log(");
          if (vtl__deforum_nx_names(out, src + k + 1, close - k - 2, seed, msg,
                                    msglen))
            return -1;
          vtl__sbuf_puts(out, ")/log(10))");
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
        vtl__sbuf_puts(out, nx_funcs[f].lua);
        continue;
      }
      if (len == 1 && src[s] == 't') vtl__sbuf_puts(out, "t");
      else if (len == 5 && memcmp(src + s, "max_f", 5) == 0)
        vtl__sbuf_puts(out, "max_f");
      else if (len == 1 && src[s] == 's') vtl__sbuf_puts(out, seed);
      else if (len == 10 && memcmp(src + s, "max_frames", 10) == 0)
        vtl__sbuf_puts(out, "(max_f+1)");
      else if ((len == 4 && memcmp(src + s, "True", 4) == 0) ||
               (len == 5 && memcmp(src + s, "False", 5) == 0))
        vtl__sbuf_putn(out, src + s,
                       len); /* vtl_expr_from_numexpr spells them */
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
    vtl__sbuf_putn(out, &c, 1);
    i++;
  }
  return 0;
}

/* The inverse for export: Lua names (after vtl_expr_to_numexpr) made
 * numexpr's. Returns -1 when the expression uses something numexpr has no
 * word for (min, max, int, math.x, strings...); the caller then writes
 * per-frame values instead. */
int vtl__deforum_lua_names(vtl__sbuf *out, const char *src, size_t n,
                           double fps) {
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
      vtl__sbuf_putn(out, src + s, i - s);
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
          vtl__sbuf_puts(out, "arcsin");
        else if (strcmp(name, "acos") == 0 || strcmp(name, "arccos") == 0)
          vtl__sbuf_puts(out, "arccos");
        else if (strcmp(name, "atan") == 0 || strcmp(name, "arctan") == 0 ||
                 strcmp(name, "arctan2") == 0) {
          /* one argument: arctan; two: arctan2 */
          size_t close = vtl__deforum_match_paren(src, n, k);
          if (!close) return -1;
          int depth = 0, commas = 0;
          for (size_t j = k; j < close; j++) {
            if (src[j] == '(') depth++;
            else if (src[j] == ')') depth--;
            else if (src[j] == ',' && depth == 1) commas++;
          }
          vtl__sbuf_puts(out, commas ? "arctan2" : "arctan");
        } else {
          static const char *const same[] = {"sin",   "cos",  "tan",  "sqrt",
                                             "exp",   "log",  "abs",  "floor",
                                             "ceil",  "where", "fmod", NULL};
          int f = 0;
          while (same[f] && strcmp(same[f], name)) f++;
          if (!same[f]) return -1;
          vtl__sbuf_puts(out, name);
        }
        continue;
      }
      char num[40];
      if (strcmp(name, "t") == 0 || strcmp(name, "max_f") == 0) {
        vtl__sbuf_puts(out, name);
      } else if (strcmp(name, "s") == 0) {
        vtl__deforum_fmt_num(num, sizeof num, fps, false);
        vtl__sbuf_printf(out, "(t/%s)", num);
      } else if (strcmp(name, "fps") == 0) {
        vtl__deforum_fmt_num(num, sizeof num, fps, false);
        vtl__sbuf_puts(out, num);
      } else if (strcmp(name, "pi") == 0) {
        vtl__sbuf_puts(out, "3.141592653589793");
      } else {
        return -1;
      }
      continue;
    }
    if (strchr("+-*/%<>=!&|~(), \t\r\n", c) == NULL) return -1;
    if (c == '/' && i + 1 < n && src[i + 1] == '/') return -1; /* Lua // */
    vtl__sbuf_putn(out, &c, 1);
    i++;
  }
  return 0;
}
