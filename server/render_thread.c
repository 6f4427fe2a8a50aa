/* render_thread.c — the render thread (docs/render-service.md): one for
 * the whole server, since the engine is used from one thread.
 *
 * It serves the rooms with a subscriber in turn, one unit of work each
 * (round robin): a unit renders at most one frame. For a room it follows
 * the transport (docs/protocol.md "Transport"), with t its playhead now:
 *
 *   t cached and valid:  publish it unless it is the last one published;
 *                        paused: done until something changes;
 *                        playing: render the first frame of t+1 ..
 *                        t+RENDER_AHEAD not cached (published when the
 *                        playhead gets there), else sleep until t moves
 *   else:                render the next frame of t's chain: the frame
 *                        after the latest valid one in [shot start, t)
 *                        (the shot's start when none is), then publish
 *                        it if it is due: t when paused; playing, any
 *                        frame <= t of the played range (each frame as
 *                        it completes: the render may lag the playhead)
 *
 * A frame is valid while its cached dep_hash equals vtl_params_at's: the
 * hash covers everything that influences frames <= f, so an edit makes
 * exactly the frames from the earliest one it changes stale, whatever is
 * cached before them.
 *
 * Cancelling: after each denoising step the progress callback looks at the
 * room's version; when it moved, it takes the new copies and cancels the
 * frame if it is stale (another dep_hash) or no longer wanted (before the
 * playhead's shot or after the playhead, plus RENDER_AHEAD when playing).
 *
 * Failures (no model, a refused or broken model, a render error) are
 * logged once per distinct message per room and told to the room's
 * subscribers; the room then waits for a change.
 */
#define _DEFAULT_SOURCE /* sigaltstack */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "render.h"

#define RENDER_CANCELLED 1      /* progress return: stale or not wanted */
#define RENDER_AHEAD 24         /* playing: frames rendered ahead (2 s at
                                   12 fps) */
#define RENDER_MAX_PIXELS (2048 * 2048) /* larger films are refused: one
                                           frame would take 48 MiB+ */

/* ---- the room's copies ----------------------------------------------------- */

/* Takes the loop's newest hand-over into the thread's copies. The document
 * goes to rr->fresh: rr->doc may be in use by the frame being rendered. */
static void take(vtl_render *rs, render_room *rr) {
  pthread_mutex_lock(&rs->mu);
  vtl_doc *d = rr->in_doc;
  uint64_t seq = rr->in_seq;
  rr->in_doc = NULL;
  rr->transport = rr->in_transport;
  rr->watched = rr->in_watched;
  rr->seen = rr->version;
  pthread_mutex_unlock(&rs->mu);
  if (d) {
    vtl_doc_free(rr->fresh);
    rr->fresh = d;
    rr->fresh_seq = seq;
  }
}

