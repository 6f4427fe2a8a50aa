/* engine_test.h — what the engine's tests share: one OpenCL runtime per
 * test process (its kernel cache in the build tree, never ~/.cache), an
 * ASSERT for engine calls that prints the runtime's message, and a small
 * deterministic random source for weights and inputs. */
#ifndef VTL_ENGINE_TEST_H
#define VTL_ENGINE_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"
#include "task.h"
#include "vtl_error.h"

#define ASSERT_OP(cl, x)                                                     \
  do {                                                                       \
    int rc_ = (x);                                                           \
    if (rc_ != 0)                                                            \
      TEST_FAIL_("%s: %s: %s", #x, vtl_err_name(rc_), vtl_cl_errmsg(cl));    \
  } while (0)

static vtl_cl *engine_test_rt_;

static inline void engine_test_close_rt_(void) { vtl_cl_close(engine_test_rt_); }

/* The process's runtime, opened on first use; aborts without a device. */
static inline vtl_cl *rt(void) {
  if (!engine_test_rt_) {
    vtl_cl_options o;
    vtl_cl_options_init(&o);
    o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
    o.profile = 0;
    char msg[512];
    if (vtl_cl_init(&engine_test_rt_, &o, msg, sizeof msg) != 0) {
      fprintf(stderr, "no OpenCL device: %s\n", msg);
      abort();
    }
    atexit(engine_test_close_rt_);
  }
  return engine_test_rt_;
}

static uint64_t engine_test_rng_ = 0x9e3779b97f4a7c15ULL;

/* Uniform in [-1, 1), xorshift64: the same sequence in every run. */
static inline float frand(void) {
  engine_test_rng_ ^= engine_test_rng_ << 13;
  engine_test_rng_ ^= engine_test_rng_ >> 7;
  engine_test_rng_ ^= engine_test_rng_ << 17;
  return (float)((engine_test_rng_ >> 40) * (2.0 / (1 << 24)) - 1.0);
}

#endif /* VTL_ENGINE_TEST_H */
