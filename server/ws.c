/* ws.c — the vtl.v1 websocket protocol on libwebsockets (after lws'
 * minimal-ws-server-ring: one switch (reason) callback, per-session state,
 * one write per SERVER_WRITEABLE, LWS_PRE headroom in every payload).
 *
 *   struct pss   one per connection (lws allocates it): points at the
 *                vtl_session we allocate, so that a session's lifetime is
 *                ours (freed on LWS_CALLBACK_CLOSED only)
 *   vhd          none: the server (lws_context_user) holds the shared state
 *
 * Send queue: a FIFO of referenced vtl_msg per session. Broadcast messages
 * are encoded once and referenced by every queue. Bounded: a session whose
 * queue passes VTL_SEND_QUEUE_MAX / _BYTES gets RESYNC_REQUIRED and is
 * closed (ops are never dropped; the client resyncs). Frames wait in a
 * separate one-frame slot (droppable, lower priority: written only when the
 * FIFO is empty; frames.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "http.h"
#include "metrics.h"
#include "server.h"
#include "wire.h"

#define E(x) VTL__V1__ERROR__CODE__CODE_##x

struct pss {
  vtl_session *s; /* is malloc'd; NULL before ESTABLISHED / after CLOSED */
};

/* ---- messages ----------------------------------------------------------------- */

vtl_msg *vtl_msg_from_bytes(const void *p, size_t n) {
  vtl_msg *m = malloc(sizeof *m + LWS_PRE + n);
  if (!m) return NULL;
  m->refs = 1;
  m->len = n;
  if (p && n) memcpy(m->buf + LWS_PRE, p, n);
  return m;
}

vtl_msg *vtl_msg_pack(const Vtl__V1__Envelope *env) {
  size_t n = vtl__v1__envelope__get_packed_size(env);
  vtl_msg *m = vtl_msg_from_bytes(NULL, n);
  if (m) vtl__v1__envelope__pack(env, vtl_msg_data(m));
  return m;
}

void vtl_msg_ref(vtl_msg *m) { m->refs++; }

void vtl_msg_unref(vtl_msg *m) {
  if (m && --m->refs == 0) free(m);
}

/* ---- send queue ------------------------------------------------------------------ */

static int q_push(vtl_session *s, vtl_msg *m) {
  if (s->q_n == s->q_cap) {
    size_t cap = s->q_cap ? s->q_cap * 2 : 16;
    vtl_msg **q = malloc(cap * sizeof *q);
    if (!q) return VTL_ENOMEM;
    for (size_t i = 0; i < s->q_n; i++) q[i] = s->q[(s->q_head + i) % s->q_cap];
    free(s->q);
    s->q = q;
    s->q_cap = cap;
    s->q_head = 0;
  }
  vtl_msg_ref(m);
  s->q[(s->q_head + s->q_n++) % s->q_cap] = m;
  s->q_bytes += m->len;
  return 0;
}

static vtl_msg *q_pop(vtl_session *s) {
  if (!s->q_n) return NULL;
  vtl_msg *m = s->q[s->q_head];
  s->q_head = (s->q_head + 1) % s->q_cap;
  s->q_n--;
  s->q_bytes -= m->len;
  return m;
}

void vtl_ws_request_write(vtl_session *s) {
  if (s->wsi) lws_callback_on_writable(s->wsi);
}

static vtl_msg *error_msg(int code, uint64_t batch_id, bool fatal,
                          const char *text) {
  Vtl__V1__Error e = VTL__V1__ERROR__INIT;
  e.code = (Vtl__V1__Error__Code)code;
  e.batch_id = batch_id;
  e.message = (char *)text;
  e.fatal = fatal;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_ERROR;
  env.error = &e;
  return vtl_msg_pack(&env);
}

/* Queues a fatal error past the bound and marks the session closing. */
static void fatal_now(vtl_session *s, int code, const char *text) {
  vtl_msg *m = error_msg(code, 0, true, text);
  if (m) {
    q_push(s, m);
    vtl_msg_unref(m);
  }
  s->closing = true;
  s->close_status = code == E(SERVER_SHUTDOWN) ? LWS_CLOSE_STATUS_GOINGAWAY
                                               : LWS_CLOSE_STATUS_POLICY_VIOLATION;
  vtl_ws_request_write(s);
}

