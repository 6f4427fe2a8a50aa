/* expr_numexpr.c — rewriting Deforum's numexpr schedule expressions as Lua
 * and back (API in expr.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "vtl_error.h"

/* ---- numexpr <-> Lua ---------------------------------------------------- *
 *
 * Both directions are one token-level rewrite driven by two operator tables
 * (x_ops_numexpr, x_ops_lua): each operator token is looked up by spelling
 * in the source table and respelled from the target table by meaning; names
 * are renamed from x_renames; numbers, strings and the insides of
 * identifiers are copied as they are, and so is the whitespace between
 * tokens (a comment becomes one space).
 *
 * Where the two languages would group an expression differently, operands
 * get parentheses: the source is parsed with its own precedences (x_expr,
 * a Pratt parser) and each operand whose operator binds looser in the
 * target than its parent's is wrapped. So Lua `t > 5 and t < 10` exports
 * as `(t > 5) & (t < 10)`, and numexpr `not a == b` imports as
 * `not (a == b)`. If the source does not parse (a Lua function literal, a
 * table constructor...), the tokens are still rewritten, without added
 * parentheses.
 *
 * What no rewriting fixes: numexpr's & | ~ are bitwise on integers and
 * logical on booleans, while Lua's and/or/not are logical on truthiness (0
 * is true in Lua). Schedules combine comparisons, where both agree.
 */

typedef enum { XD_NUMEXPR, XD_LUA } x_dialect;

enum { /* what an operator means, the key between the two tables */
  XS_LOR, XS_LAND, XS_LNOT, XS_LT, XS_GT, XS_LE, XS_GE, XS_EQ, XS_NE,
  XS_BOR, XS_BXOR, XS_BAND, XS_SHL, XS_SHR, XS_CONCAT, XS_ADD, XS_SUB,
  XS_MUL, XS_DIV, XS_IDIV, XS_MOD, XS_POW, XS_NEG, XS_PLUS, XS_BNOT, XS_LEN
};

enum { XA_LEFT, XA_RIGHT, XA_NONE }; /* NONE: Python's chained comparisons */

typedef struct {
  const char *sp;      /* spelling; "" = dropped in this language */
  unsigned char unary; /* 1 = prefix operator */
  unsigned char sem;   /* XS_* */
  unsigned char prec;  /* higher binds tighter */
  unsigned char assoc; /* XA_* */
} x_op;

/* Python's precedences. Lookups by spelling and by meaning both take the
 * first match: so and/or/not export as &, |, ~ and read back as and/or/not
 * (the first rows), and the "Lua only" rows only spell Lua's own operators
 * for export, their spellings being matched by the rows above first. */
static const x_op x_ops_numexpr[] = {
    {"|", 0, XS_LOR, 5, XA_LEFT},    {"&", 0, XS_LAND, 7, XA_LEFT},
    {"~", 1, XS_LNOT, 11, XA_LEFT},  /* spell and, or, not as these */
    {"or", 0, XS_LOR, 1, XA_LEFT},   {"and", 0, XS_LAND, 2, XA_LEFT},
    {"not", 1, XS_LNOT, 3, XA_LEFT},
    {"<", 0, XS_LT, 4, XA_NONE},     {">", 0, XS_GT, 4, XA_NONE},
    {"<=", 0, XS_LE, 4, XA_NONE},    {">=", 0, XS_GE, 4, XA_NONE},
    {"==", 0, XS_EQ, 4, XA_NONE},    {"!=", 0, XS_NE, 4, XA_NONE},
    {"^", 0, XS_BXOR, 6, XA_LEFT},   {"<<", 0, XS_SHL, 8, XA_LEFT},
    {">>", 0, XS_SHR, 8, XA_LEFT},   {"+", 0, XS_ADD, 9, XA_LEFT},
    {"-", 0, XS_SUB, 9, XA_LEFT},    {"*", 0, XS_MUL, 10, XA_LEFT},
    {"/", 0, XS_DIV, 10, XA_LEFT},   {"//", 0, XS_IDIV, 10, XA_LEFT},
    {"%", 0, XS_MOD, 10, XA_LEFT},   {"-", 1, XS_NEG, 11, XA_LEFT},
    {"+", 1, XS_PLUS, 11, XA_LEFT},
    {"**", 0, XS_POW, 12, XA_RIGHT},
    /* Lua only: */
    {"|", 0, XS_BOR, 5, XA_LEFT},    {"&", 0, XS_BAND, 7, XA_LEFT},
    {"~", 1, XS_BNOT, 11, XA_LEFT},  {"..", 0, XS_CONCAT, 9, XA_LEFT},
    {"#", 1, XS_LEN, 11, XA_LEFT},
};

