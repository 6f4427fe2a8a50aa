/* test_expr.c — the expression sandbox (timeline/expr.c): values, the math
 * globals, errors, the sandbox walls, the instruction budget, the memory
 * limit, the compile cache, and the numexpr <-> Lua rewriting. */
#include "expr.h"
#include "task.h"
#include "vtl_error.h"

static vtl_expr_vars vars_at(double t) {
  vtl_expr_vars v = {t, t / 15.0, 100, 15};
  return v;
}

/* Evaluates src at t; asserts success and that the value is near want. */
static int eval_near(vtl_expr_ctx *ctx, const char *src, double t,
                     double want) {
  vtl_expr_vars v = vars_at(t);
  double got = -12345;
  char msg[256] = "";
  int rc = vtl_expr_eval(ctx, src, &v, &got, msg, sizeof(msg));
  if (rc != 0) fprintf(stderr, "%s: %s\n", src, msg);
  ASSERT_OK(rc);
  ASSERT_NEAR(got, want, 1e-12 * (1 + fabs(want)));
  return 0;
}

/* Evaluates src; asserts VTL_EEXPR, *out untouched, and that the message
 * starts with "expression" and contains `needle`. */
static int eval_fails(vtl_expr_ctx *ctx, const char *src, const char *needle) {
  vtl_expr_vars v = vars_at(7);
  double got = -12345;
  char msg[256] = "";
  ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, msg, sizeof(msg)), VTL_EEXPR);
  ASSERT(got == -12345);
  ASSERT_EQ(strncmp(msg, "expression", 10), 0);
  if (strstr(msg, needle) == NULL)
    TEST_FAIL_("%s: message \"%s\" lacks \"%s\"", src, msg, needle);
  return 0;
}

static int from_numexpr_is(const char *src, const char *want) {
  char out[256];
  ASSERT_OK(vtl_expr_from_numexpr(src, out, sizeof(out)));
  ASSERT_STR_EQ(out, want);
  return 0;
}

static int to_numexpr_is(const char *src, const char *want) {
  char out[256];
  ASSERT_OK(vtl_expr_to_numexpr(src, out, sizeof(out)));
  ASSERT_STR_EQ(out, want);
  return 0;
}

