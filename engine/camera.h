/* camera.h — the virtual camera's move between two frames of a film, as a
 * warp of the previous frame (host code: images of a film are small next
 * to a UNet step, and the warp must be the same bytes on every device).
 *
 * 2D (Deforum's 2D mode): the previous frame scaled by `zoom` and rotated
 * by `angle` degrees (counter-clockwise on screen) about the image centre,
 * then shifted by (tx, ty) pixels (right, down).
 *
 * 3D: the previous frame is a flat picture at depth 1 in front of a
 * pinhole camera with vertical field of view `fov`; the camera then moves
 * by (tx, ty, tz) / 200 units (right, up, forward: Deforum's translation
 * scale) and turns by (rx, ry, rz) degrees (tilt up, pan right, roll
 * counter-clockwise), and the new frame is what it sees of that picture.
 * This is Deforum's 3D mode without a depth model (a constant depth map);
 * near and far only clip, and a flat picture is never clipped, so they
 * change nothing here.
 *
 * Sampling is bilinear; points outside the previous frame take the
 * nearest edge pixel (Deforum's "replicate" border); a ray that never meets
 * the picture (pointing away from it) takes the edge pixel nearest its
 * direction.
 */
#ifndef VTL_CAMERA_H
#define VTL_CAMERA_H

#include <stdbool.h>

typedef struct {
  bool three_d;
  double zoom, angle, tx, ty;    /* 2D */
  double tz, rx, ry, rz, fov;    /* 3D (with tx, ty) */
} vtl_camera_move;

/* True when the move leaves every pixel where it is (out = in exactly). */
bool vtl_camera_is_still(const vtl_camera_move *m);

/* out[3][h][w] = in[3][h][w] seen after the move (planar RGB floats). in
 * and out must not overlap. */
void vtl_camera_warp(const vtl_camera_move *m, const float *in, float *out,
                     int w, int h);

#endif /* VTL_CAMERA_H */
