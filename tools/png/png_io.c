/* png_io.c — see png_io.h. */
#include "png_io.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtl_error.h"

int vtl_png_read(const char *path, float **out, int *W, int *H, char *msg,
                 size_t msglen) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) {
    snprintf(msg, msglen, "%s: %s", path, img.message);
    return VTL_EIO;
  }
  img.format = PNG_FORMAT_RGB;
  if (img.width > VTL_PNG_MAX_SIDE || img.height > VTL_PNG_MAX_SIDE) {
    snprintf(msg, msglen, "%s: %ux%u is too large (at most %d a side)", path,
             img.width, img.height, VTL_PNG_MAX_SIDE);
    png_image_free(&img);
    return VTL_EINVAL;
  }
  size_t npx = (size_t)img.width * img.height;
  unsigned char *buf = malloc(npx * 3);
  float *f = malloc(npx * 3 * sizeof *f);
  if (!buf || !f) {
    snprintf(msg, msglen, "%s: out of memory", path);
    png_image_free(&img);
    free(buf);
    free(f);
    return VTL_ENOMEM;
  }
  if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
    snprintf(msg, msglen, "%s: %s", path, img.message);
    png_image_free(&img);
    free(buf);
    free(f);
    return VTL_EIO;
  }
  for (size_t p = 0; p < npx; p++)
    for (int ch = 0; ch < 3; ch++)
      f[ch * npx + p] = buf[p * 3 + ch] / 255.0f * 2.0f - 1.0f;
  free(buf);
  *out = f;
  *W = (int)img.width;
  *H = (int)img.height;
  return 0;
}

void vtl_png_to_rgb8(const float *image, int W, int H, unsigned char *rgb) {
  size_t npx = (size_t)W * H;
  for (size_t p = 0; p < npx; p++)
    for (int ch = 0; ch < 3; ch++) {
      float v = image[ch * npx + p];
      v = v != v ? -1.0f : v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
      float b = (v + 1.0f) / 2.0f * 255.0f + 0.5f;
      rgb[p * 3 + ch] = (unsigned char)(b >= 255.0f ? 255 : (int)b);
    }
}

int vtl_png_write_rgb8(const char *path, const unsigned char *rgb, int W,
                       int H, char *msg, size_t msglen) {
  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  if (!tmp) {
    snprintf(msg, msglen, "%s: out of memory", path);
    return VTL_ENOMEM;
  }
  snprintf(tmp, tl, "%s.tmp%ld", path, (long)getpid());
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)W;
  img.height = (png_uint_32)H;
  img.format = PNG_FORMAT_RGB;
  int rc = 0;
  if (!png_image_write_to_file(&img, tmp, 0, rgb, 0, NULL)) {
    snprintf(msg, msglen, "%s: %s", path, img.message);
    rc = VTL_EIO;
    unlink(tmp);
  } else if (rename(tmp, path) != 0) {
    snprintf(msg, msglen, "%s: %s", path, strerror(errno));
    rc = VTL_EIO;
    unlink(tmp);
  }
  png_image_free(&img);
  free(tmp);
  return rc;
}

int vtl_png_write(const char *path, const float *image, int W, int H,
                  char *msg, size_t msglen) {
  unsigned char *rgb = malloc((size_t)W * H * 3);
  if (!rgb) {
    snprintf(msg, msglen, "%s: out of memory", path);
    return VTL_ENOMEM;
  }
  vtl_png_to_rgb8(image, W, H, rgb);
  int rc = vtl_png_write_rgb8(path, rgb, W, H, msg, msglen);
  free(rgb);
  return rc;
}