/* Lua 5.4's precedences (lparser.c priority[]). */
static const x_op x_ops_lua[] = {
    {"or", 0, XS_LOR, 1, XA_LEFT},   {"and", 0, XS_LAND, 2, XA_LEFT},
    {"<", 0, XS_LT, 3, XA_LEFT},     {">", 0, XS_GT, 3, XA_LEFT},
    {"<=", 0, XS_LE, 3, XA_LEFT},    {">=", 0, XS_GE, 3, XA_LEFT},
    {"==", 0, XS_EQ, 3, XA_LEFT},    {"~=", 0, XS_NE, 3, XA_LEFT},
    {"|", 0, XS_BOR, 4, XA_LEFT},    {"~", 0, XS_BXOR, 5, XA_LEFT},
    {"&", 0, XS_BAND, 6, XA_LEFT},   {"<<", 0, XS_SHL, 7, XA_LEFT},
    {">>", 0, XS_SHR, 7, XA_LEFT},   {"..", 0, XS_CONCAT, 8, XA_RIGHT},
    {"+", 0, XS_ADD, 9, XA_LEFT},    {"-", 0, XS_SUB, 9, XA_LEFT},
    {"*", 0, XS_MUL, 10, XA_LEFT},   {"/", 0, XS_DIV, 10, XA_LEFT},
    {"//", 0, XS_IDIV, 10, XA_LEFT}, {"%", 0, XS_MOD, 10, XA_LEFT},
    {"not", 1, XS_LNOT, 11, XA_LEFT}, {"-", 1, XS_NEG, 11, XA_LEFT},
    {"~", 1, XS_BNOT, 11, XA_LEFT},  {"#", 1, XS_LEN, 11, XA_LEFT},
    {"^", 0, XS_POW, 12, XA_RIGHT},
    {"", 1, XS_PLUS, 11, XA_LEFT}, /* numexpr's unary plus: dropped */
};

/* Function and constant names: { numexpr, Lua }. Lua's atan(y, x) exports
 * as arctan2 (see x_emit_name). */
static const char *const x_renames[][2] = {
    {"arcsin", "asin"}, {"arccos", "acos"}, {"arctan", "atan"},
    {"arctan2", "atan"}, {"True", "true"}, {"False", "false"},
};

/* Words that end an expression: the parser gives up on them. */
static const char *const x_keywords_lua[] = {
    "function", "end", "if", "then", "else", "elseif", "do", "while", "for",
    "in", "local", "return", "repeat", "until", "goto", "break", NULL};
static const char *const x_keywords_numexpr[] = {
    "if", "else", "lambda", "for", "in", "is", NULL};

enum { XT_NAME, XT_NUM, XT_STR, XT_OP, XT_LP, XT_RP, XT_LB, XT_RB,
       XT_COMMA, XT_DOT, XT_COLON, XT_OTHER };

typedef struct {
  size_t off, len;         /* bytes of src */
  const x_op *op;          /* XT_OP: source operator, NULL if unknown */
  const x_op *to;          /* XT_OP: target operator, NULL if unknown */
  unsigned open, close;    /* parentheses to add before / after */
  unsigned char kind;      /* XT_* */
  unsigned char unary;     /* XT_OP in prefix position */
} x_tok;

static int x_isspace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}
static int x_isdigit(unsigned char c) { return c >= '0' && c <= '9'; }
static int x_isalpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c >= 0x80;
}
static int x_isname(unsigned char c) { return x_isalpha(c) || x_isdigit(c); }

static const x_op *x_find(const x_op *tab, size_t n, const char *sp,
                          size_t len, int unary) {
  for (size_t i = 0; i < n; i++)
    if (tab[i].unary == unary && strlen(tab[i].sp) == len &&
        memcmp(tab[i].sp, sp, len) == 0)
      return &tab[i];
  return NULL;
}

