/* frames.c — frame streams: Subscribe, vtl_room_publish_frame, and the
 * per-session frame slot (docs/protocol.md "Frames").
 *
 *   room ── streams (one per distinct (width, height, fps cap, codec))
 *             │  each frame encoded ONCE per stream: one packed Envelope
 *             │  (vtl_msg) referenced by every session on the stream
 *             └─ session.frame_slot: the newest frame only
 *
 * A session's stream is decided at every published frame from its
 * Subscribe (max size, max fps), the frame's size and its codec (Hello
 * capabilities); sessions asking for the same get the same stream. A
 * stream with no session left is freed.
 *
 * Priority: ws.c writes the session's FIFO (ops, errors, presence ...)
 * first and takes the frame slot only when the FIFO is empty, so frames
 * never delay document messages. A frame that finds the slot full replaces
 * the one waiting there (a drop). For CODEC_ZSTD_STREAM a drop breaks the
 * chain: the session gets no stream frame until the next epoch
 * (s->need_epoch); so does a session that joins a stream late.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame_codec.h"
#include "metrics.h"
#include "server.h"

typedef struct vtl_stream {
  struct vtl_stream *next;   /* room list */
  uint64_t id;               /* Frame.stream_id, unique in the room */
  uint32_t w, h;             /* encoded size, pixels */
  double fps;                /* cap, 0 = every published frame */
  int codec;                 /* Vtl__V1__Codec */
  vtl_frame_enc enc;         /* owns the zstd context */
  uint64_t last_ms;          /* uv_now of the last frame sent; 0 = none */
  size_t nsessions;          /* sessions with s->stream == this */
} vtl_stream;

/* Preferred codec when a client supports both (figures: docs/protocol.md). */
#define PREFER_STREAM 1

void vtl_frames_hello(vtl_session *s, const Vtl__V1__Hello *h) {
  bool zstd = false, stream = false;
  for (size_t i = 0; i < h->n_capabilities; i++) {
    if (!strcmp(h->capabilities[i], "zstd")) zstd = true;
    if (!strcmp(h->capabilities[i], "zstd_stream")) stream = true;
  }
  s->codec = stream && (PREFER_STREAM || !zstd) ? VTL__V1__CODEC__CODEC_ZSTD_STREAM
             : zstd ? VTL__V1__CODEC__CODEC_ZSTD
                    : VTL__V1__CODEC__CODEC_RAW;
}

static void stream_release(vtl_room *r, vtl_stream *st) {
  if (!st || --st->nsessions > 0) return;
  for (vtl_stream **p = &r->streams; *p; p = &(*p)->next)
    if (*p == st) { *p = st->next; break; }
  vtl_frame_enc_done(&st->enc);
  free(st);
}

static void set_stream(vtl_session *s, vtl_stream *st) {
  if (s->stream == st) return;
  if (s->stream) stream_release(s->room, s->stream);
  s->stream = st;
  s->need_epoch = true;
  if (st) st->nsessions++;
}

void vtl_frames_leave(vtl_session *s) {
  if (s->room) {
    set_stream(s, NULL);
    if (s->sub_on) vtl_render_touch(s->room, false); /* one watcher less */
  }
  s->sub_on = false;
  if (s->frame_slot) {
    vtl_msg_unref(s->frame_slot);
    s->frame_slot = NULL;
  }
}

void vtl_frames_room_free(vtl_room *r) {
  while (r->streams) {
    vtl_stream *st = r->streams;
    r->streams = st->next;
    vtl_frame_enc_done(&st->enc);
    free(st);
  }
}

void vtl_frames_subscribe(vtl_session *s, const Vtl__V1__Subscribe *m) {
  if (s->state != VTL_SESSION_LIVE) {
    vtl_session_offence(s, VTL__V1__ERROR__CODE__CODE_MALFORMED,
                        "Subscribe before Welcome");
    return;
  }
  if (s->role == VTL__V1__ROLE__ROLE_WORKER) {
    vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_PERM, 0, false,
                      "a worker sends frames; it does not subscribe");
    return;
  }
  if (!isfinite(m->max_fps) || m->max_fps < 0 || m->max_width > 16384 ||
      m->max_height > 16384) {
    vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_RANGE, 0, false,
                      "Subscribe: max size 0..16384, max_fps >= 0");
    return;
  }
  if (!m->enabled) {
    vtl_frames_leave(s);
    return;
  }
  s->sub_on = true;
  s->sub_w = m->max_width;
  s->sub_h = m->max_height;
  s->sub_fps = m->max_fps;
  vtl_render_touch(s->room, false); /* also a newcomer's first frame */
  if (m->request_epoch) {
    if (s->stream) s->stream->enc.force_epoch = true;
    if (s->frame_slot && s->codec == VTL__V1__CODEC__CODEC_ZSTD_STREAM) {
      vtl_msg_unref(s->frame_slot); /* may be a non-epoch: superseded */
      s->frame_slot = NULL;
    }
    s->need_epoch = true;
  }
}

