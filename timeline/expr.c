/* expr.c — keyframe expressions: a sandboxed Lua 5.4 state (the numexpr
 * <-> Lua rewriting for Deforum schedules is in expr_numexpr.c).
 *
 * The Lua state
 * -------------
 *
 *   stack[1]   run closure (expr_run), kept for the life of the context
 *              upvalue 1  base    math functions, where, int, math, and the
 *                                 variables t s max_f fps (rewritten before
 *                                 every evaluation)
 *              upvalue 2  env     the _ENV of every chunk: an empty table
 *                                 whose metatable has __index = base and a
 *                                 __newindex that raises, so no evaluation
 *                                 can leave anything behind for the next
 *              upvalue 3  chunks  compiled chunks, chunks[i + 1] for C cache
 *                                 slot i (see expr_slot); a string there is
 *                                 the syntax error of that source
 *
 * Nothing else is opened: no base library (print, load, pcall, setmetatable,
 * rawset, collectgarbage...), no string library (so strings have no
 * metatable and ("x"):rep(1e9) is "attempt to index a string value"), no io,
 * os, package, debug, coroutine, utf8 or table. `math` is a read-only proxy
 * of the math library without random and randomseed, which would make
 * vtl_params_at() depend on more than the document.
 *
 * Every Lua call goes through lua_pcall of expr_run, so a Lua error (syntax,
 * runtime, instruction budget, memory) never longjmps out of the API. The
 * allocator refuses to grow the state past VTL_EXPR_MEM_LIMIT bytes; Lua
 * then runs an emergency collection and, failing that, raises "not enough
 * memory" inside the pcall.
 *
 * Booleans get arithmetic and ordering metamethods that read them as 1 and
 * 0, because numexpr schedules multiply comparisons (expr_bool_arith).
 *
 * One shared _ENV serves every chunk instead of one per chunk: it is empty
 * and cannot be written, so sharing it is as safe and saves a table per
 * cached expression.
 */
#include "expr.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtl_error.h"

#define EXPR_CACHE_SLOTS 512 /* C hash slots, a power of two */
#define EXPR_CACHE_MAX 256   /* live entries; one more flushes the cache */
#define EXPR_CHUNKNAME "=[string]"

typedef struct {
  uint32_t hash; /* FNV-1a of src */
  char *src;     /* is malloc'd; NULL = empty slot */
} expr_slot;

struct vtl_expr_ctx {
  lua_State *L;                        /* owned; stack[1] is the run closure */
  size_t mem_used;                     /* bytes the Lua state holds now */
  int ncached;                         /* live entries in slots */
  expr_slot slots[EXPR_CACHE_SLOTS];   /* open addressing, linear probing */
};

/* One call of expr_run: inputs, then outputs. Lives on the C stack of the
 * API function that makes it. */
typedef struct {
  vtl_expr_ctx *ctx;
  const char *src;             /* borrowed */
  const vtl_expr_vars *vars;   /* borrowed; NULL = compile only */
  double value;                /* out: the result, not yet checked finite */
  const char *bad_type;        /* out: type name of a non-number result */
} expr_req;

/* ---- small helpers ------------------------------------------------------ */

/* Formats into msg (may be NULL, msglen may be 0). A truncated message is
 * cut at a UTF-8 character boundary so it stays valid text. */
