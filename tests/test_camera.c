/* test_camera.c — engine/camera.c, the camera warp between film frames.
 * Bilinear sampling reproduces a linear function exactly, so on ramp
 * images (value = source x, or source y) every warped pixel must equal the
 * source coordinate the move's geometry gives for it:
 *
 *   still          identity moves copy the image bit for bit
 *   translate_2d   (tx, ty) pixels move the picture right / down
 *   zoom_2d        zoom z about the centre: source = c + (p - c) / z
 *   rotate_2d      90 degrees turns the picture counter-clockwise
 *   dolly_3d       translation_z = the 2D zoom 1 / (1 - tz / 200)
 *   roll_3d        rotation_3d_z = the 2D angle (square image)
 *   truck_3d       translation_x moves the picture left by
 *                  tx / 200 / tan(fov / 2) * w / 2 pixels (square image)
 *   pan_3d         rotation_3d_y > 0 brings the right side into view;
 *                  turned away from the picture, edge pixels, no NaN
 */
#include <math.h>
#include <stdlib.h>

#include "camera.h"
#include "task.h"

#define W 32
#define H 32
#define PLANE (W * H)

/* channel 0: x, channel 1: y, channel 2: x + 2y (pixel indices) */
static float *ramps(void) {
  float *img = malloc(3 * PLANE * sizeof *img);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      img[y * W + x] = (float)x;
      img[PLANE + y * W + x] = (float)y;
      img[2 * PLANE + y * W + x] = (float)(x + 2 * y);
    }
  return img;
}

static float at(const float *img, int c, int x, int y) { return img[c * PLANE + y * W + x]; }

static int warp_max_diff(const vtl_camera_move *a, const vtl_camera_move *b, double *d) {
  float *in = ramps(), *oa = malloc(3 * PLANE * sizeof *oa), *ob = malloc(3 * PLANE * sizeof *ob);
  vtl_camera_warp(a, in, oa, W, H);
  vtl_camera_warp(b, in, ob, W, H);
  *d = 0;
  for (int i = 0; i < 3 * PLANE; i++) *d = fmax(*d, fabs(oa[i] - ob[i]));
  free(in);
  free(oa);
  free(ob);
  return 0;
}

TEST_IMPL(still) {
  vtl_camera_move two = {.zoom = 1}, three = {.three_d = true, .fov = 40};
  ASSERT(vtl_camera_is_still(&two));
  ASSERT(vtl_camera_is_still(&three));
  vtl_camera_move moved = {.zoom = 1, .angle = 0.5};
  ASSERT(!vtl_camera_is_still(&moved));
  float *in = ramps(), out[3 * PLANE];
  vtl_camera_warp(&three, in, out, W, H);
  ASSERT(!memcmp(in, out, sizeof out));
  free(in);
  return 0;
}

TEST_IMPL(translate_2d) {
  vtl_camera_move m = {.zoom = 1, .tx = 3, .ty = -2};
  float *in = ramps(), out[3 * PLANE];
  vtl_camera_warp(&m, in, out, W, H);
  for (int y = 0; y < H - 2; y++)
    for (int x = 3; x < W; x++) {
      ASSERT_NEAR(at(out, 0, x, y), x - 3, 1e-5);
      ASSERT_NEAR(at(out, 1, x, y), y + 2, 1e-5);
    }
  /* uncovered pixels repeat the edge */
  ASSERT_NEAR(at(out, 0, 0, 5), 0, 1e-6);
  ASSERT_NEAR(at(out, 1, 5, H - 1), H - 1, 1e-6);
  free(in);
  return 0;
}

TEST_IMPL(zoom_2d) {
  vtl_camera_move m = {.zoom = 2};
  float *in = ramps(), out[3 * PLANE];
  vtl_camera_warp(&m, in, out, W, H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      ASSERT_NEAR(at(out, 0, x, y), W / 2.0 + (x + 0.5 - W / 2.0) / 2 - 0.5, 1e-5);
      ASSERT_NEAR(at(out, 1, x, y), H / 2.0 + (y + 0.5 - H / 2.0) / 2 - 0.5, 1e-5);
    }
  free(in);
  return 0;
}

TEST_IMPL(rotate_2d) {
  /* counter-clockwise on screen: what was on the right is now at the top,
   * so the output's top row samples the source's right column */
  vtl_camera_move m = {.zoom = 1, .angle = 90};
  float *in = ramps(), out[3 * PLANE];
  vtl_camera_warp(&m, in, out, W, H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      ASSERT_NEAR(at(out, 0, x, y), W - 1 - y, 1e-4);
      ASSERT_NEAR(at(out, 1, x, y), x, 1e-4);
    }
  free(in);
  return 0;
}

TEST_IMPL(dolly_3d) {
  vtl_camera_move a = {.three_d = true, .tz = 20, .fov = 40};
  vtl_camera_move b = {.zoom = 1 / (1 - 20 / 200.0)};
  double d;
  warp_max_diff(&a, &b, &d);
  ASSERT_NEAR(d, 0, 1e-4);
  return 0;
}

TEST_IMPL(roll_3d) {
  vtl_camera_move a = {.three_d = true, .rz = 17, .fov = 60};
  vtl_camera_move b = {.zoom = 1, .angle = 17};
  double d;
  warp_max_diff(&a, &b, &d);
  ASSERT_NEAR(d, 0, 1e-3);
  return 0;
}

TEST_IMPL(truck_3d) {
  double fov = 40, tx = 4;
  double shift = tx / 200 / tan(fov * 3.14159265358979 / 360) * W / 2;
  vtl_camera_move a = {.three_d = true, .tx = tx, .fov = fov};
  vtl_camera_move b = {.zoom = 1, .tx = -shift};
  double d;
  warp_max_diff(&a, &b, &d);
  ASSERT_NEAR(d, 0, 1e-4);
  return 0;
}

TEST_IMPL(pan_3d) {
  vtl_camera_move m = {.three_d = true, .ry = 5, .fov = 40};
  float *in = ramps(), out[3 * PLANE];
  vtl_camera_warp(&m, in, out, W, H);
  ASSERT(at(out, 0, W / 2, H / 2) > W / 2.0); /* the centre now shows the right */
  vtl_camera_move away = {.three_d = true, .ry = 120, .fov = 40};
  vtl_camera_warp(&away, in, out, W, H);
  for (int i = 0; i < 3 * PLANE; i++) ASSERT(isfinite(out[i]));
  ASSERT_NEAR(at(out, 0, W / 2, H / 2), W - 1, 1e-6); /* the right edge */
  free(in);
  return 0;
}

TEST_LIST(TEST_ENTRY(still) TEST_ENTRY(translate_2d) TEST_ENTRY(zoom_2d)
          TEST_ENTRY(rotate_2d) TEST_ENTRY(dolly_3d) TEST_ENTRY(roll_3d)
          TEST_ENTRY(truck_3d) TEST_ENTRY(pan_3d))
