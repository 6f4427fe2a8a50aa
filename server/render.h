/* render.h — the render service's parts (docs/render-service.md), shared
 * by its files and by nothing else:
 *
 *   render.c         loop thread: vtl_render_start/_stop/_touch, room
 *                    snapshots handed over, results published
 *   render_thread.c  the render thread: which room, which frame, cancel
 *   render_cache.c   a room's frame cache (render thread only)
 *   render_model.c   model paths and the one loaded model (render thread)
 *
 *   loop thread                              render thread
 *   vtl_render_touch ─▶ sync timer:          take(): in_* ─▶ its own copies
 *     clone the doc, copy the transport,     (doc, transport, watched)
 *     in_* = them, version++, signal   ───▶  render frames from its copy
 *   on_async: publish frames, send     ◀───  results (frames, failures),
 *     errors, add the metrics                uv_async_send
 *
 * Ownership: a render_room lives from the first touch of its room until
 * vtl_render_stop; the loop thread never frees a room's render state while
 * the thread runs. Fields are marked by who may touch them: "loop" (loop
 * thread only), "mu" (either thread, holding rs->mu), "thread" (render
 * thread only; the loop again after the join).
 */
#ifndef VTL_SERVER_RENDER_H
#define VTL_SERVER_RENDER_H

#include <pthread.h>

#include "film.h"
#include "server.h"

/* ---- the frame cache (render_cache.c) -------------------------------------
 * Frames by index, each with the dep_hash it was rendered for: valid while
 * vtl_params_at(doc, frame).dep_hash is still that hash. At most one entry
 * per frame index; least recently used entries go first once the room's
 * entries would pass RENDER_CACHE_BYTES (at least 2 are always kept: a
 * frame and the one it continues from). */
#define RENDER_CACHE_BYTES (64u << 20) /* per room: 1365 frames at 64x64,
                                          21 at 512x512 */

typedef struct {
  int64_t frame;
  uint64_t dep_hash;
  uint64_t used;       /* cache tick of the last get or put */
  uint32_t w, h;
  double render_ms;    /* what rendering it took */
  float *img;          /* [3, h, w] in [-1, 1], owned */
} render_slot;

typedef struct {
  render_slot *slots;  /* n entries, cap allocated */
  size_t n, cap;
  uint64_t tick;
} render_cache;

/* The entry of frame with that hash, or NULL (borrowed until the next put
 * or clear). Counts as a use. */
const render_slot *render_cache_get(render_cache *c, int64_t frame,
                                    uint64_t dep_hash);
/* Stores img (taken over: freed on failure too). Returns 0 or VTL_ENOMEM. */
int render_cache_put(render_cache *c, int64_t frame, uint64_t dep_hash,
                     uint32_t w, uint32_t h, float *img, double render_ms);
void render_cache_clear(render_cache *c); /* frees every entry */

/* ---- the model (render_model.c) ---------------------------------------------
 * One model is loaded at a time, for whichever room needs one; another
 * path replaces it. The OpenCL device is the default one (runtime.h),
 * opened at the first use. */
typedef struct {
  const char *root;      /* --model-root */
  vtl_film_opts opts;    /* the films' options (progress callback) */
  vtl_cl *cl;            /* NULL until the first model */
  char *path;            /* the timeline's name of the loaded model */
  vtl_pipeline *pipe;
  vtl_film *film;
} render_model;

/* 0 when a timeline's model name may be opened: a relative path without
 * any ".." component; else VTL_EPERM with the reason in msg. */
int render_model_check(const char *model, char *msg, size_t msglen);
/* The film renderer of `model` (checked, loaded, or the one loaded).
 * Returns 0, or a VTL_E* with msg naming the model and the reason. */
int render_model_use(render_model *m, const char *model, vtl_film **film,
                     char *msg, size_t msglen);
void render_model_free(render_model *m);

/* ---- rooms and the service ---------------------------------------------------- */

typedef struct render_room {
  struct render_room *next;     /* mu: rs->rooms, in order of first touch */
  char *name;                   /* the room's name (a copy, for logs) */
  vtl_room *room;               /* loop */
  bool dirty, doc_dirty;        /* loop: a change not handed over yet */
  /* mu: the loop's newest hand-over */
  vtl_doc *in_doc;              /* a snapshot not taken yet, owned; or NULL */
  uint64_t in_seq;              /* the room seq it is a copy of */
  Vtl__V1__Transport in_transport;
  bool in_watched;              /* at least one subscribed session */
  uint64_t version;             /* +1 at every hand-over */
  /* thread */
  vtl_doc *doc;                 /* the snapshot frames are rendered from */
  uint64_t doc_seq;
  vtl_doc *fresh;               /* taken while rendering from doc: it
                                   replaces doc before the next frame */
  uint64_t fresh_seq;
  Vtl__V1__Transport transport;
  bool watched;
  uint64_t seen;                /* the version the copies above are at */
  bool idle;                    /* nothing to do at `seen` ... */
  uint64_t wake_ms;             /* ... until this wall time (playing); 0 */
  int64_t pub_frame;            /* the last frame published: index, */
  uint64_t pub_hash, pub_version; /* dep_hash and version; -1: none */
  render_cache cache;
  char last_error[256];         /* the last failure logged for the room */
} render_room;

/* One result for the loop: a frame to publish, or a failure to tell the
 * room's subscribers (error != 0). */
typedef struct render_result {
  struct render_result *next;
  render_room *rr;
  int error;                    /* 0: a frame; else the VTL_E* code */
  char msg[240];                /* the failure (fits Error.message's 256
                                   bytes after "render: ") */
  int64_t frame;
  uint64_t doc_seq, dep_hash;
  uint32_t w, h;
  double render_ms;
  unsigned flags;               /* vtl_room_publish_frame's */
  uint8_t rgb[];                /* w * h * 3 */
} render_result;

typedef struct vtl_render {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;            /* signalled at every hand-over and stop */
  uv_async_t async;             /* results waiting (loop) */
  uv_timer_t sync;              /* loop: hands touched rooms over */
  int handles;                  /* loop: handles not closed yet */
  /* mu */
  bool stop;
  render_room *rooms;           /* appended by the loop (which, the only
                                   writer, also reads it without mu) */
  render_result *res_head, *res_tail;
  uint64_t n_rendered, n_ms, n_cancelled, n_failed; /* metrics not yet added */
  /* thread */
  render_room *cursor;          /* the room served last (round robin) */
  render_model model;
  struct {                      /* the frame being rendered (progress) */
    render_room *rr;
    int64_t frame;
    uint64_t dep_hash;
  } job;
} vtl_render;

/* render_thread.c: the thread's body (arg: the vtl_render). */
void *render_thread_main(void *arg);
/* render.c: queues a result for the loop (taken over) and wakes it. */
void render_post(vtl_render *rs, render_result *res);

#endif /* VTL_SERVER_RENDER_H */
