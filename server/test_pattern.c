/* test_pattern.c — the --demo test pattern (contract in test_pattern.h).
 * Only integer arithmetic, so every build and the tests agree bit for bit. */
#include "test_pattern.h"

void vtl_test_pattern(uint8_t *rgb, uint32_t w, uint32_t h, int64_t frame_no) {
  uint32_t shift = (uint32_t)((frame_no * 2) % 256);
  /* the square bounces: position on a triangle wave */
  uint32_t span_x = w > 32 ? w - 32 : 1, span_y = h > 32 ? h - 32 : 1;
  uint32_t tx = (uint32_t)((frame_no * 5) % (2 * span_x));
  uint32_t ty = (uint32_t)((frame_no * 3) % (2 * span_y));
  uint32_t sx = tx < span_x ? tx : 2 * span_x - tx;
  uint32_t sy = ty < span_y ? ty : 2 * span_y - ty;
  for (uint32_t y = 0; y < h; y++) {
    for (uint32_t x = 0; x < w; x++) {
      uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      uint32_t u = (x + 256 - shift) & 255;
      p[0] = (uint8_t)u;
      p[1] = (uint8_t)(y & 255);
      p[2] = (uint8_t)((u + y) / 2);
      if (y < 8) { /* checker strip whose phase is the frame number */
        uint8_t v = (((x + (uint32_t)frame_no) / 8) & 1) ? 160 : 0;
        p[0] = p[1] = p[2] = v;
      }
      if (x >= sx && x < sx + 32 && y >= sy && y < sy + 32)
        p[0] = p[1] = p[2] = 255;
    }
  }
}