static void expr_msg(char *msg, size_t msglen, const char *fmt, ...) {
  if (msg == NULL || msglen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  if (n < 0) {
    msg[0] = '\0';
    return;
  }
  if ((size_t)n >= msglen) {
    /* Drop a multi-byte character the cut left incomplete. */
    size_t len = msglen - 1, j = len;
    while (j > 0 && ((unsigned char)msg[j - 1] & 0xC0) == 0x80) j--;
    if (j > 0) {
      unsigned char lead = (unsigned char)msg[j - 1];
      size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (len - (j - 1) < need) msg[j - 1] = '\0';
    }
  }
}

static uint32_t expr_hash(const char *s, size_t *len) {
  uint32_t h = 2166136261u;
  const unsigned char *p = (const unsigned char *)s;
  for (; *p; p++) h = (h ^ *p) * 16777619u;
  *len = (size_t)(p - (const unsigned char *)s);
  return h;
}

/* ---- allocator, hook and the functions expressions see ---------------- */

/* lua_Alloc with a byte budget. Shrinking and freeing never fail; growing
 * past VTL_EXPR_MEM_LIMIT returns NULL, which Lua turns into an emergency
 * GC and then a "not enough memory" error. When ptr is NULL, osize is a
 * type tag, not a size. */
static void *expr_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  vtl_expr_ctx *ctx = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    ctx->mem_used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > VTL_EXPR_MEM_LIMIT - ctx->mem_used)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  ctx->mem_used = ctx->mem_used - old + nsize;
  return p;
}

/* Count hook: fires once VTL_EXPR_BUDGET instructions have run in one
 * evaluation (lua_sethook resets the count before each). */
static void expr_budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_pushliteral(L, "instruction budget exceeded");
  lua_error(L);
}

/* __newindex of the _ENV and `math` proxies. */
static int expr_readonly(lua_State *L) {
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
  return luaL_error(L, "cannot assign to '%s': globals are read-only", k);
}

/* where(c, a, b): numexpr's ternary. a when c is truthy and not the number
 * 0 (so both comparisons and 0/1 flags work), else b. */
static int expr_where(lua_State *L) {
  lua_settop(L, 3);
  int c = lua_toboolean(L, 1);
  if (c && lua_type(L, 1) == LUA_TNUMBER && lua_tonumber(L, 1) == 0) c = 0;
  lua_pushvalue(L, c ? 2 : 3);
  return 1;
}

/* int(x): truncation toward zero; an integer when it fits, else the float
 * (so NaN and Inf pass through and are rejected as results). */