vtl_msg *vtl_frames_take(vtl_session *s) {
  if (s->closing) return NULL;
  vtl_msg *m = s->frame_slot;
  s->frame_slot = NULL;
  if (m) {
    s->frames_sent++;
    vtl_metrics_add(VTL_M_FRAMES_OUT, 1);
    vtl_metrics_add(VTL_M_FRAME_BYTES_OUT, m->len);
  }
  return m;
}

/* The size a session gets: the frame fitted into its maximum (0 = the
 * timeline's size), aspect kept, never enlarged. */
static void target_size(const vtl_session *s, uint32_t w, uint32_t h,
                        uint32_t *tw, uint32_t *th) {
  const vtl_timeline *tl = vtl_doc_timeline(s->room->doc);
  uint32_t mw = s->sub_w ? s->sub_w : (uint32_t)tl->width;
  uint32_t mh = s->sub_h ? s->sub_h : (uint32_t)tl->height;
  if (w <= mw && h <= mh) { *tw = w; *th = h; return; }
  double k = fmin((double)mw / w, (double)mh / h);
  *tw = (uint32_t)fmax(1, floor(w * k));
  *th = (uint32_t)fmax(1, floor(h * k));
}

static vtl_stream *stream_for(vtl_room *r, uint32_t w, uint32_t h, double fps,
                              int codec) {
  for (vtl_stream *st = r->streams; st; st = st->next)
    if (st->w == w && st->h == h && st->fps == fps && st->codec == codec)
      return st;
  vtl_stream *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  if (vtl_frame_enc_init(&st->enc, codec)) {
    free(st);
    return NULL;
  }
  st->id = ++r->next_stream_id;
  st->w = w;
  st->h = h;
  st->fps = fps;
  st->codec = codec;
  st->next = r->streams;
  r->streams = st;
  return st;
}

/* Nearest-neighbour downscale of RGB8: out is tw*th*3. */
static void downscale(uint8_t *out, uint32_t tw, uint32_t th,
                      const uint8_t *in, uint32_t w, uint32_t h) {
  for (uint32_t y = 0; y < th; y++) {
    const uint8_t *row = in + (size_t)((uint64_t)y * h / th) * w * 3;
    for (uint32_t x = 0; x < tw; x++)
      memcpy(out + ((size_t)y * tw + x) * 3, row + (size_t)((uint64_t)x * w / tw) * 3, 3);
  }
}

/* Puts a frame in the session's slot (see the header comment). */
static void deliver(vtl_session *s, vtl_msg *m, bool epoch) {
  if (s->closing) return;
  bool chained = s->codec == VTL__V1__CODEC__CODEC_ZSTD_STREAM;
  if (chained && !epoch && s->need_epoch) {
    s->frames_dropped++;
    vtl_metrics_add(VTL_M_FRAMES_DROPPED, 1);
    return;
  }
  if (s->frame_slot) { /* the waiting frame was never sent: a drop */
    vtl_msg_unref(s->frame_slot);
    s->frame_slot = NULL;
    s->frames_dropped++;
    vtl_metrics_add(VTL_M_FRAMES_DROPPED, 1);
    if (chained && !epoch) {
      s->need_epoch = true;
      return;
    }
  }
  vtl_msg_ref(m);
  s->frame_slot = m;
  if (epoch) s->need_epoch = false;
  vtl_ws_request_write(s);
}

