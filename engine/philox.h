/* philox.h — counter-based Gaussian noise (Philox4x32-10 + Box-Muller), so
 * a render draws the same numbers on every device and in any order.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC11; the Random123 library): a 4 x 32-bit counter and a 2 x 32-bit
 * key give 4 x 32-bit outputs after 10 rounds. Nothing is stateful: value i
 * of a stream is a pure function of (seed, frame, purpose, i).
 *
 *   key     = {seed & 0xffffffff, seed >> 32}
 *   counter = {block & 0xffffffff, block >> 32, purpose, frame}
 *             block = i / 4: one Philox call gives the 4 values 4*block ..
 *             4*block + 3
 *   normals: lanes (0, 1) and (2, 3) are Box-Muller pairs, computed in
 *            double and rounded to float:
 *              u1 = (a + 1) / 2^32  in (0, 1]     u2 = b / 2^32 in [0, 1)
 *              r  = sqrt(-2 ln u1);  z0 = r cos(2 pi u2), z1 = r sin(2 pi u2)
 *
 * `purpose` separates the draws of one frame (initial latents, the VAE
 * sample, each scheduler step ...): see vtl_philox_purpose.
 */
#ifndef VTL_PHILOX_H
#define VTL_PHILOX_H

#include <stddef.h>
#include <stdint.h>

/* One Philox4x32-10 block: out = philox(ctr, key). */
void vtl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                       uint32_t out[4]);

/* Value i of the standard normal stream (seed, frame, purpose). */
float vtl_philox_normal(uint64_t seed, uint32_t frame, uint32_t purpose,
                        uint64_t i);

/* out[k] = vtl_philox_normal(seed, frame, purpose, first + k), k < n. */
void vtl_philox_fill_normal(uint64_t seed, uint32_t frame, uint32_t purpose,
                            uint64_t first, float *out, size_t n);

/* A purpose word: kind (0..255) in the top byte, step + 1 (step >= -1,
 * < 2^24 - 1) below it. */
static inline uint32_t vtl_philox_purpose(unsigned kind, int step) {
  return ((uint32_t)(kind & 0xffu) << 24) | ((uint32_t)(step + 1) & 0xffffffu);
}

#endif /* VTL_PHILOX_H */