static int expr_int(lua_State *L) {
  if (lua_isinteger(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  lua_Number d = trunc(luaL_checknumber(L, 1));
  lua_Integer i;
  if (lua_numbertointeger(d, &i))
    lua_pushinteger(L, i);
  else
    lua_pushnumber(L, d);
  return 1;
}

/* Arithmetic and ordering on booleans, as 1 and 0: numexpr schedules say
 * `0.5 + (t > 50) * 0.2`, which plain Lua rejects. One closure per
 * metamethod, its LUA_OP* code as upvalue 1. (== is not covered: Lua calls
 * __eq only for two tables or two userdata, so `(t > 5) == 1` is false.) */
static void expr_bool_args(lua_State *L) {
  lua_settop(L, 2);
  for (int i = 1; i <= 2; i++) {
    if (lua_type(L, i) == LUA_TBOOLEAN) {
      lua_pushinteger(L, lua_toboolean(L, i));
      lua_replace(L, i);
    }
  }
}

static int expr_bool_arith(lua_State *L) {
  int op = (int)lua_tointeger(L, lua_upvalueindex(1));
  expr_bool_args(L);
  if (op == LUA_OPUNM) lua_settop(L, 1);
  lua_arith(L, op);
  return 1;
}

static int expr_bool_compare(lua_State *L) {
  int op = (int)lua_tointeger(L, lua_upvalueindex(1));
  expr_bool_args(L);
  lua_pushboolean(L, lua_compare(L, 1, 2, op));
  return 1;
}

/* Sets the metatable shared by all booleans (see expr_bool_arith). */
static void expr_bool_metatable(lua_State *L) {
  static const struct { const char *name; int op, cmp; } mm[] = {
      {"__add", LUA_OPADD, 0}, {"__sub", LUA_OPSUB, 0},
      {"__mul", LUA_OPMUL, 0}, {"__div", LUA_OPDIV, 0},
      {"__mod", LUA_OPMOD, 0}, {"__pow", LUA_OPPOW, 0},
      {"__idiv", LUA_OPIDIV, 0}, {"__unm", LUA_OPUNM, 0},
      {"__lt", LUA_OPLT, 1}, {"__le", LUA_OPLE, 1}};
  lua_pushboolean(L, 0);
  lua_createtable(L, 0, (int)(sizeof(mm) / sizeof(mm[0])));
  for (size_t i = 0; i < sizeof(mm) / sizeof(mm[0]); i++) {
    lua_pushinteger(L, mm[i].op);
    lua_pushcclosure(L, mm[i].cmp ? expr_bool_compare : expr_bool_arith, 1);
    lua_setfield(L, -2, mm[i].name);
  }
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
}

/* Pushes an empty table whose reads go to the table at `target` and whose
 * writes raise. */
static void expr_push_proxy(lua_State *L, int target) {
  target = lua_absindex(L, target);
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, target);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, expr_readonly);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* ---- compile cache ----------------------------------------------------- */

/* Empties the cache: the C keys are freed and the chunks table replaced by
 * a fresh one (upvalue 3 of the running expr_run). May raise (memory). */
static void expr_flush(lua_State *L, vtl_expr_ctx *ctx) {
  for (int i = 0; i < EXPR_CACHE_SLOTS; i++) {
    free(ctx->slots[i].src);
    ctx->slots[i].src = NULL;
  }
  ctx->ncached = 0;
  lua_createtable(L, EXPR_CACHE_SLOTS, 0);
  lua_replace(L, lua_upvalueindex(3));
}

typedef struct {
  const char *parts[3];
  size_t lens[3];
  int next;
} expr_reader_state;

/* Feeds "return (" src ")" to lua_load without copying src. The closing
 * parenthesis goes on its own line when src has "--", so that a trailing
 * comment cannot swallow it. */
static const char *expr_reader(lua_State *L, void *ud, size_t *size) {
  (void)L;
  expr_reader_state *st = ud;
  while (st->next < 3) {
    int i = st->next++;
    if (st->lens[i] > 0) {
      *size = st->lens[i];
      return st->parts[i];
    }
  }
  *size = 0;
  return NULL;
}

/* Pushes the compiled chunk for r->src, compiling and caching it on a miss.
 * Raises with Lua's message on a syntax error.
 *   1. Syntax errors are cached too (the message in place of the chunk):
 *      a broken keyframe is evaluated at every frame of a render.
 *   2. A memory error while compiling flushes the cache, collects and tries
 *      once more, so a full cache can never lock the context up. It is not
 *      cached.
 *   3. If the key copy cannot be malloc'd the chunk is used uncached. */
static void expr_push_chunk(lua_State *L, expr_req *r) {
  vtl_expr_ctx *ctx = r->ctx;
  size_t len;
  uint32_t h = expr_hash(r->src, &len);
  unsigned i = h & (EXPR_CACHE_SLOTS - 1);
  for (; ctx->slots[i].src; i = (i + 1) & (EXPR_CACHE_SLOTS - 1)) {
    if (ctx->slots[i].hash == h && strcmp(ctx->slots[i].src, r->src) == 0) {
      if (lua_rawgeti(L, lua_upvalueindex(3), (lua_Integer)i + 1) ==
          LUA_TSTRING)
        lua_error(L); /* a cached syntax error */
      return;
    }
  }

  expr_reader_state st = {
    {"return (", r->src, strstr(r->src, "--") ? "\n)" : ")"},
    {8, len, 0}, 0};
  st.lens[2] = strlen(st.parts[2]);
  int rc = lua_load(L, expr_reader, &st, EXPR_CHUNKNAME, "t");
  if (rc == LUA_ERRMEM && ctx->ncached > 0) {
    lua_pop(L, 1);
    expr_flush(L, ctx);
    lua_gc(L, LUA_GCCOLLECT);
    st.next = 0;
    rc = lua_load(L, expr_reader, &st, EXPR_CHUNKNAME, "t");
  }
  if (rc != LUA_OK && rc != LUA_ERRSYNTAX) lua_error(L);
  if (rc == LUA_OK) {
    lua_pushvalue(L, lua_upvalueindex(2));
    if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);
  }

  if (ctx->ncached >= EXPR_CACHE_MAX) {
    expr_flush(L, ctx);
    i = h & (EXPR_CACHE_SLOTS - 1);
  }
  /* The chunks table has its array part preallocated: rawseti on 1..SLOTS
   * does not allocate, so the C slot and the Lua entry stay in step. */
  lua_pushvalue(L, -1);
  lua_rawseti(L, lua_upvalueindex(3), (lua_Integer)i + 1);
  char *key = malloc(len + 1);
  if (key == NULL) {
    lua_pushnil(L);
    lua_rawseti(L, lua_upvalueindex(3), (lua_Integer)i + 1);
  } else {
    memcpy(key, r->src, len + 1);
    ctx->slots[i].hash = h;
    ctx->slots[i].src = key;
    ctx->ncached++;
  }
  if (rc != LUA_OK) lua_error(L);
}

