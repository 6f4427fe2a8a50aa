/* frame_codec.h — frame encoders of vtl-server's frame streams (zstd).
 * No lws, no loop: shared by frames.c and the tests/figures.
 *
 *   VTL_CODEC_ZSTD         each frame one self-contained zstd frame
 *                          (ZSTD_compressCCtx): every frame is an epoch.
 *   VTL_CODEC_ZSTD_STREAM  one ZSTD_CCtx per stream; every frame is
 *                          compressed with ZSTD_e_flush, so its bytes are
 *                          a complete set of blocks that may reference the
 *                          previous frames of the same epoch. An epoch
 *                          resets the context (a new zstd frame header):
 *                          decodable alone.
 */
#ifndef VTL_FRAME_CODEC_H
#define VTL_FRAME_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTL_FRAME_ZSTD_LEVEL 3   /* figures in docs/protocol.md */
#define VTL_FRAME_EPOCH_EVERY 24 /* stream frames between epochs (2 s at 12 fps) */

typedef struct vtl_frame_enc {
  int codec;          /* Vtl__V1__Codec: RAW, ZSTD or ZSTD_STREAM */
  void *cctx;         /* ZSTD_CCtx *, owned; NULL for RAW */
  uint32_t pos;       /* frames since the last epoch */
  bool force_epoch;   /* the next frame is an epoch */
} vtl_frame_enc;

int vtl_frame_enc_init(vtl_frame_enc *e, int codec);
void vtl_frame_enc_done(vtl_frame_enc *e);
/* Encodes n bytes of pixels into out (capacity cap, at least
 * vtl_frame_enc_bound(n)). *epoch: the frame stands alone; *pos its
 * stream_pos. Returns the encoded size, or 0 on failure (the encoder is
 * then reset: the next frame is an epoch). */
size_t vtl_frame_enc_bound(size_t n);
size_t vtl_frame_encode(vtl_frame_enc *e, void *out, size_t cap,
                        const void *pixels, size_t n, bool *epoch,
                        uint32_t *pos);

#endif
