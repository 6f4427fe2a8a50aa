/* render.c — the render service, loop side (--render; render.h has the
 * picture, docs/render-service.md the behaviour).
 *
 * Hand-over: vtl_render_touch marks a room and starts a 0 ms timer, so
 * that every change of one loop iteration (a burst of batches, a
 * transport change, subscribers coming and going) costs one hand-over:
 * the room's document is cloned when it changed and somebody watches
 * (an unwatched room's edits are not copied), the transport and the
 * "watched" flag are copied, the room's version goes up and the render
 * thread is signalled. The thread never reads a vtl_room.
 *
 * Results come back through a uv_async_t: frames are published with
 * vtl_room_publish_frame, failures go to the room's subscribed sessions as
 * a non-fatal Error (batch_id 0, the failure's code, "render: ..."), and
 * the thread's counts are added to the metrics (loop thread only).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "render.h"
#include "wire.h"

void render_post(vtl_render *rs, render_result *res) {
  pthread_mutex_lock(&rs->mu);
  if (rs->res_tail) rs->res_tail->next = res; else rs->res_head = res;
  rs->res_tail = res;
  pthread_mutex_unlock(&rs->mu);
  uv_async_send(&rs->async);
}

static bool watched(const vtl_room *r) {
  for (const vtl_session *s = r->sessions; s; s = s->room_next)
    if (s->sub_on && s->state == VTL_SESSION_LIVE) return true;
  return false;
}

static void tell_subscribers(vtl_room *r, const render_result *res) {
  for (vtl_session *s = r->sessions; s; s = s->room_next)
    if (s->sub_on && s->state == VTL_SESSION_LIVE)
      vtl_session_error(s, vtl_wire_code(res->error), 0, false, "render: %s",
                        res->msg);
}

static void on_results(uv_async_t *a) {
  vtl_render *rs = a->data;
  pthread_mutex_lock(&rs->mu);
  render_result *list = rs->res_head;
  rs->res_head = rs->res_tail = NULL;
  vtl_metrics_add(VTL_M_RENDER_FRAMES, rs->n_rendered);
  vtl_metrics_add(VTL_M_RENDER_MS, rs->n_ms);
  vtl_metrics_add(VTL_M_RENDER_CANCELLED, rs->n_cancelled);
  vtl_metrics_add(VTL_M_RENDER_FAILED, rs->n_failed);
  rs->n_rendered = rs->n_ms = rs->n_cancelled = rs->n_failed = 0;
  pthread_mutex_unlock(&rs->mu);
  while (list) {
    render_result *res = list;
    list = res->next;
    vtl_room *r = res->rr->room;
    if (res->error) {
      tell_subscribers(r, res);
    } else {
      int rc = vtl_room_publish_frame(r, res->frame, res->doc_seq, res->dep_hash,
                                      res->w, res->h, res->rgb, res->render_ms,
                                      res->flags);
      if (rc)
        vtl_log(VTL_LOG_WARN, "render.publish", "room \"%s\": frame %lld: %s",
                r->name, (long long)res->frame, vtl_strerror(rc));
    }
    free(res);
  }
}

/* Hands every touched room over to the thread (see the header). */
static void on_sync(uv_timer_t *t) {
  vtl_render *rs = t->data;
  for (render_room *rr = rs->rooms; rr; rr = rr->next) {
    if (!rr->dirty) continue;
    vtl_room *r = rr->room;
    bool w = watched(r);
    vtl_doc *clone = NULL;
    if (w && rr->doc_dirty) {
      if (vtl_doc_clone(r->doc, &clone)) {
        vtl_log(VTL_LOG_ERROR, "render.snapshot", "room \"%s\": out of memory "
                "for a copy of the document", r->name);
        continue; /* stays dirty: tried again at the next touch */
      }
      rr->doc_dirty = false;
    }
    pthread_mutex_lock(&rs->mu);
    vtl_doc *old = NULL;
    if (clone) {
      old = rr->in_doc; /* never taken: superseded */
      rr->in_doc = clone;
      rr->in_seq = r->seq;
    }
    rr->in_transport = r->transport;
    rr->in_watched = w;
    rr->version++;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    vtl_doc_free(old);
    rr->dirty = false;
  }
}

void vtl_render_touch(vtl_room *r, bool doc) {
  vtl_render *rs = r->server->render;
  if (!rs) return;
  render_room *rr = r->render;
  if (!rr) {
    if (!(rr = calloc(1, sizeof *rr)) || !(rr->name = strdup(r->name))) {
      free(rr);
      return; /* out of memory: the room is not rendered */
    }
    rr->room = r;
    rr->doc_dirty = true;
    rr->pub_frame = -1;
    pthread_mutex_lock(&rs->mu);
    render_room **p = &rs->rooms;
    while (*p) p = &(*p)->next;
    *p = rr;
    pthread_mutex_unlock(&rs->mu);
    r->render = rr;
  }
  rr->dirty = true;
  rr->doc_dirty |= doc;
  if (!uv_is_active((uv_handle_t *)&rs->sync))
    uv_timer_start(&rs->sync, on_sync, 0, 0);
}

int vtl_render_start(vtl_server *sv) {
  vtl_render *rs = calloc(1, sizeof *rs);
  if (!rs) return VTL_ENOMEM;
  rs->model.root = sv->cfg.model_root;
  pthread_mutex_init(&rs->mu, NULL);
  pthread_cond_init(&rs->cv, NULL);
  uv_async_init(sv->loop, &rs->async, on_results);
  uv_timer_init(sv->loop, &rs->sync);
  rs->async.data = rs->sync.data = rs;
  rs->handles = 2;
  if (pthread_create(&rs->thread, NULL, render_thread_main, rs)) {
    vtl_log(VTL_LOG_ERROR, "render.start", "cannot start the render thread");
    rs->stop = true; /* no thread to join */
    sv->render = rs;
    vtl_render_stop(sv);
    return VTL_ENOMEM;
  }
  sv->render = rs;
  vtl_log(VTL_LOG_INFO, "render.started", "render service on (model root %s)",
          rs->model.root);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  vtl_render *rs = h->data;
  if (--rs->handles == 0) free(rs);
}

void vtl_render_stop(vtl_server *sv) {
  vtl_render *rs = sv->render;
  if (!rs) return;
  sv->render = NULL;
  pthread_mutex_lock(&rs->mu);
  bool running = !rs->stop;
  rs->stop = true; /* also cancels the frame being rendered */
  pthread_cond_signal(&rs->cv);
  pthread_mutex_unlock(&rs->mu);
  if (running) pthread_join(rs->thread, NULL);
  while (rs->res_head) { /* nobody to publish them to any more */
    render_result *res = rs->res_head;
    rs->res_head = res->next;
    free(res);
  }
  while (rs->rooms) {
    render_room *rr = rs->rooms;
    rs->rooms = rr->next;
    vtl_doc_free(rr->in_doc);
    vtl_doc_free(rr->doc);
    vtl_doc_free(rr->fresh);
    render_cache_clear(&rr->cache);
    free(rr->name);
    free(rr);
  }
  pthread_mutex_destroy(&rs->mu);
  pthread_cond_destroy(&rs->cv);
  uv_close((uv_handle_t *)&rs->async, on_closed);
  uv_close((uv_handle_t *)&rs->sync, on_closed);
}
