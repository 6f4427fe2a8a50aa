/* transport.c — the room's shared Transport (docs/protocol.md
 * "Transport"): server-authoritative, persisted, broadcast to the whole
 * room (the sender's copy is its answer), sent to every newcomer after its
 * catch-up.
 *
 * Persistence: the packed Transport goes to the store's worker
 * (VTL_STORE_TRANSPORT, one row per room, table `transport` in store.c).
 * It is broadcast at once, not after the commit: a transport change is not
 * an edit, and a crash loses at most the last change before it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "server.h"

#define E(x) VTL__V1__ERROR__CODE__CODE_##x

typedef struct {
  vtl_store_req req;
  uint8_t blob[];             /* the packed Transport */
} transport_req;

int vtl_transport_load(vtl_room *r) {
  r->transport = (Vtl__V1__Transport)VTL__V1__TRANSPORT__INIT;
  uint8_t *blob = NULL;
  size_t len = 0;
  int rc = vtl_store_transport_get(r->server->store, r->db_id, &blob, &len);
  if (rc == VTL_ENOENT) return 0;
  if (rc) return rc;
  Vtl__V1__Transport *t = vtl__v1__transport__unpack(NULL, len, blob);
  free(blob);
  if (!t) return VTL_EIO;
  Vtl__V1__Transport v = *t;
  v.base = r->transport.base; /* no unknown fields kept */
  r->transport = v;
  vtl__v1__transport__free_unpacked(t, NULL);
  return 0;
}

static vtl_msg *transport_msg(vtl_room *r) {
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_TRANSPORT;
  env.transport = &r->transport;
  return vtl_msg_pack(&env);
}

void vtl_transport_send(vtl_session *s) {
  vtl_msg *m = transport_msg(s->room);
  if (m) vtl_session_send(s, m);
  vtl_msg_unref(m);
}

static void on_persisted(vtl_store_req *req, int status) {
  if (status)
    vtl_log(VTL_LOG_ERROR, "transport.store", "transport seq %llu not persisted",
            (unsigned long long)req->seq);
  free(req);
}

static void persist(vtl_room *r) {
  size_t n = vtl__v1__transport__get_packed_size(&r->transport);
  transport_req *tr = calloc(1, sizeof *tr + n);
  if (!tr) return;
  vtl__v1__transport__pack(&r->transport, tr->blob);
  tr->req.type = VTL_STORE_TRANSPORT;
  tr->req.room = r->db_id;
  tr->req.seq = r->transport.seq;
  tr->req.blob = tr->blob;
  tr->req.len = n;
  if (vtl_store_submit(r->server->store, &tr->req, on_persisted) != 0)
    free(tr); /* stopping */
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* handle_transport: validate, clamp, stamp, persist, broadcast. */
void vtl_transport_handle(vtl_session *s, const Vtl__V1__Transport *t) {
  vtl_room *r = s->room;
  if (s->state != VTL_SESSION_LIVE) {
    vtl_session_offence(s, E(MALFORMED), "Transport before Welcome");
    return;
  }
  if (s->role != VTL__V1__ROLE__ROLE_DIRECTOR) {
    vtl_session_error(s, E(PERM), 0, false,
                      "only directors may change the transport");
    return;
  }
  if (!isfinite(t->fps) || t->fps < 0 || t->fps > 240) {
    vtl_session_error(s, E(RANGE), 0, false,
                      "Transport.fps: 0 (the timeline's) or up to 240");
    return;
  }
  int64_t len = vtl_doc_timeline(r->doc)->length;
  Vtl__V1__Transport v = r->transport;
  v.playing = t->playing;
  v.frame = clamp(t->frame, 0, len - 1);
  v.loop_start = clamp(t->loop_start, 0, len);
  v.loop_end = clamp(t->loop_end, 0, len);
  if (v.loop_end <= v.loop_start) v.loop_start = v.loop_end = 0; /* no loop */
  v.fps = t->fps;
  v.seq = r->transport.seq + 1;
  v.updated_by = s->id;
  v.server_time_ms = (int64_t)vtl_now_ms();
  r->transport = v;
  vtl_metrics_add(VTL_M_TRANSPORT_CHANGES, 1);
  persist(r);
  vtl_msg *m = transport_msg(r);
  if (m) vtl_room_broadcast(r, m, NULL);
  vtl_msg_unref(m);
  vtl_render_touch(r, false);
}
