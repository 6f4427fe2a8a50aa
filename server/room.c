/* room.c — rooms: the head document, the total order, the commit pipeline.
 *
 * One writer per room. A batch moves through three places:
 *
 *   OpBatch ──validate+apply──▶ inflight (head doc, seq assigned, in the
 *                                store queue)  ──commit cb──▶ log ring +
 *                                broadcast to every live session
 *
 *   r->seq        head: the last seq applied to r->doc
 *   r->committed  the last seq durable in SQLite; committed <= seq
 *   inflight      batches committed+1 .. seq, oldest first, with inverses
 *
 * Nothing is broadcast before its commit, and commits complete in seq order
 * (the store runs requests in submission order, and refuses a gap), so
 * every session sees seqs 1, 2, 3 ... A failed commit rolls back every
 * inflight batch (inverses, newest first), answers each sender with
 * Error{IO} and sets seq = committed: the room is again exactly what is on
 * disk.
 *
 * A session catching up after Welcome{seq = r->seq} gets either the ops
 * (last_seq, committed] from the log ring, the rest arriving as broadcasts,
 * or a Snapshot of the head at r->seq, held back until r->seq is committed
 * (s->after_seq = the seq its catch-up covers; broadcasts of seqs <= it are
 * not sent to it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "server.h"
#include "wire.h"

struct vtl_batch {
  vtl_store_req req;          /* req.data = this batch */
  vtl_room *room;             /* borrowed; rooms outlive the store */
  uint64_t seq, session, batch_id;
  vtl_msg *msg;               /* the Ops envelope (a reference) */
  vtl_op *inverse;            /* malloc'd, ninverse ops */
  size_t ninverse;
  bool dead;                  /* rolled back: its callback only frees it */
  size_t nops;                /* ops in the batch (metrics) */
  uint64_t submit_ns;         /* uv_hrtime at submission (commit latency) */
  vtl_batch *next;            /* room inflight list */
};

typedef struct {
  vtl_store_req req;
  vtl_msg *msg;               /* packed Document (no Envelope) */
} snapshot_req;

typedef struct {
  vtl_store_req req;
  vtl_room *room;
} idbase_req;

/* ---- u64 map (open addressing, linear probing, backward-shift delete) ---- */

