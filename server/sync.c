/* sync.c — the message handlers of vtl.v1 (docs/protocol.md is the
 * contract). One handler per Envelope case, dispatched from one table keyed
 * by the oneof case; each reads as a script: validate, look up, mutate,
 * persist, reply, broadcast.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "wire.h"

#define E(x) VTL__V1__ERROR__CODE__CODE_##x

typedef void (*handler_fn)(vtl_session *s, const Vtl__V1__Envelope *m);

/* ---- replies ------------------------------------------------------------------ */

static void send_env(vtl_session *s, Vtl__V1__Envelope *env) {
  vtl_msg *m = vtl_msg_pack(env);
  if (!m) {
    vtl_session_error(s, E(NOMEM), 0, true, "out of memory");
    return;
  }
  vtl_session_send(s, m);
  vtl_msg_unref(m);
}

void vtl_sync_welcome(vtl_session *s) {
  vtl_room *r = s->room;
  Vtl__V1__Limits lim = VTL__V1__LIMITS__INIT;
  lim.max_message_bytes = VTL_MAX_MESSAGE_BYTES;
  lim.max_ops_per_batch = VTL_MAX_OPS_PER_BATCH;
  lim.max_string_bytes = VTL_MAX_STRING_BYTES;
  lim.max_batches_per_second = s->server->cfg.max_batch_rate;
  lim.max_entities = VTL_MAX_TRACKS + VTL_MAX_KEYFRAMES + VTL_MAX_CLIPS +
                     VTL_MAX_SHOTS + VTL_MAX_MARKERS + VTL_MAX_ASSETS + 1;
  lim.max_presence_per_second = VTL_MAX_PRESENCE_PER_SEC;
  Vtl__V1__Welcome w = VTL__V1__WELCOME__INIT;
  w.session_id = s->id;
  w.role = (Vtl__V1__Role)s->role;
  w.server_version = VTL_SERVER_VERSION;
  w.room = r->name;
  w.id_base = s->id_base;
  w.limits = &lim;
  w.seq = r->seq;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_WELCOME;
  env.welcome = &w;
  send_env(s, &env);
  s->state = VTL_SESSION_LIVE;

  /* Catch-up: the missed ops from the log ring when it holds them all. */
  uint64_t last = s->last_seq;
  if (last != 0 && last <= r->committed &&
      (last == r->committed || (r->log_first && last + 1 >= r->log_first))) {
    for (uint64_t q = last + 1; q <= r->committed; q++)
      vtl_session_send(s, r->log[q % VTL_LOG_RING]);
    s->after_seq = r->committed; /* committed+1 .. seq come as broadcasts */
    return;
  }
  /* Otherwise a Snapshot of the head, held until the head is committed. */
  Vtl__V1__Document *d;
  if (vtl_wire_doc_to_pb(r->doc, &d)) {
    vtl_session_error(s, E(NOMEM), 0, true, "out of memory");
    return;
  }
  Vtl__V1__Snapshot snap = VTL__V1__SNAPSHOT__INIT;
  snap.seq = r->seq;
  snap.document = d;
  env.msg_case = VTL__V1__ENVELOPE__MSG_SNAPSHOT;
  env.snapshot = &snap;
  vtl_msg *m = vtl_msg_pack(&env);
  vtl_wire_doc_free_pb(d);
  if (!m) {
    vtl_session_error(s, E(NOMEM), 0, true, "out of memory");
    return;
  }
  s->after_seq = r->seq;
  if (r->seq == r->committed) {
    vtl_session_send(s, m);
    vtl_msg_unref(m);
  } else {
    s->held_snapshot = m; /* on_batch_committed sends it */
  }
}

/* ---- handlers -------------------------------------------------------------- */

static bool str_ok(vtl_session *s, const char *what, const char *v,
                   size_t max) {
  if (!v) return true;
  if (strlen(v) > max) {
    vtl_session_error(s, E(TOOLONG), 0, true, "Hello.%s: longer than %zu bytes",
                      what, max);
    return false;
  }
  if (!vtl_wire_utf8_valid(v)) {
    vtl_session_error(s, E(MALFORMED), 0, true, "Hello.%s: invalid UTF-8",
                      what);
    return false;
  }
  return true;
}