/* ---- evaluation --------------------------------------------------------- */

/* Pushes v as an integer when it is one (t and max_f are frame numbers, and
 * numexpr sees them as ints: t % 40, t // 2 keep integer semantics). */
static void expr_push_frame(lua_State *L, double v) {
  lua_Integer i;
  if (v == floor(v) && fabs(v) < 9007199254740992.0 &&
      lua_numbertointeger(v, &i))
    lua_pushinteger(L, i);
  else
    lua_pushnumber(L, v);
}

/* The protected body of every check and evaluation: expr_run(req). */
static int expr_run(lua_State *L) {
  expr_req *r = lua_touserdata(L, 1);
  expr_push_chunk(L, r);
  if (r->vars == NULL) return 0;

  expr_push_frame(L, r->vars->t);
  lua_setfield(L, lua_upvalueindex(1), "t");
  lua_pushnumber(L, r->vars->s);
  lua_setfield(L, lua_upvalueindex(1), "s");
  expr_push_frame(L, r->vars->max_f);
  lua_setfield(L, lua_upvalueindex(1), "max_f");
  lua_pushnumber(L, r->vars->fps);
  lua_setfield(L, lua_upvalueindex(1), "fps");

  lua_sethook(L, expr_budget_hook, LUA_MASKCOUNT, VTL_EXPR_BUDGET);
  lua_call(L, 0, 1);
  lua_sethook(L, NULL, 0, 0);

  switch (lua_type(L, -1)) {
  case LUA_TNUMBER:
    r->value = lua_isinteger(L, -1) ? (double)lua_tointeger(L, -1)
                                    : (double)lua_tonumber(L, -1);
    break;
  case LUA_TBOOLEAN:
    r->value = lua_toboolean(L, -1) ? 1.0 : 0.0;
    break;
  default:
    r->bad_type = lua_typename(L, lua_type(L, -1));
  }
  return 0;
}

/* Runs expr_run under lua_pcall. Returns 0 or VTL_EEXPR with the message. */
static int expr_call(vtl_expr_ctx *ctx, expr_req *r, char *msg, size_t msglen) {
  lua_State *L = ctx->L;
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, r);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc == LUA_OK) return 0;
  if (rc == LUA_ERRMEM)
    expr_msg(msg, msglen, "expression: out of memory (limit %u bytes)",
             (unsigned)VTL_EXPR_MEM_LIMIT);
  else
    expr_msg(msg, msglen, "expression: %s",
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                            : "error object is not a string");
  lua_settop(L, 1);
  return VTL_EEXPR;
}

/* Builds the state under lua_pcall, so that running out of memory here is
 * an error, not a panic. Returns the run closure. */