static const x_op *x_find_sem(const x_op *tab, size_t n, int sem, int unary) {
  for (size_t i = 0; i < n; i++)
    if (tab[i].unary == unary && tab[i].sem == sem) return &tab[i];
  return NULL;
}

static int x_word_in(const char *const *words, const char *s, size_t len) {
  for (; *words; words++)
    if (strlen(*words) == len && memcmp(*words, s, len) == 0) return 1;
  return 0;
}

/* At s[p] == '[': the level of a Lua long bracket ("[[" 0, "[=[" 1...)
 * with *body set past it, or -1 if there is none. */
static int x_longopen(const char *s, size_t p, size_t *body) {
  size_t q = p + 1;
  int lvl = 0;
  while (s[q] == '=') q++, lvl++;
  if (s[q] != '[') return -1;
  *body = q + 1;
  return lvl;
}

/* One past the long bracket of level lvl that closes the body at q (the
 * end of s when it is unterminated). */
static size_t x_longclose(const char *s, size_t q, int lvl) {
  for (; s[q]; q++) {
    if (s[q] != ']') continue;
    size_t r = q + 1;
    int k = 0;
    while (s[r] == '=') r++, k++;
    if (k == lvl && s[r] == ']') return r + 1;
  }
  return q;
}

/* The end of the comment that starts at s[p], or p if none does. */
static size_t x_comment(x_dialect d, const char *s, size_t p) {
  if (d == XD_NUMEXPR) {
    if (s[p] != '#') return p;
  } else {
    if (s[p] != '-' || s[p + 1] != '-') return p;
    size_t body;
    int lvl = s[p + 2] == '[' ? x_longopen(s, p + 2, &body) : -1;
    if (lvl >= 0) return x_longclose(s, body, lvl);
  }
  while (s[p] && s[p] != '\n') p++;
  return p;
}

/* Splits s into t[] (room for strlen(s) tokens); returns the count.
 * Whitespace and comments are left in the gaps between tokens. */