TEST_IMPL(expr_arith) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_near(ctx, "1 + 2 * 3", 0, 7));
  ASSERT_OK(eval_near(ctx, "t", 42, 42));
  ASSERT_OK(eval_near(ctx, "t * 2 + 1", 21, 43));
  ASSERT_OK(eval_near(ctx, "s", 30, 2));
  ASSERT_OK(eval_near(ctx, "max_f", 0, 100));
  ASSERT_OK(eval_near(ctx, "fps", 0, 15));
  ASSERT_OK(eval_near(ctx, "t / max_f", 25, 0.25));
  ASSERT_OK(eval_near(ctx, "t / 30", 7, 7.0 / 30));   /* float division */
  ASSERT_OK(eval_near(ctx, "t // 2", 7, 3));          /* floor division */
  ASSERT_OK(eval_near(ctx, "-7 // 2", 0, -4));
  ASSERT_OK(eval_near(ctx, "t % 40", 87, 7));
  ASSERT_OK(eval_near(ctx, "-t % 40", 7, 33));        /* Python's sign rule */
  ASSERT_OK(eval_near(ctx, "2 ^ 10", 0, 1024));
  ASSERT_OK(eval_near(ctx, "-2 ^ 2", 0, -4));
  ASSERT_OK(eval_near(ctx, "t * s - max_f / fps", 15, 15 - 100.0 / 15));
  /* t and max_f are integers when integral, s and fps floats */
  ASSERT_OK(eval_near(ctx, "math.type(t) == 'integer'", 3, 1));
  ASSERT_OK(eval_near(ctx, "math.type(max_f) == 'integer'", 3, 1));
  ASSERT_OK(eval_near(ctx, "math.type(s) == 'float'", 15, 1));
  ASSERT_OK(eval_near(ctx, "math.type(t) == 'float'", 2.5, 1));
  /* a fresh variable set each time: no stale t */
  for (int t = 0; t < 50; t++) ASSERT_OK(eval_near(ctx, "t * t", t, t * t));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_math_functions) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  static const double xs[] = {0, 1, 2, 7, 13, 29};
  for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
    double t = xs[i], u = t / 31; /* u in [0, 1) for asin and acos */
    ASSERT_OK(eval_near(ctx, "sin(t / 7)", t, sin(t / 7)));
    ASSERT_OK(eval_near(ctx, "cos(t / 7)", t, cos(t / 7)));
    ASSERT_OK(eval_near(ctx, "tan(t / 7)", t, tan(t / 7)));
    ASSERT_OK(eval_near(ctx, "asin(t / 31)", t, asin(u)));
    ASSERT_OK(eval_near(ctx, "acos(t / 31)", t, acos(u)));
    ASSERT_OK(eval_near(ctx, "atan(t / 3)", t, atan(t / 3)));
    ASSERT_OK(eval_near(ctx, "atan(t, -3)", t, atan2(t, -3)));
    ASSERT_OK(eval_near(ctx, "abs(3 - t)", t, fabs(3 - t)));
    ASSERT_OK(eval_near(ctx, "sqrt(t)", t, sqrt(t)));
    ASSERT_OK(eval_near(ctx, "exp(t / 10)", t, exp(t / 10)));
    ASSERT_OK(eval_near(ctx, "log(t + 1)", t, log(t + 1)));
    ASSERT_OK(eval_near(ctx, "log(t + 1, 2)", t, log2(t + 1)));
    ASSERT_OK(eval_near(ctx, "log(t + 1, 10)", t, log10(t + 1)));
    ASSERT_OK(eval_near(ctx, "floor(-t / 4)", t, floor(-t / 4)));
    ASSERT_OK(eval_near(ctx, "ceil(-t / 4)", t, ceil(-t / 4)));
    ASSERT_OK(eval_near(ctx, "min(t, 5, 9)", t, fmin(t, 5)));
    ASSERT_OK(eval_near(ctx, "max(t, 5, 3)", t, fmax(t, 5)));
    ASSERT_OK(eval_near(ctx, "fmod(t + 0.5, 3)", t, fmod(t + 0.5, 3)));
    ASSERT_OK(eval_near(ctx, "fmod(-t - 0.5, 3)", t, fmod(-t - 0.5, 3)));
    ASSERT_OK(eval_near(ctx, "math.sin(t) + math.sqrt(t)", t,
                        sin(t) + sqrt(t)));
  }
  ASSERT_OK(eval_near(ctx, "pi", 0, acos(-1.0)));
  ASSERT_OK(eval_near(ctx, "math.pi", 0, acos(-1.0)));
  ASSERT_OK(eval_near(ctx, "huge > 1e308", 0, 1));
  ASSERT_OK(eval_near(ctx, "1 / huge", 0, 0));
  ASSERT_OK(eval_near(ctx, "fmod(7, 3)", 0, 1));
  /* math.random is gone: evaluation must be a pure function of t */
  ASSERT_OK(eval_fails(ctx, "math.random()", "attempt to call a nil value"));
  ASSERT_OK(eval_fails(ctx, "math.randomseed(1)", "attempt to call"));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_where_int) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_near(ctx, "where(t < 50, 1, 0)", 10, 1));
  ASSERT_OK(eval_near(ctx, "where(t < 50, 1, 0)", 60, 0));
  ASSERT_OK(eval_near(ctx, "where(t % 2, 10, 20)", 3, 10));
  ASSERT_OK(eval_near(ctx, "where(t % 2, 10, 20)", 4, 20)); /* 0 is false */
  ASSERT_OK(eval_near(ctx, "where(0.0, 10, 20)", 0, 20));
  ASSERT_OK(eval_near(ctx, "where(nil, 10, 20)", 0, 20));
  ASSERT_OK(eval_near(ctx, "where(-0.5, 10, 20)", 0, 10));
  ASSERT_OK(eval_near(ctx, "int(2.7)", 0, 2));
  ASSERT_OK(eval_near(ctx, "int(-2.7)", 0, -2)); /* toward zero, not floor */
  ASSERT_OK(eval_near(ctx, "int(t / 4)", 11, 2));
  ASSERT_OK(eval_near(ctx, "math.type(int(2.5)) == 'integer'", 0, 1));
  ASSERT_OK(eval_near(ctx, "int(1e300)", 0, 1e300)); /* beyond int64 */
  ASSERT_OK(eval_near(ctx, "int(-9)", 0, -9));
  ASSERT_OK(eval_fails(ctx, "int('x')", "number expected"));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_booleans) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_near(ctx, "t > 5", 10, 1));
  ASSERT_OK(eval_near(ctx, "t > 5", 3, 0));
  ASSERT_OK(eval_near(ctx, "true", 0, 1));
  ASSERT_OK(eval_near(ctx, "false", 0, 0));
  ASSERT_OK(eval_near(ctx, "(t > 5) and (t < 10)", 7, 1));
  ASSERT_OK(eval_near(ctx, "(t > 5) and (t < 10)", 12, 0));
  ASSERT_OK(eval_near(ctx, "not (t > 5)", 3, 1));
  /* comparisons multiply, as in numexpr schedules */
  ASSERT_OK(eval_near(ctx, "0.5 + (t > 50) * 0.2", 60, 0.7));
  ASSERT_OK(eval_near(ctx, "0.5 + (t > 50) * 0.2", 40, 0.5));
  ASSERT_OK(eval_near(ctx, "(t > 1) + (t > 2) + (t > 3)", 10, 3));
  ASSERT_OK(eval_near(ctx, "-(t > 1) - 1", 10, -2));
  ASSERT_OK(eval_near(ctx, "2 ^ (t > 1) / (t > 1)", 10, 2));
  ASSERT_OK(eval_near(ctx, "(t > 1) < 0.5", 10, 0));
  ASSERT_OK(eval_near(ctx, "(t > 1) <= 1", 10, 1));
  ASSERT_OK(eval_fails(ctx, "(t > 1) + {}", "arithmetic on a table"));
  ASSERT_OK(eval_fails(ctx, "(t > 1) + nil", "arithmetic on a nil"));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_syntax_error) {
  vtl_expr_ctx *ctx;
  char msg[256] = "";
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_EQ(vtl_expr_check(ctx, "1 +* 2", msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_EQ(strncmp(msg, "expression: [string]:1:", 23), 0);
  ASSERT_NOT_NULL(strstr(msg, "unexpected symbol near '*'"));
  ASSERT_OK(eval_fails(ctx, "1 +* 2", "unexpected symbol"));
  ASSERT_OK(eval_fails(ctx, "sin(t", "')' expected"));
  ASSERT_OK(eval_fails(ctx, "", "unexpected symbol"));
  /* statements are not expressions: no assignments, no chained returns */
  ASSERT_EQ(vtl_expr_check(ctx, "t = 1", msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_EQ(vtl_expr_check(ctx, "1) ; t = (2", msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_EQ(vtl_expr_check(ctx, "1) end x = (1", msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_EQ(vtl_expr_check(ctx, "\x1bLua", msg, sizeof(msg)), VTL_EEXPR);
  /* a trailing comment cannot swallow the closing parenthesis */
  ASSERT_OK(eval_near(ctx, "t + 1 -- one more", 4, 5));
  ASSERT_OK(eval_fails(ctx, "t --[[ open", "unfinished long comment"));
  /* deep nesting is a parse error, not a crash */
  static char deep[20001];
  memset(deep, '(', 10000);
  memset(deep + 10000, ')', 10000);
  deep[10000] = '1'; /* "((((...1)))...)" minus one ')' is still unbalanced */
  ASSERT_EQ(vtl_expr_check(ctx, deep, msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_NOT_NULL(strstr(msg, "overflow")); /* "C stack overflow" */
  ASSERT_OK(eval_near(ctx, "t", 3, 3));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_runtime_error) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_fails(ctx, "nothing(1)",
                       "attempt to call a nil value (global 'nothing')"));
  ASSERT_OK(eval_fails(ctx, "t.x", "attempt to index a number value"));
  ASSERT_OK(eval_fails(ctx, "t // 0", "[string]:1: attempt to"));
  ASSERT_OK(eval_fails(ctx, "t % 0", "[string]:1: attempt to"));
  ASSERT_OK(eval_fails(ctx, "sqrt('x')", "bad argument #1 to 'sqrt'"));
  ASSERT_OK(eval_fails(ctx, "'1' + 1", "arithmetic on a string"));
  ASSERT_OK(eval_near(ctx, "t + 1", 1, 2)); /* still usable */
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_budget) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_fails(ctx, "(function() while true do end end)()",
                       "instruction budget exceeded"));
  ASSERT_OK(eval_near(ctx, "t * 3", 5, 15));
  /* a tail call loop uses no stack: only the budget stops it */
  ASSERT_OK(eval_fails(ctx,
                       "(function(f) return f(f) end)(function(f) return f(f) end)",
                       "instruction budget exceeded"));
  ASSERT_OK(eval_fails(ctx,
                       "(function() local n = 0 for i = 1, 1e12 do n = n + i end"
                       " return n end)()",
                       "instruction budget exceeded"));
  /* the count starts afresh each evaluation: a loop of ~1/3 of the
   * budget passes every time */
  for (int i = 0; i < 10; i++)
    ASSERT_OK(eval_near(ctx,
                        "(function() local n = 0 for i = 1, 10000 do n = n + i"
                        " end return n end)()",
                        0, 50005000));
  ASSERT_OK(eval_near(ctx, "t * 3", 5, 15));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_recursion_bomb) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  for (int i = 0; i < 5; i++) {
    /* small frames: the budget or the memory limit, whichever comes first */
    vtl_expr_vars v = vars_at(1);
    double got;
    char msg[256] = "";
    ASSERT_EQ(vtl_expr_eval(ctx,
                            "(function(f) return 1 + f(f) end)"
                            "(function(f) return 1 + f(f) end)",
                            &v, &got, msg, sizeof(msg)),
              VTL_EEXPR);
    ASSERT(strstr(msg, "instruction budget exceeded") ||
           strstr(msg, "out of memory"));
    ASSERT_OK(eval_near(ctx, "t - 1", 5, 4));
  }
  /* frames of 150 locals: the Lua stack outgrows the memory limit long
   * before the budget runs out */
  static char big[2048];
  int n = snprintf(big, sizeof(big),
                   "(function(f) return f(f) end)(function(f) local a0");
  for (int i = 1; i < 150; i++)
    n += snprintf(big + n, sizeof(big) - (size_t)n, ", a%d", i);
  snprintf(big + n, sizeof(big) - (size_t)n, " return 1 + f(f) end)");
  ASSERT_OK(eval_fails(ctx, big, "out of memory"));
  ASSERT_OK(eval_near(ctx, "t - 1", 5, 4));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_memory_bomb) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  for (int i = 0; i < 5; i++) {
    /* string doubling: 2^40 bytes wanted */
    ASSERT_OK(eval_fails(ctx,
                         "(function() local s = 'x' for i = 1, 40 do s = s .. s"
                         " end return #s end)()",
                         "out of memory"));
    ASSERT_OK(eval_near(ctx, "t + 1", 1, 2));
    /* a table of 64 KiB strings, without end */
    ASSERT_OK(eval_fails(ctx,
                         "(function() local s = 'x' for i = 1, 16 do s = s .. s"
                         " end local t = {} for i = 1, 1e9 do t[i] = s .. i end"
                         " return #t end)()",
                         "out of memory"));
    ASSERT_OK(eval_near(ctx, "t + 1", 1, 2));
  }
  /* the limit is the state's: 1 MiB of string is fine, 8 MiB is not */
  ASSERT_OK(eval_near(ctx,
                      "(function() local s = 'x' for i = 1, 20 do s = s .. s"
                      " end return #s end)()",
                      0, 1 << 20));
  ASSERT_OK(eval_fails(ctx,
                       "(function() local s = 'x' for i = 1, 23 do s = s .. s"
                       " end return #s end)()",
                       "memory"));
  ASSERT_OK(eval_near(ctx, "t + 1", 1, 2));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_no_string_methods) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_fails(ctx, "('x'):rep(1e9)", "attempt to index a string value"));
  ASSERT_OK(eval_fails(ctx, "#(('x'):rep(1e9))", "attempt to index a string"));
  ASSERT_OK(eval_fails(ctx, "('%d'):format(1)", "attempt to index a string"));
  ASSERT_OK(eval_fails(ctx, "('x').len", "attempt to index a string"));
  ASSERT_OK(eval_near(ctx, "#'abc'", 0, 3)); /* the core still works */
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_sandbox) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  static const char *const calls[] = {
      "io.write('x')",         "os.exit(1)",
      "os.execute('true')",    "require('os')",
      "load('return 1')()",    "loadstring('return 1')()",
      "dofile('/etc/passwd')", "loadfile('/etc/passwd')",
      "print(1)",              "string.rep('x', 3)",
      "debug.getinfo(1)",      "setmetatable({}, {})",
      "getmetatable('')",      "collectgarbage('count')",
      "rawset({}, 1, 1)",      "rawget(_G, 'io')",
      "pcall(error)",          "error('x')",
      "coroutine.wrap(print)", "package.loaded",
      "_G.io",                 "table.concat({})",
      "utf8.char(65)",         "next({})",
      "pairs({})",             "tostring(1)",
      "type(1)",               "select('#')",
      "_ENV.io.write('x')",    "math.io.write",
      NULL};
  for (int i = 0; calls[i]; i++) {
    vtl_expr_vars v = vars_at(1);
    double got = -1;
    char msg[256] = "";
    int rc = vtl_expr_eval(ctx, calls[i], &v, &got, msg, sizeof(msg));
    if (rc != VTL_EEXPR) TEST_FAIL_("%s: rc %d, not VTL_EEXPR", calls[i], rc);
    ASSERT_EQ(strncmp(msg, "expression", 10), 0);
    ASSERT(got == -1);
  }
  /* the obvious ones fail because the name is nil */
  ASSERT_OK(eval_fails(ctx, "io.write('x')", "(global 'io')"));
  ASSERT_OK(eval_fails(ctx, "load('return 1')()", "(global 'load')"));
  ASSERT_OK(eval_fails(ctx, "setmetatable({}, {})", "(global 'setmetatable')"));
  ASSERT_OK(eval_near(ctx, "t", 9, 9));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_globals_read_only) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  /* an inner function can run statements, but not write globals */
  ASSERT_OK(eval_fails(ctx, "(function() sin = nil end)()", "read-only"));
  ASSERT_OK(eval_fails(ctx, "(function() t = 99 return t end)()", "read-only"));
  ASSERT_OK(eval_fails(ctx, "(function() x = 1 end)()", "read-only"));
  ASSERT_OK(eval_fails(ctx, "(function() math.sin = nil end)()", "read-only"));
  ASSERT_OK(eval_fails(ctx, "(function() _ENV.where = 1 end)()", "read-only"));
  ASSERT_OK(eval_fails(ctx, "(function() x = 1 end)() or x", "read-only"));
  ASSERT_OK(eval_near(ctx, "x == nil", 0, 1));
  ASSERT_OK(eval_near(ctx, "sin(0) + math.sin(0) + t", 4, 4));
  ASSERT_OK(eval_near(ctx, "where(true, 1, 2)", 0, 1));
  /* locals are fine */
  ASSERT_OK(eval_near(ctx, "(function() local k = t * 2 return k + 1 end)()",
                      5, 11));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_non_number) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_fails(ctx, "'12'", "expression returned a string, not a number"));
  ASSERT_OK(eval_fails(ctx, "nil", "expression returned a nil, not a number"));
  ASSERT_OK(eval_fails(ctx, "{}", "returned a table"));
  ASSERT_OK(eval_fails(ctx, "sin", "returned a function"));
  ASSERT_OK(eval_fails(ctx, "missing", "returned a nil"));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_nan_inf) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(eval_fails(ctx, "0/0", "expression gave NaN/Inf at t=7"));
  ASSERT_OK(eval_fails(ctx, "1/0", "NaN/Inf"));
  ASSERT_OK(eval_fails(ctx, "-huge", "NaN/Inf"));
  ASSERT_OK(eval_fails(ctx, "huge", "(inf)"));
  ASSERT_OK(eval_fails(ctx, "log(0)", "(-inf)"));
  ASSERT_OK(eval_fails(ctx, "sqrt(-1)", "(nan)"));
  ASSERT_OK(eval_fails(ctx, "10 ^ 400", "NaN/Inf"));
  ASSERT_OK(eval_fails(ctx, "int(0/0)", "NaN/Inf"));
  ASSERT_OK(eval_near(ctx, "1e308", 0, 1e308));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_cache) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  /* two expressions alternately: each keeps its own chunk */
  for (int t = 0; t < 100; t++) {
    ASSERT_OK(eval_near(ctx, "t * 2", t, 2.0 * t));
    ASSERT_OK(eval_near(ctx, "t * 3", t, 3.0 * t));
    ASSERT_OK(eval_near(ctx, "t * 2 ", t, 2.0 * t)); /* differs by a space */
  }
  /* a syntax error is cached as that error, for both check and eval */
  char msg1[128], msg2[128];
  ASSERT_EQ(vtl_expr_check(ctx, "t *", msg1, sizeof(msg1)), VTL_EEXPR);
  for (int i = 0; i < 3; i++) {
    ASSERT_OK(eval_fails(ctx, "t *", "unexpected symbol"));
    ASSERT_EQ(vtl_expr_check(ctx, "t *", msg2, sizeof(msg2)), VTL_EEXPR);
    ASSERT_STR_EQ(msg2, msg1);
  }
  ASSERT_OK(eval_near(ctx, "t * 2", 4, 8));
  /* far more distinct expressions than the cache holds, twice over, with
   * the first ones coming back after the cache has been flushed */
  for (int round = 0; round < 2; round++) {
    for (int k = 0; k < 1500; k++) {
      char src[64];
      snprintf(src, sizeof(src), "t + %d", k);
      ASSERT_OK(eval_near(ctx, src, 5, 5 + k));
      if (k % 7 == 0) ASSERT_OK(eval_near(ctx, "t * 3", k, 3.0 * k));
    }
  }
  /* big chunks: the cache would outgrow the memory limit before it fills
   * up, so compiling flushes it instead of failing */
  static char big[8192];
  for (int k = 0; k < 300; k++) {
    int n = snprintf(big, sizeof(big), "%d", k);
    for (int j = 0; j < 1500; j++)
      n += snprintf(big + n, sizeof(big) - (size_t)n, "+t");
    ASSERT_OK(eval_near(ctx, big, 2, k + 3000));
  }
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_check) {
  vtl_expr_ctx *ctx;
  char msg[128] = "unchanged";
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_OK(vtl_expr_check(ctx, "1.0+0.002*sin(1.25*3.14*t/30)", msg,
                           sizeof(msg)));
  /* check compiles without running: a loop is fine, so is a runtime error */
  ASSERT_OK(vtl_expr_check(ctx, "(function() while true do end end)()", msg,
                           sizeof(msg)));
  ASSERT_OK(vtl_expr_check(ctx, "nothing(1)", msg, sizeof(msg)));
  ASSERT_STR_EQ(msg, "unchanged");
  ASSERT_EQ(vtl_expr_check(ctx, "1 2", msg, sizeof(msg)), VTL_EEXPR);
  ASSERT_NOT_NULL(strstr(msg, "expected near '2'"));
  ASSERT_EQ(vtl_expr_check(ctx, "1 2", NULL, 0), VTL_EEXPR);
  ASSERT_OK(eval_near(ctx, "1.0+0.002*sin(1.25*3.14*t/30)", 12,
                      1.0 + 0.002 * sin(1.25 * 3.14 * 12 / 30)));
  vtl_expr_ctx_free(ctx);
  return 0;
}

