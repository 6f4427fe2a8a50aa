/* camera.c — the camera warp (contract and conventions in camera.h). */
#include "camera.h"

#include <math.h>
#include <string.h>

#define DEG (3.14159265358979323846 / 180.0)
#define TRANSLATION_SCALE (1.0 / 200.0) /* Deforum's 3D units per step */

bool vtl_camera_is_still(const vtl_camera_move *m) {
  if (m->three_d)
    return m->tx == 0 && m->ty == 0 && m->tz == 0 && m->rx == 0 && m->ry == 0 &&
           m->rz == 0;
  return m->zoom == 1 && m->angle == 0 && m->tx == 0 && m->ty == 0;
}

/* Bilinear sample of one plane at pixel coordinates (sx, sy) (pixel
 * centres at integers), edges replicated. */
static float sample(const float *plane, int w, int h, double sx, double sy) {
  sx = fmin(fmax(sx, 0.0), w - 1.0);
  sy = fmin(fmax(sy, 0.0), h - 1.0);
  int x0 = (int)sx, y0 = (int)sy;
  int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
  double fx = sx - x0, fy = sy - y0;
  double top = plane[y0 * w + x0] * (1 - fx) + plane[y0 * w + x1] * fx;
  double bot = plane[y1 * w + x0] * (1 - fx) + plane[y1 * w + x1] * fx;
  return (float)(top * (1 - fy) + bot * fy);
}

/* 2D: output pixel centre (px, py) -> source pixel coordinates. */
static void source_2d(const vtl_camera_move *m, int w, int h, double px,
                      double py, double *sx, double *sy) {
  double c = cos(m->angle * DEG), s = sin(m->angle * DEG);
  double ux = px - w / 2.0 - m->tx, uy = py - h / 2.0 - m->ty;
  /* the inverse of: scale, rotate counter-clockwise on screen (y down) */
  *sx = w / 2.0 + (c * ux - s * uy) / m->zoom - 0.5;
  *sy = h / 2.0 + (s * ux + c * uy) / m->zoom - 0.5;
}

typedef struct {
  double r[3][3]; /* new camera's directions -> old camera's */
  double cx, cy, cz; /* new camera's position in the old one's frame */
  double tan_y, tan_x;
} view3d;

static void view_init(view3d *v, const vtl_camera_move *m, int w, int h) {
  double a = m->rz * DEG, b = m->rx * DEG, g = m->ry * DEG;
  /* roll (the picture turns counter-clockwise on screen), then tilt up,
   * then pan right: R = Ry(g) Rx(b) Rz(-a), x right, y up, z forward */
  double roll[3][3] = {{cos(a), sin(a), 0}, {-sin(a), cos(a), 0}, {0, 0, 1}};
  double tilt[3][3] = {{1, 0, 0}, {0, cos(b), sin(b)}, {0, -sin(b), cos(b)}};
  double pan[3][3] = {{cos(g), 0, sin(g)}, {0, 1, 0}, {-sin(g), 0, cos(g)}};
  double tr[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      tr[i][j] = 0;
      for (int k = 0; k < 3; k++) tr[i][j] += tilt[i][k] * roll[k][j];
    }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      v->r[i][j] = 0;
      for (int k = 0; k < 3; k++) v->r[i][j] += pan[i][k] * tr[k][j];
    }
  v->cx = m->tx * TRANSLATION_SCALE;
  v->cy = m->ty * TRANSLATION_SCALE;
  v->cz = m->tz * TRANSLATION_SCALE;
  v->tan_y = tan(m->fov * DEG / 2);
  v->tan_x = v->tan_y * w / h;
}

/* 3D: output pixel centre -> the point of the picture (depth 1) it sees,
 * in source pixel coordinates. */
static void source_3d(const view3d *v, int w, int h, double px, double py,
                      double *sx, double *sy) {
  double d[3] = {(px / w * 2 - 1) * v->tan_x, (1 - py / h * 2) * v->tan_y, 1};
  double D[3];
  for (int i = 0; i < 3; i++)
    D[i] = v->r[i][0] * d[0] + v->r[i][1] * d[1] + v->r[i][2] * d[2];
  double X, Y;
  double t = D[2] > 1e-12 ? (1 - v->cz) / D[2] : -1;
  if (t > 0) {
    X = v->cx + t * D[0];
    Y = v->cy + t * D[1];
  } else { /* never meets the picture: the edge in the ray's direction */
    X = D[0] * 1e9;
    Y = D[1] * 1e9;
  }
  *sx = (X / v->tan_x + 1) / 2 * w - 0.5;
  *sy = (1 - Y / v->tan_y) / 2 * h - 0.5;
}

void vtl_camera_warp(const vtl_camera_move *m, const float *in, float *out,
                     int w, int h) {
  size_t plane = (size_t)w * h;
  if (vtl_camera_is_still(m)) {
    memcpy(out, in, 3 * plane * sizeof *out);
    return;
  }
  view3d v;
  if (m->three_d) view_init(&v, m, w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double sx, sy;
      if (m->three_d)
        source_3d(&v, w, h, x + 0.5, y + 0.5, &sx, &sy);
      else
        source_2d(m, w, h, x + 0.5, y + 0.5, &sx, &sy);
      for (int c = 0; c < 3; c++)
        out[c * plane + (size_t)y * w + x] = sample(in + c * plane, w, h, sx, sy);
    }
}