static size_t slot_of(uint64_t k, size_t cap) {
  k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

int vtl_u64map_put(vtl_u64map *m, uint64_t k, uint64_t v) {
  if (VTL_NEVER(k == 0)) return VTL_EINVAL;
  if ((m->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *keys = calloc(cap, sizeof *keys), *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) { free(keys); free(vals); return VTL_ENOMEM; }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = slot_of(m->keys[i], cap);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    free(m->keys); free(m->vals);
    m->keys = keys; m->vals = vals; m->cap = cap;
  }
  size_t j = slot_of(k, m->cap);
  while (m->keys[j] && m->keys[j] != k) j = (j + 1) & (m->cap - 1);
  if (!m->keys[j]) m->n++;
  m->keys[j] = k;
  m->vals[j] = v;
  return 0;
}

bool vtl_u64map_get(const vtl_u64map *m, uint64_t k, uint64_t *v) {
  if (!m->cap || !k) return false;
  for (size_t j = slot_of(k, m->cap); m->keys[j]; j = (j + 1) & (m->cap - 1))
    if (m->keys[j] == k) { if (v) *v = m->vals[j]; return true; }
  return false;
}

void vtl_u64map_del(vtl_u64map *m, uint64_t k) {
  if (!m->cap || !k) return;
  size_t mask = m->cap - 1, j = slot_of(k, m->cap);
  while (m->keys[j] && m->keys[j] != k) j = (j + 1) & mask;
  if (!m->keys[j]) return;
  m->keys[j] = 0;
  m->n--;
  for (size_t i = (j + 1) & mask; m->keys[i]; i = (i + 1) & mask) {
    size_t home = slot_of(m->keys[i], m->cap);
    /* move i back to j when j lies cyclically in [home, i) */
    if (((i - home) & mask) >= ((i - j) & mask)) {
      m->keys[j] = m->keys[i]; m->vals[j] = m->vals[i];
      m->keys[i] = 0;
      j = i;
    }
  }
}

void vtl_u64map_free(vtl_u64map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---- the log ring --------------------------------------------------------- */

static void log_put(vtl_room *r, uint64_t seq, vtl_msg *m) {
  vtl_msg **slot = &r->log[seq % VTL_LOG_RING];
  if (*slot) vtl_msg_unref(*slot);
  vtl_msg_ref(m);
  *slot = m;
  if (r->log_first == 0) r->log_first = seq;
  if (seq >= VTL_LOG_RING && r->log_first < seq - VTL_LOG_RING + 1)
    r->log_first = seq - VTL_LOG_RING + 1;
}

/* ---- loading ------------------------------------------------------------------ */

typedef struct {
  vtl_room *r;
  uint64_t snap_seq, prev, ring_from;
  char *msg;
  size_t msglen;
} load_ctx;

static int load_dedup(void *arg, uint64_t seq, uint64_t session,
                      uint64_t batch_id, const void *blob, size_t len) {
  load_ctx *c = arg;
  return batch_id ? vtl_u64map_put(&c->r->dedup, batch_id, seq) : 0;
}

static int load_replay(void *arg, uint64_t seq, uint64_t session,
                       uint64_t batch_id, const void *blob, size_t len) {
  load_ctx *c = arg;
  vtl_room *r = c->r;
  if (c->prev && seq != c->prev + 1) {
    snprintf(c->msg, c->msglen, "room \"%s\": op log has a gap after seq %llu",
             r->name, (unsigned long long)c->prev);
    return VTL_EIO;
  }
  c->prev = seq;
  if (seq > c->snap_seq) {
    Vtl__V1__Envelope *env = vtl__v1__envelope__unpack(NULL, len, blob);
    vtl_op *ops = NULL;
    size_t n = 0;
    vtl_error err = {0};
    int rc = VTL_EIO;
    if (env && env->msg_case == VTL__V1__ENVELOPE__MSG_OPS) {
      rc = vtl_wire_ops_from_pb(env->ops->ops, env->ops->n_ops, &ops, &n, &err);
      if (!rc) rc = vtl_doc_apply(r->doc, ops, n, NULL, NULL, &err);
    } else {
      snprintf(err.message, sizeof err.message, "not an Ops envelope");
    }
    vtl_ops_free(ops, n);
    if (env) vtl__v1__envelope__free_unpacked(env, NULL);
    if (rc) {
      snprintf(c->msg, c->msglen,
               "room \"%s\": op seq %llu does not replay (%s): the database "
               "is damaged", r->name, (unsigned long long)seq, err.message);
      return VTL_EIO;
    }
  }
  if (seq > c->ring_from) {
    vtl_msg *m = vtl_msg_from_bytes(blob, len);
    if (!m) return VTL_ENOMEM;
    log_put(r, seq, m);
    vtl_msg_unref(m);
  }
  return 0;
}

static int room_load(vtl_server *sv, const char *name, vtl_room **out,
                     char *msg, size_t msglen) {
  vtl_store_room_info info;
  int rc = vtl_store_room_find(sv->store, name, &info);
  if (rc == VTL_ENOENT) {
    snprintf(msg, msglen, "no room named \"%s\"", name);
    return rc;
  }
  if (rc) {
    snprintf(msg, msglen, "cannot read room \"%s\"", name);
    return rc;
  }
  vtl_room *r = calloc(1, sizeof *r);
  if (!r || !(r->name = strdup(name))) {
    free(r);
    return VTL_ENOMEM;
  }
  r->server = sv;
  r->db_id = info.id;
  r->id_bases_next = r->id_bases_limit = info.id_bases ? info.id_bases : 1;

  uint64_t snap_seq = 0;
  uint8_t *blob = NULL;
  size_t len = 0;
  rc = vtl_store_snapshot_latest(sv->store, r->db_id, &snap_seq, &blob, &len);
  if (rc == 0) {
    Vtl__V1__Document *d = vtl__v1__document__unpack(NULL, len, blob);
    vtl_error err = {0};
    rc = d ? vtl_wire_doc_from_pb(d, &r->doc, &err) : VTL_EIO;
    if (d) vtl__v1__document__free_unpacked(d, NULL);
    if (rc)
      snprintf(msg, msglen,
               "room \"%s\": snapshot at seq %llu does not load (%s): the "
               "database is damaged", name, (unsigned long long)snap_seq,
               d ? err.message : "not a Document");
  } else if (rc == VTL_ENOENT) {
    rc = vtl_doc_new(&r->doc);
    snap_seq = 0;
  } else {
    snprintf(msg, msglen, "room \"%s\": cannot read its snapshot", name);
  }
  free(blob);
  load_ctx c = {r, snap_seq, 0, 0, msg, msglen};
  c.ring_from = info.seq > VTL_LOG_RING ? info.seq - VTL_LOG_RING : 0;
  if (!rc) rc = vtl_store_ops_each(sv->store, r->db_id, 0, false, load_dedup, &c);
  if (!rc) {
    uint64_t from = snap_seq < c.ring_from ? snap_seq : c.ring_from;
    c.prev = from;
    rc = vtl_store_ops_each(sv->store, r->db_id, from, true, load_replay, &c);
  }
  if (rc) {
    if (!msg[0]) snprintf(msg, msglen, "room \"%s\": cannot load", name);
    vtl_room_free(r);
    return rc;
  }
  r->seq = r->committed = info.seq > snap_seq ? info.seq : snap_seq;
  r->last_snapshot_seq = snap_seq;
  *out = r;
  return 0;
}

int vtl_room_get(vtl_server *sv, const char *name, vtl_room **out, char *msg,
                 size_t msglen) {
  msg[0] = '\0';
  for (vtl_room *r = sv->rooms; r; r = r->next)
    if (strcmp(r->name, name) == 0) { *out = r; return 0; }
  vtl_room *r;
  int rc = room_load(sv, name, &r, msg, msglen);
  if (rc) return rc;
  if (vtl_transport_load(r)) {
    snprintf(msg, msglen, "room \"%s\": cannot read its transport", name);
    vtl_room_free(r);
    return VTL_EIO;
  }
  r->next = sv->rooms;
  sv->rooms = r;
  *out = r;
  vtl_log(VTL_LOG_INFO, "room.loaded", "room \"%s\" loaded at seq %llu", name,
          (unsigned long long)r->seq);
  return 0;
}

void vtl_room_free(vtl_room *r) {
  if (!r) return;
  (void)VTL_ALWAYS(r->inflight_head == NULL && r->sessions == NULL);
  for (size_t i = 0; i < VTL_LOG_RING; i++)
    if (r->log[i]) vtl_msg_unref(r->log[i]);
  vtl_u64map_free(&r->dedup);
  vtl_frames_room_free(r);
  vtl_doc_free(r->doc);
  free(r->name);
  free(r);
}

/* ---- sessions ------------------------------------------------------------------- */

static vtl_session *find_session(vtl_room *r, uint64_t id) {
  for (vtl_session *s = r->sessions; s; s = s->room_next)
    if (s->id == id) return s;
  return NULL;
}

static void serve_joining(vtl_room *r);

static void on_id_bases(vtl_store_req *req, int status) {
  idbase_req *ir = (idbase_req *)req;
  vtl_room *r = ir->room;
  r->id_reserving = false;
  if (status == 0) {
    if (req->seq > r->id_bases_limit) r->id_bases_limit = req->seq;
    serve_joining(r);
  } else {
    for (vtl_session *s = r->sessions; s; s = s->room_next)
      if (s->state == VTL_SESSION_JOINING)
        vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_IO, 0, true,
                          "storage failed; try again later");
  }
  free(ir);
}

/* Welcomes every joining session for which an id base is durable; asks the
 * store for more bases when they ran out. */
static void serve_joining(vtl_room *r) {
  for (vtl_session *s = r->sessions; s; s = s->room_next) {
    if (s->state != VTL_SESSION_JOINING || s->closing) continue;
    if (r->id_bases_next >= (1ull << (53 - VTL_ID_BASE_SHIFT))) {
      vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_LIMIT, 0, true,
                        "room \"%s\" has used up its id space", r->name);
      continue;
    }
    if (r->id_bases_next >= r->id_bases_limit) {
      if (r->id_reserving) return;
      idbase_req *ir = calloc(1, sizeof *ir);
      if (!ir) {
        vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_NOMEM, 0, true,
                          "out of memory");
        continue;
      }
      ir->room = r;
      ir->req.type = VTL_STORE_ID_BASES;
      ir->req.room = r->db_id;
      ir->req.seq = r->id_bases_next + VTL_ID_BASE_RESERVE;
      if (vtl_store_submit(r->server->store, &ir->req, on_id_bases) != 0) {
        free(ir);
        vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_SERVER_SHUTDOWN, 0,
                          true, "the server is stopping");
        continue;
      }
      r->id_reserving = true;
      return;
    }
    uint64_t base = r->id_bases_next++;
    s->id = base;
    s->id_base = base << VTL_ID_BASE_SHIFT;
    vtl_sync_welcome(s);
    if (s->state == VTL_SESSION_LIVE && !s->closing && !s->held_snapshot) {
      vtl_transport_send(s);    /* after the catch-up (a held snapshot: */
      vtl_presence_on_live(s);  /* once it is sent, on_batch_committed) */
    }
  }
}