static size_t x_lex(x_dialect d, const char *s, x_tok *t) {
  static const char *const syms_numexpr[] = {"**", "//", "<<", ">>", "<=",
                                             ">=", "==", "!=", NULL};
  static const char *const syms_lua[] = {"...", "..", "//", "<<", ">>", "<=",
                                         ">=", "==", "~=", "::", NULL};
  const x_op *tab = d == XD_LUA ? x_ops_lua : x_ops_numexpr;
  size_t ntab = d == XD_LUA ? sizeof(x_ops_lua) / sizeof(x_ops_lua[0])
                            : sizeof(x_ops_numexpr) / sizeof(x_ops_numexpr[0]);
  size_t p = 0, n = 0;
  for (;;) {
    for (;;) {
      if (x_isspace((unsigned char)s[p])) {
        p++;
        continue;
      }
      size_t q = x_comment(d, s, p);
      if (q == p) break;
      p = q;
    }
    if (s[p] == '\0') break;

    x_tok *k = &t[n];
    memset(k, 0, sizeof(*k));
    k->off = p;
    unsigned char c = (unsigned char)s[p];
    size_t q = p + 1;
    size_t body;
    int lvl;
    if (x_isalpha(c)) {
      while (x_isname((unsigned char)s[q])) q++;
      k->kind = XT_NAME;
      if (x_word_in(d == XD_LUA ? x_keywords_lua : x_keywords_numexpr, s + p,
                    q - p))
        k->kind = XT_OTHER;
      else if (x_find(tab, ntab, s + p, q - p, 0) ||
               x_find(tab, ntab, s + p, q - p, 1))
        k->kind = XT_OP; /* and, or, not */
    } else if (x_isdigit(c) || (c == '.' && x_isdigit((unsigned char)s[q]))) {
      int hex = c == '0' && (s[q] == 'x' || s[q] == 'X');
      if (hex) q++;
      while (x_isname((unsigned char)s[q]) || s[q] == '.') {
        char e = s[q++];
        int expo = hex ? (e == 'p' || e == 'P') : (e == 'e' || e == 'E');
        if (expo && (s[q] == '+' || s[q] == '-')) q++;
      }
      k->kind = XT_NUM;
    } else if (c == '\'' || c == '"') {
      while (s[q] && s[q] != (char)c && s[q] != '\n') {
        if (s[q] == '\\' && s[q + 1]) q++;
        q++;
      }
      if (s[q] == (char)c) q++;
      k->kind = XT_STR;
    } else if (d == XD_LUA && c == '[' && (lvl = x_longopen(s, p, &body)) >= 0) {
      q = x_longclose(s, body, lvl);
      k->kind = XT_STR;
    } else {
      const char *const *sym = d == XD_LUA ? syms_lua : syms_numexpr;
      for (; *sym; sym++)
        if (strncmp(s + p, *sym, strlen(*sym)) == 0) break;
      if (*sym) q = p + strlen(*sym);
      size_t len = q - p;
      k->kind = XT_OP;
      if (len == 1) {
        switch (c) {
        case '(': k->kind = XT_LP; break;
        case ')': k->kind = XT_RP; break;
        case '[': k->kind = XT_LB; break;
        case ']': k->kind = XT_RB; break;
        case ',': k->kind = XT_COMMA; break;
        case '.': k->kind = XT_DOT; break;
        case ':': k->kind = XT_COLON; break;
        }
      }
      if (k->kind == XT_OP && !x_find(tab, ntab, s + p, len, 0) &&
          !x_find(tab, ntab, s + p, len, 1))
        k->kind = XT_OTHER; /* = ; { } ... :: ! @ and the like */
    }
    k->len = q - p;
    p = q;

    if (k->kind == XT_OP) {
      const x_tok *pv = n > 0 ? &t[n - 1] : NULL;
      int operand = pv && (pv->kind == XT_NAME || pv->kind == XT_NUM ||
                           pv->kind == XT_STR || pv->kind == XT_RP ||
                           pv->kind == XT_RB ||
                           (pv->kind == XT_OTHER && (s[pv->off] == '}' ||
                                                     s[pv->off] == '.')));
      k->unary = !operand;
      k->op = x_find(tab, ntab, s + k->off, k->len, k->unary);
    }
    n++;
  }
  return n;
}

typedef struct {
  x_tok *t;
  size_t n, i;   /* tokens, next token */
  int depth;     /* nesting of x_expr, bounded */
  int fail;      /* not an expression we understand */
} x_parser;

typedef struct {
  size_t first, last; /* tokens it spans */
  long top;           /* token of its outermost operator; -1: an atom */
} x_node;

/* Whether c, an operand of operator token k (its right operand, or the
 * operand of a prefix operator, when `right`), needs parentheses so that
 * the target language groups it as the source did. */
static int x_needs_parens(const x_parser *p, x_node c, size_t k, int right) {
  if (c.top < 0) return 0;
  const x_op *co = p->t[c.top].to, *po = p->t[k].to;
  if (co->unary && !right) /* -x op y reads (-x) op y iff op is looser */
    return co->prec <= po->prec;
  if (co->unary) {
    /* x op -y is fine unless - binds looser than op and an operator
     * after -y (an ancestor's) binds tighter than -, which the target
     * would then take into -y: 2^-t^2 needs nothing, 2^-t*3 neither. */
    size_t next = (size_t)c.last + 1;
    return co->prec < po->prec && next < p->n && p->t[next].kind == XT_OP &&
           p->t[next].to && p->t[next].to->prec >= co->prec;
  }
  if (co->prec != po->prec || po->unary) return co->prec < po->prec;
  return po->assoc != (right ? XA_RIGHT : XA_LEFT);
}

static void x_wrap(x_parser *p, x_node c) {
  p->t[c.first].open++;
  p->t[c.last].close++;
}

static int x_at(const x_parser *p, int kind) {
  return p->i < p->n && p->t[p->i].kind == kind;
}

static int x_expect(x_parser *p, int kind) {
  if (x_at(p, kind)) {
    p->i++;
    return 1;
  }
  p->fail = 1;
  return 0;
}

static x_node x_expr(x_parser *p, int minprec);

/* An atom: a name, number, string or parenthesised expression, with any
 * calls, indexing and field accesses after it. */