static int expr_setup(lua_State *L) {
  static const char *const names[] = {
      "sin", "cos", "tan", "asin", "acos", "atan", "abs", "sqrt", "exp",
      "log", "floor", "ceil", "min", "max", "fmod", "pi", "huge", NULL};

  luaL_requiref(L, "math", luaopen_math, 0);        /* 1: the library */
  lua_newtable(L);                                  /* 2: math, minus random */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "random") != 0 && strcmp(k, "randomseed") != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 2);
    } else {
      lua_pop(L, 1);
    }
  }

  lua_createtable(L, 0, 32);                        /* 3: base */
  for (int i = 0; names[i]; i++) {
    lua_getfield(L, 2, names[i]);
    lua_setfield(L, 3, names[i]);
  }
  lua_pushcfunction(L, expr_where);
  lua_setfield(L, 3, "where");
  lua_pushcfunction(L, expr_int);
  lua_setfield(L, 3, "int");
  expr_push_proxy(L, 2);
  lua_setfield(L, 3, "math");
  static const char *const vars[] = {"t", "s", "max_f", "fps", NULL};
  for (int i = 0; vars[i]; i++) {
    lua_pushinteger(L, 0);
    lua_setfield(L, 3, vars[i]);
  }

  expr_bool_metatable(L);

  lua_pushvalue(L, 3);                              /* upvalue 1: base */
  expr_push_proxy(L, 3);                            /* upvalue 2: env */
  lua_createtable(L, EXPR_CACHE_SLOTS, 0);          /* upvalue 3: chunks */
  lua_pushcclosure(L, expr_run, 3);
  return 1;
}

int vtl_expr_ctx_new(vtl_expr_ctx **out) {
  if (out == NULL) return VTL_EINVAL;
  *out = NULL;
  vtl_expr_ctx *ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) return VTL_ENOMEM;
  ctx->L = lua_newstate(expr_alloc, ctx);
  if (ctx->L == NULL) {
    free(ctx);
    return VTL_ENOMEM;
  }
  lua_pushcfunction(ctx->L, expr_setup);
  if (lua_pcall(ctx->L, 0, 1, 0) != LUA_OK) {
    lua_close(ctx->L);
    free(ctx);
    return VTL_ENOMEM;
  }
  *out = ctx;
  return 0;
}

void vtl_expr_ctx_free(vtl_expr_ctx *ctx) {
  if (ctx == NULL) return;
  lua_close(ctx->L);
  for (int i = 0; i < EXPR_CACHE_SLOTS; i++) free(ctx->slots[i].src);
  free(ctx);
}

int vtl_expr_check(vtl_expr_ctx *ctx, const char *src, char *msg,
                   size_t msglen) {
  if (ctx == NULL || src == NULL) {
    expr_msg(msg, msglen, "expression: invalid argument");
    return VTL_EINVAL;
  }
  expr_req r = {ctx, src, NULL, 0, NULL};
  return expr_call(ctx, &r, msg, msglen);
}

int vtl_expr_eval(vtl_expr_ctx *ctx, const char *src, const vtl_expr_vars *vars,
                  double *out, char *msg, size_t msglen) {
  if (ctx == NULL || src == NULL || vars == NULL || out == NULL) {
    expr_msg(msg, msglen, "expression: invalid argument");
    return VTL_EINVAL;
  }
  expr_req r = {ctx, src, vars, 0, NULL};
  int rc = expr_call(ctx, &r, msg, msglen);
  if (rc != 0) return rc;
  if (r.bad_type) {
    expr_msg(msg, msglen, "expression returned a %s, not a number",
             r.bad_type);
    return VTL_EEXPR;
  }
  if (!isfinite(r.value)) {
    expr_msg(msg, msglen, "expression gave NaN/Inf at t=%g (%s)", vars->t,
             isnan(r.value) ? "nan" : r.value > 0 ? "inf" : "-inf");
    return VTL_EEXPR;
  }
  *out = r.value;
  return 0;
}