/* The newest document the thread has (for decisions, not for rendering). */
static vtl_doc *newest(render_room *rr) {
  return rr->fresh ? rr->fresh : rr->doc;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* The frames played: the loop range, or the whole film. */
static void play_range(const Vtl__V1__Transport *t, const vtl_timeline *tl,
                       int64_t *a, int64_t *b) {
  *a = 0;
  *b = tl->length;
  int64_t s = clamp(t->loop_start, 0, tl->length);
  int64_t e = clamp(t->loop_end, 0, tl->length);
  if (e > s) { *a = s; *b = e; }
}

/* The playhead at wall time now; playing, *next_ms is when it moves on. */
static int64_t playhead(const Vtl__V1__Transport *t, const vtl_timeline *tl,
                        uint64_t now, uint64_t *next_ms) {
  int64_t f = clamp(t->frame, 0, tl->length - 1);
  *next_ms = 0;
  if (!t->playing) return f;
  double fps = t->fps > 0 ? t->fps : tl->fps;
  uint64_t t0 = t->server_time_ms > 0 ? (uint64_t)t->server_time_ms : now;
  double ms = now > t0 ? (double)(now - t0) : 0;
  int64_t k = (int64_t)floor(ms * fps / 1000);
  *next_ms = t0 + (uint64_t)ceil((double)(k + 1) * 1000 / fps);
  if (*next_ms <= now) *next_ms = now + 1;
  int64_t a, b;
  play_range(t, tl, &a, &b);
  int64_t x = f + k;
  return x < b ? x : a + (x - a) % (b - a);
}

static uint64_t hash_at(vtl_doc *doc, int64_t f) {
  vtl_params P = {0}; /* hash 0 if it fails (out of memory): matches none */
  vtl_params_at(doc, f, &P);
  return P.dep_hash;
}

/* Whether frame f rendered for hash is still worth finishing: valid in the
 * newest document and wanted by the newest transport. */
static bool still_wanted(render_room *rr, int64_t f, uint64_t hash) {
  vtl_doc *d = newest(rr);
  vtl_params P;
  if (!rr->watched || vtl_params_at(d, f, &P) || P.frame != f ||
      P.dep_hash != hash)
    return false;
  uint64_t next;
  int64_t t = playhead(&rr->transport, vtl_doc_timeline(d), vtl_now_ms(), &next);
  vtl_params T = {0};
  vtl_params_at(d, t, &T);
  return f >= T.shot_start && f <= t + (rr->transport.playing ? RENDER_AHEAD : 0);
}

static int on_progress(void *user, int done, int total, float timestep) {
  vtl_render *rs = user;
  render_room *rr = rs->job.rr;
  pthread_mutex_lock(&rs->mu);
  bool stop = rs->stop, changed = rr->version != rr->seen;
  pthread_mutex_unlock(&rs->mu);
  if (stop) return RENDER_CANCELLED;
  if (!changed) return 0;
  take(rs, rr);
  return still_wanted(rr, rs->job.frame, rs->job.dep_hash) ? 0 : RENDER_CANCELLED;
}

/* ---- results ----------------------------------------------------------------- */

static void count(vtl_render *rs, uint64_t rendered, double ms,
                  uint64_t cancelled, uint64_t failed) {
  pthread_mutex_lock(&rs->mu);
  rs->n_rendered += rendered;
  rs->n_ms += (uint64_t)llround(ms);
  rs->n_cancelled += cancelled;
  rs->n_failed += failed;
  pthread_mutex_unlock(&rs->mu);
  uv_async_send(&rs->async); /* metrics are the loop's */
}

/* Cuts s back to whole UTF-8 characters: a snprintf may have cut one, and
 * Error.message is a protobuf string. */
static void utf8_whole(char *s) {
  size_t n = strlen(s), i = n;
  while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) i--;
  if (i == 0 || !((unsigned char)s[i - 1] & 0x80)) return;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  if (n - (i - 1) < len) s[i - 1] = '\0';
}

/* Logs a failure of the room once per distinct message and, for an error
 * (rc != 0), tells the room's subscribers. */
static void fail(vtl_render *rs, render_room *rr, int rc, const char *msg) {
  if (rc) count(rs, 0, 0, 0, 1);
  if (!strcmp(rr->last_error, msg)) return;
  snprintf(rr->last_error, sizeof rr->last_error, "%s", msg);
  vtl_log(rc ? VTL_LOG_ERROR : VTL_LOG_INFO, rc ? "render.failed" : "render.idle",
          "room \"%s\": %s", rr->name, msg);
  if (!rc) return;
  render_result *res = calloc(1, sizeof *res);
  if (!res) return;
  res->rr = rr;
  res->error = rc;
  snprintf(res->msg, sizeof res->msg, "%s", msg);
  utf8_whole(res->msg);
  render_post(rs, res);
}

