/* deforum_int.h — what the deforum_*.c files share (not installed; the API
 * is vtl_import.h: vtl_deforum_import, vtl_deforum_export).
 *
 *   deforum_import.c   settings file -> document: the format and the
 *                      mapping (its header comment), the import context,
 *                      the timeline fields, vtl_deforum_import
 *   deforum_schedule.c schedules -> tracks of keyframes
 *   deforum_prompts.c  prompts -> a prompt track of clips
 *   deforum_keys.c     the keys import does not read, reported as warnings
 *   deforum_export.c   document -> settings file
 *   deforum_numexpr.c  numexpr as Deforum evaluates it; numexpr <-> Lua names
 *   deforum_text.c     errors, a growable string, plain numbers
 *
 * docs/deforum.md is the user's description of both directions.
 */
#ifndef VTL_DEFORUM_INT_H
#define VTL_DEFORUM_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expr.h"
#include "vtl_import.h"

/* Returns from the calling function with the code when x is not 0. */
#define TRY(x)                                                               \
  do {                                                                       \
    int rc_ = (x);                                                           \
    if (rc_) return rc_;                                                     \
  } while (0)

/* ---- deforum_text.c ------------------------------------------------------ */

/* Fills err (may be NULL: then only the code is returned) with code,
 * op_index -1 and the message; returns code. */