int vtl_session_send(vtl_session *s, vtl_msg *m) {
  if (s->closing || !m) return 0;
  if (s->q_n >= VTL_SEND_QUEUE_MAX || s->q_bytes + m->len > VTL_SEND_QUEUE_BYTES ||
      q_push(s, m) != 0) {
    vtl_log(VTL_LOG_WARN, "session.resync", "session %llu fell behind (%zu messages "
            "queued): resync", (unsigned long long)s->id, s->q_n);
    fatal_now(s, E(RESYNC_REQUIRED),
              "too far behind: reconnect with your last_seq");
    return VTL_ELIMIT;
  }
  vtl_ws_request_write(s);
  return 0;
}

void vtl_session_error(vtl_session *s, int wire_code, uint64_t batch_id,
                       bool fatal, const char *fmt, ...) {
  if (s->closing) return;
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (fatal) {
    fatal_now(s, wire_code, text);
    return;
  }
  if (batch_id) vtl_metrics_rejected(wire_code); /* a rejected OpBatch */
  vtl_msg *m = error_msg(wire_code, batch_id, false, text);
  vtl_session_send(s, m);
  vtl_msg_unref(m);
}

void vtl_session_offence(vtl_session *s, int wire_code, const char *what) {
  s->offences++;
  vtl_metrics_add(VTL_M_OFFENCES, 1);
  bool fatal = s->offences >= VTL_MAX_OFFENCES || s->state == VTL_SESSION_NEW;
  vtl_session_error(s, wire_code, 0, fatal, "%s%s", what,
                    fatal ? " (closing the connection)" : "");
}

/* ---- sessions ----------------------------------------------------------------- */

static vtl_session *session_new(vtl_server *sv, struct lws *wsi) {
  vtl_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->server = sv;
  s->wsi = wsi;
  s->state = VTL_SESSION_NEW;
  s->rate_tokens = sv->cfg.max_batch_rate;
  s->rate_ms = uv_now(sv->loop);
  s->all_next = sv->sessions;
  sv->sessions = s;
  sv->nsessions++;
  return s;
}

static void session_free(vtl_session *s) {
  vtl_server *sv = s->server;
  if (s->room) vtl_room_leave(s->room, s);
  for (vtl_session **p = &sv->sessions; *p; p = &(*p)->all_next)
    if (*p == s) { *p = s->all_next; break; }
  sv->nsessions--;
  vtl_msg *m;
  while ((m = q_pop(s))) vtl_msg_unref(m);
  vtl_msg_unref(s->frame_slot);
  free(s->q);
  free(s->rx);
  free(s->display_name);
  free(s->url_room);
  free(s);
}

/* A whole message arrived: decode and dispatch. */
static void on_message(vtl_session *s) {
  vtl_metrics_add(VTL_M_MESSAGES_IN, 1);
  vtl_metrics_add(VTL_M_BYTES_IN, s->rx_len);
  if (s->rx_oversize) {
    vtl_session_offence(s, E(TOO_LARGE), "message over 1 MiB, discarded");
    return;
  }
  if (s->rx_text) {
    vtl_session_offence(s, E(MALFORMED), "a text frame (vtl.v1 is binary)");
    return;
  }
  Vtl__V1__Envelope *env = vtl__v1__envelope__unpack(NULL, s->rx_len, s->rx);
  if (!env) {
    vtl_session_offence(s, E(MALFORMED), "not a vtl.v1 Envelope");
    return;
  }
  vtl_sync_dispatch(s, env);
  vtl__v1__envelope__free_unpacked(env, NULL);
}