void vtl_room_join(vtl_room *r, vtl_session *s) {
  s->room = r;
  s->state = VTL_SESSION_JOINING;
  s->room_prev = NULL;
  s->room_next = r->sessions;
  if (r->sessions) r->sessions->room_prev = s;
  r->sessions = s;
  r->nsessions++;
  serve_joining(r);
}

void vtl_room_leave(vtl_room *r, vtl_session *s) {
  vtl_presence_on_leave(s); /* LEFT to the others */
  vtl_frames_leave(s);
  if (s->room_prev) s->room_prev->room_next = s->room_next;
  else r->sessions = s->room_next;
  if (s->room_next) s->room_next->room_prev = s->room_prev;
  s->room_prev = s->room_next = NULL;
  r->nsessions--;
  s->room = NULL;
  if (s->held_snapshot) {
    vtl_msg_unref(s->held_snapshot);
    s->held_snapshot = NULL;
  }
}

void vtl_room_broadcast(vtl_room *r, vtl_msg *m, vtl_session *except) {
  for (vtl_session *s = r->sessions; s; s = s->room_next)
    if (s != except && s->state == VTL_SESSION_LIVE) vtl_session_send(s, m);
}

/* ---- the commit pipeline ---------------------------------------------------- */

static void batch_free(vtl_batch *b) {
  vtl_msg_unref(b->msg);
  vtl_ops_free(b->inverse, b->ninverse);
  free(b);
}

