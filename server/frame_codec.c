/* frame_codec.c — zstd frame encoders (contract in frame_codec.h). */
#include "frame_codec.h"

#include <string.h>

#include <zstd.h>

#include "vtl.pb-c.h"

int vtl_frame_enc_init(vtl_frame_enc *e, int codec) {
  memset(e, 0, sizeof *e);
  e->codec = codec;
  e->force_epoch = true;
  if (codec == VTL__V1__CODEC__CODEC_RAW) return 0;
  ZSTD_CCtx *c = ZSTD_createCCtx();
  if (!c) return -1;
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, VTL_FRAME_ZSTD_LEVEL);
  if (codec == VTL__V1__CODEC__CODEC_ZSTD_STREAM)
    /* the window must hold the previous frame: 2^23 = 8 MiB covers
     * 1024x1024 RGB twice over; decoders accept up to 2^27 by default */
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 23);
  e->cctx = c;
  return 0;
}

void vtl_frame_enc_done(vtl_frame_enc *e) {
  ZSTD_freeCCtx(e->cctx);
  e->cctx = NULL;
}

size_t vtl_frame_enc_bound(size_t n) { return ZSTD_compressBound(n) + 64; }

size_t vtl_frame_encode(vtl_frame_enc *e, void *out, size_t cap,
                        const void *pixels, size_t n, bool *epoch,
                        uint32_t *pos) {
  if (e->codec == VTL__V1__CODEC__CODEC_RAW) {
    if (cap < n) return 0;
    memcpy(out, pixels, n);
    *epoch = true;
    *pos = 0;
    return n;
  }
  ZSTD_CCtx *c = e->cctx;
  if (e->codec == VTL__V1__CODEC__CODEC_ZSTD) {
    /* one self-contained zstd frame per video frame */
    size_t r = ZSTD_compress2(c, out, cap, pixels, n);
    *epoch = true;
    *pos = 0;
    return ZSTD_isError(r) ? 0 : r;
  }
  if (e->force_epoch || e->pos >= VTL_FRAME_EPOCH_EVERY) {
    ZSTD_CCtx_reset(c, ZSTD_reset_session_only); /* a new zstd frame */
    e->pos = 0;
    e->force_epoch = false;
  }
  ZSTD_outBuffer ob = {out, cap, 0};
  ZSTD_inBuffer ib = {pixels, n, 0};
  size_t left;
  do {
    left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_flush);
    if (ZSTD_isError(left) || (left && ob.pos == ob.size)) {
      e->force_epoch = true; /* the context is in an unknown state */
      return 0;
    }
  } while (left);
  *epoch = e->pos == 0;
  *pos = e->pos++;
  return ob.pos;
}