static int on_receive(vtl_session *s, struct lws *wsi, const void *in,
                      size_t len) {
  if (lws_is_first_fragment(wsi)) {
    s->rx_len = 0;
    s->rx_oversize = false;
    s->rx_text = !lws_frame_is_binary(wsi);
  }
  if (!s->rx_oversize) {
    if (s->rx_len + len > VTL_MAX_MESSAGE_BYTES) {
      s->rx_oversize = true;
      free(s->rx);
      s->rx = NULL;
      s->rx_cap = s->rx_len = 0;
    } else {
      if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        while (cap < s->rx_len + len) cap *= 2;
        uint8_t *p = realloc(s->rx, cap);
        if (!p) return -1;
        s->rx = p;
        s->rx_cap = cap;
      }
      if (len) memcpy(s->rx + s->rx_len, in, len);
      s->rx_len += len;
    }
  }
  if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
    return 0;
  if (s->closing || s->server->stopping) return 0; /* no new work */
  on_message(s);
  if (s->rx_cap > 65536) { /* do not keep a large buffer per idle client */
    free(s->rx);
    s->rx = NULL;
    s->rx_cap = 0;
  }
  s->rx_len = 0;
  return 0;
}

static int on_writeable(vtl_session *s, struct lws *wsi) {
  vtl_msg *m = q_pop(s);
  if (!m) m = vtl_frames_take(s); /* frames only when the FIFO is empty */
  if (m) {
    int n = lws_write(wsi, vtl_msg_data(m), m->len, LWS_WRITE_BINARY);
    size_t len = m->len;
    vtl_msg_unref(m);
    if (n < (int)len) return -1;
    vtl_metrics_add(VTL_M_MESSAGES_OUT, 1);
    vtl_metrics_add(VTL_M_BYTES_OUT, len);
    if (s->q_n || s->frame_slot || s->closing) lws_callback_on_writable(wsi);
    return 0;
  }
  if (s->closing) {
    static const char reason[] = "vtl: closing after a fatal error";
    lws_close_reason(wsi, (enum lws_close_status)s->close_status,
                     (unsigned char *)reason, sizeof reason - 1);
    return -1;
  }
  return 0;
}

/* Only GET /ws (optionally with a query) upgrades, and only to vtl.v1. */
static bool upgrade_ok(struct lws *wsi) {
  char uri[256];
  if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0) return false;
  if (strncmp(uri, "/ws", 3) != 0 || (uri[3] && uri[3] != '?')) return false;
  char proto[128];
  if (lws_hdr_copy(wsi, proto, sizeof proto, WSI_TOKEN_PROTOCOL) <= 0)
    return false;
  return strstr(proto, "vtl.v1") != NULL;
}

static int callback_vtl(struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len) {
  struct pss *pss = user;
  vtl_server *sv = lws_context_user(lws_get_context(wsi));

  switch (reason) {
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    if (sv->stopping || !upgrade_ok(wsi) || !vtl_http_origin_ok(sv, wsi))
      return 1; /* refuse the upgrade */
    return 0;

  case LWS_CALLBACK_ESTABLISHED:
    vtl_metrics_add(VTL_M_SESSIONS_OPENED, 1);
    pss->s = session_new(sv, wsi);
    if (!pss->s) return -1;
    { /* /ws?room=NAME (lws has %-decoded it): what proxies route on */
      char buf[VTL_MAX_NAME * 3 + 16];
      const char *v = lws_get_urlarg_by_name(wsi, "room=", buf, sizeof buf);
      if (v && v[0] && !(pss->s->url_room = strdup(v))) return -1;
    }
    return 0;

  case LWS_CALLBACK_RECEIVE:
    if (!pss->s) return -1;
    return on_receive(pss->s, wsi, in, len);

  case LWS_CALLBACK_SERVER_WRITEABLE:
    if (!pss->s) return -1;
    return on_writeable(pss->s, wsi);

  case LWS_CALLBACK_CLOSED:
    if (pss->s) {
      pss->s->wsi = NULL;
      session_free(pss->s);
      pss->s = NULL;
    }
    return 0;

  case LWS_CALLBACK_HTTP: /* static files and /metrics (http.c) */
    return vtl_http_serve(wsi, sv, in ? (const char *)in : "");

  case LWS_CALLBACK_HTTP_FILE_COMPLETION:
    return vtl_http_file_done(wsi);

  default:
    break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols vtl_ws_protocols[] = {
  {"vtl.v1", callback_vtl, sizeof(struct pss), 65536, 0, NULL, 0},
  {NULL, NULL, 0, 0, 0, NULL, 0} /* 4.1.6 has no LWS_PROTOCOL_LIST_TERM */
};
