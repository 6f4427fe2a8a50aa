/* task.h — the test harness (after libuv's test/task.h).
 *
 * A test file defines TEST_IMPL(name) functions and lists them once:
 *
 *   TEST_IMPL(curve_linear) { ... ASSERT_EQ(a, b); return 0; }
 *   TEST_LIST(TEST_ENTRY(curve_linear) TEST_ENTRY(...))
 *
 * TEST_LIST defines main(): with no argument it runs every test, with a
 * name it runs that one (ctest registers each test by name). A failing
 * ASSERT prints both values with file and line and fails the test.
 */
#ifndef VTL_TASK_H
#define VTL_TASK_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_IMPL(name) int run_test_##name(void)

#define TEST_FAIL_(fmt, ...)                                                 \
  do {                                                                       \
    fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);    \
    return 1;                                                                \
  } while (0)

#define ASSERT(expr)                                                         \
  do { if (!(expr)) TEST_FAIL_("assertion failed: %s", #expr); } while (0)

#define ASSERT_INT_(a, op, b)                                                \
  do {                                                                       \
    int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                            \
    if (!(a_ op b_))                                                         \
      TEST_FAIL_("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);  \
  } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_(a, >=, b)
#define ASSERT_OK(a) ASSERT_EQ(a, 0)

#define ASSERT_U64_EQ(a, b)                                                  \
  do {                                                                       \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                         \
    if (a_ != b_)                                                            \
      TEST_FAIL_("%s == %s: %" PRIu64 " vs %" PRIu64, #a, #b, a_, b_);       \
  } while (0)

#define ASSERT_NEAR(a, b, tol)                                               \
  do {                                                                       \
    double a_ = (double)(a), b_ = (double)(b);                               \
    if (!(fabs(a_ - b_) <= (tol)))                                           \
      TEST_FAIL_("%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_,         \
                 (double)(tol));                                             \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                  \
  do {                                                                       \
    const char *a_ = (a), *b_ = (b);                                         \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                   \
      TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",  \
                 b_ ? b_ : "(null)");                                        \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                         \
  do {                                                                       \
    const char *h_ = (hay), *n_ = (needle);                                  \
    if (!h_ || !strstr(h_, n_))                                              \
      TEST_FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_);  \
  } while (0)

/* For set-up steps that cannot fail unless the test itself is wrong. */
#define CHECK(x)                                                             \
  do {                                                                       \
    if ((x) != 0) {                                                          \
      fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x);        \
      abort();                                                               \
    }                                                                        \
  } while (0)

#define ASSERT_NULL(a) ASSERT((a) == NULL)
#define ASSERT_NOT_NULL(a) ASSERT((a) != NULL)

typedef struct {
  const char *name;
  int (*fn)(void);
} task_entry;

#define TEST_ENTRY(name) {#name, run_test_##name},

#define TEST_LIST(entries)                                                   \
  static const task_entry task_list_[] = {entries{NULL, NULL}};              \
  int main(int argc, char **argv) {                                          \
    int failed = 0, ran = 0;                                                 \
    for (const task_entry *t = task_list_; t->name; t++) {                   \
      if (argc > 1 && strcmp(argv[1], t->name) != 0) continue;               \
      ran++;                                                                 \
      int rc = t->fn();                                                      \
      fprintf(rc ? stderr : stdout, "%s %s\n", rc ? "not ok" : "ok",         \
              t->name);                                                      \
      failed += rc != 0;                                                     \
    }                                                                        \
    if (ran == 0) {                                                          \
      fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "?");       \
      return 2;                                                              \
    }                                                                        \
    return failed ? 1 : 0;                                                   \
  }

#endif /* VTL_TASK_H */