/* Undoes every inflight batch, newest first; see the header comment. */
static void rollback(vtl_room *r) {
  size_t n = 0;
  for (vtl_batch *b = r->inflight_head; b; b = b->next) n++;
  vtl_batch **v = malloc((n ? n : 1) * sizeof *v);
  size_t i = 0;
  for (vtl_batch *b = r->inflight_head; b; b = b->next)
    if (v) v[i++] = b;
  for (size_t k = n; v && k-- > 0;) {
    vtl_batch *b = v[k];
    vtl_error err = {0};
    int rc = vtl_doc_apply(r->doc, b->inverse, b->ninverse, NULL, NULL, &err);
    if (VTL_NEVER(rc != 0))
      vtl_log(VTL_LOG_ERROR, "room.rollback", "room \"%s\": rollback of seq %llu: %s",
              r->name, (unsigned long long)b->seq, err.message);
    vtl_u64map_del(&r->dedup, b->batch_id);
    b->dead = true;
    vtl_session *s = find_session(r, b->session);
    if (s)
      vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_IO, b->batch_id, false,
                        "storage failed: the batch was not committed");
  }
  free(v);
  r->inflight_head = r->inflight_tail = NULL;
  r->seq = r->committed;
  vtl_render_touch(r, true); /* the document went back */
  /* Catch-ups that covered rolled-back seqs are void. */
  for (vtl_session *s = r->sessions; s; s = s->room_next)
    if (s->state == VTL_SESSION_LIVE && s->after_seq > r->committed)
      vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_RESYNC_REQUIRED, 0, true,
                        "storage failed; reconnect");
}

