/* test_pattern.h — the synthetic moving test pattern of --demo (a pure
 * function, shared by the server and its tests, which compare pixels). */
#ifndef VTL_TEST_PATTERN_H_INCLUDED
#define VTL_TEST_PATTERN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define VTL_TEST_PATTERN_W   256
#define VTL_TEST_PATTERN_H   256
#define VTL_TEST_PATTERN_FPS 12

/* Fills rgb (h rows of w RGB8 pixels, no padding: w*h*3 bytes) with frame
 * `frame_no` of the pattern: a diagonal colour gradient scrolling right by
 * 2 px per frame, a white 32x32 square bouncing across it, and an 8x8
 * black/grey checker strip along the top whose phase encodes frame_no. */
void vtl_test_pattern(uint8_t *rgb, uint32_t w, uint32_t h, int64_t frame_no);

#endif
