/* test_philox.c — engine/philox.c: Philox4x32-10 against the Random123
 * known-answer vectors, and the Gaussian stream built on it (determinism,
 * independence of its coordinates, moments). */
#include <stdint.h>

#include "philox.h"
#include "task.h"

static int kat(const uint32_t ctr[4], const uint32_t key[2],
               const uint32_t want[4]) {
  uint32_t got[4];
  vtl_philox4x32_10(ctr, key, got);
  for (int i = 0; i < 4; i++) ASSERT_U64_EQ(got[i], want[i]);
  return 0;
}

/* Random123 kat_vectors, philox4x32_10. */
TEST_IMPL(philox_kat) {
  const uint32_t zc[4] = {0}, zk[2] = {0};
  const uint32_t z_want[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  if (kat(zc, zk, z_want)) return 1;
  const uint32_t fc[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
  const uint32_t fk[2] = {0xffffffff, 0xffffffff};
  const uint32_t f_want[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
  if (kat(fc, fk, f_want)) return 1;
  const uint32_t pc[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
  const uint32_t pk[2] = {0xa4093822, 0x299f31d0};
  const uint32_t p_want[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
  return kat(pc, pk, p_want);
}

/* Same coordinates, same values; fill == pointwise; each coordinate
 * changes the stream. */
TEST_IMPL(philox_determinism) {
  enum { N = 1003 };
  static float a[N], b[N], c[N];
  vtl_philox_fill_normal(42, 7, vtl_philox_purpose(1, 3), 0, a, N);
  vtl_philox_fill_normal(42, 7, vtl_philox_purpose(1, 3), 0, b, N);
  ASSERT_OK(memcmp(a, b, sizeof a));
  for (int i = 0; i < N; i++)
    ASSERT(a[i] == vtl_philox_normal(42, 7, vtl_philox_purpose(1, 3), (uint64_t)i));
  /* a fill starting mid-block continues the same stream */
  vtl_philox_fill_normal(42, 7, vtl_philox_purpose(1, 3), 5, c, N - 5);
  ASSERT_OK(memcmp(a + 5, c, (N - 5) * sizeof *c));
  /* another seed, frame, purpose kind or step: a different stream */
  const struct { uint64_t seed; uint32_t frame, purpose; } other[] = {
      {43, 7, vtl_philox_purpose(1, 3)},
      {42 + (1ull << 32), 7, vtl_philox_purpose(1, 3)},
      {42, 8, vtl_philox_purpose(1, 3)},
      {42, 7, vtl_philox_purpose(2, 3)},
      {42, 7, vtl_philox_purpose(1, 4)},
      {42, 7, vtl_philox_purpose(1, -1)}};
  for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
    vtl_philox_fill_normal(other[k].seed, other[k].frame, other[k].purpose, 0,
                           c, N);
    int same = 0;
    for (int i = 0; i < N; i++) same += a[i] == c[i];
    ASSERT_LT(same, 5);
  }
  return 0;
}

/* 1e5 samples: mean ~ 0, variance ~ 1, skew ~ 0, kurtosis ~ 3, finite,
 * tails plausible. */
TEST_IMPL(philox_normal_moments) {
  enum { N = 100000 };
  float *z = malloc(N * sizeof *z);
  ASSERT(z != NULL);
  vtl_philox_fill_normal(1234, 0, vtl_philox_purpose(0, -1), 0, z, N);
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  int beyond2 = 0, beyond3 = 0;
  for (int i = 0; i < N; i++) {
    double x = z[i];
    if (!isfinite(x)) {
      free(z);
      ASSERT(isfinite(x));
    }
    s1 += x;
    s2 += x * x;
    s3 += x * x * x;
    s4 += x * x * x * x;
    beyond2 += fabs(x) > 2;
    beyond3 += fabs(x) > 3;
  }
  free(z);
  double mean = s1 / N, var = s2 / N - mean * mean;
  /* standard errors: mean 1/sqrt(N) = 0.0032, variance sqrt(2/N) = 0.0045 */
  ASSERT_NEAR(mean, 0.0, 0.015);
  ASSERT_NEAR(var, 1.0, 0.02);
  ASSERT_NEAR(s3 / N, 0.0, 0.05);
  ASSERT_NEAR(s4 / N, 3.0, 0.1);
  /* P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027 */
  ASSERT_NEAR(beyond2 / (double)N, 0.0455, 0.004);
  ASSERT_NEAR(beyond3 / (double)N, 0.0027, 0.0008);
  return 0;
}

TEST_LIST(TEST_ENTRY(philox_kat) TEST_ENTRY(philox_determinism)
              TEST_ENTRY(philox_normal_moments))