static void on_batch_committed(vtl_store_req *req, int status) {
  vtl_batch *b = req->data;
  vtl_room *r = b->room;
  if (b->dead) {
    (void)VTL_ALWAYS(status != 0);
    batch_free(b);
    return;
  }
  if (VTL_NEVER(r->inflight_head != b)) return;
  if (status != 0) {
    rollback(r); /* marks b dead */
    batch_free(b);
    return;
  }
  r->inflight_head = b->next;
  if (!r->inflight_head) r->inflight_tail = NULL;
  r->committed = b->seq;
  vtl_metrics_add(VTL_M_BATCHES_APPLIED, 1);
  vtl_metrics_add(VTL_M_OPS_APPLIED, b->nops);
  vtl_metrics_commit_latency((double)(uv_hrtime() - b->submit_ns) / 1e9);
  log_put(r, b->seq, b->msg);
  for (vtl_session *s = r->sessions; s; s = s->room_next) {
    if (s->state != VTL_SESSION_LIVE) continue;
    if (s->after_seq < b->seq) vtl_session_send(s, b->msg);
    else if (s->held_snapshot && s->after_seq == r->committed) {
      vtl_session_send(s, s->held_snapshot);
      vtl_msg_unref(s->held_snapshot);
      s->held_snapshot = NULL;
      vtl_transport_send(s);
      vtl_presence_on_live(s);
    }
  }
  batch_free(b);
}

static void on_snapshot(vtl_store_req *req, int status) {
  snapshot_req *sr = (snapshot_req *)req;
  if (status)
    vtl_log(VTL_LOG_WARN, "room.snapshot", "snapshot of seq %llu failed (kept the log)",
            (unsigned long long)req->seq);
  vtl_msg_unref(sr->msg);
  free(sr);
}

/* Packs the head document as a Document (no Envelope). */
static vtl_msg *pack_document(vtl_doc *doc) {
  Vtl__V1__Document *d;
  if (vtl_wire_doc_to_pb(doc, &d)) return NULL;
  size_t n = vtl__v1__document__get_packed_size(d);
  vtl_msg *m = vtl_msg_from_bytes(NULL, n);
  if (m) vtl__v1__document__pack(d, vtl_msg_data(m));
  vtl_wire_doc_free_pb(d);
  return m;
}

static void maybe_snapshot(vtl_room *r) {
  unsigned every = r->server->cfg.snapshot_every;
  if (!every || r->seq % every) return;
  snapshot_req *sr = calloc(1, sizeof *sr);
  if (!sr || !(sr->msg = pack_document(r->doc))) {
    free(sr);
    return; /* a snapshot is an optimisation; the log is complete */
  }
  sr->req.type = VTL_STORE_SNAPSHOT;
  sr->req.room = r->db_id;
  sr->req.seq = r->seq;
  sr->req.blob = vtl_msg_data(sr->msg);
  sr->req.len = sr->msg->len;
  if (vtl_store_submit(r->server->store, &sr->req, on_snapshot) != 0) {
    vtl_msg_unref(sr->msg);
    free(sr);
    return;
  }
  r->last_snapshot_seq = r->seq;
}

