/* png_io.h — 8-bit RGB PNG files to and from the engine's image tensors
 * ([1, 3, H, W] floats in [-1, 1], row-major NCHW), through libpng's
 * simplified API. Writes go through a temporary file renamed into place, so
 * a failed write never leaves a partial PNG.
 *
 * Errors return VTL_EIO (file, decode, encode), VTL_EINVAL (size limits) or
 * VTL_ENOMEM, with msg naming the file and the reason.
 */
#ifndef VTL_PNG_IO_H
#define VTL_PNG_IO_H

#include <stddef.h>

/* The largest side accepted when reading. */
#define VTL_PNG_MAX_SIDE 16384

/* Reads any PNG as RGB: *out = [1, 3, H, W], x / 255 * 2 - 1 (free it). */
int vtl_png_read(const char *path, float **out, int *W, int *H, char *msg,
                 size_t msglen);

/* Writes image [1, 3, H, W] as round((clamp(x, -1, 1) + 1) / 2 * 255);
 * NaN becomes 0. */
int vtl_png_write(const char *path, const float *image, int W, int H,
                  char *msg, size_t msglen);

/* Converts image [1, 3, H, W] to interleaved 8-bit RGB (H * W * 3 bytes)
 * with the rule of vtl_png_write. */
void vtl_png_to_rgb8(const float *image, int W, int H, unsigned char *rgb);

/* Writes interleaved 8-bit RGB. */
int vtl_png_write_rgb8(const char *path, const unsigned char *rgb, int W,
                       int H, char *msg, size_t msglen);

#endif /* VTL_PNG_IO_H */