static void handle_hello(vtl_session *s, const Vtl__V1__Envelope *m) {
  const Vtl__V1__Hello *h = m->hello;
  vtl_server *sv = s->server;
  if (s->state != VTL_SESSION_NEW) {
    vtl_session_offence(s, E(MALFORMED), "a second Hello");
    return;
  }
  if (h->protocol_version != 1) {
    vtl_session_error(s, E(UNSUPPORTED), 0, true,
                      "protocol version %u is not supported (this server "
                      "speaks 1)", h->protocol_version);
    return;
  }
  if (!str_ok(s, "room", h->room, VTL_MAX_NAME) ||
      !str_ok(s, "token", h->token, VTL_MAX_TEXT) ||
      !str_ok(s, "display_name", h->display_name, VTL_MAX_NAME))
    return;
  if (h->n_capabilities > VTL_MAX_CAPABILITIES) {
    vtl_session_error(s, E(TOOLONG), 0, true, "Hello: more than %d capabilities",
                      VTL_MAX_CAPABILITIES);
    return;
  }
  for (size_t i = 0; i < h->n_capabilities; i++)
    if (!str_ok(s, "capabilities", h->capabilities[i], VTL_MAX_CAPABILITY))
      return;

  /* The room in the URL (/ws?room=NAME) is what a proxy routed on: a
   * Hello naming another room would open it on the wrong process. */
  if (s->url_room && strcmp(s->url_room, h->room ? h->room : "") != 0) {
    vtl_session_error(s, E(ROOM_NOT_FOUND), 0, true,
                      "the URL names room \"%.64s\" but the Hello names "
                      "\"%.64s\"", s->url_room, h->room ? h->room : "");
    return;
  }

  vtl_room *r;
  char msg[256];
  int rc = vtl_room_get(sv, h->room ? h->room : "", &r, msg, sizeof msg);
  if (rc == VTL_ENOENT) {
    vtl_session_error(s, E(ROOM_NOT_FOUND), 0, true, "%s", msg);
    return;
  }
  if (rc) {
    vtl_log(VTL_LOG_ERROR, "room.open", "%s", msg);
    vtl_session_error(s, rc == VTL_ENOMEM ? E(NOMEM) : E(IO), 0, true, "%s",
                      msg);
    return;
  }

  /* Authenticate: hash, then compare with every hash of the room. */
  vtl_store_token *toks = NULL;
  size_t ntoks = 0;
  if (vtl_store_tokens(sv->store, r->db_id, &toks, &ntoks) != 0) {
    vtl_session_error(s, E(IO), 0, true, "cannot read the room's tokens");
    return;
  }
  const char *token = h->token ? h->token : "";
  int role = -1;
  if (token[0]) {
    uint8_t hash[VTL_TOKEN_HASH_BYTES];
    vtl_auth_hash(token, hash);
    for (size_t i = 0; i < ntoks; i++)
      if (vtl_auth_equal(hash, toks[i].hash) && toks[i].role > role)
        role = toks[i].role;
  } else {
    vtl_store_room_info info;
    if (vtl_store_room_find(sv->store, r->name, &info) == 0 &&
        info.anonymous_viewers)
      role = VTL__V1__ROLE__ROLE_VIEWER;
  }
  free(toks);
  if (role < 0) {
    vtl_session_error(s, E(AUTH_FAILED), 0, true,
                      token[0] ? "the token is not valid for room \"%s\""
                               : "room \"%s\" needs a token",
                      r->name);
    return;
  }
  s->role = role;
  free(s->display_name);
  s->display_name = strdup(h->display_name ? h->display_name : "");
  s->last_seq = h->last_seq;
  vtl_frames_hello(s, h);
  vtl_room_join(r, s); /* Welcome once an id base is durable */
}

/* Token bucket: cfg.max_batch_rate (VTL_MAX_BATCHES_PER_SEC unless a
 * bench raised it) per second, burst as many. */
static bool rate_ok(vtl_session *s) {
  uint64_t now = uv_now(s->server->loop);
  double rate = s->server->cfg.max_batch_rate;
  s->rate_tokens += (double)(now - s->rate_ms) * rate / 1000.0;
  if (s->rate_tokens > rate) s->rate_tokens = rate;
  s->rate_ms = now;
  if (s->rate_tokens < 1.0) return false;
  s->rate_tokens -= 1.0;
  return true;
}