int vtl_room_apply(vtl_room *r, vtl_session *s, const Vtl__V1__OpBatch *pb,
                   vtl_error *err) {
  uint64_t seen, sid = s ? s->id : 0; /* 0: the server's own batch */
  if (vtl_u64map_get(&r->dedup, pb->batch_id, &seen)) {
    /* Applied before. Committed: a duplicate ack to the sender alone. In
     * flight: its broadcast will reach this session (after_seq < seen). */
    vtl_metrics_add(VTL_M_BATCHES_DUPLICATE, 1);
    if (s && seen <= r->committed) {
      Vtl__V1__Ops ops = VTL__V1__OPS__INIT;
      Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
      ops.seq = seen;
      ops.session_id = s->id;
      ops.batch_id = pb->batch_id;
      env.msg_case = VTL__V1__ENVELOPE__MSG_OPS;
      env.ops = &ops;
      vtl_msg *m = vtl_msg_pack(&env);
      if (m) { vtl_session_send(s, m); vtl_msg_unref(m); }
    }
    return 0;
  }

  vtl_op *ops = NULL;
  size_t n = 0;
  int rc = vtl_wire_ops_from_pb(pb->ops, pb->n_ops, &ops, &n, err);
  if (rc) return rc;
  vtl_batch *b = calloc(1, sizeof *b);
  if (!b) {
    vtl_ops_free(ops, n);
    return VTL_ENOMEM;
  }
  rc = vtl_doc_apply(r->doc, ops, n, &b->inverse, &b->ninverse, err);
  vtl_ops_free(ops, n);
  if (rc) {
    free(b);
    return rc;
  }

  b->room = r;
  b->seq = r->seq + 1;
  b->session = sid;
  b->batch_id = pb->batch_id;
  Vtl__V1__Ops o = VTL__V1__OPS__INIT;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  o.seq = b->seq;
  o.session_id = sid;
  o.batch_id = pb->batch_id;
  o.n_ops = pb->n_ops;
  o.ops = pb->ops; /* the ops as received are the ops as applied */
  env.msg_case = VTL__V1__ENVELOPE__MSG_OPS;
  env.ops = &o;
  b->msg = vtl_msg_pack(&env);
  if (!b->msg || vtl_u64map_put(&r->dedup, b->batch_id, b->seq) != 0) {
    vtl_doc_apply(r->doc, b->inverse, b->ninverse, NULL, NULL, NULL);
    if (b->msg) vtl_msg_unref(b->msg);
    vtl_ops_free(b->inverse, b->ninverse);
    free(b);
    err->code = VTL_ENOMEM;
    snprintf(err->message, sizeof err->message, "out of memory");
    return VTL_ENOMEM;
  }
  b->req.data = b;
  b->req.type = VTL_STORE_OP;
  b->req.room = r->db_id;
  b->req.seq = b->seq;
  b->req.session = sid;
  b->req.batch_id = b->batch_id;
  b->req.base_seq = pb->base_seq;
  b->req.blob = vtl_msg_data(b->msg);
  b->req.len = b->msg->len;
  b->nops = pb->n_ops;
  b->submit_ns = uv_hrtime();
  if (vtl_store_submit(r->server->store, &b->req, on_batch_committed) != 0) {
    vtl_doc_apply(r->doc, b->inverse, b->ninverse, NULL, NULL, NULL);
    vtl_u64map_del(&r->dedup, b->batch_id);
    batch_free(b);
    err->code = VTL_EIO;
    snprintf(err->message, sizeof err->message, "the server is stopping");
    return VTL_EIO;
  }
  r->seq = b->seq;
  if (r->inflight_tail) r->inflight_tail->next = b; else r->inflight_head = b;
  r->inflight_tail = b;
  maybe_snapshot(r);
  vtl_render_touch(r, true);
  return 0;
}