int vtl__deforum_fail(vtl_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A growable string. On allocation failure `oom` is set and further
 * appends are dropped, so callers check once at the end. Zero-initialise
 * ({0}) to start; free(p) when done. */
typedef struct {
  char *p;     /* malloc'd, NUL-terminated when n > 0; owned */
  size_t n;    /* bytes used, without the NUL */
  size_t cap;  /* bytes allocated at p */
  bool oom;    /* an append failed (and every later one was dropped) */
} vtl__sbuf;

void vtl__sbuf_putn(vtl__sbuf *b, const char *s, size_t n);
void vtl__sbuf_puts(vtl__sbuf *b, const char *s);
/* printf into b (any length). */
void vtl__sbuf_printf(vtl__sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text so far: b->p, or "" when nothing was appended. Borrowed. */
const char *vtl__sbuf_str(const vtl__sbuf *b);

/* s[0..n) as a malloc'd NUL-terminated string, or NULL (out of memory). */
char *vtl__deforum_strndup(const char *s, size_t n);

/* Deforum's check_is_number() on s[0..n), after A1111's removal of
 * parentheses and quotes: true with *out set when the text is a plain
 * finite number ([+-]?[0-9]*(\.[0-9]+)?, at least one digit), false when
 * Deforum would treat it as an expression ("1e-3", "1.", "( 1 )"). */
bool vtl__deforum_is_plain_number(const char *s, size_t n, double *out);

/* The shortest plain decimal (no exponent) that reads back as v, through
 * 1 - x when `invert` (strength), into out. */
void vtl__deforum_fmt_num(char *out, size_t outlen, double v, bool invert);

/* Index just past the ')' matching the '(' at s[i], or 0 if none. */
size_t vtl__deforum_match_paren(const char *s, size_t n, size_t i);

/* "an object", "a number", ... "null": v's JSON type for messages. */
const char *vtl__deforum_jtype(const json_t *v);

/* ---- deforum_numexpr.c --------------------------------------------------- */

/* Evaluates numexpr text s[0..n) with numexpr's (Python's) semantics at
 * frame t, with max_f and s (seed) defined; has_t false: a frame key, where
 * t is not defined. Returns 0 and *out (finite), or -1 with *msg a static
 * message. */
int vtl__deforum_nx_evaluate(const char *s, size_t n, bool has_t, double t,
                             double max_f, double seed, double *out,
                             const char **msg);

/* vtl__deforum_nx_evaluate of a frame key (no t): int(...) is the caller's. */
int vtl__deforum_nx_const_eval(const char *s, size_t n, double max_f,
                               double seed, double *out, const char **msg);

/* Evaluates vtl's Lua expression at frame t the way eval.c does (t, s =
 * t / fps, max_f = length - 1, fps). Returns vtl_expr_eval's result. */
int vtl__deforum_eval_at(vtl_expr_ctx *x, const char *lua, int64_t t,
                         double fps, int64_t length, double *out, char *msg,
                         size_t msglen);

/* Appends numexpr src[0..n) to out with Deforum's names made vtl's (seed:
 * the text that replaces `s`). Returns 0, or -1 with msg set. The
 * operators are rewritten afterwards by vtl_expr_from_numexpr. */
int vtl__deforum_nx_names(vtl__sbuf *out, const char *src, size_t n,
                          const char *seed, char *msg, size_t msglen);

/* The inverse for export: Lua names (after vtl_expr_to_numexpr) made
 * numexpr's. Returns 0, or -1 when numexpr has no word for something used;
 * the caller then writes per-frame values. */
int vtl__deforum_lua_names(vtl__sbuf *out, const char *src, size_t n,
                           double fps);

/* ---- deforum_import.c: the import context ------------------------------ */

/* One key of a parsed schedule. */
typedef struct {
  int64_t frame;
  bool num;      /* a plain number: interpolated */
  double value;  /* num: the number (vtl units); else the value at `frame` */
  char *expr;    /* !num: Lua source, malloc'd */
  char *src;     /* the Deforum (numexpr) text of the value, trimmed,
                    malloc'd: messages and the numexpr cross-check */
} vtl__deforum_skey;

/* The import context: one per vtl_deforum_import call, on its stack. It
 * collects the document as a batch of ops, applied at the end. */
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
} vtl__deforum_imp;


/* Appends a zeroed op to d->ops. Returns it, or NULL (out of memory). */
vtl_op *vtl__deforum_push_op(vtl__deforum_imp *d);

/* Adds a warning to d->warn. Returns 0 or VTL_ENOMEM. */
int vtl__deforum_warn(vtl__deforum_imp *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of `key`, marked as used; NULL when absent or null. */
json_t *vtl__deforum_get(vtl__deforum_imp *d, const char *key);

/* Marks `key` as read but without effect (listed as ignored). */
void vtl__deforum_inactive(vtl__deforum_imp *d, const char *key);

/* `key` as a finite number (or a string holding one), marked as used.
 * Returns 0 (absent or null: *out = def), or VTL_ETYPE / VTL_ERANGE with
 * d->err naming the key. */
int vtl__deforum_get_real(vtl__deforum_imp *d, const char *key, double def,
                          double *out);

/* `key` as a string (borrowed from d->root), marked as used. Returns 0
 * (absent or null: *out = def) or VTL_ETYPE. */
int vtl__deforum_get_str(vtl__deforum_imp *d, const char *key,
                         const char *def, const char **out);

/* ---- deforum_schedule.c -------------------------------------------------- */

/* Reads schedule `key` (a string, or a bare number) into parameter p
 * (vtl_param), through 1 - x when `invert` (strength). Absent or null:
 * nothing. Returns 0 or a VTL_E* code with d->err set. */
int vtl__deforum_import_schedule(vtl__deforum_imp *d, const char *key, int p,
                                 bool invert);

/* A Colab constant (fov, near_plane, far_plane) `key` into parameter p, as
 * a track named `track` (the A1111 schedule's name). Returns 0 or a code. */
int vtl__deforum_import_constant(vtl__deforum_imp *d, const char *key,
                                 const char *track, int p);

/* Creates the track `name` and the keyframes of parameter p from keys[nk]
 * (sorted by frame); a single numeric key is folded into the timeline
 * (guidance, steps, strength) or dropped when it is p's default. Returns 0
 * or a code. */
int vtl__deforum_emit_keys(vtl__deforum_imp *d, const char *name, int p,
                           const vtl__deforum_skey *keys, size_t nk);

/* ---- deforum_prompts.c --------------------------------------------------- */

/* Reads the prompts of whichever style the file has into one prompt track
 * (none: a warning). Returns 0 or a code with d->err set. */
int vtl__deforum_import_prompts(vtl__deforum_imp *d);

/* ---- deforum_keys.c ------------------------------------------------------ */

/* Adds up to three warnings to `warnings` listing the keys of root that
 * are not marked true in seen (key -> true: used; false: read without
 * effect): "unsupported", "ignored" and "unknown". Called once, after every
 * key import reads was read. Returns 0 or VTL_ENOMEM. */
int vtl__deforum_report_rest(json_t *root, json_t *seen,
                             vtl_warnings *warnings);

#endif /* VTL_DEFORUM_INT_H */