/* Whether s[0, n) is whole UTF-8: no lead byte without its continuation. */
static int utf8_whole(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int need = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : 0;
    p++;
    for (int i = 0; i < need; i++, p++)
      if ((*p & 0xC0) != 0x80) return 0;
  }
  return 1;
}

TEST_IMPL(expr_message_truncation) {
  vtl_expr_ctx *ctx;
  vtl_expr_vars v = vars_at(1);
  double got;
  char full[512], msg[512];
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  const char *src = "math['\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xac'].x";
  ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, full, sizeof(full)), VTL_EEXPR);
  ASSERT_NOT_NULL(strstr(full, "\xe2\x82\xac")); /* the key is in it */
  size_t n = strlen(full);
  for (size_t len = 1; len <= n + 1; len++) {
    memset(msg, 'Z', sizeof(msg));
    ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, msg, len), VTL_EEXPR);
    ASSERT_LT(strlen(msg), len);
    ASSERT_EQ(msg[len], 'Z'); /* nothing written past msglen */
    ASSERT_EQ(strncmp(msg, full, strlen(msg)), 0);
    ASSERT_GE(strlen(msg) + 4, len - 1); /* cut at most one character */
    ASSERT(utf8_whole(msg));
  }
  ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, msg, n + 1), VTL_EEXPR);
  ASSERT_STR_EQ(msg, full);
  ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, NULL, 0), VTL_EEXPR);
  ASSERT_EQ(vtl_expr_eval(ctx, src, &v, &got, msg, 0), VTL_EEXPR);
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(expr_invalid_args) {
  vtl_expr_ctx *ctx;
  vtl_expr_vars v = vars_at(1);
  double got;
  char msg[64];
  ASSERT_EQ(vtl_expr_ctx_new(NULL), VTL_EINVAL);
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  ASSERT_EQ(vtl_expr_eval(ctx, NULL, &v, &got, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_eval(ctx, "t", NULL, &got, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_eval(ctx, "t", &v, NULL, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_eval(NULL, "t", &v, &got, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_check(ctx, NULL, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_from_numexpr(NULL, msg, sizeof(msg)), VTL_EINVAL);
  ASSERT_EQ(vtl_expr_to_numexpr("t", NULL, 10), VTL_EINVAL);
  vtl_expr_ctx_free(ctx);
  vtl_expr_ctx_free(NULL);
  return 0;
}

/* Deforum schedule expressions and their values, computed in C. */
static double deforum_value(int i, double t) {
  switch (i) {
  case 0: return 1.0 + 0.002 * sin(1.25 * 3.14 * t / 30);
  case 1: return 0.5 * (1 + cos(3.141 * t / 100));
  case 2: return 10 * sin(2 * 3.14 * t / 10);
  case 3: return -1 + fabs(fmod(t, 40) - 20) / 10;
  case 4: return t < 50 ? 1 : 0;
  case 5: return pow(2, t / 50);
  case 6: return (t > 5 && t < 60) ? 1 : 0;
  case 7: return 0.5 + (t > 50) * 0.2;
  default: return 0.65 + 0.1 * (t > 20) - 0.1 * (t > 70);
  }
}

static const char *const deforum_numexpr[] = {
    "1.0+0.002*sin(1.25*3.14*t/30)",
    "0.5*(1+cos(3.141*t/max_f))",
    "10*sin(2*3.14*t/10)",
    "-1 + abs(t%40-20)/10",
    "where(t<50, 1, 0)",
    "2**(t/50)",
    "(t>5) & (t<60)",
    "0.5 + (t>50)*0.2",
    "0.65 + 0.1*(t>20) - 0.1*(t>70)",
    NULL};

static const char *const deforum_lua[] = {
    "1.0+0.002*sin(1.25*3.14*t/30)",
    "0.5*(1+cos(3.141*t/max_f))",
    "10*sin(2*3.14*t/10)",
    "-1 + abs(t%40-20)/10",
    "where(t<50, 1, 0)",
    "2^(t/50)",
    "(t>5) and (t<60)",
    "0.5 + (t>50)*0.2",
    "0.65 + 0.1*(t>20) - 0.1*(t>70)",
    NULL};

TEST_IMPL(numexpr_deforum_round_trip) {
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  for (int i = 0; deforum_numexpr[i]; i++) {
    char lua[256], back[256];
    ASSERT_OK(vtl_expr_from_numexpr(deforum_numexpr[i], lua, sizeof(lua)));
    ASSERT_STR_EQ(lua, deforum_lua[i]);
    ASSERT_OK(vtl_expr_to_numexpr(lua, back, sizeof(back)));
    ASSERT_STR_EQ(back, deforum_numexpr[i]);
    for (int t = 0; t <= 100; t += 3)
      ASSERT_OK(eval_near(ctx, lua, t, deforum_value(i, t)));
  }
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(numexpr_operators) {
  ASSERT_OK(from_numexpr_is("2**t", "2^t"));
  ASSERT_OK(from_numexpr_is("a != b", "a ~= b"));
  ASSERT_OK(from_numexpr_is("(t>5) & (t<10)", "(t>5) and (t<10)"));
  ASSERT_OK(from_numexpr_is("(t<5) | (t>10)", "(t<5) or (t>10)"));
  ASSERT_OK(from_numexpr_is("(t<5)|(t>10)", "(t<5) or (t>10)"));
  ASSERT_OK(from_numexpr_is("~(t>5)", "not (t>5)"));
  ASSERT_OK(from_numexpr_is("a&~b", "a and not b"));
  ASSERT_OK(from_numexpr_is("True", "true"));
  ASSERT_OK(from_numexpr_is("arctan2(t, 2) + arcsin(0.5) + arccos(0) + arctan(1)",
                            "atan(t, 2) + asin(0.5) + acos(0) + atan(1)"));
  ASSERT_OK(from_numexpr_is("5--t", "5- -t"));   /* not a Lua comment */
  ASSERT_OK(from_numexpr_is("+t", "t"));         /* Lua has no unary plus */
  ASSERT_OK(from_numexpr_is("0x1F ^ t", "0x1F ~ t")); /* xor */
  ASSERT_OK(from_numexpr_is("1e-3*t**2 # tiny", "1e-3*t^2 "));
  /* the insides of names, numbers and strings are left alone */
  ASSERT_OK(from_numexpr_is("floor_or_and * notes", "floor_or_and * notes"));
  ASSERT_OK(from_numexpr_is("t_2**x1 + 1e+5 + .5e-3", "t_2^x1 + 1e+5 + .5e-3"));
  ASSERT_OK(from_numexpr_is("'a**b!=c' + \"~\"", "'a**b!=c' + \"~\""));
  ASSERT_OK(from_numexpr_is("x.arcsin", "x.arcsin"));

  ASSERT_OK(to_numexpr_is("2^t", "2**t"));
  ASSERT_OK(to_numexpr_is("a ~= b", "a != b"));
  ASSERT_OK(to_numexpr_is("(t>5) and (t<10)", "(t>5) & (t<10)"));
  ASSERT_OK(to_numexpr_is("(t<5) or (t>10)", "(t<5) | (t>10)"));
  ASSERT_OK(to_numexpr_is("not (t>5)", "~(t>5)"));
  ASSERT_OK(to_numexpr_is("true and false", "True & False"));
  ASSERT_OK(to_numexpr_is("atan(t, 2) + atan(t) + math.atan(1)",
                          "arctan2(t, 2) + arctan(t) + math.atan(1)"));
  ASSERT_OK(to_numexpr_is("atan((t), f(1, 2))", "arctan2((t), f(1, 2))"));
  ASSERT_OK(to_numexpr_is("atan(f(1, 2))", "arctan(f(1, 2))"));
  ASSERT_OK(to_numexpr_is("a ~ b", "a ^ b"));
  ASSERT_OK(to_numexpr_is("~a", "~a"));
  ASSERT_OK(to_numexpr_is("t -- a comment", "t "));
  ASSERT_OK(to_numexpr_is("t--[[ long ]]+1", "t +1"));
  ASSERT_OK(to_numexpr_is("--[[ lead ]] t", " t"));
  ASSERT_OK(to_numexpr_is("band_or_not", "band_or_not"));

  /* round trips of things each side writes */
  static const char *const ne[] = {"2**t", "a != b", "~(t>5)", "(t>5) | (t<2)",
                                   "arctan2(t, 2)", "2**-t**2", "-x**2",
                                   "(-x)**2", "True & False", NULL};
  for (int i = 0; ne[i]; i++) {
    char lua[128], back[128];
    ASSERT_OK(vtl_expr_from_numexpr(ne[i], lua, sizeof(lua)));
    ASSERT_OK(vtl_expr_to_numexpr(lua, back, sizeof(back)));
    ASSERT_STR_EQ(back, ne[i]);
  }
  return 0;
}

TEST_IMPL(numexpr_precedence) {
  /* Lua's and/or bind looser than comparisons, numexpr's &/| tighter */
  ASSERT_OK(to_numexpr_is("t > 5 and t < 10", "(t > 5) & (t < 10)"));
  ASSERT_OK(to_numexpr_is("t > 5 and t < 10 or t > 20",
                          "(t > 5) & (t < 10) | (t > 20)"));
  ASSERT_OK(to_numexpr_is("x ~= 1 or y == 2", "(x != 1) | (y == 2)"));
  ASSERT_OK(to_numexpr_is("a ~ b and c", "(a ^ b) & c"));
  ASSERT_OK(to_numexpr_is("a and (b or c)", "a & (b | c)"));
  ASSERT_OK(to_numexpr_is("not a and b", "~a & b"));
  /* Python chains comparisons; Lua does not */
  ASSERT_OK(to_numexpr_is("a == b == c", "(a == b) == c"));
  /* what already groups the same is left alone */
  ASSERT_OK(to_numexpr_is("-x^2", "-x**2"));
  ASSERT_OK(to_numexpr_is("2^-t^2", "2**-t**2"));
  ASSERT_OK(to_numexpr_is("2^t^2", "2**t**2"));
  ASSERT_OK(to_numexpr_is("a - b - c", "a - b - c"));
  ASSERT_OK(to_numexpr_is("a - (b - c)", "a - (b - c)"));
  ASSERT_OK(to_numexpr_is("where(t > 5 and t < 9, 1, 0)",
                          "where((t > 5) & (t < 9), 1, 0)"));
  /* numexpr's `not` binds looser than ==, Lua's tighter */
  ASSERT_OK(from_numexpr_is("not t == 3", "not (t == 3)"));
  /* numexpr reads t > 5 & t < 10 as t > (5 & t) < 10: kept faithfully */
  ASSERT_OK(from_numexpr_is("t > 5 & t < 10", "t > (5 and t) < 10"));
  /* not an expression we parse: still rewritten, nothing added */
  ASSERT_OK(to_numexpr_is("(function() return 1 ~= 2 end)()",
                          "(function() return 1 != 2 end)()"));

  /* the exports evaluate like the Lua they came from */
  vtl_expr_ctx *ctx;
  ASSERT_OK(vtl_expr_ctx_new(&ctx));
  char ne[128], lua[128];
  ASSERT_OK(vtl_expr_to_numexpr("t > 5 and t < 10 or t > 20", ne, sizeof(ne)));
  ASSERT_OK(vtl_expr_from_numexpr(ne, lua, sizeof(lua)));
  for (int t = 0; t < 30; t++)
    ASSERT_OK(eval_near(ctx, lua, t, (t > 5 && t < 10) || t > 20));
  vtl_expr_ctx_free(ctx);
  return 0;
}

TEST_IMPL(numexpr_too_long) {
  char out[16];
  /* "2**t" -> "2^t": 3 bytes and the NUL */
  memset(out, 'Z', sizeof(out));
  ASSERT_EQ(vtl_expr_from_numexpr("2**t", out, 3), VTL_ETOOLONG);
  ASSERT_EQ(out[0], '\0');
  ASSERT_EQ(out[3], 'Z');
  ASSERT_OK(vtl_expr_from_numexpr("2**t", out, 4));
  ASSERT_STR_EQ(out, "2^t");
  ASSERT_EQ(vtl_expr_from_numexpr("2**t", out, 0), VTL_ETOOLONG);
  ASSERT_EQ(vtl_expr_from_numexpr("2**t", NULL, 0), VTL_ETOOLONG);
  /* "a&b" -> "a and b" grows */
  ASSERT_EQ(vtl_expr_from_numexpr("a&b", out, 7), VTL_ETOOLONG);
  ASSERT_OK(vtl_expr_from_numexpr("a&b", out, 8));
  ASSERT_STR_EQ(out, "a and b");
  /* "2^t" -> "2**t" */
  ASSERT_EQ(vtl_expr_to_numexpr("2^t", out, 4), VTL_ETOOLONG);
  ASSERT_EQ(out[0], '\0');
  ASSERT_OK(vtl_expr_to_numexpr("2^t", out, 5));
  ASSERT_STR_EQ(out, "2**t");
  /* added parentheses count */
  ASSERT_EQ(vtl_expr_to_numexpr("a<b and c", out, 9), VTL_ETOOLONG);
  ASSERT_OK(vtl_expr_to_numexpr("a<b and c", out, 10));
  ASSERT_STR_EQ(out, "(a<b) & c");
  ASSERT_OK(vtl_expr_to_numexpr("", out, 1));
  ASSERT_STR_EQ(out, "");
  return 0;
}

TEST_LIST(
  TEST_ENTRY(expr_arith)
  TEST_ENTRY(expr_math_functions)
  TEST_ENTRY(expr_where_int)
  TEST_ENTRY(expr_booleans)
  TEST_ENTRY(expr_syntax_error)
  TEST_ENTRY(expr_runtime_error)
  TEST_ENTRY(expr_budget)
  TEST_ENTRY(expr_recursion_bomb)
  TEST_ENTRY(expr_memory_bomb)
  TEST_ENTRY(expr_no_string_methods)
  TEST_ENTRY(expr_sandbox)
  TEST_ENTRY(expr_globals_read_only)
  TEST_ENTRY(expr_non_number)
  TEST_ENTRY(expr_nan_inf)
  TEST_ENTRY(expr_cache)
  TEST_ENTRY(expr_check)
  TEST_ENTRY(expr_message_truncation)
  TEST_ENTRY(expr_invalid_args)
  TEST_ENTRY(numexpr_deforum_round_trip)
  TEST_ENTRY(numexpr_operators)
  TEST_ENTRY(numexpr_precedence)
  TEST_ENTRY(numexpr_too_long)
)