/* Encodes one frame for one stream and hands it to its sessions. */
static int publish_stream(vtl_room *r, vtl_stream *st, const Vtl__V1__Frame *tmpl,
                          const uint8_t *px, uint64_t now) {
  size_t n = (size_t)st->w * st->h * 3;
  size_t cap = vtl_frame_enc_bound(n);
  uint8_t *buf = malloc(cap);
  if (!buf) return VTL_ENOMEM;
  bool epoch;
  uint32_t pos;
  size_t len = vtl_frame_encode(&st->enc, buf, cap, px, n, &epoch, &pos);
  if (!len) {
    free(buf);
    return VTL_EIO;
  }
  Vtl__V1__Frame f = *tmpl;
  f.width = st->w;
  f.height = st->h;
  f.codec = (Vtl__V1__Codec)st->codec;
  f.epoch = epoch;
  f.stream_id = st->id;
  f.stream_pos = pos;
  f.data.data = buf;
  f.data.len = len;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_FRAME;
  env.frame = &f;
  vtl_msg *m = vtl_msg_pack(&env);
  free(buf);
  if (!m) return VTL_ENOMEM;
  vtl_metrics_add(VTL_M_FRAMES_ENCODED, 1);
  st->last_ms = now;
  for (vtl_session *s = r->sessions; s; s = s->room_next)
    if (s->stream == st && s->sub_on && s->state == VTL_SESSION_LIVE)
      deliver(s, m, epoch);
  vtl_msg_unref(m);
  return 0;
}

/* vtl_room_publish_frame — hands one rendered frame to the room's
 * subscribers. Called on the LOOP THREAD only (the render service's thread
 * hands a frame over through a uv_async_t and this is called from its
 * callback: render.c; lws and the sessions are not thread-safe). doc_seq
 * and dep_hash are the document seq and vtl_params.dep_hash the frame was
 * rendered for (0 for a test pattern). rgb8 is w*h*3 bytes, rows top to
 * bottom, borrowed for the call only. flags: VTL_FRAME_TEST_PATTERN marks a
 * generated pattern; VTL_FRAME_EPOCH makes the frame an epoch on every
 * stream (it reaches sessions waiting for one, and survives a drop).
 *
 * Returns 0, VTL_EINVAL (bad size), VTL_ENOMEM or VTL_EIO (an encoder
 * failed: that stream restarts at an epoch). Special cases:
 *   1. no subscribed session: nothing is encoded (0);
 *   2. a stream whose fps cap is not yet due skips this frame;
 *   3. every stream is encoded once whatever its number of sessions. */
int vtl_room_publish_frame(vtl_room *r, int64_t frame_no, uint64_t doc_seq,
                           uint64_t dep_hash, uint32_t w, uint32_t h,
                           const uint8_t *rgb8, double render_ms,
                           unsigned flags) {
  if (!w || !h || w > 16384 || h > 16384 || !rgb8) return VTL_EINVAL;
  /* 1. assign every subscriber to its stream (they may have changed) */
  bool any = false;
  for (vtl_session *s = r->sessions; s; s = s->room_next) {
    if (!s->sub_on || s->state != VTL_SESSION_LIVE) continue;
    uint32_t tw, th;
    target_size(s, w, h, &tw, &th);
    vtl_stream *st = stream_for(r, tw, th, s->sub_fps, s->codec);
    if (!st) return VTL_ENOMEM;
    set_stream(s, st);
    any = true;
  }
  if (!any) return 0;
  vtl_metrics_add(VTL_M_FRAMES_PUBLISHED, 1);
  Vtl__V1__Frame tmpl = VTL__V1__FRAME__INIT;
  tmpl.frame = frame_no;
  tmpl.doc_seq = doc_seq;
  tmpl.dep_hash = dep_hash;
  tmpl.pixel_format = VTL__V1__PIXEL_FORMAT__PIXEL_FORMAT_RGB8;
  tmpl.render_ms = render_ms;
  tmpl.test_pattern = (flags & VTL_FRAME_TEST_PATTERN) != 0;
  uint64_t now = uv_now(r->server->loop);
  uint8_t *scaled = NULL;
  int rc = 0;
  for (vtl_stream *st = r->streams; st; st = st->next) {
    /* 2. the fps cap, with 2 ms of slack for timer jitter */
    if (st->fps > 0 && st->last_ms &&
        (double)(now - st->last_ms) + 2.0 < 1000.0 / st->fps)
      continue;
    const uint8_t *px = rgb8;
    if (st->w != w || st->h != h) {
      free(scaled);
      scaled = malloc((size_t)st->w * st->h * 3);
      if (!scaled) { rc = VTL_ENOMEM; continue; }
      downscale(scaled, st->w, st->h, rgb8, w, h);
      px = scaled;
    }
    if (flags & VTL_FRAME_EPOCH) st->enc.force_epoch = true;
    int e = publish_stream(r, st, &tmpl, px, now); /* the others go on */
    if (e && !rc) rc = e;
  }
  free(scaled);
  return rc;
}