static x_node x_primary(x_parser *p) {
  x_node a = {p->i, p->i, -1};
  if (x_at(p, XT_LP)) {
    p->i++;
    x_expr(p, 0);
    x_expect(p, XT_RP);
  } else if (x_at(p, XT_NAME) || x_at(p, XT_NUM) || x_at(p, XT_STR)) {
    p->i++;
  } else {
    p->fail = 1;
  }
  while (!p->fail) {
    if (x_at(p, XT_LP)) {
      p->i++;
      while (!p->fail && !x_at(p, XT_RP)) {
        x_expr(p, 0);
        if (!x_at(p, XT_COMMA)) break;
        p->i++;
      }
      x_expect(p, XT_RP);
    } else if (x_at(p, XT_LB)) {
      p->i++;
      x_expr(p, 0);
      x_expect(p, XT_RB);
    } else if (x_at(p, XT_DOT) || x_at(p, XT_COLON)) {
      p->i++;
      x_expect(p, XT_NAME);
    } else {
      break;
    }
  }
  if (!p->fail) a.last = p->i - 1;
  return a;
}

/* Parses operators binding at least as tight as minprec (precedence
 * climbing) and marks the parentheses the target needs. */
static x_node x_expr(x_parser *p, int minprec) {
  x_node left = {p->i, p->i, -1};
  if (p->fail || ++p->depth > 200) {
    p->fail = 1;
    return left;
  }
  if (x_at(p, XT_OP) && p->t[p->i].unary) {
    size_t k = p->i++;
    if (p->t[k].op == NULL || p->t[k].to == NULL) p->fail = 1;
    x_node c = x_expr(p, p->fail ? 0 : p->t[k].op->prec);
    if (!p->fail && x_needs_parens(p, c, k, 1)) x_wrap(p, c);
    left = (x_node){k, c.last, (long)k};
  } else {
    left = x_primary(p);
  }
  while (!p->fail && x_at(p, XT_OP) && !p->t[p->i].unary) {
    size_t k = p->i;
    const x_op *op = p->t[k].op;
    if (op == NULL || p->t[k].to == NULL) {
      p->fail = 1;
      break;
    }
    if (op->prec < minprec) break;
    p->i++;
    x_node r = x_expr(p, op->assoc == XA_RIGHT ? op->prec : op->prec + 1);
    if (p->fail) break;
    if (x_needs_parens(p, left, k, 0)) x_wrap(p, left);
    if (x_needs_parens(p, r, k, 1)) x_wrap(p, r);
    left = (x_node){left.first, r.last, (long)k};
  }
  p->depth--;
  return left;
}

typedef struct {
  char *buf;
  size_t cap, len; /* len counts past cap: the size the result needs */
  char last;       /* last byte put, '\0' at the start */
} x_out;

static void x_put(x_out *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++, o->len++)
    if (o->len < o->cap) o->buf[o->len] = s[i];
  if (n > 0) o->last = s[n - 1];
}

/* Copies the whitespace of src[from, to), a comment as one space unless
 * one is there already. */
static void x_gap(x_out *o, x_dialect d, const char *s, size_t from,
                  size_t to) {
  while (from < to) {
    size_t q = x_comment(d, s, from);
    if (q > from) {
      if (o->len > 0 && !x_isspace((unsigned char)o->last)) x_put(o, " ", 1);
      from = q;
    } else {
      x_put(o, s + from++, 1);
    }
  }
}

/* Emits name token i renamed for the target, unless it is a field name. */
static void x_emit_name(x_out *o, x_dialect from, const char *s,
                        const x_tok *t, size_t n, size_t i) {
  const char *name = s + t[i].off;
  size_t len = t[i].len;
  if (i > 0 && (t[i - 1].kind == XT_DOT || t[i - 1].kind == XT_COLON)) {
    x_put(o, name, len);
    return;
  }
  int src_col = from == XD_LUA ? 1 : 0;
  for (size_t r = 0; r < sizeof(x_renames) / sizeof(x_renames[0]); r++) {
    const char *cand = x_renames[r][src_col];
    if (strlen(cand) != len || memcmp(cand, name, len) != 0) continue;
    const char *to = x_renames[r][!src_col];
    if (from == XD_LUA && strcmp(cand, "atan") == 0) {
      /* atan(y, x) is arctan2: look for a comma at the call's own depth */
      int depth = 0, comma = 0;
      for (size_t j = i + 1; j < n; j++) {
        if (t[j].kind == XT_LP || t[j].kind == XT_LB) depth++;
        else if (t[j].kind == XT_RP || t[j].kind == XT_RB) depth--;
        else if (t[j].kind == XT_COMMA && depth == 1) comma = 1;
        if (depth <= 0) break;
      }
      to = comma ? "arctan2" : "arctan";
    }
    x_put(o, to, strlen(to));
    return;
  }
  x_put(o, name, len);
}

