/* expr.h — keyframe expressions: a sandboxed Lua 5.4 state.
 *
 * Expressions are Lua expressions (not statements) of the variables
 *   t      frame number (integer)
 *   s      seconds (t / fps)
 *   max_f  last frame of the film (length - 1)
 *   fps    frames per second
 * with the math functions as globals (sin cos tan asin acos atan abs sqrt
 * exp log floor ceil min max fmod pi huge, and the `math` table). Nothing
 * else is reachable: no io, os, require, load, string metatable tricks.
 * Each evaluation runs under an instruction budget and the state under a
 * memory limit, so an expression can fail but never crash or hang.
 * Compiled chunks are cached by source text.
 */
#ifndef VTL_EXPR_H
#define VTL_EXPR_H

#include <stddef.h>

typedef struct vtl_expr_ctx vtl_expr_ctx;

typedef struct {
  double t, s, max_f, fps;
} vtl_expr_vars;

#define VTL_EXPR_MEM_LIMIT (4u << 20)   /* bytes for the whole Lua state */
#define VTL_EXPR_BUDGET 100000          /* VM instructions per evaluation */

/* Returns 0 or VTL_ENOMEM. */
int vtl_expr_ctx_new(vtl_expr_ctx **out);
void vtl_expr_ctx_free(vtl_expr_ctx *ctx);

/* Compiles `src` (cached). Returns 0, or VTL_EEXPR with a message such as
 * "expression: [string]:1: unexpected symbol near '*'" in msg. */
int vtl_expr_check(vtl_expr_ctx *ctx, const char *src, char *msg, size_t msglen);

/* Evaluates `src` with `vars`. Returns 0 and *out (always finite), or
 * VTL_EEXPR with a message (syntax error, runtime error, non-number result,
 * NaN/Inf result, instruction budget or memory exhausted). */
int vtl_expr_eval(vtl_expr_ctx *ctx, const char *src, const vtl_expr_vars *vars,
                  double *out, char *msg, size_t msglen);

/* Rewrites a numexpr expression (Deforum schedules) as Lua: `**` becomes
 * `^`, `where(c, a, b)` is kept (a global), comparison and boolean operators
 * `&`, `|`, `~`, `!=` become `and`, `or`, `not`, `~=`. Returns 0, or
 * VTL_ETOOLONG if the result does not fit in outlen bytes. */
int vtl_expr_from_numexpr(const char *src, char *out, size_t outlen);

/* The inverse, for Deforum export: `^` becomes `**`, `~=` becomes `!=`,
 * `and`/`or`/`not` become `&`/`|`/`~`. Same return values. */
int vtl_expr_to_numexpr(const char *src, char *out, size_t outlen);

#endif /* VTL_EXPR_H */
