/* philox.c — Philox4x32-10 and Box-Muller normals (philox.h). */
#include "philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void vtl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                       uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* The 4 normals of one block. */
static void block_normals(uint64_t seed, uint32_t frame, uint32_t purpose,
                          uint64_t block, float z[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), purpose,
                           frame};
  uint32_t r[4];
  vtl_philox4x32_10(ctr, key, r);
  const double two32 = 4294967296.0, two_pi = 6.283185307179586476925;
  for (int p = 0; p < 2; p++) {
    double u1 = ((double)r[2 * p] + 1.0) / two32;
    double u2 = (double)r[2 * p + 1] / two32;
    double rad = sqrt(-2.0 * log(u1));
    z[2 * p] = (float)(rad * cos(two_pi * u2));
    z[2 * p + 1] = (float)(rad * sin(two_pi * u2));
  }
}

float vtl_philox_normal(uint64_t seed, uint32_t frame, uint32_t purpose,
                        uint64_t i) {
  float z[4];
  block_normals(seed, frame, purpose, i / 4, z);
  return z[i % 4];
}

void vtl_philox_fill_normal(uint64_t seed, uint32_t frame, uint32_t purpose,
                            uint64_t first, float *out, size_t n) {
  size_t k = 0;
  while (k < n) {
    uint64_t i = first + k;
    float z[4];
    block_normals(seed, frame, purpose, i / 4, z);
    for (unsigned lane = (unsigned)(i % 4); lane < 4 && k < n; lane++)
      out[k++] = z[lane];
  }
}