/* The rewrite behind vtl_expr_from_numexpr and vtl_expr_to_numexpr.
 * Returns 0, VTL_ETOOLONG (out is then ""), VTL_EINVAL or VTL_ENOMEM. */
static int x_rewrite(x_dialect from, const char *src, char *out,
                     size_t outlen) {
  if (src == NULL || (out == NULL && outlen > 0)) return VTL_EINVAL;
  x_dialect to = from == XD_LUA ? XD_NUMEXPR : XD_LUA;
  const x_op *ttab = to == XD_LUA ? x_ops_lua : x_ops_numexpr;
  size_t nttab = to == XD_LUA ? sizeof(x_ops_lua) / sizeof(x_ops_lua[0])
                              : sizeof(x_ops_numexpr) / sizeof(x_ops_numexpr[0]);
  size_t srclen = strlen(src);
  x_tok *t = malloc((srclen + 1) * sizeof(*t));
  if (t == NULL) return VTL_ENOMEM;
  size_t n = x_lex(from, src, t);
  for (size_t i = 0; i < n; i++)
    if (t[i].kind == XT_OP && t[i].op)
      t[i].to = x_find_sem(ttab, nttab, t[i].op->sem, t[i].op->unary);

  x_parser p = {t, n, 0, 0, 0};
  if (n > 0) {
    x_expr(&p, 0);
    if (p.i != n) p.fail = 1;
  }
  if (p.fail)
    for (size_t i = 0; i < n; i++) t[i].open = t[i].close = 0;

  x_out o = {out, outlen, 0, '\0'};
  size_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    const x_tok *k = &t[i];
    const char *text = src + k->off;
    size_t after = k->off + k->len;
    x_gap(&o, from, src, prev, k->off);
    for (unsigned j = 0; j < k->open; j++) x_put(&o, "(", 1);
    if (k->kind == XT_NAME) {
      x_emit_name(&o, from, src, t, n, i);
    } else if (k->kind == XT_OP && k->op && k->to) {
      const char *sp = k->to->sp;
      size_t sl = strlen(sp);
      int word_to = sl > 0 && x_isalpha((unsigned char)sp[0]);
      int word_from = x_isalpha((unsigned char)text[0]);
      int sep = word_to && !word_from; /* a symbol becomes a word */
      if (sep && o.len > 0 && !x_isspace((unsigned char)o.last) &&
          o.last != '(')
        x_put(&o, " ", 1);
      if (to == XD_LUA && sp[0] == '-' && o.last == '-')
        x_put(&o, " ", 1); /* "--" would start a Lua comment */
      x_put(&o, sp, sl);
      if (sep && src[after] && !x_isspace((unsigned char)src[after]))
        x_put(&o, " ", 1);
      if (word_from && !word_to && k->unary && src[after] == ' ')
        after++; /* "not x" -> "~x" */
    } else {
      x_put(&o, text, k->len);
    }
    for (unsigned j = 0; j < k->close; j++) x_put(&o, ")", 1);
    prev = after;
  }
  x_gap(&o, from, src, prev, srclen);
  free(t);

  if (o.len >= outlen) {
    if (outlen > 0) out[0] = '\0';
    return VTL_ETOOLONG;
  }
  out[o.len] = '\0';
  return 0;
}

int vtl_expr_from_numexpr(const char *src, char *out, size_t outlen) {
  return x_rewrite(XD_NUMEXPR, src, out, outlen);
}

int vtl_expr_to_numexpr(const char *src, char *out, size_t outlen) {
  return x_rewrite(XD_LUA, src, out, outlen);
}