static void handle_op_batch(vtl_session *s, const Vtl__V1__Envelope *m) {
  const Vtl__V1__OpBatch *b = m->op_batch;
  vtl_room *r = s->room;
  if (s->state != VTL_SESSION_LIVE) {
    vtl_session_offence(s, E(MALFORMED), "OpBatch before Welcome");
    return;
  }
  if (s->role != VTL__V1__ROLE__ROLE_DIRECTOR) {
    vtl_session_error(s, E(PERM), b->batch_id, false,
                      "only directors may edit (this session is a %s)",
                      s->role == VTL__V1__ROLE__ROLE_VIEWER ? "viewer"
                                                            : "worker");
    return;
  }
  if (!rate_ok(s)) {
    vtl_session_error(s, E(RATE_LIMITED), b->batch_id, false,
                      "over %u batches per second; resend later",
                      s->server->cfg.max_batch_rate);
    return;
  }
  if (b->batch_id == 0 || b->batch_id > VTL_ID_MAX) {
    vtl_session_error(s, E(RANGE), b->batch_id, false,
                      "batch_id must be 1 .. 2^53-1");
    return;
  }
  if (b->n_ops == 0) {
    vtl_session_error(s, E(INVAL), b->batch_id, false, "an empty batch");
    return;
  }
  if (b->n_ops > VTL_MAX_OPS_PER_BATCH) {
    vtl_session_error(s, E(LIMIT), b->batch_id, false,
                      "%zu ops in one batch (at most %d)", b->n_ops,
                      VTL_MAX_OPS_PER_BATCH);
    return;
  }
  if (b->base_seq > r->seq) {
    vtl_session_error(s, E(INVAL), b->batch_id, false,
                      "base_seq %llu is ahead of the room (seq %llu)",
                      (unsigned long long)b->base_seq,
                      (unsigned long long)r->seq);
    return;
  }
  vtl_error err = {0};
  int rc = vtl_room_apply(r, s, b, &err);
  if (rc)
    vtl_session_error(s, vtl_wire_code(rc), b->batch_id, false, "%s",
                      err.message[0] ? err.message : vtl_strerror(rc));
}

static void handle_ping(vtl_session *s, const Vtl__V1__Envelope *m) {
  Vtl__V1__Pong p = VTL__V1__PONG__INIT;
  p.nonce = m->ping->nonce;
  p.client_time_ms = m->ping->client_time_ms;
  p.server_time_ms = (int64_t)vtl_now_ms();
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_PONG;
  env.pong = &p;
  send_env(s, &env);
}

static void handle_presence(vtl_session *s, const Vtl__V1__Envelope *m) {
  vtl_presence_handle(s, m->presence); /* presence.c */
}

static void handle_transport(vtl_session *s, const Vtl__V1__Envelope *m) {
  vtl_transport_handle(s, m->transport); /* transport.c */
}

static void handle_subscribe(vtl_session *s, const Vtl__V1__Envelope *m) {
  vtl_frames_subscribe(s, m->subscribe); /* frames.c */
}

static void handle_frame(vtl_session *s, const Vtl__V1__Envelope *m) {
  if (s->role != VTL__V1__ROLE__ROLE_WORKER) {
    vtl_session_offence(s, E(MALFORMED), "Frame from a non-worker");
    return;
  }
  vtl_session_error(s, E(UNSUPPORTED), 0, false,
                    "this server does not take worker frames yet");
}

static void handle_server_only(vtl_session *s, const Vtl__V1__Envelope *m) {
  vtl_session_offence(s, E(MALFORMED), "a server -> client message");
}

static const handler_fn handlers[] = {
  [VTL__V1__ENVELOPE__MSG_HELLO] = handle_hello,
  [VTL__V1__ENVELOPE__MSG_WELCOME] = handle_server_only,
  [VTL__V1__ENVELOPE__MSG_SNAPSHOT] = handle_server_only,
  [VTL__V1__ENVELOPE__MSG_OP_BATCH] = handle_op_batch,
  [VTL__V1__ENVELOPE__MSG_OPS] = handle_server_only,
  [VTL__V1__ENVELOPE__MSG_ERROR] = handle_server_only,
  [VTL__V1__ENVELOPE__MSG_PRESENCE] = handle_presence,
  [VTL__V1__ENVELOPE__MSG_TRANSPORT] = handle_transport,
  [VTL__V1__ENVELOPE__MSG_SUBSCRIBE] = handle_subscribe,
  [VTL__V1__ENVELOPE__MSG_FRAME] = handle_frame,
  [VTL__V1__ENVELOPE__MSG_PING] = handle_ping,
  [VTL__V1__ENVELOPE__MSG_PONG] = handle_server_only,
};

void vtl_sync_dispatch(vtl_session *s, const Vtl__V1__Envelope *env) {
  unsigned c = (unsigned)env->msg_case;
  if (c == 0 || c >= sizeof handlers / sizeof handlers[0] || !handlers[c]) {
    if (env->base.n_unknown_fields > 0) /* a newer client's message */
      vtl_session_error(s, E(UNSUPPORTED), 0, s->state == VTL_SESSION_NEW,
                        "unknown message kind");
    else
      vtl_session_offence(s, E(MALFORMED), "an Envelope with no msg");
    return;
  }
  if (s->state == VTL_SESSION_NEW && c != VTL__V1__ENVELOPE__MSG_HELLO) {
    vtl_session_error(s, E(MALFORMED), 0, true, "the first message must be Hello");
    return;
  }
  handlers[c](s, env);
}