/* x in [-1, 1] -> round((x + 1) * 127.5), clamped; planar to RGB8. */
static void to_rgb8(uint8_t *out, const float *img, uint32_t w, uint32_t h) {
  size_t n = (size_t)w * h;
  for (size_t c = 0; c < 3; c++)
    for (size_t i = 0; i < n; i++) {
      float v = roundf((img[c * n + i] + 1.0f) * 127.5f);
      out[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static void publish(vtl_render *rs, render_room *rr, const render_slot *s) {
  render_result *res = malloc(sizeof *res + (size_t)s->w * s->h * 3);
  if (!res) return;
  *res = (render_result){.rr = rr, .frame = s->frame, .doc_seq = rr->doc_seq,
                         .dep_hash = s->dep_hash, .w = s->w, .h = s->h,
                         .render_ms = s->render_ms,
                         /* paused, it may be the last frame for long */
                         .flags = rr->transport.playing ? 0 : VTL_FRAME_EPOCH};
  if (rr->fresh) res->doc_seq = rr->fresh_seq; /* checked against it */
  to_rgb8(res->rgb, s->img, s->w, s->h);
  rr->pub_frame = s->frame;
  rr->pub_hash = s->dep_hash;
  rr->pub_version = rr->seen;
  render_post(rs, res);
}

static bool published(const render_room *rr, const render_slot *s) {
  return rr->pub_frame == s->frame && rr->pub_hash == s->dep_hash &&
         rr->pub_version == rr->seen;
}

/* ---- one unit of work ------------------------------------------------------- */

/* Renders the next frame of target's chain (see the header); t is the
 * playhead, for the publish rule. */
static void render_toward(vtl_render *rs, render_room *rr, vtl_film *film,
                          int64_t target, int64_t t) {
  vtl_doc *doc = rr->doc;
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  vtl_params P = {0};
  vtl_params_at(doc, target, &P);
  int64_t f = P.shot_start;
  const render_slot *prev = NULL;
  for (int64_t q = target - 1; q >= P.shot_start && !prev; q--)
    if ((prev = render_cache_get(&rr->cache, q, hash_at(doc, q)))) f = q + 1;
  uint32_t w = (uint32_t)tl->width, h = (uint32_t)tl->height;
  float *out = malloc((size_t)3 * w * h * sizeof *out);
  if (!out) {
    fail(rs, rr, VTL_ENOMEM, "out of memory for a frame");
    rr->idle = true;
    return;
  }
  uint64_t hash = hash_at(doc, f);
  rs->job.rr = rr;
  rs->job.frame = f;
  rs->job.dep_hash = hash;
  char msg[256];
  json_t *record = NULL;
  int rc = vtl_film_frame(film, doc, f, prev ? prev->img : NULL, out, &record,
                          msg, sizeof msg);
  rs->job.rr = NULL;
  if (rc) {
    free(out);
    if (rc == RENDER_CANCELLED) {
      count(rs, 0, 0, 1, 0);
      return;
    }
    char what[256];
    snprintf(what, sizeof what, "frame %lld: %.200s", (long long)f, msg);
    fail(rs, rr, rc, what);
    rr->idle = true;
    return;
  }
  double ms = json_real_value(json_object_get(record, "render_ms"));
  json_decref(record);
  count(rs, 1, ms, 0, 0);
  rr->last_error[0] = '\0';
  if (render_cache_put(&rr->cache, f, hash, w, h, out, ms)) {
    fail(rs, rr, VTL_ENOMEM, "out of memory for the frame cache");
    rr->idle = true;
    return;
  }
  int64_t a, b;
  play_range(&rr->transport, tl, &a, &b);
  bool due = rr->transport.playing ? f <= t && f >= a : f == t;
  take(rs, rr); /* a change during the last step: checked below */
  if (due && still_wanted(rr, f, hash))
    publish(rs, rr, render_cache_get(&rr->cache, f, hash));
}

/* The first frame after t, up to RENDER_AHEAD of them inside the played
 * range, that is not cached and valid; -1 when there is none. */
static int64_t ahead(render_room *rr, int64_t t) {
  int64_t a, b;
  play_range(&rr->transport, vtl_doc_timeline(rr->doc), &a, &b);
  for (int64_t g = t + 1; g <= t + RENDER_AHEAD && g < b; g++)
    if (!render_cache_get(&rr->cache, g, hash_at(rr->doc, g))) return g;
  return -1;
}

static void work(vtl_render *rs, render_room *rr) {
  take(rs, rr);
  if (rr->fresh) {
    vtl_doc_free(rr->doc);
    rr->doc = rr->fresh;
    rr->doc_seq = rr->fresh_seq;
    rr->fresh = NULL;
  }
  rr->idle = true; /* unless a frame is rendered below */
  rr->wake_ms = 0;
  if (!rr->watched || !rr->doc) {
    render_cache_clear(&rr->cache); /* nobody watches: free the memory */
    rr->pub_frame = -1;
    return;
  }
  const vtl_timeline *tl = vtl_doc_timeline(rr->doc);
  if (!tl->model[0]) {
    fail(rs, rr, 0, "the timeline names no model: nothing to render");
    return;
  }
  if (tl->width * tl->height > RENDER_MAX_PIXELS) {
    char msg[256];
    snprintf(msg, sizeof msg, "%lldx%lld frames are larger than the render "
             "service takes (%d pixels)", (long long)tl->width,
             (long long)tl->height, RENDER_MAX_PIXELS);
    fail(rs, rr, VTL_ELIMIT, msg);
    return;
  }
  vtl_film *film;
  char msg[256];
  int rc = render_model_use(&rs->model, tl->model, &film, msg, sizeof msg);
  if (rc) {
    fail(rs, rr, rc, msg);
    return;
  }
  uint64_t next;
  int64_t t = playhead(&rr->transport, tl, vtl_now_ms(), &next);
  int64_t target = t;
  const render_slot *s = render_cache_get(&rr->cache, t, hash_at(rr->doc, t));
  if (s) {
    if (!published(rr, s)) publish(rs, rr, s);
    if (!rr->transport.playing || (target = ahead(rr, t)) < 0) {
      rr->wake_ms = next;
      return;
    }
  }
  rr->idle = false;
  render_toward(rs, rr, film, target, t);
}

/* ---- the thread -------------------------------------------------------------- */

/* Under rs->mu: the next room with work after the cursor, or NULL and
 * *wake the earliest time a sleeping room wakes (0: none). */
static render_room *pick(vtl_render *rs, uint64_t now, uint64_t *wake) {
  *wake = 0;
  render_room *start = rs->cursor && rs->cursor->next ? rs->cursor->next : rs->rooms;
  render_room *rr = start;
  do {
    if (!rr) break;
    bool busy = rr->version != rr->seen || !rr->idle;
    bool woken = rr->wake_ms && rr->wake_ms <= now;
    if ((rr->in_watched && (busy || woken)) || (!rr->in_watched && rr->cache.n)) {
      rs->cursor = rr;
      return rr;
    }
    if (rr->in_watched && rr->wake_ms && (!*wake || rr->wake_ms < *wake))
      *wake = rr->wake_ms;
    rr = rr->next ? rr->next : rs->rooms;
  } while (rr != start);
  return NULL;
}

void *render_thread_main(void *arg) {
  vtl_render *rs = arg;
  /* PoCL builds kernels with LLVM on this thread, and LLVM installs its own
   * alternate signal stack (heap memory) here; AddressSanitizer unmaps a
   * thread's alternate stack when it exits, taking it for its own. Put the
   * thread's first one back before returning. */
  stack_t altstack;
  bool restore = sigaltstack(NULL, &altstack) == 0;
  rs->model.opts.progress = on_progress;
  rs->model.opts.progress_user = rs;
  pthread_mutex_lock(&rs->mu);
  while (!rs->stop) {
    uint64_t wake;
    render_room *rr = pick(rs, vtl_now_ms(), &wake);
    if (!rr && wake) {
      struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000};
      pthread_cond_timedwait(&rs->cv, &rs->mu, &ts); /* CLOCK_REALTIME */
    } else if (!rr) {
      pthread_cond_wait(&rs->cv, &rs->mu);
    } else {
      pthread_mutex_unlock(&rs->mu);
      work(rs, rr);
      pthread_mutex_lock(&rs->mu);
    }
  }
  pthread_mutex_unlock(&rs->mu);
  render_model_free(&rs->model);
  if (restore) sigaltstack(&altstack, NULL);
  return NULL;
}
